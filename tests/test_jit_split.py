"""Long generated main functions are split into helpers (backend/numba/split.py): values stay
those of the eager interpreter, and the pieces' parameters and results are what later code
needs."""
import numpy as np

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import split


HEAD = "import numpy as _np\n_C0 = 1.0\n"
FN = """def _fn(a, b, _z):
    s = 0.0
    for i in range(4):
        s = s + a[i]
        b[i] = s
    # IR comment kept
    for j in range(3):
        t = a[j] * 2.0
        b[j] = t
    u = s + _C0
    if u > 0:
        w = 1.0
    for k in range(2):
        b[k] = u + w + _C0
"""


def test_split_passes_and_returns_the_right_names(monkeypatch):
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "1")
    monkeypatch.setattr(split, "MIN_PIECE", 1)
    pieces, text = split.split(HEAD, FN, "cache=False")
    # loop 1 updates s (defined before it): a parameter and a result
    assert "def _p0(a, b, s):" in pieces[0] and "return s," in pieces[0]
    assert "s, = _p0(a, b, s)" in text
    # loop 2's t is never read afterwards: nothing returned; the comment stays in _fn
    assert "def _p1(a, b):" in pieces[1] and "return" not in pieces[1]
    assert "# IR comment kept" in text
    # the `if` assigns w, which is first defined there: it stays in place
    assert "    if u > 0:" in text
    # module-level names (_C0) are globals, not parameters
    assert pieces[2].splitlines()[1] == "def _p2(b, u, w):" and "_C0" in pieces[2]
    _same_as_unsplit(pieces, text, FN)


def _same_as_unsplit(pieces, text, fn_source):
    """Run the split function (its pieces as plain Python, decorators dropped) and the
    original on the same input: the same output array."""
    ns = {}
    exec(HEAD + "\n".join("\n".join(p.splitlines()[1:]) for p in pieces) + "\n" + text, ns)
    ref = {}
    exec(HEAD + fn_source, ref)
    a = np.arange(1.0, 5.0)
    b1, b2 = np.zeros(4), np.zeros(4)
    ns["_fn"](a, b1, 0)
    ref["_fn"](a, b2, 0)
    np.testing.assert_array_equal(b1, b2)


def test_short_functions_are_not_split():
    pieces, text = split.split(HEAD, FN, "cache=False")
    assert pieces == [] and text == FN


def test_split_program_matches_eager(monkeypatch):
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "1")
    monkeypatch.setattr(split, "MIN_PIECE", 1)

    def loss(w, x, y):
        h = tnp.tanh(x @ w)
        m = tnp.max(h, axis=1, keepdims=True)
        lse = tnp.log(tnp.sum(tnp.exp(h - m), axis=1, keepdims=True)) + m
        return -tnp.mean(tnp.sum((h - lse) * y, axis=1)) + 0.1 * tnp.sum(w * w)

    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 5))
    x = rng.standard_normal((7, 12))
    y = np.eye(5)[rng.integers(0, 5, 7)]
    f = T.jit(T.value_and_grad(loss))
    src = f.lower(w, x, y).source
    assert "# split:" in src and "def _p0(" in src
    val, g = f(w, x, y)
    val_e, g_e = T.value_and_grad(loss)(w, x, y)
    np.testing.assert_allclose(val, val_e, rtol=1e-12)
    np.testing.assert_allclose(g, g_e, rtol=1e-11, atol=1e-13)


def test_threshold_must_be_an_integer(monkeypatch):
    import pytest
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "many")
    with pytest.raises(ValueError, match="NUMBAX_SPLIT_LINES"):
        split.split_lines()


def test_one_backward_pass_finds_what_later_code_reads():
    # the splitter asks, for each loop, what the statements after it read before assigning
    # them; it answers all at once (one pass from the end) and must agree with asking each
    import ast
    fn = ast.parse(FN + "    b[0] = v\n    v = 2.0\n    x = u\n    x += 1.0\n").body[0]
    stmts = fn.body
    names = split._NameSets()
    got = split._exposed_after(stmts, set(range(len(stmts))), names)
    for k in range(len(stmts)):
        assert got[k] == split._exposed(stmts[k + 1:], set()), k
    assert got[0] >= {"s", "a", "b", "_C0", "v", "w"} and "t" not in got[0]
    assert got[len(stmts) - 3] == {"u"}          # `x += 1.0` reads the x assigned before it
    assert got[len(stmts) - 2] == {"x"}
    # each node's names are collected once, however often they are asked for
    loads = names(stmts[1], ast.Load)
    assert names(stmts[1], ast.Load) is loads and loads == {"range", "a", "b", "s", "i"}
    assert names(stmts[1], ast.Store) == {"i", "s"}


GROUP_FN = """def _fn(a, b, _z):
    for i in range(4):
        b[i] = a[i] + 1.0
    v = b
    for i in range(4):
        v[i] = v[i] * 2.0
    t = a[0] + _C0
    for i in range(3):
        b[i] = b[i] + a[i + 1]
    for i in range(2):
        b[i] = b[i] - 0.5
    for i in range(4):
        b[i] = b[i] + t
"""


def test_runs_of_short_statements_become_pieces_that_return_nothing(monkeypatch):
    # no statement is long enough to be a piece of its own; runs of them are gathered,
    # cut only where nothing they assign is read later
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "1")
    monkeypatch.setattr(split, "MIN_PIECE", 4)
    monkeypatch.setattr(split, "GROUP_LINES", 5)
    arr = "_t.Array(_t.float64, 1, 'C')"
    types = {"a": arr, "b": arr, "_z": "_t.int64", "t": "_t.float64"}
    pieces, text = split.split(HEAD, GROUP_FN, "cache=False", types)
    assert len(pieces) == 2, pieces
    for p in pieces:
        assert p.startswith("@_njit(_t.none(") and "return" not in p
    assert "def _p0(a, b):" in pieces[0] and "v = b" in pieces[0]
    # `t = ...` alone is too short to start a run that may end before its reader (a run
    # ends within GROUP_LINES): it stays, and the three loops after it are the second piece
    assert "    t = a[0] + _C0" in text
    assert "def _p1(a, b, t):" in pieces[1] and "b[i] = b[i] + t" in pieces[1]
    assert "_p0(a, b)" in text and "_p1(a, b, _np.float64(t))" in text
    _same_as_unsplit(pieces, text, GROUP_FN)
