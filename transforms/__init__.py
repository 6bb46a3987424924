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
from . import custom_batching, dtypes, image, ops, typing, experimental  # noqa: F401
from . import flatten_util  # noqa: F401
from .dtypes import float0  # noqa: F401
from .callback import pure_callback  # noqa: F401
from .pmap import pmap  # noqa: F401
from . import sharding  # noqa: F401
from .sharding import NamedSharding, P, make_mesh, reshard, set_mesh  # noqa: F401
from .shard_map import shard_map  # noqa: F401
from .api_more import closure_convert, ensure_compile_time_eval, named_call  # noqa: F401
from .environment import (Device, check_tracer_leaks, checking_leaks, debug_infs,  # noqa: F401
                       debug_nans, default_backend, default_device, default_matmul_precision,
                       default_prng_impl, device_count, devices, effects_barrier,
                       enable_checks, enable_x64, explain_cache_misses, host_count, host_id,
                       host_ids, live_arrays, local_device_count, local_devices, log_compiles,
                       make_array_from_callback, make_array_from_process_local_data,
                       make_array_from_single_device_arrays, numpy_dtype_promotion,
                       numpy_rank_promotion, print_environment_info, process_indices,
                       threefry_partitionable, transfer_guard, transfer_guard_device_to_device,
                       transfer_guard_device_to_host, transfer_guard_host_to_device)
from . import scipy  # noqa: F401,E402

from .ad_checkpoint import checkpoint_policies  # noqa: F401
from .errors import (ConcretizationTypeError, NonDifferentiableError, ShapeError,  # noqa: F401
                     TracerArrayConversionError, TracerBoolConversionError,
                     TracerIntegerConversionError, UnexpectedTracerError)



from . import version  # noqa: E402

__version__: str = version.__version__

import types as _types_all  # noqa: E402

# the public names (pdoc documents re-exported names only when they are listed here)
__all__ = sorted([_n for _n, _v in globals().items()
                  if not _n.startswith("_") and not isinstance(_v, _types_all.ModuleType)]
                 + ["lax", "numpy", "random", "tree", "tree_util", "nn", "debug",
                    "distributed", "ad_checkpoint", "custom_batching", "dtypes", "image", "scipy", "ops", "typing", "experimental",
                    "example_libraries",     # imported on use, as jax.example_libraries
                    "version"])
del _types_all


def __getattr__(name):
    # `transforms.example_libraries` is imported on first use: `import transforms` need not
    # pay for it (JAX does not import jax.example_libraries either)
    if name == "example_libraries":
        import importlib
        return importlib.import_module(".example_libraries", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
