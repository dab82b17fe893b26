"""Exceptions of :mod:`cae.data`. Each message names the file or source that failed and why.

>>> str(RenderError("bwv269.mid", "timed out after 30 s"))
'bwv269.mid: timed out after 30 s'
>>> isinstance(RenderError("x.mid", "boom"), DataError)
True
"""

from __future__ import annotations

import os

from cae.errors import CaeError

__all__ = ["DataError", "RenderError", "DownloadError"]


class DataError(CaeError):
    """A dataset cannot be built, read or verified.

    Args:
        source: The file, piece or URL concerned (``None`` if the problem is not about one item).
        problem: What went wrong, in words.
    """

    def __init__(self, source: str | os.PathLike[str] | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class RenderError(DataError, RuntimeError):
    """Rendering one MIDI file failed (synthesiser missing, timeout, runaway output, bad exit, empty audio).

    ``source`` is the MIDI file (or piece) that was being rendered.
    """


class DownloadError(DataError, OSError):
    """A dataset could not be downloaded (no network, HTTP error, bad archive); ``source`` is the URL."""
