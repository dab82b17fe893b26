"""A small codec-like tokenizer: log-mel frames at 50 Hz quantised by residual k-means (4 × 256 codes).

The reference model (:mod:`cae.reference`) has MusicGen's architecture, so it needs tokens shaped like EnCodec's:
``K = 4`` codebooks, 50 frames per second at 32 kHz (hop 640 samples), one code per codebook and frame. Training
a neural codec is out of reach on a CPU, so :class:`MelRVQTokenizer` builds the tokens from a fixed spectral
front end and a residual vector quantiser fitted by k-means.

Method
    1. **Spectrum.** Frame ``f`` is a periodic Hann window of ``n_fft = 1280`` samples (= 2 hops, no
       zero-padding) centred on the middle of its hop, sample ``f·hop + hop/2``; power spectrum
       ``|rfft(w·x)|² / (Σw)²`` (a full-scale sine gives a peak bin of 0.25).
    2. **Mel.** ``n_mels = 64`` triangular filters on the Slaney mel scale (linear below 1 kHz, logarithmic
       above; the same scale and shape as ``librosa.filters.mel(htk=False, norm=None)``: peak 1, not area
       normalised) from ``fmin = 30`` Hz to ``fmax = sample_rate / 2``; mel power = filterbank · power.
    3. **Log and normalise.** ``log(max(mel, log_floor))`` (natural log; ``log_floor = 1e-10``: a band sits at
       the floor for white noise below −74 dBFS RMS (lowest band) to −86 dBFS (top band), or a sine below about
       −97 dBFS RMS, so digital silence and 16-bit dither read alike), then per band ``(value − mean) / std``
       with ``mean``/``std`` fitted on all training frames (``std`` floored at 1e-3). These are
       :meth:`~MelRVQTokenizer.features`, float ``[F, n_mels]``.
    4. **Residual k-means.** Stage ``k`` (``k = 0 … K−1``) is a k-means codebook of ``codebook_size`` centroids
       fitted to the residual ``r_k = z − Σ_{j<k} C_j[code_j]`` left by the earlier stages (greedy k-means++ init,
       Lloyd iterations, empty clusters re-seeded at the worst-fitted frames). Encoding is greedy: per stage, the
       nearest centroid (squared Euclidean) to the current residual. Codebook 0 thus carries the coarse spectral
       envelope, later codebooks successively finer corrections, like EnCodec's RVQ.
    5. **Decoding** (approximate, to listen to tokens): ``dequantize`` (sum of stage centroids) → undo the
       normalisation → ``exp`` → mel power → linear power by non-negative least squares (multiplicative updates,
       fixed count) → magnitude → fast Griffin-Lim (momentum 0.99, fixed iteration count, phases initialised from
       ``numpy.random.default_rng(seed)``) on the same STFT. Deterministic; the output has ``F·hop`` samples.
       Phase is lost and 64 bands resolve single harmonics only in the lowest octaves, so decoded audio is a blurry
       sketch (spectral envelope, rhythm), not a faithful reconstruction. Features invert at the right level, but
       quantisation error in the log domain inflates power (``E[exp e] > 1``): on held-out synthetic music with
       4 × 256 codes, decoded RMS came out 1–5 dB above the input's.

Frame convention
    ``F = ceil(N / hop)`` frames; frame ``f`` summarises samples ``[f·hop, (f+1)·hop)``. Its window is centred at
    ``f·hop + hop/2`` and spans ``[f·hop − 320, f·hop + 960)`` (``(n_fft − hop)/2 = 320`` samples, half a hop, on
    each side of the frame's own hop). The clip is **zero-padded** (not reflected) on both sides: 320 samples
    before, and after it up to ``F·hop + 320``. Zeros mean "silence outside the clip"; they keep every frame a
    function of its own window only, work for clips of any length ≥ 1 sample, and make encoding prefix-stable:
    the first ``m − 1`` frames of ``x[:m·hop]`` equal those of ``x``, and appending silence changes nothing
    already encoded.

    Context: a frame sees half a hop of its left neighbour and half a hop of its right neighbour, so a change to
    samples ``[a, b)`` can alter frames ``floor(a/hop) − 1`` to ``ceil(b/hop)`` inclusive, i.e. **one frame of
    look-back and one of look-ahead**. For a perturbation occupying whole frames ``[s, e)`` (samples
    ``[s·hop, e·hop)``, e.g. noise starting at sample 160000 = frame 250) exactly frames ``s − 1 … e`` change: frame
    ``s − 1`` through the window overlap (its window reaches 320 samples into frame ``s``, where the Hann weight
    still is ≥ 0.5), frames ``≤ s − 2`` are bit-identical. :meth:`~MelRVQTokenizer.affected_frames` computes the
    exact range (the Hann window's zero end sample is taken into account). Why ``n_fft = 1280``: a 2048-sample
    window (the other usual choice) centred the same way reaches 1344 samples = 2.1 hops past its frame's start,
    i.e. two frames of look-back and look-ahead; 1280 = 2·hop is the Hann window with exactly 50 % overlap (a
    constant overlap-add, which keeps Griffin-Lim well conditioned), and its 25 Hz bins still put ≥ 4 bins under
    the narrowest mel triangle (the low Slaney bands are ≈ 57 Hz apart).

Fitting
    :meth:`~MelRVQTokenizer.fit` takes any iterable of mono waves, computes all log-mel frames, fits ``mean``/``std``
    on all of them, keeps at most ``max_frames`` (a seeded uniform subset) for k-means, and fits the stages in turn.
    All randomness comes from ``numpy.random.default_rng(seed)``; the arithmetic is numpy (float32 products for
    distances, float64 centroid sums), so the same seed gives the same codebooks on the same machine (BLAS builds
    may differ in the last bits elsewhere). A
    cluster that ends up empty is moved to the frame currently worst represented; codes can only stay dead when the
    data have fewer distinct frames than ``codebook_size``. Measured on 2 idle CPU cores: 100 minutes of audio
    (300 000 frames × 64 dims, 4 × 256 codes) take ≈ 4 s of log-mel and ≈ 21 s of k-means (≈ 0.1 s per Lloyd
    iteration, ≤ 30 per stage; ≈ 0.4 s of k-means++ per stage on a 16 384-frame subset).

Files
    :meth:`~MelRVQTokenizer.save` writes one uncompressed ``.npz`` (parameters and fit metadata as JSON strings,
    statistics and codebooks as float32; about 270 kB for 4 × 256 × 64), readable with ``allow_pickle=False``.
    :meth:`~MelRVQTokenizer.state_sha256` hashes the contents (not the zip container), so it is stable across saves.

>>> import numpy as np
>>> t = np.arange(2 * 32000) / 32000
>>> rng = np.random.default_rng(0)
>>> wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 0.5 < 0.3) + 0.01 * rng.standard_normal(t.size)
>>> tok = MelRVQTokenizer(codebook_size=8).fit([wave], seed=0)
>>> codes = tok.encode(wave)
>>> codes.shape, codes.dtype, tok.features(wave).shape
((4, 100), dtype('int64'), (100, 64))
>>> tok.decode(codes).shape
(64000,)
>>> tok.affected_frames(250 * 640, 350 * 640)  # noise over frames [250, 350) changes frames 249 … 350
(249, 351)

Why one module of about 700 lines: the tokenizer is one fitted object (front end, k-means, residual codebooks,
Griffin-Lim decoder) saved as one parameters file; its parts share the frame layout and the saved format, and no
other module uses them.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse

from cae.errors import CaeError

__all__ = ["MelRVQTokenizer", "NotFittedError", "TokenizerError"]

#: Version of the ``.npz`` layout written by :meth:`MelRVQTokenizer.save`.
FORMAT_VERSION = 1

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]


class TokenizerError(CaeError, ValueError):
    """Bad input to the tokenizer: waves (empty, NaN, wrong shape or dtype), codes, parameters or a bad file."""


class NotFittedError(CaeError, RuntimeError):
    """The tokenizer has no statistics or codebooks yet: call :meth:`MelRVQTokenizer.fit` or ``load`` first."""


def _is_tensor(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def _to_numpy(obj: Any) -> np.ndarray:
    """Array-likes and torch tensors (any device) → numpy, without importing torch."""
    return obj.detach().cpu().numpy() if _is_tensor(obj) else np.asarray(obj)


# --------------------------------------------------------------------------------------------------- mel scale
def _hz_to_mel(hz: FloatArray) -> FloatArray:
    """Slaney mel scale: linear (3 mels / 200 Hz) below 1 kHz, logarithmic above (same as librosa ``htk=False``)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3.0)
    logstep = math.log(6.4) / 27.0
    high = hz >= 1000.0
    return np.where(high, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / logstep, mel)


