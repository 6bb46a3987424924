"""Run under `mpiexec -n 2` by tests/test_distributed.py after a launch of
examples/data_parallel.py that failed at a step: resume it from its checkpoints, then run the
same training uninterrupted, in this one launch (start-up dominates a launch). Prints one
RESULT json line per run (process 0)."""
import importlib.util
import json
import os
import sys

from transforms import distributed as dist

crash_dir, full_dir = sys.argv[1], sys.argv[2]
script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples", "data_parallel.py")
spec = importlib.util.spec_from_file_location("_example_data_parallel", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
for name, argv in (("resumed", ["--checkpoint-dir", crash_dir, "--save-every", "4", "--resume"]),
                   ("full", ["--checkpoint-dir", full_dir])):
    out = mod.main(["--fast"] + argv)
    if dist.process_index() == 0:
        print("RESULT " + json.dumps({"run": name, "losses": out["losses"],
                                      "test_accuracy": out["test_accuracy"],
                                      "processes": out["processes"],
                                      "digest": mod.digest(out["params"]).tobytes().hex()}),
              flush=True)
