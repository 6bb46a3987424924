"""The user-facing transforms: grad, value_and_grad, vjp, jvp, linearize, jacfwd, jacrev,
hessian, make_jaxpr, device_get. (vmap lives in interpreters/batching, jit in jit.py.)"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from . import tree as tree_util
from .core import (ShapeAndDtype, ShapedArray, Tracer, as_leaf, current_trace, get_aval,
                   is_float_dtype)
from .errors import NonDifferentiableError
from .interpreters.jvp import jvp_flat
from .interpreters.partial_eval import linearize_flat, trace_to_jaxpr, weakened
from .interpreters.transpose import UndefinedPrimal, backward_pass
from .ir import ClosedJaxpr
from .source_info import where


def _writeable(x):
    """Derivatives are often broadcasts (read-only views with zero strides) in eager mode;
    hand users ordinary arrays, as `numpy` would."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return np.array(x)
    return x


def _normalize_argnums(argnums, nargs, fname):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{fname}: argnums {argnums} out of range for {nargs} positional "
                             "arguments")
    return single, tuple(a % nargs for a in nums)


def _zeros_like(x):
    from .lax import zeros_like_aval
    return zeros_like_aval(get_aval(x))


def _unwrap_aux(aux, trace):
    """Aux outputs are returned as values, without derivative information (as JAX)."""
    def one(x):
        while isinstance(x, Tracer) and x._trace.level >= trace.level:
            from .interpreters.jvp import JVPTracer
            if isinstance(x, JVPTracer):
                x = x.primal
            else:
                break
        return x
    return tree_util.map(one, aux)


# ---------------------------------------------------------------------------------------------
# vjp / grad
# ---------------------------------------------------------------------------------------------

class _VJPPullback:
    """The body of the function `vjp` returns, with the residuals as leading arguments."""

    def __init__(self, jaxpr, out_tree, out_avals, out_nz, in_avals, diff, in_tree):
        self.jaxpr, self.out_tree, self.out_avals, self.out_nz = jaxpr, out_tree, out_avals, out_nz
        self.in_avals, self.diff, self.in_tree = in_avals, diff, in_tree

    def __call__(self, *args):
        *consts, ct = args
        out_tree, out_avals, out_nz = self.out_tree, self.out_avals, self.out_nz
        in_avals, diff, in_tree = self.in_avals, self.diff, self.in_tree
        ct_flat, ct_tree = tree_util.flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(f"vjp: cotangent structure {ct_tree} does not match the output "
                             f"structure {out_tree}")
        paths = [p for p, _ in tree_util.leaves_with_path(ct)]
        for path, c, a in zip(paths, ct_flat, out_avals):
            ca = get_aval(as_leaf(c))
            if ca.shape != a.shape:
                raise ValueError(f"vjp: cotangent of shape {ca.shape} for an output of "
                                 f"shape {a.shape}{tree_util.keystr(path)}")
            # as JAX: a float output needs a float cotangent (any precision: it is cast), a
            # real output a real one
            if is_float_dtype(a.dtype) and (
                    not is_float_dtype(ca.dtype) or (np.issubdtype(ca.dtype, np.complexfloating)
                                                     and not np.issubdtype(a.dtype,
                                                                           np.complexfloating))):
                raise ValueError(f"vjp: a {ca.dtype.name} cotangent for a {a.dtype.name} output"
                                 f"{tree_util.keystr(path)}: the cotangent must have the "
                                 "output's dtype")
        cts = [as_leaf(c) for c, nz in zip(ct_flat, out_nz) if nz]
        args = [UndefinedPrimal(a) for a, d in zip(in_avals, diff) if d]
        res = backward_pass(self.jaxpr, consts, args, cts)
        it = iter(res)
        full = []
        for a, d in zip(in_avals, diff):
            c = next(it) if d else None
            if c is None:
                from .lax import zeros_like_aval
                c = zeros_like_aval(a)
            elif get_aval(c).dtype != a.dtype:
                from .lax import convert_element_type
                c = convert_element_type(c, a.dtype)
            full.append(_writeable(c))
        return tuple(tree_util.unflatten(in_tree, full))


