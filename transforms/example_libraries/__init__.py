"""`jax.example_libraries` under its JAX name: `optimizers`, the small functional optimizer
library JAX's examples and tutorials import (`from jax.example_libraries import optimizers`
ports as `from transforms.example_libraries import optimizers`)."""
from . import optimizers  # noqa: F401
