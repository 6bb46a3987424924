"""Run under `mpiexec -n 2` (or 4) by tests/test_distributed.py: every check of the
multi-process contract in one launch (interpreter and Numba start-up dominate). Each check
compares the processes' result with the one-process vmap simulation over the stacked shards.
Prints "OK <name>" per check and "ALL OK" at the end (on process 0)."""
import os
import sys

import numpy as np

import transforms as T
from transforms import distributed as dist
from transforms import lax
from transforms.distributed import _runtime as R

dist.initialize()
rank, n = dist.process_index(), dist.process_count()
assert T.process_index() == rank and T.process_count() == n


def ok(name):
    dist.barrier()
    if rank == 0:
        print("OK", name, flush=True)


def close(a, b, what, tol=1e-5):
    for x, y in zip(T.tree.leaves(a), T.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape, (what, x.shape, y.shape)
        assert np.allclose(x, y, rtol=tol, atol=tol), (what, rank, x, y)


def shard(stacked):
    return T.tree.map(lambda a: a[rank], stacked)


rng = np.random.default_rng(0)                 # the same on every process
X = rng.normal(size=(n, 5, 3)).astype(np.float32)   # one shard per process
P = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}

# --- world and mesh -------------------------------------------------------------------------
dist.initialize()                                # idempotent
mesh = dist.Mesh({"data": n})
assert mesh.axis_names == ("data",) and mesh.shape == {"data": n}
assert mesh.axis_index("data") == rank
try:
    dist.Mesh({"data": n + 1})
    raise AssertionError("no error")
except ValueError as e:
    assert str(n + 1) in str(e) and str(n) in str(e)
ok("mesh")

# --- broadcast / send / recv / barrier ------------------------------------------------------
tree = {"a": np.full(3, rank, np.float32), "b": [np.arange(4) * (rank + 1)]}
got = dist.broadcast(tree, root=n - 1)
assert np.all(got["a"] == n - 1) and np.all(got["b"][0] == np.arange(4) * n)
got = dist.broadcast(tree if rank == 0 else None)             # non-roots may pass None
assert np.all(got["a"] == 0) and np.all(got["b"][0] == np.arange(4)) and len(got["b"]) == 1
assert dist.broadcast(np.float32(rank) if rank == 0 else None).dtype == np.float32
try:
    dist.broadcast({"a": np.zeros(3 + (rank == 1), np.float32)})
    raise AssertionError("no error")
except ValueError as e:
    assert "['a']" in str(e), e
if rank == 0:
    dist.send({"x": np.arange(6.0).reshape(2, 3), "y": (np.int32(7),)}, dest=1, tag=3)
    dist.send({"x": np.zeros(2)}, dest=1)
elif rank == 1:
    r = dist.recv({"x": np.empty((2, 3)), "y": (np.int32(0),)}, source=0, tag=3)
    assert np.array_equal(r["x"], np.arange(6.0).reshape(2, 3)) and int(r["y"][0]) == 7
    try:
        dist.recv({"x": np.empty(3)}, source=0)
        raise AssertionError("no error")
    except ValueError as e:
        assert "['x']" in str(e), e
dist.barrier()
ok("p2p")


# --- collectives: eager, grad, vmap over another axis, jit; vs the vmap simulation -----------
def f(p, x):
    y = x @ p["w"] + p["b"]
    s = lax.psum(y.sum(0), "data")
    m = lax.pmean({"y": y, "s": s}, "data")
    hi, lo = lax.pmax(y, "data"), lax.pmin(y, "data")
    g = lax.all_gather(y[0], "data")
    gt = lax.all_gather(y, "data", axis=1, tiled=True)
    i = lax.axis_index("data")
    r = lax.ppermute(y, "data", [(j, (j + 1) % n) for j in range(n)])
    half = lax.ppermute(y, "data", [(0, n - 1)])           # only the last member receives
    return {"s": s, "m": m, "hi": hi, "lo": lo, "g": g, "gt": gt, "i": i, "r": r, "half": half}


sim = T.vmap(f, in_axes=(None, 0), axis_name="data")(P, X)
with mesh:
    eager = f(P, X[rank])
    close(eager, shard(sim), "eager")
    jf = T.jit(f)
    close(jf(P, X[rank]), shard(sim), "jit")
    close(jf(P, X[rank]), shard(sim), "jit again")
    assert not jf.cache_misses
