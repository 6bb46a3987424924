"""`optax.tree_utils`: arithmetic, norms, casts and lookups on pytrees (the same functions
without the `tree_` prefix are in `fnn.optim.tree`, as `optax.tree`).

All are traceable (array math through `transforms.numpy`); the lookups (`tree_get`,
`tree_set`, `tree_get_all_with_path`) walk the Python structure of an optimiser state, so
`tree_get(state, "count")` finds a field of any NamedTuple state however deeply it is nested.
"""
from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Callable, Optional

import numpy as np

import transforms.numpy as tnp
from transforms import random as _random
from transforms import tree as _tree

from .updates import tree_full_like, tree_ones_like, tree_zeros_like  # noqa: F401
from .updates import (dtype_of, is_number, tree_bias_correction, tree_cast,  # noqa: F401
                      tree_update_infinity_moment, tree_update_moment)

__all__ = [
    "NamedTupleKey", "tree_add", "tree_add_scale", "tree_allclose", "tree_batch_shape",
    "tree_bias_correction", "tree_cast", "tree_cast_like", "tree_clip", "tree_conj",
    "tree_div", "tree_dtype", "tree_full_like", "tree_get", "tree_get_all_with_path",
    "tree_map_params", "tree_max", "tree_min", "tree_mul", "tree_norm", "tree_ones_like",
    "tree_random_like", "tree_real", "tree_scale", "tree_set", "tree_size",
    "tree_split_key_like", "tree_sub", "tree_sum", "tree_unwrap_random_key_data",
    "tree_update_infinity_moment", "tree_update_moment", "tree_update_moment_per_elem_norm",
    "tree_vdot", "tree_where", "tree_zeros_like",
]


# ---------------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------------

def tree_add(tree_x, tree_y, *other_trees):
    """Leafwise sum of two or more trees of the same structure."""
    return _tree.map(lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y,
                     *other_trees)


def tree_sub(tree_x, tree_y):
    """Leafwise `x - y`."""
    return _tree.map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x, tree_y):
    """Leafwise `x * y`."""
    return _tree.map(operator.mul, tree_x, tree_y)


def tree_div(tree_x, tree_y):
    """Leafwise `x / y`."""
    return _tree.map(operator.truediv, tree_x, tree_y)


def tree_scale(scalar, tree):
    """Every leaf times `scalar`."""
    return _tree.map(lambda x: scalar * x, tree)


def tree_add_scale(tree_x, scalar, tree_y):
    """`x + scalar * y` leafwise (`None` leaves of `tree_x` stay `None`)."""
    if not is_number(scalar):   # Python numbers stay weak: float32 leaves stay float32
        scalar = tnp.asarray(scalar)
    return _tree.map(lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y,
                     is_leaf=lambda x: x is None)


def _vdot(a, b):
    a, b = tnp.asarray(a), tnp.asarray(b)
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"tree_vdot: leaves of shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)} differ")
    if np.issubdtype(a.dtype, np.complexfloating):
        a = tnp.conj(a)
    return tnp.sum(a * b)


def tree_vdot(tree_x, tree_y):
    """`sum over leaves of vdot(x, y)` (the first argument conjugated): the inner product of
    the two trees as flat vectors."""
    return functools.reduce(operator.add, _tree.leaves(_tree.map(_vdot, tree_x, tree_y)), 0)


def tree_sum(tree, associative_reduction: bool = False):
    """The sum of every element of every leaf (0 for an empty tree)."""
    del associative_reduction  # the order of a sum of a few scalars: no observable effect
    return functools.reduce(operator.add, [tnp.sum(x) for x in _tree.leaves(tree)], 0)


def _nonempty(tree):
    return [x for x in _tree.leaves(tree) if int(np.prod(tnp.shape(x), dtype=np.int64)) > 0]


def tree_max(tree):
    """The largest element over all leaves (`-inf` for a tree without elements)."""
    return functools.reduce(tnp.maximum, [tnp.max(x) for x in _nonempty(tree)], -float("inf"))


