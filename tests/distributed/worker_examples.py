"""The model-parallel and parameter-server examples in one launch (mpiexec -n 2): each asserts,
after every step, that its parameters equal the dense / data-parallel reference."""
import importlib.util
import os

import numpy as np

import fnn
import transforms as T
from transforms import distributed as dist
from transforms import lax, random
from transforms.distributed import _runtime as R

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"_ex_{name}", os.path.join(EXAMPLES,
                                                                             f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mp = load("model_parallel")
out = mp.main(["--fast"])
for k in ("tensor_losses", "pipeline_losses"):
    assert out[k][-1] < out[k][0], (k, out[k])

# the tensor-parallel MLP (Megatron's f/g): gradients equal the unsplit model's, equal the
# one-process vmap simulation's, and a step makes exactly ONE Allreduce (counted, not timed);
# the plain psum (transposed to a psum) with a psum for the replicated bias makes two
rank, n = dist.process_index(), dist.process_count()
full = mp.dense_init(random.key(3), [64, 32, 10])
rng = np.random.default_rng(0)
x, y = rng.normal(size=(16, 64)).astype(np.float32), rng.integers(0, 10, 16)
want = mp.tensor_shard(T.grad(mp.dense_loss)(full, x, y), rank, n)
stacked = T.tree.map(lambda *a: np.stack(a), *[mp.tensor_shard(full, r, n) for r in range(n)])
simulated = T.vmap(T.grad(mp.tensor_loss), in_axes=(0, None, None), axis_name="model")(
    stacked, x, y)


def plain_loss(p, x, y):
    logits = lax.psum(fnn.relu(x @ p["w1"] + p["b1"]) @ p["w2"], "model") + p["b2"]
    return fnn.losses.cross_entropy(logits, y) / n


def plain_grad(p, x, y):
    g = T.grad(plain_loss)(p, x, y)
    g["b2"] = lax.psum(g["b2"], "model")
    return g


with dist.Mesh({"model": n}):
    p = mp.tensor_shard(full, rank, n)
    for fn, per_step in ((T.jit(T.value_and_grad(mp.tensor_loss)), 1),
                         (T.jit(plain_grad), 2)):
        fn(p, x, y)                                  # compiled (and the first-call checks)
        before = R.COUNTS["reductions"]
        for _ in range(3):
            res = fn(p, x, y)
        assert R.COUNTS["reductions"] - before == 3 * per_step, (per_step, R.COUNTS)
        g = res[1] if per_step == 1 else res
        for k in want:
            assert np.allclose(g[k], want[k], rtol=1e-5, atol=1e-6), (k, rank)
            assert np.allclose(g[k], simulated[k][rank], rtol=1e-5, atol=1e-6), (k, rank)
    loss = T.jit(mp.tensor_loss)(p, x, y)
    assert np.isclose(float(loss), float(mp.dense_loss(full, x, y)), rtol=1e-6)
server = load("parameter_server")
ps = server.main(["--fast"])
assert ps["test_accuracy"] > 0.3, ps["test_accuracy"]
# asynchronous, staleness bound 2: the one worker pulls every 3 pushes, so gradients really are
# up to 2 updates stale; the same number of updates reaches the synchronous accuracy band
asy = server.main(["--fast", "--async", "2"])
assert asy["updates"] == 5 and asy["dropped"] == 0 and asy["max_staleness"] == 2, asy
assert abs(asy["test_accuracy"] - ps["test_accuracy"]) < 0.1, (asy, ps["test_accuracy"])
# a worker joining with another model: the same clear error on every process, naming the path
try:
    server.main(["--fast", "--worker-hidden", "32"])
    raise AssertionError("no error")
except ValueError as e:
    assert "['dense_0']['b'] is float32[" in str(e), e
# recv_any: whoever sends first, with its process index
if dist.process_index() == 1:
    dist.send({"v": np.arange(3.0)}, dest=0, tag=5)
elif dist.process_index() == 0:
    src, got = dist.recv_any({"v": np.zeros(3)}, tag=5)
    assert src == 1 and got["v"].tolist() == [0.0, 1.0, 2.0]
dist.barrier()
if dist.process_index() == 0:
    print("ALL OK", flush=True)
