"""jit's cache keys and what a compiled call may reuse: static arguments and dict keys keyed
by type as well as value, donated buffers that alias other arguments, closed-over constants
captured by value, the trace cache shared by every `jit(f)` of one function, and the bounded
in-memory caches."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp


# ---------------------------------------------------------------------------------------------
# Keys: type and value
# ---------------------------------------------------------------------------------------------

def test_equal_static_arguments_of_different_types_do_not_share_an_entry():
    def f(x, n):
        # the type of the static argument decides what is computed
        return x * n if isinstance(n, int) else x - n
    jf = T.jit(f, static_argnums=1)
    x = np.ones(3, np.float32)
    np.testing.assert_array_equal(jf(x, 2), np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(jf(x, 2.0), np.full(3, -1.0, np.float32))
    np.testing.assert_array_equal(jf(x, 2), np.full(3, 2.0, np.float32))
    assert "2 -> 2.0" in jf.cache_misses[0]
    # recursively inside tuples of static values, and True is not 1
    g = T.jit(lambda x, t: x + sum(10 if type(v) is float else 1 for v in t), static_argnums=1)
    np.testing.assert_array_equal(g(x, (1, (2,))), x + 2)
    np.testing.assert_array_equal(g(x, (1.0, (2,))), x + 11)
    np.testing.assert_array_equal(g(x, (True, (2,))), x + 2)
    assert len(g.cache_misses) == 2
    # by name as well
    h = T.jit(lambda x, n: x * n if isinstance(n, int) else x - n, static_argnames="n")
    np.testing.assert_array_equal(h(x, n=2), np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(h(x, n=2.0), np.full(3, -1.0, np.float32))


def test_dict_keys_of_different_types_do_not_share_an_entry():
    jf = T.jit(lambda d: {k: v * (2 if isinstance(k, int) else 3) for k, v in d.items()})
    x = np.ones(2, np.float32)
    r1 = jf({1: x})
    r2 = jf({1.0: x})
    # (the values prove separate entries; output dicts are rebuilt with sorted keys as JAX's,
    # whose key objects compare equal across 1 / 1.0 / True, so key types are not asserted)
    np.testing.assert_array_equal(r1[1], 2 * x)
    np.testing.assert_array_equal(r2[1.0], 3 * x)
    r3 = jf({True: x})                       # bool keys: neither the int nor the float entry
    np.testing.assert_array_equal(r3[True], 2 * x)
    np.testing.assert_array_equal(jf({1: x})[1], 2 * x)         # the first entry is kept
    assert "dictionary keys" in jf.cache_misses[0]
    # nested, and with other arguments
    g = T.jit(lambda a, d: a + d["p"][1] * (5 if isinstance(next(iter(d["p"])), float) else 1))
    np.testing.assert_array_equal(g(x, {"p": {1: x}}), 2 * x)
    np.testing.assert_array_equal(g(x, {"p": {1.0: x}}), 6 * x)


# ---------------------------------------------------------------------------------------------
# Closed-over constants: captured by value at trace time
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["contiguous", "strided", "0-d"])
def test_closed_over_arrays_are_captured_when_traced(layout):
    base = np.arange(12, dtype=np.float32)
    c = {"contiguous": base[:6], "strided": base[::2], "0-d": np.array(2.0, np.float32)}[layout]
    want = c.copy()
    jf = T.jit(lambda x: x * c)
    x = np.ones(6, np.float32)
    np.testing.assert_array_equal(jf(x), x * want)
    c[...] = -1                                  # mutated after compiling: not seen (as JAX)
    np.testing.assert_array_equal(jf(x), x * want)
    # neither through the pjit path (inside another transformation)
    np.testing.assert_array_equal(T.grad(lambda x: tnp.sum(jf(x)))(x),
                                  np.broadcast_to(want, (6,)))


def test_constants_are_copied_once_per_trace():
    big = np.arange(1000.0).reshape(10, 100)
    calls = []

    def f(x):
        calls.append(1)
        return x + big

    jf = T.jit(f)
    x = np.ones((10, 100))
    for _ in range(3):
        np.testing.assert_array_equal(jf(x), x + big)
    assert len(calls) == 1
    entry = next(iter(jf._cache.values()))
    (const,) = entry.closed.consts
    assert const is not big and not np.shares_memory(const, big)
    # the compiled function holds that very copy (not a second one)
    assert any(c is const for c in entry.exe.lowered.consts)


# ---------------------------------------------------------------------------------------------
# Donation: never into a buffer another argument shares
# ---------------------------------------------------------------------------------------------

def _copies(tree):
    return T.tree.map(np.copy, tree)


def _ema_step(params, ema, g):
    new = T.tree.map(lambda p, gg: p - 0.5 * gg, params, g)
    return new, T.tree.map(lambda e, p: 0.9 * e + 0.1 * p, ema, new)


def _tied(t, x):
    return {"w1": t["w1"] + x, "w2": t["w2"] * 2 + t["w1"][::-1]}


def _two(a, b):
    return a + 1, b[::-1] * 2


def test_donated_buffers_shared_with_other_arguments_are_not_donated():
    # EMA step with `ema = params`, both donated
    p = {"w": np.arange(4.0), "b": np.ones(2)}
    g = {"w": np.ones(4), "b": np.ones(2)}
    ref = _ema_step(_copies(p), _copies(p), g)
    jf = T.jit(_ema_step, donate_argnums=(0, 1))
    with pytest.warns(UserWarning, match=r"not donating args\[0\]\['b'\] \(shares memory with "
                                         r"args\[1\]\['b'\]\)"):
        out = jf(p, p, g)
    T.tree.map(np.testing.assert_array_equal, out, ref)
    T.tree.map(np.testing.assert_array_equal, p, {"w": np.arange(4.0), "b": np.ones(2)})
    # unshared arguments are donated as before
    p2, e2 = _copies(p), _copies(p)
    out = jf(p2, e2, g)
    T.tree.map(np.testing.assert_array_equal, out, ref)
    assert any(np.shares_memory(o, x) for o in T.tree.leaves(out)
               for x in T.tree.leaves((p2, e2)))
    # tied weights: one array twice in a donated tree
    w = np.arange(4.0)
    with pytest.warns(UserWarning, match=r"args\[0\]\['w1'\] \(shares memory with "
                                         r"args\[0\]\['w2'\]\)"):
        out = T.jit(_tied, donate_argnums=0)({"w1": w, "w2": w}, np.ones(4))
    T.tree.map(np.testing.assert_array_equal, out,
               _tied({"w1": w.copy(), "w2": w.copy()}, np.ones(4)))
    np.testing.assert_array_equal(w, np.arange(4.0))
    # the same array as a donated and a plain argument
    x = np.arange(5.0)
    with pytest.warns(UserWarning, match=r"args\[0\] \(shares memory with args\[1\]\)"):
        out = T.jit(_two, donate_argnums=0)(x, x)
    T.tree.map(np.testing.assert_array_equal, out, _two(np.arange(5.0), np.arange(5.0)))


def test_donation_with_overlapping_views_and_static_arguments():
    buf = np.arange(8.0)
    a, b = buf[0:6], buf[2:8]
    ref = _two(a.copy(), b.copy())
    jf = T.jit(lambda s, a, b: _two(a * s, b), static_argnums=0, donate_argnums=1)
    with pytest.warns(UserWarning, match=r"args\[1\] \(shares memory with args\[2\]\)"):
        out = jf(1.0, a, b)
    T.tree.map(np.testing.assert_array_equal, out, ref)
    np.testing.assert_array_equal(buf, np.arange(8.0))
    # disjoint slices of one buffer stay donated (no warning)
    a, b = buf[0:4].copy(), buf[4:8]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        base = np.arange(8.0)
        out = jf(1.0, base[0:4], base[4:8])
    np.testing.assert_array_equal(out[0], np.arange(4.0) + 1)
    np.testing.assert_array_equal(out[1], np.arange(4.0, 8.0)[::-1] * 2)
    assert np.shares_memory(out[0], base)


# ---------------------------------------------------------------------------------------------
# The trace cache lives on the function
# ---------------------------------------------------------------------------------------------

def test_inline_jit_of_one_function_traces_once():
    calls = []

    def f(x, n):
        calls.append(1)
        return x * n

    x = np.ones(3, np.float32)
    for _ in range(4):
        np.testing.assert_array_equal(T.jit(f, static_argnums=1)(x, 3), 3 * x)
    assert len(calls) == 1
    assert len(T.jit(f, static_argnums=1)._cache) == 1
    # other jit options are another cache; a new shape a new entry in the shared one
    np.testing.assert_array_equal(T.jit(f, static_argnames="n")(x, n=3), 3 * x)
    np.testing.assert_array_equal(T.jit(f, static_argnums=1)(np.ones(2, np.float32), 3),
                                  np.full(2, 3.0, np.float32))
    assert len(calls) == 3
    np.testing.assert_array_equal(T.jit(f, static_argnums=(1,))(x, 3), 3 * x)   # same options
    assert len(calls) == 3
    # the decorator form shares it too, and clear_cache clears it for all of them
    g = T.jit(f, static_argnums=1)
    g.clear_cache()
    np.testing.assert_array_equal(T.jit(f, static_argnums=1)(x, 3), 3 * x)
    assert len(calls) == 4


def test_a_new_closure_is_a_new_function_and_functions_are_collected():
    import gc
    import weakref
    x = np.ones(3, np.float32)
    refs = []
    for k in range(3):
        def f(x, k=k):
            return x + k
        refs.append(weakref.ref(f))
        np.testing.assert_array_equal(T.jit(f)(x), x + k)     # each closure: its own result
    del f
    gc.collect()
    assert all(r() is None for r in refs)                       # the cache keeps no function

    calls = []

    def h(x):
        calls.append(1)
        return x * 2
    # bound methods, partials and other callables are cached on their object as well
    import functools
    p = functools.partial(h)
    for _ in range(3):
        T.jit(p)(x)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Bounded in-memory caches, and clearing them frees the compiled code's objects
# ---------------------------------------------------------------------------------------------

def test_memory_caches_are_bounded_and_clear_releases_them(monkeypatch):
    import gc
    import sys
    import weakref
    from transforms.backend import numba as B
    from transforms.backend.numba import cache
    monkeypatch.setenv("NUMBAX_MEMORY_CACHE_SIZE", "3")
    T.clear_caches()

    def f(x):
        return tnp.sin(x) * 2 + 1

    jf = T.jit(f)
    exes = []
    for n in range(1, 9):
        x = np.linspace(0, 1, n)
        np.testing.assert_allclose(jf(x), np.sin(x) * 2 + 1)
        exes.append(weakref.ref(next(reversed(jf._cache.values())).exe))
    gc.collect()
    generated = [m for m in sys.modules if m.startswith("_numbax_generated.")]
    assert len(jf._cache) == 3 and len(jf._fast) <= 3 and len(jf._fast_tree) <= 3
    assert len(B._by_key) <= 3 and len(B._by_identity) <= 3 and len(cache._modules) <= 3
    assert len(generated) <= 3
    assert sum(r() is not None for r in exes) <= 3
    # the newest entries are the ones kept, and still right
    np.testing.assert_allclose(jf(np.linspace(0, 1, 8)), np.sin(np.linspace(0, 1, 8)) * 2 + 1)
    T.clear_caches()
    gc.collect()
    assert not jf._cache and not B._by_key and not B._by_identity and not cache._modules
    assert not [m for m in sys.modules if m.startswith("_numbax_generated.")]
    assert all(r() is None for r in exes)
    # and everything recompiles (from the disk cache) afterwards
    np.testing.assert_allclose(jf(np.linspace(0, 1, 3)), np.sin(np.linspace(0, 1, 3)) * 2 + 1)


def test_memory_cache_size_must_be_a_positive_integer(monkeypatch):
    monkeypatch.setenv("NUMBAX_MEMORY_CACHE_SIZE", "lots")
    with pytest.raises(ValueError, match="NUMBAX_MEMORY_CACHE_SIZE"):
        T.jit(lambda x: x + 1)(np.ones(2))
