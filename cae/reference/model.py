"""The shipped reference models: small MusicGen decoders trained here on the reference corpus, with their codecs.

Two models ship in ``cae/reference/weights/``, one folder each:

* ``reference`` (the default): a neural codec with EnCodec's architecture, trained here (:mod:`cae.reference.codec`,
  a transformers ``EncodecModel`` in ``reference/codec/``), and a transformers ``MusicgenForCausalLM`` decoder trained
  on its tokens. It loads as a plain :class:`~cae.models.hf.HFMusicGen`: the code path of MusicGen's own
  checkpoints, with the sweep engine's incremental EnCodec and prefix reuse.
* ``reference-mel`` (the ablation): the first reference model, whose tokenizer is log-mel frames quantised by
  residual k-means (:mod:`cae.reference.tokenizer`), decoded by Griffin-Lim (:class:`MelReferenceLM`).

Each folder holds ``decoder.safetensors`` (float32; the cross-attention blocks, which the null condition never uses,
are not stored), its codec, and ``reference.json``: the decoder config, the SHA-256 of every file, training parameters
and measured losses. Every checksum is verified at load; a mismatch or a missing file raises
:class:`~cae.errors.ModelError` saying how to rebuild (``make reference-model``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae.errors import ModelError
from cae.models.hf import HFMusicGen
from cae.provenance import file_sha256
from cae.reference.codec_files import load_codec
from cae.reference.tokenizer import MelRVQTokenizer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The default reference model: neural codec + decoder.
REFERENCE_DIR = WEIGHTS_DIR / "reference"
#: The first reference model (mel-RVQ tokenizer + decoder), kept as an ablation.
MEL_DIR = WEIGHTS_DIR / "reference-mel"
#: The neural codec of the reference model (a transformers ``EncodecModel`` folder).
CODEC_DIR = REFERENCE_DIR / "codec"
#: Registered name → weights folder.
FAMILIES: dict[str, Path] = {"reference": REFERENCE_DIR, "reference-mel": MEL_DIR}
DECODER_FILE = "decoder.safetensors"
TOKENIZER_FILE = "tokenizer.npz"
META_FILE = "reference.json"


class MelReferenceLM(HFMusicGen):
    """A MusicGen-architecture decoder with the mel-RVQ tokenizer as its codec (``reference-mel``)."""

    backend = "cae-reference-mel"

    def __init__(self, decoder: Any, tokenizer: Any, **kwargs: Any):
        kwargs.setdefault("model_id", "reference-mel")
        super().__init__(decoder, None, **kwargs)
        self.tokenizer_codec = tokenizer
        self.sample_rate = int(tokenizer.sample_rate)
        self.frame_rate = float(tokenizer.sample_rate) / float(tokenizer.hop)
        if int(tokenizer.num_codebooks) != self.num_codebooks or int(tokenizer.codebook_size) != self.card:
            raise ModelError(
                f"tokenizer ({tokenizer.num_codebooks} x {tokenizer.codebook_size}) does not match the decoder "
                f"({self.num_codebooks} x {self.card})"
            )

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.tokenizer_codec.encode(wav.float().cpu().numpy()))).long()

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        batch, _ = self._as_batch(codes)
        return np.asarray(self.tokenizer_codec.decode(batch[0].numpy()), dtype=np.float32)

    def _compute_weights_digest(self) -> str:
        """The decoder's tensors and the tokenizer's codebooks (a NumPy codec, outside :meth:`weight_modules`);
        :func:`load_reference` records the verified file checksums instead."""
        from cae.models.weights import digest_of

        return digest_of("state-dict", {"decoder": super()._compute_weights_digest(),
                                        "tokenizer": self.tokenizer_codec.state_sha256()})


def decoder_from_config(config: dict[str, Any]) -> Any:
    """A fresh ``MusicgenForCausalLM`` from the ``decoder_config`` dict stored in ``reference.json``."""
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # pad = BOS = card lies outside the vocabulary by design
    try:
        return MusicgenForCausalLM(MusicgenDecoderConfig(**config))
    finally:
        logging.set_verbosity(level)


def read_meta(weights_dir: str | Path = REFERENCE_DIR) -> dict[str, Any]:
    path = Path(weights_dir) / META_FILE
    if not path.is_file():
        raise ModelError(
            f"{path} is missing: the reference model has not been built. Run `make reference-model` "
            "(about an hour on 2 CPU cores), or reinstall cae."
        )
    return json.loads(path.read_text())


def verify_weights(weights_dir: str | Path = REFERENCE_DIR) -> dict[str, Any]:
    """Check every file listed in ``reference.json`` against its SHA-256; returns the metadata."""
    weights_dir = Path(weights_dir)
    meta = read_meta(weights_dir)
    for name, want in sorted(meta["sha256"].items()):
        path = weights_dir / name
        if not path.is_file():
            raise ModelError(f"{path} is missing; rebuild with `make reference-model` or reinstall cae")
        got = file_sha256(path)
        if got != want:
            raise ModelError(
                f"{path} is corrupted: SHA-256 {got[:12]}… does not match {want[:12]}… recorded in {META_FILE}; "
                "rebuild with `make reference-model` or reinstall cae"
            )
    return meta


def load_tokenizer(weights_dir: str | Path, meta: dict[str, Any]) -> Any:
    """The codec of a reference folder (checksums already verified): a transformers ``EncodecModel`` for the neural
    codec, a :class:`~cae.reference.tokenizer.MelRVQTokenizer` for ``reference-mel``."""
    weights_dir = Path(weights_dir)
    if meta.get("codec") == "encodec":
        return load_codec(weights_dir / "codec")
    return MelRVQTokenizer.load(weights_dir / TOKENIZER_FILE)


def wrap(decoder: Any, tokenizer: Any, meta: dict[str, Any], **kwargs: Any) -> HFMusicGen:
    """The scoring adapter for a decoder and a reference codec: :class:`~cae.models.hf.HFMusicGen` around a
    transformers ``EncodecModel``, :class:`MelReferenceLM` around the mel tokenizer; its ``context_frames`` is the
    training window recorded in ``meta``."""
    if isinstance(tokenizer, MelRVQTokenizer):
        model: HFMusicGen = MelReferenceLM(decoder, tokenizer, **kwargs)
    else:
        model = HFMusicGen(decoder, tokenizer, **kwargs)
    model.context_frames = int(meta.get("train_config", {}).get("window_frames", 0)) or None
    return model


def decoder_state(decoder: Any) -> dict[str, torch.Tensor]:
    """Decoder weights worth storing: the cross-attention blocks (unused under the null condition) and the
    sinusoidal position table (recomputed) are left out."""
    return {n: p.detach().float().contiguous() for n, p in decoder.state_dict().items()
            if ".encoder_attn" not in n and "embed_positions" not in n}


def load_decoder_state(decoder: Any, state: dict[str, torch.Tensor], where: Path) -> Any:
    """Load stored decoder weights (cross-attention and position tables are not stored) or fail naming the file."""
    missing, unexpected = decoder.load_state_dict(state, strict=False)
    missing = [m for m in missing if ".encoder_attn" not in m and "embed_positions" not in m]
    if missing or unexpected:
        raise ModelError(f"{where} does not fit the decoder config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return decoder.eval()


def weights_digest(meta: dict[str, Any], decoder: dict[str, str] | str | None = None) -> str:
    """The weights digest of a reference model (:meth:`~cae.models.base.MusicLM.weights_digest`, kind
    ``reference``): the SHA-256 of its files that :func:`verify_weights` checked, with the decoder's entry replaced
    by ``decoder`` when another decoder is loaded (``{file: sha256}`` of a training checkpoint, or the
    :func:`~cae.models.weights.state_dict_digest` of an untrained one).

    >>> meta = {"sha256": {"decoder.safetensors": "aa", "codec/model.safetensors": "bb"}}
    >>> weights_digest(meta) != weights_digest(meta, {"checkpoints/step00100.safetensors": "cc"})
    True
    """
    from cae.models.weights import digest_of

    files = dict(meta["sha256"])
    if decoder is not None:
        files.pop(DECODER_FILE, None)
    return digest_of("reference", {"files": dict(sorted(files.items())), "decoder": decoder})


def load_reference(weights_dir: str | Path = REFERENCE_DIR, **kwargs: Any) -> HFMusicGen:
    """Load a reference model (every checksum verified); ``model_id`` defaults to the folder's recorded name.
    Keyword arguments go to the adapter (``device``, ``dtype``, ``alignment`` …). Its weights digest is made of the
    verified checksums (:func:`weights_digest`), so retraining the folder in place changes every cache key."""
    from safetensors.torch import load_file

    weights_dir = Path(weights_dir)
    meta = verify_weights(weights_dir)
    decoder = decoder_from_config(meta["decoder_config"])
    load_decoder_state(decoder, load_file(str(weights_dir / DECODER_FILE)), weights_dir / DECODER_FILE)
    kwargs.setdefault("model_id", meta.get("name", "reference"))
    kwargs.setdefault("revision", meta["sha256"][DECODER_FILE][:12])
    model = wrap(decoder, load_tokenizer(weights_dir, meta), meta, **kwargs)
    model.set_weights_digest(weights_digest(meta))
    return model


def load_reference_mel(**kwargs: Any) -> HFMusicGen:
    """The ``reference-mel`` ablation model (mel-RVQ tokenizer)."""
    return load_reference(MEL_DIR, **kwargs)


def save_reference(decoder: Any, weights_dir: str | Path, meta: dict[str, Any],
                   tokenizer: Any | None = None) -> dict[str, Any]:
    """Write the decoder weights (and a mel tokenizer, when given) plus ``reference.json`` with the SHA-256 of every
    file of the folder's model (the codec folder included); returns the full metadata."""
    from safetensors.torch import save_file

    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    save_file(decoder_state(decoder), str(weights_dir / DECODER_FILE))
    files = [DECODER_FILE]
    if tokenizer is not None:
        tokenizer.save(weights_dir / TOKENIZER_FILE)
        files.append(TOKENIZER_FILE)
    if (weights_dir / "codec").is_dir():
        files += ["codec/config.json", "codec/model.safetensors"]
    full = dict(meta)
    full["decoder_config"] = {k: v for k, v in decoder.config.to_diff_dict().items()
                              if k not in ("transformers_version", "architectures")}
    full["sha256"] = {name: file_sha256(weights_dir / name) for name in files}
    (weights_dir / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full
