"""Calls from a generated main function to its helper modules by symbol, not by linking.

A plain call between two Numba functions links the callee's LLVM module into the caller's:
the caller's full-module optimisation (O3: inlining, loop vectorisation, unrolling) and its
machine-code emission then run again over every helper it calls -- helpers that `helpers.py`
compiled, optimised and cached on their own, often in another process. Measured on the MLP
training step (kernels and helpers cached, CPU seconds of compiling the main function alone,
alternating processes on a loaded machine): 1.9-2.2 s -> 1.5-1.7 s with the helpers and gemm
kernels called by symbol, its optimised module 6,081 -> 3,985 lines of IR; the CNN step's
main function 2.8-3.2 s -> 2.05-2.1 s, 10,515 -> 3,596 lines.

Here a helper module's function, once loaded (`cache.helper`), is published to LLVM's
symbol table under a name made of its content key (`register`), and the main function calls
it through `call` (imported as ``_hc``)::

    _r_h0 = _href(_h0)                               # (module level, once)
    _hc(_r_h0, _sl(_wf32, 0, 65536), a, 128, 512)    # was: _h0(_sl(_wf32, 0, 65536), a, ...)

`call` emits a declaration of that symbol and a call in Numba's own calling convention (the
same arguments, return value and error status as the linked call), so the helper's code is
not copied into the caller: LLVM resolves the symbol when it loads the caller's machine code,
in this process after a compile and in any later process after loading it from the disk cache
(the module binds, hence registers, its helpers before its main function loads). The name
holds the helper's content key, so it is the same in every process and a cached caller finds
it.

Large kernels of `kernels.py` (the gemm family, `KERNELS`) are called the same way: the module
binds one `ref` per kernel and dtype it calls::

    _kr_gemm_cblas_auto_f32 = _kref(_k_gemm_cblas_auto, 'float32')

(compiled, or loaded from the kernels' disk cache, and published under a name made of the
kernels' source version and the signature) and calls ``_hc(_kr_gemm_cblas_auto_f32, ...)``;
a call whose argument types differ from that signature is Numba's linked call (`call` falls
back).

What the caller loses is inlining of the helper into it: the helpers are loop nests over
thousands of elements (sizes passed as arguments) or whole pieces of a split function, where
one call per step costs nothing measurable.
"""
from __future__ import annotations

import hashlib
import re

import llvmlite.binding as _llvm
import numpy as np
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models
from numba.core.errors import TypingError
from numba.core.imputils import lower_constant
from numba.np import numpy_support
from numba.extending import intrinsic, register_model, typeof_impl

__all__ = ["register", "symbol_of", "call", "rewrite", "ref", "rewrite_kernels", "KERNELS",
           "IMPORT", "KERNEL_IMPORT"]

# False: helper calls stay linked calls (to compare compile and run times side by side)
ENABLED = True

IMPORT = "from transforms.backend.numba.calls import call as _hc, helper_ref as _href"
KERNEL_IMPORT = "from transforms.backend.numba.calls import ref as _kref"


def _gemm_types(dt):
    i, arr = types.int64, types.Array(dt, 1, "C")
    return (i, i, i, i, i, dt, arr, i, i, arr, i, i, dt, arr, i, i)


# kernels called by symbol: name -> (position of the argument whose type is the dtype, the
# argument types for a dtype). Large kernels only: small ones (exp, max, ...) must be inlined
# into the loops calling them.
KERNELS = {"gemm_cblas": (5, _gemm_types), "gemm_cblas_serial": (5, _gemm_types),
           "gemm_cblas_auto": (5, _gemm_types)}

_ATTR = "_nbx_symbol"


def symbol_of(key, name):
    """The symbol of function `name` of helper module `key` (the same in every process)."""
    return f"numbax_helper_{key}_{name}"


