"""Profile features: numbers read off one Δℓ_t curve around a short burst (peak, assimilation, exit, recovery).

A burst replaces the clip at the nominal target frames ``[onset, offset)``; ``Δ[k, f] = nll_perturbed − nll_clean``
is the change in the loss of predicting frame ``f`` of codebook ``k``. :func:`curve_features` reads a fixed set of
numbers (:data:`FEATURES`) off one curve ``[F]`` (one codebook's, or the codebook mean); :func:`clip_profile` does
it for every codebook and the mean of one clip under one burst; :func:`feature_marks` returns where each feature
is read, for figures.

Windows and anchors
-------------------
The windows are the shared anchored definition of :mod:`cae.analysis.windows`
(:func:`~cae.analysis.windows.burst_anchors`, :func:`~cae.analysis.windows.burst_windows`: the same anchors and
Assimilation as :func:`cae.analysis.anchored_regions`), with the parameters of :class:`FeatureParams`. The token
mask gives ``first`` and ``last``, the first and last frame where any codebook's token changed (the tokenizer's
look-ahead changes a frame or so before the onset, and a frame or so after the offset); without a changed token the
nominal ``onset`` / ``offset − 1`` are used (``anchor="nominal"``). With :class:`FeatureParams` ``p`` and the exit anchor
``x = max(offset, last + 1)`` (the first frame whose tokens are clean again):

* **Peak** ``P = [first − p.lead_frames, min(onset + p.peak_frames, offset))``. The lead (default 2) covers MusicGen's
  delay pattern: codebook ``k`` at frame ``f`` is predicted after codebook 0 up to frame ``f + k − 1`` has been seen,
  so with 4 codebooks a change reaches the scores of codebook 3 two frames early.
* **Assimilation** ``A = [onset + p.peak_frames, offset)`` (empty for bursts of ``p.peak_frames`` frames or fewer;
  named ``assim`` in feature and region names).
* **Exit** ``X = [offset, x + p.exit_frames)``: the first frames of music after the burst.
* **Recovery** ``R = [x, x + p.recovery_frames)`` (to the end of the clip when ``recovery_frames`` is ``None``),
  bounded by default so that bursts at different onsets give comparable areas.

Windows are clamped to the curve. Empty windows give NaN, never 0.

Features (one row per clip × condition × codebook or ``"mean"``; :data:`FEATURES`)
-----------------------------------------------------------------------------------
``d`` is the row's Δ curve (one codebook's, or the codebook mean, :func:`cae.analysis.codebook_mean`); ``h`` the peak
height and ``t_p`` the frame where it is reached. Non-finite values are ignored. Units: nats, frames, nats·frames.

* ``peak_height`` ``h = max_P d``; ``peak_lag = t_p − onset`` (frames; negative when the peak comes before the
  nominal onset, as the look-ahead allows).
* ``peak_width``: full width at half maximum: the number of consecutive frames around ``t_p``, within
  ``[P.start, offset)``, where ``d ≥ h / 2`` (NaN when ``h ≤ 0``). A flat plateau over the whole burst is as wide
  as the burst; a spike is 1–3 frames wide.
* ``peak_prominence``: ``h − min d`` over ``(t_p, offset)``: how far the loss falls back from the peak before the
  burst ends, dips below the clean loss included (NaN when the peak is on the burst's last frame).
* ``peak_contrast``: ``h − mean(max(d, 0))`` over ``(t_p, offset)``: the peak minus the loss that stays *raised*
  for the rest of the burst, i.e. strength × sharpness, ``h · (1 − sustained / h)``. A plateau of any height gives
  about 0, no reaction gives about 0, a spike followed by assimilation gives about ``h``. Dips below the clean loss
  earn nothing (unlike the prominence), so a model whose noise tokens are merely a little likelier everywhere does
  not score. NaN when the peak is on the burst's last frame.
* ``assim_time``: frames from ``t_p`` to the first frame ``t`` in ``(t_p, offset)`` from which ``d`` stays at or
  below ``p.assim_frac · h`` for ``p.assim_hold`` frames (or until the burst ends); NaN if that never happens
  within the burst or ``h ≤ 0``.
* ``assim_depth``: ``−mean_A d``: how far below the clean loss the burst's tokens are predicted once assimilated
  (positive: the noise is predicted *better* than the music was); NaN when ``A`` is empty.
* ``exit_spike`` ``= max_X d`` and ``exit_lag`` (frames from ``offset``): the surprise when the music comes back.
* ``recovery_time``: frames from ``x`` to the first frame ``t ≥ x`` where the mean of ``|d|`` over
  ``[t, t + p.recovery_hold)`` is at most ``p.recovery_tol`` (the loss is back at the clean loss); NaN if never
  before the clip ends.
* ``{peak,assim,recovery}_area_pos`` / ``_area_neg``: the sums of ``max(d, 0)`` and ``min(d, 0)`` over ``P``, ``A``,
  ``R`` (the negative area is ≤ 0); ``{peak,assim,recovery}_mean`` the means, and ``_n`` the window lengths.

>>> import numpy as np
>>> d = np.zeros(60); d[19:22] = [4.0, 3.0, 1.0]; d[22:30] = -0.5; d[30:32] = [2.0, 1.0]
>>> f = curve_features(d, onset=20, offset=30, first=19, last=30)
>>> f["peak_height"], f["peak_lag"], f["peak_width"], f["peak_prominence"], f["assim_time"], f["assim_depth"]
(4.0, -1, 2, 4.5, 3, 0.5)
>>> f["peak_contrast"]   # 4 minus the mean raised loss after the peak, (3 + 1 + 8 * 0) / 10
3.6
>>> f["exit_spike"], f["exit_lag"], f["recovery_time"]
(2.0, 0, 1)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from cae.analysis import codebook_mean
from cae.analysis._arrays import as_float
from cae.analysis.windows import Window, burst_anchors, burst_windows

__all__ = ["FEATURES", "FeatureParams", "clip_profile", "curve_features", "feature_marks"]

FloatArray = npt.NDArray[np.float64]
NAN = float("nan")

#: Feature columns of :func:`curve_features`, in table order.
FEATURES: tuple[str, ...] = (
    "peak_height", "peak_lag", "peak_width", "peak_prominence", "peak_contrast", "assim_time", "assim_depth",
    "exit_spike", "exit_lag", "recovery_time",
    "peak_area_pos", "peak_area_neg", "assim_area_pos", "assim_area_neg", "recovery_area_pos", "recovery_area_neg",
    "peak_mean", "assim_mean", "recovery_mean", "peak_n", "assim_n", "recovery_n",
)  # fmt: skip
#: The ``codebook`` label of the codebook-mean row.
_MEAN = "mean"


# ---------------------------------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class FeatureParams:
    """Parameters of the feature windows (all in frames except the two thresholds); see the module docstring.

    Attributes:
        lead_frames: the Peak window starts this many frames before the first changed token (delay pattern).
        peak_frames: the Peak window ends this many frames after the nominal onset (the paper: ~5 tokens).
        assim_frac: assimilation threshold, as a fraction of the peak height.
        assim_hold: frames the curve must stay below the threshold to count as assimilated.
        exit_frames: the Exit window runs this many frames past the exit anchor ``max(offset, last + 1)``.
        recovery_tol: recovery threshold on the running mean of ``|Δ|`` (nats).
        recovery_hold: length of that running mean (frames).
        recovery_frames: length of the Recovery window (``None``: to the end of the clip).
    """

    lead_frames: int = 2
    peak_frames: int = 5
    assim_frac: float = 0.1
    assim_hold: int = 2
    exit_frames: int = 10
    recovery_tol: float = 0.1
    recovery_hold: int = 5
    recovery_frames: int | None = 100

    def __post_init__(self) -> None:
        for name in ("lead_frames", "peak_frames", "exit_frames"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("assim_hold", "recovery_hold"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.recovery_frames is not None and int(self.recovery_frames) < 1:
            raise ValueError(f"recovery_frames must be None or >= 1, got {self.recovery_frames!r}")
        if not (self.assim_frac >= 0 and self.recovery_tol >= 0):
            raise ValueError("assim_frac and recovery_tol must be >= 0")

    def columns(self) -> dict[str, Any]:
        """The parameters as ``param_<name>`` columns for result rows."""
        return {f"param_{k}": v for k, v in asdict(self).items()}


# ---------------------------------------------------------------------------------------------------------------------
# Features of one curve


def _finite_max(seg: FloatArray) -> tuple[float, int | None]:
    ok = np.isfinite(seg)
    if not ok.any():
        return NAN, None
    i = int(np.argmax(np.where(ok, seg, -np.inf)))
    return float(seg[i]), i


def _areas(seg: FloatArray) -> tuple[float, float, float, int]:
    """(positive area, negative area, mean, n) over the finite values of a window; NaN when none is finite."""
    ok = seg[np.isfinite(seg)]
    if ok.size == 0:
        return NAN, NAN, NAN, int(seg.size)
    return float(np.clip(ok, 0, None).sum()), float(np.clip(ok, None, 0).sum()), float(ok.mean()), int(seg.size)


def _windows(n: int, onset: int, offset: int, first: int, last: int, p: FeatureParams) -> dict[str, Window]:
    """The feature windows ``peak, assim, exit, recovery`` (:func:`~cae.analysis.windows.burst_windows` with ``p``)."""
    w = burst_windows(n, onset, offset, first, last, peak_frames=p.peak_frames, lead_frames=p.lead_frames,
                      peak_in_burst=True, exit_frames=p.exit_frames, recovery_frames=p.recovery_frames)
    return {("assim" if k == "assimilation" else k): v for k, v in w.items()}


def curve_features(
    diff: npt.ArrayLike,
    *,
    onset: int,
    offset: int,
    first: int | None = None,
    last: int | None = None,
    params: FeatureParams | None = None,
) -> dict[str, float | int]:
    """The profile features of one Δ curve (definitions in the module docstring).

    Args:
        diff: Δ curve ``[F]`` (nats), indexed by target frame: one codebook's, or the codebook mean.
        onset: first frame of the burst (nominal).
        offset: first frame after the burst (nominal, exclusive); must be > ``onset``.
        first: first changed frame from the token mask (any codebook); ``None`` → ``onset``.
        last: last changed frame (inclusive); ``None`` → ``offset − 1``.
        params: window parameters (default :class:`FeatureParams`).

    Returns:
        ``{feature: value}`` for every name in :data:`FEATURES` (floats, NaN where undefined; lags, times and
        window lengths as ints when defined).

    >>> import numpy as np
    >>> flat = np.r_[np.zeros(10), np.full(10, 1.5), np.zeros(30)]     # a plateau, no assimilation
    >>> f = curve_features(flat, onset=10, offset=20)
    >>> f["peak_height"], f["peak_width"], f["peak_prominence"], f["assim_time"]
    (1.5, 10, 0.0, nan)
    >>> f["peak_contrast"]
    0.0
    """
    d = as_float(diff)
    if d.ndim != 1:
        raise ValueError(f"diff must be a 1-D curve [F], got shape {d.shape}")
    if not 0 <= onset < offset:
        raise ValueError(f"need 0 <= onset < offset, got onset={onset}, offset={offset}")
    p = params or FeatureParams()
    n = d.size
    first = onset if first is None else int(first)
    last = offset - 1 if last is None else int(last)
    w = _windows(n, onset, offset, first, last, p)
    out: dict[str, float | int] = dict.fromkeys(FEATURES, NAN)

    # Peak: height, lag, width at half maximum, prominence over the rest of the burst.
    pk = w["peak"]
    h, i = _finite_max(d[pk.as_slice()])
    if i is not None:
        tp = pk.start + i
        out["peak_height"], out["peak_lag"] = h, tp - onset
        stop = min(offset, n)
        if h > 0:
            lo = tp
            while lo - 1 >= pk.start and np.isfinite(d[lo - 1]) and d[lo - 1] >= h / 2:
                lo -= 1
            hi = tp
            while hi + 1 < stop and np.isfinite(d[hi + 1]) and d[hi + 1] >= h / 2:
                hi += 1
            out["peak_width"] = hi - lo + 1
        after = d[tp + 1:stop]
        if np.isfinite(after).any():
            out["peak_prominence"] = h - float(np.nanmin(after))
            out["peak_contrast"] = h - float(np.nanmean(np.clip(after, 0.0, None)))
        if h > 0:
            thr = p.assim_frac * h
            for t in range(tp + 1, stop):
                seg = d[t:min(t + int(p.assim_hold), stop)]
                if np.isfinite(seg).all() and (seg <= thr).all():
                    out["assim_time"] = t - tp
                    break

    # Assimilation depth, exit spike.
    a = w["assim"]
    if not a.empty:
        seg = d[a.as_slice()]
        if np.isfinite(seg).any():
            out["assim_depth"] = -float(np.nanmean(seg))
    e, j = _finite_max(d[w["exit"].as_slice()])
    if j is not None:
        out["exit_spike"], out["exit_lag"] = e, w["exit"].start + j - offset

    # Recovery time: first t >= x with mean |d| over [t, t + hold) <= tol.
    x = max(offset, last + 1)
    hold = int(p.recovery_hold)
    if x + hold <= n:
        absd = np.abs(d[x:])
        ok = np.isfinite(absd)
        csum = np.concatenate([[0.0], np.cumsum(np.where(ok, absd, 0.0))])
        ccnt = np.concatenate([[0], np.cumsum(ok)])
        s = csum[hold:] - csum[:-hold]
        c = ccnt[hold:] - ccnt[:-hold]
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(c == hold, s / np.maximum(c, 1), np.inf)
        hit = np.flatnonzero(m <= p.recovery_tol)
        if hit.size:
            out["recovery_time"] = int(hit[0])

    # Areas, means and lengths per region.
    for name in ("peak", "assim", "recovery"):
        pos, neg, mean, _ = _areas(d[w[name].as_slice()])
        out[f"{name}_area_pos"], out[f"{name}_area_neg"], out[f"{name}_mean"] = pos, neg, mean
        out[f"{name}_n"] = w[name].n
    return out


def feature_marks(
    diff: npt.ArrayLike,
    mask: npt.ArrayLike | None,
    *,
    onset: int,
    offset: int,
    params: FeatureParams | None = None,
    before: int = 10,
    after: int = 40,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Data for a feature figure: the curve with its regions, and where each feature is read on it.

    Args:
        diff: Δ ``[F]`` or ``[K, F]`` (then the codebook mean is used).
        mask: token mask ``[K, F]`` / ``[F]`` or ``None`` (nominal anchors).
        onset, offset: the nominal burst.
        params: window parameters.
        before, after: frames of curve to return before the onset and after the offset.

    Returns:
        ``(curve, marks)``. ``curve``: one row per frame with ``frame``, ``rel`` (frame − onset), ``delta`` and
        ``region`` (``"peak"``, ``"assim"``, ``"exit"``, ``"recovery"`` or ``"outside"``; the first matching of
        Peak, Assimilation, Exit, Recovery). ``marks``: one row per feature with ``feature``, ``frame_start``,
        ``frame_stop`` (the frames it spans; equal for a point), ``value`` (the level it marks, e.g. the half
        maximum for the width) and ``feature_value``.

    >>> import numpy as np
    >>> d = np.zeros(60); d[19:22] = [4.0, 3.0, 1.0]; d[22:30] = -0.5; d[30:32] = [2.0, 1.0]
    >>> curve, marks = feature_marks(d, None, onset=20, offset=30)
    >>> w = marks.set_index("feature").loc["peak_width"]
    >>> int(w["frame_start"]), int(w["frame_stop"]), float(w["value"])
    (19, 20, 2.0)
    """
    x = as_float(diff)
    curve = codebook_mean(x) if x.ndim == 2 else x
    p = params or FeatureParams()
    a = burst_anchors(mask, onset, offset)
    first, last = a.first, a.last
    f = curve_features(curve, onset=onset, offset=offset, first=first, last=last, params=p)
    n = curve.size
    w = _windows(n, onset, offset, first, last, p)
    lo, hi = max(0, onset - before), min(n, offset + after)
    frames = np.arange(lo, hi)
    region = np.full(frames.size, "outside", dtype=object)
    for name in ("recovery", "exit", "assim", "peak"):  # reverse priority: earlier names win
        win = w[name]
        region[(frames >= win.start) & (frames < win.stop)] = name
    curve_df = pd.DataFrame({"frame": frames, "rel": frames - onset, "delta": curve[lo:hi], "region": region})

    marks: list[dict[str, Any]] = []

    def mark(feature: str, a: float, b: float, value: float) -> None:
        marks.append({"feature": feature, "frame_start": int(a), "frame_stop": int(b), "value": float(value),
                      "feature_value": f.get(feature, NAN)})

    h = f["peak_height"]
    if math.isfinite(h):
        tp = onset + int(f["peak_lag"])
        mark("peak_height", tp, tp, h)
        if math.isfinite(f["peak_width"]):
            left = tp
            while left - 1 >= w["peak"].start and np.isfinite(curve[left - 1]) and curve[left - 1] >= h / 2:
                left -= 1
            mark("peak_width", left, left + int(f["peak_width"]) - 1, h / 2)
        if math.isfinite(f["peak_prominence"]):
            seg = curve[tp + 1:min(offset, n)]
            tmin = tp + 1 + int(np.nanargmin(seg))
            mark("peak_prominence", tp, tmin, h - f["peak_prominence"])
            mark("peak_contrast", tp + 1, min(offset, n) - 1, h - f["peak_contrast"])
        if math.isfinite(f["assim_time"]):
            mark("assim_time", tp, tp + int(f["assim_time"]), p.assim_frac * h)
    if math.isfinite(f["assim_depth"]):
        mark("assim_depth", w["assim"].start, w["assim"].stop - 1, -f["assim_depth"])
    if math.isfinite(f["exit_spike"]):
        te = offset + int(f["exit_lag"])
        mark("exit_spike", te, te, f["exit_spike"])
    if math.isfinite(f["recovery_time"]):
        mark("recovery_time", a.exit, a.exit + int(f["recovery_time"]), p.recovery_tol)
    for name in ("peak", "assim", "recovery"):
        if w[name].n:
            mark(f"{name}_area_pos", w[name].start, w[name].stop - 1, f[f"{name}_area_pos"])
            mark(f"{name}_area_neg", w[name].start, w[name].stop - 1, f[f"{name}_area_neg"])
    return curve_df, pd.DataFrame(marks, columns=["feature", "frame_start", "frame_stop", "value", "feature_value"])


