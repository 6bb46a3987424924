"""A large sum (or mean) over a few processes, straight from the operands, planned once.

`DirectSum(comm, dtype, sizes, ...)` sums, over the members of `comm`, operands of fixed sizes
laid end to end in one 1-D buffer whose views are the results. Reduce-scatter then all-gather,
both straight from the operands: member c receives every other member's part of chunk c
(contiguous slices of the operands, sent as they are), adds its own part and scales in one
pass per piece while the piece is in cache, then the reduced chunks are handed round (one
exchange for 2 members, `Allgatherv` in place for more). Against packing the operands into one
buffer for `Allreduce` this saves the packing pass over the whole tree (a memcpy of it, a third
of the all-reduce's time for 2.7 MB on 2 processes) and moves the same bytes as MPI's own
reduce-scatter/all-gather algorithm for large messages. (An MPI derived datatype over the
operands cannot be the send buffer of a reduction - MPI applies one datatype to both buffers -
and sending through one was measured slower: MPI packs it.) Every member ends with the same
bits: each chunk is reduced by one member only.

What is planned once, so that a repeated call (a training loop) does no planning:
- the chunks and their pieces (operand, offset, length);
- the layout: operands under `_SMALL_BYTES` (biases, a last layer) are copied into one staging
  buffer and travel as one message, the others are sent from where they are (the MLP's 6-leaf
  gradient on 2 processes: 4 reduce-scatter messages instead of 7); the results are views at
  `offsets`;
- persistent MPI requests (`Recv_init`/`Send_init`, started together by `Startall`): into each
  pooled output buffer, out of the staging buffer, and out of each operand's memory for as
  long as the operand comes at the same address (a step whose gradients the allocator puts
  where the last step's were). Requests are made from raw addresses, so that they hold no
  reference to the arrays: the pool's reference count check stays exact and no caller's
  array is kept alive. Every piece has its own tag: `Startall` may start them in any order.

The output buffers are a small pool, reused only when no result of an earlier call is alive
(a live view keeps its base's reference count up): results a caller holds are never
overwritten. MPI moves memory it has moved before faster than new memory (the library caches
what it has registered), which is why buffers are kept at all.
"""
from __future__ import annotations

import atexit
import sys
import weakref

import numpy as np

from . import _runtime as R
from ._kernels import add_scaled_into

# operands smaller than this travel together through a staging buffer: a message costs a few
# microseconds (a rendezvous for large ones), a copy of 32 kB about two
_SMALL_BYTES = 1 << 15
_POOL = 3           # output buffers kept: results alive in the caller's loop pin some
_TAGS = 16384       # pieces of one chunk get tags _TAG + 1 + k; past this, started in order


