"""Failure modes (run under mpiexec -n 2 by tests/test_distributed.py): process 1 fails while
process 0 waits in a collective; the whole job must end quickly with a non-zero status."""
import os
import signal
import sys
import time

import numpy as np

from transforms import distributed as dist
from transforms import lax

mode = sys.argv[1]
rank = dist.process_index()
if mode == "early" and rank == 1:           # before any communication: data loading, say
    raise ValueError("deliberate failure before the first collective")
if mode == "early":
    time.sleep(60)
mesh = dist.Mesh({"data": dist.process_count()})
with mesh:
    lax.psum(np.ones(2), "data")               # everyone is up
    if rank == 1:
        if mode == "raise":
            raise RuntimeError("deliberate failure on this process")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "exit":
            sys.exit(3)
    lax.psum(np.ones(2), "data")               # process 0 waits here forever unless aborted
    time.sleep(60)
