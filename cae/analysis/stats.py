"""Statistics over clips (songs): bootstrap CIs, length correlations, paired tests, grouped summaries.

The unit of analysis is the **clip**: one value per song and condition (a clip-level Δ, or a region mean).
Following the book's Protocol page (What cae corrects), effects are reported per condition with bootstrap CIs over songs, and
clean-vs-perturbed comparisons are **paired by song** (paired t-test and Wilcoxon signed-rank, with the mean
difference and Cohen's d_z as effect sizes) rather than pooled.

**NaN rule** (all functions): non-finite values are dropped before computing anything (for paired data, a pair
is dropped if either member is non-finite), and ``n`` reports what was kept. An empty region is NaN upstream
(:func:`cae.analysis.anchored_regions`), so it is excluded here rather than counted as 0. Too few values for a
statistic gives NaN, with no warning.

All tests are two-sided by default; the authors' repository used one-tailed p for its correlations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from cae.analysis._arrays import as_float

__all__ = [
    "BootstrapCI",
    "CorrelationResult",
    "PairedTestResult",
    "bootstrap_ci",
    "group_summary",
    "length_correlation",
    "paired_test",
]

Alternative = Literal["two-sided", "less", "greater"]
NAN = float("nan")


def _finite(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = as_float(x).ravel()
    return a[np.isfinite(a)]


def _finite_pairs(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a, b = as_float(x).ravel(), as_float(y).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired inputs need the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic with its bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the (finite) sample; NaN if the sample is empty.
        low, high: CI bounds; NaN when ``n < 2``.
        n: number of finite values used.
        confidence: confidence level.
        method: bootstrap method used (``"BCa"``, ``"percentile"``, …; ``"degenerate"`` when every value is
            equal and the CI is the single point; ``"none"`` when ``n < 2``).
    """

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str

    @property
    def width(self) -> float:
        """``high − low``."""
        return self.high - self.low