def _vjp(fun, primals, has_aux, kwargs=None, check_scalar=None):
    kwargs = kwargs or {}
    flat, in_tree = tree_util.flatten(tuple(primals))
    flat = [as_leaf(x) for x in flat]
    diff = [is_float_dtype(get_aval(x).dtype) for x in flat]
    store = {}

    def flat_fun(*args):
        out = fun(*tree_util.unflatten(in_tree, list(args)), **kwargs)
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("a function with has_aux=True must return a pair (out, aux), "
                                f"got {type(out).__name__}")
            out, aux = out
            store["aux"] = _unwrap_aux(aux, current_trace())
        if check_scalar is not None:
            check_scalar(out)
        out_flat, out_tree = tree_util.flatten(out)
        store["out_tree"] = out_tree
        return [as_leaf(o) for o in out_flat]

    out_p, linear, out_nz = linearize_flat(flat_fun, flat, diff)
    out_tree = store["out_tree"]
    out_avals = [get_aval(o) for o in out_p]
    in_avals = [get_aval(x) for x in flat]

    # a pytree (as JAX's): its leaves are the residuals, so it can be passed through jit
    vjp_fn = tree_util.Partial(
        _VJPPullback(linear.jaxpr, out_tree, out_avals, out_nz, in_avals, diff, in_tree),
        *linear.consts)

    out = tree_util.unflatten(out_tree, out_p)
    if has_aux:
        return out, vjp_fn, store["aux"]
    return out, vjp_fn


def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """`(out, vjp_fn)`; `vjp_fn(cotangent)` returns a tuple with one entry per primal."""
    return _vjp(fun, primals, has_aux)


def _check_scalar_output(fname, holomorphic=False):
    def check(out):
        if isinstance(out, (tuple, list, dict)):
            raise NonDifferentiableError(
                f"{fname} requires a function returning a scalar, got a {type(out).__name__}; "
                "use jacrev/vjp for non-scalar outputs, or has_aux=True to return extras")
        a = get_aval(out) if isinstance(out, (Tracer, np.ndarray, np.generic, float, int)) else None
        if a is None:
            raise NonDifferentiableError(f"{fname}: output of type {type(out).__name__} is not "
                                         "an array")
        if a.shape != ():
            raise NonDifferentiableError(
                f"Gradient only defined for scalar-output functions. Output had shape "
                f"{a.shape}{where()}. Reduce it (e.g. .sum()) or use jacrev/vjp.")
        if holomorphic:
            if not np.issubdtype(a.dtype, np.complexfloating):
                raise TypeError(f"{fname} with holomorphic=True requires outputs with complex "
                                f"dtype, but got {a.dtype.name}{where()}.")
        elif not np.issubdtype(a.dtype, np.floating):
            raise NonDifferentiableError(
                f"{fname} requires real-valued outputs (output dtype that is a sub-dtype of "
                f"np.floating), but got {a.dtype.name}{where()}. For holomorphic "
                "differentiation, pass holomorphic=True; for the gradient of a complex "
                "output, take its real part or use vjp directly.")
    return check


def _check_holomorphic_inputs(fname, leaves):
    for path, leaf in leaves:
        dt = get_aval(as_leaf(leaf)).dtype
        if not np.issubdtype(dt, np.complexfloating):
            raise TypeError(f"{fname} with holomorphic=True requires inputs with complex dtype, "
                            f"but got {dt.name}{tree_util.keystr(path)}.")


def _check_outputs(fname, out, holomorphic):
    for path, leaf in tree_util.leaves_with_path(out):
        dt = get_aval(as_leaf(leaf)).dtype
        if holomorphic and not np.issubdtype(dt, np.complexfloating):
            raise TypeError(f"{fname} with holomorphic=True requires outputs with complex dtype, "
                            f"but got {dt.name}{tree_util.keystr(path)}.")
        if not holomorphic and np.issubdtype(dt, np.complexfloating):
            raise TypeError(f"{fname} requires real-valued outputs (output dtype that is a "
                            f"sub-dtype of np.floating), but got {dt.name}. For holomorphic "
                            "differentiation, pass holomorphic=True. For non-holomorphic "
                            "functions of complex outputs, use vjp/jvp directly.")


