"""What every result row carries so that it can be reproduced: package versions and input hashes.

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
