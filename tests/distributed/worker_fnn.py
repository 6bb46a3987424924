"""fnn under several processes (run by tests/test_distributed.py under mpiexec -n 2):
sharded batches, one-writer checkpoints that are committed when save returns on every process."""
import os
import sys

import numpy as np

import fnn
from fnn import checkpoint
from transforms import distributed as dist
from transforms import random

rank, n = dist.process_index(), dist.process_count()
directory = sys.argv[1]

# sharded batches: the shares of every global batch, gathered, are the global batch
x = np.arange(23)
key = random.key(3)
for drop_last in (True, False):
    mine = list(fnn.data.batches(x, 6, key=key, drop_last=drop_last, shard=(rank, n)))
    glob = list(fnn.data.batches(x, 6, key=key, drop_last=drop_last))
    assert len(mine) == len(glob)
    for m, g in zip(mine, glob):
        everyone = [dist.broadcast(np.pad(m, (0, 6 - m.size), constant_values=-1), root=r)
                    for r in range(n)]
        joined = np.concatenate([e[e >= 0] for e in everyone])
        assert np.array_equal(joined, g), (joined, g)

# checkpoints: a replicated tree written once, committed before save returns anywhere
tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int64(4)}
path = os.path.join(directory, "ckpt.safetensors")
writes = []
real = checkpoint.format.save_file


def counting(*a, **k):
    writes.append(1)
    return real(*a, **k)


checkpoint.format.save_file = counting
assert checkpoint.save(path, tree) == path
assert os.path.exists(path)                        # committed on every process
back = checkpoint.restore(path, target=tree)
assert np.array_equal(back["w"], tree["w"])
mgr = checkpoint.CheckpointManager(os.path.join(directory, "run"), max_to_keep=2)
for step in range(4):
    p = mgr.save(step, tree, metrics={"loss": 1.0 / (step + 1)})
    assert os.path.exists(p)
    # committed before save returns here; process 0 may already be writing the next step
    # (it does not wait for the others after its broadcast), so later steps may exist too
    assert mgr.latest_step() >= step, (rank, step, mgr.latest_step(),
                                       sorted(os.listdir(mgr.directory)))
assert mgr.all_steps() == [2, 3], mgr.all_steps()
assert np.array_equal(mgr.restore(target=tree)["w"], tree["w"])
counts = [int(dist.broadcast(np.array([len(writes)]), root=r)[0]) for r in range(n)]
assert counts == [5] + [0] * (n - 1), counts             # one writer: process 0
# an error while writing on process 0 reaches every process (none hangs)
try:
    checkpoint.save(os.path.join(directory, "no", "such", "dir.safetensors"), tree)
    raise AssertionError("no error")
except (OSError, RuntimeError) as e:
    assert rank == 0 or "process 0" in str(e), e

# a sharded (model-parallel) tree: each process its own part, one manifest commits them
part = {"w": np.full((2, rank + 1), rank, np.float32), "rank": np.int64(rank)}
sdir = os.path.join(directory, "sharded")
assert checkpoint.save_sharded(sdir, part, metadata={"step": 3}) == os.path.abspath(sdir)
assert sorted(os.listdir(sdir)) == ["manifest.json"] + [
    f"shard_{i:05d}-of-{n:05d}.safetensors" for i in range(n)]
assert checkpoint.read_manifest(sdir)["metadata"] == {"step": 3}
back = checkpoint.restore_sharded(sdir, target=part)
assert np.array_equal(back["w"], part["w"]) and int(back["rank"]) == rank
other = checkpoint.restore_sharded(sdir, shard=n - 1)          # any part, by index
assert other["w"].shape == (2, n)
# replaced atomically: a second save of new values, then the old ones are gone
part2 = {"w": part["w"] + 10, "rank": np.int64(rank)}
checkpoint.save_sharded(sdir, part2)
assert np.array_equal(checkpoint.restore_sharded(sdir, target=part)["w"], part2["w"])
# a shard that cannot be written (process 1's part has an unsupported leaf): raised on every
# process, naming it, and the committed checkpoint is left as it was
bad = part2 if rank == 0 else {"w": part2["w"], "rank": object()}
try:
    checkpoint.save_sharded(sdir, bad)
    raise AssertionError("no error")
except RuntimeError as e:
    assert "writing a shard failed on process 1" in str(e), e
assert np.array_equal(checkpoint.restore_sharded(sdir, target=part)["w"], part2["w"])
dist.barrier()
assert not [f for f in os.listdir(directory) if f.startswith(".sharded")], os.listdir(directory)
dist.barrier()
if rank == 0:
    print("ALL OK", flush=True)
