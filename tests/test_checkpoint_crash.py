"""Crash safety of fnn.checkpoint.save: SIGKILL a writer at random moments.

A child process keeps overwriting one checkpoint (200 MB of float32 arrays, every value equal to
the version number) and reports each completed save on stdout.  The parent kills it after a
seeded random delay - counted from the start of the child in even rounds, and from its first
completed save in odd rounds (so that the checkpoint surely moves on, whatever the disk speed) -
then restores the file: it must hold exactly one complete version - the
last one reported, or the one being saved when the kill landed after the rename - with every
value intact.  Leftover temp files of the killed writer must be recognised and removed.
"""
from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fnn import checkpoint as ckpt
from fnn.checkpoint import format as fmt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAF_MB = 50
N_LEAVES = 4          # 4 x 50 MB = 200 MB per checkpoint
KILLS = 10

CHILD = r"""
import sys, time
import numpy as np
from fnn import checkpoint as ckpt

path, version = sys.argv[1], int(sys.argv[2])
n = {leaf_mb} * 2**20 // 4
arrays = [np.empty(n, np.float32) for _ in range({n_leaves})]
deadline = time.monotonic() + 120  # never outlive a broken parent
while time.monotonic() < deadline:
    for a in arrays:
        a.fill(version)
    tree = {{"params": {{f"w{{i}}": a for i, a in enumerate(arrays)}},
             "small": [np.full(3, version, np.int64), (version, None)], "version": version}}
    ckpt.save(path, tree, metadata={{"version": version}})
    print(version, flush=True)
    version += 1
""".format(leaf_mb=LEAF_MB, n_leaves=N_LEAVES)


def _verify(path) -> int:
    """Restore `path`; check it is one complete version; return that version."""
    tree = ckpt.restore(path)
    v = tree["version"]
    assert type(v) is int
    assert ckpt.load_metadata(path) == {"version": v}
    ws = tree["params"]
    assert sorted(ws) == [f"w{i}" for i in range(N_LEAVES)]
    for a in ws.values():
        assert a.dtype == np.float32 and a.shape == (LEAF_MB * 2**20 // 4,)
        # min and max both equal to v  <=>  every value is v
        assert a.min() == v and a.max() == v, f"torn checkpoint: expected all {v}"
    np.testing.assert_array_equal(tree["small"][0], np.full(3, v, np.int64))
    assert tree["small"][1] == (v, None)
    return v


def test_sigkill_during_save_leaves_old_or_new(tmp_path):
    work = tmp_path / "crash"
    work.mkdir()
    path = str(work / "model.safetensors")
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    rng = random.Random(20240601)
    child = None
    try:
        n = LEAF_MB * 2**20 // 4
        ckpt.save(path, {"params": {f"w{i}": np.zeros(n, np.float32) for i in range(N_LEAVES)},
                         "small": [np.zeros(3, np.int64), (0, None)], "version": 0},
                  metadata={"version": 0})
        current = _verify(path)
        killed_mid_save = changed = 0
        for round_ in range(KILLS):
            child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(current + 1)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     cwd=ROOT)
            first = b""
            if round_ % 2:
                ready, _, _ = select.select([child.stdout], [], [], 60)
                if ready:  # raw read: nothing may stay in a buffer that communicate() skips
                    first = os.read(child.stdout.fileno(), 4096)
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                time.sleep(rng.uniform(0.1, 2.0))
            if child.poll() is not None:
                out, err = child.communicate()
                pytest.fail(f"writer exited early ({child.returncode}): {err.decode()[-2000:]}")
            os.kill(child.pid, signal.SIGKILL)
            out, _ = child.communicate()
            assert child.returncode == -signal.SIGKILL
            reported = [int(x) for x in (first + out).split()]
            last = reported[-1] if reported else current
            leftovers = [f for f in os.listdir(work) if fmt.temp_file_info(f)]
            assert all(fmt.temp_file_info(f)[1] == child.pid for f in leftovers)
            child = None

            v = _verify(path)
            # old (last completed) or new (renamed into place, but not yet reported)
            assert v in (last, last + 1), (v, last, reported)
            changed += v != current
            current = v

            killed_mid_save += bool(leftovers)
            removed = ckpt.remove_stale_temp_files(work)
            assert len(removed) == len(leftovers)
            assert os.listdir(work) == ["model.safetensors"]
        print(f"{KILLS} kills: {killed_mid_save} during a save, version advanced {changed} "
              f"times, final version {current}")
        assert changed >= KILLS // 2, "the checkpoint did not move on after completed saves"
        assert killed_mid_save >= 2, "no kill landed in the middle of a save"
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.communicate()
        shutil.rmtree(work, ignore_errors=True)
