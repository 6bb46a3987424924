"""Docstrings of the `transforms.numpy` functions that mirror a NumPy function one to one.

Many functions are built by factories (one per ufunc) and have no docstring of their own; this
table gives each one: the NumPy function it mirrors, how it differs, and how it behaves under
the transformations. The claims were checked by running every function under `grad`, `vmap`
and `jit` (see tests/test_api_docs.py for the check that every public name is documented).
Functions that already have a docstring keep it.
"""
from __future__ import annotations

_SAME = "same signature, results and NumPy 2 dtype rules as NumPy (Python scalars are weak)"
_ALL = "Batches under `vmap` and compiles under `jit`."

# family -> (names, what the transformations do)
_FAMILIES = {
    "smooth": (
        "absolute arccos arcsin arcsinh arctan arctan2 arctanh cbrt conjugate cos cosh deg2rad "
        "divide "
        "exp exp2 expm1 imag log log10 log1p log2 logaddexp logaddexp2 maximum minimum multiply "
        "negative positive power real reciprocal remainder fmod sin sinc sinh sqrt square "
        "subtract tan tanh add",
        "Differentiable (`grad`, `jvp`, `vjp`) wherever NumPy's function is smooth; complex "
        "inputs follow JAX's gradient convention."),
    "step": (
        "ceil floor rint around trunc sign heaviside floor_divide",
        "Piecewise constant: differentiable, with a zero derivative."),
    "predicate": (
        "equal not_equal less less_equal greater greater_equal logical_and logical_or "
        "logical_xor logical_not isfinite isinf isnan",
        "Boolean result: no derivative flows through it (a constant under `grad`)."),
    "integer": (
        "bitwise_and bitwise_or bitwise_xor invert left_shift",
        "Integer/boolean operands only; no derivative."),
    "reduction": (
        "sum mean prod amax amin std var cumsum cumprod trace",
        "Differentiable with respect to the array; `axis`, `keepdims` (and `dtype` where NumPy "
        "has it) as in NumPy."),
    "index_reduction": (
        "argmax argmin count_nonzero all any",
        "Integer/boolean result: no derivative."),
    "linear": (
        "dot inner outer matmul tensordot",
        "Differentiable in both operands (products are `dot_general`)."),
    "shape": (
        "array_split atleast_1d atleast_2d broadcast_arrays broadcast_to concatenate copy diag "
        "diagonal expand_dims flip fliplr flipud hstack moveaxis pad ravel repeat reshape split "
        "squeeze stack swapaxes take take_along_axis tile transpose tril triu vstack clip",
        "Differentiable (a structural or selecting operation: the derivative moves values, "
        "and `clip` passes it only where the value was selected)."),
    "construct": (
        "arange empty eye full identity linspace ones zeros",
        "A new array from Python values: constant under `grad` (shape arguments must be "
        "concrete: Python ints, not traced values)."),
    "construct_like": (
        "empty_like full_like ones_like zeros_like",
        "Uses only the shape and dtype of its input: a constant under `grad`. `empty_like` "
        "returns zeros (memory is never left uninitialised)."),
    "convert": (
        "array asarray",
        "Passes traced values through (differentiable); converts Python and NumPy data to "
        "arrays."),
    "static": (
        "can_cast iscomplexobj isscalar ndim shape size",
        "Answers from the shape/dtype alone, as a Python value (also on traced arrays)."),
}

# extra notes on differences from NumPy, by name
_NOTES = {
    "absolute": "Also available as `abs`. The derivative at 0 is 1, as in JAX.",
    "conjugate": "Also available as `conj`.",
    "around": "Also available as `round`; rounds half to even, as NumPy.",
    "remainder": "Also available as `mod`; the sign of the result follows the divisor, as NumPy.",
    "divide": "Also available as `true_divide`; integer inputs give float64, as NumPy.",
    "concatenate": "Also available as `concat` (the array-API name).",
    "amax": "Also available as `max`.",
    "amin": "Also available as `min`.",
    "invert": "Also available as `bitwise_not`.",
    "sign": "`sign(-0.)` is +0. (JAX gives -0.).",
    "empty": "Returns zeros (memory is never left uninitialised).",
    "take": "Out-of-bounds indices: NumPy's IndexError on NumPy input; inside transforms "
            "`mode=`/`fill_value=` as in JAX (default: fill).",
    "take_along_axis": "Out-of-bounds indices inside transforms are filled, as in JAX.",
    "can_cast": "NumPy's casting rules.",
}

# functions that are not in `_FAMILIES` because they behave differently
_SPECIAL: dict = {}   # (nonzero and where have their own docstrings, for size=)

# aliases documented under their NumPy 2 / canonical name (same function object)
_ALIASES = {"abs": "absolute", "conj": "conjugate", "round": "around", "mod": "remainder",
            "true_divide": "divide", "concat": "concatenate", "max": "amax", "min": "amin",
            "bitwise_not": "invert"}

_SCALAR_TYPES = ("bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 "
                 "float64 complex64 complex128")


def _doc(name: str, behaviour: str) -> str:
    note = _NOTES.get(name, "")
    return (f"Mirrors `numpy.{name}`: {_SAME}.{(' ' + note) if note else ''}\n\n"
            f"{behaviour} {_ALL}")


def install(namespace: dict) -> list:
    """Give the functions in `namespace` that have no docstring the one from the tables;
    returns the names documented here."""
    done = []

    def put(name, text):
        obj = namespace.get(name)
        if obj is None or (getattr(obj, "__doc__", None) or "").strip():
            return
        try:
            obj.__doc__ = text
        except (AttributeError, TypeError):  # a builtin or NumPy object: documented by NumPy
            return
        done.append(name)

    for _family, (names, behaviour) in _FAMILIES.items():
        for name in names.split():
            put(name, _doc(name, behaviour))
    for name, text in _SPECIAL.items():
        put(name, text)
    for name in _SCALAR_TYPES.split():
        np_name = name
        put(name, f"The scalar type `numpy.{np_name}`: `tnp.{name}(x)` converts `x` (also a "
                  f"traced array) to that dtype, and `tnp.{name}` is accepted wherever a dtype "
                  f"is. Converting to a float type is differentiable.")
    return done
