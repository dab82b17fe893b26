"""Per-token scoring is proved against computations that do not share cae's alignment code.

* brute force: one forward per sequence step on the explicitly built prefix, reading the last position only;
* transformers' own labels-based MusicGen loss;
* audiocraft's own pattern machinery (``compute_predictions``) on the same weights as the transformers decoder;
* the authors' recipe (un-delayed codes, no BOS, ``F.cross_entropy`` per codebook).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cae.models.hf import HFMusicGen

TOL = 1e-4


def _delayed_step(codes: torch.Tensor, s: int, special: int) -> torch.Tensor:
    """Input column of step ``s`` in MusicGen's delay pattern, written out from the paper's definition:
    step 0 is BOS; codebook j at step s carries frame s - 1 - j when it exists, else the special token."""
    k_count, t_count = codes.shape
    col = torch.full((k_count,), special, dtype=torch.long)
    for j in range(k_count):
        t = s - 1 - j
        if 0 <= t < t_count:
            col[j] = codes[j, t]
    return col


def brute_force_nll(forward, codes: torch.Tensor, special: int) -> torch.Tensor:
    """-log p(codes[k, t] | prefix) with one forward per step; ``forward(prefix [1, K, S]) -> logits [1, K, S, V]``."""
    k_count, t_count = codes.shape
    out = torch.full((k_count, t_count), float("nan"))
    steps = [_delayed_step(codes, s, special) for s in range(t_count + k_count)]
    for s in range(t_count + k_count - 1):
        prefix = torch.stack(steps[: s + 1], dim=1)[None]  # [1, K, s+1]
        last = forward(prefix)[0, :, -1].double().log_softmax(-1)  # [K, V]; predicts step s+1
        for k in range(k_count):
            t = s - k  # head k at step s predicts slot k of step s+1 = frame s - k
            if 0 <= t < t_count:
                out[k, t] = -last[k, codes[k, t]]
    return out


def _hf_forward(decoder):
    def fwd(prefix):
        b, k, s = prefix.shape
        return decoder(input_ids=prefix.reshape(b * k, s)).logits.reshape(b, k, s, -1)

    return fwd


@torch.inference_mode()
def test_hf_delay_matches_brute_force(hf_full, codes):
    model = HFMusicGen.from_model(hf_full, device="cpu")
    nll = model.token_nll(codes[0])
    ref = brute_force_nll(_hf_forward(hf_full.decoder), codes[0], special=64)
    assert nll.shape == (4, 17) and nll.dtype == torch.float32
    assert not torch.isnan(ref).any()
    assert (nll - ref.float()).abs().max().item() < TOL


@torch.inference_mode()
def test_audiocraft_delay_matches_brute_force(ac_lm, codes):
    from cae.models.audiocraft import AudiocraftMusicGen

    model = AudiocraftMusicGen.from_model(None, ac_lm, device="cpu")
    nll = model.token_nll(codes[1])
    ref = brute_force_nll(lambda p: ac_lm(p, []), codes[1], special=ac_lm.special_token_id)
    assert (nll - ref.float()).abs().max().item() < TOL


@torch.inference_mode()
def test_backends_agree_on_the_same_weights(ac_lm, codes):
    from cae.models.audiocraft import AudiocraftMusicGen
    from cae.models.convert import audiocraft_to_hf_decoder

    ac = AudiocraftMusicGen.from_model(None, ac_lm, device="cpu")
    hf = HFMusicGen.from_model(audiocraft_to_hf_decoder(ac_lm), device="cpu")
    for alignment in ("delay", "paper"):
        ac.alignment = hf.alignment = alignment
        a, h = ac.token_nll(codes), hf.token_nll(codes)
        assert torch.equal(torch.isnan(a), torch.isnan(h))
        finite = ~torch.isnan(a)
        assert finite.sum() >= codes.numel() - codes.shape[0] * codes.shape[1]
        assert (a[finite] - h[finite]).abs().max().item() < TOL


@torch.inference_mode()
def test_mean_equals_transformers_labels_loss(hf_full, codes):
    model = HFMusicGen.from_model(hf_full, device="cpu")
    c = codes[2]
    k_count, t_count = c.shape
    # transformers' labels are the delayed layout without BOS: codebook k shifted right by k, pad elsewhere
    labels = torch.full((1, t_count + k_count - 1, k_count), 64)
    for k in range(k_count):
        labels[0, k : k + t_count, k] = c[k]
    loss = hf_full.decoder(labels=labels).loss
    assert abs(model.token_nll(c).mean().item() - loss.item()) < TOL


@torch.inference_mode()
def test_null_text_equals_full_model_unconditional(hf_full, codes):
    """Skipping cross-attention is the same as feeding transformers' own null (unconditional) text inputs."""
    model = HFMusicGen.from_model(hf_full, device="cpu")
    c = codes[0]
    k_count, t_count = c.shape
    uncond = hf_full.get_unconditional_inputs(num_samples=1)
    steps = torch.stack([_delayed_step(c, s, 64) for s in range(t_count + k_count - 1)], dim=1)  # [K, S]
    logits = hf_full(
        encoder_outputs=uncond.encoder_outputs, attention_mask=uncond.attention_mask, decoder_input_ids=steps
    ).logits  # [K, S, V]
    ref = torch.stack([F.cross_entropy(logits[k, k : k + t_count], c[k], reduction="none") for k in range(k_count)])
    assert (model.token_nll(c) - ref).abs().max().item() < TOL


