"""Running a study: every (model, kind, clip, condition) through :func:`cae.scoring.run_sweep`, so results are
cached by content and reruns are free; rows gain the dataset ``kind``, the perturbation's parameters as columns
(``length``, ``colour``, ``level_db`` ...) and the protocol (:class:`StudyResults`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cae.datasets import resolve_datasets
from cae.models.base import MusicLM
from cae.perturb import Perturbation
from cae.scoring import run_sweep
from cae.study.setup import protocol

__all__ = ["GENERATION_SEED", "perturbation_columns", "run", "run_study", "StudyResults"]


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def perturbation_columns(perturbation_json: str | float | None) -> dict[str, Any]:
    """A perturbation's parameters as flat columns: ``perturbation_kind``, ``length`` (frames), ``onset``,
    ``colour``, ``level_db``, ``reference``, ``crossfade_ms``, ``mode``, ``budget`` (where they apply).

    >>> from cae.study.conditions import noise_conditions
    >>> c = perturbation_columns(json.dumps(noise_conditions("ood", [100])[0].to_dict()))
    >>> c["perturbation_kind"], c["length"], c["onset"], c["level_db"]
    ('noise', 100, 250, -30.0)
    """
    if not isinstance(perturbation_json, str) or not perturbation_json:
        return {"perturbation_kind": "clean", "length": 0}
    d = json.loads(perturbation_json)
    flat = _flat(d)
    out: dict[str, Any] = {"perturbation_kind": d.get("kind")}
    if "span_length" in flat:
        out["length"] = flat["span_length"]
        out["onset"] = flat.get("span_onset")
    elif "length" in flat:
        out["length"] = flat["length"]
    for k in ("colour", "level_db", "reference", "crossfade_ms", "mode", "budget"):
        if k in flat:
            out[k] = flat[k]
    return out


@dataclass
class StudyResults:
    """Tables of a study.

    Attributes:
        summary: one row per (model, kind, clip, condition): the sweep's summary columns (loss, ``delta_loss``,
            token-change span, perturbation JSON, seed, provenance, versions) plus ``kind``, ``protocol``,
            ``loss_clean`` and the perturbation's parameters as columns (:func:`perturbation_columns`).
        tokens: one row per (model, kind, clip, condition, codebook, frame): ``nll``, ``nll_clean``, ``changed``
            (and ``code`` when the study kept codes).
        params: the study's parameters, for the record.
    """
    summary: pd.DataFrame
    tokens: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def perturbed(self) -> pd.DataFrame:
        """Summary rows of perturbed conditions without errors."""
        s = self.summary
        return s[(s["condition"] != "clean") & s["error"].isna()]

    def errors(self) -> pd.DataFrame:
        """Rows with an error (file and message)."""
        return self.summary[self.summary["error"].notna()][["kind", "clip", "condition", "error"]]


def run_study(models: Sequence[MusicLM], clips: Mapping[str, Sequence[str | Path]],
              conditions: Callable[[str], Sequence[Perturbation]] | Mapping[str, Sequence[Perturbation]], *,
              protocol_name: str = "corrected", cache_dir: str | Path | None = None, codes: bool = False,
              progress: bool = True, executor: Any = None, params: Mapping[str, Any] | None = None,
              seeding: str | None = None) -> StudyResults:
    """Score every model on every kind's clips, clean and under that kind's conditions (cached sweep).

    Args:
        models: loaded models (see :func:`load_models`).
        clips: ``{kind: [paths]}`` (see :func:`cae.datasets.resolve_datasets`).
        conditions: ``kind -> [perturbations]`` (a function or a mapping).
        protocol_name: recorded in the rows.
        cache_dir: the sweep cache (default ``cae.paths.cache_dir() / "sweeps"``).
        codes: keep the tokens themselves (``code`` column; needed by :func:`noise_token_stats`).
        progress: progress bars.
        executor: passed to :func:`cae.scoring.run_sweep` (e.g. a Dask client).
        params: recorded as :attr:`StudyResults.params`.
        seeding: per-clip seed offsets (:func:`cae.scoring.seed_offset`); default: the protocol's.
    """
    summaries, tokens = [], []
    for model in models:
        for kind, paths in clips.items():
            perts = list(conditions(kind) if callable(conditions) else conditions[kind])
            tables = run_sweep(list(paths), perts, model, cache_dir=cache_dir, progress=progress, codes=codes,
                               executor=executor, seeding=seeding or protocol(protocol_name).seeding)
            s = tables.summary.copy()
            s.insert(0, "kind", kind)
            s.insert(1, "protocol", protocol_name)
            t = tables.tokens
            t.insert(0, "kind", kind)
            summaries.append(s)
            tokens.append(t)
    summary = pd.concat(summaries, ignore_index=True)
    cols = pd.DataFrame([perturbation_columns(p) for p in summary["perturbation"]], index=summary.index)
    summary = pd.concat([summary, cols], axis=1)
    clean = summary[summary["condition"] == "clean"].set_index(["model_id", "alignment", "kind", "clip"])["loss"]
    key = pd.MultiIndex.from_frame(summary[["model_id", "alignment", "kind", "clip"]])
    summary["loss_clean"] = clean.reindex(key).to_numpy()
    return StudyResults(summary, pd.concat(tokens, ignore_index=True), dict(params or {}))


#: Seed of the ``generated`` dataset kind (fixed, so changing the perturbation seed does not resample music).
GENERATION_SEED = 0


def run(models: Sequence[MusicLM], datasets: Mapping[str, str],
        conditions: Callable[[str], Sequence[Perturbation]], *, n_clips: int | None = None,
        protocol_name: str = "corrected", cache_dir: str | Path | None = None, codes: bool = False,
        progress: bool = True, executor: Any = None, params: Mapping[str, Any] | None = None,
        seeding: str | None = None) -> StudyResults:
    """:func:`run_study` from dataset specs (:mod:`cae.datasets`), resolved per model (``generated`` is sampled
    by each model under study), concatenated over models."""

    parts = []
    for model in models:
        clips = resolve_datasets(datasets, n_clips=n_clips, model=model, seed=GENERATION_SEED, progress=progress)
        parts.append(run_study([model], clips, conditions, protocol_name=protocol_name, cache_dir=cache_dir,
                               codes=codes, progress=progress, executor=executor, params=params, seeding=seeding))
    return StudyResults(pd.concat([p.summary for p in parts], ignore_index=True),
                        pd.concat([p.tokens for p in parts], ignore_index=True), dict(params or {}))
