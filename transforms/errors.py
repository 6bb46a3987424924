"""Exception types raised to users. Each is a TypeError/ValueError subclass (API contract)."""


class UnexpectedTracerError(TypeError):
    """A traced value was used after the transform that created it had returned (a leak)."""


class ConcretizationTypeError(TypeError):
    """Python control flow or a conversion (`bool`, `int`, `float`) needed a concrete value."""


class TracerBoolConversionError(ConcretizationTypeError):
    """A traced array was used where Python needs a bool (`if x > 0:` inside `jit`/`grad`);
    use `tnp.where`, `lax.cond` or `lax.select_n` instead, as in JAX."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """A traced array was used where Python needs an int (`range(n)`, a list index, a shape);
    pass it as a static argument or use `lax.fori_loop`/`lax.dynamic_slice`, as in JAX."""


class NonConcreteBooleanIndexError(IndexError, ConcretizationTypeError):
    """A boolean mask whose value is only known at run time used as an index (`x[mask]`,
    `x.at[mask].set(v)` inside `jit`/`vmap`): the result's shape would depend on the data.
    Use `tnp.where(mask, ...)`, as in JAX (an IndexError there; a ConcretizationTypeError
    here too, which it used to be)."""


class TracerArrayConversionError(TypeError):
    """A traced value was handed to code that needs a real NumPy array."""


class ShapeError(ValueError, TypeError):
    """Operand shapes are incompatible for an operation. A TypeError too, as JAX raises
    TypeError for these (ported code catches it), and a ValueError, as NumPy does."""


class NonDifferentiableError(TypeError):
    """grad of a non-scalar or non-float output, or w.r.t. an integer input."""


class EmptyAxisIndexError(IndexError, ValueError):
    """A non-empty selection from an axis of size 0 (NumPy's IndexError; there is no element
    to take or clamp to, so compiled code must not run it)."""


class UnsupportedDtypeError(TypeError, NotImplementedError):
    """jit: an array dtype the Numba backend cannot compile (complex, float16, object, str,
    datetime, ...). Also a NotImplementedError, which it used to be."""


class InvalidIndexError(IndexError, TypeError):
    """An index of a type that cannot index (a float, a string, ...). NumPy raises IndexError
    for these and JAX TypeError; it is both, so ported code catching either keeps working."""


class ReverseModeLoopError(ValueError, TypeError):
    """Reverse-mode differentiation of a loop whose trip count is only known at run time
    (`lax.while_loop`). A ValueError, as in JAX, and a TypeError, which it used to be."""


class ImmutableTracerError(TypeError):
    """`x[idx] = v` on a traced array: traced arrays are immutable, as JAX arrays are. Use the
    functional update `x = x.at[idx].set(v)` (or `.add`, `.multiply`, `.min`, `.max`)."""
