"""Tiny random-weight MusicGen models of both backends, for tests and smoke runs.

They have MusicGen's structure (delay pattern, BOS = card, K = 4 codebooks, 32 kHz EnCodec with hop 640 and
non-causal convolutions plus an LSTM) at a size that runs in milliseconds. Their losses mean nothing about music;
they exist to check shapes, alignment and plumbing. Weights are seeded, so two calls give the same model. Importing
the module registers them as ``"tiny"`` and ``"tiny-audiocraft"`` (``seed=`` picks the weights).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from cae.models.audiocraft import AudiocraftMusicGen
from cae.models.base import register_model
from cae.models.hf import HFMusicGen

TINY_CARD = 64
TINY_CODEBOOKS = 4


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' notice that pad/BOS = ``card`` lies outside the vocabulary: that is MusicGen's design."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def tiny_hf_decoder_config(card: int = TINY_CARD, num_codebooks: int = TINY_CODEBOOKS, hidden: int = 32,
                           layers: int = 2, heads: int = 2) -> Any:
    """A ``MusicgenDecoderConfig`` with MusicGen's conventions (pad = BOS = ``card``)."""
    from transformers import MusicgenDecoderConfig

    return MusicgenDecoderConfig(
        vocab_size=card, num_codebooks=num_codebooks, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, ffn_dim=2 * hidden, max_position_embeddings=1024,
        pad_token_id=card, bos_token_id=card, decoder_start_token_id=card,
    )


def tiny_hf_encodec_config(card: int = TINY_CARD, num_codebooks: int = TINY_CODEBOOKS) -> Any:
    """An ``EncodecConfig`` shaped like MusicGen's 32 kHz codec (ratios 8·5·4·4 = 640, 50 Hz), but narrow."""
    from transformers import EncodecConfig

    bw = num_codebooks * math.log2(card) * 50 / 1000  # kbps giving exactly num_codebooks quantizers
    return EncodecConfig(
        sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=16, upsampling_ratios=[8, 5, 4, 4],
        codebook_size=card, codebook_dim=16, target_bandwidths=[bw], num_lstm_layers=2, use_causal_conv=False,
        normalize=False, pad_mode="reflect", norm_type="weight_norm", chunk_length_s=None,
    )