def tree_min(tree):
    """The smallest element over all leaves (`inf` for a tree without elements)."""
    return functools.reduce(tnp.minimum, [tnp.min(x) for x in _nonempty(tree)], float("inf"))


def tree_size(tree) -> int:
    """The total number of elements over all leaves (a Python int)."""
    return int(sum(int(np.prod(tnp.shape(x), dtype=np.int64)) for x in _tree.leaves(tree)))


def tree_conj(tree):
    """Leafwise complex conjugate."""
    return _tree.map(tnp.conj, tree)


def tree_real(tree):
    """Leafwise real part."""
    return _tree.map(tnp.real, tree)


def _abs_sq(x):
    x = tnp.asarray(x)
    if np.issubdtype(x.dtype, np.complexfloating):
        return tnp.square(tnp.real(x)) + tnp.square(tnp.imag(x))
    return tnp.square(x)


def tree_norm(tree, ord=None, squared: bool = False):  # noqa: A002 - optax's name
    """The norm of all leaves seen as one vector: `ord` None or 2 (Euclidean), 1 (sum of
    absolute values) or `inf`/'inf'/'infinity' (largest absolute value); `squared=True`
    returns its square."""
    if ord is None or ord == 2:
        sq = tree_sum(_tree.map(_abs_sq, tree))
        return tnp.asarray(sq if squared else tnp.sqrt(sq))
    if ord == 1:
        out = tree_sum(_tree.map(tnp.abs, tree))
    elif ord == np.inf or ord in ("inf", "infinity"):
        out = tree_max(_tree.map(tnp.abs, tree))
    else:
        raise ValueError(f"tree_norm: unsupported ord={ord!r} (use None, 1, 2 or inf)")
    return tnp.asarray(_abs_sq(out) if squared else out)


def tree_batch_shape(tree, shape: tuple = ()):
    """Every leaf broadcast to `(*shape, *leaf.shape)`."""
    return _tree.map(lambda x: tnp.broadcast_to(x, (*shape, *tnp.shape(x))), tree)


def tree_clip(tree, min_value=None, max_value=None):
    """Every leaf clipped to `[min_value, max_value]` (either bound may be None)."""
    def f(x):
        if min_value is not None:
            x = tnp.maximum(x, min_value)
        if max_value is not None:
            x = tnp.minimum(x, max_value)
        return x
    return _tree.map(f, tree)


def tree_where(condition, tree_x, tree_y):
    """`where(condition, x, y)` leafwise, one condition for every leaf."""
    return _tree.map(lambda x, y: tnp.where(condition, x, y), tree_x, tree_y)


def tree_allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan: bool = False):
    """Whether every pair of leaves is `allclose` (a boolean array scalar)."""
    def f(x, y):
        x, y = tnp.asarray(x), tnp.asarray(y)
        close = tnp.abs(x - y) <= atol + rtol * tnp.abs(y)
        if equal_nan:
            close = tnp.logical_or(close, tnp.logical_and(tnp.isnan(x), tnp.isnan(y)))
        return tnp.all(close)
    return functools.reduce(tnp.logical_and, _tree.leaves(_tree.map(f, a, b)),
                            tnp.asarray(True))


def tree_update_moment_per_elem_norm(updates, moments, decay, order):
    """`(1 - decay) * n(g) + decay * m` leafwise, `n(g) = g**order` for real leaves (as optax:
    no absolute value, so an odd order keeps the sign) and `|g|**order` for complex ones."""
    def norm(g):
        if np.issubdtype(dtype_of(g), np.complexfloating):
            return _abs_sq(g) ** (order / 2)
        return g ** order

    return _tree.map(lambda g, m: None if g is None else (1 - decay) * norm(g) + decay * m,
                     updates, moments, is_leaf=lambda x: x is None)


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------

