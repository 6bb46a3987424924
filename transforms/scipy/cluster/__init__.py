"""`scipy.cluster` (`jax.scipy.cluster`): only `vq`."""
from . import vq  # noqa: F401
