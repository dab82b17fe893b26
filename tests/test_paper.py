"""Tests for cae.paper's protocol and presets: the constants, the one table of dataset-kind names, and the paper's
perturbations built from them (the published numbers are checked in test_study.py, the claims in test_claims.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import SR, music, rms_db

from cae import paper as P
from cae.errors import PerturbationError
from cae.paper import paper_block_swap, paper_noise, paper_pair_swaps, paper_shuffle
from cae.perturb import BlockSwap, RandomPairSwaps, SegmentSwap, Span

HOP = 640


def test_paper_constants() -> None:
    assert P.PAPER_ONSET_SAMPLE == 160000 == P.PAPER_ONSET_FRAME * HOP
    assert P.PAPER_SAMPLE_RATE / P.PAPER_FRAME_RATE == HOP
    assert P.PAPER_LENGTHS == (5, 10, 50, 100, 150, 200)
    assert P.PAPER_LEVELS_DBFS == {"ood": -30.0, "generated": -20.0, "trainset": -12.0}
    assert P.PAPER_CLIPS == {"trainset": 20, "ood": 78, "generated": 140}
    assert len(P.PAPER_TOP_KS) == 7 and P.PAPER_SHUFFLE_RANGE_FRAMES == (0, 700)


@pytest.mark.parametrize(
    ("kind", "level"),
    [("ood", -30.0), ("asap", -30.0), ("ASAP", -30.0), ("generated", -20.0), ("trainset", -12.0), ("train", -12.0),
     ("training", -12.0), ("trainingset", -12.0), ("heldout", -12.0)],
)
def test_one_alias_table_for_every_caller(kind: str, level: float) -> None:
    """The names the two former tables knew (perturb's and study's) all resolve, for the level and the preset."""
    assert P.paper_level(kind) == level
    assert paper_noise(50, kind).level_db == level


def test_paper_level_names_the_kinds_it_knows() -> None:
    with pytest.raises(P.PaperKindError, match=r"ood \(-30 dBFS\).*not for kind 'mine'.*heldout"):
        P.paper_level("mine")
    assert P.paper_kind("mine") is None


@pytest.mark.parametrize(
    ("kind", "level"), [("ood", -30.0), ("generated", -20.0), ("trainset", -12.0), ("training", -12.0), ("ASAP", -30.0)]
)
@pytest.mark.parametrize("length", P.PAPER_LENGTHS)
def test_paper_noise(kind: str, level: float, length: int) -> None:
    p = paper_noise(length, kind, file_index=4, channel=1)
    assert (p.colour, p.mode, p.reference, p.crossfade_ms, p.level_db) == ("white", "replace", "dbfs", 0.0, level)
    assert p.seed == 47 and p.legacy_rng
    assert p.span.to_samples(SR) == (160000, 160000 + length * HOP)


def test_paper_noise_level_in_a_real_clip() -> None:
    x = music(15.0)
    y = paper_noise(5, "generated", file_index=0).apply(x, SR)
    assert rms_db(y[160000:163200]) == pytest.approx(-20.0, abs=0.01)  # std-normalised, near-zero mean


def test_paper_noise_rejects_unknown_dataset() -> None:
    with pytest.raises(PerturbationError, match="dataset_kind"):
        paper_noise(100, "musiccaps")
    with pytest.raises(PerturbationError):
        paper_noise(100, "ood", colour="pink")  # the authors had no 1/f pink
    with pytest.raises(PerturbationError, match="length_frames"):
        paper_noise(2.5, "ood")  # type: ignore[arg-type]


def test_paper_shuffles() -> None:
    assert paper_block_swap(100) == BlockSwap(Span(250, 100))
    for length in P.PAPER_SHUFFLE_LENGTHS:
        p = paper_shuffle(length, seed=1)
        assert isinstance(p, SegmentSwap if length >= 100 else RandomPairSwaps)
        x = music(14.1)
        y = p.apply(x, SR)
        assert not np.array_equal(y, x)
        np.testing.assert_array_equal(np.sort(y), np.sort(x))
        np.testing.assert_array_equal(y[700 * HOP :], x[700 * HOP :])  # the range ends at 14 s


@pytest.mark.parametrize("length", range(1, 201))
def test_pair_swap_budget_is_what_the_shuffle_draws(length: int) -> None:
    """paper_pair_swaps(L) is the authors' floor(0.2 · 700 / 2L) and the number of pairs RandomPairSwaps draws."""
    assert paper_pair_swaps(length) == int(0.2 * 700 / (2 * length))
    p = RandomPairSwaps(length, 0, 700, P.PAPER_PAIR_SWAP_BUDGET, P.PAPER_FRAME_RATE)
    if paper_pair_swaps(length):
        assert len(p.plan(700 * HOP, SR)) == paper_pair_swaps(length)
    else:
        with pytest.raises(PerturbationError, match="allows no pair"):
            p.plan(700 * HOP, SR)
