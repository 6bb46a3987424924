"""shard_map programs written once against a JAX-like namespace, run with JAX (8 fake CPU
devices, in a subprocess) and with transforms: tests/test_shard_map.py compares them."""
import functools

import numpy as np


def programs(jax, jnp):
    """name -> (function, args) on a 4 x 2 mesh ('x', 'y')."""
    lax, P, shard_map = jax.lax, jax.P, jax.shard_map
    # Auto axes: JAX reshards plain arrays to the in_specs (Explicit axes would require them
    # placed by device_put first; here placement is a no-op either way)
    mesh = jax.make_mesh((4, 2), ("x", "y"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 6)).astype(np.float32)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    v = rng.standard_normal((16,)).astype(np.float32)
    out = {}

    def sm(in_specs, out_specs, **kw):
        return functools.partial(shard_map, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                                 **kw)

    @sm(P("x", "y"), P("x", "y"))
    def elementwise(x):
        return jnp.sin(x) * 2.0 + 1.0
    out["elementwise"] = (elementwise, (a,))

    # the tutorial's sharded matmul: contraction split over y, partial sums combined
    @sm((P("x", "y"), P("y", None)), P("x", None))
    def matmul(x, w):
        return lax.psum(x @ w, "y")
    out["matmul"] = (matmul, (a, w[:6]))

    @sm(P(("x", "y")), P())
    def total(x):
        return lax.psum(jnp.sum(x), ("x", "y"))
    out["total"] = (total, (v,))

    # all_gather's result is the same on every device, but JAX's static check does not know
    # it (it wants all_gather_invariant): check_vma=False returns one device's copy
    @sm(P("x"), P(), check_vma=False)
    def gathered(x):
        return lax.all_gather(x, "x", tiled=True)
    out["gathered"] = (gathered, (v,))

    @sm(P("x"), P("x"))
    def ring(x):
        return lax.ppermute(x, "x", [(i, (i + 1) % 4) for i in range(4)])
    out["ring"] = (ring, (v,))

    @sm(P("x", "y"), P("x", "y"))
    def where_am_i(x):
        return x + 10.0 * lax.axis_index("x") + 100.0 * lax.axis_index("y")
    out["where_am_i"] = (where_am_i, (a,))

    @sm(P(None, "y"), P(None, "y"))
    def replicated_rows(x):
        return lax.pmean(x, "x") * 3.0
    out["replicated_rows"] = (replicated_rows, (a,))

    def loss(w, x):
        y = sm((P(None, None), P("x", None)), P("x", None))(lambda w, x: jnp.tanh(x @ w))(w, x)
        return jnp.mean(y ** 2)
    out["grad"] = (jax.jit(jax.grad(loss)), (w, a[:, :6]))

    out["jit_matmul"] = (jax.jit(matmul), (a, w[:6]))

    @sm(P("x"), P("x"), axis_names={"x"})
    def partial_manual(x):
        return x - lax.pmean(x, "x")
    out["partial_manual"] = (partial_manual, (v,))
    return out
