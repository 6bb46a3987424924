"""Random-number programs: key splitting discipline, reproducibility under jit and vmap,
distribution moments with enough samples, permutation/choice/categorical."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import random

N = 20000


def same(f, *args):
    """f eagerly and under jit give the same numbers (integers exactly, floats to 1e-6:
    bitwise equality of floats is its own program below); returns them."""
    a = np.asarray(f(*args))
    b = np.asarray(T.jit(f)(*args))
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return a


@pytest.mark.parametrize("name", [
    "uniform", "randint", "bernoulli", "normal", "exponential", "gumbel", "truncated_normal"])
def test_samples_bitwise_identical_eager_and_jit(name):
    draw = {"uniform": lambda k: random.uniform(k, (N,)),
            "randint": lambda k: random.randint(k, (N,), 0, 1000),
            "bernoulli": lambda k: random.bernoulli(k, 0.5, (N,)),
            "normal": lambda k: random.normal(k, (N,)),
            "exponential": lambda k: random.exponential(k, (N,)),
            "gumbel": lambda k: random.gumbel(k, (N,)),
            "truncated_normal": lambda k: random.truncated_normal(k, -1.0, 2.0, (N,))}[name]
    k = random.key(2024)
    np.testing.assert_array_equal(np.asarray(draw(k)), np.asarray(T.jit(draw)(k)))


def test_same_key_same_numbers_different_subkeys_differ():
    key = random.key(0)
    a = same(lambda k: random.normal(k, (4,)), key)
    np.testing.assert_array_equal(a, random.normal(key, (4,)))
    k1, k2 = random.split(key)
    assert not np.array_equal(random.normal(k1, (4,)), random.normal(k2, (4,)))


def test_split_discipline_never_reuse_parent():
    key = random.key(42)
    key, sub = random.split(key)
    x1 = random.uniform(sub, (3,))
    key, sub = random.split(key)
    x2 = random.uniform(sub, (3,))
    assert not np.array_equal(x1, x2)
    # splitting is deterministic
    np.testing.assert_array_equal(np.asarray(random.split(random.key(42))),
                                  np.asarray(random.split(random.key(42))))


def test_split_num_gives_distinct_keys():
    keys = np.asarray(random.split(random.key(1), 5))
    assert len({tuple(np.ravel(k)) for k in keys}) == 5


def test_fold_in_differs_per_step_and_is_deterministic():
    key = random.key(3)
    a = [tuple(np.ravel(np.asarray(random.fold_in(key, i)))) for i in range(4)]
    assert len(set(a)) == 4
    assert a[2] == tuple(np.ravel(np.asarray(random.fold_in(key, 2))))


def test_vmap_over_split_keys_matches_loop():
    keys = random.split(random.key(7), 3)
    batched = T.vmap(lambda k: random.normal(k, (2,)))(keys)
    looped = np.stack([random.normal(k, (2,)) for k in keys])
    np.testing.assert_array_equal(batched, looped)


def test_normal_moments():
    x = same(lambda k: random.normal(k, (N,)), random.key(0)).astype(np.float64)
    assert abs(x.mean()) < 4 / np.sqrt(N)
    assert abs(x.var() - 1) < 0.05
    assert abs(np.mean(x ** 3)) < 0.1


def test_normal_default_dtype_float32_and_float64_option():
    assert random.normal(random.key(0), (2,)).dtype == np.float32
    assert random.normal(random.key(0), (2,), dtype=np.float64).dtype == np.float64


def test_uniform_range_and_moments():
    x = same(lambda k: random.uniform(k, (N,), minval=-2.0, maxval=3.0), random.key(1))
    assert x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 0.05
    assert abs(x.var() - 25 / 12) < 0.1


def test_bernoulli_frequency():
    x = same(lambda k: random.bernoulli(k, 0.3, (N,)), random.key(2))
    assert x.dtype == np.bool_
    assert abs(x.mean() - 0.3) < 0.02


def test_randint_range_and_uniformity():
    x = same(lambda k: random.randint(k, (N,), 0, 5), random.key(3))
    assert x.min() == 0 and x.max() == 4
    np.testing.assert_allclose(np.bincount(x) / N, np.full(5, 0.2), atol=0.02)


def test_permutation_is_a_permutation():
    p = same(lambda k: random.permutation(k, 10), random.key(4))
    np.testing.assert_array_equal(np.sort(p), np.arange(10))
    assert not np.array_equal(p, np.arange(10))


def test_permutation_of_array_rows():
    x = np.arange(12.0).reshape(6, 2)
    p = same(lambda k, x: random.permutation(k, x), random.key(5), x)
    np.testing.assert_array_equal(np.sort(p[:, 0]), x[:, 0])
    np.testing.assert_array_equal(p[:, 1] - p[:, 0], np.ones(6))


def test_choice_without_replacement_unique():
    c = same(lambda k: random.choice(k, 10, (6,), replace=False), random.key(6))
    assert len(set(c.tolist())) == 6 and c.min() >= 0 and c.max() < 10


def test_choice_with_probabilities():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    c = same(lambda k: random.choice(k, 4, (N,), p=p), random.key(7))
    np.testing.assert_allclose(np.bincount(c, minlength=4) / N, p, atol=0.02)


def test_categorical_from_logits():
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    c = same(lambda k: random.categorical(k, logits, shape=(N,)), random.key(8))
    np.testing.assert_allclose(np.bincount(c, minlength=3) / N, [0.2, 0.5, 0.3], atol=0.02)


def test_truncated_normal_bounds_and_mean():
    x = same(lambda k: random.truncated_normal(k, 0.0, 2.0, (N,)), random.key(9))
    assert x.min() >= 0.0 and x.max() <= 2.0
    # mean of a standard normal truncated to [0, 2]: (phi(0) - phi(2)) / (Phi(2) - Phi(0))
    from scipy.stats import norm
    expected = (norm.pdf(0) - norm.pdf(2)) / (norm.cdf(2) - norm.cdf(0))
    assert abs(x.mean() - expected) < 0.02


def test_exponential_mean():
    x = same(lambda k: random.exponential(k, (N,)), random.key(10))
    assert x.min() >= 0 and abs(x.mean() - 1.0) < 0.04


def test_gumbel_mean_is_euler_gamma():
    x = same(lambda k: random.gumbel(k, (N,)), random.key(11))
    assert abs(x.mean() - np.euler_gamma) < 0.04


def test_gumbel_max_trick_sampling():
    logits = np.log(np.array([0.7, 0.2, 0.1]))

    def sample(k):
        return tnp.argmax(logits + random.gumbel(k, (N, 3)), axis=-1)

    c = same(sample, random.key(12))
    np.testing.assert_allclose(np.bincount(c, minlength=3) / N, [0.7, 0.2, 0.1], atol=0.02)


def test_dropout_mask_scaling_preserves_mean():
    def dropout(k, x, rate=0.25):
        keep = random.bernoulli(k, 1 - rate, x.shape)
        return tnp.where(keep, x / (1 - rate), 0.0)

    out = same(dropout, random.key(13), np.ones(N))
    assert abs(out.mean() - 1.0) < 0.03
    assert abs((out == 0).mean() - 0.25) < 0.02


def test_multivariate_normal_via_cholesky_covariance():
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    L = np.linalg.cholesky(cov)
    z = same(lambda k: random.normal(k, (N, 2), dtype=np.float64) @ L.T, random.key(14))
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.07)
