"""A generated function compiled directly: the callable that replaces Numba's dispatcher,
and its compile (or load from the disk cache).

The machine code of a function is one object file in the cache directory,
``__pycache__/nbx_<module key>.<function>.<hash>.dobj`` (an entry of its module, so eviction
removes it with the module's other files). The hash covers the module key (the hash of the
module's source, which names its constants, kernels and helpers), the function's name, the
direct compiler's and the kernels' sources and the host CPU, so code compiled for another
machine or by another version is never loaded.

A function called from Python (the main function) gets an entry point that is a CPython
builtin function (METH_FASTCALL, made with ``PyCFunction_NewEx``): it takes each array as the
NumPy array object itself (data pointer, dimensions, dtype and flags read from the object,
one load each) and each scalar as a Python number, and releases the GIL while the function
runs, as Numba's ``nogil`` functions do. A call costs about what a call of Numba's
dispatcher does (ctypes' foreign calls cost twice that).
"""
from __future__ import annotations

import collections
import ctypes
import functools
import hashlib
import os
import threading

import numpy as np
from llvmlite import ir

from . import engine, lanes
from . import scalars as S
from .lower import I64, ArrT, FunctionCompiler, ModuleBuilder, function_ast, param_types
from .scalars import Unsupported

# offsets in a NumPy array object (PyArrayObject_fields): its type, data pointer, number of
# dimensions, dimensions pointer, dtype (descr) and flags; in a dtype (PyArray_Descr): its
# byte order character and type number
_OFFSETS = {"type": 8, "data": 16, "nd": 24, "dims": 32, "descr": 56, "flags": 64,
            "byteorder": 26, "type_num": 28}
_FLAGS = 0x1 | 0x100 | 0x400         # C-contiguous, aligned, writeable
_SWAPPED = ord(">") if np.little_endian else ord("<")


@functools.lru_cache(maxsize=None)
def _array_layout():
    """The offsets of `_OFFSETS`, checked on a live array (and the symbols the entry points
    compare against published), or None when this NumPy is not laid out as expected."""
    import llvmlite.binding as llb
    a = np.arange(7, dtype=np.int64)
    base = id(a)
    o = _OFFSETS
    try:
        tp = ctypes.c_void_p.from_address(base + o["type"]).value
        data = ctypes.c_void_p.from_address(base + o["data"]).value
        nd = ctypes.c_int.from_address(base + o["nd"]).value
        dims = ctypes.c_void_p.from_address(base + o["dims"]).value
        n0 = ctypes.c_int64.from_address(dims).value if dims else None
        descr = ctypes.c_void_p.from_address(base + o["descr"]).value
        flags = ctypes.c_int.from_address(base + o["flags"]).value
    except (ValueError, OSError):
        return None
    if not (tp == id(np.ndarray) and data == a.ctypes.data and nd == 1 and n0 == 7 and
            descr == id(a.dtype) and flags == a.flags.num):
        return None
    for t in list(S.SUPPORTED) + [np.dtype(">f4"), np.dtype("<f8")]:
        try:
            num = ctypes.c_int.from_address(id(t) + o["type_num"]).value
            order = ctypes.c_char.from_address(id(t) + o["byteorder"]).value
        except (ValueError, OSError):
            return None
        if num != t.num or order != t.byteorder.encode():
            return None
    llb.add_symbol("numbax_ndarray_type", id(np.ndarray))
    return o


@functools.lru_cache(maxsize=None)
def version():
    """A hash of the direct compiler's source (part of every machine-code key)."""
    h = hashlib.sha1()
    d = os.path.dirname(__file__)
    for name in sorted(os.listdir(d)):
        if name.endswith(".py"):
            with open(os.path.join(d, name), "rb") as f:
                h.update(f.read())
    h.update(engine.host_fingerprint().encode())
    return h.hexdigest()[:16]


class _Stats:
    def __init__(self, sig, hit):
        self.cache_hits = {sig: int(hit)}


