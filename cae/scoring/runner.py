"""Run a sweep (clips x perturbations x models) through the unit cache, serially or on an executor (Dask).

Plan. For every model and clip the runner computes the unit keys (:func:`cae.scoring.cache.unit_key`) of the clean
condition and of every perturbation as applied to that clip (:func:`cae.scoring.for_clip`: a perturbation with a
``seed`` field gets ``seed + offset``, the offset derived from the clip's content or, under the authors' protocol, its
position in the list; :func:`cae.scoring.seed_offset`). A (model, clip) pair whose units are all in the cache is done; every
other pair becomes one task. Planning reads file hashes and unit files only; no model is called.

Task. A task loads the clip, runs :class:`~cae.scoring.engine.ClipEngine` (clean pass once; an engine the model kept from an
earlier sweep is reused, :class:`~cae.scoring.engine.EngineCache`), then goes through the
clip's conditions in fixed batches of ``batch_size`` in sweep order, skipping batches whose units are all cached and
writing each missing unit atomically as soon as its batch is scored. The batches do not depend on what is cached, so
a resumed sweep runs every batch exactly as an uninterrupted one would and produces the same bits.

Errors. An input that cannot be used (unreadable or corrupt file, a clip too short for a perturbation or for the
codec) becomes a unit with ``error`` set (cached: it is a property of the input); the row names the file; the sweep
goes on. An unexpected exception inside a task (out of memory, a bug) becomes an error row that is *not* cached, so
a rerun retries it.

Executors. ``executor=None`` runs tasks in this process. A ``dask.distributed.Client`` gets one task per (model,
clip) with a deterministic key derived from the unit keys (``cae-sweep-<hash>``), models given as instances are
broadcast to the workers once, models given by name are loaded once per worker process; workers write units to the
cache folder, which must therefore be on a file system they share, and the client reads the results from it. Any
``concurrent.futures.Executor`` works the same way (models are pickled per task, so prefer names with processes).

Why one module of about 600 lines: planning against the cache, running a task and assembling the tables must agree
on one unit layout and one batch order (that is what makes a resumed sweep bit-identical); the cache, the engine
and the two reuse mechanisms are separate modules.
"""

from __future__ import annotations

import hashlib
import json
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cae.analysis import clip_loss, mask_summary, token_mask
from cae.checks import clip_warnings, perturbation_warning
from cae.errors import AudioError
from cae.models.base import MusicLM, load_model
from cae.provenance import file_sha256, versions
from cae.perturb import Perturbation
from cae.scoring.conditions import CLEAN, condition_label, for_clip, seed_offset
from cae.scoring.tables import ScoreTables, condition_arrays
from cae.scoring.cache import CorruptUnitError, Unit, UnitCache, default_root, key_document, unit_key
from cae.scoring.engine import DATA_ERRORS, ClipEngine, EngineOptions, Scored, engines_of

__all__ = ["ClipTask", "SweepStats", "SweepTables", "run_sweep"]

ModelLike = str | MusicLM


@dataclass
class SweepStats:
    """What a :func:`run_sweep` call did: units in the sweep, found in the cache, computed now; tasks run."""

    units: int = 0
    cached: int = 0
    computed: int = 0
    tasks: int = 0
    errors: int = 0


@dataclass
class SweepTables(ScoreTables):
    """:class:`cae.scoring.ScoreTables` (``tokens``, ``summary``, ``write``) plus the run's :class:`SweepStats`.

    ``tokens`` has the columns of :func:`cae.scoring.naive.score_clips`' tokens table plus ``model_id`` (last), so that a
    sweep over several models stays one table; ``summary`` has exactly the columns of its summary table.
    """

    stats: SweepStats = field(default_factory=SweepStats)


