"""`cond` / `switch`: the `cond` primitive and its rules (see the package docstring)."""
from __future__ import annotations

import numpy as np

from ... import tree as tree_util
from ...core import Primitive, get_aval
from ...interpreters import batching as B
from ...interpreters.jvp import jvp_jaxpr as _jvp_jaxpr
from ...interpreters.partial_eval import partial_eval_jaxpr as _partial_eval
from ...interpreters.transpose import UndefinedPrimal, backward_pass, is_undefined
from ...ir import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from .common import (_is_weak, _leaf, _lax, _zeros, _trace, _trace_jaxpr, _batch_jaxpr,
                      _instantiate, _fmt_path, _Split, _register_split, _check_operands)

# =============================================================================================
# cond / switch
# =============================================================================================

cond_p = Primitive("cond", multiple_results=True)


@cond_p.def_impl
def _cond_impl(index, *args, branches):
    i = int(np.clip(np.asarray(index), 0, len(branches) - 1))
    br = branches[i]
    return eval_jaxpr(br.jaxpr, br.consts, *args)


@cond_p.def_abstract_eval
def _cond_abstract(index, *avals, branches):
    if index.shape != () or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"cond: the branch index must be an integer scalar, got "
                        f"{index.str_short()}")
    for b in branches:
        _check_operands("cond", list(avals), b.in_avals)
    return list(branches[0].out_avals)


@cond_p.def_jvp
def _cond_jvp(primals, tangents, *, branches):
    index, ops = primals[0], primals[1:]
    nz = [t is not None for t in tangents[1:]]
    first = [_jvp_jaxpr(b, nz, False) for b in branches]
    out_nz = [any(z) for z in zip(*[f[1] for f in first])]
    new = tuple(f[0] if f[1] == out_nz else _jvp_jaxpr(b, nz, out_nz)[0]
                for b, f in zip(branches, first))
    ts = [t for t in tangents[1:] if t is not None]
    outs = cond_p.bind(index, *ops, *ts, branches=new)
    n = len(out_nz)
    it = iter(outs[n:])
    return outs[:n], [next(it) if z else None for z in out_nz]


def _cond_split(params, unknown):
    """Under linearize: the known part of the taken branch runs now (known outputs plus
    residuals; each branch fills the other branches' residual slots with zeros), the unknown
    part is a cond over the residuals and the unknown operands."""
    if unknown[0]:
        return None                       # an unknown predicate: nothing to split
    branches = params["branches"]
    uk = list(unknown[1:])
    n_out = len(branches[0].out_avals)
    first = [_partial_eval(b, uk, False) for b in branches]
    out_uk = [any(z) for z in zip(*[f[2] for f in first])]
    splits = [f if f[2] == out_uk else _partial_eval(b, uk, out_uk)
              for b, f in zip(branches, first)]
    res_avals = [s[1].in_avals[:len(s[3])] for s in splits]
    n_known_out = n_out - sum(out_uk)
    known_in_avals = [a for a, u in zip(branches[0].in_avals, uk) if not u]

    def known_branch(i):
        known = splits[i][0]

        def fun(*a):
            outs = eval_jaxpr(known.jaxpr, known.consts, *a)
            full = list(outs[:n_known_out])
            for j, avals in enumerate(res_avals):
                full += list(outs[n_known_out:]) if j == i else [_zeros(r) for r in avals]
            return full
        return _trace_jaxpr(fun, known_in_avals)

    def unknown_branch(i):
        u = splits[i][1].jaxpr
        n_res = len(res_avals[i])
        invars = []
        for j, avals in enumerate(res_avals):
            invars += list(u.invars[:n_res]) if j == i else [Var(r) for r in avals]
        invars += list(u.invars[n_res:])
        return ClosedJaxpr(Jaxpr(u.constvars, invars, u.outvars, u.eqns), splits[i][1].consts)

    nb = len(branches)
    n_res = sum(len(r) for r in res_avals)
    known = (dict(branches=tuple(known_branch(i) for i in range(nb))),
             [0] + [1 + i for i, u in enumerate(uk) if not u])
    unknown_eqn = None
    if any(out_uk):
        unknown_eqn = (dict(branches=tuple(unknown_branch(i) for i in range(nb))),
                       [("arg", 0)] + [("res", j) for j in range(n_res)]
                       + [("arg", 1 + i) for i, u in enumerate(uk) if u])
    return _Split(known, [i for i, u in enumerate(out_uk) if not u], n_res, unknown_eqn,
                  [i for i, u in enumerate(out_uk) if u], out_uk)