def _varied_audio(seed: int, seconds: float = 4.0, sample_rate: int = 32000) -> torch.Tensor:
    """Seeded chirps, tones and noise bursts at several levels: material to place codebook entries on."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    chirp = torch.sin(2 * torch.pi * (100 + 900 * t) * t)
    tones = sum(torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0, 495.0))
    noise = torch.randn(t.shape[0], generator=g)
    level = 10 ** (-torch.rand(t.shape[0] // 640 + 1, generator=g) * 2)  # -40..0 dB, piecewise per frame
    env = level.repeat_interleave(640)[: t.shape[0]]
    return (0.3 * chirp + 0.1 * tones + 0.2 * noise) * env


@torch.no_grad()
def init_hf_codebooks(encodec: Any, seed: int = 0) -> Any:
    """Place each residual codebook's entries on encoder outputs of :func:`_varied_audio` (a k-means++-free
    stand-in for training), so that random-weight tokens follow the audio instead of collapsing to one code."""
    g = torch.Generator().manual_seed(seed)
    residual = encodec.encoder(_varied_audio(seed)[None, None])[0].T  # [frames, dim]
    for layer in encodec.quantizer.layers:
        book = layer.codebook
        idx = torch.randint(0, residual.shape[0], (book.embed.shape[0],), generator=g)
        book.embed.copy_(residual[idx] + 1e-3 * torch.randn(book.embed.shape, generator=g))
        book.embed_avg.copy_(book.embed)
        book.inited.fill_(True)
        residual = residual - book.embed[torch.cdist(residual, book.embed).argmin(-1)]
    return encodec


def tiny_hf_musicgen(seed: int = 0, card: int = TINY_CARD, num_codebooks: int = TINY_CODEBOOKS) -> Any:
    """A random ``MusicgenForConditionalGeneration``: tiny T5 text encoder, tiny EnCodec (codebooks placed on
    encoder outputs by :func:`init_hf_codebooks`), tiny decoder."""
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration, T5Config

    _seeded(seed)
    text = T5Config(vocab_size=100, d_model=24, d_kv=8, d_ff=48, num_layers=1, num_heads=2)
    with _quiet_transformers():
        cfg = MusicgenConfig(
            text_encoder=text.to_dict(),
            audio_encoder=tiny_hf_encodec_config(card, num_codebooks).to_dict(),
            decoder=tiny_hf_decoder_config(card, num_codebooks).to_dict(),
        )
    with _quiet_transformers():
        model = MusicgenForConditionalGeneration(cfg).eval()
    init_hf_codebooks(model.audio_encoder, seed)
    return model


def tiny_audiocraft_lm(seed: int = 0, card: int = TINY_CARD, num_codebooks: int = TINY_CODEBOOKS,
                       dim: int = 32, layers: int = 2, heads: int = 2) -> Any:
    """A random audiocraft ``LMModel`` with MusicGen's transformer settings and no conditioners."""
    from audiocraft.models.lm import LMModel
    from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
    from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider

    _seeded(seed)
    lm = LMModel(
        pattern_provider=DelayedPatternProvider(n_q=num_codebooks),
        condition_provider=ConditioningProvider({}),
        fuser=ConditionFuser({"cross": [], "prepend": [], "sum": []}),
        n_q=num_codebooks, card=card, dim=dim, num_heads=heads, num_layers=layers, hidden_scale=2,
        norm="layer_norm", norm_first=True, bias_proj=False, bias_ff=False, bias_attn=False, causal=True,
        cross_attention=False, positional_embedding="sin", activation="gelu", memory_efficient=True, dropout=0.0,
    )
    return lm.eval()


def tiny_audiocraft_codec(seed: int = 0, card: int = TINY_CARD, num_codebooks: int = TINY_CODEBOOKS) -> Any:
    """A random audiocraft ``EncodecModel`` at 32 kHz, 50 Hz (ratios 8·5·4·4), non-causal with an LSTM."""
    from audiocraft.models.encodec import EncodecModel
    from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
    from audiocraft.quantization.vq import ResidualVectorQuantizer

    _seeded(seed)
    kw = dict(channels=1, dimension=16, n_filters=4, n_residual_layers=1, ratios=[8, 5, 4, 4], causal=False, lstm=2)
    quantizer = ResidualVectorQuantizer(dimension=16, n_q=num_codebooks, bins=card)
    quantizer.train()
    quantizer(torch.randn(4, 16, 64), 50)  # k-means initialisation of the codebooks
    model = EncodecModel(SEANetEncoder(**kw), SEANetDecoder(**kw), quantizer, frame_rate=50, sample_rate=32000,
                         channels=1)
    return model.eval()


def _build_tiny(**kwargs: Any) -> HFMusicGen:
    kwargs.setdefault("model_id", "tiny")
    return HFMusicGen.from_model(tiny_hf_musicgen(seed=kwargs.pop("seed", 0)), **kwargs)


def _build_tiny_audiocraft(**kwargs: Any) -> AudiocraftMusicGen:
    seed = kwargs.pop("seed", 0)
    kwargs.setdefault("model_id", "tiny-audiocraft")
    return AudiocraftMusicGen.from_model(tiny_audiocraft_codec(seed=seed + 1), tiny_audiocraft_lm(seed=seed), **kwargs)


# ``"tiny"`` (transformers) and ``"tiny-audiocraft"`` for :func:`cae.load_model` (``overwrite``: a reloaded module
# replaces its own earlier functions)
register_model("tiny", _build_tiny, overwrite=True)
register_model("tiny-audiocraft", _build_tiny_audiocraft, overwrite=True)
