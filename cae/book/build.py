"""Execute the notebooks with a parameter set and build the book's HTML.

Pipeline (``python -m cae.book build --set default``, what ``make book`` runs):

1. write the vega bundle to ``_static/cae-vega.js`` (:func:`cae.plotting.write_vega_bundle`);
2. for each notebook in :data:`NOTEBOOKS`: convert ``notebooks/<name>.py`` (jupytext percent, the only source)
   to a notebook, execute it with papermill and the parameters in ``params/<set>/<name>.yaml``, and write the
   executed notebook to ``notebooks/<name>.ipynb`` (build output, not in git). A notebook is skipped when its
   executed copy records the same *inputs hash* (its source, its parameters, every ``cae`` source file and the
   shipped weights' metadata), so a rerun with nothing changed executes nothing; the sweeps inside the
   notebooks are cached as well (:mod:`cae.scoring`), so a rerun after a change recomputes only what changed.
   On a machine with two or more cores the notebooks run in two lanes side by side, one kernel and one thread
   each (:data:`LANES`, :func:`default_lanes`), then :data:`LAST` (the pages that read the others' sweeps);
   each executed notebook keeps what it wrote to stderr out of the notebook, in ``<name>.stderr.txt``, and becomes
   a readable page (:mod:`cae.book.pages`);
3. ``jupyter-book build`` with execution off (papermill is the only executor) into ``_build/html``.

Any cell error fails the build: the other notebooks still run (so one run reports every failure), then the
build stops before the HTML step and exits 1, naming the notebook and the failing cell.

``python -m cae.book run NAME --set smoke --out out.ipynb [-p key value ...]`` executes one notebook (what the
tests do with the ``smoke`` set).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cae.paths import PACKAGE_DIR, REPO_ROOT

__all__ = ["NOTEBOOKS", "PARAMETER_SETS", "BookError", "build", "execute", "inputs_hash", "load_params", "main",
           "parse_run", "stderr_log"]

#: The notebooks, in the order they are executed: the book's order (``_toc.yml``), except ``intro``, the book's
#: opening page, which summarises the others' results and so runs last.
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
    "intro",
)
PARAMETER_SETS: tuple[str, ...] = ("smoke", "default", "paper", "dryrun")
#: Notebooks that print the commit they were built from (the opening page's provenance): their inputs hash covers
#: the commit too, so a new commit re-executes them (from the sweep cache).
COMMIT_PAGES: frozenset[str] = frozenset({"intro"})
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


#: In each parameter set, ``params/<set>/_shared.yaml`` holds the values several notebooks share (models, datasets,
#: lengths, ...); a notebook receives the shared values of the parameters it declares, then its own file's values.
SHARED_PARAMS = "_shared.yaml"


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise BookError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise BookError(f"{path}: expected a mapping of parameter names to values")
    return data


def load_params(set_name: str, name: str, root: Path = ROOT) -> dict[str, Any]:
    """The parameters of notebook ``name`` in parameter set ``set_name``: the set's shared values
    (``params/<set>/_shared.yaml``, :data:`SHARED_PARAMS`) for the parameters the notebook declares, overridden by
    ``params/<set>/<name>.yaml``; in the order the notebook declares them."""
    folder = root / "params" / set_name
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise BookError(f"{path}: no parameter file (sets: {', '.join(PARAMETER_SETS)})")
    own = _read_yaml(path)
    shared = _read_yaml(folder / SHARED_PARAMS) if (folder / SHARED_PARAMS).is_file() else {}
    declared = list(notebook_parameters(name, root))
    merged = {k: v for k, v in shared.items() if k in declared} | own
    order = {k: i for i, k in enumerate(declared)}
    return dict(sorted(merged.items(), key=lambda kv: order.get(kv[0], len(order))))


def _package_files() -> list[Path]:
    files = sorted(PACKAGE_DIR.rglob("*.py")) + sorted((PACKAGE_DIR / "reference" / "weights").rglob("*.json"))
    return [f for f in files if "__pycache__" not in f.parts]


def inputs_hash(name: str, params: Mapping[str, Any], root: Path = ROOT) -> str:
    """SHA-256 over the notebook source, its parameters and the ``cae`` package (sources, weights metadata); for
    the :data:`COMMIT_PAGES`, the commit as well."""
    h = hashlib.sha256()
    h.update(notebook_source(name, root).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    for f in _package_files():
        h.update(str(f.relative_to(PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    if name in COMMIT_PAGES:
        from cae.provenance import git_commit

        h.update(git_commit(root).encode())
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

    from cae.book.pages import finish

    _kernel_env()
    set_params = load_params(set_name, name, root)
    merged = {**set_params, **dict(params or {})}
    overrides = {k: v for k, v in merged.items() if k not in set_params or set_params[k] != v}
    digest = inputs_hash(name, merged, root)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = stderr_log(out)
    nb = jupytext.read(notebook_source(name, root))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    with tempfile.TemporaryDirectory() as tmp, open(log, "w") as log_file:
        src = Path(tmp) / f"{name}.ipynb"
        nbformat.write(nb, src)
        status, error = "ok", None
        try:
            pm.execute_notebook(str(src), str(out), parameters=merged, kernel_name="python3",
                                cwd=str(root / "notebooks"), progress_bar=progress,
                                execution_timeout=timeout_s, stderr_file=_Tee(log_file, sys.stderr if progress else None))
        except pm.PapermillExecutionError as e:
            status, error = "error", f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    done = nbformat.read(out, as_version=4)
    used = {**notebook_parameters(name, root), **merged}  # the notebook's defaults for what the set leaves out
    removed = finish(done, name=name, set_name=set_name, params=used, overrides=overrides)
    if removed:
        print(f"{name}: {sum(t.count(chr(10)) + 1 for t in removed)} lines of stderr (warnings, progress) kept out of "
              f"the notebook; they are in {log}", flush=True)
    done.metadata["cae"] = {"parameter_set": set_name, "parameters": merged, "overrides": overrides,
                            "inputs_sha256": digest, "status": status}
    nbformat.write(done, out)
    if error is not None:
        raise BookError(f"notebook {name} ({set_name} parameters) failed at {error}; see {out} and {log}")
    return out


def stderr_log(out: str | Path) -> Path:
    """Where the build keeps what the notebook executed into ``out`` wrote to stderr (warnings, progress bars):
    beside it, ``<name>.stderr.txt``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.stderr.txt")


