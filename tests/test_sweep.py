"""The sweep runner and its engine are proved against the reference pipeline (:func:`cae.scoring.naive.score_clips`).

* prefix reuse against ``model.token_nll`` on full sequences, for changes at every kind of place;
* incremental EnCodec re-encoding against the model's own encoder;
* the whole sweep against ``score_clips``: same rows, NLL within 1e-4, error rows for a corrupt and a short clip;
* the cache: keys, hits that compute nothing, ``kill -9`` and resume giving identical tables;
* a two-worker Dask cluster against the serial run.

The tiny random EnCodec of :mod:`cae.models.tiny` barely responds to its input (its embeddings differ by ~1e-5
between clips), so its quantiser decisions sit within float32 rounding of a tie and *any* change of summation order
(batching, a shorter convolution input) flips tokens. The tests therefore use a conditioned copy
(:func:`build_model`): encoder gains doubled and each codebook reduced to 8 well-separated entries; a fixture checks
that every decision on the test audio is far from a tie, so token equality below is a property of the code, not luck.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from cae.models.hf import HFMusicGen
from cae.perturb import Delete, Noise, Silence, Span
from cae.scoring.naive import score_clips
from cae.scoring import EngineOptions, UnitCache, run_sweep, unit_key
from cae.scoring.cache import SCORING_VERSION, key_document
from cae.scoring.encoder import IncrementalEncodec
from cae.scoring.prefix import PrefixScorer

SR = 32000
TOL = 1e-4
TESTS = Path(__file__).resolve().parent

#: Conditions covering every engine path: incremental re-encoding (middle of the clip), full re-encoding (near the
#: start, near the end), a length change, and prefix lengths from 0 up.
PERTURBATIONS = (
    Noise(Span(25, 5), level_db=-20.0, seed=1),
    Noise(Span(12, 20), level_db=-15.0, seed=2),
    Noise(Span(50, 8), level_db=-20.0, seed=3),
    Silence(Span(0, 2)),
    Delete(Span(30, 5)),
)


# ---- a tiny model whose codec is well conditioned -------------------------------------------------------------------
def _audio(seed: int, seconds: float) -> np.ndarray:
    """Seeded test audio: three gliding tones under a slow tremolo plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tones = sum(np.sin(2 * np.pi * f * t * (1 + 0.3 * t)) for f in rng.uniform(100, 1000, 3))
    x = (0.1 * tones + 0.02 * rng.standard_normal(t.size)) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    return x.astype(np.float32)


def build_model(seed: int = 0) -> HFMusicGen:
    """The tiny transformers MusicGen with a conditioned codec (module docstring)."""
    from transformers.models.encodec.modeling_encodec import EncodecConv1d

    from cae.models.tiny import tiny_hf_musicgen

    full = tiny_hf_musicgen(seed)
    codec = full.audio_encoder
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in codec.encoder.modules():
            if isinstance(module, EncodecConv1d):
                module.conv.parametrizations.weight.original0.mul_(2.0)
        residual = codec.encoder(torch.from_numpy(np.concatenate([_audio(100 + i, 1.0) for i in range(4)]))[None, None])[0].T
        for layer in codec.quantizer.layers:
            table = layer.codebook.embed
            pick = [0]
            dist = torch.cdist(residual, residual[:1])[:, 0]
            for _ in range(7):  # farthest-point sampling: 8 entries spread over the data
                pick.append(int(dist.argmax()))
                dist = torch.minimum(dist, torch.cdist(residual, residual[pick[-1:]])[:, 0])
            table.copy_(1e3 * torch.nn.functional.normalize(torch.randn(table.shape, generator=g), dim=1))
            table[:8] = residual[pick]
            layer.codebook.embed_avg.copy_(table)
            residual = residual - table[torch.cdist(residual, table).argmin(-1)]
    return HFMusicGen.from_model(full, device="cpu", model_id="tiny-conditioned")


