"""What the backend knows about each primitive, declared by the primitive's rules module.

The code generator (`lowering`, `function`, `loops`, `memory`) and the fusion planner
(`fusion`) know no primitive by name: everything particular to a primitive is declared here,
next to its lowering, by one of

* `register_lowering(name, calls_blas=, aliases_operand=, absorbs_transpose=)`: an opaque
  rule `rule(ctx, eqn)` (see `lowering`'s module docstring for the context it gets);
* `register_pointwise(name, slow_path=)`: a scalar expression, fused into loop nests (see
  `rules_elementwise`); `SlowPath` declares a fast code that is exact only on part of the
  domain;
* `register_view(name, terms=, source=, identity=)`: an index map read in place, never a step;
* `register_reduction(name, init, combine)`: an accumulator fused into loop nests;
* `register_identity(name, when)`: when an equation whose output aval equals its operand's
  is the identity (dropped by `fusion.prepare`);
* `register_inline_call(name, param)`: a call of the closed jaxpr in parameter `param`,
  inlined by `fusion.prepare`;
* `register_zero_identity(name, zero_at)` / `register_keeps_zero(name)`: `x + 0 -> x` and
  the values known to be zero, for `simplify` (run by `fusion.prepare`).

`load_rules()` imports every rules module (they register on import). This module imports
nothing of the backend, so that every other module can import it.
"""
from __future__ import annotations

import importlib

import numpy as np

LOWERINGS = {}          # name -> rule(ctx, eqn)
CALLS_BLAS = set()      # primitives whose lowering calls a threaded library (BLAS, LAPACK)
ALIASES_OPERAND = set()  # primitives whose output is operand 0's storage when it is stored
TRANSPOSE_FOLDS = {}    # name -> absorbs_transpose(eqn, perm, outvars) -> Eqn | None
POINTWISE = {}          # name -> rule(ctx, *arg_exprs, **params) -> expr (or list)
SLOW_PATHS = {}         # name -> SlowPath
VIEWS = {}              # name -> ViewRule
REDUCTIONS = {}         # name -> ReductionRule
IDENTITIES = {}         # name -> when(eqn) -> bool
INLINE_CALLS = {}       # name -> name of the parameter holding the called ClosedJaxpr
ZERO_IDENTITIES = {}    # name -> positions where a zero operand makes it return the other
KEEPS_ZERO = set()      # primitives whose one output is zero wherever operand 0 is zero


def register_lowering(name, calls_blas=False, aliases_operand=False, absorbs_transpose=None):
    """Decorator: `rule(ctx, eqn)` lowers equations of primitive `name` (see `lowering`).

    `calls_blas`: the rule calls BLAS/LAPACK, whose own threads rule out `prange` loops in
    the same function. `aliases_operand`: the rule makes its output operand 0's storage
    (`ctx.alias_out(0, 0)`) when that operand is stored as it stands, so the memory plan keeps
    the two in one buffer. `absorbs_transpose(eqn, perm, outvars)`: when the equation's only
    reader is a transpose by `perm`, an equivalent equation writing the transposed result
    into `outvars` directly (e.g. a matmul with its operands swapped), or None."""
    def deco(fn):
        LOWERINGS[name] = fn
        if calls_blas:
            CALLS_BLAS.add(name)
        if aliases_operand:
            ALIASES_OPERAND.add(name)
        if absorbs_transpose is not None:
            TRANSPOSE_FOLDS[name] = absorbs_transpose
        return fn
    return deco


class SlowPath:
    """A pointwise rule whose fast scalar code is exact only on part of the domain, for the
    output dtypes `dtypes`. A fused nest holding such a member first runs a pass that only
    adds up `count(ctx, *arg_exprs)` (source of 1 for arguments that need the exact code,
    else 0) over the nest, then runs one of two versions of its loop: the rules see
    `ctx.exact` True in the version taken when the count is not zero."""

    def __init__(self, dtypes, count):
        self.dtypes = frozenset(np.dtype(d) for d in dtypes)
        self.count = count

    def applies(self, eqn):
        return eqn.outvars[0].aval.dtype in self.dtypes