def tree_cast_like(tree, other_tree):
    """Each leaf of `tree` cast to the dtype of the matching leaf of `other_tree`."""
    return _tree.map(lambda t, o: tnp.asarray(t, dtype=dtype_of(o))
                     if hasattr(o, "dtype") and dtype_of(t) != dtype_of(o) else t,
                     tree, other_tree)


def _lower(d1, d2):
    p = np.promote_types(d1, d2)
    if p == d1:
        return d2
    if p == d2:
        return d1
    raise ValueError(f"tree_dtype: neither {d1} nor {d2} promotes to the other")


def tree_dtype(tree, mixed_dtype_handler: Optional[str] = None):
    """The dtype of the leaves. With mixed dtypes: `None` raises (naming the paths that
    differ), 'promote' gives their promotion, 'highest'/'lowest' the widest/narrowest."""
    leaves_p = _tree.leaves_with_path(tree)
    dts = [np.dtype(dtype_of(x)) for _, x in leaves_p]
    if not dts:
        return np.asarray([]).dtype
    if mixed_dtype_handler is None:
        bad = [f"{_tree.keystr(p)} has {d}" for (p, _), d in zip(leaves_p, dts) if d != dts[0]]
        if bad:
            raise ValueError(f"tree_dtype: expected every leaf in {dts[0]}, but "
                             + "; ".join(bad))
        return dts[0]
    if mixed_dtype_handler == "promote":
        return functools.reduce(np.promote_types, dts)
    if mixed_dtype_handler == "lowest":
        return functools.reduce(_lower, dts)
    if mixed_dtype_handler == "highest":
        return functools.reduce(lambda a, b: b if _lower(a, b) == a else a, dts)
    raise ValueError(f"tree_dtype: mixed_dtype_handler must be None, 'promote', 'highest' "
                     f"or 'lowest', got {mixed_dtype_handler!r}")


# ---------------------------------------------------------------------------------------------
# random
# ---------------------------------------------------------------------------------------------

def tree_split_key_like(rng_key, target_tree):
    """One key per leaf of `target_tree` (`random.split(rng_key, n_leaves)`), as a tree of
    that structure."""
    treedef = _tree.structure(target_tree)
    n = len(_tree.leaves(target_tree))
    keys = _random.split(rng_key, n)
    return _tree.unflatten(treedef, [keys[i] for i in range(n)])


def tree_random_like(rng_key, target_tree, sampler: Callable = _random.normal, dtype=None):
    """A tree like `target_tree` of samples `sampler(key, leaf.shape, dtype or leaf.dtype)`,
    one key per leaf from `tree_split_key_like`."""
    keys = tree_split_key_like(rng_key, target_tree)
    return _tree.map(lambda x, k: sampler(k, tuple(tnp.shape(x)), dtype or dtype_of(x)),
                     target_tree, keys)


def tree_unwrap_random_key_data(input_tree):
    """Typed keys replaced by their raw key data (raw uint32 keys pass unchanged)."""
    def f(x):
        if "key" in str(getattr(x, "dtype", "")):
            return _random.key_data(x)
        return x
    return _tree.map(f, input_tree)


