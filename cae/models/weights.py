"""What identifies a model's weights: the digests that :meth:`cae.models.base.MusicLM.weights_digest` records.

A sweep's cache key must change when the numbers behind it could (:mod:`cae.scoring.cache`), and a model id does
not say which weights it names: a local checkpoint folder can be retrained in place, a hub id moves with its
branch. Every adapter therefore records a *weights digest*, a string ``"<kind>:<hex>"`` whose kind says what was
hashed, from the cheapest identity its backend knows:

* ``files``: a local checkpoint folder, SHA-256 over its weight files' bytes and ``config.json``
  (:func:`folder_digest`);
* ``hub``: a hub id loaded from the Hugging Face cache, the snapshot's commit hash (a commit names its files'
  bytes; audiocraft checkpoints hash the commits of the repositories their files came from);
* ``random``: an ``@random`` architecture, its recipe: shipped config, seed, the versions of the code that draws the
  weights (:mod:`cae.models.published`);
* ``reference``: a shipped reference model, the SHA-256 of its files that the loader verifies anyway
  (:mod:`cae.reference`);
* ``state-dict``: anything else (already-built models, user adapters), SHA-256 over the tensors of every torch module
  the adapter holds (:func:`state_dict_digest`);
* ``no-weights``: an adapter that holds no torch module: its class's qualified name, hashed.

>>> import torch
>>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
>>> with torch.no_grad():
...     _ = b.load_state_dict(a.state_dict())
>>> state_dict_digest({"m": a}) == state_dict_digest({"m": b})
True
>>> with torch.no_grad():
...     b.bias += 1
>>> state_dict_digest({"m": a}) == state_dict_digest({"m": b})
False
>>> no_weights_digest(object).startswith("no-weights:")
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "WEIGHT_SUFFIXES",
    "digest_of",
    "file_set_digest",
    "folder_digest",
    "hub_snapshot_commit",
    "no_weights_digest",
    "state_dict_digest",
]

#: File names that hold a checkpoint's weights (any depth of the folder), hashed with ``config.json``.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def digest_of(kind: str, parts: Any) -> str:
    """``"<kind>:<hex>"``: SHA-256 of the canonical JSON of ``parts`` (sorted keys, no whitespace).

    >>> digest_of("random", {"seed": 0}) == digest_of("random", {"seed": 0}) != digest_of("random", {"seed": 1})
    True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}:{hashlib.sha256(text.encode()).hexdigest()}"


def no_weights_digest(cls: type) -> str:
    """``"no-weights:<hex>"``: the digest of an adapter that holds no torch module, SHA-256 of its class's qualified
    name (such an adapter's numbers come from its code and its ``revision``)."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    return f"no-weights:{hashlib.sha256(name.encode()).hexdigest()}"


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """The raw bytes of a tensor on the CPU, whatever its dtype (bfloat16 included: viewed as bytes, not converted)."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def state_dict_digest(modules: Mapping[str, torch.nn.Module]) -> str:
    """``"state-dict:<hex>"``: SHA-256 over every tensor of ``modules`` (name, dtype, shape and bytes), the modules
    taken by name and each one's state dict in sorted key order; a tensor that several modules share (a decoder
    that is also part of a full model) is hashed once, where it is first met.

    The generic identity of :meth:`~cae.models.base.MusicLM.weights_digest`: exact, and cheap for small models (a
    GB of weights takes about a second); backends with a cheaper identity record that instead.
    """
    h = hashlib.sha256(b"cae.state_dict_digest\0")
    seen: set[int] = set()
    for name in sorted(modules):
        state = modules[name].state_dict(keep_vars=True)
        for key in sorted(state):
            t = state[key]
            if not isinstance(t, torch.Tensor) or id(t) in seen:
                continue
            seen.add(id(t))
            h.update(f"{name}.{key}|{t.dtype}|{tuple(t.shape)}\0".encode())
            h.update(_tensor_bytes(t))
    return f"state-dict:{h.hexdigest()}"


def file_set_digest(kind: str, files: Mapping[str, str]) -> str:
    """``"<kind>:<hex>"`` over ``{relative name: file SHA-256}`` (files already hashed elsewhere, such as the
    checksums a loader verifies)."""
    return digest_of(kind, dict(sorted(files.items())))


# ---- local folders ------------------------------------------------------------------------------------------------
_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_FILE_LOCK = threading.Lock()


#: A file modified less than this many seconds ago is hashed every time: a rewrite within the file system's
#: timestamp resolution could keep its size and time (git treats such "racy" entries the same way).
_RACY_S = 2.0


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered in this process by (path, size, modification time) once the file is older
    than :data:`_RACY_S`."""
    from cae.provenance import file_sha256

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _FILE_LOCK:
        if key in _FILE_HASHES:
            return _FILE_HASHES[key]
    digest = file_sha256(path)
    if time.time() - st.st_mtime > _RACY_S:
        with _FILE_LOCK:
            _FILE_HASHES[key] = digest
    return digest


def _weight_files(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and (path.name == "config.json" or path.name.endswith(WEIGHT_SUFFIXES)):
            yield path


def folder_digest(folder: str | os.PathLike[str]) -> str:
    """``"files:<hex>"``: SHA-256 over the checkpoint files of a local folder (``config.json`` and every
    ``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, at any depth), each by its relative name and the
    SHA-256 of its bytes, in sorted name order. A file's hash is remembered within the process by (path, size,
    modification time), so loading the same folder again costs a ``stat`` per file; rewriting a file (retraining in
    place) changes its time, and a file written in the last two seconds is always hashed again.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "config.json").write_text("{}")
    ...     first = folder_digest(d)
    ...     _ = (Path(d) / "model.safetensors").write_bytes(b"weights")
    ...     first != folder_digest(d)
    True
    """
    root = Path(folder)
    files = {p.relative_to(root).as_posix(): _file_sha256(p) for p in _weight_files(root)}
    return file_set_digest("files", files)


_SNAPSHOT = re.compile(r"[0-9a-f]{40}")


def hub_snapshot_commit(path: str | os.PathLike[str]) -> str | None:
    """The commit hash of a file in the Hugging Face cache (``…/snapshots/<commit>/<file>``), else ``None``.

    >>> hub_snapshot_commit("/hf/models--facebook--musicgen-small/snapshots/" + "ab" * 20 + "/state_dict.bin")[:6]
    'ababab'
    >>> hub_snapshot_commit("/some/folder/state_dict.bin") is None
    True
    """
    parts = Path(path).parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i - 1] == "snapshots" and _SNAPSHOT.fullmatch(parts[i]):
            return parts[i]
    return None
