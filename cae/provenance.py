"""What every result row carries so that it can be reproduced: package versions and input hashes; and what a
build of the book ran on (:func:`build_provenance`).

>>> v = versions()
>>> sorted(k for k in v if k in ("cae", "numpy", "python"))
['cae', 'numpy', 'python']
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("cae", "torch", "transformers", "numpy", "scipy", "soundfile", "soxr", "audiocraft")


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape a result (missing optional ones are left out)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit(root: str | Path | None = None) -> str:
    """The checkout's commit (``git rev-parse HEAD``), with ``+changes`` when files differ from it (untracked
    files count; ignored ones do not);
    ``"not a git checkout"`` when there is none (an installed package, a copied folder)."""
    import subprocess

    from cae.paths import REPO_ROOT

    where = Path(root) if root is not None else REPO_ROOT
    if where is None:
        return "not a git checkout"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=where,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def build_provenance(models: Sequence[Any]) -> dict[str, Any]:
    """What a build ran on: ``commit`` (:func:`git_commit`), ``versions`` (:func:`versions`) and per model its
    id, backend, revision and the SHA-256 of its weight files where the model folder lists them (the shipped
    reference models' ``reference.json``)."""
    import json

    from cae.reference.model import FAMILIES, META_FILE

    rows = []
    for m in models:
        info = m.info().as_dict()
        folder = FAMILIES.get(info["model_id"])
        sums = json.loads((folder / META_FILE).read_text())["sha256"] if folder is not None else {}
        rows.append({"model_id": info["model_id"], "backend": info["backend"], "revision": info["revision"],
                     "weights_sha256": sums})
    return {"commit": git_commit(), "versions": versions(), "models": rows}
