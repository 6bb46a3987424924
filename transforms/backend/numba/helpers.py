"""Helper functions compiled as modules of their own, cached on disk by their content.

A generated program calls helper functions: the outlined loop nests (`outline.py`), the
pieces of a long main function (`split.py`) and the Winograd convolutions
(`conv_winograd.py`). A helper whose signature is written out (``@_njit(<signature>, ...)``)
does not need the main function to be typed first, so it becomes a module of its own:

* its source is the helper (without its comments) plus exactly the module-level names it reads (the standard
  imports, the kernels, the constants -- renamed ``_K0, _K1, ...`` in order of use, since a
  program numbers its constants in its own order -- and the helpers it calls, themselves
  such modules); its key is the hash of that source, so the same helper in two programs,
  or in two shapes of one program that share it, is one cache entry, compiled once;
* the main module binds it with ``name = _helper(key, source)`` (`cache.helper`), which loads
  (or compiles into the disk cache) that module; the main module's own source thus still
  holds everything it runs, and its key changes with any helper's;
* independent helpers can be compiled by another process into the disk cache while this
  one compiles the rest (`workers.py`).

The main function calls the helpers by symbol (`calls.py`): their machine code is not linked
into its own, so it is neither re-optimised nor re-emitted with every program; a warm process
loads the helper modules (which publishes their symbols) before the main function.
"""
from __future__ import annotations

import ast
import hashlib
import re

# imports every helper module starts with (the same as the main module's)
STANDARD_IMPORTS = (
    "import math as _math",
    "import numpy as _np",
    "import numba as _numba",
    "from numba import prange as _prange, types as _t",
    "from transforms.backend.numba.cache import njit as _njit",
    "from transforms.backend.numba.cache import helper as _helper",
)

_SIGNED = re.compile(r"@_njit\(\s*(?!cache=)")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


class HelperModule:
    """One helper as a module: `key` (hash of `source`), the function's name in it (`name`),
    the size of its code in lines (`lines`: to share compile work between processes) and the
    keys of the helper modules it calls (`deps`)."""
    __slots__ = ("key", "name", "source", "lines", "deps")

    def __init__(self, key, name, source, lines, deps):
        self.key, self.name, self.source, self.lines = key, name, source, lines
        self.deps = deps

    def binding(self, as_name, with_source=True):
        """The line binding this helper to `as_name`: with its source (the main module, which
        thus holds all the code it runs), or by key only (a helper module calling another:
        the main module bound that one first)."""
        if not with_source:
            return f"{as_name} = _helper({self.key!r}, None, {self.name!r})"
        text = self.source
        q = "'" * 3
        lit = repr(text) if (q in text or text.endswith("\\")) else f"r{q}{text}{q}"
        return f"{as_name} = _helper({self.key!r}, {lit}, {self.name!r})"


def is_signed(source):
    """Whether helper `source` (starting with its ``@_njit(...)`` line) has a signature."""
    return bool(_SIGNED.match(source.lstrip()))


def module_globals(head_source):
    """name -> (kind, source text of the top-level statement of `head_source` defining it);
    kind is "import", "assign", "def" or, for any other statement, "other"."""
    out = {}
    tree = ast.parse(head_source)
    lines = head_source.splitlines()
    for node in tree.body:
        text = "\n".join(lines[node.lineno - 1:node.end_lineno])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = ("import", text)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out[n.id] = ("assign", text)
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = ("def", text)
        else:                   # (generated code has none: kept in the main module if read)
            for n in ast.walk(node):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    out[n.id] = ("other", text)
            if isinstance(node, ast.ClassDef):
                out[node.name] = ("other", text)
    return out


_STD = frozenset({"_math", "_np", "_numba", "_prange", "_t", "_njit", "_helper"})


def build(head_source, sources, defs=None):
    """Turn the signed helper `sources` (name -> ``@_njit(sig, ...)`` decorated source) into
    HelperModules. `head_source`: the program's module-level code they may read (imports,
    constants, other helpers); `defs`: its `module_globals`, when the caller has them.
    Returns {name: HelperModule} in dependency order (callees first). A helper that reads a
    module-level name other than an import, a constant or a signed helper (or is part of a
    cycle) stays in the main module: it is not returned."""
    if defs is None:
        defs = module_globals(head_source)
    modules = {}
    pending = dict(sources)
    while pending:
        progressed = False
        for name, src in list(pending.items()):
            used = [n for n in dict.fromkeys(
                m.group(0) for m in _NAME.finditer(_code_only(src))) if n != name]
            callees = [n for n in used if n in sources]
            if any(c in pending for c in callees):
                continue                               # its callees first
            progressed = True
            del pending[name]
            if any(c not in modules for c in callees) or any(
                    n in defs and n not in sources and n not in _STD and not (
                        defs[n][0] == "import" or
                        (defs[n][0] == "assign" and _is_constant(defs[n][1]))) for n in used):
                continue              # it reads something that stays in the main module
            modules[name] = _module(name, src, used, defs, modules)
        if not progressed:                          # (a cycle: they stay in the main module)
            break
    return modules


def _is_constant(text):
    """A constant line of the program (``_C3_f32 = _np.float32(0.5)``, a table ``_T...``)."""
    return bool(re.match(r"_(C\d+_\w+|T\w*) = ", text))


def _code_only(src):
    """`src` without comments (generated helpers hold no '#' in strings)."""
    return "\n".join(ln.split("#", 1)[0] for ln in src.splitlines())


def _module(name, src, used, defs, modules):
    imports, consts, binds, rename, deps = [], [], [], {}, []
    for n in used:
        if n in _STD or (n not in defs and n not in modules):
            continue
        if n in modules:
            binds.append(modules[n].binding(n, with_source=False))
            deps.append(modules[n].key)
        elif defs[n][0] == "import":
            if defs[n][1] not in imports:
                imports.append(defs[n][1])
        else:                  # a constant: named by its order here (programs number theirs)
            alias = rename[n] = f"_K{len(rename)}"
            consts.append(alias + defs[n][1][len(n):])
    # without comments: they name the IR's variables, which a program numbers in its own
    # order, while the code (parameters p0, p1, ...) is the same in every program using it
    body = _rename(_code_only(src), rename) if rename else _code_only(src)
    body = "\n".join(ln.rstrip() for ln in body.splitlines() if ln.strip())
    # the backend's fingerprint keys the helper too: its text names kernels (add_reassoc,
    # maxf, ...) whose code Numba links into the helper's cached machine code, so a changed
    # kernel must not reuse a helper cached for the old one (the main module embeds the
    # same fingerprint, lowering.py)
    text = "\n".join(["# a helper function of a program generated by transforms.backend.numba",
                      f"# backend {_backend_fingerprint()}",
                      *STANDARD_IMPORTS, *imports, *consts, *binds, "", "", body, ""])
    key = hashlib.sha1(text.encode()).hexdigest()[:20]
    lines = sum(1 for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    return HelperModule(key, name, text, lines, tuple(deps))


def _backend_fingerprint():
    from .lowering import BACKEND_FINGERPRINT       # (lowering imports this module)
    return BACKEND_FINGERPRINT


def _rename(src, rename):
    # the names to rename as whole identifiers (what `_NAME` matches), one pattern for all
    pat = re.compile(r"(?<![\w.])(?:" + "|".join(map(re.escape, rename)) + r")(?!\w)")
    out = []
    for ln in src.splitlines():
        code, sep, comment = ln.partition("#")
        out.append(pat.sub(lambda m: rename[m.group(0)], code) + sep + comment)
    return "\n".join(out)