class _Tee:
    """A write-only stream copying to a file and, optionally, to a second stream (the terminal)."""

    def __init__(self, first: Any, second: Any = None):
        self.streams = [s for s in (first, second) if s is not None]

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


#: Notebooks that can run side by side: each lane runs in order (a notebook after the ones whose sweeps it reuses),
#: the lanes at the same time, one kernel each, and :data:`LAST` after all of them (they read the others' sweeps).
#: The lanes are balanced by their cold time on the ``default`` set (about 25 minutes each on two cores).
LANES: tuple[tuple[str, ...], ...] = (
    ("reference_models", "rq1_noise_length", "rq2_token_dynamics", "rq3_regions", "profile_score"),
    ("rq4_shuffle_colour", "ablations", "complexity_detection"),
)
LAST: tuple[str, ...] = ("results", "intro")


def default_lanes() -> int:
    """Lanes for :func:`build`: ``$CAE_BOOK_LANES``, else 2 on a machine with at least 2 CPU cores, else 1.

    Two notebooks with one thread each get more out of two cores than one notebook with two: the codec's
    convolutions and LSTM, the decoder's small matrix products and the Python around them use a second thread
    poorly (measured on this project's sweeps: 1.6× slower on one thread, 1.27× more units per second from two
    single-threaded processes than from one process with two threads). Real-size models are the opposite: their
    matrix products keep both cores busy, so ``make dryrun`` runs one lane."""
    env = os.environ.get("CAE_BOOK_LANES")
    if env:
        return max(1, int(env))
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def plan(names: Sequence[str], lanes: int) -> tuple[list[list[str]], list[str]]:
    """Split ``names`` (in :data:`NOTEBOOKS` order) into lanes run side by side and a tail run after them.

    >>> plan(["rq1_noise_length", "ablations", "results", "intro"], 2)
    ([['rq1_noise_length'], ['ablations']], ['results', 'intro'])
    >>> plan(["rq1_noise_length", "ablations", "results"], 1)
    ([['rq1_noise_length', 'ablations', 'results']], [])
    """
    if lanes <= 1:
        return [list(names)], []
    side = [[n for n in lane if n in names] for lane in LANES]
    side = [lane for lane in side if lane]
    last = [n for n in names if not any(n in lane for lane in side)]
    if len(side) <= 1:
        return [[n for n in names]], []
    return side, last


