"""Regenerate optax_optimizers.json (needs optax; not run by the test suite).

    python tests/data/gen_optax_optimizers.py

For each case of optax_optimizer_cases.CASES: three optax updates on the float32 tree
`tree0()` with gradients `grads(i)`; records every update and the parameters after it.
"""
import json
import os
import sys

import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from optax_optimizer_cases import CASES, grads, tree0  # noqa: E402


def run(name, args, kwargs):
    opt = getattr(optax, name)(*args, **kwargs)
    p = tree0()
    state = opt.init(p)
    steps = []
    for i in range(3):
        u, state = opt.update(grads(i), state, p)
        p = optax.apply_updates(p, u)
        steps.append({"updates": {k: np.asarray(v).tolist() for k, v in u.items()},
                      "params": {k: np.asarray(v).tolist() for k, v in p.items()}})
    return steps


with open(os.path.join(HERE, "optax_optimizers.json"), "w") as f:
    f.write('{"generator": %s, "cases": [\n' % json.dumps(f"optax {optax.__version__}"))
    f.write(",\n".join(json.dumps({"name": n, "steps": run(n, a, k)}) for n, a, k in CASES))
    f.write("\n]}\n")
