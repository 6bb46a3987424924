"""Build the HTML API reference of `transforms` and `fnn` with pdoc.

    python docs/build_api.py [OUTPUT_DIR]        # default: docs/api (not committed)

Open OUTPUT_DIR/index.html. Every public module is rendered from its docstrings (Google-style
"Args:" sections); tests/test_api_docs.py builds it into a temporary directory so the
reference cannot silently break. Internal modules (the Numba backend, the interpreters) are
left out.
"""
from __future__ import annotations

import os
import pathlib
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent

# the two packages and their submodules, minus the internals (pdoc's "!" excludes)
MODULES = ["transforms", "fnn", "!transforms.backend", "!transforms.interpreters",
           "!transforms.test_util", "!transforms.source_info", "!transforms.pjit",
           "!transforms.ir", "!transforms.core"]


def build(output_dir) -> pathlib.Path:
    """Render `MODULES` into `output_dir` (created if needed); returns its path."""
    import pdoc
    import pdoc.render
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pdoc.render.configure(docformat="google", search=True, show_source=False)
    with warnings.catch_warnings():
        # pdoc evaluates string annotations of generated NamedTuple __init__s and warns when
        # their names are not importable from the class's module; the page is still right
        warnings.filterwarnings("ignore", message="Error parsing type annotation",
                                category=UserWarning)
        pdoc.pdoc(*MODULES, output_directory=out)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = build(argv[0] if argv else ROOT / "docs" / "api")
    print(f"wrote {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.fspath(ROOT))
    raise SystemExit(main())
