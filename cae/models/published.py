"""The paper's four MusicGen checkpoints as architectures: ``<id>@random`` builds one offline with seeded weights.

``load_model("facebook/musicgen-small@random")`` (or ``-medium``, ``-large``, and
``"audiocraft:facebook/musicgen-melody@random"``) builds the *published* architecture from the configs shipped in
``cae/models/configs/`` (kilobytes, no weights): the 32 kHz EnCodec (ratios 8·5·4·4, 64 filters, 4 × 2048
codebooks, 50 frames/s), the decoder at its real width and depth, and — for Melody — audiocraft's own conditioning
stack (a chroma and a T5 text condition, both *prepended* to the tokens). The weights are random, drawn from a
seed, so nothing has to be downloaded. Such a model exercises every code path of the real checkpoint at its real
size, memory and speed — shapes, codebook counts, delay pattern, the incremental encoder, prefix reuse — but **its
losses mean nothing about music**. Its id keeps the ``@random`` suffix in every result row, its revision reads
``random:seed=<seed>`` and its weights digest is the recipe (:func:`random_weights_digest`).

What is not built, and why:

* the T5 text encoder of small / medium / large: null-conditioned scoring skips cross-attention (see
  :mod:`cae.models.hf`), so a text prompt raises; :func:`architecture_parameters` still counts it;
* Melody's stem separator (demucs ``htdemucs``) and T5 vocabulary: the null chroma is computed from a one-sample
  silent wave and never reaches demucs, and the null text is empty. A random T5-base encoder is built (its output
  is masked to zero for the null text, as in the real model); a real melody or text prompt raises.
* the stereo checkpoints (8 codebooks, two channels): scoring is mono.

The EnCodec codebooks are placed on encoder outputs of varied test audio (:func:`cae.models.tiny.init_hf_codebooks`)
so that random-weight tokens follow the audio instead of collapsing to one code.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch

from cae.errors import ModelError
from cae.models.audiocraft import AudiocraftMusicGen
from cae.models.base import MusicLM, register_backend
from cae.models.hf import HFMusicGen
from cae.models.tiny import _quiet_transformers, init_hf_codebooks

#: Suffix of a model id that asks for the architecture with seeded random weights.
RANDOM_SUFFIX = "@random"
#: MusicGen was trained on 30 s segments: 1500 frames at 50 Hz.
CONTEXT_FRAMES = 1500
#: Version of the way :func:`build_random` draws weights from a seed (its RNG calls, the codebook placement of
#: :func:`cae.models.tiny.init_hf_codebooks`); part of :func:`random_weights_digest`, so bump it when a seed would
#: give other weights.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Architecture:
    """One published MusicGen checkpoint's shape.

    Attributes:
        model_id: the hub id.
        backend: ``"transformers"`` or ``"audiocraft"`` (the backend the paper's authors scored it with).
        hidden, layers, heads: decoder width, depth and attention heads (feed-forward width ``4 * hidden``).
        nominal: the size the model card gives.
        conditioning: ``"cross"`` (T5 states through cross-attention) or ``"prepend"`` (chroma + T5 prepended).
        config: the shipped config file in ``cae/models/configs/``.
    """

    model_id: str
    backend: str
    hidden: int
    layers: int
    heads: int
    nominal: str
    conditioning: str
    config: str
    num_codebooks: int = 4
    card: int = 2048
    sample_rate: int = 32000
    frame_rate: float = 50.0

    @property
    def name(self) -> str:
        """The id as :func:`cae.load_model` takes it, with ``@random``."""
        prefix = "audiocraft:" if self.backend == "audiocraft" else ""
        return f"{prefix}{self.model_id}{RANDOM_SUFFIX}"


ARCHITECTURES: dict[str, Architecture] = {
    a.model_id: a
    for a in (
        Architecture("facebook/musicgen-small", "transformers", 1024, 24, 16, "300M", "cross", "musicgen-small.json"),
        Architecture("facebook/musicgen-medium", "transformers", 1536, 48, 24, "1.5B", "cross", "musicgen-medium.json"),
        Architecture("facebook/musicgen-large", "transformers", 2048, 48, 32, "3.3B", "cross", "musicgen-large.json"),
        Architecture("facebook/musicgen-melody", "audiocraft", 1536, 48, 24, "1.5B", "prepend", "musicgen-melody.yaml"),
    )
}


def is_random(name: str) -> bool:
    """Whether a model name asks for seeded random weights (``…@random``)."""
    return str(name).endswith(RANDOM_SUFFIX)


def architecture(name: str) -> Architecture:
    """The architecture behind ``name`` (``facebook/musicgen-small``, ``audiocraft:…@random``, …).

    >>> architecture("audiocraft:facebook/musicgen-melody@random").hidden
    1536
    """
    key = str(name).removeprefix("audiocraft:").removeprefix("hf:").removesuffix(RANDOM_SUFFIX)
    if key not in ARCHITECTURES:
        raise ModelError(f"no shipped architecture for {name!r}; known: {', '.join(a.name for a in ARCHITECTURES.values())}")
    return ARCHITECTURES[key]


def _config_text(filename: str) -> str:
    return resources.files("cae.models").joinpath("configs", filename).read_text()


def _json(filename: str) -> dict[str, Any]:
    return json.loads(_config_text(filename))


def encodec_config() -> Any:
    """transformers ``EncodecConfig`` of ``facebook/encodec_32khz`` (MusicGen's codec)."""
    from transformers import EncodecConfig

    return EncodecConfig(**{k: v for k, v in _json("encodec_32khz.json").items() if k != "model_type"})


def t5_config() -> Any:
    """transformers ``T5Config`` of ``t5-base`` (MusicGen's text encoder)."""
    from transformers import T5Config

    return T5Config(**{k: v for k, v in _json("t5-base.json").items() if k != "model_type"})


def decoder_config(arch: Architecture) -> Any:
    """transformers ``MusicgenDecoderConfig`` of a small / medium / large checkpoint."""
    from transformers import MusicgenDecoderConfig

    if arch.backend != "transformers":
        raise ModelError(f"{arch.model_id} is built with audiocraft; see audiocraft_config()")
    spec = _json(arch.config)["decoder"]
    return MusicgenDecoderConfig(**{k: v for k, v in spec.items() if k != "model_type"})


def musicgen_config(arch: Architecture) -> Any:
    """The full transformers ``MusicgenConfig`` (text encoder, codec, decoder) of a checkpoint."""
    from transformers import MusicgenConfig

    spec = _json(arch.config)
    return MusicgenConfig(
        text_encoder=t5_config().to_dict(), audio_encoder=encodec_config().to_dict(),
        decoder=decoder_config(arch).to_dict(),
        decoder_start_token_id=spec["decoder_start_token_id"], pad_token_id=spec["pad_token_id"],
    )


def audiocraft_config(arch: Architecture, device: str | torch.device = "cpu") -> Any:
    """audiocraft's (OmegaConf) model config of an audiocraft-built checkpoint (Melody)."""
    from omegaconf import OmegaConf

    if arch.backend != "audiocraft":
        raise ModelError(f"{arch.model_id} is built with transformers; see musicgen_config()")
    cfg = OmegaConf.create(_config_text(arch.config))
    cfg.device = str(torch.device(device))
    return cfg


def architecture_parameters(name: str, *, part: str | None = None) -> dict[str, int]:
    """Parameter counts of the published architecture, built on the ``meta`` device (no memory, no weights; Melody,
    whose audiocraft conditioners run code at construction, is built with one and two layers on the CPU and
    extrapolated).

    Returns ``{"decoder": …, "codec": …, "text_encoder": …, "conditioners": …, "total": …}`` (parts that an
    architecture lacks are 0); ``decoder`` is the transformer LM with its embeddings and output heads (for Melody,
    audiocraft's ``LMModel`` without its conditioners), ``text_encoder`` the T5 encoder, ``conditioners`` Melody's
    condition projections and chroma extractor.
    """
    counts = _parameters(architecture(name).model_id)
    return dict(counts) if part is None else {part: counts[part]}


@functools.lru_cache(maxsize=None)
def _parameters(model_id: str) -> dict[str, int]:
    """The counts behind :func:`architecture_parameters` (cached: Melody's are built on the CPU)."""
    arch = ARCHITECTURES[model_id]
    counts = {"decoder": 0, "codec": 0, "text_encoder": 0, "conditioners": 0}
    with torch.device("meta"), _quiet_transformers():
        from transformers import EncodecModel, T5EncoderModel

        counts["codec"] = sum(p.numel() for p in EncodecModel(encodec_config()).parameters())
        counts["text_encoder"] = sum(p.numel() for p in T5EncoderModel(t5_config()).parameters())
        if arch.backend == "transformers":
            from transformers import MusicgenForConditionalGeneration

            full = MusicgenForConditionalGeneration(musicgen_config(arch))
            counts["decoder"] = sum(p.numel() for p in full.decoder.parameters())
            counts["conditioners"] = sum(p.numel() for p in full.enc_to_dec_proj.parameters())
    if arch.backend == "audiocraft":
        # audiocraft's conditioners run code at construction (so no meta device): build the model with one and with
        # two transformer layers on the CPU and extrapolate, which is exact because the layers are identical
        one, two = (_audiocraft_lm(arch, layers=n, counting=True) for n in (1, 2))
        cond = sum(p.numel() for p in one.condition_provider.parameters())
        per_layer = sum(p.numel() for p in two.transformer.parameters()) - sum(p.numel() for p in one.transformer.parameters())
        counts["decoder"] = sum(p.numel() for p in one.parameters()) - cond + (arch.layers - 1) * per_layer
        counts["conditioners"] = cond
    counts["total"] = sum(counts.values())
    return counts


# ---- building ---------------------------------------------------------------------------------------------------
class _NullOnlyTokenizer:
    """Stands in for the T5 vocabulary of an ``@random`` Melody: tokenises the null (empty) text only, as T5 does
    (one end-of-sequence token, id 1; the conditioner masks it to zero)."""

    def __call__(self, texts: list[str], **_: Any) -> Any:
        from transformers import BatchEncoding

        if any(t for t in texts):
            raise ModelError("an @random model has no T5 vocabulary: text prompts need the real checkpoint")
        ones = torch.ones((len(texts), 1), dtype=torch.long)
        return BatchEncoding({"input_ids": ones.clone(), "attention_mask": ones.clone()})


class _NoStemSeparator:
    """Stands in for demucs ``htdemucs`` in an ``@random`` Melody. The null chroma (a one-sample silent wave) never
    reaches the separator; a real melody condition would, and raises."""

    sources = ["drums", "bass", "other", "vocals"]  # htdemucs's stem order (the conditioner picks vocals + other)
    samplerate = 44100
    audio_channels = 2

    def to(self, *_: Any, **__: Any) -> _NoStemSeparator:
        return self

    def __call__(self, *_: Any, **__: Any) -> Any:
        raise ModelError("an @random Melody has no stem separator: melody conditioning needs the real checkpoint")


@contextlib.contextmanager
def _offline_conditioners(seed: int, counting: bool = False) -> Iterator[None]:
    """While audiocraft builds Melody's conditioners, give it a random T5-base encoder, a null-only tokenizer and no
    stem separator instead of downloading them (``counting``: a one-layer T5, which the conditioner holds outside
    its parameters)."""
    from audiocraft.modules import conditioners
    from transformers import T5EncoderModel

    class _T5:
        @staticmethod
        def from_pretrained(name: str, **_: Any) -> Any:
            cfg = t5_config()
            if counting:
                cfg.num_layers = 1
            torch.manual_seed(seed + 1)
            return T5EncoderModel(cfg)

    class _Tok:
        @staticmethod
        def from_pretrained(name: str, **_: Any) -> Any:
            return _NullOnlyTokenizer()

    try:
        import demucs.pretrained as demucs_pretrained
    except ImportError as e:  # pragma: no cover - the audiocraft extra installs demucs
        raise ModelError("MusicGen-Melody needs demucs (part of the 'audiocraft' extra): pip install 'demucs>=4.1,<4.2'") from e
    saved = conditioners.T5EncoderModel, conditioners.T5Tokenizer, demucs_pretrained.get_model
    conditioners.T5EncoderModel, conditioners.T5Tokenizer = _T5, _Tok
    demucs_pretrained.get_model = lambda *a, **k: _NoStemSeparator()
    try:
        yield
    finally:
        conditioners.T5EncoderModel, conditioners.T5Tokenizer, demucs_pretrained.get_model = saved


def _audiocraft_lm(arch: Architecture, *, seed: int = 0, layers: int | None = None, counting: bool = False) -> Any:
    from audiocraft.models import builders

    cfg = audiocraft_config(arch)
    if layers is not None:
        cfg.transformer_lm.num_layers = layers
    with _offline_conditioners(seed, counting), _quiet_transformers():
        torch.manual_seed(seed)
        lm = builders.get_lm_model(cfg)
    if "self_wav" in lm.condition_provider.conditioners:  # as MusicGen.get_pretrained sets them
        lm.condition_provider.conditioners["self_wav"].match_len_on_eval = True
        lm.condition_provider.conditioners["self_wav"]._use_masking = False
    return lm.eval()


def _random_encodec(seed: int) -> Any:
    from transformers import EncodecModel

    torch.manual_seed(seed)
    with _quiet_transformers():
        codec = EncodecModel(encodec_config()).eval()
    return init_hf_codebooks(codec, seed)


def random_weights_digest(arch: Architecture, seed: int) -> str:
    """``"random:<hex>"``: what the weights of ``arch`` drawn from ``seed`` are made of (the shipped config files,
    the seed, :data:`GENERATOR_VERSION` and the versions of torch and of the library that builds the modules), so
    that two seeds, or a new torch that initialises differently, never share a sweep cache entry; nothing is hashed
    at the size of the weights.

    >>> a = ARCHITECTURES["facebook/musicgen-small"]
    >>> random_weights_digest(a, 0) == random_weights_digest(a, 0) != random_weights_digest(a, 1)
    True
    """
    from cae.models.weights import digest_of
    from cae.provenance import versions

    files = [arch.config, "encodec_32khz.json", "t5-base.json"]
    libraries = ("torch", "transformers", "audiocraft") if arch.backend == "audiocraft" else ("torch", "transformers")
    return digest_of("random", {
        "model_id": arch.model_id, "seed": int(seed), "generator": GENERATOR_VERSION,
        "configs": {f: _config_text(f) for f in files},
        "versions": {k: versions().get(k) for k in libraries},
    })


def build_random(name: str, *, seed: int = 0, **kwargs: Any) -> Any:
    """Build ``name`` (``…@random``) with weights drawn from ``seed``; ``kwargs`` go to the adapter
    (``alignment``, ``device``, ``dtype``, ``batch_size``).

    The same seed gives the same weights (on one machine and torch version), so runs are reproducible; the
    weights are built in float32 on the CPU and moved to ``device``.
    """
    arch = architecture(name)
    if not is_random(name):
        raise ModelError(f"{name!r} is not an @random id")
    wanted = arch.name
    if name.removeprefix("hf:") != wanted:
        raise ModelError(f"{name!r}: this architecture is built by the {arch.backend} backend; load {wanted!r}")
    model_id = f"{arch.model_id}{RANDOM_SUFFIX}"
    revision = f"random:seed={seed}"
    if arch.backend == "transformers":
        from transformers import MusicgenForCausalLM

        torch.manual_seed(seed)
        with _quiet_transformers():
            decoder = MusicgenForCausalLM(decoder_config(arch)).eval()
        out: MusicLM = HFMusicGen(decoder, _random_encodec(seed + 1), model_id=model_id, revision=revision, **kwargs)
    else:
        from audiocraft.models.encodec import HFEncodecCompressionModel

        lm = _audiocraft_lm(arch, seed=seed)
        codec = HFEncodecCompressionModel(_random_encodec(seed + 1))
        out = AudiocraftMusicGen(codec, lm, model_id=model_id, revision=revision, **kwargs)
    out.context_frames = CONTEXT_FRAMES
    out.random_weights = True
    out.set_weights_digest(random_weights_digest(arch, seed))
    return out


def load_random(name: str, **kwargs: Any) -> MusicLM:
    """:func:`build_random`, for :func:`~cae.models.base.load_model` (which also passes ``revision``: an ``@random``
    model has none, its weights come from ``seed=``)."""
    if kwargs.pop("revision", None) is not None:
        raise ModelError(f"{name}: an @random model has no revision (its weights come from seed=)")
    return build_random(name, **kwargs)


register_backend("random", is_random, load_random, priority=20, describe="'<paper checkpoint id>@random'")
