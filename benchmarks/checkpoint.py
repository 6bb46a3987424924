"""Benchmark fnn.checkpoint save/restore throughput against the disk's raw speed.

Usage::

    python benchmarks/checkpoint.py [--mb 500] [--leaves 8] [--repeats 5] [--dir DIR]

For a float32 tree of about ``--mb`` megabytes it measures, in one run and on the same
directory:

* raw disk write: the same number of bytes written from one numpy buffer, then fsync
  (``dd``-style), and raw disk read: reading them back into a preallocated, reused buffer
  ("raw read") and into a freshly allocated one ("raw read*", which, like a restore, also
  pays for faulting in new memory);
* ``fnn.checkpoint.save`` (including fsync, rename and directory fsync) and
  ``fnn.checkpoint.restore``;

and prints MB/s for each and the checkpoint/raw ratios (target: >= 70%).  Before every read
the file is evicted from the page cache with ``posix_fadvise(DONTNEED)`` where available, so
reads come from the disk for both.  Raw and checkpoint rounds alternate (in alternating order)
and the best and the median of ``--repeats`` rounds are reported; on shared or virtual disks
the best is the fairer comparison (reads right after a large write vary a lot there, for raw
reads and restores alike).  Finally, the peak extra memory allocated during `save` is measured
with tracemalloc (numpy reports its buffers to it) and by sampling the resident set size, in a
fresh process, for the contiguous tree and for a tree of non-contiguous big-endian leaves of
the same size, and printed next to the largest leaf size.
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fnn import checkpoint as ckpt  # noqa: E402

MB = 2**20


def make_tree(total_mb: float, leaves: int, seed=0):
    rng = np.random.default_rng(seed)
    per = int(total_mb * MB / leaves) // 4
    tree = {"params": {}, "step": 1000}
    block = rng.standard_normal(1 << 16, dtype=np.float32)
    for i in range(leaves):
        w = np.resize(block + i, per)  # non-constant contents, cheap to make
        tree["params"][f"layer_{i}"] = {"w": w, "b": np.zeros(256, np.float32)}
    return tree


def tree_nbytes(tree):
    return sum(x.nbytes for x in _leaves(tree))


def _leaves(tree):
    from transforms import tree as tree_util
    return [x for x in tree_util.leaves(tree) if isinstance(x, np.ndarray)]


def drop_cache(path):
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def raw_write(path, buf):
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(buf).cast("B")
        while len(view):
            view = view[os.write(fd, view[: 64 * MB]):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def raw_read(path, buf):
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        view = memoryview(buf).cast("B")
        while len(view):
            n = f.readinto(view[: 64 * MB])
            if not n:
                raise OSError("short read")
            view = view[n:]
    return time.perf_counter() - t


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def odd_tree(tree):
    """The same values as non-contiguous big-endian arrays (each needs conversion on save)."""
    return {"params": {k: {"w": v["w"].astype(">f4").reshape(-1, 1024)[:, ::-1], "b": v["b"]}
                       for k, v in tree["params"].items()}, "step": tree["step"]}


class RssSampler:
    """Samples the resident set size every ~0.5 ms; `growth` = peak minus the starting value."""

    def __init__(self):
        self.growth = 0
        self._stop = threading.Event()

    @staticmethod
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        peak = self.start
        while not self._stop.wait(0.0005):
            peak = max(peak, self.rss())
        self.growth = max(0, max(peak, self.rss()) - self.start)

    def __enter__(self):
        self.start = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def memory_probe(args):
    """Run in a fresh process: print peak extra bytes of a save (tracemalloc, sampled RSS)."""
    tree = make_tree(args.mb, args.leaves)
    if args.probe == "odd":
        tree = odd_tree(tree)
    gc.collect()
    path = os.path.join(args.dir, "probe.safetensors")
    sampler = RssSampler()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        with sampler:
            ckpt.save(path, tree)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if args.probe == "odd":
        back = ckpt.restore(path)["params"]
        assert all(np.array_equal(back[k]["w"], v["w"]) for k, v in tree["params"].items())
    os.remove(path)
    print(peak - base, sampler.growth)


def run_probe(kind, args, work):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", kind,
                          "--mb", str(args.mb), "--leaves", str(args.leaves), "--dir", work],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=500, help="tree size in MB (default 500)")
    ap.add_argument("--leaves", type=int, default=8, help="number of large leaves (default 8)")
    ap.add_argument("--repeats", type=int, default=5, help="rounds per measurement (default 5)")
    ap.add_argument("--dir", default=None, help="directory to write in (default: a temp dir)")
    ap.add_argument("--probe", choices=["contiguous", "odd"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        return memory_probe(args)

    work = tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.dir)
    try:
        tree = make_tree(args.mb, args.leaves)
        nbytes = tree_nbytes(tree)
        largest = max(x.nbytes for x in _leaves(tree))
        size_mb = nbytes / MB
        print(f"tree: {size_mb:.1f} MB in {len(_leaves(tree))} arrays, largest leaf "
              f"{largest / MB:.1f} MB; directory {work}")

        raw_path = os.path.join(work, "raw.bin")
        ck_path = os.path.join(work, "ckpt.safetensors")
        buf = np.ones(nbytes, np.uint8)
        rbuf = np.empty(nbytes, np.uint8)
        res = {"raw write": [], "raw read": [], "raw read*": [], "save": [], "restore": []}
        cold = True
        def raw_round():
            nonlocal cold
            res["raw write"].append(raw_write(raw_path, buf))
            cold &= drop_cache(raw_path)
            res["raw read"].append(raw_read(raw_path, rbuf))
            cold &= drop_cache(raw_path)
            t = time.perf_counter()  # into freshly allocated memory, as a restore must
            fresh = np.empty(nbytes, np.uint8)
            raw_read(raw_path, fresh)
            res["raw read*"].append(time.perf_counter() - t)
            del fresh
            os.remove(raw_path)

        def checkpoint_round():
            nonlocal cold
            dt, _ = timed(ckpt.save, ck_path, tree)
            res["save"].append(dt)
            cold &= drop_cache(ck_path)
            dt, out = timed(ckpt.restore, ck_path)
            res["restore"].append(dt)
            del out
            os.remove(ck_path)

        for i in range(args.repeats):  # alternate the order to cancel position effects
            for fn in ((raw_round, checkpoint_round) if i % 2 == 0
                       else (checkpoint_round, raw_round)):
                fn()
        del buf, rbuf
        file_mb = size_mb  # header is negligible

        def rate(key, agg):
            return file_mb / agg(res[key])

        print("reads: " + ("cold (page cache dropped)" if cold
                           else "page cache could not be dropped"))
        print(f"{'':12s} {'best MB/s':>10s} {'median MB/s':>12s}")
        for key in res:
            print(f"{key:12s} {rate(key, min):10.0f} {rate(key, statistics.median):12.0f}")
        print("(raw read*: into a freshly allocated buffer, like a restore)")
        for a, b in (("save", "raw write"), ("restore", "raw read"), ("restore", "raw read*")):
            best = rate(a, min) / rate(b, min)
            med = rate(a, statistics.median) / rate(b, statistics.median)
            flag = "ok" if best >= 0.7 else "BELOW TARGET"
            print(f"{a} / {b}: {best:.0%} (best), {med:.0%} (median)  [target >= 70%: {flag}]")

        # memory during save, each in a fresh process
        del tree
        gc.collect()
        print(f"peak extra memory during save (largest leaf {largest / MB:.1f} MB):")
        for kind, label in (("contiguous", "contiguous little-endian tree "),
                            ("odd", "non-contiguous big-endian tree")):
            traced, rss = run_probe(kind, args, work)
            print(f"  {label}: tracemalloc {traced / MB:7.2f} MB, RSS growth "
                  f"{rss / MB:7.2f} MB  ({traced / largest:.0%} / {rss / largest:.0%} of the "
                  "largest leaf)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
