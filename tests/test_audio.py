"""Tests for cae.audio: loading (formats, mix-down, resampling, bad input), levels, normalisation, saving."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from cae import audio
from cae.errors import AudioError

SR = 32000


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def peak_frequency(x: np.ndarray, sr: int) -> float:
    """Frequency of the largest spectral peak, refined by parabolic interpolation on the log magnitude."""
    n = 8 * x.size
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size), n=n))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n


# ------------------------------------------------------------------------------------------------ errors


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere_123.wav"
    with pytest.raises(AudioError, match="not found") as info:
        audio.load(path)
    assert "nowhere_123.wav" in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    d = tmp_path / "folder.wav"
    d.mkdir()
    with pytest.raises(AudioError, match="not a regular file") as info:
        audio.load(d)
    assert "folder.wav" in str(info.value)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage_bytes.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match="cannot read") as info:
        audio.load(path)
    assert "garbage_bytes.wav" in str(info.value)


def test_truncated_header_is_an_audio_error(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, sine(440, 0.1, SR), SR, subtype="PCM_16")
    bad = tmp_path / "truncated_header.wav"
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioError) as info:
        audio.load(bad)
    assert "truncated_header.wav" in str(info.value)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero_bytes.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty") as info:
        audio.load(path)
    assert "zero_bytes.wav" in str(info.value)


def test_zero_sample_wav(tmp_path: Path) -> None:
    path = tmp_path / "no_samples.wav"
    sf.write(path, np.zeros(0), SR, subtype="PCM_16")
    assert path.stat().st_size > 0  # a valid header, but no audio
    with pytest.raises(AudioError, match="0 samples") as info:
        audio.load(path)
    assert "no_samples.wav" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path: Path, bad: float) -> None:
    x = sine(440, 0.05, SR)
    x[123] = bad
    path = tmp_path / "has_nonfinite.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite") as info:
        audio.load(path)
    assert "has_nonfinite.wav" in str(info.value)
    assert "sample 123" in str(info.value)


def test_bad_sample_rate_argument(tmp_path: Path) -> None:
    path = tmp_path / "ok.wav"
    sf.write(path, sine(440, 0.05, SR), SR)
    with pytest.raises(ValueError):
        audio.load(path, sample_rate=0)


# ------------------------------------------------------------------------------------------------ loading


def test_mono_float_file_loads_exactly(tmp_path: Path) -> None:
    x = sine(440, 0.25, SR).astype(np.float32)
    path = tmp_path / "mono.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    y = audio.load(path)
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("channels", [2, 3])
def test_multichannel_is_averaged(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(channels)
    data = (0.3 * rng.standard_normal((SR // 10, channels))).astype(np.float32)
    path = tmp_path / f"multi{channels}.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    y, info = audio.load_with_info(path)
    expected = data.astype(np.float64).sum(axis=1) / channels
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-7)
    assert info.channels == channels and info.sample_rate == SR and info.frames == SR // 10
    assert info.subtype == "FLOAT" and info.format == "WAV"


def test_antiphase_stereo_cancels(tmp_path: Path) -> None:
    x = sine(440, 0.1, SR)
    path = tmp_path / "antiphase.wav"
    sf.write(path, np.stack([x, -x], axis=1), SR, subtype="FLOAT")
    assert np.max(np.abs(audio.load(path))) == 0.0


def test_load_channels_keeps_channels(tmp_path: Path) -> None:
    left, right = sine(440, 0.1, SR, 0.5), sine(880, 0.1, SR, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    chans, info = audio.load_channels(path)
    assert chans.shape == (2, left.size) and chans.dtype == np.float32 and info.channels == 2
    np.testing.assert_allclose(chans[0], left, atol=1e-7)
    np.testing.assert_allclose(chans[1], right, atol=1e-7)


@pytest.mark.parametrize(
    ("ext", "subtype", "bits"),
    [
        ("wav", "PCM_U8", 8),
        ("wav", "PCM_16", 16),
        ("wav", "PCM_24", 24),
        ("wav", "FLOAT", None),
        ("flac", "PCM_16", 16),
        ("flac", "PCM_24", 24),
    ],
)
def test_sample_formats_load_to_the_same_signal(tmp_path: Path, ext: str, subtype: str, bits: int | None) -> None:
    x = sine(440, 0.2, SR, amp=0.5)
    path = tmp_path / f"tone_{subtype}.{ext}"
    sf.write(path, x, SR, subtype=subtype)
    y, info = audio.load_with_info(path)
    assert info.subtype == subtype and y.size == x.size
    lsb = 0.0 if bits is None else 2.0 ** -(bits - 1)
    # rounding (0.5 LSB) plus libsndfile's 2^(b-1)-1 write / 2^(b-1) read scale mismatch (< 0.5 LSB here),
    # plus float32 output rounding
    assert np.max(np.abs(y - x)) <= 1.5 * lsb + 1e-7


def test_ogg_vorbis_loads(tmp_path: Path) -> None:
    x = sine(440, 0.5, SR, amp=0.5)
    path = tmp_path / "tone.ogg"
    sf.write(path, x, SR, format="OGG", subtype="VORBIS")
    y = audio.load(path)
    assert abs(y.size - x.size) <= 1
    n = min(x.size, y.size)
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.99


@pytest.mark.parametrize(("rate", "freq"), [(44100, 1000.0), (16000, 3000.0), (48000, 440.0)])
def test_other_rates_are_resampled(tmp_path: Path, rate: int, freq: float) -> None:
    x = sine(freq, 1.0, rate, amp=0.5)
    path = tmp_path / f"rate_{rate}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    y, info = audio.load_with_info(path)
    assert info.sample_rate == rate
    assert y.size == SR  # one second at 32 kHz
    assert abs(peak_frequency(y, SR) - freq) < 0.5
    mid = y[SR // 4 : 3 * SR // 4]  # away from filter edge effects
    assert abs(np.sqrt(np.mean(mid.astype(np.float64) ** 2)) - 0.5 / math.sqrt(2)) < 0.005


def test_load_at_other_target_rate(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, sine(1000, 0.5, SR), SR, subtype="FLOAT")
    y = audio.load(path, sample_rate=16000)
    assert y.size == 8000
    assert abs(peak_frequency(y, 16000) - 1000) < 0.5


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5000),
    sr_in=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    sr_out=st.sampled_from([16000, 32000, 44100]),
)
def test_resample_length(n: int, sr_in: int, sr_out: int) -> None:
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    y = audio.resample(x, sr_in, sr_out)
    assert y.dtype == np.float32
    assert abs(y.size - n * sr_out / sr_in) <= 0.5 + 1e-9


def test_resample_same_rate_is_a_copy() -> None:
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    y = audio.resample(x, SR, SR)
    np.testing.assert_array_equal(x, y)
    y[0] = 5.0
    assert x[0] == -1.0


# ------------------------------------------------------------------------------------------------ levels


def test_rms_and_peak_of_known_signals() -> None:
    x = sine(1000, 1.0, SR, amp=0.5).astype(np.float32)
    assert audio.rms_dbfs(x) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=1e-3)
    assert audio.peak_dbfs(x) == pytest.approx(20 * math.log10(0.5), abs=1e-3)
    assert audio.rms_dbfs(np.full(10, 0.01, np.float32)) == pytest.approx(-40.0, abs=1e-5)
    assert audio.rms_dbfs(np.zeros(10, np.float32)) == -math.inf
    assert audio.peak_dbfs(np.zeros(10, np.float32)) == -math.inf


def test_loudness_of_997hz_sine() -> None:
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS; scale to -20 dB peak.
    x = sine(997, 3.0, SR, amp=10 ** (-20 / 20)).astype(np.float32)
    assert audio.loudness_lufs(x, SR) == pytest.approx(-23.01, abs=0.1)


def test_loudness_needs_400ms() -> None:
    x = sine(997, 0.39, SR).astype(np.float32)
    with pytest.raises(AudioError, match="0.4 s"):
        audio.loudness_lufs(x, SR)
    audio.loudness_lufs(sine(997, 0.4, SR).astype(np.float32), SR)  # exactly one block is fine


def test_loudness_of_silence_is_minus_inf() -> None:
    assert audio.loudness_lufs(np.zeros(SR, np.float32), SR) == -math.inf


@pytest.mark.parametrize("target", [-30.0, -12.0, 0.0])
def test_normalisers_hit_their_targets(target: float) -> None:
    rng = np.random.default_rng(0)
    x = (0.05 * rng.standard_normal(SR)).astype(np.float32)
    before = x.copy()
    assert audio.rms_dbfs(audio.normalize_rms(x, target)) == pytest.approx(target, abs=1e-3)
    assert audio.peak_dbfs(audio.normalize_peak(x, target)) == pytest.approx(target, abs=1e-3)
    y = audio.normalize_loudness(x, SR, target - 5)
    assert y.dtype == np.float32
    assert audio.loudness_lufs(y, SR) == pytest.approx(target - 5, abs=0.01)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "call",
    [
        lambda z: audio.normalize_rms(z, -20.0),
        lambda z: audio.normalize_peak(z, -1.0),
        lambda z: audio.normalize_loudness(z, SR, -14.0),
    ],
)
def test_normalising_silence_is_a_clear_error(call) -> None:  # type: ignore[no-untyped-def]
    with np.errstate(all="raise"):  # no hidden division by zero
        with pytest.raises(AudioError, match="silent"):
            call(np.zeros(SR, np.float32))


@pytest.mark.parametrize("bad", [np.zeros((2, 10), np.float32), np.zeros(0, np.float32), np.array([0.0, np.nan])])
def test_level_functions_reject_bad_waves(bad: np.ndarray) -> None:
    with pytest.raises(AudioError):
        audio.rms_dbfs(bad)


# ------------------------------------------------------------------------------------------------ saving


def test_save_float_keeps_values_beyond_full_scale(tmp_path: Path) -> None:
    x = np.array([0.0, 1.5, -2.0, 0.25], dtype=np.float32)
    path = tmp_path / "loud.wav"
    audio.save(path, x, SR)
    assert sf.info(path).subtype == "FLOAT"
    np.testing.assert_array_equal(audio.load(path), x)


def test_save_integer_refuses_to_clip_silently(tmp_path: Path) -> None:
    x = np.array([0.0, 1.5, -0.5], dtype=np.float32)
    path = tmp_path / "would_clip.wav"
    with pytest.raises(AudioError, match="clip") as info:
        audio.save(path, x, SR, subtype="PCM_16")
    assert "would_clip.wav" in str(info.value)
    audio.save(path, x, SR, subtype="PCM_16", clip=True)
    y = audio.load(path)
    assert y[1] == pytest.approx(1.0, abs=1e-4) and y[2] == pytest.approx(-0.5, abs=1e-4)


def test_save_roundtrip_pcm16_and_resampled_rate(tmp_path: Path) -> None:
    x = sine(500, 0.5, SR, amp=0.3).astype(np.float32)
    path = tmp_path / "out16.flac"
    audio.save(path, x, SR, subtype="PCM_16")
    assert np.max(np.abs(audio.load(path) - x)) <= 2**-15 + 1e-7


def test_save_rejects_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "nan_out.wav"
    with pytest.raises(AudioError, match="non-finite") as info:
        audio.save(path, np.array([0.0, np.nan], dtype=np.float32), SR)
    assert "nan_out.wav" in str(info.value)
    assert not path.exists()
