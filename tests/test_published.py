"""The paper's checkpoints as @random architectures: shapes and parameter counts against the published values,
offline building, marking in results, and the cost model against torch's own FLOP counter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import cae
from cae import cost
from cae.errors import ModelError
from cae.models import published as P

# (hidden, layers, heads) as transformers' and audiocraft's conversion scripts and configs give them
PUBLISHED = {
    "facebook/musicgen-small": (1024, 24, 16),
    "facebook/musicgen-medium": (1536, 48, 24),
    "facebook/musicgen-large": (2048, 48, 32),
    "facebook/musicgen-melody": (1536, 48, 24),
}
K, V = 4, 2048


def hf_decoder_params(d: int, layers: int) -> int:
    """MusicgenForCausalLM by hand: K embeddings of V+1 rows (the special token), per layer self- and
    cross-attention (4 d² each, no biases), a 4d feed-forward (8 d², no biases) and three layer norms; the final
    norm; K bias-free heads."""
    return K * (V + 1) * d + layers * (16 * d * d + 3 * 2 * d) + 2 * d + K * d * V


def audiocraft_lm_params(d: int, layers: int) -> int:
    """audiocraft's LMModel by hand (no cross-attention: Melody prepends its conditions): per layer fused qkv and
    output projection (4 d²), feed-forward (8 d²), two layer norms; the output norm; embeddings and heads."""
    return K * (V + 1) * d + layers * (12 * d * d + 2 * 2 * d) + 2 * d + K * d * V


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_shipped_configs_are_the_published_architectures(model_id):
    arch = P.architecture(model_id)
    assert (arch.hidden, arch.layers, arch.heads) == PUBLISHED[model_id]
    enc = P.encodec_config()
    hop = int(np.prod(enc.upsampling_ratios))
    assert (enc.sampling_rate, hop, enc.codebook_size, enc.num_filters) == (32000, 640, 2048, 64)
    # 2.2 kbps is exactly 4 codebooks of 11 bits at 50 frames/s
    assert enc.target_bandwidths == [2.2] and math.isclose(K * math.log2(V) * 32000 / hop, 2200)
    if arch.backend == "transformers":
        dec = P.decoder_config(arch)
        assert (dec.hidden_size, dec.num_hidden_layers, dec.num_attention_heads, dec.ffn_dim) == (
            *PUBLISHED[model_id], 4 * PUBLISHED[model_id][0])
        assert (dec.vocab_size, dec.num_codebooks, dec.pad_token_id, dec.bos_token_id) == (V, K, V, V)
    else:
        cfg = P.audiocraft_config(arch)
        assert (cfg.transformer_lm.dim, cfg.transformer_lm.num_layers, cfg.transformer_lm.num_heads) == PUBLISHED[model_id]
        assert list(cfg.fuser.prepend) == ["self_wav", "description"] and not cfg.fuser.cross


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_parameter_counts_match_a_count_by_hand(model_id):
    d, layers, _ = PUBLISHED[model_id]
    counts = P.architecture_parameters(model_id + "@random")
    if P.architecture(model_id).backend == "transformers":
        assert counts["decoder"] == hf_decoder_params(d, layers)
        assert counts["conditioners"] == 768 * d + d  # enc_to_dec_proj: T5-base width → decoder width, with bias
    else:
        assert counts["decoder"] == audiocraft_lm_params(d, layers)
    # t5-base's encoder: 32128 × 768 embeddings, 12 blocks of attention (4 · 768²) + relu FFN (2 · 768 · 3072) + 2
    # norms, the relative-position table, the final norm
    assert counts["text_encoder"] == 32128 * 768 + 12 * (4 * 768**2 + 2 * 768 * 3072 + 2 * 768) + 32 * 12 + 768
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_nominal_sizes():
    """The model cards' sizes: small's 300M is its self-attention and feed-forward weights, large's 3.3B its whole
    decoder; Melody's 1.5B its decoder (no cross-attention)."""
    small = P.ARCHITECTURES["facebook/musicgen-small"]
    assert abs(small.layers * 12 * small.hidden**2 / 300e6 - 1) < 0.01
    assert abs(P.architecture_parameters("facebook/musicgen-large@random")["decoder"] / 3.3e9 - 1) < 0.02
    assert abs(P.architecture_parameters("audiocraft:facebook/musicgen-melody@random")["decoder"] / 1.5e9 - 1) < 0.1


def test_random_ids_need_the_right_backend_and_no_revision():
    with pytest.raises(ModelError, match="audiocraft:facebook/musicgen-melody@random"):
        cae.load_model("facebook/musicgen-melody@random")
    with pytest.raises(ModelError, match="known: facebook/musicgen-small@random"):
        cae.load_model("facebook/musicgen-xl@random")
    with pytest.raises(ModelError, match="no revision"):
        cae.load_model("facebook/musicgen-small@random", revision="main")


