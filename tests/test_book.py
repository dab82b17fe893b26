"""The book: notebooks, parameter sets, the build, the offline chart renderer, and the adding-a-model recipe."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from cae import plotting
from cae.book import build

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def parameters_of(name: str) -> dict:
    """Execute the tagged ``parameters`` cell of a notebook source and return its names."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}: exactly one cell tagged 'parameters'"
    ns: dict = {}
    exec(cells[0].source, ns)  # noqa: S102 - our own notebook
    return {k: v for k, v in ns.items() if not k.startswith("__")}


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """Caches and data in a temporary folder (the kernels inherit the environment)."""
    monkeypatch.setenv("CAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def test_toc_lists_every_notebook_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert toc["root"] == "notebooks/intro" and build.NOTEBOOKS[-1] == "intro"  # first page, executed last
    assert [f.split("/")[1] for f in files if f.startswith("notebooks/")] == list(build.NOTEBOOKS[:-1])
    for f in files:
        if f.startswith("book/"):
            assert (ROOT / f"{f}.md").is_file(), f


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_parameter_files_name_real_parameters(name):
    declared = parameters_of(name)
    for set_name in build.PARAMETER_SETS:
        given = build.load_params(set_name, name)
        unknown = set(given) - set(declared)
        assert not unknown, f"params/{set_name}/{name}.yaml sets {unknown}, not parameters of the notebook"
    assert declared["models"][0] == "reference"  # the offline default


def test_shared_parameters_reach_only_the_notebooks_that_declare_them(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "rq1_noise_length.py").write_text(
        "# %% tags=[\"parameters\"]\nlengths = [1]\nseed = 0\nn_clips = 1\n\n# %%\nprint(lengths)\n")
    folder = tmp_path / "params" / "x"
    folder.mkdir(parents=True)
    (folder / build.SHARED_PARAMS).write_text("seed: 7\nlengths: [5, 10]\nshuffle_clips: 3\n")
    (folder / "rq1_noise_length.yaml").write_text("n_clips: 2\nseed: 42\n")
    got = build.load_params("x", "rq1_noise_length", tmp_path)
    # the shared lengths arrive; the undeclared shuffle_clips does not; the notebook's own seed wins; declared order
    assert list(got.items()) == [("lengths", [5, 10]), ("seed", 42), ("n_clips", 2)]
    (folder / build.SHARED_PARAMS).write_text("seed: [unclosed\n")
    with pytest.raises(build.BookError, match="_shared.yaml: not valid YAML"):
        build.load_params("x", "rq1_noise_length", tmp_path)


@pytest.mark.parametrize("set_name", build.PARAMETER_SETS)
def test_every_shared_parameter_is_some_notebooks_parameter(set_name):
    shared = yaml.safe_load((ROOT / "params" / set_name / build.SHARED_PARAMS).read_text())
    declared = {k for name in build.NOTEBOOKS for k in parameters_of(name)}
    assert set(shared) <= declared, f"params/{set_name}/_shared.yaml: {set(shared) - declared} declared by no notebook"


def test_notebook_sources_are_jupytext_only():
    tracked = subprocess.run(["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked and not [f for f in tracked if f.endswith(".ipynb")]


def test_inputs_hash_tracks_source_and_parameters():
    p = build.load_params("smoke", "rq1_noise_length")
    h = build.inputs_hash("rq1_noise_length", p)
    assert h == build.inputs_hash("rq1_noise_length", dict(p))
    assert h != build.inputs_hash("rq1_noise_length", {**p, "n_clips": 3})
    assert h != build.inputs_hash("rq3_regions", p)


def test_missing_parameter_set_is_a_clear_error():
    with pytest.raises(build.BookError, match="no parameter file"):
        build.load_params("huge", "rq1_noise_length")


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def assert_readable(nb, name: str, set_name: str) -> None:
    """What cae.book.pages promises of an executed notebook: no stderr, code collapsed, the parameters once."""
    assert not [o for o in _outputs(nb) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    tags = [c.metadata.get("tags", []) for c in code]
    assert sum("remove-cell" in t for t in tags) == 1 and all("parameters" in t for t in tags if "remove-cell" in t)
    assert all("hide-input" in t for t in tags if "remove-cell" not in t), name
    injected = [c for c, t in zip(code, tags) if "injected-parameters" in t]
    assert len(injected) == 1
    table = injected[0].outputs[0]["data"]["text/markdown"]
    assert "<b>Parameters of this run</b>" in table and "| `models` |" in table and table.startswith("<details>")
    header = [c for c in nb.cells if "cae-header" in c.metadata.get("tags", [])]
    assert len(header) == 1 and f"python -m cae.book run {name} --set {set_name}" in header[0].source
    assert f"{{download}}`executed notebook <{name}.ipynb>`" in header[0].source


@pytest.mark.slow
@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_smoke_parameters_execute(name, isolated):
    out = build.execute(name, isolated / f"{name}.ipynb", set_name="smoke", progress=False)
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["cae"]["status"] == "ok" and nb.metadata["cae"]["parameter_set"] == "smoke"
    outs = _outputs(nb)
    assert not [o for o in outs if o.get("output_type") == "error"]
    charts = [o for o in outs if "cae-chart" in str(o.get("data", {}).get("text/html", ""))]
    assert charts, f"{name}: no chart in the executed notebook"
    assert_readable(nb, name, "smoke")
    if name == "rq2_token_dynamics":
        assert sum("<audio" in str(o.get("data", {}).get("text/html", "")) for o in outs) == 2


@pytest.mark.slow
def test_the_page_header_command_regenerates_the_page(isolated, monkeypatch):
    """The command a page shows (set + overrides) is run here and executes the notebook with the same values."""
    import re
    import shlex

    first = build.execute("rq3_regions", isolated / "first.ipynb", set_name="smoke", progress=False,
                          params={"peak_frames": 3, "datasets": {"ood": "synthetic"}})
    nb = nbformat.read(first, as_version=4)
    assert nb.metadata["cae"]["overrides"] == {"peak_frames": 3, "datasets": {"ood": "synthetic"}}
    header = next(c for c in nb.cells if "cae-header" in c.metadata.get("tags", []))
    command = re.search(r"```bash\n(.+)\n```", header.source).group(1)
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "cae.book", "run"]
    monkeypatch.chdir(isolated)
    assert build.main(argv[3:]) == 0
    again = nbformat.read(isolated / "rq3_regions.ipynb", as_version=4)
    assert again.metadata["cae"]["parameters"] == nb.metadata["cae"]["parameters"]
    assert again.metadata["cae"]["inputs_sha256"] == nb.metadata["cae"]["inputs_sha256"]
    # what the kernel wrote to stderr (model loading progress, warnings) went to the log, not into the notebook
    assert (isolated / "rq3_regions.stderr.txt").read_text().strip()
    assert_readable(again, "rq3_regions", "smoke")


@pytest.mark.slow
def test_paper_protocol_runs_through_a_notebook(isolated):
    out = build.execute("rq1_noise_length", isolated / "paper.ipynb", set_name="smoke", progress=False,
                        params={"protocol": "paper", "datasets": {"ood": "synthetic"}, "level_mode": "paper"})
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in _outputs(nbformat.read(out, 4))])
    assert "(paper alignment)" in text


@pytest.mark.slow
def test_a_failing_cell_fails_with_the_notebook_named(isolated):
    with pytest.raises(build.BookError, match=r"rq1_noise_length \(smoke parameters\) failed at cell"):
        build.execute("rq1_noise_length", isolated / "bad.ipynb", set_name="smoke",
                      params={"models": ["no-such-model"]}, progress=False)
    nb = nbformat.read(isolated / "bad.ipynb", as_version=4)
    assert nb.metadata["cae"]["status"] == "error"


@pytest.mark.slow
def test_build_skips_unchanged_notebooks(isolated):
    root = isolated / "book"
    for sub in ("notebooks", "params/smoke"):
        (root / sub).mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "rq3_regions.py", root / "notebooks")
    shutil.copy(ROOT / "params" / "smoke" / "rq3_regions.yaml", root / "params" / "smoke")
    shutil.copy(ROOT / "params" / "smoke" / build.SHARED_PARAMS, root / "params" / "smoke")
    first = build.build("smoke", ["rq3_regions"], html=False, root=root, progress=False)
    second = build.build("smoke", ["rq3_regions"], html=False, root=root, progress=False)
    assert [s.status for s in first] == ["executed"] and [s.status for s in second] == ["unchanged"]
    assert (root / "_static" / plotting.BUNDLE_NAME).stat().st_size > 100_000
    (root / "params" / "smoke" / "rq3_regions.yaml").write_text(
        (ROOT / "params" / "smoke" / "rq3_regions.yaml").read_text() + "peak_frames: 3\n")
    third = build.build("smoke", ["rq3_regions"], html=False, root=root, progress=False)
    assert [s.status for s in third] == ["executed"]


