"""Calls from a generated main function to its helper modules by symbol, not by linking.

A plain call between two Numba functions links the callee's LLVM module into the caller's:
the caller's full-module optimisation (O3: inlining, loop vectorisation, unrolling) and its
machine-code emission then run again over every helper it calls -- helpers that `helpers.py`
compiled, optimised and cached on their own, often in another process. Measured on the MLP
training step (kernels and helpers cached, CPU seconds of compiling the main function alone):
its three outlined loop nests, linked, were a fifth of the optimised module's IR.

Here a helper module's function, once loaded (`cache.helper`), is published to LLVM's
symbol table under a name made of its content key (`register`), and the main function calls
it through `call` (imported as ``_hc``)::

    _hc(_h0, _sl(_wf32, 0, 65536), a, 128, 512)      # was: _h0(_sl(_wf32, 0, 65536), a, ...)

`call` emits a declaration of that symbol and a call in Numba's own calling convention (the
same arguments, return value and error status as the linked call), so the helper's code is
not copied into the caller: LLVM resolves the symbol when it loads the caller's machine code,
in this process after a compile and in any later process after loading it from the disk cache
(the module binds, hence registers, its helpers before its main function loads). The name
holds the helper's content key, so it is the same in every process and a cached caller finds
it.

What the caller loses is inlining of the helper into it: the helpers are loop nests over
thousands of elements (sizes passed as arguments) or whole pieces of a split function, where
one call per step costs nothing measurable.
"""
from __future__ import annotations

import re

import llvmlite.binding as _llvm
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

__all__ = ["register", "symbol_of", "call", "rewrite", "IMPORT"]

# False: helper calls stay linked calls (to compare compile and run times side by side)
ENABLED = True

IMPORT = "from transforms.backend.numba.calls import call as _hc"

_ATTR = "_nbx_symbol"


def symbol_of(key, name):
    """The symbol of function `name` of helper module `key` (the same in every process)."""
    return f"numbax_helper_{key}_{name}"


def register(fn, key, name):
    """Publish the machine code of helper `fn` (a dispatcher compiled for exactly one
    signature, function `name` of helper module `key`) under `symbol_of(key, name)`, so code
    calling it through `call` links to it. Returns `fn`."""
    sigs = getattr(fn, "signatures", None)
    if not sigs or len(sigs) != 1:
        return fn                  # (not a signed helper: callers keep the linked call)
    cres = fn.overloads[sigs[0]]
    sym = symbol_of(key, name)
    _llvm.add_symbol(sym, cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name))
    setattr(fn, _ATTR, sym)
    return fn


@intrinsic
def call(typingctx, fn, *args):
    """``fn(*args)`` for a registered helper `fn`, through its symbol (see the module
    docstring). The arguments must convert to the helper's signature."""
    disp = getattr(fn, "dispatcher", None)
    sym = getattr(disp, _ATTR, None)
    if not isinstance(fn, types.Dispatcher) or sym is None:
        raise TypingError(f"calls.call: {fn} is not a helper registered with calls.register")
    cres = disp.overloads[disp.signatures[0]]
    formal, rt = cres.signature.args, cres.signature.return_type
    if len(args) != len(formal) or any(
            typingctx.can_convert(a, f) is None for a, f in zip(args, formal)):
        raise TypingError(f"calls.call: helper {disp.py_func.__name__} takes {formal}, "
                        f"called with {args}")
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


def rewrite(source, names):
    """Function `source` (generated code) with its calls of the helpers `names` written as
    `call` (``_hc(name, ...)``). Comment lines and comments are left alone."""
    if not names:
        return source
    pat = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(names))) + r")\(")
    lines = source.split("\n")
    for i, line in enumerate(lines):
        code, sep, comment = line.partition("#")
        if not code.strip() or code.lstrip().startswith(("def ", "@")):
            continue
        new = pat.sub(r"_hc(\1, ", code)
        if new != code:
            lines[i] = new + sep + comment
    return "\n".join(lines)
