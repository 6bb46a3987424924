"""Regenerate optax_schedules.json (needs optax; not run by the test suite).

    python tests/data/gen_optax_schedules.py

Each case of optax_schedule_cases.CASES is evaluated by optax at the int32 steps 0..132; the
values are optax's float32 results written as decimal strings that round-trip exactly.
"""
import copy
import json
import os
import sys

import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from optax_schedule_cases import CASES  # noqa: E402

out = {"generator": f"optax {optax.__version__}", "steps": list(range(133)), "cases": []}
for name, kwargs in CASES:
    sched = getattr(optax.schedules, name)(**copy.deepcopy(kwargs))
    vals = [float(np.asarray(sched(np.int32(s)))) for s in range(133)]
    out["cases"].append({"name": name, "values": vals})
with open(os.path.join(HERE, "optax_schedules.json"), "w") as f:
    f.write('{"generator": %s, "steps": %s, "cases": [\n' % (
        json.dumps(out["generator"]), json.dumps(out["steps"])))
    f.write(",\n".join(json.dumps(c) for c in out["cases"]))
    f.write("\n]}\n")
