"""The tables the notebooks plot, from :class:`~cae.study.run.StudyResults`.

:func:`clip_deltas` and :func:`delta_by_length` (Δ of the clip loss with bootstrap CIs), :func:`length_tests`
(correlation with length, paired tests), :func:`onset_curves` (Δℓ_t aligned at the onset, mean and bootstrap band
over clips, per codebook), :func:`absolute_curves` (clean / noise / perturbed NLL, the data behind the paper's
Fig. 3), :func:`clip_curve` (one clip's Δℓ_t), :func:`region_means` (Peak / Assimilation / Recovery by both
detectors), :func:`noise_token_stats` (what the codec makes of the noise). All frames are target frames; ``onset``
is the first perturbed frame (the paper: 250).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cae.analysis import (
    anchored_regions,
    bootstrap_curve,
    group_summary,
    length_correlation,
    paired_test,
    span_diversity,
)
from cae.analysis.paper_detector import paper_regions
from cae.audio import load
from cae.models.base import MusicLM
from cae.paper.protocol import PAPER_ONSET_FRAME
from cae.perturb import Perturbation
from cae.scoring import for_clip, seed_offset
from cae.study.run import StudyResults
from cae.study.setup import StudyError, protocol

__all__ = [
    "absolute_curves", "clip_curve", "clip_deltas", "delta_by_length", "example_clip", "ExampleClip",
    "is_pure_noise", "length_tests", "noise_token_stats", "onset_curves", "paired_by_length", "region_means",
    "token_array",
]


def is_pure_noise(summary: pd.DataFrame) -> pd.Series:
    """Rows of the pure-noise condition (:func:`pure_noise`): noise from frame 0 covering all but at most 50
    frames of the clip."""
    if "onset" not in summary.columns:
        return pd.Series(False, index=summary.index)
    return ((summary["perturbation_kind"] == "noise") & (summary["onset"] == 0)
            & (summary["length"] >= summary["n_frames"] - 50))


def clip_deltas(results: StudyResults, perturbation_kind: str | None = None) -> pd.DataFrame:
    """Perturbed rows with ``delta = loss − loss_clean`` (Δ of the per-token mean, as the paper's Fig. 2);
    pure-noise conditions are left out."""
    p = results.perturbed
    p = p[~is_pure_noise(p)]
    if perturbation_kind is not None:
        p = p[p["perturbation_kind"] == perturbation_kind]
    p = p.assign(delta=p["delta_loss"])
    return p


def delta_by_length(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind", "length"),
                    perturbation_kind: str | None = None, n_resamples: int = 2000) -> pd.DataFrame:
    """Mean Δ per group with a bootstrap CI over clips, the SD, and the share of clips whose loss went down."""
    d = clip_deltas(results, perturbation_kind)
    out = group_summary(d, list(by), "delta", n_resamples=n_resamples)
    share = d.groupby(list(by))["delta"].apply(lambda s: float((s < 0).mean())).rename("share_lower")
    return out.merge(share.reset_index(), on=list(by))


def length_tests(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind"),
                 perturbation_kind: str | None = None) -> pd.DataFrame:
    """Per group: Pearson/Spearman of Δ against length over (clip, length) points (one-sided: negative), the
    slope per 100 frames, and a one-sided paired test (perturbed < clean) at the longest length."""
    d = clip_deltas(results, perturbation_kind)
    rows = []
    for key, g in d.groupby(list(by)):
        c = length_correlation(g["length"], g["delta"], alternative="less")
        longest = g[g["length"] == g["length"].max()]
        t = paired_test(longest["loss_clean"], longest["loss"], alternative="less")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n_points": c.n,
                     "pearson_r": c.pearson_r, "pearson_p": c.pearson_p, "spearman_r": c.spearman_r,
                     "spearman_p": c.spearman_p, "slope_per_100": 100 * c.slope, "longest": int(g["length"].max()),
                     "cohens_dz": t.cohens_dz, "paired_t_p": t.t_pvalue, "wilcoxon_p": t.wilcoxon_pvalue,
                     "n_clips": t.n})
    return pd.DataFrame(rows)


def paired_by_length(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind", "length"),
                     perturbation_kind: str | None = None) -> pd.DataFrame:
    """Per (model, kind, length): paired tests of the perturbed against the clean clip loss across clips, one-sided
    (perturbed < clean): the mean difference, Cohen's d_z, the t-test and Wilcoxon p-values, and ``n``."""
    d = clip_deltas(results, perturbation_kind)
    rows = []
    for key, g in d.groupby(list(by)):
        t = paired_test(g["loss_clean"], g["loss"], alternative="less")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": t.n, "mean_diff": t.mean_diff,
                     "cohens_dz": t.cohens_dz, "t_p": t.t_pvalue, "wilcoxon_p": t.wilcoxon_pvalue})
    return pd.DataFrame(rows)


