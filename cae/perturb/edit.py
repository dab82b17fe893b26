"""Edits that remove information without adding any: :class:`Silence` zeroes a span (a control for noise: the same
span emptied instead of overwritten) and :class:`Delete` cuts it out (a hard splice; the clip gets shorter).

Neither draws random numbers; both take ``rng`` only to share :meth:`cae.perturb.Perturbation.apply`'s signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cae.perturb.base import Perturbation, RngLike, Span, _check_sample_rate, _check_span, _check_wave
from cae.types import Wave

__all__ = ["Delete", "Silence"]


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
