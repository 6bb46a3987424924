"""The ideas of JAX's "Pseudorandom numbers" tutorial, ported beyond tests/jax_docs/
test_random.py: keys, split and fold_in bit for bit as JAX's, raw key data round trips,
vmap/scan over keys, shapes and dtypes, and no sequential equivalence. Keys here are raw
uint32[2] arrays (README: no typed-key dtype): `random.key(s)` is `random.PRNGKey(s)`, so
a batch of n keys has shape (n, 2) where JAX's typed keys have shape (n,)."""
import numpy as np
import pytest

import transforms as T
from transforms import dtypes, lax, random

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")


def test_keys_are_raw_uint32_pairs_and_key_data_round_trips():
    k = random.key(42)
    assert k.dtype == np.uint32 and k.shape == (2,)
    np.testing.assert_array_equal(k, random.PRNGKey(42))
    np.testing.assert_array_equal(random.key_data(k), [0, 42])
    np.testing.assert_array_equal(random.wrap_key_data(random.key_data(k)), k)
    # JAX's typed-key test answers False for raw keys, so code that wraps them keeps working
    assert not dtypes.issubdtype(k.dtype, dtypes.prng_key)
    assert dtypes.issubdtype(dtypes.prng_key, dtypes.extended)
    assert random.key_impl(k) == "threefry2x32"


@needs_jax
def test_key_split_fold_in_and_samples_are_jaxs_bits():
    ours, theirs = random.key(7), jax.random.key(7)
    a1, a2 = random.split(ours)
    b1, b2 = jax.random.split(theirs)
    for o, t in ((a1, b1), (a2, b2), (random.fold_in(ours, 3), jax.random.fold_in(theirs, 3))):
        np.testing.assert_array_equal(random.key_data(o), np.asarray(jax.random.key_data(t)))
    many = random.split(ours, (2, 3))
    assert many.shape == (2, 3, 2)
    np.testing.assert_array_equal(many, np.asarray(jax.random.key_data(
        jax.random.split(theirs, (2, 3)))))
    for f, g in ((lambda k: random.normal(k, (4,)), lambda k: jax.random.normal(k, (4,))),
                 (lambda k: random.uniform(k, (2, 2), minval=-1.0, maxval=1.0),
                  lambda k: jax.random.uniform(k, (2, 2), minval=-1.0, maxval=1.0)),
                 (lambda k: random.randint(k, (5,), 0, 100),
                  lambda k: jax.random.randint(k, (5,), 0, 100))):
        np.testing.assert_array_equal(f(a2), np.asarray(g(b2)))
        np.testing.assert_array_equal(T.jit(f)(a2), np.asarray(g(b2)))


@needs_jax
def test_vmap_and_scan_over_split_keys_match_jax():
    keys, jkeys = random.split(random.key(0), 4), jax.random.split(jax.random.key(0), 4)
    ours = T.vmap(lambda k: random.normal(k, (2,)))(keys)
    np.testing.assert_array_equal(ours, np.asarray(jax.vmap(
        lambda k: jax.random.normal(k, (2,)))(jkeys)))
    # a batch of keys is a loop over keys, draw by draw
    np.testing.assert_array_equal(ours, np.stack([random.normal(k, (2,)) for k in keys]))

    def walk(pos, k):
        step = random.normal(k, dtype=np.float32)
        return pos + step, pos

    def jwalk(pos, k):
        step = jax.random.normal(k)
        return pos + step, pos

    end, path = lax.scan(walk, np.float32(0.0), keys)
    jend, jpath = jax.lax.scan(jwalk, jnp.float32(0.0), jkeys)
    # (normal's last float32 bit may differ from JAX's: random.STREAM_NOTES)
    np.testing.assert_allclose(path, np.asarray(jpath), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(end, float(jend), rtol=1e-5, atol=1e-6)


def test_no_sequential_equivalence_one_draw_of_three_is_not_three_draws():
    k = random.key(3)
    together = random.normal(k, (3,))
    apart = np.stack([random.normal(s) for s in random.split(k, 3)])
    assert not np.allclose(together, apart)
    # the same key and shape always give the same numbers, eager and compiled
    np.testing.assert_array_equal(together, T.jit(lambda kk: random.normal(kk, (3,)))(k))


def test_fold_in_a_traced_step_number():
    base = random.key(11)
    f = T.jit(lambda k, i: random.uniform(random.fold_in(k, i)))
    draws = [float(f(base, i)) for i in range(4)]
    assert len(set(draws)) == 4
    assert draws == [float(random.uniform(random.fold_in(base, i))) for i in range(4)]
    assert f._cache_size() == 1


def test_shapes_and_dtypes_of_draws():
    k = random.key(0)
    assert random.normal(k).shape == () and random.normal(k).dtype == np.float32
    assert random.normal(k, (2, 3), dtype=np.float64).dtype == np.float64
    assert random.uniform(k, [4]).shape == (4,)
    assert random.randint(k, (3,), 0, 5).dtype == np.int32
    assert random.bits(k, (2,)).dtype == np.uint32
    with pytest.raises(TypeError, match="floating"):
        random.uniform(k, (2,), dtype=np.int32)
    with pytest.raises(ValueError, match="single key"):
        random.normal(random.split(k, 3), ())


def test_split_discipline_in_a_training_like_loop():
    """Each step splits off a fresh subkey; the carried key never feeds a draw itself."""
    def body(i, carry):
        key, total = carry
        key, sub = random.split(key)
        return key, total + random.uniform(sub)

    key, total = lax.fori_loop(0, 5, body, (random.key(1), np.float32(0.0)))
    k, want = random.key(1), np.float32(0.0)
    for _ in range(5):
        k, s = random.split(k)
        want = want + random.uniform(s)
    np.testing.assert_array_equal(key, k)
    np.testing.assert_allclose(total, want, rtol=1e-6)


def test_a_traced_number_of_keys_or_shape_says_to_make_it_static():
    from transforms import errors
    with pytest.raises(errors.ConcretizationTypeError,
                       match="split: a shape entry.*static_argnums"):
        T.jit(lambda k, n: random.split(k, n))(random.key(0), 3)
    split3 = T.jit(lambda k, n: random.split(k, n), static_argnums=1)
    np.testing.assert_array_equal(split3(random.key(0), 3), random.split(random.key(0), 3))
