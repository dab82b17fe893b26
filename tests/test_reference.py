"""The shipped reference model: loads offline with verified checksums, fails clearly when damaged, and its training
loop lowers the loss."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import cae
from cae.errors import ModelError
from cae.reference.model import DECODER_FILE, META_FILE, TOKENIZER_FILE, WEIGHTS_DIR, load_reference, read_meta

shipped = pytest.mark.skipif(not (WEIGHTS_DIR / META_FILE).is_file(), reason="reference weights not built")


@shipped
def test_reference_loads_offline_and_scores(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = cae.load_model("reference", device="cpu")
    assert model.sample_rate == 32000 and model.frame_rate == 50.0 and model.num_codebooks == 4
    t = np.arange(32000 * 3) / 32000
    wav = (0.2 * np.sin(2 * np.pi * 261.6 * t) + 0.1 * np.sin(2 * np.pi * 392 * t)).astype(np.float32)
    codes = model.encode(wav, 32000)
    nll = model.token_nll(codes)
    assert codes.shape == (4, 150) and nll.shape == (4, 150) and torch.isfinite(nll).all()
    meta = read_meta()
    assert model.revision == meta["sha256"][DECODER_FILE][:12]
    assert model.info().as_dict()["backend"] == "cae-reference"


@shipped
def test_reference_learned_more_than_token_frequencies():
    """Recorded at training time on the corpus' held-out clips: far below the unigram and uniform baselines."""
    meta = read_meta()
    for kind in ("trainset", "heldout"):
        assert meta["loss_per_kind"][kind] < meta["unigram_per_kind"][kind] - 1.0
    assert meta["loss_per_kind"]["heldout"] < meta["uniform_nll"] - 1.5


@shipped
def test_reference_generates_and_decodes():
    model = cae.load_model("reference", device="cpu")
    codes = model.generate(0.5, top_k=50, seed=1)
    assert codes.shape == (4, 25) and torch.equal(codes, model.generate(0.5, top_k=50, seed=1))
    wav = model.decode(codes)
    assert wav.shape == (25 * 640,) and np.isfinite(wav).all()


@shipped
@pytest.mark.parametrize("damage", ["corrupt-decoder", "corrupt-tokenizer", "missing-decoder", "missing-meta"])
def test_damaged_weights_are_a_clear_error(tmp_path, damage):
    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy)
    name = {"corrupt-decoder": DECODER_FILE, "corrupt-tokenizer": TOKENIZER_FILE, "missing-decoder": DECODER_FILE,
            "missing-meta": META_FILE}[damage]
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
                        on_checkpoint=seen.append, progress=False)
    after = mean_nll(decoder, held, special=16)
    assert [c["step"] for c in curve] == [30, 60] and seen == [30]
    assert before > np.log(16) - 0.3 and after < before - 1.0
