"""Token-mask-anchored Peak / Assimilation / Recovery windows (our corrected detector), and a tidy table.

The authors' detector (:mod:`cae.analysis.paper_detector`) fixes the Peak start at a constant, ends the
Assimilation at a fixed "+4 frames" after the noise, and scores empty regions as 0. Here the windows are anchored
on what the LM actually sees, the token-difference mask (Protocol page: What cae corrects). With the nominal perturbation
at target frames ``[onset, offset)`` (offset exclusive) and the mask's first/last changed frames ``first`` and
``last`` (any codebook):

* **Peak** ``= [first, onset + peak_frames)``: from the first changed token (EnCodec's look-ahead puts it a few
  frames before the onset) to ``peak_frames`` frames into the perturbation;
* **Assimilation** ``= [onset + peak_frames, offset)``: the rest of the nominal perturbation;
* **Recovery** ``= [max(offset, last + 1) + guard_frames, F)``: starts only once the tokens are clean again
  (EnCodec's LSTM can change tokens after the offset), plus an optional extra guard (default 0: no margin beyond
  the mask), and runs to the end of the curve.

If the mask shows no changed token (or no mask is given) the nominal anchors ``first = onset`` and
``last = offset − 1`` are used, and the result says so (``anchor="nominal"``). Windows are clamped to ``[0, F]``.
An **empty region gives NaN**, never 0 (e.g. ``offset <= onset + peak_frames`` leaves no Assimilation; a mask
changed to the end of the clip, as after a deletion, leaves no Recovery). Region means ignore non-finite values
(NaN where no finite value is in the window). All indices are target frames.

The anchors and windows are the shared definition of :mod:`cae.analysis.windows` (:func:`burst_anchors`,
:func:`burst_windows`), which the profile features (:mod:`cae.profile.features`) also use, with a lead of 2
frames before ``first``, a Peak capped at the offset, an Exit window and a bounded Recovery; their ``assim``
window is the Assimilation here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from cae.analysis._arrays import as_float
from cae.analysis.delta import codebook_mean
from cae.analysis.paper_detector import PaperRegions
from cae.analysis.windows import REGIONS, Window, burst_anchors, burst_windows, window_mean

__all__ = ["AnchoredRegions", "anchored_regions", "regions_table"]


@dataclass(frozen=True)
class AnchoredRegions:
    """Result of :func:`anchored_regions` (all indices are target frames).

    Attributes:
        onset_frame, offset_frame: nominal perturbation ``[onset, offset)``.
        peak_frames, guard_frames: the parameters used.
        n_frames: length ``F`` of the Δ curve.
        anchor: ``"mask"`` if the windows are anchored on the token mask, ``"nominal"`` if it fell back.
        note: why it fell back (empty string when anchored on the mask).
        first_changed, last_changed: the anchors actually used (mask values, or ``onset`` / ``offset − 1``).
        windows: ``{"peak", "assimilation", "recovery"} → Window``, clamped to ``[0, F]``.
        means: per-region mean of the codebook-mean Δ curve; NaN for an empty region.
        per_codebook: per-region means of each codebook's Δ ``[K]`` (NaN when empty), or ``None`` for a 1-D curve.
    """

    onset_frame: int
    offset_frame: int
    peak_frames: int
    guard_frames: int
    n_frames: int
    anchor: Literal["mask", "nominal"]
    note: str
    first_changed: int
    last_changed: int
    windows: dict[str, Window]
    means: dict[str, float]
    per_codebook: dict[str, npt.NDArray[np.float64]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per region (for :func:`regions_table`).

        Keys: ``method="anchored", region, start, stop, n_frames, delta, empty, anchor, onset_frame,
        offset_frame, first_changed, last_changed``, and ``delta_cb{k}`` per codebook when available.
        """
        out = []
        for r in REGIONS:
            w = self.windows[r]
            row: dict[str, Any] = {
                "method": "anchored",
                "region": r,
                "start": w.start,
                "stop": w.stop,
                "n_frames": w.n,
                "delta": self.means[r],
                "empty": w.empty,
                "anchor": self.anchor,
                "onset_frame": self.onset_frame,
                "offset_frame": self.offset_frame,
                "first_changed": self.first_changed,
                "last_changed": self.last_changed,
            }
            if self.per_codebook is not None:
                row.update({f"delta_cb{k}": float(v) for k, v in enumerate(self.per_codebook[r])})
            out.append(row)
        return out


