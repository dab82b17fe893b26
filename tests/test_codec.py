"""The neural codec of the reference model: its training pieces (EMA residual VQ, k-means start, dead-code restarts,
losses, quality metrics), resumable training, and the shipped transformers ``EncodecModel``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import damage as damage_file
import torch

from cae.errors import ModelError
from cae.reference.codec import (
    CodecConfig,
    MelLoss,
    ResidualVQ,
    codec_quality,
    encodec_config,
    load_codec,
    perplexity,
    save_codec,
    train_codec,
)
from cae.reference.model import CODEC_DIR

DATA = Path(__file__).parent / "data"
TINY = dict(num_filters=4, hidden_size=8, codebook_size=16, autoencoder_steps=3, kmeans_seconds=8.0,
            kmeans_iters=5, batch_size=2, segment_seconds=0.5, checkpoint_every=4, threads=1)


def _music(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(32000 * seconds)) / 32000
    f = rng.choice([220.0, 261.6, 329.6, 392.0], size=int(seconds * 4) + 1)[(t * 4).astype(int)]
    return (0.2 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_config_selects_the_codebook_count_at_musicgens_bandwidth():
    for size in (256, 512, 1024, 2048):
        cfg = encodec_config(CodecConfig(codebook_size=size))
        assert cfg.num_quantizers == 4 and cfg.frame_rate == 50 and cfg.hop_length == 640
        assert not cfg.use_causal_conv and cfg.num_lstm_layers == 2
    assert encodec_config(CodecConfig(codebook_size=2048)).target_bandwidths == [2.2]  # MusicGen's own


def test_ema_update_moves_entries_to_their_means_and_restarts_dead_ones():
    cfg = CodecConfig(codebook_size=4, hidden_size=2, ema_decay=0.0, dead_fraction=0.3)
    book = torch.nn.Module()
    book.embed = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0], [50.0, 50.0]])
    book.cluster_size = torch.ones(4)
    book.embed_avg = book.embed.clone()
    rvq = ResidualVQ.__new__(ResidualVQ)
    rvq.books, rvq.cfg = [book], cfg
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [9.0, 11.0], [11.0, 9.0], [-10.0, 12.0], [-10.0, 8.0]])
    idx = rvq._nearest(x, book.embed)
    assert idx.tolist() == [0, 0, 1, 1, 2, 2]
    torch.manual_seed(0)
    dead = rvq._ema_update(book, x, idx)
    # decay 0: statistics are this batch's; entry 3 got nothing (count 0 < 0.3 · 6/4) and restarts on a batch vector
    assert dead == 1
    assert torch.allclose(book.embed[:3], torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]]))
    assert any(torch.equal(book.embed[3], v) for v in x)
    assert book.cluster_size[3] == pytest.approx(6 / 4)
    assert torch.allclose(book.embed, book.embed_avg / book.cluster_size[:, None])


def test_kmeans_init_finds_separated_clusters_stage_by_stage():
    cfg = CodecConfig(codebook_size=4, hidden_size=2, num_codebooks=2, kmeans_iters=20)
    model_cfg = encodec_config(CodecConfig(**{**TINY, "hidden_size": 2, "codebook_size": 4}))
    from transformers import EncodecModel

    model = EncodecModel(model_cfg)
    rvq = ResidualVQ(model, cfg)
    rvq.books = rvq.books[:2]
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    pts = centres[torch.arange(400) % 4] + 0.1 * torch.randn(400, 2, generator=g)
    z = pts.T[None]  # [1, D, T]
    rvq.kmeans_init(z, frames_per_step=40, seed=0)
    found = rvq.books[0].embed
    for c in centres:
        assert torch.cdist(c[None], found).min() < 0.05
    assert float(rvq.books[0].cluster_size.sum()) == pytest.approx(40.0)  # counts rescaled to one step
    codes = rvq.codes(z)
    residual = pts - found[codes[0, 0]]
    assert residual.abs().max() < 0.5  # the second stage works on what the first left


def test_mel_loss_is_zero_only_for_equal_signals():
    loss = MelLoss()
    x = torch.from_numpy(_music(0.5))[None]
    assert float(loss(x, x)) == 0.0
    assert float(loss(0.5 * x, x)) > 0.1


def test_quality_metrics_against_hand_computed_values():
    x = _music(1.0)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(x.size).astype(np.float32)
    noise *= np.sqrt(np.sum(x.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2)) / 10  # 20 dB below
    q = codec_quality(x, x + noise)
    assert q["snr_db"] == pytest.approx(20.0, abs=1e-3)
    half = codec_quality(x, 0.5 * x)
    assert half["snr_db"] == pytest.approx(20 * math.log10(2), abs=1e-3) and half["si_snr_db"] > 100
    assert half["logmel_l1"] == pytest.approx(math.log(4), abs=0.02)  # power ratio 4 wherever mel ≫ 1e-5
    assert perplexity(np.array([[[0, 1], [2, 2]]]), 4) == [2.0, 1.0]


def test_training_resumes_bit_identically(tmp_path):
    pieces = [_music(6.0, seed=s) for s in range(2)]
    cfg = CodecConfig(**TINY, steps=8)
    straight, _ = train_codec(cfg, pieces, tmp_path / "a", progress=False)
    # an interrupted run: the checkpoint at step 4 is what a kill after step 5 leaves behind
    half = CodecConfig(**TINY, steps=8)
    torch.manual_seed(123)  # the run must not depend on the caller's generator
    import cae.reference.codec as codec_mod

    calls = {"n": 0}
    real = codec_mod.draw_segments

    def interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # k-means draw + 5 training batches, then stop during step 6
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    codec_mod.draw_segments = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            train_codec(half, pieces, tmp_path / "b", progress=False)
    finally:
        codec_mod.draw_segments = real
    assert torch.load(tmp_path / "b" / "codec-train.pt", weights_only=False)["step"] == 4
    resumed, _ = train_codec(half, pieces, tmp_path / "b", progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ModelError, match="another configuration"):
        train_codec(CodecConfig(**{**TINY, "lr": 2e-3}, steps=8), pieces, tmp_path / "b", progress=False)


def test_saved_codec_gives_the_training_codes_and_frame_count(tmp_path):
    pieces = [_music(6.0, seed=s) for s in range(2)]
    cfg = CodecConfig(**TINY, steps=6)
    model, _ = train_codec(cfg, pieces, tmp_path / "w", progress=False)
    sha = save_codec(model, tmp_path / "codec")
    shipped = load_codec(tmp_path / "codec", sha)
    for n in (32000, 32000 + 1, 32000 * 2 - 100):
        x = torch.from_numpy(_music(3.0, seed=5)[:n])[None, None]
        ours = ResidualVQ(model, cfg).codes(model.encoder(x))
        theirs = shipped.encode(x, bandwidth=shipped.config.target_bandwidths[0]).audio_codes[0]
        assert theirs.shape == (1, 4, math.ceil(n / 640))
        assert torch.equal(ours, theirs)
        assert torch.equal(theirs, shipped.encode(x).audio_codes[0])  # all quantisers = the bandwidth's
        audio = shipped.decode(theirs[None], [None]).audio_values
        assert audio.shape[-1] == math.ceil(n / 640) * 640


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_damaged_codec_is_a_clear_error(tmp_path, damage):
    from transformers import EncodecModel

    torch.manual_seed(0)
    folder = tmp_path / "codec"
    sha = save_codec(EncodecModel(encodec_config(CodecConfig(**TINY))), folder)
    damage_file(folder / "model.safetensors", damage)
    with pytest.raises(ModelError, match="corrupted" if damage == "corrupt" else "missing") as err:
        load_codec(folder, sha)
    assert "model.safetensors" in str(err.value) and "make reference-codec" in str(err.value)


shipped = pytest.mark.skipif(not (CODEC_DIR / "training.json").is_file(), reason="reference codec not built")


@shipped
def test_shipped_codec_matches_its_training_implementation_on_heldout_audio():
    """The transformers model that scoring uses and the training code's own quantiser agree on every code of
    held-out music (excerpts of two held-out corpus clips, stored in tests/data)."""
    import soundfile as sf

    meta = json.loads((CODEC_DIR / "training.json").read_text())
    cfg = CodecConfig(**{k: tuple(v) if k == "betas" else v for k, v in meta["codec_config"].items()})
    model = load_codec(CODEC_DIR, meta["sha256"])
    for path in sorted(DATA.glob("heldout_*.flac")):
        wav, sr = sf.read(path, dtype="float32")
        x = torch.from_numpy(wav)[None, None]
        with torch.inference_mode():
            theirs = model.encode(x, bandwidth=model.config.target_bandwidths[0]).audio_codes[0]
            ours = ResidualVQ(model, cfg).codes(model.encoder(x))
            again = model.encode(x, bandwidth=model.config.target_bandwidths[0]).audio_codes[0]
        assert sr == 32000 and theirs.shape == (1, 4, math.ceil(len(wav) / 640))
        assert torch.equal(ours, theirs) and torch.equal(theirs, again)
        # the codec is a real one: it reconstructs music, and it uses many entries of every codebook
        with torch.inference_mode():
            audio = model.decode(theirs[None], [None]).audio_values[0, 0, : len(wav)].numpy()
        # closer to the music, spectrally, than the music at half amplitude or low-passed at 1 kHz
        from scipy.signal import butter, lfilter

        lowpassed = lfilter(*butter(4, 1000 / 16000), wav).astype(np.float32)
        q = codec_quality(wav, audio)
        assert q["logmel_l1"] < codec_quality(wav, 0.5 * wav)["logmel_l1"]
        assert q["logmel_l1"] < 0.5 * codec_quality(wav, lowpassed)["logmel_l1"]
        assert min(perplexity(theirs[0].numpy(), cfg.codebook_size)) > 50


@shipped
def test_shipped_codec_copy_with_a_flipped_byte_is_refused(tmp_path):
    meta = json.loads((CODEC_DIR / "training.json").read_text())
    copy = tmp_path / "codec"
    shutil.copytree(CODEC_DIR, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-100] ^= 0x10
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupted"):
        load_codec(copy, meta["sha256"])
