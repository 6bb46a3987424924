"""Lowering a jaxpr to the source of ONE Numba function (plus a tiny Python runner).

Registering a lowering rule
===========================

Primitives that are not elementwise, views or reductions (those are fused by `fusion.py`,
declared with `register_pointwise`, `register_view`, `register_reduction`: see `registry`)
are lowered by a rule registered by primitive name::

    from transforms.backend.numba.lowering import register_lowering

    @register_lowering("negate_all")
    def _lower_negate_all(ctx, eqn):
        with ctx.loops(eqn.invars[0].aval.shape) as idx:     # nested loops, closed at the end
            ctx.emit(f"{ctx.out_elem(0, idx)} = -{ctx.read(0, idx)}")

A rule emits Python/Numba statements at the current indentation with `ctx.emit(line)`;
`ctx.loops(shape)` opens nested `for` loops over a shape and yields one index expression
per dim (`ranges=` for other bounds, `skip=` for dims the rule loops over itself);
`ctx.block(header)` opens any other nested block (`for`, `while`, `if`, `else`). All storage in the
generated function is flat (1-D, C order), so there are two ways to read and write:

* element access: `ctx.read(i, idx)` is the value of operand i at index expressions `idx`
  (one per dim; views such as transposes and broadcasts are folded into the index),
  `ctx.out_elem(j, idx)` is an assignable element of output j, `ctx.scalar(i)` reads a shape-()
  operand, `ctx.flat(i)` / `ctx.out_flat(j)` give (1-D array name, element offset);
* whole arrays: `ctx.array(i)` is an N-d C-contiguous array holding operand i (a view of its
  storage, or a copy when the operand is a non-trivial view), `ctx.out(j)` an N-d array to
  write output j into; or bind an output to an existing array with `ctx.set_out(j, name)`,
  to flat storage with `ctx.set_out_flat(j, name, off)`, to a scalar with
  `ctx.set_out_scalar(j, expr)`, or to operand i reshaped with `ctx.alias_out(j, i)`.

`ctx.view(i)` is the raw `fusion.View` of operand i (for rules that fold index maps
themselves, like dot_general folding transposes into BLAS flags). Other helpers:
`ctx.range(n)` (the `range(...)` to use for a loop of static length: small loops get a
run-time bound so that LLVM does not unroll them), `ctx.fresh(prefix)`, `ctx.literal(v, dtype)`,
`ctx.dtype(dtype)` (e.g. `_np.float32`), `ctx.numba_type(dtype)`, `ctx.kernel(name)` (a function
of kernels.py), `ctx.empty(shape, dtype)` (an N-d temporary), `ctx.add_helper(key, source)`
(module-level source added once, e.g. an ``@_njit`` helper), `ctx.const(array)` (an extra
constant argument, flattened), and, for control flow, `ctx.lower_jaxpr(closed_jaxpr,
arg_names) -> out_names`, which lowers a nested jaxpr inline at the current position (with its
own fusion) taking and returning N-d array names. Each rule's code is preceded by a comment
with its IR equation, so the generated code reads like the IR.

Rules for elementwise primitives are scalar expressions registered with
`rules_elementwise.register_pointwise(name)`; they join fused loops automatically.

There is no fallback: a primitive with no rule raises NotImplementedError naming it.

Zero-size arrays: an equation whose outputs are all empty is never handed to its rule (there
is nothing to write; rules may treat a dim of size 1 as index 0 and need not think about
size 0). A rule whose output is non-empty may still get empty operands (a contraction over
an empty axis, padding an empty array, a scan of length 0): it must write every output
element. Dtypes the backend cannot compile raise `UnsupportedDtypeError` (a TypeError).
"""
from __future__ import annotations

import hashlib
import os
import re

import numpy as np

from ...ir import ClosedJaxpr, _pp
from . import calls, fusion, tabulate, views
from .fusion import Nest, RowGroup, ScalarStep