def plan_chunks(n, sizes):
    """(counts, offs, pieces): member c reduces elements offs[c]:offs[c + 1] of the operands
    of `sizes` laid end to end; pieces[c] lists that chunk's (operand, start in operand,
    start in chunk, length)."""
    total = sum(sizes)
    counts = [total // n + (c < total % n) for c in range(n)]
    offs = [0]
    for c in counts:
        offs.append(offs[-1] + c)
    starts = [0]
    for s in sizes:
        starts.append(starts[-1] + s)
    pieces = []
    for c in range(n):
        a, b, mine = offs[c], offs[c + 1], []
        for i, (s, k) in enumerate(zip(starts, sizes)):
            lo, hi = max(a, s), min(b, s + k)
            if lo < hi:
                mine.append((i, lo - s, lo - a, hi - lo))
        pieces.append(mine)
    return counts, offs, pieces


_LIVE = weakref.WeakSet()       # every DirectSum, for freeing their requests at exit


@atexit.register
def _free_all():
    """Free the persistent requests before MPI is finalised (mpi4py finalises after Python's
    exit handlers; MPICH warns about every persistent request still allocated then)."""
    for ds in list(_LIVE):
        ds.free()


def _addr_buffer(MPI, addr, nbytes):
    return [MPI.buffer.fromaddress(addr, nbytes), MPI.BYTE]


class _Slot:
    """A pooled output buffer with the persistent requests that receive into it."""
    __slots__ = ("buf", "recvs", "gather", "adds", "refs")


def _refcount(slot):
    # counted the same way when the slot is made and when it is checked
    return sys.getrefcount(slot.buf)


class DirectSum:
    """The sum over `comm` (2 or more members) of operands of `sizes` elements of `dtype`,
    times `scale` or divided by `divide` if given: `run(values)` returns the output buffer,
    whose `offsets[i]:offsets[i] + sizes[i]` is operand i's result.

    `pack_small=False` keeps the operands in their order (no staging buffer), for a caller
    that lays the results out itself (`run_into`)."""

    def __init__(self, comm, dtype, sizes, scale=None, divide=None, pack_small=True):
        self.comm, self.MPI = comm, R.mpi()
        self.n, self.rank = comm.size, comm.rank
        self.dtype = dt = np.dtype(dtype)
        self.sizes = sizes = [int(s) for s in sizes]
        self.scale, self.divide = scale, divide
        small = [i for i, s in enumerate(sizes) if s * dt.itemsize < _SMALL_BYTES] \
            if pack_small else []
        if len(small) < 2:
            small = []
        in_stage = set(small)
        self.big = [i for i in range(len(sizes)) if i not in in_stage]
        self.offsets = [0] * len(sizes)
        off = 0
        for i in self.big + small:
            self.offsets[i] = off
            off += sizes[i]
        self.total = off
        vsizes = [sizes[i] for i in self.big]
        self.stage, self.stage_parts = None, []
        if small:
            self.stage = np.empty(sum(sizes[i] for i in small), dt)
            o = 0
            for i in small:
                self.stage_parts.append((i, self.stage[o:o + sizes[i]]))
                o += sizes[i]
            vsizes.append(self.stage.size)
        self.counts, self.offs, self.pieces = plan_chunks(self.n, vsizes)
        n, r = self.n, self.rank
        self.others = [s for s in range(n) if s != r]
        self.in_order = any(len(p) > _TAGS for p in self.pieces)
        self.scratch = np.empty((n - 2, self.counts[r]), dt) if n > 2 else None
        # sends: per operand (or the stage), its pieces for each other member, with tags
        self.sends_of = [[] for _ in vsizes]
        for d in self.others:
            for k, (j, a, c, m) in enumerate(self.pieces[d]):
                self.sends_of[j].append((d, a, m, self._tag(k)))
        self.send_cache = [None] * len(vsizes)       # j -> (address, persistent requests)
        self.slots = []
        _LIVE.add(self)

    def free(self):
        """Free every persistent request (the object stays usable: they are made again)."""
        for slot in self.slots:
            for req in slot.recvs + slot.gather:
                req.Free()
        self.slots = []
        for j, cached in enumerate(self.send_cache):
            if cached is not None:
                for req in cached[1]:
                    req.Free()
                self.send_cache[j] = None

    def __del__(self):
        try:
            if R.mpi() is not None and not R.mpi().Is_finalized():
                self.free()
        except Exception:               # at interpreter exit MPI may be gone
            pass

    def _tag(self, k):
        return R._TAG + 1 + k % _TAGS

    # -- the output buffers -----------------------------------------------------------------
    def _new_slot(self):
        MPI, comm, dt, n, r = self.MPI, self.comm.comm, self.dtype, self.n, self.rank
        isz = dt.itemsize
        slot = _Slot()
        slot.buf = buf = np.empty(self.total, dt)
        base = MPI.buffer(buf).address
        lo = self.offs[r]
        slot.recvs = []
        for k, s in enumerate(self.others):
            for q, (j, a, c, m) in enumerate(self.pieces[r]):
                addr = base + (lo + c) * isz if k == 0 else \
                    MPI.buffer(self.scratch[k - 1]).address + c * isz
                slot.recvs.append(comm.Recv_init(_addr_buffer(MPI, addr, m * isz), source=s,
                                                 tag=self._tag(q)))
        # the pieces of this member's chunk (the views the reducing adds write through)
        mine = buf[lo:self.offs[r + 1]]
        slot.adds = [(j, a, mine[c:c + m], c, m) for j, a, c, m in self.pieces[r]]
        slot.gather = []
        if n == 2:                # one exchange: measured faster than MPI's Allgatherv for 2
            p = 1 - r
            slot.gather = [
                comm.Recv_init(_addr_buffer(MPI, base + self.offs[p] * isz,
                                            self.counts[p] * isz), source=p, tag=R._TAG),
                comm.Send_init(_addr_buffer(MPI, base + lo * isz, self.counts[r] * isz),
                               dest=p, tag=R._TAG)]
        del buf, mine           # the baseline: the slot's own references only
        slot.refs = _refcount(slot)
        return slot

    def _free_slot(self):
        for slot in self.slots:
            if _refcount(slot) <= slot.refs:
                return slot
        if len(self.slots) >= _POOL:          # every one pinned by the caller: forget the oldest
            old = self.slots.pop(0)
            for req in old.recvs + old.gather:
                req.Free()
        slot = self._new_slot()
        self.slots.append(slot)
        return slot

    # -- the sends out of the operands ------------------------------------------------------
    def _sends(self, vflats):
        MPI, comm, isz = self.MPI, self.comm.comm, self.dtype.itemsize
        reqs = []
        for j, x in enumerate(vflats):
            todo = self.sends_of[j]
            if not todo:
                continue
            addr = MPI.buffer(x).address
            cached = self.send_cache[j]
            if cached is None or cached[0] != addr:
                if cached is not None:
                    for req in cached[1]:
                        req.Free()
                cached = self.send_cache[j] = (addr, [
                    comm.Send_init(_addr_buffer(MPI, addr + a * isz, m * isz), dest=d, tag=tag)
                    for d, a, m, tag in todo])
            reqs += cached[1]
        return reqs

    def _operands(self, values):
        """The operands as sent: the large ones flat as they are, the small ones staged."""
        dt = self.dtype
        vflats = []
        for i in self.big:
            v = values[i]
            # the usual case (a compiled segment's output, a jit argument) costs one view
            vflats.append(v.reshape(-1) if type(v) is np.ndarray and v.dtype == dt and
                          v.flags.c_contiguous else np.ascontiguousarray(v, dt).reshape(-1))
        if self.stage is not None:
            for i, part in self.stage_parts:
                part[...] = np.asarray(values[i]).reshape(-1)
            vflats.append(self.stage)
        return vflats

    # -- the reduction ----------------------------------------------------------------------
    def run(self, values) -> np.ndarray:
        """Sum `values` (arrays of `sizes` elements, any shape) over the group into a pooled
        buffer, returned; the results are its views at `offsets`."""
        R.COUNTS["reductions"] += 1
        MPI = self.MPI
        vflats = self._operands(values)
        slot = self._free_slot()
        reqs = slot.recvs + self._sends(vflats)
        if self.in_order:
            for req in reqs:
                req.Start()
        else:
            MPI.Prequest.Startall(reqs)
        MPI.Request.Waitall(reqs)
        self._add(vflats, slot.adds)
        if slot.gather:
            MPI.Prequest.Startall(slot.gather)
            MPI.Request.Waitall(slot.gather)
        else:
            self._allgather(slot.buf)
        return slot.buf

    def run_into(self, flats, out) -> np.ndarray:
        """The same into a given `out` (operands in order: made with `pack_small=False`), with
        requests made for this call (`out` is not pooled here)."""
        assert self.stage is None
        R.COUNTS["reductions"] += 1
        MPI, comm, n, r = self.MPI, self.comm.comm, self.n, self.rank
        mine = out[self.offs[r]:self.offs[r + 1]]
        reqs = []
        for k, s in enumerate(self.others):
            dst = mine if k == 0 else self.scratch[k - 1]
            for q, (j, a, c, m) in enumerate(self.pieces[r]):
                reqs.append(comm.Irecv(dst[c:c + m].view(np.uint8), source=s,
                                       tag=self._tag(q)))
        for d in self.others:
            for k, (j, a, c, m) in enumerate(self.pieces[d]):
                reqs.append(comm.Isend(flats[j][a:a + m].view(np.uint8), dest=d,
                                       tag=self._tag(k)))
        MPI.Request.Waitall(reqs)
        adds = [(j, a, mine[c:c + m], c, m) for j, a, c, m in self.pieces[r]]
        self._add(flats, adds)
        if n == 2:
            p = 1 - r
            comm.Sendrecv(mine.view(np.uint8), p, R._TAG,
                          out[self.offs[p]:self.offs[p + 1]].view(np.uint8), p, R._TAG)
        else:
            self._allgather(out)
        return out

    def _add(self, vflats, adds):
        """This member's chunk += its own part (and the other members' parts beyond the first,
        received into the scratch rows), then scaled: piece by piece, while it is in cache."""
        scale, divide, n = self.scale, self.divide, self.n
        for j, a, dst, c, m in adds:
            own = vflats[j][a:a + m]
            if n == 2:
                add_scaled_into(own, dst, scale, divide)
                continue
            np.add(own, dst, out=dst)
            for k in range(n - 3):
                np.add(self.scratch[k, c:c + m], dst, out=dst)
            add_scaled_into(self.scratch[n - 3, c:c + m], dst, scale, divide)

    def _allgather(self, out):
        MPI, isz = self.MPI, self.dtype.itemsize
        raw = out.view(np.uint8)
        self.comm.comm.Allgatherv(MPI.IN_PLACE, [raw, [c * isz for c in self.counts],
                                                 [o * isz for o in self.offs[:-1]], MPI.BYTE])
