"""Audio input/output, resampling and level measurement.

Everything downstream of this module works on one representation: a mono ``float32`` waveform of shape
``[N]`` at a known sample rate (32 kHz for MusicGen's EnCodec). This module gets audio into that form and
measures and sets its level.

Loading (:func:`load`, :func:`load_with_info`, :func:`load_channels`)
    Reads whatever libsndfile (via ``soundfile``) reads: WAV, FLAC, OGG/Vorbis, ...; 8-bit unsigned,
    16/24/32-bit signed integer and float samples. Integer samples are scaled to [-1, 1) by libsndfile
    (16-bit: ``k / 32768``). Multichannel audio is **mixed to mono by averaging the channels**
    (``mean`` over channels, not a sum), as the authors' scoring scripts do (``audio.mean(dim=0)``): a
    signal present identically in every channel keeps its level, independent content per channel is
    attenuated (two independent equal-level channels → −3 dB), and anti-phase content cancels. If the
    file's rate differs from the requested one, the mono signal is resampled with ``soxr`` at
    :data:`RESAMPLE_QUALITY` (``"HQ"``); the result has ``round(N · sr_out / sr_in)`` samples.
    Anything unusable raises :class:`~cae.errors.AudioError` naming the file: missing, not a file,
    0 bytes, unreadable/corrupt, 0 samples, or NaN/Inf samples.

Levels (:func:`rms_dbfs`, :func:`peak_dbfs`, :func:`loudness_lufs`)
    dBFS is relative to a full scale of 1.0: ``rms_dbfs = 20·log10(sqrt(mean(x²)))``. This is the
    convention of the paper's noise levels (unit-std noise × 10^(dB/20) has an RMS of that many dBFS);
    under it a full-scale sine measures −3.01 dBFS (AES17 would call it 0 dBFS). Loudness is ITU-R
    BS.1770-4 integrated loudness (K-weighting, 400 ms blocks, −70 LUFS absolute and −10 LU relative
    gates) computed by ``pyloudnorm``, which needs at least 0.4 s of audio.

Normalisation (:func:`normalize_rms`, :func:`normalize_peak`, :func:`normalize_loudness`)
    A single gain that brings the measure to the target. Silent input raises instead of dividing by
    zero. Nothing is clipped: results may exceed ±1, which :func:`save`'s default float WAV keeps.

Saving (:func:`save`)
    32-bit float WAV by default, so perturbed audio (e.g. −12 dBFS Gaussian noise, whose peaks pass 0 dBFS)
    is never clipped silently. Integer subtypes refuse out-of-range samples unless ``clip=True``.

>>> import numpy as np
>>> x = np.full(32000, 0.1, dtype=np.float32)
>>> round(rms_dbfs(x), 6)
-20.0
>>> y = normalize_rms(x, -30.0)
>>> round(rms_dbfs(y), 6), y.dtype
(-30.0, dtype('float32'))
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyloudnorm
import soundfile as sf
import soxr

from cae.errors import AudioError
from cae.types import Wave

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "LOUDNESS_MIN_SECONDS",
    "RESAMPLE_QUALITY",
    "AudioInfo",
    "load",
    "load_with_info",
    "load_channels",
    "resample",
    "rms_dbfs",
    "peak_dbfs",
    "loudness_lufs",
    "normalize_rms",
    "normalize_peak",
    "normalize_loudness",
    "save",
]

#: MusicGen's EnCodec works at 32 kHz (hop 640 samples → 50 frames per second).
DEFAULT_SAMPLE_RATE = 32000
#: soxr quality preset used for every resampling ("HQ": 20-bit precision, linear phase).
RESAMPLE_QUALITY = "HQ"
#: BS.1770 integrated loudness needs at least one 400 ms gating block.
LOUDNESS_MIN_SECONDS = 0.4

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class AudioInfo:
    """What a file held before conversion, for provenance records.

    Attributes:
        path: The path as given to the loader.
        sample_rate: The file's sample rate in Hz (before any resampling).
        channels: Number of channels in the file (before the mono mix-down).
        frames: Samples per channel in the file.
        format: libsndfile container name, e.g. ``"WAV"``, ``"FLAC"``.
        subtype: libsndfile sample format, e.g. ``"PCM_16"``, ``"FLOAT"``.
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        """Duration of the file in seconds (``frames / sample_rate``)."""
        return self.frames / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return asdict(self)


