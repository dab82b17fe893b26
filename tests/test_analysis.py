"""Tests of cae.analysis: Δℓ_t, token masks, the two region detectors, and the statistics.

Every expected value here is worked out by hand (in the comments) from the definitions in the spec (§5, §7E),
not taken from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cae.analysis import (
    CSV_OFFSET,
    REGIONS,
    Window,
    anchored_regions,
    bootstrap_ci,
    clip_loss,
    codebook_mean,
    delta,
    delta_curve,
    group_summary,
    length_correlation,
    mask_summary,
    paired_test,
    paper_regions,
    regions_table,
    to_csv_curve,
    token_mask,
    window_mean,
)

NAN = np.nan


@pytest.fixture(autouse=True)
def _no_runtime_warnings():
    """No NaN may reach a numpy mean silently: 'Mean of empty slice' and friends fail the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ----------------------------------------------------------------------------------------------------------------
# Δℓ_t, codebook mean, clip loss


def test_delta_truncates_to_common_length_and_keeps_nan():
    clean = np.array([[NAN, 1.0, 2.0, 3.0, 4.0], [NAN, 5.0, 6.0, 7.0, 8.0]])
    pert = np.array([[NAN, 1.5, 1.0, 3.0], [NAN, 5.0, NAN, 9.0]])  # shorter: F_p = 4 (a deletion)
    d = delta(pert, clean)
    # F' = min(4, 5) = 4; Δ = perturbed − clean position by position
    expected = np.array([[NAN, 0.5, -1.0, 0.0], [NAN, 0.0, NAN, 2.0]])
    assert d.shape == (2, 4)
    np.testing.assert_array_equal(d, expected)  # NaN == NaN for assert_array_equal


def test_delta_is_perturbed_minus_clean_and_accepts_torch():
    clean = torch.tensor([[2.0, 2.0, 2.0]])
    pert = torch.tensor([[1.0, 3.0, 2.0]], requires_grad=True)
    d = delta(pert, clean)
    assert isinstance(d, np.ndarray) and d.dtype == np.float64
    assert d.tolist() == [[-1.0, 1.0, 0.0]]


def test_delta_rejects_mismatched_codebooks():
    with pytest.raises(ValueError):
        delta(np.zeros((4, 10)), np.zeros((3, 10)))


def test_codebook_mean_is_nan_where_any_codebook_is_nan():
    x = np.array([[NAN, 1.0, 2.0, 4.0], [NAN, 3.0, NAN, 0.0]])
    # frame 0: both NaN; frame 1: (1+3)/2; frame 2: one NaN -> NaN; frame 3: (4+0)/2
    np.testing.assert_array_equal(codebook_mean(x), [NAN, 2.0, NAN, 2.0])
    with pytest.raises(ValueError):
        codebook_mean(np.zeros(5))


def test_delta_curve_equals_mean_of_per_codebook_deltas():
    clean = np.array([[NAN, 1.0, 1.0], [NAN, 1.0, 1.0]])
    pert = np.array([[NAN, 2.0, 0.0], [NAN, 4.0, 0.0]])
    # frame 1: (1 + 3)/2 = 2; frame 2: (-1 + -1)/2 = -1
    np.testing.assert_array_equal(delta_curve(pert, clean), [NAN, 2.0, -1.0])


def test_clip_loss_ignores_nan_and_is_nan_only_when_all_nan():
    nll = np.array([[NAN, 1.0, 2.0, 3.0], [NAN, 5.0, NAN, 7.0]])
    # finite tokens: 1, 2, 3, 5, 7 -> 18 / 5
    assert clip_loss(nll) == pytest.approx(3.6)
    assert clip_loss(torch.tensor(nll)) == pytest.approx(3.6)
    np.testing.assert_allclose(clip_loss(nll, per_codebook=True), [2.0, 6.0])
    assert np.isnan(clip_loss(np.full((4, 3), NAN)))
    np.testing.assert_array_equal(clip_loss(np.array([[NAN, NAN], [1.0, 3.0]]), per_codebook=True), [NAN, 2.0])


