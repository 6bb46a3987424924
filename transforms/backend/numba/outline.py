"""The outliner: fused loop nests whose code repeats (up to names and integer constants)
become one `@njit` helper function each, called from every place they occur."""
from __future__ import annotations

import keyword

from .emit import Emitter, ModuleBuilder, numba_type_name


class NestBlock:
    """The code of one fused loop nest, kept aside until all nests are known: nests with the
    same code up to names and integer constants are emitted once, as a helper function."""

    def __init__(self, lines, level, scalar_outs, eqn_texts, n_slices=0):
        self.lines, self.level, self.scalar_outs = lines, level, scalar_outs
        self.eqn_texts = eqn_texts
        self.n_slices = n_slices      # leading `name = array[a:b]` lines: arguments if outlined


_KEEP_NAMES = set(keyword.kwlist) | {"range", "int", "min", "max", "abs", "float", "bool",
                                      "_np", "_math", "_prange", "len", "_numba",
                                      "complex"}


def _templatize(block: NestBlock):
    """(key, body lines, free names, int constants): the block's code with its free names
    (arrays, scalars from outside) and integer constants replaced by parameters."""
    import io
    import tokenize
    pad = "    " * block.level
    args = {}                     # slice name -> its expression (passed by the caller)
    for line in block.lines[:block.n_slices]:
        name, expr = line.strip().split(" = ", 1)
        args[name] = expr
    text = "\n".join(line[len(pad):] if line.startswith(pad) else line.lstrip()
                     for line in block.lines[block.n_slices:]) + "\n"
    text = text.replace(" + _z)", ")")          # a helper's loop bounds are run-time values
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    local = set()
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME and i + 1 < len(toks) and toks[i + 1].string in ("=", "+=") \
                and (i == 0 or toks[i - 1].type in (tokenize.INDENT, tokenize.DEDENT,
                                                     tokenize.NEWLINE, tokenize.NL)):
            local.add(t.string)
        if t.type == tokenize.NAME and t.string == "for" and i + 1 < len(toks):
            local.add(toks[i + 1].string)
    # integers that become parameters: loop bounds (inside range(...)) and slice bounds
    # (inside [a:b]); strides and offsets within index expressions stay literal
    param_ctx = set()
    flags = []          # one bool per open bracket: integers inside it are parameters
    for i, t in enumerate(toks):
        if t.type != tokenize.OP:
            if flags and flags[-1]:
                param_ctx.add(i)
            continue
        if t.string in ("(", "["):
            if t.string == "(":
                flag = (i > 0 and toks[i - 1].string in ("range", "_prange")) or \
                    bool(flags and flags[-1])
            else:
                flag, depth = False, 0
                for t2 in toks[i + 1:]:
                    if t2.type != tokenize.OP:
                        continue
                    if t2.string in ("(", "["):
                        depth += 1
                    elif t2.string in (")", "]"):
                        if depth == 0:
                            break
                        depth -= 1
                    elif t2.string == ":" and depth == 0:
                        flag = True
                        break
            flags.append(flag)
        elif t.string in (")", "]") and flags:
            flags.pop()
    free, ints, ren = [], [], {}
    repl = []           # (row, col_start, col_end, new)
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME:
            n = t.string
            if n in _KEEP_NAMES or n.startswith(("_k_", "_C")) or n.startswith("_i") or \
                    (i and toks[i - 1].string == "."):
                continue
            if n in local:
                new = ren.setdefault(n, f"v{len(ren)}_")
            else:
                if n not in free:
                    free.append(n)
                new = f"p{free.index(n)}"
            repl.append((t.start[0], t.start[1], t.end[1], new))
        elif t.type == tokenize.NUMBER and t.string.isdigit() and i in param_ctx:
            repl.append((t.start[0], t.start[1], t.end[1], f"n{len(ints)}"))
            ints.append(int(t.string))
    lines = text.split("\n")
    for row, c0, c1, new in sorted(repl, key=lambda r: (r[0], -r[1])):
        ln = lines[row - 1]
        lines[row - 1] = ln[:c0] + new + ln[c1:]
    body = [ln for ln in lines if ln.strip()]
    key = "\n".join(ln.split("  #")[0].rstrip() for ln in body)
    outs = [ren.get(n, n) for n, _ in block.scalar_outs]
    return key, body, free, ints, outs, args


def outline(em: Emitter, mod: ModuleBuilder):
    """Resolve the NestBlocks of `em`: nests whose code repeats become one helper each."""
    blocks = [b for b in em.lines if isinstance(b, NestBlock)]
    info = {}
    for b in blocks:
        key, body, free, ints, outs, args = _templatize(b)
        types = tuple(mod.vtypes[args[n].split("[")[0]] if n in args else mod.vtypes[n]
                      for n in free)                     # same code, other dtypes: another
        info[id(b)] = (key + repr(types), body, free, ints, outs, args, types)
    counts = {}
    for b in blocks:
        counts[info[id(b)][0]] = counts.get(info[id(b)][0], 0) + 1
    names = {}
    out = []
    for item in em.lines:
        if not isinstance(item, NestBlock):
            out.append(item)
            continue
        key, body, free, ints, outs, args, types_ = info[id(item)]
        # repeated nests are compiled once (compile time grows faster than the size of a
        # function, so even a twice-used nest is cheaper as a helper)
        if counts[key] < 2:
            out += item.lines
            continue
        h = names.get(key)
        if h is None:
            h = names[key] = f"_h{len(names)}"
            params = [f"p{i}" for i in range(len(free))] + [f"n{i}" for i in range(len(ints))]
            # helpers are only called from compiled code: no Python or C-callable wrappers
            # (each wrapper is more LLVM to build and optimise: ~0.1 s of cold compile)
            flags = ("cache=True, nogil=True, error_model='numpy', no_cpython_wrapper=True, "
                     "no_cfunc_wrapper=True")
            if "_prange" in key:
                flags += ", parallel=True"
            types = []
            for kind, dt in types_:
                types.append(f"_t.Array({numba_type_name(dt)}, 1, 'C')" if kind == "arr"
                             else numba_type_name(dt))
            types += ["_t.int64"] * len(ints)
            rt = [numba_type_name(dt) for _, dt in item.scalar_outs]
            ret = f"_t.Tuple(({', '.join(rt)},))" if rt else "_t.none"
            sig = f"{ret}({', '.join(types)})"
            src = [f"@_njit({sig}, {flags})", f"def {h}({', '.join(params)}):",
                   f'    """A fused loop nest used {counts[key]} times '
                   '(comments: its first use)."""']
            src += ["    " + ln for ln in body]
            if outs:
                src.append(f"    return ({', '.join(outs)},)")
            mod.helpers[key] = "\n".join(src)
        pad = "    " * item.level
        for t in item.eqn_texts:
            out.append(f"{pad}# {t}")
        call = f"{h}({', '.join([args.get(n, n) for n in free] + [str(i) for i in ints])})"
        if item.scalar_outs:
            call = f"{', '.join(n for n, _ in item.scalar_outs)}, = {call}"
        out.append(pad + call)
    em.lines = out
    return any("_prange" in ln for ln in out)