class DirectFunction:
    """A generated function compiled directly (see the package docstring); calling it from
    Python runs its machine code. `symbol` is its internal entry (called by other directly
    compiled code); `argtypes`/`rettype` its signature in the direct compiler's types.

    Its machine code may still be compiling (`lanes.py`) when it is made: it is loaded, after
    the code of every function compiled before it, on its first call from Python or when
    Numba-compiled code is about to link it (`load_pending`)."""

    def __init__(self, py_func, sig, argtypes, symbol, pending, entry):
        self.py_func = py_func
        self.__name__ = py_func.__name__
        self.argtypes, self.rettype, self.symbol = argtypes, None, symbol
        self.signatures = [sig.args]
        self.from_disk = pending.from_disk
        self.stats = _Stats(sig.args, self.from_disk)
        self.direct = True
        self._fast, self._def = None, None
        self._pending, self._entry = pending, entry     # (`entry`: has a Python entry)

    def _loaded(self, addrs):
        py_addr = addrs.get(self.symbol + "_py")
        if py_addr:
            self._fast, self._def = _builtin(self.__name__, py_addr)
        self._pending = None

    @property
    def fast(self):
        """The C-level entry (a builtin function; generated runners call it and check its
        result themselves), its machine code loaded first if pending; None for a function
        called only from compiled code."""
        if self._pending is not None:
            load_pending(self)
        return self._fast

    def __call__(self, *args):
        fast = self._fast
        if fast is None:
            fast = self.fast
            if fast is None:
                raise TypeError(f"{self.__name__} is called only from compiled code")
        bad = fast(*args)
        if bad is not None:
            if bad < 0:
                raise TypeError(f"{self.__name__} takes {len(self.argtypes)} arguments, "
                                f"got {len(args)}")
            a, t = args[bad], self.argtypes[bad]
            raise TypeError(f"{self.__name__}: argument {bad} is not a writeable aligned "
                            f"C-contiguous {t.ndim}-d {t.dtype} array (got "
                            f"{type(a).__name__} {getattr(a, 'dtype', '')} "
                            f"{getattr(a, 'shape', '')})")

    def __repr__(self):
        return f"<directly compiled {self.__name__}>"


class _Part:
    """One object file of a `DirectFunction`: read from the disk cache (`obj`) or being
    compiled (the `lanes` job `job`); `where` its cache file, `names` the symbols it
    defines."""

    __slots__ = ("obj", "job", "where", "names")

    def __init__(self, obj, job, where, names):
        self.obj, self.job, self.where, self.names = obj, job, where, names


class _Pending:
    """What a `DirectFunction` waits for: its parts (the function; then its Python entry,
    a module of its own, so the two compile on both lanes at once -- the main function is
    the last module of a program, its compile the tail of a cold start), loaded in that
    order; `lower` makes their LLVM IR again (when a cached object turns out damaged)."""

    __slots__ = ("parts", "lower")

    def __init__(self, parts, lower):
        self.parts, self.lower = parts, lower

    @property
    def from_disk(self):
        return all(p.obj is not None for p in self.parts)


_unloaded = collections.deque()     # DirectFunctions with pending machine code, in order
_load_lock = threading.RLock()


def load_pending(upto=None):
    """Load the machine code of the directly compiled functions still pending, in the order
    they were compiled (a function's code links the symbols of the helpers compiled before
    it), up to and including `upto` (default: all)."""
    with _load_lock:
        while _unloaded:
            fn = _unloaded[0]
            _load(fn)
            _unloaded.popleft()
            if fn is upto:
                return


def _load(fn):
    p = fn._pending
    addrs = {}
    for k, part in enumerate(p.parts):
        if part.obj is not None:
            try:
                addrs.update(engine.load_object(part.obj, part.names))
                continue
            except RuntimeError:               # damaged: compiled again
                part.obj = None
                part.job = lanes.submit(p.lower()[k], _writer(part.where))
                fn.from_disk = False
        try:
            obj = lanes.result(part.job)
        except RuntimeError as e:
            raise RuntimeError(f"{fn.__name__}: {e}") from None
        addrs.update(engine.load_object(obj, part.names))
    fn._loaded(addrs)


def _writer(where):
    """What saves a compiled object file to cache file `where` (None: nothing)."""
    if where is None:
        return None
    return lambda obj: _write(where, _MAGIC + hashlib.sha256(obj).digest() + obj)


def _argtypes(sig):
    from numba import types as nt
    from numba.np import numpy_support
    out = []
    for t in sig.args:
        if isinstance(t, nt.Array):
            if t.layout != "C" or t.ndim < 1:
                raise Unsupported(f"array argument {t}")
            out.append(ArrT(S.check(numpy_support.as_dtype(t.dtype)), t.ndim))
        elif isinstance(t, (nt.Integer, nt.Float, nt.Boolean)):
            out.append(S.check(numpy_support.as_dtype(t)))
        else:
            raise Unsupported(f"argument type {t}")
    if sig.return_type != nt.none:
        raise Unsupported("a function returning a value")
    return out


