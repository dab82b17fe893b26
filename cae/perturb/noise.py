"""Noise bursts (:class:`Noise`): replace (or add to) a span of the clip with coloured Gaussian noise at a set level.

The paper's perturbation (Protocol page: Noise injection, What cae corrects). ``mode="replace"`` (paper:
``audio[start:stop] = noise``) or ``"add"``. Colours (:data:`COLOURS`):

* ``"white"``: i.i.d. Gaussian.
* ``"butter-pink"``, ``"butter-brown"``, ``"butter-blue"``: the authors' "pink/brown/blue": white
  noise through ``scipy.signal.butter`` + ``lfilter`` (1st-order low-pass at 0.2 of Nyquist, 2nd-order
  low-pass at 0.1, 1st-order high-pass at 0.5; cutoffs are fractions of Nyquist, so 3.2/1.6/8 kHz at
  32 kHz). Flat with a −6 or −12 dB/octave skirt: not power laws.
* ``"pink"``, ``"brown"``, ``"blue"``, ``"violet"``: spectrally exact 1/f^α noise with α = 1, 2, −1, −2,
  from ``colorednoise.powerlaw_psd_gaussian`` (Timmer & König FFT shaping). No mean removal.

The noise is then scaled to unit RMS (with ``legacy_rng=True``: unit standard deviation, as the
authors did; the two agree for zero-mean noise) and to a level given by ``level_db`` and
``reference`` (:data:`LEVEL_REFERENCES`):

* ``"dbfs"``: absolute: noise RMS = 10^(level_db/20) (the paper: −30/−20/−12 dBFS per dataset).
* ``"snr-rms"``: ``level_db`` is an SNR: noise RMS = clip RMS · 10^(−level_db/20), the clip RMS being
  measured over the **whole clean input clip** (so 0 dB: noise as loud as the clip on average;
  −10 dB: noise 10 dB louder).
* ``"snr-lufs"``: ``level_db`` is an SNR in LU: noise loudness = clip integrated loudness (BS.1770,
  gated, whole clean clip, needs ≥ 0.4 s) − level_db. The noise loudness is the ungated BS.1770
  formula ``−0.691 + 10·log10(mean K-weighted square)`` evaluated in the frequency domain (steady
  state, so it works for bursts shorter than a 400 ms block); for a stationary burst ≥ 0.4 s it
  agrees with gated integrated loudness.

``crossfade_ms > 0`` applies a raised-cosine (Hann half-window) ramp of that length **inside** the
span at each end: the noise fades in/out while (replace mode) the music fades out/in with the
complementary gain (equal-gain crossfade); audio outside the span and the total length are unchanged.
``0`` is the paper's hard cut. The level refers to the noise at full gain.

Randomness follows the package's rule (:mod:`cae.perturb.base`), except that ``legacy_rng=True`` draws from
``numpy.random.RandomState(seed)``, the stream that ``np.random.seed(seed); np.random.randn(n)`` gives, to
reproduce the authors' noise; a Generator cannot be used then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import colorednoise
import numpy as np
import numpy.typing as npt
import pyloudnorm
import scipy.signal

from cae.audio import loudness_lufs
from cae.errors import AudioError, PerturbationError
from cae.perturb.base import (
    Perturbation,
    RngLike,
    Span,
    _check_sample_rate,
    _check_seed,
    _check_span,
    _check_wave,
    _fmt,
    _generator,
    _is_int,
)
from cae.types import Wave

__all__ = ["BUTTERWORTH_COLOURS", "COLOURS", "LEVEL_REFERENCES", "NOISE_MODES", "POWER_LAW_COLOURS", "Noise",
           "coloured_noise"]

#: The authors' Butterworth "colours": (order, cutoff as a fraction of Nyquist, btype).
BUTTERWORTH_COLOURS: dict[str, tuple[int, float, str]] = {
    "butter-pink": (1, 0.2, "lowpass"),
    "butter-brown": (2, 0.1, "lowpass"),
    "butter-blue": (1, 0.5, "highpass"),
}
#: Spectrally exact power-law colours: PSD ∝ 1/f^alpha.
POWER_LAW_COLOURS: dict[str, float] = {"pink": 1.0, "brown": 2.0, "blue": -1.0, "violet": -2.0}
#: Every noise colour.
COLOURS = ("white", *BUTTERWORTH_COLOURS, *POWER_LAW_COLOURS)
NOISE_MODES = ("replace", "add")
LEVEL_REFERENCES = ("dbfs", "snr-rms", "snr-lufs")


def _raw_noise(colour: str, n: int, rs: np.random.Generator | np.random.RandomState) -> npt.NDArray[np.float64]:
    if colour in POWER_LAW_COLOURS:
        return np.asarray(colorednoise.powerlaw_psd_gaussian(POWER_LAW_COLOURS[colour], n, random_state=rs), float)
    white = rs.standard_normal(n)
    if colour == "white":
        return white
    order, cutoff, btype = BUTTERWORTH_COLOURS[colour]
    b, a = scipy.signal.butter(order, cutoff, btype=btype)
    return scipy.signal.lfilter(b, a, white)


def coloured_noise(
    colour: str, n: int, rng: np.random.Generator | np.random.RandomState | int | None = None
) -> npt.NDArray[np.float64]:
    """Unit-RMS noise of a colour in :data:`COLOURS` (see the module docstring for each colour).

    Args:
        colour: One of :data:`COLOURS`.
        n: Number of samples (≥ 1).
        rng: Generator or legacy RandomState (used as is), int seed (``default_rng``), or None (seed 0).

    Returns:
        float64 array of shape ``[n]`` with ``sqrt(mean(x²)) == 1``.

    >>> x = coloured_noise("brown", 1000, rng=3)
    >>> x.shape, round(float(np.sqrt(np.mean(x ** 2))), 9)
    ((1000,), 1.0)
    """
    if colour not in COLOURS:
        raise PerturbationError(f"colour must be one of {COLOURS}, got {colour!r}")
    if not _is_int(n) or n < 1:
        raise PerturbationError(f"n must be a positive integer, got {n!r}")
    rs = rng if isinstance(rng, np.random.RandomState) else _generator(rng, 0)
    x = _raw_noise(colour, int(n), rs)
    return x / math.sqrt(float(np.mean(x * x)))


def _k_weighted_mean_square(x: npt.NDArray[np.float64], sample_rate: int) -> float:
    """Mean square of ``x`` after BS.1770 K-weighting, in steady state (circular, via the spectrum).

    The two stages mirror ``pyloudnorm.Meter``'s "K-weighting": a +4 dB high shelf at 1500 Hz (Q 1/√2) and an
    RLB high-pass at 38 Hz (Q 0.5), built with pyloudnorm's own filter design for this sample rate.
    """
    n = x.size
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    gain = np.ones_like(freqs)
    for stage in (
        pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
        pyloudnorm.IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"),
    ):
        _, h = scipy.signal.freqz(stage.b, stage.a, worN=freqs, fs=sample_rate)
        gain *= (stage.passband_gain * np.abs(h)) ** 2
    weight = np.full(spec.size, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return float(np.sum(weight * gain * spec)) / (n * n)


def _raised_cosine(n: int, fade: int) -> npt.NDArray[np.float64]:
    """Gain envelope of length ``n``: Hann half-window ramps of ``fade`` samples up at the start, down at the end."""
    env = np.ones(n)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
        env[:fade] = ramp
        env[n - fade :] = ramp[::-1]
    return env


@dataclass(frozen=True)
class Noise(Perturbation):
    """Replace (or add to) a span with coloured Gaussian noise at a set level.

    Attributes:
        span: Where the noise goes.
        colour: One of :data:`COLOURS`.
        mode: "replace" (paper) or "add".
        level_db: dBFS for ``reference="dbfs"``; an SNR in dB (LU) for "snr-rms" ("snr-lufs").
        reference: "dbfs", "snr-rms" or "snr-lufs" (see the module docstring).
        crossfade_ms: Raised-cosine ramp length at each end, inside the span (0 = hard cut, as the paper).
        seed: Seed used when ``apply`` gets ``rng=None``.
        legacy_rng: Draw from ``RandomState(seed)`` and normalise by the standard deviation, like the
            authors' ``np.random.seed(seed); np.random.randn(n)`` code.

    >>> Noise(Span(5, 0.5, unit="s"), colour="pink", level_db=10.0, reference="snr-rms", crossfade_ms=5).label
    'noise-pink-replace-snr-rms+10-xf5ms@5s+0.5s'
    """

    kind: ClassVar[str] = "noise"

    span: Span
    colour: str = "white"
    mode: str = "replace"
    level_db: float = -30.0
    reference: str = "dbfs"
    crossfade_ms: float = 0.0
    seed: int = 0
    legacy_rng: bool = False

    def __post_init__(self) -> None:
        _check_span(self.span)
        if self.colour not in COLOURS:
            raise PerturbationError(f"colour must be one of {COLOURS}, got {self.colour!r}")
        if self.mode not in NOISE_MODES:
            raise PerturbationError(f"mode must be one of {NOISE_MODES}, got {self.mode!r}")
        if self.reference not in LEVEL_REFERENCES:
            raise PerturbationError(f"reference must be one of {LEVEL_REFERENCES}, got {self.reference!r}")
        for name in ("level_db", "crossfade_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise PerturbationError(f"{name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.crossfade_ms < 0:
            raise PerturbationError(f"crossfade_ms must be >= 0, got {self.crossfade_ms!r}")
        _check_seed(self.seed)
        object.__setattr__(self, "seed", int(self.seed))
        if not isinstance(self.legacy_rng, (bool, np.bool_)):
            raise PerturbationError(f"legacy_rng must be a bool, got {self.legacy_rng!r}")
        object.__setattr__(self, "legacy_rng", bool(self.legacy_rng))

    @property
    def label(self) -> str:
        xf = f"-xf{_fmt(self.crossfade_ms)}ms" if self.crossfade_ms else ""
        return f"noise-{self.colour}-{self.mode}-{self.reference}{self.level_db:+g}{xf}@{self.span.label}"

    def noise(self, n: int, rng: RngLike = None) -> npt.NDArray[np.float64]:
        """The unscaled noise burst: ``n`` samples normalised to unit RMS (``legacy_rng``: unit std).

        Uses the same random stream as :meth:`apply`, so ``apply`` with ``reference="dbfs"`` and no
        crossfade writes ``(noise(n) · 10^(level_db/20)).astype(float32)`` into the span.
        """
        if self.legacy_rng:
            if rng is None:
                rs: np.random.Generator | np.random.RandomState = np.random.RandomState(self.seed)
            elif _is_int(rng) and rng >= 0:
                rs = np.random.RandomState(int(rng))
            else:
                raise PerturbationError("legacy_rng=True needs rng=None or an int seed (it uses numpy's RandomState)")
            raw = _raw_noise(self.colour, n, rs)
            scale = float(np.std(raw))
        else:
            raw = _raw_noise(self.colour, n, _generator(rng, self.seed))
            scale = math.sqrt(float(np.mean(raw * raw)))
        if scale == 0.0:  # a 1-sample burst under std normalisation (legacy_rng), or an all-zero draw
            raise PerturbationError(f"cannot normalise a {n}-sample noise burst (zero spread)")
        return raw / scale

    def _gain(self, clean: npt.NDArray[np.float64], unit_noise: npt.NDArray[np.float64], sample_rate: int) -> float:
        if self.reference == "dbfs":
            return 10.0 ** (self.level_db / 20.0)
        if self.reference == "snr-rms":
            clip_rms = math.sqrt(float(np.mean(clean * clean)))
            if clip_rms == 0.0:
                raise PerturbationError("snr-rms level needs a non-silent clip (clip RMS is 0)")
            return clip_rms * 10.0 ** (-self.level_db / 20.0)
        try:
            clip_lufs = loudness_lufs(clean, sample_rate)
        except AudioError as exc:
            raise PerturbationError(f"snr-lufs level: {exc.problem}") from exc
        if not math.isfinite(clip_lufs):
            raise PerturbationError("snr-lufs level needs a clip above the -70 LUFS gate (clip is silent)")
        noise_lufs = -0.691 + 10.0 * math.log10(_k_weighted_mean_square(unit_noise, sample_rate))
        return 10.0 ** ((clip_lufs - self.level_db - noise_lufs) / 20.0)

    def noise_dbfs(self, wave: Wave, sample_rate: int) -> float | None:
        """RMS level of the burst in dBFS as applied to ``wave`` (``None`` where it cannot be set, e.g. a silent
        clip under an SNR reference).

        >>> Noise(Span(0, 1), level_db=-12.0).noise_dbfs(np.zeros(1280, np.float32), 32000)
        -12.0
        >>> round(Noise(Span(0, 1), level_db=-6.0, reference="snr-rms").noise_dbfs(np.full(640, 1.0), 32000), 2)
        6.0
        """
        if self.reference == "dbfs":
            return float(self.level_db)
        x = _check_wave(wave).astype(np.float64)
        try:
            start, stop = self.span.to_samples(_check_sample_rate(sample_rate), x.size)
            unit = self.noise(stop - start) if self.reference == "snr-lufs" else np.ones(1)  # only LUFS needs it
            gain = self._gain(x, unit, sample_rate)
        except (PerturbationError, AudioError, ValueError):
            return None
        return 20.0 * math.log10(gain) if gain > 0 else None

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Noise in ``span``; the rest of the clip is copied bit for bit.

        Args:
            wave: Clean clip, shape ``[N]``.
            sample_rate: Its rate in Hz.
            rng: See the module's randomness rule.

        Returns:
            float32 array of shape ``[N]``.

        Raises:
            PerturbationError: Span beyond the clip, non-integral hop, crossfade longer than half the span,
                a silent clip for SNR references, or a clip shorter than 0.4 s for "snr-lufs".
        """
        sample_rate = _check_sample_rate(sample_rate)
        out = _check_wave(wave)
        start, stop = self.span.to_samples(sample_rate, out.size)
        n = stop - start
        fade = math.floor(self.crossfade_ms * sample_rate / 1000.0 + 0.5)
        if 2 * fade > n:
            raise PerturbationError(
                f"crossfade of {self.crossfade_ms:g} ms ({fade} samples) at each end does not fit in a "
                f"{n}-sample span"
            )
        unit = self.noise(n, rng)
        clean = out.astype(np.float64)
        burst = unit * self._gain(clean, unit, sample_rate)
        segment = clean[start:stop]
        if self.mode == "add":
            out[start:stop] = (segment + burst * _raised_cosine(n, fade)).astype(np.float32)
        elif fade == 0:
            out[start:stop] = burst.astype(np.float32)
        else:
            env = _raised_cosine(n, fade)
            out[start:stop] = (segment * (1.0 - env) + burst * env).astype(np.float32)
        return out

