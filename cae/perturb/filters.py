"""Whole-clip filter degradations: :class:`LowPass` (zero-phase Butterworth) and :class:`BitCrush` (requantisation).

Two perturbations of graded, known severity that :func:`cae.profile.degradation_ladder` uses next to additive noise
and block shuffles. They are ordinary :class:`~cae.perturb.Perturbation` subclasses, registered by ``kind``
(``"lowpass"``, ``"bitcrush"``), so :func:`cae.perturb.from_dict` rebuilds them and the sweep caches them like any
other perturbation. Both act on the whole clip (no span), on a mono float wave ``[N]``, and return a float32 wave of
the same length; neither draws random numbers (``rng`` is ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.signal

from cae.errors import PerturbationError
from cae.perturb.base import Perturbation, RngLike, _check_wave
from cae.types import Wave

__all__ = ["BitCrush", "LowPass"]


@dataclass(frozen=True)
class LowPass(Perturbation):
    """Low-pass filter the whole clip: zero-phase Butterworth (``scipy.signal.sosfiltfilt``) at ``cutoff_hz``.

    The magnitude response is that of an ``order``-th order Butterworth applied twice (forward and backward), so
    −6 dB at the cutoff and ``12·order`` dB/octave above it. A cutoff at or above Nyquist returns the clip
    unchanged.

    >>> import numpy as np
    >>> t = np.arange(32000) / 32000
    >>> x = (np.sin(2 * np.pi * 200 * t) + np.sin(2 * np.pi * 8000 * t)).astype(np.float32)
    >>> y = LowPass(1000.0).apply(x, 32000)
    >>> spec = np.abs(np.fft.rfft(y)) / 16000
    >>> round(float(spec[200]), 2), float(spec[8000]) < 1e-4, LowPass(1000.0).label
    (1.0, True, 'lowpass-1000hz')
    """

    kind: ClassVar[str] = "lowpass"

    cutoff_hz: float
    order: int = 8

    def __post_init__(self) -> None:
        if not (isinstance(self.cutoff_hz, (int, float)) and math.isfinite(self.cutoff_hz) and self.cutoff_hz > 0):
            raise PerturbationError(f"cutoff_hz must be a positive number, got {self.cutoff_hz!r}")
        if not isinstance(self.order, int) or self.order < 1:
            raise PerturbationError(f"order must be a positive integer, got {self.order!r}")
        object.__setattr__(self, "cutoff_hz", float(self.cutoff_hz))

    @property
    def label(self) -> str:
        return f"lowpass-{self.cutoff_hz:g}hz"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``: the filtered clip (a copy of it when the cutoff is at or above Nyquist)."""
        x = _check_wave(wave)
        if self.cutoff_hz >= sample_rate / 2:
            return x
        sos = scipy.signal.butter(self.order, self.cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
        return scipy.signal.sosfiltfilt(sos, x.astype(np.float64)).astype(np.float32)


@dataclass(frozen=True)
class BitCrush(Perturbation):
    """Requantise the whole clip to ``bits`` bits: ``round(x · 2^(bits−1)) / 2^(bits−1)``, clipped to [−1, 1].

    The quantisation step is ``2^(1−bits)`` of full scale, so the error is about ``6.02·bits`` dB below a full-scale
    sine (no dither: the error follows the signal, as a bit-crusher effect does).

    >>> import numpy as np
    >>> BitCrush(2).apply(np.array([0.1, 0.3, -0.8, 0.99], dtype=np.float32), 32000).tolist()
    [0.0, 0.5, -1.0, 1.0]
    """

    kind: ClassVar[str] = "bitcrush"

    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 24:
            raise PerturbationError(f"bits must be an integer in [1, 24], got {self.bits!r}")

    @property
    def label(self) -> str:
        return f"bitcrush-{self.bits}bit"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``, the requantised clip."""
        x = _check_wave(wave).astype(np.float64)
        q = 2.0 ** (self.bits - 1)
        return np.clip(np.round(x * q) / q, -1.0, 1.0).astype(np.float32)