def test_clip_loss_matches_authors_mean_of_codebook_mean_curve():
    # Authors: per-file loss = mean over positions of the codebook-mean curve (frame 0 not scored).
    rng = np.random.default_rng(1)
    nll = rng.uniform(2, 8, size=(4, 30))
    nll[:, 0] = NAN
    assert clip_loss(nll) == pytest.approx(nll[:, 1:].mean(axis=0).mean())


# ----------------------------------------------------------------------------------------------------------------
# Token mask


def test_token_mask_and_summary_by_hand():
    clean = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [2, 2, 2, 2, 2, 2, 2, 2],
            [3, 3, 3, 3, 3, 3, 3, 3],
        ]
    )
    pert = clean.copy()
    pert[0, 2:5] = 9  # codebook 0 changed at frames 2, 3, 4
    pert[1, 6] = 9  # codebook 1 changed at frame 6 only
    m = token_mask(clean, pert)
    assert m.dtype == bool and m.shape == (3, 8)
    assert np.flatnonzero(m[0]).tolist() == [2, 3, 4]
    s = mask_summary(m)
    assert s.first_per_codebook == (2, 6, None)
    assert s.last_per_codebook == (4, 6, None)
    assert s.n_changed_per_codebook == (3, 1, 0)
    assert (s.first, s.last) == (2, 6)
    assert s.n_changed_frames == 4  # frames 2, 3, 4, 6
    assert s.any_changed
    # nominal perturbation [3, 5): tokens changed 1 frame before the onset, and 2 frames (5, 6) at/after offset
    assert s.frames_before(3) == 1
    assert s.frames_after(5) == 2
    table = s.to_frame()
    assert table["n_changed"].tolist() == [3, 1, 0]
    assert table["first"].isna().tolist() == [False, False, True]


def test_token_mask_unequal_lengths_and_torch():
    clean = torch.tensor([[5, 6, 7, 8, 9]])
    pert = torch.tensor([[5, 6, 0]])  # shorter clip
    m = token_mask(clean, pert)
    assert m.tolist() == [[False, False, True]]


def test_mask_summary_nothing_changed():
    s = mask_summary(np.zeros((4, 10), dtype=bool))
    assert s.first is None and s.last is None and not s.any_changed
    assert s.first_per_codebook == (None,) * 4
    assert s.frames_before(5) is None and s.frames_after(7) is None


def test_token_mask_rejects_float_codes():
    with pytest.raises(ValueError):
        token_mask(np.array([[0.5, 1.0]]), np.array([[0.5, 1.0]]))


# ----------------------------------------------------------------------------------------------------------------
# Windows


def test_window_mean_ignores_nan_and_is_nan_when_empty():
    x = np.array([0.0, 2.0, NAN, 4.0, 10.0])
    assert window_mean(x, Window(1, 4)) == pytest.approx(3.0)  # (2 + 4) / 2
    assert np.isnan(window_mean(x, Window(3, 3)))
    assert np.isnan(window_mean(x, Window(4, 2)))  # stop < start: empty
    assert np.isnan(window_mean(x, Window(2, 3)))  # only NaN inside
    np.testing.assert_allclose(window_mean(np.array([[1.0, 3.0], [5.0, NAN]]), Window(0, 2)), [2.0, 5.0])


# ----------------------------------------------------------------------------------------------------------------
# Anchored regions


def _spike_plateau_curve(n: int = 500) -> np.ndarray:
    """Δ = 0 before 248, +3 at frames 248–254, −2 at 255–349, +0.5 from 350 on."""
    d = np.zeros(n)
    d[248:255] = 3.0
    d[255:350] = -2.0
    d[350:] = 0.5
    return d


