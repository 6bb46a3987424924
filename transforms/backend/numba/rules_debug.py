"""Lowerings of the debugging/annotation primitives: `name` (`checkpoint_name`, an identity)
and `debug_callback` (`transforms.debug`)."""
from __future__ import annotations

from .lowering import register_lowering
from .rules_elementwise import register_pointwise


@register_pointwise("name")
def _name(ctx, x, *, name):
    return x


@register_lowering("debug_callback")
def _lower_debug_callback(ctx, eqn):
    """Call back into Python (`transforms.debug.dispatch`) through `numba.objmode`, with the
    operands as N-d arrays; the callback's registry key is a literal of the source. The objmode
    block sits in a small helper of its own: Numba mis-compiles objmode blocks placed directly
    inside branches and loops of a larger function."""
    from transforms.debug import register
    ctx.add_helper("debug_dispatch", "from transforms.debug import dispatch as _dbg_dispatch")
    key = register(eqn.params["callback"])
    names = [ctx.array(i) for i in range(len(eqn.invars))]
    params = ", ".join(f"x{i}" for i in range(len(names)))
    helper = f"_dbg_call_{key}"
    ctx.add_helper(helper, "\n".join([
        "@_njit(cache=True)",
        f"def {helper}({params}):",
        "    with _numba.objmode():",
        f"        _dbg_dispatch({key}{''.join(f', x{i}' for i in range(len(names)))})"]))
    ctx.emit(f"{helper}({', '.join(names)})")
