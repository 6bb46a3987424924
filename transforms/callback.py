"""`pure_callback`: call a Python (NumPy) function from traced code and use its results.

    y = T.pure_callback(lambda x: scipy.special.j0(x), T.ShapeDtypeStruct(x.shape, x.dtype), x)

As `jax.pure_callback`: eagerly the callback runs at once; under `jit` the compiled code calls
back into Python (through `numba.objmode`) with the runtime values; under `vmap` it follows
`vmap_method` ("sequential": once per batch element, results stacked; "expand_dims": once, with
a leading axis of size 1 on the unbatched operands; "broadcast_all": once, every operand
broadcast to the batch). It is not differentiable (wrap it in `custom_jvp`/`custom_vjp`), and
since it is declared pure, a call whose results are unused may be dropped.
"""
from __future__ import annotations


import numpy as np

from . import tree as tree_util
from ._keyed_registry import KeyedRegistry
from .core import Primitive, ShapedArray, Tracer, as_leaf, get_aval

__all__ = ["pure_callback", "pure_callback_p"]

pure_callback_p = Primitive("pure_callback", multiple_results=True)

_VMAP_METHODS = ("sequential", "sequential_unrolled", "expand_dims", "broadcast_all",
                 "legacy_vectorized")


class _FlatCallback:
    """The user's callback on flat arrays: rebuilds `(args, kwargs)`, calls, flattens and
    checks the results against the declared shapes and dtypes."""

    def __init__(self, fn, treedef, static, dyn_pos, out_tree, out_avals):
        self.fn, self.treedef, self.static, self.dyn_pos = fn, treedef, static, dyn_pos
        self.out_tree, self.out_avals = out_tree, tuple(out_avals)

    def __call__(self, *vals):
        leaves = list(self.static)
        for p, v in zip(self.dyn_pos, vals):
            leaves[p] = v
        args, kwargs = tree_util.unflatten(self.treedef, leaves)
        out = self.fn(*args, **kwargs)
        flat, tree = tree_util.flatten(out)
        if tree != self.out_tree:
            raise TypeError(f"pure_callback: the callback returned a value of structure {tree}, "
                            f"but result_shape_dtypes has structure {self.out_tree}")
        res = []
        for i, (r, a) in enumerate(zip(flat, self.out_avals)):
            r = np.asarray(r)
            if r.shape != a.shape:
                raise ValueError(f"pure_callback: result {i} of the callback has shape "
                                 f"{r.shape}, but result_shape_dtypes declares {a.shape}")
            if r.dtype != a.dtype:
                if not np.can_cast(r.dtype, a.dtype, "same_kind"):
                    raise TypeError(f"pure_callback: result {i} of the callback has dtype "
                                    f"{r.dtype}, but result_shape_dtypes declares {a.dtype}")
                r = r.astype(a.dtype)
            res.append(r)
        return res


class _Sequential:
    """Run `inner` once per batch element (batched operands have their batch axis first) and
    stack the results."""

    def __init__(self, inner, batched, size):
        self.inner, self.batched, self.size = inner, tuple(batched), size

    def __call__(self, *args):
        outs = [self.inner(*[a[i] if b else a for a, b in zip(args, self.batched)])
                for i in range(self.size)]
        return [np.stack([o[j] for o in outs]) for j in range(len(outs[0]))] if outs else []


def _impl(*args, callback, result_avals, vmap_method):
    del vmap_method
    out = callback(*[np.asarray(a) for a in args])
    return [np.asarray(o, a.dtype).reshape(a.shape) for o, a in zip(out, result_avals)]


pure_callback_p.def_impl(_impl)
pure_callback_p.def_abstract_eval(lambda *avals, callback, result_avals, vmap_method:
                                  list(result_avals))


def _jvp(primals, tangents, **params):
    raise ValueError("Pure callbacks do not support JVP. Please use `transforms.custom_jvp` to "
                     "use callbacks while taking gradients.")


pure_callback_p.def_jvp(_jvp)


