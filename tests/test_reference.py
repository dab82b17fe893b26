"""The shipped reference model: loads offline with verified checksums, fails clearly when damaged, and its training
loop lowers the loss."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import cae
from cae.errors import ModelError
from cae.reference.model import DECODER_FILE, FAMILIES, META_FILE, TOKENIZER_FILE, load_reference, read_meta

BUILT = [f for f, d in FAMILIES.items() if (d / META_FILE).is_file()]
BACKEND = {"reference": "transformers", "reference-mel": "cae-reference-mel"}


def test_both_reference_models_ship():
    assert BUILT == ["reference", "reference-mel"]


@pytest.mark.parametrize("family", BUILT)
def test_reference_loads_offline_and_scores(monkeypatch, family):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = cae.load_model(family, device="cpu")
    assert model.sample_rate == 32000 and model.frame_rate == 50.0 and model.num_codebooks == 4
    t = np.arange(32000 * 3) / 32000
    wav = (0.2 * np.sin(2 * np.pi * 261.6 * t) + 0.1 * np.sin(2 * np.pi * 392 * t)).astype(np.float32)
    codes = model.encode(wav, 32000)
    nll = model.token_nll(codes)
    assert codes.shape == (4, 150) and nll.shape == (4, 150) and torch.isfinite(nll).all()
    meta = read_meta(FAMILIES[family])
    assert model.model_id == family and model.revision == meta["sha256"][DECODER_FILE][:12]
    assert model.info().as_dict()["backend"] == BACKEND[family]
    assert torch.equal(model.encode(wav, 32000), codes)  # deterministic


def test_default_reference_is_musicgen_code_path():
    """The default goes through exactly the adapter and codec class the paper's checkpoints use."""
    from transformers import EncodecModel

    from cae.models.hf import HFMusicGen
    from cae.scoring.encoder import supports_incremental_encoding

    model = cae.load_model("reference", device="cpu")
    assert type(model) is HFMusicGen and isinstance(model.audio_encoder, EncodecModel)
    assert supports_incremental_encoding(model)


@pytest.mark.parametrize("family", BUILT)
def test_reference_learned_more_than_token_frequencies(family):
    """Recorded at training time on the corpus' clips: below the unigram baseline (what the token frequencies alone
    give) on every kind, and below uniform. The neural codec's tokens are far less predictable than the mel
    tokenizer's (its codes rarely repeat from frame to frame), so its margins are smaller (about 0.2 nats against 1.8
    on held-out clips), but they are margins on 40 clips of 750 × 4 tokens each."""
    meta = read_meta(FAMILIES[family])
    for kind in ("trainset", "heldout", "ood"):
        assert meta["loss_per_kind"][kind] < meta["unigram_per_kind"][kind] - 0.15, kind
    assert meta["loss_per_kind"]["heldout"] < meta["uniform_nll"] - 0.25


@pytest.mark.parametrize("family", BUILT)
def test_reference_generates_and_decodes(family):
    model = cae.load_model(family, device="cpu")
    codes = model.generate(0.5, top_k=50, seed=1)
    assert codes.shape == (4, 25) and torch.equal(codes, model.generate(0.5, top_k=50, seed=1))
    wav = model.decode(codes)
    assert wav.shape == (25 * 640,) and np.isfinite(wav).all()


@pytest.mark.parametrize("family,damage", [
    ("reference", "corrupt-decoder"), ("reference", "corrupt-codec"), ("reference", "missing-decoder"),
    ("reference", "missing-meta"), ("reference-mel", "corrupt-tokenizer"), ("reference-mel", "missing-decoder"),
])
def test_damaged_weights_are_a_clear_error(tmp_path, family, damage):
    if family not in BUILT:
        pytest.skip(f"{family} not built")
    copy = tmp_path / "weights"
    shutil.copytree(FAMILIES[family], copy)
    name = {"corrupt-decoder": DECODER_FILE, "corrupt-tokenizer": TOKENIZER_FILE, "missing-decoder": DECODER_FILE,
            "missing-meta": META_FILE, "corrupt-codec": "codec/model.safetensors"}[damage]
    if damage.startswith("corrupt"):
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / name).write_bytes(bytes(data))
        match = "corrupted"
    else:
        (copy / name).unlink()
        match = "missing"
    with pytest.raises(ModelError, match=match) as err:
        load_reference(copy, device="cpu")
    assert name in str(err.value) and "make reference-model" in str(err.value)


