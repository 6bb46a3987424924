"""Differential fuzzing of jit against eager execution.

Seeded random small programs -- chains of elementwise, reduction and shape operations over
float32 / float64 / int32 / bool inputs that hold special values (inf, -inf, nan, -0.0, integer
extremes) -- are run eagerly (each primitive's NumPy implementation) and compiled with `T.jit`,
and the results compared:

* integers and booleans exactly;
* floats bitwise (NaNs at the same places, signed zeros equal) when every operation on the way
  is IEEE-exact (add, mul, div, sqrt, comparisons, selects, conversions, ...): eager and
  compiled code must then round identically;
* floats within a few ulp (plus an absolute term scaled by the program's largest intermediate,
  for cancellation) once a transcendental (exp, log, tanh, ...) or a float sum, whose
  order differs, is involved. Such approximate values only feed well-conditioned operations
  (never a comparison, floor or conversion to int, where one ulp could flip the result).

Programs are generated together with their eager evaluation (so operand shapes and dtypes are
known) and compiled in batches, one `jit` per batch, to keep compile time low. A failure
prints the program and its inputs. Deterministic: fixed seeds.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp

pytestmark = pytest.mark.stress

I32 = np.iinfo(np.int32)

# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------
# kind: which input dtypes an op accepts ("f" float, "i" int32, "b" bool, "n" = f|i, "a" any);
# exact: the op is IEEE-exact (jit must equal eager bitwise); needs_exact: its inputs must be
# exact values (discrete or ill-conditioned ops); signless: the sign of a zero result is
# unspecified (max/min of -0. and 0., sums), so zeros are compared without their sign.


class Op:
    def __init__(self, name, fn, arity, kind, exact=True, needs_exact=False, signless=False,
                 pre=None):
        self.name, self.fn, self.arity, self.kind = name, fn, arity, kind
        self.exact, self.needs_exact, self.signless, self.pre = exact, needs_exact, signless, pre


def _k(dt):
    dt = np.dtype(dt)
    return "b" if dt == np.bool_ else "i" if dt.kind in "iu" else "f"


def _accepts(kind, dt):
    k = _k(dt)
    return kind == "a" or k in kind or (kind == "n" and k in "if")


def _axis_op(name, fn, kind, **kw):
    return Op(name, fn, 1, kind, pre="axis", **kw)


OPS = [
    # unary, exact
    Op("negative", tnp.negative, 1, "n"),
    Op("abs", tnp.abs, 1, "n"),
    Op("sign", tnp.sign, 1, "n", needs_exact=True),
    Op("floor", tnp.floor, 1, "f", needs_exact=True),
    Op("trunc", tnp.trunc, 1, "f", needs_exact=True),
    Op("round", tnp.round, 1, "f", needs_exact=True),
    Op("square_int_pow", lambda x: x ** 2, 1, "n"),
    Op("ceil", tnp.ceil, 1, "f", needs_exact=True),
    Op("rint", tnp.rint, 1, "f", needs_exact=True),
    Op("sqrt", tnp.sqrt, 1, "f", needs_exact=True),
    Op("square", tnp.square, 1, "n"),
    Op("reciprocal", tnp.reciprocal, 1, "f"),
    Op("isnan", tnp.isnan, 1, "f", needs_exact=True),
    Op("isfinite", tnp.isfinite, 1, "f", needs_exact=True),
    Op("logical_not", tnp.logical_not, 1, "b"),
    Op("invert", tnp.invert, 1, "ib"),
    Op("astype_f32", lambda x: tnp.astype(x, np.float32), 1, "a"),
    Op("astype_f64", lambda x: tnp.astype(x, np.float64), 1, "a"),
    Op("astype_i32", lambda x: tnp.astype(x, np.int32), 1, "a", needs_exact=True),
    Op("astype_bool", lambda x: tnp.astype(x, np.bool_), 1, "a", needs_exact=True),
    Op("add_weak_float", lambda x: x + 2.5, 1, "n"),
    Op("mul_weak_int", lambda x: x * 3, 1, "n"),
    Op("rsub_weak", lambda x: 1 - x, 1, "n"),
    Op("gt_weak", lambda x: x > 0, 1, "n", needs_exact=True),
    Op("clip", lambda x: tnp.clip(x, -2, 3), 1, "n", signless=True),
    Op("transpose", lambda x: x.T, 1, "a"),
    Op("ravel", tnp.ravel, 1, "a"),
    _axis_op("flip", lambda x, ax: tnp.flip(x, ax), "a"),
    _axis_op("slice1", lambda x, ax: tnp.take(x, np.arange(1, x.shape[ax]), axis=ax), "a"),
    _axis_op("max", lambda x, ax: tnp.max(x, axis=ax), "n", signless=True),
    _axis_op("min", lambda x, ax: tnp.min(x, axis=ax, keepdims=True), "n", signless=True),
    _axis_op("argmax", lambda x, ax: tnp.argmax(x, axis=ax), "n", needs_exact=True),
    _axis_op("any", lambda x, ax: tnp.any(x, axis=ax), "b"),
    _axis_op("sum_int", lambda x, ax: tnp.sum(x, axis=ax), "ib"),
    _axis_op("cumsum_int", lambda x, ax: tnp.cumsum(x, axis=ax), "ib"),
    # unary, approximate (inputs exact)
    Op("exp", tnp.exp, 1, "n", exact=False, needs_exact=True),
    Op("log", tnp.log, 1, "n", exact=False, needs_exact=True),
    Op("log1p", tnp.log1p, 1, "f", exact=False, needs_exact=True),
    Op("expm1", tnp.expm1, 1, "f", exact=False, needs_exact=True),
    Op("tanh", tnp.tanh, 1, "n", exact=False),
    Op("sin", tnp.sin, 1, "f", exact=False, needs_exact=True),
    Op("cos", tnp.cos, 1, "f", exact=False, needs_exact=True),
    Op("arctan", tnp.arctan, 1, "f", exact=False),
    Op("exp2", tnp.exp2, 1, "f", exact=False, needs_exact=True),
    Op("log2", tnp.log2, 1, "f", exact=False, needs_exact=True),
    Op("sinh", tnp.sinh, 1, "f", exact=False, needs_exact=True),
    Op("cosh", tnp.cosh, 1, "f", exact=False, needs_exact=True),
    Op("arcsin", tnp.arcsin, 1, "f", exact=False, needs_exact=True),
    Op("arctanh", tnp.arctanh, 1, "f", exact=False, needs_exact=True),
    Op("cube", lambda x: x ** 3, 1, "n", exact=False, needs_exact=True),
    _axis_op("prod", lambda x, ax: tnp.prod(x, axis=ax), "f", exact=False, needs_exact=True,
             signless=True),
    _axis_op("std", lambda x, ax: tnp.std(x, axis=ax), "f", exact=False, needs_exact=True),
    _axis_op("sum", lambda x, ax: tnp.sum(x, axis=ax), "f", exact=False, signless=True),
    _axis_op("mean", lambda x, ax: tnp.mean(x, axis=ax), "f", exact=False, signless=True),
    _axis_op("cumsum", lambda x, ax: tnp.cumsum(x, axis=ax), "f", exact=False),
    # binary, exact
    Op("add", tnp.add, 2, "n"),
    Op("subtract", tnp.subtract, 2, "n"),
    Op("multiply", tnp.multiply, 2, "n"),
    Op("true_divide", tnp.true_divide, 2, "n"),
    Op("floor_divide", tnp.floor_divide, 2, "n", needs_exact=True),
    Op("remainder", tnp.remainder, 2, "n", needs_exact=True),
    Op("fmod", tnp.fmod, 2, "n", needs_exact=True),
    Op("maximum", tnp.maximum, 2, "n", signless=True),
    Op("minimum", tnp.minimum, 2, "n", signless=True),
    Op("less", tnp.less, 2, "n", needs_exact=True),
    Op("equal", tnp.equal, 2, "a", needs_exact=True),
    Op("logical_and", tnp.logical_and, 2, "b"),
    Op("logical_or", tnp.logical_or, 2, "b"),
    Op("not_equal", tnp.not_equal, 2, "a", needs_exact=True),
    Op("greater_equal", tnp.greater_equal, 2, "n", needs_exact=True),
    Op("bitwise_or", tnp.bitwise_or, 2, "ib"),
    Op("logical_xor", tnp.logical_xor, 2, "b"),
    Op("bitwise_and", tnp.bitwise_and, 2, "ib"),
    Op("bitwise_xor", tnp.bitwise_xor, 2, "ib"),
    Op("left_shift", tnp.left_shift, 2, "i"),
    Op("right_shift", tnp.right_shift, 2, "i"),
    Op("hypot", tnp.hypot, 2, "f", needs_exact=True),
    Op("heaviside", tnp.heaviside, 2, "f", needs_exact=True),
    Op("isclose", tnp.isclose, 2, "f", needs_exact=True),
    Op("where", lambda c, x: tnp.where(c, x, -x), 2, "a", pre="cond"),
    # binary, approximate
    Op("logaddexp", tnp.logaddexp, 2, "f", exact=False, needs_exact=True),
    Op("logaddexp2", tnp.logaddexp2, 2, "f", exact=False, needs_exact=True),
    Op("arctan2", tnp.arctan2, 2, "f", exact=False, needs_exact=True),
    Op("power", tnp.power, 2, "f", exact=False, needs_exact=True),
]

SHAPES = [(6,), (3, 4), (2, 3, 2), (1, 5)]
DTYPES = [np.float32, np.float64, np.int32, np.bool_]


def random_input(rng, shape, dt):
    n = int(np.prod(shape))
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt == np.int32:
        pool = np.array([0, 1, -1, 2, -2, 3, 7, -8, 31, 40, I32.max, I32.min, I32.max - 1,
                         I32.min + 1, 1000, -65536], np.int64)
        v = np.where(rng.random(n) < 0.4, rng.integers(-50, 50, n), rng.choice(pool, n))
        return v.astype(np.int32).reshape(shape)
    fi = np.finfo(dt)
    pool = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -2.5, 3.0, 1e30,
                     -1e-30, float(fi.max), float(fi.tiny), float(fi.smallest_subnormal), 100.0,
                     -89.5, 2 ** 31, -2 ** 31 - 4096.0, 1e10], np.float64)
    v = np.where(rng.random(n) < 0.5, rng.normal(0, 4, n), rng.choice(pool, n))
    return v.astype(dt).reshape(shape)


class Program:
    """Inputs, steps (op, argument indices, axis) and their eager values."""

    def __init__(self, rng, n_steps):
        self.rng = rng
        shape = SHAPES[rng.integers(len(SHAPES))]
        n_in = int(rng.integers(1, 4))
        self.inputs = [random_input(rng, shape, DTYPES[rng.integers(len(DTYPES))])
                       for _ in range(n_in)]
        self.vals = list(self.inputs)
        self.exact = [True] * n_in
        self.signless = False
        self.steps = []
        tries = 0
        while len(self.steps) < n_steps and tries < 200:
            tries += 1
            self._try_step()

    def _pick(self, pred):
        ok = [i for i in range(len(self.vals)) if pred(i)]
        if not ok:
            return None
        # prefer recent values: chains rather than independent one-step programs
        w = np.arange(1, len(ok) + 1, dtype=np.float64) ** 2
        return ok[int(self.rng.choice(len(ok), p=w / w.sum()))]

    def _try_step(self):
        op = OPS[self.rng.integers(len(OPS))]

        def usable(i):
            v = self.vals[i]
            return _accepts(op.kind, v.dtype) and (self.exact[i] or not op.needs_exact) and \
                v.size > 0 and (op.pre != "axis" or v.ndim >= 1) and v.ndim >= 1

        if op.pre == "cond":
            c = self._pick(lambda i: self.vals[i].dtype == np.bool_ and self.exact[i])
            x = self._pick(lambda i: self.vals[i].shape == self.vals[c].shape
                           and self.vals[i].dtype != np.bool_) if c is not None else None
            if x is None:
                return
            args, axis = [c, x], None
        else:
            a = self._pick(usable)
            if a is None:
                return
            args, axis = [a], None
            if op.arity == 2:
                shape = self.vals[a].shape
                b = self._pick(lambda i: usable(i) and (
                    self.vals[i].shape == shape or self.vals[i].shape == shape[-1:]))
                if b is None:
                    return
                args.append(b)
            if op.pre == "axis":
                axis = int(self.rng.integers(self.vals[a].ndim))
                if op.name == "slice1" and self.vals[a].shape[axis] < 2:
                    return
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out = run_step(op, [self.vals[i] for i in args], axis)
        except (TypeError, ValueError):
            return                      # a dtype combination NumPy refuses: not generated
        out = np.asarray(out)
        if out.ndim == 0 or out.size == 0:
            return
        self.steps.append((op, args, axis))
        self.vals.append(out)
        self.exact.append(op.exact and all(self.exact[i] for i in args))
        self.signless = self.signless or op.signless

    def outputs(self):
        """Indices of the values returned: the last one and one earlier value."""
        n = len(self.vals)
        return [n - 1] if n - 1 < len(self.inputs) + 2 else [n - 1, n - 3]

    def describe(self):
        lines = [f"  v{i} = {x.dtype}{list(x.shape)} {np.array2string(x.ravel(), precision=9)}"
                 for i, x in enumerate(self.inputs)]
        for k, (op, args, axis) in enumerate(self.steps):
            extra = f", axis={axis}" if axis is not None else ""
            lines.append(f"  v{len(self.inputs) + k} = {op.name}("
                         f"{', '.join('v%d' % i for i in args)}{extra})")
        return "\n".join(lines)


def run_step(op, args, axis):
    return op.fn(*args, axis) if op.pre == "axis" else op.fn(*args)


def run_program(prog, inputs):
    """All values of `prog` on `inputs` (eagerly on NumPy input, staged under jit)."""
    vals = list(inputs)
    for op, args, axis in prog.steps:
        vals.append(run_step(op, [vals[i] for i in args], axis))
    return vals


def with_new_inputs(prog, rng):
    """`prog` evaluated eagerly on fresh random inputs of the same shapes and dtypes (the
    compiled batch is reused: no recompilation)."""
    inputs = [random_input(rng, x.shape, x.dtype.type) for x in prog.inputs]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        vals = [np.asarray(v) for v in run_program(prog, inputs)]
    clone = object.__new__(Program)
    clone.__dict__.update(prog.__dict__)
    clone.inputs, clone.vals = inputs, vals
    return clone


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

def mismatch(prog, k, got, want):
    """None if `got` (jit) matches `want` (eager) for output index `k`, else a message."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"dtype/shape {got.dtype}{got.shape} != {want.dtype}{want.shape}"
    if want.dtype.kind != "f":
        bad = got != want
    else:
        gn, wn = np.isnan(got), np.isnan(want)
        bad = gn != wn
        both = ~gn & ~wn
        if prog.exact[k]:
            bad |= both & (got != want)
        else:
            # the coarsest float type on the way sets the precision (float32 rounding errors
            # stay float32-sized after a conversion to float64)
            floats = [v for v in prog.vals if v.dtype.kind == "f"]
            eps = max(np.finfo(v.dtype).eps for v in floats)
            finite = [np.abs(v[np.isfinite(v)]).max(initial=0.0) for v in floats]
            scale = max(finite, default=0.0)
            inf = both & (np.isinf(got) | np.isinf(want))
            bad |= inf & (got != want)
            fin = both & ~inf
            with np.errstate(all="ignore"):
                err = np.abs(got.astype(np.float64) - want)
                tol = 16 * eps * np.abs(want).astype(np.float64) + 64 * eps * scale
            bad |= fin & (err > tol)
        if not prog.signless:
            zero = both & (want == 0) & (got == 0)
            bad |= zero & (np.signbit(got) != np.signbit(want))
    if bad.any():
        i = np.argwhere(bad)[0]
        return (f"at {tuple(int(j) for j in i)}: jit {got[tuple(i)]!r} vs eager "
                f"{want[tuple(i)]!r} (exact={prog.exact[k]})\n  jit   {got!r}\n  eager {want!r}")
    return None


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------

