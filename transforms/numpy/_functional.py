"""Building arrays from functions and index expressions: `vectorize`, `apply_along_axis`,
`apply_over_axes`, `fromfunction` (all through `vmap`, as JAX), the index helpers `mgrid`,
`ogrid`, `s_`, `index_exp`, and NumPy's I/O and printing names (`frombuffer`, `fromiter`,
`fromstring`, `fromfile`, `save`, `savez`, `load`, `array_repr`, `array_str`, `einsum_path`),
which work on concrete arrays.
"""
from __future__ import annotations

import functools
import re

import numpy as np

from ..core import Tracer, concrete_or_error, get_aval
from . import _ops
from ._ops import asarray
from ._shape_ops import broadcast_to, moveaxis

# NumPy's index-expression helpers: they build Python index objects or concrete grids (shapes
# come from the slices, so nothing here is ever traced), exactly as jnp's
mgrid, ogrid, s_, index_exp = np.mgrid, np.ogrid, np.s_, np.index_exp

# I/O on concrete arrays: NumPy's own functions (a traced argument raises
# TracerArrayConversionError, as JAX cannot save a tracer either)
frombuffer, fromiter, fromstring, fromfile = np.frombuffer, np.fromiter, np.fromstring, \
    np.fromfile
save, savez, load = np.save, np.savez, np.load


def _vmap():
    from ..interpreters.batching import vmap   # lazy: batching imports transforms.numpy
    return vmap


def _concrete_array(a, what):
    return np.asarray(concrete_or_error(a, what) if isinstance(a, Tracer) else a)


def array_repr(arr, max_line_width=None, precision=None, suppress_small=None):
    """Mirrors `numpy.array_repr` of a concrete array (a traced one gives the tracer's repr).
    Not differentiable (returns a string)."""
    if isinstance(arr, Tracer) and arr.concrete_value() is None:
        return repr(arr)
    return np.array_repr(_concrete_array(arr, "array_repr"), max_line_width, precision,
                         suppress_small)


def array_str(a, max_line_width=None, precision=None, suppress_small=None):
    """Mirrors `numpy.array_str` of a concrete array (a traced one gives the tracer's str).
    Not differentiable (returns a string)."""
    if isinstance(a, Tracer) and a.concrete_value() is None:
        return str(a)
    return np.array_str(_concrete_array(a, "array_str"), max_line_width, precision,
                        suppress_small)


def einsum_path(subscripts, *operands, optimize="greedy"):
    """Mirrors `numpy.einsum_path`: NumPy's contraction order for the operands' shapes (traced
    operands are fine: only shapes and dtypes are used). Returns `(path, description)`."""
    stand_ins = []
    for op in operands:
        if isinstance(op, str):     # the interleaved form passes subscripts among operands
            stand_ins.append(op)
            continue
        av = get_aval(asarray(op))
        stand_ins.append(np.broadcast_to(np.zeros((), av.dtype), av.shape))  # no memory
    return np.einsum_path(subscripts, *stand_ins, optimize=optimize)


def fromfunction(function, shape, *, dtype=float, **kwargs):
    """Mirrors `jax.numpy.fromfunction`: element `[i, j, ...]` is `function(i, j, ...)`. As in
    JAX, `function` is mapped with `vmap` over index vectors (so it is traced on scalars and
    may use `lax.cond` etc.); for elementwise functions this equals NumPy's call on index
    grids. `shape` is static; compiles and batches."""
    shape = tuple(int(s) for s in shape)
    f = functools.partial(function, **kwargs) if kwargs else function
    vmap = _vmap()
    nd = len(shape)
    for i in range(nd - 1, -1, -1):
        f = vmap(f, in_axes=tuple(0 if j == i else None for j in range(nd)))
    return f(*(np.arange(s, dtype=dtype) for s in shape))


def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """Mirrors `jax.numpy.apply_along_axis` / `numpy.apply_along_axis`: `func1d` applied to
    every 1-D slice along `axis`, its result's dimensions put in place of `axis`. Implemented
    with `vmap` over the other axes (as JAX), so `func1d` is traced once; differentiable when
    `func1d` is, and compiles and batches."""
    a = asarray(arr)
    nd = get_aval(a).ndim
    if not -nd <= axis < nd:
        raise np.exceptions.AxisError(f"apply_along_axis: axis {axis} is out of bounds for "
                                      f"array of dimension {nd}")
    axis %= nd
    f = functools.partial(_call_1d, func1d, args, kwargs)
    vmap = _vmap()
    for _ in range(nd - 1):
        f = vmap(f)
    out = f(moveaxis(a, axis, -1))
    r = get_aval(out).ndim - (nd - 1)       # the dimensions func1d returned
    if r == 0:
        return out
    src = list(range(nd - 1, nd - 1 + r))
    return moveaxis(out, src, list(range(axis, axis + r)))


