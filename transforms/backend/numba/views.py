"""Cheap array views for generated code: static slices, reshapes and allocations as Numba
intrinsics.

Generated functions take views of their flat buffers all the time: ``_wf32[512:1024]`` (a
helper's argument, a nest's operand) and ``_wf32[0:1384448].reshape((64, 26, 26, 32))`` (a
convolution's input). Through Numba's generic implementations each costs far more to compile
than it does: a basic slice is typed against every ``getitem`` template and lowered with the
full slice fix-up (negative bounds, clipping, step) before LLVM removes it again, and
``reshape`` compiles a helper function per target rank. Measured on the MLP training step
(kernels cached): its 47 slices made about a sixth of the compile, most of it LLVM's function
passes over the fix-up code; on the CNN step the 15 reshapes took 0.37 s of lowering alone.

Generated code only ever takes a contiguous, non-negative, in-bounds slice of a C-contiguous
1-D buffer, and only reshapes C-contiguous arrays to a shape of the same size, so two
intrinsics build the view directly (a data pointer and a shape; the parent's memory stays
referenced exactly as a NumPy slice would):

* ``rows(a, start, stop)``: ``a[start:stop]`` (rows `start` to `stop` of the first axis);
* ``shaped(a, shape)``: ``a.reshape(shape)`` of a C array (``shape`` an integer or a tuple of
  integers), no copy;
* ``empty(shape, dtype)``: ``np.empty`` allocated inline (Numba compiles its own ``np.empty``
  afresh in every process);
* ``store(a, start, stop, value)``: ``a[start:stop] = value`` (a scalar fill or a copy).

`rewrite` turns the static slices that generated code reads (``name[<int>:<int>]``), the
statements assigning to one (or to ``name[:]``), its reshapes to literal shapes and its
``_np.empty`` of literal shapes into calls of these. Anything else is left as written
(computed bounds, negative bounds, augmented assignments, ``reshape(-1)``).
"""
from __future__ import annotations

import operator
import re

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed, impl_ret_new_ref
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

__all__ = ["rows", "shaped", "empty", "store", "rewrite", "IMPORT"]

# False: generated code keeps NumPy's spelling (to compare run times side by side)
ENABLED = True

# the import line generated modules need for the rewritten code
IMPORT = ("from transforms.backend.numba.views import empty as _em, rows as _sl, "
          "shaped as _nd, store as _st")


@intrinsic
def rows(typingctx, arr, start, stop):
    """``arr[start:stop]`` (along the first axis) for 0 <= start <= stop <= len(arr), not
    checked: generated code computes the bounds from its buffer plan."""
    if not (isinstance(arr, types.Array) and arr.ndim >= 1 and
            isinstance(start, types.Integer) and isinstance(stop, types.Integer)):
        return None
    # a range of rows keeps a C array C-contiguous (and any 1-D array's layout)
    rt = arr if (arr.layout == "C" or arr.ndim == 1) else arr.copy(layout="A")
    sig = rt(arr, start, stop)

    def codegen(context, builder, sig, args):
        a = make_array(sig.args[0])(context, builder, args[0])
        lo = context.cast(builder, args[1], sig.args[1], types.intp)
        hi = context.cast(builder, args[2], sig.args[2], types.intp)
        shape = cgutils.unpack_tuple(builder, a.shape)
        strides = cgutils.unpack_tuple(builder, a.strides)
        data = cgutils.pointer_add(builder, a.data, builder.mul(lo, strides[0]))
        out = make_array(sig.return_type)(context, builder)
        context.populate_array(out, data=data, shape=[builder.sub(hi, lo)] + shape[1:],
                               strides=strides, itemsize=a.itemsize, meminfo=a.meminfo,
                               parent=a.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, out._getvalue())
    return sig, codegen