_register_split(cond_p, _cond_split)


@cond_p.def_transpose
def _cond_transpose(cts, index, *ops, branches):
    lin = [is_undefined(o) for o in ops]
    in_avals = branches[0].in_avals
    out_avals = branches[0].out_avals
    known = [o for o in ops if not is_undefined(o)]
    known_avals = [a for a, l in zip(in_avals, lin) if not l]
    cts = [_instantiate(c, a) for c, a in zip(cts, out_avals)]

    def transposed(br):
        def fun(*a):
            kit = iter(a[:len(known)])
            args = [UndefinedPrimal(av) if l else next(kit) for av, l in zip(in_avals, lin)]
            res = backward_pass(br.jaxpr, br.consts, args, list(a[len(known):]))
            return [_instantiate(r, av) for r, av, l in zip(res, in_avals, lin) if l]
        return _trace_jaxpr(fun, known_avals + list(out_avals))

    outs = cond_p.bind(index, *known, *cts, branches=tuple(transposed(b) for b in branches))
    it = iter(outs)
    return [None] + [next(it) if l else None for l in lin]


def _cond_batch(trace, args, dims, *, branches):
    size, name = trace.axis_size, trace.axis_name
    index, ops = args[0], list(args[1:])
    if all(d is None for d in dims) and name is None:
        return cond_p.bind(*args, branches=branches), [None] * len(branches[0].out_avals)
    ops = [x if d is None else B.moveaxis(x, d, 0) for x, d in zip(ops, dims[1:])]
    in_b = [d is not None for d in dims[1:]]
    n_out = len(branches[0].out_avals)
    if dims[0] is None:
        out_b = [False] * n_out
        for b in branches:
            out_b = [x or y for x, y in zip(out_b, _batch_jaxpr(b, size, in_b, False, name)[1])]
        new = tuple(_batch_jaxpr(b, size, in_b, out_b, name)[0] for b in branches)
        outs = cond_p.bind(index, *ops, branches=new)
        return outs, [0 if b else None for b in out_b]
    # a batched predicate: every branch runs on the whole batch, then a select picks per example
    lax = _lax()
    index = B.moveaxis(index, dims[0], 0)
    results = []
    for b in branches:
        bj, _ = _batch_jaxpr(b, size, in_b, True, name)
        results.append(eval_jaxpr(bj.jaxpr, bj.consts, *ops))
    outs = []
    for cases in zip(*results):
        shape = get_aval(cases[0]).shape
        which = lax.broadcast_in_dim(index, shape, (0,))
        outs.append(lax.select_n(which, *cases))
    return outs, [0] * n_out


cond_p.def_batch_trace_rule(_cond_batch)


def _trace_branches(funs, names, ops_flat, in_tree):
    """Trace each branch on the operands; check that their outputs agree. Returns
    (branch jaxprs taking (*all_consts, *ops), all_consts, out_tree)."""
    in_avals = [get_aval(x) for x in ops_flat]

    def trace_one(f, cast=None):
        store = {}

        def flat_fun(*leaves):
            out = f(*tree_util.unflatten(in_tree, list(leaves)))
            flat, store["tree"] = tree_util.flatten(out)
            store["weak"] = [_is_weak(o) for o in flat]
            flat = [_leaf(o) for o in flat]
            if cast is not None:
                lax = _lax()
                flat = [o if dt is None else lax.convert_element_type(o, dt)
                        for o, dt in zip(flat, cast)]
            return flat
        closed, consts = _trace(flat_fun, in_avals)
        return closed, consts, store["tree"], store["weak"]

    traced = [trace_one(f) for f in funs]
    tree0 = traced[0][2]
    for (_, _, t, _), nm in zip(traced[1:], names[1:]):
        if t != tree0:
            raise TypeError(f"{names[0]} and {nm} output must have identical types and tree "
                            f"structures, got {tree0} and {t}")
    # weakly-typed Python scalar outputs take the dtype of the other branches
    n_out = len(traced[0][0].out_avals)
    casts = [[None] * n_out for _ in funs]
    for k in range(n_out):
        avals = [t[0].out_avals[k] for t in traced]
        strong = {a.dtype for a, t in zip(avals, traced) if not t[3][k]}
        if len({a.dtype for a in avals}) > 1 and len(strong) == 1:
            dt = strong.pop()
            for i, t in enumerate(traced):
                if t[3][k] and avals[i].dtype != dt:
                    casts[i][k] = dt
    for i, f in enumerate(funs):
        if any(c is not None for c in casts[i]):
            traced[i] = trace_one(f, casts[i])
    paths = [p for p, _ in tree_util.leaves_with_path(
        tree_util.unflatten(tree0, list(range(n_out))))]
    for (closed, _, _, _), nm in zip(traced[1:], names[1:]):
        for k, (a, b) in enumerate(zip(traced[0][0].out_avals, closed.out_avals)):
            if a != b:
                where = f" at output{_fmt_path(paths[k])}" if n_out > 1 else ""
                raise TypeError(f"{names[0]} output {a.str_short()} != {nm} output "
                                f"{b.str_short()}{where}: the branches of a cond/switch must "
                                "return the same shapes and dtypes")
    # join the branches' constants: every branch takes all of them, using its own
    all_consts, jaxprs = [], []
    offsets = []
    for closed, consts, _, _ in traced:
        offsets.append(len(all_consts))
        all_consts += consts
    for (closed, consts, _, _), off in zip(traced, offsets):
        j = closed.jaxpr
        nc = len(consts)
        invars = [Var(get_aval(c)) for c in all_consts[:off]] + list(j.invars[:nc]) + \
            [Var(get_aval(c)) for c in all_consts[off + nc:]] + list(j.invars[nc:])
        jaxprs.append(ClosedJaxpr(Jaxpr([], invars, j.outvars, j.eqns), []))
    return tuple(jaxprs), all_consts, tree0


