"""Complex64/complex128 in the Numba backend: pointwise rules and the `fft` lowering.

The real-dtype rules of `rules_elementwise.py` stay as they are; each primitive listed here
gets a wrapper that takes the complex path when an operand or the result is complex (Numba's
own complex scalars: `+ - * /`, `abs` (hypot), exp, log, log1p, sqrt, `.real`, `.imag`,
`.conjugate()`), and defers to the real rule otherwise. Complex primitives not listed (max,
min, comparisons other than eq/ne, rounding, ...) keep the real rules' clear
NotImplementedError.

`fft` is one object-mode call per equation (`numba.objmode`): NumPy's pocketfft on the whole
operand, outside the compiled loop nests (the fused loops before and after it stay compiled).
The object-mode round trip costs a few microseconds per call; the transform itself is
NumPy's, so large FFTs run at NumPy's speed (see the report in tests/test_fft_jit.py).
"""
from __future__ import annotations

import warnings

import numpy as np

from .lowering import numba_type_name, register_lowering
from ...lax.fft import fft_eval  # noqa: F401  (called by generated code)
from .rules_elementwise import POINTWISE, power_by_squaring


def _any_complex(ctx):
    return any(np.dtype(d).kind == "c" for d in list(ctx.in_dtypes) + [ctx.out_dtype])


def _complex_path(name):
    """Decorator: `rule` handles `name` when complex dtypes are involved."""
    def deco(rule):
        real_rule = POINTWISE.get(name)

        def dispatch(ctx, *args, **params):
            if _any_complex(ctx):
                return rule(ctx, *args, **params)
            if real_rule is None:
                raise NotImplementedError(f"jit: '{name}' on {ctx.out_dtype}")
            return real_rule(ctx, *args, **params)
        POINTWISE[name] = dispatch
        return rule
    return deco


def _c(ctx, expr, dt=None):
    """`expr` with exactly the Numba type of the output (or `dt`)."""
    dt = np.dtype(ctx.out_dtype if dt is None else dt)
    return ctx.cast(expr, dt)


for _name, _op in (("add", "+"), ("sub", "-"), ("mul", "*")):
    def _arith(ctx, x, y, _op=_op):
        return _c(ctx, f"({x} {_op} {y})")
    _complex_path(_name)(_arith)


@_complex_path("div")
def _div(ctx, x, y):
    """Smith's scaled division in real arithmetic, as NumPy's loop: Numba's own complex
    division raises ZeroDivisionError, where NumPy gives inf/nan."""
    xr, xi = ctx.let(f"{x}.real"), ctx.let(f"{x}.imag")
    yr, yi = ctx.let(f"{y}.real"), ctx.let(f"{y}.imag")
    ar, ai = ctx.let(f"abs({yr})"), ctx.let(f"abs({yi})")
    r1 = ctx.let(f"{yi} / {yr}")                # float division: inf/nan, never an error
    d1 = ctx.let(f"{yr} + {yi} * {r1}")
    r2 = ctx.let(f"{yr} / {yi}")
    d2 = ctx.let(f"{yi} + {yr} * {r2}")
    zero = f"complex({xr} / {ar}, {xi} / {ar})"
    big_r = f"complex(({xr} + {xi} * {r1}) / {d1}, ({xi} - {xr} * {r1}) / {d1})"
    big_i = f"complex(({xr} * {r2} + {xi}) / {d2}, ({xi} * {r2} - {xr}) / {d2})"
    return _c(ctx, f"(({zero} if {ar} == 0 else {big_r}) if {ar} >= {ai} else {big_i})")


@_complex_path("neg")
def _neg(ctx, x):
    return _c(ctx, f"(-{x})")


@_complex_path("abs")
def _abs(ctx, x):
    return _c(ctx, f"abs({x})")


# Only functions whose values agree with NumPy's at infinities and overflow (checked on a grid
# of 0, +-1, +-800, 1e300, +-inf, nan parts). Numba's complex pow, sin, cos, sinh, cosh, tanh,
# tan and sign give nan where NumPy gives 0 or inf there: they keep the real rules' clear
# NotImplementedError under jit.
for _name in ("log", "sqrt"):
    def _unary(ctx, x, _name=_name):
        return _c(ctx, f"_np.{_name}({x})")
    _complex_path(_name)(_unary)


