"""Tests for cae.perturb: positions, levels, colours, determinism, shuffles, serialisation (the paper's presets:
test_paper.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SR, music, rms_db

from cae import perturb as P
from cae.audio import loudness_lufs
from cae.errors import PerturbationError
from cae.perturb import (
    BlockSwap,
    Delete,
    Noise,
    RandomPairSwaps,
    SegmentSwap,
    Silence,
    Span,
    from_dict,
)
from cae.paper import paper_noise

HOP = 640
FAST = settings(max_examples=25, deadline=None)


def ramp(n: int) -> np.ndarray:
    """Sample i holds value i (exact in float32 below 2^24), so an output reveals where each sample came from."""
    assert n < 2**24
    return np.arange(n, dtype=np.float32)


def all_kinds() -> list[P.Perturbation]:
    span = Span(250, 50)
    return [
        Noise(span),
        Noise(Span(5.0, 1.0, unit="s"), colour="pink", mode="add", level_db=10.0, reference="snr-rms", seed=3),
        Noise(span, colour="butter-brown", level_db=0.0, reference="snr-lufs", crossfade_ms=5.0, seed=9),
        Noise(Span(160000, 3200, unit="samples"), colour="violet", legacy_rng=True, seed=7),
        Silence(span),
        Delete(Span(1.5, 0.25, unit="s")),
        BlockSwap(span),
        RandomPairSwaps(10, start=0, stop=350, budget=0.3, seed=4),
        RandomPairSwaps(5),
        SegmentSwap(50, start=10, stop=390, seed=2),
        SegmentSwap(20, frame_rate=25.0),
        paper_noise(100, "trainset", file_index=3, channel=1),
    ]


# ------------------------------------------------------------------------------------------------ Span


def test_frames_convert_exactly() -> None:
    assert Span(250, 100).to_samples(32000) == (160000, 224000)
    assert Span(250, 5).to_samples(16000) == (80000, 81600)
    assert Span(250, 100).to_samples(44100) == (220500, 308700)  # hop 882
    assert Span(3, 2, frame_rate=75.0).to_samples(24000) == (960, 1600)  # hop 320
    assert Span(160000, 3200, unit="samples").to_samples(12345) == (160000, 163200)


@FAST
@given(onset=st.integers(0, 2000), length=st.integers(1, 500), sr=st.sampled_from([16000, 32000, 44100, 48000]))
def test_frames_positions_and_lengths(onset: int, length: int, sr: int) -> None:
    hop = sr // 50
    start, stop = Span(onset, length).to_samples(sr)
    assert start == onset * hop and stop - start == length * hop


def test_non_integral_hop_is_an_error() -> None:
    with pytest.raises(PerturbationError, match="non-integral hop"):
        Span(10, 5, frame_rate=48.0).to_samples(32000)  # 666.67 samples per frame
    with pytest.raises(PerturbationError, match="non-integral hop"):
        Noise(Span(10, 5, frame_rate=75.0)).apply(music(1.0), SR)
    with pytest.raises(PerturbationError, match="non-integral hop"):
        RandomPairSwaps(5, frame_rate=75.0).apply(music(1.0), SR)


def test_seconds_round_to_nearest_sample() -> None:
    # binary-exact cases at 8 Hz: 0.1875 s = 1.5 samples (half rounds up), 0.25 s = 2 samples, 0.4375 s = 3.5
    assert Span(0.1875, 0.25, unit="s").to_samples(8) == (2, 4)
    assert Span(0.0, 0.4375, unit="s").to_samples(8) == (0, 4)
    assert Span(0.2, 0.3, unit="s").to_samples(8) == (2, 4)  # 1.6 -> 2, 2.4 -> 2
    assert Span(5.0, 0.1, unit="s").to_samples(32000) == (160000, 163200)
    assert Span(5.0, 0.1, unit="s").to_samples(44100) == (220500, 224910)
    with pytest.raises(PerturbationError, match="half a sample"):
        Span(1.0, 1e-6, unit="s").to_samples(32000)


@FAST
@given(onset=st.floats(0, 20), length=st.floats(1e-3, 5), sr=st.sampled_from([16000, 32000, 44100]))
def test_seconds_within_half_a_sample(onset: float, length: float, sr: int) -> None:
    start, stop = Span(onset, length, unit="s").to_samples(sr)
    assert abs(start - onset * sr) <= 0.5 + 1e-6
    assert abs((stop - start) - length * sr) <= 0.5 + 1e-6


def test_span_validation() -> None:
    with pytest.raises(PerturbationError):
        Span(-1, 10)
    with pytest.raises(PerturbationError):
        Span(1, 0)
    with pytest.raises(PerturbationError, match="whole number"):
        Span(1.5, 10)
    with pytest.raises(PerturbationError):
        Span(1, 10, unit="ms")
    with pytest.raises(PerturbationError):
        Span(1, 10, frame_rate=0.0)
    assert Span(250.0, 100.0) == Span(250, 100) and isinstance(Span(250.0, 100.0).onset, int)


def test_clip_too_short_message() -> None:
    x = music(6.0)  # 192000 samples; 250+100 frames end at 224000
    with pytest.raises(PerturbationError) as info:
        Noise(Span(250, 100)).apply(x, SR)
    msg = str(info.value)
    assert "6.000 s" in msg and "7.000 s" in msg and "224000" in msg


@pytest.mark.parametrize(
    "p",
    [
        Noise(Span(250, 100)),
        Silence(Span(250, 100)),
        Delete(Span(250, 100)),
        BlockSwap(Span(250, 50)),  # needs 250 + 2*50 = 350 frames = 7 s
        RandomPairSwaps(5, stop=350),
        SegmentSwap(5, stop=350),
    ],
    ids=lambda p: p.label,
)
def test_every_kind_rejects_a_short_clip(p: P.Perturbation) -> None:
    with pytest.raises(PerturbationError, match="clip is 6.000 s"):
        p.apply(music(6.0), SR)


# ------------------------------------------------------------------------------------------------ Noise: placement


@pytest.mark.parametrize("span", [Span(250, 5), Span(250, 200), Span(3.3, 0.77, unit="s"), Span(0, 7)])
def test_replace_touches_only_the_span(span: Span) -> None:
    x = music(10.0)
    y = Noise(span, level_db=-20.0, seed=1).apply(x, SR)
    start, stop = span.to_samples(SR)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y[:start], x[:start])
    np.testing.assert_array_equal(y[stop:], x[stop:])
    inside = y[start:stop].astype(np.float64)
    # the music is gone: the span holds noise uncorrelated with it at the requested level
    assert abs(np.corrcoef(inside, x[start:stop])[0, 1]) < 0.2
    assert rms_db(inside) == pytest.approx(-20.0, abs=0.1)


def test_replace_writes_noise_even_over_silence() -> None:
    y = Noise(Span(250, 100)).apply(np.zeros(SR * 8, np.float32), SR)
    nz = np.flatnonzero(y)
    assert nz[0] == 160000 and nz[-1] == 223999


def test_add_mode_keeps_the_music_underneath() -> None:
    x = music()
    span = Span(250, 100)
    y = Noise(span, mode="add", level_db=-30.0, seed=5).apply(x, SR)
    start, stop = span.to_samples(SR)
    np.testing.assert_array_equal(y[:start], x[:start])
    np.testing.assert_array_equal(y[stop:], x[stop:])
    added = y[start:stop].astype(np.float64) - x[start:stop]
    assert rms_db(added) == pytest.approx(-30.0, abs=0.1)
    assert abs(np.corrcoef(added, x[start:stop])[0, 1]) < 0.1


# ------------------------------------------------------------------------------------------------ Noise: levels


@pytest.mark.parametrize("colour", P.COLOURS)
@pytest.mark.parametrize(("length", "level"), [(5, -30.0), (100, -12.0)])
def test_dbfs_level(colour: str, length: int, level: float) -> None:
    span = Span(250, length)
    y = Noise(span, colour=colour, level_db=level, seed=11).apply(music(), SR)
    start, stop = span.to_samples(SR)
    assert rms_db(y[start:stop]) == pytest.approx(level, abs=0.1)


@pytest.mark.parametrize("snr", [-10.0, 0.0, 20.0])
@pytest.mark.parametrize("colour", ["white", "butter-blue", "brown"])
def test_snr_rms_level(snr: float, colour: str) -> None:
    x = music()
    span = Span(250, 50)
    y = Noise(span, colour=colour, level_db=snr, reference="snr-rms", seed=2).apply(x, SR)
    start, stop = span.to_samples(SR)
    # SNR is against the RMS of the whole clean clip
    assert rms_db(x) - rms_db(y[start:stop]) == pytest.approx(snr, abs=0.1)


@pytest.mark.parametrize("snr", [-10.0, 0.0, 10.0])
@pytest.mark.parametrize("colour", ["white", "butter-pink", "pink", "blue"])
def test_snr_lufs_level(snr: float, colour: str) -> None:
    x = music(6.0)
    span = Span(2.0, 2.0, unit="s")  # long enough to meter the noise on its own
    y = Noise(span, colour=colour, level_db=snr, reference="snr-lufs", seed=4).apply(x, SR)
    start, stop = span.to_samples(SR)
    noise_lufs = loudness_lufs(y[start:stop], SR)
    assert loudness_lufs(x, SR) - noise_lufs == pytest.approx(snr, abs=0.5)


def test_snr_lufs_differs_from_snr_rms_for_coloured_noise() -> None:
    # K-weighting boosts highs: at the same SNR, high-passed noise must get a lower RMS under snr-lufs than
    # low-passed noise.
    x = music(6.0)
    span = Span(2.0, 1.0, unit="s")
    start, stop = span.to_samples(SR)
    hi = Noise(span, colour="butter-blue", level_db=0.0, reference="snr-lufs").apply(x, SR)[start:stop]
    lo = Noise(span, colour="butter-brown", level_db=0.0, reference="snr-lufs").apply(x, SR)[start:stop]
    assert rms_db(hi) < rms_db(lo) - 1.0


def test_snr_references_need_a_usable_clip() -> None:
    with pytest.raises(PerturbationError, match="silent"):
        Noise(Span(10, 5), reference="snr-rms").apply(np.zeros(SR, np.float32), SR)
    with pytest.raises(PerturbationError, match="silent"):
        Noise(Span(10, 5), reference="snr-lufs").apply(np.zeros(SR, np.float32), SR)
    with pytest.raises(PerturbationError, match="0.4 s"):
        Noise(Span(1, 5), reference="snr-lufs").apply(music(0.3), SR)


# ------------------------------------------------------------------------------------------------ Noise: crossfade


def test_crossfade_is_a_raised_cosine_inside_the_span() -> None:
    x = music()
    span = Span(250, 50)
    start, stop = span.to_samples(SR)
    fade = 160  # 5 ms at 32 kHz
    hard = Noise(span, seed=8).apply(x, SR)
    soft = Noise(span, seed=8, crossfade_ms=5.0).apply(x, SR)
    assert soft.shape == x.shape
    np.testing.assert_array_equal(soft[:start], x[:start])
    np.testing.assert_array_equal(soft[stop:], x[stop:])
    np.testing.assert_array_equal(soft[start + fade : stop - fade], hard[start + fade : stop - fade])
    # the noise gain, read off with silent music, rises 0 -> 1 as a raised cosine and falls symmetrically
    silent = np.zeros_like(x)
    gain_in = Noise(span, seed=8, crossfade_ms=5.0).apply(silent, SR)[start : start + fade] / hard[start : start + fade]
    gain_out = Noise(span, seed=8, crossfade_ms=5.0).apply(silent, SR)[stop - fade : stop] / hard[stop - fade : stop]
    i = np.arange(fade)
    np.testing.assert_allclose(gain_in, np.sin(np.pi * (i + 0.5) / (2 * fade)) ** 2, atol=1e-5)
    np.testing.assert_allclose(gain_out, gain_in[::-1], atol=1e-5)
    # the music gets the complementary gain
    music_part = soft[start : start + fade].astype(np.float64) - gain_in * hard[start : start + fade]
    np.testing.assert_allclose(music_part, (1 - gain_in) * x[start : start + fade], atol=1e-6)


def test_crossfade_must_fit() -> None:
    with pytest.raises(PerturbationError, match="crossfade"):
        Noise(Span(250, 5), crossfade_ms=60.0).apply(music(), SR)  # 2 x 60 ms > 100 ms


# ------------------------------------------------------------------------------------------------ Noise: randomness


def test_same_seed_same_audio_different_seed_different() -> None:
    x = music()
    a = Noise(Span(250, 50), seed=1).apply(x, SR)
    np.testing.assert_array_equal(a, Noise(Span(250, 50), seed=1).apply(x, SR))
    assert not np.array_equal(a, Noise(Span(250, 50), seed=2).apply(x, SR))
    # rng=int overrides the field; a Generator is used as is
    np.testing.assert_array_equal(Noise(Span(250, 50), seed=99).apply(x, SR, rng=1), a)
    np.testing.assert_array_equal(Noise(Span(250, 50)).apply(x, SR, rng=np.random.default_rng(1)), a)
    g = np.random.default_rng(1)
    first, second = Noise(Span(250, 50)).apply(x, SR, rng=g), Noise(Span(250, 50)).apply(x, SR, rng=g)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # the Generator advanced


@pytest.mark.parametrize("colour", P.COLOURS)
def test_every_colour_is_deterministic(colour: str) -> None:
    x = music(7.0)
    p = Noise(Span(250, 20), colour=colour, seed=5)
    np.testing.assert_array_equal(p.apply(x, SR), p.apply(x, SR))
    assert not np.array_equal(p.apply(x, SR), Noise(Span(250, 20), colour=colour, seed=6).apply(x, SR))


def test_legacy_rng_reproduces_the_authors_recipe() -> None:
    # Protocol page: Noise injection, Published numbers: np.random.seed(42 + i); n = randn(L*640); n / std(n) * 10^(dB/20); audio[160000:...] = n
    x = music(15.0)
    y = paper_noise(100, "ood", file_index=75).apply(x, SR)
    legacy = np.random.RandomState(117).standard_normal(64000)
    expected = (legacy / legacy.std() * 10 ** (-30 / 20)).astype(np.float32)
    np.testing.assert_array_equal(y[160000:224000], expected)
    np.testing.assert_array_equal(y[:160000], x[:160000])
    np.testing.assert_array_equal(y[224000:], x[224000:])
    with pytest.raises(PerturbationError, match="legacy"):
        paper_noise(100, "ood").apply(x, SR, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------ Noise: spectra


def log_psd(colour: str, n: int = 2**17, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD of a noise burst produced through Noise.apply (zeros around it, only the burst analysed)."""
    span = Span(0, n, unit="samples")
    y = Noise(span, colour=colour, level_db=-20.0, seed=seed).apply(np.zeros(n, np.float32), SR)
    f, pxx = scipy.signal.welch(y.astype(np.float64), fs=SR, nperseg=4096)
    return f, pxx