def _check_differentiable_inputs(fname, args, nums, allow_int):
    """Integer and boolean leaves of the differentiated arguments are an error unless
    `allow_int` (as JAX); their derivatives are then zeros."""
    if allow_int:
        return
    for i in nums:
        for path, leaf in tree_util.leaves_with_path(args[i]):
            dt = get_aval(as_leaf(leaf)).dtype
            if not is_float_dtype(dt):
                raise NonDifferentiableError(
                    f"{fname} requires real- or complex-valued (floating point) inputs, but "
                    f"argument {i}{tree_util.keystr(path)} has dtype {dt}. Convert it with "
                    ".astype(float), exclude it from argnums, or pass allow_int=True (its "
                    "derivative is then zero).")


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False,
                   reduce_axes: Sequence = ()) -> Callable[..., tuple]:
    """`(value, grad)`; with `has_aux`, `((value, aux), grad)`.

    Complex inputs follow JAX: for a real-valued `f(z)`, the gradient is
    `df/dx - i df/dy` (z = x + iy); with `holomorphic=True` (complex inputs and output) it is
    the complex derivative `f'(z)`. Integer inputs are an error unless `allow_int=True`; their
    gradient is then zero, with the input's own integer dtype (JAX gives `float0` zeros,
    which cannot cross `jit` here). `reduce_axes` is accepted for old JAX programs and must be
    empty (as in JAX, which removed it)."""
    if reduce_axes:
        raise NotImplementedError("grad: reduce_axes is not supported (JAX removed it too); "
                                  "sum over the named axis inside the function instead")

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "grad")
        if holomorphic:
            for i in nums:
                _check_holomorphic_inputs("grad", tree_util.leaves_with_path(args[i]))
        _check_differentiable_inputs("grad", args, nums, allow_int)

        def partial_fun(*diff_args):
            full = list(args)
            for i, a in zip(nums, diff_args):
                full[i] = a
            return fun(*full, **kwargs)

        res = _vjp(partial_fun, [args[i] for i in nums], has_aux,
                   check_scalar=_check_scalar_output("grad", holomorphic))
        out, vjp_fn = res[0], res[1]
        ct = np.ones((), dtype=get_aval(out).dtype)
        grads = vjp_fn(ct)
        g = grads[0] if single else tuple(grads)
        if has_aux:
            return (out, res[2]), g
        return out, g

    return value_and_grad_fun


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False,
         reduce_axes: Sequence = ()) -> Callable:
    """Reverse-mode gradient of a scalar-output function (with respect to `argnums`); see
    `value_and_grad` for complex inputs, `holomorphic` and `allow_int`."""
    vg = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int, reduce_axes)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        (val, g) = vg(*args, **kwargs)
        if has_aux:
            return g, val[1]
        return g

    return grad_fun


# ---------------------------------------------------------------------------------------------
# jvp / linearize
# ---------------------------------------------------------------------------------------------

