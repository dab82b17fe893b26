"""Every location cae reads or writes, in one place.

* ``CAE_DATA_DIR`` (default ``<repo>/data`` in a checkout, else ``~/.cache/cae/data``): rendered corpora.
* ``CAE_CACHE_DIR`` (default ``<repo>/.cache`` in a checkout, else ``~/.cache/cae``): computed results.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: Root of a source checkout (the folder holding ``pyproject.toml``), or None for an installed package.
REPO_ROOT: Path | None = (
    PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
)


def _default(sub: str, home_sub: str) -> Path:
    if REPO_ROOT is not None:
        return REPO_ROOT / sub
    return Path.home() / ".cache" / "cae" / home_sub


def data_dir() -> Path:
    """Folder for rendered corpora (``$CAE_DATA_DIR`` overrides)."""
    return Path(os.environ.get("CAE_DATA_DIR") or _default("data", "data"))


def cache_dir() -> Path:
    """Folder for cached results (``$CAE_CACHE_DIR`` overrides)."""
    return Path(os.environ.get("CAE_CACHE_DIR") or _default(".cache", ""))
