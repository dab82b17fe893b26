"""Order perturbations (Protocol page: Order shuffling): blocks of whole codec frames swapped, so every kind keeps
the multiset of samples and only their order changes.

* :class:`BlockSwap`: variant (c): swap ``[onset, onset+L)`` with ``[onset+L, onset+2L)``.
* :class:`RandomPairSwaps`: variant (a) with its overlap bug fixed: ``k = floor(budget·R / 2L)`` pairs of
  adjacent L-frame blocks (:func:`pair_swap_count`), on the authors' candidate grid (every L frames from the range
  start), drawn uniformly among all **non-overlapping** placements; each pair's blocks are swapped.
* :class:`SegmentSwap`: variant (b): two non-overlapping L-frame segments (frame-aligned), drawn
  uniformly among all such placements in the range, are swapped.

Positions are frames at ``frame_rate`` (default :data:`cae.perturb.DEFAULT_FRAME_RATE`); the hop
``sample_rate / frame_rate`` must be a whole number of samples. A range's ``stop=None`` means the last whole frame
of the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from cae.errors import PerturbationError
from cae.perturb.base import (
    DEFAULT_FRAME_RATE,
    Perturbation,
    RngLike,
    Span,
    _check_frame_rate,
    _check_sample_rate,
    _check_seed,
    _check_span,
    _check_wave,
    _fmt,
    _generator,
    _hop,
    _is_int,
    _too_short,
)
from cae.types import Wave

__all__ = ["BlockSwap", "RandomPairSwaps", "SegmentSwap", "pair_swap_count"]


def pair_swap_count(range_frames: int, length: int, budget: float) -> int:
    """Pairs of adjacent ``length``-frame blocks that :class:`RandomPairSwaps` swaps in a ``range_frames``-frame
    range: ``floor(budget · range_frames / (2 · length))``, so that at most ``budget`` of the range moves.

    >>> pair_swap_count(700, 10, 0.2), pair_swap_count(700, 70, 0.2), pair_swap_count(700, 100, 0.2)
    (7, 1, 0)
    """
    return math.floor(budget * range_frames / (2 * length) + 1e-9)


def _swap_blocks(out: npt.NDArray[np.float32], src: npt.NDArray[np.float32], a: int, b: int, n: int) -> None:
    """Swap the ``n``-sample blocks of ``src`` starting at ``a`` and ``b`` into ``out``."""
    out[a : a + n] = src[b : b + n]
    out[b : b + n] = src[a : a + n]


def _non_overlapping_starts(rng: np.random.Generator, n_cells: int, width: int, count: int) -> list[int]:
    """Starts of ``count`` non-overlapping intervals of ``width`` cells in ``[0, n_cells)``, sorted.

    Uniform over all such placements: choose ``count`` of the ``n_cells - count·(width-1)`` slots you get
    by shrinking each interval to one cell, then expand (interval i starts at ``slot_i + i·(width-1)``).
    """
    slots = n_cells - count * (width - 1)
    if count < 1 or slots < count:
        raise PerturbationError(f"cannot place {count} interval(s) of {width} in {n_cells} cells")
    chosen = np.sort(rng.choice(slots, size=count, replace=False))
    return [int(c) + i * (width - 1) for i, c in enumerate(chosen)]


class _RangeMixin:
    """Shared fields/validation for range-based shuffles (frames)."""

    def _range_frames(self, n_samples: int, sample_rate: int) -> tuple[int, int, int]:
        """``(hop, start_frame, stop_frame)``, checked against the clip."""
        hop = _hop(sample_rate, self.frame_rate)  # type: ignore[attr-defined]
        start: int = self.start  # type: ignore[attr-defined]
        stop: int | None = self.stop  # type: ignore[attr-defined]
        if stop is None:
            stop = n_samples // hop
            if stop <= start:
                raise _too_short(n_samples, sample_rate, (start + 1) * hop, f"range start frame {start}")
        elif stop * hop > n_samples:
            raise _too_short(n_samples, sample_rate, stop * hop, f"range [{start}, {stop}) frames")
        return hop, start, stop


def _check_range(obj: Any) -> None:
    if not _is_int(obj.length) or obj.length < 1:
        raise PerturbationError(f"length must be a positive whole number of frames, got {obj.length!r}")
    if not _is_int(obj.start) or obj.start < 0:
        raise PerturbationError(f"start must be a non-negative whole number of frames, got {obj.start!r}")
    if obj.stop is not None and (not _is_int(obj.stop) or obj.stop <= obj.start):
        raise PerturbationError(f"stop must be None or a whole number of frames > start, got {obj.stop!r}")
    object.__setattr__(obj, "frame_rate", _check_frame_rate(obj.frame_rate))
    _check_seed(obj.seed)


def _range_label(obj: Any) -> str:
    rate = "" if obj.frame_rate == DEFAULT_FRAME_RATE else f"/{_fmt(obj.frame_rate)}Hz"
    stop = "end" if obj.stop is None else str(obj.stop)
    return f"{obj.start}-{stop}f{rate}"


@dataclass(frozen=True)
class BlockSwap(Perturbation):
    """Swap the block ``[onset, onset+L)`` with the next one ``[onset+L, onset+2L)`` (variant c, Protocol page: Order shuffling).

    ``span`` gives the onset and the block length L; it must be in frames (whole codec frames).

    >>> import numpy as np
    >>> BlockSwap(Span(1, 2, frame_rate=1000.0)).apply(np.arange(6, dtype=np.float32), 1000).tolist()
    [0.0, 3.0, 4.0, 1.0, 2.0, 5.0]
    """

    kind: ClassVar[str] = "block_swap"

    span: Span

    def __post_init__(self) -> None:
        _check_span(self.span)
        if self.span.unit != "frames":
            raise PerturbationError(
                f"BlockSwap works on whole codec frames: span unit must be 'frames', got {self.span.unit!r}"
            )

    @property
    def label(self) -> str:
        return f"blockswap@{self.span.label}"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``; the clip must reach ``onset + 2L``. ``rng`` is ignored."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        start, stop = self.span.to_samples(sample_rate)
        n = stop - start
        if start + 2 * n > x.size:
            raise _too_short(x.size, sample_rate, start + 2 * n, f"block swap {self.label}")
        out = x.copy()
        _swap_blocks(out, x, start, stop, n)
        return out


@dataclass(frozen=True)
class RandomPairSwaps(Perturbation, _RangeMixin):
    """Swap ``k`` random, non-overlapping pairs of adjacent L-frame blocks within a frame range (variant a).

    The range ``[start, stop)`` (frames; ``stop=None``: the last whole frame of the clip) of ``R`` frames is
    cut into ``floor(R / L)`` candidate blocks starting every L frames from ``start`` (the authors' grid).
    ``k = floor(budget · R / (2L))`` pairs of adjacent blocks are placed uniformly at random among all
    non-overlapping placements, and the two blocks of each pair are swapped, so at most ``budget`` of the
    range moves. The authors' version drew pair starts independently and let pairs overlap (Protocol page: Order shuffling).

    Attributes:
        length: Block length L in frames.
        start: First frame of the range (authors: 0, i.e. the range includes the clip start).
        stop: End frame (exclusive) of the range, or None for the whole clip (authors: 700 = 14 s).
        budget: Fraction of the range moved, in (0, 1] (authors: 0.2).
        frame_rate: Codec frames per second.
        seed: Seed used when ``apply`` gets ``rng=None``.
    """

    kind: ClassVar[str] = "random_pair_swaps"

    length: int
    start: int = 0
    stop: int | None = None
    budget: float = 0.2
    frame_rate: float = DEFAULT_FRAME_RATE
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range(self)
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not 0 < self.budget <= 1:
            raise PerturbationError(f"budget must be in (0, 1], got {self.budget!r}")
        object.__setattr__(self, "budget", float(self.budget))

    @property
    def label(self) -> str:
        return f"pairswaps-{self.length}f-b{_fmt(self.budget)}@{_range_label(self)}"

    def plan(self, n_samples: int, sample_rate: int, rng: RngLike = None) -> list[int]:
        """Frame index of the first block of every swapped pair (sorted), as :meth:`apply` would draw them.

        Raises:
            PerturbationError: The range is beyond the clip, or the budget allows no pair.
        """
        sample_rate = _check_sample_rate(sample_rate)
        _, start, stop = self._range_frames(n_samples, sample_rate)
        frames = stop - start
        pairs = pair_swap_count(frames, self.length, self.budget)
        if pairs < 1:
            raise PerturbationError(
                f"a budget of {self.budget:g} of a {frames}-frame range allows no pair of 2 x {self.length} frames"
            )
        cells = _non_overlapping_starts(_generator(rng, self.seed), frames // self.length, 2, pairs)
        return [start + c * self.length for c in cells]

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``, a permutation of the input's samples."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        hop = _hop(sample_rate, self.frame_rate)
        out = x.copy()
        n = self.length * hop
        for frame in self.plan(x.size, sample_rate, rng):
            _swap_blocks(out, x, frame * hop, frame * hop + n, n)
        return out


@dataclass(frozen=True)
class SegmentSwap(Perturbation, _RangeMixin):
    """Swap two random, non-overlapping L-frame segments within a frame range (variant b, Protocol page: Order shuffling).

    Segment starts are frame-aligned; the unordered pair is drawn uniformly among all non-overlapping
    placements in ``[start, stop)`` (adjacent segments allowed).

    Attributes:
        length: Segment length L in frames.
        start: First frame of the range.
        stop: End frame (exclusive), or None for the whole clip (authors: 700 = 14 s).
        frame_rate: Codec frames per second.
        seed: Seed used when ``apply`` gets ``rng=None``.
    """

    kind: ClassVar[str] = "segment_swap"

    length: int
    start: int = 0
    stop: int | None = None
    frame_rate: float = DEFAULT_FRAME_RATE
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range(self)

    @property
    def label(self) -> str:
        return f"segswap-{self.length}f@{_range_label(self)}"

    def plan(self, n_samples: int, sample_rate: int, rng: RngLike = None) -> tuple[int, int]:
        """Start frames ``(a, b)``, ``a + L ≤ b``, of the two segments :meth:`apply` would swap.

        Raises:
            PerturbationError: The range is beyond the clip or shorter than 2L frames.
        """
        sample_rate = _check_sample_rate(sample_rate)
        _, start, stop = self._range_frames(n_samples, sample_rate)
        frames = stop - start
        if frames < 2 * self.length:
            raise PerturbationError(f"a {frames}-frame range cannot hold two {self.length}-frame segments")
        a, b = _non_overlapping_starts(_generator(rng, self.seed), frames, self.length, 2)
        return start + a, start + b

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``, a permutation of the input's samples."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        hop = _hop(sample_rate, self.frame_rate)
        a, b = self.plan(x.size, sample_rate, rng)
        out = x.copy()
        _swap_blocks(out, x, a * hop, b * hop, self.length * hop)
        return out