@pytest.mark.slow
def test_copied_notebook_runs_a_new_adapter(isolated):
    """The 'Adding a model' page, verbatim: copy a notebook, convert it, run it with papermill on the example
    adapter registered by a plugin file."""
    nbdir = isolated / "notebooks"
    nbdir.mkdir()
    src = nbdir / "rq1_copy_baseline.py"
    shutil.copy(ROOT / "notebooks" / "rq1_noise_length.py", src)
    subprocess.run([BIN / "jupytext", "--to", "ipynb", str(src)], check=True, capture_output=True)
    out = isolated / "out.ipynb"
    plugin = ROOT / "examples" / "copy_baseline.py"
    params = isolated / "rq1_smoke.yaml"
    with open(params, "w") as f:
        subprocess.run([BIN / "python", "-m", "cae.book", "params", "rq1_noise_length", "--set", "smoke"], check=True,
                       stdout=f, cwd=ROOT)
    assert yaml.safe_load(params.read_text()) == build.load_params("smoke", "rq1_noise_length")
    res = subprocess.run(
        [BIN / "papermill", str(src.with_suffix(".ipynb")), str(out), "--cwd", str(nbdir), "-f", str(params),
         "-y", f"{{models: [copy-baseline], plugins: [{plugin}]}}"],
        capture_output=True, text=True, env={**__import__("os").environ, "PATH": f"{BIN}:/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    nb = nbformat.read(out, as_version=4)
    text = json.dumps([o.get("data", {}) for o in _outputs(nb)])
    assert "copy-baseline" in text and "reference" not in text.split("Package versions")[0][-300:]


def test_offline_renderer_and_chart_builders():
    import altair as alt
    import pandas as pd

    plotting.enable()
    assert alt.renderers.active == plotting.RENDERER
    df = pd.DataFrame({"length": [5, 50, 5, 50], "mean": [0.1, -0.2, 0.0, 0.1], "ci_low": [0.0, -0.3, -0.1, 0.0],
                       "ci_high": [0.2, -0.1, 0.1, 0.2], "kind": ["a", "a", "b", "b"], "model_id": "m"})
    chart = plotting.line_ci(df, x="length", color="kind", column="model_id")
    bundle = chart._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    html = bundle["text/html"]
    assert html.startswith('<div class="cae-chart"') and "vegaEmbed(" in html and "cdn" not in html.lower()
    spec = json.loads(html.split("vegaEmbed(el, ", 1)[1].rsplit(', {"actions"', 1)[0])
    data = spec["data"]["values"] if "values" in spec["data"] else spec["datasets"][spec["data"]["name"]]
    assert spec["facet"]["field"] == "model_id" and spec["columns"] == 2 and len(data) == 4
    curves = pd.DataFrame({"rel_frame": [0, 1], "mean": [0.0, 1.0], "ci_low": [0, 0.5], "ci_high": [0, 1.5], "length": 5,
                           "kind": "a", "n": 2})
    plotting.curve_chart(curves, shade=(0, 5)).to_dict()  # validates against the vega-lite schema
    plotting.box_chart(df, x="kind", y="mean", color="model_id", column="length").to_dict()


def test_render_html_escapes_script_end():
    html = plotting.render_html({"title": "</script><script>alert(1)</script>"})
    assert html.count("</script>") == 1


def test_audio_player_embeds_a_wav():
    import numpy as np

    a = plotting.audio(np.sin(np.linspace(0, 100, 8000)).astype("float32") * 2.0, 8000)
    assert "<audio" in a._repr_html_() and a.data[:4] == b"RIFF"


def test_build_provenance_names_the_shipped_weights_by_checksum():
    from cae.book.provenance import build_provenance
    from cae.models.base import load_model
    from cae.reference.model import FAMILIES, META_FILE

    got = build_provenance([load_model("reference")])
    meta = json.loads((FAMILIES["reference"] / META_FILE).read_text())
    (row,) = got["models"]
    assert row["model_id"] == "reference" and row["weights_sha256"] == meta["sha256"] and row["weights_sha256"]
    for name, digest in row["weights_sha256"].items():  # the checksums are those of the files that ship
        assert hashlib.sha256((FAMILIES["reference"] / name).read_bytes()).hexdigest() == digest
    assert got["versions"]["cae"] and got["commit"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rq1_noise_length", "rq2_token_dynamics", "rq3_regions"])
def test_yue_runs_through_a_notebook_unchanged(name, isolated):
    """A model unlike MusicGen (16 kHz, 8 codebooks, one flat id stream, codebook 0 never predicted) through the
    notebooks as they are: the tiny YuE (its real layout and vocabulary at toy size), one synthetic clip."""
    params = {"models": ["tiny-yue"], "datasets": {"synthetic": "synthetic"}, "n_clips": 1}
    out = build.execute(name, isolated / f"{name}.ipynb", set_name="smoke", progress=False, params=params)
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["cae"]["status"] == "ok"
    outs = _outputs(nb)
    assert not [o for o in outs if o.get("output_type") == "error"]
    text = json.dumps([o.get("data", {}) for o in outs])
    assert "tiny-yue" in text
    if name == "rq1_noise_length":
        assert "(stage2 alignment)" in text
