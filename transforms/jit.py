"""`jit`: trace once per argument signature, compile through Numba, dispatch fast.

    f_fast = T.jit(f, static_argnums=(), static_argnames=(), donate_argnums=())
    f_fast(*args, **kwargs)          # NumPy arrays in the output tree
    f_fast.lower(*args).source       # the generated Python/Numba source
    f_fast.lower(*args).as_text()    # the IR after preparation, with the fusion plan

Cache key: the argument tree structure, each leaf's shape and dtype (Python scalars count by
type only, like JAX's weak types), and the values of the static arguments. A miss traces the
function to a jaxpr and compiles it (in-memory and on-disk caches make repeated compiles cheap);
every miss after the first is logged on the ``transforms.jit`` logger with the part of the key
that changed (set ``NUMBAX_EXPLAIN_CACHE_MISSES=1`` to log them as warnings) and recorded in
``f_fast.cache_misses``. A result is never reused for a different key.

Outside any transformation a call goes straight to the compiled function. Inside `grad`,
`vmap`, another `jit`, ... it binds the `pjit` primitive carrying the traced jaxpr, so the
transformation applies to the jaxpr (and the transformed jaxpr is compiled in turn).

`donate_argnums` (as JAX): the buffers of those arguments may be reused for outputs of the same
shape and dtype -- the compiled code then writes its results into the argument arrays (which
the caller must not use afterwards). A training step `params, state = step(params, state, x)`
so updates its parameters in place, saving memory traffic. Without donation, large outputs come
from a pool of buffers recycled once their previous arrays are dropped.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os

import numpy as np
import optree

from . import core
from . import tree as tree_util
from .core import Tracer, as_leaf, get_aval
from .interpreters.partial_eval import trace_to_jaxpr, weakened
from .ir import ClosedJaxpr, Jaxpr

logger = logging.getLogger("transforms.jit")

_NS = tree_util.NAMESPACE
_PY_SCALARS = (bool, int, float, complex)


def _explain_level():
    return logging.WARNING if os.environ.get("NUMBAX_EXPLAIN_CACHE_MISSES", "") not in (
        "", "0") else logging.INFO


class _Entry:
    __slots__ = ("closed", "out_tree", "exe", "hoisted", "single", "donate")

    def __init__(self, closed, out_tree, hoisted=0, donate=()):
        self.closed, self.out_tree, self.exe, self.hoisted = closed, out_tree, None, hoisted
        self.donate = donate
        self.single = out_tree.num_nodes == 1 and out_tree.num_leaves == 1


def _leaf_sig(x):
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype)
    if t in _PY_SCALARS:
        return t
    if isinstance(x, np.generic):
        return ((), x.dtype)
    if isinstance(x, Tracer):
        a = x.aval
        return (a.shape, a.dtype)
    if isinstance(x, np.ndarray):           # ndarray subclasses
        return (x.shape, x.dtype)
    return None


def _as_array(x):
    if type(x) is np.ndarray:
        return x
    return np.asarray(x)


class Lowered:
    """Result of `jit(f).lower(*args)`: the IR after fusion (`as_text()`) and the generated
    source (`.source`); `compile()` returns the compiled callable (flat arrays in, list out)."""

    def __init__(self, backend_lowered, closed):
        self._lowered = backend_lowered
        self.jaxpr = closed
        self.source = backend_lowered.source

    def as_text(self):
        return self._lowered.as_text()

    def compile(self):
        from .backend.numba import Executable
        return Executable(self._lowered)

    def __str__(self):
        return self.as_text()


class JitFunction:
    """A jitted function (see the module docstring)."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), donate_argnums=()):
        if not callable(fun):
            raise TypeError(f"jit expects a callable, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self._fun = fun
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        donate = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
        self._params = None
        try:
            sig = inspect.signature(fun)
            self._params = [p for p in sig.parameters.values()
                            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            pass
        if self._params is not None:
            pos_names = [p.name for p in self._params]
            # as JAX: a static position also makes its name static, and vice versa
            names = tuple(dict.fromkeys(names + tuple(
                pos_names[n] for n in nums if 0 <= n < len(pos_names))))
            nums = tuple(dict.fromkeys(nums + tuple(
                pos_names.index(n) for n in names if n in pos_names)))
        self._static_nums = nums
        self._static_names = frozenset(names)
        self._donate = donate
        self._cache = {}
        self._fast = {}           # signature of plain positional arrays -> compiled entry
        self._fast_tree = {}      # (tree structure, signature) of array pytrees -> entry
        self._last_key = None
        self.cache_misses = []
        self._name = getattr(fun, "__name__", type(fun).__name__)

    # -- descriptor: @jit on methods ------------------------------------------------------------
    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self):
        return f"<jit {self._name}>"

    # -- keys -----------------------------------------------------------------------------------
    def _split(self, args, kwargs):
        """(dynamic positional args, dynamic kwargs, static key)."""
        statics = []
        if self._static_nums:
            n = len(args)
            snums = {(i if i >= 0 else i + n) for i in self._static_nums}
            dyn = []
            for i, a in enumerate(args):
                if i in snums:
                    statics.append((i, self._hashable(a, f"position {i}", i)))
                else:
                    dyn.append(a)
            args = tuple(dyn)
        dyn_kw = {}
        for k, v in kwargs.items():
            if k in self._static_names:
                statics.append((k, self._hashable(v, f"'{k}'", k)))
            else:
                dyn_kw[k] = v
        return args, dyn_kw, tuple(statics)

    def _hashable(self, v, where, key):
        try:
            hash(v)
        except TypeError:
            raise TypeError(
                f"jit({self._name}): static argument {where} has unhashable type "
                f"{type(v).__name__} ({v!r:.60}); static arguments must be hashable (use a "
                "tuple instead of a list, or make the argument a traced array)") from None
        return v

    def _signature(self, leaves, treedef, dyn_args, dyn_kw):
        sig = []
        for x in leaves:
            s = _leaf_sig(x)
            if s is None:
                self._bad_leaf(x, dyn_args, dyn_kw)
            sig.append(s)
        return tuple(sig)

    def _bad_leaf(self, x, dyn_args, dyn_kw):
        path = ""
        for p, leaf in tree_util.leaves_with_path((dyn_args, dyn_kw)):
            if leaf is x:
                path = _path_str(p)
                break
        raise TypeError(
            f"jit({self._name}): argument {path or ''} of type {type(x).__name__} is not an "
            f"array ({x!r:.60}); pass arrays or Python numbers, or mark the argument static "
            "with static_argnums / static_argnames")

    def _bad_output(self, out, k, leaf):
        """A str/bytes/object/datetime output (as JAX: not an array type jit can return)."""
        path = optree.tree_flatten_with_path(out, namespace=_NS)[0][k]
        where = "output" + "".join(f"[{p!r}]" for p in path)
        raise TypeError(
            f"jit({self._name}): {where} has dtype {get_aval(leaf).dtype} (e.g. a str or "
            "bytes value), which is not an array type jit can return: return arrays of "
            "numbers or booleans")

    # -- call -----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if not kwargs and not self._static_nums and core._state.trace is core.EVAL_TRACE:
            # fast path: positional plain arrays, already compiled
            key = []
            for a in args:
                if type(a) is not np.ndarray:
                    break
                key.append((a.shape, a.dtype))
            else:
                entry = self._fast.get(tuple(key))
                if entry is not None:
                    outs = entry.exe(*args)
                    return outs[0] if entry.single else \
                        optree.tree_unflatten(entry.out_tree, outs)
            # pytrees of arrays, already compiled
            leaves, treedef = optree.tree_flatten(args, namespace=_NS)
            try:
                sig = tuple([(x.shape, x.dtype) for x in leaves])
            except AttributeError:
                sig = None
            entry = self._fast_tree.get((treedef, sig))
            if entry is not None:
                return optree.tree_unflatten(entry.out_tree, entry.exe(*leaves))
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        if kwargs or self._static_nums:
            dyn_args, dyn_kw, statics = self._split(args, kwargs)
            leaves, treedef = optree.tree_flatten((dyn_args, dyn_kw), namespace=_NS)
        else:
            dyn_args, dyn_kw, statics = args, {}, ()
            leaves, treedef = optree.tree_flatten((args, dyn_kw), namespace=_NS)
        sig = []
        for x in leaves:
            if type(x) is np.ndarray:
                sig.append((x.shape, x.dtype))
            else:
                s = _leaf_sig(x)
                if s is None:
                    self._bad_leaf(x, dyn_args, dyn_kw)
                sig.append(s)
        key = (treedef, tuple(sig), statics)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._miss(key, leaves, treedef, statics, args, kwargs)
        trace = core._state.trace
        if trace is core.EVAL_TRACE:
            exe = entry.exe
            if exe is None:
                exe = self._compile(entry, (dyn_args, dyn_kw))
                if not kwargs and not statics and all(type(x) is np.ndarray for x in leaves):
                    if len(leaves) == len(args) and all(type(a) is np.ndarray for a in args):
                        self._fast[tuple(sig)] = entry
                    self._fast_tree[(optree.tree_structure(args, namespace=_NS),
                                     tuple(sig))] = entry
            outs = exe(*[x if type(x) is np.ndarray else _as_array(x) for x in leaves])
        else:
            from .pjit import pjit_p
            closed = entry.closed
            extra = ()
            if entry.hoisted:
                extra = tuple(closed.consts[:entry.hoisted])
                closed = _hoisted_jaxpr(closed, entry.hoisted)
            outs = pjit_p.bind(*extra, *leaves, jaxpr=closed, name=self._name)
        return optree.tree_unflatten(entry.out_tree, outs)

    def _compile(self, entry, dyn=None):
        from .backend.numba import compile as backend_compile
        from .backend.numba.lowering import unsupported_dtype
        from .errors import UnsupportedDtypeError
        try:
            entry.exe = backend_compile(entry.closed, entry.donate)
        except UnsupportedDtypeError as e:
            i = getattr(e, "flat_input", None)
            if i is None or dyn is None or entry.hoisted:
                raise
            # the backend knows the input's position only: name the user's argument
            path = _path_str(tree_util.leaves_with_path(dyn)[i][0])
            raise unsupported_dtype(entry.closed.jaxpr.invars[i].aval.dtype,
                                    f"argument {path} of {self._name}") from None
        return entry.exe

    def _miss(self, key, leaves, treedef, statics, args, kwargs):
        reason = self._explain(key, args, kwargs) if self._cache else None
        if reason is not None:
            self.cache_misses.append(reason)
            logger.log(_explain_level(), "jit(%s): recompiling: %s", self._name, reason)
        else:
            logger.debug("jit(%s): compiling for %s", self._name, _describe_sig(key[1]))
        entry = self._trace(leaves, treedef, statics, args, kwargs)
        if not entry.hoisted:
            self._cache[key] = entry
        self._last_key = key
        return entry

    def _trace(self, leaves, treedef, statics, args, kwargs):
        in_avals = [get_aval(x) for x in leaves]
        for i, a in enumerate(in_avals):
            if a.dtype.kind not in "biufc":       # str, bytes, object, datetime: not numbers
                from .backend.numba.lowering import unsupported_dtype
                dyn = optree.tree_unflatten(treedef, leaves)
                path = _path_str(tree_util.leaves_with_path(dyn)[i][0])
                raise unsupported_dtype(a.dtype, f"argument {path} of {self._name}")
        store = {}
        static_pos = {k: v for k, v in statics if isinstance(k, int)}
        static_kw = {k: v for k, v in statics if isinstance(k, str)}
        n_args = len(args)

        # Python scalars stay weakly typed inside, as in JAX and as in the eager call
        weak = [type(x) in _PY_SCALARS for x in leaves]

        def flat_fun(*flat):
            if any(weak):
                flat = [weakened(t) if w else t for t, w in zip(flat, weak)]
            dyn_args, dyn_kw = optree.tree_unflatten(treedef, list(flat))
            it = iter(dyn_args)
            full = [static_pos[i] if i in static_pos else next(it) for i in range(n_args)]
            out = self._fun(*full, **dyn_kw, **static_kw)
            out_flat, store["tree"] = optree.tree_flatten(out, namespace=_NS)
            out_flat = [as_leaf(o) for o in out_flat]
            for k, o in enumerate(out_flat):
                if get_aval(o).dtype.kind not in "biufc":
                    self._bad_output(out, k, o)
            return out_flat

        closed = trace_to_jaxpr(flat_fun, in_avals)
        donate = ()
        if self._donate:
            # leaves of the donated positional arguments (their buffers may be overwritten)
            n = len(args)
            want = {(i if i >= 0 else i + n) for i in self._donate}
            spos = {(i if i >= 0 else i + n) for i in self._static_nums}
            start, idx = 0, []
            for i, a in enumerate(args):
                if i in spos:
                    continue
                k = len(optree.tree_leaves(a, namespace=_NS))
                if i in want:
                    idx += range(start, start + k)
                start += k
            donate = tuple(idx)
        hoisted = 0
        tracer_consts = [isinstance(c, Tracer) for c in closed.consts]
        if any(tracer_consts):
            # values closed over from an enclosing transformation become leading arguments
            order = [i for i, t in enumerate(tracer_consts) if t] + \
                    [i for i, t in enumerate(tracer_consts) if not t]
            j = closed.jaxpr
            closed = ClosedJaxpr(Jaxpr([j.constvars[i] for i in order], j.invars, j.outvars,
                                       j.eqns), [closed.consts[i] for i in order])
            hoisted = sum(tracer_consts)
        return _Entry(closed, store["tree"], hoisted, donate)

    def _explain(self, key, args, kwargs):
        old = self._last_key
        if old is None:
            return None
        (tree_o, sig_o, st_o), (tree_n, sig_n, st_n) = old, key
        parts = []
        if tree_o != tree_n:
            parts.append(f"the tree structure of the arguments changed from {tree_o} to {tree_n}")
        else:
            dyn_args, dyn_kw, _ = self._split(args, kwargs)
            paths = [_path_str(p) for p, _ in tree_util.leaves_with_path((dyn_args, dyn_kw))]
            for p, a, b in zip(paths, sig_o, sig_n):
                if a != b:
                    parts.append(f"argument {p}: {_describe_leaf(a)} -> {_describe_leaf(b)}")
        if st_o != st_n:
            do, dn = dict(st_o), dict(st_n)
            for k in dict.fromkeys(list(do) + list(dn)):
                if do.get(k, "<absent>") != dn.get(k, "<absent>"):
                    what = f"position {k}" if isinstance(k, int) else f"'{k}'"
                    parts.append(f"static argument {what}: {do.get(k, '<absent>')!r} -> "
                                 f"{dn.get(k, '<absent>')!r}")
        if not parts:
            parts.append("new argument signature")
        return "; ".join(parts)

    # -- introspection --------------------------------------------------------------------------
    def lower(self, *args, **kwargs):
        """Trace and lower for these arguments (no compilation)."""
        dyn_args, dyn_kw, statics = self._split(args, kwargs)
        leaves, treedef = optree.tree_flatten((dyn_args, dyn_kw), namespace=_NS)
        sig = self._signature(leaves, treedef, dyn_args, dyn_kw)
        key = (treedef, sig, statics)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._trace(leaves, treedef, statics, args, kwargs)
        from .backend.numba import lower as backend_lower
        return Lowered(backend_lower(entry.closed, entry.donate), entry.closed)

    def trace(self, *args, **kwargs):
        """The ClosedJaxpr traced for these arguments."""
        dyn_args, dyn_kw, statics = self._split(args, kwargs)
        leaves, treedef = optree.tree_flatten((dyn_args, dyn_kw), namespace=_NS)
        return self._trace(leaves, treedef, statics, args, kwargs).closed

    def clear_cache(self):
        self._cache.clear()
        self._fast.clear()
        self._fast_tree.clear()
        self._last_key = None


def _hoisted_jaxpr(closed, n):
    j = closed.jaxpr
    return ClosedJaxpr(Jaxpr(j.constvars[n:], list(j.constvars[:n]) + list(j.invars), j.outvars,
                             j.eqns), closed.consts[n:])


def _path_str(path):
    (which, *rest) = path if path else (None,)
    s = "args" if which == 0 else ("kwargs" if which == 1 else "")
    if which == 0 and rest:
        s = f"args[{rest[0]!r}]"
        rest = rest[1:]
    elif which == 1 and rest:
        s = f"{rest[0]}"
        rest = rest[1:]
    for k in rest:
        s += f"[{k!r}]"
    return s


def _describe_leaf(s):
    if isinstance(s, type):
        return f"Python {s.__name__}"
    shape, dtype = s
    return core.ShapedArray(shape, dtype).str_short()


def _describe_sig(sig):
    return "(" + ", ".join(_describe_leaf(s) for s in sig) + ")"


def jit(fun=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile `fun` through Numba (see `transforms.jit` module docstring).

    Usable as `jit(f, ...)`, as a decorator `@jit`, or `functools.partial(jit, ...)`."""
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, donate_argnums)
    return JitFunction(fun, static_argnums, static_argnames, donate_argnums)