@torch.inference_mode()
def test_paper_alignment_reproduces_authors_and_differs_from_delay(hf_full, codes):
    c = codes[1]
    paper = HFMusicGen.from_model(hf_full, device="cpu", alignment="paper").token_nll(c)
    delay = HFMusicGen.from_model(hf_full, device="cpu").token_nll(c)
    # the authors' recipe (Protocol page: Scoring): decoder on codes[..., :-1], no BOS, CE per codebook against codes[..., 1:]
    logits = hf_full.decoder(input_ids=c[:, :-1]).logits  # [K, F-1, V]
    authors = F.cross_entropy(logits.transpose(1, 2), c[:, 1:], reduction="none")  # [K, F-1]
    assert torch.isnan(paper[:, 0]).all() and not torch.isnan(paper[:, 1:]).any()
    assert (paper[:, 1:] - authors).abs().max().item() < TOL
    assert (paper[:, 1:] - delay[:, 1:]).abs().mean().item() > 0.01


@torch.inference_mode()
def test_batch_size_invariance_and_determinism(hf_full, codes):
    model = HFMusicGen.from_model(hf_full, device="cpu")
    one = model.token_nll(codes, batch_size=1)
    many = model.token_nll(codes, batch_size=3)
    single = torch.stack([model.token_nll(c) for c in codes])
    assert one.shape == (3, 4, 17)
    assert (one - many).abs().max().item() < 1e-5
    assert (one - single).abs().max().item() < 1e-5
    assert torch.equal(model.token_nll(codes), model.token_nll(codes))
    assert not torch.isnan(many).any()


@torch.inference_mode()
def test_low_precision_model_still_scores_in_fp32(hf_full, codes):
    import copy

    fp32 = HFMusicGen.from_model(hf_full, device="cpu").token_nll(codes[0])
    bf16 = HFMusicGen.from_model(copy.deepcopy(hf_full), device="cpu", dtype="bfloat16").token_nll(codes[0])
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert (bf16 - fp32).abs().mean().item() < 0.05


@torch.inference_mode()
def test_encode_shapes_batching_and_resampling(hf_full):
    import numpy as np

    model = HFMusicGen.from_model(hf_full, device="cpu")
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal((2, 32000 + 100))).astype(np.float32)
    batch = model.encode(wav, 32000)
    assert batch.shape == (2, 4, 51) and batch.dtype == torch.long  # ceil(32100 / 640) = 51 frames
    assert torch.equal(batch[1], model.encode(wav[1], 32000))
    t = np.arange(16000) / 16000
    low = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert model.encode(low, 16000).shape == (4, 50)


@torch.inference_mode()
def test_audiocraft_encode_and_score_audio(ac_codec, ac_lm):
    import numpy as np

    from cae.models.audiocraft import AudiocraftMusicGen

    model = AudiocraftMusicGen.from_model(ac_codec, ac_lm, device="cpu")
    wav = (0.1 * np.random.default_rng(1).standard_normal(16000)).astype(np.float32)
    c = model.encode(wav, 32000)
    assert c.shape == (4, 25) and int(c.max()) < 64
    assert torch.isfinite(model.token_nll(c)).all()
    assert model.decode(c).shape[0] >= 16000


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((4, 10), 64), r"\[0, 64\)"),
        (torch.full((4, 10), -1), r"\[0, 64\)"),
        (torch.zeros((3, 10), dtype=torch.long), "4 codebooks"),
        (torch.zeros((4, 10)), "integer"),
        (torch.zeros((4, 1), dtype=torch.long), "2 frames"),
        (torch.zeros((1, 1, 4, 10), dtype=torch.long), r"\[K, F\]"),
    ],
)
def test_bad_codes_are_rejected(hf_full, bad, match):
    model = HFMusicGen.from_model(hf_full, device="cpu")
    with pytest.raises(ValueError, match=match):
        model.token_nll(bad)


def test_bad_audio_is_rejected(hf_full):
    import numpy as np

    model = HFMusicGen.from_model(hf_full, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        model.encode(np.array([0.0, np.nan] * 1000, dtype=np.float32), 32000)
    with pytest.raises(ValueError, match="empty"):
        model.encode(np.zeros(0, dtype=np.float32), 32000)
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        model.encode(np.zeros((1, 2, 100), dtype=np.float32), 32000)