def _threads_per_kernel(lanes: int) -> int:
    return max(1, (os.cpu_count() or 1) // lanes)


@contextlib.contextmanager
def _kernel_threads(n: int) -> Iterator[None]:
    """Kernels started in the block use ``n`` threads (``OMP_NUM_THREADS``), unless the user set it."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


@dataclass
class Step:
    name: str
    seconds: float
    status: str


def build(set_name: str = "default", notebooks: Sequence[str] | None = None, *, html: bool = True,
          force: bool = False, root: Path = ROOT, progress: bool = True, out_dir: str | Path | None = None,
          overrides: Mapping[str, Any] | None = None, lanes: int | None = None) -> list[Step]:
    """Execute the notebooks (skipping unchanged ones) and build the HTML book; see the module docstring.

    ``out_dir`` writes the executed notebooks elsewhere than ``notebooks/`` (which the HTML book is built from), so
    that another parameter set (the ``dryrun``, say) can run without touching the book; it implies ``html=False``.
    ``overrides`` replace the set's values in every notebook that has that parameter. ``lanes``: how many
    notebooks run side by side (:data:`LANES`; default :func:`default_lanes`).

    Raises:
        BookError: a notebook failed (after all notebooks were tried) or jupyter-book failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from cae.plotting import BUNDLE_NAME, write_vega_bundle

    names = list(notebooks or NOTEBOOKS)
    target = root / "notebooks" if out_dir is None else Path(out_dir)
    html = html and out_dir is None
    write_vega_bundle(root / "_static" / BUNDLE_NAME)
    steps: list[Step] = []
    failures: list[str] = []
    t_all = time.perf_counter()
    lanes = default_lanes() if lanes is None else max(1, int(lanes))
    side_by_side, last = plan(names, lanes)
    total = len(names)
    counter = iter(range(1, total + 1))
    lock = threading.Lock()

    def run_one(name: str, quiet: bool) -> None:
        out = target / f"{name}.ipynb"
        params = load_params(set_name, name, root)
        if overrides:
            declared = notebook_parameters(name, root)
            params = {**params, **{k: v for k, v in overrides.items() if k in declared}}
        t0 = time.perf_counter()
        with lock:
            i = next(counter)
        if not force and out.is_file() and _recorded_hash(out) == inputs_hash(name, params, root):
            with lock:
                steps.append(Step(name, 0.0, "unchanged"))
            print(f"[{i}/{total}] {name}: unchanged, not re-executed", flush=True)
            return
        print(f"[{i}/{total}] {name}: executing with the {set_name!r} parameters ...", flush=True)
        try:
            execute(name, out, set_name=set_name, params=params, root=root, progress=progress and not quiet)
            status = "executed"
        except BookError as e:
            with lock:
                failures.append(str(e))
            status = "FAILED"
        dt = time.perf_counter() - t0
        with lock:
            steps.append(Step(name, dt, status))
        print(f"[{i}/{total}] {name}: {status} in {dt:.0f} s", flush=True)

    if len(side_by_side) > 1:
        import jupytext  # noqa: F401 - imported here, once: two lanes importing them at the same time can deadlock
        import nbformat  # noqa: F401
        import papermill  # noqa: F401

        from cae.book import pages  # noqa: F401

        print(f"{len(side_by_side)} lanes side by side, {_threads_per_kernel(len(side_by_side))} thread(s) per "
              f"notebook: " + " | ".join(" → ".join(lane) for lane in side_by_side), flush=True)
        with _kernel_threads(_threads_per_kernel(len(side_by_side))), ThreadPoolExecutor(len(side_by_side)) as pool:
            list(pool.map(lambda lane: [run_one(n, True) for n in lane], side_by_side))
    else:
        for lane in side_by_side:
            for name in lane:
                run_one(name, False)
    for name in last:
        run_one(name, False)
    if failures:
        raise BookError("\n".join(failures))
    if html:
        t0 = time.perf_counter()
        print("jupyter-book build ...", flush=True)
        # jupyter-book writes the redirect to the root page only when there is none: drop one a build with another
        # root page left behind
        (root / "_build" / "html" / "index.html").unlink(missing_ok=True)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cae.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute every notebook with a parameter set and build the HTML book")
    b.add_argument("--set", default="default", choices=PARAMETER_SETS, help="parameter set (default: default)")
    b.add_argument("--only", nargs="+", choices=NOTEBOOKS, help="execute only these notebooks")
    b.add_argument("--no-html", action="store_true", help="execute only; skip jupyter-book")
    b.add_argument("--force", action="store_true", help="re-execute notebooks even if unchanged")
    b.add_argument("--out-dir", help="write the executed notebooks here instead of notebooks/ (no HTML)")
    b.add_argument("--lanes", type=int, default=None,
                   help="notebooks run side by side (default: $CAE_BOOK_LANES, else 2 on 2+ cores)")
    b.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter in every notebook that has it (VALUE is YAML)")
    r = sub.add_parser("run", help="execute one notebook with a parameter set")
    r.add_argument("name", choices=NOTEBOOKS)
    r.add_argument("--set", default="smoke", choices=PARAMETER_SETS)
    r.add_argument("--out", required=True, help="executed notebook (.ipynb)")
    r.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter (VALUE is YAML: 100, [5, 50], reference, ...)")
    q = sub.add_parser("params", help="print a notebook's parameters in a set (shared values merged) as YAML, "
                                      "for papermill -f")
    q.add_argument("name", choices=NOTEBOOKS)
    q.add_argument("--set", default="smoke", choices=PARAMETER_SETS)
    return parser


def params_yaml(set_name: str, name: str, root: Path = ROOT) -> str:
    """:func:`load_params` as YAML (what ``python -m cae.book params NAME --set SET`` prints), for ``papermill -f``.

    >>> import yaml
    >>> yaml.safe_load(params_yaml("default", "rq1_noise_length"))["lengths"]
    [5, 10, 50, 100, 150, 200]
    """
    import yaml

    return yaml.safe_dump(load_params(set_name, name, root), sort_keys=False, default_flow_style=None, width=100)


def parse_run(argv: Sequence[str]) -> tuple[str, str, dict[str, Any], str]:
    """What ``python -m cae.book run ARGS`` executes: ``(notebook, parameter set, overrides, output path)``."""
    args = _parser().parse_args(["run", *argv])
    return args.name, args.set, {k: _parse_value(v) for k, v in args.param}, args.out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "params":
            print(params_yaml(args.set, args.name), end="")
        elif args.command == "build":
            build(args.set, args.only, html=not args.no_html, force=args.force, out_dir=args.out_dir,
                  overrides={k: _parse_value(v) for k, v in args.param}, lanes=args.lanes)
        else:
            name, set_name, overrides, out = parse_run((sys.argv[1:] if argv is None else list(argv))[1:])
            execute(name, out, set_name=set_name, params=overrides)
            print(f"executed {name} ({set_name}) → {out}")
    except BookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
