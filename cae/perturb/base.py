"""Where a perturbation acts (:class:`Span`), the base class every perturbation derives from, and the registry.

Where (:class:`Span`)
    An onset and a length in codec ``"frames"`` (default; :data:`DEFAULT_FRAME_RATE` = 50 Hz for MusicGen), seconds
    (``"s"``) or ``"samples"``. Frames convert exactly: the hop ``sample_rate / frame_rate`` must be a whole number
    of samples (32000 / 50 = 640), otherwise :class:`~cae.errors.PerturbationError`. Seconds are rounded to the
    nearest sample, onset and length separately (``start = round(onset·sr)``, ``stop = start + round(length·sr)``,
    halves rounded up), so a given length always spans the same number of samples. A clip shorter than the span's
    end raises :class:`~cae.errors.PerturbationError`.

Randomness (one rule for every kind)
    ``rng=None`` → ``numpy.random.default_rng(self.seed)``, so the dataclass alone fixes the audio;
    ``rng=<int>`` → ``default_rng(<int>)`` (the field is ignored); ``rng=<Generator>`` → that generator is
    used as is and advanced. Same seed → bit-identical audio. Kinds without randomness ignore ``rng``.
    (:class:`cae.perturb.Noise` with ``legacy_rng=True`` is the one exception; see :mod:`cae.perturb.noise`.)

Serialisation
    Every perturbation is a frozen dataclass with a class-level ``kind``; defining a subclass with a ``kind``
    registers it, so :func:`from_dict` rebuilds any kind from :meth:`Perturbation.to_dict` exactly. The ``kind``
    strings and the ``to_dict`` output are the sweep's cache keys: they never change.

The small checks here (``_check_wave``, ``_check_seed``, ``_hop`` ...) are shared by every perturbation module.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from cae.audio import wave_problem
from cae.errors import PerturbationError
from cae.types import Wave

__all__ = ["DEFAULT_FRAME_RATE", "UNITS", "Perturbation", "RngLike", "Span", "from_dict"]

#: What ``apply`` accepts as ``rng``: a Generator (used and advanced), an int seed, or None (use ``seed``).
RngLike = np.random.Generator | int | None

#: Units of a :class:`Span`.
UNITS = ("frames", "s", "samples")
#: Codec frames per second assumed by frame-based positions unless a perturbation says otherwise: MusicGen's
#: 32 kHz EnCodec (hop 640). A perturbation at this rate leaves the rate out of its label.
DEFAULT_FRAME_RATE = 50.0

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
    problem = wave_problem(x)
    if problem:
        raise PerturbationError(problem)
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
        frame_rate: Codec frames per second, used only for ``unit="frames"`` (default :data:`DEFAULT_FRAME_RATE`).

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
    frame_rate: float = DEFAULT_FRAME_RATE

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
            rate = "" if self.frame_rate == DEFAULT_FRAME_RATE else f"/{_fmt(self.frame_rate)}Hz"
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
