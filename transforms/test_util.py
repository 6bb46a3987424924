"""Testing helpers: numerical gradient checks, as `jax.test_util.check_grads`.

    from transforms.test_util import check_grads
    check_grads(f, (x, y), order=2)              # fwd and rev, up to second order

`check_jvp` compares forward-mode derivatives with central finite differences along a random
direction; `check_vjp` checks reverse mode against forward mode through the defining identity
`<vjp(ct), t> == <ct, jvp(t)>` for random `t` and `ct`. `check_grads` applies both and then, for
`order > 1`, checks the derivative functions themselves (the JVP as a function of primals and
tangents, the VJP as a function of the primals), so second order tests forward-over-forward,
forward-over-reverse and reverse-over-reverse.

Arguments and outputs may be pytrees. Only floating-point leaves are perturbed; integer leaves
are held fixed. Defaults are meant for float64 inputs; float32 gets looser tolerances.
"""
from __future__ import annotations

import numpy as np

from . import tree as tree_util
from .api import jvp, vjp

__all__ = ["check_grads", "check_jvp", "check_vjp", "numerical_jvp"]

_EPS = {np.dtype(np.float64): 1e-4, np.dtype(np.float32): 1e-2, np.dtype(np.float16): 1e-1}
_TOL = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 2e-2, np.dtype(np.float16): 1e-1}
_EPS.update({np.dtype(np.complex128): 1e-4, np.dtype(np.complex64): 1e-2})
_TOL.update({np.dtype(np.complex128): 1e-5, np.dtype(np.complex64): 2e-2})


def _is_float(x):
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _to_np(x):
    if hasattr(x, "concrete_value") and not isinstance(x, np.ndarray):
        v = x.concrete_value()
        if v is not None:
            return np.asarray(v)
    return np.asarray(x)


def _leaves(t):
    return [_to_np(x) for x in tree_util.leaves(t)]


def _lowest_precision(args):
    dts = [np.asarray(x).dtype for x in tree_util.leaves(args) if _is_float(x)]
    if not dts:
        return np.dtype(np.float64)
    return max(dts, key=lambda d: np.finfo(d).eps)


def _rand_like(rng, tree):
    """A random tree shaped like `tree`: normal for float leaves, zeros for the others."""
    def one(x):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.complexfloating):    # both real directions
            return (rng.standard_normal(x.shape)
                    + 1j * rng.standard_normal(x.shape)).astype(x.dtype)
        if np.issubdtype(x.dtype, np.inexact):
            return rng.standard_normal(x.shape).astype(x.dtype)
        return np.zeros(x.shape, x.dtype)
    return tree_util.map(one, tree)


def _axpy(a, x, y):
    """y + a * x on float leaves (int leaves of y are kept)."""
    def one(xl, yl):
        yl = np.asarray(yl)
        if not np.issubdtype(yl.dtype, np.inexact):
            return yl
        return (yl + a * np.asarray(xl)).astype(yl.dtype)
    return tree_util.map(one, x, y)


def _wide(x):
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def _inner(a, b):
    """Re(sum(a * b)): the bilinear pairing of JAX's complex convention (no conjugation)."""
    total = 0.0
    for x, y in zip(_leaves(a), _leaves(b)):
        if np.issubdtype(x.dtype, np.inexact) and np.issubdtype(y.dtype, np.inexact):
            total += float(np.real(np.sum(_wide(x).ravel() * _wide(y).ravel())))
    return total


def _assert_close(actual, expected, atol, rtol, msg):
    la, le = _leaves(actual), _leaves(expected)
    sa, se = tree_util.structure(actual), tree_util.structure(expected)
    if len(la) != len(le):
        raise AssertionError(f"{msg}: structures differ: {sa} vs {se}")
    for i, (a, e) in enumerate(zip(la, le)):
        if a.shape != e.shape:
            raise AssertionError(f"{msg}: leaf {i} shapes differ: {a.shape} vs {e.shape}")
        if not np.issubdtype(e.dtype, np.inexact):
            continue
        np.testing.assert_allclose(_wide(a), _wide(e), atol=atol,
                                   rtol=rtol, err_msg=f"{msg} (leaf {i})")


def _call(f, args):
    """`f(*args)` with the arguments wrapped as (concrete) tracers, so that functions written
    for transforms (`x.at[...]`, tracer methods) run; the arithmetic is the eager NumPy one."""
    zeros = tree_util.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), args)
    return jvp(f, tuple(args), tuple(zeros))[0]


def numerical_jvp(f, primals, tangents, eps):
    """Central finite difference of `f` at `primals` along `tangents`."""
    f_pos = _call(f, _axpy(eps, tangents, primals))
    f_neg = _call(f, _axpy(-eps, tangents, primals))

    def diff(p, n):
        p, n = _to_np(p), _to_np(n)
        if not np.issubdtype(p.dtype, np.inexact):
            return np.zeros(p.shape, p.dtype)
        return ((_wide(p) - _wide(n)) / (2 * eps)).astype(p.dtype)
    return tree_util.map(diff, f_pos, f_neg)


