"""JAX's smaller transforms and utilities on `transforms`: `jacobian`, `linear_transpose`,
`custom_gradient`, `named_scope`, `disable_jit`, `typeof`, `Array`."""
from __future__ import annotations

import contextlib
import functools

import numpy as np

from . import tree as tree_util
from .api import jacrev
from .core import ShapedArray, Tracer, as_leaf, get_aval
from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr
from .interpreters.transpose import UndefinedPrimal, backward_pass
from .ir import eval_jaxpr

__all__ = ["jacobian", "linear_transpose", "custom_gradient", "named_scope", "disable_jit",
           "typeof", "Array"]

jacobian = jacrev


def linear_transpose(fun, *primals, reduce_axes=()):
    """The transpose of the linear function `fun`, as `jax.linear_transpose`.

    `primals` give only shapes and dtypes (pytrees of arrays or `ShapeDtypeStruct`s). The
    result `f_t(out_cotangent)` returns a tuple of input cotangents, one per primal. `fun`
    must be linear in its inputs (otherwise transposing fails naming the primitive).
    """
    from .api import _spec_or_leaf
    flat, in_tree = tree_util.flatten(tuple(primals))
    in_avals = [x if isinstance(x, ShapedArray) else get_aval(x)
                for x in (_spec_or_leaf(v) for v in flat)]
    store = {}

    def flat_fun(*args):
        out = fun(*tree_util.unflatten(in_tree, list(args)))
        out_flat, store["tree"] = tree_util.flatten(out)
        return [as_leaf(o) for o in out_flat]

    closed = trace_to_jaxpr(flat_fun, in_avals)
    out_tree, out_avals = store["tree"], closed.out_avals

    def transposed(out_cotangent):
        ct_flat, ct_tree = tree_util.flatten(out_cotangent)
        if ct_tree != out_tree:
            raise TypeError(f"linear_transpose: cotangent structure {ct_tree} does not match the "
                            f"output structure {out_tree}")
        cts = []
        for c, a in zip(ct_flat, out_avals):
            c = as_leaf(c)
            ca = get_aval(c)
            if ca.shape != a.shape or ca.dtype != a.dtype:
                raise TypeError(f"linear_transpose: cotangent {ca.str_short()} for an output "
                                f"{a.str_short()}")
            cts.append(c)
        try:
            res = backward_pass(closed.jaxpr, closed.consts,
                                [UndefinedPrimal(a) for a in in_avals], cts)
        except NotImplementedError as e:      # a primitive without a transpose rule
            raise TypeError(f"linear_transpose: the function is not linear in its inputs: "
                            f"{e}") from None
        from .lax import zeros_like_aval
        full = [zeros_like_aval(a) if r is None else r for r, a in zip(res, in_avals)]
        return tuple(tree_util.unflatten(in_tree, full))

    return transposed


def custom_gradient(fun):
    """`fun(*args) -> (out, vjp_rule)` becomes a function whose VJP is `vjp_rule(cotangent)`
    (a tuple of cotangents, one per positional argument), as `jax.custom_gradient`.

    The rule is traced once per call in the forward pass; the values it closes over become
    the residuals of the backward pass. Forward mode (`jvp`) is not supported, as in JAX.
    """
    from .custom_derivatives import custom_vjp

    @functools.wraps(fun)
    def wrapper(*args):
        store = {}

        def primal(*a):
            return fun(*a)[0]

        def fwd(*a):
            ans, rule = fun(*a)
            ans_flat, ans_tree = tree_util.flatten(ans)
            avals = [get_aval(as_leaf(x)) for x in ans_flat]

            def rule_flat(*cts):
                out = rule(tree_util.unflatten(ans_tree, list(cts)))
                if not isinstance(out, (tuple, list)):
                    if len(a) != 1:
                        raise TypeError("custom_gradient: the vjp rule must return a tuple with "
                                        f"one cotangent per argument ({len(a)})")
                    out = (out,)
                flat, store["ct_tree"] = tree_util.flatten(tuple(out))
                return [as_leaf(o) for o in flat]

            hoisted, consts = convert_constvars(trace_to_jaxpr(rule_flat, avals))
            store["rule"] = hoisted
            return ans, list(consts)

        def bwd(res, ct):
            ct_flat, _ = tree_util.flatten(ct)
            j = store["rule"].jaxpr
            outs = eval_jaxpr(j, [], *res, *[as_leaf(c) for c in ct_flat])
            return tree_util.unflatten(store["ct_tree"], list(outs))

        cv = custom_vjp(primal)
        cv.defvjp(fwd, bwd)
        return cv(*args)

    return wrapper


@contextlib.contextmanager
def named_scope(name):
    """Context manager naming the operations inside it (a no-op here, as on JAX's CPU
    backend apart from profiler labels); `name` must be a string."""
    if not isinstance(name, str):
        raise TypeError(f"named_scope name argument must be a string, got {type(name).__name__}")
    yield


@contextlib.contextmanager
def disable_jit(disable=True):
    """Inside this context `jit`-decorated functions run eagerly, op by op, so `print` and
    breakpoints see concrete values (as `jax.disable_jit`). Other transforms are unaffected."""
    from .config import config
    old = config.jax_disable_jit
    config.update("jax_disable_jit", disable)
    try:
        yield
    finally:
        config.update("jax_disable_jit", old)


def typeof(x):
    """The abstract value (`ShapedArray`: shape and dtype) of an array, scalar or tracer."""
    return get_aval(as_leaf(x))


class _ArrayMeta(type):
    def __instancecheck__(cls, x):
        return isinstance(x, (np.ndarray, np.generic, Tracer))

    def __subclasscheck__(cls, sub):
        return issubclass(sub, (np.ndarray, np.generic, Tracer))


class Array(metaclass=_ArrayMeta):
    """The array type for annotations and `isinstance`: concrete results (`numpy.ndarray`,
    NumPy scalars) and traced values are instances. There is no separate device array type."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("transforms.Array cannot be instantiated; use transforms.numpy.asarray")
