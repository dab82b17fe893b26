"""Cutting fixed-length evaluation clips out of rendered pieces, avoiding silence where the noise goes.

The experiments inject noise 5 s into a 15 s clip for up to 4 s, and compare losses around it. A clip whose
music pauses there measures noise-on-silence, not noise-on-music, so clips are checked before they are kept.

Clip length
    :data:`CLIP_SECONDS` = 15 s, 480,000 samples at 32 kHz (750 EnCodec frames), the length of the paper's
    Generated set ([spec] §2.2).

Start positions
    Drawn uniformly from the whole piece (every start that leaves a full clip) on a grid of
    :data:`START_GRID` = 640 samples (one EnCodec frame at 32 kHz: a clip's frames are frames of the piece),
    with a generator seeded per piece (:func:`cae.data.seeding.rng_for`). Up to :data:`MAX_TRIES` starts are
    drawn; the first that passes the checks is used.

Silence checks (:func:`clip_problem`, absolute levels: renders use one fixed synthesiser gain)
    * *Noise region*: RMS over windows of :data:`WINDOW_S` = 0.5 s, hop :data:`HOP_S` = 0.1 s, covering
      ``[CHECK_START_S, CHECK_END_S]`` = [4 s, 10 s] (the noise region [5 s, 9 s] with 1 s margins); every window
      must reach :data:`SILENT_WINDOW_DBFS` = −50 dBFS. Rendered music sits at −20 to −35 dBFS RMS, so this
      rejects rests and phrase breaks where all voices stop, not quiet playing.
    * *Whole clip*: RMS at least :data:`MIN_CLIP_RMS_DBFS` = −40 dBFS.

>>> sr = 1000
>>> t = np.arange(15 * sr) / sr
>>> music = (0.1 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
>>> clip_problem(music, sr) is None
True
>>> gap = music.copy(); gap[6 * sr : 7 * sr] = 0
>>> clip_problem(gap, sr)
'near-silent window at 6.00 s in [4, 10] s (-inf dBFS < -50 dBFS)'
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cae.audio import DEFAULT_SAMPLE_RATE
from cae.types import Wave

__all__ = [
    "CLIP_SECONDS",
    "CLIP_SAMPLES",
    "START_GRID",
    "MAX_TRIES",
    "CHECK_START_S",
    "CHECK_END_S",
    "WINDOW_S",
    "HOP_S",
    "SILENT_WINDOW_DBFS",
    "MIN_CLIP_RMS_DBFS",
    "window_rms_dbfs",
    "clip_problem",
    "choose_clip_start",
]

CLIP_SECONDS = 15.0
#: Samples in a clip at 32 kHz.
CLIP_SAMPLES = int(CLIP_SECONDS * DEFAULT_SAMPLE_RATE)
#: Clip starts are multiples of this many samples (one EnCodec frame at 32 kHz).
START_GRID = 640
#: Start positions tried per piece before giving up on it.
MAX_TRIES = 10
CHECK_START_S = 4.0
CHECK_END_S = 10.0
WINDOW_S = 0.5
HOP_S = 0.1
SILENT_WINDOW_DBFS = -50.0
MIN_CLIP_RMS_DBFS = -40.0
_FLOOR_DB = -np.inf


def _dbfs(power: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(power)


def window_rms_dbfs(wave: Wave, sample_rate: int, window_s: float = WINDOW_S, hop_s: float = HOP_S) -> np.ndarray:
    """RMS level in dBFS of every full window (``-inf`` for digital silence).

    Window ``i`` covers samples ``[i·hop, i·hop + window)``; windows that would run past the end are left out.

    >>> window_rms_dbfs(np.full(10, 0.1, dtype=np.float32), 10, window_s=0.5, hop_s=0.5).round(3).tolist()
    [-20.0, -20.0]
    """
    win, hop = int(round(window_s * sample_rate)), int(round(hop_s * sample_rate))
    if win < 1 or hop < 1:
        raise ValueError("window and hop must be at least one sample")
    x = np.asarray(wave, dtype=np.float64)
    if x.size < win:
        return np.empty(0)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, x.size - win + 1, hop)
    power = np.maximum(csum[starts + win] - csum[starts], 0.0) / win
    return _dbfs(power)


def clip_problem(
    clip: Wave,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    check_start_s: float = CHECK_START_S,
    check_end_s: float = CHECK_END_S,
    silent_window_dbfs: float = SILENT_WINDOW_DBFS,
    min_clip_rms_dbfs: float = MIN_CLIP_RMS_DBFS,
) -> str | None:
    """Why ``clip`` is unusable (near-silent in the noise region, or quiet overall), or ``None`` if it is fine.

    See the module docstring for the rule and its constants.
    """
    x = np.asarray(clip, dtype=np.float64)
    if x.size == 0:
        return "empty clip"
    overall = float(_dbfs(np.array(np.mean(x * x))))
    lo = int(round(check_start_s * sample_rate))
    hi = min(int(round(check_end_s * sample_rate)), x.size)
    levels = window_rms_dbfs(x[lo:hi], sample_rate)
    if levels.size and levels.min() < silent_window_dbfs:
        i = int(np.argmin(levels))
        at = check_start_s + i * int(round(HOP_S * sample_rate)) / sample_rate
        return (
            f"near-silent window at {at:.2f} s in [{check_start_s:g}, {check_end_s:g}] s "
            f"({levels[i]:.1f} dBFS < {silent_window_dbfs:g} dBFS)"
        )
    if overall < min_clip_rms_dbfs:
        return f"clip RMS {overall:.1f} dBFS < {min_clip_rms_dbfs:g} dBFS"
    return None


def choose_clip_start(
    wave: Wave,
    rng: np.random.Generator,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    clip_samples: int = CLIP_SAMPLES,
    tries: int = MAX_TRIES,
    grid: int = START_GRID,
    avoid: Iterable[int] = (),
) -> tuple[int | None, str | None]:
    """Draw a clip start in ``wave`` that passes :func:`clip_problem`.

    Args:
        wave: The whole piece.
        rng: Seeded generator (one per piece and purpose).
        sample_rate: Rate of ``wave``.
        clip_samples: Clip length in samples.
        tries: Starts drawn before giving up.
        grid: Starts are multiples of this many samples.
        avoid: Starts of clips already taken from this piece; a new clip may not overlap them.

    Returns:
        ``(start, None)`` on success, else ``(None, reason)`` (piece too short, or the last rejection reason).
    """
    n_starts = (wave.size - clip_samples) // grid + 1
    if wave.size < clip_samples or n_starts < 1:
        return None, f"piece is {wave.size / sample_rate:.2f} s, shorter than a {clip_samples / sample_rate:g} s clip"
    taken = list(avoid)
    reason = "no start found"
    for _ in range(tries):
        start = int(rng.integers(n_starts)) * grid
        if any(abs(start - other) < clip_samples for other in taken):
            reason = "overlaps a clip already taken from this piece"
            continue
        problem = clip_problem(wave[start : start + clip_samples], sample_rate)
        if problem is None:
            return start, None
        reason = problem
    return None, reason
