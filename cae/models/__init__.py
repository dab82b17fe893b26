"""Model adapters: audio → codec tokens → per-token NLL.

* :mod:`cae.models.base`: the :class:`MusicLM` protocol, :func:`load_model`, :func:`register_model`;
* :mod:`cae.models.layout`: the delay-pattern and paper input layouts;
* :mod:`cae.models.hf`: MusicGen through transformers (:class:`HFMusicGen`);
* :mod:`cae.models.audiocraft`: MusicGen through audiocraft (:class:`AudiocraftMusicGen`, optional extra);
* :mod:`cae.models.convert`: audiocraft LM weights → transformers decoder;
* :mod:`cae.models.tiny`: tiny random-weight models of both backends for tests and smoke runs.
"""

from __future__ import annotations

from typing import Any

from cae.models.base import ModelInfo, MusicLM, load_model, register_model, register_provider, registered_models
from cae.models.tiny import register_tiny_models

register_tiny_models()


def _reference_factory(family: str, step: int | str | None = None) -> Any:
    def build(**kwargs: Any) -> MusicLM:
        from cae.reference import checkpoints, model

        if step is None:
            return model.load_reference(model.FAMILIES[family], **kwargs)
        return checkpoints.load_checkpoint(step, family=family, **kwargs)

    return build


@register_provider
def reference_models() -> dict[str, Any]:
    """The shipped reference models (``reference``: neural codec, the book's default; ``reference-mel``: the mel-RVQ
    ablation), each training checkpoint as ``<name>@step<N>`` and the untrained decoder as ``<name>@untrained``
    (see :mod:`cae.reference.checkpoints`)."""
    from cae.reference.checkpoints import UNTRAINED, available_checkpoints, checkpoint_name
    from cae.reference.model import FAMILIES

    out: dict[str, Any] = {}
    for family in FAMILIES:
        out[family] = _reference_factory(family)
        for step in (*available_checkpoints(family), UNTRAINED):
            out[checkpoint_name(step, family)] = _reference_factory(family, step)
    return out


__all__ = [
    "AudiocraftMusicGen",
    "HFMusicGen",
    "ModelInfo",
    "MusicLM",
    "load_model",
    "register_model",
    "register_provider",
    "registered_models",
]


def __getattr__(name: str) -> Any:
    if name == "HFMusicGen":
        from cae.models.hf import HFMusicGen

        return HFMusicGen
    if name == "AudiocraftMusicGen":
        from cae.models.audiocraft import AudiocraftMusicGen

        return AudiocraftMusicGen
    raise AttributeError(f"module 'cae.models' has no attribute {name!r}")
