"""The shipped reference model: a small MusicGen decoder trained here on the reference corpus, plus its tokenizer.

``cae.load_model("reference")`` gives a :class:`ReferenceMusicLM`: the tokenizer (:mod:`cae.reference.tokenizer`,
log-mel frames at 50 Hz quantised by residual k-means into 4 codebooks) plays EnCodec's part, and a transformers
``MusicgenForCausalLM`` plays the LM, scored exactly like MusicGen (delay pattern, BOS, fp32 log-softmax; see
:class:`~cae.models.hf.HFMusicGen`). The files live in ``cae/reference/weights/``:

* ``decoder.safetensors``: decoder weights (float32; the cross-attention blocks, which the null condition never
  uses, are not stored);
* ``tokenizer.npz``: the tokenizer;
* ``reference.json``: decoder config, SHA-256 of both files, training parameters and measured losses.

Both checksums are verified at load; a mismatch or a missing file raises :class:`~cae.errors.ModelError` saying how to
rebuild (``make reference-model``).
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

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DECODER_FILE = "decoder.safetensors"
TOKENIZER_FILE = "tokenizer.npz"
META_FILE = "reference.json"


class ReferenceMusicLM(HFMusicGen):
    """A MusicGen-architecture decoder with the mel-RVQ tokenizer as its codec."""

    backend = "cae-reference"

    def __init__(self, decoder: Any, tokenizer: Any, **kwargs: Any):
        kwargs.setdefault("model_id", "reference")
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


def read_meta(weights_dir: str | Path = WEIGHTS_DIR) -> dict[str, Any]:
    path = Path(weights_dir) / META_FILE
    if not path.is_file():
        raise ModelError(
            f"{path} is missing: the reference model has not been built. Run `make reference-model` "
            "(about 40 minutes on 2 CPU cores), or reinstall cae."
        )
    return json.loads(path.read_text())


def verify_weights(weights_dir: str | Path = WEIGHTS_DIR) -> dict[str, Any]:
    """Check both shipped files against the SHA-256 in ``reference.json``; returns the metadata."""
    weights_dir = Path(weights_dir)
    meta = read_meta(weights_dir)
    for name in (DECODER_FILE, TOKENIZER_FILE):
        path = weights_dir / name
        if not path.is_file():
            raise ModelError(f"{path} is missing; rebuild with `make reference-model` or reinstall cae")
        got, want = file_sha256(path), meta["sha256"][name]
        if got != want:
            raise ModelError(
                f"{path} is corrupted: SHA-256 {got[:12]}… does not match {want[:12]}… recorded in {META_FILE}; "
                "rebuild with `make reference-model` or reinstall cae"
            )
    return meta


def load_reference(weights_dir: str | Path = WEIGHTS_DIR, **kwargs: Any) -> ReferenceMusicLM:
    """Load the reference model (checksums verified). Keyword arguments go to :class:`ReferenceMusicLM`."""
    from safetensors.torch import load_file

    from cae.reference.tokenizer import MelRVQTokenizer

    weights_dir = Path(weights_dir)
    meta = verify_weights(weights_dir)
    decoder = decoder_from_config(meta["decoder_config"])
    state = load_file(str(weights_dir / DECODER_FILE))
    missing, unexpected = decoder.load_state_dict(state, strict=False)
    missing = [m for m in missing if ".encoder_attn" not in m]
    if missing or unexpected:
        raise ModelError(f"{weights_dir / DECODER_FILE} does not fit the config: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    tokenizer = MelRVQTokenizer.load(weights_dir / TOKENIZER_FILE)
    kwargs.setdefault("revision", meta["sha256"][DECODER_FILE][:12])
    return ReferenceMusicLM(decoder.eval(), tokenizer, **kwargs)


def save_reference(decoder: Any, tokenizer: Any, weights_dir: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write decoder weights, tokenizer and ``reference.json`` (with checksums); returns the full metadata."""
    from safetensors.torch import save_file

    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    from cae.reference.train import decoder_state

    save_file(decoder_state(decoder), str(weights_dir / DECODER_FILE))
    tokenizer.save(weights_dir / TOKENIZER_FILE)
    full = dict(meta)
    full["decoder_config"] = {k: v for k, v in decoder.config.to_diff_dict().items()
                              if k not in ("transformers_version", "architectures")}
    full["sha256"] = {name: file_sha256(weights_dir / name) for name in (DECODER_FILE, TOKENIZER_FILE)}
    (weights_dir / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full
