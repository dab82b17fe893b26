"""The profile score (cae.profile): features recovered exactly from hand-built curves, scores monotone in sharpness,
the sweep-based table equal to a direct computation, the `cae profile` command, degradations, and the shipped
reference checkpoints (SHA-256 verified, float16 upcast to float32)."""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import damage as damage_file
import soundfile as sf
import torch

import cae
from cae.analysis import anchored_regions
from cae.errors import ModelError
from cae.perturb import BitCrush, LowPass, from_dict
from cae.profile import (
    FEATURES,
    FeatureParams,
    ProfileProtocol,
    clip_profile,
    clip_scores,
    curve_features,
    degradation_ladder,
    feature_marks,
    model_scores,
    profile_clips,
    rank_correlations,
)

# ---------------------------------------------------------------------------------------------------------------------
# A hand-built curve: burst [50, 70), tokens changed in [49, 70] (look-ahead of 1, LSTM tail of 1).
ONSET, OFFSET, FIRST, LAST = 50, 70, 49, 70


def _curve() -> np.ndarray:
    d = np.zeros(200)
    d[46] = 9.0  # before the Peak window (starts at FIRST - 2 = 47): must not be read as the peak
    d[48] = 0.5  # delay-pattern leak, inside the window
    d[49:53] = [6.0, 4.0, 2.5, 1.0]  # the peak at onset - 1, decaying
    d[53:70] = -0.8  # assimilated: the noise is predicted better than the music was
    d[70:73] = [3.0, 1.5, 0.4]  # exit spike when the music comes back
    d[80] = 0.05
    return d


def test_features_of_a_hand_built_curve_are_recovered_exactly():
    f = curve_features(_curve(), onset=ONSET, offset=OFFSET, first=FIRST, last=LAST)
    assert set(f) == set(FEATURES)
    assert f["peak_height"] == 6.0 and f["peak_lag"] == -1
    assert f["peak_width"] == 2  # frames 49, 50 are >= 3.0 (half of 6); 48 and 51 are not
    assert f["peak_prominence"] == pytest.approx(6.8)  # down to -0.8 before the burst ends
    assert f["peak_contrast"] == pytest.approx(6.0 - (4.0 + 2.5 + 1.0) / 20)  # frames 50..69, negatives count as 0
    assert f["assim_time"] == 4  # frame 53 is the first with 2 frames <= 0.6 (10% of the peak)
    assert f["assim_depth"] == pytest.approx(0.8)  # mean over [55, 70)
    assert f["exit_spike"] == 3.0 and f["exit_lag"] == 0
    assert f["recovery_time"] == 1  # exit anchor 71; from 72 on, the 5-frame mean of |d| is 0.08 <= 0.1
    # areas: Peak [47, 55), Assimilation [55, 70), Recovery [71, 171)
    assert (f["peak_n"], f["assim_n"], f["recovery_n"]) == (8, 15, 100)
    assert f["peak_area_pos"] == pytest.approx(0.5 + 6 + 4 + 2.5 + 1) and f["peak_area_neg"] == pytest.approx(-1.6)
    assert f["assim_area_pos"] == 0.0 and f["assim_area_neg"] == pytest.approx(-0.8 * 15)
    assert f["recovery_area_pos"] == pytest.approx(1.5 + 0.4 + 0.05) and f["recovery_area_neg"] == 0.0
    assert f["peak_mean"] == pytest.approx(12.4 / 8) and f["recovery_mean"] == pytest.approx(1.95 / 100)


def test_parameters_move_the_windows():
    d = _curve()
    p = FeatureParams(lead_frames=0, peak_frames=2, recovery_frames=None, assim_frac=0.5, recovery_tol=0.5)
    f = curve_features(d, onset=ONSET, offset=OFFSET, first=FIRST, last=LAST, params=p)
    assert f["peak_n"] == 3 and f["peak_area_pos"] == pytest.approx(12.5)  # [49, 52): the leak at 48 is out
    assert f["assim_n"] == 18 and f["recovery_n"] == 200 - 71  # to the end of the curve
    assert f["assim_time"] == 2  # frames 51, 52 (2.5, 1.0) are the first two in a row <= 3.0 (half the peak)
    assert f["recovery_time"] == 0  # mean |d| over [71, 76) = 0.38 <= 0.5
    # no mask: nominal anchors (first = onset, last = offset - 1), so the peak at 49 is outside [48, 55) only
    # when the lead is 0
    g = curve_features(d, onset=ONSET, offset=OFFSET, params=FeatureParams(lead_frames=0))
    assert g["peak_height"] == 4.0 and g["peak_lag"] == 0


