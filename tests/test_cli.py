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