def test_anchored_regions_on_mask():
    d = _spike_plateau_curve()
    mask = np.zeros((4, 500), dtype=bool)
    mask[0, 246:300] = True  # codebook 0: first change at 246 (look-ahead)
    mask[3, 260:353] = True  # codebook 3: last change at 352 (LSTM tail)
    r = anchored_regions(d, mask, onset_frame=250, offset_frame=350)
    assert r.anchor == "mask" and r.note == ""
    assert (r.first_changed, r.last_changed) == (246, 352)
    # Peak = [first changed, onset + 5) = [246, 255): frames 246, 247 are 0, 248..254 are 3 -> 21 / 9
    assert r.windows["peak"] == Window(246, 255)
    assert r.means["peak"] == pytest.approx(21 / 9)
    # Assimilation = [255, 350): all −2
    assert r.windows["assimilation"] == Window(255, 350)
    assert r.means["assimilation"] == pytest.approx(-2.0)
    # Recovery = [max(350, 352 + 1) + 0, 500) = [353, 500): all 0.5
    assert r.windows["recovery"] == Window(353, 500)
    assert r.means["recovery"] == pytest.approx(0.5)


def test_anchored_regions_guard_and_peak_frames():
    d = _spike_plateau_curve()
    mask = np.zeros(500, dtype=bool)
    mask[247:351] = True  # 1-D mask: first 247, last 350
    r = anchored_regions(d, mask, 250, 350, peak_frames=3, guard_frames=10)
    assert r.windows["peak"] == Window(247, 253)  # 0 at 247; 3 at 248..252 -> 15 / 6
    assert r.means["peak"] == pytest.approx(15 / 6)
    assert r.windows["assimilation"] == Window(253, 350)  # 3 at 253, 254; −2 at 255..349 (95 frames)
    assert r.means["assimilation"] == pytest.approx((2 * 3 - 2 * 95) / 97)
    assert r.windows["recovery"] == Window(361, 500)  # max(350, 351) + 10


def test_anchored_regions_fall_back_to_nominal():
    d = _spike_plateau_curve()
    for mask, why in ((np.zeros((4, 500), dtype=bool), "mask shows no changed token"), (None, "no mask given")):
        r = anchored_regions(d, mask, 250, 350)
        assert r.anchor == "nominal" and why in r.note and "nominal" in r.note
        assert (r.first_changed, r.last_changed) == (250, 349)
        assert r.windows == {"peak": Window(250, 255), "assimilation": Window(255, 350), "recovery": Window(350, 500)}
        assert r.means["peak"] == pytest.approx(3.0)
        assert r.means["recovery"] == pytest.approx(0.5)


def test_anchored_regions_empty_regions_are_nan_not_zero():
    d = _spike_plateau_curve()
    # offset <= onset + peak_frames: no Assimilation
    r = anchored_regions(d, None, 250, 253)
    assert r.windows["assimilation"].empty and np.isnan(r.means["assimilation"])
    # mask changed to the very end (as after a deletion): no Recovery
    mask = np.zeros(500, dtype=bool)
    mask[248:] = True
    r = anchored_regions(d, mask, 250, 350)
    assert r.windows["recovery"] == Window(500, 500)
    assert np.isnan(r.means["recovery"])
    # first change after onset + peak_frames: no Peak
    mask = np.zeros(500, dtype=bool)
    mask[260:300] = True
    r = anchored_regions(d, mask, 250, 350)
    assert r.windows["peak"].empty and np.isnan(r.means["peak"])


def test_anchored_regions_per_codebook():
    n = 400
    diff = np.zeros((2, n))
    diff[0, 250:255], diff[1, 250:255] = 4.0, 2.0  # Peak: cb0 4, cb1 2, mean 3
    diff[0, 255:300], diff[1, 255:300] = -1.0, -3.0  # Assimilation: cb0 −1, cb1 −3, mean −2
    diff[1, 320] = NAN  # a missing prediction in the recovery of codebook 1
    r = anchored_regions(diff, None, 250, 300)
    np.testing.assert_allclose(r.per_codebook["peak"], [4.0, 2.0])
    np.testing.assert_allclose(r.per_codebook["assimilation"], [-1.0, -3.0])
    assert r.means["peak"] == pytest.approx(3.0) and r.means["assimilation"] == pytest.approx(-2.0)
    # Recovery [300, 400): codebook 1 mean over its 99 finite frames is 0; codebook-mean curve drops frame 320
    np.testing.assert_allclose(r.per_codebook["recovery"], [0.0, 0.0])
    assert r.means["recovery"] == pytest.approx(0.0)


