"""What a build of the book ran on: the commit, the package versions, and each model's id, backend, revision and
weight checksums; shown on the opening page so that every number in the book can be traced to its inputs.

Row-level provenance (what every result row carries) lives in :mod:`cae.provenance`; this module adds the
build-level summary, which needs the shipped weights' metadata (:mod:`cae.reference.model`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cae.models.base import MusicLM
from cae.provenance import git_commit, versions
from cae.reference.model import FAMILIES, META_FILE

__all__ = ["build_provenance", "provenance_markdown"]


def build_provenance(models: Sequence[MusicLM]) -> dict[str, Any]:
    """``commit`` (:func:`cae.provenance.git_commit`), ``versions`` (:func:`cae.provenance.versions`) and per model
    ``model_id``, ``backend``, ``revision`` and ``weights_sha256`` (file → SHA-256 from the model folder's metadata,
    for the shipped reference models; empty for others)."""
    rows = []
    for m in models:
        info = m.info().as_dict()
        folder = FAMILIES.get(info["model_id"])
        sums = json.loads((folder / META_FILE).read_text())["sha256"] if folder is not None else {}
        rows.append({"model_id": info["model_id"], "backend": info["backend"], "revision": info["revision"],
                     "weights_sha256": sums})
    return {"commit": git_commit(), "versions": versions(), "models": rows}


def provenance_markdown(build: Mapping[str, Any]) -> str:
    """:func:`build_provenance` as a Markdown list (commit, packages, then each model with its weight checksums).

    >>> print(provenance_markdown({"commit": "abc", "versions": {"cae": "1.0"}, "models": [
    ...     {"model_id": "m", "backend": "b", "revision": "r", "weights_sha256": {"w.pt": "00ff"}}]}))
    - commit: `abc`
    - packages: cae 1.0
    - model `m` (b, revision `r`)
      - `w.pt`: sha256 `00ff`
    """
    lines = [f"- commit: `{build['commit']}`",
             f"- packages: {', '.join(f'{k} {v}' for k, v in build['versions'].items())}"]
    for m in build["models"]:
        lines.append(f"- model `{m['model_id']}` ({m['backend']}, revision `{m['revision']}`)")
        lines += [f"  - `{f}`: sha256 `{h}`" for f, h in m["weights_sha256"].items()]
    return "\n".join(lines)
