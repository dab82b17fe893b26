"""From a sweep's tables to the profile table: one feature row per model × clip × burst × codebook-or-mean.

:func:`cae.scoring.run_sweep` scores every burst as its own perturbed copy of the clip and returns per-token rows
(``nll``, ``nll_clean``, ``changed``) and a per-condition summary. :func:`profile_table` rebuilds, per clip and
burst, the per-token NLL arrays ``[K, F]`` and the token mask ``[K, F]``, reads the burst's nominal frames
``[onset, offset)`` off the perturbation's ``span`` (conditions without one, e.g. shuffles, are skipped), and calls
:func:`cae.profile.features.clip_profile`. Failures never drop a clip silently: an unreadable file, a failed
condition, a clip shorter than the protocol needs, or a burst past the clip's end gives one row with ``error`` set
(naming the file) and NaN features.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cae.perturb import Span
from cae.profile.features import FEATURES, NAN, FeatureParams, clip_profile

__all__ = ["profile_table"]


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
        tokens: per-token rows of :func:`cae.scoring.run_sweep` / :func:`cae.scoring.naive.score_clips`
            (``clip, condition, codebook, frame, nll, nll_clean, changed``, and ``model_id``).
        summary: their per-condition summary (``clip, condition, perturbation, loss, error, sample_rate,
            frame_rate, model_id`` …). Conditions whose perturbation has no ``span`` (shuffles) are skipped.
        params: feature window parameters (recorded as ``param_*`` columns).
        min_frames: clips shorter than this many frames get an error row instead of features (e.g.
            :attr:`cae.profile.ProfileProtocol.min_frames`); ``None``: no check.

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