def _mel_to_hz(mel: FloatArray) -> FloatArray:
    mel = np.asarray(mel, dtype=np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), mel * (200.0 / 3.0))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> FloatArray:
    """Triangular Slaney-mel filters with peak 1, float64 ``[n_mels, n_fft // 2 + 1]``.

    Equals ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
    norm=None)`` up to rounding: at the shipped settings the float32 filterbanks are identical, the float64 ones
    differ by up to 7e-15 in 149 of 41 024 entries. The tokenizer works in float64 and the shipped ``reference-mel``
    codebooks were fitted on exactly these values, so this function stays instead of a call to librosa.

    >>> fb = mel_filterbank(32000, 1280, 64, 30.0, 16000.0)
    >>> fb.shape, bool((fb.max(axis=1) > 0.5).all()), float(fb.max()) <= 1.0
    ((64, 641), True, True)
    """
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    return np.maximum(0.0, np.minimum(lower, upper))


# --------------------------------------------------------------------------------------------------- k-means
# Plain numpy: float32 products for distances, float64 sums for centroids. Lloyd's big [16384, d] x [d, k] products
# go to BLAS; the many small ones (k-means++ steps, encoding) use single-threaded einsum, because a multi-threaded
# call costs a scheduler time slice whenever the cores are oversubscribed (e.g. ``pytest -n 2`` on 2 cores). torch
# is not used: its OpenMP pool has the same problem on every call.
def _assign(x: np.ndarray, x_sq: np.ndarray, c: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row of ``x`` ``[n, d]`` among ``c`` ``[k, d]`` → (labels int64 ``[n]``, d² ``[n]``).

    Ties go to the lowest index.
    """
    c_sq = (c * c).sum(1)
    labels = np.empty(x.shape[0], dtype=np.int64)
    dist = np.empty(x.shape[0], dtype=x.dtype)
    for lo in range(0, x.shape[0], chunk):
        hi = min(lo + chunk, x.shape[0])
        d = x[lo:hi] @ c.T
        d *= -2.0
        d += c_sq
        idx = d.argmin(axis=1)
        labels[lo:hi] = idx
        dist[lo:hi] = np.take_along_axis(d, idx[:, None], axis=1)[:, 0] + x_sq[lo:hi]
    np.maximum(dist, 0.0, out=dist)
    return labels, dist


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (``2 + ln k`` candidates per centre, keep the one lowering the potential most) → ``[k, d]``."""
    n = x.shape[0]
    x_sq = (x * x).sum(1)
    trials = 2 + int(math.log(k))
    centres = np.empty((k, x.shape[1]), dtype=x.dtype)
    first = int(rng.integers(n))
    centres[0] = x[first]
    closest = np.maximum(x_sq + x_sq[first] - 2.0 * (x @ x[first]), 0.0)
    for c in range(1, k):
        cum = np.cumsum(closest, dtype=np.float64)
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1], side="right"), n - 1)
        d = np.einsum("td,nd->tn", x[cand], x)  # [T, n]; einsum: many small products, see encode()
        d *= -2.0
        d += x_sq
        d += x_sq[cand][:, None]
        np.maximum(d, 0.0, out=d)
        np.minimum(d, closest, out=d)
        best = int(d.sum(axis=1, dtype=np.float64).argmin())
        closest = d[best]
        centres[c] = x[cand[best]]
    return centres


