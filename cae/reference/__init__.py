"""The reference music LMs shipped with cae: small MusicGen-architecture decoders trained here, with their codecs.

* ``reference`` (the default): a neural codec with EnCodec's architecture trained here (:mod:`cae.reference.codec`,
  a transformers ``EncodecModel``) and a ``MusicgenForCausalLM`` decoder trained on its tokens
  (:mod:`cae.reference.train`); it loads as a plain :class:`~cae.models.hf.HFMusicGen`.
* ``reference-mel`` (the ablation): :class:`~cae.reference.tokenizer.MelRVQTokenizer` (log-mel frames quantised by
  residual k-means, Griffin-Lim decoder) with a decoder of the same architecture.

Training checkpoints of each decoder (and its untrained initialisation) load with :func:`load_checkpoint`
(:mod:`cae.reference.checkpoints`), or by name: ``cae.load_model("reference@step250")``. What was measured while
training is in :mod:`cae.reference.records`.
"""

from typing import Any

from cae.reference.tokenizer import MelRVQTokenizer

__all__ = ["MelRVQTokenizer", "available_checkpoints", "load_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in ("load_checkpoint", "available_checkpoints"):
        from cae.reference import checkpoints

        return getattr(checkpoints, name)
    raise AttributeError(f"module 'cae.reference' has no attribute {name!r}")
