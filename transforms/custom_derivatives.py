"""`custom_jvp` and `custom_vjp`: user-defined derivative rules, as in JAX.

Each is a primitive whose parameters carry the user's Python functions (flattened):
  custom_jvp_call(*args, fun, jvp, call_jaxpr?)   the JVPTrace calls `jvp`; others call `fun`
  custom_vjp_call(*args, fun, fwd, bwd, ...)      under differentiation `fwd` runs and the
                                                  tangent map is `custom_lin`, whose transpose
                                                  calls `bwd`
When staged (make_jaxpr / jit), `fun` is traced into `call_jaxpr` so backends can inline it.

Functions and rules may close over tracers of enclosing transformations (as in JAX): such
values are found by tracing, become leading operands (`num_consts`), and the functions the
primitive carries are replaced by pure replays of the traced jaxprs. Differentiating with
respect to a closed-over value is an error, as in JAX (the rule does not cover it).
"""
from __future__ import annotations

import functools
import inspect
import types

import numpy as np

from . import tree as tree_util
from .core import EVAL_TRACE, Primitive, Tracer, as_leaf, current_trace, get_aval
from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr
from .ir import eval_jaxpr


def _resolve_args(fun, args, kwargs):
    if not kwargs:
        return args
    sig = inspect.signature(fun)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args


def _split_nondiff(args, nondiff_argnums):
    static = {i: args[i] for i in nondiff_argnums}
    dyn = [a for i, a in enumerate(args) if i not in static]
    return static, dyn


def _merge(static, dyn, n):
    it = iter(dyn)
    return [static[i] if i in static else next(it) for i in range(n)]


def _as_leaves(xs):
    return [as_leaf(x) for x in xs]


def _tangent_like_primal(name, o, t):
    """A custom_jvp rule's output tangent, checked against its primal output: the same
    shape (else a TypeError, as JAX); a floating tangent of another precision is cast to the
    primal's dtype (JAX requires equal dtypes, but NumPy's float64 defaults (`tnp.ones(3)`) in
    a rule would otherwise turn float32 tangents float64); a complex tangent for a real
    output is an error."""
    oa, ta = get_aval(o), get_aval(t)
    if oa.shape != ta.shape:
        raise TypeError(f"custom_jvp rule of {name}: tangent shape {ta.shape} != primal shape "
                        f"{oa.shape}; the rule must produce primal and tangent outputs with "
                        "corresponding shapes and dtypes")
    if ta.dtype == oa.dtype or not np.issubdtype(oa.dtype, np.inexact):
        return t
    if (np.issubdtype(ta.dtype, np.complexfloating)
            and not np.issubdtype(oa.dtype, np.complexfloating)) or not np.issubdtype(
                ta.dtype, np.inexact):
        raise TypeError(f"custom_jvp rule of {name}: a {ta.dtype.name} tangent for a "
                        f"{oa.dtype.name} primal output; the rule must produce primal and "
                        "tangent outputs with corresponding shapes and dtypes")
    from .lax import convert_element_type
    return convert_element_type(t, oa.dtype)


class _FlatCall:
    """One call of a custom_jvp/custom_vjp function on flat leaves: the arguments split into
    the non-differentiable ones (`static`: position -> value) and the differentiable ones
    (`dyn`, flattened to `flat` with `in_tree`). `fun_flat(*leaves)` runs the function and
    records its output structure in `store["out_tree"]` (the rules record theirs there too)."""

    def __init__(self, fun, args, kwargs, nondiff_argnums):
        args = _resolve_args(fun, args, kwargs)
        self.fun, self.n = fun, len(args)
        self.static, self.dyn = _split_nondiff(args, nondiff_argnums)
        self.flat, self.in_tree = tree_util.flatten(tuple(self.dyn))
        self.store = {}

    def args(self, leaves):
        """All the arguments, the differentiable ones rebuilt from flat `leaves`."""
        return _merge(self.static, tree_util.unflatten(self.in_tree, list(leaves)), self.n)

    def fun_flat(self, *leaves):
        out_flat, self.store["out_tree"] = tree_util.flatten(self.fun(*self.args(leaves)))
        return _as_leaves(out_flat)


