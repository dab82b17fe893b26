"""Conditions of a sweep: the clean condition, a perturbation's label, and the seed a clip gives a perturbation.

A perturbation with a ``seed`` field is applied to clip ``i`` as a copy whose seed is advanced by the clip's offset
(:func:`seed_offset`, :func:`for_clip`), so every clip gets its own noise and a result row records the exact seed.
"""

from __future__ import annotations

import dataclasses
import json

from cae.perturb import Perturbation

__all__ = ["CLEAN", "SEEDINGS", "condition_label", "for_clip", "seed_offset"]

CLEAN = "clean"


def condition_label(p: Perturbation) -> str:
    """Short label of a perturbation for result rows (its ``label`` when it has one)."""
    label = getattr(p, "label", None)
    return str(label) if label else json.dumps(p.to_dict(), sort_keys=True)


SEEDINGS = ("content", "index")


def seed_offset(seeding: str, clip_index: int, clip_sha256: str | None) -> int:
    """What a clip adds to a perturbation's seed.

    * ``"content"`` (the corrected protocol): ``int(sha256[:6], 16)``, from the clip file's bytes, so a clip gets the
      same noise whatever list, order or machine it is scored in;
    * ``"index"`` (the authors' protocol, their "42 + file index"): the clip's position in the list.

    >>> seed_offset("index", 3, None), seed_offset("content", 3, "00002a" + "0" * 58)
    (3, 42)
    """
    if seeding == "index":
        return int(clip_index)
    if seeding == "content":
        if not clip_sha256:
            raise ValueError("content seeding needs the clip's SHA-256")
        return int(clip_sha256[:6], 16)
    raise ValueError(f"seeding must be one of {SEEDINGS}, got {seeding!r}")


def for_clip(p: Perturbation, offset: int) -> Perturbation:
    """The copy of ``p`` applied to a clip: its ``seed`` advanced by ``offset`` (:func:`seed_offset`), if it has one."""
    if dataclasses.is_dataclass(p) and hasattr(p, "seed"):
        return dataclasses.replace(p, seed=int(p.seed) + int(offset))  # type: ignore[type-var]
    return p