def _check_rate(sample_rate: int, what: str = "sample_rate") -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"{what} must be a positive integer number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _read(path: PathLike) -> tuple[npt.NDArray[np.float64], AudioInfo]:
    """Read a file as float64 ``[frames, channels]`` and check it; every failure names the file."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise AudioError(name, "file not found")
    if not os.path.isfile(name):
        raise AudioError(name, "not a regular file")
    if os.path.getsize(name) == 0:
        raise AudioError(name, "file is empty (0 bytes)")
    try:
        data, rate = sf.read(name, dtype="float64", always_2d=True)
        meta = sf.info(name)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(name, f"cannot read audio (corrupt or unsupported format): {exc}") from exc
    info = AudioInfo(
        path=name,
        sample_rate=int(rate),
        channels=int(data.shape[1]),
        frames=int(data.shape[0]),
        format=str(meta.format),
        subtype=str(meta.subtype),
    )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(name, "audio has 0 samples")
    finite = np.isfinite(data)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise AudioError(
            name, f"audio contains non-finite samples (NaN/Inf) in {bad.size} frame(s), first at sample {bad[0]}"
        )
    return data, info


def load_channels(path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> tuple[npt.NDArray[np.float32], AudioInfo]:
    """Load a file keeping its channels (for per-channel processing before a mix-down).

    Args:
        path: Audio file (anything libsndfile reads).
        sample_rate: Output rate in Hz; the file is resampled with soxr if its rate differs.

    Returns:
        ``(channels, info)``: ``channels`` is float32 of shape ``[C, N]``; ``info`` describes the file.

    Raises:
        AudioError: The file is missing, empty, unreadable, has 0 samples, or has NaN/Inf samples.
    """
    sample_rate = _check_rate(sample_rate)
    data, info = _read(path)
    if info.sample_rate != sample_rate:
        data = soxr.resample(data, info.sample_rate, sample_rate, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(data.T, dtype=np.float32), info


def load_with_info(path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> tuple[Wave, AudioInfo]:
    """Load a file as mono float32 at ``sample_rate`` and say what the file was.

    Channels are averaged (mean, not sum) before resampling; see the module docstring.

    Args:
        path: Audio file (anything libsndfile reads).
        sample_rate: Output rate in Hz; the file is resampled with soxr if its rate differs.

    Returns:
        ``(wave, info)``: ``wave`` is float32 of shape ``[N]`` with ``N = round(frames · sample_rate /
        info.sample_rate)``; ``info`` holds the original rate, channels, frames, format and subtype.

    Raises:
        AudioError: The file is missing, empty, unreadable, has 0 samples, or has NaN/Inf samples.
    """
    sample_rate = _check_rate(sample_rate)
    data, info = _read(path)
    mono = data.mean(axis=1)
    if info.sample_rate != sample_rate:
        mono = soxr.resample(mono, info.sample_rate, sample_rate, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(mono, dtype=np.float32), info


def header_shortfall(path: PathLike) -> str | None:
    """For a WAV file whose ``data`` chunk header promises more bytes than the file holds (a truncated copy, an
    interrupted write), a sentence saying how many samples it promised and how many it holds; else ``None``.
    libsndfile reads such files without a word, returning only the samples present.

    >>> import tempfile, soundfile as sf
    >>> f = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
    >>> sf.write(f, np.zeros(1000, np.float32), 8000, subtype="PCM_16")
    >>> header_shortfall(f) is None
    True
    >>> _ = open(f, "r+b").truncate(44 + 600)
    >>> header_shortfall(f)
    'the WAV header promises 1000 samples per channel but the file holds 300'
    """
    import struct

    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                return None
            size = os.path.getsize(name)
            block, channels = 0, 1
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(clen)
                    channels, block = struct.unpack("<H", fmt[2:4])[0], struct.unpack("<H", fmt[12:14])[0]
                    fh.seek(clen % 2, 1)
                    continue
                if cid == b"data":
                    if clen == 0xFFFFFFFF or block == 0:  # RF64 / streaming placeholder: nothing promised
                        return None
                    held = size - fh.tell()
                    if clen > held:
                        return (f"the WAV header promises {clen // block} samples per channel but the file holds "
                                f"{held // block}")
                    return None
                fh.seek(clen + clen % 2, 1)
    except (OSError, struct.error):
        return None


def load(path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Wave:
    """Load a file as a mono float32 waveform at ``sample_rate`` (channels averaged, soxr resampling).

    Args:
        path: Audio file (anything libsndfile reads: WAV/FLAC/OGG, 8/16/24-bit integer or float).
        sample_rate: Output rate in Hz (default 32000).

    Returns:
        Wave of shape ``[N]``, float32.

    Raises:
        AudioError: The file is missing, empty, unreadable, has 0 samples, or has NaN/Inf samples;
            the message starts with the path.
    """
    return load_with_info(path, sample_rate)[0]


def wave_problem(x: np.ndarray, what: str = "wave") -> str | None:
    """What makes ``x`` unusable as a mono waveform (``[N]``, N ≥ 1, finite floating-point samples), or ``None``.
    Callers raise it as their own error (:class:`~cae.errors.AudioError`, a perturbation's error, ...).

    >>> wave_problem(np.zeros((2, 3)))
    'wave must be 1-D (mono, shape [N]), got shape (2, 3)'
    >>> wave_problem(np.zeros(3, dtype=np.int16)), wave_problem(np.zeros(3))
    ('wave must hold floating-point samples, got dtype int16', None)
    """
    if x.ndim != 1:
        return f"{what} must be 1-D (mono, shape [N]), got shape {x.shape}"
    if x.size == 0:
        return f"{what} is empty (0 samples)"
    if not np.issubdtype(x.dtype, np.floating):
        return f"{what} must hold floating-point samples, got dtype {x.dtype}"
    if not np.isfinite(x).all():
        return f"{what} contains non-finite samples (NaN/Inf)"
    return None


def _as_wave(wave: npt.ArrayLike, what: str = "wave") -> npt.NDArray[np.float64]:
    x = np.asarray(wave)
    problem = wave_problem(x, what)
    if problem:
        raise AudioError(None, problem)
    return x.astype(np.float64, copy=False)


def resample(wave: Wave, sr_in: int, sr_out: int) -> Wave:
    """Resample a mono waveform with soxr (quality :data:`RESAMPLE_QUALITY`).

    Args:
        wave: Shape ``[N]``.
        sr_in: Rate of ``wave`` in Hz.
        sr_out: Wanted rate in Hz.

    Returns:
        New float32 array of shape ``[round(N · sr_out / sr_in)]`` (a copy when the rates are equal).

    >>> import numpy as np
    >>> resample(np.zeros(44100, dtype=np.float32), 44100, 32000).shape
    (32000,)
    """
    sr_in = _check_rate(sr_in, "sr_in")
    sr_out = _check_rate(sr_out, "sr_out")
    x = _as_wave(wave)
    if sr_in != sr_out:
        x = soxr.resample(x, sr_in, sr_out, quality=RESAMPLE_QUALITY)
    return np.array(x, dtype=np.float32)


def _db(amplitude: float) -> float:
    return -math.inf if amplitude == 0.0 else 20.0 * math.log10(amplitude)


def rms_dbfs(wave: Wave) -> float:
    """RMS level in dB relative to full scale 1.0: ``20·log10(sqrt(mean(x²)))``.

    Args:
        wave: Shape ``[N]``, N ≥ 1.

    Returns:
        Level in dBFS; ``-inf`` for digital silence.

    >>> import numpy as np
    >>> round(rms_dbfs(np.ones(10, dtype=np.float32)), 6), rms_dbfs(np.zeros(4, dtype=np.float32))
    (0.0, -inf)
    """
    x = _as_wave(wave)
    return _db(math.sqrt(float(np.mean(x * x))))


def peak_dbfs(wave: Wave) -> float:
    """Sample-peak level in dBFS: ``20·log10(max|x|)`` (no inter-sample/true-peak estimation).

    Args:
        wave: Shape ``[N]``, N ≥ 1.

    Returns:
        Peak in dBFS; ``-inf`` for digital silence.

    >>> import numpy as np
    >>> round(peak_dbfs(np.array([0.0, -0.5, 0.25], dtype=np.float32)), 3)
    -6.021
    """
    x = _as_wave(wave)
    return _db(float(np.max(np.abs(x))))


def loudness_lufs(wave: Wave, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated (gated) loudness of a mono signal, via ``pyloudnorm``.

    Args:
        wave: Shape ``[N]`` with ``N ≥ 0.4 · sample_rate`` (one gating block).
        sample_rate: Rate of ``wave`` in Hz.

    Returns:
        Loudness in LUFS; ``-inf`` if every block is below the −70 LUFS absolute gate (e.g. silence).

    Raises:
        AudioError: The signal is shorter than 0.4 s, not 1-D, or not finite.
    """
    sample_rate = _check_rate(sample_rate)
    x = _as_wave(wave)
    need = math.ceil(LOUDNESS_MIN_SECONDS * sample_rate)
    if x.size < need:
        raise AudioError(
            None,
            f"loudness needs at least {LOUDNESS_MIN_SECONDS} s ({need} samples at {sample_rate} Hz), "
            f"got {x.size} samples ({x.size / sample_rate:.3f} s)",
        )
    if not np.any(x):
        return -math.inf
    with np.errstate(divide="ignore", invalid="ignore"):  # pyloudnorm takes log10(0) of silent blocks
        return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))


