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

from cae.models.base import ModelInfo, MusicLM, load_model, register_model, registered_models
from cae.models.tiny import register_tiny_models

register_tiny_models()


def _load_reference(**kwargs: Any) -> MusicLM:
    from cae.reference.model import load_reference

    return load_reference(**kwargs)


#: The shipped reference model (cae/reference/weights), the offline default of the book.
register_model("reference", _load_reference)


def _checkpoint_factory(step: int | str) -> Any:
    def build(**kwargs: Any) -> MusicLM:
        from cae.reference.checkpoints import load_checkpoint

        return load_checkpoint(step, **kwargs)

    return build


#: Its training checkpoints and its untrained (seeded random-init) decoder (cae/reference/checkpoints.py).
for _step in (100, 250, 500, 1000, "untrained"):
    register_model(f"reference@{_step if _step == 'untrained' else f'step{_step}'}", _checkpoint_factory(_step))
del _step

__all__ = [
    "AudiocraftMusicGen",
    "HFMusicGen",
    "ModelInfo",
    "MusicLM",
    "load_model",
    "register_model",
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