def test_anchored_regions_rejects_bad_anchors():
    with pytest.raises(ValueError):
        anchored_regions(np.zeros(10), None, 6, 5)


# ----------------------------------------------------------------------------------------------------------------
# The authors' detector


def _hand_csv() -> np.ndarray:
    """A curve in the authors' CSV coordinates, length 400, with values exact in binary floating point.

    csv[0:245]   = 0.25   -> baseline = mean(csv[:200]) = 0.25 exactly
    csv[245:260] = 2.0    (spike)
    csv[260:262] = 0.0    (two values <= baseline ...)
    csv[262]     = 0.5    (... broken by one value above it)
    csv[263:303] = -1.0   (assimilation plateau)
    csv[303:399] = 0.5    (recovery)
    csv[399]     = 100.0  (last position: the detector must never look at it)
    """
    csv = np.empty(400)
    csv[0:245] = 0.25
    csv[245:260] = 2.0
    csv[260:262] = 0.0
    csv[262] = 0.5
    csv[263:303] = -1.0
    csv[303:399] = 0.5
    csv[399] = 100.0
    return csv


def _frames_from_csv(csv: np.ndarray) -> np.ndarray:
    """Our frame-indexed curve: d[f] = csv[f − 1], frame 0 unscored (NaN)."""
    return np.concatenate([[NAN], csv])


def test_csv_frame_conversion_is_plus_one():
    d = np.array([NAN, 10.0, 11.0, 12.0])
    # CSV position p holds the loss of predicting frame p + 1
    assert CSV_OFFSET == 1
    assert to_csv_curve(d).tolist() == [10.0, 11.0, 12.0]
    csv = _hand_csv()
    d = _frames_from_csv(csv)
    assert d[250] == csv[249]  # first noisy frame 250 = CSV position 249 (onset_index)
    np.testing.assert_array_equal(to_csv_curve(d), csv)


def test_paper_detector_hand_worked_example():
    # Working out e_P: the scan takes i = 250, 251, ... and asks whether csv[i−5 .. i−1] are all <= 0.25, i.e.
    # whether a run of 5 starts at s = i − 5 >= 245.
    #   s = 245..255: the run contains some 2.0 (positions 245..259)               -> no
    #   s = 256..259: contains 2.0 at 259 at the latest, or 0.5 at 262               -> no
    #   s = 260, 261, 262: contains csv[262] = 0.5 > 0.25                            -> no
    #   s = 263: csv[263..267] = −1.0 (all <= 0.25)                                  -> yes, e_P = 263
    # (csv[200:245] = 0.25 <= baseline is a run too, but it lies before the scan start: ignored.)
    # Peak = [245, 263): 15 × 2.0 + 2 × 0.0 + 1 × 0.5 = 30.5 over 18 positions.
    # L = 50: Assimilation end = min(249 + 50 + 4, 400 − 1) = 303 -> [263, 303): all −1.
    # Recovery = [303, 399): all 0.5 (the 100.0 at position 399 is excluded).
    r = paper_regions(_frames_from_csv(_hand_csv()), 50)
    assert r.baseline == 0.25
    assert r.peak_end == 263 and not r.used_fallback
    assert r.n_positions == 400
    assert r.csv_windows == {"peak": Window(245, 263), "assimilation": Window(263, 303), "recovery": Window(303, 399)}
    # frame coordinates are CSV + 1
    assert r.windows == {"peak": Window(246, 264), "assimilation": Window(264, 304), "recovery": Window(304, 400)}
    assert r.means["peak"] == pytest.approx(30.5 / 18)
    assert r.means["assimilation"] == pytest.approx(-1.0)
    assert r.means["recovery"] == pytest.approx(0.5)
    assert r.raw_means == r.means
    # the frame windows index our curve d: the same values
    d = _frames_from_csv(_hand_csv())
    assert np.mean(d[246:264]) == pytest.approx(30.5 / 18)


