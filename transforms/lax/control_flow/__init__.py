"""Structured control flow: cond / switch, scan, while_loop, and fori_loop / map on top.

Three primitives, each carrying its body as a `ClosedJaxpr` traced once from the user's
function (closed-over values become explicit operands, so every transform sees them):

    cond[branches]                        (index, *operands) -> outs
    scan[jaxpr, num_consts, num_carry, length, reverse, unroll]
                                          (*consts, *init, *xs) -> (*final_carry, *stacked_ys)
    while[cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts]
                                          (*cond_consts, *body_consts, *init) -> final_carry

Every rule sits beside its primitive: NumPy implementation (only the taken branch runs; loops
run in Python over `eval_jaxpr`), abstract eval, JVP (the body's JVP traced into a new body;
loop carries iterate to a fixed point of which tangents are non-zero), partial evaluation
(under `linearize` an equation with known and unknown inputs is split into a known equation,
evaluated now, and an unknown one, staged: `staging_rule` on a partial StagingTrace and the
same split serves `interpreters.partial_eval.partial_eval_jaxpr`, e.g. of a pjit body),
transpose (cond: a cond of transposed branches; scan: a *reversed* scan of the transposed body;
while: an error naming scan/fori_loop), and batching (`batch_trace_rule`). Numba lowerings
are in `transforms/backend/numba/rules_control_flow.py`.

Bodies are split by *tracing* (`interpreters.partial_eval.partial_eval_jaxpr`): the body is
evaluated on a partial staging trace over a staging trace of its known part, so a cond / scan /
while / pjit nested inside a body is split by its own rule rather than moved wholesale to the unknown side (which would
make the backward pass try to transpose non-linear primal work).

Layout (as JAX's): `common.py` (tracing bodies, the equation-splitting machinery shared by the
three primitives), `conditionals.py` (cond / switch), `loops.py` (scan, while_loop,
fori_loop, map). This package re-exports the public names, so `transforms.lax.control_flow`
is the import path.
"""
from __future__ import annotations

from .conditionals import cond, cond_p, switch
from .loops import fori_loop, map, scan, scan_p, while_loop, while_p  # noqa: A004

__all__ = ["cond", "switch", "scan", "while_loop", "fori_loop", "map", "cond_p", "scan_p",
           "while_p"]