def _relocate_empty(x: np.ndarray, labels: np.ndarray, dist: np.ndarray, empty: np.ndarray,
                    centres: np.ndarray) -> int:
    """Move each empty centroid onto a distinct worst-fitted row of ``x`` (in place); returns how many moved."""
    order = np.argsort(-dist, kind="stable")[: 64 * len(empty)]
    order = order[dist[order] > 1e-12]
    _, first = np.unique(x[order], axis=0, return_index=True)  # drop duplicate rows, keep the worst-fitted copy
    chosen = order[np.sort(first)][: len(empty)].tolist()
    for cluster, i in zip(empty, chosen):
        centres[cluster] = x[i]
        labels[i] = cluster
        dist[i] = 0.0
    return len(chosen)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int, tol: float, init_size: int
            ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Lloyd's k-means on float32 ``x`` ``[n, d]`` → (centroids ``[k, d]``, labels ``[n]``, info).

    Init: greedy k-means++ on a random subset of ``init_size`` rows. Then at most ``iters`` Lloyd iterations,
    stopping when the mean squared error improves by less than ``tol`` (relative); an empty cluster is moved
    onto the worst-fitted row. The returned labels are the nearest centroids of the returned centroids.
    """
    n = x.shape[0]
    x_sq = (x * x).sum(1)
    sub = x if n <= init_size else x[np.sort(rng.choice(n, size=init_size, replace=False))]
    centres = _kmeans_pp(sub, k, rng)
    rows = np.arange(n)
    prev = math.inf
    done = relocated = extra = 0
    while True:
        labels, dist = _assign(x, x_sq, centres)
        inertia = float(dist.sum(dtype=np.float64))
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if done >= iters:
            # These labels feed the next stage's residual: repair clusters they leave empty (bounded).
            if len(empty) == 0 or extra >= 10:
                break
            extra += 1
        elif math.isfinite(prev) and prev - inertia <= tol * prev and len(empty) == 0:
            break
        if len(empty):
            relocated += _relocate_empty(x, labels, dist, empty, centres)
            counts = np.bincount(labels, minlength=k)
        onehot = scipy.sparse.csr_matrix((np.ones(n), (labels, rows)), shape=(k, n))
        sums = onehot @ x.astype(np.float64)
        live = counts > 0
        centres[live] = (sums[live] / counts[live, None]).astype(x.dtype)
        prev = inertia
        done += 1
    info = {"iterations": done, "relocated": relocated, "mse": inertia / x.size,
            "used_codes": int((np.bincount(labels, minlength=k) > 0).sum())}
    return centres, labels, info


# --------------------------------------------------------------------------------------------------- tokenizer
class MelRVQTokenizer:
    """Log-mel frames (50 Hz at 32 kHz) quantised by a residual k-means quantiser; see the module docstring.

    Args:
        sample_rate: audio rate in Hz.
        hop: samples per frame (``sample_rate / hop`` frames per second).
        n_fft: window and FFT length in samples; even, ``≥ hop``, ``n_fft − hop`` even (the window is centred on
            its hop). 1280 gives one frame of look-back/look-ahead at hop 640.
        n_mels: mel bands (feature dimension ``D``).
        fmin, fmax: mel range in Hz (``fmax=None``: ``sample_rate / 2``).
        num_codebooks: residual stages ``K``.
        codebook_size: codes per stage ``C``.
        log_floor: mel power floor before the natural log.

    Attributes (after :meth:`fit` or :meth:`load`):
        mean, std: float32 ``[n_mels]`` per-band statistics of the log-mel.
        codebooks: float32 ``[K, C, n_mels]`` stage centroids in normalised feature space.
        fit_info: dict of fit metadata (seed, frame counts, per-stage iterations / MSE / used codes).
    """

    def __init__(self, *, sample_rate: int = 32000, hop: int = 640, n_fft: int = 1280, n_mels: int = 64,
                 fmin: float = 30.0, fmax: float | None = None, num_codebooks: int = 4, codebook_size: int = 256,
                 log_floor: float = 1e-10):
        fmax = sample_rate / 2.0 if fmax is None else fmax
        ints = {"sample_rate": sample_rate, "hop": hop, "n_fft": n_fft, "n_mels": n_mels,
                "num_codebooks": num_codebooks, "codebook_size": codebook_size}
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise TokenizerError(f"{name} must be a positive integer, got {value!r}")
        if n_fft < hop or n_fft % 2 or (n_fft - hop) % 2:
            raise TokenizerError(f"n_fft must be even, >= hop and n_fft - hop even; got n_fft={n_fft}, hop={hop}")
        if not 0.0 <= float(fmin) < float(fmax) <= sample_rate / 2.0:
            raise TokenizerError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}")
        if not (math.isfinite(log_floor) and log_floor > 0):
            raise TokenizerError(f"log_floor must be a positive number, got {log_floor!r}")
        self.sample_rate = int(sample_rate)
        self.hop = int(hop)
        self.n_fft = int(n_fft)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.num_codebooks = int(num_codebooks)
        self.codebook_size = int(codebook_size)
        self.log_floor = float(log_floor)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.n_fft) / self.n_fft))  # periodic Hann
        self.mel_basis = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)
        if not (self.mel_basis.max(axis=1) > 0).all():
            raise TokenizerError(f"some of the {n_mels} mel filters between {fmin} and {fmax} Hz contain no FFT bin; "
                                 "use fewer mels, a wider range or a longer n_fft")
        self._analysis_window = self.window / self.window.sum()
        self._mel_sparse = scipy.sparse.csc_matrix(self.mel_basis.T)  # [bins, n_mels]; ≤ 2 filters per bin
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.codebooks: np.ndarray | None = None
        self.fit_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ parameters and conventions
    @property
    def pad_left(self) -> int:
        """Samples of the window before its frame's hop: ``(n_fft − hop) / 2`` (320)."""
        return (self.n_fft - self.hop) // 2

    @property
    def frame_rate(self) -> float:
        """Frames per second, ``sample_rate / hop`` (50.0)."""
        return self.sample_rate / self.hop

    @property
    def is_fitted(self) -> bool:
        return self.codebooks is not None

    def params(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict; ``MelRVQTokenizer(**tok.params())`` rebuilds the front end."""
        return {"sample_rate": self.sample_rate, "hop": self.hop, "n_fft": self.n_fft, "n_mels": self.n_mels,
                "fmin": self.fmin, "fmax": self.fmax, "num_codebooks": self.num_codebooks,
                "codebook_size": self.codebook_size, "log_floor": self.log_floor}

    def num_frames(self, num_samples: int) -> int:
        """``ceil(num_samples / hop)``.

        >>> MelRVQTokenizer().num_frames(32000 * 15), MelRVQTokenizer().num_frames(641)
        (750, 2)
        """
        return -(-int(num_samples) // self.hop)

    def affected_frames(self, start: int, stop: int, num_samples: int | None = None) -> tuple[int, int]:
        """Frames ``[first, end)`` whose value can depend on samples ``[start, stop)``.

        Frame ``f``'s window is non-zero on samples ``f·hop − pad_left + 1 … f·hop − pad_left + n_fft − 1``
        (the periodic Hann window's first sample is 0). Clipped to ``[0, num_frames(num_samples))`` when
        ``num_samples`` is given, at 0 otherwise.

        >>> tok = MelRVQTokenizer()
        >>> tok.affected_frames(160000, 160001), tok.affected_frames(160320, 160321)
        ((249, 251), (250, 251))
        >>> tok.affected_frames(0, 640, num_samples=640)
        (0, 1)
        """
        start, stop = int(start), int(stop)
        if stop <= start:
            return (0, 0)
        first = -(-(start + self.pad_left - self.n_fft + 1) // self.hop)
        last = (stop - 2 + self.pad_left) // self.hop
        first = max(first, 0)
        end = last + 1
        if num_samples is not None:
            end = min(end, self.num_frames(num_samples))
        return (first, max(first, end))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"MelRVQTokenizer({args}, fitted={self.is_fitted})"

    # ------------------------------------------------------------------ front end
    def _check_wave(self, wave: Any, what: str = "wave") -> tuple[np.ndarray, bool]:
        """Validate ``[N]`` or ``[B, N]`` float audio → (float64 ``[B, N]``, was single)."""
        arr = _to_numpy(wave)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)):
            hint = " (scale integer PCM to [-1, 1] first)" if np.issubdtype(arr.dtype, np.integer) else ""
            raise TokenizerError(f"{what} must hold floating-point samples, got dtype {arr.dtype}{hint}")
        if arr.ndim not in (1, 2):
            raise TokenizerError(f"{what} must be mono audio [N] or a batch [B, N], got shape {arr.shape}")
        if arr.size == 0:
            raise TokenizerError(f"{what} is empty (shape {arr.shape})")
        if not np.isfinite(arr).all():
            raise TokenizerError(f"{what} contains NaN or infinite samples")
        single = arr.ndim == 1
        return np.atleast_2d(arr).astype(np.float64, copy=False), single

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """``[B, N]`` → zero-padded ``[B, F·hop + n_fft − hop]``: frame ``f``'s window starts at ``f·hop``."""
        frames = self.num_frames(x.shape[-1])
        out = np.zeros((x.shape[0], frames * self.hop + self.n_fft - self.hop), dtype=np.float64)
        out[:, self.pad_left:self.pad_left + x.shape[-1]] = x
        return out

    def _stft(self, padded: np.ndarray, frames: int) -> np.ndarray:
        """Padded ``[B, L]`` → complex ``[B, F, n_fft // 2 + 1]``, scaled by ``1 / Σw``."""
        view = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft, axis=-1)[:, ::self.hop][:, :frames]
        return np.fft.rfft(view * self._analysis_window, axis=-1)

    def _log_mel(self, x: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Float64 ``[B, N]`` → un-normalised log-mel float64 ``[B, F, n_mels]``."""
        frames = self.num_frames(x.shape[-1])
        padded = self._pad(x)
        out = np.empty((x.shape[0], frames, self.n_mels), dtype=np.float64)
        span = chunk * self.hop
        for f0 in range(0, frames, chunk):
            n = min(chunk, frames - f0)
            spec = self._stft(padded[:, f0 * self.hop:f0 * self.hop + span + self.n_fft - self.hop], n)
            power = spec.real ** 2 + spec.imag ** 2
            mel = (power.reshape(-1, power.shape[-1]) @ self._mel_sparse).reshape(power.shape[:-1] + (self.n_mels,))
            out[:, f0:f0 + n] = np.log(np.maximum(mel, self.log_floor))
        return out

    def _require_fitted(self) -> None:
        if self.codebooks is None or self.mean is None or self.std is None:
            raise NotFittedError("MelRVQTokenizer is not fitted: call .fit(waves) or MelRVQTokenizer.load(path) first")

    def features(self, wave: Any) -> np.ndarray:
        """Normalised log-mel features, float32 ``[F, n_mels]`` (or ``[B, F, n_mels]`` for ``[B, N]`` input).

        ``F = ceil(N / hop)``; see the module docstring for the frame convention.
        """
        self._require_fitted()
        x, single = self._check_wave(wave)
        z = (self._log_mel(x) - self.mean.astype(np.float64)) / self.std.astype(np.float64)
        z = z.astype(np.float32)
        return z[0] if single else z

    # ------------------------------------------------------------------ fitting
    def fit(self, waves: Iterable[Any], *, seed: int = 0, max_frames: int = 300_000, iters: int = 30,
            tol: float = 1e-4) -> MelRVQTokenizer:
        """Fit the normalisation statistics and the residual codebooks; returns ``self``.

        Args:
            waves: iterable of mono float waves ``[N_i]`` (any lengths; a ``[B, N]`` array counts as B waves) at
                :attr:`sample_rate`.
            seed: seeds ``numpy.random.default_rng``: frame subset and k-means++ draws.
            max_frames: at most this many frames (a uniform random subset of all frames) train the codebooks; the
                statistics use every frame.
            iters: maximum Lloyd iterations per stage (stops earlier when the mean squared error improves by less
                than ``tol`` relative).
            tol: relative improvement threshold for early stopping.
        """
        if isinstance(waves, np.ndarray) or _is_tensor(waves):
            arr = _to_numpy(waves)
            waves = [arr] if arr.ndim == 1 else list(arr)
        if int(iters) < 1 or int(max_frames) < self.codebook_size:
            raise TokenizerError(f"need iters >= 1 and max_frames >= codebook_size ({self.codebook_size}), "
                                 f"got iters={iters}, max_frames={max_frames}")
        feats = []
        for i, wave in enumerate(waves):
            x, _ = self._check_wave(wave, what=f"waves[{i}]")
            feats.append(self._log_mel(x).reshape(-1, self.n_mels).astype(np.float32))
        if not feats:
            raise TokenizerError("fit() got no waves")
        data = np.concatenate(feats)
        del feats
        total = data.shape[0]
        if total < self.codebook_size:
            raise TokenizerError(f"fit() needs at least codebook_size = {self.codebook_size} frames, got {total}")
        mean = data.mean(axis=0, dtype=np.float64)
        std = np.maximum(data.std(axis=0, dtype=np.float64), 1e-3)
        rng = np.random.default_rng(seed)
        if total > max_frames:
            data = data[np.sort(rng.choice(total, size=int(max_frames), replace=False))]
        z = ((data - mean) / std).astype(np.float32)
        del data
        books = np.empty((self.num_codebooks, self.codebook_size, self.n_mels), dtype=np.float32)
        stages = []
        residual = z
        init_size = max(64 * self.codebook_size, 4096)
        for k in range(self.num_codebooks):
            centres, labels, info = _kmeans(residual, self.codebook_size, rng, int(iters), float(tol), init_size)
            books[k] = centres
            residual -= centres[labels]
            stages.append(info)
        self.mean = mean.astype(np.float32)
        self.std = std.astype(np.float32)
        self._set_codebooks(books)
        self.fit_info = {
            "seed": int(seed), "max_frames": int(max_frames), "iters": int(iters), "tol": float(tol),
            "frames_seen": int(total), "frames_used": int(z.shape[0]),
            "stage_iterations": [s["iterations"] for s in stages],
            "stage_relocated": [s["relocated"] for s in stages],
            "stage_used_codes": [s["used_codes"] for s in stages],
            "stage_mse": [round(s["mse"], 8) for s in stages],
        }
        return self

    def _set_codebooks(self, books: np.ndarray) -> None:
        self.codebooks = np.ascontiguousarray(books, dtype=np.float32)
        self._books_t = np.ascontiguousarray(self.codebooks.transpose(0, 2, 1))  # [K, D, C]
        self._books_sq = (self.codebooks * self.codebooks).sum(-1)  # [K, C]

    # ------------------------------------------------------------------ codes
    def encode(self, wave: Any) -> IntArray:
        """Audio → codes, int64 ``[K, F]`` for ``[N]`` input, ``[B, K, F]`` for ``[B, N]``; ``F = ceil(N / hop)``.

        Greedy residual quantisation: per stage, the nearest centroid (squared Euclidean, float32, ties to the
        lowest index) to the residual. Distances use ``numpy.einsum`` rather than a BLAS product: a multi-threaded
        BLAS call costs a scheduler time slice (≈ 5 ms) whenever the cores are oversubscribed (``pytest -n 2`` on 2
        cores), which made a 15 s clip take ≈ 50 ms instead of ≈ 15 ms; einsum is single-threaded and its result
        does not depend on the BLAS library or its thread count.
        """
        self._require_fitted()
        x, single = self._check_wave(wave)
        z = (self._log_mel(x) - self.mean.astype(np.float64)) / self.std.astype(np.float64)
        batch, frames = z.shape[:2]
        r = z.reshape(-1, self.n_mels).astype(np.float32)
        codes = np.empty((self.num_codebooks, r.shape[0]), dtype=np.int64)
        for k in range(self.num_codebooks):
            d = np.einsum("nd,dc->nc", r, self._books_t[k])  # single-threaded on purpose (see above)
            d *= -2.0
            d += self._books_sq[k]
            codes[k] = d.argmin(axis=1)
            r -= self.codebooks[k][codes[k]]
        codes = codes.reshape(self.num_codebooks, batch, frames).transpose(1, 0, 2)
        codes = np.ascontiguousarray(codes)
        return codes[0] if single else codes

    def _check_codes(self, codes: Any) -> tuple[np.ndarray, bool]:
        arr = _to_numpy(codes)
        if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
            raise TokenizerError(f"codes must be integers, got dtype {arr.dtype}")
        if arr.ndim not in (2, 3):
            raise TokenizerError(f"codes must be [K, F] or [B, K, F], got shape {arr.shape}")
        if arr.shape[-1] == 0 or arr.shape[-2] == 0 or (arr.ndim == 3 and arr.shape[0] == 0):
            raise TokenizerError(f"codes are empty (shape {arr.shape})")
        if arr.shape[-2] > self.num_codebooks:
            raise TokenizerError(f"codes have {arr.shape[-2]} codebooks, the tokenizer {self.num_codebooks}")
        if arr.min() < 0 or arr.max() >= self.codebook_size:
            raise TokenizerError(f"codes must lie in [0, {self.codebook_size}), got range "
                                 f"[{int(arr.min())}, {int(arr.max())}]")
        single = arr.ndim == 2
        return (arr[None] if single else arr).astype(np.int64, copy=False), single

    def dequantize(self, codes: Any) -> np.ndarray:
        """Codes ``[K', F]`` (or ``[B, K', F]``) → features float32 ``[F, n_mels]`` (``[B, F, n_mels]``).

        The sum of the centroids of the first ``K' ≤ K`` stages, so ``codes[:k]`` gives the ``k``-stage
        approximation of :meth:`features`.
        """
        self._require_fitted()
        arr, single = self._check_codes(codes)
        out = np.zeros((arr.shape[0], arr.shape[2], self.n_mels), dtype=np.float64)
        for k in range(arr.shape[1]):
            out += self.codebooks[k][arr[:, k]]
        out = out.astype(np.float32)
        return out[0] if single else out

    # ------------------------------------------------------------------ decoding
    def _istft(self, spec: np.ndarray, length: int) -> np.ndarray:
        """Complex ``[B, F, bins]`` → weighted overlap-add, cropped to the clip: float64 ``[B, length]``."""
        batch, frames = spec.shape[:2]
        seg = np.fft.irfft(spec * self.window.sum(), n=self.n_fft, axis=-1) * self.window
        total = frames * self.hop + self.n_fft - self.hop
        out = np.zeros((batch, total))
        env = np.zeros(total)
        w2 = self.window ** 2
        if self.n_fft % self.hop == 0:  # the window is whole hops long: add hop-sized blocks, no frame loop
            for j in range(self.n_fft // self.hop):
                block = slice(j * self.hop, (j + 1) * self.hop)
                out[:, j * self.hop:j * self.hop + frames * self.hop] += seg[:, :, block].reshape(batch, -1)
                env[j * self.hop:j * self.hop + frames * self.hop] += np.tile(w2[block], frames)
        else:
            for f in range(frames):
                s = f * self.hop
                out[:, s:s + self.n_fft] += seg[:, f]
                env[s:s + self.n_fft] += w2
        lo = self.pad_left
        return out[:, lo:lo + length] / np.maximum(env[lo:lo + length], 1e-8)

    def _mel_to_power(self, mel: np.ndarray, n_iter: int = 50) -> np.ndarray:
        """Mel power ``[..., n_mels]`` → non-negative linear power ``[..., bins]`` ≈ argmin ‖S Mᵀ − mel‖ (NNLS).

        Multiplicative updates ``S ← S · (mel M) / (S Mᵀ M)`` from the even spread ``S₀ = (mel / rowsum M) M``.
        """
        shape = mel.shape[:-1]
        mel = mel.reshape(-1, self.n_mels)
        sparse = self._mel_sparse  # Mᵀ, [bins, n_mels]
        s = np.asarray((mel / self.mel_basis.sum(axis=1)) @ sparse.T)
        target = np.asarray(mel @ sparse.T)
        for _ in range(n_iter):
            s *= target / np.maximum(np.asarray((s @ sparse) @ sparse.T), 1e-30)
        s = s.reshape(shape + (s.shape[-1],))
        return s

    def decode(self, codes: Any, *, n_iter: int = 32, seed: int = 0) -> np.ndarray:
        """Approximate audio from codes: float32 ``[F·hop]`` (or ``[B, F·hop]`` for ``[B, K', F]`` codes).

        ``features_to_wave(dequantize(codes), n_iter=n_iter, seed=seed)``: the same codes, ``n_iter`` and ``seed``
        give the same samples.
        """
        return self.features_to_wave(self.dequantize(codes), n_iter=n_iter, seed=seed)

    def features_to_wave(self, features: Any, *, n_iter: int = 32, seed: int = 0) -> np.ndarray:
        """Normalised log-mel ``[F, n_mels]`` (or ``[B, F, n_mels]``) → float32 audio ``[F·hop]`` (``[B, F·hop]``).

        Undo the normalisation, ``exp``, mel → linear power by NNLS, then ``n_iter`` iterations of fast Griffin-Lim
        (momentum 0.99) with initial phases from ``numpy.random.default_rng(seed)``, on the analysis STFT (same
        window, hop and zero padding; the signal outside the clip is held at zero).
        """
        self._require_fitted()
        feats = np.asarray(_to_numpy(features), dtype=np.float64)
        if feats.ndim not in (2, 3) or feats.shape[-1] != self.n_mels or feats.shape[-2] == 0:
            raise TokenizerError(f"features must be [F, {self.n_mels}] or [B, F, {self.n_mels}] with F >= 1, "
                                 f"got shape {feats.shape}")
        if not np.isfinite(feats).all():
            raise TokenizerError("features contain NaN or infinite values")
        if int(n_iter) < 0:
            raise TokenizerError(f"n_iter must be >= 0, got {n_iter}")
        single = feats.ndim == 2
        feats = feats[None] if single else feats
        log_mel = feats * self.std.astype(np.float64) + self.mean.astype(np.float64)
        mag = np.sqrt(self._mel_to_power(np.exp(log_mel)))  # [B, F, bins]
        frames = feats.shape[1]
        length = frames * self.hop
        rng = np.random.default_rng(seed)
        angles = np.exp(2j * np.pi * rng.random(mag.shape))
        rebuilt = np.zeros_like(angles)
        alpha = 0.99 / 1.99
        for _ in range(int(n_iter)):
            prev = rebuilt
            y = self._istft(mag * angles, length)
            rebuilt = self._stft(self._pad(y), frames)
            angles = rebuilt - alpha * prev
            angles /= np.abs(angles) + 1e-16
        y = self._istft(mag * angles, length).astype(np.float32)
        return y[0] if single else y

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {
            "format_version": np.asarray(FORMAT_VERSION, dtype=np.int64),
            "params": np.asarray(json.dumps(self.params(), sort_keys=True)),
            "fit_info": np.asarray(json.dumps(self.fit_info, sort_keys=True)),
            "mean": np.ascontiguousarray(self.mean, dtype=np.float32),
            "std": np.ascontiguousarray(self.std, dtype=np.float32),
            "codebooks": np.ascontiguousarray(self.codebooks, dtype=np.float32),
        }

    def state_sha256(self) -> str:
        """SHA-256 (hex) of parameters, fit metadata, statistics and codebooks; equal for equal tokenizers.

        Hashes each entry's name, dtype, shape and little-endian bytes in name order, not the ``.npz``
        container, so it survives save/load and does not depend on file timestamps.
        """
        h = hashlib.sha256(b"cae.MelRVQTokenizer\0")
        for name, arr in sorted(self._state().items()):
            if arr.dtype.kind == "U":
                data = str(arr[()]).encode("utf-8")
                dtype = "str"
            else:
                arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
                data = np.ascontiguousarray(arr).tobytes()
                dtype = arr.dtype.str
            h.update(f"{name}|{dtype}|{arr.shape}|{len(data)}\0".encode())
            h.update(data)
        return h.hexdigest()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer to one uncompressed ``.npz`` (``path`` is used as given; no suffix is added)."""
        buf = io.BytesIO()
        np.savez(buf, **self._state())
        with open(path, "wb") as fh:
            fh.write(buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MelRVQTokenizer:
        """Read a tokenizer written by :meth:`save` (no pickle)."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                state = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise TokenizerError(f"{path}: cannot read a tokenizer .npz ({exc})") from exc
        missing = {"format_version", "params", "fit_info", "mean", "std", "codebooks"} - set(state)
        if missing:
            raise TokenizerError(f"{path}: not a MelRVQTokenizer file (missing {sorted(missing)})")
        if int(state["format_version"]) != FORMAT_VERSION:
            raise TokenizerError(f"{path}: format version {int(state['format_version'])}, expected {FORMAT_VERSION}")
        tok = cls(**json.loads(str(state["params"][()])))
        shape = (tok.num_codebooks, tok.codebook_size, tok.n_mels)
        if state["codebooks"].shape != shape or state["mean"].shape != (tok.n_mels,) or \
                state["std"].shape != (tok.n_mels,):
            raise TokenizerError(f"{path}: array shapes do not match the parameters (codebooks "
                                 f"{state['codebooks'].shape}, expected {shape})")
        tok.mean = state["mean"].astype(np.float32)
        tok.std = state["std"].astype(np.float32)
        tok.fit_info = json.loads(str(state["fit_info"][()]))
        tok._set_codebooks(state["codebooks"])
        return tok
