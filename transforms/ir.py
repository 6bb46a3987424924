"""The IR: a jaxpr is a list of equations over typed variables, closed over constants.

    { lambda c:f32[3] ; a:f32[3]. let b:f32[3] = mul a c; d:f32[] = reduce_sum[axes=(0,)] b in (d,) }

`ClosedJaxpr` pairs a jaxpr with the values of its constvars. `eval_jaxpr` binds every equation
with the *current* trace, so evaluating a jaxpr inside any transform applies that transform.
`check_jaxpr` type-checks a jaxpr (run on every built jaxpr under `jax_enable_checks`).
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

    @property
    def primitive(self):
        """The equation's primitive (JAX's name for `prim`: code walking a jaxpr reads
        `eqn.primitive.name`)."""
        return self.prim

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

# Primitives a compiled program must not contain, name -> the ValueError's message: they only
# exist to be rewritten by a transformation first (checkify's `check`).
NOT_COMPILABLE = {}
# Primitives whose effect cannot be masked per batch element, name -> the ValueError's
# message: a vmapped while_loop with a batched predicate keeps running the body on finished
# elements, so such an equation in its body would act on stale values (checkify's `check`).
NOT_MASKABLE = {}


def first_listed(jaxpr, table) -> str | None:
    """`table[name]` for the first equation of `jaxpr` (bodies included) named in `table`."""
    if not table:
        return None
    for eqn in (jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr).eqns:
        msg = table.get(eqn.prim.name)
        if msg is not None:
            return msg
        for v in eqn.params.values():
            for j in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(j, (Jaxpr, ClosedJaxpr)):
                    msg = first_listed(j, table)
                    if msg is not None:
                        return msg
    return None


def not_compilable(jaxpr) -> str | None:
    """The message of the first `NOT_COMPILABLE` equation in `jaxpr` (bodies included)."""
    return first_listed(jaxpr, NOT_COMPILABLE)


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


# ---------------------------------------------------------------------------------------------
# Type checking
# ---------------------------------------------------------------------------------------------

class JaxprTypeError(TypeError):
    """A jaxpr is ill-formed (raised by `check_jaxpr`, naming the offending equation)."""


def check_jaxpr(jaxpr, consts=None):
    """Check that `jaxpr` (a `Jaxpr` or `ClosedJaxpr`) is well formed; raise `JaxprTypeError`
    naming the first offending equation otherwise. Returns None.

    Checked: every variable is defined once (as a constvar, an input or an equation output)
    before it is read; each equation's output types equal what its primitive's abstract
    evaluation gives for its input types (bodies of higher-order primitives are checked too);
    each closed-over constant has its constvar's type. A debugging aid for whoever writes a
    transformation or a primitive rule; `config.update("jax_enable_checks", True)` runs it on
    every jaxpr the library builds.
    """
    if isinstance(jaxpr, ClosedJaxpr):
        jaxpr, consts = jaxpr.jaxpr, jaxpr.consts
    _check(jaxpr, consts, set())


def _check(jaxpr, consts, seen_closed):
    defined = set()

    def define(v, where):
        if type(v) is not Var:
            raise JaxprTypeError(f"{where}: expected a variable, got {v!r}")
        if v in defined:
            raise JaxprTypeError(f"{where}: variable {_name(v)} is defined twice")
        defined.add(v)

    def read(v, where):
        if type(v) is Literal:
            return v.aval
        if type(v) is not Var:
            raise JaxprTypeError(f"{where}: expected a variable or literal, got {v!r}")
        if v not in defined:
            raise JaxprTypeError(f"{where}: variable {_name(v)} is read before it is defined")
        return v.aval

    if consts is not None and len(consts) != len(jaxpr.constvars):
        raise JaxprTypeError(f"{len(jaxpr.constvars)} constvars but {len(consts)} constants")
    for i, v in enumerate(jaxpr.constvars):
        define(v, f"constvar {i}")
        if consts is not None:
            c = consts[i]
            a = c.aval if hasattr(c, "aval") else get_aval(c)
            if _strip(a) != _strip(v.aval):
                raise JaxprTypeError(f"constant {i} has type {a.str_short()} but its constvar "
                                     f"is {v.aval.str_short()}")
    for i, v in enumerate(jaxpr.invars):
        define(v, f"input {i}")
    for k, eqn in enumerate(jaxpr.eqns):
        where = _eqn_where(k, eqn)
        in_avals = [read(v, where) for v in eqn.invars]
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                if isinstance(sub, ClosedJaxpr) and id(sub) not in seen_closed:
                    seen_closed.add(id(sub))
                    try:
                        _check(sub.jaxpr, sub.consts, seen_closed)
                    except JaxprTypeError as e:
                        raise JaxprTypeError(f"{where}, in its body: {e}") from None
        if eqn.prim.abstract_eval is None:
            raise JaxprTypeError(f"{where}: primitive has no abstract evaluation rule")
        try:
            out = eqn.prim.abstract_eval(*in_avals, **eqn.params)
        except Exception as e:      # noqa: BLE001 - re-raised with the equation named
            raise JaxprTypeError(f"{where}: the primitive rejects its input types "
                                 f"({', '.join(a.str_short() for a in in_avals)}): {e}") from e
        out = list(out) if eqn.prim.multiple_results else [out]
        if len(out) != len(eqn.outvars):
            raise JaxprTypeError(f"{where}: {len(eqn.outvars)} output variables but the "
                                 f"primitive gives {len(out)} outputs")
        for j, (v, a) in enumerate(zip(eqn.outvars, out)):
            define(v, where)
            if _strip(a) != _strip(v.aval):
                raise JaxprTypeError(f"{where}: output {j} is typed {v.aval.str_short()} but "
                                     f"the primitive gives {a.str_short()}")
    for i, v in enumerate(jaxpr.outvars):
        read(v, f"output {i}")


def _strip(aval):
    return (tuple(aval.shape), np.dtype(aval.dtype))


def _name(v):
    return f"{v.aval.str_short()}@{id(v):x}"


def _eqn_where(k, eqn):
    info = "" if eqn.source_info is None else f" (from {eqn.source_info})"
    return f"equation {k} '{eqn.prim.name}'{info}"
