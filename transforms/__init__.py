"""transforms: JAX-style composable function transformations over NumPy, compiled with Numba.

    import transforms as T
    import transforms.numpy as tnp
    from transforms import lax, random, tree
"""
from . import tree  # noqa: F401
from . import tree_util  # noqa: F401
from . import lax  # noqa: F401
from . import numpy  # noqa: F401  (installs tracer operators)
from . import random  # noqa: F401
from . import nn  # noqa: F401
from .config import config  # noqa: F401
from .api import (ShapeDtypeStruct, block_until_ready, device_get, device_put,  # noqa: F401
                  eval_shape, grad, hessian, jacfwd, jacrev, jvp, linearize, make_jaxpr,
                  value_and_grad, vjp)
from .interpreters.batching import vmap  # noqa: F401
from .core import Tracer  # noqa: F401  (isinstance(x, T.Tracer): is x a traced value?)
from .api_extras import (Array, custom_gradient, disable_jit, jacobian,  # noqa: F401
                         linear_transpose, named_scope, typeof)
from .jit import clear_caches, jit  # noqa: F401
from .lax.misc import stop_gradient  # noqa: F401
from .custom_derivatives import custom_jvp, custom_vjp  # noqa: F401
from .checkpoint import checkpoint, remat  # noqa: F401
from . import ad_checkpoint  # noqa: F401
from . import debug  # noqa: F401
from . import distributed  # noqa: F401
from .distributed import process_count, process_index  # noqa: F401
from .lax.collectives import UnboundAxisNameError  # noqa: F401

from .ad_checkpoint import checkpoint_policies  # noqa: F401
from .errors import (ConcretizationTypeError, NonDifferentiableError, ShapeError,  # noqa: F401
                     TracerArrayConversionError, TracerBoolConversionError,
                     TracerIntegerConversionError, UnexpectedTracerError)



def _version() -> str:
    """The installed distribution's version (one source of truth: pyproject.toml)."""
    from importlib import metadata
    try:
        return metadata.version("numbax")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


__version__: str = _version()

import types as _types_all  # noqa: E402

# the public names (pdoc documents re-exported names only when they are listed here)
__all__ = sorted([_n for _n, _v in globals().items()
                  if not _n.startswith("_") and not isinstance(_v, _types_all.ModuleType)]
                 + ["lax", "numpy", "random", "tree", "tree_util", "nn", "debug",
                    "distributed", "ad_checkpoint"])
del _types_all