def _batch(args, dims, *, callback, result_avals, vmap_method):
    from .interpreters.batching import bdim_at_front, broadcast_batched, moveaxis
    from .lax import reshape
    if vmap_method not in _VMAP_METHODS:
        raise NotImplementedError(
            "vmap is only supported for pure_callback when vmap_method is one of "
            f"{', '.join(repr(m) for m in _VMAP_METHODS[:-1])}. Got vmap_method={vmap_method!r}.")
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    out_avals = tuple(ShapedArray((size,) + a.shape, a.dtype) for a in result_avals)
    if vmap_method in ("sequential", "sequential_unrolled"):
        moved = [a if d is None else moveaxis(a, d, 0) for a, d in zip(args, dims)]
        seq = _Sequential(callback, [d is not None for d in dims], size)
        outs = pure_callback_p.bind(*moved, callback=seq, result_avals=out_avals,
                                    vmap_method=vmap_method)
        return outs, [0] * len(outs)
    if vmap_method == "expand_dims":
        moved = [reshape(a, (1,) + get_aval(a).shape) if d is None else moveaxis(a, d, 0)
                 for a, d in zip(args, dims)]
    else:   # broadcast_all, legacy_vectorized
        moved = [broadcast_batched(a, size, 0) if d is None else bdim_at_front(a, d, size)
                 for a, d in zip(args, dims)]
    outs = pure_callback_p.bind(*moved, callback=_Vectorized(callback, size),
                                result_avals=out_avals, vmap_method=vmap_method)
    return outs, [0] * len(outs)


class _Vectorized:
    """The callback called once on batched operands: it must return the batched results
    (JAX's contract for "expand_dims"/"broadcast_all"); only the leading size is checked."""

    def __init__(self, inner, size):
        self.inner, self.size = inner, size

    def __call__(self, *args):
        inner = self.inner
        while isinstance(inner, _Vectorized):  # nested vmaps: the innermost does the checks
            inner = inner.inner
        if isinstance(inner, _FlatCallback):
            leaves = list(inner.static)
            for p, v in zip(inner.dyn_pos, args):
                leaves[p] = v
            a, k = tree_util.unflatten(inner.treedef, leaves)
            flat, _ = tree_util.flatten(inner.fn(*a, **k))
        else:
            flat = inner(*args)
        return [np.asarray(o) for o in flat]


pure_callback_p.def_batch(_batch)


def _is_dynamic(x):
    return isinstance(x, (Tracer, np.ndarray, np.generic, bool, int, float, complex))


def _result_avals(result_shape_dtypes):
    flat, tree = tree_util.flatten(result_shape_dtypes)
    avals = []
    for i, s in enumerate(flat):
        try:
            avals.append(ShapedArray(tuple(int(d) for d in s.shape), np.dtype(s.dtype)))
        except (AttributeError, TypeError):
            raise TypeError(f"pure_callback: result_shape_dtypes leaf {i} must have .shape and "
                            f".dtype (e.g. a ShapeDtypeStruct), got {type(s).__name__}") from None
    return tree, avals


def pure_callback(callback, result_shape_dtypes, *args, sharding=None, vmap_method=None,
                  **kwargs):
    """Call the pure Python function `callback(*args, **kwargs)` on the runtime NumPy values of
    `args`/`kwargs` (pytrees) and return its results, shaped as `result_shape_dtypes` (a pytree
    of objects with `.shape` and `.dtype`, e.g. `ShapeDtypeStruct`s), under any transform (see
    the module docstring). `vmap_method` is required under `vmap` (as in JAX):
    "sequential", "sequential_unrolled", "expand_dims" or "broadcast_all". `sharding` is
    accepted and ignored (one device). Results whose dtype differs from the declared one are
    cast if the cast is safe (same kind), else a TypeError is raised."""
    del sharding
    if not callable(callback):
        raise TypeError(f"pure_callback: callback must be callable, got {type(callback).__name__}")
    if vmap_method is not None and vmap_method not in _VMAP_METHODS:
        raise ValueError(f"pure_callback: vmap_method must be one of {_VMAP_METHODS}, got "
                         f"{vmap_method!r}")
    out_tree, out_avals = _result_avals(result_shape_dtypes)
    leaves, treedef = tree_util.flatten((args, kwargs))
    dyn_pos = [i for i, x in enumerate(leaves) if _is_dynamic(x)]
    dyn_set = set(dyn_pos)
    static = [None if i in dyn_set else x for i, x in enumerate(leaves)]
    dyn = [as_leaf(leaves[i]) for i in dyn_pos]
    flat_cb = _FlatCallback(callback, treedef, static, dyn_pos, out_tree, out_avals)
    _register_lowering()
    outs = pure_callback_p.bind(*dyn, callback=flat_cb, result_avals=tuple(out_avals),
                                vmap_method=vmap_method)
    return tree_util.unflatten(out_tree, list(outs))


