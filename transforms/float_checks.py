"""`jax_debug_nans` / `jax_debug_infs`: raise `FloatingPointError` where a NaN (or inf) is made.

As in JAX: with a flag on, every eager primitive's floating-point outputs are checked and the
first NaN (inf) raises naming the primitive. A jitted call checks its outputs; when one holds a
NaN, its traced program is run again de-optimized (primitive by primitive, nested `jit`s
entered) so the error can name the primitive that made it, and otherwise names the jitted
function. Off (the default),
nothing is checked: the flags cost one module-attribute read per eager primitive and per
jitted call.
"""
from __future__ import annotations

import numpy as np

from .config import config as _config


def enabled():
    """Either flag is on."""
    return _config.debug_floats


def _invalid(x):
    """'nan' or 'inf' when the array `x` holds a value the flags ask to catch, else None."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind not in ("f", "c"):
        return None
    values = _config._values
    if values["jax_debug_nans"] and np.isnan(x).any():
        return "nan"
    if values["jax_debug_infs"] and np.isinf(x).any():
        return "inf"
    return None


def check_outputs(what, outs):
    """Raise `FloatingPointError` if an array in `outs` (one array or a sequence) holds a
    value the flags catch; `what` names the computation that made it."""
    for x in (outs if isinstance(outs, (list, tuple)) else (outs,)):
        bad = _invalid(x)
        if bad is not None:
            raise FloatingPointError(f"invalid value ({bad}) encountered in {what}")


def _eval_checked(closed, args):
    """Evaluate a ClosedJaxpr equation by equation in the eager interpreter (which checks
    each primitive's outputs), entering nested `jit`s instead of running their compiled
    code: the de-optimized run, even where the user's function works on plain NumPy arrays
    whose own operators no check would see."""
    from .ir import Literal
    jaxpr = closed.jaxpr
    env = dict(zip(jaxpr.constvars, closed.consts))
    env.update(zip(jaxpr.invars, args))
    read = lambda v: v.val if type(v) is Literal else env[v]     # noqa: E731
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        if eqn.prim.name == "pjit":
            out = _eval_checked(eqn.params["jaxpr"], ins)
        else:
            out = eqn.prim.bind(*ins, **eqn.params)
        outs = out if eqn.prim.multiple_results else [out]
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]


def check_jit_outputs(name, outs, closed, leaves):
    """The check after a jitted call of the program `closed` on the flat arguments `leaves`:
    on an invalid output, evaluate the program de-optimized so the eager check names the
    primitive that made it; if that run is clean (the compiled code computed differently),
    name the jitted function."""
    try:
        check_outputs(f"jit({name})", outs)
    except FloatingPointError as compiled_error:
        _eval_checked(closed, [np.asarray(x) for x in leaves])
        raise FloatingPointError(
            f"{compiled_error}. Because jax_debug_nans/jax_debug_infs is set, the program was "
            "run again de-optimized (without compiling) to name the operation, but that run "
            "made no invalid value: the compiled code computed differently (e.g. fused or "
            "reassociated arithmetic)") from None
