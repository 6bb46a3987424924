"""A generated function's Python source to LLVM IR, without Numba.

The backend writes each program as Python source in a small, regular subset (loops over
`range`, scalar arithmetic, flat 1-D arrays indexed by integers, calls of the kernels in
`kernels.py` and of the views in `views.py`; see `lowering.py`). Numba compiles any Python,
and pays for that on every program: its front end (bytecode analysis, type inference over
every statement, lowering through its data model with reference counting) took more than
half of the MLP training step's first compile. `FunctionCompiler` compiles the subset
directly: it types the function's AST with Numba's own typing rules (`scalars.py`), so the
arithmetic is the same, and emits LLVM IR with llvmlite's builder. Anything outside the
subset raises `Unsupported`, and that function is compiled by Numba as before.

Conventions of the code emitted here:

* an array is a flat C array: a pointer to its first element and its length (two LLVM
  values, two parameters of a function); a bool element is a byte;
* scalars are LLVM values of their dtype (bool is i1);
* a function compiled here returns its value directly (no status code: the subset cannot
  raise); kernels it calls are compiled into the same module as internal functions
  (inlined by LLVM where small, as Numba's linked calls are), each lowered once per process
  and argument types and pasted into later modules as text (`kernel_ir.py`);
* `views.empty` of a constant size is one buffer per call site, allocated once at function
  entry (on the stack when small) and released at exit: generated code uses such a buffer
  within one iteration of the loop that allocates it.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import inspect
import linecache
import textwrap

import numpy as np
from llvmlite import ir

from . import scalars as S
from .scalars import Unsupported

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
VOIDP = I8.as_pointer()

_STACK_BYTES = 16384      # views.empty buffers up to this size live on the stack


class ArrT:
    """The type of a C-contiguous array of dtype `dtype` with `ndim` dimensions."""
    __slots__ = ("dtype", "ndim")

    def __init__(self, dtype, ndim=1):
        self.dtype = S.check(np.dtype(dtype))
        self.ndim = ndim

    def __eq__(self, other):
        return isinstance(other, ArrT) and other.dtype == self.dtype and \
            other.ndim == self.ndim

    def __hash__(self):
        return hash(("arr", self.dtype, self.ndim))

    def __repr__(self):
        return f"{self.dtype}[{', '.join(':' * self.ndim)}]"


class Arr:
    """An array value: data pointer, shape (LLVM i64 values, C order) and total size `n`."""
    __slots__ = ("ptr", "shape", "n", "dtype")

    def __init__(self, ptr, shape, dtype, n=None):
        self.ptr, self.shape, self.dtype = ptr, list(shape), dtype
        self.n = n if n is not None else (self.shape[0] if len(self.shape) == 1 else None)

    @property
    def type(self):
        return ArrT(self.dtype, len(self.shape))

    def size(self, b):
        """The number of elements (emitted with builder `b` for more than one dimension)."""
        if self.n is None:
            n = self.shape[0]
            for d in self.shape[1:]:
                n = b.mul(n, d)
            self.n = n
        return self.n


class Sc:
    """A scalar value: LLVM value and dtype."""
    __slots__ = ("v", "t")

    def __init__(self, v, t):
        self.v, self.t = v, t

    @property
    def type(self):
        return self.t


class TupT:
    """The type of a tuple of scalars."""
    __slots__ = ("types",)

    def __init__(self, types):
        self.types = tuple(types)

    def __eq__(self, other):
        return isinstance(other, TupT) and other.types == self.types

    def __hash__(self):
        return hash(("tup",) + self.types)


class Tup:
    """A tuple of scalar values."""
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = list(items)

    @property
    def type(self):
        return TupT(i.t for i in self.items)


def unify_types(a, b):
    """`scalars.unify` extended to tuples (elementwise)."""
    if isinstance(a, TupT) or isinstance(b, TupT):
        if not (isinstance(a, TupT) and isinstance(b, TupT) and len(a.types) == len(b.types)):
            raise Unsupported("tuples of different lengths")
        return TupT(S.unify(x, y) for x, y in zip(a.types, b.types))
    return S.unify(a, b)


def ll_value(t):
    """The LLVM type of a value of scalar or tuple type `t`."""
    if isinstance(t, TupT):
        return ir.LiteralStructType([S.ll(x) for x in t.types])
    return S.ll(t)


class Static:
    """A compile-time object: a module, a function, a class, a kernel reference."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def param_types(t):
    """LLVM parameter types of a value of type `t` (an array takes two)."""
    if isinstance(t, ArrT):
        return [S.ll_mem(t.dtype).as_pointer()] + [I64] * t.ndim
    return [S.ll(t)]


def const(t, value):
    """An LLVM constant of dtype `t`."""
    if t.kind == "b":
        return ir.Constant(I1, int(bool(value)))
    if t.kind in "iu":
        v = int(value) & ((1 << (8 * t.itemsize)) - 1)
        if v >= 1 << (8 * t.itemsize - 1):
            v -= 1 << (8 * t.itemsize)
        return ir.Constant(S.ll(t), v)
    return ir.Constant(S.ll(t), float(value))


@contextlib.contextmanager
def collector_paused():
    """The cyclic garbage collector off within (when it was on). A module's IR is tens of
    thousands of llvmlite objects in reference cycles: collections while it is being built
    and printed promote them towards the oldest generation, whose growth triggers full
    collections -- over everything the process holds, ~0.15 s each in the digits CNN
    example, most of its collection time landing in compiles. With the collector off, the
    objects are still young when the module is done with, and die in a young collection."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def function_ast(py_func):
    """The FunctionDef of `py_func` (its source through linecache: generated modules
    register theirs). Kernels' trees are kept: every module calling a kernel compiles it.
    A generated function's tree is not: it is compiled once. (The trees of a program's
    functions were a quarter of the objects alive after a cold start: each is one more for
    every later collection of Python's oldest generation, at exit too, to traverse.)"""
    if _generated(py_func):
        return _parse_function(py_func, keep=False)
    code = getattr(py_func, "__code__", None)
    tree = _ASTS.get(code)
    if tree is None:
        tree = _ASTS[code] = _parse_function(py_func)
        if len(_ASTS) > 512:
            _ASTS.pop(next(iter(_ASTS)))
    return tree


def _generated(py_func):
    """Whether `py_func` is a function of a generated module (by its file name)."""
    from . import module_key
    return getattr(py_func, "__code__", None) is not None and module_key(py_func) is not None


_ASTS = {}      # code object -> FunctionDef (a kernel's code object lives as long as it)


_SPANS = {}     # (file name, source text) -> {(function name, first line): (first, last)}