def test_empty_windows_are_nan_not_zero():
    d = np.zeros(100)
    d[20:25] = [5.0, 1.0, 0.0, 0.0, 0.0]
    f = curve_features(d, onset=20, offset=25)  # a 5-frame burst: no Assimilation window
    assert f["assim_n"] == 0 and math.isnan(f["assim_depth"]) and math.isnan(f["assim_area_pos"])
    assert f["peak_height"] == 5.0 and f["peak_contrast"] == pytest.approx(5.0 - 0.25)
    last = np.zeros(40)
    last[24] = 2.0  # peak on the burst's last frame: nothing after it inside the burst
    g = curve_features(last, onset=20, offset=25)
    assert math.isnan(g["peak_prominence"]) and math.isnan(g["peak_contrast"]) and math.isnan(g["assim_time"])
    quiet = curve_features(np.zeros(60), onset=20, offset=30)  # no reaction at all
    assert quiet["peak_height"] == 0.0 and math.isnan(quiet["peak_width"]) and quiet["peak_contrast"] == 0.0
    with pytest.raises(ValueError):
        curve_features(np.zeros(10), onset=5, offset=5)


def _burst(h: float, tau: float, n: int = 120, onset: int = 40, length: int = 10) -> np.ndarray:
    d = np.zeros(n)
    i = np.arange(length)
    d[onset:onset + length] = h * (np.ones(length) if math.isinf(tau) else np.exp(-i / tau))
    return d


@pytest.mark.parametrize("h", [0.5, 3.0])
def test_score_is_monotone_in_sharpness_and_strength(h):
    taus = [0.5, 1.0, 2.0, 4.0, 8.0, math.inf]  # sharp spike ... plateau over the whole burst
    contrast = [curve_features(_burst(h, t), onset=40, offset=50)["peak_contrast"] for t in taus]
    for tau, c in zip(taus, contrast):  # independent: h minus the mean of the decaying tail over the burst
        tail = np.ones(9) if math.isinf(tau) else np.exp(-np.arange(1, 10) / tau)
        assert c == pytest.approx(h - h * tail.mean())
    assert all(a > b for a, b in itertools.pairwise(contrast)) and contrast[-1] == pytest.approx(0.0)
    stronger = curve_features(_burst(2 * h, 1.0), onset=40, offset=50)["peak_contrast"]
    assert stronger == pytest.approx(2 * contrast[1])


def _table_from_curves(curves: dict[tuple[str, str], list[np.ndarray]]) -> pd.DataFrame:
    """A profile table built from codebook-mean curves (one list of burst curves per model and clip)."""
    rows = []
    for (model, clip), ds in curves.items():
        for j, d in enumerate(ds):
            pert = np.stack([4.0 + d] * 2)
            for r in clip_profile(pert, np.full_like(pert, 4.0), None, onset=40, offset=50):
                rows.append({"model_id": model, "clip": clip, "condition": f"c{j}", "length_frames": 10.0,
                             "loss_clean": 4.0, "error": None, **r})
    return pd.DataFrame(rows)


def test_model_and_clip_scores_rank_by_sharpness():
    rng = np.random.default_rng(0)
    taus = {"plateau": math.inf, "slow": 4.0, "sharp": 1.0, "sharpest": 0.3}
    curves = {(m, f"clip{c}"): [_burst(3.0 + rng.uniform(0, 0.2), tau) for _ in range(2)]
              for m, tau in taus.items() for c in range(5)}
    table = _table_from_curves(curves)
    ms = model_scores(table, n_resamples=200).set_index("model_id")
    assert list(ms.loc[list(taus), "score"].rank()) == [1.0, 2.0, 3.0, 4.0]
    assert (ms["n_clips"] == 5).all() and (ms["ci_low"] <= ms["score"]).all() and (ms["score"] <= ms["ci_high"]).all()
    assert ms.loc["plateau", "score"] == pytest.approx(0.0, abs=1e-12)
    cs = clip_scores(table)
    assert len(cs) == 20 and (cs["n_conditions"] == 2).all() and (cs["score_feature"] == "peak_contrast").all()
    one = cs[(cs["model_id"] == "sharp") & (cs["clip"] == "clip0")]["score"].item()
    expected = np.mean([curve_features(d, onset=40, offset=50)["peak_contrast"] for d in curves[("sharp", "clip0")]])
    assert one == pytest.approx(expected)


