"""Complexity estimates on sequences of known entropy; detection metrics against scikit-learn and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cae.analysis.complexity import compressed_bits, markov_code_length, window_code_length
from cae.analysis.detection import auroc, bootstrap_metrics, cross_validated_scores, paired_accuracy


# ---- complexity -----------------------------------------------------------------------------------------------
def test_constant_stream_costs_almost_nothing():
    n = 5000
    cost = markov_code_length(np.full(n, 7), order=1, alphabet=512)
    # KT code of a constant stream: the whole stream costs about (V-1)/2 log n + log V nats; per token → 0
    assert cost.sum() < 0.5 * 511 * math.log(n) + 3 * math.log(512)
    assert cost[-1000:].mean() < 0.1
    assert compressed_bits(np.full(n, 7)) < 0.2  # lzma: a few dozen bytes for 10 kB of one repeated value


@pytest.mark.parametrize("n_symbols", [4, 64])
def test_iid_uniform_stream_costs_log_n(n_symbols):
    x = np.random.default_rng(1).integers(0, n_symbols, 40000)
    cost = markov_code_length(x, order=0, alphabet=n_symbols)
    assert cost[10000:].mean() == pytest.approx(math.log(n_symbols), rel=0.01)
    # a general compressor cannot beat the entropy, and lzma gets within 20 % of it on this much data
    bits = compressed_bits(x)
    assert math.log2(n_symbols) * 0.99 < bits < math.log2(n_symbols) * 1.2


def test_periodic_stream_is_cheap_once_the_order_reaches_the_period():
    period = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    x = np.tile(period, 500)
    # order 1 cannot tell which symbol follows "1" (4 or 5): it pays about log 2 at those steps, forever
    order1 = markov_code_length(x, order=1, alphabet=16)[-800:].mean()
    assert order1 == pytest.approx(2 / 8 * math.log(2), rel=0.1)
    # order 2 knows every successor: the cost per token goes to 0 like V / (2 n) (8 / 800 here)
    order2 = markov_code_length(x, order=2, alphabet=16)[-800:].mean()
    assert order2 < 0.03 and order2 < order1 / 5
    assert compressed_bits(x) < 0.3  # against 2.5 bits for its symbol frequencies alone


def test_markov_cost_is_the_kt_probability_by_hand():
    cost = markov_code_length([0, 1, 0, 0], order=0, alphabet=2)
    # KT: p(0) = 1/2; p(1 | n0=1) = (0+.5)/(1+1); p(0 | n0=1, n1=1) = 1.5/3; p(0 | n0=2, n1=1) = 2.5/4
    assert np.allclose(cost, -np.log([0.5, 0.25, 0.5, 0.625]))
    ctx = markov_code_length([0, 1, 0, 1], order=1, alphabet=2)
    # contexts: () for the first token, then (0), (1), (0): the last sees "1 followed 0" once
    assert np.allclose(ctx, -np.log([0.5, 0.5, 0.5, 1.5 / 2]))


def test_window_code_length_counts_what_the_window_adds():
    rng = np.random.default_rng(0)
    x = np.r_[np.tile([1, 2, 3, 4], 500), rng.integers(0, 256, 500), np.tile([1, 2, 3, 4], 500)]
    music, noise = window_code_length(x, 500, 2000), window_code_length(x, 2000, 2500)
    assert music < 0.1 < math.log(256) * 0.9 < noise
    with pytest.raises(ValueError, match="not inside"):
        window_code_length(x, 10, 10)


def test_bad_streams_are_refused():
    with pytest.raises(ValueError, match="outside the alphabet"):
        markov_code_length([0, 5], alphabet=4)
    with pytest.raises(ValueError, match="one stream"):
        markov_code_length(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="unknown compressor"):
        compressed_bits([1, 2], method="zip")


# ---- detection ------------------------------------------------------------------------------------------------
def test_auroc_is_the_pairwise_win_rate_and_orients():
    rng = np.random.default_rng(0)
    clean, pert = rng.normal(0, 1, 30), rng.normal(0.8, 1, 30)
    # the Mann-Whitney form: the share of (clean, perturbed) pairs the perturbed one wins, ties ½
    expected = np.mean((pert[:, None] > clean[None, :]) + 0.5 * (pert[:, None] == clean[None, :]))
    assert auroc(clean, pert) == pytest.approx(expected)
    assert auroc(clean, pert, direction=-1) == pytest.approx(1 - expected)
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 1.0 and auroc([2.0, 3.0], [0.0, 1.0]) == 0.0


def test_paired_accuracy_by_hand():
    assert paired_accuracy([1, 2, 3], [2, 1, 4]) == pytest.approx(2 / 3)
    assert paired_accuracy([1, 2, 3], [2, 1, 4], direction=-1) == pytest.approx(1 / 3)
    assert paired_accuracy([1, 1], [1, 2]) == 0.75  # a tie counts one half
    assert paired_accuracy([1, np.nan], [2, 0]) == 1.0  # a pair with a missing score is left out


def test_bootstrap_cis_bracket_the_estimate():
    rng = np.random.default_rng(3)
    clean = rng.normal(0, 1, 40)
    pert = clean + rng.normal(0.5, 1, 40)
    m = bootstrap_metrics(clean, pert, n_resamples=300)
    assert m["accuracy_low"] <= m["accuracy"] <= m["accuracy_high"]
    assert m["auroc_low"] <= m["auroc"] <= m["auroc_high"] and m["n"] == 40


def test_cross_validated_combination_finds_a_separating_feature_and_not_noise():
    rng = np.random.default_rng(0)
    rows = [{"clip": clip, "perturbed": label, "real": label + rng.normal(0, 0.3), "noise": rng.normal(0, 1)}
            for clip in range(40) for label in (0, 1)]
    t = pd.DataFrame(rows)
    good = cross_validated_scores(t, ["real", "noise"])
    assert good.notna().all()
    assert auroc(good[t.perturbed == 0], good[t.perturbed == 1]) > 0.95
    chance = cross_validated_scores(t, ["noise"])
    assert 0.3 < auroc(chance[t.perturbed == 0], chance[t.perturbed == 1]) < 0.7


# ---- study-level tables (cae.beyond) --------------------------------------------------------------------------
def _results(n_clips: int = 4):
    """A hand-made study: per clip, a clean version of i.i.d. tokens with NLL 2.0, and a "noise" version whose second
    half is one repeated token, with NLL 1.0."""
    from cae.study import StudyResults

    rng = np.random.default_rng(0)
    tokens, summary = [], []
    for c in range(n_clips):
        clean = rng.integers(0, 64, (2, 200))
        noisy = clean.copy()
        noisy[:, 100:] = 5
        for cond, codes, nll in (("clean", clean, 2.0), ("noise", noisy, 1.0)):
            k, f = np.meshgrid(np.arange(2), np.arange(200), indexing="ij")
            tokens.append(pd.DataFrame({"model_id": "m", "kind": "ood", "clip": f"c{c}", "condition": cond,
                                        "codebook": k.ravel(), "frame": f.ravel(), "code": codes.ravel(),
                                        "nll": nll}))
            summary.append({"model_id": "m", "kind": "ood", "clip": f"c{c}", "condition": cond, "card": 64,
                            "error": None, "length": 0 if cond == "clean" else 100})
    return StudyResults(pd.DataFrame(summary), pd.concat(tokens, ignore_index=True))


def test_complexity_table_deltas_and_corrected_scores():
    from cae import beyond

    t = beyond.complexity_table(_results())
    noisy = t[t["condition"] == "noise"]
    assert np.allclose(noisy["d_loss"], -1.0) and np.allclose(t["s_markov"], t["loss"] - t["markov"])
    assert (noisy["d_markov"] < -1.0).all() and (noisy["d_lzma"] < -1.0).all()  # half the stream became trivial
    assert np.allclose(noisy["d_s_markov"], noisy["d_loss"] - noisy["d_markov"])
    assert (noisy["d_s_markov"] > 0).all()  # the loss fell by less than the complexity: corrected, it went up
    d = beyond.complexity_deltas(t, n_resamples=200)
    loss = d[d["quantity"] == beyond.QUANTITIES["loss"]].iloc[0]
    assert loss["mean"] == pytest.approx(-1.0) and loss["share_lower"] == 1.0 and loss["n"] == 4
    v = beyond.verdict(d)
    assert v["verdict"].tolist() == ["drop explained"]


def test_verdict_reads_the_cis():
    from cae import beyond

    def deltas(loss, s):
        rows = []
        for q, (lo, hi) in {"loss": loss, "markov": (-1, -0.5), "lzma": (-1, -0.5), "s_markov": s, "s_lzma": s}.items():
            rows.append({"model_id": "m", "kind": "k", "length": 200, "quantity": beyond.QUANTITIES[q],
                         "mean": (lo + hi) / 2, "ci_low": lo, "ci_high": hi})
        return pd.DataFrame(rows)

    assert beyond.verdict(deltas((-0.5, -0.1), (-0.4, -0.05)))["verdict"].item() == "drop survives"
    assert beyond.verdict(deltas((-0.5, -0.1), (-0.2, 0.3)))["verdict"].item() == "drop explained"
    assert beyond.verdict(deltas((-0.5, 0.1), (-0.4, -0.05)))["verdict"].item() == "no drop"
    mixed = deltas((-0.5, -0.1), (-0.4, -0.05))
    mixed.loc[mixed["quantity"] == beyond.QUANTITIES["s_lzma"], ["ci_low", "ci_high"]] = (-0.1, 0.2)
    assert beyond.verdict(mixed)["verdict"].item() == "survives Markov only"


def test_detection_table_on_perfectly_separated_versions():
    from cae import beyond

    rows = []
    for c in range(6):
        rows.append({"clip": f"c{c}", "version": "clean", "perturbed": 0, "loss": 1.0 + c, "score": 5.0, "f": 0.0})
        rows.append({"clip": f"c{c}", "version": "noise", "perturbed": 1, "loss": 10.0 + c, "score": 1.0, "f": 1.0})
    t = beyond.detection_table(pd.DataFrame(rows), {"loss": 1, "score": -1}, combine=["loss", "f"], n_resamples=100)
    assert set(t["score"]) == {"loss", "score", "combined"} and (t["perturbation"] == "noise").all()
    assert np.allclose(t[["auroc", "accuracy"]].to_numpy(), 1.0) and (t["n"] == 6).all()
    flipped = beyond.detection_table(pd.DataFrame(rows), {"score": 1}, n_resamples=100)
    assert flipped["auroc"].item() == 0.0 and flipped["accuracy"].item() == 0.0
