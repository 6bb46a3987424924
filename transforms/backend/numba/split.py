"""Splitting a long generated main function into pieces Numba compiles faster.

Numba's front end (SSA reconstruction, liveness and reaching definitions over every block,
lowering) grows faster than linearly with the number of blocks and variables of a function,
so one 5,000-line function (the DP-SGD step of examples/per_example_grads.py: per-example
gradients plus four inlined normal samplers) takes minutes where its parts take seconds. When
the main function's body is longer than ``NUMBAX_SPLIT_LINES`` statement lines (default
300, 120 with the direct compiler; 0 turns splitting off), every top-level loop or ``if`` of at least ``MIN_PIECE`` lines
becomes a helper function of its own, called once at the same place (and, with the direct
compiler, runs of shorter statements are gathered into pieces too, see `_groups`):

* its parameters are the names it reads that the main function defined before it (arrays
  are passed by reference, so its stores into workspaces and outputs are seen);
* it returns the names it assigns that later code reads before assigning them;
* module-level names (constants, kernels, other helpers) stay global.

A piece whose parameters and results all have a type known before Numba types the main
function gets its signature written (``@_njit(<signature>, ...)``), so it compiles on its own:
as a module of its own, cached by content and possibly by another process (`helpers.py`,
`workers.py`). Known are the main function's parameters, the values of the IR (`vtypes`:
flat arrays and scalars of their dtype; scalars are cast to it at the call and on return, so
the piece sees the IR's dtype), and the names the main function binds before the piece by
the statements generated code uses for views and buffers (a static slice or a reshape of a
C-contiguous array, ``_np.empty``, an integer literal). Other pieces are typed from the call
(no signature) and stay in the main module. A piece that uses ``prange`` is not moved (a
helper would run it serially).
"""
from __future__ import annotations

import ast
import os
import re
from collections import ChainMap

MIN_PIECE = 20
GROUP_LINES = 60     # consecutive smaller statements are gathered into pieces about this long


def split_lines():
    """The threshold from ``NUMBAX_SPLIT_LINES`` (0: never split); by default 300 lines for
    Numba, 120 for the direct compiler (which gains from splitting only its compile lanes'
    parallelism, but gains it from shorter functions too)."""
    raw = os.environ.get("NUMBAX_SPLIT_LINES", "").strip()
    if not raw:
        from .direct import enabled
        return 120 if enabled() else 300
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"NUMBAX_SPLIT_LINES must be an integer, got {raw!r}") from None


class _NameSets:
    """The names a node loads and stores (``ast.Name`` nodes anywhere in it), each node
    walked once however often it is asked about (the analysis asks about every statement
    several times: as a statement, as part of a loop, as what later code reads)."""

    def __init__(self):
        self.memo = {}

    def __call__(self, node, ctx):
        got = self.memo.get(id(node))
        if got is None:
            loads, stores = set(), set()
            if type(node) in _PARTS:           # from its parts, which are asked about too
                for part in _PARTS[type(node)](node):
                    loads |= self(part, ast.Load)
                    stores |= self(part, ast.Store)
            else:
                _collect(node, loads, stores)
            # (the node is kept alive in the tuple: its id cannot be reused meanwhile)
            got = self.memo[id(node)] = (loads, stores, node)
        return got[1] if ctx is ast.Store else got[0]


# statements whose names are those of the parts the analysis also asks about
_PARTS = {
    ast.For: lambda n: [n.target, n.iter, *n.body, *n.orelse],
    ast.While: lambda n: [n.test, *n.body, *n.orelse],
    ast.If: lambda n: [n.test, *n.body, *n.orelse],
    ast.Assign: lambda n: [n.value, *n.targets],
    ast.AugAssign: lambda n: [n.target, n.value],
}


def _collect(node, loads, stores):
    """Add the names `node` loads and stores to the two sets (`ast.walk`, without its
    generators: this runs over every node of a long function)."""
    stack = [node]
    pop, push, AST, Name, Load, Store = stack.pop, stack.append, ast.AST, ast.Name, \
        ast.Load, ast.Store
    while stack:
        n = pop()
        if type(n) is Name:
            if type(n.ctx) is Load:
                loads.add(n.id)
            elif type(n.ctx) is Store:
                stores.add(n.id)
            continue
        for f in n._fields:
            v = getattr(n, f, None)
            if type(v) is list:
                for x in v:
                    if isinstance(x, AST):
                        push(x)
            elif isinstance(v, AST):
                push(v)


