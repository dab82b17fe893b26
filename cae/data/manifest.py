"""The manifest of a built corpus: one row per audio file, hashes, and verification.

Files in a corpus folder
    ``manifest.csv``
        One row per audio file (``status == "ok"``) and one per piece that was skipped (``status ==
        "skipped"``, empty ``path``, the reason in ``reason``). Columns: :data:`COLUMNS`. Rows are written in a
        fixed order, so equal builds give byte-identical manifests.
    ``corpus.json``
        ``config`` (the parameters that determine the content), ``corpus_hash``, counts, tool versions,
        build time, warnings.
    ``.verified.json``
        A stamp written after every successful full verification: the manifest's SHA-256 and each file's size
        and modification time. While nothing has changed, :meth:`Manifest.verify` trusts the stamp and does not
        re-hash the audio (cheap); any change of size or mtime triggers a full SHA-256 check.

Corpus hash
    SHA-256 of the lines ``"<path>\\t<sha256>\\n"`` of the ok rows sorted by path: it changes iff a file is
    added, removed, renamed or changes content.

>>> import pandas as pd
>>> t = pd.DataFrame({"path": ["b.flac", "a.flac"], "sha256": ["2", "1"], "status": ["ok", "ok"]})
>>> corpus_hash(t) == corpus_hash(t.iloc[::-1])
True
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cae.data.errors import DataError
from cae.provenance import file_sha256

__all__ = [
    "MANIFEST_NAME",
    "INFO_NAME",
    "STAMP_NAME",
    "COLUMNS",
    "Manifest",
    "corpus_hash",
    "load_manifest",
]

MANIFEST_NAME = "manifest.csv"
INFO_NAME = "corpus.json"
STAMP_NAME = ".verified.json"

#: Manifest columns, in order.
COLUMNS: tuple[str, ...] = (
    "path",  # relative POSIX path of the audio file ("" for skipped pieces)
    "kind",  # train | heldout_piece | ood_piece (whole pieces); trainset | heldout | ood (clips)
    "split",  # the piece's split: train | heldout | ood
    "piece_id",  # e.g. "bach/bwv269", "beethoven/opus18no1/movement1"
    "source",  # what was parsed (music21 corpus path)
    "composer",
    "program",  # 0-based GM program rendered with
    "instrument",  # GM name of the program
    "tempo_factor",  # playback speed relative to the score (1.1 = 10 % faster)
    "gain_db",  # gain applied after rendering (negative when a loud render was brought down to the peak limit)
    "start_s",  # clip start within the stored piece, seconds (empty for pieces)
    "num_samples",
    "duration_s",
    "sample_rate",
    "bytes",  # file size
    "sha256",  # of the file's bytes
    "status",  # ok | skipped
    "reason",  # why skipped
    "remark",  # anything else worth knowing (e.g. "repeat signs removed")
)

_INT_COLUMNS = ("program", "num_samples", "sample_rate", "bytes")
_FLOAT_COLUMNS = ("tempo_factor", "gain_db", "start_s", "duration_s")
_STR_COLUMNS = tuple(c for c in COLUMNS if c not in _INT_COLUMNS + _FLOAT_COLUMNS)


def corpus_hash(table: pd.DataFrame) -> str:
    """SHA-256 over ``path\\tsha256`` lines of the ok rows, sorted by path (see the module docstring)."""
    ok = table[table["status"] == "ok"] if "status" in table else table
    h = hashlib.sha256()
    for path, sha in sorted(zip(ok["path"].astype(str), ok["sha256"].astype(str))):
        h.update(f"{path}\t{sha}\n".encode())
    return h.hexdigest()


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    table = table.reindex(columns=list(COLUMNS))
    for col in _INT_COLUMNS:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    for col in _FLOAT_COLUMNS:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("float64")
    for col in _STR_COLUMNS:
        table[col] = table[col].fillna("").astype(str)
    return table


@dataclass
class Manifest:
    """A corpus on disk: its folder, its table and its ``corpus.json`` information.

    Attributes:
        root: The corpus folder (paths in ``table`` are relative to it).
        table: All manifest rows (see :data:`COLUMNS`), typed: integers as nullable ``Int64``, floats with NaN
            where empty, strings with ``""`` where empty.
        info: Contents of ``corpus.json`` (``config``, ``corpus_hash``, ``counts``, ``versions``, ...).
    """

    root: Path
    table: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.table = _typed(self.table)

    @property
    def files(self) -> pd.DataFrame:
        """Rows of files that exist (``status == "ok"``)."""
        return self.table[self.table["status"] == "ok"].reset_index(drop=True)

    @property
    def skipped(self) -> pd.DataFrame:
        """Rows of pieces left out, with the reason."""
        return self.table[self.table["status"] == "skipped"].reset_index(drop=True)

    @property
    def config(self) -> dict[str, Any]:
        """The build parameters recorded in ``corpus.json``."""
        return dict(self.info.get("config", {}))

    @property
    def corpus_hash(self) -> str:
        """Hash of the file list and contents (recomputed from the table)."""
        return corpus_hash(self.table)

    def kind(self, kind: str) -> pd.DataFrame:
        """Ok rows of one kind (``"train"``, ``"trainset"``, ``"heldout"``, ``"ood"``, ...), with an absolute
        ``abs_path`` column added."""
        rows = self.files[self.files["kind"] == kind].reset_index(drop=True)
        return rows.assign(abs_path=[self.root / p for p in rows["path"]])

    def paths(self, kind: str) -> list[Path]:
        """Absolute paths of the files of one kind, in manifest order."""
        return [self.root / p for p in self.files.loc[self.files["kind"] == kind, "path"]]

    def counts(self) -> dict[str, int]:
        """Number of files per kind."""
        return {str(k): int(v) for k, v in self.files["kind"].value_counts().sort_index().items()}

    # -- writing ---------------------------------------------------------------------------------------------

    def write(self) -> None:
        """Write ``manifest.csv`` and ``corpus.json`` (with the recomputed corpus hash) into :attr:`root`."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(self.root / MANIFEST_NAME, index=False, lineterminator="\n")
        self.info["corpus_hash"] = self.corpus_hash
        (self.root / INFO_NAME).write_text(json.dumps(self.info, indent=2, sort_keys=True) + "\n")

    # -- verification ----------------------------------------------------------------------------------------

    def _stat_snapshot(self) -> dict[str, list[int]] | None:
        snap: dict[str, list[int]] = {}
        for rel in self.files["path"]:
            try:
                st = os.stat(self.root / rel)
            except OSError:
                return None
            snap[rel] = [st.st_size, st.st_mtime_ns]
        return snap

    def _manifest_sha(self) -> str:
        path = self.root / MANIFEST_NAME
        return file_sha256(path) if path.exists() else ""

    def write_stamp(self) -> None:
        """Record that the files as they are now verified (see the module docstring); best effort."""
        snap = self._stat_snapshot()
        if snap is None:
            return
        stamp = {"manifest_sha256": self._manifest_sha(), "corpus_hash": self.corpus_hash, "files": snap}
        try:
            (self.root / STAMP_NAME).write_text(json.dumps(stamp, sort_keys=True))
        except OSError:
            pass

    def _stamp_valid(self) -> bool:
        try:
            stamp = json.loads((self.root / STAMP_NAME).read_text())
        except (OSError, ValueError):
            return False
        return (
            stamp.get("manifest_sha256") == self._manifest_sha()
            and stamp.get("corpus_hash") == self.corpus_hash
            and stamp.get("files") == self._stat_snapshot()
        )

    def verify(self, *, full: bool = False) -> list[str]:
        """Check the corpus against its manifest; return the problems found (empty list: valid).

        Checks that ``corpus.json``'s hash matches the table, then each file's existence, size and SHA-256.
        Unless ``full``, an unchanged stamp (see the module docstring) stands in for the per-file checks.
        A successful full check writes a fresh stamp.
        """
        problems: list[str] = []
        recorded = self.info.get("corpus_hash")
        if recorded != self.corpus_hash:
            problems.append(f"corpus hash in {INFO_NAME} ({recorded}) does not match the manifest ({self.corpus_hash})")
            return problems
        if not full and self._stamp_valid():
            return problems
        for row in self.files.itertuples(index=False):
            path = self.root / row.path
            if not path.is_file():
                problems.append(f"{row.path}: missing")
            elif path.stat().st_size != row.bytes:
                problems.append(f"{row.path}: size {path.stat().st_size} != {row.bytes} in the manifest")
            elif file_sha256(path) != row.sha256:
                problems.append(f"{row.path}: SHA-256 differs from the manifest")
        if not problems:
            self.write_stamp()
        return problems


def load_manifest(root: str | os.PathLike[str] | None = None) -> Manifest:
    """Read a corpus folder's ``manifest.csv`` and ``corpus.json``.

    Args:
        root: The corpus folder; default ``cae.paths.data_dir() / "reference"``.

    Raises:
        DataError: The folder or its manifest is missing or unreadable.
    """
    if root is None:
        from cae.paths import data_dir

        root = data_dir() / "reference"
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise DataError(root, f"no {MANIFEST_NAME}: not a built corpus (build it with cae.data.corpus)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        info = json.loads((root / INFO_NAME).read_text()) if (root / INFO_NAME).is_file() else {}
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(path, f"cannot read the manifest: {exc}") from exc
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise DataError(path, f"manifest lacks column(s) {sorted(missing)}")
    return Manifest(root=root, table=table, info=info)