def _check_scalar(x, what):
    a = get_aval(x)
    if a.shape != ():
        raise TypeError(f"{what} must be a scalar, got {a.str_short()}")
    return a


def switch(index, branches, *operands):
    """Apply `branches[index](*operands)`; `index` is clamped into range (as jax.lax.switch)."""
    branches = list(branches)
    if not branches:
        raise ValueError("switch: branches must be a non-empty sequence of callables")
    for b in branches:
        if not callable(b):
            raise TypeError(f"switch: branches must be callables, got {type(b).__name__}")
    lax = _lax()
    index = _leaf(index)
    a = _check_scalar(index, "switch index")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"switch index must be an integer scalar, got {a.str_short()}")
    index = lax.convert_element_type(index, np.int32)
    if len(branches) == 1:
        return branches[0](*operands)
    index = lax.max(lax.min(index, np.int32(len(branches) - 1)), np.int32(0))
    ops_flat, in_tree = tree_util.flatten(operands)
    ops_flat = [_leaf(x) for x in ops_flat]
    names = [f"branch {i}" for i in range(len(branches))]
    jaxprs, consts, out_tree = _trace_branches(branches, names, ops_flat, in_tree)
    outs = cond_p.bind(index, *consts, *ops_flat, branches=jaxprs)
    return tree_util.unflatten(out_tree, outs)


_NO_OPERAND = object()


def cond(pred, true_fun, false_fun, *operands, operand=_NO_OPERAND):
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, as a single primitive.

    `operand=` is JAX's older spelling of a single operand (`cond(p, f, g, operand=x)`).
    Both branches are traced (their outputs must match in structure, shape and dtype); only
    the taken branch runs. Differentiable in both modes; under `vmap` with a batched `pred`
    both branches run and a select picks per example.
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise TypeError("cond: true_fun and false_fun must be callable")
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("cond: pass the operands positionally or as operand=, not both")
        operands = (operand,)
    lax = _lax()
    pred = _leaf(pred)
    a = _check_scalar(pred, "cond predicate")
    if a.dtype == np.bool_:
        index = lax.convert_element_type(pred, np.int32)
    elif np.issubdtype(a.dtype, np.number):
        index = lax.convert_element_type(lax.ne(pred, np.zeros((), a.dtype)), np.int32)
    else:
        raise TypeError(f"cond predicate must be a boolean or numeric scalar, got {a.str_short()}")
    ops_flat, in_tree = tree_util.flatten(operands)
    ops_flat = [_leaf(x) for x in ops_flat]
    # traced (and named in errors) in the user's order; index 0 is the false branch
    (t_jaxpr, f_jaxpr), consts, out_tree = _trace_branches(
        [true_fun, false_fun], ["true_fun", "false_fun"], ops_flat, in_tree)
    outs = cond_p.bind(index, *consts, *ops_flat, branches=(f_jaxpr, t_jaxpr))
    return tree_util.unflatten(out_tree, outs)

