"""Array plumbing shared by :mod:`cae.analysis`: accept numpy arrays, lists and torch tensors, return numpy.

Torch tensors are converted with ``.detach().cpu().numpy()``; half-precision tensors (fp16/bf16, which numpy
cannot always hold) are widened to float32 first. Floating-point inputs are returned as ``float64`` so that
means over hundreds of tokens do not lose precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["as_float", "as_int", "as_numpy"]


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array (no copy when it already is one).

    >>> import torch
    >>> as_numpy(torch.tensor([[1, 2]])).tolist()
    [[1, 2]]
    """
    if isinstance(x, np.ndarray):
        return x
    try:  # torch is a dependency of cae, but keep this module importable without touching it
        import torch
    except ImportError:  # pragma: no cover
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def as_float(x: Any) -> npt.NDArray[np.float64]:
    """Return ``x`` as a ``float64`` numpy array.

    >>> as_float([1, 2]).dtype
    dtype('float64')
    """
    return np.asarray(as_numpy(x), dtype=np.float64)


def as_int(x: Any) -> np.ndarray:
    """Return ``x`` as an integer numpy array (codes); raises ``ValueError`` for non-integer data.

    >>> as_int([[3, 4]]).dtype.kind
    'i'
    """
    a = as_numpy(x)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "b" or (a.size and not np.all(np.equal(np.mod(a, 1), 0))):
            raise ValueError(f"codes must be integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
    return a
