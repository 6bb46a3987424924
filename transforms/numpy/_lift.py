"""tnp results inside transformations are values of the innermost trace, as JAX arrays are.

Eagerly (no transformation active) a `tnp` function returns NumPy arrays. Inside `jit`, `vmap`
or `grad`, a result that is still a NumPy array (a constructor's, or one computed from
concrete inputs only) is lifted into the current trace (`core.Trace.lift`): it keeps its
concrete value, and it can be indexed by a tracer and has `.at`, like the JAX array that
`jnp` would return there. Every public `tnp` function goes through `lifting` once, when the
namespace is built (NumPy's own functions that tnp re-exports unchanged excepted); the
library's own `tnp` modules call each other unwrapped."""
from __future__ import annotations

import functools
import types

from ..core import EVAL_TRACE, _state, lift_concrete

_WRAPPABLE = (types.FunctionType, types.BuiltinFunctionType)
_WRAPPED = {}                 # function -> its wrapper


def lifting(f):
    """`f` whose array results are lifted into the current trace (see the module docstring);
    outside every transformation the wrapper costs one trace check."""
    if not isinstance(f, _WRAPPABLE) or getattr(f, "_tnp_lifting", False):
        return f
    if (getattr(f, "__module__", None) or "").split(".")[0] == "numpy":
        # NumPy's own functions re-exported as they are (`tnp.iterable is np.iterable`, the
        # shape-only index helpers such as `tnp.tril_indices`): they stay NumPy's
        return f

    done = _WRAPPED.get(f)
    if done is not None:                # an alias (`tnp.acos is tnp.arccos`) stays one object
        return done

    # a weak-type wrapper (`_weak.py`) only calls its function eagerly: eager calls skip it,
    # so a `tnp` call outside transformations costs one wrapper, not two
    eager = getattr(f, "_tnp_eager", f)

    def lifted(*args, **kwargs):
        if _state.trace is EVAL_TRACE:
            return eager(*args, **kwargs)
        return lift_concrete(f(*args, **kwargs))

    try:
        functools.update_wrapper(lifted, f)
    except AttributeError:          # some builtins lack attributes update_wrapper copies
        lifted.__name__ = getattr(f, "__name__", "lifted")
        lifted.__doc__ = getattr(f, "__doc__", None)
    lifted._tnp_lifting = True
    _WRAPPED[f] = lifted
    return lifted
