"""The paper's experimental protocol as constants: where the noise goes, how long and how loud, how the files were
seeded, how Fig. 5 shuffled, and what its datasets held (the book's Protocol page gives the sources).

Frames are MusicGen's codec frames: EnCodec at 32 kHz with a hop of 640 samples, 50 per second. The noise starts at
frame 250 (5 s) and lasts one of :data:`PAPER_LENGTHS` frames; its RMS level is fixed per dataset kind
(:data:`PAPER_LEVELS_DBFS`, read with :func:`paper_level`), not matched to each file; each file's noise is seeded
with ``42 + file index`` (+ the channel for stereo files). Fig. 5 shuffles frames ``[0, 700)`` (14 s): pair swaps
moving 20 % of the range below 100 frames, one segment swap from 100 on.

Dataset kinds use cae's names: ``ood`` (the paper's ASAP set), ``generated`` and ``trainset`` (the paper's
TrainingSet). :data:`PAPER_KIND_ALIASES` is the one table of the other names cae accepts for them; ``heldout`` (cae's
held-out music, the training music's style) takes the TrainingSet's level.

This module holds plain values only (it imports nothing heavier than :mod:`cae.errors`), so that any layer can read
the protocol; :mod:`cae.paper.presets` builds the perturbations from it.

>>> PAPER_ONSET_SAMPLE == PAPER_ONSET_FRAME * PAPER_SAMPLE_RATE / PAPER_FRAME_RATE
True
>>> paper_level("asap"), paper_level("heldout"), paper_kind("musiccaps") is None
(-30.0, -12.0, True)
"""

from __future__ import annotations

from cae.errors import CaeError

__all__ = [
    "PAPER_CLIPS",
    "PAPER_PURE_NOISE_FRAMES",
    "PAPER_CLIPS_PER_TOP_K",
    "PAPER_CLIP_SECONDS",
    "PAPER_FRAME_RATE",
    "PAPER_KIND_ALIASES",
    "PAPER_LENGTHS",
    "PAPER_LEVELS_DBFS",
    "PAPER_ONSET_FRAME",
    "PAPER_ONSET_SAMPLE",
    "PAPER_PAIR_SWAP_BUDGET",
    "PAPER_SAMPLE_RATE",
    "PAPER_SEED_BASE",
    "PAPER_SEGMENT_SWAP_FROM",
    "PAPER_SHUFFLE_LENGTHS",
    "PAPER_SHUFFLE_RANGE_FRAMES",
    "PAPER_TOP_KS",
    "PaperKindError",
    "paper_kind",
    "paper_level",
]

#: The authors' rate and codec frame rate (EnCodec 32 kHz, hop 640).
PAPER_SAMPLE_RATE = 32000
PAPER_FRAME_RATE = 50.0
#: Noise onset: token 250 = 5 s = sample 160000 at 32 kHz.
PAPER_ONSET_FRAME = 250
PAPER_ONSET_SAMPLE = PAPER_ONSET_FRAME * PAPER_SAMPLE_RATE // int(PAPER_FRAME_RATE)
#: Noise lengths in frames (0.1, 0.2, 1, 2, 3, 4 s).
PAPER_LENGTHS = (5, 10, 50, 100, 150, 200)
#: Absolute noise RMS per dataset kind (dBFS), fixed per dataset, not matched per file (Protocol page: Noise
#: injection, What cae corrects).
PAPER_LEVELS_DBFS: dict[str, float] = {"ood": -30.0, "generated": -20.0, "trainset": -12.0}
#: Every name cae accepts for a kind of :data:`PAPER_LEVELS_DBFS` (lower case), and the kind it stands for.
PAPER_KIND_ALIASES: dict[str, str] = {
    "ood": "ood", "asap": "ood",
    "generated": "generated",
    "trainset": "trainset", "train": "trainset", "training": "trainset", "trainingset": "trainset",
    "heldout": "trainset",  # cae's held-out music is the training music's style
}  # fmt: skip
#: Per-file seed = 42 + file index (+ channel for stereo files).
PAPER_SEED_BASE = 42
#: Shuffle lengths in the paper's Fig. 5 (frames).
PAPER_SHUFFLE_LENGTHS = (1, 2, 5, 10, 35, 50, 70, 100, 150, 200)
#: Length of the pure-noise condition (Fig. 3's "Noise" curve): 14 s, like the authors' pure-noise files.
PAPER_PURE_NOISE_FRAMES = 700
#: Shuffle range [0, 14 s) in frames.
PAPER_SHUFFLE_RANGE_FRAMES = (0, 700)
#: Fig. 5's pair swaps move this fraction of the shuffle range (the ``budget`` of
#: :class:`cae.perturb.RandomPairSwaps`).
PAPER_PAIR_SWAP_BUDGET = 0.2
#: From this length (frames) on, Fig. 5 swaps one pair of segments instead of adjacent pairs.
PAPER_SEGMENT_SWAP_FROM = 100
#: The top-k values of the paper's Generated set: unconditional samples, 20 clips of 15 s per value (140 clips).
PAPER_TOP_KS: tuple[int, ...] = (10, 50, 100, 150, 200, 250, 500)
PAPER_CLIPS_PER_TOP_K = 20
PAPER_CLIP_SECONDS = 15.0
#: Clips per kind in the paper's datasets (TrainingSet 20 previews, OOD 78 ASAP renderings, Generated 140 samples).
PAPER_CLIPS: dict[str, int] = {"trainset": 20, "ood": 78, "generated": len(PAPER_TOP_KS) * PAPER_CLIPS_PER_TOP_K}


class PaperKindError(CaeError, ValueError):
    """A dataset kind the paper has no noise level for."""


def paper_kind(kind: str) -> str | None:
    """The paper's dataset kind (a key of :data:`PAPER_LEVELS_DBFS`) that ``kind`` names, or ``None``.

    >>> paper_kind("ASAP"), paper_kind("trainingset"), paper_kind("generated"), paper_kind("mine")
    ('ood', 'trainset', 'generated', None)
    """
    return PAPER_KIND_ALIASES.get(str(kind).lower())


def paper_level(kind: str) -> float:
    """The paper's noise level (dBFS) for a dataset kind or one of its aliases (:data:`PAPER_KIND_ALIASES`).

    Raises:
        PaperKindError: A kind the paper has no level for; the message lists the kinds it knows.

    >>> paper_level("ood"), paper_level("generated"), paper_level("training")
    (-30.0, -20.0, -12.0)
    >>> paper_level("mine")
    Traceback (most recent call last):
    ...
    cae.paper.protocol.PaperKindError: the paper has noise levels for ood (-30 dBFS), generated (-20 dBFS) and trainset (-12 dBFS), not for kind 'mine'; names accepted: asap, generated, heldout, ood, train, training, trainingset, trainset
    """
    key = paper_kind(kind)
    if key is None:
        levels = [f"{k} ({v:g} dBFS)" for k, v in PAPER_LEVELS_DBFS.items()]
        raise PaperKindError(f"the paper has noise levels for {', '.join(levels[:-1])} and {levels[-1]}, not for kind "
                             f"{kind!r}; names accepted: {', '.join(sorted(PAPER_KIND_ALIASES))}")
    return PAPER_LEVELS_DBFS[key]