_CAPI = {   # C-API functions the entry point calls, published under these names
    "numbax_capi_long_from": ("PyLong_FromLongLong", ctypes.c_void_p),
    "numbax_capi_as_longlong": ("PyLong_AsLongLong", None),
    "numbax_capi_as_ulonglong": ("PyLong_AsUnsignedLongLong", None),
    "numbax_capi_as_double": ("PyFloat_AsDouble", None),
    "numbax_capi_is_true": ("PyObject_IsTrue", None),
    "numbax_capi_err_occurred": ("PyErr_Occurred", None),
    "numbax_capi_save_thread": ("PyEval_SaveThread", None),
    "numbax_capi_restore_thread": ("PyEval_RestoreThread", None),
    "numbax_capi_incref": ("Py_IncRef", None),
}


@functools.lru_cache(maxsize=None)
def _publish_capi():
    import llvmlite.binding as llb
    for sym, (name, _) in _CAPI.items():
        llb.add_symbol(sym, ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value)
    llb.add_symbol("numbax_py_none", id(None))
    return True


# how the entry converts each argument (the `kind` column of its argument table)
_ARRAY, _FLOAT, _BOOL, _SIGNED, _UNSIGNED = range(5)
_I8, _I32, _DBL = ir.IntType(8), ir.IntType(32), ir.DoubleType()
_I8P = _I8.as_pointer()
# an argument's slot in the entry's stack buffer: an array's data pointer (as an integer)
# and its dimensions (a pointer into the array object, which the caller keeps alive); a
# scalar converted to 64 bits (a double's bits, an integer, a bool 0/1) and nothing
_SLOT = ir.LiteralStructType([I64, I64.as_pointer()])


def _arg_kind(t):
    if isinstance(t, ArrT):
        return _ARRAY
    return {"f": _FLOAT, "b": _BOOL, "u": _UNSIGNED}.get(t.kind, _SIGNED)


def _arg_row(t):
    """(kind, dtype number, ndim) of an argument of type `t` (0 where they do not apply)."""
    arr = isinstance(t, ArrT)
    return _arg_kind(t), t.dtype.num if arr else 0, t.ndim if arr else 0


def _arg_table(mb, argtypes, name):
    """A private constant of the module: per argument (kind, dtype number, ndim) as three
    i32. (Data of the module, no address: the object file relocates it when loaded.)"""
    rec = ir.LiteralStructType([_I32] * 3)
    rows = [ir.Constant(rec, [_c32(v) for v in _arg_row(t)]) for t in argtypes]
    ty = ir.ArrayType(rec, len(rows))
    gv = ir.GlobalVariable(mb.module, ty, name + "_args")
    gv.linkage = "private"
    gv.global_constant = True
    gv.unnamed_addr = True
    gv.initializer = ir.Constant(ty, rows)
    return gv


def _c64(v):
    return ir.Constant(I64, v)


def _c32(v):
    return ir.Constant(_I32, v)


def _capi(mb, sym, ret, args):
    return mb.declare(sym, ir.FunctionType(ret, args))


def _field(b, p, key, ty):
    """Load field `key` (of `_OFFSETS`) of the object at `p` as a `ty`."""
    return b.load(b.bitcast(b.gep(p, [_c64(_array_layout()[key])]), ty.as_pointer()))


# up to this many arguments the entry takes them in straight-line code (LLVM optimises and
# emits that faster than the loop, which it would unroll anyway); beyond, in the loop
_UNROLL = 8


