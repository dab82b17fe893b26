"""Waveform perturbations as frozen, serialisable dataclasses.

The paper perturbs the **waveform** and re-tokenises it (Protocol page: Noise injection). Every perturbation here is
a frozen dataclass with a class-level ``kind``, :meth:`~Perturbation.to_dict` (plain JSON-able, includes ``kind``),
a ``label`` for result rows, and ``apply(wave, sample_rate, rng=None) -> Wave``. :func:`from_dict` rebuilds any
kind exactly. ``apply`` never mutates its input; it returns a new float32 array (mono, ``[N]``).

The package, one idea per module:

* :mod:`cae.perturb.base`: where a perturbation acts (:class:`Span`: frames, seconds or samples), the randomness
  rule every kind follows, the :class:`Perturbation` base class and its registry (:func:`from_dict`).
* :mod:`cae.perturb.noise`: :class:`Noise`, coloured Gaussian noise replacing or added to a span at an absolute
  (dBFS) or clip-relative (SNR by RMS or loudness) level; :func:`coloured_noise`.
* :mod:`cae.perturb.edit`: :class:`Silence` (zero a span) and :class:`Delete` (cut it out), the controls.
* :mod:`cae.perturb.order`: :class:`BlockSwap`, :class:`RandomPairSwaps`, :class:`SegmentSwap`, the order
  shuffles (Protocol page: Order shuffling).
* :mod:`cae.perturb.filters`: :class:`LowPass` and :class:`BitCrush`, whole-clip degradations of graded severity.
* :mod:`cae.perturb.text`: the compact text syntax ``cae score --perturb`` takes (:func:`parse`).

Importing the package imports every module, so every ``kind`` is registered before :func:`from_dict` is called.
The paper's settings (onset, lengths, levels per dataset, seeds) and the presets built from them
(``paper_noise``, ``paper_block_swap``, ``paper_shuffle``) are in :mod:`cae.paper`.

>>> import numpy as np
>>> p = Noise(Span(onset=250, length=100), level_db=-30.0)
>>> p.label
'noise-white-replace-dbfs-30@250+100f'
>>> from_dict(p.to_dict()) == p
True
>>> x = np.zeros(32000 * 8, dtype=np.float32)
>>> y = p.apply(x, 32000)
>>> bool(np.array_equal(y, p.apply(x, 32000))), np.flatnonzero(y)[[0, -1]].tolist()
(True, [160000, 223999])
"""

from __future__ import annotations

from cae.errors import PerturbationError
from cae.perturb.base import DEFAULT_FRAME_RATE, UNITS, Perturbation, RngLike, Span, from_dict
from cae.perturb.edit import Delete, Silence
from cae.perturb.filters import BitCrush, LowPass
from cae.perturb.noise import (
    BUTTERWORTH_COLOURS,
    COLOURS,
    LEVEL_REFERENCES,
    NOISE_MODES,
    POWER_LAW_COLOURS,
    Noise,
    coloured_noise,
)
from cae.perturb.order import BlockSwap, RandomPairSwaps, SegmentSwap, pair_swap_count
from cae.perturb.text import SyntaxError_, parse

__all__ = [
    "RngLike",
    "UNITS",
    "DEFAULT_FRAME_RATE",
    "COLOURS",
    "BUTTERWORTH_COLOURS",
    "POWER_LAW_COLOURS",
    "NOISE_MODES",
    "LEVEL_REFERENCES",
    "PerturbationError",
    "Span",
    "Perturbation",
    "Noise",
    "Silence",
    "Delete",
    "BlockSwap",
    "RandomPairSwaps",
    "SegmentSwap",
    "LowPass",
    "BitCrush",
    "from_dict",
    "coloured_noise",
    "pair_swap_count",
    "parse",
    "SyntaxError_",
]