def min_margin(model: HFMusicGen, wave: np.ndarray) -> float:
    """Smallest gap between the two nearest codebook entries over every quantiser decision on ``wave``."""
    codec = model.audio_encoder
    with torch.inference_mode():
        residual = codec.encoder(torch.from_numpy(wave)[None, None])[0].T.double()
        gaps = []
        for layer in codec.quantizer.layers[: model.num_codebooks]:
            d2 = torch.cdist(residual, layer.codebook.embed.double()) ** 2
            top = d2.topk(2, largest=False).values
            gaps.append(float((top[:, 1] - top[:, 0]).min()))
            residual = residual - layer.codebook.embed.double()[d2.argmin(-1)]
    return min(gaps)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and oversubscribed OpenMP threads (``pytest -n 2`` on two
    cores, or a busy machine) cost milliseconds per operator: run this module single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(one_thread: None) -> HFMusicGen:
    return build_model()


def write_clips(folder: Path) -> list[str]:
    """Three usable clips, one too short for most perturbations, one corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, seconds in enumerate((1.2, 1.2, 1.2, 0.5)):
        path = folder / f"clip{i}.wav"
        sf.write(path, _audio(i, seconds), SR, subtype="FLOAT")
        paths.append(str(path))
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really audio")
    paths.insert(2, str(corrupt))
    return paths


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, model: HFMusicGen) -> list[str]:
    paths = write_clips(tmp_path_factory.mktemp("clips"))
    from cae.audio import load
    from cae.provenance import file_sha256
    from cae.scoring import for_clip, seed_offset

    for i, path in enumerate(paths):  # every quantiser decision the tests make is far from a tie
        if "corrupt" in path:
            continue
        wav = load(path, SR)
        waves = [wav]
        for p in PERTURBATIONS:
            try:
                waves.append(for_clip(p, seed_offset("content", i, file_sha256(path))).apply(wav, SR))
            except ValueError:
                pass
        assert min(min_margin(model, w) for w in waves) > 1e-4
    return paths


@pytest.fixture(scope="module")
def reference(clips: list[str], model: HFMusicGen):
    return score_clips(clips, model, PERTURBATIONS, progress=False)


@pytest.fixture(scope="module")
def swept(clips: list[str], model: HFMusicGen, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, run_sweep(clips, PERTURBATIONS, model, cache_dir=cache, progress=False,
                            options=EngineOptions(batch_size=3))


# ---- LM prefix reuse -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alignment,chunk", [("delay", 512), ("paper", 512), ("delay", 7), ("paper", 3)])
def test_prefix_reuse_equals_full_scoring(model: HFMusicGen, alignment: str, chunk: int) -> None:
    lm = HFMusicGen.from_model(model.full_model, device="cpu", alignment=alignment)
    g = torch.Generator().manual_seed(7)
    clean = torch.randint(0, lm.card, (4, 40), generator=g)
    variants = []
    for k, f in ((0, 0), (3, 0), (2, 5), (1, 17), (0, 39), (3, 39)):  # frame 0, middle, last frame, each codebook
        c = clean.clone()
        c[k, f] = (c[k, f] + 1) % lm.card
        variants.append(c)
    tail = clean.clone()
    tail[:, 12:] = torch.randint(0, lm.card, (4, 28), generator=g)
    variants += [tail, clean.clone(), clean[:, :30].clone(), torch.cat([clean, clean[:, :6]], 1), clean[:, :2].clone()]
    scorer = PrefixScorer(lm, clean, chunk=chunk)
    assert (scorer.clean_nll - lm.token_nll(clean)).abs().nan_to_num().max() < TOL
    for batch_size in (1, 4):
        for v, nll in zip(variants, scorer.score(variants, batch_size=batch_size)):
            ref = lm.token_nll(v)
            assert nll.shape == ref.shape and torch.equal(nll.isnan(), ref.isnan())
            assert (nll - ref).abs().nan_to_num().max() < TOL
    assert scorer.stats.copied_conditions >= 2  # the unchanged copy (and, for "paper", the truncations) cost nothing
    full_steps = sum(lm._as_batch(v)[0].shape[-1] + 3 for v in variants)
    assert scorer.stats.suffix_steps < 2 * full_steps  # two batch sizes: less than two full passes over everything


def test_prefix_reuse_reads_the_clean_cache(model: HFMusicGen) -> None:
    """Guard against a scorer that silently recomputes everything: a corrupted cache must change the result."""
    clean = torch.randint(0, model.card, (4, 30), generator=torch.Generator().manual_seed(3))
    changed = clean.clone()
    changed[0, 20] = (changed[0, 20] + 1) % model.card
    scorer = PrefixScorer(model, clean)
    scorer._kv = [(k, v + 10 * torch.randn_like(v)) for k, v in scorer._kv]
    assert (scorer.score([changed])[0] - model.token_nll(changed)).abs().max() > 1e-3


# ---- incremental encoding ------------------------------------------------------------------------------------------
def test_incremental_encoder_equals_full_encoder(model: HFMusicGen) -> None:
    wav = _audio(11, 3.0)
    encoder = IncrementalEncodec(model, lstm_batch=2)
    assert torch.equal(encoder.encode_clean(wav), model.encode(wav, SR))
    perturbations = [Noise(Span(60, 5), level_db=-20.0, seed=1), Noise(Span(100, 30), level_db=-10.0, seed=2),
                     Noise(Span(20, 1), level_db=-20.0, seed=3), Noise(Span(1, 3), level_db=-20.0, seed=4),
                     Noise(Span(145, 5), level_db=-20.0, seed=5), Silence(Span(0, 1, unit="samples")),
                     Delete(Span(50, 10))]
    waves = [p.apply(wav, SR) for p in perturbations] + [wav.copy()]
    for w, codes in zip(waves, encoder.encode(waves)):
        assert min_margin(model, w) > 1e-4
        assert torch.equal(codes, model.encode(w, SR))
    stats = encoder.stats
    assert (stats.incremental, stats.full, stats.unchanged) == (3, 4, 1)
    assert stats.pre_samples < 6 * wav.size  # 1 clean + 4 full + 3 small windows (8 clips' worth without windows)


# ---- the sweep against the reference pipeline ----------------------------------------------------------------------
def test_sweep_equals_score_clips(reference, swept) -> None:
    _, tables = swept
    ref_tok, tok = reference.tokens, tables.tokens
    assert list(tok.columns) == [*ref_tok.columns, "model_id"]
    assert list(tables.summary.columns) == list(reference.summary.columns)
    keys = ["clip", "condition", "codebook", "frame"]
    pd.testing.assert_frame_equal(tok[keys], ref_tok[keys])
    assert (tok["changed"] == ref_tok["changed"]).all()
    for col in ("nll", "nll_clean"):
        assert np.allclose(tok[col], ref_tok[col], atol=TOL, rtol=0, equal_nan=True)
    s, r = tables.summary, reference.summary
    pd.testing.assert_frame_equal(s[["clip", "condition"]], r[["clip", "condition"]])
    assert (s["error"].isna() == r["error"].isna()).all()
    ok = r["error"].isna()
    assert np.allclose(s.loc[ok, "loss"].astype(float), r.loc[ok, "loss"].astype(float), atol=TOL, rtol=0)
    for col in ("first_changed", "last_changed", "n_changed_tokens", "n_frames", "seed", "perturbation"):
        pd.testing.assert_series_equal(s.loc[ok, col], r.loc[ok, col], check_dtype=False)


def test_corrupt_and_short_clips_give_error_rows(clips: list[str], swept) -> None:
    _, tables = swept
    s = tables.summary
    errors = s[s["error"].notna()]
    corrupt = [c for c in clips if "corrupt" in c][0]
    short = clips[-1]
    (row,) = errors[errors["clip"] == corrupt].itertuples()
    assert row.condition == "clean" and corrupt in row.error and "AudioError" in row.error
    short_errors = errors[errors["clip"] == short]
    assert len(short_errors) >= 2 and all(short in e and "PerturbationError" in e for e in short_errors["error"])
    # everything else completed
    usable = [c for c in clips if c != corrupt]
    done = s[s["error"].isna()]
    assert set(done["clip"]) == set(usable)
    assert len(done[done["clip"] != short]) == 3 * (1 + len(PERTURBATIONS))


def test_unexpected_failure_is_reported_not_cached(clips: list[str], model: HFMusicGen, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cae.scoring.engine import ClipEngine

    real = ClipEngine.score
    calls = [0]

    def flaky(self: ClipEngine, waves: list) -> list:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("simulated out of memory")
        return real(self, waves)

    monkeypatch.setattr(ClipEngine, "score", flaky)
    out = run_sweep(clips[:1], PERTURBATIONS[:2], model, cache_dir=tmp_path, progress=False)
    errors = out.summary["error"].dropna()
    assert len(errors) == 2 and all(clips[0] in e and "simulated out of memory" in e for e in errors)
    again = run_sweep(clips[:1], PERTURBATIONS[:2], model, cache_dir=tmp_path, progress=False)
    assert again.stats.cached == 1 and again.stats.computed == 2 and again.summary["error"].isna().all()


# ---- the cache -----------------------------------------------------------------------------------------------------
def _count_forwards(model: HFMusicGen) -> tuple[list[int], list]:
    calls = [0]
    hooks = []
    for module in (model.decoder, *model.audio_encoder.encoder.layers, model.audio_encoder.quantizer):
        hooks.append(module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)))
    return calls, hooks


def test_cache_hit_computes_nothing(clips: list[str], model: HFMusicGen, swept, tmp_path: Path) -> None:
    cache, first = swept
    renamed = tmp_path / "renamed copy.wav"
    renamed.write_bytes(Path(clips[0]).read_bytes())
    calls, hooks = _count_forwards(model)
    try:
        again = run_sweep(clips, PERTURBATIONS, model, cache_dir=cache, progress=False)
        copy = run_sweep([str(renamed)], PERTURBATIONS, model, cache_dir=cache, progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert calls[0] == 0
    assert again.stats.computed == 0 and again.stats.tasks == 0 and again.stats.cached == again.stats.units
    pd.testing.assert_frame_equal(again.tokens, first.tokens, check_exact=True)
    pd.testing.assert_frame_equal(again.summary, first.summary, check_exact=True)
    # the key holds the audio bytes, not the path: a renamed copy (at the same clip index) is a cache hit
    assert copy.stats.computed == 0 and (copy.summary["clip"] == str(renamed)).all()
    first_clip = first.tokens[first.tokens["clip"] == clips[0]].reset_index(drop=True)
    assert np.array_equal(copy.tokens["nll"].to_numpy(), first_clip["nll"].to_numpy(), equal_nan=True)


def test_cache_key_covers_every_ingredient(model: HFMusicGen) -> None:
    info = model.info()
    sha = "0" * 64
    p = PERTURBATIONS[0]
    base = unit_key(sha, p.to_dict(), info.as_dict())
    variants = [
        unit_key("1" + "0" * 63, p.to_dict(), info.as_dict()),  # audio bytes
        unit_key(sha, dataclasses.replace(p, seed=p.seed + 1).to_dict(), info.as_dict()),  # perturbation (seed)
        unit_key(sha, PERTURBATIONS[1].to_dict(), info.as_dict()),
        unit_key(sha, None, info.as_dict()),  # clean
        unit_key(sha, p.to_dict(), dataclasses.replace(info, revision="abc123").as_dict()),
        unit_key(sha, p.to_dict(), dataclasses.replace(info, alignment="paper").as_dict()),
        unit_key(sha, p.to_dict(), dataclasses.replace(info, dtype="bfloat16").as_dict()),
        unit_key(sha, p.to_dict(), dataclasses.replace(info, conditioning="text:jazz").as_dict()),
        unit_key(sha, p.to_dict(), dataclasses.replace(info, model_id="other").as_dict()),
        unit_key(sha, p.to_dict(), info.as_dict(), cae_version="0.0.0-other"),
        unit_key(sha, p.to_dict(), dataclasses.replace(info, weights="files:" + "0" * 64).as_dict()),  # weights
        unit_key(sha, p.to_dict(), info.as_dict(), scoring_version=SCORING_VERSION + 1),  # scoring code
    ]
    assert len({base, *variants}) == len(variants) + 1
    # insensitive to dict order, and the document records what was hashed
    shuffled = dict(reversed(list(info.as_dict().items())))
    assert unit_key(sha, p.to_dict(), shuffled) == base
    assert key_document(sha, p.to_dict(), info.as_dict())["perturbation"]["seed"] == p.seed


def test_sweep_recomputes_only_changed_ingredients(clips: list[str], model: HFMusicGen, swept) -> None:
    cache, _ = swept
    paper = HFMusicGen.from_model(model.full_model, device="cpu", model_id="tiny-conditioned", alignment="paper")
    out = run_sweep(clips[:1], PERTURBATIONS[:2], paper, cache_dir=cache, progress=False)
    assert out.stats.cached == 0 and out.stats.computed == 3  # another alignment: new keys
    again = run_sweep(clips[:1], PERTURBATIONS[:2], [model, paper], cache_dir=cache, progress=False)
    assert again.stats.computed == 0 and again.stats.units == 6
    assert list(again.tokens["model_id"].unique()) == ["tiny-conditioned"]
    assert set(again.summary["alignment"]) == {"delay", "paper"}


_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    import torch
    torch.set_num_threads(1)  # as the parent test module
    import test_sweep as t
    from cae.scoring import EngineOptions, UnitCache, run_sweep

    write = UnitCache.write
    def slow_write(self, unit):  # widen the window in which the parent kills us
        path = write(self, unit)
        time.sleep(0.4)
        return path
    UnitCache.write = slow_write
    clips = sys.argv[3:]
    run_sweep(clips, t.PERTURBATIONS, t.build_model(), cache_dir=sys.argv[2], progress=False,
              options=EngineOptions(batch_size=1))
""")