def _names(node, ctx, names=None):
    """Names of `node` loaded (`ctx` ast.Load) or stored (ast.Store)."""
    if names is not None:
        return names(node, ctx)
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _exposed(stmts, defined, names=None):
    """Names the statements `stmts` may read before assigning them (with `defined` already
    assigned); a loop or branch body may not run, so what it assigns is not counted after
    it. `names`: a `_NameSets` to share between calls."""
    names = names or _NameSets()
    d = set(defined)
    out = set()
    for s in stmts:
        _statement(s, d, out, names)
    return out


def _statement(s, d, out, names):
    """Add to `out` what statement `s` may read before assigning it (given `d`, the names
    assigned before it), and to `d` what it certainly assigns."""
    if isinstance(s, ast.For):
        out |= names(s.iter, ast.Load) - d
        out |= _exposed(s.body, d | names(s.target, ast.Store), names)
        out |= _exposed(s.orelse, d, names)
    elif isinstance(s, (ast.If, ast.While)):
        out |= names(s.test, ast.Load) - d
        out |= _exposed(s.body, d, names) | _exposed(s.orelse, d, names)
    elif isinstance(s, ast.Assign):
        out |= names(s.value, ast.Load) - d
        for t in s.targets:
            out |= names(t, ast.Load) - d
            d |= names(t, ast.Store)
    elif isinstance(s, ast.AugAssign):
        out |= (names(s.value, ast.Load) | names(s.target, ast.Load)) - d
        if isinstance(s.target, ast.Name) and s.target.id not in d:
            out.add(s.target.id)
    elif isinstance(s, ast.With):
        for item in s.items:
            out |= names(item.context_expr, ast.Load) - d
        out |= _exposed(s.body, d, names)
        d |= names(s, ast.Store)
    else:
        out |= names(s, ast.Load) - d
        d |= names(s, ast.Store)


def _exposed_after(stmts, wanted, names):
    """{k: the names ``stmts[k + 1:]`` may read before assigning them} for each k in
    `wanted`, in one backward pass: what a suffix exposes is what its first statement reads
    (before assigning) plus what the rest exposes minus what that statement certainly
    assigns (`_exposed` only ever subtracts the names assigned so far)."""
    out = {}
    acc = set()
    for k in range(len(stmts) - 1, -1, -1):
        if k in wanted:
            out[k] = set(acc)
        reads, assigned = set(), set()
        _statement(stmts[k], assigned, reads, names)
        acc -= assigned
        acc |= reads
    return out


def _array_t(dtype_text, ndim):
    return f"_t.Array({dtype_text}, {ndim}, 'C')"


_ARRAY_T = re.compile(r"_t\.Array\((_t\.\w+), (\d+), 'C'\)$")


