"""Splitting a long generated main function into pieces Numba compiles faster.

Numba's front end (SSA reconstruction, liveness and reaching definitions over every block,
lowering) grows faster than linearly with the number of blocks and variables of a function,
so one 5,000-line function (the DP-SGD step of examples/per_example_grads.py: per-example
gradients plus four inlined normal samplers) takes minutes where its parts take seconds. When
the main function's body is longer than ``NUMBAX_SPLIT_LINES`` statement lines (default
300; 0 turns splitting off), every top-level loop or ``if`` of at least ``MIN_PIECE`` lines
becomes a helper function of its own, called once at the same place:

* its parameters are the names it reads that the main function defined before it (arrays
  are passed by reference, so its stores into workspaces and outputs are seen);
* it returns the names it assigns that later code reads before assigning them;
* module-level names (constants, kernels, other helpers) stay global.

Helpers are typed from the call (no signature is written), compiled with the same flags as
the main function and cached with the module. A piece that uses ``prange`` is not moved (a
helper would run it serially).
"""
from __future__ import annotations

import ast
import os

MIN_PIECE = 20


def split_lines():
    """The threshold from ``NUMBAX_SPLIT_LINES`` (0: never split)."""
    raw = os.environ.get("NUMBAX_SPLIT_LINES", "").strip()
    try:
        return int(raw) if raw else 300
    except ValueError:
        raise ValueError(f"NUMBAX_SPLIT_LINES must be an integer, got {raw!r}") from None


def _names(node, ctx):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _exposed(stmts, defined):
    """Names the statements `stmts` may read before assigning them (with `defined` already
    assigned); a loop or branch body may not run, so what it assigns is not counted after
    it."""
    d = set(defined)
    out = set()
    for s in stmts:
        if isinstance(s, ast.For):
            out |= _names(s.iter, ast.Load) - d
            out |= _exposed(s.body, d | _names(s.target, ast.Store))
            out |= _exposed(s.orelse, d)
        elif isinstance(s, (ast.If, ast.While)):
            out |= _names(s.test, ast.Load) - d
            out |= _exposed(s.body, d) | _exposed(s.orelse, d)
        elif isinstance(s, ast.Assign):
            out |= _names(s.value, ast.Load) - d
            for t in s.targets:
                out |= _names(t, ast.Load) - d
                d |= _names(t, ast.Store)
        elif isinstance(s, ast.AugAssign):
            out |= (_names(s.value, ast.Load) | _names(s.target, ast.Load)) - d
            if isinstance(s.target, ast.Name) and s.target.id not in d:
                out.add(s.target.id)
        elif isinstance(s, ast.With):
            for item in s.items:
                out |= _names(item.context_expr, ast.Load) - d
            out |= _exposed(s.body, d)
            d |= _names(s, ast.Store)
        else:
            out |= _names(s, ast.Load) - d
            d |= _names(s, ast.Store)
    return out


def split(head_source, fn_source, flags):
    """Split `fn_source` (``def _fn(...):`` and its body) if it is long. Returns
    (helper sources, new fn source); no helpers when nothing was split. `head_source`: the
    module's code before the function (its top-level names stay global); `flags`: the
    ``@_njit`` flags of the main function, reused for the helpers."""
    limit = split_lines()
    body_lines = [ln for ln in fn_source.splitlines()[1:]
                  if ln.strip() and not ln.lstrip().startswith("#")]
    if not limit or len(body_lines) <= limit:
        return [], fn_source
    fn = ast.parse(fn_source).body[0]
    module_names = set()
    for node in ast.parse(head_source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module_names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            module_names.add(node.name)
        else:
            module_names |= _names(node, ast.Store)
    module_names |= {"range", "min", "max", "int", "float", "abs", "len", "bool", "complex",
                     "print", "True", "False", "None"}
    defined = {a.arg for a in fn.args.args}
    lines = fn_source.splitlines()
    helpers, out = [], [lines[0]]
    stmts = fn.body
    prev_end = 1                                   # lines[:prev_end] are already placed
    for k, st in enumerate(stmts):
        out += lines[prev_end:st.lineno - 1]       # comments (the IR) between statements
        prev_end = st.end_lineno
        seg = lines[st.lineno - 1:st.end_lineno]
        n = sum(1 for ln in seg if ln.strip() and not ln.lstrip().startswith("#"))
        movable = isinstance(st, (ast.For, ast.While, ast.If)) and n >= MIN_PIECE and \
            "_prange" not in _names(st, ast.Load)
        if movable:
            rets = sorted(_names(st, ast.Store) & _exposed(stmts[k + 1:], set()))
            # a name first assigned inside a loop or branch may be unset after it: such a
            # statement stays in place rather than return an undefined name
            movable = all(r in defined for r in rets)
        if not movable:
            out += seg
            defined |= _names(st, ast.Store)
            continue
        # parameters: what it reads from before, and what it may (conditionally) update
        params = sorted(((_exposed([st], set()) - module_names) | set(rets)) & defined)
        name = f"_p{len(helpers)}"
        indent = " " * st.col_offset
        body = [ln[st.col_offset:] if ln.startswith(indent) else ln.lstrip() for ln in seg]
        src = [f"@_njit({flags})", f"def {name}({', '.join(params)}):"]
        src += ["    " + ln for ln in body]
        if rets:
            src.append(f"    return {', '.join(rets)}{',' if len(rets) == 1 else ''}")
        helpers.append("\n".join(src))
        call = f"{name}({', '.join(params)})"
        if rets:
            call = f"{', '.join(rets)}{',' if len(rets) == 1 else ''} = {call}"
        out.append(f"{indent}{call}  # split: {n} lines compiled as {name}")
    out += lines[prev_end:]
    return helpers, "\n".join(out)
