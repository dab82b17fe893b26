"""A study's setting: the *protocol* its models are scored under, plugins, and loading the models.

``"corrected"`` scores in MusicGen's training layout (delay pattern, BOS, every token), anchors regions on the token
mask and derives each clip's noise seed from its content; ``"paper"`` reproduces the authors' computation
(un-delayed codes, no BOS, ``alignment="paper"``), their fixed-constant region detector and their seeds
(42 + the clip's position in the file list).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cae.errors import CaeError
from cae.models.base import MusicLM, load_model

__all__ = [
    "import_plugins", "LEVEL_MODES", "load_models", "protocol", "PROTOCOLS", "random_weights_note",
    "StudyError", "StudyProtocol",
]


LEVEL_MODES = ("paper", "dbfs", "snr")


@dataclass(frozen=True)
class StudyProtocol:
    """How a study scores and where it reads regions.

    Attributes:
        name: ``"corrected"`` or ``"paper"``.
        alignment: the models' scoring layout: ``None`` for each model's own (MusicGen's ``"delay"``, YuE's
            ``"stage2"``), or ``"paper"`` (the authors' computation).
        regions: the default region detector (``"anchored"`` on the token mask, or the authors' ``"paper"`` one).
        seeding: how a clip's noise seed is derived (:func:`cae.scoring.seed_offset`): from its content, or the
            authors' seed + position in the file list.
    """

    name: str
    alignment: str | None
    regions: str
    seeding: str


PROTOCOLS: dict[str, StudyProtocol] = {
    "corrected": StudyProtocol("corrected", None, "anchored", "content"),
    "paper": StudyProtocol("paper", "paper", "paper", "index"),
}


class StudyError(CaeError):
    """A study parameter that cannot work (unknown protocol, level mode, kind without a paper level, ...)."""


def protocol(name: str) -> StudyProtocol:
    """The :class:`StudyProtocol` called ``name``."""
    if name not in PROTOCOLS:
        raise StudyError(f"protocol must be one of {sorted(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]


def import_plugins(plugins: Iterable[str] = ()) -> None:
    """Import modules (or ``.py`` files) that register model adapters with :func:`cae.register_model`."""
    for name in plugins:
        if str(name).endswith(".py"):
            path = Path(name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise StudyError(f"cannot import plugin file {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)


def load_models(names: str | Sequence[str | MusicLM], *, protocol_name: str = "corrected", device: str | None = None,
                plugins: Iterable[str] = (), **kwargs: Any) -> list[MusicLM]:
    """Load every model under a protocol (its alignment), after importing adapter plugins.

    Args:
        names: model names for :func:`cae.load_model` (or loaded models, used as they are).
        protocol_name: ``"corrected"`` or ``"paper"``.
        device: ``"cpu"``, ``"cuda"``, or ``None`` (the adapter's default).
        plugins: modules or ``.py`` files to import first (they register new adapters).
        **kwargs: passed to every :func:`cae.load_model` call (``dtype``, ``revision`` ...).
    """
    proto = protocol(protocol_name)
    import_plugins(plugins)
    if isinstance(names, (str, MusicLM)):
        names = [names]
    out = []
    for n in names:
        if isinstance(n, MusicLM):
            out.append(n)
            continue
        kw = dict(kwargs) if proto.alignment is None else dict(kwargs, alignment=proto.alignment)
        if device is not None:
            kw["device"] = device
        out.append(load_model(n, **kw))
    _note_random_weights(out)
    return out


def random_weights_note(models: Sequence[MusicLM]) -> str | None:
    """The warning a notebook shows when a model has seeded random weights (an ``@random`` architecture), or
    ``None``."""
    ids = [m.model_id for m in models if getattr(m, "random_weights", False)]
    if not ids:
        return None
    return (f"**Random weights.** {', '.join(f'`{i}`' for i in ids)} "
            f"{'is' if len(ids) == 1 else 'are'} the published architecture with seeded random weights (a dry run: "
            "no checkpoint was downloaded). Every number and chart below exercises the code at the real size, but "
            "**means nothing about music**.")


def _note_random_weights(models: Sequence[MusicLM]) -> None:
    note = random_weights_note(models)
    if note is None:
        return
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the book extra
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:  # a notebook: a visible admonition on the page
        display(Markdown(f"```{{warning}}\n{note}\n```"))
    else:
        warnings.warn(note.replace("**", ""), stacklevel=3)
