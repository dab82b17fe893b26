"""Checkpoint and resume a training run exactly: weights, optimiser, both random generators, progress.

Both trainings of the reference model (:mod:`cae.reference.codec`, :mod:`cae.reference.train`) save their state here
every few steps (written to a temporary file, then renamed, so a kill leaves the previous state whole) and, started
again, continue from it. The saved ``config`` and ``tag`` (e.g. the corpus hash, the codec's checksum) must match the
new run's, or the run is refused: continuing on other data or settings would silently mix two trainings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["load_state", "save_state"]


def save_state(path: Path, *, config: Mapping[str, Any], tag: Any, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, rng: np.random.Generator, step: int, **progress: Any) -> None:
    """Write the run's state after ``step`` steps (``progress``: the curve, running means, elapsed time …)."""
    state = {"config": dict(config), "tag": tag, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": int(step), **progress}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path | None, *, config: Mapping[str, Any], tag: Any, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, rng: np.random.Generator) -> dict[str, Any] | None:
    """Restore a saved run into ``model``, ``optimizer``, ``rng`` and torch's global generator; returns the saved
    state (``step`` and the progress fields), or ``None`` when there is nothing to resume.

    Raises:
        ValueError: the state was written by another configuration or tag.
    """
    if path is None or not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state["config"] != dict(config) or state.get("tag") != tag:
        raise ValueError(f"{path} was written by another configuration or on other data; delete it to start afresh")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return state