@pytest.mark.parametrize(
    ("colour", "alpha"), [("white", 0.0), ("pink", 1.0), ("brown", 2.0), ("blue", -1.0), ("violet", -2.0)]
)
def test_power_law_slopes(colour: str, alpha: float) -> None:
    f, pxx = log_psd(colour)
    band = (f >= 100) & (f <= 8000)
    slope = np.polyfit(np.log10(f[band]), np.log10(pxx[band]), 1)[0]
    assert slope == pytest.approx(-alpha, abs=0.1)


@pytest.mark.parametrize(
    ("colour", "order", "cutoff_hz", "lowpass"),
    [("butter-pink", 1, 3200.0, True), ("butter-brown", 2, 1600.0, True), ("butter-blue", 1, 8000.0, False)],
)
def test_butterworth_minus_3db_points(colour: str, order: int, cutoff_hz: float, lowpass: bool) -> None:
    n = 2**20  # long burst + short Welch segments + 9-bin smoothing: ~0.05 dB estimation noise
    y = Noise(Span(0, n, unit="samples"), colour=colour, level_db=-20.0, seed=0).apply(np.zeros(n, np.float32), SR)
    f, pxx = scipy.signal.welch(y.astype(np.float64), fs=SR, nperseg=2048)
    pxx = np.convolve(pxx, np.ones(9) / 9, mode="same")
    ref = pxx[(f >= 50) & (f <= 300)].mean() if lowpass else pxx[(f >= 15000) & (f <= 15800)].mean()
    rel = 10 * np.log10(pxx / ref)
    if lowpass:  # first bin below -3 dB walking up from the passband
        i = np.flatnonzero((rel < -3.0) & (f >= 50))[0]
        f3 = np.interp(-3.0, [rel[i], rel[i - 1]], [f[i], f[i - 1]])
    else:  # first bin at or above -3 dB walking up towards the passband
        i = np.flatnonzero(rel >= -3.0)[0]
        f3 = np.interp(-3.0, [rel[i - 1], rel[i]], [f[i - 1], f[i]])
    assert f3 == pytest.approx(cutoff_hz, rel=0.05)
    # the whole shape is the Butterworth magnitude of that order (spec: cutoff as a fraction of Nyquist)
    b, a = scipy.signal.butter(order, cutoff_hz / (SR / 2), btype="low" if lowpass else "high")
    _, h = scipy.signal.freqz(b, a, worN=f, fs=SR)
    theory = 20 * np.log10(np.abs(h) + 1e-300)
    band = (f >= 300) & (f <= 14000) & (theory > -20)
    np.testing.assert_allclose(rel[band], theory[band], atol=0.5)


