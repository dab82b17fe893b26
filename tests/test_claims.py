"""Tests for cae.paper.claims' comparisons with the paper: the Fig. 2 table beside a run's and the published ranges
the claims quote, against values read off the tables by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cae.paper import claims


def test_fig2_beside_joins_each_checkpoint_on_kind_and_length() -> None:
    ours = pd.DataFrame({
        "model_id": ["facebook/musicgen-small@random"] * 3 + ["audiocraft:facebook/musicgen-medium", "reference"],
        "kind": ["ood", "ood", "heldout", "trainset", "ood"],
        "length": [200, 7, 200, 5, 200],
        "mean": [-0.4, 0.1, -0.2, 0.02, -9.0],
    })
    t = claims.fig2_beside(ours)
    assert list(t.columns) == ["model", "kind", "length", "paper", "sd", "ours"]
    # by hand from the paper's Fig. 2: Small/OOD at 200 tk is −0.50 (SD 0.32); Medium/TrainingSet at 5 tk is −0.01
    # (no SD read there); length 7, kind heldout and the non-paper model have no counterpart
    rows = t.values.tolist()
    assert rows[0] == ["facebook/musicgen-small", "ood", 200, -0.5, 0.32, -0.4]
    assert rows[1][:4] == ["facebook/musicgen-medium", "trainset", 5, -0.01] and math.isnan(rows[1][4])
    assert rows[1][5] == 0.02 and len(rows) == 2


def test_fig2_beside_is_empty_without_a_paper_checkpoint() -> None:
    t = claims.fig2_beside(pd.DataFrame({"model_id": ["reference"], "kind": ["ood"], "length": [200], "mean": [0.0]}))
    assert t.empty and list(t.columns) == ["model", "kind", "length", "paper", "sd", "ours"]


@pytest.mark.parametrize(
    ("quoted", "expected"),
    [
        (claims._fig2_range(5), "−0.03 … +0.03"),  # Fig. 2 at 5 tk: Medium OOD −0.03 … Small OOD +0.03
        (claims._fig2_range(200), "−0.10 … −0.65"),  # Fig. 2 at 200 tk: Medium TrainingSet … Melody Generated
        (claims._fig4_range("peak"), "+0.54 … +0.79"),
        (claims._fig4_range("assimilation"), "−0.86 … −3.83"),
        (claims._fig4_range("recovery"), "−0.17 … +0.05"),
        (claims._fig5_range(claims.SHORT_SHUFFLES), "+0.13 … +0.28"),  # 6.93, 7.02, 7.08 against 6.80
        (claims._fig5_range(claims.LONG_SHUFFLES), "+0.03 … +0.06"),  # 6.83, 6.85, 6.86 against 6.80
    ],
)
def test_the_quoted_ranges_are_the_published_numbers(quoted: str, expected: str) -> None:
    assert quoted == expected
