"""The paper's perturbations, built from its protocol (:mod:`cae.paper.protocol`) as :mod:`cae.perturb` objects.

* :func:`paper_noise`: the authors' noise injection for one file: white noise (or one of their Butterworth colours)
  replacing frames ``[250, 250 + L)``, hard cut, at the dataset's fixed dBFS level, from numpy's legacy generator
  seeded with ``42 + file index`` (+ channel), so their noise is reproduced sample for sample.
* :func:`paper_block_swap`: their adjacent-block swap at the onset (variant c of the Protocol page, Order shuffling).
* :func:`paper_shuffle`: the Fig. 5 shuffle of frames ``[0, 700)``: pair swaps moving 20 % of the range below 100
  frames (:func:`paper_pair_swaps`: how many pairs fit), one segment swap from 100 on, as in the authors' two scripts
  (with the pair-overlap bug fixed).

>>> paper_noise(100, "ood", file_index=75).label, paper_block_swap(50).label, paper_shuffle(10).label
('noise-white-replace-dbfs-30@250+100f', 'blockswap@250+50f', 'pairswaps-10f-b0.2@0-700f')
"""

from __future__ import annotations

from cae.errors import PerturbationError
from cae.paper.protocol import (
    PAPER_FRAME_RATE,
    PAPER_ONSET_FRAME,
    PAPER_PAIR_SWAP_BUDGET,
    PAPER_SEED_BASE,
    PAPER_SEGMENT_SWAP_FROM,
    PAPER_SHUFFLE_RANGE_FRAMES,
    PaperKindError,
    paper_level,
)
from cae.perturb import BUTTERWORTH_COLOURS, BlockSwap, Noise, RandomPairSwaps, SegmentSwap, Span, pair_swap_count
from cae.perturb.base import _is_int

__all__ = ["paper_block_swap", "paper_noise", "paper_pair_swaps", "paper_shuffle"]


def paper_noise(
    length_frames: int, dataset_kind: str, file_index: int = 0, channel: int = 0, colour: str = "white"
) -> Noise:
    """The authors' noise injection for one file (Protocol page: Noise injection, What cae corrects).

    White noise (or one of their Butterworth colours) **replacing** frames ``[250, 250 + L)``, hard cut,
    std-normalised and scaled to the dataset's fixed dBFS level, drawn from numpy's legacy generator seeded
    with ``42 + file_index + channel`` (``legacy_rng=True``).

    Args:
        length_frames: L in frames; the paper uses :data:`~cae.paper.protocol.PAPER_LENGTHS` (other positive values
            allowed).
        dataset_kind: "ood" (−30 dBFS), "generated" (−20) or "trainset" (−12), or one of their aliases
            (:data:`~cae.paper.protocol.PAPER_KIND_ALIASES`: "asap", "training", "heldout" ...).
        file_index: Position of the file in the authors' walk order (0-based).
        channel: Channel index for stereo files (the authors noised each channel with seed + channel).
        colour: "white" (paper figures) or "butter-pink"/"butter-brown"/"butter-blue" (demo page).

    Returns:
        The :class:`~cae.perturb.Noise`.

    Raises:
        PerturbationError: An unknown dataset kind, a length or index that is not a whole number, or a colour the
            authors did not use.

    >>> p = paper_noise(100, "ood", file_index=75)
    >>> p.label, p.seed, p.span.to_samples(32000)
    ('noise-white-replace-dbfs-30@250+100f', 117, (160000, 224000))
    """
    try:
        level = paper_level(dataset_kind)
    except PaperKindError as exc:
        raise PerturbationError(f"dataset_kind: {exc}") from None
    if not _is_int(length_frames) or length_frames < 1:
        raise PerturbationError(f"length_frames must be a positive integer, got {length_frames!r}")
    for name, v in (("file_index", file_index), ("channel", channel)):
        if not _is_int(v) or v < 0:
            raise PerturbationError(f"{name} must be a non-negative integer, got {v!r}")
    if colour != "white" and colour not in BUTTERWORTH_COLOURS:
        raise PerturbationError(f"the authors' colours are 'white' and {tuple(BUTTERWORTH_COLOURS)}, got {colour!r}")
    return Noise(
        span=Span(PAPER_ONSET_FRAME, int(length_frames), "frames", PAPER_FRAME_RATE),
        colour=colour,
        mode="replace",
        level_db=level,
        reference="dbfs",
        crossfade_ms=0.0,
        seed=PAPER_SEED_BASE + int(file_index) + int(channel),
        legacy_rng=True,
    )


def paper_block_swap(length_frames: int) -> BlockSwap:
    """Variant (c): swap frames ``[250, 250+L)`` and ``[250+L, 250+2L)``.

    >>> paper_block_swap(50).label
    'blockswap@250+50f'
    """
    return BlockSwap(Span(PAPER_ONSET_FRAME, length_frames, "frames", PAPER_FRAME_RATE))


def paper_pair_swaps(length_frames: int) -> int:
    """How many pairs of adjacent L-frame blocks Fig. 5's pair swaps move in frames ``[0, 700)`` (20 % of the range:
    ``floor(0.2 · 700 / 2L)``); 0 where not even one pair fits, from L = 71 on, which is why the authors switched to
    one segment swap for their longer lengths.

    >>> [paper_pair_swaps(n) for n in (1, 10, 70, 71, 100)]
    [70, 7, 1, 0, 0]
    """
    lo, hi = PAPER_SHUFFLE_RANGE_FRAMES
    return pair_swap_count(hi - lo, int(length_frames), PAPER_PAIR_SWAP_BUDGET)


def paper_shuffle(length_frames: int, seed: int = 0) -> RandomPairSwaps | SegmentSwap:
    """The Fig. 5 shuffle for length L over frames [0, 700): pair swaps (20 % budget) for L < 100, one
    segment swap for L ≥ 100, as in the authors' two scripts (with the pair-overlap bug fixed).

    >>> paper_shuffle(10).label, paper_shuffle(150).label
    ('pairswaps-10f-b0.2@0-700f', 'segswap-150f@0-700f')
    """
    lo, hi = PAPER_SHUFFLE_RANGE_FRAMES
    if _is_int(length_frames) and length_frames >= PAPER_SEGMENT_SWAP_FROM:
        return SegmentSwap(length_frames, lo, hi, PAPER_FRAME_RATE, seed)
    return RandomPairSwaps(length_frames, lo, hi, PAPER_PAIR_SWAP_BUDGET, PAPER_FRAME_RATE, seed)