def _parse_function(py_func, keep=True):
    """The FunctionDef of `py_func`, parsed from its file's lines: only its own lines once
    the file's top-level functions are known (`_SPANS`, unless not `keep`;
    `inspect.getsource` tokenizes in Python, a tenth of a cold start's lowering time)."""
    code = getattr(py_func, "__code__", None)
    lines = linecache.getlines(code.co_filename) if code is not None else None
    if lines:
        key = (code.co_filename, "".join(lines))
        spans = _SPANS.get(key)
        want = (py_func.__name__, code.co_firstlineno)
        if spans is None:
            try:
                tree = ast.parse(key[1])
            except SyntaxError:
                tree = None
            if tree is not None:
                spans, found = {}, None
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef):
                        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                        spans[(node.name, first)] = (first, node.end_lineno)
                        if (node.name, first) == want:
                            found = node
                if keep:
                    if len(_SPANS) > 64:
                        _SPANS.pop(next(iter(_SPANS)))
                    _SPANS[key] = spans
                if found is not None:
                    return found
        span = spans.get(want) if spans else None
        if span is not None:
            node = ast.parse("".join(lines[span[0] - 1:span[1]])).body[0]
            return ast.increment_lineno(node, span[0] - 1)
    try:                     # (a nested function, or a file that changed since it was loaded)
        src = textwrap.dedent(inspect.getsource(py_func))
    except (OSError, TypeError) as e:
        raise Unsupported(f"no source for {py_func!r} ({e})") from None
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == py_func.__name__:
            return node
    raise Unsupported(f"no definition of {py_func.__name__} in its source")


class ModuleBuilder:
    """One LLVM module: the functions compiled into it and the kernels they call. `prefix`
    begins the names `unique` makes (a kernel lowered on its own names its constants after
    itself: see `kernel_ir`)."""

    def __init__(self, name, triple, layout, prefix=""):
        self.module = ir.Module(name)
        self.module.triple = triple
        self.module.data_layout = layout
        self._kernels = {}
        self._compiling = set()
        self._n = 0
        self._prefix = prefix

    def unique(self, base):
        self._n += 1
        return f"{self._prefix}{base}.{self._n}"

    def declare(self, name, fnty):
        fn = self.module.globals.get(name)
        if fn is None:
            fn = ir.Function(self.module, fnty, name)
        return fn

    def intrinsic(self, name, ret, args):
        return self.declare(name, ir.FunctionType(ret, args))

    def external_global(self, name, ty):
        gv = self.module.globals.get(name)
        if gv is None:
            gv = ir.GlobalVariable(self.module, ty, name)
            gv.linkage = "external"
        return gv

    def kernel(self, py_func, argtypes):
        """(LLVM function, return type) of kernel `py_func` compiled for `argtypes` (lowered
        once per process and pasted into each module: `kernel_ir`)."""
        key = (py_func, tuple(argtypes))
        got = self._kernels.get(key)
        if got is None:
            from .kernel_ir import kernel_into
            got = self._kernels[key] = kernel_into(self, py_func, key[1])
        return got

    def compile_kernel(self, py_func, argtypes, name):
        """Kernel `py_func` compiled for `argtypes` into this module as internal function
        `name`: (LLVM function, return type)."""
        key = (py_func, tuple(argtypes))
        if key in self._compiling:
            raise Unsupported(f"recursive kernel {py_func.__name__}")
        self._compiling.add(key)
        try:
            fc = FunctionCompiler(self, function_ast(py_func), py_func.__globals__,
                                  list(argtypes), name, linkage="internal",
                                  inline=not any(isinstance(t, ArrT) for t in argtypes))
            fn = fc.compile()
        finally:
            self._compiling.discard(key)
        return fn, fc.ret_type

    def constant_array(self, arr):
        """A global constant holding the 1-D array `arr`."""
        dt = S.check(arr.dtype)
        ety = S.ll_mem(dt)
        data = arr.astype(np.uint8) if dt.kind == "b" else arr
        aty = ir.ArrayType(ety, len(arr))
        gv = ir.GlobalVariable(self.module, aty, self.unique("const"))
        gv.global_constant = True
        gv.linkage = "internal"
        gv.initializer = ir.Constant(aty, [const(np.dtype(np.int8) if dt.kind == "b" else dt,
                                                  v) for v in data.tolist()])
        return gv


class _Loop:
    __slots__ = ("cont", "brk")

    def __init__(self, cont, brk):
        self.cont, self.brk = cont, brk


