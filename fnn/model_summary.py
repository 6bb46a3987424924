"""`fnn.summary(model, params, state, x)`: a table of a model's layers, as Keras' ``summary()`` and
torchinfo print it.

    print(fnn.summary(model, params, state, (32, 28, 28, 1)))

Each row is one layer: its path in `params` (``block_0/dense_1``; children of nested
`Sequential` models are listed under their parent), its type, its output shape and dtype,
its parameter count and the bytes of its parameters and state. Output shapes come from
`transforms.eval_shape` of each layer's `apply` in inference mode (``train=False``), so
nothing is computed and no key is needed. Layers that are not `Sequential` but hold nested
parameter groups (attention blocks, user modules) get one row, with indented rows for their
parameter groups (no output shape of their own).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from transforms import ShapeDtypeStruct, eval_shape, tree

from .layers import Sequential, as_layer

__all__ = ["summary", "Summary", "LayerRow"]


class LayerRow(NamedTuple):
    """One line of a `Summary`: `path` (``/``-joined), `type` (class name), `output`
    (a pytree of `ShapeDtypeStruct`, None for parameter-group rows), `params` (trained
    scalars), `state` (non-trained scalars, e.g. batch-norm statistics), `bytes` (of both),
    `depth` (nesting level)."""
    path: str
    type: str
    output: Any
    params: int
    state: int
    bytes: int
    depth: int


def _count(t) -> tuple[int, int]:
    """(number of scalars, bytes) of the array leaves of `t`."""
    n = b = 0
    for leaf in tree.leaves(t):
        size = int(math.prod(np.shape(leaf)))
        n += size
        b += size * np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype)).itemsize
    return n, b


def _abstract(t):
    return tree.map(lambda a: ShapeDtypeStruct(np.shape(a), getattr(a, "dtype",
                                                                    np.asarray(a).dtype)), t)


def _shape_text(out) -> str:
    if out is None:
        return ""
    leaves = tree.leaves(out)
    if len(leaves) == 1 and isinstance(out, ShapeDtypeStruct):
        return f"{out.shape} {out.dtype.name}"
    return ", ".join(f"{leaf.shape} {leaf.dtype.name}" for leaf in leaves)


def _as_input(inputs):
    if len(inputs) != 1:
        raise TypeError(f"summary: give exactly one example input (an array, a "
                        f"ShapeDtypeStruct or a shape tuple) after state, got {len(inputs)}")
    x = inputs[0]
    if isinstance(x, (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in x):
        return ShapeDtypeStruct(tuple(int(d) for d in x), np.float32)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ShapeDtypeStruct(x.shape, x.dtype)
    return _abstract(x)  # a pytree input


class Summary:
    """The result of `summary`: `rows` (a list of `LayerRow`), `input`, `output`, the totals
    `total_params`, `total_state`, `total_bytes`; ``str()`` is the table."""

    def __init__(self, model_name, x, out, rows, params, state):
        self.model_name, self.input, self.output, self.rows = model_name, x, out, rows
        self.total_params, pbytes = _count(params)
        self.total_state, sbytes = _count(state)
        self.total_bytes = pbytes + sbytes

    def __str__(self):
        with_state = any(r.state for r in self.rows)
        head = ("layer", "type", "output shape", "params") + (("state",) if with_state else ()) \
            + ("bytes",)
        lines = [(("  " * r.depth) + r.path.rsplit("/", 1)[-1] if r.depth else r.path,
                  r.type, _shape_text(r.output), f"{r.params:,}")
                 + ((f"{r.state:,}",) if with_state else ()) + (f"{r.bytes:,}",)
                 for r in self.rows]
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
                  for i, h in enumerate(head)]

        def fmt(cells):
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        rule = "-" * len(fmt(tuple("-" * w for w in widths)))
        out = [f"{self.model_name}: input {_shape_text(self.input)}", rule, fmt(head), rule]
        out += [fmt(line) for line in lines]
        out += [rule,
                f"params: {self.total_params:,} trained"
                + (f" + {self.total_state:,} state" if self.total_state else "")
                + f" ({_human(self.total_bytes)})",
                f"output: {_shape_text(self.output)}"]
        return "\n".join(out)

    __repr__ = __str__


def _human(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _group_rows(params, state, path, depth, rows):
    """Rows for the nested parameter groups of a non-Sequential layer."""
    keys = [k for k in (params if isinstance(params, dict) else {})
            if isinstance(params[k], dict)]
    skeys = [k for k in (state if isinstance(state, dict) else {})
             if isinstance(state[k], dict) and k not in keys]
    for k in keys + skeys:
        p = params.get(k, {}) if isinstance(params, dict) else {}
        s = state.get(k, {}) if isinstance(state, dict) else {}
        n, pb = _count(p)
        m, sb = _count(s)
        rows.append(LayerRow(f"{path}/{k}", "", None, n, m, pb + sb, depth))
        _group_rows(p, s, f"{path}/{k}", depth + 1, rows)


def _walk(layer, params, state, x, path, depth, rows, apply_kwargs):
    """Append the rows of `layer` applied to the abstract input `x`; return its output."""
    if isinstance(layer, Sequential) and not apply_kwargs:
        at = len(rows)
        inner = depth + 1 if path else depth     # a nested Sequential: a row, children below
        for name, child in zip(layer.names, layer.layers):
            p = params.get(name, {}) if isinstance(params, dict) else {}
            s = state.get(name, {}) if isinstance(state, dict) else {}
            x = _walk(child, p, s, x, f"{path}/{name}" if path else name, inner, rows, {})
        if path:
            n, pb = _count(params)
            m, sb = _count(state)
            rows.insert(at, LayerRow(path, "Sequential", x, n, m, pb + sb, depth))
        return x
    try:
        out = eval_shape(lambda p, s, v: layer.apply(p, s, v, train=False, **apply_kwargs)[0],
                         _abstract(params), _abstract(state), x)
    except Exception as e:
        where = path or type(layer).__name__
        msg = f"summary: layer {where} ({layer!r}) fails on input {_shape_text(x)}: {e}"
        try:
            err = type(e)(msg)      # keep the exception type when it takes a message
        except Exception:  # noqa: BLE001 - a constructor with another signature
            err = ValueError(msg)
        raise err from e
    n, pb = _count(params)
    m, sb = _count(state)
    rows.append(LayerRow(path or type(layer).__name__, type(layer).__name__, out, n, m,
                         pb + sb, depth))
    _group_rows(params, state, path or type(layer).__name__, depth + 1, rows)
    return out


def summary(model: Any, params: Any, state: Any = None, *example_inputs: Any,
            **apply_kwargs: Any) -> Summary:
    """Summarise `model` (an fnn `Module` or a function used as a layer) at an input.

    Args:
      model: the model (typically a `Sequential`).
      params, state: what ``model.init`` returned (`state` may be None or ``{}``).
      *example_inputs: one input: an array, a `transforms.ShapeDtypeStruct`, anything with
        ``.shape``/``.dtype``, or a shape tuple (float32 is assumed), batch axis included.
      **apply_kwargs: extra keyword arguments of ``model.apply`` (``mask=`` ...); a
        `Sequential` given any is summarised as one row.

    Returns:
      A `Summary`: ``print()`` it for the table, or read `rows` and the totals.  Nothing is
      computed: output shapes come from `transforms.eval_shape`.
    """
    layer = as_layer(model)
    x = _as_input(example_inputs)
    params = {} if params is None else params
    state = {} if state is None else state
    rows: list[LayerRow] = []
    out = _walk(layer, params, state, x, "", 0, rows, apply_kwargs)
    return Summary(type(layer).__name__, x, out, rows, params, state)