@pytest.mark.slow
def test_small_at_random_builds_offline_scores_and_is_marked(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = cae.load_model("facebook/musicgen-small@random", device="cpu")
    assert sum(p.numel() for p in model.decoder.parameters()) == hf_decoder_params(1024, 24)
    assert (model.sample_rate, model.frame_rate, model.num_codebooks, model.card) == (32000, 50.0, K, V)
    assert model.context_frames == 1500
    rng = np.random.default_rng(0)
    t = np.arange(64000) / 32000
    wav = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 1) + 0.1 * rng.standard_normal(64000)).astype(np.float32)
    codes = model.encode(wav, 32000)
    assert codes.shape == (K, 100)
    assert len(set(codes[0].tolist())) > 10  # codebooks placed on encoder outputs: tokens follow the audio
    nll = model.token_nll(codes[:, :30])
    assert nll.shape == (K, 30) and torch.isfinite(nll).all()
    info = model.info().as_dict()
    assert info["model_id"] == "facebook/musicgen-small@random" and info["random_weights"] is True
    assert info["revision"] == "random:seed=0"
    again = cae.load_model("facebook/musicgen-small@random", device="cpu")
    assert torch.equal(again.token_nll(codes[:, :30]), nll)  # seeded: the same weights
    other = cae.load_model("facebook/musicgen-small@random", device="cpu", seed=1)
    assert not torch.equal(other.token_nll(codes[:, :30]), nll)
    assert info["weights"] == again.weights_digest() != other.weights_digest()  # a recipe, not 1.4 GB hashed
    with pytest.raises(ModelError, match="text prompts"):
        model.token_nll(codes[:, :30], prompt="jazz")


def test_melody_null_conditions_are_prepended():
    """Melody's real conditioning stack (one transformer layer, real width): the null chroma becomes 235 frames
    and the null text one zero token, prepended to the tokens; a text prompt raises."""
    from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout, ConditioningAttributes, WavCondition

    arch = P.architecture("audiocraft:facebook/musicgen-melody@random")
    lm = P._audiocraft_lm(arch, layers=1)
    attrs = [ConditioningAttributes(text={"description": None},
                                    wav={"self_wav": WavCondition(torch.zeros(1, 1, 1), torch.tensor([0]),
                                                                  sample_rate=[32000], path=[None])})]
    attrs = ClassifierFreeGuidanceDropout(p=1.0)(attrs)
    conds = lm.condition_provider(lm.condition_provider.tokenize(attrs))
    chroma, _ = conds["self_wav"]
    text, text_mask = conds["description"]
    assert chroma.shape == (1, 235, 1536) and text.shape == (1, 1, 1536)
    assert chroma.shape[1] + text.shape[1] == cost.MELODY_PREFIX
    assert not text.any() and not text_mask.any()  # the null text contributes a zero vector
    with pytest.raises(ModelError, match="text prompts"):
        lm.condition_provider.tokenize([ConditioningAttributes(text={"description": "jazz"},
                                                               wav=attrs[0].wav)])


def test_random_weights_note_names_the_models():
    class M:
        def __init__(self, mid, rnd):
            self.model_id, self.random_weights = mid, rnd

    from cae.study import random_weights_note

    assert random_weights_note([M("reference", False)]) is None
    note = random_weights_note([M("reference", False), M("facebook/musicgen-small@random", True)])
    assert "`facebook/musicgen-small@random` is" in note and "means nothing about music" in note


# ---- cost model ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", ["facebook/musicgen-small", "facebook/musicgen-large"])
def test_decoder_flops_equal_torch_flop_counter(model_id):
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import MusicgenForCausalLM

    arch = P.architecture(model_id)
    with torch.device("meta"):
        dec = MusicgenForCausalLM(P.decoder_config(arch)).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            dec(input_ids=torch.zeros(K, 103, dtype=torch.long))
    assert math.isclose(cost.decoder_gflop(arch, 103), fc.get_total_flops() / 1e9, rel_tol=1e-9)


@pytest.mark.slow
def test_encoder_flops_equal_torch_flop_counter():
    """The formula walks the config; torch counts the convolutions actually run (it does not count the LSTM)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import EncodecModel

    codec = EncodecModel(P.encodec_config()).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        codec.encoder(torch.zeros(1, 1, 32000))
    convs = sum(v for k, v in fc.get_flop_counts()["Global"].items() if "convolution" in str(k))
    assert math.isclose(cost.encoder_gflop(1.0, lstm=False), convs / 1e9, rel_tol=1e-3)


def test_unit_cost_scales_with_length_and_dtype():
    a = cost.unit_cost("facebook/musicgen-small@random", 15.0, "float32")
    b = cost.unit_cost("facebook/musicgen-small@random", 15.0, "bfloat16")
    assert a.positions == 750 + 3 and math.isclose(a.score_gflop, b.score_gflop)
    # half precision halves the decoder and its projection, not the float32 codec
    assert a.weights_gb - b.weights_gb == pytest.approx(
        (P.architecture_parameters("facebook/musicgen-small@random")["decoder"] + 1024 * 769) * 2 / 1e9)
    m = cost.unit_cost("audiocraft:facebook/musicgen-melody@random", 15.0)
    assert m.positions == 753 + cost.MELODY_PREFIX
    long = cost.unit_cost("facebook/musicgen-small@random", 30.0)
    ratio = long.positions / a.positions
    assert ratio < long.score_gflop / a.score_gflop < ratio**2  # linear in the weights, quadratic in attention