def _call_1d(func1d, args, kwargs, x):
    return asarray(func1d(x, *args, **kwargs))


def apply_over_axes(func, a, axes):
    """Mirrors `jax.numpy.apply_over_axes` / `numpy.apply_over_axes`: `a = func(a, axis)` for
    each axis in turn, re-inserting the axis when `func` removes it (so the ndim is kept).
    Differentiable when `func` is; compiles and batches."""
    a = asarray(a)
    nd = get_aval(a).ndim
    for ax in np.atleast_1d(axes):
        ax = int(ax) % nd if nd else int(ax)
        res = asarray(func(a, ax))
        rnd = get_aval(res).ndim
        if rnd == nd - 1:
            res = _ops.expand_dims(res, ax)
        elif rnd != nd:
            raise ValueError("apply_over_axes: function is not returning an array of the "
                             "correct shape")
        a = res
    return a


# ---------------------------------------------------------------------------------------------
# vectorize
# ---------------------------------------------------------------------------------------------

_DIMS = r"\((?:\w+(?:,\s*\w+)*)?\)"
_SIGNATURE = re.compile(rf"^{_DIMS}(?:,\s*{_DIMS})*->{_DIMS}(?:,\s*{_DIMS})*$")


def _parse_signature(signature):
    sig = signature.replace(" ", "")
    if not _SIGNATURE.match(sig):
        raise ValueError(f"vectorize: not a valid gufunc signature: {signature!r}")
    ins, outs = sig.split("->")

    def parts(s):
        return [tuple(d for d in m.split(",") if d) for m in re.findall(r"\(([^)]*)\)", s)]
    return parts(ins), parts(outs)


class vectorize:  # noqa: N801 - NumPy's name
    """Mirrors `jax.numpy.vectorize`: `pyfunc` applied elementwise over broadcast arguments
    (or, with a gufunc `signature` like `'(m,n),(n)->(m)'`, over their loop dimensions). As in
    JAX it is built on `vmap`, so `pyfunc` is traced once on the core shapes (not called per
    element as NumPy does); it differentiates when `pyfunc` does, and compiles and batches.
    `excluded` (positions or keyword names) are passed through unchanged; other keyword
    arguments are passed through too (not vectorized). NumPy's `otypes`/`cache` are not
    supported."""

    def __init__(self, pyfunc, *, excluded=frozenset(), signature=None):
        self.pyfunc = pyfunc
        self.excluded = frozenset(excluded)
        self.signature = signature
        self._sig = _parse_signature(signature) if signature is not None else None
        functools.update_wrapper(self, pyfunc, updated=())
        if not getattr(pyfunc, "__doc__", None):
            self.__doc__ = type(self).__doc__

    def __call__(self, *args, **kwargs):
        static = {i: a for i, a in enumerate(args) if i in self.excluded}
        mapped = [asarray(a) for i, a in enumerate(args) if i not in self.excluded]
        positions = [i for i in range(len(args)) if i not in self.excluded]

        def call(*xs):
            full = list(args)
            for i, x in zip(positions, xs):
                full[i] = x
            for i, v in static.items():
                full[i] = v
            return self.pyfunc(*full, **kwargs)

        if not mapped:
            return self.pyfunc(*args, **kwargs)
        if self._sig is None:
            core = [()] * len(mapped)
        else:
            core, _ = self._sig
            if len(core) != len(mapped):
                raise TypeError(f"vectorize: signature {self.signature!r} has {len(core)} "
                                f"input(s), got {len(mapped)} vectorized argument(s)")
        sizes = {}
        loops = []
        for k, (x, dims) in enumerate(zip(mapped, core)):
            shape = get_aval(x).shape
            if len(shape) < len(dims):
                raise ValueError(f"vectorize: argument {positions[k]} has shape {shape}, too "
                                 f"few dimensions for its core dimensions {dims}")
            cshape = shape[len(shape) - len(dims):]
            for d, s in zip(dims, cshape):
                if sizes.setdefault(d, s) != s:
                    raise ValueError(f"vectorize: inconsistent size for core dimension "
                                     f"{d!r}: {sizes[d]} vs {s}")
            loops.append(shape[:len(shape) - len(dims)])
        loop = np.broadcast_shapes(*loops)
        xs = [broadcast_to(x, loop + get_aval(x).shape[len(ls):])
              for x, ls in zip(mapped, loops)]
        f = call
        vmap = _vmap()
        for _ in loop:
            f = vmap(f)
        return f(*xs)
