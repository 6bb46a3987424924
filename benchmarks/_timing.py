"""Timing helper shared by the benchmarks.

This machine's speed drifts by up to a third over minutes (a shared virtual machine), so
candidates timed one after another can see different machines. `interleaved` times them in
alternating rounds instead, so that all of them see the same drift and their ratios are
stable even when the absolute times are not. Within a round each candidate runs a short
burst (its first call untimed), as it would in a training loop, so that no candidate is
timed on caches another one has just evicted.
"""
from __future__ import annotations

import statistics
import time


def interleaved(fns, repeats, burst=5, stat=statistics.median):
    """{name: median seconds per call} for the callables `fns` ({name: fn}; None entries are
    skipped), from about `repeats` timed calls each, in alternating bursts of `burst`. `stat`
    turns each candidate's list of times into the number reported (default: the median)."""
    fns = {k: f for k, f in fns.items() if f is not None}
    for f in fns.values():                # warm-up (and any first-call compilation)
        f()
    times = {k: [] for k in fns}
    for _ in range(max(1, -(-repeats // burst))):
        for k, f in fns.items():
            f()                           # untimed: refill the caches after the others
            for _ in range(burst):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return {k: stat(v) for k, v in times.items()}


def median_and_p10(times):
    """(median, 10th percentile): the second is what a call costs when the machine is not
    busy with something else - the steadier number on a loaded, shared machine."""
    s = sorted(times)
    return statistics.median(s), s[len(s) // 10]
