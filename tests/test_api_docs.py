"""The API reference: every public name has a docstring, `help(T.jit)` shows the whole story,
and the HTML reference builds (so it never rots)."""
import importlib
import importlib.util
import pathlib
import pydoc
import re
import types

import numpy as np
import pytest

import transforms as T

ROOT = pathlib.Path(T.__file__).resolve().parent.parent
MODULES = ["transforms", "transforms.numpy", "transforms.lax", "transforms.random",
           "transforms.tree", "transforms.tree_util", "transforms.nn", "transforms.numpy.linalg",
           "transforms.numpy.fft", "transforms.scipy", "transforms.scipy.special",
           "transforms.scipy.linalg", "transforms.scipy.signal", "transforms.scipy.stats",
           "transforms.scipy.optimize", "transforms.scipy.sparse.linalg",
           "transforms.scipy.ndimage", "transforms.scipy.integrate", "transforms.scipy.fft",
           "transforms.scipy.interpolate", "transforms.scipy.cluster.vq", "transforms.debug",
           "transforms.distributed", "transforms.ad_checkpoint", "transforms.ops",
           "transforms.dtypes", "transforms.experimental", "transforms.image",
           "transforms.experimental.ode", "transforms.custom_batching", "transforms.flatten_util",
           "transforms.sharding", "transforms.experimental.shard_map",
           "transforms.experimental.mesh_utils", "transforms.experimental.checkify",
           "transforms.example_libraries",
           "transforms.example_libraries.stax", "transforms.example_libraries.optimizers",
           "fnn", "fnn.optim",
           "fnn.checkpoint", "fnn.optim.losses", "fnn.optim.tree_utils", "fnn.optim.tree",
           "fnn.optim.projections", "fnn.optim.second_order", "fnn.optim.schedules",
           "fnn.optim.transforms", "fnn.optim.contrib",
           "fnn.losses", "fnn.layers", "fnn.sequence", "fnn.data"]
# fnn.models and fnn.interop join the list where they exist (they land separately)
MODULES += [m for m in ("fnn.models", "fnn.interop") if importlib.util.find_spec(m)]


def public_names(mod):
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in dir(mod) if not n.startswith("_")]
    return names


def own_doc(obj):
    """The object's own docstring (a class's, not inherited from `object` or a base)."""
    if isinstance(obj, type):
        return obj.__dict__.get("__doc__")
    return getattr(obj, "__doc__", None)


def undocumented(module_name):
    mod = importlib.import_module(module_name)
    missing = []
    for name in public_names(mod):
        obj = getattr(mod, name)
        if not (callable(obj) or isinstance(obj, types.ModuleType)):
            continue  # constants (pi, newaxis, ...) are described by their module
        if getattr(obj, "__module__", None) == "typing":
            continue  # type aliases (`Schedule = Callable[...]`) cannot carry a docstring
        doc = own_doc(obj)
        if not (doc and doc.strip()):
            missing.append(name)
    return missing


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_has_a_docstring(module_name):
    missing = undocumented(module_name)
    assert not missing, f"{module_name}: public names without a docstring: {missing}"


def test_tnp_docstrings_name_the_numpy_function_and_the_transformations():
    import transforms.numpy as tnp
    vague = []
    for name in public_names(tnp):
        obj = getattr(tnp, name)
        if not callable(obj) or isinstance(obj, type) or not hasattr(np, name):
            continue
        doc = own_doc(obj) or ""
        if "numpy" not in doc.lower():
            vague.append(name)
    assert not vague, f"tnp functions whose docstring does not name the NumPy original: {vague}"
    # the generated ones say how they transform
    for name in ("add", "sin", "floor", "less", "argmax", "reshape", "zeros", "nonzero"):
        doc = getattr(tnp, name).__doc__
        assert f"numpy.{name}" in doc
        assert ("jit" in doc or "Eager only" in doc) and ("grad" in doc or "derivative" in doc)
    assert "Eager only" in tnp.nonzero.__doc__ and "size" not in tnp.sum.__doc__[:0]


def test_help_of_jit_shows_the_full_documentation():
    text = pydoc.render_doc(T.jit, renderer=pydoc.plaintext)
    # the function's own arguments and the module's details (cache key, donation, misses)
    for phrase in ("static_argnums", "donate_argnums", "Cache key", "NUMBAX_EXPLAIN_CACHE_MISSES",
                   "cache_misses"):
        assert phrase in text, phrase


def test_environment_variables_in_the_readme_table():
    """Every NUMBAX_* variable the code reads is in the README's table."""
    used = set()
    for pkg in ("transforms", "fnn"):
        for path in (ROOT / pkg).rglob("*.py"):
            used |= set(re.findall(r"[\"'](NUMBAX_[A-Z0-9_]+)[\"']", path.read_text()))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Environment variables"):]
    rows = set(re.findall(r"^\| `(NUMBAX_[A-Z0-9_]+)`", table, flags=re.M))
    assert used and not used - rows, f"not in the README table: {sorted(used - rows)}"


@pytest.mark.skipif(importlib.util.find_spec("pdoc") is None, reason="pdoc not installed")
def test_html_reference_builds(tmp_path):
    spec = importlib.util.spec_from_file_location("_build_api", ROOT / "docs" / "build_api.py")
    build_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_api)
    out = build_api.build(tmp_path / "api")
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for page in ("index.html", "transforms.html", "transforms/numpy.html", "transforms/lax.html",
                 "transforms/random.html", "transforms/tree.html", "fnn.html", "fnn/optim.html",
                 "fnn/checkpoint.html"):
        assert page in pages, page
    assert not any(p.startswith("transforms/backend") for p in pages)   # internals left out

    def ids(page):
        return set(re.findall(r'id="([A-Za-z_][\w.]*)"', (out / page).read_text()))
    assert {"jit", "grad", "vmap", "value_and_grad", "eval_shape"} <= ids("transforms.html")
    assert {"add", "einsum", "where", "nonzero"} <= ids("transforms/numpy.html")
    assert {"scan", "fori_loop", "add"} <= ids("transforms/lax.html")
    assert {"Dense", "Sequential", "summary"} <= ids("fnn.html")
    assert {"adam", "multi_transform"} <= ids("fnn/optim.html")
    # the full jit documentation made it into the page
    assert "donate_argnums" in (out / "transforms.html").read_text()