def test_paper_detector_empty_assimilation_scores_zero():
    # Same curve, L = 5: Assimilation end = min(249 + 5 + 4, 399) = 258 < e_P = 263 -> [263, 258) is empty -> 0.
    # Recovery = [258, 399): 2.0 at 258, 259; 0.0 at 260, 261; 0.5 at 262; −1.0 × 40 (263..302); 0.5 × 96.
    r = paper_regions(_frames_from_csv(_hand_csv()), 5)
    assert r.csv_windows["assimilation"] == Window(263, 258)
    assert r.means["assimilation"] == 0.0
    assert np.isnan(r.raw_means["assimilation"])
    assert r.csv_windows["recovery"] == Window(258, 399)
    assert r.means["recovery"] == pytest.approx((2 * 2.0 + 0.5 - 40 + 0.5 * 96) / 141)


def test_paper_detector_empty_peak_scores_zero():
    # csv[245:250] already at the baseline: the first scanned window (i = 250) is a run, so e_P = 245 and the
    # Peak [245, 245) is empty -> 0 (the authors' bias toward 0), NaN in raw_means.
    csv = np.zeros(400)
    csv[250:300] = -1.0
    r = paper_regions(_frames_from_csv(csv), 50)
    assert r.peak_end == 245
    assert r.csv_windows["peak"] == Window(245, 245)
    assert r.means["peak"] == 0.0 and np.isnan(r.raw_means["peak"])
    # Assimilation [245, 303): 5 zeros + 50 × −1 + 3 zeros = −50 / 58
    assert r.means["assimilation"] == pytest.approx(-50 / 58)


def test_paper_detector_fallback_295():
    # Baseline 0 (csv[:245] = 0), everything from 245 on is +1 > 0: no run of 5 <= 0 is ever found.
    # e_P = 295; L = 100: Assimilation = [295, min(353, 599)) ; Recovery = [353, 599).
    csv = np.zeros(600)
    csv[245:] = 1.0
    r = paper_regions(_frames_from_csv(csv), 100)
    assert r.used_fallback and r.peak_end == 295
    assert r.csv_windows == {"peak": Window(245, 295), "assimilation": Window(295, 353), "recovery": Window(353, 599)}
    assert r.windows["peak"] == Window(246, 296)
    assert all(r.means[k] == pytest.approx(1.0) for k in REGIONS)


def test_paper_detector_never_looks_at_last_position_and_ties_count():
    # csv length 300; positions 245..294 are above the baseline 0; 295..299 are <= 0 but the only run that
    # includes position 299 would need i = 300 = len, which the scan never reaches -> fallback 295.
    csv = np.zeros(300)
    csv[245:295] = 1.0
    csv[295:300] = -1.0
    assert paper_regions(_frames_from_csv(csv), 10).used_fallback
    # Shift the run one earlier (294..298 <= 0, ending before the last position): found at i = 299, e_P = 294.
    # Values equal to the baseline count as "<=": 294 is exactly 0.0.
    csv[294] = 0.0
    csv[299] = 5.0
    r = paper_regions(_frames_from_csv(csv), 10)
    assert not r.used_fallback and r.peak_end == 294
    # Assimilation end = min(249 + 10 + 4, 299) = 263 < 294: empty; Recovery = [263, 299)
    assert r.means["assimilation"] == 0.0
    assert r.csv_windows["recovery"] == Window(263, 299)


def test_paper_detector_per_codebook_and_nan_rules():
    csv = _hand_csv()
    per_cb = np.stack([_frames_from_csv(csv + 1.0), _frames_from_csv(csv - 1.0)])  # codebook mean = csv
    r = paper_regions(per_cb, 50)
    assert r.peak_end == 263
    np.testing.assert_allclose(r.per_codebook["peak"], [30.5 / 18 + 1, 30.5 / 18 - 1])
    bad = _frames_from_csv(csv)
    bad[100] = NAN
    with pytest.raises(ValueError):
        paper_regions(bad, 50)