def register(fn, key, name):
    """Publish the machine code of helper `fn` (a dispatcher compiled for exactly one
    signature, function `name` of helper module `key`) under `symbol_of(key, name)`, so code
    calling it through `call` links to it. Returns `fn`."""
    if getattr(fn, "direct", False):          # compiled directly: already published
        setattr(fn, _ATTR, SymbolRef(fn, None, fn.symbol))
        return fn
    sigs = getattr(fn, "signatures", None)
    if not sigs or len(sigs) != 1:
        return fn                  # (not a signed helper: callers keep the linked call)
    cres = fn.overloads[sigs[0]]
    sym = symbol_of(key, name)
    _llvm.add_symbol(sym, cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
    setattr(fn, _ATTR, SymbolRef(fn, cres.signature, sym))
    return fn


def helper_ref(fn):
    """The `SymbolRef` of helper `fn` (registered by `register`): what generated code calls
    with ``_hc(<ref>, ...)``. (Not the dispatcher itself: CPython passes a call of more than
    30 arguments as one tuple, and a dispatcher in a tuple makes Numba warn about its
    experimental first-class functions.)"""
    r = getattr(fn, _ATTR, None)
    if r is None:
        raise RuntimeError(f"calls.helper_ref: {fn} is not a helper registered with "
                           "calls.register")
    return r


@intrinsic
def call(typingctx, fn, *args):
    """``fn(*args)`` for a `SymbolRef` `fn` (a helper's, `helper_ref`, or a kernel's, `ref`):
    through its symbol when the argument types are its signature's (see the module
    docstring), else Numba's own linked call of its dispatcher."""
    if not isinstance(fn, SymbolRefType):
        raise TypingError(f"calls.call: {fn} is not a SymbolRef (calls.ref, calls.helper_ref)")
    plain = tuple(types.unliteral(a) for a in args)
    if getattr(fn.dispatcher, "direct", False):
        return _direct_call(fn, args, plain)
    if plain == fn.sig.args:
        return _by_symbol(fn, args, fn.symbol, fn.sig.args, fn.sig.return_type)
    # other argument types: Numba's own (linked) call
    dty = types.Dispatcher(fn.dispatcher)
    ksig = typingctx.resolve_function_type(dty, plain, {})
    if ksig is None:
        raise TypingError(f"calls.call: {fn.dispatcher.py_func.__name__} takes "
                          f"{fn.sig.args}, called with {plain}")
    sig = ksig.return_type(fn, types.StarArgTuple.from_types(args))

    def codegen(context, builder, sig, llargs):
        vals = [context.cast(builder, v, a, f) for v, a, f in
                zip(cgutils.unpack_tuple(builder, llargs[1]), args, ksig.args)]
        return context.get_function(dty, ksig)(builder, vals)
    return sig, codegen


def _by_symbol(fn, args, sym, formal, rt):
    """(signature, codegen) of a call of `sym` (Numba's calling convention, argument types
    `formal`, returning `rt`) with `args` (converted)."""
    sig = rt(fn, types.StarArgTuple.from_types(args))

    def codegen(context, builder, sig, llargs):
        vals = [context.cast(builder, v, a, f) for v, a, f in
                zip(cgutils.unpack_tuple(builder, llargs[1]), args, formal)]
        fnty = context.call_conv.get_function_type(rt, formal)
        callee = cgutils.get_or_insert_function(builder.module, fnty, sym)
        status, res = context.call_conv.call_function(builder, callee, rt, formal, vals)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return res
    return sig, codegen


def _direct_formal(target, plain):
    """Numba's types of directly compiled `target`'s parameters for argument types `plain`
    (a TypingError when they do not fit)."""
    from .direct.lower import ArrT
    if len(plain) != len(target.argtypes):
        raise TypingError(f"{target.__name__} takes {len(target.argtypes)} arguments, "
                          f"called with {len(plain)}")
    formal = []
    for a, t in zip(plain, target.argtypes):
        if isinstance(t, ArrT):
            if not (isinstance(a, types.Array) and a.ndim == t.ndim and a.layout == "C" and
                    numpy_support.as_dtype(a.dtype) == t.dtype):
                raise TypingError(f"{target.__name__} takes {t}, given {a}")
            formal.append(a)
        else:
            formal.append(numpy_support.from_dtype(t))
    return formal


def _emit_direct(context, builder, target, argtys, vals_in):
    """Numba codegen of a call of directly compiled `target` (see `direct`: arrays passed
    as data pointer and dimensions, scalars as themselves, nothing returned)."""
    from llvmlite import ir as llir
    from .direct.lower import ArrT, param_types
    formal = _direct_formal(target, argtys)
    vals = []
    for v, a, f, t in zip(vals_in, argtys, formal, target.argtypes):
        if isinstance(t, ArrT):
            ary = context.make_array(f)(context, builder, v)
            vals += [ary.data] + [builder.extract_value(ary.shape, i) for i in range(t.ndim)]
        else:
            vals.append(context.cast(builder, v, a, f))
    params = [p for t in target.argtypes for p in param_types(t)]
    callee = cgutils.get_or_insert_function(
        builder.module, llir.FunctionType(llir.VoidType(), params), target.symbol)
    builder.call(callee, [builder.bitcast(x, p) if x.type != p else x
                          for x, p in zip(vals, params)])
    return context.get_dummy_value()


def _direct_call(fn, args, plain):
    """`call` of a helper the direct compiler compiled, from Numba-compiled code."""
    _direct_formal(fn.dispatcher, plain)
    sig = types.none(fn, types.StarArgTuple.from_types(args))
    target = fn.dispatcher

    def codegen(context, builder, sig, llargs):
        return _emit_direct(context, builder, target, args,
                            cgutils.unpack_tuple(builder, llargs[1]))
    return sig, codegen


def numba_type_of_direct(target):
    """Numba's type of directly compiled function `target`, so that Numba-compiled code
    (a function the direct compiler left to Numba) can call it by name."""
    t = getattr(target, "_numba_type", None)
    if t is not None:
        return t
    from numba.core.imputils import lower_builtin
    from numba.core.typing.templates import AbstractTemplate

    class _Template(AbstractTemplate):
        key = target

        def generic(self, args, kws):
            if kws:
                return None
            plain = tuple(types.unliteral(a) for a in args)
            _direct_formal(target, plain)
            return types.none(*args)

    @lower_builtin(target, types.VarArg(types.Any))
    def _impl(context, builder, sig, llargs):
        return _emit_direct(context, builder, target, sig.args, llargs)

    t = target._numba_type = types.Function(_Template)
    return t


def _register_direct_typeof():
    from .direct.function import DirectFunction

    @typeof_impl.register(DirectFunction)
    def _typeof_direct(val, c):
        from .direct.function import load_pending
        load_pending(val)            # Numba's code will link its symbol: loaded by then
        return numba_type_of_direct(val)


class SymbolRef:
    """A kernel or helper compiled for one signature and published under `symbol` (see
    `ref`, `register`)."""

    def __init__(self, dispatcher, sig, symbol):
        self.dispatcher, self.sig, self.symbol = dispatcher, sig, symbol


class _KernelRef(SymbolRef):
    """`ref`'s reference: the kernel is compiled (or loaded) and published only when
    Numba-compiled code first needs its signature or symbol -- code the direct compiler
    compiles (`direct`) compiles the kernel's source itself and never asks."""

    def __init__(self, kernel, dtype):
        self.dispatcher, self._dtype, self._resolved = kernel, dtype, None

    def _resolve(self):
        if self._resolved is None:
            self._resolved = _publish(self.dispatcher, self._dtype)
        return self._resolved

    @property
    def sig(self):
        return self._resolve()[0]

    @property
    def symbol(self):
        return self._resolve()[1]


class SymbolRefType(types.Dummy):
    """Numba's type of a `SymbolRef` (a compile-time constant: nothing at run time)."""

    def __init__(self, ref):
        self.dispatcher, self.sig, self.symbol = ref.dispatcher, ref.sig, ref.symbol
        super().__init__(name=f"SymbolRef({ref.symbol})")


@typeof_impl.register(SymbolRef)
def _typeof_ref(val, c):
    return SymbolRefType(val)


register_model(SymbolRefType)(models.OpaqueModel)
_register_direct_typeof()


@lower_constant(SymbolRefType)
def _lower_ref(context, builder, ty, pyval):
    return context.get_dummy_value()


_refs = {}


def ref(kernel, dtype):
    """Kernel `kernel` (a dispatcher of `kernels.py` named in `KERNELS`) compiled (or loaded
    from its disk cache) for NumPy `dtype` and published under a symbol (see the module
    docstring): what generated code calls with ``_hc(<ref>, ...)``."""
    key = (kernel.py_func.__name__, np.dtype(dtype))
    r = _refs.get(key)
    if r is None:
        r = _refs[key] = _KernelRef(kernel, np.dtype(dtype))
    return r


def resolve_refs(namespace):
    """Compile (or load) and publish every kernel `ref` bound in `namespace` (a generated
    module's globals) that is not yet: Numba-compiled code loaded from the disk cache links to
    their symbols without typing the calls that would resolve them."""
    for v in list(namespace.values()):
        if isinstance(v, _KernelRef):
            v._resolve()


def _publish(kernel, dtype):
    """(signature, symbol) of `kernel` compiled (or loaded) for `dtype` and published."""
    from . import kernels
    name = kernel.py_func.__name__
    pos, argtypes = KERNELS[name]
    args = argtypes(numpy_support.from_dtype(dtype))
    kernel.compile(args)
    cres = kernel.overloads[args]
    h = hashlib.sha1(f"{kernels.source_version()} {name} {cres.signature}".encode())
    sym = f"numbax_kernel_{name}_{h.hexdigest()[:16]}"
    _llvm.add_symbol(sym, cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
    return cres.signature, sym


def ref_lines(names):
    """The module-level lines binding the refs `rewrite` calls helpers `names` through."""
    return [f"_r{n} = _href({n})" for n in names]


_DTYPE_ARG = {"f32": "float32", "f64": "float64"}
_SHORT = {v: k for k, v in _DTYPE_ARG.items()}


def rewrite_kernels(source, imported):
    """Function `source` with its calls of the `KERNELS` among `imported` (kernel names the
    module imports as ``_k_<name>``) written as ``_hc(_kr_<name>_<dtype>, ...)``, and the
    module-level lines binding those refs. A call whose dtype argument is not a
    float32/float64 constant or a float literal stays as written."""
    names = [k for k in imported if k in KERNELS]
    if not names:
        return source, []
    pat = re.compile(r"(?<![\w.])_k_(" + "|".join(map(re.escape, sorted(names))) + r")\(")
    refs, binds, lines = {}, [], source.split("\n")
    for i, line in enumerate(lines):
        code, sep, comment = line.partition("#")
        if not code.strip() or code.lstrip().startswith(("def ", "@")):
            continue
        out, pos = [], 0
        for m in pat.finditer(code):
            args = _split_args(code, m.end())
            if args is None or len(args) <= KERNELS[m.group(1)][0]:
                continue
            dt = _dtype_of(args[KERNELS[m.group(1)][0]])
            if dt is None:
                continue
            key = (m.group(1), dt)
            if key not in refs:                  # (named so the source says which kernel)
                refs[key] = f"_kr_{m.group(1)}_{_SHORT[dt]}"
                binds.append(f"{refs[key]} = _kref(_k_{m.group(1)}, {dt!r})")
            out += [code[pos:m.start()], f"_hc({refs[key]}, "]
            pos = m.end()
        if out:
            lines[i] = "".join(out) + code[pos:] + sep + comment
    return "\n".join(lines), binds


def _split_args(code, start):
    """The top-level arguments of the call whose '(' ends just before `start` (None: the call
    does not close on this line)."""
    depth, cur, args = 1, [], []
    for ch in code[start:]:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args
        if ch == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    return None


def _dtype_of(arg):
    m = re.fullmatch(r"_C\d+_(f32|f64)", arg)
    if m:
        return _DTYPE_ARG[m.group(1)]
    if re.fullmatch(r"-?\d+\.\d*(e[-+]?\d+)?", arg):
        return "float64"
    return None


def rewrite(source, names):
    """Function `source` (generated code) with its calls of the helpers `names` written as
    `call` (``_hc(_r<name>, ...)``; the module binds ``_r<name> = _href(<name>)``, see
    `ref_lines`). Comment lines and comments are left alone."""
    if not names:
        return source
    pat = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(names))) + r")\(")
    lines = source.split("\n")
    for i, line in enumerate(lines):
        code, sep, comment = line.partition("#")
        if not code.strip() or code.lstrip().startswith(("def ", "@")):
            continue
        new = pat.sub(r"_hc(_r\1, ", code)
        if new != code:
            lines[i] = new + sep + comment
    return "\n".join(lines)