@dataclass(frozen=True)
class ClipTask:
    """One (model, clip) pair with at least one missing unit.

    Attributes:
        model_index: position of the model in the sweep.
        clip: path of the clip.
        clip_index: position of the clip in the sweep (the seeding index).
        audio_sha256: hash of the clip's bytes.
        perturbations: the perturbations as applied to this clip (seeded).
        clean_key: key of the clean unit.
        keys: keys of the perturbation units, in order.
        missing: keys not in the cache when the sweep was planned.
        key_docs: the key documents, by key (stored in each unit for provenance).
    """

    model_index: int
    clip: str
    clip_index: int
    audio_sha256: str
    perturbations: tuple[Any, ...]
    clean_key: str
    keys: tuple[str, ...]
    missing: frozenset[str]
    key_docs: Mapping[str, Any] = field(compare=False, hash=False, repr=False, default_factory=dict)

    @property
    def task_key(self) -> str:
        """Deterministic executor key: ``cae-sweep-`` + a hash of the task's unit keys."""
        h = hashlib.sha256("".join((self.clean_key, *self.keys)).encode()).hexdigest()
        return f"cae-sweep-{h[:40]}"


@dataclass
class TaskResult:
    """What a task sends back: keys it wrote, units it could not cache (unexpected errors), engine counters."""

    written: list[str] = field(default_factory=list)
    uncached: list[Unit] = field(default_factory=list)


# ---- the task ------------------------------------------------------------------------------------------------------
def _version_fields() -> dict[str, str]:
    return {f"version_{k}": v for k, v in versions().items()}


def _stored_versions() -> list[list[str]]:
    """The version fields as ordered pairs (unit metadata is canonical JSON, which sorts object keys)."""
    return [[k, v] for k, v in _version_fields().items()]


def _unit_versions(unit: Unit) -> dict[str, str]:
    return {k: v for k, v in unit.summary.get("versions") or []}


def _message(e: BaseException) -> str:
    """``Type: problem`` without the file name (units are path-independent; rows add the path)."""
    problem = e.problem if isinstance(e, AudioError) else str(e)
    return f"{type(e).__name__}: {problem}"


def _clean_unit(task: ClipTask, engine: ClipEngine, duration_s: float, warning: str | None = None) -> Unit:
    nll = engine.clean_nll
    clean, ch = condition_arrays(nll, nll, None)
    return Unit(
        key=task.clean_key,
        summary={"condition": CLEAN, "perturbation": None, "seed": None, "loss": clip_loss(nll), "delta_loss": 0.0,
                 "n_frames": int(engine.clean_codes.shape[1]), "error": None, "warning": warning,
                 "clip_sha256": task.audio_sha256, "duration_s": duration_s, "versions": _stored_versions(),
                 "key_document": task.key_docs.get(task.clean_key)},
        codes=engine.clean_codes.numpy(), nll=nll.numpy(), nll_clean=clean, changed=ch,
    )


def _condition_unit(task: ClipTask, j: int, engine: ClipEngine, scored: Scored, duration_s: float,
                    warning: str | None = None) -> Unit:
    p = task.perturbations[j]
    key = task.keys[j]
    summary: dict[str, Any] = {"condition": condition_label(p), "perturbation": json.dumps(p.to_dict(), sort_keys=True),
                               "seed": getattr(p, "seed", None), "warning": warning, "clip_sha256": task.audio_sha256,
                               "duration_s": duration_s, "versions": _stored_versions(),
                               "key_document": task.key_docs.get(key)}
    if scored.error is not None or scored.nll is None or scored.codes is None:
        return Unit(key=key, summary={**summary, "error": scored.error or "not scored"})
    changed = token_mask(engine.clean_codes, scored.codes)
    span = mask_summary(changed)
    loss = clip_loss(scored.nll)
    clean, ch = condition_arrays(scored.nll, engine.clean_nll, changed)
    summary.update({"loss": loss, "delta_loss": loss - clip_loss(engine.clean_nll), "n_frames": int(scored.codes.shape[1]),
                    "first_changed": span.first, "last_changed": span.last, "n_changed_tokens": int(changed.sum()),
                    "error": None})
    return Unit(key=key, summary=summary, codes=scored.codes.numpy(), nll=scored.nll.numpy(), nll_clean=clean,
                changed=ch)


