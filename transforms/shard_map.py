"""`shard_map`: JAX's per-device map over a mesh, simulated on this process (as `pmap`).

`shard_map(f, mesh=mesh, in_specs=..., out_specs=...)(*args)` gives JAX's values: each
argument is cut into blocks as its `PartitionSpec` says (a dimension split over mesh axes
`("x", "y")` is cut into x-major blocks), `f` sees one device's blocks, collectives
(`lax.psum`, `pmean`, `all_gather`, `ppermute`, `axis_index`, ...) over mesh axis names
combine the devices, and each output is put back together as its out spec says: blocks
concatenated along the dimensions that name a mesh axis, one copy along the mesh axes the
spec leaves out (the output must not vary along them: with `check_vma=True` that is checked
when `f` is traced, as JAX checks it).

Here the devices of the mesh are simulated: `f` runs as a `vmap` over each mesh axis with
that axis's name (the outermost is the mesh's first axis), so it differentiates, batches and
compiles under `jit` like any function, but the blocks are not spread over processes (use
`transforms.distributed` for that).
"""
from __future__ import annotations

import functools
import math

__all__ = ["shard_map"]


class _Infer:
    def __repr__(self):
        return "Infer"


Infer = _Infer()


def _is_spec(x):
    from .sharding import PartitionSpec
    return isinstance(x, PartitionSpec)


def _specs_for(specs, tree, what, fname):
    """One PartitionSpec per leaf of `tree`, from `specs`, a prefix of it."""
    from . import tree_util
    from .sharding import PartitionSpec
    if isinstance(specs, PartitionSpec):
        return [specs] * len(tree_util.tree_leaves(tree))
    try:
        per = tree_util.tree_map(lambda s, sub: [s] * len(tree_util.tree_leaves(sub)), specs,
                                 tree, is_leaf=lambda x: _is_spec(x) or x is None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"shard_map applied to {fname}: {what} must be a PartitionSpec or a "
                         f"pytree prefix of the {'arguments' if what == 'in_specs' else 'outputs'}"
                         f" with PartitionSpec leaves: {e}") from None
    out = []
    for group in tree_util.tree_leaves(per, is_leaf=lambda x: isinstance(x, list)):
        for s in group:
            if s is None:
                s = PartitionSpec()
            if not isinstance(s, PartitionSpec):
                raise TypeError(f"shard_map applied to {fname}: {what} entries must be "
                                f"PartitionSpecs, got {s!r}")
            out.append(s)
    return out


def _axes_of(spec, ndim, mesh, manual, what, fname):
    """Per dimension, the tuple of mesh axes it is split over (checked against the mesh)."""
    parts = spec._normalized()
    if len(parts) > ndim:
        raise ValueError(f"shard_map applied to {fname}: {what} {spec} has {len(parts)} entries "
                         f"for a value of rank {ndim}")
    parts += [()] * (ndim - len(parts))
    used = [a for p in parts for a in p]
    for a in used:
        if a not in mesh.axis_names:
            raise ValueError(f"shard_map applied to {fname}: {what} {spec} names axis {a!r}, "
                             f"which the mesh {mesh.axis_names} does not have")
        if a not in manual:
            raise ValueError(f"shard_map applied to {fname}: {what} {spec} names axis {a!r}, "
                             f"which is not one of axis_names {tuple(manual)}")
    if len(set(used)) != len(used):
        raise ValueError(f"shard_map applied to {fname}: {what} {spec} uses a mesh axis twice")
    return parts