# ---------------------------------------------------------------------------------------------
# lookups in optimiser states
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry naming a NamedTuple's field: `str()` gives `TupleName.field`."""
    tuple_name: str
    name: str

    def __str__(self):
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _children(path, node):
    """`[(child_path, child)]` of a NamedTuple, dict, list or tuple; [] for anything else."""
    if _is_named_tuple(node):
        name = type(node).__name__
        return [((*path, NamedTupleKey(name, f)), getattr(node, f)) for f in node._fields]
    if isinstance(node, dict):
        return [((*path, _tree.DictKey(k)), v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return [((*path, _tree.SequenceKey(i)), v) for i, v in enumerate(node)]
    return []


def _key_name(entry):
    if isinstance(entry, NamedTupleKey):
        return entry.name
    if isinstance(entry, _tree.DictKey):
        return entry.key
    if isinstance(entry, _tree.SequenceKey):
        return entry.idx
    return None


def tree_get_all_with_path(tree, key, filtering: Optional[Callable] = None):
    """Every `(path, value)` in `tree` whose NamedTuple field or dict key is `key`, or whose
    NamedTuple class is named `key`, outermost first; `filtering(path, value)` keeps a subset.
    """
    found = []

    def walk(path, node):
        if _is_named_tuple(node) and type(node).__name__ == key:
            found.append((path, node))
        for cpath, child in _children(path, node):
            if not isinstance(cpath[-1], _tree.SequenceKey) and _key_name(cpath[-1]) == key:
                found.append((cpath, child))
        for cpath, child in _children(path, node):
            walk(cpath, child)

    walk((), tree)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(tree, key, default=None, filtering: Optional[Callable] = None):
    """The one value at `key` (see `tree_get_all_with_path`), `default` if there is none;
    `KeyError` if several match (narrow them with `filtering`)."""
    found = tree_get_all_with_path(tree, key, filtering=filtering)
    if len(found) > 1:
        paths = ", ".join(_tree.keystr(tuple(_plain(p))) for p, _ in found)
        raise KeyError(f"tree_get: several values for {key!r} (at {paths}); pass filtering= "
                       f"to choose one")
    return found[0][1] if found else default


def _plain(path):
    # keystr takes the engine's key entries: render NamedTupleKey as an attribute access
    return [_tree.GetAttrKey(str(e)) if isinstance(e, NamedTupleKey) else e for e in path]


def tree_set(tree, filtering: Optional[Callable] = None, /, **kwargs):
    """A copy of `tree` with the values at each keyword's key replaced by the keyword's value
    (fields of NamedTuples, dict keys, or whole NamedTuples named by their class).

    Raises `KeyError` for a key that matches nothing.
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            raise KeyError(f"tree_set: no value matches {key!r}"
                           + (" with the given filtering" if filtering else ""))

    def ok(path, node):
        return filtering is None or filtering(path, node)

    def replace(path, node):
        if _is_named_tuple(node) and type(node).__name__ in kwargs and ok(path, node):
            return kwargs[type(node).__name__]
        kids = _children(path, node)
        if not kids:
            return node
        new = []
        for cpath, child in kids:
            k = _key_name(cpath[-1])
            if not isinstance(cpath[-1], _tree.SequenceKey) and k in kwargs and ok(cpath, child):
                new.append(kwargs[k])
            else:
                new.append(replace(cpath, child))
        if _is_named_tuple(node):
            return type(node)(*new)
        if isinstance(node, dict):
            return type(node)(zip(node.keys(), new)) if type(node) is not dict \
                else dict(zip(node.keys(), new))
        return type(node)(new)

    return replace((), tree)


class _ParamsPlaceholder:
    """Stands for the parameters while `tree_map_params` traces an `init`: a pytree node
    without children, so `init` maps over nothing and leaves one marker where each
    parameter-shaped subtree sits in the state."""


_tree.register_pytree_node(_ParamsPlaceholder, lambda x: ((), None),
                           lambda aux, children: _ParamsPlaceholder())


def tree_map_params(initable, f: Callable, state, /, *rest, transform_non_params=None,
                    is_leaf=None):
    """Apply `f` to the parameter-shaped parts of an optimiser `state` (e.g. the moments of
    Adam), leaving counts alone (or mapping them by `transform_non_params`).

    `initable` is the transformation (or its `init`) that made `state`: its `init` is run on
    a placeholder to find where in the state the parameter trees sit. `rest` are extra trees
    shaped like the parameters, passed to `f` as further arguments.
    """
    init = initable.init if hasattr(initable, "init") else initable
    skeleton = init(_ParamsPlaceholder())

    def g(marker, value):
        if isinstance(marker, _ParamsPlaceholder):
            return _tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return _tree.map(g, skeleton, state, is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))