def _apply_gain(x: npt.NDArray[np.float64], gain_db: float) -> Wave:
    return (x * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def normalize_rms(wave: Wave, target_dbfs: float) -> Wave:
    """Scale so that :func:`rms_dbfs` equals ``target_dbfs``.

    Args:
        wave: Shape ``[N]``.
        target_dbfs: Wanted RMS level in dBFS.

    Returns:
        New float32 array of shape ``[N]`` (not clipped).

    Raises:
        AudioError: The input is silent (RMS 0).
    """
    x = _as_wave(wave)
    level = rms_dbfs(x)
    if level == -math.inf:
        raise AudioError(None, "cannot RMS-normalise silent audio (RMS is 0)")
    return _apply_gain(x, target_dbfs - level)


def normalize_peak(wave: Wave, target_dbfs: float) -> Wave:
    """Scale so that :func:`peak_dbfs` equals ``target_dbfs`` (e.g. ``-1.0``).

    Args:
        wave: Shape ``[N]``.
        target_dbfs: Wanted sample peak in dBFS.

    Returns:
        New float32 array of shape ``[N]``.

    Raises:
        AudioError: The input is silent (peak 0).

    >>> import numpy as np
    >>> normalize_peak(np.array([0.25, -0.5], dtype=np.float32), 0.0).tolist()
    [0.5, -1.0]
    """
    x = _as_wave(wave)
    level = peak_dbfs(x)
    if level == -math.inf:
        raise AudioError(None, "cannot peak-normalise silent audio (peak is 0)")
    return _apply_gain(x, target_dbfs - level)


def normalize_loudness(wave: Wave, sample_rate: int, target_lufs: float) -> Wave:
    """Scale so that :func:`loudness_lufs` equals ``target_lufs`` (e.g. ``-14.0``, audiocraft's default).

    Gating makes loudness exactly proportional to gain, so one gain suffices.

    Args:
        wave: Shape ``[N]``, at least 0.4 s long.
        sample_rate: Rate of ``wave`` in Hz.
        target_lufs: Wanted integrated loudness in LUFS.

    Returns:
        New float32 array of shape ``[N]`` (not clipped).

    Raises:
        AudioError: The input is shorter than 0.4 s, or silent / entirely below the −70 LUFS gate.
    """
    x = _as_wave(wave)
    level = loudness_lufs(x, sample_rate)
    if not math.isfinite(level):
        raise AudioError(None, "cannot loudness-normalise silent audio (all blocks below the -70 LUFS gate)")
    return _apply_gain(x, target_lufs - level)


def save(path: PathLike, wave: Wave, sample_rate: int, subtype: str = "FLOAT", *, clip: bool = False) -> None:
    """Write a mono waveform; the container follows the file extension (``.wav``, ``.flac``, ...).

    Args:
        path: Output file; its parent folder must exist.
        wave: Shape ``[N]``, finite.
        sample_rate: Rate in Hz.
        subtype: libsndfile subtype. ``"FLOAT"`` (default) stores any value exactly as float32, so nothing
            clips. Integer subtypes (``"PCM_16"``, ...) quantise.
        clip: For integer subtypes only: if False (default), samples outside [-1, 1] raise; if True they
            are clipped to [-1, 1] first (what writing 16-bit files silently did in the authors' code).

    Raises:
        AudioError: The wave is not 1-D/finite, or would clip in an integer subtype with ``clip=False``,
            or libsndfile cannot write the file (the message names the path).
    """
    name = os.fspath(path)
    sample_rate = _check_rate(sample_rate)
    try:
        x = _as_wave(wave)
    except AudioError as exc:
        raise AudioError(name, exc.problem) from None
    is_float = subtype.upper() in ("FLOAT", "DOUBLE")
    if not is_float:
        over = int(np.count_nonzero(np.abs(x) > 1.0))
        if over and not clip:
            raise AudioError(
                name, f"{over} sample(s) exceed full scale and would clip in subtype {subtype}; use FLOAT or clip=True"
            )
        x = np.clip(x, -1.0, 1.0)
    out = x.astype(np.float32) if subtype.upper() == "FLOAT" else x
    try:
        sf.write(name, out, sample_rate, subtype=subtype)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(name, f"cannot write audio: {exc}") from exc
