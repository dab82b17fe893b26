"""The reference codec on disk: a transformers ``EncodecModel`` folder (``config.json`` + ``model.safetensors``).

:func:`save_codec` writes it and returns the SHA-256 of both files; :func:`load_codec` checks them and loads the model
with transformers alone. The codec's training (:mod:`cae.reference.codec`) writes the folder; the reference model
(:mod:`cae.reference.model`) and its decoder's training (:mod:`cae.reference.train`) read it. Kept apart from the
training code so that loading a model does not import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cae.errors import ModelError
from cae.provenance import file_sha256

__all__ = ["CODEC_CONFIG", "CODEC_WEIGHTS", "load_codec", "save_codec"]

CODEC_WEIGHTS = "model.safetensors"
CODEC_CONFIG = "config.json"


def save_codec(model: Any, folder: str | Path) -> dict[str, str]:
    """Save with ``save_pretrained`` (``config.json`` + ``model.safetensors``); returns the files' SHA-256."""
    folder = Path(folder)
    model.save_pretrained(folder)
    return {name: file_sha256(folder / name) for name in (CODEC_CONFIG, CODEC_WEIGHTS)}


def load_codec(folder: str | Path, sha256: dict[str, str] | None = None) -> Any:
    """Load a saved codec as a transformers ``EncodecModel`` in eval mode, float32, after checking each file's
    SHA-256 against ``sha256`` (when given). A missing or altered file raises :class:`~cae.errors.ModelError`."""
    from transformers import EncodecModel

    folder = Path(folder)
    for name in (CODEC_CONFIG, CODEC_WEIGHTS):
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path} is missing; rebuild with `make reference-codec` or reinstall cae")
        if sha256 is not None:
            got, want = file_sha256(path), sha256[name]
            if got != want:
                raise ModelError(
                    f"{path} is corrupted: SHA-256 {got[:12]}… does not match {want[:12]}… recorded for it; "
                    "rebuild with `make reference-codec` or reinstall cae"
                )
    with torch.random.fork_rng(devices=[]):  # building the model draws initial weights: leave the caller's RNG alone
        return EncodecModel.from_pretrained(folder, dtype=torch.float32).eval()