def _closure_convert(flat_fun, in_avals):
    """If `flat_fun` reads traced values of an enclosing transformation that it does not
    receive as arguments (a Python closure over a tracer), return `(jaxpr, consts)`: a
    const-free ClosedJaxpr taking those values as leading inputs, and the values. Else None.

    This is what lets custom-derivative functions close over tracers, as in JAX: the
    closed-over values become explicit operands of the primitive, so every transformation
    sees them, and the functions the primitive carries are pure."""
    if current_trace() is EVAL_TRACE:          # no transformation active: no tracers exist
        return None
    closed = trace_to_jaxpr(flat_fun, list(in_avals))
    if not any(isinstance(c, Tracer) for c in closed.consts):
        return None
    return convert_constvars(closed)


_RULES_BEING_TRACED = set()     # ids of custom functions whose rule is being closure-converted


_SCAN_LIMIT = 20000             # objects `_may_close_over` visits before assuming "maybe"
_ATOMS = (str, bytes, int, float, complex, bool, type(None), np.ndarray, np.generic, type,
          types.ModuleType, types.BuiltinFunctionType, np.dtype)


def _may_close_over(*fns):
    """Whether any of the user's functions can read a traced value it is not given as an
    argument: a tracer reachable from its closure cells, defaults, the globals its code names,
    a bound method's object, a partial's arguments, or containers and objects found there.

    Only then is `_closure_convert` needed. It traces the function abstractly, which JAX never
    does: skipping it keeps Python `if x > 0` on a concrete input working under grad/jvp (as
    JAX evaluates custom functions on concrete values outside jit) and runs the user's
    functions no more often than JAX does. When the reachable objects are too many to look
    through, the answer is a conservative "maybe"."""
    stack, seen = list(fns), set()
    while stack:
        o = stack.pop()
        if isinstance(o, Tracer):
            return True
        if isinstance(o, _ATOMS) or id(o) in seen:
            continue
        seen.add(id(o))
        if len(seen) > _SCAN_LIMIT:
            return True
        if isinstance(o, types.FunctionType):
            for c in o.__closure__ or ():
                try:
                    stack.append(c.cell_contents)
                except ValueError:          # a cell not yet filled
                    pass
            stack.extend(o.__defaults__ or ())
            stack.extend((o.__kwdefaults__ or {}).values())
            g = o.__globals__
            stack.extend(g[n] for n in _code_names(o.__code__) if n in g)
        elif isinstance(o, types.MethodType):
            stack += [o.__func__, o.__self__]
        elif isinstance(o, functools.partial):
            stack += [o.func, *o.args, *o.keywords.values()]
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())
        else:
            d = getattr(o, "__dict__", None)
            if isinstance(d, dict):
                stack.extend(d.values())
            for n in getattr(type(o), "__slots__", ()):
                if isinstance(n, str) and hasattr(o, n):
                    stack.append(getattr(o, n))
    return False


