"""fnn is written on the public API of transforms only: every import in fnn's sources names a
public module (transforms, transforms.numpy / lax / random / tree / nn / debug /
distributed) and no private name (a leading underscore), from transforms or across fnn's own
modules. A module or name imported from anywhere else fails here, naming the file and line."""
import ast
import importlib.util
import pathlib

import pytest

import fnn

FNN_DIR = pathlib.Path(fnn.__file__).parent
PUBLIC = {"transforms", "transforms.numpy", "transforms.lax", "transforms.random",
          "transforms.tree", "transforms.nn", "transforms.nn.initializers", "transforms.debug",
          "transforms.distributed"}
# serialisation of arbitrary pytrees (named tuples, struct sequences, registered nodes with
# their raw keys) needs optree's node registry itself; nothing else in fnn may import it
OPTREE_ALLOWED = {"checkpoint/format.py"}


def _imports(rel, src):
    """(line, module, imported names) of every import in the source `src` of fnn/`rel`
    (relative imports resolved)."""
    package = ["fnn"] + list(pathlib.PurePosixPath(rel).parts[:-1])
    for node in ast.walk(ast.parse(src, rel)):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            yield node.lineno, module, [a.name for a in node.names]


def _private(name):
    """A leading underscore marks a private name; dunders (`__version__`) are public."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:        # the parent is a module, not a package
        return False


def _violations(rel, src):
    bad = []
    for line, module, names in _imports(rel, src):
        where = f"fnn/{rel}:{line}"
        top = module.split(".")[0]
        if top == "transforms":
            if module not in PUBLIC:
                bad.append(f"{where}: imports {module} (not a public module)")
            private = [n for n in names if _private(n)]
            if private:
                bad.append(f"{where}: imports private {private} from {module}")
            # `from transforms import core`: a submodule imported by name
            internal = [n for n in names if f"{module}.{n}" not in PUBLIC
                        and _is_module(f"{module}.{n}")]
            if internal:
                bad.append(f"{where}: imports internal module(s) {internal} from {module}")
        elif top == "fnn":
            # a private module may be imported whole; private names across modules may not
            private = [n for n in names if _private(n)]
            if private:
                bad.append(f"{where}: imports private {private} from {module}")
        elif top == "optree" and rel not in OPTREE_ALLOWED:
            bad.append(f"{where}: imports optree directly (use transforms.tree)")
    return bad


def _fnn_sources():
    return sorted(p for p in FNN_DIR.rglob("*.py"))


def test_fnn_sources_are_found():
    names = {p.relative_to(FNN_DIR).as_posix() for p in _fnn_sources()}
    assert {"layers.py", "optim/transformations.py", "checkpoint/format.py"} <= names


@pytest.mark.parametrize("path", _fnn_sources(), ids=lambda p: p.relative_to(FNN_DIR).as_posix())
def test_fnn_imports_only_public_names(path):
    rel = path.relative_to(FNN_DIR).as_posix()
    bad = _violations(rel, path.read_text())
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("src, expected", [
    ("from transforms.core import Tracer\n", "transforms.core (not a public module)"),
    ("import transforms.interpreters.partial_eval\n", "not a public module"),
    ("from transforms import source_info\n", "internal module(s) ['source_info']"),
    ("from transforms.lax.misc import stop_gradient\n", "transforms.lax.misc"),
    ("from transforms.nn.initializers import _TRUNC_STD\n", "private ['_TRUNC_STD']"),
    ("from .updates import _dtype\n", "private ['_dtype'] from fnn.optim.updates"),
    ("import optree\n", "optree directly"),
    ("from transforms import lax, tree\nimport transforms.numpy as tnp\n", None),
])
def test_the_checker_names_each_kind_of_violation(src, expected):
    bad = _violations("optim/alias.py", src)
    if expected is None:
        assert bad == []
    else:
        assert len(bad) == 1 and expected in bad[0] and "fnn/optim/alias.py:" in bad[0], bad
