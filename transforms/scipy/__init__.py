"""`transforms.scipy`: `jax.scipy`'s namespaces over transforms (each function differentiates,
batches and compiles): `special`, `linalg`, `stats`, `signal`."""
from . import linalg, signal, special, stats  # noqa: F401
