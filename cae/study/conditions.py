"""A study's conditions: the perturbations it applies, as serialisable records (:mod:`cae.perturb`).

Noise levels follow a *level mode*: ``"paper"`` (the authors' absolute dBFS per dataset kind and their legacy RNG,
:func:`cae.paper.protocol.paper_level`), ``"dbfs"`` (one absolute level) or ``"snr"`` (relative to each clip's RMS).
:class:`NoiseSweep` is the noise sweep of the research-question notebooks as one value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cae.paper.presets import paper_shuffle
from cae.paper.protocol import (
    PAPER_FRAME_RATE,
    PAPER_ONSET_FRAME,
    PAPER_PAIR_SWAP_BUDGET,
    PAPER_PURE_NOISE_FRAMES,
    PAPER_SEED_BASE,
    PAPER_SHUFFLE_RANGE_FRAMES,
    PaperKindError,
    paper_level,
)
from cae.perturb import (
    BUTTERWORTH_COLOURS,
    BlockSwap,
    Noise,
    Perturbation,
    RandomPairSwaps,
    SegmentSwap,
    Span,
)
from cae.study.setup import LEVEL_MODES, StudyError

__all__ = ["noise_conditions", "NoiseSweep", "pure_noise", "PURE_NOISE_FRAMES", "shuffle_conditions"]


def noise_conditions(kind: str, lengths: Sequence[int], *, colour: str = "white", level_mode: str = "paper",
                     level_db: float | None = None, onset: int = PAPER_ONSET_FRAME, crossfade_ms: float = 0.0,
                     mode: str = "replace", seed: int = PAPER_SEED_BASE) -> list[Noise]:
    """Noise bursts ``[onset, onset + L)`` for every length, for one dataset kind.

    Args:
        kind: the dataset kind (sets the level in ``level_mode="paper"``).
        lengths: noise lengths in frames.
        colour: a :data:`cae.perturb.COLOURS` name (``"white"``, the authors' ``"butter-*"``, exact ``"pink"`` ...).
        level_mode: ``"paper"``: the authors' dBFS for the kind (OOD −30, Generated −20, TrainingSet and held-out
            −12) and their legacy RNG; ``"dbfs"``: ``level_db`` dBFS for every kind; ``"snr"``: ``level_db`` dB
            signal-to-noise ratio against each clip's RMS.
        level_db: the level for ``"dbfs"`` / ``"snr"``.
        onset: first noisy frame.
        crossfade_ms: raised-cosine ramps at both ends (0: the paper's hard cut).
        mode: ``"replace"`` (paper) or ``"add"``.
        seed: base seed; the sweep adds a per-clip offset (:func:`cae.scoring.seed_offset`: from the clip's content,
            or its index under the paper protocol, the authors' 42 + file index).

    >>> [p.label for p in noise_conditions("ood", [5, 100])]
    ['noise-white-replace-dbfs-30@250+5f', 'noise-white-replace-dbfs-30@250+100f']
    >>> noise_conditions("heldout", [10], level_mode="snr", level_db=0.0)[0].label
    'noise-white-replace-snr-rms+0@250+10f'
    """
    if level_mode not in LEVEL_MODES:
        raise StudyError(f"level_mode must be one of {LEVEL_MODES}, got {level_mode!r}")
    if level_mode == "paper":
        try:
            level, reference = paper_level(kind), "dbfs"
        except PaperKindError as e:
            raise StudyError(f"level_mode='paper': {e}; use level_mode='dbfs' or 'snr'") from None
    else:
        if level_db is None:
            raise StudyError(f"level_mode={level_mode!r} needs level_db")
        level, reference = float(level_db), ("dbfs" if level_mode == "dbfs" else "snr-rms")
    legacy = level_mode == "paper" and (colour == "white" or colour in BUTTERWORTH_COLOURS)
    return [Noise(Span(int(onset), int(n)), colour=colour, mode=mode, level_db=level, reference=reference,
                  crossfade_ms=float(crossfade_ms), seed=int(seed), legacy_rng=legacy) for n in lengths]


#: Length of the pure-noise condition (:data:`cae.paper.protocol.PAPER_PURE_NOISE_FRAMES`, 14 s).
PURE_NOISE_FRAMES = PAPER_PURE_NOISE_FRAMES


def pure_noise(kind: str, n_frames: int = PURE_NOISE_FRAMES, **kwargs: Any) -> Noise:
    """Noise from frame 0 for ``n_frames`` frames at the study's level: the "Noise" curve of the paper's Fig. 3
    (keyword arguments as :func:`noise_conditions`; the clips must be at least that long)."""
    kwargs = dict(kwargs)
    kwargs.pop("onset", None)
    return noise_conditions(kind, [int(n_frames)], onset=0, **kwargs)[0]


def shuffle_conditions(variant: str, lengths: Sequence[int], *, onset: int = PAPER_ONSET_FRAME,
                       seed: int = 0) -> list[Perturbation]:
    """Order perturbations of the three kinds in the authors' code (Protocol page: Order shuffling).

    Args:
        variant: ``"pair_swaps"`` (random adjacent-pair swaps, 20 % budget, frames [0, 700)), ``"segment_swap"``
            (one swap of two random segments in [0, 700)), ``"block_swap"`` (the blocks at ``onset`` and
            ``onset + L`` swapped) or ``"fig5"`` (the paper's Fig. 5 mix: pair swaps below 100 frames, a segment
            swap from 100).
        lengths: segment lengths in frames.
        onset: for ``block_swap``.
        seed: base seed (the sweep adds a per-clip offset, :func:`cae.scoring.seed_offset`).
    """
    lo, hi = PAPER_SHUFFLE_RANGE_FRAMES
    out: list[Perturbation] = []
    for n in lengths:
        n = int(n)
        if variant == "block_swap":
            out.append(BlockSwap(Span(int(onset), n)))
        elif variant == "fig5":
            out.append(paper_shuffle(n, int(seed)))
        elif variant == "pair_swaps":
            out.append(RandomPairSwaps(n, lo, hi, PAPER_PAIR_SWAP_BUDGET, PAPER_FRAME_RATE, int(seed)))
        elif variant == "segment_swap":
            out.append(SegmentSwap(n, lo, hi, PAPER_FRAME_RATE, int(seed)))
        else:
            raise StudyError(f"variant must be pair_swaps, segment_swap, block_swap or fig5, got {variant!r}")
    return out


@dataclass(frozen=True)
class NoiseSweep:
    """The noise conditions of a research-question notebook as one value: white (or coloured) noise of every length
    in ``lengths`` at ``onset``, at the level of ``level_mode`` (:func:`noise_conditions`), plus, with ``pure``, the
    pure-noise condition (:func:`pure_noise`). Calling it with a dataset kind gives that kind's perturbations, as
    :func:`cae.study.run` expects.

    >>> sweep = NoiseSweep.from_params({"lengths": [5, 100], "onset": 250, "seed": 42, "n_clips": 40})
    >>> [p.label for p in sweep("ood")]
    ['noise-white-replace-dbfs-30@250+5f', 'noise-white-replace-dbfs-30@250+100f']
    >>> sweep.at("ood", 10).label, len(NoiseSweep([5], pure=True)("ood"))
    ('noise-white-replace-dbfs-30@250+10f', 2)
    """

    lengths: Sequence[int]
    colour: str = "white"
    level_mode: str = "paper"
    level_db: float | None = None
    onset: int = PAPER_ONSET_FRAME
    seed: int = PAPER_SEED_BASE
    pure: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **overrides: Any) -> NoiseSweep:
        """The sweep a notebook's parameters describe (its ``globals()``: the fields above that it defines)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in params.items() if k in names}, **overrides})

    def _level(self) -> dict[str, Any]:
        return {"colour": self.colour, "level_mode": self.level_mode, "level_db": self.level_db, "seed": self.seed}

    def __call__(self, kind: str) -> list[Noise]:
        out = noise_conditions(kind, self.lengths, onset=self.onset, **self._level())
        return out + [pure_noise(kind, **self._level())] if self.pure else out

    def at(self, kind: str, length: int) -> Noise:
        """The condition of one length for one kind."""
        return noise_conditions(kind, [length], onset=self.onset, **self._level())[0]