ok("collectives eager+jit")


def loss(p, x):
    y = x @ p["w"] + p["b"]
    tot = lax.psum((y ** 2).sum(), "data")
    z = lax.ppermute(y, "data", [(j, (j + 1) % n) for j in range(n)])
    gathered = lax.all_gather(y * (1.0 + lax.axis_index("data")), "data")
    return tot + (z * y).sum() + lax.pmax(y, "data").sum() + 0.1 * (gathered ** 2).sum() \
        + lax.pmean(y, "data").sum() * lax.pmin(y, "data").mean()


gsim = T.vmap(T.grad(loss), in_axes=(None, 0), axis_name="data")(P, X)
with mesh:
    close(T.grad(loss)(P, X[rank]), shard(gsim), "grad eager")
    close(T.jit(T.grad(loss))(P, X[rank]), shard(gsim), "jit(grad)")
    close(T.grad(T.jit(loss))(P, X[rank]), shard(gsim), "grad(jit)")
ok("grad")

# vmap over another axis: each example combined across processes
XB = rng.normal(size=(n, 4, 3)).astype(np.float32)


def per_example(p, x):            # x: one example (3,)
    return (lax.psum(x @ p["w"], "data"), lax.all_gather(x, "data"),
            lax.ppermute(x, "data", [(0, n - 1)]))


simb = T.vmap(T.vmap(per_example, in_axes=(None, 0)), in_axes=(None, 0), axis_name="data")(P, XB)
with mesh:
    close(T.vmap(per_example, in_axes=(None, 0))(P, XB[rank]), shard(simb), "vmap other axis")
    close(T.jit(T.vmap(per_example, in_axes=(None, 0)))(P, XB[rank]), shard(simb), "jit vmap")
    # a vmap axis of the same name wins over the mesh
    close(T.vmap(lambda x: lax.psum(x, "data"), axis_name="data")(np.arange(3.0)),
          np.full(3, 3.0), "vmap shadows mesh")
ok("vmap")

# --- a training step: 1-process vmap simulation == N processes ------------------------------
Y = rng.normal(size=(n, 5, 2)).astype(np.float32)


def step(p, x, y):
    g = T.grad(lambda p: ((x @ p["w"] + p["b"] - y) ** 2).mean())(p)
    g = lax.pmean(g, "data")
    return T.tree.map(lambda a, b: a - 0.1 * b, p, g)


psim = P
for _ in range(3):
    stacked = T.vmap(step, in_axes=(None, 0, 0), axis_name="data")(psim, X, Y)
    for a in T.tree.leaves(stacked):          # replicated: every simulated process agrees
        assert np.allclose(a, a[:1], rtol=1e-6, atol=1e-7)
    psim = T.tree.map(lambda a: a[0], stacked)
with mesh:
    js = T.jit(step)
    p = P
    for _ in range(3):
        p = js(p, X[rank], Y[rank])
close(p, psim, "train step")
everyone = dist.broadcast(p, root=0)
assert all(np.array_equal(a, b) for a, b in zip(T.tree.leaves(p), T.tree.leaves(everyone)))
ok("train step")

# --- large sums: reduced straight from the operands (no packing pass) ------------------------
def big(r, k):          # this process's operands at call k: integers, so every sum is exact
    return {"a": np.full((300, 277), r + 10 * k, np.float32),
            "b": np.arange(5000, dtype=np.float64) * (r + 1) + k,
            "c": np.full(3, r - k, np.float32), "d": np.arange(20001, dtype=np.int32) + r + k}


def big_sum(k, members, mean=False):
    out = T.tree.map(lambda *xs: sum(xs), *[big(r, k) for r in members])
    if mean:
        out = T.tree.map(lambda a: a / len(members), out)
    return out


def digest_of(tree):
    return np.concatenate([np.ascontiguousarray(x).view(np.uint8).ravel()
                           for x in T.tree.leaves(tree)])


