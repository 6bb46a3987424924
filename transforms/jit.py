"""`jit`: trace once per argument signature, compile through Numba, dispatch fast.

    f_fast = T.jit(f, static_argnums=(), static_argnames=(), donate_argnums=())
    f_fast(*args, **kwargs)          # NumPy arrays in the output tree
    f_fast.lower(*args).source       # the generated Python/Numba source
    f_fast.lower(*args).as_text()    # the IR after preparation, with the fusion plan

Cache key: the argument tree structure (and the types of non-string dict keys: `{1: x}` is
not `{1.0: x}`), each leaf's shape and dtype (Python scalars count by type only, like JAX's weak
types), and the types and values of the static arguments (`2` is not `2.0`). The cache belongs
to the function object (weakly) and the jit options, so `jit(f)(x)` written inline traces once,
as in JAX; a new closure object is a new function. A miss traces the function to a jaxpr and
compiles it (in-memory and on-disk caches make repeated compiles cheap); every miss after the
first is logged on the ``transforms.jit`` logger with the part of the key that changed (set
``NUMBAX_EXPLAIN_CACHE_MISSES=1`` to log them as warnings) and recorded in
``f_fast.cache_misses``. A result is never reused for a different key. Each function keeps at
most ``$NUMBAX_MEMORY_CACHE_SIZE`` (default 256) signatures, the oldest evicted first;
`f_fast.clear_cache()` forgets them, `T.clear_caches()` those of every function and the
backend's. Arrays the function closes over are captured by value when it is traced.

Outside any transformation a call goes straight to the compiled function. Inside `grad`,
`vmap`, another `jit`, ... it binds the `pjit` primitive carrying the traced jaxpr, so the
transformation applies to the jaxpr (and the transformed jaxpr is compiled in turn).

`donate_argnums` (as JAX): the buffers of those arguments may be reused for outputs of the same
shape and dtype -- the compiled code then writes its results into the argument arrays (which
the caller must not use afterwards). A donated array that shares memory with another argument
(passed twice, tied weights, `ema = params`) is not donated, with a warning naming it. A
training step `params, state = step(params, state, x)` so updates its parameters in place,
saving memory traffic. Without donation, large outputs come
from a pool of buffers recycled once their previous arrays are dropped.

Outputs that are inputs: an output equal to an input array -- returned as it is, or through
an identity the compiler drops (`x + 0`, `x - 0`, a same-dtype `astype`, a reshape to the
same shape) -- is the caller's own array object, not a copy (so a frozen parameter costs
nothing in a training step); an input returned at several places is the same object at
each (an input the compiled code cannot take as it is -- read-only, misaligned, another
byte order -- is converted first, and the converted copy is what comes back). Mutating such an
output in place therefore mutates that input (and vice versa), as it
would for a plain Python function returning its argument; `np.copy` it first to keep them
apart. (JAX copies instead: its arrays are immutable.) No output ever shares memory with
the compiled function's own buffers (pooled outputs are recycled only once nothing else
refers to them; views of scratch memory and closed-over constants are copied out), so
mutating an output never changes the results of other calls.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Sequence
import logging
import os
import threading
import warnings
import weakref

import numpy as np
import optree

from . import core
from . import tree as tree_util
from .core import Tracer, as_leaf, get_aval
from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr, weakened
from .ir import ClosedJaxpr, Jaxpr
from . import tiered as _tiered
from .stages import Compiled, Lowered, Traced  # noqa: F401  (re-exported)

logger = logging.getLogger("transforms.jit")

_NS = tree_util.NAMESPACE
from .config import config as _config  # noqa: E402
_PY_SCALARS = (bool, int, float, complex)
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1


def _explain_level():
    return logging.WARNING if os.environ.get("NUMBAX_EXPLAIN_CACHE_MISSES", "") not in (
        "", "0") else logging.INFO


class _Entry:
    __slots__ = ("closed", "out_tree", "exe", "call", "hoisted", "single", "donate",
                 "dict_keys", "leaf_paths", "tier")

    def __init__(self, closed, out_tree, hoisted=(), donate=(), leaf_paths=None):
        self.closed, self.out_tree, self.exe, self.hoisted = closed, out_tree, None, hoisted
        # exe: the Executable; call: what a call runs (exe, or its donation guard)
        self.call = None
        self.donate = donate
        self.leaf_paths = leaf_paths      # () -> the leaves' tree paths, for messages
        self.single = out_tree.num_nodes == 1 and out_tree.num_leaves == 1
        self.dict_keys = None     # see _dict_key_types: set when the key needs it
        self.tier = None          # tiered.TierState under jit(tiered=True)


_DICT_KINDS = (optree.PyTreeKind.DICT, optree.PyTreeKind.ORDEREDDICT,
               optree.PyTreeKind.DEFAULTDICT)


def _dict_key_types(treedef):
    """The types of the non-string dict keys in `treedef`, or None if it has none.

    Tree structures compare dict keys with `==`, so `{1: x}` and `{1.0: x}` (or `{True: x}`)
    are equal treedefs, yet the function sees (and returns) different keys. Walking a treedef
    costs microseconds, so only keys whose treedef has such keys pay for this check (a string
    never equals a non-string: an all-string treedef cannot be confused)."""
    found = []
    stack = [treedef]
    while stack:
        t = stack.pop()
        if t.kind in _DICT_KINDS:
            keys = t.entries()
            if any(type(k) is not str for k in keys):
                found.append(tuple(type(k) for k in keys))
        stack.extend(t.children())
    return tuple(found) if found else None


def _typed(v):
    """A static argument as a cache key: its type and value, recursively through tuples, so
    `2` and `2.0` (equal and hash-equal) do not share a compiled function."""
    if isinstance(v, tuple):
        return (type(v), tuple([_typed(e) for e in v]))
    return (type(v), v)


def _leaf_sig(x):
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype)
    if t in _PY_SCALARS:
        if t is int and not _INT64_MIN <= x <= _INT64_MAX:
            # a weak int is traced as int64; NumPy would make 2**63 a uint64 and the compiled
            # code would wrap it to a negative number. JAX raises here too.
            raise OverflowError(f"jit: Python int {x} is too large to convert to int64 (pass "
                                f"a NumPy array or scalar of an explicit dtype instead)")
        return t
    if isinstance(x, np.generic):
        return ((), x.dtype)
    if isinstance(x, Tracer):
        a = x.aval
        return (a.shape, a.dtype)
    if isinstance(x, np.ndarray):           # ndarray subclasses
        return (x.shape, x.dtype)
    return None


def _concrete_stand_in(x):
    """An argument for tracing: a `ShapeDtypeStruct` (any shape-and-dtype description that
    is not an array) becomes a zero-strided array of that shape and dtype (no memory)."""
    if isinstance(x, core.ShapeAndDtype) and not isinstance(x, (np.ndarray, Tracer)):
        return np.broadcast_to(np.zeros((), x.dtype), x.shape)
    return x


def _as_array(x):
    if type(x) is np.ndarray:
        return x
    return np.asarray(x)


def _check_argnums(sig, nums, what):
    """As JAX: positions beyond the function's positional parameters are an error (unless it
    takes *args), when `jit` is called."""
    ps = sig.parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in ps):
        return
    n = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in ps)
    bad = [i for i in nums if not -n <= i < n]
    if bad:
        raise ValueError(f"jitted function has {what}={tuple(nums)}, but only accepts {n} "
                         f"positional argument{'s' if n != 1 else ''}")


def _check_argnames(sig, names, what):
    """As JAX: names that are not parameters of the function are an error (unless it takes
    **kwargs)."""
    ps = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in ps.values()):
        return
    bad = sorted(n for n in names if n not in ps or
                 ps[n].kind in (ps[n].VAR_POSITIONAL, ps[n].POSITIONAL_ONLY))
    if bad:
        raise ValueError(f"jitted function has invalid argnames {bad} in {what}: the function "
                         f"takes no such arguments (its parameters: {', '.join(ps)})")


class JitFunction:
    """A jitted function (see the module docstring)."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), donate_argnums=(),
                 tiered=None, donate_argnames=()):
        if not callable(fun):
            raise TypeError(f"jit expects a callable, got {type(fun).__name__}")
        functools.update_wrapper(self, fun)
        self._fun = fun
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        donate = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
        dnames = (donate_argnames,) if isinstance(donate_argnames, str) \
            else tuple(donate_argnames)
        self._params = None
        try:
            sig = inspect.signature(fun)
            self._params = [p for p in sig.parameters.values()
                            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            pass
        if self._params is not None:
            _check_argnums(sig, nums, "static_argnums")
            _check_argnums(sig, donate, "donate_argnums")
            _check_argnames(sig, names, "static_argnames")
            _check_argnames(sig, dnames, "donate_argnames")
            pos_names = [p.name for p in self._params]
            # as JAX: a static position also makes its name static, and vice versa
            names = tuple(dict.fromkeys(names + tuple(
                pos_names[n] for n in nums if 0 <= n < len(pos_names))))
            nums = tuple(dict.fromkeys(nums + tuple(
                pos_names.index(n) for n in names if n in pos_names)))
            # donated names become positions (an argument passed by keyword is not donated:
            # donation only lets the outputs reuse memory, it never changes a result)
            donate = tuple(dict.fromkeys(donate + tuple(
                pos_names.index(n) for n in dnames if n in pos_names)))
        self._static_nums = nums
        self._static_names = frozenset(names)
        self._donate = donate
        self._tiered = _tiered.default_tiered() if tiered is None else bool(tiered)
        # the caches live on the function (shared by every jit of it with these options), so
        # `jit(f)(x)` written inline traces once, as in JAX; the dicts are bound as attributes
        # so dispatch reads them as fast as before
        self._caches = caches = _caches_for(fun, (frozenset(nums), self._static_names,
                                                  frozenset(donate), self._tiered))
        self._cache = caches.entries
        self._fast = caches.fast            # signature of plain positional arrays -> entry
        self._fast_tree = caches.fast_tree  # (tree structure, signature) of pytrees -> entry
        self.cache_misses = caches.misses
        self.tier_stats = caches.tier       # jit(tiered=True): see transforms.tiered
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
        if _config._values["jax_disable_jit"]:      # T.disable_jit(): run eagerly
            return self._fun(*args, **kwargs)
        if _config.debug_floats and core._state.trace is core.EVAL_TRACE:
            return self._call_checked(args, kwargs)
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
                    outs = entry.call(*args)
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
                return optree.tree_unflatten(entry.out_tree, entry.call(*leaves))
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
        key = (treedef, tuple(sig), _statics_key(statics))
        entry = self._lookup(key, treedef)
        trace = core._state.trace
        first = None
        if entry is None:
            if self._tiered and trace is core.EVAL_TRACE:
                # tiered, a new signature: this call runs the Python function itself eagerly
                # (as without jit: cheaper than interpreting its traced program), then traces
                first = _tiered.first_call(self._fun, args, kwargs)
            entry = self._miss(key, leaves, treedef, statics, args, kwargs)
        if trace is core.EVAL_TRACE:
            exe = entry.call
            if exe is None:
                if self._tiered and not _tiered.ready(self._caches, entry, self._name):
                    outs = None if first is None else _tiered.adopt(self._caches, entry, first)
                    if outs is None:
                        outs = _tiered.eager(self._caches, entry, leaves)
                    return optree.tree_unflatten(entry.out_tree, outs)
                exe = self._compile(entry, (dyn_args, dyn_kw))
                if not kwargs and not statics and entry.dict_keys is None and \
                        all(type(x) is np.ndarray for x in leaves):
                    self._caches.add_fast(
                        tuple(sig) if len(leaves) == len(args) and
                        all(type(a) is np.ndarray for a in args) else None,
                        (optree.tree_structure(args, namespace=_NS), tuple(sig)), entry)
            outs = exe(*[x if type(x) is np.ndarray else _as_array(x) for x in leaves])
        else:
            from .pjit import pjit_p
            closed = entry.closed
            extra = ()
            if entry.hoisted:
                closed, extra = convert_constvars(closed, entry.hoisted)
            outs = pjit_p.bind(*extra, *leaves, jaxpr=closed, name=self._name)
        return optree.tree_unflatten(entry.out_tree, outs)

    def _call_checked(self, args, kwargs):
        """A call under jax_debug_nans / jax_debug_infs (`transforms.float_checks`)."""
        from .float_checks import check_jit_outputs
        out = self._call(args, kwargs)
        dyn_args, dyn_kw, _ = self._split(args, kwargs)
        leaves = optree.tree_leaves((dyn_args, dyn_kw), namespace=_NS)
        check_jit_outputs(self._name, optree.tree_leaves(out, namespace=_NS),
                          self.trace(*args, **kwargs).jaxpr, leaves)
        return out

    def _compile(self, entry, dyn=None):
        from .backend.numba import compile as backend_compile
        from .backend.numba.lowering import unsupported_dtype
        from .errors import UnsupportedDtypeError
        from .ir import not_compilable
        msg = not_compilable(entry.closed)
        if msg is not None:         # e.g. a `check` traced inside checkify, called outside it
            raise ValueError(msg)
        try:
            if entry.tier is not None:          # tiered: switching to the compiled code
                entry.exe = backend_compile(entry.closed, entry.donate,
                                            lowered=_tiered.lowered_for(entry))
                _tiered.switched(self._caches, entry.exe)
            else:
                entry.exe = backend_compile(entry.closed, entry.donate)
        except UnsupportedDtypeError as e:
            i = getattr(e, "flat_input", None)
            if i is None or dyn is None or entry.hoisted:
                raise
            # the backend knows the input's position only: name the user's argument
            path = _path_str(tree_util.leaves_with_path(dyn)[i][0])
            raise unsupported_dtype(entry.closed.jaxpr.invars[i].aval.dtype,
                                    f"argument {path} of {self._name}") from None
        entry.call = _DonationGuard(self._name, entry) if entry.donate else entry.exe
        return entry.call

    def _miss(self, key, leaves, treedef, statics, args, kwargs):
        reason = self._explain(key, args, kwargs) if self._cache else None
        if reason is not None:
            self.cache_misses.append(reason)
            logger.log(_explain_level(), "jit(%s): recompiling: %s", self._name, reason)
        else:
            logger.debug("jit(%s): compiling for %s", self._name, _describe_sig(key[1]))
        entry = self._trace(leaves, treedef, statics, args, kwargs)
        entry.dict_keys = _dict_key_types(treedef)
        if not entry.hoisted:
            # an equal key already cached may differ in its dict keys' types (see _lookup);
            # if not, it is another thread's trace of this very key, replaced
            old = self._cache.get(key)
            self._caches.insert((key, entry.dict_keys) if old is not None and
                                old.dict_keys != entry.dict_keys else key, entry)
        self._caches.last_key = key
        return entry

    def _lookup(self, key, treedef):
        """The cached entry for `key`; when its tree has non-string dict keys, their types
        must match too (equal treedefs may hold `1` where the cached one held `1.0`)."""
        entry = self._cache.get(key)
        if entry is not None and entry.dict_keys is not None:
            dk = _dict_key_types(treedef)
            if dk != entry.dict_keys:
                entry = self._cache.get((key, dk))
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
            out_flat, store["tree"] = tree_util.flatten(out)  # dicts sorted, as JAX
            out_flat = [as_leaf(o) for o in out_flat]
            for k, o in enumerate(out_flat):
                if get_aval(o).dtype.kind not in "biufc":
                    self._bad_output(out, k, o)
            return out_flat

        closed = _capture_consts(trace_to_jaxpr(flat_fun, in_avals))
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
        leaf_paths = None
        if donate:
            def leaf_paths():
                # tree paths of the flat leaves, with the positions the caller wrote
                dyn_pos = [i for i in range(n_args) if i not in spos]
                return [_path_str((p[0], dyn_pos[p[1]]) + p[2:] if p[0] == 0 else p)
                        for p in treedef.paths()]
        # values closed over from an enclosing transformation become leading arguments of
        # the pjit equation when it is bound (`hoisted` flags them among the constants)
        tracer_consts = tuple(isinstance(c, Tracer) for c in closed.consts)
        hoisted = tracer_consts if any(tracer_consts) else ()
        return _Entry(closed, store["tree"], hoisted, donate, leaf_paths)

    def _explain(self, key, args, kwargs):
        old = self._caches.last_key
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
                if do.get(k) != dn.get(k):
                    what = f"position {k}" if isinstance(k, int) else f"'{k}'"
                    parts.append(f"static argument {what}: {_show_static(do.get(k))} -> "
                                 f"{_show_static(dn.get(k))}")
        if not parts and _dict_key_types(tree_o) != _dict_key_types(tree_n):
            parts.append("the types of the dictionary keys changed (as 1 -> 1.0)")
        if not parts:
            parts.append("new argument signature")
        return "; ".join(parts)

    # -- introspection --------------------------------------------------------------------------
    def trace(self, *args, **kwargs):
        """Trace for these arguments (arrays, or `ShapeDtypeStruct`s standing for arrays):
        a `transforms.stages.Traced` with `.jaxpr`, `.out_info` and `.lower()`."""
        dyn_args, dyn_kw, statics = self._split(args, kwargs)
        dyn_args, dyn_kw = optree.tree_map(_concrete_stand_in, (dyn_args, dyn_kw),
                                           namespace=_NS)
        leaves, treedef = optree.tree_flatten((dyn_args, dyn_kw), namespace=_NS)
        sig = self._signature(leaves, treedef, dyn_args, dyn_kw)
        entry = self._lookup((treedef, sig, _statics_key(statics)), treedef)
        if entry is None:
            entry = self._trace(leaves, treedef, statics, args, kwargs)
        return Traced(self._name, entry.closed, treedef, entry.out_tree, entry.donate)

    def eval_shape(self, *args, **kwargs):
        """The output pytree with a `ShapeDtypeStruct` per leaf, without compiling (as
        `jax.jit(f).eval_shape`); arguments may be `ShapeDtypeStruct`s."""
        return self.trace(*args, **kwargs).out_info

    def lower(self, *args, **kwargs):
        """Trace and lower for these arguments (no compilation): a `transforms.stages.Lowered`
        (`.as_text()`, `.source`, `.out_info`, `.compile()`)."""
        return self.trace(*args, **kwargs).lower()

    def clear_cache(self):
        self._caches.clear()

    def wait_compiled(self, timeout=None):
        """With `tiered=True`: wait until the background compiles started so far have ended
        (the next call of each signature then runs compiled, or stays eager after a failure).
        Returns False if `timeout` seconds passed first; True at once without `tiered`."""
        return _tiered.wait(self._caches, timeout)

    def _cache_size(self):
        """Number of traced signatures cached (as JAX's `jitted._cache_size()`)."""
        return len(self._cache)


class _DonationGuard:
    """Runs an entry's executable compiled with donation -- unless a donated array shares
    memory with another argument (the same array passed twice, tied weights inside a donated
    tree, `step(params, ema)` with `ema = params`, overlapping views of one buffer): writing
    an output into it would change an input the computation still reads. Such leaves are
    then not donated, through an executable compiled without them (one warning per set)."""
    __slots__ = ("name", "closed", "leaf_paths", "exe", "donate", "without")

    def __init__(self, name, entry):
        # not the entry itself: entry.call is this guard, and a cycle would keep executables
        # alive until the next garbage collection
        self.name, self.closed, self.leaf_paths = name, entry.closed, entry.leaf_paths
        self.exe, self.donate = entry.exe, entry.donate
        self.without = {}             # frozenset of undonated leaves -> Executable

    def __call__(self, *leaves):
        shared = _shared_donations(leaves, self.donate)
        if shared is None:
            return self.exe(*leaves)
        exe = self.without.get(shared)
        if exe is None:
            exe = self._undonated(shared, leaves)
        return exe(*leaves)

    def _undonated(self, shared, leaves):
        from .backend.numba import compile as backend_compile
        paths = self.leaf_paths()
        what = []
        for i in sorted(shared):
            other = [paths[j] for j, x in enumerate(leaves) if j != i and
                     isinstance(x, np.ndarray) and np.may_share_memory(leaves[i], x)]
            what.append(f"{paths[i]} (shares memory with {', '.join(other)})")
        warnings.warn(
            f"jit({self.name}): not donating {'; '.join(what)}: a donated buffer must not "
            "alias another argument, or writing an output into it would change an input "
            "still being read", UserWarning, stacklevel=4)
        exe = backend_compile(self.closed, [i for i in self.donate if i not in shared])
        self.without[shared] = exe
        return exe


def _owner(x):
    """The object owning the memory of array `x`. NumPy collapses chains of views to the
    owning array, except through other buffer objects (np.frombuffer, memoryview, mmap)."""
    while True:
        b = x.base if isinstance(x, np.ndarray) else getattr(x, "obj", None)
        if b is None:
            return x
        x = b


def _shared_donations(leaves, donate):
    """frozenset of the donated leaves whose memory overlaps another leaf's, or None.

    Cheap (a few attribute reads per leaf, on every call of a donating jit): leaves are
    grouped by the object owning their memory; only when a donated leaf's owner also owns
    another leaf are the two compared, by byte extents (`np.may_share_memory`: disjoint slices
    of one buffer stay donated; interleaved strided views count as overlapping, which only
    costs the donation)."""
    ndarray = np.ndarray
    owner_ids = []
    for j, x in enumerate(leaves):
        if type(x) is not ndarray and not isinstance(x, ndarray):
            owner_ids.append(-1 - j)           # Python scalars become fresh arrays: unique
            continue
        # _owner(x), inlined for its common cases
        b = x.base
        if b is None:
            owner_ids.append(id(x))
        elif type(b) is ndarray and b.base is None:
            owner_ids.append(id(b))
        else:
            owner_ids.append(id(_owner(b)))
    if len(set(owner_ids)) == len(owner_ids):
        return None                            # the common case: every leaf owns its memory
    donated = set(donate)
    by_owner = {}
    for j, o in enumerate(owner_ids):
        by_owner.setdefault(o, []).append(j)
    shared = set()
    for group in by_owner.values():
        if len(group) < 2:
            continue
        for a, i in enumerate(group):
            for j in group[a + 1:]:
                if (i in donated or j in donated) and \
                        np.may_share_memory(leaves[i], leaves[j]):
                    shared.update(k for k in (i, j) if k in donated)
    return frozenset(shared) if shared else None


def _capture_consts(closed):
    """`closed` with its closed-over NumPy arrays copied: constants are captured by value when
    the function is traced (as JAX), so mutating such an array afterwards changes no compiled
    result -- whatever its layout (the backend passes a C-contiguous array as it stands, and
    would copy any other). One copy per trace, made C-contiguous, writeable and aligned so the
    backend takes it as it is instead of copying it again."""
    consts = closed.consts
    if not any(isinstance(c, np.ndarray) for c in consts):
        return closed
    return ClosedJaxpr(closed.jaxpr, [np.array(c, order="C", copy=True)
                                      if isinstance(c, np.ndarray) else c for c in consts])


class _Caches:
    """The traced and compiled entries of one function under one set of jit options.

    `entries`: cache key -> _Entry; `fast` / `fast_tree`: the same entries under the cheaper
    keys of the dispatch fast paths. At most `memory_cache_size()` entries are kept: a new one
    evicts the oldest (first in, first out -- recency is not tracked because that would cost
    every call; an evicted signature in use again is traced once more)."""
    __slots__ = ("entries", "fast", "fast_tree", "last_key", "misses", "lock", "tier",
                 "tier_warned", "__weakref__")

    def __init__(self):
        self.entries, self.fast, self.fast_tree = {}, {}, {}
        self.last_key = None
        self.misses = []
        self.lock = threading.Lock()
        self.tier = _tiered.new_stats()
        self.tier_warned = False
        _ALL_CACHES.add(self)

    def insert(self, key, entry):
        from ._limits import memory_cache_size
        with self.lock:
            self.entries[key] = entry
            n = memory_cache_size()
            while len(self.entries) > n:
                old = self.entries.pop(next(iter(self.entries)))
                for d in (self.fast, self.fast_tree):
                    for k in [k for k, e in d.items() if e is old]:
                        del d[k]

    def add_fast(self, key, tree_key, entry):
        with self.lock:
            if not any(e is entry for e in self.entries.values()):
                return                      # evicted meanwhile (another thread)
            if key is not None:
                self.fast[key] = entry
            self.fast_tree[tree_key] = entry

    def clear(self):
        with self.lock:
            self.entries.clear()
            self.fast.clear()
            self.fast_tree.clear()
            self.last_key = None


# function -> {jit options: _Caches}; weak, so a function (and its compiled entries) can be
# collected; a new closure object is a new function, hence a legitimate miss
_BY_FUNCTION = weakref.WeakKeyDictionary()
_BY_FUNCTION_LOCK = threading.Lock()
_ALL_CACHES = weakref.WeakSet()       # every _Caches alive, for clear_caches()


def _caches_for(fun, options):
    with _BY_FUNCTION_LOCK:
        try:
            per_fun = _BY_FUNCTION.get(fun)
            if per_fun is None:
                per_fun = _BY_FUNCTION[fun] = {}
        except TypeError:             # not weakly referenceable or unhashable: own caches
            return _Caches()
        caches = per_fun.get(options)
        if caches is None:
            caches = per_fun[options] = _Caches()
        return caches


def clear_caches():
    """Drop every jitted function's traced and compiled entries and the backend's in-memory
    caches (as `jax.clear_caches`); the disk cache is untouched."""
    for c in list(_ALL_CACHES):
        c.clear()
    from .backend.numba import clear_memory_cache
    clear_memory_cache()


def _statics_key(statics):
    return tuple([(k, _typed(v)) for k, v in statics]) if statics else ()


def _show_static(t):
    """repr of a static argument from its `_typed` form (None: absent)."""
    if t is None:
        return "<absent>"

    def value(t):
        typ, v = t
        return tuple([value(e) for e in v]) if issubclass(typ, tuple) else v
    return repr(value(t))


def _path_str(path):
    (which, *rest) = path if path else (None,)
    which = tree_util.raw_key(which)
    s = "args" if which == 0 else ("kwargs" if which == 1 else "")
    if which == 0 and rest:
        s = f"args[{tree_util.raw_key(rest[0])!r}]"
        rest = rest[1:]
    elif which == 1 and rest:
        s = f"{tree_util.raw_key(rest[0])}"
        rest = rest[1:]
    return s + tree_util.keystr(rest)    # JAX's key syntax: ['w'][0].field


def _describe_leaf(s):
    if isinstance(s, type):
        return f"Python {s.__name__}"
    shape, dtype = s
    return core.ShapedArray(shape, dtype).str_short()


def _describe_sig(sig):
    return "(" + ", ".join(_describe_leaf(s) for s in sig) + ")"


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (),
        donate_argnums: int | Sequence[int] = (),
        donate_argnames: str | Sequence[str] = (),
        tiered: bool | None = None) -> JitFunction | Callable[[Callable], JitFunction]:
    """Compile `fun` through Numba.

    Usable as `jit(f, ...)`, as a decorator `@jit`, or `functools.partial(jit, ...)`.

    Args:
      fun: a pure function of arrays / pytrees of arrays (and Python scalars).  Omitted:
        `jit(**options)` returns a decorator.
      static_argnums: positions of arguments that are compile-time constants (hashable;
        each distinct value compiles separately).
      static_argnames: the same, by keyword name.
      donate_argnums: positions of arguments whose buffers the outputs may reuse.
      donate_argnames: the same, by parameter name (donated when passed positionally).
      tiered: `True`: while a new signature is compiled in a background process, calls run
        in the eager interpreter, then switch to the compiled code (see `transforms.tiered`;
        the first steps may then differ in the last bits from a compiled run). Default: off,
        unless ``NUMBAX_TIERED=1``; off keeps runs bit-reproducible.

    Returns:
      A `JitFunction`: call it like `fun`; `.trace(*args)` / `.lower(*args)` /
      `.lower(*args).compile()` are the ahead-of-time stages (`transforms.stages`; arguments
      may be `ShapeDtypeStruct`s; a Lowered has the generated source and IR),
      `.eval_shape(*args)` the output's shapes and dtypes, `.cache_misses` the
      recompilations and their reasons, `.clear_cache()` forgets the compiled signatures.
    """
    if fun is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, donate_argnums,
                                     tiered, donate_argnames)
    return JitFunction(fun, static_argnums, static_argnames, donate_argnums, tiered,
                       donate_argnames)


# `transforms.jit` (the name) is this function, which shadows this module in the package
# namespace: give the function the module's full documentation so help(T.jit) shows it all
jit.__doc__ = jit.__doc__.rstrip() + "\n\n    Details\n    -------\n" + "\n".join(
    ("    " + line) if line else "" for line in __doc__.splitlines()) + "\n"