def bootstrap_ci(
    values: npt.ArrayLike,
    stat: Callable[..., Any] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int | None = 0,
    method: Literal["BCa", "percentile", "basic"] = "BCa",
) -> BootstrapCI:
    """Bootstrap CI of ``stat`` over clips, with :func:`scipy.stats.bootstrap`.

    Args:
        values: one value per clip, shape ``[n]`` (any shape is flattened); non-finite values are dropped.
        stat: statistic of a 1-D sample; if it accepts ``axis=`` it is used vectorised.
        confidence: confidence level.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator (``None`` for fresh entropy); the default makes results
            reproducible.
        method: scipy's CI method. If BCa cannot be computed (it returns NaN on some skewed or tiny samples),
            the percentile interval is used instead and ``method`` says so.

    Returns:
        :class:`BootstrapCI`. With ``n == 1`` the estimate is ``stat`` of the single value and the CI is NaN;
        with ``n == 0`` everything is NaN.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, float("nan"), 4.0, 5.0])
    >>> ci.estimate, ci.n, ci.low < 3.0 < ci.high
    (3.0, 5, True)
    >>> bootstrap_ci([2.0]).low
    nan
    """
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return BootstrapCI(NAN, NAN, NAN, 0, confidence, "none")
    estimate = float(stat(x))
    if n < 2:
        return BootstrapCI(estimate, NAN, NAN, n, confidence, "none")
    if np.all(x == x[0]):
        return BootstrapCI(estimate, estimate, estimate, n, confidence, "degenerate")
    used = method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning; handled by the fallback below
        res = sps.bootstrap(
            (x,), stat, n_resamples=n_resamples, confidence_level=confidence, method=method,
            rng=np.random.default_rng(seed),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (np.isfinite(low) and np.isfinite(high)) and method != "percentile":
            used = "percentile"
            res = sps.bootstrap(
                (x,), stat, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                rng=np.random.default_rng(seed),
            )
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return BootstrapCI(estimate, low, high, n, confidence, used)


@dataclass(frozen=True)
class CorrelationResult:
    """Association between perturbation length and Δ (one point per clip and length).

    Attributes:
        n: number of finite pairs used.
        pearson_r, pearson_p: Pearson correlation and its p-value.
        spearman_r, spearman_p: Spearman rank correlation and its p-value.
        slope, intercept: least-squares line ``delta ≈ intercept + slope · length`` (Δ per frame of length).
        slope_stderr, slope_p: standard error of the slope and the p-value of ``slope = 0`` (t-test).
    """

    n: int
    pearson_r: float
    pearson_p: float
    spearman_r: float
    spearman_p: float
    slope: float
    intercept: float
    slope_stderr: float
    slope_p: float


def length_correlation(
    lengths: npt.ArrayLike, deltas: npt.ArrayLike, *, alternative: Alternative = "two-sided"
) -> CorrelationResult:
    """Pearson and Spearman correlation of Δ with perturbation length, and the regression slope.

    Use one point per (clip, length), not per-length means, so that ``n`` counts songs × lengths (the paper's
    per-(model, dataset) tests on 6 means are weak, Protocol page: What cae corrects).

    Args:
        lengths: perturbation lengths ``[n]`` (frames).
        deltas: Δ values ``[n]``, paired with ``lengths``; pairs with a non-finite member are dropped.
        alternative: passed to scipy (``"less"`` tests a negative association).

    Returns:
        :class:`CorrelationResult`; all NaN when fewer than 3 pairs remain or an input is constant.

    >>> r = length_correlation([5, 10, 50, 100], [0.0, -0.1, -0.9, -1.9])
    >>> round(r.pearson_r, 3), r.spearman_r, round(r.slope, 3)
    (-1.0, -1.0, -0.02)
    """
    x, y = _finite_pairs(lengths, deltas)
    n = int(x.size)
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return CorrelationResult(n, *([NAN] * 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = sps.pearsonr(x, y, alternative=alternative)
        sr = sps.spearmanr(x, y, alternative=alternative)
        lr = sps.linregress(x, y, alternative=alternative)
    return CorrelationResult(
        n=n,
        pearson_r=float(pr.statistic),
        pearson_p=float(pr.pvalue),
        spearman_r=float(sr.statistic),
        spearman_p=float(sr.pvalue),
        slope=float(lr.slope),
        intercept=float(lr.intercept),
        slope_stderr=float(lr.stderr),
        slope_p=float(lr.pvalue),
    )


@dataclass(frozen=True)
class PairedTestResult:
    """Paired comparison of per-song values, ``perturbed − clean``.

    Attributes:
        n: number of complete pairs.
        mean_diff: mean of ``perturbed − clean`` (negative: the perturbation lowers the loss).
        sd_diff: SD of the differences (ddof = 1).
        cohens_dz: ``mean_diff / sd_diff`` (Cohen's d_z for paired data; NaN when ``sd_diff == 0``).
        t_statistic, t_pvalue: paired t-test (:func:`scipy.stats.ttest_rel`).
        wilcoxon_statistic, wilcoxon_pvalue: Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, zero
            differences dropped, scipy's default ``zero_method="wilcox"``); NaN when every difference is 0.
    """

    n: int
    mean_diff: float
    sd_diff: float
    cohens_dz: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float


def paired_test(
    clean: npt.ArrayLike, perturbed: npt.ArrayLike, *, alternative: Alternative = "two-sided"
) -> PairedTestResult:
    """Paired t-test and Wilcoxon signed-rank test of ``perturbed`` against ``clean``, per song.

    Args:
        clean: per-song values on the clean clips ``[n]`` (e.g. clip losses).
        perturbed: the same songs perturbed ``[n]``, in the same order. Pairs with a non-finite member are dropped.
        alternative: for both tests, about ``perturbed − clean`` (``"less"``: the perturbation lowers the value).

    Returns:
        :class:`PairedTestResult`; NaN statistics when fewer than 2 pairs remain.

    >>> r = paired_test([5.0, 6.0, 7.0, 8.0], [4.0, 4.0, 4.0, 4.0])
    >>> r.mean_diff, round(r.cohens_dz, 4)
    (-2.5, -1.9365)
    """
    c, p = _finite_pairs(clean, perturbed)
    n = int(c.size)
    if n < 2:
        md = float(np.mean(p - c)) if n else NAN
        return PairedTestResult(n, md, NAN, NAN, NAN, NAN, NAN, NAN)
    d = p - c
    mean_diff = float(d.mean())
    sd = float(d.std(ddof=1))
    dz = mean_diff / sd if sd > 0 else NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sd > 0:
            tt = sps.ttest_rel(p, c, alternative=alternative)
            t_stat, t_p = float(tt.statistic), float(tt.pvalue)
        else:
            t_stat = t_p = NAN
        if np.any(d != 0):
            w = sps.wilcoxon(p, c, alternative=alternative)
            w_stat, w_p = float(w.statistic), float(w.pvalue)
        else:
            w_stat = w_p = NAN
    return PairedTestResult(n, mean_diff, sd, dz, t_stat, t_p, w_stat, w_p)


def group_summary(
    df: pd.DataFrame,
    by: str | Sequence[str] = ("kind", "length"),
    value: str = "delta",
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Mean, SD, n and bootstrap CI of ``value`` per group of a tidy DataFrame.

    Args:
        df: tidy table, one row per clip (and condition), e.g. with columns ``kind, length, delta``.
        by: grouping column(s).
        value: column to summarise; non-finite values are dropped per group.
        confidence, n_resamples, seed: passed to :func:`bootstrap_ci` (the same seed for every group).

    Returns:
        One row per group: the ``by`` columns, then ``mean, sd`` (ddof = 1; NaN if n < 2), ``n``,
        ``ci_low, ci_high``. Groups are sorted by key.

    >>> df = pd.DataFrame({"kind": ["a", "a", "a", "b"], "delta": [1.0, 2.0, 3.0, 7.0]})
    >>> group_summary(df, by="kind")[["kind", "mean", "sd", "n"]].values.tolist()
    [['a', 2.0, 1.0, 3], ['b', 7.0, nan, 1]]
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, value] if c not in df.columns]
    if missing:
        raise KeyError(f"columns not in the table: {missing}")
    rows = []
    for key, g in df.groupby(keys, sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        x = _finite(g[value].to_numpy(dtype=float))
        ci = bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                **dict(zip(keys, key_t, strict=True)),
                "mean": float(x.mean()) if x.size else NAN,
                "sd": float(x.std(ddof=1)) if x.size >= 2 else NAN,
                "n": int(x.size),
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "mean", "sd", "n", "ci_low", "ci_high"])


def bootstrap_curve(
    curves: npt.ArrayLike, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int | None = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean curve over clips with a percentile-bootstrap band, vectorised over positions.

    The same resampled clip sets are used at every position (clips are resampled, not tokens), so the band
    respects the within-clip correlation of neighbouring tokens. Non-finite values are ignored per position.

    Args:
        curves: ``[n_clips, T]`` one curve per clip (e.g. codebook-mean Δℓ_t aligned at the onset).
        confidence: confidence level of the band.
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator.

    Returns:
        ``(mean, low, high)``, each ``[T]``; ``low``/``high`` are NaN where fewer than 2 clips are finite.

    >>> m, lo, hi = bootstrap_curve([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    >>> m.tolist(), bool(lo[0] < 2.0 < hi[0]), (float(lo[1]), float(hi[1]))
    ([2.0, 1.0], True, (1.0, 1.0))
    """
    x = as_float(curves)
    if x.ndim != 2:
        raise ValueError(f"curves must be [n_clips, T], got shape {x.shape}")
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    z = np.where(finite, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = z.sum(axis=0) / count
    n = x.shape[0]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = z[idx].sum(axis=1) / finite[idx].sum(axis=1)
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanquantile(boot, alpha, axis=0)
        high = np.nanquantile(boot, 1.0 - alpha, axis=0)
    few = count < 2
    low[few] = NAN
    high[few] = NAN
    return mean, low, high