# The pieces of the backend, re-exported: rules and other modules import them from here.
from .context import RuleContext, ScalarContext  # noqa: F401
from .emit import (SMALL_LOOP, Binding, Emitter, ModuleBuilder, _all_outputs_empty,  # noqa: F401
                   _c_strides, _check_dtype, _check_dtypes, _check_eqn_dtypes, _const_array,
                   _eqn_text, _lin, _nbytes, _profiling, _shape_str, _size, _sub_jaxprs,
                   dtype_ctor, format_literal, loop_range, numba_type_name, unsupported_dtype)
from .function import FunctionLowerer  # noqa: F401
from . import helpers as helper_modules
from .split import split as split_long_function
from .loops import NestWriter  # noqa: F401
from .memory import (POOL_MIN_BYTES, _arena_name, _donations, _plan_arena,  # noqa: F401
                     _ws_name)
from .outline import NestBlock, outline  # noqa: F401
from .parallel import (PARALLEL_CHUNK, _parallel_min, _tbb_layer, parallel_allowed,  # noqa: F401
                       parallel_guard)
from .registry import (CALLS_BLAS, LOWERINGS, load_rules, register_lowering,  # noqa: F401
                       register_reduction, register_view)


class Lowered:
    """The generated module source and what the runtime needs to call it."""

    def __init__(self, source, text, key, consts, in_avals, out_avals, workspace, parallel):
        self.source, self.text, self.key = source, text, key
        self.consts = consts
        self.in_avals, self.out_avals = in_avals, out_avals
        self.workspace = workspace          # ((dtype name, elements), ...) of the scratch arrays
        self.parallel = parallel
        self.helpers = ()                   # helpers.HelperModule, callees first

    def as_text(self):
        return self.text


