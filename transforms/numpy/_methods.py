"""Operators and ndarray-style methods on tracers, defined by the `tnp` functions."""
from __future__ import annotations

import numpy as np

from ..core import Tracer
from ..errors import TracerArrayConversionError
from . import _indexing, _ops, _shape_ops


def _swap(f):
    return lambda self, other: f(other, self)


def _reshape_method(self, *shape, order="C"):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)) and \
            not (isinstance(shape[0], Tracer) and shape[0].ndim == 0):
        shape = shape[0]
    return _shape_ops.reshape(self, shape, order)


def _transpose_method(self, *axes):
    if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
        axes = axes[0]
    return _shape_ops.transpose(self, axes or None)


def _item(self):
    v = self.concrete_value()
    if v is None:
        return float(self)          # raises the concretisation error with its hint
    return np.asarray(v).item()


def _tolist(self):
    return np.asarray(self).tolist()


def _accepts_out(f):
    """The method form of a NumPy function: NumPy's own functions (`np.sum(tracer)`, np.max,
    np.mean, ...) call it with `out=None`; an actual `out` array cannot be written."""
    def method(self, *args, out=None, **kwargs):
        if out is not None:
            raise TypeError(f"{f.__name__}: the 'out' argument is not supported (arrays are "
                            "immutable)")
        return f(self, *args, **kwargs)
    method.__name__ = f.__name__
    return method


def _methods():
    """The methods, read from the tnp modules when installed (after `_weak.apply` wrapped
    them)."""
    return {
        "__add__": _ops.add, "__radd__": _swap(_ops.add),
        "__sub__": _ops.subtract, "__rsub__": _swap(_ops.subtract),
        "__mul__": _ops.multiply, "__rmul__": _swap(_ops.multiply),
        "__truediv__": _ops.true_divide, "__rtruediv__": _swap(_ops.true_divide),
        "__floordiv__": _ops.floor_divide, "__rfloordiv__": _swap(_ops.floor_divide),
        "__mod__": _ops.remainder, "__rmod__": _swap(_ops.remainder),
        "__pow__": _ops.power, "__rpow__": _swap(_ops.power),
        "__matmul__": _shape_ops.matmul, "__rmatmul__": _swap(_shape_ops.matmul),
        "__neg__": _ops.negative, "__pos__": _ops.positive, "__abs__": _ops.abs,
        "__invert__": _ops.invert,
        "__and__": _ops.bitwise_and, "__rand__": _swap(_ops.bitwise_and),
        "__or__": _ops.bitwise_or, "__ror__": _swap(_ops.bitwise_or),
        "__xor__": _ops.bitwise_xor, "__rxor__": _swap(_ops.bitwise_xor),
        "__lshift__": _ops.left_shift, "__rlshift__": _swap(_ops.left_shift),
        "__rshift__": _ops.right_shift, "__rrshift__": _swap(_ops.right_shift),
        "__eq__": _ops.equal, "__ne__": _ops.not_equal,
        "__lt__": _ops.less, "__le__": _ops.less_equal,
        "__gt__": _ops.greater, "__ge__": _ops.greater_equal,
        "__getitem__": _indexing.getitem,
        "reshape": _reshape_method, "transpose": _transpose_method,
        **{name: _accepts_out(getattr(_ops, name)) for name in (
            "sum", "mean", "max", "min", "prod", "var", "std", "argmax", "argmin", "cumsum",
            "cumprod", "all", "any", "clip", "round")},
        "astype": _ops.astype, "ravel": _shape_ops.ravel, "flatten": _shape_ops.ravel,
        "squeeze": _shape_ops.squeeze, "swapaxes": _shape_ops.swapaxes, "dot": _shape_ops.dot,
        "copy": _ops.copy, "item": _item, "tolist": _tolist,
        "take": _shape_ops.take, "repeat": _shape_ops.repeat,
    }


# NumPy's operators between an ndarray (or NumPy scalar) and a tracer reach the tracer as
# these ufuncs' calls: they mean the operator, computed by tnp.
_OPERATOR_UFUNCS = {}        # filled by `install`, from the (wrapped) tnp functions


def _operator_ufuncs():
    return {
        np.add: _ops.add, np.subtract: _ops.subtract, np.multiply: _ops.multiply,
        np.true_divide: _ops.true_divide, np.floor_divide: _ops.floor_divide,
        np.remainder: _ops.remainder, np.divmod: _ops.divmod, np.power: _ops.power,
        np.matmul: _shape_ops.matmul, np.bitwise_and: _ops.bitwise_and,
        np.bitwise_or: _ops.bitwise_or, np.bitwise_xor: _ops.bitwise_xor,
        np.left_shift: _ops.left_shift, np.right_shift: _ops.right_shift,
        np.equal: _ops.equal, np.not_equal: _ops.not_equal, np.less: _ops.less,
        np.less_equal: _ops.less_equal, np.greater: _ops.greater,
        np.greater_equal: _ops.greater_equal,
    }


def _constants(inputs):
    """`inputs` with every tracer replaced by its constant value, or None when some tracer
    is not a constant of its transformation (mapped, differentiated or staged)."""
    out = []
    for x in inputs:
        if isinstance(x, Tracer):
            x = x.constant_value()
            if x is None:
                return None
        out.append(x)
    return out


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """`ndarray + tracer` and the other operators with a NumPy operand first compute with tnp;
    any other NumPy ufunc on a traced value (`np.sin(x)` inside `jit`) is JAX's
    TracerArrayConversionError, naming the tnp function to use."""
    fn = _OPERATOR_UFUNCS.get(ufunc)
    if (fn is not None and method == "__call__" and not kwargs and len(inputs) == 2
            and not isinstance(inputs[0], Tracer)):
        return fn(*inputs)
    consts = _constants(inputs)
    if consts is not None:
        # a lifted constant (`np.sin(tnp.arange(3))` inside vmap): NumPy computes on its
        # value and returns a NumPy array, as it does on a concrete JAX array
        return getattr(ufunc, method)(*consts, **kwargs)
    from ..source_info import where
    call = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    raise TracerArrayConversionError(
        f"{call} was applied to a traced value {self.aval.str_short()}{where()}: NumPy "
        f"functions cannot compute on traced values. Use transforms.numpy.{ufunc.__name__} "
        "(tnp) instead, or move the NumPy code outside the transformed function.")


def install():
    _OPERATOR_UFUNCS.update(_operator_ufuncs())
    for name, fn in _methods().items():
        setattr(Tracer, name, fn)
    Tracer.T = property(lambda self: _shape_ops.transpose(self))
    Tracer.mT = property(lambda self: _shape_ops.swapaxes(self, -1, -2))
    Tracer.at = property(lambda self: _indexing._IndexUpdateHelper(self))
    Tracer.real = property(_ops.real)
    Tracer.imag = property(_ops.imag)
    Tracer.conj = Tracer.conjugate = _ops.conjugate
    Tracer.__array_ufunc__ = _array_ufunc