def run_clip_task(task: ClipTask, model: MusicLM, cache: UnitCache, *, prompt: str | None = None,
                  options: EngineOptions | None = None, on_unit: Callable[[Unit], None] | None = None) -> TaskResult:
    """Compute the missing units of one (model, clip) pair and write them to ``cache`` (module docstring).

    Args:
        task: the pair and its unit keys.
        model: the loaded model.
        cache: where units go.
        prompt: text condition (``None``: null condition).
        options: :class:`~cae.scoring.engine.EngineOptions`.
        on_unit: called with each unit written (progress reporting).
    """
    from cae.audio import load

    options = options or EngineOptions()
    result = TaskResult()

    def emit(unit: Unit) -> None:
        if unit.key not in task.missing and cache.has(unit.key):
            return
        if unit.cacheable:
            cache.write(unit)
            result.written.append(unit.key)
        else:
            result.uncached.append(unit)
        if on_unit is not None:
            on_unit(unit)

    def clip_error(message: str, cacheable: bool) -> TaskResult:
        unit = Unit(key=task.clean_key, summary={"condition": CLEAN, "error": message, "versions": _stored_versions(),
                                                 "key_document": task.key_docs.get(task.clean_key)},
                    cacheable=cacheable)
        emit(unit)
        return result

    known = None
    if task.clean_key not in task.missing:  # the clean unit is cached: its tokens and NLL spare the clean pass
        try:                                # where no perturbation can reuse it (ClipEngine)
            unit = cache.read(task.clean_key)
            if unit.error is None and unit.codes is not None and unit.nll is not None:
                known = (unit.codes, unit.nll)
        except CorruptUnitError:
            known = None
    try:
        wav = load(task.clip, sample_rate=model.sample_rate)
        engine = engines_of(model).get(model, task.audio_sha256, wav, prompt=prompt, options=options, clean=known)
    except DATA_ERRORS as e:
        return clip_error(_message(e), cacheable=True)
    except Exception as e:  # noqa: BLE001 - an unexpected failure of one clip must not stop the sweep
        return clip_error(_unexpected(e), cacheable=False)
    duration = len(wav) / model.sample_rate
    emit(_clean_unit(task, engine, duration, clip_warnings(task.clip, wav, model, int(engine.clean_codes.shape[1]))))
    size = engine.batch_size
    for lo in range(0, len(task.keys), size):
        batch = range(lo, min(lo + size, len(task.keys)))
        if not any(task.keys[j] in task.missing for j in batch):
            continue
        waves: list[np.ndarray | None] = []
        errors: dict[int, str] = {}
        for j in batch:
            try:
                waves.append(task.perturbations[j].apply(wav, model.sample_rate, None))
            except DATA_ERRORS as e:
                waves.append(None)
                errors[j] = _message(e)
        try:
            scored = engine.score(waves)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory: report the batch, retry it on the next run
            for j in batch:
                unit = _condition_unit(task, j, engine, Scored(error=_unexpected(e)), duration)
                unit.cacheable = False
                emit(unit)
            continue
        for j, sc in zip(batch, scored):
            note = perturbation_warning(task.perturbations[j], wav, model.sample_rate)
            emit(_condition_unit(task, j, engine, Scored(error=errors[j]) if j in errors else sc, duration, note))
    return result


def _unexpected(e: BaseException) -> str:
    return "unexpected " + "".join(traceback.format_exception_only(type(e), e)).strip()


# ---- executors -----------------------------------------------------------------------------------------------------
_MODELS: dict[str, MusicLM] = {}
_MODELS_LOCK = threading.Lock()


def _model_cache_key(name: str, kwargs: Mapping[str, Any]) -> str:
    return json.dumps([name, dict(kwargs)], sort_keys=True, default=str)