def test_kill_minus_nine_and_resume(clips: list[str], model: HFMusicGen, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    units = cache / "units"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(TESTS), str(cache), *clips], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not (units.is_dir() and any(units.glob("*/*.parquet"))):
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else "child exited"
            assert time.monotonic() < deadline, "no unit written within 60 s"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    partial = len(list(units.glob("*/*.parquet")))
    store = UnitCache(cache)
    for path in units.glob("*/*.parquet"):  # whatever the kill interrupted, every unit file is complete
        assert store.read(path.stem).key == path.stem
    options = EngineOptions(batch_size=1)
    resumed = run_sweep(clips, PERTURBATIONS, model, cache_dir=cache, progress=False, options=options)
    fresh = run_sweep(clips, PERTURBATIONS, model, cache_dir=tmp_path / "fresh", progress=False, options=options)
    total = len(list((tmp_path / "fresh" / "units").glob("*/*.parquet")))
    assert 0 < partial < total and resumed.stats.cached == partial
    assert partial + resumed.stats.computed == total  # only what was missing was computed
    pd.testing.assert_frame_equal(resumed.tokens, fresh.tokens, check_exact=True)
    pd.testing.assert_frame_equal(resumed.summary, fresh.summary, check_exact=True)


def test_units_are_complete_parquet_files(swept) -> None:
    cache, tables = swept
    store = UnitCache(cache)
    files = sorted((cache / "units").glob("*/*.parquet"))
    assert files and not list((cache / "units").glob("*/.*.tmp"))
    unit = store.read(files[0].stem)
    assert unit.key == files[0].stem and json.loads(json.dumps(unit.summary))["key_document"]["schema"] == 2


