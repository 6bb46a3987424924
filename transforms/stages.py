"""Ahead-of-time stages of a jitted function (as `jax.stages`): `jit(f).trace(*args)` gives a
`Traced`, `.lower()` a `Lowered`, `.compile()` a `Compiled`.

Each stage is specialised to the shapes, dtypes, tree structure and static values of the
arguments it was made from; arguments may be arrays or `ShapeDtypeStruct`s (only their shape
and dtype matter). A `Compiled` is called like the jitted function without its static
arguments, with arguments of exactly that structure, shapes and dtypes (anything else is a
TypeError naming the argument, as JAX's), and returns the function's output pytree.
"""
from __future__ import annotations

import numpy as np
import optree

from . import tree as tree_util
from .core import ShapedArray, get_aval


def _struct(aval):
    from .api import ShapeDtypeStruct
    return ShapeDtypeStruct(aval.shape, aval.dtype)


class _Stage:
    """What every stage knows: the traced jaxpr and the input/output trees."""

    def __init__(self, fun_name, closed, in_tree, out_tree, donate):
        self.fun_name = fun_name
        self.jaxpr = closed              # the ClosedJaxpr
        self.in_tree = in_tree           # treedef of (dynamic args, dynamic kwargs)
        self.out_tree = out_tree
        self._donate = frozenset(donate)

    @property
    def in_avals(self):
        return optree.tree_unflatten(self.in_tree, list(self.jaxpr.in_avals))

    @property
    def out_avals(self):
        return optree.tree_unflatten(self.out_tree, list(self.jaxpr.out_avals))

    @property
    def out_info(self):
        """The output pytree with a `ShapeDtypeStruct` per leaf."""
        return optree.tree_unflatten(self.out_tree, [_struct(a) for a in self.jaxpr.out_avals])

    @property
    def args_info(self):
        """(positional, keyword) arguments with a `ShapeDtypeStruct` per dynamic leaf."""
        return optree.tree_unflatten(self.in_tree, [_struct(a) for a in self.jaxpr.in_avals])


class Traced(_Stage):
    """`jit(f).trace(*args)`: `.jaxpr` (a ClosedJaxpr), `.out_info`, `.lower()`. Attributes of
    the ClosedJaxpr (`eqns`, `consts`, ...) and its printed form are reachable directly too."""

    def lower(self):
        from .backend.numba import lower as backend_lower
        return Lowered(backend_lower(self.jaxpr, tuple(sorted(self._donate))), self.jaxpr,
                       self.fun_name, self.in_tree, self.out_tree, self._donate)

    def __getattr__(self, name):
        if name.startswith("__") or name == "jaxpr":
            raise AttributeError(name)
        return getattr(self.jaxpr, name)

    def __str__(self):
        return str(self.jaxpr)

    __repr__ = __str__


class Lowered(_Stage):
    """`jit(f).lower(*args)`: the IR after fusion (`as_text()`), the generated source
    (`.source`); `compile()` returns a `Compiled`."""

    def __init__(self, backend_lowered, closed, fun_name="", in_tree=None, out_tree=None,
                 donate=()):
        super().__init__(fun_name, closed, in_tree, out_tree, donate)
        self._lowered = backend_lowered
        self.source = backend_lowered.source

    def as_text(self):
        return self._lowered.as_text()

    def compile(self):
        from .backend.numba import Executable
        return Compiled(Executable(self._lowered), self)

    def __str__(self):
        return self.as_text()


class Compiled(_Stage):
    """A compiled stage: call it with the non-static arguments the lowering saw (same tree,
    shapes and dtypes); returns the function's output pytree. `.source`, `.module` and
    `.profile()` come from the backend's executable (`.runtime_executable()`)."""

    def __init__(self, exe, lowered):
        super().__init__(lowered.fun_name, lowered.jaxpr, lowered.in_tree, lowered.out_tree,
                         lowered._donate)
        self._exe = exe
        self._lowered = lowered

    def runtime_executable(self):
        return self._exe

    def as_text(self):
        return self._lowered.as_text()

    @property
    def source(self):
        return self._exe.source

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._exe, name)          # module, profile, in_avals, ...

    def __call__(self, *args, **kwargs):
        if self.in_tree is None:                 # a Lowered built outside jit: flat arrays
            return self._exe(*args)
        # every argument given is a dynamic one: the static ones were fixed by `lower`
        leaves, treedef = optree.tree_flatten((args, kwargs), namespace=tree_util.NAMESPACE)
        name = self.fun_name
        if treedef != self.in_tree:
            raise TypeError(
                f"compiled {name}: called with argument structure {treedef}, but it was "
                f"compiled for {self.in_tree} (pass the arguments `lower` saw, without the "
                "static ones)")
        paths = None
        arrays = []
        for i, (x, want) in enumerate(zip(leaves, self.jaxpr.in_avals)):
            have = get_aval(x)
            if have.shape != want.shape or have.dtype != want.dtype:
                if paths is None:
                    from .jit import _path_str
                    paths = [_path_str(p) for p, _ in
                             tree_util.leaves_with_path((args, kwargs))]
                raise TypeError(
                    f"compiled {name}: argument {paths[i]} is {ShapedArray(have.shape, have.dtype)}"
                    f" but it was compiled for {ShapedArray(want.shape, want.dtype)} (lower "
                    "again, or call the jitted function, which compiles per signature)")
            arrays.append(x if type(x) is np.ndarray else np.asarray(x, want.dtype))
        return optree.tree_unflatten(self.out_tree, self._exe(*arrays))
