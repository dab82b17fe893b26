"""The short-injection protocol and the engine that profiles clips under it (what ``cae profile`` runs).

:class:`ProfileProtocol`: short white-noise bursts *replace* the clip at a few onsets (default: 5 and 10 frames,
i.e. 0.1 and 0.2 s, at frames 150, 300 and 450), each burst as loud as the clip (SNR 0 dB relative to the clip's
RMS, ``reference="snr-rms"``), so that quiet and loud clips get comparable bursts. Every burst is its own perturbed
copy of the clip (:class:`cae.perturb.Noise`), scored with :func:`cae.scoring.run_sweep` (cached).
:func:`profile_clips` runs the sweep, builds the :func:`cae.profile.table.profile_table` and the
:func:`cae.profile.scores.clip_scores`, and returns them as a :class:`ProfileResult`; :func:`burst_marks` shows
one burst's curve with every feature marked on it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cae.perturb import Noise, Span
from cae.profile.features import FeatureParams, feature_marks
from cae.profile.scores import clip_scores
from cae.profile.table import profile_table
from cae.scoring import run_sweep
from cae.study.tables import token_array

__all__ = ["ProfileProtocol", "ProfileResult", "burst_marks", "profile_clips"]


@dataclass(frozen=True)
class ProfileProtocol:
    """The short-injection protocol: one perturbed copy per (onset, length).

    Attributes:
        lengths: burst lengths in frames (default 5 and 10 frames: 0.1 and 0.2 s at 50 Hz).
        onsets: burst onsets in frames (default 3, 6 and 9 s).
        colour, mode, level_db, reference: as in :class:`cae.perturb.Noise` (default: white noise replacing the
            audio, at 0 dB SNR relative to the clip's RMS).
        seed: noise seed (the sweep advances it by the clip's index).
        frame_rate: codec frame rate the spans are given in.
        tail_frames: frames the clip must extend past the last burst (for the Exit and Recovery windows).

    >>> p = ProfileProtocol()
    >>> [x.label for x in p.perturbations()][:2]
    ['noise-white-replace-snr-rms+0@150+5f', 'noise-white-replace-snr-rms+0@150+10f']
    >>> p.min_frames, p.min_seconds
    (560, 11.2)
    """

    lengths: tuple[int, ...] = (5, 10)
    onsets: tuple[int, ...] = (150, 300, 450)
    colour: str = "white"
    mode: str = "replace"
    level_db: float = 0.0
    reference: str = "snr-rms"
    seed: int = 0
    frame_rate: float = 50.0
    tail_frames: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "lengths", tuple(int(v) for v in self.lengths))
        object.__setattr__(self, "onsets", tuple(int(v) for v in self.onsets))
        if not self.lengths or min(self.lengths) < 1 or not self.onsets or min(self.onsets) < 1:
            raise ValueError("a protocol needs positive lengths and onsets")

    def perturbations(self) -> list[Noise]:
        """The :class:`~cae.perturb.Noise` conditions, onset-major."""
        return [
            Noise(Span(on, n, "frames", self.frame_rate), colour=self.colour, mode=self.mode, level_db=self.level_db,
                  reference=self.reference, seed=self.seed)
            for on in self.onsets for n in self.lengths
        ]

    @property
    def min_frames(self) -> int:
        """Shortest usable clip, in frames: the last burst's end plus ``tail_frames``."""
        return max(self.onsets) + max(self.lengths) + int(self.tail_frames)

    @property
    def min_seconds(self) -> float:
        """:attr:`min_frames` in seconds."""
        return self.min_frames / self.frame_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@dataclass
class ProfileResult:
    """What :func:`profile_clips` returns.

    Attributes:
        table: the :func:`profile_table` (error rows included).
        clips: :func:`clip_scores` of the table (one row per model × clip).
        summary: the sweep's per-condition summary.
        protocol, params: what was used.
    """

    table: pd.DataFrame
    clips: pd.DataFrame
    summary: pd.DataFrame
    protocol: ProfileProtocol
    params: FeatureParams

    @property
    def errors(self) -> pd.DataFrame:
        """Rows of :attr:`table` with an error (one per failed clip or condition)."""
        return self.table[self.table["error"].notna()]


def profile_clips(
    clips: Sequence[str | Path],
    model: Any,
    *,
    protocol: ProfileProtocol | None = None,
    params: FeatureParams | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    **sweep_kwargs: Any,
) -> ProfileResult:
    """Score clips under the short-injection protocol and compute their profile table.

    Args:
        clips: audio files.
        model: a loaded :class:`~cae.models.base.MusicLM` or a name for :func:`cae.load_model`.
        protocol: the bursts (default :class:`ProfileProtocol`).
        params: feature windows (default :class:`FeatureParams`).
        cache_dir: the sweep cache (default ``$CAE_CACHE_DIR/sweeps``).
        progress: show the sweep's progress bar.
        **sweep_kwargs: passed to :func:`cae.scoring.run_sweep`.

    Returns:
        :class:`ProfileResult`. Unreadable files and clips shorter than ``protocol.min_frames`` become error rows
        naming the file; the other clips complete.
    """
    protocol = protocol or ProfileProtocol()
    params = params or FeatureParams()
    tabs = run_sweep(clips, protocol.perturbations(), model, cache_dir=cache_dir, progress=progress, **sweep_kwargs)
    table = profile_table(tabs.tokens, tabs.summary, params=params, min_frames=protocol.min_frames)
    table = table.assign(protocol=json.dumps(protocol.to_dict(), sort_keys=True))
    return ProfileResult(table=table, clips=clip_scores(table), summary=tabs.summary, protocol=protocol,
                         params=params)


def burst_marks(clip: str | Path, model: Any, protocol: ProfileProtocol, *, onset: int, length: int,
                params: FeatureParams | None = None, cache_dir: str | Path | None = None, before: int = 10,
                after: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One burst of ``protocol`` (the one at ``onset`` with ``length`` frames) on one clip, scored through the
    sweep cache, as :func:`cae.profile.features.feature_marks` reads it: the codebook-mean Δℓ_t around the burst
    (``curve``) and each feature's span and level on it (``marks``).

    Raises:
        ValueError: the protocol has no burst at ``onset`` with ``length`` frames.
    """
    bursts = [p for p in protocol.perturbations() if p.span.onset == onset and p.span.length == length]
    if not bursts:
        raise ValueError(f"the protocol has no burst of {length} frames at frame {onset}")
    tokens = run_sweep([clip], bursts, model, cache_dir=cache_dir, progress=False).tokens
    tokens = tokens[tokens["condition"] != "clean"]
    d = token_array(tokens, "nll") - token_array(tokens, "nll_clean")
    changed = token_array(tokens, "changed") > 0
    return feature_marks(d, changed, onset=onset, offset=onset + length, params=params, before=before, after=after)
