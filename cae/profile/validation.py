"""Validation of the profile score against known quality orders, next to the absolute loss it should beat.

The claim under test: the profile score (:mod:`cae.profile.scores`) orders models and clips by quality where the
absolute clean loss does not. Both checks compare a known order to the scores with Spearman rank correlations
(:func:`rank_correlations`), each metric oriented so that higher should mean better: the profile score, the main
features (shorter widths and times counted as better), and minus the clean loss, the baseline:

* **Models** (:func:`validate_models`): the checkpoints of one training run of a reference model
  (:func:`checkpoint_models`, from :mod:`cae.reference.checkpoints`) are a known order (the training step; the
  held-out loss falls monotonically along it). Every model profiles the same clips; reported are the ρ between
  the step and the per-model mean over clips (with a CI from resampling clips), and the within-clip ρ (each clip
  ranks the models by itself) averaged over clips.
* **Clips** (:func:`validate_clips`): every clip is degraded along graded ladders (:mod:`cae.profile.ladder`;
  the clean clip is level 0) and optionally set beside the model's own samples over top-k and temperature; the
  known order is ``−severity`` (or less randomness, or real above generated). Reported per family: the
  within-clip ρ averaged over clips and the pooled ρ, with CIs from resampling clips.

CIs resample whole clusters (clips): a percentile bootstrap for the pooled ρ and a BCa CI
(:func:`cae.analysis.bootstrap_ci`) for the mean within-cluster ρ.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import soundfile as sf
from scipy.stats import spearmanr

from cae.analysis import bootstrap_ci
from cae.audio import load
from cae.errors import ModelError
from cae.generation import write_generated_set
from cae.models.base import MusicLM, load_model
from cae.models.sampling import SAMPLER_VERSION
from cae.paths import cache_dir as default_cache
from cae.profile.features import _MEAN, NAN, FeatureParams, FloatArray
from cae.profile.ladder import DEFAULT_LADDERS, degradation_ladder
from cae.profile.run import ProfileProtocol, profile_clips
from cae.profile.scores import DEFAULT_SCORE_FEATURE, _select, clip_scores, model_scores
from cae.profile.table import profile_table
from cae.provenance import file_sha256
from cae.reference.checkpoints import checkpoint_table
from cae.scoring import run_sweep

__all__ = [
    "ClipValidation",
    "ModelValidation",
    "checkpoint_models",
    "rank_correlations",
    "validate_clips",
    "validate_models",
]


# ---------------------------------------------------------------------------------------------------------------------
# Rank correlations with cluster-bootstrap CIs


def _spearman(x: FloatArray, y: FloatArray) -> float:
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
    return {r["name"]: max(0, int(r["step"])) for r in sorted(checkpoint_table(family), key=lambda r: r["step"])}


#: Features reported next to the score in the validations (codebook-mean rows, averaged over short bursts).
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
    protocol: ProfileProtocol | None = None,
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
    t0 = time.time()
    models = dict(checkpoint_models() if models is None else models)
    protocol = protocol or ProfileProtocol()
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
    protocol: ProfileProtocol | None = None,
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
    t0 = time.time()
    m: MusicLM = load_model(model) if isinstance(model, str) else model
    protocol = protocol or ProfileProtocol()
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
