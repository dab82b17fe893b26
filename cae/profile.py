"""The profile score: read quality from the *shape* of the loss response to short noise injections.

The paper argues that the absolute loss of a music LM is a poor quality signal (noise can lower it), and that the
shape of the token-wise response Δℓ_t to a perturbation carries the information instead: a sharp **Peak** on a
short injection shows that the model can tell musical material from non-musical material. This module makes that
claim operational and testable.

Method
------
1. **Protocol** (:class:`Protocol`): short white-noise bursts *replace* the clip at a few onsets (default: 5 and 10
   frames, i.e. 0.1 and 0.2 s, at frames 150, 300 and 450), each burst as loud as the clip (SNR 0 dB relative to
   the clip's RMS, ``reference="snr-rms"``), so that quiet and loud clips get comparable bursts. Every burst is its
   own perturbed copy of the clip, scored with :func:`cae.sweep.run_sweep` (cached).
2. **Features** (:func:`curve_features`, :func:`clip_profile`, :func:`profile_table`): from Δℓ_t
   (``nll_perturbed − nll_clean``, ``[K, F]``, target-frame indexed) and the token mask (which tokens changed),
   per codebook and for the codebook mean, a fixed set of numbers read off the curve (see *Features*).
3. **Scores**: :func:`model_scores` (one number per model: how strongly and sharply it reacts to short bursts on
   real music) and :func:`clip_scores` (one number per clip and model: how strongly the model reacts to a burst in
   *this* clip). Both are means of one feature (default: :data:`DEFAULT_SCORE_FEATURE`, the peak contrast of the
   codebook-mean curve) over the protocol's short conditions.
4. **Validation** (:func:`validate_models`, :func:`validate_clips`): Spearman rank correlations, with bootstrap CIs
   over clips, between the scores and a known quality order (training checkpoints of the reference model; graded
   degradations of real clips; generated sets over top-k and temperature), next to the same correlation for the
   absolute clean loss, the baseline the paper argues against.

Windows and anchors
-------------------
All indices are target frames (``Δ[k, f]`` is the change in the loss of predicting frame ``f`` of codebook ``k``).
The nominal burst is ``[onset, offset)``. The token mask gives ``first`` and ``last``, the first and last frame where
any codebook's token changed (the tokenizer's look-ahead changes a frame or so before the onset, and a frame or so
after the offset); without a changed token the nominal ``onset`` / ``offset − 1`` are used (``anchor="nominal"``).
With :class:`FeatureParams` ``p`` and the exit anchor ``x = max(offset, last + 1)`` (the first frame whose tokens are
clean again):

* **Peak** ``P = [first − p.lead_frames, min(onset + p.peak_frames, offset))``. The lead (default 2) covers MusicGen's
  delay pattern: codebook ``k`` at frame ``f`` is predicted after codebook 0 up to frame ``f + k − 1`` has been seen,
  so with 4 codebooks a change reaches the scores of codebook 3 two frames early.
* **Assimilation** ``A = [onset + p.peak_frames, offset)`` (empty for bursts of ``p.peak_frames`` frames or fewer).
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

Rows also carry the clip, condition, model, anchors, the clip's clean and perturbed loss (``loss_clean``,
``loss``; mean NLL over all tokens, the baseline) and the feature parameters (``param_*`` columns).

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

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from cae.analysis import bootstrap_ci, codebook_mean, mask_summary
from cae.analysis._arrays import as_float
from cae.analysis.windows import Window
from cae.errors import ModelError, PerturbationError
from cae.perturb import Noise, Perturbation, RandomPairSwaps, Span

__all__ = [
    "checkpoint_models",
    "DEFAULT_LADDERS",
    "DEFAULT_SCORE_FEATURE",
    "FEATURES",
    "BitCrush",
    "ClipValidation",
    "FeatureParams",
    "LowPass",
    "ModelValidation",
    "ProfileResult",
    "Protocol",
    "clip_profile",
    "clip_scores",
    "curve_features",
    "degradation_ladder",
    "feature_marks",
    "model_scores",
    "profile_clips",
    "profile_table",
    "rank_correlations",
    "validate_clips",
    "validate_models",
]

FloatArray = npt.NDArray[np.float64]
NAN = float("nan")

#: Feature columns of :func:`curve_features`, in table order.
FEATURES: tuple[str, ...] = (
    "peak_height", "peak_lag", "peak_width", "peak_prominence", "peak_contrast", "assim_time", "assim_depth",
    "exit_spike", "exit_lag", "recovery_time",
    "peak_area_pos", "peak_area_neg", "assim_area_pos", "assim_area_neg", "recovery_area_pos", "recovery_area_neg",
    "peak_mean", "assim_mean", "recovery_mean", "peak_n", "assim_n", "recovery_n",
)  # fmt: skip
#: The feature both scores average by default.
DEFAULT_SCORE_FEATURE = "peak_contrast"
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


@dataclass(frozen=True)
class Protocol:
    """The short-injection protocol: one perturbed copy per (onset, length).

    Attributes:
        lengths: burst lengths in frames (default 5 and 10 frames: 0.1 and 0.2 s at 50 Hz).
        onsets: burst onsets in frames (default 3, 6 and 9 s).
        colour, mode, level_db, reference: as in :class:`cae.perturb.Noise` (default: white noise replacing the
            audio, at 0 dB SNR relative to the clip's RMS).
        seed: noise seed (the sweep advances it by the clip's index).
        frame_rate: codec frame rate the spans are given in.
        tail_frames: frames the clip must extend past the last burst (for the Exit and Recovery windows).

    >>> p = Protocol()
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
    x = max(offset, last + 1)
    rec_stop = n if p.recovery_frames is None else x + int(p.recovery_frames)
    w = {
        "peak": Window(first - int(p.lead_frames), min(onset + int(p.peak_frames), offset)),
        "assim": Window(onset + int(p.peak_frames), offset),
        "exit": Window(offset, x + int(p.exit_frames)),
        "recovery": Window(x, rec_stop),
    }
    return {k: v.clip(0, n) for k, v in w.items()}


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
    first, last = onset, offset - 1
    if mask is not None:
        s = mask_summary(mask)
        if s.any_changed:
            assert s.first is not None and s.last is not None
            first, last = s.first, s.last
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
        xa = max(offset, last + 1)
        mark("recovery_time", xa, xa + int(f["recovery_time"]), p.recovery_tol)
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
    anchor, first, last = "nominal", onset, offset - 1
    if mask is not None:
        s = mask_summary(mask)
        if s.any_changed:
            assert s.first is not None and s.last is not None
            anchor, first, last = "mask", s.first, s.last
    base = {"anchor": anchor, "first_changed": first, "last_changed": last}
    curves = [(str(k), d[k]) for k in range(d.shape[0])] + [(_MEAN, codebook_mean(d))]
    return [{"codebook": name, **base, **curve_features(c, onset=onset, offset=offset, first=first, last=last,
                                                           params=p)}
            for name, c in curves]


# ---------------------------------------------------------------------------------------------------------------------
# From sweep tables to the profile table


def _span_frames(
    perturbation: Mapping[str, Any] | str | None, sample_rate: int, frame_rate: float
) -> tuple[int, int] | None:
    """Nominal ``(onset, offset)`` frames of a perturbation with a ``span``; ``None`` when it has none."""
    if perturbation is None or (isinstance(perturbation, float) and math.isnan(perturbation)):
        return None
    spec = json.loads(perturbation) if isinstance(perturbation, str) else dict(perturbation)
    span = spec.get("span")
    if not isinstance(span, Mapping):
        return None
    start, stop = Span.from_dict(span).to_samples(int(sample_rate))
    hop = sample_rate / frame_rate
    onset = math.floor(start / hop)
    return onset, max(math.ceil(stop / hop), onset + 1)


_ID_COLUMNS = ("model_id", "clip", "condition", "length_frames", "onset_frame", "offset_frame")


def profile_table(
    tokens: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    params: FeatureParams | None = None,
    min_frames: int | None = None,
) -> pd.DataFrame:
    """The tidy profile table of a sweep: one row per model × clip × condition × codebook-or-``"mean"``.

    Args:
        tokens: per-token rows of :func:`cae.sweep.run_sweep` / :func:`cae.score.score_clips` (``clip, condition,
            codebook, frame, nll, nll_clean, changed``, and ``model_id``).
        summary: their per-condition summary (``clip, condition, perturbation, loss, error, sample_rate,
            frame_rate, model_id`` …). Conditions whose perturbation has no ``span`` (shuffles) are skipped.
        params: feature window parameters (recorded as ``param_*`` columns).
        min_frames: clips shorter than this many frames get an error row instead of features (e.g.
            :attr:`Protocol.min_frames`); ``None``: no check.

    Returns:
        A DataFrame with the columns ``model_id, clip, condition, length_frames, onset_frame, offset_frame,
        codebook`` (``"0"``… or ``"mean"``), ``anchor, first_changed, last_changed``, the :data:`FEATURES`,
        ``loss_clean, loss, delta_loss, error`` and ``param_*``. A clip or condition that failed (unreadable file,
        clip too short) has one row with ``error`` set (naming the file) and NaN features.
    """
    p = params or FeatureParams()
    pcols = p.columns()
    rows: list[dict[str, Any]] = []
    summ = summary.copy()
    if "model_id" not in summ:
        summ["model_id"] = "unknown"
    tok = tokens
    if "model_id" not in tok:
        tok = tok.assign(model_id=summ["model_id"].iloc[0] if len(summ) else "unknown")
    groups = {key: g for key, g in tok.groupby(["model_id", "clip", "condition"], sort=False)}

    def error_row(base: Mapping[str, Any], message: str) -> None:
        rows.append({**{c: None for c in _ID_COLUMNS}, **base, "codebook": None, "error": message, **pcols})

    for (model_id, clip), rows_c in summ.groupby(["model_id", "clip"], sort=False):
        clean = rows_c[rows_c["condition"] == "clean"]
        clean_err = clean["error"].dropna()
        base = {"model_id": model_id, "clip": clip}
        if len(clean_err):
            error_row({**base, "condition": "clean"}, str(clean_err.iloc[0]))
            continue
        loss_clean = float(clean["loss"].iloc[0]) if len(clean) else NAN
        n_frames = int(clean["n_frames"].iloc[0]) if len(clean) and "n_frames" in clean else None
        if min_frames is not None and n_frames is not None and n_frames < min_frames:
            fr = float(rows_c["frame_rate"].iloc[0]) if "frame_rate" in rows_c else 50.0
            error_row({**base, "condition": "clean", "loss_clean": loss_clean},
                      f"{clip}: clip too short for the profile protocol: {n_frames} frames "
                      f"({n_frames / fr:.2f} s), needs at least {min_frames} ({min_frames / fr:.2f} s)")
            continue
        for _, s in rows_c[rows_c["condition"] != "clean"].iterrows():
            cbase = {**base, "condition": s["condition"], "loss_clean": loss_clean}
            if isinstance(s.get("error"), str):
                error_row(cbase, s["error"])
                continue
            sr = int(s["sample_rate"]) if "sample_rate" in s and pd.notna(s["sample_rate"]) else 32000
            fr = float(s["frame_rate"]) if "frame_rate" in s and pd.notna(s["frame_rate"]) else 50.0
            span = _span_frames(s.get("perturbation"), sr, fr)
            if span is None:
                continue
            onset, offset = span
            g = groups.get((model_id, clip, s["condition"]))
            if g is None:
                error_row(cbase, f"{clip}: no token rows for condition {s['condition']!r}")
                continue
            k = int(g["codebook"].max()) + 1
            f = int(g["frame"].max()) + 1
            cb, fr_idx = g["codebook"].to_numpy(int), g["frame"].to_numpy(int)
            nll, nllc = np.full((k, f), NAN), np.full((k, f), NAN)
            mask = np.zeros((k, f), dtype=bool)
            nll[cb, fr_idx] = g["nll"].to_numpy(float)
            nllc[cb, fr_idx] = g["nll_clean"].to_numpy(float)
            mask[cb, fr_idx] = g["changed"].to_numpy(bool)
            if offset > f:
                error_row(cbase, f"{clip}: burst [{onset}, {offset}) runs past the clip's {f} frames")
                continue
            extra = {"length_frames": offset - onset, "onset_frame": onset, "offset_frame": offset,
                     "loss": float(s["loss"]), "delta_loss": float(s["delta_loss"]), "error": None}
            for r in clip_profile(nll, nllc, mask, onset=onset, offset=offset, params=p):
                rows.append({**cbase, **extra, **r, **pcols})
    cols = [*_ID_COLUMNS, "codebook", "anchor", "first_changed", "last_changed", *FEATURES, "loss_clean", "loss",
            "delta_loss", "error", *pcols]
    out = pd.DataFrame.from_records(rows)
    for c in cols:
        if c not in out:
            out[c] = None if c in ("codebook", "anchor", "error", "condition") else NAN
    out = out[cols]
    for c in (*FEATURES, "loss_clean", "loss", "delta_loss", "first_changed", "last_changed", "length_frames",
              "onset_frame", "offset_frame"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Scores


def _select(
    table: pd.DataFrame, *, codebook: str, max_length: int | None, lengths: Sequence[int] | None
) -> pd.DataFrame:
    t = table[table["error"].isna() & (table["codebook"] == codebook)]
    if max_length is not None:
        t = t[t["length_frames"] <= max_length]
    if lengths is not None:
        t = t[t["length_frames"].isin([float(v) for v in lengths])]
    return t


def clip_scores(
    table: pd.DataFrame,
    *,
    feature: str = DEFAULT_SCORE_FEATURE,
    codebook: str = _MEAN,
    max_length: int | None = 10,
    lengths: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The clip-level profile score: how strongly and sharply a model reacts to short bursts in *this* clip.

    ``score(model, clip) = mean over the clip's burst conditions with length ≤ max_length of feature(codebook row)``
    (non-finite values skipped). With the defaults: the mean **peak contrast** of the codebook-mean Δℓ_t over
    the protocol's 0.1 s and 0.2 s bursts. Higher means the model separates the burst from this clip's music more
    sharply; the claim under test is that this falls as the clip's quality falls, where the absolute loss does not.

    Args:
        table: a :func:`profile_table`.
        feature: which feature to average (any of :data:`FEATURES`).
        codebook: ``"mean"`` or a codebook index as a string.
        max_length: only bursts of at most this many frames (``None``: all).
        lengths: only these burst lengths (applied after ``max_length``).

    Returns:
        One row per (model_id, clip): ``model_id, clip, score, n_conditions, loss_clean`` and the score's parameters
        (``score_feature, score_codebook, score_max_length``, plus the table's ``param_*`` and ``protocol`` columns
        when it has them); clips with no usable condition get ``score`` NaN.

    >>> t = pd.DataFrame({"model_id": "m", "clip": ["a", "a", "a"], "condition": ["c1", "c2", "c3"],
    ...                   "codebook": "mean", "length_frames": [5.0, 10.0, 50.0], "peak_contrast": [1.0, 3.0, 9.0],
    ...                   "loss_clean": 4.0, "error": None})
    >>> clip_scores(t)[["clip", "score", "n_conditions"]].values.tolist()
    [['a', 2.0, 2]]
    """
    if feature not in table:
        raise ValueError(f"unknown feature {feature!r}; the table has {list(FEATURES)}")
    t = _select(table, codebook=codebook, max_length=max_length, lengths=lengths)
    keys = ["model_id", "clip"]
    all_clips = table[keys].drop_duplicates()
    g = t.groupby(keys, sort=False)
    out = g[feature].agg(lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else NAN).rename("score").reset_index()
    out["n_conditions"] = g[feature].agg(lambda v: int(np.isfinite(v).sum())).to_numpy()
    loss = table.groupby(keys, sort=False)["loss_clean"].first().reset_index()
    out = all_clips.merge(out, on=keys, how="left").merge(loss, on=keys, how="left")
    out["n_conditions"] = out["n_conditions"].fillna(0).astype(int)
    out["score_feature"], out["score_codebook"], out["score_max_length"] = feature, codebook, max_length
    carried = [c for c in table.columns if c.startswith("param_") or c == "protocol"]
    if carried:
        out = out.merge(table.groupby(keys, sort=False)[carried].first().reset_index(), on=keys, how="left")
    return out.reset_index(drop=True)


def model_scores(
    table: pd.DataFrame,
    *,
    feature: str = DEFAULT_SCORE_FEATURE,
    codebook: str = _MEAN,
    max_length: int | None = 10,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The model-level profile score: how strongly and how sharply a model reacts to short bursts on real music.

    ``score(model) = mean over clips of clip_scores(...)`` (the per-clip mean, over bursts of at most
    ``max_length`` frames, of the codebook-mean peak contrast by default), with a bootstrap CI over clips
    (:func:`cae.analysis.bootstrap_ci`). A model that ignores context has a plateau, not a peak, during a burst
    (contrast ≈ 0, whatever its height), and a model that does not react has no peak (contrast ≈ 0); a model that
    has learnt how music continues spikes at the onset and then falls back as it assimilates the noise (contrast
    ≈ the peak height).

    Args:
        table: a :func:`profile_table` (several models allowed).
        feature, codebook, max_length: as in :func:`clip_scores`.
        confidence, n_resamples, seed: the bootstrap CI.

    Returns:
        One row per model_id: ``model_id, score, ci_low, ci_high, n_clips, loss_clean`` (mean clean loss over the
        same clips, the baseline), ``loss_clean_ci_low/high`` and the parameters (``score_feature``,
        ``score_codebook``, ``score_max_length``).
    """
    cs = clip_scores(table, feature=feature, codebook=codebook, max_length=max_length)
    rows = []
    for model_id, g in cs.groupby("model_id", sort=False):
        ci = bootstrap_ci(g["score"].to_numpy(float), confidence=confidence, n_resamples=n_resamples, seed=seed)
        lc = bootstrap_ci(g["loss_clean"].to_numpy(float), confidence=confidence, n_resamples=n_resamples, seed=seed)
        rows.append({"model_id": model_id, "score": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "n_clips": ci.n,
                     "loss_clean": lc.estimate, "loss_clean_ci_low": lc.low, "loss_clean_ci_high": lc.high,
                     "score_feature": feature, "score_codebook": codebook, "score_max_length": max_length})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------------
# Scoring clips (the CLI's engine)


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
    protocol: Protocol
    params: FeatureParams

    @property
    def errors(self) -> pd.DataFrame:
        """Rows of :attr:`table` with an error (one per failed clip or condition)."""
        return self.table[self.table["error"].notna()]


def profile_clips(
    clips: Sequence[str | Path],
    model: Any,
    *,
    protocol: Protocol | None = None,
    params: FeatureParams | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    **sweep_kwargs: Any,
) -> ProfileResult:
    """Score clips under the short-injection protocol and compute their profile table.

    Args:
        clips: audio files.
        model: a loaded :class:`~cae.models.base.MusicLM` or a name for :func:`cae.load_model`.
        protocol: the bursts (default :class:`Protocol`).
        params: feature windows (default :class:`FeatureParams`).
        cache_dir: the sweep cache (default ``$CAE_CACHE_DIR/sweeps``).
        progress: show the sweep's progress bar.
        **sweep_kwargs: passed to :func:`cae.sweep.run_sweep`.

    Returns:
        :class:`ProfileResult`. Unreadable files and clips shorter than ``protocol.min_frames`` become error rows
        naming the file; the other clips complete.
    """
    from cae.sweep import run_sweep

    protocol = protocol or Protocol()
    params = params or FeatureParams()
    tabs = run_sweep(clips, protocol.perturbations(), model, cache_dir=cache_dir, progress=progress, **sweep_kwargs)
    table = profile_table(tabs.tokens, tabs.summary, params=params, min_frames=protocol.min_frames)
    table = table.assign(protocol=json.dumps(protocol.to_dict(), sort_keys=True))
    return ProfileResult(table=table, clips=clip_scores(table), summary=tabs.summary, protocol=protocol,
                         params=params)


# ---------------------------------------------------------------------------------------------------------------------
# Degradations of known severity (whole clip)


def _check_wave(wave: Any) -> npt.NDArray[np.float32]:
    x = np.asarray(wave)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise PerturbationError("wave must be a non-empty, finite, floating-point mono array [N]")
    return np.array(x, dtype=np.float32, copy=True)


@dataclass(frozen=True)
class LowPass(Perturbation):
    """Low-pass filter the whole clip: zero-phase Butterworth (``scipy.signal.sosfiltfilt``) at ``cutoff_hz``.

    The magnitude response is that of an ``order``-th order Butterworth applied twice (forward and backward), so
    −6 dB at the cutoff and ``12·order`` dB/octave above it. A cutoff at or above Nyquist returns the clip
    unchanged.

    >>> import numpy as np
    >>> t = np.arange(32000) / 32000
    >>> x = (np.sin(2 * np.pi * 200 * t) + np.sin(2 * np.pi * 8000 * t)).astype(np.float32)
    >>> y = LowPass(1000.0).apply(x, 32000)
    >>> spec = np.abs(np.fft.rfft(y)) / 16000
    >>> round(float(spec[200]), 2), float(spec[8000]) < 1e-4, LowPass(1000.0).label
    (1.0, True, 'lowpass-1000hz')
    """

    kind: ClassVar[str] = "lowpass"

    cutoff_hz: float
    order: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.cutoff_hz, (int, float)) and math.isfinite(self.cutoff_hz) and self.cutoff_hz > 0):
            raise PerturbationError(f"cutoff_hz must be a positive number, got {self.cutoff_hz!r}")
        if not isinstance(self.order, int) or self.order < 1:
            raise PerturbationError(f"order must be a positive integer, got {self.order!r}")
        object.__setattr__(self, "cutoff_hz", float(self.cutoff_hz))

    @property
    def label(self) -> str:
        return f"lowpass-{self.cutoff_hz:g}hz"

    def apply(self, wave: Any, sample_rate: int, rng: Any = None) -> Any:
        import scipy.signal

        x = _check_wave(wave)
        if self.cutoff_hz >= sample_rate / 2:
            return x
        sos = scipy.signal.butter(self.order, self.cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
        return scipy.signal.sosfiltfilt(sos, x.astype(np.float64)).astype(np.float32)


@dataclass(frozen=True)
class BitCrush(Perturbation):
    """Requantise the whole clip to ``bits`` bits: ``round(x · 2^(bits−1)) / 2^(bits−1)``, clipped to [−1, 1].

    The quantisation step is ``2^(1−bits)`` of full scale, so the error is about ``6.02·bits`` dB below a full-scale
    sine (no dither: the error follows the signal, as a bit-crusher effect does).

    >>> import numpy as np
    >>> BitCrush(2).apply(np.array([0.1, 0.3, -0.8, 0.99], dtype=np.float32), 32000).tolist()
    [0.0, 0.5, -1.0, 1.0]
    """

    kind: ClassVar[str] = "bitcrush"

    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 24:
            raise PerturbationError(f"bits must be an integer in [1, 24], got {self.bits!r}")

    @property
    def label(self) -> str:
        return f"bitcrush-{self.bits}bit"

    def apply(self, wave: Any, sample_rate: int, rng: Any = None) -> Any:
        x = _check_wave(wave).astype(np.float64)
        q = 2.0 ** (self.bits - 1)
        return np.clip(np.round(x * q) / q, -1.0, 1.0).astype(np.float32)


#: Severity ladders of :func:`degradation_ladder` (mildest first): the parameter values per family.
DEFAULT_LADDERS: dict[str, tuple[float, ...]] = {
    "noise": (30.0, 20.0, 10.0, 0.0),  # additive white noise, SNR in dB relative to the clip's RMS
    "shuffle": (0.25, 0.5, 1.0),  # fraction of the clip moved by swaps of adjacent 0.5 s blocks
    "lowpass": (8000.0, 4000.0, 2000.0, 1000.0),  # cutoff in Hz
    "bitcrush": (10, 8, 6, 4),  # bits
}


def degradation_ladder(family: str, n_samples: int, *, sample_rate: int = 32000, frame_rate: float = 50.0,
                       levels: Sequence[float] | None = None, seed: int = 0,
                       shuffle_block_frames: int = 25) -> list[tuple[float, Perturbation]]:
    """Whole-clip degradations of increasing severity for one clip, as ``(level value, perturbation)`` pairs.

    Families (levels default to :data:`DEFAULT_LADDERS`, mildest first):

    * ``"noise"``: additive white noise over the whole clip at the given SNR (dB, relative to the clip's RMS;
      :class:`cae.perturb.Noise` with ``mode="add", reference="snr-rms"``);
    * ``"shuffle"``: :class:`cae.perturb.RandomPairSwaps` of adjacent ``shuffle_block_frames``-frame blocks over the
      whole clip moving the given fraction of it;
    * ``"lowpass"``: :class:`LowPass` at the given cutoff (Hz);
    * ``"bitcrush"``: :class:`BitCrush` to the given number of bits.

    >>> [p.label for _, p in degradation_ladder("noise", 32000 * 15)][:2]
    ['noise-white-add-snr-rms+30@0+480000smp', 'noise-white-add-snr-rms+20@0+480000smp']
    >>> [p.label for _, p in degradation_ladder("shuffle", 32000 * 15, levels=[0.5])]
    ['pairswaps-25f-b0.5@0-endf']
    """
    if family not in DEFAULT_LADDERS:
        raise ValueError(f"unknown degradation family {family!r}; known: {sorted(DEFAULT_LADDERS)}")
    vals = list(DEFAULT_LADDERS[family] if levels is None else levels)
    if family == "noise":
        return [(v, Noise(Span(0, int(n_samples), "samples"), mode="add", level_db=float(v), reference="snr-rms",
                          seed=seed)) for v in vals]
    if family == "shuffle":
        return [(v, RandomPairSwaps(shuffle_block_frames, 0, None, float(v), frame_rate, seed)) for v in vals]
    if family == "lowpass":
        return [(v, LowPass(float(v))) for v in vals]
    if family == "bitcrush":
        return [(v, BitCrush(int(v))) for v in vals]
    raise ValueError(f"unknown degradation family {family!r}; known: {sorted(DEFAULT_LADDERS)}")


# ---------------------------------------------------------------------------------------------------------------------
# Rank correlations with cluster-bootstrap CIs


def _spearman(x: FloatArray, y: FloatArray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x[ok], y[ok]).statistic)


def rank_correlations(
    items: pd.DataFrame,
    *,
    quality: str,
    metrics: Mapping[str, tuple[str, int]],
    cluster: str = "clip",
    by: Sequence[str] = (),
    within: bool = True,
    aggregate_first: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman rank correlation between a known quality order and each metric, with bootstrap CIs over clusters.

    Args:
        items: one row per scored item (e.g. model × clip, or degraded version × clip).
        quality: column with the known quality (higher = better: e.g. training step, or minus the severity).
        metrics: ``{name: (column, sign)}``; the metric is ``sign · column`` so that higher should mean better
            (e.g. ``{"profile score": ("score", +1), "clean loss": ("loss_clean", -1)}``).
        cluster: the resampling unit (clips): the bootstrap resamples whole clusters.
        by: grouping columns; one result row per group and metric.
        within: also report the within-cluster correlation (Spearman within each cluster, averaged over clusters,
            with a BCa CI from :func:`cae.analysis.bootstrap_ci`); it removes between-clip differences.
        aggregate_first: for the pooled ρ, first average each metric over clusters per quality level (so the
            correlation is between quality and the per-level mean; used for models, where each level is a model).
        confidence, n_resamples, seed: the bootstrap.

    Returns:
        One row per group × metric: the group columns, ``metric, column, sign, rho`` (pooled Spearman over items,
        or over level means with ``aggregate_first``), ``rho_ci_low, rho_ci_high`` (percentile bootstrap over
        clusters), ``rho_within, rho_within_ci_low, rho_within_ci_high``, ``frac_within_positive`` (share of
        clusters with a positive within-cluster ρ), ``n_items, n_clusters, n_levels``, and the bootstrap settings.
    """
    rng = np.random.default_rng(seed)
    out = []
    groups = items.groupby(list(by), sort=False) if by else [((), items)]
    alpha = (1 - confidence) / 2
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        clusters = g[cluster].unique()
        idx_by_cluster = [np.flatnonzero(g[cluster].to_numpy() == c) for c in clusters]
        q_all = g[quality].to_numpy(float)
        boot_sets = rng.integers(0, len(clusters), size=(n_resamples, len(clusters)))
        for name, (col, sign) in metrics.items():
            m_all = sign * g[col].to_numpy(float)

            def pooled(sel: npt.NDArray[np.int64], q_all: FloatArray = q_all, m_all: FloatArray = m_all) -> float:
                q, m = q_all[sel], m_all[sel]
                if aggregate_first:
                    df = pd.DataFrame({"q": q, "m": m}).groupby("q")["m"].mean()
                    return _spearman(df.index.to_numpy(float), df.to_numpy(float))
                return _spearman(q, m)

            rho = pooled(np.arange(len(g)))
            boots = np.array([pooled(np.concatenate([idx_by_cluster[i] for i in b])) for b in boot_sets])
            boots = boots[np.isfinite(boots)]
            lo, hi = (np.quantile(boots, [alpha, 1 - alpha]).tolist() if boots.size > 1 else [NAN, NAN])
            row = {**dict(zip(by, key)), "metric": name, "column": col, "sign": sign, "rho": rho,
                   "rho_ci_low": lo, "rho_ci_high": hi}
            if within:
                per = np.array([_spearman(q_all[i], m_all[i]) for i in idx_by_cluster])
                ci = bootstrap_ci(per, confidence=confidence, n_resamples=n_resamples, seed=seed)
                fin = per[np.isfinite(per)]
                row.update({"rho_within": ci.estimate, "rho_within_ci_low": ci.low, "rho_within_ci_high": ci.high,
                            "frac_within_positive": float((fin > 0).mean()) if fin.size else NAN})
            row.update({"n_items": int(np.isfinite(m_all).sum()), "n_clusters": len(clusters),
                        "n_levels": int(pd.Series(q_all).nunique()), "confidence": confidence,
                        "n_resamples": n_resamples, "seed": seed})
            out.append(row)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------------------------------
# Validation


def checkpoint_models(family: str = "reference") -> dict[str, int]:
    """A reference model's checkpoints, worst to best, with their training step (untrained = step 0)."""
    from cae.reference.checkpoints import checkpoint_table

    return {r["name"]: max(0, int(r["step"])) for r in sorted(checkpoint_table(family), key=lambda r: r["step"])}

_VALIDATION_FEATURES = ("peak_height", "peak_contrast", "peak_prominence", "peak_width", "assim_time", "assim_depth",
                        "exit_spike", "recovery_time", "peak_area_pos")


def _feature_means(table: pd.DataFrame, max_length: int | None, features: Sequence[str]) -> pd.DataFrame:
    t = _select(table, codebook=_MEAN, max_length=max_length, lengths=None)
    return t.groupby(["model_id", "clip"], sort=False)[list(features)].mean().reset_index()


def _metrics(score_feature: str, features: Sequence[str]) -> dict[str, tuple[str, int]]:
    m = {"profile score": ("score", 1), "clean loss (baseline)": ("loss_clean", -1)}
    signs = {"peak_width": -1, "assim_time": -1, "recovery_time": -1}
    m.update({f"feature: {f}": (f, signs.get(f, 1)) for f in features if f != score_feature})
    return m


@dataclass
class ModelValidation:
    """Result of :func:`validate_models`.

    Attributes:
        correlations: :func:`rank_correlations` of each metric against the training order (one row per metric).
        scores: :func:`model_scores` per model, with ``quality`` (training step) and the recorded ``heldout_loss``.
        per_clip: one row per model × clip: ``score``, ``loss_clean`` and the mean features over short bursts.
        table: the full :func:`profile_table`.
        seconds: wall-clock time of the run.
    """

    correlations: pd.DataFrame
    scores: pd.DataFrame
    per_clip: pd.DataFrame
    table: pd.DataFrame
    seconds: float


def validate_models(
    clips: Sequence[str | Path],
    models: Mapping[str, float] | None = None,
    *,
    protocol: Protocol | None = None,
    params: FeatureParams | None = None,
    feature: str = DEFAULT_SCORE_FEATURE,
    max_length: int | None = 10,
    cache_dir: str | Path | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    progress: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
) -> ModelValidation:
    """Does the model-level score rank models by quality? Checkpoints of one training run are the known order.

    Every model scores the same clips under the protocol. Quality = the value given per model (default
    :func:`checkpoint_models`: the training step, untrained = 0; the held-out loss falls monotonically along
    it). Reported per metric (the profile score, each feature, and the clean loss, oriented so that higher should
    mean better): Spearman ρ between quality and the per-model mean over clips (``aggregate_first``), with a CI from
    resampling clips, and the within-clip ρ (each clip ranks the models by itself) averaged over clips.

    Args:
        clips: audio files (e.g. the corpus' held-out clips).
        models: ``{model name: quality}`` (names for :func:`cae.load_model`).
        protocol, params: the bursts and the feature windows.
        feature, max_length: the score (see :func:`model_scores`).
        cache_dir: sweep cache.
        n_resamples, seed: bootstrap.
        progress: progress bars.
        model_kwargs: passed to :func:`cae.load_model` (e.g. ``{"device": "cpu"}``).

    Returns:
        :class:`ModelValidation`.
    """
    import time

    from cae.models.base import load_model
    from cae.reference.checkpoints import checkpoint_table

    t0 = time.time()
    models = dict(checkpoint_models() if models is None else models)
    protocol = protocol or Protocol()
    params = params or FeatureParams()
    tables = []
    for name in models:
        m = load_model(name, **dict(model_kwargs or {}))
        res = profile_clips(clips, m, protocol=protocol, params=params, cache_dir=cache_dir, progress=progress)
        tables.append(res.table.assign(model_name=name, quality=float(models[name])))
        del m
    table = pd.concat(tables, ignore_index=True)
    cs = clip_scores(table, feature=feature, max_length=max_length)
    names = table[["model_id", "model_name", "quality"]].drop_duplicates()
    per_clip = (cs.merge(_feature_means(table, max_length, _VALIDATION_FEATURES), on=["model_id", "clip"], how="left")
                .merge(names, on="model_id", how="left"))
    scores = model_scores(table, feature=feature, max_length=max_length, n_resamples=n_resamples, seed=seed)
    scores = scores.merge(names, on="model_id", how="left")
    try:
        recorded = {r["name"]: r["heldout_loss"] for r in checkpoint_table()}
    except ModelError:  # models given by hand, no shipped training record
        recorded = {}
    scores["heldout_loss_recorded"] = scores["model_name"].map(recorded)
    scores = scores.sort_values("quality").reset_index(drop=True)
    corr = rank_correlations(per_clip, quality="quality", metrics=_metrics(feature, _VALIDATION_FEATURES),
                             cluster="clip", aggregate_first=True, n_resamples=n_resamples, seed=seed)
    return ModelValidation(correlations=corr, scores=scores, per_clip=per_clip, table=table,
                           seconds=time.time() - t0)


@dataclass
class ClipValidation:
    """Result of :func:`validate_clips`.

    Attributes:
        correlations: one row per family × metric (:func:`rank_correlations` against ``−severity``; for the
            generated sets against ``−top_k`` and ``−temperature``, and real (1) vs generated (0)).
        items: one row per scored version: ``family, level, severity, level_value, source, clip, score,
            loss_clean`` and mean features (generated sets: ``top_k, temperature``; the real clips appear as level 0
            of every family, or as family ``"real"`` when there are no degradations).
        table: the full :func:`profile_table` of every version.
        seconds: wall-clock time of the run.
    """

    correlations: pd.DataFrame
    items: pd.DataFrame
    table: pd.DataFrame
    seconds: float


def _degraded_version(src: str, family: str, value: float, seed: int, out_dir: Path, sample_rate: int,
                      frame_rate: float) -> Path:
    """Write (once) ``src`` degraded by one ladder step as a float WAV; returns its path."""
    import soundfile as sf

    from cae.audio import load

    out = out_dir / f"{family}-{value:g}-seed{seed}.wav"
    if not out.exists():
        wav = load(src, sample_rate)
        ((_, pert),) = degradation_ladder(family, wav.size, sample_rate=sample_rate, frame_rate=frame_rate,
                                          levels=[value], seed=seed)
        y = pert.apply(wav, sample_rate)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.wav")
        sf.write(tmp, np.asarray(y, dtype=np.float32), sample_rate, subtype="FLOAT")
        tmp.replace(out)
    return out


def validate_clips(
    clips: Sequence[str | Path],
    model: Any = "reference",
    *,
    families: Mapping[str, Sequence[float]] | None = None,
    generated: Mapping[str, Any] | None = None,
    protocol: Protocol | None = None,
    params: FeatureParams | None = None,
    feature: str = DEFAULT_SCORE_FEATURE,
    max_length: int | None = 10,
    work_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> ClipValidation:
    """Does the clip-level score rank versions of a clip by their (known) severity of degradation?

    Every clip is degraded along each family's ladder (:func:`degradation_ladder`; level 0 is the clip itself) and
    every version is profiled by ``model`` under the protocol (each level in its own sweep with the clips in the same
    order, so a clip's bursts use the same noise at every level). Per family and metric (the clip score, its
    features, and the clean loss, oriented so that higher should mean better quality): the within-clip Spearman ρ
    between ``−severity`` and the metric, averaged over clips, and the pooled ρ over all versions, with CIs from
    resampling clips.

    ``generated`` adds the model's own samples: ``{"top_ks": (10, 50, 250), "temperatures": (0.7, 1.0, 1.3),
    "per_setting": 8, "seconds": 15.0, "base_top_k": 250, "base_temperature": 1.0}`` (any key may be left out); a
    top-k sweep at ``base_temperature`` and a temperature sweep at ``base_top_k``, written with
    :func:`cae.generation.write_generated_set`. Its rows correlate the metrics with ``−top_k`` and ``−temperature``
    (more randomness assumed to mean lower quality), pooled over samples (each sample is its own cluster), and a
    ``"real vs generated"`` row correlates them with a 0/1 label (the real clips above the model's own samples; a
    Spearman ρ against a binary label is a rank-biserial-type measure).

    Args:
        clips: clean source clips.
        model: a loaded model or a name.
        families: ``{family: levels}`` (default :data:`DEFAULT_LADDERS`); an empty mapping skips degradations.
        generated: the generated-set settings, or ``None`` to skip.
        protocol, params, feature, max_length: the score.
        work_dir: where degraded versions and generated sets are written (default
            ``cae.paths.cache_dir() / "profile"``); versions are reused when present.
        cache_dir: sweep cache.
        n_resamples, seed: bootstrap (``seed`` also seeds the degradations' and generations' randomness).
        progress: progress bars.

    Returns:
        :class:`ClipValidation`.
    """
    import time

    from cae.models.base import MusicLM, load_model
    from cae.paths import cache_dir as default_cache
    from cae.provenance import file_sha256
    from cae.sweep import run_sweep

    t0 = time.time()
    m: MusicLM = load_model(model) if isinstance(model, str) else model
    protocol = protocol or Protocol()
    params = params or FeatureParams()
    fams = dict(DEFAULT_LADDERS if families is None else families)
    work = Path(work_dir) if work_dir is not None else default_cache() / "profile"
    sr = int(m.sample_rate)
    src = [str(c) for c in clips]
    perts = protocol.perturbations()

    def profile(paths: Sequence[str]) -> pd.DataFrame:
        tabs = run_sweep(paths, perts, m, cache_dir=cache_dir, progress=progress)
        return profile_table(tabs.tokens, tabs.summary, params=params, min_frames=protocol.min_frames)

    items, tables = [], []
    clean_items = pd.DataFrame()
    if src and (fams or generated is not None):
        clean_t = profile(src)
        tables.append(clean_t.assign(family="clean", level=0, severity=0.0))
        base = _feature_means(clean_t, max_length, _VALIDATION_FEATURES)
        cs = clip_scores(clean_t, feature=feature, max_length=max_length).merge(base, on=["model_id", "clip"])
        clean_items = cs.assign(source=cs["clip"], level=0, severity=0.0, level_value=np.nan)
    if fams:
        shas = {c: file_sha256(c)[:16] for c in src}
        for family, levels in fams.items():
            items.append(clean_items.assign(family=family))
            for li, value in enumerate(levels, start=1):
                paths = [str(_degraded_version(c, family, float(value), seed + ci, work / "degraded" / shas[c], sr,
                                               float(m.frame_rate))) for ci, c in enumerate(src)]
                t = profile(paths)
                tables.append(t.assign(family=family, level=li, severity=float(li)))
                f = _feature_means(t, max_length, _VALIDATION_FEATURES)
                s = clip_scores(t, feature=feature, max_length=max_length).merge(f, on=["model_id", "clip"])
                s["source"] = s["clip"].map(dict(zip(paths, src)))
                items.append(s.assign(family=family, level=li, severity=float(li), level_value=float(value)))
    item_df = pd.concat(items, ignore_index=True) if items else pd.DataFrame()
    metrics = _metrics(feature, _VALIDATION_FEATURES)
    corr = []
    if len(item_df):
        item_df["quality"] = -item_df["severity"]
        corr.append(rank_correlations(item_df, quality="quality", metrics=metrics, cluster="source", by=["family"],
                                      n_resamples=n_resamples, seed=seed))

    if generated is not None:
        from cae.generation import write_generated_set
        from cae.models.sampling import SAMPLER_VERSION

        g = {"top_ks": (10, 50, 250), "temperatures": (0.7, 1.0, 1.3), "per_setting": 8, "seconds": 15.0,
             "base_top_k": 250, "base_temperature": 1.0, **dict(generated)}
        settings = [(int(k), float(g["base_temperature"])) for k in g["top_ks"]]
        settings += [(int(g["base_top_k"]), float(t)) for t in g["temperatures"]
                     if (int(g["base_top_k"]), float(t)) not in settings]
        gen_items = []
        info = m.info().as_dict()
        for k, temp in settings:
            d = (work / "generated" / f"{info['model_id']}-{info['revision']}"
                 / f"k{k}-t{temp:g}-n{g['per_setting']}-s{g['seconds']:g}-seed{seed}-{SAMPLER_VERSION}")
            if (d / "manifest.csv").is_file():
                man = pd.read_csv(d / "manifest.csv")
            else:
                man = write_generated_set(m, d, top_ks=[k], per_k=int(g["per_setting"]), seconds=float(g["seconds"]),
                                          temperature=temp, seed=seed, progress=progress)
            paths = [str(d / p) for p in man["path"]]
            t = profile(paths)
            tables.append(t.assign(family="generated", top_k=k, temperature=temp))
            f = _feature_means(t, max_length, _VALIDATION_FEATURES)
            s = clip_scores(t, feature=feature, max_length=max_length).merge(f, on=["model_id", "clip"])
            gen_items.append(s.assign(family="generated", source=s["clip"], top_k=k, temperature=temp))
        gdf = pd.concat(gen_items, ignore_index=True)
        for axis, fixed, value in (("top_k", "temperature", float(g["base_temperature"])),
                                   ("temperature", "top_k", int(g["base_top_k"]))):
            sub = gdf[gdf[fixed] == value].assign(quality=lambda x, a=axis: -x[a].astype(float))
            c = rank_correlations(sub, quality="quality", metrics=metrics, cluster="source", within=False,
                                  n_resamples=n_resamples, seed=seed)
            corr.append(c.assign(family=f"generated: {axis}"))
        if len(clean_items):
            both = pd.concat([clean_items.assign(quality=1.0), gdf.assign(quality=0.0)], ignore_index=True)
            c = rank_correlations(both, quality="quality", metrics=metrics, cluster="source", within=False,
                                  n_resamples=n_resamples, seed=seed)
            corr.append(c.assign(family="real vs generated"))
        real = clean_items.assign(family="real") if len(clean_items) and not fams else None
        item_df = pd.concat([x for x in (item_df, real, gdf) if x is not None and len(x)], ignore_index=True)
    correlations = pd.concat(corr, ignore_index=True) if corr else pd.DataFrame()
    if len(correlations):
        first = ["family"] + [c for c in correlations.columns if c != "family"]
        correlations = correlations[first]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return ClipValidation(correlations=correlations, items=item_df, table=table, seconds=time.time() - t0)
