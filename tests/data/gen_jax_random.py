"""Regenerate jax_random.json (needs jax; not run by the test suite).

    python tests/data/gen_jax_random.py

Records jax.random.<fn>(PRNGKey(seed), ...) for every case of jax_random_cases.CASES and
seed of SEEDS, with JAX's defaults (x64 disabled, threefry partitionable), on x86-64 CPU.
Floats are stored as their uint32 bit patterns.
"""
import json
import os
import sys

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from jax_random_cases import CASES, SEEDS  # noqa: E402

out = {"generator": f"jax {jax.__version__}", "seeds": SEEDS, "cases": {}}
for name, (fn, args, kwargs) in CASES.items():
    rows = []
    for seed in SEEDS:
        v = np.asarray(getattr(jax.random, fn)(jax.random.PRNGKey(seed), *args, **kwargs))
        if v.dtype == np.float32:
            v = v.view(np.uint32)
        rows.append(v.astype(np.int64).tolist())
    out["cases"][name] = {"dtype": str(np.asarray(
        getattr(jax.random, fn)(jax.random.PRNGKey(0), *args, **kwargs)).dtype), "values": rows}
with open(os.path.join(HERE, "jax_random.json"), "w") as f:
    f.write('{"generator": %s, "seeds": %s, "cases": {\n' % (
        json.dumps(out["generator"]), json.dumps(SEEDS)))
    f.write(",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in out["cases"].items()))
    f.write("\n}}\n")
