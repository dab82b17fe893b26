"""Exceptions raised by cae. Each names what failed and why, so a sweep can record it and go on."""

from __future__ import annotations

import os


class CaeError(Exception):
    """Base class of every error cae raises on purpose."""


class AudioError(CaeError, ValueError):
    """An audio input cannot be used: the message names the file (or source) and the problem.

    >>> str(AudioError("song.wav", "file is empty"))
    'song.wav: file is empty'
    """

    def __init__(self, source: str | os.PathLike[str] | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class PerturbationError(CaeError, ValueError):
    """A perturbation cannot be applied to a clip (e.g. the clip is shorter than onset + length)."""


class ModelError(CaeError, RuntimeError):
    """A model cannot be loaded or used (missing weights, unknown name, bad codes)."""