def _python_entry(mb, fn, argtypes, name):
    """`name`: `fn` as a CPython function (METH_FASTCALL: ``(self, args, nargs)``) taking
    arrays as NumPy objects and scalars as Python numbers. It returns None after running
    `fn` with the GIL released, or -- nothing having run -- the index of the first argument
    its signature does not take (exactly an ndarray, its dtype in native byte order, its
    number of dimensions, C-contiguous, aligned, writeable; -1: the wrong number of
    arguments): the caller then raises TypeError, as Numba's dispatcher does for arguments
    its signature does not accept, and the executable converts them; NULL when converting
    a scalar raised (arguments are taken in order: the first failure is reported). Data
    pointer and dimensions are read from the object; the ndarray type and the C-API
    functions are symbols published in each process (no address is compiled in: the code
    is cached on disk).

    Each argument is taken (`_take_argument`) into its slot of a stack buffer: an array
    checked, its data and dimensions pointers stored; a scalar converted by its kind; the
    call then loads its arguments from the buffer. Beyond `_UNROLL` arguments this is ONE
    loop over a constant table of the arguments (`_arg_table`, `_argument_loop`), so the
    entry's IR does not grow with them but for the call itself (a few loads each): taken
    one by one, the entry of a CNN training step (44 arguments) was 1,833 of its module's
    6,227 lines of IR, in the loop it is 396."""
    n = len(argtypes)
    entry = ir.Function(mb.module, ir.FunctionType(_I8P, [_I8P, _I8P.as_pointer(), I64]),
                        name)
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    slots = b.alloca(ir.ArrayType(_SLOT, max(n, 1)), name="slots")
    wrong_count = entry.append_basic_block("wrong_count")
    with b.goto_block(wrong_count):
        b.ret(b.call(_capi(mb, "numbax_capi_long_from", _I8P, [I64]), [_c64(-1)]))
    fail = None
    if any(_arg_kind(t) != _ARRAY for t in argtypes):
        fail = entry.append_basic_block("fail")        # a conversion raised: NULL
        with b.goto_block(fail):
            b.ret(ir.Constant(_I8P, None))
    take = entry.append_basic_block("args")
    b.cbranch(b.icmp_signed("==", entry.args[2], _c64(n)), take, wrong_count)
    b.position_at_end(take)
    if n > _UNROLL:
        _argument_loop(mb, b, _arg_table(mb, argtypes, name), slots,
                       sorted({_arg_kind(t) for t in argtypes}), fail)
    else:
        for k, t in enumerate(argtypes):
            row = _arg_row(t)
            _take_argument(mb, b, _c64(k), row[0], lambda j, row=row: _c32(row[j]),
                           slots, fail)

    args = []
    for k, t in enumerate(argtypes):
        v = b.load(b.gep(slots, [_c64(0), _c64(k), _c32(0)]))
        if isinstance(t, ArrT):
            args.append(b.inttoptr(v, S.ll_mem(t.dtype).as_pointer()))
            shape = b.load(b.gep(slots, [_c64(0), _c64(k), _c32(1)]))
            args += [b.load(b.gep(shape, [_c64(i)])) for i in range(t.ndim)]
        elif t.kind == "f":
            v = b.bitcast(v, _DBL)
            args.append(b.fptrunc(v, S.ll(t)) if t == S.F32 else v)
        else:
            args.append(b.trunc(v, S.ll(t)) if t.kind == "b" or t.itemsize < 8 else v)
    ts = b.call(_capi(mb, "numbax_capi_save_thread", _I8P, []), [])     # nogil, as Numba's
    # never inlined: `fn` is compiled (and optimised) once as its own function; LLVM inlined
    # a 400-line one into a 7-argument entry, doubling the module's optimise+emit time
    b.call(fn, args, attrs=("noinline",))
    b.call(_capi(mb, "numbax_capi_restore_thread", ir.VoidType(), [_I8P]), [ts])
    none = mb.external_global("numbax_py_none", _I8)
    b.call(_capi(mb, "numbax_capi_incref", ir.VoidType(), [_I8P]), [none])
    b.ret(none)


def _argument_loop(mb, b, table, slots, kinds, fail):
    """The entry's loop over its arguments, from the builder's block (the loop's head, its
    predecessor the entry block) to a block after the last argument, where the builder is
    left: argument k is taken by its row of `table`. `kinds`: the kinds present (only their
    cases are emitted: a function of arrays only has no switch)."""
    n = table.type.pointee.count
    entry = b.function
    head = b.block
    k = b.phi(I64, name="k")
    k.add_incoming(_c64(0), entry.blocks[0])
    row = b.gep(table, [_c64(0), k])

    def column(j):
        return b.load(b.gep(row, [_c32(0), _c32(j)]))

    nxt = entry.append_basic_block("next")
    cases = {kind: entry.append_basic_block(f"kind{kind}") for kind in kinds}
    if len(kinds) == 1:
        b.branch(cases[kinds[0]])
    else:
        sw = b.switch(column(0), cases[kinds[0]])
        for kind in kinds[1:]:
            sw.add_case(_c32(kind), cases[kind])
    for kind, blk in cases.items():
        b.position_at_end(blk)
        _take_argument(mb, b, k, kind, column, slots, fail)
        b.branch(nxt)
    b.position_at_end(nxt)
    k1 = b.add(k, _c64(1))
    k.add_incoming(k1, nxt)
    done = entry.append_basic_block("taken")
    b.cbranch(b.icmp_signed("==", k1, _c64(n)), done, head)
    b.position_at_end(done)


