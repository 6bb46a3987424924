"""`optax.tree`: the functions of `fnn.optim.tree_utils` without their `tree_` prefix
(`optim.tree.norm(t)` is `optim.tree_utils.tree_norm(t)`)."""
from __future__ import annotations

from . import tree_utils as _tu

__all__ = []

# one name per tree_utils function, the same object (so docstrings and behaviour agree)
for _name in _tu.__all__:
    if _name.startswith("tree_"):
        globals()[_name[len("tree_"):]] = getattr(_tu, _name)
        __all__.append(_name[len("tree_"):])
del _name
__all__.sort()
