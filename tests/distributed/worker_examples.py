"""The model-parallel and parameter-server examples in one launch (mpiexec -n 2): each asserts,
after every step, that its parameters equal the dense / data-parallel reference."""
import importlib.util
import os

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
ps = load("parameter_server").main(["--fast"])
assert ps["test_accuracy"] > 0.3, ps["test_accuracy"]
dist.barrier()
if dist.process_index() == 0:
    print("ALL OK", flush=True)
