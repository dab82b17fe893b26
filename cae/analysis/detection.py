"""Does a score detect corruption? Paired accuracy and AUROC over clips, with bootstrap CIs, and a cross-validated
combination of features.

The setting: every clip exists clean and in perturbed versions, and a score is computed for each. A score that
*detects* the perturbation ranks the perturbed version as more anomalous. Two measures, both oriented so that
0.5 is chance and 1 is perfect (below 0.5: the score moves the wrong way):

* **paired accuracy**: the share of clips whose perturbed version scores as more anomalous than *its own* clean
  version (ties count one half) — what a per-clip before/after comparison can do;
* **AUROC**: the probability that a random perturbed version scores as more anomalous than a random clean clip
  (``sklearn.metrics.roc_auc_score``) — what a threshold on the score alone can do, across clips.

``direction`` says which way is anomalous: ``+1`` when higher is worse (a loss), ``−1`` when lower is worse (a
quality score). CIs resample clips (the perturbed and clean version of a clip stay together).

:func:`cross_validated_scores` fits a logistic regression on several features with folds over *clips*
(``GroupKFold``: a clip's clean and perturbed versions are never split between training and test) and returns
out-of-fold probabilities, which are then scored like any other score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["auroc", "bootstrap_metrics", "cross_validated_scores", "paired_accuracy"]


def _oriented(clean: np.ndarray, perturbed: np.ndarray, direction: int) -> tuple[np.ndarray, np.ndarray]:
    if direction not in (1, -1):
        raise ValueError("direction must be +1 (higher is anomalous) or -1 (lower is anomalous)")
    c, p = np.asarray(clean, dtype=float), np.asarray(perturbed, dtype=float)
    return direction * c, direction * p


def paired_accuracy(clean: Sequence[float], perturbed: Sequence[float], direction: int = 1) -> float:
    """Share of pairs ``(clean[i], perturbed[i])`` in which the perturbed version is more anomalous (ties: ½).

    >>> paired_accuracy([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 5.0])
    0.625
    """
    c, p = _oriented(clean, perturbed, direction)
    if c.shape != p.shape or c.ndim != 1 or c.size == 0:
        raise ValueError("clean and perturbed must be paired 1-D scores of the same clips")
    ok = np.isfinite(c) & np.isfinite(p)
    if not ok.any():
        return float("nan")
    c, p = c[ok], p[ok]
    return float(np.mean((p > c) + 0.5 * (p == c)))


def auroc(clean: Sequence[float], perturbed: Sequence[float], direction: int = 1) -> float:
    """Area under the ROC curve separating perturbed versions (positives) from clean clips by the score."""
    from sklearn.metrics import roc_auc_score

    c, p = _oriented(clean, perturbed, direction)
    c, p = c[np.isfinite(c)], p[np.isfinite(p)]
    if c.size == 0 or p.size == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(c.size), np.ones(p.size)], np.r_[c, p]))


def bootstrap_metrics(clean: Sequence[float], perturbed: Sequence[float], direction: int = 1, *,
                      n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Paired accuracy and AUROC with percentile CIs from resampling clips (pairs stay together).

    Returns ``{"accuracy", "accuracy_low", "accuracy_high", "auroc", "auroc_low", "auroc_high", "n"}``.
    """
    c = np.asarray(clean, dtype=float)
    p = np.asarray(perturbed, dtype=float)
    if c.shape != p.shape or c.ndim != 1 or c.size == 0:
        raise ValueError("clean and perturbed must be paired 1-D scores of the same clips, at least one")
    rng = np.random.default_rng(seed)
    n = c.size
    acc, auc = [], []
    for _ in range(n_resamples):
        i = rng.integers(0, n, n)
        acc.append(paired_accuracy(c[i], p[i], direction))
        auc.append(auroc(c[i], p[i], direction))
    lo, hi = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    out = {"accuracy": paired_accuracy(c, p, direction), "auroc": auroc(c, p, direction), "n": int(n)}
    for name, vals in (("accuracy", acc), ("auroc", auc)):
        v = np.asarray(vals, dtype=float)
        v = v[np.isfinite(v)]
        out[f"{name}_low"], out[f"{name}_high"] = (
            (float(np.percentile(v, lo)), float(np.percentile(v, hi))) if v.size else (float("nan"), float("nan")))
    return out


def cross_validated_scores(table: pd.DataFrame, features: Sequence[str], *, label: str = "perturbed",
                           group: str = "clip", n_splits: int = 5) -> pd.Series:
    """Out-of-fold probability of ``label`` from a standardised logistic regression on ``features``, with folds
    over ``group`` (``sklearn.model_selection.GroupKFold``). Missing (non-finite) feature values are imputed with
    the training fold's median, so every row gets a probability; a feature missing in a whole fold is dropped by
    the imputer.

    Args:
        table: one row per (clip, version), with the feature columns, a 0/1 ``label`` column and ``group``.
        features: the columns to combine.
        n_splits: folds (at most the number of groups).
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = table[list(features)].to_numpy(dtype=float, copy=True)
    x[~np.isfinite(x)] = np.nan
    y = table[label].to_numpy(dtype=int)
    groups = table[group].to_numpy()
    out = np.full(len(table), np.nan)
    splits = min(n_splits, len(np.unique(groups)))
    if splits >= 2 and len(np.unique(y)) == 2:
        for train, test in GroupKFold(n_splits=splits).split(x, y, groups):
            if len(np.unique(y[train])) < 2:
                continue
            clf = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                LogisticRegression(max_iter=1000))
            clf.fit(x[train], y[train])
            out[test] = clf.predict_proba(x[test])[:, 1]
    return pd.Series(out, index=table.index, dtype=float)
