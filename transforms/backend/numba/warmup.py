"""Compile the backend's kernels on the second core while the first compiles the program.

With ``NUMBAX_PRECOMPILE=1``, the first program this process compiles into a cache directory
whose kernels were never warmed (for this version of the backend) starts
``python -m transforms.precompile`` in a detached background process: it compiles the common
kernels (see `transforms.precompile`) into the same disk cache while this process compiles its
program. Numba looks in the disk cache before compiling any kernel signature, so this process
loads each kernel the background process has already finished, and every later program
(a changed line, a new shape, the evaluation step after the training step) finds all of them
there. A marker file ``.kernels-<backend fingerprint>`` records that the warm-up was started
for this backend, so it runs once per cache directory and backend version, whichever process
gets there first.

Off by default: it spends a few CPU-seconds per dtype that a one-off script may never need,
and a test suite making a fresh cache directory per test would start one per test.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

_started = set()
_lock = threading.Lock()


def enabled():
    """Whether ``NUMBAX_PRECOMPILE`` asks for the background warm-up."""
    return os.environ.get("NUMBAX_PRECOMPILE", "").strip().lower() in ("1", "true", "yes", "on")


def marker(d):
    """The marker file of cache directory `d` for this backend version."""
    from .lowering import BACKEND_FINGERPRINT
    return os.path.join(d, f".kernels-{BACKEND_FINGERPRINT}")


def maybe_start(d):
    """Start the background warm-up of cache directory `d` if enabled and never started for
    this backend (see the module docstring). Returns the process started, or None."""
    if not enabled() or d is None:
        return None
    with _lock:
        if d in _started:
            return None
        _started.add(d)
        try:                                    # exactly one process wins the marker
            fd = os.open(marker(d), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return None
        os.close(fd)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))))
        env = dict(os.environ, NUMBAX_CACHE_DIR=d, NUMBAX_PRECOMPILE="0",
                   PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        try:
            return subprocess.Popen([sys.executable, "-m", "transforms.precompile"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            try:
                os.unlink(marker(d))
            except OSError:
                pass
            return None