# ------------------------------------------------------------------------------------------------ Silence, Delete


def test_silence_zeroes_only_the_span() -> None:
    x = music()
    y = Silence(Span(250, 100)).apply(x, SR)
    assert not np.any(y[160000:224000])
    np.testing.assert_array_equal(y[:160000], x[:160000])
    np.testing.assert_array_equal(y[224000:], x[224000:])


@FAST
@given(onset=st.integers(0, 300), length=st.integers(1, 100))
def test_delete_removes_exactly_the_span(onset: int, length: int) -> None:
    sr, fr = 1000, 50.0  # hop 20 keeps this fast
    x = ramp(sr * 10)
    y = Delete(Span(onset, length, frame_rate=fr)).apply(x, sr)
    s, e = onset * 20, (onset + length) * 20
    assert y.size == x.size - (e - s)
    np.testing.assert_array_equal(y, np.concatenate([x[:s], x[e:]]))


# ------------------------------------------------------------------------------------------------ order perturbations


def test_block_swap_positions() -> None:
    x = ramp(SR * 8)
    y = BlockSwap(Span(250, 50)).apply(x, SR)
    a, b, c = 160000, 160000 + 50 * HOP, 160000 + 100 * HOP
    np.testing.assert_array_equal(y[a : a + (c - b)], x[b:c])
    np.testing.assert_array_equal(y[a + (c - b) : c], x[a:b])
    np.testing.assert_array_equal(y[:a], x[:a])
    np.testing.assert_array_equal(y[c:], x[c:])
    np.testing.assert_array_equal(np.sort(y), x)  # same multiset (x is sorted)


