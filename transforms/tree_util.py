"""`jax.tree_util` under its JAX names, over `transforms.tree`.

    from transforms import tree_util
    tree_util.tree_map(f, tree)                    # = transforms.tree.map
    tree_util.keystr(path)                         # "['params'][0].w"

Paths are tuples of `SequenceKey(idx)`, `DictKey(key)`, `GetAttrKey(name)` and
`FlattenedIndexKey(key)`; dicts are flattened and rebuilt with sorted keys, as in JAX.
"""
from .tree import (DictKey, FlattenedIndexKey, GetAttrKey, KeyEntry, KeyPath,  # noqa: F401
                   Partial, PyTreeDef, SequenceKey, all_leaves, build_tree, flatten_one_level,
                   is_tree_node, keystr, register_dataclass, register_pytree_node,
                   register_pytree_node_class, register_pytree_with_keys,
                   register_pytree_with_keys_class, register_static, treedef_children,
                   treedef_is_leaf, treedef_tuple)
from .tree import all as tree_all  # noqa: F401
from .tree import broadcast as tree_broadcast  # noqa: F401
from .tree import flatten as tree_flatten  # noqa: F401
from .tree import flatten_with_path as tree_flatten_with_path  # noqa: F401
from .tree import leaves as tree_leaves  # noqa: F401
from .tree import leaves_with_path as tree_leaves_with_path  # noqa: F401
from .tree import map as tree_map  # noqa: F401
from .tree import map_with_path as tree_map_with_path  # noqa: F401
from .tree import reduce as tree_reduce  # noqa: F401
from .tree import reduce_associative as tree_reduce_associative  # noqa: F401
from .tree import structure as tree_structure  # noqa: F401
from .tree import transpose as tree_transpose  # noqa: F401
from .tree import unflatten as tree_unflatten  # noqa: F401

__all__ = [
    "tree_map", "tree_leaves", "tree_structure", "tree_flatten", "tree_unflatten",
    "tree_flatten_with_path", "tree_leaves_with_path", "tree_map_with_path", "tree_reduce",
    "tree_reduce_associative", "tree_all", "tree_transpose", "tree_broadcast",
    "register_pytree_node", "register_pytree_node_class", "register_pytree_with_keys",
    "register_pytree_with_keys_class", "register_dataclass", "register_static", "Partial",
    "keystr", "all_leaves", "build_tree", "treedef_is_leaf", "treedef_children", "treedef_tuple",
    "flatten_one_level", "is_tree_node", "SequenceKey", "DictKey", "GetAttrKey",
    "FlattenedIndexKey", "KeyEntry", "KeyPath", "PyTreeDef",
]