# --------------------------------------------------------------------------------------------
# Compiled code: an object-mode helper calls `dispatch(key, *operands)`, which returns the
# results as flat C-contiguous arrays of the declared dtypes; the helper reshapes them.

_CALLBACKS = KeyedRegistry()
_REGISTERED = []
register = _CALLBACKS.register


def dispatch(key, *arrays):
    """Entry point of compiled code (inside `numba.objmode`): run callback `key`, return its
    results flattened."""
    fn, avals = _CALLBACKS[key]
    outs = fn(*arrays)
    res = []
    for o, a in zip(outs, avals):
        o = np.asarray(o)
        if o.shape != a.shape:
            raise ValueError(f"pure_callback: a callback result has shape {o.shape}, expected "
                             f"{a.shape}")
        res.append(np.ascontiguousarray(o, dtype=a.dtype).reshape(-1))
    return tuple(res)


def _lower(ctx, eqn):
    """One object-mode helper per call site; the callback is found by a registry key (a
    literal of the generated source), as `debug.callback` does."""
    avals = eqn.params["result_avals"]
    key = register((eqn.params["callback"], avals))
    ctx.add_helper("pure_callback_dispatch",
                   "from transforms.callback import dispatch as _pcb_dispatch")
    names = [ctx.array(i) for i in range(len(eqn.invars))]
    params = ", ".join(f"x{i}" for i in range(len(names)))
    outs = ", ".join(f"o{j}" for j in range(len(avals)))
    specs = ", ".join(f"o{j}='{ctx.numba_type(a.dtype)[len('_t.'):]}[::1]'"
                      for j, a in enumerate(avals))
    helper = f"_pcb_call_{key}"
    lines = ["@_njit(cache=True)", f"def {helper}({params}):"]
    if avals:
        lines += [f"    with _numba.objmode({specs}):",
                  f"        {outs}, = _pcb_dispatch({key}{''.join(f', x{i}' for i in range(len(names)))})",
                  f"    return ({outs},)"]
    else:
        lines += ["    with _numba.objmode():",
                  f"        _pcb_dispatch({key}{''.join(f', x{i}' for i in range(len(names)))})",
                  "    return ()"]
    ctx.add_helper(helper, "\n".join(lines))
    res = ctx.fresh("_pcb")
    ctx.emit(f"{res} = {helper}({', '.join(names)})")
    for j, a in enumerate(avals):
        shape = tuple(a.shape) if a.shape else (1,)
        nd = ctx.fresh("_pcb")
        ctx.emit(f"{nd} = {res}[{j}].reshape({shape!r})")
        if a.shape:
            ctx.set_out(j, nd)
        else:
            ctx.set_out_scalar(j, f"{nd}[0]")


def _register_lowering():
    """Declare the Numba lowering the first time `pure_callback` is used (the backend is not
    imported by `import transforms`)."""
    if not _REGISTERED:
        from .backend.numba.registry import register_lowering
        register_lowering("pure_callback", calls_blas=True)(_lower)  # objmode: no prange beside it
        _REGISTERED.append(True)
