"""Content-addressed store of sweep results: one parquet file per (clip, condition, model) *unit*.

Key. A unit's key is the SHA-256 of a canonical JSON document (sorted keys, no whitespace) holding everything
that determines its numbers:

* ``audio_sha256``: the clip file's bytes (not its path: a renamed or copied file hits the cache);
* ``perturbation``: the perturbation's ``to_dict()`` *after* per-clip seeding (:func:`cae.scoring.for_clip`), so the
  exact seed used is part of the key (``null`` for the clean condition);
* ``model``: the adapter's :meth:`~cae.models.base.MusicLM.info` (model id, backend, revision, dtype, alignment,
  conditioning, rates, codebooks) including ``weights``, the digest of the weights that compute the numbers
  (:meth:`~cae.models.base.MusicLM.weights_digest`: a local folder's file hashes, a hub snapshot's commit, an
  ``@random`` model's recipe, a shipped model's verified checksums, else the hash of the tensors), so a checkpoint
  folder retrained in place, or another seed, gets new keys;
* ``scoring``: :data:`SCORING_VERSION`, the version of the code that computes a unit (the modules of
  :data:`SCORING_MODULES`); a test compares their source with a recorded fingerprint and fails until the version is
  bumped (:mod:`cae.scoring.fingerprint`);
* ``cae``: the package version, and ``schema``: the unit format version of this module.

Nothing else (paths, clip order, batch sizes, device) enters the key; results computed on another machine or in
another sweep merge by key.

Layout. ``<root>/units/<key[:2]>/<key>.parquet``, ``root`` defaulting to ``cae.paths.cache_dir() / "sweeps"``.
Each file holds the unit's token rows (``codebook, frame, code, nll, nll_clean, changed``) and, in the parquet
schema metadata under ``cae.unit``, its summary (condition label, perturbation JSON, seed, loss, token-change span,
error, the package versions that computed it, the key document).

Integrity. Each unit also stores a SHA-256 ``digest`` of its summary and of the bytes of its token columns, checked on
every read. A file that cannot be parsed (truncated, emptied, not parquet) or whose content no longer matches its
digest (a flipped bit) raises :class:`CorruptUnitError` naming the file; the runner then deletes it with a warning
and computes the unit again, so a damaged cache costs time, never a wrong number.

Atomicity. A unit is written to a temporary file in the same folder, flushed and fsync'ed, then moved into place
with :func:`os.replace` (atomic on POSIX and Windows). A reader therefore sees either no file or a complete one, so a
sweep killed at any moment (``kill -9`` included) leaves only complete units plus, at worst, stray ``.tmp`` files,
which later sweeps ignore and remove once they are an hour old. Two workers computing the same unit write the same
content; the last rename wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import cae
from cae.paths import cache_dir

__all__ = ["SCHEMA", "SCORING_MODULES", "SCORING_VERSION", "CorruptUnitError", "Unit", "UnitCache", "default_root",
           "key_document", "unit_key"]

#: Version of the unit format; bump to invalidate every cached unit.
#: 2: units carry a content digest; perturbation seeds derive from the clip's content under the corrected protocol.
SCHEMA = 2

#: Version of the scoring code, part of every unit key: bump it when a change to :data:`SCORING_MODULES` can change
#: what a unit holds (tests/test_cache_weights.py fails until it is bumped, see :mod:`cae.scoring.fingerprint`).
SCORING_VERSION = 1

#: The modules whose code decides a unit's numbers: audio loading and resampling, the perturbations, the adapters'
#: encoding and ``_token_nll`` (transformers, audiocraft, the reference models and their layouts), the sweep engine
#: with its exact shortcuts, and the unit's summary (loss, changed tokens, condition label). Their source is
#: fingerprinted (:func:`cae.scoring.fingerprint.source_fingerprint`). Model *weights* are not code: they enter the
#: key through :meth:`~cae.models.base.MusicLM.weights_digest`.
SCORING_MODULES: tuple[str, ...] = (
    "cae.audio",
    "cae.perturb.base", "cae.perturb.noise", "cae.perturb.edit", "cae.perturb.order", "cae.perturb.filters",
    "cae.models.base", "cae.models.layout", "cae.models.hf", "cae.models.audiocraft", "cae.models.yue",
    "cae.models.xcodec",
    "cae.reference.model", "cae.reference.tokenizer",
    "cae.scoring.conditions", "cae.scoring.engine", "cae.scoring.prefix", "cae.scoring.encoder",
    "cae.scoring.runner", "cae.scoring.tables",
    "cae.analysis.delta", "cae.analysis.mask",
)


class CorruptUnitError(Exception):
    """A cached unit file that cannot be read or fails its digest check."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"damaged cache unit {path}: {reason}")
        self.path = path
        self.reason = reason
        self.key = path.stem