assert R.world_comm().direct_sum_ok(np.float32, 300 * 277 * 4) == (1 < n <= 8)
with mesh:
    jsum = T.jit(lambda g: lax.psum(g, "data"))
    jmean = T.jit(lambda g: {k: lax.pmean(v, "data") for k, v in g.items() if k != "d"})
    kept = [(jsum(big(rank, k)), jmean(big(rank, k))) for k in range(3)]
    for k, (s_, m_) in enumerate(kept):        # results kept by the caller: never overwritten
        close(s_, big_sum(k, range(n)), f"large psum {k}", tol=0)
        assert s_["d"].dtype == np.int32 and np.array_equal(s_["d"], big_sum(k, range(n))["d"])
        close(m_, {q: v for q, v in big_sum(k, range(n), mean=True).items() if q != "d"},
              f"large pmean {k}", tol=0)
    g = big(rank, 0)
    for k in range(3):                         # the usual loop: the last result alive meanwhile
        g = jsum(g)
    close(g, T.tree.map(lambda a: a * n ** 2, big_sum(0, range(n))), "large psum loop", tol=0)
    eager = [(lax.psum(big(rank, k), "data"), lax.pmean(big(rank, k), "data")) for k in range(2)]
    for k, (s_, m_) in enumerate(eager):       # eagerly the same, kept results intact too
        close(s_, big_sum(k, range(n)), f"eager large psum {k}", tol=0)
        close(m_, big_sum(k, range(n), mean=True), f"eager large pmean {k}", tol=0)
    mine = digest_of(jmean(big(rank, 5)))      # the same bits on every process
    assert np.array_equal(mine, dist.broadcast(mine, root=0))
if n == 4:                                     # over a 2-member axis of a 2x2 mesh
    with dist.Mesh({"data": 2, "model": 2}):
        members = [rank - rank % 2, rank - rank % 2 + 1]
        got = T.jit(lambda g: lax.pmean(g, "model"))(big(rank, 1))
        close(got, big_sum(1, members, mean=True), "large pmean over model", tol=0)
ok("large sums")

# --- a large sum with small leaves (staged, one message) and planned, persistent requests -----
def mixed(r, k):        # two large leaves, four small ones (one a scalar); exact integer sums
    return {"w1": np.full((300, 277), r + 10 * k, np.float32),
            "b1": np.full(277, r - k, np.float32),
            "w2": np.arange(277 * 300, dtype=np.float32).reshape(277, 300) + r * k,
            "b2": np.full(300, 2 * r + k, np.float32), "s": np.array(r * 3 + k, np.float32),
            "w3": np.full((300, 10), r + 100 * k, np.float32)}


def mixed_mean(k, members):
    return T.tree.map(lambda *xs: sum(xs) / len(members), *[mixed(r, k) for r in members])


def check_mixed(axis, members):
    f = T.jit(lambda g: lax.pmean(g, axis))
    assert "reduced into one float32[" in f.lower(mixed(rank, 0)).as_text()
    me = members.index(rank)
    kept = [f(mixed(rank, k)) for k in range(5)]    # more than the pool: the oldest forgotten
    for k, got in enumerate(kept):
        close(got, mixed_mean(k, members), f"mixed pmean {k} over {axis}", tol=0)
        assert got["s"].shape == () and got["w2"].shape == (277, 300)
    same = mixed(rank, 7)                           # the same arrays again, changed in place:
    for k in range(3):                              # what is sent is what they hold now
        for v in same.values():
            v[...] = np.asarray(v) + (me + 1)
        got = f(same)
        expect = T.tree.map(lambda a: a + sum(range(1, len(members) + 1)) * (k + 1) /
                            len(members), mixed_mean(7, members))
        close(got, expect, f"mixed pmean, operands changed in place {k}", tol=0)
        del got
    g = mixed(rank, 1)
    for k in range(4):                              # the usual loop: the last result alive
        g = f(g)
    close(g, mixed_mean(1, members), f"mixed pmean loop over {axis}", tol=0)
    mine = digest_of(f(mixed(rank, 3)))             # the same bits on every member
    every = lax.all_gather(mine, axis)
    assert all(np.array_equal(mine, d) for d in every)


with mesh:
    check_mixed("data", list(range(n)))
if n == 4:
    with dist.Mesh({"data": 2, "model": 2}):
        check_mixed("model", [rank - rank % 2, rank - rank % 2 + 1])