@intrinsic
def shaped(typingctx, arr, shape):
    """``arr.reshape(shape)`` for a C-contiguous array whose size equals the product of
    `shape` (an integer or a tuple of integers; not checked: generated code knows both)."""
    if not (isinstance(arr, types.Array) and arr.layout == "C"):
        return None
    if isinstance(shape, types.Integer):
        dims_t = [shape]
    elif isinstance(shape, types.BaseTuple) and \
            all(isinstance(t, types.Integer) for t in shape):       # (): a 0-d array
        dims_t = list(shape)
    else:
        return None
    rt = types.Array(arr.dtype, len(dims_t), "C")
    sig = rt(arr, shape)

    def codegen(context, builder, sig, args):
        a = make_array(sig.args[0])(context, builder, args[0])
        if len(dims_t) == 1 and isinstance(sig.args[1], types.Integer):
            dims = [context.cast(builder, args[1], sig.args[1], types.intp)]
        else:
            dims = [context.cast(builder, builder.extract_value(args[1], i), t, types.intp)
                    for i, t in enumerate(sig.args[1])]
        strides, step = [], a.itemsize
        for d in reversed(dims):
            strides.append(step)
            step = builder.mul(step, d)
        out = make_array(sig.return_type)(context, builder)
        context.populate_array(out, data=a.data, shape=dims, strides=strides[::-1],
                               itemsize=a.itemsize, meminfo=a.meminfo, parent=a.parent)
        return impl_ret_borrowed(context, builder, sig.return_type, out._getvalue())
    return sig, codegen


@intrinsic
def empty(typingctx, shape, dtype):
    """``np.empty(shape, dtype)`` (C order; `shape` an integer or a tuple of integers,
    `dtype` a NumPy scalar type such as ``np.float32``). Allocated inline: Numba's
    ``np.empty`` is a function it compiles afresh in every process, with two allocator
    helpers (~0.1 s of a first compile)."""
    if isinstance(dtype, types.NumberClass):
        dt = dtype.instance_type
    elif isinstance(dtype, types.DType):
        dt = dtype.dtype
    else:
        return None
    if isinstance(shape, types.Integer):
        dims_t = [shape]
    elif isinstance(shape, types.BaseTuple) and all(isinstance(t, types.Integer)
                                                    for t in shape):
        dims_t = list(shape)
    else:
        return None
    rt = types.Array(dt, len(dims_t), "C")
    sig = rt(shape, dtype)

    def codegen(context, builder, sig, args):
        if isinstance(sig.args[0], types.Integer):
            dims = [context.cast(builder, args[0], sig.args[0], types.intp)]
        else:
            dims = [context.cast(builder, builder.extract_value(args[0], i), t, types.intp)
                    for i, t in enumerate(sig.args[0])]
        # (what Numba's np.empty does, without the allocator function it compiles; sizes
        # come from the buffer plan, so the byte count cannot overflow)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(dt)))
        strides, nbytes = [], itemsize
        for d in reversed(dims):
            strides.append(nbytes)
            nbytes = builder.mul(nbytes, d)
        align = context.get_constant(types.uint32, context.get_preferred_array_alignment(dt))
        meminfo = context.nrt.meminfo_alloc_aligned(builder, size=nbytes, align=align)
        data = context.nrt.meminfo_data(builder, meminfo)
        out = make_array(sig.return_type)(context, builder)
        context.populate_array(out, data=builder.bitcast(data, out.data.type), shape=dims,
                               strides=strides[::-1], itemsize=itemsize, meminfo=meminfo)
        return impl_ret_new_ref(context, builder, sig.return_type, out._getvalue())
    return sig, codegen


