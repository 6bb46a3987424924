"""The layout of an optimiser state, for comparing ours with optax's (shared by the optax
differential tests)."""
import numpy as np


def skeleton(x):
    """NamedTuple class and field names, dict keys, sequence lengths (what a checkpoint's
    paths are made of); leaves as (dtype, shape), JAX's typed PRNG keys as their key data."""
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, {f: skeleton(getattr(x, f)) for f in x._fields})
    if isinstance(x, dict):
        return {k: skeleton(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [skeleton(v) for v in x]
    if x is None:
        return None
    if "key" in str(getattr(x, "dtype", "")):
        import jax
        x = jax.random.key_data(x)
    a = np.asarray(x)
    return (str(a.dtype), a.shape)