def test_clip_profile_rows_and_mask_anchors():
    rng = np.random.default_rng(1)
    clean = rng.uniform(2, 6, size=(4, 100))
    pert = clean.copy()
    pert[:, 28:40] += rng.uniform(0, 3, size=(4, 12))
    mask = np.zeros((4, 100), dtype=bool)
    mask[1, 29:41] = True  # first changed 29 (before the nominal onset 30), last 40 (after the offset)
    rows = clip_profile(pert, clean, mask, onset=30, offset=40)
    assert [r["codebook"] for r in rows] == ["0", "1", "2", "3", "mean"]
    assert all(r["anchor"] == "mask" and r["first_changed"] == 29 and r["last_changed"] == 40 for r in rows)
    d = pert - clean
    for row, curve in zip(rows, [*d, d.mean(axis=0)]):
        expected = curve_features(curve, onset=30, offset=40, first=29, last=40)
        assert all(row[k] == pytest.approx(v, nan_ok=True) for k, v in expected.items())
    nominal = clip_profile(pert, clean, np.zeros((4, 100), dtype=bool), onset=30, offset=40)
    assert nominal[0]["anchor"] == "nominal" and nominal[0]["first_changed"] == 30


def test_feature_windows_are_the_region_windows_with_a_lead():
    # one window definition (cae.analysis.windows): same anchors and Assimilation as the region analysis; the
    # profile's Peak adds the lead (2 frames) before the first changed token
    d, mask = _curve(), np.zeros((4, 200), dtype=bool)
    mask[2, FIRST:LAST + 1] = True
    r = anchored_regions(d, mask, ONSET, OFFSET)
    f = curve_features(d, onset=ONSET, offset=OFFSET, first=FIRST, last=LAST)
    assert (r.first_changed, r.last_changed) == (FIRST, LAST)
    assert f["assim_n"] == r.windows["assimilation"].n and f["assim_mean"] == pytest.approx(r.means["assimilation"])
    assert f["peak_n"] == r.windows["peak"].n + 2
    curve, _ = feature_marks(d, mask, onset=ONSET, offset=OFFSET)
    assim = curve.loc[curve["region"] == "assim", "frame"]
    assert (assim.min(), assim.max() + 1) == (r.windows["assimilation"].start, r.windows["assimilation"].stop)


def test_feature_marks_point_at_the_features():
    curve, marks = feature_marks(_curve(), None, onset=ONSET, offset=OFFSET, before=5, after=20)
    assert curve["frame"].iloc[0] == 45 and curve["frame"].iloc[-1] == 89
    assert curve.set_index("frame").loc[60, "region"] == "assim"
    m = marks.set_index("feature")
    f = curve_features(_curve(), onset=ONSET, offset=OFFSET)
    assert m.loc["peak_height", "value"] == f["peak_height"] == m.loc["peak_height", "feature_value"]
    assert m.loc["exit_spike", "frame_start"] == OFFSET + f["exit_lag"]
    assert m.loc["peak_width", "frame_stop"] - m.loc["peak_width", "frame_start"] + 1 == f["peak_width"]


def test_rank_correlations_within_and_pooled():
    rows = []
    for c in range(6):
        for q in range(4):
            rows.append({"clip": f"c{c}", "quality": q, "good": q + 3.0 * c, "bad": -q})
    items = pd.DataFrame(rows)
    r = rank_correlations(items, quality="quality", metrics={"good": ("good", 1), "bad": ("bad", 1),
                                                             "flipped": ("bad", -1)}, n_resamples=200).set_index("metric")
    assert r.loc["good", "rho_within"] == 1.0 and r.loc["good", "frac_within_positive"] == 1.0
    assert 0 < r.loc["good", "rho"] < 1  # between-clip offsets blur the pooled ranking
    assert r.loc["bad", "rho"] == -1.0 and r.loc["flipped", "rho"] == 1.0
    assert (r["n_clusters"] == 6).all() and (r["n_levels"] == 4).all()
    agg = rank_correlations(items, quality="quality", metrics={"good": ("good", 1)}, aggregate_first=True,
                            within=False, n_resamples=200)
    assert agg["rho"].item() == 1.0 and agg["rho_ci_low"].item() == 1.0


