"""The transformations as interpreters of traced programs: `jvp` (forward mode), `transpose`
(reverse mode from linearised programs), `partial_eval` (tracing to a jaxpr) and `batching`
(`vmap`). Internal: use them through `transforms.grad`, `vmap`, `make_jaxpr`, ..."""
