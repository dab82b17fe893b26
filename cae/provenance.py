"""What every result row carries so that it can be reproduced: package versions, input hashes and the commit (what a
whole build of the book ran on is :func:`cae.book.provenance.build_provenance`).

>>> v = versions()
>>> sorted(k for k in v if k in ("cae", "numpy", "python"))
['cae', 'numpy', 'python']
"""

from __future__ import annotations

import hashlib
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path

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