def _tangent_as_primal_dtype(p, t):
    """A tangent has its primal's dtype (JAX requires equal dtypes; NumPy's float64 default
    would otherwise turn `jvp(f, (float32 x,), (1.0,))` into float64 outputs). A complex
    tangent for a real primal is an error, as in JAX."""
    pd, td = get_aval(p).dtype, get_aval(t).dtype
    if pd == td or not is_float_dtype(pd) or not is_float_dtype(td):
        return t
    if np.issubdtype(td, np.complexfloating) and not np.issubdtype(pd, np.complexfloating):
        raise TypeError(f"jvp: a {td.name} tangent for a {pd.name} primal; primal and tangent "
                        "dtypes must match")
    from .lax import convert_element_type
    return convert_element_type(t, pd)


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False) -> tuple:
    """Forward mode: `(fun(*primals), tangent_out)`."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists, e.g. jvp(f, (x,), (t,))")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    flat_p, tree_p = tree_util.flatten(tuple(primals))
    flat_t, tree_t = tree_util.flatten(tuple(tangents))
    if tree_p != tree_t:
        raise ValueError(f"jvp: primal structure {tree_p} and tangent structure {tree_t} differ")
    flat_p = [as_leaf(x) for x in flat_p]
    flat_t = [as_leaf(x) for x in flat_t]
    for p, t in zip(flat_p, flat_t):
        if get_aval(p).shape != get_aval(t).shape:
            raise ValueError(f"jvp: primal shape {get_aval(p).shape} and tangent shape "
                             f"{get_aval(t).shape} differ")
    flat_t = [_tangent_as_primal_dtype(p, t) for p, t in zip(flat_p, flat_t)]
    store = {}

    def flat_fun(*args):
        out = fun(*tree_util.unflatten(tree_p, list(args)))
        if has_aux:
            out, aux = out
            store["aux"] = _unwrap_aux(aux, current_trace())
        out_flat, store["tree"] = tree_util.flatten(out)
        return [as_leaf(o) for o in out_flat]

    diff = [is_float_dtype(get_aval(p).dtype) for p in flat_p]
    out_p, out_t = jvp_flat(flat_fun, flat_p, [t if d else None for t, d in zip(flat_t, diff)])
    out_t = [_writeable(_zeros_like(p)) if t is None else _writeable(t)
             for p, t in zip(out_p, out_t)]
    res = (tree_util.unflatten(store["tree"], out_p), tree_util.unflatten(store["tree"], out_t))
    return res + (store["aux"],) if has_aux else res


def linearize(fun, *primals, has_aux=False):
    """`(out, f_jvp)` where `f_jvp(*tangents)` evaluates the JVP at `primals` (staged once);
    with `has_aux` (`fun` returns `(out, aux)`), `(out, f_jvp, aux)`, as JAX."""
    flat, in_tree = tree_util.flatten(tuple(primals))
    flat = [as_leaf(x) for x in flat]
    store = {}
    diff = [is_float_dtype(get_aval(x).dtype) for x in flat]

    def flat_fun(*args):
        out = fun(*tree_util.unflatten(in_tree, list(args)))
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("linearize: a function with has_aux=True must return a pair "
                                f"(out, aux), got {type(out).__name__}")
            out, aux = out
            store["aux"] = _unwrap_aux(aux, current_trace())
        out_flat, store["tree"] = tree_util.flatten(out)
        return [as_leaf(o) for o in out_flat]

    out_p, linear, out_nz = linearize_flat(flat_fun, flat, diff)

    def f_jvp(*tangents):
        t_flat, t_tree = tree_util.flatten(tuple(tangents))
        if t_tree != in_tree:
            raise ValueError(f"linearize: tangent structure {t_tree} != primal structure {in_tree}")
        from .ir import eval_jaxpr
        outs = iter(eval_jaxpr(linear.jaxpr, linear.consts,
                               *[as_leaf(t) for t, d in zip(t_flat, diff) if d]))
        res = [next(outs) if nz else _zeros_like(p) for p, nz in zip(out_p, out_nz)]
        return tree_util.unflatten(store["tree"], res)

    out = tree_util.unflatten(store["tree"], out_p)
    return (out, f_jvp, store["aux"]) if has_aux else (out, f_jvp)


# ---------------------------------------------------------------------------------------------
# Jacobians
# ---------------------------------------------------------------------------------------------

def _std_basis(flat_avals):
    """Identity matrix split per leaf: a (total, *shape) array for each leaf."""
    total = sum(a.size for a in flat_avals)
    dtype = np.result_type(*[a.dtype for a in flat_avals]) if flat_avals else np.float64
    eye = np.eye(total, dtype=dtype)
    out, start = [], 0
    for a in flat_avals:
        out.append(eye[:, start:start + a.size].reshape((total,) + a.shape).astype(a.dtype))
        start += a.size
    return out, total


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """Jacobian by forward mode: one batched JVP over the standard basis (vmap). Complex
    inputs need `holomorphic=True` (as JAX): the result is then the complex derivative."""
    from .interpreters.batching import vmap

    def jac_fun(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "jacfwd")
        dyn = tuple(args[i] for i in nums)
        flat, in_tree = tree_util.flatten(dyn)
        flat = [as_leaf(x) for x in flat]
        avals = [get_aval(x) for x in flat]
        if holomorphic:
            _check_holomorphic_inputs("jacfwd", tree_util.leaves_with_path(dyn))
        else:
            for a in avals:
                if not is_float_dtype(a.dtype):
                    raise TypeError(
                        f"jacfwd requires real-valued inputs (input dtype that is a sub-dtype "
                        f"of np.floating), but got {a.dtype.name}. Convert integer inputs with "
                        ".astype(float) or leave them out of argnums.")
                if np.issubdtype(a.dtype, np.complexfloating):
                    raise TypeError(
                        f"jacfwd requires real-valued inputs (input dtype that is a sub-dtype "
                        f"of np.floating), but got {a.dtype.name}. For holomorphic "
                        "differentiation, pass holomorphic=True. For non-holomorphic functions "
                        "of complex inputs, use jvp directly.")
        basis, total = _std_basis(avals)

        def f_dyn(*d):
            full = list(args)
            for i, a in zip(nums, d):
                full[i] = a
            return fun(*full, **kwargs)

        def push(*tan_flat):
            tans = tree_util.unflatten(in_tree, list(tan_flat))
            res = jvp(f_dyn, dyn, tans, has_aux=has_aux)
            return (res[1], res[2]) if has_aux else res[1]

        out = vmap(push, in_axes=0, out_axes=-1)(*basis)
        if has_aux:
            out, aux = out
            aux = tree_util.map(lambda a: a[..., 0], aux)
        if holomorphic:
            _check_outputs("jacfwd", out, True)
        # out leaves: (*out_shape, total) -> split the last axis per input leaf
        def split(o):
            pieces, start = [], 0
            for a in avals:
                piece = o[..., start:start + a.size]
                pieces.append(piece.reshape(o.shape[:-1] + a.shape))
                start += a.size
            per_arg = tree_util.unflatten(in_tree, pieces)
            return per_arg[0] if single else per_arg
        jac = tree_util.map(split, out)
        return (jac, aux) if has_aux else jac

    return jac_fun


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """Jacobian by reverse mode: one batched VJP over the output basis (vmap). Complex
    outputs need `holomorphic=True` (as JAX); integer inputs need `allow_int=True` (their
    blocks are then zero)."""
    from .interpreters.batching import vmap

    def jac_fun(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), "jacrev")
        _check_differentiable_inputs("jacrev", args, nums, allow_int)

        def f_dyn(*d):
            full = list(args)
            for i, a in zip(nums, d):
                full[i] = a
            return fun(*full, **kwargs)

        if holomorphic:
            _check_holomorphic_inputs("jacrev", tree_util.leaves_with_path(
                tuple(args[i] for i in nums)))
        res = _vjp(f_dyn, [args[i] for i in nums], has_aux)
        out, vjp_fn = res[0], res[1]
        _check_outputs("jacrev", out, holomorphic)
        for path, leaf in tree_util.leaves_with_path(out):
            dt = get_aval(as_leaf(leaf)).dtype
            if not is_float_dtype(dt):
                raise TypeError(f"jacrev requires real-valued outputs (output dtype that is a "
                                f"sub-dtype of np.floating), but got {dt.name}"
                                f"{tree_util.keystr(path)}. For functions with integer outputs, "
                                "use vjp directly (or jacfwd, whose blocks for them are zero).")
        out_flat, out_tree = tree_util.flatten(out)
        out_avals = [get_aval(as_leaf(o)) for o in out_flat]
        basis, total = _std_basis(out_avals)
        in_flat, in_tree = tree_util.flatten(tuple(args[i] for i in nums))
        in_avals = [get_aval(as_leaf(x)) for x in in_flat]

        def pull(*ct_flat):
            return vjp_fn(tree_util.unflatten(out_tree, list(ct_flat)))

        cts = vmap(pull)(*basis)                       # per input: (total, *in_shape)
        cts_flat = tree_util.leaves(cts)
        # build out-tree of in-tree: for each output leaf, slice its rows
        per_out, start = [], 0
        for oa in out_avals:
            rows = [c[start:start + oa.size].reshape(oa.shape + ia.shape)
                    for c, ia in zip(cts_flat, in_avals)]
            per_arg = tree_util.unflatten(in_tree, rows)
            per_out.append(per_arg[0] if single else per_arg)
            start += oa.size
        jac = tree_util.unflatten(out_tree, per_out)
        return (jac, res[2]) if has_aux else jac

    return jac_fun


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """Hessian: jacfwd(jacrev(fun))."""
    return jacfwd(jacrev(fun, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)


# ---------------------------------------------------------------------------------------------
# make_jaxpr, device_get
# ---------------------------------------------------------------------------------------------

def flatten_fun(fun, args, kwargs, static, leaf=as_leaf):
    """Flatten `fun`'s non-static positional arguments.

    Returns `(flat_leaves, flat_fun, store)`: `flat_fun(*leaves)` rebuilds the arguments
    (static ones as given), calls `fun` and returns its flattened outputs; the output
    structure is left in `store["tree"]`.
    """
    dyn_idx = [i for i in range(len(args)) if i not in static]
    flat, in_tree = tree_util.flatten(tuple(args[i] for i in dyn_idx))
    store = {}

    def flat_fun(*leaves):
        full = list(args)
        for i, a in zip(dyn_idx, tree_util.unflatten(in_tree, list(leaves))):
            full[i] = a
        out_flat, store["tree"] = tree_util.flatten(fun(*full, **kwargs))
        return [as_leaf(o) for o in out_flat]

    return [leaf(x) for x in flat], flat_fun, store


def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               return_shape: bool = False) -> Callable:
    """`make_jaxpr(f)(*args)` is the IR of `f` at those arguments (a `ClosedJaxpr`)."""
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def make(*args, **kwargs):
        flat, flat_fun, store = flatten_fun(fun, args, kwargs, static, leaf=_spec_or_leaf)
        # Python scalars are weakly typed, as under jit (see Tracer.weak_type)
        orig, _ = tree_util.flatten(tuple(a for i, a in enumerate(args) if i not in static))
        weak = [type(x) in (bool, int, float, complex) for x in orig]

        def traced(*tracers):
            return flat_fun(*[weakened(t) if w else t for t, w in zip(tracers, weak)])

        closed = trace_to_jaxpr(traced if any(weak) else flat_fun,
                                [x if isinstance(x, ShapedArray) else get_aval(x) for x in flat])
        if return_shape:
            shapes = tree_util.unflatten(store["tree"], [ShapeDtypeStruct(a.shape, a.dtype)
                                                         for a in closed.out_avals])
            return closed, shapes
        return closed

    return make


def _spec_or_leaf(x):
    """Shape specs (ShapeDtypeStruct, or anything with .shape and .dtype) stand for arrays."""
    if isinstance(x, ShapeDtypeStruct) or (
            not isinstance(x, (Tracer, np.ndarray, np.generic)) and hasattr(x, "shape")
            and hasattr(x, "dtype")):
        from .core import ShapedArray
        return ShapedArray(x.shape, x.dtype)
    return as_leaf(x)


class ShapeDtypeStruct(ShapeAndDtype):
    """A shape and a dtype standing for an array (as `jax.ShapeDtypeStruct`): what
    `eval_shape` returns, and accepted wherever only an argument's shape and dtype matter
    (`eval_shape`, `make_jaxpr`, `jit(...).lower`, layer `init`)."""
    __slots__ = ()

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __repr__(self):
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"

    def __eq__(self, o):
        return isinstance(o, ShapeDtypeStruct) and (self.shape, self.dtype) == (o.shape, o.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """The output's shapes and dtypes as a pytree of `ShapeDtypeStruct`, without computing it;
    arguments may be arrays or anything with `.shape` and `.dtype` (e.g. `ShapeDtypeStruct`)."""
    _, shapes = make_jaxpr(lambda *a: fun(*a, **kwargs), return_shape=True)(*args)
    return shapes


def device_get(x):
    """A pytree of NumPy arrays (identity on NumPy input)."""
    def one(v):
        if isinstance(v, Tracer):
            c = v.concrete_value()
            if c is None:
                return np.asarray(v)        # raises the tracer conversion error
            return np.asarray(c)
        return v if isinstance(v, (np.ndarray, np.generic)) else np.asarray(v)
    return tree_util.map(one, x)


def device_put(x, device=None):
    """`x` as a pytree of NumPy arrays (kept for JAX programs: there is one device, the CPU,
    and `device` is ignored)."""
    return device_get(x)


def block_until_ready(x):
    """`x` itself: computations here finish before they return (kept for JAX programs)."""
    return x


__all__ = ["grad", "value_and_grad", "vjp", "jvp", "linearize", "jacfwd", "jacrev", "hessian",
           "make_jaxpr", "eval_shape", "device_get", "device_put", "ClosedJaxpr",
           "ShapeDtypeStruct", "block_until_ready"]
