"""Whole-clip degradations of known, increasing severity: the ladders the clip-level validation ranks against.

:func:`degradation_ladder` turns a family and its levels (:data:`DEFAULT_LADDERS`, mildest first) into
perturbations of a whole clip: additive white noise at falling SNR, more and more of the clip moved by swaps of
adjacent blocks, a falling low-pass cutoff, fewer bits. Each family changes one thing about the clip, so within a
family the order of quality is known without listening: level ``i + 1`` is worse than level ``i``, and the clean
clip (level 0) is best. :func:`cae.profile.validate_clips` asks whether the clip score follows that order.
"""

from __future__ import annotations

from collections.abc import Sequence

from cae.perturb import BitCrush, LowPass, Noise, Perturbation, RandomPairSwaps, Span

__all__ = ["DEFAULT_LADDERS", "degradation_ladder"]


#: Severity ladders of :func:`degradation_ladder` (mildest first): the parameter values per family.
DEFAULT_LADDERS: dict[str, tuple[float, ...]] = {
    "noise": (30.0, 20.0, 10.0, 0.0),  # additive white noise, SNR in dB relative to the clip's RMS
    "shuffle": (0.25, 0.5, 1.0),  # fraction of the clip moved by swaps of adjacent 0.5 s blocks
    "lowpass": (8000.0, 4000.0, 2000.0, 1000.0),  # cutoff in Hz
    "bitcrush": (10, 8, 6, 4),  # bits
}


def degradation_ladder(family: str, n_samples: int, *, sample_rate: int = 32000, frame_rate: float = 50.0,
                       levels: Sequence[float] | None = None, seed: int = 0,
                       shuffle_block_frames: int = 25) -> list[tuple[float, Perturbation]]:
    """Whole-clip degradations of increasing severity for one clip, as ``(level value, perturbation)`` pairs.

    Families (levels default to :data:`DEFAULT_LADDERS`, mildest first):

    * ``"noise"``: additive white noise over the whole clip at the given SNR (dB, relative to the clip's RMS;
      :class:`cae.perturb.Noise` with ``mode="add", reference="snr-rms"``);
    * ``"shuffle"``: :class:`cae.perturb.RandomPairSwaps` of adjacent ``shuffle_block_frames``-frame blocks over the
      whole clip moving the given fraction of it;
    * ``"lowpass"``: :class:`LowPass` at the given cutoff (Hz);
    * ``"bitcrush"``: :class:`BitCrush` to the given number of bits.

    >>> [p.label for _, p in degradation_ladder("noise", 32000 * 15)][:2]
    ['noise-white-add-snr-rms+30@0+480000smp', 'noise-white-add-snr-rms+20@0+480000smp']
    >>> [p.label for _, p in degradation_ladder("shuffle", 32000 * 15, levels=[0.5])]
    ['pairswaps-25f-b0.5@0-endf']
    """
    if family not in DEFAULT_LADDERS:
        raise ValueError(f"unknown degradation family {family!r}; known: {sorted(DEFAULT_LADDERS)}")
    vals = list(DEFAULT_LADDERS[family] if levels is None else levels)
    if family == "noise":
        return [(v, Noise(Span(0, int(n_samples), "samples"), mode="add", level_db=float(v), reference="snr-rms",
                          seed=seed)) for v in vals]
    if family == "shuffle":
        return [(v, RandomPairSwaps(shuffle_block_frames, 0, None, float(v), frame_rate, seed)) for v in vals]
    if family == "lowpass":
        return [(v, LowPass(float(v))) for v in vals]
    if family == "bitcrush":
        return [(v, BitCrush(int(v))) for v in vals]
    raise ValueError(f"unknown degradation family {family!r}; known: {sorted(DEFAULT_LADDERS)}")