_META = b"cae.unit"


def default_root() -> Path:
    """``cae.paths.cache_dir() / "sweeps"``."""
    return cache_dir() / "sweeps"


def key_document(audio_sha256: str, perturbation: Mapping[str, Any] | None, model: Mapping[str, Any],
                 cae_version: str | None = None, *, scoring_version: int | None = None) -> dict[str, Any]:
    """The JSON document a unit key hashes (module docstring).

    Args:
        audio_sha256: hex SHA-256 of the clip file's bytes.
        perturbation: ``to_dict()`` of the perturbation as applied to this clip, or ``None`` for the clean condition.
        model: ``model.info(prompt).as_dict()`` (its ``weights`` field identifies the weights).
        cae_version: defaults to ``cae.__version__``.
        scoring_version: defaults to :data:`SCORING_VERSION`.
    """
    return {
        "schema": SCHEMA,
        "scoring": SCORING_VERSION if scoring_version is None else int(scoring_version),
        "cae": cae_version or cae.__version__,
        "audio_sha256": audio_sha256,
        "perturbation": None if perturbation is None else dict(perturbation),
        "model": dict(model),
    }


def _canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def unit_key(audio_sha256: str, perturbation: Mapping[str, Any] | None, model: Mapping[str, Any],
             cae_version: str | None = None, *, scoring_version: int | None = None) -> str:
    """Hex SHA-256 of the canonical JSON of :func:`key_document`.

    >>> k = unit_key("ab" * 32, None, {"model_id": "tiny", "weights": "hub:1"})
    >>> len(k), k == unit_key("ab" * 32, None, {"model_id": "tiny", "weights": "hub:1"})
    (64, True)
    >>> k in (unit_key("ab" * 32, None, {"model_id": "tiny", "weights": "hub:2"}),
    ...       unit_key("ab" * 32, None, {"model_id": "tiny", "weights": "hub:1"}, scoring_version=SCORING_VERSION + 1))
    False
    """
    doc = key_document(audio_sha256, perturbation, model, cae_version, scoring_version=scoring_version)
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