def token_array(tokens: pd.DataFrame, value: str) -> np.ndarray:
    """One condition's ``value`` column as a ``[K, F]`` array indexed by (codebook, frame); NaN where no row.

    >>> token_array(pd.DataFrame({"codebook": [0, 1], "frame": [1, 0], "nll": [2.0, 3.0]}), "nll").tolist()
    [[nan, 2.0], [3.0, nan]]
    """
    out = np.full((int(tokens["codebook"].max()) + 1, int(tokens["frame"].max()) + 1), np.nan)
    out[tokens["codebook"].to_numpy(), tokens["frame"].to_numpy()] = tokens[value].to_numpy(dtype=float)
    return out


def _groups(results: StudyResults, perturbation_kind: str | None) -> Iterable[tuple[pd.Series, pd.DataFrame]]:
    """(summary row, its tokens) for every perturbed condition."""
    rows = clip_deltas(results, perturbation_kind)
    wanted = rows.set_index(["model_id", "kind", "clip", "condition"])
    tok = results.tokens
    tok = tok[tok["condition"] != "clean"]
    for key, g in tok.groupby(["model_id", "kind", "clip", "condition"], sort=False):
        if key in wanted.index:
            row = wanted.loc[key]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            yield pd.Series({**dict(zip(["model_id", "kind", "clip", "condition"], key)), **row.to_dict()}), g


