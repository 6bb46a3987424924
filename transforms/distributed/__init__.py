"""`transforms.distributed`: one program on several processes, over MPI.

    from transforms import distributed as dist
    dist.initialize()                       # idempotent; under mpiexec joins the MPI world
    mesh = dist.Mesh({"data": 2})           # axis name -> size; product == process_count()
    with mesh:
        g = lax.pmean(g, "data")            # eagerly, under jit, grad and vmap

Started without a launcher (plain `python train.py`) the world is one process and nothing
needs `mpi4py`. Under `mpiexec -n N` every process runs the same script; an uncaught exception
on any of them prints its traceback (prefixed with the process index) and aborts the whole job
(under a launcher the world is joined when this package is imported, i.e. by `import transforms`).

Collectives (`lax.psum pmean pmax pmin all_gather axis_index ppermute`) on a name that an
active mesh binds run over that axis's process group; on a name a `vmap(axis_name=...)` binds
they combine the examples of that vmap instead (the vmap wins when both bind a name), which is
how distributed code is debugged on one process.
"""
from __future__ import annotations

import numpy as np

from . import _runtime as _R
from ._mesh import Mesh, active_meshes
from ._runtime import initialize, process_count, process_index

__all__ = ["initialize", "process_index", "process_count", "Mesh", "broadcast", "send", "recv",
           "recv_any", "barrier", "active_meshes", "is_launched", "run_on_root"]


def is_launched() -> bool:
    """True when started by an MPI launcher."""
    return _R.launched()


def barrier():
    """Wait until every process reaches this call."""
    w = _R.world()
    if w is not None and _R.process_count() > 1:
        w.Barrier()


# ---------------------------------------------------------------------------------------------
# pytrees as one contiguous byte buffer
# ---------------------------------------------------------------------------------------------

def _path_str(path):
    from .. import tree as tree_util
    return tree_util.keystr(path) or "(the root)"


def _flatten(tree, what):
    from .. import tree as tree_util
    pairs, treedef = tree_util.flatten_with_path(tree)
    paths, leaves = [], []
    for path, leaf in pairs:
        if hasattr(leaf, "aval") and not isinstance(leaf, np.ndarray):
            raise TypeError(f"{what}: the leaf at {_path_str(path)} is a traced value; "
                            "point-to-point and broadcast move concrete arrays (call them "
                            "outside jit/grad/vmap)")
        paths.append(path)
        leaves.append(leaf)
    return paths, leaves, treedef


def _spec(leaf):
    if isinstance(leaf, np.ndarray) or not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
        a = np.asarray(leaf)
        return a.shape, a.dtype
    return tuple(leaf.shape), np.dtype(leaf.dtype)


def _signature(paths, leaves):
    return [(_path_str(p), tuple(int(s) for s in _spec(x)[0]), _spec(x)[1].str)
            for p, x in zip(paths, leaves)]


def _pack(leaves):
    arrs = [np.asarray(x, order="C") for x in leaves]
    total = sum(a.nbytes for a in arrs)
    buf = np.empty(total, np.uint8)
    off = 0
    for a in arrs:
        buf[off:off + a.nbytes] = a.reshape(-1).view(np.uint8)
        off += a.nbytes
    return buf


def _unpack(buf, sig):
    out, off = [], 0
    for _, shape, dt in sig:
        dt = np.dtype(dt)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        out.append(buf[off:off + n].view(dt).reshape(shape))
        off += n
    return out


def _describe_mismatch(mine, theirs, what):
    if len(mine) != len(theirs):
        pm = {p for p, _, _ in mine}
        pt = {p for p, _, _ in theirs}
        only = sorted(pm - pt)[:3] or sorted(pt - pm)[:3]
        return (f"{what}: the trees differ in structure ({len(theirs)} leaves arriving, "
                f"{len(mine)} in the target); e.g. path {only[0] if only else '?'}")
    for (p1, s1, d1), (p2, s2, d2) in zip(mine, theirs):
        if p1 != p2:
            return f"{what}: the trees differ in structure: target path {p1} vs incoming {p2}"
        if s1 != s2 or d1 != d2:
            return (f"{what}: the leaf at path {p1} is {np.dtype(d1).name}{list(s1)} in the "
                    f"target but {np.dtype(d2).name}{list(s2)} arriving")
    return None


def _check_rank(r, what, name):
    n = process_count()
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < n:
        raise ValueError(f"{what}: {name}={r!r} is not a process index (process_count() is {n})")
    return int(r)


# ---------------------------------------------------------------------------------------------
# broadcast, send, recv
# ---------------------------------------------------------------------------------------------

def _skeleton(treedef, n):
    """The tree's structure with leaf i replaced by i, pickled (None if it cannot be)."""
    import pickle
    try:
        return pickle.dumps(treedef.unflatten(list(range(n))))
    except Exception:             # e.g. a custom pytree node that cannot be pickled
        return None


