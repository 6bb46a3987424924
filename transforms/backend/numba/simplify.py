"""Algebraic simplification of `x + 0`, `0 + x` and `x - 0` before lowering.

`fusion.prepare` asks `zero_operand_identity` about every equation it keeps; an addition or
subtraction of an all-zero value whose result has exactly the shape and dtype of the other
operand is replaced by that operand (no loop, no buffer: when the result is an output of the
program, the runner returns the input itself). The zero values are tracked with
`ZeroValues`: a literal 0 (either sign), and what the primitives declared with
`registry.register_keeps_zero` (broadcast_in_dim, reshape, convert_element_type) make of a
zero value -- what `lax.full(shape, 0)`, `tnp.zeros_like` and instantiated symbolic-zero
gradients trace to. Which primitives return an operand when another is zero is declared by
their rules module too (`registry.register_zero_identity`: add, sub); nothing here knows a
primitive by name.

Why it matters: freezing parameters (`optim.set_to_zero` inside `multi_transform`, then
`apply_updates`) traces to `params + zeros` over every frozen leaf; without this rewrite a
fine-tuning step reads and writes all frozen parameters anew on every call.

Semantics: `x - 0` and `x + (-0.0)` are exact identities in IEEE arithmetic; `x + (+0.0)`
differs only for `x = -0.0` (the sum is `+0.0`). The rewrite keeps `-0.0` as `-0.0` -- what
`apply_updates` promises for a frozen parameter (it comes back bit-identical, NaN payloads
included), and what XLA's algebraic simplifier does for `x + 0` as well. Nothing is rewritten
when the shapes or dtypes differ (a smaller operand broadcast by the addition, an integer
operand promoted): the equation then stays as it is.
"""
from __future__ import annotations

import numpy as np

from ...ir import Literal, Var
from .registry import KEEPS_ZERO, ZERO_IDENTITIES


def _is_zero_literal(a):
    if not isinstance(a, Literal):
        return False
    try:
        v = np.asarray(a.val)
        return v.dtype.kind in "biufc" and not np.any(v)
    except (TypeError, ValueError):
        return False


class ZeroValues:
    """The Vars of a jaxpr being prepared that are known to hold zeros everywhere."""

    def __init__(self):
        self.vars = set()

    def is_zero(self, a):
        return _is_zero_literal(a) or (isinstance(a, Var) and a in self.vars)

    def note(self, eqn):
        """Record the outputs of kept equation `eqn` (operands already substituted) that are
        zeros everywhere."""
        if eqn.prim.name in KEEPS_ZERO and eqn.invars and len(eqn.outvars) == 1 \
                and self.is_zero(eqn.invars[0]):
            self.vars.add(eqn.outvars[0])


def zero_operand_identity(eqn, ins, zeros: ZeroValues):
    """The operand that `eqn` (operands `ins`, already substituted) returns unchanged --
    `x` for `add(x, 0)`, `add(0, x)`, `sub(x, 0)` of the same shape and dtype as the result
    -- or None."""
    zero_at = ZERO_IDENTITIES.get(eqn.prim.name)
    if zero_at is None or len(ins) != 2 or len(eqn.outvars) != 1:
        return None
    out = eqn.outvars[0].aval
    for k in zero_at:
        x = ins[1 - k]
        if zeros.is_zero(ins[k]) and isinstance(x, (Var, Literal)) and x.aval == out:
            return x
    return None
