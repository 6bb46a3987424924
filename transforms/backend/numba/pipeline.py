"""A shorter Numba compiler pipeline for generated functions.

Numba's default nopython pipeline runs passes written for arbitrary user code. Two of them
cost a noticeable share of a generated program's compile and do nothing for it:

* ``InlineClosureLikes`` inlines closures, lambdas and comprehensions, then re-runs the IR
  post-processor (liveness over every block) -- generated functions have none;
* ``NopythonRewrites`` runs the post-inference rewrites (whole-array expressions fused into
  one loop, ``np.array`` of constant lists, string-literal indices) after another liveness
  pass -- generated code indexes scalars in explicit loops.

Measured on the CNN training step's generated module (kernels already cached, CPU time of the
compile, same machine and run): 8.3 s with the default pipeline, 6.7 s without these passes
(and the no-op literal-unrolling ones); the MLP step 2.34 s -> 2.14 s. The passes are
dropped only for a function whose code holds no nested code object (no closure, lambda,
comprehension or generator), so Numba's behaviour is unchanged for anything that could need
them; everything else (SSA, type inference, dead-branch pruning, the pre-inference rewrites
that specialise ``x ** 2``, ``with objmode``) runs as before.
"""
from __future__ import annotations

import types

from numba.core import compiler

_SKIPPED = frozenset({"InlineClosureLikes", "NopythonRewrites", "FindLiterallyCalls",
                      "LiteralUnroll", "MakeFunctionToJitFunction"})


class GeneratedCodePipeline(compiler.CompilerBase):
    """Numba's nopython pipeline minus the passes in `_SKIPPED` (see the module docstring)."""

    def define_pipelines(self):
        pm = compiler.DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.passes = [(p, d) for p, d in pm.passes if p.__name__ not in _SKIPPED]
        pm._finalized = False
        pm.finalize()
        return [pm]


def pipeline_for(py_func):
    """The pipeline class for generated function `py_func`, or None (Numba's default) when
    its code has nested code objects that the skipped passes would handle."""
    code = getattr(py_func, "__code__", None)
    if code is None or any(isinstance(c, types.CodeType) for c in code.co_consts):
        return None
    return GeneratedCodePipeline
