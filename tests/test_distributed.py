"""transforms.distributed: the one-process world (no launcher, no mpi4py needed), ppermute under
vmap, fnn sharding; and a few short multi-process launches under `mpiexec` (skipped when
mpi4py or mpiexec is missing), each batching many checks (see tests/distributed/)."""
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import fnn
import transforms as T
from transforms import distributed as dist
from transforms import lax, random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = os.path.join(ROOT, "tests", "distributed")


# ---------------------------------------------------------------------------------------------
# one process
# ---------------------------------------------------------------------------------------------

def test_import_without_mpi4py_is_a_one_process_world():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, transforms as T\n"
            "from transforms import distributed as dist, lax\n"
            "dist.initialize(); dist.initialize()\n"
            "assert (dist.process_index(), dist.process_count()) == (0, 1)\n"
            "assert (T.process_index(), T.process_count()) == (0, 1)\n"
            "with dist.Mesh({'data': 1}):\n"
            "    assert lax.psum(np.ones(2), 'data').tolist() == [1.0, 1.0]\n"
            "dist.barrier()\n"
            "print(dist.broadcast({'a': np.ones(2)})['a'].sum())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2.0"


def test_launcher_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from transforms import distributed as dist\n"
            "print(dist.process_count())\n")
    env = dict(os.environ, PMI_RANK="0", PMI_SIZE="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    env["PMI_SIZE"] = "2"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "mpi4py is not installed" in r.stderr, r.stderr


def test_one_process_world():
    dist.initialize()
    dist.initialize()                               # idempotent
    assert dist.process_index() == 0 and dist.process_count() == 1
    assert T.process_index() == 0 and T.process_count() == 1
    dist.barrier()
    tree = {"a": np.arange(3.0), "b": [np.int32(2)]}
    out = dist.broadcast(tree)
    assert np.array_equal(out["a"], tree["a"]) and int(out["b"][0]) == 2
    with pytest.raises(ValueError, match="root=1"):
        dist.broadcast(tree, root=1)
    with pytest.raises(ValueError, match="dest=1"):
        dist.send(tree, dest=1)
    with pytest.raises(ValueError, match="itself"):
        dist.recv(tree, source=0)
    with pytest.raises(ValueError, match="one-process world"):
        dist.recv_any(tree)
    assert dist.run_on_root(lambda: 5) == 5


def test_sharded_checkpoint_on_one_process(tmp_path):
    part = {"w": np.arange(6.0).reshape(2, 3), "n": np.int32(4)}
    path = fnn.checkpoint.save_sharded(tmp_path / "ck", part)
    assert sorted(os.listdir(path)) == ["manifest.json", "shard_00000-of-00001.safetensors"]
    back = fnn.checkpoint.restore_sharded(path, target=part)
    assert np.array_equal(back["w"], part["w"]) and int(back["n"]) == 4
    with pytest.raises(ValueError, match=r"shard=1 is not in \[0, 1\)"):
        fnn.checkpoint.restore_sharded(path, shard=1)
    with pytest.raises(RuntimeError, match="creating the directory failed on process 0"):
        fnn.checkpoint.save_sharded(tmp_path / "no" / "such", part)


def test_digits_loader_reads_sklearns_file_without_importing_it():
    # every process of a launch loads the digits: the examples read scikit-learn's CSV file
    # directly (importing sklearn.datasets costs seconds per process); the same arrays
    code = ("import sys; sys.path.insert(0, 'examples'); import digits_mlp\n"
            "x, y = digits_mlp._digits_arrays()\n"
            "print(x.shape, x.dtype, y.dtype, 'sklearn' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.stdout.split() == ["(1797,", "64)", "float32", "int32", "False"], r.stdout + r.stderr
    datasets = pytest.importorskip("sklearn.datasets")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import digits_mlp
    finally:
        sys.path.remove(os.path.join(ROOT, "examples"))
    x, y = digits_mlp._digits_arrays()
    d = datasets.load_digits()
    assert np.array_equal(x, d.data.astype(np.float32)) and np.array_equal(y, d.target)


def test_mesh():
    m = dist.Mesh({"data": 1, "model": 1})
    assert m.axis_names == ("data", "model")
    assert m.shape == {"data": 1, "model": 1}
    assert m.axis_index("model") == 0
    with pytest.raises(ValueError, match=r"multiply to 4 but process_count\(\) is 1"):
        dist.Mesh({"data": 2, "model": 2})
    with pytest.raises(ValueError, match="positive"):
        dist.Mesh({"data": 0})
    with pytest.raises(TypeError, match="axis names"):
        dist.Mesh({3: 1})
    with pytest.raises(KeyError, match="no axis 'x'"):
        m.axis_index("x")


def test_collectives_on_a_one_process_mesh_eager_and_jit():
    x = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.arange(3)}

    def f(x):
        return (lax.psum(x, "data"), lax.pmean(x["w"], "data"), lax.pmax(x["n"], "data"),
                lax.all_gather(x["w"], "data", axis=1), lax.axis_index("data"),
                lax.ppermute(x["w"], "data", [(0, 0)]), lax.ppermute(x["w"], "data", []))

    with dist.Mesh({"data": 1}):
        for g in (f, T.jit(f)):
            s, m, mx, ag, i, pp, none = g(x)
            assert np.array_equal(s["w"], x["w"]) and np.array_equal(s["n"], x["n"])
            assert m.dtype == np.float32 and np.array_equal(m, x["w"])
            assert np.array_equal(ag, x["w"][:, None, :]) and int(i) == 0
            assert np.array_equal(pp, x["w"]) and not none.any()


def test_jitted_pmean_results_kept_by_the_caller_are_never_overwritten():
    # the packed buffer is reused by the next call only when no result of the last is alive
    f = T.jit(lambda g: lax.pmean(g, "data"))
    with dist.Mesh({"data": 1}):
        kept = [f({"x": np.full(3, float(i), np.float32), "y": np.full(2, -i, np.float32)})
                for i in range(4)]
        for i, r in enumerate(kept):
            assert r["x"].tolist() == [i] * 3 and r["y"].tolist() == [-i] * 2
        only_y = [f({"x": np.full(3, 9.0, np.float32), "y": np.full(2, i, np.float32)})["y"]
                  for i in range(3)]                 # a view of one leaf keeps it alive too
        assert [y.tolist() for y in only_y] == [[0, 0], [1, 1], [2, 2]]
        for i in range(3):                           # dropped each time: reused, still right
            assert f({"x": np.full(3, i, np.float32), "y": np.ones(2, np.float32)})["x"][0] == i
        g = {"x": np.zeros(3, np.float32), "y": np.zeros(2, np.float32)}
        for i in range(5):                           # the usual loop: g alive during the call
            g = f({"x": g["x"] + 1, "y": g["y"] - 1})
        assert g["x"].tolist() == [5] * 3 and g["y"].tolist() == [-5] * 2
        # a small result (a loss) next to large ones is copied out, not left pinning the buffer
        h = T.jit(lambda w, l: lax.pmean((w, l), "data"))
        w, loss = h(np.ones(64, np.float32), np.float32(2))
        assert loss.base is None or loss.base.size == 1
        assert w.base is not None and w.base.size == 65     # the large one: a view, no copy
        # eagerly the same: pooled buffers, results kept by the caller stay right
        kept = [lax.pmean({"a": np.full(100, i, np.float32), "b": np.float32(i)}, "data")
                for i in range(5)]
        assert [(float(k["a"][0]), float(k["b"])) for k in kept] == [(i, i) for i in range(5)]


def test_lower_shows_segments_and_mpi_calls():
    def f(x):
        return (lax.pmean({"a": x, "b": 2 * x}, "data"), lax.psum(x, "data"),
                lax.axis_index("data"))

    lo = T.jit(f).lower(np.ones(3, np.float32))
    text = lo.as_text()
    # a pytree's pmean is ONE Allreduce of one packed buffer (the 1/n applied while packing)
    assert "compiled segment" in text
    assert "MPI Allreduce(sum, scaled by 1/n) over 'data': 2 value(s) packed in one " \
        "float32[6] buffer" in text, text
    assert "MPI Allreduce(sum) over 'data': 1 value(s)" in text, text
    assert "host: axis_index" in text and "def " in lo.source
    # from 256 kB a sum is not packed: it says so (reduce-scatter from the values, all-gather)
    big = T.jit(lambda g: lax.pmean(g, "data")).lower(
        {"w": np.ones((300, 300), np.float32), "b": np.ones(3, np.float32)}).as_text()
    assert "# MPI sum (scaled by 1/n) over 'data': 2 value(s) reduced into one float32[90003] " \
        "buffer without packing: a reduce-scatter straight from the values" in big, big


def test_unbound_axis_name():
    assert T.UnboundAxisNameError is lax.UnboundAxisNameError is dist.UnboundAxisNameError
    assert issubclass(lax.UnboundAxisNameError, (NameError, ValueError))
    with pytest.raises(lax.UnboundAxisNameError, match="unbound axis name: 'data'"):
        lax.psum(np.ones(2), "data")
    with dist.Mesh({"data": 1}):
        with pytest.raises(lax.UnboundAxisNameError, match="'model'"):
            lax.pmean(np.ones(2), "model")
        with pytest.raises(lax.UnboundAxisNameError):
            lax.ppermute(np.ones(2), "model", [(0, 0)])
    f = T.jit(lambda x: lax.psum(x, "data"))
    with pytest.raises(lax.UnboundAxisNameError):   # traced fine, no binding when it runs
        f(np.ones(2))


def test_ppermute_under_vmap_values_grad_and_jit():
    x = np.arange(12.0).reshape(4, 3)
    perm = [(0, 1), (1, 2), (2, 0)]                  # member 3 receives nothing

    def f(v):
        return lax.ppermute(v, "i", perm)

    out = T.vmap(f, axis_name="i")(x)
    assert np.array_equal(out, np.stack([x[2], x[0], x[1], np.zeros(3)]))
    assert np.array_equal(T.jit(T.vmap(f, axis_name="i"))(x), out)
    assert np.array_equal(T.vmap(T.jit(f), axis_name="i")(x), out)
    # transpose = the inverse permutation: d/dx sum(w * ppermute(x)) = ppermute^-1(w)
    w = np.arange(1.0, 13.0).reshape(4, 3)
    g = T.grad(lambda x: (T.vmap(f, axis_name="i")(x) * w).sum())(x)
    assert np.array_equal(g, np.stack([w[1], w[2], w[0], np.zeros(3)]))
    # per-example gradient under vmap with the same name (collective inside grad)
    g2 = T.vmap(T.grad(lambda v: (lax.ppermute(v, "i", perm) * v).sum()), axis_name="i")(x)
    np.testing.assert_allclose(g2, np.stack([x[2], x[0], x[1], np.zeros(3)])
                               + np.stack([x[1], x[2], x[0], np.zeros(3)]))
    # forward mode
    _, t = T.jvp(T.vmap(f, axis_name="i"), (x,), (np.ones_like(x),))
    assert np.array_equal(t, np.stack([np.ones(3)] * 3 + [np.zeros(3)]))
    # unbatched operand, another axis mapped through
    y = T.vmap(lambda v: T.vmap(lambda u: lax.ppermute(u, "i", [(0, 1)]), axis_name="j")(v),
               axis_name="i")(np.ones((2, 3)))
    assert np.array_equal(y, np.stack([np.zeros(3), np.ones(3)]))


def test_ppermute_over_a_tuple_of_names_under_vmap():
    # JAX semantics: (source, destination) index the members row-major over the names
    x = np.arange(12.0).reshape(2, 3, 2)                 # vmap "i" (2) outer, "j" (3) inner
    perm = [(0, 3), (3, 5), (5, 0), (1, 2)]              # members 1 and 4 receive nothing

    def f(v):
        return lax.ppermute(v, ("i", "j"), perm)

    F = T.vmap(T.vmap(f, axis_name="j"), axis_name="i")
    flat, w = x.reshape(6, 2), np.arange(1.0, 13.0).reshape(6, 2)
    expect, grad_expect = np.zeros_like(flat), np.zeros_like(w)
    for s, d in perm:
        expect[d] = flat[s]
        grad_expect[s] = w[d]                            # transpose: the inverse permutation
    out = F(x)
    assert np.array_equal(out.reshape(6, 2), expect)
    assert np.array_equal(T.jit(F)(x), out)
    assert np.array_equal(T.vmap(T.vmap(T.jit(f), axis_name="j"), axis_name="i")(x), out)
    g = T.grad(lambda x: (F(x) * w.reshape(2, 3, 2)).sum())(x)
    assert np.array_equal(g.reshape(6, 2), grad_expect)
    # the members are numbered in layout order (the outer vmap major), whatever the order of
    # the names in the tuple - as JAX's ppermute over several mesh axes
    F2 = T.vmap(T.vmap(lambda v: lax.ppermute(v, ("j", "i"), perm), axis_name="j"),
                axis_name="i")
    assert np.array_equal(F2(x), out)
    G = T.vmap(T.vmap(lambda v: lax.ppermute(v, ("i", "j"), perm), axis_name="i"),
               axis_name="j")
    xt = np.transpose(x, (1, 0, 2))                    # "j" outer now: "j" is the major axis
    e2 = np.zeros((6, 2))
    for s, d in perm:
        e2[d] = xt.reshape(6, 2)[s]
    assert np.array_equal(G(xt).reshape(6, 2), e2)
    with pytest.raises(ValueError, match="out of range"):
        T.vmap(T.vmap(lambda v: lax.ppermute(v, ("i", "j"), [(0, 6)]), axis_name="j"),
               axis_name="i")(x)
    with pytest.raises(ValueError, match="repeated"):
        T.vmap(lambda v: lax.ppermute(v, ("i", "i"), [(0, 1)]), axis_name="i")(x[0])


def test_ppermute_errors():
    f = T.vmap(lambda v: lax.ppermute(v, "i", [(0, 1), (1, 1)]), axis_name="i")
    with pytest.raises(ValueError, match="destination more than once"):
        f(np.ones((2, 2)))
    g = T.vmap(lambda v: lax.ppermute(v, "i", [(0, 5)]), axis_name="i")
    with pytest.raises(ValueError, match="out of range"):
        g(np.ones((2, 2)))
    with pytest.raises(TypeError, match="pairs"):
        T.vmap(lambda v: lax.ppermute(v, "i", [3]), axis_name="i")(np.ones((2, 2)))


def test_batches_shard():
    x = np.arange(23)
    key = random.key(1)
    for drop_last in (False, True):
        glob = list(fnn.data.batches(x, 6, key=key, drop_last=drop_last))
        parts = [list(fnn.data.batches(x, 6, key=key, drop_last=drop_last, shard=(i, 3)))
                 for i in range(3)]
        for j, g in enumerate(glob):
            assert np.array_equal(np.concatenate([p[j] for p in parts]), g)
        if drop_last:
            assert all(b.shape == (2,) for p in parts for b in p)
    with pytest.raises(ValueError, match="not divisible by the shard count 4"):
        fnn.data.batches(x, 6, shard=(0, 4))
    with pytest.raises(ValueError, match="index < count"):
        fnn.data.batches(x, 6, shard=(3, 3))
    with pytest.raises(TypeError, match="pair"):
        fnn.data.batches(x, 6, shard=3)


# ---------------------------------------------------------------------------------------------
# several processes
# ---------------------------------------------------------------------------------------------

def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or \
        shutil.which("mpiexec")


def launch(n, script, *args, timeout=120):
    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpi4py / mpiexec not installed (pip install -e '.[distributed]')")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([exe, "-n", str(n), sys.executable, script, *map(str, args)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)            # mpiexec and every process it started
        out, err = p.communicate()
        pytest.fail(f"{script} under mpiexec -n {n} did not finish in {timeout} s:\n{out}{err}")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_multiprocess_collectives_match_the_vmap_simulation():
    # 4 processes: a 1-D mesh of 4 and a 2x2 mesh; every check compares with vmap on 1 process
    r = launch(4, os.path.join(WORKERS, "worker_collectives.py"), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALL OK" in r.stdout and "OK 2-D mesh" in r.stdout, r.stdout + r.stderr
    # the planned sums' persistent requests are freed before MPI is finalised (MPICH warns)
    assert "persistent request" not in r.stderr, r.stderr


def test_multiprocess_fnn_batches_and_checkpoints(tmp_path):
    r = launch(2, os.path.join(WORKERS, "worker_fnn.py"), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALL OK" in r.stdout
    # the 2-shard checkpoint on this 1-process world: a clear error, or one part by index
    with pytest.raises(ValueError, match="has 2 shards .* but 1 process"):
        fnn.checkpoint.restore_sharded(tmp_path / "sharded")
    assert fnn.checkpoint.restore_sharded(tmp_path / "sharded", shard=1)["w"].shape == (2, 2)
    with pytest.raises(fnn.checkpoint.CheckpointError, match="manifest"):
        fnn.checkpoint.restore_sharded(tmp_path)


@pytest.mark.parametrize("mode", ["raise", "kill", "early", "exit"])
def test_a_failing_process_ends_the_job(mode):
    import time
    t0 = time.monotonic()
    r = launch(2, os.path.join(WORKERS, "worker_fail.py"), mode, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode != 0
    assert elapsed < 30, elapsed                     # process 0 was waiting in a psum
    if mode == "exit":
        assert "[process 1 of 2] exiting with status 3" in r.stderr, r.stderr
    elif mode != "kill":
        assert "[process 1 of 2] uncaught exception" in r.stderr, r.stderr
        assert "[process 1] " + ("RuntimeError" if mode == "raise" else "ValueError") + \
            ": deliberate failure" in r.stderr, r.stderr


def test_data_parallel_example_matches_one_process_and_resumes_exactly(tmp_path):
    # 1. process 1 dies before step 10 (checkpoints every 4 steps): the whole job ends
    # 2. one launch: resumed from step 8, then the same training uninterrupted - the same
    #    losses and bit-identical parameters, identical on every process after every step
    # 3. here, one process with the same global batch: the same trajectory to float rounding
    import importlib.util
    import json
    script = os.path.join(ROOT, "examples", "data_parallel.py")
    crash_dir = tmp_path / "crash"
    crash = launch(2, script, "--fast", "--json", "--checkpoint-dir", crash_dir, "--save-every",
                   4, "--fail-at-step", 10, timeout=300)
    assert crash.returncode != 0 and "RESULT" not in crash.stdout
    assert "[process 1] RuntimeError: deliberate failure before step 10" in crash.stderr, \
        crash.stderr
    assert sorted(os.listdir(crash_dir)) == ["step_00000004.safetensors",
                                             "step_00000008.safetensors"]
    r = launch(2, os.path.join(WORKERS, "worker_dp.py"), crash_dir, tmp_path / "full",
               timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = {d["run"]: d for d in (json.loads(ln[len("RESULT "):]) for ln in r.stdout.splitlines()
                                  if ln.startswith("RESULT "))}
    two, resumed = runs["full"], runs["resumed"]
    assert "identical on every process" in r.stdout and two["processes"] == 2
    assert resumed["losses"] == two["losses"] and len(two["losses"]) == 12
    assert resumed["digest"] == two["digest"]
    assert os.listdir(tmp_path / "full") == ["step_00000012.safetensors"]   # written once

    spec = importlib.util.spec_from_file_location("_example_data_parallel", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    one = mod.main(["--fast"])                      # this process: a 1-process world
    assert one["processes"] == 1
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-4)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 2 / 359
    assert np.mean(one["losses"][-3:]) < 0.8 * np.mean(one["losses"][:3])


def test_model_parallel_and_parameter_server_examples():
    # tensor-parallel (one psum) and GPipe (send/recv) equal the dense model after every step;
    # the synchronous parameter server equals data-parallel SGD after every step
    r = launch(2, os.path.join(WORKERS, "worker_examples.py"), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ALL OK" in r.stdout and "tensor parallel on 2" in r.stdout
    assert "every step equal to data-parallel SGD" in r.stdout
    assert "asynchronous parameter server, 1 worker(s), staleness bound 2" in r.stdout
