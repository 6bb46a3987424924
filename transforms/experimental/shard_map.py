"""`jax.experimental.shard_map`: older JAX's home of `shard_map` (now `transforms.shard_map`)."""
from ..shard_map import shard_map  # noqa: F401

__all__ = ["shard_map"]