def lower(closed: ClosedJaxpr, fn_name="_fn", donate=()):
    """Generate the module source for `closed`. Returns a `Lowered`.

    `donate`: indices of inputs whose buffers outputs may be written into (jit's
    donate_argnums): the input arrays are then overwritten."""
    from . import kernels
    load_rules()                  # every rules module registers its primitives
    jaxpr, consts = fusion.prepare(closed, has_rule=lambda n: n in LOWERINGS)
    _check_dtypes(jaxpr)
    consts = [_const_array(c) for c in consts]
    mod = ModuleBuilder()
    text = _pp(jaxpr, mod.namer)          # names the variables as the IR text does
    em = Emitter()
    in_names = [mod.name(v) for v in jaxpr.invars]
    const_names = [mod.name(v) for v in jaxpr.constvars]

    fl = FunctionLowerer(mod, em, jaxpr, top=True)
    mod.threaded_calls = _calls_blas(jaxpr)
    out_views = [fl.view_of(a) for a in jaxpr.outvars]
    outputs_set = set()
    for vw in out_views:
        if vw.kind == "var" and vw.is_identity() and vw.var not in jaxpr.invars and \
                vw.var not in jaxpr.constvars:
            outputs_set.add(vw.var)
    offsets, _, out_roots = _plan_arena(fl, outputs_set)
    order = {v: i for i, v in reversed(list(enumerate(jaxpr.outvars)))}
    pooled = []                     # (arg name, var): big outputs, from the recycling pool
    arena = {}                      # dtype name -> elements of the small-output arena
    out_alloc = {}                  # var -> (flat array name, element offset)

    def out_slot(aval):
        if _nbytes(aval) >= POOL_MIN_BYTES:
            arg = f"_o{len(pooled)}"
            pooled.append((arg, aval))
            return arg, 0
        dn = aval.dtype.name
        off = arena.get(dn, 0)
        arena[dn] = off + (max(_size(aval.shape), 1) + 15) // 16 * 16
        return _arena_name(dn), off
    in_place = _donations(fl, jaxpr, out_roots, set(donate))
    for v in sorted(out_roots, key=lambda v: order.get(v, 1 << 30)):
        if fl.plan.state.get(v) == "scalar":
            continue
        if v in in_place:
            out_alloc[v] = (in_names[in_place[v]], 0)       # written into the donated input
            continue
        out_alloc[v] = out_slot(v.aval)
    fl.out_alloc = out_alloc
    ws = {}                          # dtype name -> elements
    for v, off in offsets.items():
        dn = v.aval.dtype.name
        ws[dn] = max(ws.get(dn, 0), off + max(_size(v.aval.shape), 1))

    def alloc(v):
        off = offsets.get(v)
        if off is None:
            return None
        return _ws_name(v.aval.dtype), off
    fl.alloc = alloc
    mod.vtypes["_z"] = ("scalar", np.dtype(np.int64))
    # rules' scratch memory (RuleContext.scratch): one region past the intermediates of each
    # dtype's workspace, as large as the largest rule needs (no two rules run at once)
    mod.scratch_base = {dn: (n + 15) // 16 * 16 for dn, n in ws.items()}
    mod.scratch_need = {}
    fl.bind_inputs(in_names)
    fl.bind_consts(const_names)
    fl.run()
    for dn, need in mod.scratch_need.items():
        ws[dn] = max(ws.get(dn, 0), mod.scratch_base.get(dn, 0) + need)

    # -- outputs ------------------------------------------------------------------------------
    out_plan = []       # per output: ('slot', name, off, shape) | ('view', ...) | ('in', i) | ...
    pool_args = {n for n, _ in pooled}
    # positions by name / Var: dictionaries, since programs can have thousands of leaves
    in_index = {n: i for i, n in enumerate(in_names)}
    const_index = {n: i for i, n in enumerate(const_names)}
    invar_index = {v: i for i, v in reversed(list(enumerate(jaxpr.invars)))}
    constvar_index = {v: i for i, v in reversed(list(enumerate(jaxpr.constvars)))}
    for a, vw in zip(jaxpr.outvars, out_views):
        aval = a.aval
        ident = vw.kind == "var" and vw.is_identity()
        if vw.kind == "lit":
            out_plan.append(("lit", (np.asarray(vw.value, dtype=aval.dtype), aval.shape)))
            continue
        if ident and vw.var in invar_index:
            out_plan.append(("in", invar_index[vw.var]))
            continue
        if ident and vw.var in constvar_index:
            out_plan.append(("const", constvar_index[vw.var]))
            continue
        b = fl.env.get(vw.var) if vw.kind == "var" else None
        slot = out_alloc.get(vw.var) if ident else None
        if slot is not None and b is not None and b.kind == "arr" and (b.flat, b.off) == slot:
            out_plan.append(("slot", slot[0], slot[1], aval.shape))
            continue
        if b is not None and b.kind == "arr" and (
                b.flat in in_index or b.flat in const_index or b.flat in pool_args or
                b.flat.startswith(("_w", "_r"))):
            # a view of stored data: the runner copies it out with NumPy (no loops to compile)
            cs = _c_strides(vw.var.aval.shape)
            off, strides = b.off, [0] * aval.ndim
            for (c, d, k), st in zip(vw.terms, cs):
                off += c * st
                if d is not None:
                    strides[d] += k * st
            out_plan.append(("view", b.flat, off, aval.shape, tuple(strides)))
            continue
        # a scalar, or a value stored elsewhere: copy it into an output slot
        name, off = out_slot(aval)
        em.emit(f"# output {len(out_plan)}")
        fl.emit_copy(vw, name, off, aval.shape, aval.dtype)
        out_plan.append(("slot", name, off, aval.shape))
    em.emit("return None")
    main_parallel = outline(em, mod)
    # long runs of one helper over many leaves: a loop over tables (see tabulate.py)
    leaf_arrays = {n: (v.aval.dtype, _size(v.aval.shape)) for n, v in zip(in_names, jaxpr.invars)}
    leaf_arrays.update({n: (a.dtype, _size(a.shape)) for n, a in pooled})
    em.lines, tables = tabulate.tabulate(em.lines, leaf_arrays)
    addressed = tables.addressed
    moved = set(addressed) - tabulate.remaining_uses(em.lines, addressed)

    # -- header ---------------------------------------------------------------------------------
    extra_names = [n for n, _ in mod.extra_consts]
    extra_consts = [c for _, c in mod.extra_consts]
    ws_names = [_ws_name(dn) for dn in sorted(ws)]
    arena_names = [_arena_name(dn) for dn in sorted(arena)]
    prof = _profiling()
    params = [n for n in in_names if n not in moved] + const_names + extra_names + \
        ws_names + arena_names + [n for n, _ in pooled if n not in moved] + \
        (["_addr"] if addressed else []) + ["_z"] + (["_prof"] if prof else [])

    def flat_t(dtype):
        return f"_t.Array({numba_type_name(dtype)}, 1, 'C')"
    arg_types = [flat_t(v.aval.dtype) for n, v in zip(in_names, jaxpr.invars) if n not in moved]
    arg_types += [flat_t(v.aval.dtype) for v in jaxpr.constvars]
    arg_types += [flat_t(c.dtype) for c in extra_consts]
    arg_types += [flat_t(dn) for dn in sorted(ws)]
    arg_types += [flat_t(dn) for dn in sorted(arena)]
    arg_types += [flat_t(a.dtype) for n, a in pooled if n not in moved]
    arg_types += (["_t.Array(_t.int64, 1, 'C')"] if addressed else []) + ["_t.int64"]
    arg_types += ["_t.Array(_t.int64, 1, 'C')"] if prof else []
    flags = "cache=True, nogil=True, error_model='numpy', no_cfunc_wrapper=True"  # (no C caller)
    if main_parallel:
        flags += ", parallel=True"
    head = [f"# backend {BACKEND_FINGERPRINT}",
            "# Generated by transforms.backend.numba from the IR below. Each statement is",
            "# annotated with the IR equation it implements. Every array is flat (1-D, C order);",
            "# intermediates live at fixed offsets of per-dtype workspaces (_w*), small outputs in",
            "# per-dtype output arenas (_r*), large ones in recycled buffers (_o*). _z is a",
            "# run-time 0: loops of small static size run to `n + _z`, so that LLVM does not",
            "# unroll them completely (which costs compile time, not run time).",
            f"# kernels version {kernels.source_version()}", "#"]
    head += ["# " + line for line in text.splitlines()]
    head += ["import math as _math", "import numpy as _np", "import numba as _numba",
             "from numba import prange as _prange, types as _t",
             "from transforms.backend.numba.cache import njit as _njit",
             "from transforms.backend.numba.lowering import parallel_guard as _parallel_guard",
             views.IMPORT]
    head += [f"from transforms.backend.numba.kernels import {k} as _k_{k}"
             for k in sorted(mod.imports)]
    if addressed:
        head += tabulate.LEAF_SOURCE.splitlines()
    head.append("")
    head += mod.const_lines + tables.lines
    head.append("")
    signed, unsigned = {}, []
    for src in mod.helpers.values():
        src = _cheap_views(src)
        name = _helper_name(src)
        if name is not None and helper_modules.is_signed(src):
            signed[name] = src
        else:
            unsigned.append(src)
    for src in unsigned:
        head += [src, ""]
    sig_head = ["_SIG = _t.none("] + [f"    {t}," for t in arg_types] + [")", "", ""]
    # a long body is split into helper functions (Numba's front end is superlinear: split.py)
    known = dict(zip(params, arg_types))
    for n, (kind, dt) in mod.vtypes.items():
        if n not in known:
            known[n] = (f"_t.Array({numba_type_name(dt)}, 1, 'C')" if kind == "arr"
                        else numba_type_name(dt))
    # the module-level names (parsed once: the splitter and the helper modules need them)
    head_text = "\n".join(head)
    defs = helper_modules.module_globals(head_text)
    pieces, fn_text = split_long_function(
        "\n".join([head_text] + list(signed.values()) + sig_head),
        "\n".join([f"def {fn_name}({', '.join(params)}):"] +
                   (em.lines if em.lines else ["    pass"])),
        "cache=True, nogil=True, error_model='numpy', no_cpython_wrapper=True, "
        "no_cfunc_wrapper=True", known, module_names=set(defs) | set(signed) | {"_SIG"})
    pieces = [_cheap_views(src) for src in pieces]
    for src in pieces:
        name = _helper_name(src)
        if helper_modules.is_signed(src):
            signed[name] = src
        else:
            unsigned.append(src)
    # helpers with a signature become modules of their own, cached by content (helpers.py)
    hmods = helper_modules.build(head_text, signed, defs)
    if hmods:
        head.append("from transforms.backend.numba.cache import helper as _helper")
        head += [h.binding(name) for name, h in hmods.items()]
        head.append("")
    for name, src in signed.items():
        if name not in hmods:
            head += [src, ""]
    head += sig_head
    for src in pieces:
        if _helper_name(src) not in hmods:
            head += [src, ""]
    if not main_parallel and views.ENABLED:
        fn_text = views.rewrite(fn_text)
    if hmods and not main_parallel and calls.ENABLED:
        # helper modules are called through their symbols, not linked in (calls.py)
        head.insert(head.index("from transforms.backend.numba.cache import helper as _helper"),
                    calls.IMPORT)
        fn_text = calls.rewrite(fn_text, list(hmods))
        head[head.index(sig_head[0]):head.index(sig_head[0])] = calls.ref_lines(list(hmods))
    if not main_parallel and calls.ENABLED:
        # big kernels too (the gemm family): one published ref per kernel and dtype
        fn_text, binds = calls.rewrite_kernels(fn_text, mod.imports)
        if binds:
            if calls.IMPORT not in head:
                head.append(calls.IMPORT)
            head += [calls.KERNEL_IMPORT] + binds + [""]
    fn_lines = fn_text.splitlines()
    head += ["", f"@_njit(_SIG, {flags})", fn_lines[0]]
    body = fn_lines[1:]

    # -- the Python-side runner ----------------------------------------------------------------
    nconst = len(const_names) + len(extra_names)
    cn = [f"_c{i}" for i in range(nconst)]
    run = ["", "", "def make_runner(consts, pool_get, ws_pool):",
           '    """Bind the constants and buffers; returns run(*args) -> list of outputs."""']
    if cn:
        run.append(f"    {', '.join(cn)}{',' if len(cn) == 1 else ''} = "
                   f"[c.reshape(-1) for c in consts]")
    # a directly compiled function's C-level entry (`direct`): None, or which argument its
    # signature does not take (then TypeError: the executable converts the arguments)
    run.append(f"    fn = getattr({fn_name}, 'fast', {fn_name})")
    if prof:
        run.append(f"    prof = _np.zeros({len(fl.plan.steps)}, _np.int64)")
    if ws:
        run.append("    ws_take, ws_give = ws_pool")
    args = [f"a{i}" for i in range(len(in_names))]
    run.append(f"    def run({', '.join(args)}):")
    for k, (_, a) in enumerate(pooled):
        run.append(f"        o{k} = pool_get({tuple(a.shape)!r}, _np.{a.dtype.name})")
    for dn in sorted(arena):
        run.append(f"        {_arena_name(dn)} = _np.empty({arena[dn]}, _np.{dn})")
    for x, v in zip(args, jaxpr.invars):
        run.append(f"        f{x[1:]} = {x}" + ("" if v.aval.ndim == 1 else ".ravel()"))
    call_args = ["f" + x[1:] for x, n in zip(args, in_names) if n not in moved] + cn
    call_args += [f"ws[{i}]" for i in range(len(ws))]
    call_args += [_arena_name(dn) for dn in sorted(arena)]
    call_args += [f"o{k}.ravel()" for k, (n, _) in enumerate(pooled) if n not in moved]
    if addressed:
        # data addresses of the leaves the tables index (all alive during the call)
        pool_index = {n: k for k, (n, _) in enumerate(pooled)}
        refs = [f"f{in_index[n]}" if n in in_index else f"o{pool_index[n]}"
                for n in addressed]
        run.append(f"        _addr = _np.array([{', '.join(r + '.ctypes.data' for r in refs)}], "
                   "_np.int64)")
        call_args.append("_addr")
    call_args.append("0")
    if prof:
        call_args.append("prof")
    if ws:
        run.append("        ws = ws_take()")
    if main_parallel or any("parallel=True" in h for h in mod.helpers.values()):
        # dynamic scheduling of parallel loops in chunks: a core busy with other work simply
        # takes fewer chunks (the default static split waits for the slowest core); `guard`:
        # see lowering.parallel_guard (a lock only on a layer that cannot take concurrency)
        run.insert(run.index(f"    fn = getattr({fn_name}, 'fast', {fn_name})") + 1,
                   "    guard = _parallel_guard()")
        run.append("        with guard:")
        run.append(f"            chunk = _numba.set_parallel_chunksize({PARALLEL_CHUNK})")
        run.append(f"            fn({', '.join(call_args)})")
        run.append("            _numba.set_parallel_chunksize(chunk)")
    else:
        run.append(f"        _bad = fn({', '.join(call_args)})")
        run.append("        if _bad is not None:")
        run.append("            raise TypeError(f'compiled function: argument {_bad} is not of "
                   "the kind its signature takes')")
    outs = []
    pool_index = {n: k for k, (n, _) in enumerate(pooled)}
    ws_index = {_ws_name(dn): i for i, dn in enumerate(sorted(ws))}

    def py_storage(name):
        if name in in_index:
            return f"f{in_index[name]}"
        if name in const_index:
            return f"_c{const_index[name]}"
        if name in ws_index:
            return f"ws[{ws_index[name]}]"
        if name in pool_index:
            return f"o{pool_index[name]}.reshape(-1)"
        return name
    for item in out_plan:
        kind = item[0]
        if kind == "view":
            _, name, off, shape, strides = item
            outs.append(f"_view({py_storage(name)}, {off}, {tuple(shape)!r}, {strides!r})")
        elif kind == "slot" and item[1] in in_index:          # written in place (donated)
            _, name, off, shape = item
            outs.append(f"f{in_index[name]}.reshape({tuple(shape)!r})")
        elif kind == "slot":
            _, name, off, shape = item
            if name in pool_index:
                outs.append(f"o{pool_index[name]}")
            else:
                sl = f"{name}[{off}:{off + _size(shape)}]"
                outs.append(sl if len(shape) == 1 else f"{sl}.reshape({tuple(shape)!r})")
        elif kind == "in":
            outs.append(f"a{item[1]}")
        elif kind == "const":
            outs.append(f"consts[{item[1]}].copy()")
        else:
            val, shape = item[1]
            outs.append(f"_np.full({tuple(shape)!r}, {_py_literal(val.item())}, "
                        f"_np.{val.dtype.name})")
    run.append(f"        outs = [{', '.join(outs)}]")
    if ws:
        run.append("        ws_give(ws)")
    run.append("        return outs")
    if prof:
        run.append("    run.profile = (prof, PROFILE_STEPS)")
    run.append("    return run")
    if prof:
        run += ["", "", "PROFILE_STEPS = " + repr(_step_labels(fl, mod))]
    run += ["", "", "def _view(flat, off, shape, strides):",
            '    """A copy of the strided view of the flat array `flat` (element units)."""',
            "    it = flat.itemsize",
            "    v = _np.lib.stride_tricks.as_strided(flat[off:], shape,",
            "                                         [s * it for s in strides])",
            "    return _np.array(v, order='C')"]
    source = "\n".join(head + body + run) + "\n"
    key = hashlib.sha1(source.encode()).hexdigest()[:20]
    ws_spec = tuple((dn, n) for dn, n in sorted(ws.items()))
    low = Lowered(source, text + "\n" + _plan_text(fl, mod), key, consts + extra_consts,
                  [v.aval for v in jaxpr.invars], [a.aval for a in jaxpr.outvars],
                  ws_spec, mod.parallel)
    low.helpers = tuple(hmods.values())
    return low


def _helper_name(source):
    """The name of the function a helper's `source` defines (None: not one function)."""
    m = re.search(r"^def (\w+)\(", source, re.M)
    return m.group(1) if m and source.lstrip().startswith("@_njit(") else None


def _cheap_views(source):
    """Helper `source` with its static slices and reshapes as `views` intrinsics (fewer,
    cheaper statements for Numba; a ``parallel=True`` function is left as written, for
    Numba's parallel analysis)."""
    if not views.ENABLED or "parallel=True" in source.split("\n", 1)[0]:
        return source
    return views.rewrite(source)


def _backend_fingerprint():
    """Hash of this backend's own source files. It is written into every generated module, so
    a changed backend (a fixed kernel, say) never reuses machine code that Numba cached for
    the old one: Numba's cache does not notice changes in the modules a function imports."""
    import glob
    h = hashlib.sha1()
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "*.py"))):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


