"""How complex is a token stream, measured without the model: compressors and an adaptive Markov code.

Likelihood models give *higher* likelihood to simpler inputs (Serrà et al., ICLR 2020: "Input complexity and
out-of-distribution detection with likelihood-based generative models"): a lower loss can mean a simpler input
rather than a more familiar one. Noise that the codec maps to a few repeated tokens is a very simple input. The
fix Serrà et al. propose is to subtract a *complexity estimate* ``L`` — the code length of the same input under a
general-purpose lossless compressor — from the model's negative log-likelihood: ``S = NLL − L``. Here the input
is the scored token stream itself (codebook ``k``'s tokens, ``[F]``), so ``L`` measures how predictable the tokens
are to a model that knows nothing about music.

Two estimates (:func:`markov_code_length` and :func:`window_code_length` in **nats per token**, so that they
subtract from the model's NLL directly; :func:`compressed_bits` in bits per token, as compressors are usually
quoted):

* :func:`markov_code_length`: an adaptive order-``k`` Markov code. Token ``t`` costs ``−log p(x_t | x_{t−k..t−1})``
  under counts of what followed the same context so far, with the Krichevsky–Trofimov estimator
  ``p = (n(context, x) + ½) / (n(context) + V/2)`` over the codebook's ``V`` symbols. It is sequential, so it gives
  a per-token cost aligned with the model's per-token NLL: the complexity-corrected curve is ``nll − cost``.
* :func:`compressed_bits`: the size of a general compressor's output (``lzma``, ``bz2`` or ``zlib`` from the standard
  library) for the tokens as 16-bit integers, minus the size of its output for an empty input (its fixed header),
  per token. For a window inside a clip, :func:`window_code_length` uses the *conditional* size
  ``C(prefix + window) − C(prefix)``, which is how many bytes the window adds when the compressor has seen the
  clip up to it.

What to expect (tested): a constant stream costs almost nothing (the Markov code's cost of the ``n``-th token
falls like ``(V − 1) / (2n)``, its average over the stream like ``log(n) / n``), an i.i.d. uniform stream over ``N``
symbols costs ``log N`` nats per token, and a periodic stream costs almost nothing once the order reaches the
period.
"""

from __future__ import annotations

import bz2
import lzma
import math
import zlib
from collections.abc import Callable

import numpy as np

__all__ = ["COMPRESSORS", "compressed_bits", "markov_code_length", "window_code_length"]

#: LZMA2 at its strongest preset, raw (no container header) with a 1 MiB dictionary: streams here are kilobytes, and
#: the default 64 MiB dictionary only costs an allocation per call (50× slower for the same output).
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 20}]
#: Lossless compressors from the standard library, at their strongest settings.
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS),
    "bz2": lambda b: bz2.compress(b, 9),
    "zlib": lambda b: zlib.compress(b, 9),
}


def _as_tokens(tokens: np.ndarray | list[int]) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"tokens must be one stream [F], got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= 2**16):
        raise ValueError("tokens must lie in [0, 65536)")
    return arr.astype(np.int64, copy=False)


def markov_code_length(tokens: np.ndarray | list[int], *, order: int = 1, alphabet: int | None = None) -> np.ndarray:
    """Per-token cost (nats) of an adaptive order-``order`` Markov code with the Krichevsky–Trofimov estimator.

    Args:
        tokens: one stream ``[F]`` of integers in ``[0, alphabet)``.
        order: context length (0: an adaptive unigram code).
        alphabet: number of symbols ``V`` (default: ``max(tokens) + 1``; pass the codebook size for tokens).

    Returns:
        Float64 ``[F]``: ``cost[t] = −log p(x_t | x_{t−order..t−1})`` from the counts of tokens ``< t``. The first
        ``order`` tokens use the shorter context they have.

    >>> c = markov_code_length([0] * 1000, order=0, alphabet=4)
    >>> bool(c[0] == np.log(4)), bool(c[-1] < 0.01)
    (True, True)
    """
    x = _as_tokens(tokens)
    v = int(alphabet if alphabet is not None else (x.max() + 1 if x.size else 1))
    if x.size and x.max() >= v:
        raise ValueError(f"a token ({x.max()}) lies outside the alphabet of {v} symbols")
    if order < 0:
        raise ValueError("order must be >= 0")
    counts: dict[tuple[int, ...], dict[int, int]] = {}
    totals: dict[tuple[int, ...], int] = {}
    out = np.empty(x.size, dtype=np.float64)
    seq = x.tolist()
    for t, sym in enumerate(seq):
        ctx = tuple(seq[max(0, t - order):t])
        seen = counts.setdefault(ctx, {})
        n_ctx = totals.get(ctx, 0)
        out[t] = -math.log((seen.get(sym, 0) + 0.5) / (n_ctx + 0.5 * v))
        seen[sym] = seen.get(sym, 0) + 1
        totals[ctx] = n_ctx + 1
    return out


def compressed_bits(tokens: np.ndarray | list[int], method: str = "lzma") -> float:
    """Bits per token of a general compressor's output for the stream (header size subtracted).

    >>> rng = np.random.default_rng(0)
    >>> compressed_bits(np.zeros(4000, int)) < 0.2 < 7.0 < compressed_bits(rng.integers(0, 256, 4000))
    True
    """
    x = _as_tokens(tokens)
    if x.size == 0:
        raise ValueError("an empty stream has no bits per token")
    compress = _compressor(method)
    return 8.0 * (len(compress(x.astype("<u2").tobytes())) - len(compress(b""))) / x.size


def window_code_length(tokens: np.ndarray | list[int], start: int, stop: int, method: str = "lzma") -> float:
    """Nats per token that the window ``[start, stop)`` adds to the compressed stream after its prefix:
    ``(C(x[:stop]) − C(x[:start])) / (stop − start)``, in nats."""
    x = _as_tokens(tokens)
    if not 0 <= start < stop <= x.size:
        raise ValueError(f"window [{start}, {stop}) is not inside a stream of {x.size} tokens")
    compress = _compressor(method)
    size = lambda a: len(compress(a.astype("<u2").tobytes()))  # noqa: E731
    return 8.0 * math.log(2) * (size(x[:stop]) - size(x[:start])) / (stop - start)


def _compressor(method: str) -> Callable[[bytes], bytes]:
    if method not in COMPRESSORS:
        raise ValueError(f"unknown compressor {method!r}; one of {sorted(COMPRESSORS)}")
    return COMPRESSORS[method]
