"""Loops: the `scan` and `while` primitives and their rules, `fori_loop` and `map` on top
(see the package docstring)."""
from __future__ import annotations

import numbers

import numpy as np

from ... import tree as tree_util
from ...core import Primitive, Tracer, get_aval
from ...errors import ReverseModeLoopError
from ...interpreters import batching as B
from ...interpreters.jvp import jvp_jaxpr as _jvp_jaxpr
from ...interpreters.partial_eval import partial_eval_jaxpr as _partial_eval
from ...interpreters.partial_eval import weakened
from ...interpreters.transpose import UndefinedPrimal, backward_pass, is_undefined
from ...ir import NOT_MASKABLE, ClosedJaxpr, Jaxpr, Var, dce_jaxpr, eval_jaxpr, first_listed
from .common import (_is_weak, _leaf, _lax, _zeros, _stacked, _unstacked, _trace, _trace_jaxpr,
                      _permute, _batch_jaxpr, _instantiate, _Split, _register_split, _split3,
                      _check_operands, _check_carry)

# =============================================================================================
# scan
# =============================================================================================

scan_p = Primitive("scan", multiple_results=True)


@scan_p.def_impl
def _scan_impl(*args, jaxpr, num_consts, num_carry, length, reverse, unroll):
    consts, carry, xs = _split3(args, num_consts, num_carry)
    xs = [np.asarray(x) for x in xs]
    y_avals = jaxpr.out_avals[num_carry:]
    ys = [np.empty((length,) + a.shape, a.dtype) for a in y_avals]
    j, c = jaxpr.jaxpr, jaxpr.consts
    for step in range(length):
        i = length - 1 - step if reverse else step
        outs = eval_jaxpr(j, c, *consts, *carry, *[x[i] for x in xs])
        carry = outs[:num_carry]
        for y, o in zip(ys, outs[num_carry:]):
            y[i] = o
    return [np.asarray(c) for c in carry] + ys


@scan_p.def_abstract_eval
def _scan_abstract(*avals, jaxpr, num_consts, num_carry, length, reverse, unroll):
    ins = jaxpr.in_avals
    _check_operands("scan", avals, list(ins[:num_consts + num_carry])
                    + [_stacked(a, length) for a in ins[num_consts + num_carry:]])
    outs = jaxpr.out_avals
    return list(outs[:num_carry]) + [_stacked(a, length) for a in outs[num_carry:]]