def _to_blocks(x, parts, mesh, order, path, fname):
    """`x` with one leading dimension per mesh axis it is split over (in mesh order), the rest
    one device's block."""
    import transforms.numpy as tnp
    shape = tnp.shape(x)
    new_shape, lead = [], {}
    for d, (n, axes) in enumerate(zip(shape, parts)):
        k = math.prod(mesh.axis_size(a) for a in axes)
        if n % k:
            raise ValueError(f"shard_map applied to {fname}: argument {path} of shape "
                             f"{tuple(shape)} has dimension {d} of size {n}, not divisible by "
                             f"{k}, the size of mesh axes {axes}")
        for a in axes:
            lead[a] = len(new_shape)
            new_shape.append(mesh.axis_size(a))
        new_shape.append(n // k)
    mapped = [a for a in order if a in lead]
    if not mapped:
        return x, mapped
    y = tnp.reshape(x, new_shape)
    front = [lead[a] for a in mapped]
    rest = [i for i in range(len(new_shape)) if i not in front]
    return tnp.transpose(y, front + rest), mapped


def _from_blocks(y, parts, mesh, mapped):
    """The inverse of `_to_blocks` for an output: `y` has one leading dimension per axis in
    `mapped` (mesh order); dimension d of the block is joined with the axes `parts[d]` names."""
    import transforms.numpy as tnp
    nlead = len(mapped)
    block = tnp.shape(y)[nlead:]
    perm, out_shape = [], []
    for d, axes in enumerate(parts):
        perm += [mapped.index(a) for a in axes]
        perm.append(nlead + d)
        out_shape.append(block[d] * math.prod(mesh.axis_size(a) for a in axes))
    if not nlead:
        return y
    return tnp.reshape(tnp.transpose(y, perm), out_shape)


def shard_map(f=None, /, *, out_specs, in_specs=Infer, mesh=None, axis_names=frozenset(),
              check_vma=True, check_rep=None, auto=None):
    """Map `f` over the devices of `mesh` (as `jax.shard_map`; see the module docstring).

    `in_specs`/`out_specs`: a PartitionSpec or a pytree prefix of the arguments/outputs with
    PartitionSpec leaves. `mesh`: a `transforms.sharding.Mesh` (default: the one `set_mesh`
    or `with mesh:` made current). `axis_names`: the mesh axes `f` is mapped over (default:
    all); the others must not appear in the specs. `check_vma` (`check_rep` is its old name):
    outputs whose spec leaves out a mesh axis must not vary along it. `auto` is accepted for
    older code. Usable as a decorator: `@partial(shard_map, mesh=m, in_specs=..., out_specs=...)`."""
    if f is None:
        return functools.partial(shard_map, out_specs=out_specs, in_specs=in_specs, mesh=mesh,
                                 axis_names=axis_names, check_vma=check_vma, check_rep=check_rep,
                                 auto=auto)
    if not callable(f):
        raise TypeError(f"shard_map: expected a callable, got {type(f).__name__}")
    if check_rep is not None:
        check_vma = check_rep
    fname = f"function {getattr(f, '__name__', repr(f))!r}"

    @functools.wraps(f)
    def mapped(*args):
        from . import tree_util
        from .interpreters.batching import vmap
        from .sharding import AbstractMesh, get_mesh
        m = mesh if mesh is not None else get_mesh()
        if m is None:
            raise ValueError(f"shard_map applied to {fname}: no mesh given and none is set "
                             "(pass mesh=, or use set_mesh(mesh) / `with mesh:`)")
        if not isinstance(m, AbstractMesh):
            raise TypeError(f"shard_map: mesh must be a Mesh, got {type(m).__name__}")
        if in_specs is Infer:
            raise TypeError(f"shard_map applied to {fname}: in_specs is required here (JAX "
                            "infers it only from explicitly sharded arrays, which do not exist "
                            "on one device)")
        manual = tuple(a for a in m.axis_names if not axis_names or a in axis_names)
        leaves, treedef = tree_util.tree_flatten(args)
        ispecs = _specs_for(in_specs if not isinstance(in_specs, list) else tuple(in_specs),
                            args, "in_specs", fname)
        paths = [tree_util.keystr(p) for p, _ in tree_util.tree_flatten_with_path(args)[0]]
        import transforms.numpy as tnp
        blocks, leaf_axes = [], []
        for x, s, path in zip(leaves, ispecs, paths):
            x = tnp.asarray(x)
            parts = _axes_of(s, tnp.ndim(x), m, manual, "in_specs", fname)
            b, mapped_axes = _to_blocks(x, parts, m, manual, "args" + path, fname)
            blocks.append(b)
            leaf_axes.append(mapped_axes)

        def per_device(*flat):
            return f(*tree_util.tree_unflatten(treedef, list(flat)))

        def out_axes_for(axis):
            def one(spec):
                spec = spec if spec is not None else _empty_spec()
                return 0 if any(axis in p for p in spec._normalized()) or not check_vma else None
            return tree_util.tree_map(one, out_specs, is_leaf=lambda x: _is_spec(x) or x is None)

        g = per_device
        for level in reversed(range(len(manual))):
            axis = manual[level]
            # a leaf's leading dims are its mapped axes in mesh order; the outer levels have
            # consumed those before `axis`
            in_axes = tuple(0 if axis in ax else None for ax in leaf_axes)
            g = vmap(g, in_axes=in_axes, out_axes=out_axes_for(axis), axis_name=axis,
                     axis_size=m.axis_size(axis))
        try:
            outs = g(*blocks)
        except ValueError as e:
            if "out_axes is None" in str(e):
                raise ValueError(f"shard_map applied to {fname}: an output varies along a mesh "
                                 f"axis its out_specs leaves out, so it has no single value to "
                                 f"return there (name the axis in out_specs, combine the "
                                 f"devices with a collective such as lax.psum, or pass "
                                 f"check_vma=False to take the first device's): {e}") from None
            raise
        out_leaves, out_tree = tree_util.tree_flatten(outs)
        ospecs = _specs_for(out_specs, outs, "out_specs", fname)
        result = []
        for y, s in zip(out_leaves, ospecs):
            y = tnp.asarray(y)
            used = [a for p in s._normalized() for a in p]
            # leading dims present: the axes named by the spec, and with check_vma=False also
            # the unnamed ones (take their first device)
            present = [a for a in manual if a in used or not check_vma]
            for a in reversed(present):
                if a not in used:
                    i = present.index(a)
                    y = tnp.take(y, 0, axis=i)
            present = [a for a in present if a in used]
            parts = _axes_of(s, tnp.ndim(y) - len(present), m, manual, "out_specs", fname)
            result.append(_from_blocks(y, parts, m, present))
        return tree_util.tree_unflatten(out_tree, result)

    return mapped


def _empty_spec():
    from .sharding import PartitionSpec
    return PartitionSpec()
