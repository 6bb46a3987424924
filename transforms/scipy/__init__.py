"""`transforms.scipy`: `jax.scipy`'s namespaces over transforms: `special`, `linalg`,
`stats`, `signal`, `optimize`, `sparse` (`sparse.linalg`), `ndimage`, `integrate`, `fft`,
`interpolate`, `cluster`. Each module's docstring says what differentiates, batches and
compiles."""
from . import linalg, signal, special, stats  # noqa: F401
from . import cluster, fft, integrate, interpolate, ndimage, optimize, sparse  # noqa: F401