BATCHES = 5            # one compilation each (most of the time is Numba compiling)
PER_BATCH = 12
INPUT_SETS = 4         # each compiled batch also runs on fresh random inputs


@pytest.mark.parametrize("batch", range(BATCHES))
def test_jit_matches_eager_on_random_programs(batch):
    rng = np.random.default_rng(20261204 + batch)
    progs = [Program(rng, int(rng.integers(2, 7))) for _ in range(PER_BATCH)]
    progs = [p for p in progs if p.steps]

    def all_programs(*xs):
        out, pos = [], 0
        for p in progs:
            n = len(p.inputs)
            vals = run_program(p, xs[pos:pos + n])
            out.append([vals[i] for i in p.outputs()])
            pos += n
        return out

    f = T.jit(all_programs)
    failures = []
    for s in range(INPUT_SETS):
        runs = progs if s == 0 else [with_new_inputs(p, rng) for p in progs]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = f(*[x for p in runs for x in p.inputs])
        for p, outs in zip(runs, got):
            for k, g in zip(p.outputs(), outs):
                msg = mismatch(p, k, g, p.vals[k])
                if msg:
                    failures.append(f"program (output v{k}):\n{p.describe()}\n{msg}")
    assert len(f.cache_misses) == 0
    assert not failures, f"{len(failures)} program(s) differ under jit:\n\n" + \
        "\n\n".join(failures[:5])
