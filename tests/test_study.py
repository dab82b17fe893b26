"""cae.study, cae.datasets, cae.paper: the notebooks' tables against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from cae import datasets as ds
from cae import paper, study
from cae.analysis import anchored_regions
from cae.audio import load
from cae.perturb import BlockSwap, RandomPairSwaps, SegmentSwap
from cae.provenance import file_sha256
from cae.scoring import for_clip, seed_offset

LENGTHS = [5, 50]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return study.load_models(["reference"])[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return {"ood": ds.synthetic_clips(2, seconds=8.0, root=root / "a", seed=1),
            "heldout": ds.synthetic_clips(2, seconds=8.0, root=root / "b", seed=2)}


def conditions(kind):
    return study.noise_conditions(kind, LENGTHS, onset=150) + [study.pure_noise(kind, 380)]


@pytest.fixture(scope="module")
def results(model, clips, tmp_path_factory):
    return study.run_study([model], clips, conditions, cache_dir=tmp_path_factory.mktemp("cache"), codes=True,
                           progress=False)


def independent(model, path, p, index):
    """Clip loss and per-token NLL of a clip and its perturbed copy, scored directly (no sweep, no cache)."""
    wav = load(path, sample_rate=model.sample_rate)
    clean_codes = model.encode(wav, model.sample_rate)
    offset = seed_offset("content", index, file_sha256(path))  # the corrected protocol's per-clip seed
    pert_codes = model.encode(for_clip(p, offset).apply(wav, model.sample_rate), model.sample_rate)
    return (model.token_nll(clean_codes).numpy(), model.token_nll(pert_codes).numpy(),
            clean_codes.numpy(), pert_codes.numpy())


# ---- conditions ------------------------------------------------------------------------------------------------
def test_noise_conditions_levels_follow_the_mode():
    levels = {k: study.noise_conditions(k, [10])[0].level_db for k in ("ood", "generated", "trainset", "heldout")}
    assert levels == {"ood": -30.0, "generated": -20.0, "trainset": -12.0, "heldout": -12.0}
    p = study.noise_conditions("anything", [10], level_mode="snr", level_db=-5.0)[0]
    assert (p.reference, p.level_db, p.legacy_rng) == ("snr-rms", -5.0, False)
    assert study.noise_conditions("ood", [10], colour="butter-pink")[0].legacy_rng is True
    assert study.noise_conditions("ood", [10], colour="pink")[0].legacy_rng is False
    with pytest.raises(study.StudyError, match="not for kind 'mine'"):
        study.noise_conditions("mine", [10])
    with pytest.raises(study.StudyError, match="needs level_db"):
        study.noise_conditions("ood", [10], level_mode="dbfs")
    with pytest.raises(study.StudyError, match="level_mode"):
        study.noise_conditions("ood", [10], level_mode="loud")


def test_shuffle_conditions_variants():
    assert [type(p) for p in study.shuffle_conditions("fig5", [10, 100])] == [RandomPairSwaps, SegmentSwap]
    assert all(isinstance(p, RandomPairSwaps) for p in study.shuffle_conditions("pair_swaps", [10, 100]))
    b = study.shuffle_conditions("block_swap", [20], onset=100)[0]
    assert isinstance(b, BlockSwap) and (b.span.onset, b.span.length) == (100, 20)
    with pytest.raises(study.StudyError):
        study.shuffle_conditions("rotate", [10])


def test_perturbation_columns_round_trip():
    p = study.noise_conditions("ood", [100], crossfade_ms=5.0)[0]
    c = study.perturbation_columns(json.dumps(p.to_dict()))
    assert (c["perturbation_kind"], c["length"], c["onset"], c["level_db"], c["crossfade_ms"]) == \
        ("noise", 100, 250, -30.0, 5.0)
    s = study.perturbation_columns(json.dumps(study.shuffle_conditions("pair_swaps", [35])[0].to_dict()))
    assert (s["perturbation_kind"], s["length"], s["budget"]) == ("random_pair_swaps", 35, 0.2)
    assert study.perturbation_columns(float("nan"))["perturbation_kind"] == "clean"


def test_plugins_import_modules_and_files(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_mod.py").write_text("import cae\ncae.register_model('plugin-mod', lambda **kw: 1, "
                                               "overwrite=True)\n")
    (tmp_path / "file_plugin.py").write_text("import cae\ncae.register_model('plugin-file', lambda **kw: 2, "
                                             "overwrite=True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    study.import_plugins(["my_plugin_mod", str(tmp_path / "file_plugin.py")])
    from cae.models.base import registered_models

    assert {"plugin-mod", "plugin-file"} <= set(registered_models())


def test_load_models_applies_the_protocol():
    (m,) = study.load_models("reference", protocol_name="paper")
    assert m.alignment == "paper"
    with pytest.raises(study.StudyError, match="protocol"):
        study.load_models("reference", protocol_name="fast")


# ---- the sweep and its tables ------------------------------------------------------------------------------------
def test_clip_deltas_equal_direct_scoring(model, clips, results):
    d = study.clip_deltas(results)
    assert len(d) == 2 * 2 * len(LENGTHS)  # pure noise left out
    assert not study.is_pure_noise(d).any() and study.is_pure_noise(results.summary).sum() == 4
    for kind, paths in clips.items():
        for i, path in enumerate(paths):
            for p in study.noise_conditions(kind, LENGTHS, onset=150):
                clean, pert, _, _ = independent(model, path, p, i)
                row = d[(d["clip"] == str(path)) & (d["length"] == p.span.length)]
                assert len(row) == 1
                offset = seed_offset("content", i, file_sha256(path))  # the corrected protocol's seeding
                assert row["kind"].item() == kind and row["seed"].item() == 42 + offset
                assert row["delta"].item() == pytest.approx(float(pert.mean() - clean.mean()), abs=1e-5)
                assert row["loss_clean"].item() == pytest.approx(float(clean.mean()), abs=1e-5)


def test_delta_by_length_summarises_the_clip_rows(results):
    t = study.delta_by_length(results, n_resamples=200)
    d = study.clip_deltas(results)
    for _, r in t.iterrows():
        g = d[(d["kind"] == r["kind"]) & (d["length"] == r["length"])]["delta"]
        assert r["n"] == 2 and r["mean"] == pytest.approx(g.mean())
        assert r["share_lower"] == pytest.approx(float((g < 0).mean()))


def test_paired_by_length_matches_scipy(results):
    from scipy import stats

    t = study.paired_by_length(results)
    d = study.clip_deltas(results)
    for _, r in t.iterrows():
        g = d[(d["kind"] == r["kind"]) & (d["length"] == r["length"])]
        want = stats.ttest_rel(g["loss"], g["loss_clean"], alternative="less").pvalue
        assert r["n"] == 2 and r["t_p"] == pytest.approx(want)
        assert r["mean_diff"] == pytest.approx((g["loss"] - g["loss_clean"]).mean())


def test_length_tests_columns(results):
    t = study.length_tests(results)
    assert set(t["kind"]) == {"ood", "heldout"} and (t["n_points"] == 4).all() and (t["longest"] == 50).all()
    assert t["spearman_r"].between(-1, 1).all()


def test_onset_curves_equal_the_direct_curve(model, clips, results):
    curves = study.onset_curves(results, onset=150, before=10, after=80, n_resamples=100)
    path = clips["ood"][1]
    p = study.noise_conditions("ood", [50], onset=150)[0]
    clean, pert, _, _ = independent(model, path, p, 1)
    want_one = (pert - clean)  # [K, F]
    # with 2 clips, the mean curve is the mean of both clips' codebook-mean curves
    path0 = clips["ood"][0]
    c0, p0, _, _ = independent(model, path0, p, 0)
    want = ((p0 - c0).mean(axis=0) + want_one.mean(axis=0)) / 2
    got = curves[(curves["kind"] == "ood") & (curves["length"] == 50) & (curves["codebook"] == "mean")]
    assert list(got["rel_frame"]) == list(range(-10, 80))
    np.testing.assert_allclose(got["mean"].to_numpy(), want[140:230], atol=1e-5)
    assert (got["ci_low"] <= got["mean"] + 1e-9).all() and (got["ci_high"] >= got["mean"] - 1e-9).all()
    k3 = curves[(curves["kind"] == "ood") & (curves["length"] == 50) & (curves["codebook"] == "3")]
    np.testing.assert_allclose(k3["mean"].to_numpy(), ((p0 - c0)[3] + want_one[3])[140:230] / 2, atol=1e-5)


def test_region_means_equals_anchored_regions(model, clips, results):
    r = study.region_means(results, onset=150)
    path = clips["heldout"][0]
    p = study.noise_conditions("heldout", [50], onset=150)[0]
    clean, pert, cc, pc = independent(model, path, p, 0)
    want = anchored_regions(pert - clean, cc != pc, 150, 200)
    got = r[(r["clip"] == str(path)) & (r["length"] == 50) & (r["method"] == "anchored")].set_index("region")
    for region, v in want.means.items():
        assert got.loc[region, "delta"] == pytest.approx(v, abs=1e-5, nan_ok=True)
    assert set(r["method"]) == {"anchored", "paper"}


def test_noise_token_stats_equal_direct_counts(model, clips, results):
    s = study.noise_token_stats(results, onset=150)
    path = clips["ood"][0]
    p = study.noise_conditions("ood", [50], onset=150)[0]
    _, _, cc, pc = independent(model, path, p, 0)
    span = pc[:, 150:200]
    row = s[(s["clip"] == str(path)) & (s["length"] == 50)].iloc[0]
    assert row["unique_tokens"] == pytest.approx(np.mean([len(np.unique(x)) for x in span]))
    assert row["repeat_rate"] == pytest.approx(float(np.mean(span[:, 1:] == span[:, :-1])))
    inside = np.zeros(cc.shape[1], bool)
    inside[150:200] = True
    assert row["changed_inside"] == pytest.approx(float(np.mean((cc != pc)[:, inside])))
    assert row["changed_outside"] == pytest.approx(float(np.mean((cc != pc)[:, ~inside])))


def test_noise_token_stats_need_codes(results):
    without = study.StudyResults(results.summary, results.tokens.drop(columns="code"))
    with pytest.raises(study.StudyError, match="codes=True"):
        study.noise_token_stats(without)


def test_absolute_curves_music_noise_and_perturbed(model, clips, results):
    a = study.absolute_curves(results, length=50, onset=150, before=5, after=60, n_resamples=100)
    assert set(a["curve"]) == {"music", "music + perturb", "noise"}
    path0, path1 = clips["heldout"]
    c0 = model.token_nll(model.encode(load(path0, sample_rate=model.sample_rate), model.sample_rate)).numpy()
    c1 = model.token_nll(model.encode(load(path1, sample_rate=model.sample_rate), model.sample_rate)).numpy()
    music = a[(a["kind"] == "heldout") & (a["curve"] == "music")]
    np.testing.assert_allclose(music["mean"].to_numpy(), ((c0 + c1).mean(axis=0) / 2)[145:210], atol=1e-5)


def test_errors_become_rows_and_the_rest_completes(model, clips, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not a wav file")
    res = study.run_study([model], {"ood": [clips["ood"][0], bad]}, conditions, cache_dir=tmp_path / "c",
                          progress=False)
    err = res.errors()
    assert len(err) >= 1 and all(str(bad) == c for c in err["clip"])
    assert res.perturbed["clip"].eq(str(clips["ood"][0])).sum() == len(LENGTHS) + 1


# ---- datasets ----------------------------------------------------------------------------------------------------
def test_parse_spec_and_errors(tmp_path):
    assert ds.parse_spec("reference:heldout") == ("reference", "heldout")
    with pytest.raises(ds.DatasetError, match="needs a kind"):
        ds.parse_spec("reference")
    with pytest.raises(ds.DatasetError, match="no such folder"):
        ds.resolve_dataset(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ds.DatasetError, match="no audio files"):
        ds.resolve_dataset(str(tmp_path / "empty"))
    with pytest.raises(ds.DatasetError, match="pass model="):
        ds.resolve_dataset("generated")


def test_folder_and_glob_specs(tmp_path):
    for name in ("b.wav", "a.wav", "sub/c.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / name, np.zeros(1600, np.float32), 16000)
    assert [p.name for p in ds.resolve_dataset(str(tmp_path))] == ["a.wav", "b.wav", "c.flac"]
    assert [p.name for p in ds.resolve_dataset(str(tmp_path), n_clips=1)] == ["a.wav"]
    assert [p.name for p in ds.resolve_dataset(str(tmp_path / "*.wav"))] == ["a.wav", "b.wav"]


def test_synthetic_clips_are_deterministic(tmp_path):
    a = ds.synthetic_clips(2, seconds=1.0, root=tmp_path / "a", seed=3)
    b = ds.synthetic_clips(2, seconds=1.0, root=tmp_path / "b", seed=3)
    c = ds.synthetic_clips(1, seconds=1.0, root=tmp_path / "c", seed=4)
    xa, xb, xc = (sf.read(p[0])[0] for p in (a, b, c))
    np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    assert 10 * np.log10(np.mean(xa**2)) == pytest.approx(-20.0, abs=0.01)


def test_generated_spec_samples_round_robin_over_top_k(model, tmp_path, monkeypatch):
    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path))
    paths = ds.resolve_dataset("generated", n_clips=2, model=model, progress=False)
    assert [p.parent.name for p in paths] == ["topk10", "topk50"]
    manifest = pd.read_csv(paths[0].parents[1] / "manifest.csv")
    assert set(manifest["top_k"]) == {10, 50} and manifest["model_id"].eq("reference").all()
    again = ds.resolve_dataset("generated", n_clips=2, model=model, progress=False)
    assert again == paths and all(p.stat().st_mtime_ns == q.stat().st_mtime_ns for p, q in zip(paths, again))


# ---- the paper's values ------------------------------------------------------------------------------------------
def test_paper_tables_match_the_spec():
    f2 = paper.fig2()
    assert len(f2) == 4 * 3 * 6 and set(f2["kind"]) == {"ood", "trainset", "generated"}
    # the spec's Fig. 2 shape: near 0 at 5-10 frames, negative at 200 frames, for every model and dataset
    assert (f2[f2["length"] == 200]["delta"] < 0).all() and (f2[f2["length"] <= 10]["delta"].abs() <= 0.05).all()
    assert paper.fig4().groupby("region")["mean"].apply(lambda s: (s < 0).all())["assimilation"]
    assert paper.model_key("/models/musicgen-large/") == paper.LARGE


def test_music_levels_reads_each_kinds_loudness_against_the_paper_level(model, tmp_path):
    sr = model.sample_rate
    t = np.arange(sr * 2) / sr
    for kind, amps in (("ood", (0.1, 0.2)), ("heldout", (0.5,)), ("mine", (0.05,))):
        (tmp_path / kind).mkdir()
        for i, a in enumerate(amps):
            sf.write(tmp_path / kind / f"{i}.wav", (a * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    table = study.music_levels([model], {k: str(tmp_path / k) for k in ("ood", "heldout", "mine")})
    level = {a: 20 * np.log10(a / np.sqrt(2)) for a in (0.1, 0.2, 0.5, 0.05)}  # a sine's RMS is a / √2
    assert table.loc["ood", "min"] == pytest.approx(level[0.1], abs=0.06)
    assert table.loc["ood", "max"] == pytest.approx(level[0.2], abs=0.06)
    assert table.loc["ood", "mean"] == pytest.approx((level[0.1] + level[0.2]) / 2, abs=0.06)
    # the authors' absolute levels: OOD -30 dBFS, held-out music takes the training music's -12 dBFS
    assert table.loc["ood", "paper noise dBFS"] == -30 and table.loc["heldout", "paper noise dBFS"] == -12
    assert table.loc["heldout", "effective SNR (dB)"] == pytest.approx(level[0.5] + 12, abs=0.11)
    assert np.isnan(table.loc["mine", "paper noise dBFS"]) and np.isnan(table.loc["mine", "effective SNR (dB)"])


def test_example_clip_and_its_curve_are_what_the_sweep_scored(model, clips, results):
    p = study.noise_conditions("ood", [50], onset=150)[0]
    ex = study.example_clip(results, model, "ood", p)
    path = clips["ood"][0]  # the first clip of the kind
    assert ex.clip == str(path) and ex.perturbation.seed == p.seed + seed_offset("content", 0, file_sha256(path))
    clean, pert, _, _ = independent(model, path, p, 0)
    # the audio to listen to is the audio that was scored: re-encoded, it gives the same token NLL
    np.testing.assert_allclose(model.token_nll(model.encode(ex.perturbed(), ex.sample_rate)).numpy(), pert, atol=1e-5)
    curve = study.clip_curve(results, ex, onset=150, before=10, after=80)
    assert list(curve["rel_frame"]) == list(range(-10, 80)) and list(curve["frame"]) == list(range(140, 230))
    np.testing.assert_allclose(curve["mean"].to_numpy(), np.nanmean(pert - clean, axis=0)[140:230], atol=1e-5)
    with pytest.raises(study.StudyError, match="no clip of kind 'generated'"):
        study.example_clip(results, model, "generated", p)
