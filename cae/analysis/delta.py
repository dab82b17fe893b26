"""Token-wise loss difference Δℓ_t and the clip-level loss.

The paper (Eq. 4) defines the token-wise loss difference between a perturbed clip ``x'`` and its clean
original ``x`` as

    Δℓ_t = −log p(x'_t | x'_<t) + log p(x_t | x_<t),

i.e. ``nll_perturbed − nll_clean`` at the same position. In :mod:`cae`, a model's scores come as
``nll[K, F]`` (nats) indexed by the **target frame** ``f``: ``nll[k, f] = −log p(codes[k, f] | context)``,
with NaN where no prediction exists (frame 0 in the authors' un-delayed alignment). Δ therefore keeps the
same convention: ``Δ[k, f]`` is the change in the loss of predicting frame ``f`` of codebook ``k``.

The two clips can differ in length (a deletion makes the perturbed clip shorter). As in the authors' code, both
curves are truncated to the common length ``F' = min(F_perturbed, F_clean)`` on the right. After a deletion the
frames past the cut are then compared with *different* clean frames; that is the authors' convention, and it is
why Δ past a deletion point measures something other than a context effect.

The clip-level loss used for Fig. 2 is a per-token mean (the authors' ``results.txt`` value), computed here over
every finite token so that a NaN never reaches a mean.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cae.analysis._arrays import as_float

__all__ = ["clip_loss", "codebook_mean", "delta", "delta_curve"]

FloatArray = npt.NDArray[np.float64]


def delta(nll_perturbed: npt.ArrayLike, nll_clean: npt.ArrayLike) -> FloatArray:
    """Token-wise loss difference ``nll_perturbed − nll_clean`` on the common length.

    Args:
        nll_perturbed: per-token NLL of the perturbed clip, shape ``[K, F_p]`` (or any ``[..., F_p]``);
            numpy array or torch tensor.
        nll_clean: per-token NLL of the clean clip, shape ``[K, F_c]`` (same leading shape).

    Returns:
        ``float64`` array ``[K, F']`` with ``F' = min(F_p, F_c)``, indexed by target frame. A NaN in either
        input gives NaN at that position (nothing is imputed).

    Raises:
        ValueError: if the leading shapes (everything but the frame axis) differ, or the inputs are 0-d.

    >>> nan = float("nan")
    >>> delta([[nan, 2.0, 3.0, 9.0]], [[nan, 2.5, 1.0]]).tolist()
    [[nan, -0.5, 2.0]]
    """
    p, c = as_float(nll_perturbed), as_float(nll_clean)
    if p.ndim == 0 or c.ndim == 0:
        raise ValueError("delta needs arrays with a frame axis, got a scalar")
    if p.shape[:-1] != c.shape[:-1]:
        raise ValueError(f"leading shapes differ: perturbed {p.shape} vs clean {c.shape} (frames are the last axis)")
    n = min(p.shape[-1], c.shape[-1])
    return p[..., :n] - c[..., :n]


def codebook_mean(x: npt.ArrayLike) -> FloatArray:
    """Mean over the codebook axis: ``[..., K, F] → [..., F]``.

    This is the curve the authors save per position (their CSV ``avg_loss_value``), and it is the input to the
    region detectors. The mean is a plain one: a frame where **any** codebook is NaN is NaN in the result
    (a codebook-mean with a codebook missing would not be comparable with its neighbours). A codebook that is NaN
    at *every* frame is one the model never predicts (YuE's codebook 0 under its ``stage2`` alignment, which stage 2
    is given): it is left out, so the curve is the mean over the codebooks the model scores.

    Args:
        x: per-codebook values, shape ``[K, F]`` (or ``[..., K, F]``); numpy array or torch tensor.

    Returns:
        ``float64`` array ``[F]`` (or ``[..., F]``).

    >>> nan = float("nan")
    >>> codebook_mean([[nan, 1.0, 2.0], [nan, 3.0, nan]]).tolist()
    [nan, 2.0, nan]
    >>> codebook_mean([[nan, nan, nan], [1.0, 3.0, nan], [3.0, 5.0, 2.0]]).tolist()  # codebook 0 never scored
    [2.0, 4.0, nan]
    >>> codebook_mean([[[nan, nan], [1.0, 3.0]], [[nan, nan], [nan, nan]]]).tolist()  # each item on its own
    [[1.0, 3.0], [nan, nan]]
    """
    a = as_float(x)
    if a.ndim < 2:
        raise ValueError(f"codebook_mean needs an array [..., K, F], got shape {a.shape}")
    scored = ~np.isnan(a).all(axis=-1, keepdims=True)  # [..., K, 1]: codebooks with at least one prediction
    if scored.all() or a.shape[-1] < 2:  # nothing to leave out (one frame: a NaN is a gap, not a codebook)
        return a.mean(axis=-2)
    count = np.broadcast_to(scored.sum(axis=-2), a.shape[:-2] + a.shape[-1:]).astype(np.float64)
    total = np.where(scored, a, 0.0).sum(axis=-2)
    return np.divide(total, count, out=np.full_like(total, np.nan), where=count > 0)  # per item: no batch neighbour


def delta_curve(nll_perturbed: npt.ArrayLike, nll_clean: npt.ArrayLike) -> FloatArray:
    """Codebook-mean Δ curve ``d[f]``, shape ``[F']``: ``codebook_mean(delta(nll_perturbed, nll_clean))``.

    >>> delta_curve([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]).tolist()
    [1.0, 2.0]
    """
    return codebook_mean(delta(nll_perturbed, nll_clean))


def clip_loss(nll: npt.ArrayLike, *, per_codebook: bool = False) -> float | FloatArray:
    """Clip-level loss: mean NLL over all finite tokens (nats per codebook-token).

    Non-finite entries (NaN where there is no prediction; ±inf should not occur) are excluded, so the result
    is NaN only when no finite token is left. When NaNs fall on whole frames, as in the authors' alignment,
    this equals the authors' per-file value, the mean of the codebook-mean curve over the scored positions.

    Args:
        nll: per-token NLL, shape ``[K, F]`` (any shape is accepted when ``per_codebook`` is false).
        per_codebook: if true, return one value per codebook, shape ``[K]`` (mean over the last axis).

    Returns:
        A Python ``float``, or a ``float64`` array ``[K]`` when ``per_codebook`` is true.

    >>> nan = float("nan")
    >>> clip_loss([[nan, 1.0, 2.0], [nan, 3.0, 4.0]])
    2.5
    >>> clip_loss([[nan, 1.0, 2.0], [nan, nan, nan]], per_codebook=True).tolist()
    [1.5, nan]
    """
    a = as_float(nll)
    finite = np.isfinite(a)
    if per_codebook:
        if a.ndim != 2:
            raise ValueError(f"per_codebook needs an array [K, F], got shape {a.shape}")
        count = finite.sum(axis=-1)
        total = np.where(finite, a, 0.0).sum(axis=-1)
        out = np.full(a.shape[0], np.nan)
        np.divide(total, count, out=out, where=count > 0)
        return out
    n = int(finite.sum())
    return float(a[finite].sum() / n) if n else float("nan")
