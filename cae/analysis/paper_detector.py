"""The authors' Peak / Assimilation / Recovery detector (``detect_regions_ma``, Fig. 4), reproduced exactly.

The paper says it smooths Δℓ_t with a moving average and finds where it "crosses zero for five consecutive
tokens". The code behind Fig. 4 does neither (Protocol page: Regions, What cae corrects). On the codebook-mean difference curve
``diff`` (authors' CSV coordinates, see below), with noise length ``L``:

1. ``baseline = mean(diff[:200])``: not smoothed, not zero.
2. **Peak** ``= [245, e_P)``. ``e_P`` is found by scanning ``i = 250, 251, …, len(diff) − 1`` for the first ``i``
   with ``diff[i−5], …, diff[i−1]`` all ``<= baseline``; then ``e_P = i − 5``. In words: the first index
   ``>= 245`` that starts a run of 5 values at or below the baseline, where the run must end before the last
   position. If there is no such run, ``e_P = 295`` (= 245 + 50).
3. **Assimilation** ``= [e_P, A)`` with ``A = min(249 + L + 4, len(diff) − 1)``: a *fixed* end, 4 positions past
   the end of the noise, whatever the curve does.
4. **Recovery** ``= [A, len(diff) − 1)``: to the end, the last position excluded.
5. Per region, the statistic is ``mean(diff[region])``, or **0 when the region is empty** (``e_P = 245`` gives an
   empty Peak; ``e_P >= A``, possible for short ``L``, an empty Assimilation). Scoring empty regions as 0 biases
   the pooled Peak statistic toward 0; :class:`PaperRegions` keeps the authors' value in ``means`` and the
   NaN-for-empty value in ``raw_means``.

**Index conventions.** The authors' CSV position ``p`` holds the loss of predicting frame ``p + 1`` (the
un-delayed HF scoring drops the first frame; Protocol page: Scoring). Curves in :mod:`cae` are indexed by target frame,
so :func:`paper_regions` takes our frame-indexed curve ``d[f]``, builds ``csv[p] = d[p + 1]`` (dropping frame 0,
which has no prediction in that alignment), runs the detector in CSV coordinates, and reports the windows in both
coordinates (frame window = CSV window + 1). With noise at frames ``[250, 250 + L)``, the first noisy frame 250 is
CSV position 249 (``onset_index``), and the Peak start 245 is frame 246, four frames before the onset, which
absorbs EnCodec's look-ahead. To move the noise elsewhere, shift ``peak_start``, ``search_from``,
``fallback_end`` and ``onset_index`` together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cae.analysis._arrays import as_float
from cae.analysis.delta import codebook_mean
from cae.analysis.windows import REGIONS, Window, window_mean

__all__ = ["CSV_OFFSET", "PaperRegions", "paper_regions", "to_csv_curve"]

#: Frame index = authors' CSV position + ``CSV_OFFSET`` (HF scripts: CSV position ``p`` scores frame ``p + 1``).
CSV_OFFSET: int = 1


def to_csv_curve(d: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The authors' CSV-coordinate curve from a frame-indexed one: ``csv[..., p] = d[..., p + 1]``.

    Args:
        d: frame-indexed curve ``[F]`` (or ``[..., F]``).

    Returns:
        ``float64`` array ``[F − 1]``; frame 0 is dropped.

    >>> to_csv_curve([float("nan"), 1.0, 2.0]).tolist()
    [1.0, 2.0]
    """
    a = as_float(d)
    if a.ndim == 0:
        raise ValueError("to_csv_curve needs a curve, got a scalar")
    return a[..., CSV_OFFSET:]


