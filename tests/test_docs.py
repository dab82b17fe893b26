"""Every command the README shows is run here: ``cae`` command lines, the Python snippet, the notebook rerun line,
and the ``make`` targets (dry-run: the targets exist and expand; the real runs are CI's own ``make test`` and
``make book``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def commands(text: str) -> list[list[str]]:
    """Shell commands of the ``bash`` blocks (continuation lines joined, comments dropped)."""
    out = []
    for block in blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def _music(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(32000 * seconds)) / 32000
    f = rng.choice([196.0, 261.6, 329.6, 392.0], size=int(seconds * 2) + 1)[(t * 2).astype(int)]
    return (0.2 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """The files the README's examples name, as 8 s synthetic clips; the working folder is set to them."""
    sf.write(tmp_path / "clip.wav", _music(8, 0), 32000)
    sf.write(tmp_path / "clip1.wav", _music(8, 1), 32000)
    sf.write(tmp_path / "clip2.flac", _music(8, 2), 32000)
    (tmp_path / "clips").mkdir()
    for i in range(2):
        sf.write(tmp_path / "clips" / f"c{i}.wav", _music(12, 3 + i), 32000)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_readme_shows_commands_of_each_kind():
    heads = {argv[0] for argv in commands(README)}
    assert {"make", "cae"} <= heads and blocks(README, "python")


def test_readme_cae_commands_run(workdir):
    from cae.cli import main

    ran = 0
    for argv in commands(README):
        if argv[0] != "cae":
            continue
        assert main(argv[1:]) == 0, " ".join(argv)
        out = argv[argv.index("--out") + 1]
        assert (workdir / out).exists(), out
        ran += 1
    assert ran >= 3


def test_readme_python_snippet_runs(workdir):
    for code in blocks(README, "python"):
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
        nll = namespace["nll"]
        assert tuple(nll.shape) == tuple(namespace["codes"].shape) and bool(np.isfinite(nll.numpy()).all())


def test_readme_notebook_rerun_line_runs(tmp_path):
    lines = [argv for argv in commands(README) if argv[:3] == [".venv/bin/python", "-m", "cae.book"]]
    assert lines
    for argv in lines:
        argv = [sys.executable if a == ".venv/bin/python" else a for a in argv]
        out = Path(argv[argv.index("--out") + 1])
        run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "CAE_CACHE_DIR": str(tmp_path / "cache")})
        assert run.returncode == 0, run.stderr[-3000:]
        assert out.is_file()


def test_readme_make_targets_exist():
    targets = {argv[1] for argv in commands(README) if argv[0] == "make"}
    assert {"book", "test"} <= targets
    for target in sorted(targets):
        run = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"make {target}: {run.stderr}"


def test_citing_page_names_the_paper_and_this_version():
    import cae

    page = (ROOT / "book" / "citing.md").read_text()
    assert f"version = {{{cae.__version__}}}" in page
    assert "eprint    = {2602.02738}" in page and "Li, Xiaosha and Liu, Chun and Wang, Ziyu" in page


def test_readme_layout_names_the_packages_that_exist():
    """The README's picture of the code names real modules, and every package of ``cae`` is in it."""
    import importlib

    section = README[README.index("## How the code is laid out"):README.index("## The two commands")]
    named = set(re.findall(r"\bcae\.[a-z_]+(?:\.[a-z_]+)*", section))
    for name in named:  # a module, or a name in one: raises if the README names something that is not there
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            module, attr = name.rsplit(".", 1)
            assert hasattr(importlib.import_module(module), attr), name
    packages = {p.parent.name for p in (ROOT / "cae").glob("*/__init__.py")}
    assert {f"cae.{p}" for p in packages} - {n.split(".")[0] + "." + n.split(".")[1] for n in named} == set()
