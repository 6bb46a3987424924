"""The IR: a jaxpr is a list of equations over typed variables, closed over constants.

    { lambda c:f32[3] ; a:f32[3]. let b:f32[3] = mul a c; d:f32[] = reduce_sum[axes=(0,)] b in (d,) }

`ClosedJaxpr` pairs a jaxpr with the values of its constvars. `eval_jaxpr` binds every equation
with the *current* trace, so evaluating a jaxpr inside any transform applies that transform.
"""
from __future__ import annotations

import numpy as np

from .core import ShapedArray, get_aval


class Var:
    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var({self.aval.str_short()})@{id(self):x}"


class Literal:
    """A scalar constant written inline in the IR."""
    __slots__ = ("val", "aval")

    def __init__(self, val):
        self.val = val
        self.aval = get_aval(val)

    def __repr__(self):
        return f"Literal({self.val!r})"


class Eqn:
    __slots__ = ("prim", "invars", "outvars", "params", "source_info")

    def __init__(self, prim, invars, outvars, params, source_info=None):
        self.prim, self.invars, self.outvars = prim, invars, outvars
        self.params, self.source_info = params, source_info

    def __repr__(self):
        return f"Eqn({self.prim.name}, {len(self.invars)} in, {len(self.outvars)} out)"


class Jaxpr:
    __slots__ = ("constvars", "invars", "outvars", "eqns")

    def __init__(self, constvars, invars, outvars, eqns):
        self.constvars, self.invars = list(constvars), list(invars)
        self.outvars, self.eqns = list(outvars), list(eqns)

    @property
    def in_avals(self):
        return [v.aval for v in self.invars]

    @property
    def out_avals(self):
        return [v.aval for v in self.outvars]

    def __str__(self):
        return pp_jaxpr(self)


class ClosedJaxpr:
    __slots__ = ("jaxpr", "consts")

    def __init__(self, jaxpr: Jaxpr, consts):
        assert len(consts) == len(jaxpr.constvars)
        self.jaxpr, self.consts = jaxpr, list(consts)

    in_avals = property(lambda self: self.jaxpr.in_avals)
    out_avals = property(lambda self: self.jaxpr.out_avals)
    eqns = property(lambda self: self.jaxpr.eqns)

    def __str__(self):
        return pp_jaxpr(self.jaxpr)

    __repr__ = __str__

    def __call__(self, *args):
        return eval_jaxpr(self.jaxpr, self.consts, *args)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def eval_jaxpr(jaxpr: Jaxpr, consts, *args):
    """Evaluate `jaxpr` by binding each equation in the current trace. Returns a list."""
    env = {}

    def read(v):
        return v.val if type(v) is Literal else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    if len(args) != len(jaxpr.invars):
        raise TypeError(f"jaxpr takes {len(jaxpr.invars)} arguments, got {len(args)}")
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        out = eqn.prim.bind(*[read(v) for v in eqn.invars], **eqn.params)
        if eqn.prim.multiple_results:
            for v, x in zip(eqn.outvars, out):
                env[v] = x
        else:
            env[eqn.outvars[0]] = out
    return [read(v) for v in jaxpr.outvars]


# ---------------------------------------------------------------------------------------------
# Dead-code elimination
# ---------------------------------------------------------------------------------------------

# Primitives with effects are never removed, even when their outputs are unused.
EFFECTFUL = set()


def dce_jaxpr(jaxpr: Jaxpr, used_outputs=None, prune_invars=False):
    """Drop equations whose results are unused. Returns (new_jaxpr, used_invars mask)."""
    outvars = jaxpr.outvars if used_outputs is None else \
        [v for v, u in zip(jaxpr.outvars, used_outputs) if u]
    live = {v for v in outvars if isinstance(v, Var)}
    new_eqns = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.prim.name in EFFECTFUL or any(v in live for v in eqn.outvars):
            new_eqns.append(eqn)
            live.update(v for v in eqn.invars if isinstance(v, Var))
    new_eqns.reverse()
    used_in = [v in live for v in jaxpr.invars]
    invars = [v for v, u in zip(jaxpr.invars, used_in) if u] if prune_invars else jaxpr.invars
    used_consts = [v in live for v in jaxpr.constvars]
    constvars = [v for v, u in zip(jaxpr.constvars, used_consts) if u]
    new = Jaxpr(constvars, invars, outvars, new_eqns)
    return new, used_in, used_consts