# ---- Dask ----------------------------------------------------------------------------------------------------------
def test_dask_local_cluster_equals_serial(clips: list[str], model: HFMusicGen, swept, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    _, serial = swept
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = run_sweep(clips, PERTURBATIONS, model, cache_dir=tmp_path / "cache", progress=False, executor=client,
                        options=EngineOptions(batch_size=3))
    assert out.stats.tasks == len(clips)  # one task per (model, clip)
    pd.testing.assert_frame_equal(out.summary, serial.summary, check_exact=False, atol=1e-6, rtol=0)
    pd.testing.assert_frame_equal(out.tokens, serial.tokens, check_exact=False, atol=1e-6, rtol=0)


_MEMORY_PROBE = """
import resource, sys, torch
torch.set_num_threads(1)  # per-thread arenas and stacks would count against the cap on a many-core machine
from cae.models.hf import HFMusicGen
from cae.models.tiny import tiny_hf_musicgen
from cae.scoring.prefix import PrefixScorer
frames = int(sys.argv[1])
lm = HFMusicGen.from_model(tiny_hf_musicgen(seed=0), device="cpu", batch_size=8)
clean = torch.randint(0, lm.card, (4, frames), generator=torch.Generator().manual_seed(0))
variants = []
for i in range(8):
    v = clean.clone()
    v[:, 50 + i : 60 + i] = (v[:, 50 + i : 60 + i] + 1) % lm.card
    variants.append(v)
vm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize")) * 1024
cap = vm + 2**30  # 1 GiB above what the process has mapped now
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
out = PrefixScorer(lm, clean).score(variants)  # the engine's default chunking
print("scored", len(out), tuple(out[0].shape))
"""


def test_long_clip_scores_in_linear_memory(tmp_path) -> None:
    """6000 frames (2 minutes) x 8 suffixes under a 1 GiB cap: one dense mask over suffix x clip (the engine before
    chunking) needs more than that and is refused by the allocator; the chunked engine stays far below."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(_MEMORY_PROBE)
    run = subprocess.run([sys.executable, str(script), "6000"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "scored 8 (4, 6000)" in run.stdout


# ---- a damaged cache, and seeds that follow the clip ----------------------------------------------------------------
def test_damaged_units_are_detected_and_recomputed(clips: list[str], model: HFMusicGen, swept, tmp_path: Path) -> None:
    """Units emptied, truncated, or with one flipped byte are found, named in a warning, deleted and computed again;
    the tables equal the undamaged run's."""
    import shutil
    import warnings

    cache, first = swept
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    # the shared cache also holds other tests' units, which this sweep never reads: damage only units it needs
    needed = tmp_path / "needed"
    run_sweep(clips, PERTURBATIONS, model, cache_dir=needed, progress=False, options=EngineOptions(batch_size=3))
    units = sorted(copy / "units" / u.parent.name / u.name for u in (needed / "units").glob("*/*.parquet"))
    ok = [u for u in units if UnitCache(copy).read(u.stem).nll is not None]
    emptied, truncated, flipped = ok[0], ok[1], ok[2]
    emptied.write_bytes(b"")
    truncated.write_bytes(truncated.read_bytes()[:100])
    import pyarrow.parquet as pq

    chunk = pq.ParquetFile(flipped).metadata.row_group(0).column(
        pq.ParquetFile(flipped).schema_arrow.get_field_index("nll"))
    data = bytearray(flipped.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0x04  # inside the nll column's data page
    flipped.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = run_sweep(clips, PERTURBATIONS, model, cache_dir=copy, progress=False,
                          options=EngineOptions(batch_size=3))
    named = " ".join(str(w.message) for w in seen)
    assert all(p.name in named for p in (emptied, truncated, flipped)), named
    assert again.stats.computed >= 3
    pd.testing.assert_frame_equal(again.summary, first.summary)
    pd.testing.assert_frame_equal(again.tokens, first.tokens)
    clean_run = run_sweep(clips, PERTURBATIONS, model, cache_dir=copy, progress=False)
    assert clean_run.stats.computed == 0  # the recomputed units are whole again


def test_a_clip_gets_the_same_noise_in_any_list_order(clips: list[str], model: HFMusicGen, swept, tmp_path: Path
                                                      ) -> None:
    cache, first = swept
    usable = [c for c in clips if "corrupt" not in c][:3]
    reordered = run_sweep(usable[::-1], PERTURBATIONS[:3], model, cache_dir=cache, progress=False)
    assert reordered.stats.computed == 0 and reordered.stats.cached == reordered.stats.units  # all reused
    cols = ["clip", "condition", "seed", "delta_loss"]
    a = first.summary[first.summary["clip"].isin(usable)][cols].dropna()
    b = reordered.summary[cols].dropna()
    merged = a.merge(b, on=["clip", "condition"], suffixes=("", "_r"))
    assert len(merged) == len(b) > 0
    assert (merged["seed"] == merged["seed_r"]).all() and np.allclose(merged["delta_loss"], merged["delta_loss_r"])
    paper = run_sweep(usable[::-1], PERTURBATIONS[:1], model, cache_dir=tmp_path, progress=False, seeding="index")
    seeds = paper.summary.dropna(subset=["seed"]).set_index("clip")["seed"]
    assert [seeds[c] for c in usable[::-1]] == [1, 2, 3]  # the authors' seed + position in the list


def test_suspicious_inputs_are_scored_with_a_warning_on_the_row(model: HFMusicGen, tmp_path: Path) -> None:
    wav = _audio(7, 1.2)
    sf.write(tmp_path / "ok.wav", wav, SR, subtype="PCM_16")
    data = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) - 20000])
    sf.write(tmp_path / "silent.wav", np.zeros_like(wav), SR, subtype="PCM_16")
    sf.write(tmp_path / "cancel.wav", np.stack([wav, -wav], 1), SR, subtype="FLOAT")
    names = ["ok", "truncated", "silent", "cancel"]
    loud = Noise(Span(25, 5), level_db=3.0, seed=1)
    model.context_frames = 55  # the 1.2 s clips are 60 frames
    try:
        out = run_sweep([str(tmp_path / f"{n}.wav") for n in names], [loud], model, cache_dir=tmp_path / "c",
                        progress=False)
    finally:
        model.context_frames = None
    s = out.summary.assign(name=out.summary["clip"].map(lambda c: Path(c).stem))
    clean = s[s["condition"] == "clean"].set_index("name")["warning"]
    assert "promises 38400 samples per channel but the file holds" in clean["truncated"]
    assert "the clip is silent" in clean["silent"]
    assert "channels cancel in the mono mix" in clean["cancel"]
    assert all("longer than the 55 the model was trained on" in clean[n] for n in ("ok", "cancel"))
    noisy = s[s["condition"] != "clean"].set_index("name")["warning"]
    assert "noise RMS is +3.0 dBFS, above full scale" in noisy["ok"]
    assert s["error"].isna().all()  # flagged, not refused