def _np_dtype(node):
    """`_np.<name>` as a dtype argument -> its Numba type text, or None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            node.value.id == "_np":
        name = {"bool_": "boolean"}.get(node.attr, node.attr)
        return f"_t.{name}"
    return None


def _ndim_of(node):
    """Number of dimensions of a shape argument (an int expression: 1, a tuple: its length)."""
    if isinstance(node, ast.Tuple):
        return len(node.elts)
    if isinstance(node, ast.Starred):
        return None
    return 1


def _value_type(node, types):
    """The Numba type text of expression `node` when generated code builds it the usual way
    (a view of, or a buffer like, a typed array; an integer literal), else None."""
    if isinstance(node, ast.Name):
        return types.get(node.id)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return "_t.int64"
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and \
            isinstance(node.slice, ast.Slice) and node.slice.step is None:
        return types.get(node.value.id) if _ARRAY_T.match(types.get(node.value.id, "")) \
            else None                      # a range of rows of a C array stays C
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        f = node.func
        if f.attr == "reshape" and not node.keywords:
            m = _ARRAY_T.match(_value_type(f.value, types) or "")
            if m is None or not node.args:
                return None
            nd = _ndim_of(node.args[0]) if len(node.args) == 1 else len(node.args)
            return _array_t(m.group(1), nd) if nd else None
        if f.attr == "empty" and isinstance(f.value, ast.Name) and f.value.id == "_np" and \
                len(node.args) == 2 and not node.keywords:
            dt, nd = _np_dtype(node.args[1]), _ndim_of(node.args[0])
            return _array_t(dt, nd) if dt and nd else None
    return None


def _ctor(type_text):
    """The NumPy scalar constructor of a scalar Numba type text (None for arrays)."""
    if type_text.startswith("_t.Array"):
        return None
    name = type_text[3:]
    return "_np.bool_" if name == "boolean" else f"_np.{name}"


def split(head_source, fn_source, flags, types=None, module_names=None):
    """Split `fn_source` (``def _fn(...):`` and its body) if it is long. Returns
    (helper sources, new fn source); no helpers when nothing was split. `head_source`: the
    module's code before the function (its top-level names stay global); `flags`: the
    ``@_njit`` flags of the main function, reused for the helpers; `types`: name -> Numba
    type text of the names whose type is known whatever the code does (the main function's
    parameters, the IR's values): pieces whose inputs and results are all known get a
    signature. `module_names`: the names `head_source` binds at the top level, when the
    caller knows them (else `head_source` is parsed for them)."""
    limit = split_lines()
    body_lines = [ln for ln in fn_source.splitlines()[1:]
                  if ln.strip() and not ln.lstrip().startswith("#")]
    if not limit or len(body_lines) <= limit:
        return [], fn_source
    fn = ast.parse(fn_source).body[0]
    names = _NameSets()
    module_names = set(module_names) if module_names is not None else \
        top_level_names(head_source)
    module_names |= {"range", "min", "max", "int", "float", "abs", "len", "bool", "complex",
                     "print", "True", "False", "None"}
    defined = {a.arg for a in fn.args.args}
    fixed = dict(types or {})              # known whatever is assigned
    local = {}                             # known from the statements so far
    bad = set()                            # assigned with two types: never known
    known = ChainMap(fixed, local)
    lines = fn_source.splitlines()
    helpers, out = [], [lines[0]]
    stmts = fn.body
    sizes = [sum(1 for ln in lines[st.lineno - 1:st.end_lineno]
                 if ln.strip() and not ln.lstrip().startswith("#")) for st in stmts]
    candidates = {k for k, st in enumerate(stmts)
                  if isinstance(st, (ast.For, ast.While, ast.If)) and sizes[k] >= MIN_PIECE
                  and "_prange" not in names(st, ast.Load)}
    later_reads = _exposed_after(stmts, set(range(len(stmts))), names)
    from .direct import enabled as direct_enabled
    groups = _groups(stmts, sizes, candidates, later_reads, names, module_names, defined) \
        if direct_enabled() else {}      # (for Numba, every function has a fixed cost)
    prev_end = 1                                   # lines[:prev_end] are already placed
    k = 0
    while k < len(stmts):
        st = stmts[k]
        out += lines[prev_end:st.lineno - 1]       # comments (the IR) between statements
        if k in groups:
            end = groups[k]
            run = stmts[k:end + 1]
            params = sorted((_exposed(run, set(), names) - module_names) & defined)
            ptypes = [fixed.get(p) or local.get(p) for p in params]
            if all(ptypes):
                name = f"_p{len(helpers)}"
                src, call = _piece(name, lines[st.lineno - 1:run[-1].end_lineno],
                                   st.col_offset, params, ptypes, [], [], flags)
                helpers.append(src)
                out.append(f"{' ' * st.col_offset}{call}  # split: {sum(sizes[k:end + 1])} "
                           f"lines in {len(run)} statements compiled as {name}")
                for r in run:
                    defined |= names(r, ast.Store)
                    _track(r, local, bad, known, names)
                prev_end = run[-1].end_lineno
                k = end + 1
                continue
        prev_end = st.end_lineno
        seg = lines[st.lineno - 1:st.end_lineno]
        n = sizes[k]
        movable = k in candidates
        if movable:
            rets = sorted(names(st, ast.Store) & later_reads[k])
            # a name first assigned inside a loop or branch may be unset after it: such a
            # statement stays in place rather than return an undefined name
            movable = all(r in defined for r in rets)
        if not movable:
            out += seg
            defined |= names(st, ast.Store)
            _track(st, local, bad, known, names)
            k += 1
            continue
        # parameters: what it reads from before, and what it may (conditionally) update
        params = sorted(((_exposed([st], set(), names) - module_names) | set(rets)) & defined)
        name = f"_p{len(helpers)}"
        ptypes = [fixed.get(p) or local.get(p) for p in params]
        rtypes = [fixed.get(r) or local.get(r) for r in rets]
        src, call = _piece(name, seg, st.col_offset, params, ptypes, rets, rtypes, flags)
        helpers.append(src)
        for r in rets:                     # (a result's type is what the piece returns)
            if not (fixed.get(r) or local.get(r)):
                local.pop(r, None)
        out.append(f"{' ' * st.col_offset}{call}  # split: {n} lines compiled as {name}")
        k += 1
    out += lines[prev_end:]
    return helpers, "\n".join(out)


def _piece(name, seg, col, params, ptypes, rets, rtypes, flags):
    """(source of piece `name`, the call replacing it): the statements `seg` (source lines
    indented by `col`) as a function of `params` returning `rets`. With every type known
    (`ptypes`, `rtypes`) it gets a signature, and scalars are cast to the IR's dtype at the
    call and on return (the piece then sees exactly the types its signature says)."""
    indent = " " * col
    body = [ln[col:] if ln.startswith(indent) else ln.lstrip() for ln in seg]
    args, results = list(params), list(rets)
    if all(ptypes) and all(rtypes):
        args = [f"{_ctor(t)}({p})" if _ctor(t) else p for p, t in zip(params, ptypes)]
        results = [f"{_ctor(t)}({r})" if _ctor(t) else r for r, t in zip(rets, rtypes)]
        ret = f"_t.Tuple(({', '.join(rtypes)},))" if rets else "_t.none"
        src = [f"@_njit({ret}({', '.join(ptypes)}), {flags})"]
    else:
        src = [f"@_njit({flags})"]
    src += [f"def {name}({', '.join(params)}):"]
    src += ["    " + ln for ln in body]
    if rets:
        src.append(f"    return {', '.join(results)}{',' if len(rets) == 1 else ''}")
    call = f"{name}({', '.join(args)})"
    if rets:
        call = f"{', '.join(rets)}{',' if len(rets) == 1 else ''} = {call}"
    return "\n".join(src), call


def _groups(stmts, sizes, candidates, later_reads, names, module_names, defined):
    """{first: last} index ranges of runs of consecutive statements to move into one piece
    together: statements shorter than `MIN_PIECE` (loops, views, helper calls), gathered up
    to about `GROUP_LINES` lines. A run may end only where nothing it assigns is read after
    it (the piece returns nothing, so the direct compiler takes it) and everything it reads
    from the main function is certainly assigned before it. Small pieces are what lets a
    long main function's LLVM work spread over both compile lanes (`direct/lanes.py`)."""
    out = {}
    d = set(defined)
    k = 0
    n = len(stmts)
    while k < n:
        if not _groupable(stmts[k], k, candidates, names):
            d |= names(stmts[k], ast.Store)
            k += 1
            continue
        stores, size, best = set(), 0, None
        j = k
        while j < n and _groupable(stmts[j], j, candidates, names) and size < GROUP_LINES:
            stores |= names(stmts[j], ast.Store)
            size += sizes[j]
            if size >= MIN_PIECE and not (stores & later_reads[j]) and \
                    (_exposed(stmts[k:j + 1], set(), names) - module_names) <= d:
                best = j
            j += 1
        if best is None:
            d |= names(stmts[k], ast.Store)
            k += 1
            continue
        out[k] = best
        for st in stmts[k:best + 1]:
            d |= names(st, ast.Store)
        k = best + 1
    return out


def _groupable(st, k, candidates, names):
    return (k not in candidates and not isinstance(st, (ast.Return, ast.FunctionDef)) and
            "_prange" not in names(st, ast.Load))


def _track(st, local, bad, known, names=None):
    """Update `local` (name -> type text) with what top-level statement `st` binds: a name
    assigned by a recognised expression has its type (the same each time); anything else
    assigned becomes unknown for good (`bad`)."""
    if isinstance(st, ast.Assign) and len(st.targets) == 1 and \
            isinstance(st.targets[0], ast.Name):
        name = st.targets[0].id
        t = _value_type(st.value, known)
        if t is not None and name not in bad and local.get(name, t) == t:
            local[name] = t
            return
    for n in _names(st, ast.Store, names):
        local.pop(n, None)
        bad.add(n)


def top_level_names(source):
    """The names module `source` binds at its top level (imports, functions, classes and
    whatever other statements assign)."""
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        else:
            out |= _names(node, ast.Store)
    return out