# ---------------------------------------------------------------------------------------------------------------------
# Degradations


def test_degradations_do_what_they_say():
    sr = 32000
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    spec = np.abs(np.fft.rfft(LowPass(2000.0).apply(x, sr))) / (sr / 2)
    assert spec[220] == pytest.approx(0.5, abs=1e-3) and spec[6000] < 1e-4
    crushed = BitCrush(4).apply(x, sr)
    assert np.allclose(crushed * 8, np.round(crushed * 8)) and np.abs(crushed - x).max() <= 1 / 16 + 1e-7
    for p in (LowPass(1000.0, order=4), BitCrush(6)):
        assert from_dict(json.loads(json.dumps(p.to_dict()))) == p
    ladder = degradation_ladder("noise", x.size, levels=[20.0, 0.0])
    for snr, p in ladder:
        noise = p.apply(x, sr).astype(np.float64) - x
        ratio = np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert 20 * np.log10(ratio) == pytest.approx(snr, abs=1e-3)
    shuffled = degradation_ladder("shuffle", x.size * 2, levels=[1.0])[0][1].apply(np.tile(x, 2), sr)
    assert np.array_equal(np.sort(shuffled), np.sort(np.tile(x, 2)))
    with pytest.raises(ValueError):
        degradation_ladder("reverb", 10)


# ---------------------------------------------------------------------------------------------------------------------
# On the shipped reference model


@pytest.fixture(scope="module")
def reference():
    return cae.load_model("reference", device="cpu")


def _melody(seconds: float, seed: int) -> np.ndarray:
    from cae.datasets import _melody as melody

    return melody(np.random.default_rng([seed, 0]), seconds, 32000)