@functools.lru_cache(maxsize=4096)
def _code_names(code):
    """Global names `code` and the code objects nested in it (lambdas, comprehensions) read."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return frozenset(names)


def _run(jaxpr, *args):
    return eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *args)


def _closed_over_error(kind, name):
    return TypeError(
        f"Detected differentiation of a {kind} function ({name}) with respect to a "
        "closed-over value. That isn't supported because the custom rule only says how to "
        f"differentiate with respect to the function's explicit arguments. Pass the value "
        f"into the {kind} function as an argument and adapt the rule.")


# ---------------------------------------------------------------------------------------------
# custom_jvp
# ---------------------------------------------------------------------------------------------

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_jvp_call_p.def_impl(lambda *args, fun, jvp, **_: fun(*args))


def _call_abstract(*avals, fun, call_jaxpr=None, **_):
    """Output avals of a custom-derivative call: those of `fun` (traced if not yet staged)."""
    if call_jaxpr is not None:
        return call_jaxpr.out_avals
    return trace_to_jaxpr(fun, list(avals)).out_avals


def _staging_rule(prim):
    """Stage `prim` with `fun` traced into `call_jaxpr`, so backends can inline it."""
    def rule(trace, args, params):
        if "call_jaxpr" not in params:
            params = dict(params, call_jaxpr=trace_to_jaxpr(params["fun"],
                                                            [get_aval(a) for a in args]))
        return trace.stage(prim, args, params)
    return rule


custom_jvp_call_p.def_abstract_eval(_call_abstract)


class SymbolicZero:
    """The tangent of an input that is not being differentiated, as `jax.custom_derivatives.
    SymbolicZero`: what a `custom_jvp` rule defined with `symbolic_zeros=True` receives in
    place of a zero array (so it can skip work). It has `.shape`, `.dtype` and `.aval`;
    `instantiate()` makes the zero array. A rule may also return one as an output tangent."""

    def __init__(self, aval):
        self.aval = aval

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))

    def instantiate(self):
        """The zero array this stands for."""
        from .lax import zeros_like_aval
        return zeros_like_aval(self.aval)

    @staticmethod
    def from_primal_value(x):
        """The symbolic zero tangent of the primal value `x`."""
        return SymbolicZero(get_aval(as_leaf(x)))

    def __repr__(self):
        return f"SymbolicZero({self.aval.str_short()})"


class CustomVJPPrimal(tuple):
    """What a `custom_vjp` fwd defined with `symbolic_zeros=True` receives for each
    differentiable argument leaf (as `jax.custom_derivatives.CustomVJPPrimal`): `.value` and
    `.perturbed` (whether that input is being differentiated)."""
    __slots__ = ()

    def __new__(cls, value, perturbed):
        return tuple.__new__(cls, (value, perturbed))

    value = property(lambda self: self[0])
    perturbed = property(lambda self: self[1])

    def __repr__(self):
        return f"CustomVJPPrimal(value={self.value!r}, perturbed={self.perturbed})"


def _instantiate(ts):
    return [t.instantiate() if isinstance(t, SymbolicZero) else t for t in ts]


def _custom_jvp_jvp_rule(trace, primals, tangents, *, fun, jvp, num_consts=0, name="", **_):
    if any(t is not None for t in tangents[:num_consts]):
        raise _closed_over_error("custom_jvp", name)
    # unperturbed inputs: symbolic zeros, which every rule wrapper below instantiates unless
    # the user's rule asked for them (symbolic_zeros=True)
    tangents = [SymbolicZero(get_aval(p)) if t is None else t for p, t in zip(primals, tangents)]
    out, tout = jvp(list(primals), tangents)
    return out, tout


custom_jvp_call_p.def_jvp_trace_rule(_custom_jvp_jvp_rule)


custom_jvp_call_p.def_staging_rule(_staging_rule(custom_jvp_call_p))


def _custom_jvp_batch(args, dims, *, fun, jvp, call_jaxpr=None, **params):
    from .interpreters.batching import vmap
    bfun = vmap(lambda *a: list(fun(*a)), in_axes=tuple(dims), out_axes=0)

    def bjvp(primals, tangents):
        tangents = _instantiate(tangents)
        out = vmap(lambda p, t: tuple(map(list, jvp(list(p), list(t)))),
                   in_axes=(list(dims), list(dims)), out_axes=0)(list(primals), list(tangents))
        return out[0], out[1]

    outs = custom_jvp_call_p.bind(*args, fun=bfun, jvp=bjvp, **params)
    return outs, [0] * len(outs)


custom_jvp_call_p.def_batch(_custom_jvp_batch)


class custom_jvp:
    """Decorate a function to give it a custom JVP rule (`@f.defjvp`), as `jax.custom_jvp`."""

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None
        self.symbolic_zeros = False

    def defjvp(self, jvp, symbolic_zeros=False):
        """Set the JVP rule `jvp(primals, tangents) -> (primal_out, tangent_out)`. Zero
        tangents reach it as zero arrays; with `symbolic_zeros=True` the tangents of inputs
        that are not being differentiated may arrive as `SymbolicZero` objects instead (as in
        JAX: under `vmap` of the rule they are zero arrays), and the rule may return
        `SymbolicZero`s."""
        self.jvp = jvp
        self.symbolic_zeros = bool(symbolic_zeros)
        return jvp

    def defjvps(self, *jvps):
        """One function per argument: `jvp_i(tangent_i, primal_out, *primals) -> tangent`."""
        def jvp(primals, tangents):
            out = self.fun(*primals)
            acc = None
            from . import numpy as tnp
            for f, t in zip(jvps, tangents):
                leaves = tree_util.leaves(t)
                # as JAX: the rule of an argument that is not being differentiated is skipped
                # (so e.g. an inf in it times a zero tangent cannot make a NaN)
                if f is None or (leaves and all(isinstance(x, SymbolicZero) for x in leaves)):
                    continue
                t = tree_util.map(lambda x: x.instantiate() if isinstance(x, SymbolicZero)
                                  else x, t)
                c = f(t, out, *primals)
                acc = c if acc is None else tree_util.map(tnp.add, acc, c)
            if acc is None:
                acc = tree_util.map(tnp.zeros_like, out)
            return out, acc
        self.jvp = jvp
        self.symbolic_zeros = True
        return jvp

    def __call__(self, *args, **kwargs):
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {self.__name__} "
                                 "using defjvp.")
        call = _FlatCall(self.fun, args, kwargs, self.nondiff_argnums)
        n, static, in_tree, flat, store = call.n, call.static, call.in_tree, call.flat, call.store
        fun_flat = call.fun_flat

        def jvp_flat(primals, tangents):
            if not self.symbolic_zeros:
                tangents = _instantiate(tangents)
            p = call.args(primals)
            t_dyn = tree_util.unflatten(in_tree, list(tangents))
            t = [t_dyn[i] for i in range(len(t_dyn))]
            pdyn = [p[i] for i in range(n) if i not in static]
            if self.nondiff_argnums:
                out, tout = self.jvp(*[static[i] for i in self.nondiff_argnums], pdyn, t)
            else:
                out, tout = self.jvp(tuple(pdyn), tuple(t))
            out_flat, tree_o = tree_util.flatten(out)
            tout_flat, tree_t = tree_util.flatten(tout)
            tout_flat = _instantiate(tout_flat)
            if tree_o != tree_t:
                raise TypeError(f"custom_jvp rule of {self.__name__} returned primal and tangent "
                                f"outputs of different structures: {tree_o} vs {tree_t}")
            store["out_tree"] = tree_o
            out_flat, tout_flat = _as_leaves(out_flat), _as_leaves(tout_flat)
            tout_flat = [_tangent_like_primal(self.__name__, o, t_)
                         for o, t_ in zip(out_flat, tout_flat)]
            return out_flat, tout_flat

        leaves = _as_leaves(flat)
        avals = [get_aval(x) for x in leaves]
        conv = (_closure_convert(fun_flat, avals) if _may_close_over(self.fun, self.jvp)
                else None)
        if conv is None:
            outs = custom_jvp_call_p.bind(*leaves, fun=fun_flat, jvp=jvp_flat)
        else:
            # closed-over tracers become leading operands (of `fun`, then of the rule)
            fun_j, fun_c = conv
            n_out = len(fun_j.out_avals)

            def jvp_all(*pt):
                out, tout = jvp_flat(pt[:len(pt) // 2], pt[len(pt) // 2:])
                return list(out) + list(tout)
            if id(self) in _RULES_BEING_TRACED:
                # the rule calls this function (as rules do: `return f(x), ...`): that inner
                # call keeps the rule as Python; only the outer call converts it
                jvp_j, jvp_c = None, []
            else:
                _RULES_BEING_TRACED.add(id(self))
                try:
                    jvp_j, jvp_c = _closure_convert(jvp_all, avals + avals) or (
                        trace_to_jaxpr(jvp_all, avals + avals), [])
                finally:
                    _RULES_BEING_TRACED.discard(id(self))
            nf, nc = len(fun_c), len(fun_c) + len(jvp_c)

            def fun_pure(*a):
                return _run(fun_j, *a[:nf], *a[nc:])

            def jvp_pure(primals, tangents):
                if jvp_j is None:
                    return jvp_flat(primals[nc:], tangents[nc:])
                tangents = _instantiate(tangents)
                outs = _run(jvp_j, *primals[nf:nc], *primals[nc:], *tangents[nc:])
                return outs[:n_out], outs[n_out:]
            outs = custom_jvp_call_p.bind(*fun_c, *jvp_c, *leaves, fun=fun_pure, jvp=jvp_pure,
                                          num_consts=nc, name=self.__name__)
        if "out_tree" not in store:          # staged from a cached jaxpr: recover the structure
            fun_flat(*flat)
        return tree_util.unflatten(store["out_tree"], list(outs))


# ---------------------------------------------------------------------------------------------
# custom_vjp
# ---------------------------------------------------------------------------------------------

custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_vjp_call_p.def_impl(lambda *args, fun, fwd, bwd, **_: fun(*args))


custom_vjp_call_p.def_abstract_eval(_call_abstract)

custom_lin_p = Primitive("custom_lin", multiple_results=True)


@custom_lin_p.def_impl
def _custom_lin_impl(*args, num_res, bwd, out_avals):
    raise TypeError("can't apply forward-mode autodiff (jvp) to a custom_vjp function; use "
                    "custom_jvp, or reverse mode (grad/vjp)")


custom_lin_p.def_abstract_eval(lambda *avals, num_res, bwd, out_avals: list(out_avals))


@custom_lin_p.def_transpose
def _custom_lin_transpose(cts, *args, num_res, bwd, out_avals):
    res = args[:num_res]
    # zero cotangents: symbolic zeros, instantiated by every bwd wrapper unless the user's
    # bwd asked for them (custom_vjp.defvjp(symbolic_zeros=True))
    cts = [SymbolicZero(a) if c is None else c for c, a in zip(cts, out_avals)]
    cts_in = bwd(list(res), cts)
    return [None] * num_res + list(cts_in)


def _custom_vjp_jvp_rule(trace, primals, tangents, *, fun, fwd, bwd, num_consts=0, name="",
                         **_):
    from .lax import zeros_like_aval
    if any(t is not None for t in tangents[:num_consts]):
        raise _closed_over_error("custom_vjp", name)
    if getattr(fwd, "takes_perturbed", False):     # symbolic_zeros=True: fwd learns which
        out, res = fwd(*primals, perturbed=[t is not None for t in tangents])
    else:
        out, res = fwd(*primals)
    tangents = [zeros_like_aval(get_aval(p)) if t is None else t for p, t in zip(primals, tangents)]
    tout = custom_lin_p.bind(*res, *tangents, num_res=len(res), bwd=bwd,
                             out_avals=tuple(get_aval(o) for o in out))
    return out, tout


custom_vjp_call_p.def_jvp_trace_rule(_custom_vjp_jvp_rule)


custom_vjp_call_p.def_staging_rule(_staging_rule(custom_vjp_call_p))


def _custom_vjp_batch(args, dims, *, fun, fwd, bwd, call_jaxpr=None, **params):
    from .interpreters.batching import vmap
    bfun = vmap(lambda *a: list(fun(*a)), in_axes=tuple(dims), out_axes=0)

    def bfwd(*a):
        out, res = vmap(lambda *b: tuple(map(list, fwd(*b))), in_axes=tuple(dims), out_axes=0)(*a)
        return out, res

    def bbwd(res, cts):
        cts = _instantiate(cts)
        out = vmap(lambda r, c: list(bwd(list(r), list(c))), in_axes=(0, 0), out_axes=0)(
            list(res), list(cts))
        # cotangents for unbatched inputs must be summed over the batch
        from .lax import reduce_sum
        return [o if o is None or d is not None else reduce_sum(o, (0,))
                for o, d in zip(out, dims)]

    outs = custom_vjp_call_p.bind(*args, fun=bfun, fwd=bfwd, bwd=bbwd, **params)
    return outs, [0] * len(outs)


custom_vjp_call_p.def_batch(_custom_vjp_batch)


def _check_bwd_cotangents(name, dyn, dyn_cts, in_avals):
    """The flat cotangent leaves of a bwd result, checked against the arguments as JAX does:
    one entry per argument with the argument's tree structure (`None` stands for zeros, for a
    whole argument or a leaf) and each leaf's shape; floating cotangents take the argument's
    dtype."""
    from .lax import convert_element_type, zeros_like_aval
    leaves, avals = [], iter(in_avals)
    for i, (arg, ct) in enumerate(zip(dyn, dyn_cts)):
        arg_tree = tree_util.structure(arg)
        if ct is None:
            leaves += [zeros_like_aval(next(avals)) for _ in range(arg_tree.num_leaves)]
            continue
        ct_flat, ct_tree = tree_util.flatten(ct, is_leaf=lambda x: x is None)
        if len(ct_flat) != arg_tree.num_leaves or (
                ct_tree != arg_tree and tree_util.structure(
                    tree_util.unflatten(ct_tree, [0] * len(ct_flat))) != arg_tree):
            raise TypeError(f"custom_vjp bwd of {name} must return cotangents with the "
                            f"structure of the arguments: for argument {i} it returned "
                            f"{ct_tree}, the argument is {arg_tree}")
        for j, c in enumerate(ct_flat):
            a = next(avals)
            if c is None:
                leaves.append(zeros_like_aval(a))
                continue
            ca = get_aval(as_leaf(c))
            if ca.shape != a.shape:
                raise ValueError(f"custom_vjp bwd of {name} produced a cotangent of shape "
                                 f"{ca.shape} for an input of shape {a.shape} (output[{i}]"
                                 f"{'' if arg_tree.num_leaves == 1 else f', leaf {j}'}): "
                                 "the shapes must match")
            if (ca.dtype != a.dtype and np.issubdtype(a.dtype, np.inexact)
                    and np.issubdtype(ca.dtype, np.inexact)):
                c = convert_element_type(c, a.dtype)
            leaves.append(c)
    return leaves


class custom_vjp:
    """Decorate a function to give it a custom VJP (`f.defvjp(fwd, bwd)`), as `jax.custom_vjp`.

    `fwd(*args) -> (out, residuals)`; `bwd(residuals, cotangent_out) -> tuple of cotangents`,
    one per (differentiable) argument.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None
        self.symbolic_zeros = False

    def defvjp(self, fwd, bwd, symbolic_zeros=False, optimize_remat=False):
        """Set `fwd(*args) -> (out, residuals)` and `bwd(residuals, ct) -> cotangents`.

        `optimize_remat` is accepted for JAX programs: JAX uses it to rerun a cheap `fwd`
        inside `checkpoint` instead of saving its residuals; it never changes a value, and
        here residuals of a custom_vjp are saved either way.

        With `symbolic_zeros=True` (as JAX), `fwd` receives each differentiable argument leaf
        as a `CustomVJPPrimal(value, perturbed)` (`perturbed` False when it is not being
        differentiated; conservatively True under `vmap` and for rules closing over traced
        values), and `bwd` may receive `SymbolicZero` objects for zero output cotangents."""
        del optimize_remat
        self.fwd, self.bwd = fwd, bwd
        self.symbolic_zeros = bool(symbolic_zeros)

    def __call__(self, *args, **kwargs):
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {self.__name__} "
                                 "using defvjp.")
        call = _FlatCall(self.fun, args, kwargs, self.nondiff_argnums)
        dyn, flat, store, fun_flat = call.dyn, call.flat, call.store, call.fun_flat
        statics = [call.static[i] for i in self.nondiff_argnums]
        in_avals = [get_aval(x) for x in _as_leaves(flat)]

        def fwd_flat(*leaves, perturbed=None):
            if self.symbolic_zeros:
                flags = [True] * len(leaves) if perturbed is None else perturbed
                leaves = [CustomVJPPrimal(v, bool(f)) for v, f in zip(leaves, flags)]
            res = self.fwd(*call.args(leaves))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"custom_vjp fwd of {self.__name__} must return (out, residuals)")
            out, r = res
            out_flat, store["out_tree"] = tree_util.flatten(out)
            r_flat, store["res_tree"] = tree_util.flatten(r)
            return _as_leaves(out_flat), _as_leaves(r_flat)

        def bwd_flat(res, cts):
            if not self.symbolic_zeros:
                cts = _instantiate(cts)
            r = tree_util.unflatten(store["res_tree"], list(res))
            ct = tree_util.unflatten(store["out_tree"], list(cts))
            out = self.bwd(*statics, r, ct)
            if not isinstance(out, (tuple, list)):
                raise TypeError(f"custom_vjp bwd of {self.__name__} must return a tuple of "
                                f"cotangents (one per argument), got {type(out).__name__}")
            dyn_cts = list(out)
            if len(dyn_cts) != len(dyn):
                raise TypeError(f"custom_vjp bwd of {self.__name__} returned {len(dyn_cts)} "
                                f"cotangents for {len(dyn)} arguments")
            return _check_bwd_cotangents(self.__name__, dyn, dyn_cts, in_avals)

        leaves = _as_leaves(flat)
        conv = (_closure_convert(fun_flat, in_avals)
                if _may_close_over(self.fun, self.fwd, self.bwd) else None)
        fwd_flat.takes_perturbed = self.symbolic_zeros
        if conv is None:
            outs = custom_vjp_call_p.bind(*leaves, fun=fun_flat, fwd=fwd_flat, bwd=bwd_flat)
        else:
            outs = self._bind_closed_over(conv, leaves, in_avals, fun_flat, fwd_flat, bwd_flat)
        if "out_tree" not in store:
            fun_flat(*flat)
        return tree_util.unflatten(store["out_tree"], list(outs))

    def _bind_closed_over(self, conv, leaves, in_avals, fun_flat, fwd_flat, bwd_flat):
        """Bind with the tracers that `fun`, `fwd` and `bwd` close over as leading operands
        (see `_closure_convert`); `bwd`'s travel to it as extra residuals."""
        fun_j, fun_c = conv

        def fwd_all(*a):
            out, res = fwd_flat(*a)
            n_fwd[0] = len(out)
            return list(out) + list(res)
        n_fwd = [0]

        def bwd_all(*a):
            return bwd_flat(a[:len(res_avals)], a[len(res_avals):])
        if id(self) in _RULES_BEING_TRACED:       # fwd calls this function: see custom_jvp
            return custom_vjp_call_p.bind(*fun_c, *leaves, fun=lambda *a: _run(
                fun_j, *a), fwd=lambda *a: fwd_flat(*a[len(fun_c):]),
                bwd=lambda res, cts: [None] * len(fun_c) + list(bwd_flat(res, cts)),
                num_consts=len(fun_c), name=self.__name__)
        _RULES_BEING_TRACED.add(id(self))
        try:
            fwd_j, fwd_c = _closure_convert(fwd_all, in_avals) or (
                trace_to_jaxpr(fwd_all, list(in_avals)), [])
            n_out = n_fwd[0]
            res_avals = fwd_j.out_avals[n_out:]
            out_avals = fwd_j.out_avals[:n_out]
            bwd_j, bwd_c = _closure_convert(bwd_all, res_avals + out_avals) or (
                trace_to_jaxpr(bwd_all, res_avals + out_avals), [])
        finally:
            _RULES_BEING_TRACED.discard(id(self))
        nf, nw, nb = len(fun_c), len(fun_c) + len(fwd_c), len(fun_c) + len(fwd_c) + len(bwd_c)

        def fun_pure(*a):
            return _run(fun_j, *a[:nf], *a[nb:])

        def fwd_pure(*a):
            outs = _run(fwd_j, *a[nf:nw], *a[nb:])
            return outs[:n_out], list(a[nw:nb]) + list(outs[n_out:])

        def bwd_pure(res, cts):
            cts = _instantiate(cts)
            cts_in = _run(bwd_j, *res[:nb - nw], *res[nb - nw:], *cts)
            return [None] * nb + list(cts_in)
        return custom_vjp_call_p.bind(*fun_c, *fwd_c, *bwd_c, *leaves, fun=fun_pure,
                                      fwd=fwd_pure, bwd=bwd_pure, num_consts=nb,
                                      name=self.__name__)


__all__ = ["custom_jvp", "custom_vjp", "custom_jvp_call_p", "custom_vjp_call_p", "custom_lin_p",
           "SymbolicZero", "CustomVJPPrimal"]