# on the world's own group too (its requests outlive every mesh: freed at exit, no warning)
world_sum = R.world_comm().direct_sum(np.float32, [70000, 3000, 5])
got = world_sum.run([np.full(70000, rank, np.float32), np.full((30, 100), 1, np.float32),
                     np.arange(5, dtype=np.float32) * rank])
assert got[world_sum.offsets[0]] == sum(range(n)) and got[world_sum.offsets[1]] == n
assert got[world_sum.offsets[2] + 4] == 4 * sum(range(n))
ok("large sums with small leaves")

# --- collectives inside scan / while / cond under jit: compiled bodies, not the NumPy impls ---
from transforms.lax.control_flow import conditionals as _cf_cond  # noqa: E402
from transforms.lax.control_flow import loops as _cf_loops  # noqa: E402


def cf(c, xs):
    def body(c, x):
        s = lax.psum(x * (c + 1.0), "data")
        return c + lax.pmean(s, "data"), s * 2.0
    c, ys = lax.scan(body, c, xs)
    w = lax.while_loop(lambda v: lax.psum(v, "data")[0] < 50.0, lambda v: v + 1.0 + c * 0.0,
                       c * 0.0 + 1.0)
    b = lax.cond(lax.psum(xs[0, 0], "data") > 0, lambda v: lax.pmax(v, "data"),
                 lambda v: lax.pmin(v, "data"), ys[-1])
    return c, ys, w, b


XS = (np.arange(n * 6, dtype=np.float32).reshape(n, 3, 2) + 1.0)
sim = T.vmap(cf, in_axes=(None, 0), axis_name="data")(np.zeros(2, np.float32), XS)
impls = (_cf_loops.scan_p.impl, _cf_loops.while_p.impl, _cf_cond.cond_p.impl)


def refuse(*a, **k):
    raise AssertionError("a control-flow body with collectives ran through its NumPy impl")


with mesh:
    jcf = T.jit(cf)
    _cf_loops.scan_p.impl = _cf_loops.while_p.impl = _cf_cond.cond_p.impl = refuse
    try:
        for _ in range(2):                      # the first call checks, the second does not
            got = jcf(np.zeros(2, np.float32), XS[rank])
    finally:
        _cf_loops.scan_p.impl, _cf_loops.while_p.impl, _cf_cond.cond_p.impl = impls
    close(got, T.tree.map(lambda a: a[rank], sim), "scan/while/cond with collectives")
    assert float(got[2][0]) * n >= 50.0 and got[3].shape == (2,)
ok("control flow")

