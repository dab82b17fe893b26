"""Scoring: clips x perturbations x models, cached by content, resumable, batched, distributable.

There is one scoring path: :func:`run_sweep` (the notebooks through :func:`cae.study.run`, ``cae score`` and
``cae profile`` all use it). Its rows carry the clip loss and ``delta_loss`` against the clean clip
(:mod:`cae.scoring.tables`). :func:`cae.scoring.naive.score_clips` computes the same tables the slow, obvious way
and is kept only as the test oracle of the engine.

* :mod:`cae.scoring.conditions`: the clean condition, perturbation labels, per-clip seeds (:func:`seed_offset`);
* :mod:`cae.scoring.tables`: the tokens and summary tables (:class:`ScoreTables`);

* :mod:`cae.scoring.runner`: :func:`run_sweep`, planning against the cache, executors (serial, Dask, futures);
* :mod:`cae.scoring.cache`: the content-addressed unit store (:class:`UnitCache`, :func:`unit_key`);
* :mod:`cae.scoring.fingerprint`: the scoring code's fingerprint, which keeps ``SCORING_VERSION`` in the key honest;
* :mod:`cae.scoring.engine`: :class:`ClipEngine`, one clip under many perturbations;
* :mod:`cae.scoring.prefix`: LM scoring that reuses the clean clip's KV cache (:class:`PrefixScorer`);
* :mod:`cae.scoring.encoder`: EnCodec re-encoding limited to what a perturbation reaches (:class:`IncrementalEncodec`).

Example::

    from cae.paper import PAPER_LENGTHS, paper_noise
    from cae.scoring import run_sweep

    tables = run_sweep(["a.wav", "b.wav"], [paper_noise(L, "ood") for L in PAPER_LENGTHS], "facebook/musicgen-small")
    tables.write("results.parquet")          # tokens + results.summary.parquet, as the naive scorer writes them
"""

from __future__ import annotations

from cae.scoring.conditions import CLEAN, SEEDINGS, condition_label, for_clip, seed_offset
from cae.scoring.cache import Unit, UnitCache, default_root, key_document, unit_key
from cae.scoring.engine import ClipEngine, EngineOptions
from cae.scoring.runner import ClipTask, SweepStats, SweepTables, run_clip_task, run_sweep, worker_model
from cae.scoring.tables import ScoreTables

__all__ = [
    "CLEAN",
    "SEEDINGS",
    "ScoreTables",
    "condition_label",
    "for_clip",
    "seed_offset",
    "ClipEngine",
    "ClipTask",
    "EngineOptions",
    "SweepStats",
    "SweepTables",
    "Unit",
    "UnitCache",
    "default_root",
    "key_document",
    "run_clip_task",
    "run_sweep",
    "unit_key",
    "worker_model",
]