@scan_p.def_jvp
def _scan_jvp(primals, tangents, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    nc, nk = num_consts, num_carry
    ny = len(jaxpr.out_avals) - nk
    nz = [t is not None for t in tangents]
    const_nz, init_nz, xs_nz = _split3(nz, nc, nk)
    carry_nz = list(init_nz)
    for _ in range(nk + 1):
        jj, out_nz = _jvp_jaxpr(jaxpr, const_nz + carry_nz + xs_nz, carry_nz + [False] * ny)
        new = [a or b for a, b in zip(carry_nz, out_nz[:nk])]
        if new == carry_nz:
            break
        carry_nz = new
    ys_nz = out_nz[nk:]
    n_in = len(nz)
    n_ct, n_cct, n_xt = sum(const_nz), sum(carry_nz), sum(xs_nz)
    # jj inputs: consts, carry, xs, const tangents, carry tangents, xs tangents
    t0 = n_in
    in_order = (list(range(nc)) + list(range(t0, t0 + n_ct)) + list(range(nc, nc + nk))
                + list(range(t0 + n_ct, t0 + n_ct + n_cct)) + list(range(nc + nk, n_in))
                + list(range(t0 + n_ct + n_cct, t0 + n_ct + n_cct + n_xt)))
    # jj outputs: carry, ys, carry tangents, ys tangents
    n_yt = sum(ys_nz)
    o0 = nk + ny
    out_order = (list(range(nk)) + list(range(o0, o0 + n_cct)) + list(range(nk, nk + ny))
                 + list(range(o0 + n_cct, o0 + n_cct + n_yt)))
    body = _permute(jj, in_order, out_order)
    consts, init, xs = _split3(primals, nc, nk)
    c_t, i_t, x_t = _split3(tangents, nc, nk)
    init_avals = jaxpr.in_avals[nc:nc + nk]
    args = (consts + [t for t in c_t if t is not None] + init
            + [_instantiate(t, a) for t, a, z in zip(i_t, init_avals, carry_nz) if z]
            + xs + [t for t in x_t if t is not None])
    outs = scan_p.bind(*args, jaxpr=body, num_consts=nc + n_ct, num_carry=nk + n_cct,
                       length=length, reverse=reverse, unroll=unroll)
    carry, carry_t, rest = _split3(outs, nk, n_cct)
    ys, ys_t = rest[:ny], rest[ny:]
    cit, yit = iter(carry_t), iter(ys_t)
    return (carry + ys,
            [next(cit) if z else None for z in carry_nz] + [next(yit) if z else None
                                                            for z in ys_nz])


def _scan_split(params, unknown):
    """Under linearize: the known part of the loop runs now, as a scan that also emits the
    per-iteration residuals as extra stacked outputs; the unknown part is a scan over those
    residuals and the unknown inputs. Residuals that are simply a known const or xs of the
    loop are passed as they are (a weight matrix is not stacked once per step)."""
    jaxpr = params["jaxpr"]
    nc, nk, length = params["num_consts"], params["num_carry"], params["length"]
    ny = len(jaxpr.out_avals) - nk
    const_uk, init_uk, xs_uk = _split3(unknown, nc, nk)
    carry_uk = list(init_uk)
    for _ in range(nk + 1):        # which carries are unknown: a fixed point
        known, unk, out_uk, res_src = _partial_eval(jaxpr, const_uk + carry_uk + xs_uk,
                                                    carry_uk + [False] * ny)
        new = [a or b for a, b in zip(carry_uk, out_uk[:nk])]
        if new == carry_uk:
            break
        carry_uk = new
    ys_uk = out_uk[nk:]
    kinds = ["const" if r is not None and r < nc else
             "xs" if r is not None and r >= nc + nk else "stacked" for r in res_src]
    kj = known.jaxpr
    n_kout = len(kj.outvars) - len(res_src)
    stacked_out = [v for v, k in zip(kj.outvars[n_kout:], kinds) if k == "stacked"]
    known_body = ClosedJaxpr(Jaxpr(kj.constvars, kj.invars, kj.outvars[:n_kout] + stacked_out,
                                   kj.eqns), known.consts)
    flags = const_uk + carry_uk + xs_uk
    kparams = dict(jaxpr=known_body, num_consts=nc - sum(const_uk),
                   num_carry=nk - sum(carry_uk), length=length, reverse=params["reverse"],
                   unroll=params["unroll"])
    known_eqn = (kparams, [i for i, u in enumerate(flags) if not u])
    known_out = ([j for j in range(nk) if not carry_uk[j]]
                 + [nk + j for j in range(ny) if not ys_uk[j]])
    n_stacked = len(stacked_out)
    if not any(out_uk):
        return _Split(known_eqn, known_out, n_stacked, None, [], out_uk)
    # the unknown scan: consts = (const residuals, unknown consts); carry = unknown carries;
    # xs = (xs / stacked residuals, unknown xs)
    uj = unk.jaxpr
    nres = len(res_src)
    res_vars, uk_in = uj.invars[:nres], uj.invars[nres:]
    n_ukc, n_ukk = sum(const_uk), sum(carry_uk)
    c_res = [v for v, k in zip(res_vars, kinds) if k == "const"]
    x_res = [v for v, k in zip(res_vars, kinds) if k != "const"]
    body = ClosedJaxpr(Jaxpr(uj.constvars, c_res + uk_in[:n_ukc] + uk_in[n_ukc:n_ukc + n_ukk]
                             + x_res + uk_in[n_ukc + n_ukk:], uj.outvars, uj.eqns),
                       unk.consts)
    c_ops, x_ops, j = [], [], 0
    for r, k in zip(res_src, kinds):
        if k == "const":
            c_ops.append(("arg", r))
        elif k == "xs":
            x_ops.append(("arg", r))
        else:
            x_ops.append(("res", j))
            j += 1
    ops = (c_ops + [("arg", i) for i in range(nc) if const_uk[i]]
           + [("arg", nc + i) for i in range(nk) if carry_uk[i]] + x_ops
           + [("arg", nc + nk + i) for i in range(len(xs_uk)) if xs_uk[i]])
    uparams = dict(jaxpr=body, num_consts=len(c_ops) + n_ukc, num_carry=n_ukk, length=length,
                   reverse=params["reverse"], unroll=params["unroll"])
    unknown_out = ([j for j in range(nk) if carry_uk[j]]
                   + [nk + j for j in range(ny) if ys_uk[j]])
    return _Split(known_eqn, known_out, n_stacked, (uparams, ops), unknown_out, out_uk)


_register_split(scan_p, _scan_split)


@scan_p.def_transpose
def _scan_transpose(cts, *args, jaxpr, num_consts, num_carry, length, reverse, unroll):
    """The backward pass of a linear scan is a scan running the other way: its carry holds
    the carry cotangents and the accumulated cotangents of linear consts; its xs are the
    residuals and the ys cotangents; its ys are the cotangents of linear xs."""
    nc, nk = num_consts, num_carry
    consts, init, xs = _split3(args, nc, nk)
    c_lin = [is_undefined(c) for c in consts]
    x_lin = [is_undefined(x) for x in xs]
    in_avals = jaxpr.in_avals
    c_avals, k_avals, x_avals = _split3(in_avals, nc, nk)
    out_avals = jaxpr.out_avals
    y_avals = out_avals[nk:]
    kc = [c for c in consts if not is_undefined(c)]
    kx = [x for x in xs if not is_undefined(x)]
    lc_avals = [a for a, l in zip(c_avals, c_lin) if l]
    ct_carry = [_instantiate(c, a) for c, a in zip(cts[:nk], out_avals[:nk])]
    ct_ys = [_instantiate(c, _stacked(a, length)) for c, a in zip(cts[nk:], y_avals)]
    n_kc, n_lc, n_kx = len(kc), len(lc_avals), len(kx)
    kx_avals = [a for a, l in zip(x_avals, x_lin) if not l]

    def body_t(*a):
        k_c = a[:n_kc]
        acc = a[n_kc:n_kc + n_lc]
        ctc = a[n_kc + n_lc:n_kc + n_lc + nk]
        rest = a[n_kc + n_lc + nk:]
        k_x, cty = rest[:n_kx], rest[n_kx:]
        kci, kxi = iter(k_c), iter(k_x)
        bargs = ([UndefinedPrimal(av) if l else next(kci) for av, l in zip(c_avals, c_lin)]
                 + [UndefinedPrimal(av) for av in k_avals]
                 + [UndefinedPrimal(av) if l else next(kxi) for av, l in zip(x_avals, x_lin)])
        res = backward_pass(jaxpr.jaxpr, jaxpr.consts, bargs, list(ctc) + list(cty))
        r_c, r_k, r_x = _split3(res, nc, nk)
        lax = _lax()
        new_acc = [s if r is None else lax.add(s, r)
                   for s, r in zip(acc, [r for r, l in zip(r_c, c_lin) if l])]
        ct_in = [_instantiate(r, av) for r, av in zip(r_k, k_avals)]
        ct_x = [_instantiate(r, av) for r, av, l in zip(r_x, x_avals, x_lin) if l]
        return new_acc + ct_in + ct_x

    body = _trace_jaxpr(body_t, [get_aval(c) for c in kc] + lc_avals + list(out_avals[:nk])
                        + kx_avals + list(y_avals))
    acc0 = [_zeros(a) for a in lc_avals]
    outs = scan_p.bind(*kc, *acc0, *ct_carry, *kx, *ct_ys, jaxpr=body, num_consts=n_kc,
                       num_carry=n_lc + nk, length=length, reverse=not reverse, unroll=unroll)
    ct_c, ct_init, ct_x = _split3(outs, n_lc, nk)
    cit, xit = iter(ct_c), iter(ct_x)
    return ([next(cit) if l else None for l in c_lin]
            + [c if is_undefined(i) else None for c, i in zip(ct_init, init)]
            + [next(xit) if l else None for l in x_lin])


def _scan_batch(trace, args, dims, *, jaxpr, num_consts, num_carry, length, reverse, unroll):
    size, name = trace.axis_size, trace.axis_name
    nc, nk = num_consts, num_carry
    ny = len(jaxpr.out_avals) - nk
    params = dict(jaxpr=jaxpr, num_consts=nc, num_carry=nk, length=length, reverse=reverse,
                  unroll=unroll)
    if all(d is None for d in dims) and name is None:
        return scan_p.bind(*args, **params), [None] * (nk + ny)
    consts, init, xs = _split3(args, nc, nk)
    c_d, i_d, x_d = _split3(dims, nc, nk)
    consts = [c if d is None else B.moveaxis(c, d, 0) for c, d in zip(consts, c_d)]
    init = [c if d is None else B.moveaxis(c, d, 0) for c, d in zip(init, i_d)]
    xs = [x if d is None else B.moveaxis(x, d, 1) for x, d in zip(xs, x_d)]
    const_b = [d is not None for d in c_d]
    xs_b = [d is not None for d in x_d]
    carry_b = [d is not None for d in i_d]
    for _ in range(nk + 1):
        body, out_b = _batch_jaxpr(jaxpr, size, const_b + carry_b + xs_b,
                                   carry_b + [False] * ny, name)
        new = [a or b for a, b in zip(carry_b, out_b[:nk])]
        if new == carry_b:
            break
        carry_b = new
    init = [B.broadcast_batched(c, size, 0) if b and d is None else c
            for c, b, d in zip(init, carry_b, i_d)]
    outs = scan_p.bind(*consts, *init, *xs, jaxpr=body, num_consts=nc, num_carry=nk,
                       length=length, reverse=reverse, unroll=unroll)
    return outs, [0 if b else None for b in carry_b] + [1 if b else None for b in out_b[nk:]]


scan_p.def_batch_trace_rule(_scan_batch)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Loop `carry, y = f(carry, x)` over the leading axis of `xs` (jax.lax.scan).

    Returns `(final_carry, ys)` with the `y`s stacked along a new leading axis (in the order of
    `xs`, also when `reverse=True`). `f` is traced once: a 10,000-step scan is one equation.
    `unroll=k` (a positive int; True: the whole length) puts `k` steps in each loop iteration
    (a scan over `length // k` chunks, then one over the remaining steps): the same values,
    fewer and longer iterations.
    """
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    init_flat, init_tree = tree_util.flatten(init)
    init_weak = [_is_weak(x) for x in init_flat]
    init_flat = [_leaf(x) for x in init_flat]
    xs_flat, xs_tree = tree_util.flatten(xs)
    xs_flat = [_leaf(x) for x in xs_flat]
    lengths = set()
    for x in xs_flat:
        a = get_aval(x)
        if a.ndim == 0:
            raise ValueError("scan got an xs leaf of shape () (a scalar): every leaf of xs "
                             "must have a leading axis to scan over")
        lengths.add(a.shape[0])
    if length is not None:
        length = int(length)
        if lengths and lengths != {length}:
            raise ValueError(f"scan got length argument {length} which disagrees with the "
                             f"leading axis sizes {sorted(lengths)} of xs")
    else:
        if len(lengths) > 1:
            raise ValueError(f"scan got values with different leading axis sizes: "
                             f"{sorted(lengths)}")
        if not lengths:
            raise ValueError("scan got no values to scan over and `length` not provided")
        length = lengths.pop()
    x_avals = [_unstacked(get_aval(x)) for x in xs_flat]
    if isinstance(unroll, bool):
        unroll = length if unroll else 1
    elif not isinstance(unroll, numbers.Integral) or unroll < 1:
        raise ValueError(f"scan: unroll must be a positive int or a bool, got {unroll!r}")
    unroll = max(min(int(unroll), length), 1)

    def trace_body(carry_avals):
        store = {}
        nk = len(carry_avals)

        def flat_fun(*leaves):
            carry = tree_util.unflatten(init_tree, list(leaves[:nk]))
            x = tree_util.unflatten(xs_tree, list(leaves[nk:]))
            out = f(carry, x)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("scan body function must return a pair (carry, y), got "
                                f"{type(out).__name__}")
            c_flat, store["c_tree"] = tree_util.flatten(out[0])
            y_flat, store["y_tree"] = tree_util.flatten(out[1])
            return [_leaf(o) for o in c_flat] + [_leaf(o) for o in y_flat]
        closed, consts = _trace(flat_fun, list(carry_avals) + x_avals)
        return closed, consts, store["c_tree"], store["y_tree"]

    carry_avals = [get_aval(x) for x in init_flat]
    closed, consts, c_tree, y_tree = trace_body(carry_avals)
    if c_tree != init_tree:
        raise TypeError("scan body function carry input and carry output must have the same "
                        f"pytree structure, but they differ: input {init_tree}, output {c_tree}")
    nk = len(init_flat)
    out_c = closed.out_avals[:nk]
    if any(a.shape == b.shape and a.dtype != b.dtype and w
           for a, b, w in zip(carry_avals, out_c, init_weak)):
        # a Python scalar in `init` takes the dtype the body gives that carry
        init_flat = [np.asarray(x, dtype=b.dtype) if w and a.shape == b.shape else x
                     for x, a, b, w in zip(init_flat, carry_avals, out_c, init_weak)]
        carry_avals = [get_aval(x) for x in init_flat]
        closed, consts, c_tree, y_tree = trace_body(carry_avals)
        out_c = closed.out_avals[:nk]
    _check_carry("scan", init_tree, carry_avals, out_c)
    if unroll > 1:
        outs = _scan_unrolled(closed, consts, init_flat, xs_flat, nk, length, reverse, unroll)
    else:
        outs = scan_p.bind(*consts, *init_flat, *xs_flat, jaxpr=closed, num_consts=len(consts),
                           num_carry=nk, length=length, reverse=bool(reverse), unroll=1)
    return (tree_util.unflatten(init_tree, outs[:nk]),
            tree_util.unflatten(y_tree, outs[nk:]))


def _scan_unrolled(closed, consts, init_flat, xs_flat, nk, length, reverse, k):
    """`scan` with `unroll=k`: a scan over `length // k` chunks whose body is `k` copies of
    the step body, then a scan over the remaining `length % k` steps (both in scan order).
    The same values as the rolled scan; fewer, longer loop iterations for the compiler."""
    lax = _lax()
    nc = len(consts)
    ny = len(closed.out_avals) - nk
    n_main, rem = divmod(length, k)
    in_avals = closed.in_avals
    chunk_avals = (list(in_avals[:nc + nk])
                   + [_stacked(a, k) for a in in_avals[nc + nk:]])

    def chunk_body(*a):
        cs, carry, xs = a[:nc], list(a[nc:nc + nk]), a[nc + nk:]
        ys = [None] * k
        for i in (reversed(range(k)) if reverse else range(k)):
            xi = [lax.index_in_dim(x, i, 0, keepdims=False) for x in xs]
            out = eval_jaxpr(closed.jaxpr, closed.consts, *cs, *carry, *xi)
            carry, ys[i] = list(out[:nk]), out[nk:]
        return carry + [lax.concatenate([lax.expand_dims(ys[i][j], (0,)) for i in range(k)], 0)
                        for j in range(ny)]

    body, extra = _trace(chunk_body, chunk_avals)
    # forward: chunks cover [0, n_main * k), the rest follows; reverse: the rest is [0, rem)
    split = rem if reverse else n_main * k
    main_xs = [x[split:] if reverse else x[:split] for x in xs_flat]
    rest_xs = [x[:split] if reverse else x[split:] for x in xs_flat]
    main_xs = [lax.reshape(x, (n_main, k) + tuple(get_aval(x).shape[1:])) for x in main_xs]
    outs = scan_p.bind(*extra, *consts, *init_flat, *main_xs, jaxpr=body,
                       num_consts=len(extra) + nc, num_carry=nk, length=n_main,
                       reverse=bool(reverse), unroll=1)
    carry = list(outs[:nk])
    ys = [lax.reshape(y, (n_main * k,) + tuple(get_aval(y).shape[2:])) for y in outs[nk:]]
    if rem:
        outs = scan_p.bind(*consts, *carry, *rest_xs, jaxpr=closed, num_consts=nc,
                           num_carry=nk, length=rem, reverse=bool(reverse), unroll=1)
        carry = list(outs[:nk])
        ys = [lax.concatenate([r, y] if reverse else [y, r], 0)
              for y, r in zip(ys, outs[nk:])]
    return carry + ys


# =============================================================================================
# while_loop
# =============================================================================================

while_p = Primitive("while", multiple_results=True)


@while_p.def_impl
def _while_impl(*args, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cc, bc, carry = _split3(args, cond_nconsts, body_nconsts)
    cj, bj = cond_jaxpr, body_jaxpr
    while bool(eval_jaxpr(cj.jaxpr, cj.consts, *cc, *carry)[0]):
        carry = eval_jaxpr(bj.jaxpr, bj.consts, *bc, *carry)
    return [np.asarray(c) for c in carry]


@while_p.def_abstract_eval
def _while_abstract(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    _check_operands("while", avals[:cond_nconsts] + avals[cond_nconsts + body_nconsts:],
                    cond_jaxpr.in_avals)
    _check_operands("while", avals[cond_nconsts:], body_jaxpr.in_avals)
    return list(body_jaxpr.out_avals)


def _ignore_extra_inputs(closed, positions_avals):
    """`closed` with unused inputs inserted: `positions_avals` is a list of (index, aval)
    giving where, in the new input list, the dummy inputs go."""
    j = closed.jaxpr
    invars = list(j.invars)
    for i, a in sorted(positions_avals):
        invars.insert(i, Var(a))
    return ClosedJaxpr(Jaxpr(j.constvars, invars, j.outvars, j.eqns), closed.consts)


@while_p.def_jvp
def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cn, bn = cond_nconsts, body_nconsts
    nz = [t is not None for t in tangents]
    _, bc_nz, init_nz = _split3(nz, cn, bn)
    nk = len(init_nz)
    carry_nz = list(init_nz)
    for _ in range(nk + 1):
        jj, out_nz = _jvp_jaxpr(body_jaxpr, bc_nz + carry_nz, carry_nz)
        new = [a or b for a, b in zip(carry_nz, out_nz)]
        if new == carry_nz:
            break
        carry_nz = new
    n_bt, n_kt = sum(bc_nz), sum(carry_nz)
    n_in = bn + nk
    in_order = (list(range(bn)) + list(range(n_in, n_in + n_bt)) + list(range(bn, n_in))
                + list(range(n_in + n_bt, n_in + n_bt + n_kt)))
    body = _permute(jj, in_order, list(range(nk + n_kt)))
    cond_new = _ignore_extra_inputs(
        cond_jaxpr, [(cn + nk + i, a) for i, a in
                     enumerate([a for a, z in zip(body_jaxpr.out_avals, carry_nz) if z])])
    cc, bc, init = _split3(primals, cn, bn)
    _, bc_t, init_t = _split3(tangents, cn, bn)
    args = (cc + bc + [t for t in bc_t if t is not None] + init
            + [_instantiate(t, a) for t, a, z in zip(init_t, body_jaxpr.out_avals, carry_nz)
               if z])
    outs = while_p.bind(*args, cond_jaxpr=cond_new, body_jaxpr=body, cond_nconsts=cn,
                        body_nconsts=bn + n_bt)
    it = iter(outs[nk:])
    return outs[:nk], [next(it) if z else None for z in carry_nz]


def _while_split(params, unknown):
    """Under linearize: the known carries come from a while over the known part, run now;
    the unknown carries from the whole loop, staged (it can be evaluated, JVP'd and batched,
    but not transposed: reverse mode through while_loop is an error)."""
    cj, bj = params["cond_jaxpr"], params["body_jaxpr"]
    cn, bn = params["cond_nconsts"], params["body_nconsts"]
    cc_uk, bc_uk, init_uk = _split3(unknown, cn, bn)
    nk = len(init_uk)
    carry_uk = list(init_uk)
    for _ in range(nk + 1):
        out_uk = _partial_eval(bj, bc_uk + carry_uk, False)[2]
        new = [a or b for a, b in zip(carry_uk, out_uk)]
        if new == carry_uk:
            break
        carry_uk = new
    pred_uk = _partial_eval(cj, cc_uk + carry_uk, False)[2][0]
    if pred_uk or all(carry_uk):
        return None
    kb = _partial_eval(bj, bc_uk + carry_uk, carry_uk)[0]
    n_k = nk - sum(carry_uk)
    kbj = kb.jaxpr
    kbody, _, used = dce_jaxpr(Jaxpr(kbj.constvars, kbj.invars, kbj.outvars[:n_k], kbj.eqns))
    kbody = ClosedJaxpr(kbody, [c for c, u in zip(kb.consts, used) if u])
    kcond = _partial_eval(cj, cc_uk + carry_uk, False)[0]
    kparams = dict(cond_jaxpr=kcond, body_jaxpr=kbody, cond_nconsts=cn - sum(cc_uk),
                   body_nconsts=bn - sum(bc_uk))
    flags = cc_uk + bc_uk + carry_uk
    known_eqn = (kparams, [i for i, u in enumerate(flags) if not u])
    unknown_eqn = (dict(params), [("arg", i) for i in range(len(flags))])
    return _Split(known_eqn, [j for j in range(nk) if not carry_uk[j]], 0, unknown_eqn,
                  [j if carry_uk[j] else None for j in range(nk)], carry_uk)


_register_split(while_p, _while_split)


@while_p.def_transpose
def _while_transpose(cts, *args, **params):
    raise ReverseModeLoopError(
        "Reverse-mode differentiation does not work for lax.while_loop (its trip count is "
        "only known at run time, so the loop cannot be run backwards). Use lax.scan, or "
        "lax.fori_loop with static (Python int) bounds, which lowers to a scan; forward mode "
        "(jvp, jacfwd) works with while_loop.")


def _while_batch(trace, args, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    size, name = trace.axis_size, trace.axis_name
    cn, bn = cond_nconsts, body_nconsts
    params = dict(cond_jaxpr=cond_jaxpr, body_jaxpr=body_jaxpr, cond_nconsts=cn,
                  body_nconsts=bn)
    nk = len(body_jaxpr.out_avals)
    if all(d is None for d in dims) and name is None:
        return while_p.bind(*args, **params), [None] * nk
    args = [a if d is None else B.moveaxis(a, d, 0) for a, d in zip(args, dims)]
    cc, bc, init = _split3(args, cn, bn)
    cc_b, bc_b, init_b = _split3([d is not None for d in dims], cn, bn)
    carry_b = list(init_b)
    pred_b = False
    for _ in range(nk + 2):
        _, out_b = _batch_jaxpr(body_jaxpr, size, bc_b + carry_b, carry_b, name)
        pred_b = _batch_jaxpr(cond_jaxpr, size, cc_b + carry_b, False, name)[1][0]
        new = [True] * nk if pred_b else [a or b for a, b in zip(carry_b, out_b)]
        if new == carry_b:
            break
        carry_b = new
    body_b, _ = _batch_jaxpr(body_jaxpr, size, bc_b + carry_b, carry_b, name)
    cond_b, _ = _batch_jaxpr(cond_jaxpr, size, cc_b + carry_b, pred_b, name)
    init = [B.broadcast_batched(c, size, 0) if b and not d else c
            for c, b, d in zip(init, carry_b, init_b)]
    if not pred_b:
        outs = while_p.bind(*cc, *bc, *init, cond_jaxpr=cond_b, body_jaxpr=body_b,
                            cond_nconsts=cn, body_nconsts=bn)
        return outs, [0 if b else None for b in carry_b]
    # batched predicate: loop while any example is running; finished examples keep their carry
    msg = first_listed(body_b, NOT_MASKABLE)
    if msg is not None:
        raise ValueError(msg)
    lax = _lax()
    c_avals = cond_b.in_avals
    k_avals = body_b.in_avals[bn:]

    def new_cond(*a):
        pred = eval_jaxpr(cond_b.jaxpr, cond_b.consts, *a)[0]
        return [lax.reduce_or(pred, (0,))]

    def new_body(*a):
        c_c, b_c, carry = _split3(a, cn, bn)
        pred = eval_jaxpr(cond_b.jaxpr, cond_b.consts, *c_c, *carry)[0]
        new = eval_jaxpr(body_b.jaxpr, body_b.consts, *b_c, *carry)
        outs = []
        for old, nw in zip(carry, new):
            which = lax.broadcast_in_dim(pred, get_aval(old).shape, (0,))
            outs.append(lax.select_n(which, old, nw))
        return outs

    ncond = _trace_jaxpr(new_cond, c_avals)
    nbody = _trace_jaxpr(new_body, list(c_avals[:cn]) + list(body_b.in_avals[:bn]) + k_avals)
    outs = while_p.bind(*cc, *cc, *bc, *init, cond_jaxpr=ncond, body_jaxpr=nbody,
                        cond_nconsts=cn, body_nconsts=cn + bn)
    return outs, [0] * nk


while_p.def_batch_trace_rule(_while_batch)


def while_loop(cond_fun, body_fun, init_val):
    """`while cond_fun(val): val = body_fun(val)`, as one primitive (jax.lax.while_loop).

    Forward-mode differentiable; reverse mode raises (use scan / fori_loop with static bounds).
    """
    if not (callable(cond_fun) and callable(body_fun)):
        raise TypeError("while_loop: cond_fun and body_fun must be callable")
    init_flat, init_tree = tree_util.flatten(init_val)
    init_weak = [_is_weak(x) for x in init_flat]
    init_flat = [_leaf(x) for x in init_flat]

    def trace_both(avals):
        store = {}

        def cond_flat(*leaves):
            p = cond_fun(tree_util.unflatten(init_tree, list(leaves)))
            p_flat, p_tree = tree_util.flatten(p)
            if len(p_flat) != 1:
                raise TypeError(f"while_loop cond_fun must return a boolean scalar, got {p_tree}")
            p = _leaf(p_flat[0])
            a = get_aval(p)
            if a.shape != () or a.dtype != np.bool_:
                raise TypeError("while_loop cond_fun must return a boolean scalar, but got "
                                f"output type {a.str_short()}")
            return [p]

        def body_flat(*leaves):
            out = body_fun(tree_util.unflatten(init_tree, list(leaves)))
            flat, store["tree"] = tree_util.flatten(out)
            return [_leaf(o) for o in flat]

        cj, cc = _trace(cond_flat, avals)
        bj, bc = _trace(body_flat, avals)
        return cj, cc, bj, bc, store["tree"]

    avals = [get_aval(x) for x in init_flat]
    cj, cc, bj, bc, out_tree = trace_both(avals)
    if out_tree != init_tree:
        raise TypeError("while_loop body function carry input and carry output must have the "
                        f"same pytree structure, but they differ: input {init_tree}, output "
                        f"{out_tree}")
    outs_a = bj.out_avals
    if any(a.shape == b.shape and a.dtype != b.dtype and w
           for a, b, w in zip(avals, outs_a, init_weak)):
        init_flat = [np.asarray(x, dtype=b.dtype) if w and a.shape == b.shape else x
                     for x, a, b, w in zip(init_flat, avals, outs_a, init_weak)]
        avals = [get_aval(x) for x in init_flat]
        cj, cc, bj, bc, out_tree = trace_both(avals)
    _check_carry("while_loop", init_tree, avals, bj.out_avals)
    outs = while_p.bind(*cc, *bc, *init_flat, cond_jaxpr=cj, body_jaxpr=bj,
                        cond_nconsts=len(cc), body_nconsts=len(bc))
    return tree_util.unflatten(init_tree, outs)


# =============================================================================================
# fori_loop, map
# =============================================================================================

def _static_int(x):
    if isinstance(x, Tracer):
        v = x.concrete_value()
        if v is None:
            return None
        x = v
    a = np.asarray(x)
    if a.shape != () or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"fori_loop bounds must be integer scalars, got {get_aval(a).str_short()}")
    return int(a)


def _checked_fori_body(body_fun, init_val):
    """`body_fun`, checked to return `init_val`'s tree structure and shapes: a mismatch is a
    TypeError naming fori_loop and the value's path (not the scan/while_loop it lowers to,
    whose carry has the loop index in front)."""
    init_leaves, init_tree = tree_util.flatten(init_val)
    init_shapes = [get_aval(_leaf(x)).shape for x in init_leaves]

    def checked(i, val):
        out = body_fun(i, val)
        leaves, tree = tree_util.flatten(out)
        if tree != init_tree:
            raise TypeError(f"fori_loop: body_fun must return a value of init_val's structure "
                            f"{init_tree}, got {tree}")
        for k, (o, want) in enumerate(zip(leaves, init_shapes)):
            have = get_aval(_leaf(o)).shape
            if have != want:
                path = tree_util.keystr(tree_util.leaves_with_path(init_val)[k][0])
                raise TypeError(f"fori_loop: body_fun returned shape {have} for val{path}, but "
                                f"init_val{path} has shape {want}: the loop value must keep its "
                                "shapes")
        return out

    return checked


def fori_loop(lower, upper, body_fun, init_val, *, unroll=None):
    """`for i in range(lower, upper): val = body_fun(i, val)` (jax.lax.fori_loop).

    With concrete (Python int) bounds this is a `scan` of known length, so it is
    reverse-differentiable; with traced bounds it is a `while_loop` (forward mode only).
    """
    if not callable(body_fun):
        raise TypeError("fori_loop: body_fun must be callable")
    body_fun = _checked_fori_body(body_fun, init_val)
    lo, hi = _static_int(lower), _static_int(upper)
    if type(lower) is int and type(upper) is int:
        # as JAX: Python bounds give an int32 index, weakly typed (so `carry * i` keeps a
        # float32 carry float32, where NumPy's rule for an int32 array would give float64)
        dtype = np.dtype(np.int32)
    else:
        dtype = np.result_type(get_aval(_leaf(lower)).dtype, get_aval(_leaf(upper)).dtype)
    if lo is not None and hi is not None:
        def step(carry, _):
            i, x = carry
            return (i + np.asarray(1, dtype), body_fun(weakened(i), x)), None

        (_, out), _ = scan(step, (np.asarray(lo, dtype), init_val), None,
                           length=max(hi - lo, 0), unroll=1 if unroll is None else unroll)
        return out
    lax = _lax()
    lower = lax.convert_element_type(_leaf(lower), dtype)
    upper = lax.convert_element_type(_leaf(upper), dtype)

    def body(c):
        i, x = c
        return (lax.add(i, np.asarray(1, dtype)), body_fun(weakened(i), x))

    _, out = while_loop(lambda c: lax.lt(c[0], upper), body, (lower, init_val))
    return out


def map(f, xs, *, batch_size=None):  # noqa: A001 - the jax.lax name
    """`stack([f(x) for x in xs])` over the leading axis, as a scan (jax.lax.map).

    With `batch_size`, each scan step applies `vmap(f)` to `batch_size` elements (the
    remainder is one more vmapped call)."""
    if batch_size is None:
        _, ys = scan(lambda _, x: (None, f(x)), None, xs)
        return ys
    from ... import numpy as tnp
    leaves, tree = tree_util.flatten(xs)
    if not leaves:
        raise ValueError("lax.map with batch_size needs at least one array to map over")
    n = get_aval(_leaf(leaves[0])).shape[0]
    bs = int(batch_size)
    if bs < 1:
        raise ValueError(f"lax.map: batch_size must be positive, got {batch_size}")
    nb, rem = divmod(n, bs)
    vf = B.vmap(f)
    parts = []
    if nb:
        main = tree_util.unflatten(tree, [tnp.reshape(_leaf(x)[:nb * bs], (nb, bs) + tuple(
            get_aval(_leaf(x)).shape[1:])) for x in leaves])
        _, ys = scan(lambda _, x: (None, vf(x)), None, main)
        parts.append(tree_util.map(lambda y: tnp.reshape(y, (nb * bs,) + tuple(y.shape[2:])),
                                   ys))
    if rem:
        parts.append(vf(tree_util.unflatten(tree, [_leaf(x)[nb * bs:] for x in leaves])))
    if len(parts) == 1:
        return parts[0]
    return tree_util.map(lambda a, b: tnp.concatenate([a, b], axis=0), parts[0], parts[1])
