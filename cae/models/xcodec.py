"""X-Codec (``xcodec_mini_infer``), YuE's audio tokenizer: 16 kHz audio → ``[K, F]`` codes, 50 frames/s, 1024 codes.

The codec (Ye et al., 2024, "Codec does matter") encodes each 20 ms frame twice and quantizes the two together:

* an **acoustic** branch of DAC's design (Kumar et al., 2023): a 7-tap convolution to 64 channels, then one block
  per stride of 8 · 5 · 4 · 2 (three dilated residual units with Snake activations, then a strided convolution that
  doubles the width), then a 3-tap convolution to ``D = 256`` channels: hop 320 samples, 50 frames/s at 16 kHz;
* a **semantic** branch: a HuBERT-base model (768 wide, 12 layers) on the audio padded by 160 samples each side;
  its 13 hidden states (the projected features and each layer's output) are averaged and passed through a small
  convolutional encoder (RepCodec's: a 3-tap convolution and two blocks of residual units, 768 channels, stride 1);
* the two are concatenated (``D + 768 = 1024`` channels), projected by a linear layer (``fc_prior``) and quantized
  by a residual VQ of 12 codebooks × 1024 entries (6 kbps). YuE's stage 2 uses the first 8 (4 kbps); in a residual
  VQ the first codebooks do not depend on how many follow, so encoding 8 gives the first 8 of 12.

Shapes: ``encode`` takes ``[B, N]`` float32 audio at 16 kHz and returns LongTensor ``[B, K, F]`` with
``F = ceil(N / 320)``: the audio is zero-padded at the end to a whole number of frames, where both branches give
exactly ``N / 320`` frames. For such lengths (a 15 s clip is 750 frames) this is xcodec's own computation; for
other lengths xcodec instead re-runs its acoustic branch on audio padded by 160 samples each side, which can give
one frame more and shifts that branch by half a frame, so tokens there differ from xcodec's. ``decode`` maps codes back through the quantizer, ``fc_post2`` and
DAC's decoder.

The modules are our own, inference-only, with the parameter names of the published checkpoint
(``final_ckpt/ckpt_00360000.pth``, state dict under ``codec_model``): weight-normalised convolutions are stored as
plain convolutions and :func:`load_xcodec_state` folds the checkpoint's ``weight_g`` / ``weight_v`` into them.
Loading is strict: every missing or unexpected key is named. HuBERT is transformers' ``HubertModel``. The names were
transcribed from the public model code, not checked against the checkpoint (which cannot be downloaded here).

Random weights (:func:`random_xcodec`): every module is drawn from a seed and the codebooks are placed on the
quantizer's inputs for varied test audio (as for the ``@random`` MusicGen EnCodec), so tokens follow the audio.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cae.errors import ModelError

#: Samples per frame at 16 kHz (8 · 5 · 4 · 2).
HOP = 320
#: Width of the semantic features (HuBERT-base).
SEMANTIC_DIM = 768


def config(name: str = "xcodec-mini.json") -> dict[str, Any]:
    """The shipped codec configuration (``cae/models/configs/``), without its ``_sources`` notes."""
    cfg = json.loads(resources.files("cae.models").joinpath("configs", name).read_text())
    cfg.pop("_sources", None)
    return cfg


# ---- DAC's acoustic encoder and decoder ------------------------------------------------------------------------------
class Snake1d(nn.Module):
    """``x + sin²(α x) / α`` per channel (DAC's periodic activation), ``α`` of shape ``[1, C, 1]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    """Snake, 7-tap dilated convolution, Snake, 1×1 convolution, plus the input."""

    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(Snake1d(dim), nn.Conv1d(dim, dim, 7, dilation=dilation, padding=3 * dilation),
                                   Snake1d(dim), nn.Conv1d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        trim = (x.shape[-1] - y.shape[-1]) // 2
        return (x[..., trim:-trim] if trim > 0 else x) + y


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9) at ``dim / 2`` channels, then a stride-``s`` convolution to ``dim``."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            ResidualUnit(dim // 2, 1), ResidualUnit(dim // 2, 3), ResidualUnit(dim // 2, 9), Snake1d(dim // 2),
            nn.Conv1d(dim // 2, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class AcousticEncoder(nn.Module):
    """DAC's encoder: ``[B, 1, N]`` → ``[B, d_latent, N / prod(strides)]``."""

    def __init__(self, width: int, strides: list[int], d_latent: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, width, 7, padding=3)]
        for stride in strides:
            width *= 2
            layers.append(EncoderBlock(width, stride))
        layers += [Snake1d(width), nn.Conv1d(width, d_latent, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DecoderBlock(nn.Module):
    """Snake, a stride-``s`` transposed convolution, three residual units."""

    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(input_dim),
            nn.ConvTranspose1d(input_dim, output_dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2),
                               output_padding=stride % 2),
            ResidualUnit(output_dim, 1), ResidualUnit(output_dim, 3), ResidualUnit(output_dim, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class AcousticDecoder(nn.Module):
    """DAC's decoder: ``[B, D, F]`` → ``[B, 1, F · prod(rates)]`` in ``[-1, 1]``."""

    def __init__(self, input_channel: int, channels: int, rates: list[int]):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(input_channel, channels, 7, padding=3)]
        out = channels
        for i, stride in enumerate(rates):
            out = channels // 2 ** (i + 1)
            layers.append(DecoderBlock(channels // 2**i, out, stride))
        layers += [Snake1d(out), nn.Conv1d(out, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---- RepCodec's semantic encoder ------------------------------------------------------------------------------------
class _Conv(nn.Module):
    """A 'same'-padded convolution stored as ``.conv`` (RepCodec's wrapper, kept for the checkpoint's names)."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, padding=(kernel - 1) // 2 * dilation, dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _SemanticUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.activation = nn.ELU()
        self.conv1 = _Conv(dim, dim, 3, dilation, bias=False)
        self.conv2 = _Conv(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.activation(self.conv1(self.activation(x))))


class _SemanticBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.res_units = nn.ModuleList([_SemanticUnit(dim, 1), _SemanticUnit(dim, 1)])
        self.conv = _Conv(dim, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.res_units:
            x = unit(x)
        return self.conv(x)


class SemanticEncoder(nn.Module):
    """``[B, 768, F]`` → ``[B, 768, F]``: a 3-tap convolution, then two blocks of residual units (stride 1)."""

    def __init__(self, dim: int = SEMANTIC_DIM):
        super().__init__()
        self.conv = _Conv(dim, dim, 3, bias=False)
        self.conv_blocks = nn.ModuleList([_SemanticBlock(dim), _SemanticBlock(dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        for block in self.conv_blocks:
            x = block(x)
        return x


# ---- residual VQ ----------------------------------------------------------------------------------------------------
class _Codebook(nn.Module):
    def __init__(self, dim: int, bins: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed", torch.zeros(bins, dim))
        self.register_buffer("embed_avg", torch.zeros(bins, dim))


class _VQ(nn.Module):
    def __init__(self, dim: int, bins: int):
        super().__init__()
        self._codebook = _Codebook(dim, bins)


class _RVQStack(nn.Module):
    def __init__(self, dim: int, bins: int, n_q: int):
        super().__init__()
        self.layers = nn.ModuleList([_VQ(dim, bins) for _ in range(n_q)])


class ResidualVQ(nn.Module):
    """EnCodec-style residual VQ with Euclidean codebooks (``vq.layers[i]._codebook.embed``: ``[bins, dim]``)."""

    def __init__(self, dim: int, bins: int, n_q: int):
        super().__init__()
        self.vq = _RVQStack(dim, bins, n_q)

    def books(self, n_q: int) -> list[torch.Tensor]:
        return [layer._codebook.embed for layer in self.vq.layers[:n_q]]

    def encode(self, e: torch.Tensor, n_q: int) -> torch.Tensor:
        """``[B, dim, F]`` → LongTensor ``[B, n_q, F]``: at each level the nearest entry to the residual."""
        residual = e.transpose(1, 2)  # [B, F, dim]
        codes = []
        for book in self.books(n_q):
            dist = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ book.T + book.pow(2).sum(-1)
            idx = dist.argmin(-1)
            codes.append(idx)
            residual = residual - book[idx]
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """LongTensor ``[B, K, F]`` → ``[B, dim, F]``: the sum of the chosen entries."""
        out = sum(book[codes[:, k]] for k, book in enumerate(self.books(codes.shape[1])))
        return out.transpose(1, 2)


# ---- the codec --------------------------------------------------------------------------------------------------------
class XCodec(nn.Module):
    """X-Codec as YuE uses it (module docstring); submodule names follow the published ``SoundStream``."""

    def __init__(self, cfg: Mapping[str, Any] | None = None):
        super().__init__()
        from transformers import HubertConfig, HubertModel

        cfg = dict(cfg or config())
        self.cfg = cfg
        self.sample_rate = int(cfg["sample_rate"])
        self.hop = int(math.prod(cfg["ratios"]))
        self.frame_rate = self.sample_rate / self.hop
        d, s = int(cfg["D"]), int(cfg["semantic"]["hidden_size"])  # s = 768 in the published codec
        self.encoder = AcousticEncoder(int(cfg["acoustic_width"]), list(cfg["ratios"]), d)
        self.encoder_semantic = SemanticEncoder(s)
        self.semantic_model = HubertModel(HubertConfig(**cfg["semantic"])).eval()
        self.fc_prior = nn.Linear(d + s, d + s)
        self.fc_post2 = nn.Linear(d + s, d)
        self.quantizer = ResidualVQ(d + s, int(cfg["bins"]), int(cfg["n_q"]))
        self.decoder_2 = AcousticDecoder(d, int(cfg["decoder_channels"]), list(cfg["ratios"]))

    def semantic_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` → ``[B, F, 768]``: the mean of HuBERT's hidden states on the audio padded by 160 each side."""
        states = self.semantic_model(F.pad(x, (self.hop // 2, self.hop // 2)), output_hidden_states=True).hidden_states
        return torch.stack(states, dim=1).mean(1)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` (``N`` a multiple of the hop) → the quantizer's input ``[B, D + 768, N / hop]``."""
        semantic = self.encoder_semantic(self.semantic_features(x).transpose(1, 2))
        acoustic = self.encoder(x[:, None])
        if acoustic.shape[-1] != semantic.shape[-1]:  # cannot happen for N a multiple of the hop (module docstring)
            raise ModelError(f"xcodec branches disagree: {acoustic.shape[-1]} acoustic, {semantic.shape[-1]} semantic frames")
        e = torch.cat([acoustic, semantic], dim=1)
        return self.fc_prior(e.transpose(1, 2)).transpose(1, 2)

    def encode(self, wav: torch.Tensor, n_q: int = 8) -> torch.Tensor:
        """``[B, N]`` float audio at 16 kHz → LongTensor ``[B, n_q, ceil(N / 320)]``."""
        pad = (-wav.shape[-1]) % self.hop
        x = F.pad(wav.float(), (0, pad))
        return self.quantizer.encode(self.latent(x), n_q)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """LongTensor ``[B, K, F]`` → ``[B, F · 320]`` audio."""
        q = self.quantizer.decode(codes)
        return self.decoder_2(self.fc_post2(q.transpose(1, 2)).transpose(1, 2))[:, 0]


def load_xcodec_state(codec: XCodec, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Load a published state dict strictly: fold weight normalisation, then refuse any missing or unexpected key.

    ``weight_g`` / ``weight_v`` pairs become ``weight = g · v / ‖v‖`` (norm over every dimension but the first), the
    form :class:`XCodec` stores; HuBERT's positional convolution keeps its parametrisation (``original0`` / ``1``).
    Keys of parts :class:`XCodec` does not build (the semantic decoder and ``fc_post1``, used only in training) are
    dropped and listed in the error only if something else is wrong.
    """
    ours = codec.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g") or key.endswith(".weight_v"):
            base = key[: -len(".weight_g")]
            if f"{base}.parametrizations.weight.original0" in ours:
                out[f"{base}.parametrizations.weight.original{0 if key.endswith('_g') else 1}"] = value
            elif key.endswith(".weight_v"):
                g = state.get(f"{base}.weight_g")
                if g is None:
                    raise ModelError(f"{source}: {key} has no matching {base}.weight_g")
                dims = tuple(range(1, value.dim()))
                out[f"{base}.weight"] = g * value / value.norm(dim=dims, keepdim=True)
            continue
        if key.startswith(("decoder_semantic.", "fc_post1.")):
            continue
        out[key] = value
    missing = sorted(set(ours) - set(out))
    unexpected = sorted(set(out) - set(ours))
    if missing or unexpected:
        raise ModelError(f"{source}: the xcodec state dict does not match the architecture: "
                         f"missing {len(missing)} key(s) {missing[:20]}; unexpected {len(unexpected)} key(s) {unexpected[:20]}")
    wrong = [k for k in ours if tuple(ours[k].shape) != tuple(out[k].shape)]
    if wrong:
        raise ModelError(f"{source}: shape mismatch for {wrong[:20]}, e.g. {wrong[0]}: checkpoint "
                         f"{tuple(out[wrong[0]].shape)}, architecture {tuple(ours[wrong[0]].shape)}")
    codec.load_state_dict(out, strict=True)


@torch.no_grad()
def random_xcodec(seed: int = 0, cfg: Mapping[str, Any] | None = None) -> XCodec:
    """An :class:`XCodec` with weights drawn from ``seed`` and codebooks placed near its own latents of varied audio."""
    from cae.models.tiny import _quiet_transformers, _varied_audio

    torch.manual_seed(seed)
    with _quiet_transformers():
        codec = XCodec(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    audio = _varied_audio(seed, seconds=8.0, sample_rate=codec.sample_rate)
    residual = codec.latent(audio[None, : audio.shape[0] // codec.hop * codec.hop])[0].T  # [frames, dim]
    for layer in codec.quantizer.vq.layers:
        book = layer._codebook
        idx = torch.randint(0, residual.shape[0], (book.embed.shape[0],), generator=g)
        # half a latent, half noise of the residual's scale: entries near the data but not on it, so that every
        # level keeps a residual to quantize (entries copied exactly would leave the later levels nothing)
        noise = torch.randn(book.embed.shape, generator=g) * residual.std(0)
        book.embed.copy_(0.5 * residual[idx] + 0.5 * noise)
        book.embed_avg.copy_(book.embed)
        residual = residual - book.embed[torch.cdist(residual, book.embed).argmin(-1)]
    return codec
