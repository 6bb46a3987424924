"""The model-parallel and parameter-server examples in one launch (mpiexec -n 2): each asserts,
after every step, that its parameters equal the dense / data-parallel reference."""
import importlib.util
import os

import numpy as np

from transforms import distributed as dist

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"_ex_{name}", os.path.join(EXAMPLES,
                                                                             f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


out = load("model_parallel").main(["--fast"])
for k in ("tensor_losses", "pipeline_losses"):
    assert out[k][-1] < out[k][0], (k, out[k])
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