BACKEND_FINGERPRINT = _backend_fingerprint()


def _py_literal(v):
    """Python source for a scalar, including the non-finite floats (`inf` is not a name)."""
    if isinstance(v, float) and not np.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def _calls_blas(jaxpr):
    """Whether lowering `jaxpr` may call BLAS (matmuls, convolutions), nested jaxprs included."""
    for e in jaxpr.eqns:
        if e.prim.name in CALLS_BLAS:
            return True
        if any(_calls_blas(j) for j in _sub_jaxprs(e)):
            return True
    return False


def _step_labels(fl, mod):
    out = []
    for st in fl.plan.steps:
        if isinstance(st, RowGroup):
            out.append(f"rows [{st.rows}]: " + " | ".join(
                ",".join(dict.fromkeys(m.eqn.prim.name for m in n.members)) for n in st.nests
            )[:60])
        elif isinstance(st, Nest):
            ops = ",".join(dict.fromkeys(m.eqn.prim.name for m in st.members))
            out.append(f"nest {_shape_str(st.shape)} {ops}"[:70])
        elif isinstance(st, ScalarStep):
            out.append(f"scalar {st.member.eqn.prim.name}")
        else:
            e = st.eqn
            out.append(f"{e.prim.name} -> {','.join(v.aval.str_short() for v in e.outvars)}")
    return out


