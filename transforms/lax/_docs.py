"""Docstrings of the `transforms.lax` primitives made by factories (one per operation).

Each says what the operation computes (as `jax.lax` defines it) and how it behaves under the
transformations; every one was run under `grad`, `vmap` and `jit` when this table was written.
Functions that already have a docstring keep it.
"""
from __future__ import annotations

_ALL = "Batches under `vmap` and compiles under `jit`."
_SMOOTH = "Differentiable (`grad`, `jvp`, `vjp`)."
_STEP = "Piecewise constant: differentiable, with a zero derivative."
_NODIFF = "Integer/boolean result: no derivative."

_UNARY = {
    "abs": "|x| (the modulus for complex x)", "acos": "arccos(x)", "asin": "arcsin(x)",
    "asinh": "arcsinh(x)", "atan": "arctan(x)", "atanh": "arctanh(x)", "cos": "cos(x)",
    "cosh": "cosh(x)", "erf": "the error function erf(x)", "exp": "e**x", "exp2": "2**x",
    "expm1": "e**x - 1, accurate near 0", "cbrt": "the real cube root",
    "log": "the natural logarithm",
    "log1p": "log(1 + x), accurate near 0", "logistic": "the sigmoid 1 / (1 + e**-x)",
    "neg": "-x", "sin": "sin(x)", "sinh": "sinh(x)", "sqrt": "the square root",
    "rsqrt": "1 / sqrt(x)", "tan": "tan(x)", "tanh": "tanh(x)",
    "real": "the real part of a complex operand (complex input only)",
    "imag": "the imaginary part of a complex operand (complex input only)",
    "conj": "the complex conjugate",
}
_BINARY = {
    "add": "x + y", "sub": "x - y", "mul": "x * y",
    "div": "x / y (integer division rounds toward zero, as C and JAX)",
    "rem": "the remainder of x / y with the sign of x (C's fmod), as JAX",
    "pow": "x ** y", "max": "the elementwise maximum", "min": "the elementwise minimum",
    "atan2": "arctan(x / y) in the quadrant of (y, x)",
    "logaddexp": "log(e**x + e**y), without overflow", "logaddexp2": "log2(2**x + 2**y)",
    "complex": "x + i y from two real operands",
}
_STEPS = {
    "ceil": "the ceiling", "floor": "the floor", "sign": "-1, 0 or 1 (x / |x| for complex x)",
    "round": "rounding to an integer value, halves away from zero",
    "round_even": "rounding to an integer value, halves to even",
}
_PREDICATES = {
    "eq": "x == y", "ne": "x != y", "lt": "x < y", "le": "x <= y", "gt": "x > y",
    "ge": "x >= y",
}
_INTEGER = {
    "bitwise_and": "x & y", "bitwise_or": "x | y", "bitwise_xor": "x ^ y",
    "shift_left": "x << y",
    "shift_right_arithmetic": "x >> y, filling with the sign bit",
    "shift_right_logical": "x >> y, filling with zeros",
}
_OTHER = {
    "argmax": ("`argmax(x, axis, index_dtype)`: the index of the largest element along `axis` "
               "(the first one on ties).", _NODIFF),
    "argmin": ("`argmin(x, axis, index_dtype)`: the index of the smallest element along "
               "`axis` (the first one on ties).", _NODIFF),
    "reduce_sum": ("`reduce_sum(x, axes)`: the sum over `axes`.", _SMOOTH),
    "reduce_prod": ("`reduce_prod(x, axes)`: the product over `axes`.", _SMOOTH),
    "reduce_max": ("`reduce_max(x, axes)`: the maximum over `axes`.", _SMOOTH),
    "reduce_min": ("`reduce_min(x, axes)`: the minimum over `axes`.", _SMOOTH),
    "reduce_and": ("`reduce_and(x, axes)`: logical/bitwise and over `axes`.", _NODIFF),
    "reduce_or": ("`reduce_or(x, axes)`: logical/bitwise or over `axes`.", _NODIFF),
    "cumsum": ("`cumsum(x, axis, reverse=False)`: the running sum along `axis`.", _SMOOTH),
    "cumprod": ("`cumprod(x, axis, reverse=False)`: the running product along `axis`.",
                _SMOOTH),
    "broadcast_in_dim": ("`broadcast_in_dim(x, shape, broadcast_dimensions)`: `x` broadcast "
                         "to `shape`, its axis i placed at output axis "
                         "`broadcast_dimensions[i]`.", _SMOOTH),
    "reshape": ("`reshape(x, new_sizes, dimensions=None)`: the same elements in a new shape "
                "(C order).", _SMOOTH),
    "slice": ("`slice(x, start_indices, limit_indices, strides=None)`: a static slice.",
              _SMOOTH),
    "transpose": ("`transpose(x, permutation)`: axes permuted.", _SMOOTH),
    "rev": ("`rev(x, dimensions)`: `x` reversed along `dimensions`.", _SMOOTH),
    "squeeze": ("`squeeze(x, dimensions)`: size-1 axes removed.", _SMOOTH),
    "expand_dims": ("`expand_dims(x, dimensions)`: size-1 axes inserted.", _SMOOTH),
    "pad": ("`pad(x, padding_value, padding_config)`: (low, high, interior) padding per axis "
            "(negative low/high crop).", _SMOOTH),
    "concatenate": ("`concatenate(operands, dimension)`: arrays joined along an axis.",
                    _SMOOTH),
    "dynamic_update_slice": ("`dynamic_update_slice(x, update, start_indices)`: `x` with a "
                             "block replaced at (possibly traced) indices, clamped into "
                             "bounds as in JAX.", _SMOOTH),
    "integer_pow": ("`integer_pow(x, y)`: x ** y for a Python int `y`.", _SMOOTH),
    "convert_element_type": ("`convert_element_type(x, new_dtype)`: a cast (float -> int "
                             "truncates; NaN -> 0, out of range saturates).",
                             "Differentiable between float/complex types; a cast to an "
                             "integer type has no derivative."),
    "select_n": ("`select_n(which, *cases)`: elementwise `cases[which]` (a boolean `which` "
                 "picks `cases[0]` where False, `cases[1]` where True).",
                 "Differentiable in the cases (not in `which`)."),
    "iota": ("`iota(dtype, shape, dimension=0)`: 0, 1, 2, ... along `dimension` (an int "
             "`shape` gives a vector).", "A constant under `grad`."),
    "is_finite": ("`is_finite(x)`: elementwise whether x is finite (not inf or nan).", _NODIFF),
    "bitwise_not": ("`bitwise_not(x)`: elementwise ~x (logical not for booleans).", _NODIFF),
    "full": ("`full(shape, fill_value, dtype=None)`: a new array filled with one value.",
             "Differentiable in `fill_value`."),
    "scatter": ("`scatter(x, idx, updates, **dimension_numbers)`: `x` with `updates` written "
                "at the indices (out-of-bounds updates dropped), as `jax.lax.scatter`; "
                "`x.at[idx].set(v)` is the usual way to call it.", _SMOOTH),
    "scatter_add": ("`scatter_add(x, idx, updates, ...)`: `updates` added at the indices "
                    "(`x.at[idx].add(v)`).", _SMOOTH),
    "scatter_mul": ("`scatter_mul(x, idx, updates, ...)`: `x` multiplied by `updates` at the "
                    "indices (`x.at[idx].multiply(v)`).", _SMOOTH),
    "scatter_max": ("`scatter_max(x, idx, updates, ...)`: elementwise maximum with `updates` "
                    "at the indices (`x.at[idx].max(v)`).", _SMOOTH),
    "scatter_min": ("`scatter_min(x, idx, updates, ...)`: elementwise minimum with `updates` "
                    "at the indices (`x.at[idx].min(v)`).", _SMOOTH),
    "zeros_like_aval": ("`zeros_like_aval(aval)`: zeros of an abstract value's shape and "
                        "dtype (used by transformation rules).", "A constant under `grad`."),
}


def install(namespace: dict) -> list:
    """Document the functions in `namespace` that have none; returns the names done."""
    done = []

    def put(name, what, behaviour):
        obj = namespace.get(name)
        if obj is None or (getattr(obj, "__doc__", None) or "").strip():
            return
        obj.__doc__ = f"{what}\n\nAs `jax.lax.{name}`. {behaviour} {_ALL}"
        done.append(name)

    for table, behaviour, form in ((_UNARY, _SMOOTH, "`{n}(x)`: elementwise {w}."),
                                   (_BINARY, _SMOOTH, "`{n}(x, y)`: elementwise {w}."),
                                   (_STEPS, _STEP, "`{n}(x)`: elementwise {w}."),
                                   (_PREDICATES, _NODIFF, "`{n}(x, y)`: elementwise {w}."),
                                   (_INTEGER, _NODIFF, "`{n}(x, y)`: elementwise {w}.")):
        for name, what in table.items():
            put(name, form.format(n=name, w=what), behaviour)
    for name, (what, behaviour) in _OTHER.items():
        put(name, what, behaviour)
    return done
