"""Waveform perturbations as frozen, serialisable dataclasses.

The paper perturbs the **waveform** and re-tokenises it (Protocol page: Noise injection). Every perturbation here is a frozen
dataclass with a class-level ``kind``, :meth:`~Perturbation.to_dict` (plain JSON-able, includes ``kind``),
a ``label`` for result rows, and ``apply(wave, sample_rate, rng=None) -> Wave``. :func:`from_dict`
rebuilds any kind exactly. ``apply`` never mutates its input; it returns a new float32 array.

Where (:class:`Span`)
    An onset and a length in codec ``"frames"`` (default; 50 Hz for MusicGen), seconds (``"s"``) or
    ``"samples"``. Frames convert exactly: the hop ``sample_rate / frame_rate`` must be a whole number of
    samples (32000 / 50 = 640), otherwise :class:`~cae.errors.PerturbationError`. Seconds are rounded to
    the nearest sample, onset and length separately (``start = round(onset·sr)``, ``stop = start +
    round(length·sr)``, halves rounded up), so a given length always spans the same number of samples.
    A clip shorter than the span's end raises :class:`~cae.errors.PerturbationError`.

Randomness (one rule for every kind)
    ``rng=None`` → ``numpy.random.default_rng(self.seed)``, so the dataclass alone fixes the audio;
    ``rng=<int>`` → ``default_rng(<int>)`` (the field is ignored); ``rng=<Generator>`` → that generator is
    used as is and advanced. Same seed → bit-identical audio. Kinds without randomness ignore ``rng``.
    :class:`Noise` with ``legacy_rng=True`` instead draws from ``numpy.random.RandomState(seed)``, the
    stream that ``np.random.seed(seed); np.random.randn(n)`` gives, to reproduce the authors' noise; a
    Generator cannot be used then.

Noise (:class:`Noise`, Protocol page: Noise injection, What cae corrects)
    ``mode="replace"`` (paper: ``audio[start:stop] = noise``) or ``"add"``. Colours:

    * ``"white"``: i.i.d. Gaussian.
    * ``"butter-pink"``, ``"butter-brown"``, ``"butter-blue"``: the authors' "pink/brown/blue": white
      noise through ``scipy.signal.butter`` + ``lfilter`` (1st-order low-pass at 0.2 of Nyquist, 2nd-order
      low-pass at 0.1, 1st-order high-pass at 0.5; cutoffs are fractions of Nyquist, so 3.2/1.6/8 kHz at
      32 kHz). Flat with a −6 or −12 dB/octave skirt: not power laws.
    * ``"pink"``, ``"brown"``, ``"blue"``, ``"violet"``: spectrally exact 1/f^α noise with α = 1, 2, −1, −2,
      from ``colorednoise.powerlaw_psd_gaussian`` (Timmer & König FFT shaping). No mean removal.

    The noise is then scaled to unit RMS (with ``legacy_rng=True``: unit standard deviation, as the
    authors did; the two agree for zero-mean noise) and to a level given by ``level_db`` and
    ``reference``:

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

Order perturbations (Protocol page: Order shuffling), on blocks of whole codec frames; all preserve the multiset of samples
    * :class:`BlockSwap`: variant (c): swap ``[onset, onset+L)`` with ``[onset+L, onset+2L)``.
    * :class:`RandomPairSwaps`: variant (a) with its overlap bug fixed: ``k = floor(budget·R / 2L)`` pairs of
      adjacent L-frame blocks, on the authors' candidate grid (every L frames from the range start),
      drawn uniformly among all **non-overlapping** placements; each pair's blocks are swapped.
    * :class:`SegmentSwap`: variant (b): two non-overlapping L-frame segments (frame-aligned), drawn
      uniformly among all such placements in the range, are swapped.

Deletion and controls
    :class:`Delete` removes a span (the clip gets shorter); :class:`Silence` zeroes a span.

Paper presets
    :func:`paper_noise`, :func:`paper_block_swap`, :func:`paper_shuffle` and the ``PAPER_*`` constants.

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

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import colorednoise
import numpy as np
import numpy.typing as npt
import pyloudnorm
import scipy.signal

from cae.errors import AudioError, PerturbationError
from cae.types import Wave

__all__ = [
    "RngLike",
    "UNITS",
    "COLOURS",
    "BUTTERWORTH_COLOURS",
    "POWER_LAW_COLOURS",
    "NOISE_MODES",
    "LEVEL_REFERENCES",
    "Span",
    "Perturbation",
    "Noise",
    "Silence",
    "Delete",
    "BlockSwap",
    "RandomPairSwaps",
    "SegmentSwap",
    "from_dict",
    "coloured_noise",
    "PAPER_SAMPLE_RATE",
    "PAPER_FRAME_RATE",
    "PAPER_ONSET_FRAME",
    "PAPER_ONSET_SAMPLE",
    "PAPER_LENGTHS",
    "PAPER_LEVELS_DBFS",
    "PAPER_SEED_BASE",
    "PAPER_SHUFFLE_LENGTHS",
    "PAPER_SHUFFLE_RANGE_FRAMES",
    "paper_noise",
    "paper_block_swap",
    "paper_shuffle",
]

#: What ``apply`` accepts as ``rng``: a Generator (used and advanced), an int seed, or None (use ``seed``).
RngLike = np.random.Generator | int | None

#: Units of a :class:`Span`.
UNITS = ("frames", "s", "samples")
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

# ----------------------------------------------------------------------------------------------------------
# Small helpers


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_seed(seed: Any) -> None:
    if not _is_int(seed) or seed < 0:
        raise PerturbationError(f"seed must be a non-negative integer, got {seed!r}")


def _check_frame_rate(frame_rate: Any) -> float:
    if isinstance(frame_rate, bool) or not isinstance(frame_rate, (int, float)) or not (
        math.isfinite(frame_rate) and frame_rate > 0
    ):
        raise PerturbationError(f"frame_rate must be a positive finite number, got {frame_rate!r}")
    return float(frame_rate)


def _check_sample_rate(sample_rate: Any) -> int:
    if not _is_int(sample_rate) or sample_rate <= 0:
        raise PerturbationError(f"sample_rate must be a positive integer number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _hop(sample_rate: int, frame_rate: float) -> int:
    """Samples per codec frame; must be a whole number."""
    hop = Fraction(sample_rate) / Fraction(frame_rate)
    if hop.denominator != 1:
        raise PerturbationError(
            f"frame rate {frame_rate:g} Hz at {sample_rate} Hz gives a non-integral hop of {float(hop):.6g} samples; "
            "frame-based positions need sample_rate / frame_rate to be a whole number"
        )
    return int(hop)


def _check_wave(wave: Any) -> npt.NDArray[np.float32]:
    """Validate and return a float32 **copy** of a mono wave."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise PerturbationError(f"wave must be 1-D (mono, shape [N]), got shape {x.shape}")
    if x.size == 0:
        raise PerturbationError("wave is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise PerturbationError(f"wave must hold floating-point samples, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise PerturbationError("wave contains non-finite samples (NaN/Inf)")
    return np.array(x, dtype=np.float32, copy=True)


def _too_short(n_samples: int, sample_rate: int, stop: int, what: str) -> PerturbationError:
    return PerturbationError(
        f"clip is {n_samples / sample_rate:.3f} s ({n_samples} samples at {sample_rate} Hz) but {what} "
        f"needs it to last until {stop / sample_rate:.3f} s (sample {stop})"
    )


def _generator(rng: RngLike, seed: int) -> np.random.Generator:
    """The module's randomness rule: Generator → itself; int → default_rng(int); None → default_rng(seed)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(seed)
    if _is_int(rng) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise PerturbationError(f"rng must be a numpy Generator, a non-negative int seed, or None; got {rng!r}")


def _fmt(v: float) -> str:
    return f"{v:g}"


# ----------------------------------------------------------------------------------------------------------
# Span


@dataclass(frozen=True)
class Span:
    """A region of a clip: ``onset`` and ``length`` in ``unit`` ("frames", "s" or "samples").

    Attributes:
        onset: Start of the region (≥ 0). Whole number for "frames" and "samples".
        length: Extent of the region (> 0). Whole number for "frames" and "samples".
        unit: "frames" (codec frames at ``frame_rate``), "s" (seconds) or "samples".
        frame_rate: Codec frames per second, used only for ``unit="frames"`` (MusicGen: 50).

    >>> Span(250, 100).to_samples(32000)
    (160000, 224000)
    >>> Span(5.0, 0.1, unit="s").to_samples(44100)
    (220500, 224910)
    >>> Span(250, 100).label, Span(5, 2, unit="s").label
    ('250+100f', '5s+2s')
    """

    onset: float
    length: float
    unit: str = "frames"
    frame_rate: float = 50.0

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise PerturbationError(f"unit must be one of {UNITS}, got {self.unit!r}")
        for name in ("onset", "length"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise PerturbationError(f"{name} must be a finite number, got {v!r}")
            if self.unit != "s":
                if float(v) != int(v):
                    raise PerturbationError(f"{name} must be a whole number of {self.unit}, got {v!r}")
                object.__setattr__(self, name, int(v))
            else:
                object.__setattr__(self, name, float(v))
        if self.onset < 0:
            raise PerturbationError(f"onset must be >= 0, got {self.onset!r}")
        if self.length <= 0:
            raise PerturbationError(f"length must be > 0, got {self.length!r}")
        object.__setattr__(self, "frame_rate", _check_frame_rate(self.frame_rate))

    def to_samples(self, sample_rate: int, n_samples: int | None = None) -> tuple[int, int]:
        """Sample indices ``(start, stop)`` of the half-open region ``[start, stop)``.

        Args:
            sample_rate: Rate of the clip in Hz.
            n_samples: If given, the clip's length; the region must end within it.

        Returns:
            ``(start, stop)`` with ``stop - start ≥ 1``.

        Raises:
            PerturbationError: Non-integral hop (frames), a length that rounds to 0 samples (seconds), or a
                clip shorter than ``stop``.
        """
        sample_rate = _check_sample_rate(sample_rate)
        if self.unit == "frames":
            hop = _hop(sample_rate, self.frame_rate)
            start, stop = int(self.onset) * hop, (int(self.onset) + int(self.length)) * hop
        elif self.unit == "samples":
            start, stop = int(self.onset), int(self.onset) + int(self.length)
        else:
            start = math.floor(self.onset * sample_rate + 0.5)
            n = math.floor(self.length * sample_rate + 0.5)
            if n == 0:
                raise PerturbationError(f"span length {self.length:g} s is less than half a sample at {sample_rate} Hz")
            stop = start + n
        if n_samples is not None and stop > n_samples:
            raise _too_short(n_samples, sample_rate, stop, f"span {self.label}")
        return start, stop

    @property
    def label(self) -> str:
        """Compact text: ``"250+100f"`` (frames), ``"5s+2s"`` (seconds), ``"160000+64000smp"`` (samples)."""
        if self.unit == "frames":
            rate = "" if self.frame_rate == 50.0 else f"/{_fmt(self.frame_rate)}Hz"
            return f"{self.onset}+{self.length}f{rate}"
        if self.unit == "samples":
            return f"{self.onset}+{self.length}smp"
        return f"{_fmt(self.onset)}s+{_fmt(self.length)}s"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Span:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(d))


# ----------------------------------------------------------------------------------------------------------
# Base class and (de)serialisation

_REGISTRY: dict[str, type[Perturbation]] = {}


class Perturbation:
    """Base of every perturbation. Subclasses are frozen dataclasses with a class-level ``kind``."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            if kind in _REGISTRY:
                raise TypeError(f"perturbation kind {kind!r} is already registered")
            _REGISTRY[kind] = cls

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Return a perturbed copy of ``wave`` (shape ``[N]``) as float32. Never mutates ``wave``."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """Condition id for result rows (seeds are not part of it)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: ``{"kind": ..., <fields>}``; nested spans become dicts."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, Span) else v
        return out


def from_dict(d: Mapping[str, Any]) -> Perturbation:
    """Rebuild a perturbation of any kind from :meth:`Perturbation.to_dict` output (exact round trip).

    Args:
        d: Mapping with ``"kind"`` and the dataclass fields; spans may be nested dicts.

    Returns:
        The perturbation.

    Raises:
        PerturbationError: Unknown kind, unknown or missing fields, or invalid values.

    >>> from_dict({"kind": "silence", "span": {"onset": 1, "length": 2, "unit": "s"}}).label
    'silence@1s+2s'
    """
    d = dict(d)
    kind = d.pop("kind", None)
    cls = _REGISTRY.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise PerturbationError(f"unknown perturbation kind {kind!r}; known: {sorted(_REGISTRY)}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise PerturbationError(f"unknown field(s) for kind {kind!r}: {unknown}")
    for k, v in d.items():
        if k == "span" and isinstance(v, Mapping):
            d[k] = Span.from_dict(v)
    try:
        return cls(**d)
    except TypeError as exc:
        raise PerturbationError(f"cannot build kind {kind!r} from {d!r}: {exc}") from exc


def _check_span(span: Any) -> None:
    if not isinstance(span, Span):
        raise PerturbationError(f"span must be a Span, got {span!r}")


# ----------------------------------------------------------------------------------------------------------
# Noise


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
        from cae.audio import loudness_lufs  # local import: keeps the dependency one-way at import time

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


# ----------------------------------------------------------------------------------------------------------
# Silence and deletion


@dataclass(frozen=True)
class Silence(Perturbation):
    """Zero a span (a control for :class:`Noise`: information removed, no new content).

    >>> import numpy as np
    >>> Silence(Span(1, 2, unit="samples")).apply(np.ones(4, dtype=np.float32), 8000).tolist()
    [1.0, 0.0, 0.0, 1.0]
    """

    kind: ClassVar[str] = "silence"

    span: Span

    def __post_init__(self) -> None:
        _check_span(self.span)

    @property
    def label(self) -> str:
        return f"silence@{self.span.label}"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Zeros in ``span``; returns float32 ``[N]``. ``rng`` is ignored."""
        sample_rate = _check_sample_rate(sample_rate)
        out = _check_wave(wave)
        start, stop = self.span.to_samples(sample_rate, out.size)
        out[start:stop] = 0.0
        return out


@dataclass(frozen=True)
class Delete(Perturbation):
    """Remove a span; the clip becomes ``stop - start`` samples shorter (hard splice).

    >>> import numpy as np
    >>> Delete(Span(1, 2, unit="samples")).apply(np.arange(5, dtype=np.float32), 8000).tolist()
    [0.0, 3.0, 4.0]
    """

    kind: ClassVar[str] = "delete"

    span: Span

    def __post_init__(self) -> None:
        _check_span(self.span)

    @property
    def label(self) -> str:
        return f"delete@{self.span.label}"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N - (stop - start)]``. ``rng`` is ignored."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        start, stop = self.span.to_samples(sample_rate, x.size)
        return np.concatenate([x[:start], x[stop:]])


# ----------------------------------------------------------------------------------------------------------
# Order perturbations


def _swap_blocks(out: npt.NDArray[np.float32], src: npt.NDArray[np.float32], a: int, b: int, n: int) -> None:
    """Swap the ``n``-sample blocks of ``src`` starting at ``a`` and ``b`` into ``out``."""
    out[a : a + n] = src[b : b + n]
    out[b : b + n] = src[a : a + n]


def _non_overlapping_starts(rng: np.random.Generator, n_cells: int, width: int, count: int) -> list[int]:
    """Starts of ``count`` non-overlapping intervals of ``width`` cells in ``[0, n_cells)``, sorted.

    Uniform over all such placements: choose ``count`` of the ``n_cells - count·(width-1)`` slots you get
    by shrinking each interval to one cell, then expand (interval i starts at ``slot_i + i·(width-1)``).
    """
    slots = n_cells - count * (width - 1)
    if count < 1 or slots < count:
        raise PerturbationError(f"cannot place {count} interval(s) of {width} in {n_cells} cells")
    chosen = np.sort(rng.choice(slots, size=count, replace=False))
    return [int(c) + i * (width - 1) for i, c in enumerate(chosen)]


class _RangeMixin:
    """Shared fields/validation for range-based shuffles (frames)."""

    def _range_frames(self, n_samples: int, sample_rate: int) -> tuple[int, int, int]:
        """``(hop, start_frame, stop_frame)``, checked against the clip."""
        hop = _hop(sample_rate, self.frame_rate)  # type: ignore[attr-defined]
        start: int = self.start  # type: ignore[attr-defined]
        stop: int | None = self.stop  # type: ignore[attr-defined]
        if stop is None:
            stop = n_samples // hop
            if stop <= start:
                raise _too_short(n_samples, sample_rate, (start + 1) * hop, f"range start frame {start}")
        elif stop * hop > n_samples:
            raise _too_short(n_samples, sample_rate, stop * hop, f"range [{start}, {stop}) frames")
        return hop, start, stop


def _check_range(obj: Any) -> None:
    if not _is_int(obj.length) or obj.length < 1:
        raise PerturbationError(f"length must be a positive whole number of frames, got {obj.length!r}")
    if not _is_int(obj.start) or obj.start < 0:
        raise PerturbationError(f"start must be a non-negative whole number of frames, got {obj.start!r}")
    if obj.stop is not None and (not _is_int(obj.stop) or obj.stop <= obj.start):
        raise PerturbationError(f"stop must be None or a whole number of frames > start, got {obj.stop!r}")
    object.__setattr__(obj, "frame_rate", _check_frame_rate(obj.frame_rate))
    _check_seed(obj.seed)


def _range_label(obj: Any) -> str:
    rate = "" if obj.frame_rate == 50.0 else f"/{_fmt(obj.frame_rate)}Hz"
    stop = "end" if obj.stop is None else str(obj.stop)
    return f"{obj.start}-{stop}f{rate}"


@dataclass(frozen=True)
class BlockSwap(Perturbation):
    """Swap the block ``[onset, onset+L)`` with the next one ``[onset+L, onset+2L)`` (variant c, Protocol page: Order shuffling).

    ``span`` gives the onset and the block length L; it must be in frames (whole codec frames).

    >>> import numpy as np
    >>> BlockSwap(Span(1, 2, frame_rate=1000.0)).apply(np.arange(6, dtype=np.float32), 1000).tolist()
    [0.0, 3.0, 4.0, 1.0, 2.0, 5.0]
    """

    kind: ClassVar[str] = "block_swap"

    span: Span

    def __post_init__(self) -> None:
        _check_span(self.span)
        if self.span.unit != "frames":
            raise PerturbationError(
                f"BlockSwap works on whole codec frames: span unit must be 'frames', got {self.span.unit!r}"
            )

    @property
    def label(self) -> str:
        return f"blockswap@{self.span.label}"

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``; the clip must reach ``onset + 2L``. ``rng`` is ignored."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        start, stop = self.span.to_samples(sample_rate)
        n = stop - start
        if start + 2 * n > x.size:
            raise _too_short(x.size, sample_rate, start + 2 * n, f"block swap {self.label}")
        out = x.copy()
        _swap_blocks(out, x, start, stop, n)
        return out


@dataclass(frozen=True)
class RandomPairSwaps(Perturbation, _RangeMixin):
    """Swap ``k`` random, non-overlapping pairs of adjacent L-frame blocks within a frame range (variant a).

    The range ``[start, stop)`` (frames; ``stop=None``: the last whole frame of the clip) of ``R`` frames is
    cut into ``floor(R / L)`` candidate blocks starting every L frames from ``start`` (the authors' grid).
    ``k = floor(budget · R / (2L))`` pairs of adjacent blocks are placed uniformly at random among all
    non-overlapping placements, and the two blocks of each pair are swapped, so at most ``budget`` of the
    range moves. The authors' version drew pair starts independently and let pairs overlap (Protocol page: Order shuffling).

    Attributes:
        length: Block length L in frames.
        start: First frame of the range (authors: 0, i.e. the range includes the clip start).
        stop: End frame (exclusive) of the range, or None for the whole clip (authors: 700 = 14 s).
        budget: Fraction of the range moved, in (0, 1] (authors: 0.2).
        frame_rate: Codec frames per second.
        seed: Seed used when ``apply`` gets ``rng=None``.
    """

    kind: ClassVar[str] = "random_pair_swaps"

    length: int
    start: int = 0
    stop: int | None = None
    budget: float = 0.2
    frame_rate: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range(self)
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not 0 < self.budget <= 1:
            raise PerturbationError(f"budget must be in (0, 1], got {self.budget!r}")
        object.__setattr__(self, "budget", float(self.budget))

    @property
    def label(self) -> str:
        return f"pairswaps-{self.length}f-b{_fmt(self.budget)}@{_range_label(self)}"

    def plan(self, n_samples: int, sample_rate: int, rng: RngLike = None) -> list[int]:
        """Frame index of the first block of every swapped pair (sorted), as :meth:`apply` would draw them.

        Raises:
            PerturbationError: The range is beyond the clip, or the budget allows no pair.
        """
        sample_rate = _check_sample_rate(sample_rate)
        _, start, stop = self._range_frames(n_samples, sample_rate)
        frames = stop - start
        pairs = math.floor(self.budget * frames / (2 * self.length) + 1e-9)
        if pairs < 1:
            raise PerturbationError(
                f"a budget of {self.budget:g} of a {frames}-frame range allows no pair of 2 x {self.length} frames"
            )
        cells = _non_overlapping_starts(_generator(rng, self.seed), frames // self.length, 2, pairs)
        return [start + c * self.length for c in cells]

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``, a permutation of the input's samples."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        hop = _hop(sample_rate, self.frame_rate)
        out = x.copy()
        n = self.length * hop
        for frame in self.plan(x.size, sample_rate, rng):
            _swap_blocks(out, x, frame * hop, frame * hop + n, n)
        return out


@dataclass(frozen=True)
class SegmentSwap(Perturbation, _RangeMixin):
    """Swap two random, non-overlapping L-frame segments within a frame range (variant b, Protocol page: Order shuffling).

    Segment starts are frame-aligned; the unordered pair is drawn uniformly among all non-overlapping
    placements in ``[start, stop)`` (adjacent segments allowed).

    Attributes:
        length: Segment length L in frames.
        start: First frame of the range.
        stop: End frame (exclusive), or None for the whole clip (authors: 700 = 14 s).
        frame_rate: Codec frames per second.
        seed: Seed used when ``apply`` gets ``rng=None``.
    """

    kind: ClassVar[str] = "segment_swap"

    length: int
    start: int = 0
    stop: int | None = None
    frame_rate: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range(self)

    @property
    def label(self) -> str:
        return f"segswap-{self.length}f@{_range_label(self)}"

    def plan(self, n_samples: int, sample_rate: int, rng: RngLike = None) -> tuple[int, int]:
        """Start frames ``(a, b)``, ``a + L ≤ b``, of the two segments :meth:`apply` would swap.

        Raises:
            PerturbationError: The range is beyond the clip or shorter than 2L frames.
        """
        sample_rate = _check_sample_rate(sample_rate)
        _, start, stop = self._range_frames(n_samples, sample_rate)
        frames = stop - start
        if frames < 2 * self.length:
            raise PerturbationError(f"a {frames}-frame range cannot hold two {self.length}-frame segments")
        a, b = _non_overlapping_starts(_generator(rng, self.seed), frames, self.length, 2)
        return start + a, start + b

    def apply(self, wave: Wave, sample_rate: int, rng: RngLike = None) -> Wave:
        """Returns float32 ``[N]``, a permutation of the input's samples."""
        sample_rate = _check_sample_rate(sample_rate)
        x = _check_wave(wave)
        hop = _hop(sample_rate, self.frame_rate)
        a, b = self.plan(x.size, sample_rate, rng)
        out = x.copy()
        _swap_blocks(out, x, a * hop, b * hop, self.length * hop)
        return out


# ----------------------------------------------------------------------------------------------------------
# Paper presets

#: The authors' rate and codec frame rate (EnCodec 32 kHz, hop 640).
PAPER_SAMPLE_RATE = 32000
PAPER_FRAME_RATE = 50.0
#: Noise onset: token 250 = 5 s = sample 160000 at 32 kHz.
PAPER_ONSET_FRAME = 250
PAPER_ONSET_SAMPLE = 160000
#: Noise lengths in frames (0.1, 0.2, 1, 2, 3, 4 s).
PAPER_LENGTHS = (5, 10, 50, 100, 150, 200)
#: Absolute noise RMS per dataset kind (dBFS), fixed per dataset, not matched per file (Protocol page: Noise injection, What cae corrects).
PAPER_LEVELS_DBFS: dict[str, float] = {"ood": -30.0, "generated": -20.0, "trainset": -12.0}
_DATASET_ALIASES = {"ood": "ood", "asap": "ood", "generated": "generated", "trainset": "trainset",
                    "training": "trainset", "trainingset": "trainset"}  # fmt: skip
#: Per-file seed = 42 + file index (+ channel for stereo files).
PAPER_SEED_BASE = 42
#: Shuffle lengths in the paper's Fig. 5 (frames).
PAPER_SHUFFLE_LENGTHS = (1, 2, 5, 10, 35, 50, 70, 100, 150, 200)
#: Shuffle range [0, 14 s) in frames.
PAPER_SHUFFLE_RANGE_FRAMES = (0, 700)


def paper_noise(
    length_frames: int, dataset_kind: str, file_index: int = 0, channel: int = 0, colour: str = "white"
) -> Noise:
    """The authors' noise injection for one file (Protocol page: Noise injection, What cae corrects).

    White noise (or one of their Butterworth colours) **replacing** frames ``[250, 250 + L)``, hard cut,
    std-normalised and scaled to the dataset's fixed dBFS level, drawn from numpy's legacy generator seeded
    with ``42 + file_index + channel`` (``legacy_rng=True``).

    Args:
        length_frames: L in frames; the paper uses :data:`PAPER_LENGTHS` (other positive values allowed).
        dataset_kind: "ood" (−30 dBFS), "generated" (−20) or "trainset" (−12); aliases "asap",
            "training", "trainingset".
        file_index: Position of the file in the authors' walk order (0-based).
        channel: Channel index for stereo files (the authors noised each channel with seed + channel).
        colour: "white" (paper figures) or "butter-pink"/"butter-brown"/"butter-blue" (demo page).

    Returns:
        The :class:`Noise`.

    >>> p = paper_noise(100, "ood", file_index=75)
    >>> p.label, p.seed, p.span.to_samples(PAPER_SAMPLE_RATE)
    ('noise-white-replace-dbfs-30@250+100f', 117, (160000, 224000))
    """
    key = _DATASET_ALIASES.get(str(dataset_kind).lower())
    if key is None:
        raise PerturbationError(f"dataset_kind must be one of {sorted(_DATASET_ALIASES)}, got {dataset_kind!r}")
    if not _is_int(length_frames) or length_frames < 1:
        raise PerturbationError(f"length_frames must be a positive integer, got {length_frames!r}")
    for name, v in (("file_index", file_index), ("channel", channel)):
        if not _is_int(v) or v < 0:
            raise PerturbationError(f"{name} must be a non-negative integer, got {v!r}")
    if colour != "white" and colour not in BUTTERWORTH_COLOURS:
        raise PerturbationError(f"the authors' colours are 'white' and {tuple(BUTTERWORTH_COLOURS)}, got {colour!r}")
    return Noise(
        span=Span(PAPER_ONSET_FRAME, int(length_frames), "frames", PAPER_FRAME_RATE),
        colour=colour,
        mode="replace",
        level_db=PAPER_LEVELS_DBFS[key],
        reference="dbfs",
        crossfade_ms=0.0,
        seed=PAPER_SEED_BASE + int(file_index) + int(channel),
        legacy_rng=True,
    )


def paper_block_swap(length_frames: int) -> BlockSwap:
    """Variant (c): swap frames ``[250, 250+L)`` and ``[250+L, 250+2L)``.

    >>> paper_block_swap(50).label
    'blockswap@250+50f'
    """
    return BlockSwap(Span(PAPER_ONSET_FRAME, length_frames, "frames", PAPER_FRAME_RATE))


def paper_shuffle(length_frames: int, seed: int = 0) -> RandomPairSwaps | SegmentSwap:
    """The Fig. 5 shuffle for length L over frames [0, 700): pair swaps (20 % budget) for L < 100, one
    segment swap for L ≥ 100, as in the authors' two scripts (with the pair-overlap bug fixed).

    >>> paper_shuffle(10).label, paper_shuffle(150).label
    ('pairswaps-10f-b0.2@0-700f', 'segswap-150f@0-700f')
    """
    lo, hi = PAPER_SHUFFLE_RANGE_FRAMES
    if _is_int(length_frames) and length_frames >= 100:
        return SegmentSwap(length_frames, lo, hi, PAPER_FRAME_RATE, seed)
    return RandomPairSwaps(length_frames, lo, hi, 0.2, PAPER_FRAME_RATE, seed)
