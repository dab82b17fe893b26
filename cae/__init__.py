"""cae: the Context Amnesia Effect companion.

The method, in the order the package reads: audio (:mod:`cae.audio`) → perturb (:mod:`cae.perturb`) →
encode and score (:mod:`cae.models`) → analyse (:mod:`cae.analysis`) → plot / report.

``cae.load_model`` and ``cae.register_model`` are imported lazily so that ``import cae.audio`` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "register_model"]


def __getattr__(name: str) -> Any:
    if name in ("load_model", "register_model"):
        from cae import models

        return getattr(models, name)
    raise AttributeError(f"module 'cae' has no attribute {name!r}")
