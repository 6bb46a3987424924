"""`CheckpointManager`: one checkpoint file per training step, with retention.

Directory layout::

    directory/
      step_00000000.safetensors
      step_00000100.safetensors
      .step_00000200.safetensors.tmp-<pid>-<random>   # a save in progress (or a leftover)

Each step file is a complete `fnn.checkpoint.save` file whose user metadata is
``{"step": step, "metrics": {...}}``.  The files are the only source of truth: there is no
separate index that a crash could leave out of sync.  The manager caches each file's metrics
keyed by its inode, size and modification time, so listings stay cheap.

Retention: with ``max_to_keep=N`` the newest N steps are kept plus the best step (by
``metrics[best_metric]``, lowest for ``best_mode='min'``, highest for ``'max'``; steps without
a finite numeric value for that metric never count as best; among equal values the earliest
step wins).  Older checkpoints are deleted after each successful save.  Leftover temp files of
interrupted saves (whose process is no longer running) are removed when the manager is created
and after each save.
"""
from __future__ import annotations

import math
import numbers
import os
import re
import warnings

from fnn.checkpoint import format as fmt

__all__ = ["CheckpointManager"]

_STEP_RE = re.compile(r"^step_(\d{8,})\.safetensors$")


def _check_step(step) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be a non-negative int, got {type(step).__name__} {step!r}")
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be a non-negative int, got {step}")
    return step


class CheckpointManager:
    """Save and restore numbered checkpoints in `directory`.

    Args:
      directory: where the ``step_XXXXXXXX.safetensors`` files live (created if missing).
      max_to_keep: keep at most this many of the newest checkpoints (plus the best one, see
        `best_metric`); ``None`` keeps everything.
      best_metric: name of the entry of ``metrics`` (see `save`) that ranks checkpoints; the
        best checkpoint is never deleted by retention.  ``None``: no best checkpoint.
      best_mode: ``'min'`` (lower is better, e.g. a loss) or ``'max'`` (e.g. an accuracy).
    """

    def __init__(self, directory, max_to_keep=None, best_metric=None, best_mode="min"):
        if max_to_keep is not None and (isinstance(max_to_keep, bool)
                                        or not isinstance(max_to_keep, numbers.Integral)
                                        or max_to_keep < 1):
            raise ValueError(f"max_to_keep must be a positive int or None, got {max_to_keep!r}")
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        if best_metric is not None and not isinstance(best_metric, str):
            raise TypeError(f"best_metric must be a str or None, got {best_metric!r}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.max_to_keep = None if max_to_keep is None else int(max_to_keep)
        self.best_metric = best_metric
        self.best_mode = best_mode
        self._cache = {}  # file name -> (stat key, metadata dict)
        os.makedirs(self.directory, exist_ok=True)
        self._cleanup()

    def __repr__(self):
        return (f"CheckpointManager({self.directory!r}, max_to_keep={self.max_to_keep}, "
                f"best_metric={self.best_metric!r}, best_mode={self.best_mode!r})")

    # ---------------------------------------------------------------------------- files

    def path(self, step) -> str:
        """The file that holds (or would hold) checkpoint `step`."""
        return os.path.join(self.directory, f"step_{_check_step(step):08d}.safetensors")

    def all_steps(self) -> list[int]:
        """The steps with a checkpoint file, ascending."""
        steps = []
        for fn in os.listdir(self.directory):
            m = _STEP_RE.match(fn)
            if m and fn == f"step_{int(m.group(1)):08d}.safetensors":
                steps.append(int(m.group(1)))
        return sorted(steps)

    def latest_step(self) -> int | None:
        """The highest step with a checkpoint, or None if there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def metadata(self, step) -> dict:
        """The metadata ``{"step": ..., "metrics": {...}}`` stored in checkpoint `step`."""
        path = self.path(step)
        st = os.stat(path)
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        meta = fmt.load_metadata(path)
        self._cache[path] = (key, meta)
        return meta

    def metrics(self, step) -> dict:
        """The metrics saved with checkpoint `step` (``{}`` if none)."""
        metrics = self.metadata(step).get("metrics")
        return dict(metrics) if isinstance(metrics, dict) else {}

    def _metric_value(self, step):
        try:
            value = self.metrics(step).get(self.best_metric)
        except FileNotFoundError:  # deleted meanwhile by another process
            return None
        except ValueError as e:
            warnings.warn(f"ignoring unreadable checkpoint for best_step: {e}",
                          fmt.CheckpointWarning, stacklevel=3)
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    def best_step(self) -> int | None:
        """The step with the best `best_metric` value, or None (no best_metric or no values)."""
        if self.best_metric is None:
            return None
        best, best_value = None, None
        for step in self.all_steps():
            value = self._metric_value(step)
            if value is None:
                continue
            better = (best_value is None or (value < best_value if self.best_mode == "min"
                                             else value > best_value))
            if better:
                best, best_value = step, value
        return best

    # ---------------------------------------------------------------------------- save/restore

    def save(self, step, tree, metrics=None) -> str:
        """Save `tree` as checkpoint `step` (atomically replacing an existing one); return its path.

        `metrics` is an optional JSON-serialisable dict (e.g. ``{"loss": 0.3}``) stored in the
        file; its `best_metric` entry ranks checkpoints.  Retention is applied afterwards.
        """
        step = _check_step(step)
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, dict):
            raise TypeError(f"metrics must be a dict or None, got {type(metrics).__name__}")
        bad = [k for k in metrics if not isinstance(k, str)]
        if bad:
            raise TypeError(f"metric names must be str, got {bad[0]!r}")
        path = self.path(step)

        def write():              # on process 0 only when there are several processes
            fmt.save_file(path, tree, metadata={"step": step, "metrics": metrics})
            self._cleanup()
            self._apply_retention()
            return path
        from transforms import distributed as dist
        return dist.run_on_root(write) if dist.process_count() > 1 else write()

    def restore(self, step=None, target=None, **kwargs):
        """Restore checkpoint `step` (default: the latest).

        `target` and the keyword arguments (``partial=``, ``subtree=``) are passed on to
        `fnn.checkpoint.restore`.  Raises FileNotFoundError if there is no such checkpoint.
        """
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"no checkpoints in {self.directory}")
        path = self.path(step)
        if not os.path.exists(path):
            steps = self.all_steps()
            raise FileNotFoundError(f"no checkpoint for step {step} in {self.directory} "
                                    f"(available steps: {steps if steps else 'none'})")
        return fmt.restore(path, target, **kwargs)

    # ---------------------------------------------------------------------------- housekeeping

    def _cleanup(self):
        from transforms import distributed as dist
        if dist.process_count() > 1 and dist.process_index() != 0:
            return        # process 0 writes; another host cannot tell whether its pid lives
        fmt.remove_stale_temp_files(self.directory)

    def _apply_retention(self):
        if self.max_to_keep is None:
            return
        steps = self.all_steps()
        keep = set(steps[-self.max_to_keep:])
        best = self.best_step()
        if best is not None:
            keep.add(best)
        removed = False
        for step in steps:
            if step not in keep:
                path = self.path(step)
                try:
                    os.remove(path)
                    removed = True
                except FileNotFoundError:
                    pass
                self._cache.pop(path, None)
        if removed:
            fmt.fsync_dir(self.directory)
