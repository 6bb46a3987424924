"""shard_map and the sharding names: JAX's values on a simulated mesh (the same programs run
under JAX with 8 fake CPU devices in a subprocess), the specs' checks and errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.sharding import Mesh, NamedSharding, PartitionSpec

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _shard_map_programs import programs  # noqa: E402

_JAX_SCRIPT = """
import os, sys, json
import numpy as np
import jax, jax.numpy as jnp
sys.path.insert(0, {here!r})
from _shard_map_programs import programs
res = {{}}
for name, (f, args) in programs(jax, jnp).items():
    res[name] = [np.asarray(x).tolist() for x in jax.tree.leaves(f(*args))]
print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def jax_results():
    pytest.importorskip("jax")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu", JAX_ENABLE_X64="0")
    p = subprocess.run([sys.executable, "-c", _JAX_SCRIPT.format(here=HERE)], env=env,
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"JAX with 8 fake devices did not run here: {p.stderr[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


OURS = programs(T, tnp)


@pytest.mark.parametrize("name", sorted(OURS))
def test_same_values_as_jax_on_an_8_device_mesh(name, jax_results):
    f, args = OURS[name]
    ours = [np.asarray(x) for x in T.tree_util.tree_leaves(f(*args))]
    theirs = jax_results[name]
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, np.asarray(t, dtype=o.dtype), rtol=2e-5, atol=2e-6,
                                   err_msg=name)


def test_hand_values_without_jax():
    f, (a, w) = OURS["matmul"]
    np.testing.assert_allclose(f(a, w), a @ w, rtol=1e-5, atol=1e-5)
    f, (v,) = OURS["ring"]
    np.testing.assert_array_equal(f(v), np.roll(v, 4))       # 4 blocks of 4 move one block on
    f, (v,) = OURS["gathered"]
    np.testing.assert_array_equal(f(v), v)
    f, (a,) = OURS["where_am_i"]
    blocks = a.copy()
    for i in range(4):
        for j in range(2):
            blocks[2 * i:2 * i + 2, 3 * j:3 * j + 3] += 10 * i + 100 * j
    np.testing.assert_allclose(f(a), blocks)


def test_gradient_matches_finite_differences_and_the_unsharded_function():
    f, (w, x) = OURS["grad"]
    g = f(w, x)
    want = T.grad(lambda w: tnp.mean(tnp.tanh(x @ w) ** 2))(w)
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    mesh = T.make_mesh((4,), ("x",))
    P = T.P

    def loss(w):
        y = T.shard_map(lambda w, x: tnp.tanh(x @ w), mesh=mesh,
                        in_specs=(P(), P("x")), out_specs=P("x"))(w, x64)
        return tnp.mean(y ** 2)
    eps, i, j = 1e-6, 2, 1
    d = np.zeros_like(w64)
    d[i, j] = eps
    fd = (loss(w64 + d) - loss(w64 - d)) / (2 * eps)
    assert float(T.grad(loss)(w64)[i, j]) == pytest.approx(float(fd), rel=1e-6, abs=1e-9)


def test_vmap_of_shard_map_equals_a_loop():
    mesh = T.make_mesh((2,), ("x",))
    f = T.shard_map(lambda x: x - lax.pmean(x, "x"), mesh=mesh, in_specs=T.P("x"),
                    out_specs=T.P("x"))
    xs = np.arange(24.0).reshape(3, 8)
    np.testing.assert_allclose(T.vmap(f)(xs), np.stack([f(x) for x in xs]))


def test_output_varying_along_an_unnamed_axis_is_an_error_unless_check_vma_is_off():
    mesh = T.make_mesh((2,), ("x",))
    x = np.arange(4.0)
    bad = T.shard_map(lambda x: x * 2, mesh=mesh, in_specs=T.P("x"), out_specs=T.P())
    with pytest.raises(ValueError, match="varies along a mesh axis"):
        bad(x)
    first = T.shard_map(lambda x: x * 2, mesh=mesh, in_specs=T.P("x"), out_specs=T.P(),
                        check_vma=False)
    np.testing.assert_array_equal(first(x), [0.0, 2.0])      # the first device's block


def test_spec_errors_name_the_argument_axis_and_sizes():
    mesh = T.make_mesh((4,), ("x",))
    f = T.shard_map(lambda x: x, mesh=mesh, in_specs=T.P("x"), out_specs=T.P("x"))
    with pytest.raises(ValueError, match=r"args\[0\].*dimension 0 of size 6.*divisible by 4"):
        f(np.zeros(6))
    g = T.shard_map(lambda x: x, mesh=mesh, in_specs=T.P("z"), out_specs=T.P("x"))
    with pytest.raises(ValueError, match="axis 'z'"):
        g(np.zeros(4))
    h = T.shard_map(lambda x: x, in_specs=T.P("x"), out_specs=T.P("x"))
    with pytest.raises(ValueError, match="no mesh"):
        h(np.zeros(4))
    with T.set_mesh(mesh):
        np.testing.assert_array_equal(h(np.arange(4.0)), np.arange(4.0))
    with mesh:
        np.testing.assert_array_equal(h(np.arange(4.0)), np.arange(4.0))
    with pytest.raises(TypeError, match="in_specs is required"):
        T.shard_map(lambda x: x, mesh=mesh, out_specs=T.P())(np.zeros(4))
    with pytest.raises(ValueError, match="rank 1"):
        T.shard_map(lambda x: x, mesh=mesh, in_specs=T.P("x", None), out_specs=T.P())(
            np.zeros(4))


def test_partition_spec_mesh_and_named_sharding_behave_as_jax():
    P = PartitionSpec
    assert P("x", None) == P("x", None) and hash(P("x")) == hash(P("x"))
    assert P(("x",)) == P("x") and repr(P(("x", "y"), None)) == "P(('x', 'y'), None)"
    assert T.tree_util.tree_leaves(P("x", None)) == [P("x", None)]     # a leaf, not a tuple
    mesh = T.make_mesh((4, 2), ("x", "y"))
    assert isinstance(mesh, Mesh) and mesh.size == 8 and mesh.axis_names == ("x", "y")
    assert dict(mesh.shape) == {"x": 4, "y": 2} and mesh.devices.shape == (4, 2)
    s = NamedSharding(mesh, P("x", "y"))
    assert s.shard_shape((8, 6)) == (2, 3) and not s.is_fully_replicated
    assert NamedSharding(mesh, P()).is_fully_replicated and s.num_devices == 8
    with pytest.raises(ValueError, match="no axis named 'q'"):
        NamedSharding(mesh, P("q"))
    x = np.ones((8, 6), np.float32)
    assert T.device_put(x, s) is not None and np.array_equal(T.device_put(x, s), x)
    assert T.reshard(x, s) is x and lax.with_sharding_constraint(x, s) is x
    from transforms.experimental.shard_map import shard_map as old_home
    assert old_home is T.shard_map