def _take_argument(mb, b, k, kind, column, slots, fail):
    """Take argument `k` (an i64 value) of kind `kind` into its slot of `slots`; `column(j)`:
    column j of its row of the argument table (dtype number, ndim). An array not taken
    returns k, a scalar conversion that raised branches to `fail`; the builder is left
    where the argument was taken."""
    entry = b.function
    p = b.load(b.gep(entry.args[1], [k]))
    value = b.gep(slots, [_c64(0), k, _c32(0)])
    if kind == _ARRAY:
        ok = b.icmp_unsigned("==", _field(b, p, "type", _I8P),
                             mb.external_global("numbax_ndarray_type", _I8))
        descr = _field(b, p, "descr", _I8P)
        # the dtype by its type number, in native byte order (an unpickled array's dtype is
        # an equal object of its own, so not compared by identity)
        ok = b.and_(ok, b.icmp_signed("==", _field(b, descr, "type_num", _I32), column(1)))
        ok = b.and_(ok, b.icmp_unsigned("!=", _field(b, descr, "byteorder", _I8),
                                        ir.Constant(_I8, _SWAPPED)))
        ok = b.and_(ok, b.icmp_signed("==", _field(b, p, "nd", _I32), column(2)))
        fl = b.and_(_field(b, p, "flags", _I32), _c32(_FLAGS))
        ok = b.and_(ok, b.icmp_signed("==", fl, _c32(_FLAGS)))
        taken, reject = entry.append_basic_block("array"), entry.append_basic_block("reject")
        b.cbranch(ok, taken, reject)
        with b.goto_block(reject):
            b.ret(b.call(_capi(mb, "numbax_capi_long_from", _I8P, [I64]), [k]))
        b.position_at_end(taken)
        b.store(b.ptrtoint(_field(b, p, "data", _I8P), I64), value)
        b.store(_field(b, p, "dims", I64.as_pointer()), b.gep(slots, [_c64(0), k, _c32(1)]))
        return
    if kind == _FLOAT:
        v = b.call(_capi(mb, "numbax_capi_as_double", _DBL, [_I8P]), [p])
        b.store(b.bitcast(v, I64), value)
        bad = b.fcmp_ordered("==", v, ir.Constant(_DBL, -1.0))
    elif kind == _BOOL:
        r = b.call(_capi(mb, "numbax_capi_is_true", _I32, [_I8P]), [p])
        b.store(b.zext(b.icmp_signed(">", r, _c32(0)), I64), value)
        bad = b.icmp_signed("<", r, _c32(0))
    else:
        conv = "numbax_capi_as_ulonglong" if kind == _UNSIGNED else "numbax_capi_as_longlong"
        v = b.call(_capi(mb, conv, I64, [_I8P]), [p])
        b.store(v, value)
        bad = b.icmp_signed("==", v, _c64(-1))
    check, taken = entry.append_basic_block("check_err"), entry.append_basic_block("scalar")
    b.cbranch(bad, check, taken)
    with b.goto_block(check):                  # -1 may be a value or an error
        err = b.call(_capi(mb, "numbax_capi_err_occurred", _I8P, []), [])
        b.cbranch(b.icmp_unsigned("!=", err, ir.Constant(_I8P, None)), fail, taken)
    b.position_at_end(taken)


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_METH_FASTCALL = 0x80


def _builtin(name, addr):
    """A CPython builtin function object calling the METH_FASTCALL entry at `addr` (and the
    method definition it points at, which must live as long as it)."""
    md = _PyMethodDef(name.encode(), addr, _METH_FASTCALL, None)
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
    return new(ctypes.addressof(md), None, None), md


def object_key(module_key, fname):
    """The key of the machine code of function `fname` of generated module `module_key`."""
    return hashlib.sha1(f"{module_key} {fname} {version()} "
                        f"{_kernels_version()}".encode()).hexdigest()[:20]


