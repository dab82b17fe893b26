"""Any folder of audio files as a dataset: a table of files with a kind (split) per file.

:func:`folder_dataset` lists the audio files under a folder (recursively, skipping hidden files and folders
such as ``.building`` leftovers) whose extension is one of :data:`AUDIO_EXTENSIONS`, in sorted order of their
relative POSIX paths, so the listing is the same on every machine. Each file gets a ``kind``:

1. from a CSV manifest, if one is given (or the folder has a ``manifest.csv``): the row whose ``path``
   (or ``file`` / ``filename``) column names the file, relative to the folder or absolute, gives its ``kind``,
   or ``split`` if there is no ``kind`` column. The manifest's other columns are carried along;
2. else the name of the folder the file is in, relative to the dataset folder (``clips/heldout/a.flac`` →
   ``"heldout"``);
3. else (files at the top level) ``"unknown"``.

A reference corpus folder (:mod:`cae.data.corpus`) is such a dataset, with its own ``manifest.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import soundfile as sf

from cae.data.errors import DataError

__all__ = ["AUDIO_EXTENSIONS", "UNKNOWN", "folder_dataset"]

#: Extensions of the container formats libsndfile names, for the formats this libsndfile can read.
_EXTENSIONS_BY_FORMAT = {
    "WAV": (".wav", ".wave"),
    "FLAC": (".flac",),
    "OGG": (".ogg", ".oga", ".opus"),
    "MP3": (".mp3",),
    "AIFF": (".aif", ".aiff", ".aifc"),
    "AU": (".au", ".snd"),
    "CAF": (".caf",),
    "W64": (".w64",),
    "RF64": (".rf64",),
}
#: Lower-case extensions (with the dot) treated as audio; matching ignores case.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    ext for fmt, exts in _EXTENSIONS_BY_FORMAT.items() if fmt in sf.available_formats() for ext in exts
)
#: Kind of a top-level file with no manifest entry.
UNKNOWN = "unknown"
_PATH_COLUMNS = ("path", "file", "filename")


def _list_audio(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _read_manifest(manifest: str | os.PathLike[str] | pd.DataFrame, root: Path) -> pd.DataFrame:
    if isinstance(manifest, pd.DataFrame):
        table = manifest.copy()
        where: object = "manifest DataFrame"
    else:
        where = manifest
        try:
            table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(manifest, f"cannot read the manifest CSV: {exc}") from exc
    path_col = next((c for c in _PATH_COLUMNS if c in table.columns), None)
    kind_col = "kind" if "kind" in table.columns else "split" if "split" in table.columns else None
    if path_col is None or kind_col is None:
        raise DataError(
            str(where), f"manifest needs a path column ({'/'.join(_PATH_COLUMNS)}) and a 'kind' or 'split' column"
        )
    table = table[table[path_col].astype(str) != ""].copy()
    rel = []
    for p in table[path_col].astype(str):
        q = Path(p)
        if q.is_absolute():
            try:
                q = q.resolve().relative_to(root.resolve())
            except ValueError:
                pass
        rel.append(q.as_posix())
    table["rel_path"] = rel
    table["kind"] = table[kind_col].astype(str)
    extra = [c for c in table.columns if c not in (path_col, "rel_path", "kind", "path")]
    return table[["rel_path", "kind", *extra]].drop_duplicates("rel_path", keep="first")


def folder_dataset(
    path: str | os.PathLike[str],
    manifest: str | os.PathLike[str] | pd.DataFrame | bool | None = None,
) -> pd.DataFrame:
    """List a folder's audio files as a dataset table.

    Args:
        path: The dataset folder.
        manifest: A CSV file (or DataFrame) mapping files to kinds; ``None`` (default) uses
            ``<path>/manifest.csv`` when it exists; ``False`` ignores any manifest.

    Returns:
        One row per audio file, sorted by ``rel_path``: ``path`` (absolute, str), ``rel_path`` (relative POSIX
        path), ``kind`` (see the module docstring), then any other manifest columns.

    Raises:
        DataError: ``path`` is not a folder, or the manifest cannot be read or lacks the needed columns.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "not a folder")
    if manifest is None:
        manifest = root / "manifest.csv" if (root / "manifest.csv").is_file() else False
    files = _list_audio(root)
    table = pd.DataFrame({"path": [str(root / f) for f in files], "rel_path": files})
    table["kind"] = [Path(f).parent.name or UNKNOWN for f in files]
    if manifest is not False and manifest is not True:
        listed = _read_manifest(manifest, root)
        table = table.merge(listed, on="rel_path", how="left", suffixes=("", "_manifest"))
        has = table["kind_manifest"].notna()
        table.loc[has, "kind"] = table.loc[has, "kind_manifest"]
        table = table.drop(columns="kind_manifest")
    return table.sort_values("rel_path", kind="stable").reset_index(drop=True)