def broadcast(tree, root=0):
    """Every process gets process `root`'s `tree` (e.g. the initial parameters). The other
    processes pass a tree of the same structure, shapes and dtypes (its values are replaced by
    root's) or `None` (they get root's structure). A mismatch raises ValueError everywhere."""
    root = _check_rank(root, "broadcast", "root")
    me = process_index()
    if process_count() == 1:
        if tree is None and me == root:
            return None
        paths, leaves, treedef = _flatten(tree, "broadcast")
        return treedef.unflatten([np.array(x) for x in leaves])
    comm = _R.world()
    if me != root and tree is None:
        paths, leaves, treedef, sig = None, None, None, None
    else:
        paths, leaves, treedef = _flatten(tree, "broadcast")
        sig = _signature(paths, leaves)
    header = comm.bcast((sig, _skeleton(treedef, len(leaves))) if me == root else None,
                        root=root)
    root_sig, skeleton = header
    if sig is None:
        problem = None if skeleton is not None else (
            "broadcast: the root's tree structure cannot be sent (a custom pytree node that "
            "does not pickle); pass a tree of the same structure instead of None")
    else:
        problem = _describe_mismatch(sig, root_sig, "broadcast")
    problems = comm.allgather(problem)
    bad = [(r, p) for r, p in enumerate(problems) if p is not None]
    if bad:
        r, p = bad[0]
        raise ValueError(f"{p} (process {r} vs root {root}; every process must pass a tree "
                         f"shaped like the root's, or None)")
    nbytes = sum(np.dtype(d).itemsize * int(np.prod(s, dtype=np.int64)) for _, s, d in root_sig)
    buf = _pack(leaves) if me == root else np.empty(nbytes, np.uint8)
    comm.Bcast(buf, root=root)
    if me == root:
        return treedef.unflatten([np.array(x) for x in leaves])
    values = _unpack(buf, root_sig)
    if treedef is None:
        import pickle
        from .. import tree as tree_util
        return tree_util.map(lambda i: values[i], pickle.loads(skeleton))
    return treedef.unflatten(values)


def _check_tag(tag, what):
    if isinstance(tag, bool) or not isinstance(tag, (int, np.integer)) or not 0 <= tag < 32767:
        raise ValueError(f"{what}: tag must be an int in [0, 32767), got {tag!r}")
    return int(tag)


def send(tree, dest, tag=0):
    """Send the pytree `tree` to process `dest` (matched by `recv(target, source=me, tag)`)."""
    dest = _check_rank(dest, "send", "dest")
    tag = _check_tag(tag, "send")
    if dest == process_index():
        raise ValueError(f"send: dest={dest} is this process itself")
    paths, leaves, _ = _flatten(tree, "send")
    sig = _signature(paths, leaves)
    comm = _R.p2p_comm()
    comm.send(sig, dest=dest, tag=tag)
    comm.Send(_pack(leaves), dest=dest, tag=tag)


def recv(target, source, tag=0):
    """Receive a pytree sent by `send(tree, dest=me, tag)` from process `source`; `target`
    (arrays or anything with .shape/.dtype) gives the expected structure, shapes and dtypes.
    Returns a new tree of arrays; a mismatch raises ValueError naming the path."""
    source = _check_rank(source, "recv", "source")
    tag = _check_tag(tag, "recv")
    if source == process_index():
        raise ValueError(f"recv: source={source} is this process itself")
    paths, leaves, treedef = _flatten(target, "recv")
    sig = _signature(paths, leaves)
    comm = _R.p2p_comm()
    theirs = comm.recv(source=source, tag=tag)
    nbytes = sum(np.dtype(d).itemsize * int(np.prod(s, dtype=np.int64)) for _, s, d in theirs)
    buf = np.empty(nbytes, np.uint8)
    comm.Recv(buf, source=source, tag=tag)            # drain the message even on a mismatch
    problem = _describe_mismatch(sig, theirs, f"recv from process {source}")
    if problem is not None:
        raise ValueError(problem)
    return treedef.unflatten(_unpack(buf, sig))


def recv_any(target, tag=0):
    """Receive a pytree shaped like `target` from whichever process sends one first (with
    `send(tree, dest=me, tag)`); returns `(source, tree)`. For servers that answer workers in
    the order they arrive (an asynchronous parameter server)."""
    tag = _check_tag(tag, "recv_any")
    if process_count() == 1:
        raise ValueError("recv_any: this is a one-process world; no other process can send")
    paths, leaves, treedef = _flatten(target, "recv_any")
    sig = _signature(paths, leaves)
    comm = _R.p2p_comm()
    status = _R.mpi().Status()
    theirs = comm.recv(source=_R.mpi().ANY_SOURCE, tag=tag, status=status)
    source = status.Get_source()
    nbytes = sum(np.dtype(d).itemsize * int(np.prod(s, dtype=np.int64)) for _, s, d in theirs)
    buf = np.empty(nbytes, np.uint8)
    comm.Recv(buf, source=source, tag=tag)     # messages between two processes do not overtake
    problem = _describe_mismatch(sig, theirs, f"recv_any from process {source}")
    if problem is not None:
        raise ValueError(problem)
    return source, treedef.unflatten(_unpack(buf, sig))


def run_on_root(fn, root=0):
    """Run `fn()` on process `root` only; every process returns its (picklable) result once it
    has finished. If `fn` raises on the root, every process raises (the others a RuntimeError
    quoting it), so no process is left waiting. One process: just `fn()`."""
    root = _check_rank(root, "run_on_root", "root")
    if process_count() == 1:
        return fn()
    comm = _R.world()
    result, error = None, None
    if process_index() == root:
        try:
            result = fn()
        except BaseException as e:          # shared with the others, then re-raised
            error = e
    status = comm.bcast(None if process_index() != root else
                        (("error", f"{type(error).__name__}: {error}") if error is not None
                         else ("ok", result)), root=root)
    if error is not None:
        raise error
    if status[0] == "error":
        raise RuntimeError(f"failed on process {root}: {status[1]}")
    return status[1]


def __getattr__(name):            # lax imports this package, so the error class comes lazily
    if name == "UnboundAxisNameError":
        from ..lax.collectives import UnboundAxisNameError
        return UnboundAxisNameError
    raise AttributeError(f"module 'transforms.distributed' has no attribute {name!r}")


# Under a launcher, join the world (and install the failure policy) as soon as the package is
# imported, so that an exception raised before the first collective - while loading data, say -
# still ends the whole job instead of leaving the other processes waiting.
if _R.launched():
    try:
        initialize()
    except ImportError:           # mpi4py missing: raised again, with advice, on first use
        pass
