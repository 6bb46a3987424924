"""`pmap`: JAX's single-program multiple-data map, simulated on this process's one CPU device.

JAX runs `pmap(f)` with one slice of the leading axis per device. Here it is a compiled
`vmap` with the same `axis_name`: the mapped size may exceed `device_count()` (each slice is
a simulated device), and collectives (`lax.psum`, `pmean`, `all_gather`, `axis_index`, ...)
over `axis_name` combine the slices exactly as they would combine devices. Code written for
`pmap` therefore runs and gives JAX's values; it does not run in parallel across processes
(use `transforms.distributed` for that).
"""
from __future__ import annotations

import functools
import operator

from .interpreters.batching import vmap

__all__ = ["pmap"]


def _int_tuple(v, what):
    if v is None:
        return ()
    if isinstance(v, int):
        return (v,)
    try:
        return tuple(operator.index(i) for i in v)
    except TypeError:
        raise TypeError(f"pmap: {what} must be an int or a tuple of ints, got {v!r}") from None


def pmap(fun=None, axis_name=None, *, in_axes=0, out_axes=0, static_broadcasted_argnums=(),
         devices=None, backend=None, axis_size=None, donate_argnums=(),
         global_arg_shapes=None):
    """Map `fun` over the leading axis (or `in_axes`) of its arguments, one simulated device
    per slice, compiled once per argument signature: `jit(vmap(fun, in_axes, out_axes,
    axis_name))` with JAX's `pmap` signature (see the module docstring). Arguments listed in
    `static_broadcasted_argnums` are static (hashable) and passed unmapped to every slice.
    `devices`, `backend` and `global_arg_shapes` are accepted for portability (there is one CPU
    device); `donate_argnums` is passed to `jit`."""
    if fun is None:       # used as @functools.partial(pmap, axis_name=...) or @pmap(...)
        return functools.partial(pmap, axis_name=axis_name, in_axes=in_axes, out_axes=out_axes,
                                 static_broadcasted_argnums=static_broadcasted_argnums,
                                 devices=devices, backend=backend, axis_size=axis_size,
                                 donate_argnums=donate_argnums)
    if not callable(fun):
        raise TypeError(f"pmap: expected a callable, got {type(fun).__name__}")
    if backend not in (None, "cpu"):
        raise ValueError(f"pmap: backend {backend!r}: only the 'cpu' backend exists here")
    del devices, global_arg_shapes
    static = _int_tuple(static_broadcasted_argnums, "static_broadcasted_argnums")
    donate = _int_tuple(donate_argnums, "donate_argnums")
    compiled = {}

    def _for(nargs):
        f = compiled.get(nargs)
        if f is None:
            from .jit import jit
            st = tuple(sorted(i % nargs for i in static)) if nargs else ()
            if isinstance(in_axes, (tuple, list)):
                if len(in_axes) != nargs:
                    raise ValueError(f"pmap in_axes must be an int, None, or a tuple of entries "
                                     f"corresponding to the positional arguments passed to the "
                                     f"function, but got len(in_axes)={len(in_axes)}, "
                                     f"len(args)={nargs}")
                axes = tuple(None if i in st else a for i, a in enumerate(in_axes))
            elif st:
                axes = tuple(None if i in st else in_axes for i in range(nargs))
            else:
                axes = in_axes
            mapped = vmap(fun, in_axes=axes, out_axes=out_axes, axis_name=axis_name,
                          axis_size=axis_size)
            f = compiled[nargs] = jit(mapped, static_argnums=st, donate_argnums=donate)
        return f

    @functools.wraps(fun)
    def pmapped(*args, **kwargs):
        return _for(len(args))(*args, **kwargs)

    return pmapped
