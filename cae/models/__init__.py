"""Model adapters: audio → codec tokens → per-token NLL.

* :mod:`cae.models.base`: the :class:`MusicLM` protocol, :func:`load_model` and its registries
  (:func:`register_model`, :func:`register_provider`, :func:`register_backend`);
* :mod:`cae.models.layout`: the delay-pattern and paper input layouts;
* :mod:`cae.models.weights`: what identifies an adapter's weights (:meth:`MusicLM.weights_digest`, in every result
  row and sweep cache key);
* :mod:`cae.models.hf`: MusicGen through transformers (:class:`HFMusicGen`; backend of hub ids and local folders);
* :mod:`cae.models.audiocraft`: MusicGen through audiocraft (:class:`AudiocraftMusicGen`, optional extra; backend of
  ``audiocraft:<id>``);
* :mod:`cae.models.published`: the paper's checkpoints as seeded random-weight architectures (backend of
  ``<id>@random``);
* :mod:`cae.models.yue`: YuE's stage-2 LM on X-Codec tokens (:mod:`cae.models.xcodec`), real weights or ``@random``
  (backend of ``m-a-p/YuE-s2-1B-general[@random]`` and ``yue:<folder>``), and ``"tiny-yue"``;
* :mod:`cae.models.convert`: audiocraft LM weights → transformers decoder;
* :mod:`cae.models.tiny`: tiny random-weight models of both backends for tests and smoke runs (``"tiny"``,
  ``"tiny-audiocraft"``);
* :mod:`cae.reference`: the shipped reference models (``"reference"``, ``"reference-mel"`` and their checkpoints).

Each backend registers itself when imported; importing them here makes every name loadable after any import of
:mod:`cae.models` or of one of its modules (a package's ``__init__`` always runs first), e.g.
``from cae.models.base import load_model``.
"""

from __future__ import annotations

import cae.reference  # noqa: F401 - registers the shipped reference models (cae.reference.checkpoints)
from cae.models import published, tiny, yue  # noqa: F401 - register the @random architectures, YuE and the tiny models
from cae.models.audiocraft import AudiocraftMusicGen
from cae.models.base import (
    ModelInfo,
    MusicLM,
    load_model,
    register_backend,
    register_model,
    register_provider,
    registered_models,
)
from cae.models.hf import HFMusicGen

__all__ = [
    "AudiocraftMusicGen",
    "HFMusicGen",
    "ModelInfo",
    "MusicLM",
    "load_model",
    "register_backend",
    "register_model",
    "register_provider",
    "registered_models",
]
