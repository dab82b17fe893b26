"""Datasets: rendering MIDI to audio, the reference corpus, folders of audio, and the paper's ASAP pipeline.

* :mod:`cae.data.render`: MIDI → mono 32 kHz float32 audio with FluidSynth (timeouts and output-size guards).
* :mod:`cae.data.midi`: MIDI edits before rendering (GM program, tempo, bar/time crops).
* :mod:`cae.data.corpus`: the reference corpus (Bach chorales for train/heldout, other composers on piano for
  OOD), built deterministically by :func:`~cae.data.corpus.build_reference_corpus` /
  :func:`~cae.data.corpus.ensure_reference_corpus`; its manifest: :mod:`cae.data.manifest`.
* :mod:`cae.data.clips`: 15 s clip selection with silence checks.
* :mod:`cae.data.folder`: any folder of audio files as a dataset table.
* :mod:`cae.data.asap`: the authors' OOD source (ASAP score MIDIs): download, select, crop, render, filter.

Names are imported from their modules on first use, so ``import cae.data`` stays cheap (no music21).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RenderError": "cae.data.errors",
    "DataError": "cae.data.errors",
    "DownloadError": "cae.data.errors",
    "render_midi": "cae.data.render",
    "render_midi_to_array": "cae.data.render",
    "build_reference_corpus": "cae.data.corpus",
    "ensure_reference_corpus": "cae.data.corpus",
    "Manifest": "cae.data.manifest",
    "load_manifest": "cae.data.manifest",
    "folder_dataset": "cae.data.folder",
    "fetch_asap": "cae.data.asap",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cae.data' has no attribute {name!r}")
