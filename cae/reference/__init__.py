"""The reference music LMs shipped with cae: small MusicGen-architecture decoders trained here, with their codecs.

* ``reference`` (the default): a neural codec with EnCodec's architecture trained here (:mod:`cae.reference.codec`,
  a transformers ``EncodecModel``) and a ``MusicgenForCausalLM`` decoder trained on its tokens
  (:mod:`cae.reference.train`); it loads as a plain :class:`~cae.models.hf.HFMusicGen`.
* ``reference-mel`` (the ablation): :class:`~cae.reference.tokenizer.MelRVQTokenizer` (log-mel frames quantised by
  residual k-means, Griffin-Lim decoder) with a decoder of the same architecture.

Training checkpoints of each decoder (and its untrained initialisation) load with :func:`load_checkpoint`
(:mod:`cae.reference.checkpoints`), or by name: ``cae.load_model("reference@step250")``. What was measured while
training is in :mod:`cae.reference.records`.

The reference models are a model backend: this package builds on :mod:`cae.models` (their adapter is
:class:`~cae.models.hf.HFMusicGen`), and :mod:`cae.models` imports it so that their names are registered
(:func:`cae.reference.checkpoints.reference_models`) wherever a model is loaded by name. Importing
:mod:`cae.reference.checkpoints` here, before any other module of the package, lets either package be imported
first: :mod:`cae.models` is then complete before :mod:`cae.reference.model` needs it.
"""

from cae.reference.checkpoints import available_checkpoints, load_checkpoint
from cae.reference.tokenizer import MelRVQTokenizer

__all__ = ["MelRVQTokenizer", "available_checkpoints", "load_checkpoint"]
