"""Half-open frame windows and the three regions of the Context Amnesia Effect.

The paper splits the response to a perturbation into three regions ([P] §4.1):

* **Peak**: the first ~5 tokens, where the loss spikes because the new material is inconsistent with the context;
* **Assimilation**: the rest of the perturbation, where the loss drops and stays low;
* **Recovery**: after the perturbation, where the loss oscillates around the baseline.

A region is a half-open window ``[start, stop)`` of indices into a curve. ``stop <= start`` means the window is
empty; raw windows are kept as computed (a detector may produce ``stop < start``) and :attr:`Window.n` is
clipped at 0. :func:`window_mean` averages a curve over a window, ignoring non-finite values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cae.analysis._arrays import as_float

__all__ = ["REGIONS", "Window", "window_mean"]

#: Region names, in order.
REGIONS: tuple[str, str, str] = ("peak", "assimilation", "recovery")


@dataclass(frozen=True)
class Window:
    """Half-open index window ``[start, stop)``.

    >>> w = Window(245, 263)
    >>> w.n, w.empty, w.shift(1)
    (18, False, Window(start=246, stop=264))
    >>> Window(263, 258).n
    0
    """

    start: int
    stop: int

    @property
    def n(self) -> int:
        """Number of indices in the window (0 when ``stop <= start``)."""
        return max(0, self.stop - self.start)

    @property
    def empty(self) -> bool:
        """Whether the window holds no index."""
        return self.stop <= self.start

    def shift(self, k: int) -> Window:
        """The window moved by ``k`` indices (e.g. ``+1`` from authors' CSV positions to target frames)."""
        return Window(self.start + k, self.stop + k)

    def clip(self, lo: int, hi: int) -> Window:
        """The window with both ends clamped into ``[lo, hi]``.

        >>> Window(-3, 900).clip(0, 750)
        Window(start=0, stop=750)
        """
        return Window(min(max(self.start, lo), hi), min(max(self.stop, lo), hi))

    def as_slice(self) -> slice:
        """A slice over the last axis (empty when the window is empty)."""
        return slice(self.start, max(self.start, self.stop))


def window_mean(x: npt.ArrayLike, window: Window) -> float | npt.NDArray[np.float64]:
    """Mean of ``x`` over ``window`` on the last axis, ignoring non-finite values.

    Args:
        x: curve ``[F]`` or per-codebook curves ``[K, F]``.
        window: frame window; indices outside ``[0, F)`` are ignored.

    Returns:
        A ``float`` for a 1-D curve, a ``float64`` array ``[K]`` for ``[K, F]``. NaN where the window holds no
        finite value (in particular when it is empty): an empty region is *missing*, not zero.

    >>> nan = float("nan")
    >>> window_mean([0.0, 1.0, nan, 3.0, 5.0], Window(1, 4))
    2.0
    >>> window_mean([0.0, 1.0], Window(1, 1))
    nan
    """
    a = as_float(x)
    w = window.clip(0, a.shape[-1])
    seg = a[..., w.as_slice()]
    finite = np.isfinite(seg)
    count = finite.sum(axis=-1)
    total = np.where(finite, seg, 0.0).sum(axis=-1)
    out = np.full(np.shape(count), np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return float(out) if out.ndim == 0 else out
