"""The reference music LM shipped with cae: a small MusicGen-architecture decoder and its codec-like tokenizer.

:class:`~cae.reference.tokenizer.MelRVQTokenizer` turns 32 kHz audio into MusicGen-shaped tokens (4 codebooks,
50 frames/s): log-mel frames quantised by residual k-means, with an approximate Griffin-Lim decoder.

Training checkpoints of the decoder (steps 100, 250, 500, 1000, and the untrained initialisation) load with
:func:`load_checkpoint` (:mod:`cae.reference.checkpoints`), or by name: ``cae.load_model("reference@step250")``.
"""

from typing import Any

from cae.reference.tokenizer import MelRVQTokenizer

__all__ = ["MelRVQTokenizer", "available_checkpoints", "load_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in ("load_checkpoint", "available_checkpoints"):
        from cae.reference import checkpoints

        return getattr(checkpoints, name)
    raise AttributeError(f"module 'cae.reference' has no attribute {name!r}")
