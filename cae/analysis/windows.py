"""Half-open frame windows, the three regions of the Context Amnesia Effect, and the one anchored window definition.

The paper splits the response to a perturbation into three regions ([P] §4.1):

* **Peak**: the first ~5 tokens, where the loss spikes because the new material is inconsistent with the context;
* **Assimilation**: the rest of the perturbation, where the loss drops and stays low;
* **Recovery**: after the perturbation, where the loss oscillates around the baseline.

A region is a half-open window ``[start, stop)`` of indices into a curve. ``stop <= start`` means the window is
empty; raw windows are kept as computed (a detector may produce ``stop < start``) and :attr:`Window.n` is
clipped at 0. :func:`window_mean` averages a curve over a window, ignoring non-finite values.

Anchored windows
----------------
The region analysis (:func:`cae.analysis.anchored_regions`) and the profile features (:mod:`cae.profile.features`)
read their windows off one definition, :func:`burst_windows`, anchored by :func:`burst_anchors`. All indices are
target frames. The nominal perturbation is ``[onset, offset)``; the token mask gives ``first`` and ``last``, the
first and last frame where any codebook's token changed (``onset`` and ``offset − 1`` when no token changed or no
mask is given, ``anchor="nominal"``), and the exit anchor ``x = max(offset, last + 1)`` is the first frame whose
tokens are clean again. With ``peak_stop = onset + peak_frames``:

* **Peak** ``[first − lead_frames, peak_stop)``, or ``[first − lead_frames, min(peak_stop, offset))`` with
  ``peak_in_burst``;
* **Assimilation** ``[peak_stop, offset)`` (empty when the perturbation is ``peak_frames`` frames or shorter);
* **Exit** ``[offset, x + exit_frames)`` (only when ``exit_frames`` is given);
* **Recovery** ``[x + guard_frames, x + guard_frames + recovery_frames)``, or to the end of the curve when
  ``recovery_frames`` is ``None``.

Every window is clamped to ``[0, F]``. The two users differ only in these parameters: the region analysis uses
``lead_frames=0``, an uncapped Peak (a splice, ``offset == onset``, still has a Peak after it), an optional guard
and a Recovery to the end of the clip; the profile features use a lead of 2 frames (MusicGen's delay pattern), a
Peak capped at the offset, an Exit window and a bounded Recovery (see :class:`cae.profile.FeatureParams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from cae.analysis._arrays import as_float
from cae.analysis.mask import mask_summary

__all__ = ["REGIONS", "BurstAnchors", "Window", "burst_anchors", "burst_windows", "window_mean"]

#: Region names, in order.
REGIONS: tuple[str, str, str] = ("peak", "assimilation", "recovery")


@dataclass(frozen=True)
class Window:
    """Half-open index window ``[start, stop)``.

    >>> w = Window(245, 263)
    >>> w.n, w.empty, w.shift(1)
    (18, False, Window(start=246, stop=264))
    >>> Window(263, 258).n
    0
    """

    start: int
    stop: int

    @property
    def n(self) -> int:
        """Number of indices in the window (0 when ``stop <= start``)."""
        return max(0, self.stop - self.start)

    @property
    def empty(self) -> bool:
        """Whether the window holds no index."""
        return self.stop <= self.start

    def shift(self, k: int) -> Window:
        """The window moved by ``k`` indices (e.g. ``+1`` from authors' CSV positions to target frames)."""
        return Window(self.start + k, self.stop + k)

    def clip(self, lo: int, hi: int) -> Window:
        """The window with both ends clamped into ``[lo, hi]``.

        >>> Window(-3, 900).clip(0, 750)
        Window(start=0, stop=750)
        """
        return Window(min(max(self.start, lo), hi), min(max(self.stop, lo), hi))

    def as_slice(self) -> slice:
        """A slice over the last axis (empty when the window is empty)."""
        return slice(self.start, max(self.start, self.stop))


def window_mean(x: npt.ArrayLike, window: Window) -> float | npt.NDArray[np.float64]:
    """Mean of ``x`` over ``window`` on the last axis, ignoring non-finite values.

    Args:
        x: curve ``[F]`` or per-codebook curves ``[K, F]``.
        window: frame window; indices outside ``[0, F)`` are ignored.

    Returns:
        A ``float`` for a 1-D curve, a ``float64`` array ``[K]`` for ``[K, F]``. NaN where the window holds no
        finite value (in particular when it is empty): an empty region is *missing*, not zero.

    >>> nan = float("nan")
    >>> window_mean([0.0, 1.0, nan, 3.0, 5.0], Window(1, 4))
    2.0
    >>> window_mean([0.0, 1.0], Window(1, 1))
    nan
    """
    a = as_float(x)
    w = window.clip(0, a.shape[-1])
    seg = a[..., w.as_slice()]
    finite = np.isfinite(seg)
    count = finite.sum(axis=-1)
    total = np.where(finite, seg, 0.0).sum(axis=-1)
    out = np.full(np.shape(count), np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class BurstAnchors:
    """The frames a perturbation's windows are anchored on (target frames; see the module docstring).

    Attributes:
        onset, offset: the nominal perturbation ``[onset, offset)``.
        first, last: first and last changed frame over all codebooks (inclusive), or ``onset`` / ``offset − 1``.
        anchor: ``"mask"`` when ``first`` / ``last`` come from the token mask, ``"nominal"`` when they fell back.
        note: why it fell back (empty string when anchored on the mask).
    """

    onset: int
    offset: int
    first: int
    last: int
    anchor: Literal["mask", "nominal"]
    note: str = ""

    @property
    def exit(self) -> int:
        """The exit anchor ``max(offset, last + 1)``: the first frame whose tokens are clean again."""
        return max(self.offset, self.last + 1)


def burst_anchors(mask: npt.ArrayLike | None, onset: int, offset: int) -> BurstAnchors:
    """Anchor a perturbation ``[onset, offset)`` on the token mask's first and last changed frame.

    Args:
        mask: token mask ``[K, F]`` or ``[F]`` (``True`` = changed, :func:`cae.analysis.token_mask`), or ``None``.
        onset, offset: the nominal perturbation in target frames (offset exclusive).

    Returns:
        :class:`BurstAnchors`; the nominal ``onset`` / ``offset − 1`` when there is no mask or no changed token.

    >>> import numpy as np
    >>> m = np.zeros((2, 30), dtype=bool); m[1, 9:16] = True
    >>> a = burst_anchors(m, 10, 15)
    >>> a.anchor, a.first, a.last, a.exit
    ('mask', 9, 15, 16)
    >>> a = burst_anchors(None, 10, 15)
    >>> a.anchor, a.first, a.last, a.note
    ('nominal', 10, 14, 'no mask given; nominal onset/offset used')
    """
    summary = None if mask is None else mask_summary(mask)
    if summary is not None and summary.any_changed:
        assert summary.first is not None and summary.last is not None
        return BurstAnchors(onset, offset, summary.first, summary.last, "mask")
    note = "no mask given" if summary is None else "mask shows no changed token"
    return BurstAnchors(onset, offset, onset, offset - 1, "nominal", note + "; nominal onset/offset used")


def burst_windows(
    n_frames: int,
    onset: int,
    offset: int,
    first: int,
    last: int,
    *,
    peak_frames: int,
    lead_frames: int = 0,
    peak_in_burst: bool = False,
    exit_frames: int | None = None,
    guard_frames: int = 0,
    recovery_frames: int | None = None,
) -> dict[str, Window]:
    """The anchored Peak / Assimilation / (Exit) / Recovery windows of one perturbation (module docstring).

    Args:
        n_frames: length ``F`` of the curve; every window is clamped to ``[0, F]``.
        onset, offset: the nominal perturbation ``[onset, offset)``.
        first, last: the changed-token anchors (:func:`burst_anchors`).
        peak_frames: the Peak ends this many frames after the onset.
        lead_frames: the Peak starts this many frames before ``first``.
        peak_in_burst: end the Peak at the offset at the latest.
        exit_frames: add an ``"exit"`` window ``[offset, x + exit_frames)`` (``None``: no Exit window).
        guard_frames: the Recovery starts this many frames after the exit anchor ``x = max(offset, last + 1)``.
        recovery_frames: length of the Recovery (``None``: to the end of the curve).

    Returns:
        ``{"peak", "assimilation", ["exit",] "recovery"} → Window``, in that order.

    >>> w = burst_windows(500, 250, 350, 246, 352, peak_frames=5)
    >>> list(w), w["peak"], w["recovery"]
    (['peak', 'assimilation', 'recovery'], Window(start=246, stop=255), Window(start=353, stop=500))
    >>> w = burst_windows(60, 20, 23, 19, 23, peak_frames=5, lead_frames=2, peak_in_burst=True, exit_frames=10,
    ...                   recovery_frames=20)
    >>> w["peak"], w["assimilation"].n, w["exit"], w["recovery"]
    (Window(start=17, stop=23), 0, Window(start=23, stop=34), Window(start=24, stop=44))
    """
    x = max(offset, last + 1)
    peak_stop = onset + int(peak_frames)
    rec_start = x + int(guard_frames)
    w = {
        "peak": Window(first - int(lead_frames), min(peak_stop, offset) if peak_in_burst else peak_stop),
        "assimilation": Window(peak_stop, offset),
    }
    if exit_frames is not None:
        w["exit"] = Window(offset, x + int(exit_frames))
    w["recovery"] = Window(rec_start, n_frames if recovery_frames is None else rec_start + int(recovery_frames))
    return {k: v.clip(0, n_frames) for k, v in w.items()}