def test_summary_keeps_its_columns_when_every_condition_fails(model: HFMusicGen, tmp_path: Path) -> None:
    sf.write(tmp_path / "short.wav", _audio(3, 0.5), SR, subtype="FLOAT")  # 25 frames: every span below is beyond
    out = run_sweep([str(tmp_path / "short.wav")], [Noise(Span(50, 8), level_db=-20.0, seed=1)], model,
                    cache_dir=tmp_path / "c", progress=False)
    s = out.summary
    assert s.loc[s["condition"] != "clean", "error"].notna().all()
    for col in ("n_changed_tokens", "delta_loss", "first_changed", "last_changed", "warning", "loss"):
        assert col in s.columns, col


def test_engines_are_kept_between_sweeps_and_change_nothing(clips: list[str], tmp_path: Path) -> None:
    """A second sweep over the same clips reuses each clip's engine (no clean pass) and gives the bits fresh
    engines give; the engines belong to the model object and are not pickled."""
    import pickle

    from cae.scoring.engine import EngineCache, engines_of

    fresh = build_model()  # its own, empty engine cache
    usable = clips[:2]
    run_sweep(usable, PERTURBATIONS[:2], fresh, cache_dir=tmp_path / "a", progress=False)
    kept = engines_of(fresh)
    assert (kept.misses, kept.hits, len(kept)) == (2, 0, 2) and kept.bytes > 0
    calls, hooks = _count_forwards(fresh)
    try:
        reused = run_sweep(usable, PERTURBATIONS[2:3], fresh, cache_dir=tmp_path / "a", progress=False)
        with_reuse = calls[0]
        kept.clear()
        again = run_sweep(usable, PERTURBATIONS[2:3], fresh, cache_dir=tmp_path / "b", progress=False)
        without = calls[0] - with_reuse
    finally:
        for h in hooks:
            h.remove()
    assert kept.hits == 2 and kept.misses == 4 and (reused.stats.computed, again.stats.computed) == (2, 4)
    # the fresh engines ran each clip's clean pass: at least every encoder layer but the LSTM once more per clip
    assert without - with_reuse >= 2 * (len(fresh.audio_encoder.encoder.layers) - 1), (with_reuse, without)
    pd.testing.assert_frame_equal(reused.tokens, again.tokens, check_exact=True)
    for col in ("loss", "delta_loss", "n_changed_tokens"):
        assert reused.summary[col].equals(again.summary[col]), col
    assert len(pickle.loads(pickle.dumps(kept))) == 0  # a model sent to a worker travels without its engines
    tiny = EngineCache(budget_bytes=1)
    from cae.audio import load

    tiny.get(fresh, "sha", load(usable[0], SR))
    assert len(tiny) == 0 and tiny.misses == 1