def test_regions_table_mixes_methods():
    d = _frames_from_csv(_hand_csv())
    items = [
        ({"clip": "x", "length": 50}, paper_regions(d, 50)),
        ({"clip": "x", "length": 50}, anchored_regions(d, None, 250, 300)),
    ]
    df = regions_table(items)
    assert len(df) == 6
    assert df["method"].tolist() == ["paper"] * 3 + ["anchored"] * 3
    assert df["region"].tolist() == list(REGIONS) * 2
    assert df.loc[0, "start"] == 246 and df.loc[0, "csv_start"] == 245
    assert np.isnan(df.loc[3, "csv_start"])  # anchored rows have no CSV columns


# ----------------------------------------------------------------------------------------------------------------
# Statistics


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 1.0, 25)
    large = rng.normal(1.0, 1.0, 400)
    ci_s = bootstrap_ci(small, n_resamples=2000, seed=1)
    ci_l = bootstrap_ci(large, n_resamples=2000, seed=1)
    assert ci_s.estimate == pytest.approx(small.mean())
    assert ci_s.low < small.mean() < ci_s.high
    assert ci_l.low < large.mean() < ci_l.high
    assert ci_l.width < ci_s.width
    # normal theory: a 95 % CI of the mean is about 2 × 1.96 × sd / sqrt(n) wide
    assert ci_l.width == pytest.approx(2 * 1.96 * large.std(ddof=1) / np.sqrt(400), rel=0.2)
    # reproducible with a seed
    assert bootstrap_ci(small, n_resamples=2000, seed=1) == ci_s


def test_bootstrap_ci_small_n_and_nan_rule():
    one = bootstrap_ci([2.0, NAN])
    assert one.n == 1 and one.estimate == 2.0 and np.isnan(one.low) and np.isnan(one.high)
    none = bootstrap_ci([NAN, np.inf])
    assert none.n == 0 and np.isnan(none.estimate)
    ci = bootstrap_ci([1.0, NAN, 2.0, 3.0, 4.0], n_resamples=1000)
    assert ci.n == 4 and ci.estimate == pytest.approx(2.5)
    const = bootstrap_ci([3.0, 3.0, 3.0])
    assert (const.low, const.high) == (3.0, 3.0)


def test_bootstrap_ci_custom_stat():
    x = np.arange(21, dtype=float)
    ci = bootstrap_ci(x, stat=np.median, n_resamples=1000, method="percentile")
    assert ci.estimate == 10.0 and ci.low <= 10.0 <= ci.high


def test_length_correlation_perfect_decrease():
    lengths = np.array([5, 10, 50, 100, 150, 200], dtype=float)
    deltas = 0.1 - 0.005 * lengths
    r = length_correlation(lengths, deltas)
    assert r.n == 6
    assert r.pearson_r == pytest.approx(-1.0)
    assert r.spearman_r == pytest.approx(-1.0)
    assert r.slope == pytest.approx(-0.005) and r.intercept == pytest.approx(0.1)
    assert r.pearson_p < 1e-6 and r.slope_p < 1e-6
    # one-sided "less" halves a two-sided p for a negative association
    r_less = length_correlation(lengths, deltas + np.array([0, 0.01, -0.01, 0.02, 0, -0.02]), alternative="less")
    r_two = length_correlation(lengths, deltas + np.array([0, 0.01, -0.01, 0.02, 0, -0.02]))
    assert r_less.pearson_p == pytest.approx(r_two.pearson_p / 2)


def test_length_correlation_nan_pairs_and_degenerate():
    r = length_correlation([1, 2, NAN, 4, 5], [2.0, 4.0, 0.0, NAN, 10.0])
    assert r.n == 3 and r.pearson_r == pytest.approx(1.0)  # (1, 2), (2, 4), (5, 10)
    assert np.isnan(length_correlation([1, 2], [3, 4]).pearson_r)
    assert np.isnan(length_correlation([1, 1, 1, 1], [3, 4, 5, 6]).slope)


