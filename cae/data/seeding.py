"""Named, order-independent random streams.

Every random choice in :mod:`cae.data` draws from a generator derived from the global ``seed`` *and* a tuple of
names that say what the choice is for (``("program", "bach/bwv269")``). Such a generator does not depend on how
many other draws happened before it, on which worker process runs it, or on which subset of pieces is built,
so a piece gets the same instrument, tempo and clip start in a 5-piece test build as in the full build.

The names are hashed with SHA-256 (stable across processes and Python versions, unlike ``hash()``) and fed
with the seed to :class:`numpy.random.SeedSequence`.

>>> a = rng_for(0, "program", "bach/bwv269").integers(1000)
>>> b = rng_for(0, "program", "bach/bwv269").integers(1000)
>>> bool(a == b)
True
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["rng_for"]


def _words(name: str) -> list[int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def rng_for(seed: int, *names: str | int) -> np.random.Generator:
    """A PCG64 generator determined by ``seed`` and the ``names`` (converted with ``str``).

    Args:
        seed: Non-negative global seed.
        names: What the stream is for, most general first, e.g. ``("clip", "trainset", piece_id)``.

    Returns:
        A fresh :class:`numpy.random.Generator`; equal arguments give identical streams.
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    entropy = [int(seed)]
    for name in names:
        entropy.extend(_words(str(name)))
    return np.random.default_rng(np.random.SeedSequence(entropy))