def _plan_text(fl, mod):
    """The fusion plan in words (part of `Lowered.as_text()`)."""
    lines = ["", "fusion plan:"]
    for i, st in enumerate(fl.plan.steps):
        if isinstance(st, RowGroup):
            lines.append(f"  {i}: rows fused: one loop over {st.rows} rows running "
                         f"{len(st.nests)} nests per row:")
            for n in st.nests:
                outs = [mod.namer(v) for v in n.store] + \
                    [mod.namer(m.eqn.outvars[0]) for m in n.reductions]
                ops = " ".join(f"{mod.namer(m.eqn.outvars[0])}={m.eqn.prim.name}"
                               for m in n.members)
                lines.append(f"       nest over {_shape_str(n.shape)} -> "
                             f"{', '.join(outs) or '-'}  [{ops}]")
        elif isinstance(st, Nest):
            outs = [mod.namer(v) for v in st.store] + \
                [mod.namer(m.eqn.outvars[0]) for m in st.reductions]
            ops = " ".join(f"{mod.namer(m.eqn.outvars[0])}={m.eqn.prim.name}" for m in st.members)
            lines.append(f"  {i}: loop nest over {_shape_str(st.shape)} -> "
                         f"{', '.join(outs) or '-'}  [{ops}]")
        elif isinstance(st, ScalarStep):
            e = st.member.eqn
            lines.append(f"  {i}: scalar {mod.namer(e.outvars[0])} = {e.prim.name}")
        else:
            e = st.eqn
            lines.append(f"  {i}: {e.prim.name} -> {', '.join(mod.namer(v) for v in e.outvars)}")
    return "\n".join(lines)