def anchored_regions(
    diff: npt.ArrayLike,
    mask: npt.ArrayLike | None,
    onset_frame: int,
    offset_frame: int,
    *,
    peak_frames: int = 5,
    guard_frames: int = 0,
) -> AnchoredRegions:
    """Peak / Assimilation / Recovery windows anchored on the token-difference mask.

    Args:
        diff: frame-indexed Δ, either the codebook-mean curve ``[F]`` or per-codebook curves ``[K, F]``
            (then ``means`` uses ``codebook_mean(diff)`` and ``per_codebook`` holds each codebook's means).
        mask: token mask ``[K, F_m]`` or ``[F_m]`` from :func:`cae.analysis.token_mask`, or ``None`` to use the
            nominal anchors. Its first/last changed frame over all codebooks are the anchors.
        onset_frame: first perturbed frame (nominal), e.g. 250.
        offset_frame: first frame after the perturbation (nominal, exclusive), e.g. ``250 + L``.
            ``offset_frame == onset_frame`` is allowed (a splice, e.g. a deletion point).
        peak_frames: Peak length past the onset (paper: ~5 tokens, 100 ms).
        guard_frames: extra frames skipped after ``max(offset, last + 1)`` before Recovery starts (default 0).

    Returns:
        :class:`AnchoredRegions`.

    >>> import numpy as np
    >>> d = np.r_[np.zeros(248), np.full(7, 3.0), np.full(95, -2.0), np.full(150, 0.5)]   # F = 500
    >>> m = np.zeros((4, 500), dtype=bool); m[0, 246:353] = True
    >>> r = anchored_regions(d, m, 250, 350)
    >>> r.windows["peak"], r.windows["recovery"]
    (Window(start=246, stop=255), Window(start=353, stop=500))
    >>> round(r.means["peak"], 4), r.means["assimilation"], r.means["recovery"]
    (2.3333, -2.0, 0.5)
    """
    x = as_float(diff)
    if x.ndim not in (1, 2):
        raise ValueError(f"diff must be [F] or [K, F], got shape {x.shape}")
    if onset_frame < 0 or offset_frame < onset_frame:
        raise ValueError(f"need 0 <= onset_frame <= offset_frame, got {onset_frame}, {offset_frame}")
    if peak_frames < 0 or guard_frames < 0:
        raise ValueError(f"peak_frames and guard_frames must be >= 0, got {peak_frames}, {guard_frames}")
    n = x.shape[-1]
    a = burst_anchors(mask, onset_frame, offset_frame)
    windows = burst_windows(n, onset_frame, offset_frame, a.first, a.last, peak_frames=peak_frames,
                            guard_frames=guard_frames)

    curve = codebook_mean(x) if x.ndim == 2 else x
    means = {r: float(window_mean(curve, w)) for r, w in windows.items()}
    per_cb = {r: np.asarray(window_mean(x, w)) for r, w in windows.items()} if x.ndim == 2 else None
    return AnchoredRegions(
        onset_frame=int(onset_frame),
        offset_frame=int(offset_frame),
        peak_frames=int(peak_frames),
        guard_frames=int(guard_frames),
        n_frames=int(n),
        anchor=a.anchor,
        note=a.note,
        first_changed=int(a.first),
        last_changed=int(a.last),
        windows=windows,
        means=means,
        per_codebook=per_cb,
    )


def regions_table(
    items: Iterable[tuple[Mapping[str, Any], AnchoredRegions | PaperRegions]],
) -> pd.DataFrame:
    """Tidy table of region results over many clips: one row per (clip, region).

    Args:
        items: pairs ``(keys, result)`` where ``keys`` identifies the clip (e.g. ``{"model": "small",
            "dataset": "ood", "clip": "Chopin_073", "kind": "white", "length": 100}``) and ``result`` comes from
            :func:`anchored_regions` or :func:`cae.analysis.paper_regions`. Key columns come first; then the
            columns of ``result.rows()`` (``region, start, stop, n_frames, delta, empty, …``; frame coordinates).
            Results of both methods can be mixed; columns a method lacks are NaN.

    >>> import numpy as np
    >>> r = anchored_regions(np.zeros(20), None, 5, 12, peak_frames=2)
    >>> df = regions_table([({"clip": "a"}, r)])
    >>> df["clip"].tolist(), df["region"].tolist(), df["start"].tolist(), df["stop"].tolist()
    (['a', 'a', 'a'], ['peak', 'assimilation', 'recovery'], [5, 7, 12], [7, 12, 20])
    """
    records = []
    for keys, result in items:
        for row in result.rows():
            clash = set(keys) & set(row)
            if clash:
                raise ValueError(f"key columns {sorted(clash)} clash with result columns")
            records.append({**keys, **row})
    return pd.DataFrame.from_records(records)
