"""Every command on the book's "Reproducing with the real checkpoints" section is run here, with ``@random``
architectures standing in for the weights and synthetic clips for the paper's datasets; and the page's cost
table is what :mod:`cae.cost` computes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cae import cost

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "book" / "reproducing.md").read_text()
SECTION = PAGE[PAGE.index("## Reproducing with the real checkpoints"):PAGE.index("## Where things are")]
#: What stands in for the paper's weights, datasets and GPU in a test: one @random model, one short synthetic clip.
STAND_IN = ["-p", "models", "[facebook/musicgen-small@random]", "-p", "datasets", "{ood: synthetic}",
            "-p", "n_clips", "1", "-p", "lengths", "[5]", "-p", "device", "cpu"]


def section_commands() -> list[tuple[dict[str, str], list[str]]]:
    """``(environment assignments, argv)`` of every line of the section's ``bash`` blocks."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            env = {}
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                k, v = argv.pop(0).split("=", 1)
                env[k] = v
            if argv:
                out.append((env, argv))
    return out


def run(argv: list[str], env: dict[str, str], tmp_path: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    argv = [sys.executable if a == ".venv/bin/python" else a for a in argv]
    if argv[0] == ".venv/bin/hf":
        argv[0] = str(Path(sys.executable).parent / "hf")
    full_env = {**os.environ, "CAE_CACHE_DIR": str(tmp_path / "cache"), **env}
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def test_section_shows_every_step():
    heads = [" ".join(argv[:4]) for _, argv in section_commands()]
    assert "make dryrun" in heads
    assert sum(h.startswith(".venv/bin/hf download facebook/musicgen-") for h in heads) == 4
    assert sum(h.startswith(".venv/bin/hf download m-a-p/") for h in heads) == 2  # YuE's stage 2 and X-Codec
    assert any("cae.book build" in h for h in heads) and any("cae.cost" in h for h in heads)


def test_weight_downloads_are_well_formed(tmp_path):
    """Offline, the hub client refuses at the network step (not at argument parsing), and demucs reaches its
    download of htdemucs (through a proxy that refuses every connection)."""
    ran = 0
    for env, argv in section_commands():
        if argv[0] == ".venv/bin/hf":
            res = run(argv, {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}, tmp_path, timeout=120)
            assert res.returncode != 0 and "offline mode is enabled" in res.stdout + res.stderr, res.stderr
            ran += 1
        elif "demucs.pretrained" in " ".join(argv):
            proxy = "http://127.0.0.1:9"
            res = run(argv, {**env, "https_proxy": proxy, "HTTPS_PROXY": proxy, "TORCH_HOME": str(tmp_path / "torch")},
                      tmp_path, timeout=300)
            assert res.returncode != 0 and "URLError" in res.stderr, res.stderr[-2000:]
            ran += 1
    assert ran == 7


def test_make_dryrun_target_expands():
    res = subprocess.run(["make", "-n", "dryrun"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--set dryrun --out-dir _build/dryrun" in res.stdout


@pytest.mark.slow
def test_book_commands_run_with_stand_ins(tmp_path):
    """The ``cae.book`` lines as shown, each narrowed to RQ1 with the stand-ins (the whole ``dryrun`` set is CI's own
    ``make dryrun``); the executed notebook carries the random-weights warning."""
    import nbformat

    ran = 0
    for env, argv in section_commands():
        if argv[:3] != [".venv/bin/python", "-m", "cae.book"]:
            continue
        argv = list(argv)
        if argv[3] == "build":
            if "--only" not in argv:
                argv += ["--only", "rq1_noise_length"]
            argv += ["--out-dir", str(tmp_path / f"book{ran}")] + STAND_IN
            out = tmp_path / f"book{ran}" / "rq1_noise_length.ipynb"
        else:
            out = Path(argv[argv.index("--out") + 1])
            argv[argv.index("--out") + 1] = str(out := tmp_path / out.name)
            argv += STAND_IN
        res = run(argv, env, tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        nb = nbformat.read(out, as_version=4)
        texts = [o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", [])]
        assert any("Random weights" in t and "means nothing about music" in t for t in texts)
        ran += 1
    assert ran == 3


@pytest.mark.slow
def test_cost_commands_run(tmp_path):
    ran = 0
    for env, argv in section_commands():
        if argv[:3] == [".venv/bin/python", "-m", "cae.cost"]:
            res = run(argv, env, tmp_path)
            assert res.returncode == 0, res.stderr[-3000:]
            assert "facebook/musicgen-small" in res.stdout
            if "--measure" in argv:
                assert "measured_peak_rss_gb" in res.stdout
            ran += 1
    assert ran == 2


def test_page_cost_table_is_what_cae_cost_computes():
    """Each row of the page's table: parameters, weights, GFLOP and peak memory as :func:`cae.cost.table` gives
    them (to the digits shown)."""
    rows = re.findall(r"^\| `(facebook/musicgen-\w+|m-a-p/YuE-s2-1B-general)` \| (\w+) \| ([\d.]+) B \| ([\d.]+) \| "
                      r"([\d.]+) \| ([\d.]+) \|", SECTION, flags=re.M)
    assert len(rows) == 10
    expected = {(r["model"], r["dtype"]): r for r in cost.table()}
    for model, dtype, params_b, weights, gflop, peak in rows:
        r = expected[(model, dtype)]
        assert float(params_b) == round(r["parameters"] / 1e9, 2)
        assert float(weights) == round(r["weights_gb"], 1)
        assert float(gflop) == round(r["gflop"])
        assert float(peak) == round(r["peak_gb"], 1)


def test_page_paper_set_table_is_what_cae_cost_computes():
    rows = re.findall(r"^\| `(facebook/musicgen-\w+)` \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      SECTION, flags=re.M)
    assert len(rows) == 4
    one = {r["model"]: r for r in cost.paper_set_hours()}
    four = {r["model"]: r for r in cost.paper_set_hours(devices=4)}
    for model, units, pflop, minutes, hours1, hours4 in rows:
        assert int(units) == one[model]["units"] == sum(cost.paper_set_units().values())
        assert float(pflop) == round(one[model]["pflop"], 1)
        assert float(minutes) == round(one[model]["compute_hours"] * 60, 1)
        assert float(hours1) == round(one[model]["hours"], 2) and float(hours4) == round(four[model]["hours"], 2)