def worker_model(name: str, kwargs: Mapping[str, Any] | None = None) -> MusicLM:
    """``load_model(name, **kwargs)``, loaded once per process (what executor workers use for named models)."""
    kwargs = dict(kwargs or {})
    key = _model_cache_key(name, kwargs)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(name, **kwargs)
        return _MODELS[key]


def _remote_info(model: ModelLike, kwargs: Mapping[str, Any] | None, prompt: str | None) -> dict[str, Any]:
    m = model if isinstance(model, MusicLM) else worker_model(model, kwargs)
    return m.info(prompt).as_dict()


def _remote_task(task: ClipTask, model: ModelLike, kwargs: Mapping[str, Any] | None, root: str, prompt: str | None,
                 options: EngineOptions | None) -> TaskResult:
    m = model if isinstance(model, MusicLM) else worker_model(model, kwargs)
    return run_clip_task(task, m, UnitCache(root), prompt=prompt, options=options)


class _Serial:
    """Tasks in this process; named models loaded once for the call."""

    def __init__(self, kwargs: Mapping[str, Any] | None):
        self.kwargs = kwargs
        self.loaded: dict[int, MusicLM] = {}

    def model(self, index: int, model: ModelLike) -> MusicLM:
        if isinstance(model, MusicLM):
            return model
        if index not in self.loaded:
            self.loaded[index] = load_model(model, **dict(self.kwargs or {}))
        return self.loaded[index]

    def infos(self, models: Sequence[ModelLike], prompt: str | None) -> list[dict[str, Any]]:
        return [self.model(i, m).info(prompt).as_dict() for i, m in enumerate(models)]

    def run(self, tasks: Sequence[ClipTask], models: Sequence[ModelLike], cache: UnitCache, prompt: str | None,
            options: EngineOptions | None, on_unit: Callable[[Unit], None],
            on_task: Callable[[ClipTask, TaskResult], None]) -> None:
        for task in tasks:
            res = run_clip_task(task, self.model(task.model_index, models[task.model_index]), cache, prompt=prompt,
                                options=options, on_unit=on_unit)
            on_task(task, res)


class _Dask:
    """A ``dask.distributed.Client``."""

    def __init__(self, client: Any, kwargs: Mapping[str, Any] | None):
        self.client = client
        self.kwargs = kwargs

    def infos(self, models: Sequence[ModelLike], prompt: str | None) -> list[dict[str, Any]]:
        out = []
        for m in models:
            if isinstance(m, MusicLM):
                out.append(m.info(prompt).as_dict())
            else:
                out.append(self.client.submit(_remote_info, m, self.kwargs, prompt, pure=False).result())
        return out

    def run(self, tasks: Sequence[ClipTask], models: Sequence[ModelLike], cache: UnitCache, prompt: str | None,
            options: EngineOptions | None, on_unit: Callable[[Unit], None],
            on_task: Callable[[ClipTask, TaskResult], None]) -> None:
        from distributed import as_completed

        args: dict[int, Any] = {}
        for i in {t.model_index for t in tasks}:
            m = models[i]
            args[i] = self.client.scatter(m, broadcast=True, hash=False) if isinstance(m, MusicLM) else m
        futures = {}
        for t in tasks:
            fut = self.client.submit(_remote_task, t, args[t.model_index], self.kwargs, str(cache.root), prompt,
                                     options, key=t.task_key, pure=False, retries=0)
            futures[fut.key] = (fut, t)
        for fut in as_completed([f for f, _ in futures.values()]):
            on_task(futures[fut.key][1], fut.result())


