"""Checks of inputs that are still scored, but that a careful user wants to hear about (a ``warning`` on the row).

A refusal would lose work and be wrong for the deliberate case (a silent control clip, a loud noise test); silence
would hide a mistake. So these come back as one sentence each, joined with "; ", in the summary's ``warning`` column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["clip_warnings", "perturbation_warning"]


def clip_warnings(path: str, wav: np.ndarray, model: Any, frames: int) -> str | None:
    """What a careful user would want flagged about a clip that is still scored (``None`` when nothing): a WAV
    header promising more samples than the file holds, a silent clip (also a multichannel file whose channels cancel
    in the mono mix), a clip longer than the model's training context."""
    from cae.audio import header_shortfall, load_channels, rms_dbfs

    notes = []
    short = header_shortfall(path)
    if short:
        notes.append(short)
    if not np.any(np.abs(wav) > 1e-6):
        channels, info = load_channels(path, sample_rate=model.sample_rate)
        loud = info.channels > 1 and any(rms_dbfs(c) > -60.0 for c in channels)
        notes.append("its channels cancel in the mono mix: the scored clip is silent" if loud
                     else "the clip is silent")
    context = getattr(model, "context_frames", None)
    if context and frames > context:
        notes.append(f"the clip is {frames} frames, longer than the {context} the model was trained on")
    return "; ".join(notes) or None


def perturbation_warning(p: Any, wav: np.ndarray, sample_rate: int) -> str | None:
    """A noise burst louder than digital full scale (RMS above 0 dBFS): allowed, but rarely meant."""
    level = getattr(p, "noise_dbfs", None)
    value = level(wav, sample_rate) if callable(level) else None
    if value is not None and value > 0.0:
        return f"the noise RMS is {value:+.1f} dBFS, above full scale (samples beyond ±1)"
    return None