def test_paired_test_hand_values():
    clean = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pert = clean + np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # differences 1..5
    r = paired_test(clean, pert)
    # mean 3, sd (ddof 1) = sqrt(2.5), dz = 3 / sqrt(2.5), t = dz × sqrt(5)
    assert r.n == 5 and r.mean_diff == pytest.approx(3.0)
    assert r.sd_diff == pytest.approx(np.sqrt(2.5))
    assert r.cohens_dz == pytest.approx(3 / np.sqrt(2.5))
    assert r.t_statistic == pytest.approx(3 / np.sqrt(2.5) * np.sqrt(5))
    # Wilcoxon exact, n = 5, all differences positive: two-sided p = 2 / 2^5 = 0.0625
    assert r.wilcoxon_pvalue == pytest.approx(0.0625)


def test_paired_test_detects_shift_but_not_zero_shift():
    rng = np.random.default_rng(7)
    clean = rng.normal(5.0, 1.0, 40)
    shifted = clean - 0.5 + rng.normal(0.0, 0.2, 40)
    r = paired_test(clean, shifted)
    assert r.mean_diff == pytest.approx(-0.5, abs=0.1)
    assert r.t_pvalue < 1e-6 and r.wilcoxon_pvalue < 1e-6
    assert r.cohens_dz < -1.5  # true dz = −0.5 / 0.2 = −2.5
    null = paired_test(clean, clean + rng.normal(0.0, 0.2, 40))
    assert null.t_pvalue > 0.05 and null.wilcoxon_pvalue > 0.05
    assert abs(null.cohens_dz) < 0.5


def test_paired_test_nan_pairs_and_degenerate():
    r = paired_test([1.0, 2.0, NAN, 4.0], [2.0, NAN, 5.0, 6.0])
    assert r.n == 2 and r.mean_diff == pytest.approx(1.5)  # pairs (1, 2) and (4, 6)
    one = paired_test([1.0], [3.0])
    assert one.n == 1 and one.mean_diff == 2.0 and np.isnan(one.t_pvalue)
    same = paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.mean_diff == 0.0 and np.isnan(same.cohens_dz) and np.isnan(same.wilcoxon_pvalue)


def test_group_summary():
    df = pd.DataFrame(
        {
            "kind": ["white"] * 4 + ["pink"] * 3,
            "length": [50, 50, 100, 100, 50, 50, 50],
            "delta": [1.0, 3.0, -2.0, NAN, 0.0, 2.0, 4.0],
        }
    )
    s = group_summary(df, by=["kind", "length"], value="delta", n_resamples=500)
    assert list(s.columns) == ["kind", "length", "mean", "sd", "n", "ci_low", "ci_high"]
    rows = {(k, length): row for k, length, row in zip(s["kind"], s["length"], s.itertuples(), strict=True)}
    pink = rows[("pink", 50)]  # 0, 2, 4: mean 2, sd 2
    assert (pink.mean, pink.sd, pink.n) == (2.0, 2.0, 3)
    assert pink.ci_low <= 2.0 <= pink.ci_high
    w50 = rows[("white", 50)]  # 1, 3
    assert (w50.mean, w50.n) == (2.0, 2) and w50.sd == pytest.approx(np.sqrt(2))
    w100 = rows[("white", 100)]  # −2 and a NaN (dropped): n = 1, no sd, no CI
    assert (w100.mean, w100.n) == (-2.0, 1) and np.isnan(w100.sd) and np.isnan(w100.ci_low)
    with pytest.raises(KeyError):
        group_summary(df, by="model")


# ----------------------------------------------------------------------------------------------------------------
# Properties

_nll = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(1, 30)),
    elements=st.one_of(st.just(np.nan), st.floats(0.0, 20.0)),
)


@settings(max_examples=60, deadline=None)
@given(_nll)
def test_clip_loss_agrees_with_nanmean(nll):
    if np.isnan(nll).all():
        assert np.isnan(clip_loss(nll))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert clip_loss(nll) == pytest.approx(np.nanmean(nll))


@settings(max_examples=60, deadline=None)
@given(_nll, st.integers(0, 10))
def test_delta_of_truncated_copy_is_zero_where_finite(nll, cut):
    shorter = nll[:, : max(1, nll.shape[1] - cut)]
    d = delta(shorter, nll)
    assert d.shape == shorter.shape
    assert np.all((d == 0) | np.isnan(nll[:, : d.shape[1]]))