def dce_closed(closed: ClosedJaxpr) -> ClosedJaxpr:
    new, _, used_consts = dce_jaxpr(closed.jaxpr)
    return ClosedJaxpr(new, [c for c, u in zip(closed.consts, used_consts) if u])


# ---------------------------------------------------------------------------------------------
# Pretty-printing
# ---------------------------------------------------------------------------------------------

def _var_names():
    """a, b, ..., z, ba, bb, ... (base 26 with a = 0, as JAX names variables)."""
    import itertools
    for n in itertools.count():
        s = ""
        while not s or n:
            n, i = divmod(n, 26)
            s = chr(97 + i) + s
        yield s


class _Namer:
    def __init__(self):
        self.names = {}
        self.gen = _var_names()

    def __call__(self, v):
        if type(v) is Literal:
            val = v.val
            if isinstance(val, np.ndarray) and val.ndim == 0:
                val = val.item()
            if isinstance(val, (bool, np.bool_)):
                return str(bool(val))
            return repr(val)
        if v not in self.names:
            self.names[v] = next(self.gen)
        return self.names[v]


def _pp_param(k, v, namer, indent):
    from .ir import ClosedJaxpr, Jaxpr  # noqa: F401 (self-import for clarity)
    if isinstance(v, ClosedJaxpr):
        return f"{k}=" + _pp(v.jaxpr, namer, indent + 2)
    if isinstance(v, Jaxpr):
        return f"{k}=" + _pp(v, namer, indent + 2)
    if isinstance(v, (tuple, list)) and v and all(isinstance(b, (ClosedJaxpr, Jaxpr)) for b in v):
        inner = ", ".join(_pp(b.jaxpr if isinstance(b, ClosedJaxpr) else b, namer, indent + 2)
                          for b in v)
        return f"{k}=({inner})"
    if isinstance(v, np.dtype):
        return f"{k}={v.name}"
    if callable(v) and not isinstance(v, type):
        return f"{k}={getattr(v, '__name__', type(v).__name__)}"
    return f"{k}={v}"


def _pp(jaxpr: Jaxpr, namer, indent=0):
    def typed(v):
        return f"{namer(v)}:{v.aval.str_short()}"

    pad = " " * (indent + 4)        # JAX indents equations by 4 and `in` by 2
    consts = " ".join(typed(v) for v in jaxpr.constvars)
    ins = " ".join(typed(v) for v in jaxpr.invars)
    lines = []
    for eqn in jaxpr.eqns:
        lhs = " ".join(typed(v) for v in eqn.outvars) or "_"
        params = " ".join(_pp_param(k, v, namer, indent + 2) for k, v in eqn.params.items())
        params = f"[{params}]" if params else ""
        rhs = " ".join(namer(v) for v in eqn.invars)
        lines.append(f"{pad}{lhs} = {eqn.prim.name}{params} {rhs}".rstrip())
    outs = ", ".join(namer(v) for v in jaxpr.outvars)
    head = f"{{ lambda {consts + ' ' if consts else ''}; {ins}. let"
    if not lines:
        return f"{head} in ({outs}{',' if len(jaxpr.outvars) == 1 else ''}) }}"
    one_line = f"{head} {'; '.join(l.strip() for l in lines)} in ({outs}{',' if len(jaxpr.outvars) == 1 else ''}) }}"
    if len(one_line) <= 80 and "lambda" not in one_line[9:]:
        return one_line
    body = "\n".join(lines)
    return f"{head}\n{body}\n{' ' * indent}  in ({outs}{',' if len(jaxpr.outvars) == 1 else ''}) }}"


def pp_jaxpr(jaxpr: Jaxpr) -> str:
    return _pp(jaxpr, _Namer())
