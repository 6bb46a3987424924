"""More of JAX's top-level utilities: `named_call`, `ensure_compile_time_eval`,
`closure_convert`."""
from __future__ import annotations

import contextlib
import functools

from . import tree as tree_util
from .core import EVAL_TRACE, Trace, Tracer, as_leaf, bind_in, get_aval, new_trace

__all__ = ["named_call", "ensure_compile_time_eval", "closure_convert"]


def named_call(fun, *, name=None):
    """`fun`, with `name` (default: its `__name__`) as the name of its staged computation in
    JAX. Names only label profiles there; here it returns a wrapper that calls `fun`."""
    if not callable(fun):
        raise TypeError(f"named_call: expected a callable, got {type(fun).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"named_call: name must be a string, got {type(name).__name__}")

    @functools.wraps(fun)
    def named(*args, **kwargs):
        return fun(*args, **kwargs)

    if name is not None:
        named.__name__ = name
    return named


class _CompileTimeEvalTrace(Trace):
    """Operations whose operands are all concrete run at once (NumPy), even under `jit`;
    operations on traced values go to the enclosing transformation as usual."""

    def process_primitive(self, prim, args, params):
        if any(isinstance(a, Tracer) for a in args):
            return bind_in(self.parent, prim, *args, **params)
        return bind_in(EVAL_TRACE, prim, *args, **params)


@contextlib.contextmanager
def ensure_compile_time_eval():
    """Inside this context, operations on concrete values (constants, NumPy arrays, results of
    other such operations) are evaluated at once, even while `jit` traces, so their results are
    concrete and can steer Python control flow; operations on traced arguments are traced as
    usual (as in JAX)."""
    with new_trace(_CompileTimeEvalTrace):
        yield


def closure_convert(fun, *example_args):
    """`(converted, consts)`: `converted(*args, *consts)` computes `fun(*args)`, with the
    traced values `fun` closes over (e.g. parameters of an enclosing `grad`) made explicit
    arguments `consts`, as `jax.closure_convert`; `example_args` give shapes and dtypes.
    Used with `custom_vjp`/`custom_jvp`, whose rules must not close over traced values."""
    from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr
    from .ir import eval_jaxpr
    flat, in_tree = tree_util.flatten(example_args)
    avals = [get_aval(as_leaf(x)) for x in flat]
    store = {}

    def flat_fun(*a):
        out = fun(*tree_util.unflatten(in_tree, list(a)))
        outs, store["tree"] = tree_util.flatten(out)
        return [as_leaf(o) for o in outs]

    closed = trace_to_jaxpr(flat_fun, avals)
    which = [isinstance(c, Tracer) for c in closed.consts]
    hoisted, consts = convert_constvars(closed, which)
    consts = list(consts)
    out_tree, n_in = store["tree"], len(flat)

    def converted(*args):
        if len(args) != len(example_args) + len(consts):
            raise TypeError(f"closure_convert: the converted function takes "
                            f"{len(example_args)} arguments followed by {len(consts)} constants, "
                            f"got {len(args)} values")
        a_flat, a_tree = tree_util.flatten(args[:len(example_args)])
        if a_tree != in_tree or len(a_flat) != n_in:
            raise TypeError(f"closure_convert: arguments of structure {a_tree}, expected "
                            f"{in_tree}")
        outs = eval_jaxpr(hoisted.jaxpr, hoisted.consts, *args[len(example_args):],
                          *[as_leaf(x) for x in a_flat])
        return tree_util.unflatten(out_tree, list(outs))

    return converted, consts
