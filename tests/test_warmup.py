"""NUMBAX_PRECOMPILE=1: the first new program compiled into a cache directory starts the
kernel warm-up (`python -m transforms.precompile`) in the background, once per directory and
backend version; off by default."""
import os
import subprocess

import numpy as np

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import warmup


class _FakePopen:
    started = []

    def __init__(self, cmd, env=None, **kw):
        _FakePopen.started.append((cmd, env))


def _fresh(monkeypatch, tmp_path, value):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    if value is None:
        monkeypatch.delenv("NUMBAX_PRECOMPILE", raising=False)
    else:
        monkeypatch.setenv("NUMBAX_PRECOMPILE", value)
    monkeypatch.setattr(subprocess, "Popen", _FakePopen)
    monkeypatch.setattr(warmup, "_started", set())
    _FakePopen.started = []


def _program(n):
    x = np.linspace(-1.0, 1.0, n)
    f = T.jit(lambda x: tnp.sin(x) * 3.0 + float(n))     # a new program for each n
    np.testing.assert_allclose(f(x), np.sin(x) * 3.0 + n, rtol=1e-12)


def test_first_new_program_starts_one_background_precompile(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path, "1")
    _program(7)
    _program(9)                                       # a second new program: no second start
    assert len(_FakePopen.started) == 1
    cmd, env = _FakePopen.started[0]
    assert cmd[1:] == ["-m", "transforms.precompile"]
    assert env["NUMBAX_CACHE_DIR"] == os.path.realpath(str(tmp_path))
    assert env["NUMBAX_PRECOMPILE"] == "0"           # the warm-up never starts another
    assert os.path.exists(warmup.marker(os.path.realpath(str(tmp_path))))


def test_marker_makes_it_once_per_directory(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path, "1")
    d = os.path.realpath(str(tmp_path))
    open(warmup.marker(d), "w").close()               # another process got there first
    _program(11)
    assert _FakePopen.started == []


def test_off_by_default(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path, None)
    _program(13)
    assert _FakePopen.started == []
    assert not warmup.enabled()