def test_profile_table_matches_a_direct_computation(tmp_path, reference):
    wav = _melody(12.0, 3)
    path = tmp_path / "m.wav"
    sf.write(path, wav, 32000, subtype="FLOAT")
    protocol = ProfileProtocol(lengths=(10,), onsets=(150,))
    res = profile_clips([path], reference, protocol=protocol, cache_dir=tmp_path / "cache")
    assert res.errors.empty and len(res.table) == 5
    from cae.provenance import file_sha256
    from cae.scoring import for_clip, seed_offset

    (noise,) = protocol.perturbations()  # the sweep advances the seed by an offset from the clip's content
    y = for_clip(noise, seed_offset("content", 0, file_sha256(path))).apply(wav, 32000)
    codes_c, codes_p = reference.encode(wav, 32000), reference.encode(y, 32000)
    nll_c, nll_p = reference.token_nll(codes_c).numpy(), reference.token_nll(codes_p).numpy()
    mask = (codes_c != codes_p).numpy()
    expected = clip_profile(nll_p, nll_c, mask, onset=150, offset=160)
    for exp in expected:
        row = res.table[res.table["codebook"] == exp["codebook"]].iloc[0]
        assert row["anchor"] == "mask" and row["first_changed"] == exp["first_changed"]
        for name in FEATURES:
            assert row[name] == pytest.approx(exp[name], abs=1e-4, nan_ok=True), name
    mean = res.table[res.table["codebook"] == "mean"].iloc[0]
    assert mean["peak_height"] > 0 and mean["loss_clean"] == pytest.approx(float(nll_c.mean()), abs=1e-5)
    assert mean["param_peak_frames"] == 5 and json.loads(mean["protocol"])["lengths"] == [10]
    # the table round-trips through parquet (mixed codebook labels are strings)
    res.table.to_parquet(tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["codebook"].tolist() == ["0", "1", "2", "3", "mean"]


def test_cli_profile_scores_a_folder_and_records_bad_files(tmp_path, capsys):
    from cae.cli import main

    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", _melody(12.0, 1), 32000, subtype="PCM_16")
    sf.write(folder / "sub" / "b.flac", _melody(12.0, 2), 32000)
    sf.write(folder / "short.wav", _melody(5.0, 4), 32000)  # shorter than the protocol's 11.2 s
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00 this is not audio")
    (folder / "notes.txt").write_text("not audio, not listed")
    out = tmp_path / "res" / "profile.csv"
    rc = main(["profile", str(folder), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and "short.wav" in captured.err and "profile score" in captured.out

    table = pd.read_csv(out)
    name = table["clip"].str.rsplit("/", n=1).str[-1]
    good = table[table["error"].isna()]
    assert set(name[table["error"].isna()]) == {"a.wav", "b.flac"}
    assert len(good) == 2 * 6 * 5  # 2 clips x (3 onsets x 2 lengths) x (4 codebooks + mean)
    assert set(good["length_frames"]) == {5.0, 10.0} and set(good["onset_frame"]) == {150.0, 300.0, 450.0}
    errors = table[table["error"].notna()]
    assert sorted(name[table["error"].notna()]) == ["broken.wav", "short.wav"]
    assert all(n in e for n, e in zip(name[errors.index], errors["error"]))
    assert "too short" in errors[name[errors.index] == "short.wav"]["error"].item()

    scores = pd.read_csv(tmp_path / "res" / "profile.scores.csv")
    assert len(scores) == 4 and scores["score"].notna().sum() == 2
    assert (scores.dropna(subset=["score"])["score"] > 0).all()


# ---------------------------------------------------------------------------------------------------------------------
# The reference checkpoints


@pytest.mark.parametrize("family,stored_steps", [("reference", (100, 250, 500, 1000)),
                                                  ("reference-mel", (100, 250, 500))])
def test_checkpoints_are_registered_upcast_and_small(family, stored_steps):
    from safetensors.torch import load_file

    from cae.reference.checkpoints import available_checkpoints, checkpoints_dir, read_checkpoints

    meta = read_checkpoints(family=family)
    final = int(meta["final_step"])
    assert available_checkpoints(family) == (*stored_steps, final) and final >= max(stored_steps)
    names = set(cae.models.registered_models())
    assert {f"{family}@step{s}" for s in (*stored_steps, final)} | {f"{family}@untrained"} <= names
    folder = checkpoints_dir(family)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 35e6
    losses = [meta["steps"][str(s)]["heldout_loss"] for s in (*stored_steps, final)]
    assert losses == sorted(losses, reverse=True)  # training lowered the held-out loss at every checkpoint
    step = stored_steps[1]
    m = cae.load_model(f"{family}@step{step}", device="cpu")
    assert m.model_id == f"{family}@step{step}" and m.revision == meta["steps"][str(step)]["sha256"][:12]
    half = load_file(str(folder / meta["steps"][str(step)]["file"]))
    assert all(v.dtype == torch.float16 for v in half.values())
    state = m.decoder.state_dict()
    assert all(p.dtype == torch.float32 for p in m.decoder.parameters())
    for k, v in half.items():
        assert torch.equal(state[k], v.float()), k
    # the final step is the shipped decoder itself
    last, shipped = cae.load_model(f"{family}@step{final}", device="cpu"), cae.load_model(family, device="cpu")
    assert last.model_id == f"{family}@step{final}" and last.revision == shipped.revision
    stored = load_file(str(folder.parent / "decoder.safetensors"))
    a, b = last.decoder.state_dict(), shipped.decoder.state_dict()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], v) for k, v in stored.items())


def test_untrained_decoder_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = cae.load_model("reference@untrained", device="cpu")
    assert torch.equal(torch.rand(3), before)
    from cae.reference import load_checkpoint

    b = load_checkpoint("untrained", device="cpu")
    c = load_checkpoint("untrained", seed=1, device="cpu")
    pa, pb, pc = (next(iter(m.decoder.parameters())) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.revision == "init-seed0" and c.revision == "init-seed1"
    with pytest.raises(ModelError, match="no reference checkpoint"):
        load_checkpoint(123)
    mel = load_checkpoint("untrained", family="reference-mel", device="cpu")
    assert mel.model_id == "reference-mel@untrained" and mel.card == 256 and a.card == 512


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, damage):
    from cae.reference.checkpoints import checkpoints_dir, load_checkpoint

    copy = tmp_path / "checkpoints"
    shutil.copytree(checkpoints_dir(), copy)
    damage_file(copy / "step00100.safetensors", damage)
    with pytest.raises(ModelError, match="corrupted" if damage == "corrupt" else "missing") as err:
        load_checkpoint(100, checkpoints_dir=copy, device="cpu")
    assert "step00100.safetensors" in str(err.value)
    load_checkpoint(250, checkpoints_dir=copy, device="cpu")  # the others still load
