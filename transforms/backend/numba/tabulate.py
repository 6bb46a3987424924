"""Runs of identical helper calls become one loop over a table (compile time linear in leaves).

A pytree of many leaves (an optimiser step over a model's parameter arrays, a `tree.map`)
lowers to the same fused nest once per leaf; `lowering.outline` already makes that nest one
helper, but the main function still holds one call per leaf, one argument per leaf array, and
Numba's Python wrapper unboxes each argument with its own error-cleanup path. Numba and LLVM
spend time superlinear in that straight-line length: 1,000 leaves took minutes to compile.

Here a run of at least `MIN_RUN` consecutive calls of the same helper whose arguments differ
only in ways a table can say is replaced by a loop::

    for _k in range(K):
        _h0(_leaf(_addr, _TA0[_k], _TS0[_k], float32), _rf32[_TL0[_k]:_TH0[_k]], _TI0[_k])

Per argument position, across the run, an argument is
* the same text in every call (a scalar or an array every call reads): kept as it is;
* an integer (a loop bound): a table of integers;
* a slice `name[lo:hi]` of one workspace or arena: tables of bounds;
* a leaf array the main function takes as an argument: a table of positions in `_addr`, an
  int64 array of data addresses the runner fills on each call (so those leaves stop being
  arguments at all).
Any other run is left unrolled. The loop runs the calls in their original order, so
dependencies between them hold as before. Programs without long runs are untouched (their
source, and so their cache entries, stay exactly as they were).
"""
from __future__ import annotations

import re

import numpy as np

MIN_RUN = 16

_CALL = re.compile(r"^    (_h\d+)\((.*)\)$")
_SLICE = re.compile(r"^([A-Za-z_]\w*)\[(\d+):(\d+)\]$")


def _split_args(text):
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur).strip())
    return out


class Tables:
    """The module-level tables and the leaves that moved into the address table."""

    def __init__(self):
        self.lines = []            # module-level source: `_TI0 = _np.array([...], ...)`
        self.addressed = []        # names of leaf arrays passed through `_addr`, in order
        self._index = {}

    def table(self, prefix, values):
        name = f"_T{prefix}{len(self.lines)}"
        self.lines.append(f"{name} = _np.array({list(map(int, values))!r}, dtype=_np.int64)")
        return name

    def address_of(self, name):
        if name not in self._index:
            self._index[name] = len(self.addressed)
            self.addressed.append(name)
        return self._index[name]


def _position_kind(column, leaves):
    """How one argument position varies across a run (see the module doc), or None."""
    if all(a == column[0] for a in column):
        return ("same",)
    if all(a.isdigit() for a in column):
        return ("int",)
    m = [_SLICE.match(a) for a in column]
    if all(m) and len({x.group(1) for x in m}) == 1:
        return ("slice", m[0].group(1))
    if all(a in leaves for a in column) and len({leaves[a][0] for a in column}) == 1:
        return ("leaf", leaves[column[0]][0])
    return None


def tabulate(lines, leaves, tables=None):
    """Rewrite the main function's body `lines`. `leaves`: name -> (dtype, size) of the leaf
    arrays that may move into the address table. Returns `(lines, tables)`."""
    tables = tables or Tables()
    out, i = [], 0
    n = len(lines)
    while i < n:
        m = _CALL.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        helper = m.group(1)
        run, j = [i], i + 1
        while j < n:
            if lines[j].startswith("    #") and not lines[j].startswith("     "):
                j += 1
                continue
            m2 = _CALL.match(lines[j])
            if not m2 or m2.group(1) != helper:
                break
            run.append(j)
            j += 1
        calls = [_split_args(_CALL.match(lines[k]).group(2)) for k in run]
        loop = None
        if len(run) >= MIN_RUN and len({len(c) for c in calls}) == 1:
            loop = _loop(helper, calls, leaves, tables)
        if loop is None:
            out.extend(lines[i:run[-1] + 1])
        else:
            # the IR comments above the first call (already out) say what the nest computes
            out.append(f"    # ... and the same nest for {len(run) - 1} more leaves, "
                       f"from tables:")
            out.extend(loop)
        i = run[-1] + 1
    return out, tables


def _loop(helper, calls, leaves, tables):
    columns = list(zip(*calls))
    kinds = [_position_kind(list(col), leaves) for col in columns]
    if any(k is None for k in kinds):
        return None
    args = []
    for col, kind in zip(columns, kinds):
        if kind[0] == "same":
            args.append(col[0])
        elif kind[0] == "int":
            args.append(f"{tables.table('I', [int(a) for a in col])}[_k]")
        elif kind[0] == "slice":
            ms = [_SLICE.match(a) for a in col]
            lo = tables.table("L", [int(x.group(2)) for x in ms])
            hi = tables.table("H", [int(x.group(3)) for x in ms])
            args.append(f"{kind[1]}[{lo}[_k]:{hi}[_k]]")
        else:
            dtype = np.dtype(kind[1])
            pos = tables.table("A", [tables.address_of(a) for a in col])
            size = tables.table("S", [leaves[a][1] for a in col])
            args.append(f"_leaf(_addr, {pos}[_k], {size}[_k], _np.{dtype.name})")
    return [f"    for _k in range({len(calls)}):",
            f"        {helper}({', '.join(args)})"]


# Source added to a module that uses the address table: a leaf array from its address.
LEAF_SOURCE = '''
from numba import carray as _carray
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic as _intrinsic


@_intrinsic
def _as_pointer(typingctx, address):
    """An int64 address as a void pointer (the runner took it from a live NumPy array)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], _cgutils.voidptr_t)
    return _t.voidptr(address), codegen


@_njit(inline="always")
def _leaf(addr, pos, size, dtype):
    return _carray(_as_pointer(addr[pos]), (size,), dtype)
'''


def remaining_uses(lines, names):
    """Those of `names` that the rewritten body still mentions directly."""
    text = "\n".join(ln.split("#", 1)[0] for ln in lines)      # code, not comments
    return {n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text)}