class _Futures:
    """Any ``concurrent.futures.Executor``."""

    def __init__(self, executor: Any, kwargs: Mapping[str, Any] | None):
        self.executor = executor
        self.kwargs = kwargs

    def infos(self, models: Sequence[ModelLike], prompt: str | None) -> list[dict[str, Any]]:
        return [m.info(prompt).as_dict() if isinstance(m, MusicLM)
                else self.executor.submit(_remote_info, m, self.kwargs, prompt).result() for m in models]

    def run(self, tasks: Sequence[ClipTask], models: Sequence[ModelLike], cache: UnitCache, prompt: str | None,
            options: EngineOptions | None, on_unit: Callable[[Unit], None],
            on_task: Callable[[ClipTask, TaskResult], None]) -> None:
        from concurrent.futures import as_completed

        futures = {self.executor.submit(_remote_task, t, models[t.model_index], self.kwargs, str(cache.root), prompt,
                                        options): t for t in tasks}
        for fut in as_completed(futures):
            on_task(futures[fut], fut.result())


def _backend(executor: Any, kwargs: Mapping[str, Any] | None) -> _Serial | _Dask | _Futures:
    if executor is None:
        return _Serial(kwargs)
    if hasattr(executor, "scatter") and hasattr(executor, "gather"):
        return _Dask(executor, kwargs)
    if hasattr(executor, "submit"):
        return _Futures(executor, kwargs)
    raise TypeError(f"executor must be None, a dask.distributed.Client or a concurrent.futures.Executor, got {executor!r}")


# ---- assembly ------------------------------------------------------------------------------------------------------
@dataclass
class _ClipPlan:
    model_index: int
    clip: str
    clip_index: int
    error: str | None = None
    task: ClipTask | None = None


def _token_frame(clip: str, condition: str, unit: Unit, model_id: str, codes: bool = False) -> pd.DataFrame:
    k, f = unit.nll.shape  # type: ignore[union-attr]
    extra = {"code": np.asarray(unit.codes, dtype=np.int32).reshape(-1)} if codes else {}
    return pd.DataFrame({
        "clip": clip,
        "condition": condition,
        "codebook": np.repeat(np.arange(k, dtype=np.int16), f),
        "frame": np.tile(np.arange(f, dtype=np.int32), k),
        "nll": np.asarray(unit.nll, dtype=np.float32).reshape(-1),
        "nll_clean": np.asarray(unit.nll_clean, dtype=np.float32).reshape(-1),
        "changed": np.asarray(unit.changed, dtype=bool).reshape(-1),
        "model_id": model_id,
        **extra,
    })


def _plan(clip_paths: Sequence[str], perts: Sequence[Perturbation], infos: Sequence[Mapping[str, Any]],
          shas: Mapping[str, str | BaseException], cache: UnitCache, seeding: str
          ) -> tuple[list[_ClipPlan], list[ClipTask], SweepStats]:
    """Unit keys of every (model, clip, condition); what is cached; one task per (model, clip) with work left."""
    stats = SweepStats()
    plans: list[_ClipPlan] = []
    for mi, info in enumerate(infos):
        for ci, clip in enumerate(clip_paths):
            sha = shas[clip]
            plan = _ClipPlan(mi, clip, ci)
            plans.append(plan)
            if isinstance(sha, BaseException):
                plan.error = _message(sha)
                stats.errors += 1
                continue
            offset = seed_offset(seeding, ci, sha)
            seeded = tuple(for_clip(p, offset) for p in perts)
            docs = {unit_key(sha, None, info): key_document(sha, None, info)}
            clean_key = next(iter(docs))
            keys = []
            for p in seeded:
                spec = p.to_dict()
                k = unit_key(sha, spec, info)
                docs[k] = key_document(sha, spec, info)
                keys.append(k)
            present = {k for k in docs if cache.has(k)}
            clean_unusable = False
            if clean_key in present:
                try:
                    clean_unusable = cache.read(clean_key).error is not None
                except CorruptUnitError as e:
                    cache.discard(e)
                    present.discard(clean_key)
            missing = frozenset(docs) - present
            n_units = len(docs)
            if clean_unusable:
                missing, n_units = frozenset(), 1  # the clip itself is unusable: its conditions are never computed
            stats.units += n_units
            stats.cached += n_units - len(missing)
            plan.task = ClipTask(mi, clip, ci, sha, seeded, clean_key, tuple(keys), missing, docs)
    tasks = [p.task for p in plans if p.task is not None and p.task.missing]
    stats.tasks = len(tasks)
    return plans, tasks, stats


