"""Sweeps: clips x perturbations x models, cached by content, resumable, batched, distributable.

* :mod:`cae.sweep.runner`: :func:`run_sweep`, planning against the cache, executors (serial, Dask, futures);
* :mod:`cae.sweep.cache`: the content-addressed unit store (:class:`UnitCache`, :func:`unit_key`);
* :mod:`cae.sweep.engine`: :class:`ClipEngine`, one clip under many perturbations;
* :mod:`cae.sweep.prefix`: LM scoring that reuses the clean clip's KV cache (:class:`PrefixScorer`);
* :mod:`cae.sweep.encoder`: EnCodec re-encoding limited to what a perturbation reaches (:class:`IncrementalEncodec`).

Example::

    from cae.perturb import PAPER_LENGTHS, paper_noise
    from cae.sweep import run_sweep

    tables = run_sweep(["a.wav", "b.wav"], [paper_noise(L, "ood") for L in PAPER_LENGTHS], "facebook/musicgen-small")
    tables.write("results.parquet")          # tokens + results.summary.parquet, as cae.score writes them
"""

from __future__ import annotations

from cae.sweep.cache import Unit, UnitCache, default_root, key_document, unit_key
from cae.sweep.engine import ClipEngine, EngineOptions
from cae.sweep.runner import ClipTask, SweepStats, SweepTables, run_clip_task, run_sweep, worker_model

__all__ = [
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
