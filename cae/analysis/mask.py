"""Token-difference mask: where the codec tokens of a perturbed clip differ from the clean ones.

The paper defines its perturbation in token space (Eq. 2), but the perturbation is applied to the *waveform*
and the audio is re-tokenised. The LM therefore sees the tokens that EnCodec changed, not the nominal window
``[onset, offset)``:

* EnCodec's convolutions are non-causal (about 4 frames of look-ahead for the 32 kHz model), so tokens change a
  few frames **before** the nominal onset;
* its encoder has a unidirectional LSTM, so tokens can also change **after** the nominal offset;
* a quiet perturbation may leave some codebooks (usually the coarse ones) unchanged at some frames.

:func:`token_mask` compares the codes frame by frame (``True`` = changed) and :func:`mask_summary` reduces the
mask to the numbers the region analysis needs: first/last changed frame and count, per codebook and overall.
Frames are target-frame indices, as everywhere in :mod:`cae.analysis`. Clips of different length (deletions)
are compared on the common length ``F' = min(F_clean, F_perturbed)``; after a deletion every later frame is
shifted, so the mask is typically ``True`` to the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from cae.analysis._arrays import as_int, as_numpy

__all__ = ["MaskSummary", "mask_summary", "span_diversity", "token_mask"]

BoolArray = npt.NDArray[np.bool_]


def token_mask(codes_clean: npt.ArrayLike, codes_perturbed: npt.ArrayLike) -> BoolArray:
    """Boolean mask of changed tokens, ``codes_clean != codes_perturbed`` on the common length.

    Args:
        codes_clean: integer codes ``[K, F_c]`` (numpy or torch).
        codes_perturbed: integer codes ``[K, F_p]`` with the same ``K``.

    Returns:
        ``bool`` array ``[K, F']``, ``F' = min(F_c, F_p)``, ``True`` where the token differs.

    >>> token_mask([[1, 2, 3, 4]], [[1, 9, 3]]).tolist()
    [[False, True, False]]
    """
    c, p = as_int(codes_clean), as_int(codes_perturbed)
    if c.ndim == 0 or p.ndim == 0:
        raise ValueError("token_mask needs code arrays [K, F], got a scalar")
    if c.shape[:-1] != p.shape[:-1]:
        raise ValueError(f"codebook shapes differ: clean {c.shape} vs perturbed {p.shape}")
    n = min(c.shape[-1], p.shape[-1])
    return c[..., :n] != p[..., :n]


def _first_last(row: BoolArray) -> tuple[int | None, int | None]:
    idx = np.flatnonzero(row)
    if idx.size == 0:
        return None, None
    return int(idx[0]), int(idx[-1])


@dataclass(frozen=True)
class MaskSummary:
    """Where a token mask ``[K, F']`` is ``True``.

    Attributes:
        n_codebooks: ``K``.
        n_frames: ``F'``.
        first_per_codebook: first changed frame of each codebook (``None`` if that codebook never changed).
        last_per_codebook: last changed frame of each codebook (inclusive; ``None`` if never changed).
        n_changed_per_codebook: number of changed tokens in each codebook.
        first: first frame where any codebook changed, or ``None`` if nothing changed.
        last: last frame where any codebook changed (inclusive), or ``None``.
        n_changed_frames: number of frames where at least one codebook changed.
    """

    n_codebooks: int
    n_frames: int
    first_per_codebook: tuple[int | None, ...]
    last_per_codebook: tuple[int | None, ...]
    n_changed_per_codebook: tuple[int, ...]
    first: int | None
    last: int | None
    n_changed_frames: int

    @property
    def any_changed(self) -> bool:
        """Whether any token changed at all."""
        return self.first is not None

    def frames_before(self, onset_frame: int) -> int | None:
        """How many frames before the nominal onset the tokens already changed (``onset − first``, at least 0).

        ``None`` if nothing changed. With the 32 kHz EnCodec's look-ahead this is typically about 4.
        """
        return None if self.first is None else max(0, onset_frame - self.first)

    def frames_after(self, offset_frame: int) -> int | None:
        """How many frames at or after the nominal (exclusive) offset still changed (``last + 1 − offset``, at least 0).

        ``None`` if nothing changed.
        """
        return None if self.last is None else max(0, self.last + 1 - offset_frame)

    def to_frame(self) -> pd.DataFrame:
        """Per-codebook table: columns ``codebook, first, last, n_changed`` (``first``/``last`` nullable Int64)."""
        return pd.DataFrame(
            {
                "codebook": np.arange(self.n_codebooks),
                "first": pd.array(self.first_per_codebook, dtype="Int64"),
                "last": pd.array(self.last_per_codebook, dtype="Int64"),
                "n_changed": np.asarray(self.n_changed_per_codebook, dtype=np.int64),
            }
        )


def mask_summary(mask: npt.ArrayLike) -> MaskSummary:
    """Summarise a token mask per codebook and overall.

    Args:
        mask: ``bool`` array ``[K, F']`` from :func:`token_mask`; a 1-D ``[F']`` mask is read as one codebook.

    >>> s = mask_summary([[False, True, True, False], [False, False, False, False]])
    >>> s.first, s.last, s.first_per_codebook, s.n_changed_per_codebook
    (1, 2, (1, None), (2, 0))
    """
    m = np.asarray(as_numpy(mask), dtype=bool)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2:
        raise ValueError(f"mask must be [K, F] or [F], got shape {m.shape}")
    per = [_first_last(row) for row in m]
    first, last = _first_last(m.any(axis=0))
    return MaskSummary(
        n_codebooks=m.shape[0],
        n_frames=m.shape[1],
        first_per_codebook=tuple(f for f, _ in per),
        last_per_codebook=tuple(l for _, l in per),
        n_changed_per_codebook=tuple(int(n) for n in m.sum(axis=1)),
        first=first,
        last=last,
        n_changed_frames=int(m.any(axis=0).sum()),
    )


def span_diversity(codes: npt.ArrayLike, start: int, stop: int) -> tuple[float, float]:
    """How varied the tokens of frames ``[start, stop)`` are, as the mean over codebooks of (unique tokens, share of
    frames equal to the previous frame). A loud noise that collapses to one repeated token makes "assimilation"
    mere copying; this tells the two apart. ``codes``: ``[K, F]``; an empty span gives NaN.

    >>> span_diversity(np.array([[1, 1, 1, 2], [3, 4, 5, 6]]), 0, 4)
    (3.0, 0.333...)
    """
    span = as_numpy(codes)[:, start:stop]
    if span.shape[1] == 0:
        return float("nan"), float("nan")
    unique = float(np.mean([len(np.unique(row)) for row in span]))
    repeat = float(np.mean(span[:, 1:] == span[:, :-1])) if span.shape[1] > 1 else float("nan")
    return unique, repeat
