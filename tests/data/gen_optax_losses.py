"""Regenerate optax_losses.json (needs optax; not run by the test suite).

    python tests/data/gen_optax_losses.py

Evaluates optax.losses.<name>(*args, **kwargs) for each case of optax_loss_cases.cases.
"""
import json
import os
import sys

import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from optax_loss_cases import cases  # noqa: E402

with open(os.path.join(HERE, "optax_losses.json"), "w") as f:
    f.write('{"generator": %s, "cases": [\n' % json.dumps(f"optax {optax.__version__}"))
    rows = []
    for name, args, kwargs in cases:
        v = np.asarray(getattr(optax.losses, name)(*args, **kwargs))
        rows.append(json.dumps({"name": name, "shape": list(v.shape), "dtype": str(v.dtype),
                                "values": [None if np.isnan(x) else float(x)
                                           for x in v.ravel().tolist()]}))
    f.write(",\n".join(rows))
    f.write("\n]}\n")
