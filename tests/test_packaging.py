"""Packaging: the wheel's contents, the declared dependencies, the version, and a clear error
when a local `transforms.py` shadows the package."""
import ast
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import fnn
import transforms

ROOT = pathlib.Path(transforms.__file__).resolve().parent.parent
PACKAGES = ("transforms", "fnn")
# installed with a declared dependency (numba's compiler)
INDIRECT = {"llvmlite": "numba"}


def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _imports(top_level_only):
    """{top-level module name: [files]} of the absolute imports in the two packages: those
    run when a module is imported (`top_level_only`: statements of the module body, also
    inside module-level if/try), or every import, including the lazy ones in functions."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            if top_level_only:
                nodes, todo = [], list(tree.body)
                while todo:
                    node = todo.pop()
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        continue
                    if isinstance(node, ast.Try) and any(
                            isinstance(h.type, ast.Name) and h.type.id in
                            ("ImportError", "ModuleNotFoundError") for h in node.handlers):
                        continue  # an optional import with a fallback
                    nodes.append(node)
                    todo.extend(ast.iter_child_nodes(node))
            else:
                nodes = list(ast.walk(tree))
            for node in nodes:
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    out.setdefault(name.split(".")[0], []).append(path.relative_to(ROOT))
    return out


def _third_party(mods):
    return {m for m in mods if m not in sys.stdlib_module_names and m not in PACKAGES}


def test_runtime_dependencies_are_what_the_library_imports():
    deps = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for d in _pyproject()["project"]["dependencies"]}
    eager = _imports(top_level_only=True)
    undeclared = _third_party(eager) - deps - set(INDIRECT)
    assert not undeclared, ("imported when the packages are imported but not declared as "
                            f"dependencies: { {m: eager[m][:3] for m in undeclared} }")
    unused = deps - _third_party(_imports(top_level_only=False))
    assert not unused, f"declared dependencies the library never imports: {sorted(unused)}"
    assert {"tqdm", "safetensors"}.isdisjoint(deps)        # examples / tests only
    extras = _pyproject()["project"]["optional-dependencies"]
    assert any(d.startswith("tqdm") for d in extras["examples"])


def test_version_comes_from_the_package_metadata():
    try:
        expected = importlib.metadata.version("numbax")
    except importlib.metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert fnn.__version__ == transforms.__version__ == expected
    if expected != "0+unknown":
        assert expected == _pyproject()["project"]["version"]


def test_license_and_typing_markers_in_the_tree():
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert _pyproject()["project"]["license"] == {"text": "Apache-2.0"}
    for pkg in PACKAGES:
        assert (ROOT / pkg / "py.typed").exists()
    assert ".venv/" in (ROOT / ".gitignore").read_text().split()


def test_a_local_transforms_py_shadowing_the_package_is_named(tmp_path):
    shadow = tmp_path / "transforms.py"
    shadow.write_text("print('my own transforms script ran')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # `python -c` puts the current directory first on sys.path, as running a script there does
    r = subprocess.run([sys.executable, "-c", "import fnn"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and str(shadow) in r.stderr and "shadows" in r.stderr
    assert "script ran" not in r.stdout        # named without being executed
    # without the shadowing file the same command works
    shadow.unlink()
    r = subprocess.run([sys.executable, "-c", "import fnn; print(fnn.Dense.__name__)"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Dense"


def _can_build():
    try:
        import setuptools  # noqa: F401
    except ImportError:
        return False
    return shutil.which("pip") is not None or importlib.util.find_spec("pip") is not None


@pytest.mark.skipif(not _can_build(), reason="pip/setuptools not available to build a wheel")
def test_wheel_contains_license_typing_markers_and_every_module(tmp_path):
    # build from a copy of the sources, so the build leaves nothing in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheel"
    # no build isolation: the installed setuptools builds offline
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-index", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip()[-300:]}")
    wheels = list(out.glob("numbax-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert any(n.split("/")[0].endswith(".dist-info") and n.endswith("LICENSE") for n in names)
    assert {"transforms/py.typed", "fnn/py.typed"} <= names
    modules = {p.relative_to(src).as_posix() for pkg in PACKAGES for p in (src / pkg).rglob("*.py")}
    assert len(modules) > 50
    assert not modules - names, f"modules missing from the wheel: {sorted(modules - names)[:10]}"
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheels[0]).read(meta).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")
                and "extra ==" not in line]
    assert sorted(r.split()[1].split(">")[0] for r in requires) == \
        ["numba", "numpy", "optree", "scipy"]


def test_main_public_functions_carry_type_hints():
    import inspect
    from fnn import optim
    for fn in (transforms.jit, transforms.grad, transforms.value_and_grad, transforms.vmap,
               transforms.jvp, transforms.vjp, transforms.eval_shape, optim.adam, optim.sgd,
               fnn.Dense.__init__, fnn.Conv2D.__init__, fnn.Sequential.__init__,
               fnn.BatchNorm.__init__, fnn.summary):
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "self"]
        unannotated = [p.name for p in params if p.annotation is inspect.Parameter.empty]
        assert not unannotated, f"{fn.__qualname__}: no type hint on {unannotated}"
