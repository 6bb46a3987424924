"""`scipy.sparse` (`jax.scipy.sparse`): only its `linalg` iterative solvers."""
from . import linalg  # noqa: F401
