"""Execute the notebooks with a parameter set and build the book's HTML.

Pipeline (``python -m cae.book build --set default``, what ``make book`` runs):

1. write the vega bundle to ``_static/cae-vega.js`` (:func:`cae.plotting.write_vega_bundle`);
2. for each notebook in :data:`NOTEBOOKS`: convert ``notebooks/<name>.py`` (jupytext percent, the only source)
   to a notebook, execute it with papermill and the parameters in ``params/<set>/<name>.yaml``, and write the
   executed notebook to ``notebooks/<name>.ipynb`` (build output, not in git). A notebook is skipped when its
   executed copy records the same *inputs hash* (its source, its parameters, every ``cae`` source file and the
   shipped weights' metadata), so a rerun with nothing changed executes nothing; the sweeps inside the
   notebooks are cached as well (:mod:`cae.sweep`), so a rerun after a change recomputes only what changed;
3. ``jupyter-book build`` with execution off (papermill is the only executor) into ``_build/html``.

Any cell error fails the build: the other notebooks still run (so one run reports every failure), then the
build stops before the HTML step and exits 1, naming the notebook and the failing cell.

``python -m cae.book run NAME --set smoke --out out.ipynb [-p key value ...]`` executes one notebook (what the
tests do with the ``smoke`` set).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cae.paths import PACKAGE_DIR, REPO_ROOT

__all__ = ["NOTEBOOKS", "PARAMETER_SETS", "BookError", "build", "execute", "inputs_hash", "load_params", "main"]

#: The notebooks, in the book's order (``_toc.yml`` lists the same).
NOTEBOOKS: tuple[str, ...] = (
    "reference_models",
    "rq1_noise_length",
    "rq2_token_dynamics",
    "rq3_regions",
    "rq4_shuffle_colour",
    "ablations",
    "profile_score",
    "complexity_detection",
    "results",
)
PARAMETER_SETS: tuple[str, ...] = ("smoke", "default", "paper", "dryrun")
ROOT = REPO_ROOT if REPO_ROOT is not None else Path.cwd()


class BookError(RuntimeError):
    """A notebook failed, a parameter file is missing, or jupyter-book failed."""


def notebook_source(name: str, root: Path = ROOT) -> Path:
    path = root / "notebooks" / f"{name}.py"
    if not path.is_file():
        raise BookError(f"{path}: no such notebook (known: {', '.join(NOTEBOOKS)})")
    return path


def notebook_parameters(name: str, root: Path = ROOT) -> dict[str, Any]:
    """The parameters a notebook declares: the names and defaults of its cell tagged ``parameters``."""
    import jupytext

    nb = jupytext.read(notebook_source(name, root))
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise BookError(f"{notebook_source(name, root)}: expected exactly one cell tagged 'parameters'")
    namespace: dict[str, Any] = {}
    exec(cells[0].source, namespace)  # noqa: S102 - the project's own notebook source
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def load_params(set_name: str, name: str, root: Path = ROOT) -> dict[str, Any]:
    """The parameters of notebook ``name`` in parameter set ``set_name`` (``params/<set>/<name>.yaml``)."""
    import yaml

    path = root / "params" / set_name / f"{name}.yaml"
    if not path.is_file():
        raise BookError(f"{path}: no parameter file (sets: {', '.join(PARAMETER_SETS)})")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise BookError(f"{path}: expected a mapping of parameter names to values")
    return data


def _package_files() -> list[Path]:
    files = sorted(PACKAGE_DIR.rglob("*.py")) + sorted((PACKAGE_DIR / "reference" / "weights").rglob("*.json"))
    return [f for f in files if "__pycache__" not in f.parts]


def inputs_hash(name: str, params: Mapping[str, Any], root: Path = ROOT) -> str:
    """SHA-256 over the notebook source, its parameters and the ``cae`` package (sources, weights metadata)."""
    h = hashlib.sha256()
    h.update(notebook_source(name, root).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for f in _package_files():
        h.update(str(f.relative_to(PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _recorded_hash(path: Path) -> str | None:
    try:
        with open(path) as f:
            nb = json.load(f)
    except (OSError, ValueError):
        return None
    meta = nb.get("metadata", {}).get("cae", {})
    return meta.get("inputs_sha256") if meta.get("status") == "ok" else None


def _kernel_env() -> None:
    # the "python3" kernelspec runs `python`: make it this environment's interpreter
    bindir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bindir + os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def execute(name: str, out: str | Path, *, set_name: str = "default", params: Mapping[str, Any] | None = None,
            root: Path = ROOT, progress: bool = True, timeout_s: int | None = None) -> Path:
    """Execute notebook ``name`` with a parameter set (plus ``params`` overrides) into ``out``.

    Returns:
        ``out``. The executed notebook records ``metadata.cae`` = parameter set, parameters, inputs hash and
        status.

    Raises:
        BookError: a cell failed (the message names the notebook and the cell's error); the partial notebook
        is still written to ``out`` for inspection.
    """
    import jupytext
    import nbformat
    import papermill as pm

    _kernel_env()
    merged = {**load_params(set_name, name, root), **dict(params or {})}
    digest = inputs_hash(name, merged, root)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(notebook_source(name, root))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{name}.ipynb"
        nbformat.write(nb, src)
        status, error = "ok", None
        try:
            pm.execute_notebook(str(src), str(out), parameters=merged, kernel_name="python3",
                                cwd=str(root / "notebooks"), progress_bar=progress,
                                execution_timeout=timeout_s)
        except pm.PapermillExecutionError as e:
            status, error = "error", f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    done = nbformat.read(out, as_version=4)
    done.metadata["cae"] = {"parameter_set": set_name, "parameters": merged, "inputs_sha256": digest,
                            "status": status}
    nbformat.write(done, out)
    if error is not None:
        raise BookError(f"notebook {name} ({set_name} parameters) failed at {error}; see {out}")
    return out


@dataclass
class Step:
    name: str
    seconds: float
    status: str


def build(set_name: str = "default", notebooks: Sequence[str] | None = None, *, html: bool = True,
          force: bool = False, root: Path = ROOT, progress: bool = True, out_dir: str | Path | None = None,
          overrides: Mapping[str, Any] | None = None) -> list[Step]:
    """Execute the notebooks (skipping unchanged ones) and build the HTML book; see the module docstring.

    ``out_dir`` writes the executed notebooks elsewhere than ``notebooks/`` (which the HTML book is built from), so
    that another parameter set (the ``dryrun``, say) can run without touching the book; it implies ``html=False``.
    ``overrides`` replace the set's values in every notebook that has that parameter.

    Raises:
        BookError: a notebook failed (after all notebooks were tried) or jupyter-book failed.
    """
    from cae.plotting import BUNDLE_NAME, write_vega_bundle

    names = list(notebooks or NOTEBOOKS)
    target = root / "notebooks" if out_dir is None else Path(out_dir)
    html = html and out_dir is None
    write_vega_bundle(root / "_static" / BUNDLE_NAME)
    steps: list[Step] = []
    failures: list[str] = []
    t_all = time.perf_counter()
    for i, name in enumerate(names, 1):
        out = target / f"{name}.ipynb"
        params = load_params(set_name, name, root)
        if overrides:
            declared = notebook_parameters(name, root)
            params = {**params, **{k: v for k, v in overrides.items() if k in declared}}
        t0 = time.perf_counter()
        if not force and out.is_file() and _recorded_hash(out) == inputs_hash(name, params, root):
            steps.append(Step(name, 0.0, "unchanged"))
            print(f"[{i}/{len(names)}] {name}: unchanged, not re-executed", flush=True)
            continue
        print(f"[{i}/{len(names)}] {name}: executing with the {set_name!r} parameters ...", flush=True)
        try:
            execute(name, out, set_name=set_name, params=params, root=root, progress=progress)
            status = "executed"
        except BookError as e:
            failures.append(str(e))
            status = "FAILED"
        dt = time.perf_counter() - t0
        steps.append(Step(name, dt, status))
        print(f"[{i}/{len(names)}] {name}: {status} in {dt:.0f} s", flush=True)
    if failures:
        raise BookError("\n".join(failures))
    if html:
        t0 = time.perf_counter()
        print("jupyter-book build ...", flush=True)
        jb = Path(sys.executable).parent / "jupyter-book"
        cmd = [str(jb), "build", str(root), "--builder", "html", "--keep-going"]
        res = subprocess.run(cmd, cwd=root)
        if res.returncode != 0:
            raise BookError(f"jupyter-book build failed (exit {res.returncode})")
        steps.append(Step("html", time.perf_counter() - t0, "built"))
        print(f"HTML in {root / '_build' / 'html' / 'index.html'} ({time.perf_counter() - t0:.0f} s)")
    print(f"book: {len(names)} notebooks, {time.perf_counter() - t_all:.0f} s in total", flush=True)
    return steps


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cae.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute every notebook with a parameter set and build the HTML book")
    b.add_argument("--set", default="default", choices=PARAMETER_SETS, help="parameter set (default: default)")
    b.add_argument("--only", nargs="+", choices=NOTEBOOKS, help="execute only these notebooks")
    b.add_argument("--no-html", action="store_true", help="execute only; skip jupyter-book")
    b.add_argument("--force", action="store_true", help="re-execute notebooks even if unchanged")
    b.add_argument("--out-dir", help="write the executed notebooks here instead of notebooks/ (no HTML)")
    b.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter in every notebook that has it (VALUE is YAML)")
    r = sub.add_parser("run", help="execute one notebook with a parameter set")
    r.add_argument("name", choices=NOTEBOOKS)
    r.add_argument("--set", default="smoke", choices=PARAMETER_SETS)
    r.add_argument("--out", required=True, help="executed notebook (.ipynb)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (VALUE is YAML: 100, [5, 50], reference, ...)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.set, args.only, html=not args.no_html, force=args.force, out_dir=args.out_dir,
                  overrides={k: _parse_value(v) for k, v in args.param})
        else:
            execute(args.name, args.out, set_name=args.set, params={k: _parse_value(v) for k, v in args.param})
            print(f"executed {args.name} ({args.set}) → {args.out}")
    except BookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