@_complex_path("exp")
def _exp(ctx, x):
    # exp(a) (cos b + i sin b), with b == 0 kept exact (Numba's gives inf * 0 = nan there)
    xr, xi = ctx.let(f"{x}.real"), ctx.let(f"{x}.imag")
    r = ctx.let(f"_np.exp({xr})")
    under = f"complex(0.0, _np.copysign(0.0, {xi}))"      # exp(-inf + i(inf or nan))
    return _c(ctx, f"(complex({r}, {xi}) if {xi} == 0 else ({under} if {xr} == -_np.inf and not "
                   f"_np.isfinite({xi}) else complex({r} * _np.cos({xi}), {r} * _np.sin({xi}))))")


@_complex_path("log1p")
def _log1p(ctx, x):
    # 1 + x built from parts, so that the sign of a zero imaginary part (branch cut) is kept
    return _c(ctx, f"_np.log(complex(1 + {x}.real, {x}.imag))")


@_complex_path("integer_pow")
def _integer_pow(ctx, x, *, y):
    dt = ctx.out_dtype
    if y == 0:
        return ctx.lit(1, dt)
    acc = power_by_squaring(ctx, x, abs(y), lambda a, b: _c(ctx, f"{a} * {b}"))
    return _div(ctx, ctx.lit(1, dt), acc) if y < 0 else acc


for _name, _op in (("eq", "=="), ("ne", "!=")):
    def _cmp(ctx, x, y, _op=_op):
        return f"({x} {_op} {y})"
    _complex_path(_name)(_cmp)


@_complex_path("convert_element_type")
def _convert(ctx, x, *, new_dtype, **_):
    src, dst = np.dtype(ctx.in_dtypes[0]), np.dtype(new_dtype)
    if src == dst:
        return x
    if src.kind == "c" and dst.kind != "c":     # NumPy's astype: the real part
        if dst == np.bool_:
            return f"({x} != 0)"
        return _c(ctx, f"{x}.real", dst)
    if src == np.bool_:
        return _c(ctx, f"(1.0 if {x} else 0.0)", dst)
    return _c(ctx, x, dst)


@_complex_path("real")
def _real(ctx, x):
    return _c(ctx, f"{x}.real")


@_complex_path("imag")
def _imag(ctx, x):
    return _c(ctx, f"{x}.imag")


@_complex_path("conj")
def _conj(ctx, x):
    return _c(ctx, f"{x}.conjugate()")


@_complex_path("complex")
def _complex(ctx, x, y):
    return _c(ctx, f"complex({x}, {y})")


@_complex_path("is_finite")
def _is_finite(ctx, x):
    return f"(_np.isfinite({x}.real) and _np.isfinite({x}.imag))"


def _no_complex_operand(name):
    """Opaque rules written for real operands: a clear error for complex ones."""
    from .lowering import LOWERINGS
    real_rule = LOWERINGS.get(name)
    if real_rule is None:
        return

    def rule(ctx, eqn):
        if any(v.aval.dtype.kind == "c" for v in eqn.invars if hasattr(v, "aval")):
            raise NotImplementedError(f"jit: {name} of complex values is not supported by "
                                      f"the Numba backend")
        return real_rule(ctx, eqn)
    LOWERINGS[name] = rule


from . import rules_reductions as _rules_reductions  # noqa: E402,F401  (registered first)
for _name in ("argmax", "argmin"):
    _no_complex_operand(_name)


# ---------------------------------------------------------------------------------------------
# fft: NumPy's pocketfft in object mode
# ---------------------------------------------------------------------------------------------

# Numba notes that an object-mode block cannot run without the GIL: expected, and harmless.
warnings.filterwarnings("ignore", message=".*object mode won't allow parallel execution")


@register_lowering("fft", calls_blas=True)     # no prange beside an object-mode call
def _lower_fft(ctx, eqn):
    x = ctx.array(0)
    out_aval = eqn.outvars[0].aval
    fft_type, lengths = eqn.params["fft_type"], tuple(eqn.params["fft_lengths"])
    nd = len(out_aval.shape)
    typ = numba_type_name(out_aval.dtype)[len("_t."):]
    spec = f"{typ}[{', '.join([':'] * (nd - 1) + ['::1'])}]"
    out = ctx.fresh("_fft")
    # reached through an importable module: a function defined in the generated module would
    # be a "dynamic global" (that module is not importable by name), disabling Numba's cache
    ctx.add_helper("fft_module", "import transforms.backend.numba.rules_complex as _rc_mod")
    with ctx.block(f"with _numba.objmode({out}='{spec}'):"):
        ctx.emit(f"{out} = _np.ascontiguousarray(_rc_mod.fft_eval({x}, {fft_type!r}, "
                 f"{lengths!r}))")
    ctx.set_out(0, out)