def test_a_cached_clean_unit_spares_the_clean_pass_and_changes_nothing(clips: list[str], tmp_path: Path) -> None:
    """With the clean unit in the cache, a condition that changes the clip from its first frame (encoded in full,
    scored from step 0) runs without a clean pass; one that can reuse it computes the deferred clean state. Both
    give the bits of a sweep with nothing cached."""
    from_start, middle = Silence(Span(0, 2)), Noise(Span(25, 5), level_db=-20.0, seed=1)
    usable = clips[:2]
    run_sweep(usable, [], build_model(), cache_dir=tmp_path / "a", progress=False)  # the clean units only
    lazy = build_model()  # a new model object: no engine kept from before
    calls, hooks = _count_forwards(lazy)
    try:
        only_full = run_sweep(usable, [from_start], lazy, cache_dir=tmp_path / "a", progress=False)
        n_full = calls[0]
        both = run_sweep(usable, [from_start, middle], lazy, cache_dir=tmp_path / "a", progress=False)
    finally:
        for h in hooks:
            h.remove()
    eager = build_model()
    calls, hooks = _count_forwards(eager)
    try:
        run_sweep(usable, [from_start], eager, cache_dir=tmp_path / "b", progress=False)
        n_eager = calls[0]
        fresh = run_sweep(usable, [from_start, middle], eager, cache_dir=tmp_path / "b", progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert only_full.stats.computed == 2 and both.stats.computed == 2
    # with nothing cached the same sweep also runs each clip's clean pass: every encoder layer but the LSTM again
    assert n_eager - n_full >= 2 * (len(lazy.audio_encoder.encoder.layers) - 1), (n_full, n_eager)
    for col in ("loss", "delta_loss", "n_changed_tokens"):
        assert both.summary[col].equals(fresh.summary[col]), col
    pd.testing.assert_frame_equal(both.tokens, fresh.tokens, check_exact=True)
