"""Transposition of linear jaxprs: the backward pass of reverse mode.

Equations whose inputs are all known are evaluated forward first (they appear inside the
bodies of higher-order primitives, e.g. a jitted function's recomputed primal); the linear
equations are then visited in reverse, each primitive's `transpose` rule mapping output
cotangents to input cotangents. Every rule binds ordinary primitives, so the backward pass can
itself be differentiated, batched and compiled.
"""
from __future__ import annotations

from ..ir import Literal, Var


class UndefinedPrimal:
    """Marks a linear input of an equation being transposed: only its aval is known."""
    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self):
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined(x):
    """Whether `x` is a linear input being transposed (an `UndefinedPrimal`)."""
    return type(x) is UndefinedPrimal


def _add_ct(a, b):
    from ..lax.elementwise import add_tangents
    return add_tangents(a, b)


def backward_pass(jaxpr, consts, args, cts_out):
    """Cotangents for the `UndefinedPrimal` entries of `args` (None for a zero cotangent)."""
    env = {}
    linear = set()
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        if is_undefined(a):
            linear.add(v)
        else:
            env[v] = a

    def read(v):
        return v.val if type(v) is Literal else env[v]

    lin_eqns = []
    for eqn in jaxpr.eqns:
        if any(type(v) is Var and v in linear for v in eqn.invars):
            lin_eqns.append(eqn)
            linear.update(eqn.outvars)
        else:
            out = eqn.prim.bind(*[read(v) for v in eqn.invars], **eqn.params)
            if eqn.prim.multiple_results:
                env.update(zip(eqn.outvars, out))
            else:
                env[eqn.outvars[0]] = out

    ct_env = {}
    for v, ct in zip(jaxpr.outvars, cts_out):
        if type(v) is Var and v in linear and ct is not None:
            ct_env[v] = _add_ct(ct_env.get(v), ct)

    for eqn in reversed(lin_eqns):
        cts = [ct_env.pop(v, None) for v in eqn.outvars]
        if all(c is None for c in cts):
            continue
        ins = [UndefinedPrimal(v.aval) if type(v) is Var and v in linear else read(v)
               for v in eqn.invars]
        rule = eqn.prim.transpose
        if rule is None:
            raise NotImplementedError(
                f"reverse-mode differentiation of '{eqn.prim.name}' is not implemented "
                f"(it has no transpose rule){'' if eqn.source_info is None else ' at ' + str(eqn.source_info)}")
        ct_in = rule(cts if eqn.prim.multiple_results else cts[0], *ins, **eqn.params)
        for v, c in zip(eqn.invars, ct_in):
            if c is not None and type(v) is Var and v in linear:
                ct_env[v] = _add_ct(ct_env.get(v), c)

    return [ct_env.get(v) if is_undefined(a) else None for v, a in zip(jaxpr.invars, args)]


__all__ = ["backward_pass", "UndefinedPrimal", "is_undefined"]
