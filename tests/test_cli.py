"""`cae score` end to end on the tiny model: tidy rows, provenance, per-clip seeds, bad clips recorded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cae.cli import main


@pytest.fixture()
def clips(tmp_path):
    t = np.arange(32000 * 6) / 32000
    a = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    b = np.stack([a[::-1], 0.5 * a], axis=1)  # stereo, mixed down on load
    sf.write(tmp_path / "a.wav", a, 32000, subtype="PCM_16")
    sf.write(tmp_path / "b.flac", b, 32000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav file")
    sf.write(tmp_path / "short.wav", a[:32000 * 2], 32000)  # ends before onset 250 + 50 frames
    return tmp_path


def test_score_writes_tidy_rows_with_provenance(clips, capsys):
    out = clips / "res.parquet"
    paths = [str(clips / n) for n in ("a.wav", "b.flac", "broken.wav", "short.wav")]
    rc = main(["score", *paths, "--model", "tiny", "--paper-noise", "ood", "--lengths", "5,50",
               "--out", str(out), "--no-progress"])
    assert rc == 1  # some clips failed, but everything else was written
    err = capsys.readouterr().err
    assert "broken.wav" in err and "short.wav" in err

    summary = pd.read_parquet(clips / "res.summary.parquet")
    tokens = pd.read_parquet(out)
    ok = summary[summary.error.isna()]
    # two good clips x (clean + 2 lengths); short.wav has its clean row but both perturbations fail
    assert set(ok["clip"].map(lambda p: p.rsplit("/", 1)[-1])) == {"a.wav", "b.flac", "short.wav"}
    assert len(ok) == 2 * 3 + 1
    assert summary[summary["clip"].str.endswith("short.wav") & summary.error.notna()].shape[0] == 2

    noisy = ok[ok.condition != "clean"]
    assert set(noisy.condition) == {"noise-white-replace-dbfs-30@250+5f", "noise-white-replace-dbfs-30@250+50f"}
    # the authors' seeding: 42 + clip index, recorded in the row and inside the perturbation JSON
    for _, row in noisy.iterrows():
        assert row.seed == 42 + row.clip_index == json.loads(row.perturbation)["seed"]
        assert row.first_changed < 250 <= row.last_changed  # non-causal codec: tokens change before the onset
    for col in ("model_id", "alignment", "revision", "version_torch", "version_cae", "clip_sha256"):
        assert col in summary.columns
    assert (ok.model_id == "tiny").all() and (ok.alignment == "delay").all()

    # per-token rows: K x F per condition; the clip loss is the mean of its rows
    a_clean = tokens[(tokens["clip"].str.endswith("a.wav")) & (tokens.condition == "clean")]
    assert len(a_clean) == 4 * 300 and set(a_clean.codebook) == {0, 1, 2, 3}
    a_row = ok[(ok["clip"].str.endswith("a.wav")) & (ok.condition == "clean")].iloc[0]
    assert abs(a_clean.nll.mean() - a_row.loss) < 1e-6
    a50 = tokens[(tokens["clip"].str.endswith("a.wav")) & (tokens.condition.str.endswith("+50f"))]
    delta = (a50.nll - a50.nll_clean).mean()
    row50 = ok[(ok["clip"].str.endswith("a.wav")) & (ok.condition.str.endswith("+50f"))].iloc[0]
    assert abs(delta - row50.delta_loss) < 1e-5
    assert a50.changed.sum() == row50.n_changed_tokens > 0


def test_score_accepts_json_perturbations_and_paper_alignment(clips):
    out = clips / "r.parquet"
    spec = {"kind": "noise", "span": {"onset": 1.0, "length": 0.5, "unit": "s"}, "colour": "pink",
            "level_db": 0.0, "reference": "snr-rms", "seed": 7}
    (clips / "p.json").write_text(json.dumps([spec]))
    rc = main(["score", str(clips / "a.wav"), "--model", "tiny", "--alignment", "paper", "--perturb",
               "@" + str(clips / "p.json"), "--out", str(out), "--no-progress"])
    assert rc == 0
    s = pd.read_parquet(clips / "r.summary.parquet")
    assert list(s.condition)[0] == "clean" and len(s) == 2 and (s.alignment == "paper").all()
    tokens = pd.read_parquet(out)
    assert tokens[tokens.frame == 0].nll.isna().all() and tokens[tokens.frame > 0].nll.notna().all()


def test_bad_arguments_exit_cleanly(clips, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(clips / "a.wav"), "--model", "tiny", "--lengths", "0", "--out", "x.parquet"])
    rc = main(["score", str(clips / "a.wav"), "--model", "nope", "--out", str(clips / "x.parquet")])
    assert rc == 2 and "unknown model" in capsys.readouterr().err


def test_generate_writes_a_seeded_set(tmp_path):
    out = tmp_path / "gen"
    rc = main(["generate", "--model", "tiny", "--out", str(out), "--top-k", "5", "20", "--per-k", "2",
               "--seconds", "0.5", "--no-progress"])
    assert rc == 0
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 4 and sorted(set(manifest.top_k)) == [5, 20]
    assert manifest.seed.is_unique and (manifest.kind == "generated").all()
    wav, sr = sf.read(out / manifest.path[0])
    codes = np.load(out / manifest.path[0].replace(".wav", ".npy"))
    assert sr == 32000 and codes.shape == (4, 25) and len(wav) >= 16000
    # same seed, same clip
    rc = main(["generate", "--model", "tiny", "--out", str(tmp_path / "again"), "--top-k", "5", "20", "--per-k", "2",
               "--seconds", "0.5", "--no-progress"])
    assert np.array_equal(codes, np.load(tmp_path / "again" / manifest.path[0].replace(".wav", ".npy")))


# ---- the command line as documented, and one-line errors (no traceback, no work lost) ------------------------------
def test_compact_perturbation_syntax_as_in_the_readme(clips):
    out = clips / "r.parquet"
    rc = main(["score", str(clips / "a.wav"), "--model", "tiny", "--perturb", "noise:white:-30dbfs@250+50f",
               "--perturb", "noise:pink:0snr@1s+0.5s:add:xf=5ms:seed=3", "--out", str(out), "--no-progress"])
    assert rc == 0
    s = pd.read_parquet(clips / "r.summary.parquet")
    assert list(s.condition) == ["clean", "noise-white-replace-dbfs-30@250+50f", "noise-pink-add-snr-rms+0-xf5ms@1s+0.5s"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_suffix_picks_the_format(clips, suffix):
    out = clips / f"r{suffix}"
    rc = main(["score", str(clips / "a.wav"), "--model", "tiny", "--perturb", "silence@100+10f",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    tokens, summary = read(out), read(clips / f"r.summary{suffix}")
    assert len(tokens) == 2 * 4 * 300 and list(summary.condition) == ["clean", "silence@100+10f"]
    if suffix == ".csv":
        assert out.read_bytes()[:4] != b"PAR1" and out.read_text().startswith("clip,")


@pytest.mark.parametrize("argv,message", [
    (["--out", "r.txt"], "must end in .parquet or .csv"),
    (["--out", "r"], "must end in .parquet or .csv"),
    (["--out", "{file}/under/r.parquet"], "cannot write"),
    (["--perturb", "[1,2]"], "expected a perturbation object"),
    (["--perturb", "noise:white:-30dbs@250+100f"], "level '-30dbs'"),
    (["--perturb", '{"kind": "nosuch"}'], "--perturb"),
    (["--device", "cuda"], "no CUDA GPU"),
])
def test_bad_values_are_one_line_before_any_work(clips, capsys, argv, message):
    argv = [a.replace("{file}", str(clips / "a.wav")) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(clips / "never.parquet")]
    if "cuda" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    rc = main(["score", str(clips / "a.wav"), "--model", "tiny", *argv, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not (clips / "never.parquet").exists() and not (clips / "r.txt").exists()


@pytest.mark.parametrize("argv,message", [
    (["--seconds", "-1"], "--seconds must be positive"),
    (["--per-k", "0"], "--per-k must be at least 1"),
])
def test_generate_refuses_values_that_make_nothing(tmp_path, capsys, argv, message):
    rc = main(["generate", "--model", "tiny", "--out", str(tmp_path / "g"), *argv, "--no-progress"])
    assert rc == 2 and message in capsys.readouterr().err and not (tmp_path / "g" / "manifest.csv").exists()


def test_profile_checks_its_feature_and_inputs_first(clips, tmp_path, capsys):
    rc = main(["profile", str(clips / "a.wav"), "--model", "tiny", "--feature", "nosuch",
               "--out", str(tmp_path / "p.parquet"), "--no-progress"])
    assert rc == 2 and "not a profile feature" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["profile", str(clips / "a.wav"), str(empty), "--model", "tiny", "--out", str(tmp_path / "p.csv"),
               "--no-progress"])
    assert rc == 2 and f"folder {empty} holds no audio file" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