def _defaults(args, atol, rtol, eps):
    dt = _lowest_precision(args)
    tol = _TOL.get(dt, 1e-5)
    return (tol if atol is None else atol, tol if rtol is None else rtol,
            _EPS.get(dt, 1e-4) if eps is None else eps)


def check_jvp(f, f_jvp, args, atol=None, rtol=None, eps=None, err_msg="", rng=None):
    """Forward mode against central finite differences along a random direction."""
    args = tuple(args)
    atol, rtol, eps = _defaults(args, atol, rtol, eps)
    rng = np.random.default_rng(0) if rng is None else rng
    tangent = _rand_like(rng, args)
    v_out, t_out = f_jvp(args, tangent)
    v_expected = _call(f, args)
    _assert_close(v_out, v_expected, atol, rtol, f"{err_msg or 'JVP'} primal output")
    t_expected = numerical_jvp(f, args, tangent, eps)
    _assert_close(t_out, t_expected, atol, rtol, f"{err_msg or 'JVP'} tangent vs finite "
                  "differences")


def check_vjp(f, f_vjp, args, atol=None, rtol=None, eps=None, err_msg="", rng=None):
    """Reverse mode against forward mode: `<vjp(ct), t> == <ct, jvp(t)>`, and forward mode
    against finite differences along the same direction."""
    args = tuple(args)
    atol, rtol, eps = _defaults(args, atol, rtol, eps)
    rng = np.random.default_rng(1) if rng is None else rng
    v_out, vjp_fn = f_vjp(*args)
    _assert_close(v_out, _call(f, args), atol, rtol, f"{err_msg or 'VJP'} primal output")
    tangent = _rand_like(rng, args)
    ct = _rand_like(rng, tree_util.map(_to_np, v_out))
    ct_in = vjp_fn(ct)
    if not isinstance(ct_in, tuple) or len(ct_in) != len(args):
        raise AssertionError(f"{err_msg or 'VJP'}: vjp_fn returned {type(ct_in).__name__} "
                             f"of length {len(ct_in) if isinstance(ct_in, tuple) else '?'} "
                             f"for {len(args)} primals")
    for a, c in zip(args, ct_in):
        if tree_util.structure(a) != tree_util.structure(c):
            raise AssertionError(f"{err_msg or 'VJP'}: cotangent structure "
                                 f"{tree_util.structure(c)} != primal structure "
                                 f"{tree_util.structure(a)}")
    t_out = numerical_jvp(f, args, tangent, eps)
    lhs = _inner(ct_in, tangent)           # <vjp(ct), t>
    rhs = _inner(ct, t_out)                # <ct, J t> by finite differences
    scale = max(1.0, abs(lhs), abs(rhs))
    np.testing.assert_allclose(lhs, rhs, atol=atol * scale, rtol=rtol,
                               err_msg=f"{err_msg or 'VJP'}: <vjp(ct), t> != <ct, J t>")
    # and the exact identity against our own forward mode
    _, t_jvp = jvp(f, args, tangent)
    rhs2 = _inner(ct, t_jvp)
    np.testing.assert_allclose(lhs, rhs2, atol=atol * scale, rtol=rtol,
                               err_msg=f"{err_msg or 'VJP'}: <vjp(ct), t> != <ct, jvp(t)>")


def check_grads(f, args, order=2, modes=("fwd", "rev"), atol=None, rtol=None, eps=None):
    """Check derivatives of `f` at `args` numerically up to `order`, in `modes`.

    Raises `AssertionError` naming the mode chain (e.g. "VJP of JVP") that disagrees.
    """
    args = tuple(args)
    if isinstance(modes, str):
        modes = (modes,)
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"unknown mode {m!r}; use 'fwd' and/or 'rev'")
    rng = np.random.default_rng(0)

    def _check(f, args, order, msg):
        if "fwd" in modes:
            fwd_msg = f"JVP of {msg}" if msg else "JVP"
            f_jvp = lambda primals, tangents: jvp(f, tuple(primals), tuple(tangents))  # noqa: E731
            check_jvp(f, f_jvp, args, atol, rtol, eps, fwd_msg, rng)
            if order > 1:
                _check(lambda primals, tangents: jvp(f, tuple(primals), tuple(tangents)),
                       (args, _rand_like(rng, args)), order - 1, fwd_msg)
        if "rev" in modes:
            rev_msg = f"VJP of {msg}" if msg else "VJP"
            check_vjp(f, lambda *a: vjp(f, *a), args, atol, rtol, eps, rev_msg, rng)
            if order > 1:
                def f_vjp(*a):
                    out, vjp_fn = vjp(f, *a)
                    return vjp_fn(out)
                _check(f_vjp, args, order - 1, rev_msg)

    _check(f, args, order, "")