class FunctionCompiler:
    """One Python function (`fdef`, with module globals `globs`) compiled for argument
    types `argtypes` into `mb`'s module as LLVM function `name`. `noalias`: its array
    parameters are LLVM ``noalias`` (the caller promises that none overlaps one written
    through another: LLVM then needs no run-time overlap checks before vectorising)."""

    def __init__(self, mb, fdef, globs, argtypes, name, *, linkage="external",
                 inline=False, noalias=False):
        self.mb, self.fdef, self.globs = mb, fdef, globs
        self.argtypes, self.name = argtypes, name
        self.linkage, self.inline, self.noalias = linkage, inline, noalias
        a = fdef.args
        if (a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs
                or len(a.args) != len(argtypes)):
            raise Unsupported(f"{fdef.name}: parameters")
        self.var_types = {}
        self.single = frozenset()     # variables used as values, not slots (`_compile`)
        self.ret_type = None          # None: no value returned (void)
        self._late = None             # globals only the emitting pass adds (_emit_in_order)

    # -- driver --------------------------------------------------------------------------

    def compile(self):
        """Type the function (passes until every variable's type is settled), then emit it.
        Returns the LLVM function.

        A function returning no value is emitted in one pass: a variable has one type, set by
        its first assignment in program order (a read before it raises `Unsupported` in any
        pass), so a typing pass could only find the types the emitting pass finds itself.
        A value-returning function first needs its return type (its LLVM signature): typing
        passes over a scratch module until the types settle, then the emitting pass.
        (With the garbage collector paused: `collector_paused`.)"""
        with collector_paused():
            return self._compile()

    def _compile(self):
        nodes = list(ast.walk(self.fdef))
        self.locals = {n.id for n in nodes
                       if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        self._check_loop_buffers(nodes)
        self.nonneg = self._nonneg_variables(nodes)
        self.single = self._single_assignments(nodes)
        if not any(isinstance(n, ast.Return) and n.value is not None and not (
                isinstance(n.value, ast.Constant) and n.value.value is None) for n in nodes):
            return self._emit_in_order()
        for _ in range(8):
            before = (dict(self.var_types), self.ret_type)
            self.widened = False
            self._emit(dry=True)
            # settled: nothing changed, or this pass typed every read with its final type
            if (self.var_types, self.ret_type) == before or not self.widened:
                break
        else:
            raise Unsupported(f"{self.fdef.name}: variable types do not settle")
        return self._emit(dry=False)

    def _emit_in_order(self):
        """The one emitting pass of a function returning no value, its module's globals then
        put in the order the typing pass and the emitting pass would have left them (what
        kernels and declarations the typing pass adds come before the function, what only
        emitting adds -- constant arrays, malloc, free -- after it), so that LLVM is given the
        same module."""
        g = self.mb.module.globals
        before = set(g)
        self._late = []
        fn = self._emit(dry=False)
        late = set(self._late)
        g.move_to_end(fn.name)
        for name in [k for k in g if k not in before and k in late]:
            g.move_to_end(name)
        return fn

    def _nonneg_variables(self, nodes):
        """Names whose every value is a non-negative integer, by the form of their
        assignments (loop variables of ``range`` counting up from a non-negative start,
        sums and products of such values and non-negative constants): their array indices
        need no test for Python's negative indices, which would keep LLVM from seeing
        consecutive accesses (and vectorising them as such)."""
        assigns = {}
        for n in nodes:
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        assigns.setdefault(t.id, []).append(("expr", n.value))
                    else:
                        for m in ast.walk(t):
                            if isinstance(m, ast.Name) and isinstance(m.ctx, ast.Store):
                                assigns.setdefault(m.id, []).append(("opaque", None))
            elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                assigns.setdefault(n.target.id, []).append(
                    ("expr", ast.BinOp(n.target, n.op, n.value)))
            elif isinstance(n, ast.For):
                for m in ast.walk(n.target):
                    if isinstance(m, ast.Name):
                        assigns.setdefault(m.id, []).append(("for", n.iter))
        params = {a.arg for a in self.fdef.args.args}
        good = {k for k in assigns if k not in params}
        changed = True
        while changed:
            changed = False
            for k in list(good):
                if not all(self._nonneg_def(kind, v, good) for kind, v in assigns[k]):
                    good.discard(k)
                    changed = True
        return good

    def _single_assignments(self, nodes):
        """Names whose one value can be used as it is, without a stack slot: assigned once
        (a plain assignment, or the target of one loop), and read only after that in the
        statements following it in its own block, or inside them (a loop's target: inside
        its body), so that the assignment dominates every read. A slot costs a store and a
        load per read, which LLVM's first passes remove again: without them a module has
        fewer instructions to build, print and optimise.

        (By source positions: a read is dominated when it lies after the assignment and
        before the end of the assignment's block.)"""
        stores = {}
        for n in nodes:
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                stores[n.id] = stores.get(n.id, 0) + 1
        params = {a.arg for a in self.fdef.args.args}
        once = {k for k, c in stores.items() if c == 1 and k not in params}
        if not once:
            return once
        spans = {}          # name -> (position its value is set, end of where it is valid)

        def end(st):
            return st.end_lineno, st.end_col_offset

        def block(stmts):
            if not stmts:
                return
            last = end(stmts[-1])
            for st in stmts:
                if isinstance(st, ast.Assign):
                    for t in st.targets:
                        if isinstance(t, (ast.Name, ast.Tuple)):
                            for m in ast.walk(t):     # (the names it binds, not a
                                if isinstance(m, ast.Name) and m.id in once and \
                                        isinstance(m.ctx, ast.Store):   # subscript's array)
                                    spans[m.id] = (end(st), last)
                elif isinstance(st, ast.For):
                    if isinstance(st.target, ast.Name) and st.target.id in once and st.body:
                        first = st.body[0]
                        spans[st.target.id] = ((first.lineno, first.col_offset - 1),
                                               end(st.body[-1]))
                    block(st.body)
                    block(st.orelse)
                elif isinstance(st, (ast.While, ast.If)):
                    block(st.body)
                    block(st.orelse)

        block(self.fdef.body)
        good = set(spans)
        for n in nodes:
            if isinstance(n, ast.Name) and n.id in good and isinstance(n.ctx, ast.Load):
                after, last = spans[n.id]
                if not after < (n.lineno, n.col_offset) <= last:
                    good.discard(n.id)
        return good

    def _nonneg_def(self, kind, v, good):
        if kind == "expr":
            return self._nonneg_expr(v, good)
        if kind == "for":
            if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and
                    v.func.id == "range" and not v.keywords and 1 <= len(v.args) <= 3):
                return False
            if len(v.args) == 3 and not (isinstance(v.args[2], ast.Constant) and
                                         isinstance(v.args[2].value, int) and
                                         v.args[2].value > 0):
                return False
            return len(v.args) == 1 or self._nonneg_expr(v.args[0], good)
        return False

    def _nonneg_expr(self, e, good):
        """Whether integer expression `e` is non-negative whatever the values of its
        names in `good` (all non-negative)."""
        if isinstance(e, ast.Constant):
            return isinstance(e.value, int) and not isinstance(e.value, bool) and e.value >= 0
        if isinstance(e, ast.Name):
            if e.id in good:
                return True
            if e.id not in self.locals:
                v = self.globs.get(e.id)
                return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
            return False
        if isinstance(e, ast.BinOp):
            if isinstance(e.op, (ast.Add, ast.Mult)):
                return self._nonneg_expr(e.left, good) and self._nonneg_expr(e.right, good)
            if isinstance(e.op, (ast.FloorDiv, ast.Mod, ast.RShift)):
                return (self._nonneg_expr(e.left, good) and isinstance(e.right, ast.Constant)
                        and isinstance(e.right.value, int) and e.right.value > 0)
            return False
        if isinstance(e, ast.Call) and len(e.args) == 1 and not e.keywords and \
                isinstance(e.func, ast.Attribute) and e.func.attr == "int64" and \
                isinstance(e.func.value, ast.Name) and self.globs.get(e.func.value.id) is np:
            return self._nonneg_expr(e.args[0], good)
        return False

    def _check_loop_buffers(self, nodes):
        """`views.empty` gives one buffer per call site (see the module docstring), which is
        Python's meaning only while a buffer allocated in a loop stays within its iteration.
        Leave the function to Numba when one may outlive it: the buffer, or a name assigned
        from an expression reading it, is read in the loop before that iteration assigns it
        (carried to the next iteration) or read after the loop."""
        from .. import views

        def is_empty_call(v):
            return (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and
                    self.globs.get(v.func.id) is views.empty)

        def names_read(node):
            return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and
                    isinstance(n.ctx, ast.Load)}

        if not any(is_empty_call(n) for n in nodes):
            return                           # (most functions: no walk of each loop)
        body_nodes = nodes
        for loop in (n for n in body_nodes if isinstance(n, (ast.For, ast.While))):
            stmts = [n for st in loop.body for n in ast.walk(st) if isinstance(n, ast.stmt)]
            tainted = {st.targets[0].id for st in stmts if isinstance(st, ast.Assign) and
                       isinstance(st.targets[0], ast.Name) and is_empty_call(st.value)}
            if not tainted:
                continue
            def alias(v):                    # an expression naming (a view of) a buffer
                if isinstance(v, ast.Name):
                    return v.id in tainted
                if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.args and \
                        self.globs.get(v.func.id) in (views.rows, views.shaped):
                    return alias(v.args[0])
                if isinstance(v, ast.IfExp):
                    return alias(v.body) or alias(v.orelse)
                return False

            changed = True
            while changed:                   # names bound to the buffers, transitively
                changed = False
                for st in stmts:
                    if isinstance(st, ast.Assign) and alias(st.value):
                        for t in st.targets:
                            if isinstance(t, ast.Name) and t.id not in tainted:
                                tainted.add(t.id)
                                changed = True
            inside = set(map(id, ast.walk(loop)))
            outside_reads = {n.id for n in body_nodes if id(n) not in inside and
                             isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if tainted & outside_reads:
                raise Unsupported("a loop's buffer may be read after the loop")
            assigned = set()
            for st in stmts:                 # in order: a read before the first assignment
                if isinstance(st, (ast.Assign, ast.AugAssign)):
                    val = st.value
                    if names_read(val) & tainted - assigned:
                        raise Unsupported("a loop's buffer may be carried to the next "
                                          "iteration")
                    for t in (st.targets if isinstance(st, ast.Assign) else [st.target]):
                        if isinstance(t, ast.Name):
                            assigned.add(t.id)
                        elif (names_read(t) & tainted) - assigned:
                            raise Unsupported("a loop's buffer may be carried to the next "
                                              "iteration")
                elif isinstance(st, ast.Expr) and names_read(st) & tainted - assigned:
                    raise Unsupported("a loop's buffer may be carried to the next iteration")

    def _emit(self, dry):
        self.dry = dry
        module = ir.Module("dry") if dry else self.mb.module
        ret_ll = ir.VoidType() if self.ret_type is None else ll_value(self.ret_type)
        params = [p for t in self.argtypes for p in param_types(t)]
        fn = ir.Function(module, ir.FunctionType(ret_ll, params), self.name)
        if not dry:
            fn.linkage = self.linkage
            if self.inline:
                fn.attributes.add("alwaysinline")
            fn.attributes.add("nounwind")
        self.fn = fn
        entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        self.exit = fn.append_basic_block("exit")
        self._entry_block = entry
        self._entry_builder = ir.IRBuilder(entry)
        self.b = ir.IRBuilder(body)
        self.slots = {}
        self.statics = {}
        self.frees = []
        self.loops = []
        self.ret_slot = self.entry_b.alloca(ret_ll) if self.ret_type is not None else None
        self.fixed = {}
        it = iter(fn.args)
        for name, t in zip((a.arg for a in self.fdef.args.args), self.argtypes):
            if isinstance(t, ArrT):
                ptr = next(it)
                if self.noalias and not dry:
                    ptr.add_attribute("noalias")
                v = Arr(ptr, [next(it) for _ in range(t.ndim)], t.dtype)
            else:
                v = Sc(next(it), t)
            if name in self.locals:
                self._assign(name, v)
            else:
                # a parameter the body never assigns is read as the argument itself, not
                # through a stack slot (which LLVM's first passes would remove: the same
                # code, fewer instructions to build and print)
                self.var_types[name] = t
                self.fixed[name] = v
        self._block(self.fdef.body)
        if not self.b.block.is_terminated:
            if self.ret_type is not None and not dry:
                raise Unsupported(f"{self.fdef.name}: falls off its end without a value")
            self.b.branch(self.exit)
        self.entry_b.branch(body)
        xb = ir.IRBuilder(self.exit)
        free = None
        for p in self.frees:
            if free is None:
                if not dry and "free" not in self.mb.module.globals:
                    self._late_global("free")
                free = self.mb.intrinsic("free", ir.VoidType(), [VOIDP]) if not dry else \
                    ir.Function(module, ir.FunctionType(ir.VoidType(), [VOIDP]), "free")
            xb.call(free, [xb.bitcast(p, VOIDP)])
        rty = fn.function_type.return_type
        if isinstance(rty, ir.VoidType):
            xb.ret_void()
        elif dry:
            xb.ret(ir.Constant(rty, None))
        else:
            xb.ret(xb.load(self.ret_slot))
        return fn

    def _late_global(self, name):
        """Note global `name`, added by the emitting pass only (see `_emit_in_order`)."""
        if self._late is not None:
            self._late.append(name)

    @property
    def entry_b(self):
        """A builder at the end of the entry block (where allocas go). Re-positioned on each
        use: code such as small_gemm's inserts there too, through `goto_entry_block`."""
        self._entry_builder.position_at_end(self._entry_block)
        return self._entry_builder

    # -- variables -----------------------------------------------------------------------

    def _assign(self, name, val):
        if isinstance(val, Tup):
            old = self.var_types.get(name)
            if old is not None and not (isinstance(old, TupT) and
                                        len(old.types) == len(val.items)):
                raise Unsupported(f"variable {name} holds tuples and other values")
            for i, item in enumerate(val.items):
                self._assign(f"{name}#{i}", item)
            self.var_types[name] = TupT(self.var_types[f"{name}#{i}"]
                                        for i in range(len(val.items)))
            return
        if isinstance(val, Static):
            if name in self.var_types:
                raise Unsupported(f"{name} rebound to a compile-time object")
            self.statics[name] = val
            return
        t = val.type
        old = self.var_types.get(name)
        if isinstance(t, ArrT) or isinstance(old, ArrT):
            if old is not None and old != t:
                raise Unsupported(f"array variable {name} changes type")
            self.var_types[name] = t
            if name in self.single and not self.dry:
                self.fixed[name] = Arr(val.ptr, val.shape, val.dtype)
                return
            slots = self._slot(name, t)
            self.b.store(val.ptr, slots[0])
            for d, sl in zip(val.shape, slots[1]):
                self.b.store(d, sl)
            return
        if old is not None and old != t:
            # Numba types each assignment on its own (SSA) and unifies only where control
            # flow joins; one type per variable, as here, would differ from it (an int64
            # value rounded through float64): leave such functions to Numba
            raise Unsupported(f"variable {name} assigned values of types {old} and {t}")
        vt = t
        self.var_types[name] = vt
        if self.dry:
            return
        if name in self.single:
            self.fixed[name] = Sc(self.cast(val, vt).v, vt)
            return
        self.b.store(self.cast(val, vt).v, self._slot(name, vt))

    def _slot(self, name, t):
        """The stack slot(s) of variable `name` of type `t` (allocated at entry)."""
        slot = self.slots.get(name)
        if slot is None:
            if isinstance(t, ArrT):
                slot = (self.entry_b.alloca(S.ll_mem(t.dtype).as_pointer(), name=name + ".p"),
                        [self.entry_b.alloca(I64, name=f"{name}.d{i}")
                         for i in range(t.ndim)])
            else:
                slot = self.entry_b.alloca(S.ll(t), name=name)
            self.slots[name] = slot
        return slot

    def _read(self, name):
        if name in self.statics:
            return self.statics[name]
        v = self.fixed.get(name)
        if v is not None:              # (a new Arr: `size` caches a value of one block)
            return Arr(v.ptr, v.shape, v.dtype) if isinstance(v, Arr) else v
        t = self.var_types.get(name)
        if t is None:
            return None
        if isinstance(t, TupT):
            return Tup(self._read(f"{name}#{i}") for i in range(len(t.types)))
        if isinstance(t, ArrT):
            p, dims = self._slot(name, t)
            return Arr(self.b.load(p), [self.b.load(d) for d in dims], t.dtype)
        if self.dry:
            return Sc(ir.Constant(S.ll(t), None), t)
        return Sc(self.b.load(self._slot(name, t)), t)

    # -- statements ----------------------------------------------------------------------

    def _block(self, stmts):
        for st in stmts:
            if self.b.block.is_terminated:        # code after return/break: unreachable
                self.b.position_at_end(self.fn.append_basic_block("dead"))
            m = getattr(self, "_st_" + type(st).__name__, None)
            if m is None:
                raise Unsupported(f"statement {type(st).__name__}")
            try:
                m(st)
            except Unsupported as e:
                if not e.args or "  @ " in str(e.args[0]) or isinstance(st, (
                        ast.For, ast.While, ast.If)):
                    raise
                raise Unsupported(f"{e.args[0]}  @ {ast.unparse(st)[:100]}") from None

    def _st_Pass(self, st):
        pass

    def _st_Expr(self, st):
        if isinstance(st.value, ast.Constant):        # a docstring
            return
        self.expr(st.value)

    def _st_Assign(self, st):
        if len(st.targets) != 1:
            raise Unsupported("chained assignment")
        self._store_to(st.targets[0], self.expr(st.value))

    def _store_to(self, tgt, val):
        if isinstance(tgt, ast.Name):
            self._assign(tgt.id, val)
        elif isinstance(tgt, ast.Tuple):
            if not isinstance(val, Tup) or len(val.items) != len(tgt.elts):
                raise Unsupported("tuple unpacking of a non-tuple")
            for t, v in zip(tgt.elts, val.items):
                self._store_to(t, v)
        elif isinstance(tgt, ast.Subscript) and isinstance(tgt.slice, ast.Slice):
            self._store_slice(tgt, val)
        elif isinstance(tgt, ast.Subscript):
            arr = self.expr(tgt.value)
            if not isinstance(arr, Arr) or not isinstance(val, Sc):
                raise Unsupported("item assignment")
            ptr = self._elem_ptr(arr, tgt.slice)
            self._store_elem(arr.dtype, ptr, val)
        else:
            raise Unsupported(f"assignment to {type(tgt).__name__}")

    def _store_slice(self, tgt, val):
        """``a[lo:hi] = scalar`` on a 1-D array, with Python's slice bounds (negative ones
        count from the end, both clipped to the array)."""
        arr, sl = self.expr(tgt.value), tgt.slice
        if not isinstance(arr, Arr) or len(arr.shape) != 1 or not isinstance(val, Sc) or \
                sl.step is not None:
            raise Unsupported("slice assignment other than a scalar fill of a 1-D range")
        b = self.b
        n = arr.shape[0]
        zero = const(S.I64, 0)

        def bound(node, default):
            if node is None:
                return default
            v = self.expr(node)
            if not (isinstance(v, Sc) and S.is_int(v.t) and v.t.kind != "b"):
                raise Unsupported("slice bound not an integer")
            x = self.cast(v, S.I64).v
            x = b.select(b.icmp_signed("<", x, zero), b.add(x, n), x)
            x = b.select(b.icmp_signed("<", x, zero), zero, x)
            return b.select(b.icmp_signed(">", x, n), n, x)
        lo, hi = bound(sl.lower, zero), bound(sl.upper, n)
        from .natives import fill
        fill(self, arr, lo, hi, val)

    def _st_AugAssign(self, st):
        tgt = st.target
        if isinstance(tgt, ast.Name):
            cur = self._read(tgt.id)
            if not isinstance(cur, Sc):
                raise Unsupported("augmented assignment")
            self._assign(tgt.id, self.binop(st.op, cur, self.expr(st.value)))
        elif isinstance(tgt, ast.Subscript):
            arr = self.expr(tgt.value)
            if not isinstance(arr, Arr):
                raise Unsupported("augmented item assignment")
            ptr = self._elem_ptr(arr, tgt.slice)
            cur = self._load_elem(arr.dtype, ptr)
            self._store_elem(arr.dtype, ptr, self.binop(st.op, cur, self.expr(st.value)))
        else:
            raise Unsupported("augmented assignment")

    def _st_Return(self, st):
        if st.value is None or (isinstance(st.value, ast.Constant) and st.value.value is None):
            if self.ret_type is not None:
                raise Unsupported("returns both a value and None")
            self.b.branch(self.exit)
            return
        v = self.expr(st.value)
        if not isinstance(v, (Sc, Tup)):
            raise Unsupported("returns a non-scalar")
        rt = v.type if self.ret_type is None else unify_types(self.ret_type, v.type)
        if self.ret_type is not None and rt != self.ret_type:
            self.widened = True
        self.ret_type = rt
        if self.dry:
            self.b.branch(self.exit)
            return
        if isinstance(v, Tup):
            agg = ir.Constant(ll_value(self.ret_type), None)
            for i, (item, t) in enumerate(zip(v.items, self.ret_type.types)):
                agg = self.b.insert_value(agg, self.cast(item, t).v, i)
            self.b.store(agg, self.ret_slot)
        else:
            self.b.store(self.cast(v, self.ret_type).v, self.ret_slot)
        self.b.branch(self.exit)

    def _st_If(self, st):
        cond = self.cond(st.test)
        then = self.fn.append_basic_block("then")
        other = self.fn.append_basic_block("else") if st.orelse else None
        merge = self.fn.append_basic_block("endif")
        self.b.cbranch(cond, then, other or merge)
        self.b.position_at_end(then)
        self._block(st.body)
        if not self.b.block.is_terminated:
            self.b.branch(merge)
        if other is not None:
            self.b.position_at_end(other)
            self._block(st.orelse)
            if not self.b.block.is_terminated:
                self.b.branch(merge)
        self.b.position_at_end(merge)

    def _st_For(self, st):
        it = st.iter
        if st.orelse or not isinstance(st.target, ast.Name) or not isinstance(it, ast.Call):
            raise Unsupported("for loop form")
        f = self.expr(it.func)
        if not (isinstance(f, Static) and f.obj is range) or it.keywords:
            raise Unsupported("for loop over something other than range")
        args = [self.expr(a) for a in it.args]
        if not all(isinstance(a, Sc) and S.is_int(a.t) for a in args) or not 1 <= len(args) <= 3:
            raise Unsupported("range arguments")
        args = [self.cast(a, S.I64).v for a in args]
        start, stop, step = ((const(S.I64, 0), args[0], 1) if len(args) == 1 else
                             (args[0], args[1], 1) if len(args) == 2 else
                             (args[0], args[1], None))
        if step is None:
            s = it.args[2]
            if isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) and \
                    isinstance(s.operand, ast.Constant):
                step = -s.operand.value
            elif isinstance(s, ast.Constant):
                step = s.value
            if not isinstance(step, int) or isinstance(step, bool) or step == 0:
                raise Unsupported("range step not a nonzero integer constant")
        head = self.fn.append_basic_block("for.head")
        body = self.fn.append_basic_block("for.body")
        latch = self.fn.append_basic_block("for.latch")
        done = self.fn.append_basic_block("for.end")
        before = self.b.block
        self.b.branch(head)
        self.b.position_at_end(head)
        # the counter is a phi of the head (its start from before the loop, its next value
        # from the latch), not a stack slot
        i = self.b.phi(I64, name=st.target.id + ".i")
        i.add_incoming(start, before)
        ok = self.b.icmp_signed("<" if step > 0 else ">", i, stop)
        self.b.cbranch(ok, body, done)
        self.b.position_at_end(body)
        self._assign(st.target.id, Sc(i, S.I64))
        self.loops.append(_Loop(latch, done))
        self._block(st.body)
        self.loops.pop()
        if not self.b.block.is_terminated:
            self.b.branch(latch)
        self.b.position_at_end(latch)
        i.add_incoming(self.b.add(i, const(S.I64, step)), latch)
        self.b.branch(head)
        self.b.position_at_end(done)

    def _st_While(self, st):
        if st.orelse:
            raise Unsupported("while ... else")
        head = self.fn.append_basic_block("while.head")
        body = self.fn.append_basic_block("while.body")
        done = self.fn.append_basic_block("while.end")
        self.b.branch(head)
        self.b.position_at_end(head)
        self.b.cbranch(self.cond(st.test), body, done)
        self.b.position_at_end(body)
        self.loops.append(_Loop(head, done))
        self._block(st.body)
        self.loops.pop()
        if not self.b.block.is_terminated:
            self.b.branch(head)
        self.b.position_at_end(done)

    def _st_Break(self, st):
        if not self.loops:
            raise Unsupported("break outside a loop")
        self.b.branch(self.loops[-1].brk)

    def _st_Continue(self, st):
        if not self.loops:
            raise Unsupported("continue outside a loop")
        self.b.branch(self.loops[-1].cont)

    # -- expressions ---------------------------------------------------------------------

    def expr(self, e):
        m = getattr(self, "_ex_" + type(e).__name__, None)
        if m is None:
            raise Unsupported(f"expression {type(e).__name__}")
        return m(e)

    def _ex_Constant(self, e):
        return self.from_python(e.value)

    def _ex_Name(self, e):
        v = self._read(e.id)
        if v is not None:
            return v
        if e.id in self.locals:
            raise Unsupported(f"{e.id} read before it is assigned")
        if e.id in self.globs:
            return self.from_python(self.globs[e.id])
        if hasattr(builtins, e.id):
            return Static(getattr(builtins, e.id))
        raise Unsupported(f"name {e.id}")

    def _ex_Attribute(self, e):
        base = self.expr(e.value)
        if isinstance(base, Static):
            try:
                return self.from_python(getattr(base.obj, e.attr))
            except AttributeError:
                raise Unsupported(f"attribute {e.attr}") from None
        if isinstance(base, Arr) and e.attr == "size":
            return Sc(base.size(self.b), S.I64)
        if isinstance(base, Arr) and e.attr == "shape":
            return Tup(Sc(d, S.I64) for d in base.shape)
        raise Unsupported(f"attribute {e.attr} of a value")

    def from_python(self, v):
        """The value of Python object `v` (a constant, or a compile-time object)."""
        if isinstance(v, (bool, np.bool_)):
            return Sc(const(S.BOOL, v), S.BOOL)
        if isinstance(v, int):
            if -(1 << 63) <= v < (1 << 63):
                return Sc(const(S.I64, v), S.I64)
            if 0 <= v < (1 << 64):
                return Sc(const(S.U64, v), S.U64)
            raise Unsupported("integer constant out of range")
        if isinstance(v, float):
            return Sc(const(S.F64, v), S.F64)
        if isinstance(v, np.generic):
            t = S.check(v.dtype)
            return Sc(const(t, v.item()), t)
        if isinstance(v, tuple) and v and all(
                isinstance(x, (bool, int, float, np.generic)) for x in v):
            items = [self.from_python(x) for x in v]
            if all(isinstance(x, Sc) for x in items):
                return Tup(items)
        if isinstance(v, np.ndarray):
            if v.ndim != 1 or not v.flags.c_contiguous or v.nbytes > (1 << 20):
                raise Unsupported("global array constant")
            gv = self.mb.constant_array(v) if not self.dry else None
            if gv is not None:
                self._late_global(gv.name)
            ety = S.ll_mem(S.check(v.dtype))
            ptr = (self.b.bitcast(gv, ety.as_pointer()) if gv is not None
                   else ir.Constant(ety.as_pointer(), None))
            return Arr(ptr, [const(S.I64, len(v))], v.dtype)
        return Static(v)

    def _ex_UnaryOp(self, e):
        v = self.expr(e.operand)
        if not isinstance(v, Sc):
            raise Unsupported("unary operation on a non-scalar")
        b = self.b
        if isinstance(e.op, ast.Not):
            return Sc(b.not_(self.truth(v)), S.BOOL)
        if isinstance(e.op, ast.UAdd):
            return v
        if isinstance(e.op, ast.USub):
            if S.is_float(v.t):
                return Sc(b.fneg(v.v), v.t)
            t = S.U64 if v.t.kind == "u" else S.I64
            if v.t.kind == "b":
                return Sc(b.neg(self.cast(v, t).v), t)
            # Numba negates in the operand's own width, then widens (-uint32(1) is 2**32-1)
            return self.cast(Sc(b.neg(v.v), v.t), t)
        if isinstance(e.op, ast.Invert):
            if v.t.kind == "b":
                return Sc(b.not_(v.v), S.BOOL)
            if S.is_float(v.t):
                raise Unsupported("~ of a float")
            t = S.U64 if v.t.kind == "u" else S.I64
            return self.cast(Sc(b.not_(v.v), v.t), t)
        raise Unsupported("unary operator")

    def _ex_BinOp(self, e):
        return self.binop(e.op, self.expr(e.left), self.expr(e.right))

    def binop(self, op, x, y):
        if not (isinstance(x, Sc) and isinstance(y, Sc)):
            raise Unsupported("binary operation on non-scalars")
        b = self.b
        if isinstance(op, (ast.Add, ast.Sub, ast.Mult)):
            t = S.arith(x.t, y.t)
            u, w = self.cast(x, t).v, self.cast(y, t).v
            if S.is_float(t):
                f = {ast.Add: b.fadd, ast.Sub: b.fsub, ast.Mult: b.fmul}[type(op)]
            else:
                f = {ast.Add: b.add, ast.Sub: b.sub, ast.Mult: b.mul}[type(op)]
            return Sc(f(u, w), t)
        if isinstance(op, ast.Div):
            t = S.truediv(x.t, y.t)
            return Sc(b.fdiv(self.cast(x, t).v, self.cast(y, t).v), t)
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            t = S.arith(x.t, y.t)
            if S.is_float(t):
                raise Unsupported("float // or %")
            return Sc(self._int_divmod(self.cast(x, t).v, self.cast(y, t).v, t,
                                       isinstance(op, ast.FloorDiv)), t)
        if isinstance(op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
            t = S.bitwise(x.t, y.t)
            f = {ast.BitAnd: b.and_, ast.BitOr: b.or_, ast.BitXor: b.xor}[type(op)]
            return Sc(f(self.cast(x, t).v, self.cast(y, t).v), t)
        if isinstance(op, (ast.LShift, ast.RShift)):
            t = S.shift(x.t, y.t)
            u, w = self.cast(x, t).v, self.cast(y, t).v
            if isinstance(op, ast.LShift):
                return Sc(b.shl(u, w), t)
            return Sc(b.lshr(u, w) if t.kind == "u" else b.ashr(u, w), t)
        raise Unsupported(f"operator {type(op).__name__}")

    def _int_divmod(self, x, y, t, floor):
        """Python's // or % on integers of type `t`; a zero divisor gives 0 (NumPy)."""
        b = self.b
        zero = ir.Constant(x.type, 0)
        y0 = b.icmp_unsigned("==", y, zero)
        ys = b.select(y0, ir.Constant(x.type, 1), y)
        if t.kind == "u":
            r = b.udiv(x, ys) if floor else b.urem(x, ys)
            return b.select(y0, zero, r)
        # avoid INT_MIN / -1 (undefined in LLVM): Python's result wraps to INT_MIN, rem 0
        q, r = b.sdiv(x, ys), b.srem(x, ys)
        fix = b.and_(b.icmp_signed("!=", r, zero),
                     b.icmp_signed("!=", b.icmp_signed("<", r, zero),
                                   b.icmp_signed("<", ys, zero)))
        if floor:
            out = b.select(fix, b.sub(q, ir.Constant(x.type, 1)), q)
        else:
            out = b.select(fix, b.add(r, ys), r)
        return b.select(y0, zero, out)

    def _ex_Compare(self, e):
        left = self.expr(e.left)
        if len(e.ops) == 1:
            return self.compare(e.ops[0], left, self.expr(e.comparators[0]))
        # a chain is an `and` of its comparisons, each middle operand evaluated once
        state = [left]

        def link(op, rhs):
            def emit():
                right = self.expr(rhs)
                c = self.compare(op, state[0], right).v
                state[0] = right
                return c
            return emit
        return Sc(self._short_circuit([link(op, rhs) for op, rhs in
                                       zip(e.ops, e.comparators)], True), S.BOOL)

    def _short_circuit(self, parts, is_and):
        """The i1 of Python's `and` (`is_and`) or `or` over `parts`: callables each emitting
        one operand's i1 where the builder stands, the later ones only when needed."""
        b = self.b
        done = self.fn.append_basic_block("sc.end")
        incoming = []
        for i, part in enumerate(parts):
            c = part()
            if i == len(parts) - 1:
                incoming.append((c, b.block))
                b.branch(done)
            else:
                nxt = self.fn.append_basic_block("sc.next")
                incoming.append((ir.Constant(I1, 0 if is_and else 1), b.block))
                b.cbranch(c, nxt, done) if is_and else b.cbranch(c, done, nxt)
                b.position_at_end(nxt)
        b.position_at_end(done)
        phi = b.phi(I1)
        for v, blk in incoming:
            phi.add_incoming(v, blk)
        return phi

    def compare(self, op, x, y):
        if not (isinstance(x, Sc) and isinstance(y, Sc)):
            raise Unsupported("comparison of non-scalars")
        b = self.b
        sym = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
               ast.NotEq: "!="}.get(type(op))
        if sym is None:
            raise Unsupported(f"comparison {type(op).__name__}")
        t = S.BOOL if (x.t.kind == "b" and y.t.kind == "b") else S.promote(x.t, y.t)
        u, w = self.cast(x, t).v, self.cast(y, t).v
        if S.is_float(t):
            return Sc(b.fcmp_unordered(sym, u, w) if sym == "!=" else
                      b.fcmp_ordered(sym, u, w), S.BOOL)
        if t.kind == "i":
            return Sc(b.icmp_signed(sym, u, w), S.BOOL)
        return Sc(b.icmp_unsigned(sym, u, w), S.BOOL)

    def _ex_BoolOp(self, e):
        def operand(node):
            def emit():
                v = self.expr(node)
                if not (isinstance(v, Sc) and v.t.kind == "b"):
                    raise Unsupported("and/or of non-bool values")
                return v.v
            return emit
        return Sc(self._short_circuit([operand(v) for v in e.values],
                                      isinstance(e.op, ast.And)), S.BOOL)

    def _ex_IfExp(self, e):
        b = self.b
        cond = self.cond(e.test)
        then = self.fn.append_basic_block("ifx.then")
        other = self.fn.append_basic_block("ifx.else")
        done = self.fn.append_basic_block("ifx.end")
        b.cbranch(cond, then, other)
        b.position_at_end(then)
        x = self.expr(e.body)
        then_end = b.block
        b.position_at_end(other)
        y = self.expr(e.orelse)
        other_end = b.block
        if not (isinstance(x, Sc) and isinstance(y, Sc)):
            raise Unsupported("conditional expression of non-scalars")
        t = S.unify(x.t, y.t)
        b.position_at_end(then_end)
        xv = self.cast(x, t).v
        then_end = b.block
        b.branch(done)
        b.position_at_end(other_end)
        yv = self.cast(y, t).v
        other_end = b.block
        b.branch(done)
        b.position_at_end(done)
        phi = b.phi(S.ll(t))
        phi.add_incoming(xv, then_end)
        phi.add_incoming(yv, other_end)
        return Sc(phi, t)

    def _ex_Tuple(self, e):
        items = [self.expr(x) for x in e.elts]
        if not all(isinstance(x, Sc) for x in items):
            raise Unsupported("tuple of non-scalars")
        return Tup(items)

    def _ex_Subscript(self, e):
        arr = self.expr(e.value)
        if isinstance(arr, Tup):
            i = self.static_int(e.slice)
            if i is not None:
                if not -len(arr.items) <= i < len(arr.items):
                    raise Unsupported("tuple index out of range")
                return arr.items[i]
            return self._tuple_lookup(arr, e.slice)
        if not isinstance(arr, Arr):
            raise Unsupported("subscript of a non-array")
        return self._load_elem(arr.dtype, self._elem_ptr(arr, e.slice))

    def _tuple_lookup(self, tup, index_node):
        """A tuple of constants (a kernel's coefficient table) indexed at run time: read
        from a constant array of their common type."""
        if not tup.items or not all(isinstance(x.v, ir.Constant) for x in tup.items):
            raise Unsupported("run-time index into a tuple of non-constants")
        t = tup.items[0].t
        for x in tup.items[1:]:
            t = S.unify(t, x.t)
        if t.kind == "b":
            raise Unsupported("run-time index into a tuple of bools")
        vals = []
        for x in tup.items:
            c = x.v.constant
            vals.append(int(c) if S.is_int(x.t) else float(c))
        arr = np.array(vals, dtype=t)
        if S.is_int(t) and any(int(v) != int(c) for v, c in zip(arr.tolist(), vals)):
            raise Unsupported("tuple constants do not fit their common type")
        return self._load_elem(t, self._elem_ptr(self.from_python(arr), index_node))

    def _elem_ptr(self, arr, index_node):
        nodes = index_node.elts if isinstance(index_node, ast.Tuple) else [index_node]
        if len(nodes) != len(arr.shape) or any(isinstance(x, ast.Slice) for x in nodes):
            raise Unsupported("index other than one integer per dimension")
        b = self.b
        flat = None
        for node, dim in zip(nodes, arr.shape):
            i = self.expr(node)
            if not (isinstance(i, Sc) and i.t.kind in "iu"):
                raise Unsupported("non-integer index")
            iv = self.cast(i, S.I64).v
            if i.t.kind == "i" and not self._nonneg_expr(node, self.nonneg):
                # Python's negative indices, as Numba's basic indexing
                iv = b.select(b.icmp_signed("<", iv, const(S.I64, 0)), b.add(iv, dim), iv)
            flat = iv if flat is None else b.add(b.mul(flat, dim), iv)
        return b.gep(arr.ptr, [const(S.I64, 0) if flat is None else flat])   # (x[()]: 0-d)

    def _load_elem(self, dtype, ptr):
        v = self.b.load(ptr)
        if dtype.kind == "b":
            v = self.b.icmp_unsigned("!=", v, ir.Constant(I8, 0))
        return Sc(v, dtype)

    def _store_elem(self, dtype, ptr, val):
        v = self.cast(val, dtype).v
        if dtype.kind == "b":
            v = self.b.zext(v, I8)
        self.b.store(v, ptr)

    def _ex_Call(self, e):
        if e.keywords:
            raise Unsupported("keyword arguments")
        f = self.expr(e.func)
        if not isinstance(f, Static):
            raise Unsupported("call of a value")
        if any(isinstance(a, ast.Starred) for a in e.args):
            raise Unsupported("starred arguments")
        from .natives import call_static
        return call_static(self, f.obj, e.args)

    def cond(self, node):
        """The i1 truth of test expression `node` (of an if, while or conditional
        expression): `and`/`or` there need only their operands' truth, whatever their types
        (``x == 0 and 1``), short-circuited as in Python."""
        if not isinstance(node, ast.BoolOp):
            return self.truth(self.expr(node))
        return self._short_circuit([lambda v=v: self.cond(v) for v in node.values],
                                   isinstance(node.op, ast.And))

    # -- conversions ---------------------------------------------------------------------

    def truth(self, v):
        """The i1 truth value of scalar `v` (Python's bool())."""
        if not isinstance(v, Sc):
            raise Unsupported("truth value of a non-scalar")
        if v.t.kind == "b":
            return v.v
        if S.is_float(v.t):
            return self.b.fcmp_unordered("!=", v.v, ir.Constant(v.v.type, 0.0))
        return self.b.icmp_unsigned("!=", v.v, ir.Constant(v.v.type, 0))

    def cast(self, v, t):
        """Scalar `v` converted to dtype `t` (Numba's conversions)."""
        if not isinstance(v, Sc):
            raise Unsupported("conversion of a non-scalar")
        s = v.t
        if s == t:
            return v
        b = self.b
        dst = S.ll(t)
        if t.kind == "b":
            return Sc(self.truth(v), t)
        if s.kind == "b":
            if S.is_float(t):
                return Sc(b.uitofp(v.v, dst), t)
            return Sc(b.zext(v.v, dst), t)
        if S.is_int(s) and S.is_int(t):
            sw, tw = s.itemsize, t.itemsize
            if tw < sw:
                return Sc(b.trunc(v.v, dst), t)
            if tw > sw:
                return Sc(b.sext(v.v, dst) if s.kind == "i" else b.zext(v.v, dst), t)
            return Sc(v.v, t)
        if S.is_int(s) and S.is_float(t):
            return Sc(b.sitofp(v.v, dst) if s.kind == "i" else b.uitofp(v.v, dst), t)
        if S.is_float(s) and S.is_int(t):
            return Sc(b.fptosi(v.v, dst) if t.kind == "i" else b.fptoui(v.v, dst), t)
        if S.is_float(s) and S.is_float(t):
            return Sc(b.fpext(v.v, dst) if t.itemsize > s.itemsize else b.fptrunc(v.v, dst),
                      t)
        raise Unsupported(f"conversion {s} -> {t}")

    # -- buffers -------------------------------------------------------------------------

    def stack_or_heap(self, dtype, n):
        """A buffer of `n` (a Python int) elements of `dtype`, allocated at entry."""
        ety = S.ll_mem(dtype)
        nbytes = n * dtype.itemsize
        if self.dry:
            return ir.Constant(ety.as_pointer(), None)
        if nbytes <= _STACK_BYTES:
            p = self.entry_b.alloca(ety, size=max(n, 1))
            p.align = 32
            return p
        if "malloc" not in self.mb.module.globals:
            self._late_global("malloc")
        malloc = self.mb.intrinsic("malloc", VOIDP, [I64])
        raw = self.entry_b.call(malloc, [const(S.I64, max(nbytes, 1))])
        self.frees.append(raw)
        return self.entry_b.bitcast(raw, ety.as_pointer())

    def static_int(self, node):
        """The value of `node` when it is an integer known at compile time, else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and \
                not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name) and node.id not in self.var_types and \
                isinstance(self.globs.get(node.id), (int, np.integer)):
            return int(self.globs[node.id])
        if isinstance(node, ast.BinOp):
            lft, rgt = self.static_int(node.left), self.static_int(node.right)
            if lft is not None and rgt is not None:
                if isinstance(node.op, ast.Add):
                    return lft + rgt
                if isinstance(node.op, ast.Mult):
                    return lft * rgt
                if isinstance(node.op, ast.Sub):
                    return lft - rgt
        return None


__all__ = ["ArrT", "Arr", "Sc", "Static", "Tup", "TupT", "FunctionCompiler", "ModuleBuilder",
           "Unsupported", "collector_paused", "function_ast", "param_types", "const"]