def test_block_swap_needs_frames() -> None:
    with pytest.raises(PerturbationError, match="frames"):
        BlockSwap(Span(5.0, 1.0, unit="s"))


def blocks_of(y: np.ndarray, block: int) -> list[int]:
    """For a permuted ramp, the source block index of each output block (checking blocks stayed intact)."""
    out = []
    for i in range(y.size // block):
        chunk = y[i * block : (i + 1) * block]
        src = int(chunk[0]) // block
        np.testing.assert_array_equal(chunk, np.arange(src * block, (src + 1) * block, dtype=np.float32))
        out.append(src)
    return out


@FAST
@given(
    length=st.integers(1, 12),
    budget=st.sampled_from([0.1, 0.2, 0.5, 1.0]),
    start=st.integers(0, 20),
    frames=st.integers(30, 200),
    seed=st.integers(0, 10_000),
)
def test_random_pair_swaps_are_disjoint_adjacent_pairs(
    length: int, budget: float, start: int, frames: int, seed: int
) -> None:
    sr, fr, hop = 1000, 50.0, 20
    stop = start + frames
    pairs = math.floor(budget * frames / (2 * length) + 1e-9)
    x = ramp((stop + 7) * hop)
    p = RandomPairSwaps(length, start=start, stop=stop, budget=budget, frame_rate=fr, seed=seed)
    if pairs == 0:
        with pytest.raises(PerturbationError, match="budget"):
            p.apply(x, sr)
        return
    y = p.apply(x, sr)
    np.testing.assert_array_equal(np.sort(y), x)
    frame_src = blocks_of(y, hop)  # every frame intact, at frame granularity
    moved = [i for i, s in enumerate(frame_src) if s != i]
    assert len(moved) == 2 * pairs * length <= budget * frames + 1e-9
    assert all(start <= i < stop for i in moved)
    # decompose moved frames into swapped pairs of adjacent L-frame blocks on the grid start + k*L
    i, seen = 0, 0
    while i < len(moved):
        a = moved[i]
        assert (a - start) % length == 0
        block_a, block_b = list(range(a, a + length)), list(range(a + length, a + 2 * length))
        assert moved[i : i + 2 * length] == block_a + block_b  # contiguous: pairs do not overlap
        assert [frame_src[j] for j in block_a] == block_b and [frame_src[j] for j in block_b] == block_a
        i += 2 * length
        seen += 1
    assert seen == pairs
    assert p.plan(x.size, sr) == [moved[k * 2 * length] for k in range(pairs)]


def test_random_pair_swaps_defaults_and_determinism() -> None:
    x = music(14.0)
    p = RandomPairSwaps(10, seed=3)  # whole clip (700 frames), 20 % budget -> 7 pairs
    y = p.apply(x, SR)
    assert not np.array_equal(y, x)
    np.testing.assert_array_equal(np.sort(y), np.sort(x))
    np.testing.assert_array_equal(y, p.apply(x, SR))
    assert not np.array_equal(y, RandomPairSwaps(10, seed=4).apply(x, SR))
    assert len(p.plan(x.size, SR)) == 7


def test_random_pair_swaps_all_pair_placements_occur() -> None:
    # 6 blocks, 2 pairs: non-overlapping placements of two dominoes on 6 cells = C(4, 2) = 6
    seen = {tuple(RandomPairSwaps(1, stop=6, budget=2 / 3, seed=s).plan(6 * HOP, SR)) for s in range(200)}
    assert seen == {(0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 4)}


@FAST
@given(length=st.integers(1, 40), start=st.integers(0, 30), frames=st.integers(80, 200), seed=st.integers(0, 10_000))
def test_segment_swap_moves_two_disjoint_segments(length: int, start: int, frames: int, seed: int) -> None:
    sr, hop = 1000, 20
    stop = start + frames
    x = ramp((stop + 3) * hop)
    p = SegmentSwap(length, start=start, stop=stop, frame_rate=50.0, seed=seed)
    y = p.apply(x, sr)
    np.testing.assert_array_equal(np.sort(y), x)
    src = blocks_of(y, hop)
    a, b = p.plan(x.size, sr)
    assert start <= a and a + length <= b and b + length <= stop
    expected = list(range(len(src)))
    expected[a : a + length], expected[b : b + length] = range(b, b + length), range(a, a + length)
    assert src == expected


def test_segment_swap_changes_audio_and_errors() -> None:
    x = music(14.0)
    y = SegmentSwap(100, stop=700, seed=1).apply(x, SR)
    assert not np.array_equal(y, x)
    np.testing.assert_array_equal(np.sort(y), np.sort(x))
    with pytest.raises(PerturbationError, match="cannot hold"):
        SegmentSwap(400, stop=700).apply(x, SR)


# ------------------------------------------------------------------------------------------------ all kinds


@pytest.mark.parametrize("p", all_kinds(), ids=lambda p: p.label)
def test_round_trip_via_json(p: P.Perturbation) -> None:
    d = p.to_dict()
    assert d["kind"] == p.kind
    back = from_dict(json.loads(json.dumps(d)))
    assert back == p and type(back) is type(p)
    assert back.to_dict() == d
    x = music(15.0)
    np.testing.assert_array_equal(back.apply(x, SR), p.apply(x, SR))


@pytest.mark.parametrize("p", all_kinds(), ids=lambda p: p.label)
def test_input_is_never_mutated(p: P.Perturbation) -> None:
    x = music(15.0)
    before = x.copy()
    y = p.apply(x, SR)
    np.testing.assert_array_equal(x, before)
    assert y is not x and not np.shares_memory(x, y) and y.dtype == np.float32


def test_labels_are_distinct_and_readable() -> None:
    labels = [p.label for p in all_kinds()]
    assert len(set(labels)) == len(labels)
    assert Noise(Span(250, 100), level_db=-30.0).label == "noise-white-replace-dbfs-30@250+100f"
    assert Silence(Span(250, 100)).label == "silence@250+100f"


def test_dicts_are_the_cache_keys_they_always_were() -> None:
    """``to_dict`` output (kind strings, field names, order and defaults) keys the sweep's cache: frozen literally."""
    span = {"onset": 250, "length": 50, "unit": "frames", "frame_rate": 50.0}
    expected = {
        Noise(Span(250, 50)): {"kind": "noise", "span": span, "colour": "white", "mode": "replace", "level_db": -30.0,
                               "reference": "dbfs", "crossfade_ms": 0.0, "seed": 0, "legacy_rng": False},
        Silence(Span(250, 50)): {"kind": "silence", "span": span},
        Delete(Span(250, 50)): {"kind": "delete", "span": span},
        BlockSwap(Span(250, 50)): {"kind": "block_swap", "span": span},
        RandomPairSwaps(5): {"kind": "random_pair_swaps", "length": 5, "start": 0, "stop": None, "budget": 0.2,
                             "frame_rate": 50.0, "seed": 0},
        SegmentSwap(5): {"kind": "segment_swap", "length": 5, "start": 0, "stop": None, "frame_rate": 50.0, "seed": 0},
    }
    for p, d in expected.items():
        assert json.dumps(p.to_dict()) == json.dumps(d), p.label  # order too


def test_from_dict_rejects_bad_input() -> None:
    with pytest.raises(PerturbationError, match="unknown perturbation kind"):
        from_dict({"kind": "reverse"})
    with pytest.raises(PerturbationError, match="unknown field"):
        from_dict({"kind": "silence", "span": {"onset": 1, "length": 1}, "colour": "white"})
    with pytest.raises(PerturbationError):
        from_dict({"kind": "noise"})  # no span


@pytest.mark.parametrize(
    "make",
    [
        lambda: Noise(Span(1, 1), colour="grey"),
        lambda: Noise(Span(1, 1), mode="multiply"),
        lambda: Noise(Span(1, 1), reference="lufs"),
        lambda: Noise(Span(1, 1), crossfade_ms=-1.0),
        lambda: Noise(Span(1, 1), level_db=float("nan")),
        lambda: Noise(Span(1, 1), seed=-1),
        lambda: Noise((1, 1)),  # type: ignore[arg-type]
        lambda: RandomPairSwaps(0),
        lambda: RandomPairSwaps(5, budget=0.0),
        lambda: RandomPairSwaps(5, start=10, stop=10),
        lambda: SegmentSwap(5, seed=1.5),  # type: ignore[arg-type]
    ],
)
def test_invalid_fields_raise(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PerturbationError):
        make()


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 100), np.float32), np.zeros(0, np.float32), np.arange(10), np.array([0.0, np.inf])]
)
def test_apply_rejects_bad_waves(bad: np.ndarray) -> None:
    with pytest.raises(PerturbationError):
        Silence(Span(0, 1, unit="samples")).apply(bad, SR)
