"""A kernel's LLVM IR, lowered once per process and pasted into every module that calls it.

The kernels of `kernels.py` (``exp_f32``, ``gemm_cblas``, ``threefry2x32``, ...) are compiled
from their Python source into each module calling them (`lower.ModuleBuilder.kernel`): a
training step's programs call the same few kernels with the same argument types over and
over. Lowering one is pure-Python work (typing it, building llvmlite's IR objects, printing
them), so the first module to call a kernel with given argument types lowers it into a
scratch module, and its text -- the kernel's definition and what it needs: declarations,
constant tables, the kernels it calls -- is kept; a later module gets the same text pasted in,
definitions as text, declarations rebuilt as llvmlite objects (so the caller's own code can
use them). The module LLVM is given holds the same functions either way.

A cached kernel has one name in every module, from its module, qualified name and argument
types (``k_exp_f32.<hash>``), so two kernels pasted into one module never collide; its
constant tables are named after it. Functions of generated modules (``nbx_*``) are not cached:
they are compiled for one program.
"""
from __future__ import annotations

import hashlib
import threading
import weakref

from llvmlite import ir

from .scalars import Unsupported

_lock = threading.RLock()       # held while building (re-entered for nested kernels)
_cache = weakref.WeakKeyDictionary()    # py_func -> {argtypes: _Entry}
_names = {}                     # cached kernel name -> weakref of its py_func
_building = set()               # (py_func, argtypes) being built: recursion
STATS = {"built": 0, "pasted": 0}


class PastedFunction(ir.Function):
    """A function defined by IR text from another module: callable like any `ir.Function`
    (its type and name are real), printed as that text."""

    def __init__(self, module, ftype, name, text):
        super().__init__(module, ftype, name)
        self.ir_text = text

    def __str__(self):
        return self.ir_text


class _TextGlobal:
    """A global of a pasted kernel only that kernel refers to (a constant table): text."""

    def __init__(self, module, name, text):
        self.name, self.ir_text = name, text
        module.scope.register(name)
        module.add_global(self)

    def __str__(self):
        return self.ir_text


class _Entry:
    """A kernel lowered for one list of argument types: its name, its result type (None:
    no value) and its module's globals (kind, name, data) in order."""
    __slots__ = ("name", "ret_type", "items")

    def __init__(self, name, ret_type, items):
        self.name, self.ret_type, self.items = name, ret_type, items

    def paste(self, mb):
        """Add the kernel (and what it needs that `mb`'s module lacks) to `mb`: its
        (LLVM function, result type)."""
        g = mb.module.globals
        for kind, name, data in self.items:
            if name in g:
                continue
            if kind == "def":
                PastedFunction(mb.module, data[0], name, data[1])
            elif kind == "decl":
                ir.Function(mb.module, data, name)
            elif kind == "ext":
                mb.external_global(name, data)
            else:
                _TextGlobal(mb.module, name, data)
        STATS["pasted"] += 1
        return g[self.name], self.ret_type


def kernel_into(mb, py_func, argtypes):
    """(LLVM function, result type) of kernel `py_func` compiled for `argtypes` (a tuple of
    direct-compiler types) into `mb`'s module: pasted from this process's cache, lowered
    once first if needed."""
    from . import module_key
    if module_key(py_func) is not None:              # a generated module's function
        return mb.compile_kernel(py_func, argtypes, mb.unique("k_" + py_func.__name__))
    key = (py_func, argtypes)
    with _lock:
        entry = _cache.get(py_func, {}).get(argtypes)
        if entry is None:
            if key in _building:
                raise Unsupported(f"recursive kernel {py_func.__name__}")
            _building.add(key)
            try:
                entry = _build(mb, py_func, argtypes)
            finally:
                _building.discard(key)
            _cache.setdefault(py_func, {})[argtypes] = entry
        return entry.paste(mb)


def _name(py_func, argtypes):
    """The kernel's name in every module (another function of the same qualified name gets
    a suffix)."""
    ident = f"{py_func.__module__}.{py_func.__qualname__}({', '.join(map(repr, argtypes))})"
    base = f"k_{py_func.__name__}.{hashlib.sha1(ident.encode()).hexdigest()[:10]}"
    name, n = base, 0
    while True:
        ref = _names.get(name)
        owner = ref() if ref is not None else None
        if owner is None or owner is py_func:
            _names[name] = weakref.ref(py_func)
            return name
        n += 1
        name = f"{base}.{n}"


def _build(mb, py_func, argtypes):
    """Lower the kernel into a scratch module; the `_Entry` of what it holds."""
    name = _name(py_func, argtypes)
    scratch = type(mb)(name, "", "", prefix=name + ".")
    _, ret_type = scratch.compile_kernel(py_func, argtypes, name)
    items = []
    for gname, gv in scratch.module.globals.items():
        if isinstance(gv, ir.Function):
            if isinstance(gv, PastedFunction) or gv.blocks:
                items.append(("def", gname, (gv.ftype, str(gv))))
            else:
                items.append(("decl", gname, gv.ftype))
        elif isinstance(gv, ir.GlobalVariable) and gv.initializer is None and \
                gv.linkage == "external":
            items.append(("ext", gname, gv.value_type))
        else:
            items.append(("text", gname, str(gv)))
    STATS["built"] += 1
    return _Entry(name, ret_type, tuple(items))