def clip_profile(
    nll_perturbed: npt.ArrayLike,
    nll_clean: npt.ArrayLike,
    mask: npt.ArrayLike | None,
    *,
    onset: int,
    offset: int,
    params: FeatureParams | None = None,
) -> list[dict[str, Any]]:
    """Feature rows of one clip under one burst: one per codebook (``"0"`` … ``"K-1"``) and one for the mean.

    Args:
        nll_perturbed: per-token NLL of the perturbed clip ``[K, F]`` (nats, target-frame indexed).
        nll_clean: per-token NLL of the clean clip ``[K, F]``.
        mask: token-difference mask ``[K, F]`` (``True`` = changed), or ``None`` for the nominal anchors. Its first
            and last changed frame over all codebooks anchor every row.
        onset, offset: the nominal burst ``[onset, offset)`` in frames.
        params: window parameters.

    Returns:
        ``K + 1`` dicts with ``codebook`` (a string), ``anchor`` (``"mask"`` / ``"nominal"``), ``first_changed``,
        ``last_changed`` and the :data:`FEATURES`.

    >>> import numpy as np
    >>> clean = np.ones((2, 40)); pert = clean.copy(); pert[:, 10:12] += [[3.0, 1.0], [1.0, 1.0]]
    >>> rows = clip_profile(pert, clean, None, onset=10, offset=15)
    >>> [(r["codebook"], r["peak_height"]) for r in rows]
    [('0', 3.0), ('1', 1.0), ('mean', 2.0)]
    """
    p = params or FeatureParams()
    pert, clean = as_float(nll_perturbed), as_float(nll_clean)
    if pert.ndim != 2 or clean.ndim != 2 or pert.shape[0] != clean.shape[0]:
        raise ValueError(f"need per-token NLL [K, F] for both, got {pert.shape} and {clean.shape}")
    n = min(pert.shape[1], clean.shape[1])
    d = pert[:, :n] - clean[:, :n]
    a = burst_anchors(mask, onset, offset)
    first, last = a.first, a.last
    base = {"anchor": a.anchor, "first_changed": first, "last_changed": last}
    curves = [(str(k), d[k]) for k in range(d.shape[0])] + [(_MEAN, codebook_mean(d))]
    return [{"codebook": name, **base, **curve_features(c, onset=onset, offset=offset, first=first, last=last,
                                                           params=p)}
            for name, c in curves]