def test_training_steps_lower_the_loss():
    """A tiny decoder on token streams with structure (each codebook repeats its previous frame most of the
    time) learns it within a few dozen steps."""
    from cae.reference.model import decoder_from_config
    from cae.reference.train import TrainConfig, fit_decoder, mean_nll

    rng = np.random.default_rng(0)
    pieces = []
    for _ in range(4):
        p = np.zeros((4, 200), dtype=np.int64)
        p[:, 0] = rng.integers(0, 16, 4)
        for t in range(1, 200):
            keep = rng.random(4) < 0.9
            p[:, t] = np.where(keep, p[:, t - 1], rng.integers(0, 16, 4))
        pieces.append(p)
    cfg = TrainConfig(steps=60, batch_size=4, window_frames=64, lr=1e-2, warmup_steps=5, hidden_size=32,
                      num_layers=1, num_heads=2, ffn_dim=64, dropout=0.0, codebook_size=16, eval_every=30,
                      checkpoint_steps=(30,))
    torch.manual_seed(0)
    decoder = decoder_from_config(cfg.decoder_config())
    held = [p[:, :64] for p in pieces]
    before = mean_nll(decoder, held, special=16)
    seen = []
    curve = fit_decoder(decoder, pieces, cfg, evaluate=lambda: mean_nll(decoder, held, 16),
                        on_checkpoint=lambda step, loss: seen.append((step, loss)), progress=False)
    after = mean_nll(decoder, held, special=16)
    assert [c["step"] for c in curve] == [30, 60] and [s for s, _ in seen] == [30]
    assert seen[0][1] == pytest.approx(curve[0]["heldout_loss"])
    assert before > np.log(16) - 0.3 and after < before - 1.0


def test_decoder_training_resumes_bit_identically(tmp_path):
    """A run killed between two resume points and started again ends with the same weights as an uninterrupted
    one (dropout on, so torch's generator state matters too)."""
    from cae.reference.model import decoder_from_config
    from cae.reference.train import TrainConfig, fit_decoder

    rng = np.random.default_rng(1)
    pieces = [rng.integers(0, 16, (4, 120)) for _ in range(3)]
    cfg = TrainConfig(steps=20, batch_size=2, window_frames=32, warmup_steps=3, hidden_size=16, num_layers=1,
                      num_heads=2, ffn_dim=32, dropout=0.2, codebook_size=16, eval_every=10, checkpoint_steps=(),
                      resume_every=5)

    def fresh():
        torch.manual_seed(0)
        return decoder_from_config(cfg.decoder_config())

    straight = fresh()
    fit_decoder(straight, pieces, cfg, resume=tmp_path / "a.pt", progress=False)
    calls = {"n": 0}

    def die():
        calls["n"] += 1
        raise KeyboardInterrupt

    killed = fresh()
    with pytest.raises(KeyboardInterrupt):  # dies in the evaluation at step 10, after the resume point at 5
        fit_decoder(killed, pieces, cfg, evaluate=die, resume=tmp_path / "b.pt", progress=False)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["step"] == 5
    resumed = fresh()
    torch.manual_seed(99)
    fit_decoder(resumed, pieces, cfg, resume=tmp_path / "b.pt", progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", BUILT)
@torch.inference_mode()
def test_shipped_decoder_matches_the_brute_force_oracle(family):
    """The shipped decoders score held-out-like audio exactly as one forward per step on the explicit prefix."""
    from test_scoring import TOL, _hf_forward, brute_force_nll

    model = cae.load_model(family, device="cpu")
    t = np.arange(32000) / 32000
    wav = (0.2 * np.sin(2 * np.pi * 261.6 * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    codes = model.encode(wav, 32000)[:, :30]
    nll = model.token_nll(codes)
    ref = brute_force_nll(_hf_forward(model.decoder), codes, special=model.special)
    assert not torch.isnan(ref).any() and (nll - ref.float()).abs().max().item() < TOL


def test_codec_noise_response_fills_both_models_columns(tmp_path):
    """The ablation's codec table: both reference models give distinct-token and repeat-rate values for the music
    itself and for noise at each level, and quiet noise repeats at least as often as loud noise."""
    from cae import study
    from cae.datasets import synthetic_clips

    clips = {"synthetic": synthetic_clips(1, seconds=8.0, root=tmp_path)}
    rows = []
    for family in BUILT:
        model = cae.load_model(family, device="cpu")
        rows.append(study.codec_noise_response(model, clips, dbfs_levels=(-40.0, 0.0), snr_levels=(0.0,),
                                               length=50, onset=150))
    import pandas as pd

    table = pd.concat(rows, ignore_index=True)
    assert set(table["model_id"]) == set(BUILT) and table[["unique_tokens", "repeat_rate"]].notna().all().all()
    for name, g in table.groupby("model_id"):
        assert list(g["level_mode"]) == ["clean", "dbfs", "dbfs", "snr"]
        quiet, loud = g[g["level_db"] == -40.0].iloc[0], g[g["level_db"] == 0.0].iloc[0]
        if name == "reference":  # the neural codec keeps loud noise diverse and lets quiet noise collapse
            assert quiet["repeat_rate"] > loud["repeat_rate"] and quiet["unique_tokens"] < loud["unique_tokens"]
        else:  # the mel tokenizer maps any white noise to a handful of repeated tokens
            assert max(quiet["unique_tokens"], loud["unique_tokens"]) <= 5 and min(quiet["repeat_rate"],
                                                                                 loud["repeat_rate"]) > 0.7