@intrinsic
def store(typingctx, arr, start, stop, value):
    """``arr[start:stop] = value`` with 0 <= start <= stop <= len(arr) (not checked): a loop
    for a scalar `value`, a ``memmove`` for a C array of the same dtype (overlap-safe, as
    NumPy), Numba's own slice assignment otherwise. Numba's slice assignment compiles
    helpers per call site (~20 ms each) even for a scalar fill."""
    if not (isinstance(arr, types.Array) and isinstance(start, types.Integer)
            and isinstance(stop, types.Integer)):
        return None
    scalar = arr.ndim == 1 and isinstance(value, (types.Number, types.Boolean))
    copy = (arr.ndim == 1 and arr.layout == "C" and isinstance(value, types.Array)
            and value.ndim == 1 and value.layout == "C" and value.dtype == arr.dtype)
    generic = None
    if not (scalar or copy):
        fnty = typingctx.resolve_value_type(operator.setitem)
        generic = typingctx.resolve_function_type(fnty, (arr, types.slice2_type, value), {})
        if generic is None:
            return None
    sig = types.none(arr, start, stop, value)

    def codegen(context, builder, sig, args):
        lo = context.cast(builder, args[1], sig.args[1], types.intp)
        hi = context.cast(builder, args[2], sig.args[2], types.intp)
        if generic is not None:
            sl = context.make_helper(builder, types.slice2_type)
            sl.start, sl.stop, sl.step = lo, hi, context.get_constant(types.intp, 1)
            impl = context.get_function(operator.setitem, generic)
            impl(builder, (args[0], sl._getvalue(), args[3]))
            return context.get_dummy_value()
        a = make_array(sig.args[0])(context, builder, args[0])
        if scalar:
            v = context.cast(builder, args[3], sig.args[3], sig.args[0].dtype)
            v = context.get_value_as_data(builder, sig.args[0].dtype, v)
            with cgutils.for_range_slice(builder, lo, hi, context.get_constant(types.intp, 1),
                                         inc=True) as (i, _):
                builder.store(v, builder.gep(a.data, [i]))
        else:
            src = make_array(sig.args[3])(context, builder, args[3])
            cgutils.raw_memmove(builder, builder.gep(a.data, [lo]), src.data,
                                builder.sub(hi, lo), a.itemsize)
        return context.get_dummy_value()
    return sig, codegen


_SETSLICE = re.compile(r"^(\s*)([A-Za-z_]\w*)\[(?:(\d+):(\d+)|:)\] = (.+?)(\s*)$")
_STORE = r"(?!\s*(?:[-+*/%&|^@]|\*\*|//|<<|>>)?=(?!=))"      # not followed by (augmented) =
_SLICE = re.compile(r"(?<![\w.\])])([A-Za-z_]\w*)\[(\d+):(\d+)\]" + _STORE)
_RESHAPE = re.compile(r"(?<![\w.])([A-Za-z_]\w*|_sl\([^()]*\))\.reshape\(")
_EMPTY = re.compile(r"(?<![\w.])_np\.empty\((\d+|\(\s*\d+\s*(?:,\s*\d+\s*)*,?\s*\)|\(\s*\)), "
                    r"(_np\.[a-z]+\d*_?)\)")
_SHAPE_ARG = re.compile(r"\d+|[A-Za-z_]\w*\.size|\(\s*\d+\s*(?:,\s*\d+\s*)*,?\s*\)|\(\s*\)")


def _rewrite_code(code):
    m = _SETSLICE.match(code)
    if m and (m.group(3) is None or int(m.group(3)) <= int(m.group(4))):
        pad, name, lo, hi, value, tail = m.groups()
        value = _rewrite_code(value)
        if lo is None:
            return f"{pad}_st({name}, 0, len({name}), {value}){tail}"
        return f"{pad}_st({name}, {lo}, {hi}, {value}){tail}"
    code = _SLICE.sub(lambda m: f"_sl({m.group(1)}, {m.group(2)}, {m.group(3)})"
                      if int(m.group(2)) <= int(m.group(3)) else m.group(0), code)
    code = _EMPTY.sub(r"_em(\1, \2)", code)
    out, pos = [], 0
    for m in _RESHAPE.finditer(code):
        # the argument: up to the parenthesis closing `.reshape(`
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
        arg = code[m.end():j - 1].strip()
        if depth or not _SHAPE_ARG.fullmatch(arg):
            continue
        out += [code[pos:m.start()], f"_nd({m.group(1)}, {arg})"]
        pos = j
    out.append(code[pos:])
    return "".join(out)


def rewrite(source):
    """`source` (generated function code) with its static slice reads and literal-shape
    reshapes written as `rows` / `shaped` calls (imported as ``_sl`` / ``_nd``, see
    `IMPORT`). Comment lines, comments and lines holding string literals are left alone."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith(("#", "@")) or "'" in line or '"' in line:
            continue
        code, sep, comment = line.partition("#")
        if "[" not in code and ".reshape(" not in code and "_np.empty(" not in code:
            continue                   # (nothing any of the patterns could match)
        new = _rewrite_code(code)
        if new != code:
            lines[i] = new + sep + comment
    return "\n".join(lines)