def onset_curves(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME, before: int = 20, after: int = 300,
                 perturbation_kind: str | None = "noise", per_codebook: bool = True, n_resamples: int = 1000,
                 value: str = "delta") -> pd.DataFrame:
    """Δℓ_t aligned at the onset: mean and bootstrap band over clips per (model, kind, length, codebook).

    Args:
        results: the study.
        onset: the perturbation's first frame (relative frame 0).
        before, after: the window ``[onset − before, onset + after)``.
        perturbation_kind: which conditions (``None``: all).
        per_codebook: also one curve per codebook (``codebook`` 0..K−1; the codebook mean is ``"mean"``).
        n_resamples: bootstrap resamples (clips).
        value: ``"delta"`` (nll − nll_clean), ``"nll"`` or ``"nll_clean"``.

    Returns:
        Long table: ``model_id, kind, length, codebook, rel_frame, mean, ci_low, ci_high, n``.
    """
    lo, hi = onset - before, onset + after
    curves: dict[tuple[Any, ...], list[np.ndarray]] = {}
    for row, g in _groups(results, perturbation_kind):
        g = g[(g["frame"] >= lo) & (g["frame"] < hi)]
        if g.empty:
            continue
        g = g.assign(delta=g["nll"] - g["nll_clean"], frame=g["frame"] - lo)
        arr = np.full((int(results.tokens["codebook"].max()) + 1, hi - lo), np.nan)
        part = token_array(g, value)
        arr[:part.shape[0], :part.shape[1]] = part
        base = (row["model_id"], row["kind"], int(row["length"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with no finite value stay NaN
            curves.setdefault((*base, "mean"), []).append(np.nanmean(arr, axis=0))
        if per_codebook:
            for k in range(arr.shape[0]):
                curves.setdefault((*base, str(k)), []).append(arr[k])
    out = []
    rel = np.arange(lo, hi) - onset
    for (model_id, kind, length, cb), rows in curves.items():
        m, low, high = bootstrap_curve(np.stack(rows), n_resamples=n_resamples)
        out.append(pd.DataFrame({"model_id": model_id, "kind": kind, "length": length, "codebook": cb,
                                 "rel_frame": rel, "mean": m, "ci_low": low, "ci_high": high, "n": len(rows)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def absolute_curves(results: StudyResults, *, length: int, onset: int = PAPER_ONSET_FRAME, before: int = 20,
                    after: int = 300, n_resamples: int = 1000) -> pd.DataFrame:
    """The data behind the paper's Fig. 3: codebook-mean NLL per frame for the clean clip (``"music"``), the clip
    with noise of ``length`` frames at ``onset`` (``"music + perturb"``) and, when the study scored it, the
    pure-noise clip (``"noise"``, :func:`pure_noise`); mean and bootstrap band over clips, per (model, kind).

    Returns:
        Long table: ``model_id, kind, curve, rel_frame, mean, ci_low, ci_high, n``.
    """
    lo, hi = onset - before, onset + after
    s = results.summary[results.summary["error"].isna()]
    sets = {
        "music": (s[s["condition"] == "clean"], "nll"),
        "music + perturb": (s[(s["perturbation_kind"] == "noise") & (s["length"] == length) & (s["onset"] == onset)],
                            "nll"),
        "noise": (s[is_pure_noise(s)], "nll"),
    }
    tok = results.tokens[(results.tokens["frame"] >= lo) & (results.tokens["frame"] < hi)]
    out = []
    for curve, (rows, col) in sets.items():
        if rows.empty:
            continue
        keys = pd.MultiIndex.from_frame(rows[["model_id", "kind", "clip", "condition"]])
        t = tok.set_index(["model_id", "kind", "clip", "condition"])
        t = t[t.index.isin(keys)].reset_index()
        for (model_id, kind), g in t.groupby(["model_id", "kind"]):
            per_clip = g.groupby(["clip", "frame"])[col].mean().unstack("frame").reindex(columns=range(lo, hi))
            m, low, high = bootstrap_curve(per_clip.to_numpy(), n_resamples=n_resamples)
            out.append(pd.DataFrame({"model_id": model_id, "kind": kind, "curve": curve,
                                     "rel_frame": np.arange(lo, hi) - onset, "mean": m, "ci_low": low, "ci_high": high,
                                     "n": len(per_clip)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def region_means(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME, methods: Sequence[str] = ("anchored", "paper"),
                 peak_frames: int = 5, guard_frames: int = 0) -> pd.DataFrame:
    """Peak / Assimilation / Recovery means of Δℓ_t per (model, kind, clip, length, method, region).

    ``anchored``: windows anchored on the token mask (:func:`cae.analysis.anchored_regions`; empty → NaN).
    ``paper``: the authors' detector (:func:`cae.analysis.paper_regions`, constants shifted with ``onset``;
    empty → 0 as in their code). Noise conditions only.
    """
    rows = []
    for row, g in _groups(results, "noise"):
        d = token_array(g, "nll") - token_array(g, "nll_clean")
        changed = token_array(g, "changed")
        n = int(row["length"])
        base = {"model_id": row["model_id"], "kind": row["kind"], "clip": row["clip"], "length": n,
                "condition": row["condition"]}
        if "anchored" in methods:
            r = anchored_regions(d, changed > 0, onset, onset + n, peak_frames=peak_frames, guard_frames=guard_frames)
            for region, v in r.means.items():
                rows.append({**base, "method": "anchored", "region": region, "delta": v,
                             "start": r.windows[region].start, "stop": r.windows[region].stop})
        if "paper" in methods:
            dd = d.copy()
            dd[:, 0] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # frame 0 has no finite value
                curve = np.nanmean(dd, axis=0)
            curve = np.where(np.isfinite(curve), curve, 0.0)
            curve[0] = np.nan
            p = paper_regions(curve, n, peak_start=onset - 5, search_from=onset, fallback_end=onset + 45,
                              onset_index=onset - 1)
            for region, v in p.means.items():
                rows.append({**base, "method": "paper", "region": region, "delta": v,
                             "start": np.nan, "stop": np.nan})
    return pd.DataFrame(rows)


def noise_token_stats(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME) -> pd.DataFrame:
    """What the codec makes of the noise, per (model, kind, clip, length), averaged over codebooks:
    distinct tokens inside ``[onset, onset + L)``, the share of those frames repeating the previous frame's
    token, the share of tokens changed inside the span and outside it (spill-over). Needs ``codes=True``."""
    if "code" not in results.tokens.columns:
        raise StudyError("noise_token_stats needs the tokens: run the study with codes=True")
    rows = []
    for row, g in _groups(results, "noise"):
        codes = token_array(g, "code")
        changed = token_array(g, "changed")
        n = int(row["length"])
        unique, repeat = span_diversity(codes, onset, onset + n)
        inside = np.zeros(codes.shape[1], dtype=bool)
        inside[onset:onset + n] = True
        rows.append({
            "model_id": row["model_id"], "kind": row["kind"], "clip": row["clip"], "condition": row["condition"],
            "length": n, "unique_tokens": unique, "repeat_rate": repeat,
            "changed_inside": float(np.nanmean(changed[:, inside])),
            "changed_outside": float(np.nanmean(changed[:, ~inside])),
            "spill_frames": int(np.sum(np.any(changed[:, ~inside] > 0, axis=0))),
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ExampleClip:
    """One scored clip and one of its conditions exactly as the sweep applied it (same per-clip seed).

    Attributes:
        clip: the clip's path; ``model_id``: the model it was scored with.
        wave: the clean audio ``[N]`` at ``sample_rate``.
        perturbation: the condition as applied to this clip (its seed advanced by the clip's offset).
    """

    clip: str
    model_id: str
    wave: np.ndarray
    sample_rate: int
    perturbation: Perturbation

    def perturbed(self) -> np.ndarray:
        """The perturbed audio ``[N]``, as scored."""
        return self.perturbation.apply(self.wave, self.sample_rate)


def example_clip(results: StudyResults, model: MusicLM, kind: str, perturbation: Perturbation, *,
                 protocol_name: str = "corrected") -> ExampleClip:
    """The first clip of ``kind`` that ``model`` scored in ``results``, with ``perturbation`` seeded for that clip
    as the sweep seeded it under ``protocol_name`` (:func:`cae.scoring.seed_offset`)."""
    s = results.summary
    rows = s[(s["kind"] == kind) & (s["model_id"] == model.model_id)]
    if rows.empty:
        raise StudyError(f"no clip of kind {kind!r} scored by {model.model_id!r} in these results")
    first = rows.iloc[0]
    offset = seed_offset(protocol(protocol_name).seeding, int(first["clip_index"]), first["clip_sha256"])
    return ExampleClip(str(first["clip"]), model.model_id, load(first["clip"], sample_rate=model.sample_rate),
                       model.sample_rate, for_clip(perturbation, offset))


def clip_curve(results: StudyResults, example: ExampleClip, *, onset: int = PAPER_ONSET_FRAME, before: int = 20,
               after: int = 300) -> pd.DataFrame:
    """One clip's Δℓ_t (codebook mean, ``nll − nll_clean``) under its example condition, frame by frame, in
    ``[onset − before, onset + after)``.

    Returns:
        ``frame, rel_frame`` (frames from the onset) and ``mean`` (the Δ, named as in :func:`onset_curves` so that
        :func:`cae.plotting.curve_chart` draws it).
    """
    t = results.tokens
    tok = t[(t["clip"] == example.clip) & (t["condition"] == example.perturbation.label)
            & (t["model_id"] == example.model_id)]
    one = (tok.assign(delta=tok["nll"] - tok["nll_clean"]).groupby("frame")["delta"].mean().reset_index()
           .assign(rel_frame=lambda d: d["frame"] - onset))
    one = one[(one["rel_frame"] >= -before) & (one["rel_frame"] < after)]
    return one.rename(columns={"delta": "mean"})[["frame", "rel_frame", "mean"]].reset_index(drop=True)
