"""Profile scores: one number per clip and model, and one per model, from the profile table.

Both scores are means of one feature (default :data:`DEFAULT_SCORE_FEATURE`, the peak contrast of the codebook-mean
curve, :mod:`cae.profile.features`) over the protocol's short bursts (at most ``max_length`` frames):

* :func:`clip_scores`: per model and clip, the mean over that clip's bursts: how strongly and sharply the model
  reacts to a burst in *this* clip. The claim under test is that it falls as the clip's quality falls, where the
  absolute loss does not.
* :func:`model_scores`: per model, the mean of the clip scores over clips, with a bootstrap CI over clips
  (:func:`cae.analysis.bootstrap_ci`), next to the mean clean loss (the baseline the paper argues against).

Error rows of the table and non-finite feature values are skipped; a clip without a usable burst scores NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cae.analysis import bootstrap_ci
from cae.profile.features import _MEAN, FEATURES, NAN

__all__ = ["DEFAULT_SCORE_FEATURE", "clip_scores", "model_scores"]

#: The feature both scores average by default.
DEFAULT_SCORE_FEATURE = "peak_contrast"


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
