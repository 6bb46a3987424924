"""The outliner: fused loop nests whose code repeats (up to names and integer constants)
become one `@njit` helper function each, called from every place they occur.

It works on the record the loop-nest writer keeps as it writes (`NestTemplate`): which names
come from outside the nest (arrays and scalars: the helper's parameters `p<k>`), which the nest
assigns (renamed `v<k>_`), and which integers are loop and slice bounds (parameters `n<k>`).
Every other name (loop indices, kernels, constants, `_np`) stays as written."""
from __future__ import annotations

import re

from .emit import Emitter, ModuleBuilder, numba_type_name


class Bound:
    """An integer loop or slice bound in a nest's code: a parameter of the nest's helper (so
    nests that differ only in sizes and offsets share one). `text` is how the inline code
    spells it: a short loop runs to `n + _z` (see emit.SMALL_LOOP), a helper to its argument."""
    __slots__ = ("value", "text")

    def __init__(self, value, text=None):
        self.value = int(value)
        self.text = str(value) if text is None else text


class NestTemplate:
    """The code of one loop nest as its writer emitted it, and what it is made of.

    `lines`: (depth below the nest's first line, fragments: source text and `Bound`s,
    comment or None); `frees`: names bound outside the nest that its code reads or writes;
    `locals`: names its code assigns; `args`: slice name -> (the expression the caller passes
    for it, the array it is a slice of); `parallel`: whether its outer loop is a `prange`.
    The slice lines themselves are not in `lines`: a helper receives the slices as
    arguments."""

    def __init__(self):
        self.lines = []
        self.frees = {}                # insertion-ordered set
        self.locals = set()
        self.args = {}
        self.parallel = False

    def line(self, depth, frags):
        # the writer's lines carry their comment after "  # " (its code has no other '#')
        *head, last = frags
        comment = None
        if isinstance(last, str) and "  # " in last:
            last, comment = last.split("  # ", 1)
        self.lines.append((depth, head + [last], comment))

    def free(self, name):
        self.frees[name] = None

    def local(self, name):
        self.locals.add(name)

    def slice(self, name, expr, array):
        self.free(name)
        self.args[name] = (expr, array)


class NestBlock:
    """The code of one fused loop nest, kept aside until all nests are known: nests with the
    same code up to names and integer constants are emitted once, as a helper function."""

    def __init__(self, lines, level, scalar_outs, eqn_texts, n_slices=0, template=None):
        self.lines, self.level, self.scalar_outs = lines, level, scalar_outs
        self.eqn_texts = eqn_texts
        self.n_slices = n_slices      # leading `name = array[a:b]` lines: arguments if outlined
        self.template = template      # the NestTemplate the writer recorded


_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def _helper_parts(block: NestBlock):
    """(key, body lines, free names, int constants, scalar outputs, slice args) of the
    helper `block` would become: its code with the free names and local names its writer
    recorded replaced by parameters `p<k>` and `v<k>_`, and its bounds by `n<k>` (numbered in
    order of first appearance, so that equal code gives equal helpers)."""
    tpl = block.template
    free, ints, ren = [], [], {}

    def rename(m):
        n = m.group(0)
        if n in tpl.locals:
            return ren.setdefault(n, f"v{len(ren)}_")
        if n in tpl.frees:
            if n not in free:
                free.append(n)
            return f"p{free.index(n)}"
        return n
    body, code = [], []
    for depth, frags, comment in tpl.lines:
        parts = []
        for f in frags:
            if isinstance(f, Bound):
                parts.append(f"n{len(ints)}")
                ints.append(f.value)
            else:
                parts.append(_NAME.sub(rename, f))
        text = "    " * depth + "".join(parts)
        code.append(text.rstrip())             # the key: code without comments
        body.append(text if comment is None else f"{text}  # {comment}")
    outs = [ren.get(n, n) for n, _ in block.scalar_outs]
    args = {name: expr for name, (expr, _) in tpl.args.items()}
    return "\n".join(code), body, free, ints, outs, args


def outline(em: Emitter, mod: ModuleBuilder):
    """Resolve the NestBlocks of `em`: nests whose code repeats become one helper each."""
    blocks = [b for b in em.lines if isinstance(b, NestBlock)]
    info = {}
    for b in blocks:
        key, body, free, ints, outs, args = _helper_parts(b)
        slices = b.template.args
        types = tuple(mod.vtypes[slices[n][1] if n in slices else n]
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
            if item.template.parallel:
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
                   '    """A fused loop nest used in several places."""']
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