def object_file_name(module_key, fname):
    """Its file name in the cache directory's ``__pycache__``."""
    return f"nbx_{module_key}.{fname}.{object_key(module_key, fname)}.dobj"


def _cache_path(py_func, key):
    """The object file of `py_func` in the cache directory, or None (no directory or not a
    generated module's function)."""
    from .. import cache
    fname = py_func.__code__.co_filename
    base = os.path.basename(fname)
    if not base.startswith("nbx_") or not base.endswith(".py"):
        return None
    st = cache._resolve()
    if st.path is None or os.path.dirname(fname) != st.path:
        return None
    return os.path.join(st.path, "__pycache__",
                        f"{base[:-3]}.{py_func.__name__}.{key}.dobj"), st


def compile_function(py_func, sig, module_key, entry=True, noalias=False):
    """`py_func` (a generated function with Numba signature `sig`) compiled directly, or
    loaded from the disk cache: a `DirectFunction` (its machine code possibly still being
    compiled, see `load_pending`). `entry`: whether it gets a Python entry point (a helper
    called only from compiled code does not: less for LLVM to compile); `noalias`: its
    array parameters never overlap one it writes (`cache.njit`). Raises `Unsupported` when
    it uses something outside the subset."""
    if _array_layout() is None:
        raise Unsupported("NumPy array objects are not laid out as expected")
    _publish_capi()
    argtypes = _argtypes(sig)
    key = object_key(module_key, py_func.__name__)
    symbol = f"nbxd_{key}"
    where = _cache_path(py_func, key)

    def lower():
        """The LLVM IR of the function's module, then (with `entry`) of its entry's."""
        triple, layout = engine.triple_and_layout()
        mb = ModuleBuilder(symbol, triple, layout)
        fc = FunctionCompiler(mb, function_ast(py_func), py_func.__globals__, argtypes,
                              symbol, noalias=noalias)
        fn = fc.compile()
        if fc.ret_type is not None:
            raise Unsupported("a generated function returning a value")
        if not entry:
            return [str(mb.module)]
        eb = ModuleBuilder(symbol + "_py", triple, layout)
        _python_entry(eb, eb.declare(symbol, fn.function_type), argtypes, symbol + "_py")
        return [str(mb.module), str(eb.module)]

    wheres = [where, _entry_path(where)] if entry else [where]
    names = [[symbol], [symbol + "_py"]]
    objs = [_unpack(_read_trusted(w[0])) if w is not None else None for w in wheres]
    if all(o is not None for o in objs):
        pending = _Pending([_Part(o, None, w, n) for o, w, n in zip(objs, wheres, names)],
                           lower)
    else:       # (saved to the disk as soon as compiled, whether or not ever loaded here)
        lanes.start()
        pending = _Pending([_Part(None, lanes.submit(ir_text, _writer(w)), w, n)
                            for ir_text, w, n in zip(lower(), wheres, names)], None)
    fn = DirectFunction(py_func, sig, argtypes, symbol, pending, entry)
    with _load_lock:
        _unloaded.append(fn)
    if pending.from_disk and len(_unloaded) == 1:
        load_pending(fn)            # from the disk, nothing before it pending: load it now
    return fn


def _entry_path(where):
    """The cache file of the Python entry of the function whose cache file is `where`."""
    if where is None:
        return None
    path, st = where
    head, fname, key, ext = path.rsplit(".", 3)
    return f"{head}.{fname}_py.{key}.{ext}", st


_MAGIC = b"nbxdobj1"


def _unpack(data):
    """The object file in cache file content `data`, or None when it is missing, truncated
    or damaged (its SHA-256 is checked before LLVM ever parses it)."""
    if data is None or not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 32:
        return None
    digest, obj = data[len(_MAGIC):len(_MAGIC) + 32], data[len(_MAGIC) + 32:]
    return obj if hashlib.sha256(obj).digest() == digest else None


def _kernels_version():
    from .. import kernels
    return kernels.source_version()


def _read_trusted(path):
    from .. import cache
    try:
        with cache._open_trusted(path) as f:
            return f.read()
    except (OSError, cache._UntrustedFile):
        return None


def _write(where, data):
    from .. import cache
    path, st = where
    if not st.writable:
        return
    try:
        cache._ensure_dir(os.path.dirname(path))
        cache._atomic_write(path, data, st.path)
    except OSError:
        pass                                    # (the cache warns about its directory)