def register_pointwise(name, slow_path=None):
    """Decorator: `rule(ctx, *arg_exprs, **params) -> expr` (or a list of expressions, one per
    output) is the scalar code of elementwise primitive `name` (see `rules_elementwise`).
    `slow_path`: a `SlowPath` when the rule's fast code is exact only on part of the domain."""
    def deco(fn):
        POINTWISE[name] = fn
        if slow_path is not None:
            SLOW_PATHS[name] = slow_path
        return fn
    return deco


def slow_path(eqn):
    """The `SlowPath` that applies to pointwise equation `eqn`, or None."""
    sp = SLOW_PATHS.get(eqn.prim.name)
    return sp if sp is not None and sp.applies(eqn) else None


class ViewRule:
    __slots__ = ("terms", "source", "of_iota")

    def __init__(self, terms, source, of_iota=None):
        self.terms, self.source, self.of_iota = terms, source, of_iota


def register_view(name, terms=None, source=None, identity=None, of_iota=None):
    """Equations of primitive `name` (one output) are index maps: their readers read the
    operand in place, so they are neither steps nor copies.

    `terms(eqn)`: the map of the output index onto operand 0, one `(c, d, a)` per operand
    dim: the operand's index there is `c + a * out_index[d]` (`d` None: the constant `c`);
    or None when this equation is not a view (e.g. a reshape that moves elements, which an
    opaque rule then lowers). `source(eqn)`: for a view of no operand (iota), its
    `fusion.View`. `of_iota(eqn, view)`: the `fusion.View` of this equation applied to an
    iota (`view`) where `terms` gives None (e.g. any reshape of a row-major counter), or None.
    `identity(eqn)`: see `register_identity`."""
    if (terms is None) == (source is None):
        raise TypeError(f"register_view({name!r}): give exactly one of terms= and source=")
    VIEWS[name] = ViewRule(terms, source, of_iota)
    if identity is not None:
        register_identity(name, identity)


class ReductionRule:
    __slots__ = ("init", "combine", "add_apart")

    def __init__(self, init, combine, add_apart=False):
        self.init, self.combine, self.add_apart = init, combine, add_apart


def register_reduction(name, init, combine, add_apart=False):
    """Equations of primitive `name` (operand 0 reduced over the dims in parameter `axes`)
    are fused into loop nests as an accumulator. `init(mod, dtype)`: source of the identity;
    `combine(mod, acc, x, dtype)`: source of accumulator `acc` combined with element `x`;
    `mod.lit(value, dtype)` and `mod.kernel(name)` give literals and kernels.

    `add_apart`: for floats, the combine is a chain that kept every other statement of its
    loop scalar; the loop-nest writer then accumulates it in a loop of its own after the
    row's loop (float sums combine through kernels.add_reassoc, which LLVM may reorder and
    so vectorises)."""
    REDUCTIONS[name] = ReductionRule(init, combine, add_apart)


def register_identity(name, when):
    """`when(eqn)`: whether an equation of primitive `name` whose output aval equals its
    operand's is the identity (`fusion.prepare` then drops it)."""
    IDENTITIES[name] = when


def register_zero_identity(name, zero_at):
    """A binary primitive that returns its other operand unchanged when the operand at one of
    the positions `zero_at` is zero everywhere (`add`: (0, 1); `sub`: (1,)). `simplify` then
    drops its equations whose result has that other operand's shape and dtype."""
    ZERO_IDENTITIES[name] = tuple(zero_at)


def register_keeps_zero(name):
    """Equations of primitive `name` (one output) give zeros when operand 0 is zeros
    (broadcasts, reshapes, conversions): `simplify` follows zeros through them."""
    KEEPS_ZERO.add(name)


def register_inline_call(name, param="jaxpr"):
    """Make the backend inline primitive `name` (a call of the ClosedJaxpr in `param`)."""
    INLINE_CALLS[name] = param


# The rules modules, in registration order (rules_complex wraps rules registered before it).
RULE_MODULES = ("rules_elementwise", "rules_indexing", "rules_linalg", "rules_reductions",
                 "rules_shape", "rules_control_flow", "rules_conv", "rules_random",
                 "rules_decompositions", "rules_special", "rules_debug", "rules_complex")
_loaded = []


def load_rules():
    """Import every rules module once (each registers its primitives on import)."""
    if not _loaded:
        for m in RULE_MODULES:
            importlib.import_module(f".{m}", __package__)
        _loaded.append(True)