@dataclass
class Unit:
    """The result of one (clip, condition, model) unit.

    Attributes:
        key: its cache key.
        summary: JSON-able summary fields (``condition``, ``perturbation``, ``seed``, ``loss``, ``delta_loss``,
            ``n_frames``, ``first_changed``, ``last_changed``, ``n_changed_tokens``, ``clip_sha256``, ``duration_s``,
            ``error``, ``versions``, ``key_document``); an errored unit has ``error`` set and no token arrays.
        codes: int32 ``[K, F]`` tokens of the condition (``None`` on error).
        nll: float32 ``[K, F]`` per-token NLL.
        nll_clean: float32 ``[K, F]``: the clean NLL at the same position, NaN past the clean clip's end.
        changed: bool ``[K, F]``: the token differs from the clean token (``True`` past the clean clip's end).
    """

    key: str
    summary: dict[str, Any]
    codes: np.ndarray | None = None
    nll: np.ndarray | None = None
    nll_clean: np.ndarray | None = None
    changed: np.ndarray | None = None
    cacheable: bool = field(default=True, compare=False)

    @property
    def error(self) -> str | None:
        return self.summary.get("error")

    def to_table(self) -> pa.Table:
        """Token rows as an Arrow table with the summary in the schema metadata."""
        if self.nll is None:
            k = f = 0
            cols: dict[str, np.ndarray] = {n: np.zeros(0, dt) for n, dt in _COLUMNS.items()}
        else:
            k, f = self.nll.shape
            cols = {
                "codebook": np.repeat(np.arange(k, dtype=np.int16), f),
                "frame": np.tile(np.arange(f, dtype=np.int32), k),
                "code": np.asarray(self.codes, dtype=np.int32).reshape(-1),
                "nll": np.asarray(self.nll, dtype=np.float32).reshape(-1),
                "nll_clean": np.asarray(self.nll_clean, dtype=np.float32).reshape(-1),
                "changed": np.asarray(self.changed, dtype=bool).reshape(-1),
            }
        meta = {**self.summary, "key": self.key, "shape": [k, f]}
        meta["digest"] = _digest(meta, cols)
        table = pa.table(cols)
        return table.replace_schema_metadata({_META: _canonical(meta).encode()})

    @classmethod
    def from_table(cls, table: pa.Table) -> Unit:
        """The unit stored in ``table``; ``ValueError`` when its content does not match its digest."""
        meta = json.loads((table.schema.metadata or {})[_META])
        col = {name: table.column(name).to_numpy(zero_copy_only=False).astype(dt, copy=False)
               for name, dt in _COLUMNS.items()}
        digest = meta.pop("digest", None)
        if digest is None or digest != _digest(meta, col):
            raise ValueError("content does not match its digest")
        k, f = meta.pop("shape")
        key = meta.pop("key")
        if k * f == 0:
            return cls(key=key, summary=meta)
        return cls(
            key=key,
            summary=meta,
            codes=col["code"].reshape(k, f),
            nll=col["nll"].reshape(k, f),
            nll_clean=col["nll_clean"].reshape(k, f),
            changed=col["changed"].reshape(k, f),
        )


def _digest(meta: Mapping[str, Any], cols: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the canonical summary (without its digest) and of each token column's bytes, in a fixed order."""
    h = hashlib.sha256(_canonical({k: v for k, v in meta.items() if k != "digest"}).encode())
    for name, dt in _COLUMNS.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(cols[name], dtype=dt).tobytes())
    return h.hexdigest()


_COLUMNS = {"codebook": np.int16, "frame": np.int32, "code": np.int32, "nll": np.float32, "nll_clean": np.float32,
            "changed": bool}


class UnitCache:
    """The on-disk unit store (module docstring).

    Args:
        root: folder of the store (default :func:`default_root`).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_root()

    def path(self, key: str) -> Path:
        """Where unit ``key`` lives: ``<root>/units/<key[:2]>/<key>.parquet``."""
        return self.root / "units" / key[:2] / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def read(self, key: str) -> Unit:
        """Load unit ``key`` (``FileNotFoundError`` if absent, :class:`CorruptUnitError` if damaged)."""
        path = self.path(key)
        try:
            return Unit.from_table(pq.read_table(path))
        except OSError as e:
            if e.errno is not None:  # the file system's own error (missing, permission, I/O): not the unit's content
                raise
            raise CorruptUnitError(path, f"{type(e).__name__}: {e}") from e  # Arrow's unreadable-footer errors
        except (ValueError, KeyError, TypeError, IndexError) as e:  # Arrow, JSON, the summary, the digest
            raise CorruptUnitError(path, f"{type(e).__name__}: {e}") from e

    def discard(self, error: CorruptUnitError) -> None:
        """Delete a damaged unit, with a warning naming its file; the next sweep computes it again."""
        warnings.warn(f"{error}; deleting it and computing the unit again", stacklevel=2)
        error.path.unlink(missing_ok=True)

    def write(self, unit: Unit) -> Path:
        """Write ``unit`` atomically (temporary file, fsync, :func:`os.replace`); returns its path."""
        final = self.path(unit.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{unit.key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(unit.to_table(), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        _fsync_dir(final.parent)
        return final

    def remove_stale_temporaries(self, max_age_s: float = 3600.0) -> int:
        """Delete ``.tmp`` files older than ``max_age_s`` left by killed writers; returns how many."""
        units = self.root / "units"
        if not units.is_dir():
            return 0
        now, count = time.time(), 0
        for tmp in units.glob("*/.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
                    count += 1
            except FileNotFoundError:
                continue
        return count


def _fsync_dir(path: Path) -> None:
    """Persist a rename (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