def _assemble(plans: Sequence[_ClipPlan], infos: Sequence[Mapping[str, Any]], cache: UnitCache,
              uncached: Mapping[str, Unit], codes: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows in :func:`cae.scoring.naive.score_clips`' order and layout: per model, per clip, clean then each condition."""

    damaged: list[CorruptUnitError] = []

    def get(key: str) -> Unit:
        if key in uncached:
            return uncached[key]
        try:
            return cache.read(key)
        except CorruptUnitError as e:
            damaged.append(e)
            return Unit(key=key, summary={"condition": "?", "perturbation": None, "seed": None, "error": str(e)})

    frames: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    for plan in plans:
        info = dict(infos[plan.model_index])
        base = {"clip": plan.clip, "clip_index": plan.clip_index, **info}
        if plan.task is None:
            rows.append({**base, **_version_fields(), "condition": CLEAN, "error": f"{plan.clip}: {plan.error}"})
            continue
        task = plan.task
        clean = get(task.clean_key)
        vers = _unit_versions(clean) or _version_fields()
        if clean.error is not None:
            rows.append({**base, **vers, "condition": CLEAN, "error": f"{plan.clip}: {clean.error}"})
            continue
        s = clean.summary
        clip_base = {**base, **vers, "clip_sha256": s["clip_sha256"], "duration_s": s["duration_s"]}
        rows.append({**clip_base, "condition": CLEAN, "perturbation": None, "loss": s["loss"], "delta_loss": 0.0,
                     "n_frames": s["n_frames"], "error": None, "warning": s.get("warning")})
        frames.append(_token_frame(plan.clip, CLEAN, clean, info["model_id"], codes))
        for key in task.keys:
            unit = get(key)
            u = unit.summary
            row_base = {**clip_base, **_unit_versions(unit)}
            if unit.error is not None:
                rows.append({**row_base, "condition": u["condition"], "perturbation": u["perturbation"],
                             "seed": u["seed"], "error": f"{plan.clip}: {unit.error}"})
                continue
            rows.append({**row_base, "condition": u["condition"], "perturbation": u["perturbation"], "seed": u["seed"],
                         "loss": u["loss"], "delta_loss": u["delta_loss"], "n_frames": u["n_frames"],
                         "first_changed": u["first_changed"], "last_changed": u["last_changed"],
                         "n_changed_tokens": u["n_changed_tokens"], "error": None,
                         "warning": "; ".join(w for w in (s.get("warning"), u.get("warning")) if w) or None})
            frames.append(_token_frame(plan.clip, u["condition"], unit, info["model_id"], codes))
    if frames:
        tokens = pd.concat(frames, ignore_index=True)
    else:
        empty = Unit(key="", summary={}, codes=np.zeros((0, 0)), nll=np.zeros((0, 0), np.float32),
                     nll_clean=np.zeros((0, 0), np.float32), changed=np.zeros((0, 0), bool))
        tokens = _token_frame("", "", empty, "", codes)
    if damaged:
        raise _DamagedUnits(damaged)
    summary = pd.DataFrame(rows)
    for col in ("error", "warning", "perturbation", "seed", "loss", "delta_loss", "n_frames", "first_changed",
                "last_changed", "n_changed_tokens"):
        if col not in summary:
            summary[col] = None
    return tokens, summary


class _DamagedUnits(Exception):
    def __init__(self, errors: list[CorruptUnitError]):
        super().__init__(f"{len(errors)} damaged cache unit(s)")
        self.errors = errors


# ---- entry point ---------------------------------------------------------------------------------------------------
def run_sweep(
    clips: Sequence[str | Path],
    perturbations: Iterable[Perturbation],
    models: ModelLike | Sequence[ModelLike],
    *,
    prompt: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    executor: Any = None,
    options: EngineOptions | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    codes: bool = False,
    seeding: str = "content",
) -> SweepTables:
    """Score every clip, clean and under every perturbation, with every model; cached, resumable, batched.

    Args:
        clips: audio files (anything :func:`cae.audio.load` reads).
        perturbations: perturbation objects (:mod:`cae.perturb`); a ``seed`` field is offset per clip
            (:func:`cae.scoring.seed_offset`).
        models: one model or a list; each a loaded :class:`~cae.models.base.MusicLM` or a name for
            :func:`cae.load_model` (loaded once per process).
        prompt: text condition (``None``: the null condition).
        cache_dir: root of the unit cache (default ``cae.paths.cache_dir() / "sweeps"``).
        progress: show a tqdm progress bar (units).
        executor: ``None`` (this process), a ``dask.distributed.Client`` or a ``concurrent.futures.Executor``.
        options: :class:`~cae.scoring.engine.EngineOptions` (batch size, reuse switches).
        model_kwargs: keyword arguments for :func:`cae.load_model` when models are given by name.
        codes: add the token itself (``code``, int32) to the tokens table.
        seeding: ``"content"`` (a clip's noise seed derives from its bytes: the same clip gets the same noise in any
            list, order or machine) or ``"index"`` (the authors' ``seed + position in the list``).

    Returns:
        :class:`SweepTables`: ``tokens`` and ``summary`` laid out as :func:`cae.scoring.naive.score_clips`' tables
        (``tokens`` gains a ``model_id`` column), rows ordered by model, clip, then clean and each perturbation;
        ``stats`` says how many units came from the cache.
    """
    from tqdm.auto import tqdm

    clip_paths = [str(c) for c in clips]
    perts = list(perturbations)
    model_list: list[ModelLike] = [models] if isinstance(models, (str, MusicLM)) else list(models)  # type: ignore[list-item]
    cache = UnitCache(cache_dir if cache_dir is not None else default_root())
    cache.remove_stale_temporaries()
    backend = _backend(executor, model_kwargs)
    infos = backend.infos(model_list, prompt)

    shas: dict[str, str | BaseException] = {}
    for clip in clip_paths:
        try:
            shas[clip] = file_sha256(clip)
        except OSError as e:
            shas[clip] = AudioError(clip, f"cannot read file: {e.strerror or e}")
    first: SweepStats | None = None
    computed = 0
    for _attempt in range(3):  # a damaged unit found while assembling is deleted and computed again
        plans, tasks, stats = _plan(clip_paths, perts, infos, shas, cache, seeding)
        first = first or stats
        uncached: dict[str, Unit] = {}
        bar = tqdm(total=stats.units, initial=stats.cached, disable=not progress, unit="unit", desc="sweep")

        def on_unit(unit: Unit) -> None:
            bar.update(1)

        def on_task(task: ClipTask, res: TaskResult) -> None:
            stats.computed += len(res.written)
            for u in res.uncached:
                uncached[u.key] = u
            reported = len(res.written) + len(res.uncached) if isinstance(backend, _Serial) else 0
            bar.update(max(0, len(task.missing) - reported))  # units never computed (unusable clip) count as done

        try:
            backend.run(tasks, model_list, cache, prompt, options, on_unit, on_task)
        finally:
            bar.close()
        try:
            tokens, summary = _assemble(plans, infos, cache, uncached, codes)
            break
        except _DamagedUnits as damaged:
            for error in damaged.errors:
                cache.discard(error)
            first.cached -= len(damaged.errors)
        finally:
            computed += stats.computed
    else:
        raise RuntimeError(f"cache units under {cache.root} keep failing their integrity check; is the disk failing?")
    stats = first or stats  # what was cached before this call; units recomputed on a retry count as computed
    stats.computed = computed
    if "error" in summary:
        stats.errors = int(summary["error"].notna().sum())
    return SweepTables(tokens=tokens, summary=summary, stats=stats)
