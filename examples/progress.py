"""Training progress for the examples: a tqdm bar on a terminal, one line per epoch otherwise.

    with Progress(total_steps, "mlp/adam", epochs=30) as bar:
        for epoch in range(30):
            for batch in ...:
                bar.step(loss=f"{loss:.4f}")
            bar.epoch(test_acc=f"{acc:.4f}")

A bar redrawn in place is useless in a log file or a CI job (tqdm then disables itself and a
long run prints nothing for minutes), so when stderr is not a terminal - or tqdm is not
installed - each `epoch()` prints one flushed line to stdout instead: the epoch, the steps
done, the latest values given to `step`/`epoch`, and the elapsed time.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A progress display of `total` steps named `desc` (see the module docstring).

    `epochs` (optional) is shown as the denominator of the epoch count in the text lines;
    `force_lines=True` prints lines even on a terminal (the tests use it)."""

    def __init__(self, total: int, desc: str, epochs: int | None = None, *,
                 force_lines: bool = False, stream=None):
        self.total, self.desc, self.epochs = int(total), desc, epochs
        self.stream = stream if stream is not None else sys.stdout
        self.steps = 0
        self.epochs_done = 0
        self.values: dict = {}
        self.lines: list[str] = []
        self.start = time.perf_counter()
        self._bar = None
        if not force_lines and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=self.total, desc=desc)

    def step(self, n: int = 1, **values) -> None:
        """`n` more steps done; `values` (already formatted, e.g. ``loss="0.1234"``) shown."""
        self.steps += n
        self.values.update(values)
        if self._bar is not None:
            self._bar.update(n)
            if values:
                self._bar.set_postfix(self.values, refresh=False)

    def epoch(self, label: str | None = None, **values) -> None:
        """An epoch (or any checkpoint of the run, named `label`) ended: print one line."""
        self.epochs_done += 1
        self.values.update(values)
        if self._bar is not None:
            self._bar.set_postfix(self.values)
            return
        if label is None:
            label = f"epoch {self.epochs_done}" + (f"/{self.epochs}" if self.epochs else "")
        shown = ", ".join(f"{k} {v}" for k, v in self.values.items())
        line = (f"{self.desc} {label}: step {self.steps}/{self.total}"
                + (f", {shown}" if shown else "")
                + f" ({time.perf_counter() - self.start:.1f} s)")
        self.lines.append(line)
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