# --- 2-D mesh (4 processes) -----------------------------------------------------------------
if n == 4:
    m2 = dist.Mesh({"data": 2, "model": 2})
    d, mo = m2.axis_index("data"), m2.axis_index("model")
    assert (d, mo) == (rank // 2, rank % 2)
    v = np.array([float(rank)])
    with m2:
        assert lax.psum(v, "model")[0] == 2 * d * 2 + 1
        assert lax.psum(v, "data")[0] == mo * 2 + 2
        assert lax.psum(v, ("data", "model"))[0] == 6
        assert int(lax.axis_index(("data", "model"))) == rank
        assert np.array_equal(T.jit(lambda v: lax.all_gather(v, ("data", "model")))(v).ravel(),
                              np.arange(4.0))
        # one jitted pmean, traced under one mesh, counts the members of the mesh it runs in
        jm = T.jit(lambda v: lax.pmean(v, "data"))
        assert jm(v)[0] == (mo + mo + 2) / 2
        both = lambda v: lax.pmean({"a": v, "b": 2 * v}, ("data", "model"))   # noqa: E731
        for g in (both, T.jit(both)):
            r2 = g(v)
            assert r2["a"][0] == 1.5 and r2["b"][0] == 3.0, (rank, r2)
        assert lax.pmax(v, ("data", "model"))[0] == 3 and lax.pmin(v, ("model", "data"))[0] == 0
    with mesh:
        assert jm(v)[0] == 1.5
    # ppermute over both axes: members numbered row-major in the mesh's axis order, i.e. by
    # process index, whatever the order of the names (as JAX under shard_map)
    perm = [(0, 3), (3, 1), (1, 0)]                  # member 2 receives nothing
    src_of = {dd: ss for ss, dd in perm}

    def expect(me):
        s = src_of.get(me)
        return 0.0 if s is None else float(s)

    with m2:
        pp = lambda v: lax.ppermute(v * 1.0, ("data", "model"), perm)   # noqa: E731
        assert pp(v)[0] == expect(rank)
        assert T.jit(pp)(v)[0] == expect(rank)
        assert lax.ppermute(v, ("model", "data"), perm)[0] == expect(rank)
        assert T.jit(lambda v: lax.ppermute(v, ("model", "data"), perm))(v)[0] == expect(rank)
        # the transpose is the inverse permutation: d/dv sum(w * ppermute(v)) = ppermute^-1(w)
        wv = np.array([10.0 + rank])
        g = T.jit(T.grad(lambda v: (lax.ppermute(v, ("data", "model"), perm) * wv).sum()))(v)
        dst_of = {ss: dd for ss, dd in perm}
        assert g[0] == (10.0 + dst_of[rank] if rank in dst_of else 0.0), (rank, g)
        # a vmap over another axis maps it through: each example permuted across processes
        xb = np.arange(3.0) + 10 * rank
        out = T.vmap(lambda u: lax.ppermute(u, ("data", "model"), perm))(xb)
        s = src_of.get(rank)
        assert np.array_equal(out, np.zeros(3) if s is None else np.arange(3.0) + 10 * s)
        # mixed: "model" across processes, "i" a vmap on each: gathered over both
        xi = np.array([[rank * 2.0], [rank * 2.0 + 1]])   # member (model m, i) = 2m + i here
        mixed = T.vmap(lambda u: lax.ppermute(u, ("model", "i"), [(0, 3), (3, 0)]),
                       axis_name="i")(xi)
        base = d * 4.0                                    # this data row's values: base + 0..3
        assert mixed[:, 0].tolist() == ([base + 3, 0.0] if mo == 0 else [0.0, base]), \
            (rank, mixed)
    ok("2-D mesh")

# --- dtypes: float16, bool, int, complex, 0-d ---------------------------------------------
with mesh:
    h = np.array(rank + 0.5, np.float16)
    assert lax.ppermute(h, "data", [(0, n - 1)]).dtype == np.float16
    assert float(lax.ppermute(h, "data", [(0, n - 1)])) == (0.5 if rank == n - 1 else 0.0)
    assert lax.all_gather(h, "data").tolist() == [r + 0.5 for r in range(n)]
    assert float(lax.psum(h, "data")) == sum(r + 0.5 for r in range(n))
    b = np.array([rank == 0, True])
    assert lax.pmax(b, "data").tolist() == [True, True]
    assert lax.pmin(b, "data").tolist() == [n == 1, True]
    assert lax.psum(b, "data").tolist() == [1, n]
    assert int(lax.psum(np.int32(rank), "data")) == n * (n - 1) // 2
    assert complex(lax.psum(np.complex128(1j * rank), "data")) == 1j * n * (n - 1) / 2
    jb = T.jit(lambda b, h, r: (lax.pmax(b, "data"), lax.all_gather(h, "data"),
                                lax.pmean(r, "data")))
    rb, rh, rm = jb(b, h, np.float32(rank))
    assert rb.tolist() == [True, True] and rh.tolist() == [r + 0.5 for r in range(n)]
    assert float(rm) == (n - 1) / 2
ok("dtypes")

# --- errors ---------------------------------------------------------------------------------
try:
    lax.psum(np.ones(2), "data")                    # no mesh active
    raise AssertionError("no error")
except lax.UnboundAxisNameError:
    pass
with mesh:
    try:
        lax.psum(np.ones(2 + rank), "data")         # shapes differ across processes
        raise AssertionError("no error")
    except ValueError as e:
        assert "disagree" in str(e) and "process" in str(e), e
    try:
        lax.psum(np.ones(2, np.float32 if rank == 0 else np.float64), "data")
        raise AssertionError("no error")
    except ValueError as e:
        assert "disagree" in str(e), e
    try:
        T.jit(lambda x: lax.psum(x, "data"))(np.ones(3 + rank))
        raise AssertionError("no error")
    except ValueError as e:
        assert "disagree" in str(e), e
ok("errors")

if rank == 0:
    print("ALL OK", flush=True)
