"""`transforms.numpy` (tnp): NumPy's API over the primitives.

Same signatures and dtype rules as NumPy 2 (NEP 50: Python scalars are weak). On NumPy inputs
outside any transform the functions run eagerly and return NumPy arrays; inside a transform
they act on tracers.
"""
import types as _types

from . import (_aliases, _construct, _functional, _indexing, _math_extra, _math_more, _ops,
               _poly_windows, _rearrange, _setops, _shape_ops, _sorting, _weak)
from . import linalg  # noqa: F401
from . import fft  # noqa: F401
from ._methods import install as _install
from ._lift import lifting as _lifting


_INTERNAL = {"EVAL_TRACE", "ShapeError", "Tracer", "asarray_of", "concrete_or_error",
             "current_trace", "dtype_of", "get_aval", "promote", "promote_dtypes", "result_type_",
             "to_float", "ufunc_dtype", "ufunc_result_dtype"}


def _export(module):
    for _name, _val in vars(module).items():
        if _name.startswith("_") or _name in _INTERNAL or isinstance(_val, _types.ModuleType):
            continue
        if getattr(_val, "__module__", module.__name__) in ("builtins", "typing", "__future__"):
            continue
        globals()[_name] = _lifting(_val)


# JAX's weak-type rules for traced values, on every path to the functions (before export)
_weak.apply([_ops, _shape_ops, _indexing, _math_extra, _sorting, _construct, _aliases,
             _rearrange, _functional, _math_more, _poly_windows, _setops])
_export(_ops)
_export(_shape_ops)
_export(_math_extra)
_export(_sorting)
_export(_construct)
_export(_aliases)
_export(_rearrange)
_export(_functional)
_export(_math_more)
_export(_poly_windows)
_export(_setops)      # last: its where/nonzero (with size=) replace _ops' ones
_install()
for _sub in (linalg, fft):      # their public functions too (internal calls then lift as well)
    for _name, _val in list(vars(_sub).items()):
        if not _name.startswith("_") and not isinstance(_val, _types.ModuleType):
            setattr(_sub, _name, _lifting(_val))
del _install, _export, _lifting, _sub, _name, _val

from . import _docs as _docs_table  # noqa: E402

_docs_table.install(globals())     # docstrings of the factory-made NumPy mirrors
del _docs_table

import types as _types_all  # noqa: E402

# the public names (pdoc documents re-exported names only when they are listed here)
__all__ = sorted(_n for _n, _v in globals().items()
                 if not _n.startswith("_") and not isinstance(_v, _types_all.ModuleType))
del _types_all