@dataclass(frozen=True)
class PaperRegions:
    """Result of :func:`paper_regions`.

    Attributes:
        noise_len: noise length ``L`` in frames.
        n_positions: length of the CSV-coordinate curve (``F' − 1``).
        baseline: ``mean(csv[:baseline_len])``.
        peak_end: ``e_P`` in CSV coordinates.
        used_fallback: whether no stable run was found and ``e_P = fallback_end``.
        csv_windows: ``{"peak", "assimilation", "recovery"} → Window`` in the authors' CSV coordinates, raw
            (``stop < start`` is kept when the detector produces it).
        windows: the same windows in target-frame coordinates (CSV + 1), i.e. indices into ``d[f]``.
        means: per-region mean of the curve, **0 for an empty region** (the authors' behaviour, used in Fig. 4).
        raw_means: per-region mean, NaN for an empty region.
        per_codebook: per-region means of each codebook's Δ curve ``[K]`` over the same windows (NaN when empty),
            or ``None`` when a single curve was given.
    """

    noise_len: int
    n_positions: int
    baseline: float
    peak_end: int
    used_fallback: bool
    csv_windows: dict[str, Window]
    windows: dict[str, Window]
    means: dict[str, float]
    raw_means: dict[str, float]
    per_codebook: dict[str, npt.NDArray[np.float64]] | None = field(default=None)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per region (for :func:`cae.analysis.regions_table`).

        Keys: ``region, start, stop, n_frames`` (frame coordinates), ``csv_start, csv_stop``, ``delta`` (the
        authors' value, 0 if empty), ``delta_raw`` (NaN if empty), ``empty``, ``method="paper"``,
        ``noise_len, baseline, peak_end, used_fallback``, and ``delta_cb{k}`` per codebook when available.
        """
        out = []
        for r in REGIONS:
            w, cw = self.windows[r], self.csv_windows[r]
            row: dict[str, Any] = {
                "method": "paper",
                "region": r,
                "start": w.start,
                "stop": w.stop,
                "n_frames": w.n,
                "csv_start": cw.start,
                "csv_stop": cw.stop,
                "delta": self.means[r],
                "delta_raw": self.raw_means[r],
                "empty": w.empty,
                "noise_len": self.noise_len,
                "baseline": self.baseline,
                "peak_end": self.peak_end,
                "used_fallback": self.used_fallback,
            }
            if self.per_codebook is not None:
                row.update({f"delta_cb{k}": float(v) for k, v in enumerate(self.per_codebook[r])})
            out.append(row)
        return out


def _first_stable_start(below: npt.NDArray[np.bool_], search_from: int, stable_len: int) -> int | None:
    """First ``s = i − stable_len`` with ``search_from <= i <= len − 1`` and ``below[s:i]`` all true."""
    n = below.size
    if n < stable_len or search_from >= n:
        return None
    # runs[s] == stable_len  <=>  below[s : s + stable_len] all true, for s = 0 … n − stable_len.
    runs = np.convolve(below.astype(np.int64), np.ones(stable_len, dtype=np.int64), mode="valid")
    lo = max(search_from - stable_len, 0)
    hi = n - stable_len  # i = s + stable_len must stay < n, so s < n − stable_len
    hits = np.flatnonzero(runs[lo:hi] == stable_len)
    return int(lo + hits[0]) if hits.size else None


def paper_regions(
    diff: npt.ArrayLike,
    noise_len: int,
    *,
    peak_start: int = 245,
    stable_len: int = 5,
    search_from: int = 250,
    fallback_end: int = 295,
    onset_index: int = 249,
    guard: int = 4,
    baseline_len: int = 200,
) -> PaperRegions:
    """Run the authors' region detector on a frame-indexed Δ curve.

    Args:
        diff: our frame-indexed Δ, either the codebook-mean curve ``d[F']`` or per-codebook curves ``[K, F']``
            (then the detector runs on ``codebook_mean(diff)`` and per-codebook region means are added).
            Frame 0 is dropped (it becomes nothing in CSV coordinates); every other value must be finite.
        noise_len: noise length ``L`` in frames.
        peak_start: Peak start in CSV coordinates (authors: 245, i.e. frame 246).
        stable_len: length of the at-or-below-baseline run that ends the Peak (authors: 5).
        search_from: first ``i`` scanned; the run is ``csv[i − stable_len : i]`` (authors: 250).
        fallback_end: ``e_P`` when no run is found (authors: 295).
        onset_index: CSV position of the first noisy frame (authors: 249 = frame 250).
        guard: positions added after the noise end for the Assimilation end (authors: 4).
        baseline_len: the baseline is ``mean(csv[:baseline_len])`` (authors: 200).

    Returns:
        :class:`PaperRegions` with windows in CSV and frame coordinates and the per-region means.

    Raises:
        ValueError: if the curve (after dropping frame 0) holds a non-finite value; the authors' detector is only
            defined on complete curves (trim or fix the curve first).

    >>> import numpy as np
    >>> d = np.r_[np.nan, np.zeros(245), np.full(10, 2.0), np.full(245, -1.0)]  # frames 0 … 500
    >>> r = paper_regions(d, 100)   # csv[245:255] = 2 is the spike; the first run <= 0 starts at 255
    >>> r.peak_end, r.csv_windows["peak"], r.windows["peak"]
    (255, Window(start=245, stop=255), Window(start=246, stop=256))
    >>> r.windows["assimilation"], r.means["peak"], r.means["assimilation"]
    (Window(start=256, stop=354), 2.0, -1.0)
    """
    x = as_float(diff)
    if x.ndim not in (1, 2):
        raise ValueError(f"diff must be [F] or [K, F], got shape {x.shape}")
    if noise_len < 0:
        raise ValueError(f"noise_len must be >= 0, got {noise_len}")
    if stable_len < 1:
        raise ValueError(f"stable_len must be >= 1, got {stable_len}")
    curve = codebook_mean(x) if x.ndim == 2 else x
    csv = to_csv_curve(curve)
    if not np.all(np.isfinite(csv)):
        bad = np.flatnonzero(~np.isfinite(csv))
        raise ValueError(
            f"the paper detector needs a finite curve after frame 0; non-finite at frames {(bad + CSV_OFFSET)[:10].tolist()}"
        )
    n = csv.size
    baseline = float(np.mean(csv[:baseline_len])) if n else float("nan")

    found = _first_stable_start(csv <= baseline, search_from, stable_len)
    peak_end = fallback_end if found is None else found
    assim_end = min(onset_index + noise_len + guard, n - 1)
    csv_windows = {
        "peak": Window(peak_start, peak_end),
        "assimilation": Window(peak_end, assim_end),
        "recovery": Window(assim_end, n - 1),
    }
    raw = {r: float(window_mean(csv, w)) for r, w in csv_windows.items()}
    per_cb = None
    if x.ndim == 2:
        cb = to_csv_curve(x)
        per_cb = {r: np.asarray(window_mean(cb, w)) for r, w in csv_windows.items()}
    return PaperRegions(
        noise_len=int(noise_len),
        n_positions=int(n),
        baseline=baseline,
        peak_end=int(peak_end),
        used_fallback=found is None,
        csv_windows=csv_windows,
        windows={r: w.shift(CSV_OFFSET) for r, w in csv_windows.items()},
        means={r: (0.0 if np.isnan(v) else v) for r, v in raw.items()},
        raw_means=raw,
        per_codebook=per_cb,
    )
