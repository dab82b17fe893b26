"""The reference tokenizer (:mod:`cae.reference.tokenizer`): frames, locality, determinism, quantisation, files."""

from __future__ import annotations

import numpy as np
import pytest

from cae.reference.tokenizer import MelRVQTokenizer, NotFittedError, TokenizerError, mel_filterbank

SR = 32000
HOP = 640


def music(seconds: float, seed: int) -> np.ndarray:
    """Seeded music-like audio: scale notes with harmonics and decaying envelopes, two voices, drum hits, noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    scale = np.array([0, 2, 4, 5, 7, 9, 11]) + rng.integers(0, 12)
    beat = 60.0 / rng.uniform(90, 150)
    for base in (48, 60 + rng.integers(0, 7)):
        weights = rng.uniform(0.2, 1.0, 6) / np.arange(1, 7)
        onset = 0.0
        while onset < seconds:
            dur = beat * rng.choice([0.5, 1.0, 2.0])
            s0, s1 = int(onset * SR), min(n, int((onset + dur) * SR))
            if s1 > s0 and rng.random() < 0.9:
                f0 = 440.0 * 2 ** ((base + scale[rng.integers(7)] - 69) / 12)
                tt = np.arange(s1 - s0) / SR
                env = np.minimum(tt / 0.01, 1.0) * np.exp(-tt / rng.uniform(0.2, 0.8))
                tone = sum(w * np.sin(2 * np.pi * f0 * (h + 1) * tt) for h, w in enumerate(weights))
                out[s0:s1] += 0.2 * env * tone
            onset += dur
    for hit in np.arange(0.0, seconds, beat):
        s0 = int(hit * SR)
        length = min(n - s0, 3200)
        out[s0:s0 + length] += 0.1 * rng.standard_normal(length) * np.exp(-np.arange(length) / 600)
    out += 1e-3 * rng.standard_normal(n)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return [music(4.0, seed) for seed in range(6)]


@pytest.fixture(scope="module")
def tok(waves) -> MelRVQTokenizer:
    return MelRVQTokenizer(codebook_size=16).fit(waves, seed=0)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """A held-out 6 s clip (300 frames)."""
    return music(6.0, 100)


# ------------------------------------------------------------------------------------------------ front end
def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(SR, 1280, 64, 30.0, 16000.0)
    ref = librosa.filters.mel(sr=SR, n_fft=1280, n_mels=64, fmin=30.0, fmax=16000.0, htk=False, norm=None)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert ((ours > 0).sum(axis=1) >= 4).all()  # every triangle covers at least 4 FFT bins


def test_stft_matches_librosa_on_padded_signal(tok, clip):
    """Frame f = Hann window starting at f·hop − 320 of the clip (zero padded), scaled by 1/Σw."""
    librosa = pytest.importorskip("librosa")
    x = clip[None].astype(np.float64)
    padded = tok._pad(x)
    assert padded.shape[1] == 300 * HOP + 640 and not padded[0, :320].any() and not padded[0, -320:].any()
    ours = tok._stft(padded, 300)[0]
    ref = librosa.stft(padded[0], n_fft=1280, hop_length=HOP, center=False, window="hann").T / 640.0
    np.testing.assert_allclose(ours, ref[:300], atol=1e-9)


@pytest.mark.parametrize("n", [1, 639, 640, 641, 2 * SR + 17])
def test_frame_count_and_shapes(tok, clip, n):
    frames = -(-n // HOP)
    wave = np.resize(clip, n)
    assert tok.num_frames(n) == frames
    codes = tok.encode(wave)
    assert codes.shape == (4, frames) and codes.dtype == np.int64
    assert tok.features(wave).shape == (frames, 64) and tok.features(wave).dtype == np.float32
    assert tok.dequantize(codes).shape == (frames, 64)


def test_batch_equals_single(tok, clip):
    batch = np.stack([clip, clip[::-1].copy(), 0.5 * clip])
    codes = tok.encode(batch)
    assert codes.shape == (3, 4, 300)
    for row, wave in zip(codes, batch):
        np.testing.assert_array_equal(row, tok.encode(wave))
    assert tok.features(batch).shape == (3, 300, 64)
    assert tok.dequantize(codes).shape == (3, 300, 64)


def test_torch_input(tok, clip):
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(tok.encode(torch.from_numpy(clip)), tok.encode(clip))


# ------------------------------------------------------------------------------------------------ frame locality
def test_burst_at_frame_250_changes_frames_from_249_only(tok):
    """Noise from sample 160000 = 250·640 on: frames ≤ 248 bit-identical, 249 changes (window overlap), ≥ 250 too."""
    x = music(8.0, 7)  # 400 frames
    y = x.copy()
    y[250 * HOP:] += 0.05 * np.random.default_rng(1).standard_normal(len(x) - 250 * HOP).astype(np.float32)
    fx, fy = tok.features(x), tok.features(y)
    changed = np.flatnonzero((fx != fy).any(axis=1))
    assert changed[0] == 249 and changed[-1] == 399 and len(changed) == 151
    assert tok.affected_frames(250 * HOP, len(x), len(x)) == (249, 400)
    np.testing.assert_array_equal(tok.encode(x)[:, :249], tok.encode(y)[:, :249])


def test_impulse_changes_exactly_the_documented_frames(tok):
    x = music(8.0, 8)
    for at, expected in [(250 * HOP, [249, 250]), (250 * HOP + 320, [250]), (250 * HOP + 639, [250, 251])]:
        y = x.copy()
        y[at] += 0.5
        changed = np.flatnonzero((tok.features(x) != tok.features(y)).any(axis=1)).tolist()
        assert changed == expected, at
        assert tok.affected_frames(at, at + 1) == (expected[0], expected[-1] + 1)


def test_affected_frames_is_exact_for_random_spans(tok):
    """Look-back and look-ahead are one frame: a noise span [a, b) changes exactly affected_frames(a, b)."""
    rng = np.random.default_rng(3)
    x = music(4.0, 9)
    fx = tok.features(x)
    for _ in range(8):
        a = int(rng.integers(0, len(x) - 1))
        b = int(rng.integers(a + 1, min(len(x), a + 20 * HOP) + 1))
        y = x.copy()
        y[a:b] += 0.1 * (1.0 + rng.random(b - a)).astype(np.float32)
        changed = np.flatnonzero((fx != tok.features(y)).any(axis=1))
        first, stop = tok.affected_frames(a, b, len(x))
        assert changed.tolist() == list(range(first, stop)), (a, b)
        assert first >= a // HOP - 1 and stop <= -(-b // HOP) + 1


def test_prefix_stability(tok):
    """Zero padding: a prefix of m whole frames reproduces frames [0, m − 1); appended silence changes nothing."""
    x = music(4.0, 10)
    full = tok.encode(x)
    np.testing.assert_array_equal(tok.encode(x[: 100 * HOP])[:, :99], full[:, :99])
    padded = np.concatenate([x, np.zeros(5 * HOP + 3, dtype=np.float32)])
    np.testing.assert_array_equal(tok.encode(padded)[:, : full.shape[1]], full)


# ------------------------------------------------------------------------------------------------ fitting
def test_fit_is_deterministic(waves, tok, clip):
    again = MelRVQTokenizer(codebook_size=16).fit(waves, seed=0)
    np.testing.assert_array_equal(again.codebooks, tok.codebooks)
    np.testing.assert_array_equal(again.mean, tok.mean)
    assert again.state_sha256() == tok.state_sha256()
    np.testing.assert_array_equal(again.encode(clip), tok.encode(clip))
    np.testing.assert_array_equal(tok.encode(clip), tok.encode(clip))
    other = MelRVQTokenizer(codebook_size=16).fit(waves, seed=1)
    assert not np.array_equal(other.codebooks, tok.codebooks)


def test_fit_accepts_generators_and_batches(waves, tok):
    from_gen = MelRVQTokenizer(codebook_size=16).fit((w for w in waves), seed=0)
    assert from_gen.state_sha256() == tok.state_sha256()
    from_batch = MelRVQTokenizer(codebook_size=16).fit(np.stack(waves), seed=0)
    assert from_batch.state_sha256() == tok.state_sha256()


def test_fit_subsamples_to_max_frames(waves):
    small = MelRVQTokenizer(codebook_size=16, num_codebooks=2).fit(waves, seed=0, max_frames=500)
    assert small.fit_info["frames_seen"] == 6 * 200 and small.fit_info["frames_used"] == 500


def test_codes_are_not_collapsed(tok, waves, clip):
    assert tok.fit_info["stage_used_codes"] == [16] * 4
    train = np.concatenate([tok.encode(w) for w in waves], axis=1)
    for k in range(4):
        assert len(np.unique(train[k])) == 16
        assert len(np.unique(tok.encode(clip)[k])) >= 10


def test_each_stage_lowers_the_quantisation_error(tok, waves, clip):
    for wave in (waves[0], clip):
        feats = tok.features(wave)
        codes = tok.encode(wave)
        mse = [float((feats ** 2).mean())]
        mse += [float(((tok.dequantize(codes[:k]) - feats) ** 2).mean()) for k in range(1, 5)]
        assert all(a > b for a, b in zip(mse, mse[1:])), mse
    assert all(a > b for a, b in zip(tok.fit_info["stage_mse"], tok.fit_info["stage_mse"][1:]))


def test_features_are_normalised_on_training_data(tok, waves):
    feats = np.concatenate([tok.features(w) for w in waves])
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(feats.std(axis=0), 1.0, atol=1e-3)


# ------------------------------------------------------------------------------------------------ files
def test_save_load_round_trip(tok, clip, tmp_path):
    path = tmp_path / "tok.npz"
    tok.save(path)
    back = MelRVQTokenizer.load(path)
    assert back.params() == tok.params() and back.fit_info == tok.fit_info
    assert back.state_sha256() == tok.state_sha256()
    np.testing.assert_array_equal(back.encode(clip), tok.encode(clip))
    np.testing.assert_array_equal(back.decode(tok.encode(clip)[:, :50]), tok.decode(tok.encode(clip)[:, :50]))
    tok.save(tmp_path / "again.npz")
    assert MelRVQTokenizer.load(tmp_path / "again.npz").state_sha256() == tok.state_sha256()


def test_full_size_file_is_small_and_hash_tracks_contents(waves, tmp_path):
    big = MelRVQTokenizer().fit(waves, seed=0, iters=2)
    path = tmp_path / "big.npz"
    big.save(path)
    assert path.stat().st_size < 1_000_000
    digest = big.state_sha256()
    big.codebooks[0, 0, 0] += 1e-3
    assert big.state_sha256() != digest


# ------------------------------------------------------------------------------------------------ decoding
def test_decode_shape_determinism_and_finiteness(tok, clip):
    codes = tok.encode(clip)
    audio = tok.decode(codes)
    assert audio.shape == (300 * HOP,) and audio.dtype == np.float32 and np.isfinite(audio).all()
    np.testing.assert_array_equal(audio, tok.decode(codes))
    assert tok.decode(codes[:, :7]).shape == (7 * HOP,)
    assert tok.decode(codes[:2]).shape == (300 * HOP,)  # first two stages only
    assert tok.decode(np.stack([codes[:, :10], codes[:, 10:20]])).shape == (2, 10 * HOP)
    assert 0.25 < np.sqrt(np.mean(audio ** 2)) / np.sqrt(np.mean(clip ** 2)) < 4.0


def test_decode_then_encode_recovers_codebook_0(tok, clip):
    """Measured: 0.95 agreement for codebook 0 on this clip (chance 0.11), 0.91–1.0 over fit seeds 0–3."""
    codes = tok.encode(clip)
    again = tok.encode(tok.decode(codes))
    agreement = (again == codes).mean(axis=1)
    p = np.bincount(codes[0], minlength=16) / codes.shape[1]
    chance = float((p ** 2).sum())
    assert agreement[0] > 0.6 and agreement[0] > 3 * chance, (agreement, chance)


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("wave", "match"),
    [
        (np.array([0.0, np.nan, 0.0], dtype=np.float32), "NaN"),
        (np.array([0.0, np.inf], dtype=np.float32), "NaN or infinite"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.zeros((2, 0), dtype=np.float32), "empty"),
        (np.zeros((1, 2, 640), dtype=np.float32), r"\[N\] or a batch \[B, N\]"),
        (np.zeros(640, dtype=np.int16), "scale integer PCM"),
        (np.zeros(640, dtype=np.complex64), "floating-point"),
    ],
)
def test_bad_waves(tok, wave, match):
    with pytest.raises(TokenizerError, match=match):
        tok.encode(wave)
    with pytest.raises(ValueError, match=match):
        tok.features(wave)


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        (np.zeros((4, 5), dtype=np.float32), "integers"),
        (np.zeros((5, 5), dtype=np.int64), "5 codebooks"),
        (np.full((4, 5), 16), r"\[0, 16\)"),
        (np.full((4, 5), -1), r"\[0, 16\)"),
        (np.zeros(5, dtype=np.int64), r"\[K, F\]"),
        (np.zeros((4, 0), dtype=np.int64), "empty"),
    ],
)
def test_bad_codes(tok, codes, match):
    with pytest.raises(TokenizerError, match=match):
        tok.decode(codes)


def test_unfitted_and_bad_fits(waves, tmp_path):
    fresh = MelRVQTokenizer()
    for call in (lambda: fresh.encode(waves[0]), lambda: fresh.features(waves[0]), lambda: fresh.save(tmp_path / "x"),
                 lambda: fresh.decode(np.zeros((4, 3), dtype=np.int64)), fresh.state_sha256):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    with pytest.raises(TokenizerError, match="no waves"):
        MelRVQTokenizer().fit([])
    with pytest.raises(TokenizerError, match="at least codebook_size"):
        MelRVQTokenizer().fit([waves[0][: 100 * HOP]])
    with pytest.raises(TokenizerError, match=r"waves\[1\] contains NaN"):
        MelRVQTokenizer(codebook_size=4).fit([waves[0], np.full(100, np.nan, dtype=np.float32)])
    with pytest.raises(TokenizerError, match="n_fft"):
        MelRVQTokenizer(n_fft=600)
    bad = tmp_path / "bad.npz"
    np.savez(bad, codebooks=np.zeros(3))
    with pytest.raises(TokenizerError, match="not a MelRVQTokenizer file"):
        MelRVQTokenizer.load(bad)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(TokenizerError, match="cannot read"):
        MelRVQTokenizer.load(tmp_path / "junk.npz")


def test_empty_clusters_move_to_distinct_worst_fitted_frames():
    from cae.reference.tokenizer import _relocate_empty

    x = np.array([[0.0, 0.0], [5.0, 5.0], [5.0, 5.0], [1.0, 0.0], [3.0, 0.0]], dtype=np.float32)
    labels = np.zeros(5, dtype=np.int64)
    dist = (x ** 2).sum(1)
    centres = np.zeros((4, 2), dtype=np.float32)
    moved = _relocate_empty(x, labels, dist, np.array([2, 3]), centres)
    assert moved == 2
    np.testing.assert_array_equal(centres[2:], [[5.0, 5.0], [3.0, 0.0]])  # the duplicate (5, 5) is used once
    assert labels.tolist() == [0, 2, 0, 0, 3]


def test_degenerate_data_fit_without_crashing():
    """Silence and one steady tone have a handful of distinct frames: those codes are used, the rest stay dead."""
    silence = np.zeros(6 * SR, dtype=np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR)).astype(np.float32)
    tok = MelRVQTokenizer(codebook_size=16).fit([silence, tone], seed=0)
    assert 2 <= tok.fit_info["stage_used_codes"][0] < 16
    assert len(np.unique(tok.encode(silence)[0])) <= 2  # interior frames and the zero-padded last frame
    assert np.isfinite(tok.decode(tok.encode(tone))).all()
