"""The paper's published numbers, as tables to put beside ours (the book's Protocol page, Published numbers, gives
their sources).

Values marked "≈" were read off the figures (about ±0.02); the Fig. 4 annotations and the shuffle CSV are exact.
Dataset kinds use cae's names: ``ood`` (the paper's ASAP OOD), ``trainset`` (TrainingSet), ``generated``. Model names
are the MusicGen checkpoints' hub ids. The protocol that produced them is :mod:`cae.paper.protocol`.

>>> fig2().query("model == 'facebook/musicgen-small' and kind == 'ood' and length == 200")["delta"].item()
-0.5
>>> fig4().query("model == 'facebook/musicgen-small' and region == 'assimilation'")["mean"].item()
-1.5
"""

from __future__ import annotations

import pandas as pd

from cae.paper.protocol import PAPER_LENGTHS

__all__ = ["CHECKPOINTS", "LARGE", "MEDIUM", "MELODY", "SMALL", "block_swap_csv", "demo_colours", "fig2", "fig4",
           "fig5", "model_key"]

SMALL, MEDIUM, LARGE = "facebook/musicgen-small", "facebook/musicgen-medium", "facebook/musicgen-large"
MELODY = "facebook/musicgen-melody"
#: The four checkpoints of the paper's figures.
CHECKPOINTS = (SMALL, MEDIUM, MELODY, LARGE)

# Fig. 2: mean Δ of the clip loss (white noise) per length; ≈ readings (Protocol page: Published numbers).
_FIG2 = {
    SMALL: {"ood": (0.03, 0.03, -0.07, -0.21, -0.36, -0.50), "trainset": (0.01, 0.02, -0.03, -0.06, -0.10, -0.16),
            "generated": (0.0, 0.0, -0.10, -0.22, -0.27, -0.51)},
    MEDIUM: {"ood": (-0.03, -0.04, -0.07, -0.11, -0.15, -0.19), "trainset": (-0.01, -0.03, -0.07, -0.08, -0.09, -0.10),
             "generated": (0.0, -0.01, -0.09, -0.17, -0.14, -0.33)},
    MELODY: {"ood": (0.01, -0.01, -0.11, -0.28, -0.44, -0.58), "trainset": (-0.02, -0.05, -0.12, -0.20, -0.29, -0.37),
             "generated": (-0.01, -0.03, -0.16, -0.33, -0.39, -0.65)},
    LARGE: {"ood": (-0.01, -0.02, -0.06, -0.14, -0.22, -0.28), "trainset": (0.01, 0.0, -0.05, -0.07, -0.11, -0.16),
            "generated": (0.02, 0.01, -0.05, -0.12, -0.20, -0.27)},
}
# SD across songs at 200 tk (≈).
_FIG2_SD200 = {
    SMALL: {"ood": 0.32, "trainset": 0.27, "generated": 0.38}, MEDIUM: {"ood": 0.39, "trainset": 0.25, "generated": 0.30},
    MELODY: {"ood": 0.30, "trainset": 0.34, "generated": 0.37}, LARGE: {"ood": 0.46, "trainset": 0.22, "generated": 0.39},
}
# Fig. 4 annotations: mean of dataset means ± mean of dataset SDs, L ∈ {50..200} pooled (exact).
_FIG4 = {
    SMALL: {"peak": (0.79, 0.70), "assimilation": (-1.50, 0.95), "recovery": (0.04, 0.07)},
    MEDIUM: {"peak": (0.57, 0.65), "assimilation": (-0.86, 0.94), "recovery": (-0.03, 0.18)},
    MELODY: {"peak": (0.54, 0.58), "assimilation": (-3.83, 1.47), "recovery": (-0.17, 0.16)},
    LARGE: {"peak": (0.55, 0.67), "assimilation": (-1.08, 1.00), "recovery": (0.05, 0.15)},
}
# Fig. 5 (MusicGen-Medium, TrainingSet, random shuffles): mean loss per shuffle length (≈; 0 = original).
_FIG5 = {0: 6.80, 1: 7.08, 2: 7.02, 5: 6.93, 10: 6.94, 35: 6.89, 50: 6.86, 70: 6.79, 100: 6.83, 150: 6.85, 200: 6.86}
# The authors' CSV: adjacent-block swap at 5 s, TrainingSet, MusicGen-Small: mean Δ per length (exact).
_BLOCK_SWAP = {5: 0.406, 10: 0.299, 50: 0.130, 100: 0.083, 150: 0.052, 200: 0.052}


def model_key(model_id: str) -> str | None:
    """The paper checkpoint a model id refers to (``"facebook/musicgen-small"`` for ``"audiocraft:facebook/
    musicgen-small"`` or a local folder ending in ``musicgen-small``), or ``None``.

    An ``@random`` architecture maps to its checkpoint too, so that a dry run exercises the paper-comparison code.

    >>> model_key("audiocraft:facebook/musicgen-melody"), model_key("facebook/musicgen-small@random")
    ('facebook/musicgen-melody', 'facebook/musicgen-small')
    >>> model_key("reference") is None
    True
    """
    tail = str(model_id).removesuffix("@random").rstrip("/").split("/")[-1]
    for c in CHECKPOINTS:
        if c.split("/")[-1] == tail:
            return c
    return None


def fig2() -> pd.DataFrame:
    """Fig. 2: ``model, kind, length, delta`` (≈ readings) and ``sd`` (only at 200 tk)."""
    rows = []
    for model, kinds in _FIG2.items():
        for kind, values in kinds.items():
            for n, v in zip(PAPER_LENGTHS, values, strict=True):
                sd = _FIG2_SD200[model][kind] if n == 200 else float("nan")
                rows.append({"model": model, "kind": kind, "length": n, "delta": v, "sd": sd})
    return pd.DataFrame(rows)


def fig4() -> pd.DataFrame:
    """Fig. 4 annotations: ``model, region, mean, sd`` (pooled over kinds and L = 50–200)."""
    return pd.DataFrame([{"model": m, "region": r, "mean": v[0], "sd": v[1]}
                         for m, regions in _FIG4.items() for r, v in regions.items()])


def fig5() -> pd.DataFrame:
    """Fig. 5 means: ``length`` (0 = original), mean ``loss`` and its ``delta`` against the original (MusicGen-Medium,
    TrainingSet; ≈).

    >>> fig5().query("length == 1")["delta"].round(2).item()
    0.28
    """
    return pd.DataFrame([{"model": MEDIUM, "kind": "trainset", "length": n, "loss": v, "delta": v - _FIG5[0]}
                         for n, v in _FIG5.items()])


def block_swap_csv() -> pd.DataFrame:
    """The authors' block-swap CSV: mean ``delta`` per ``length`` (MusicGen-Small, TrainingSet, n = 20; exact)."""
    return pd.DataFrame([{"model": SMALL, "kind": "trainset", "length": n, "delta": v} for n, v in _BLOCK_SWAP.items()])


# Demo Figs. 2-1..2-3: mean per-token loss pooled over files, clean ("ref") and each noise type at 200 tk (≈).
# The authors' colours are Butterworth shapes (Protocol page: Noise injection): cae calls them butter-pink/-brown/-blue.
_DEMO_COLOURS = {
    ("ood", SMALL): (4.19, 3.70, 3.72, 4.19, 4.47), ("ood", MEDIUM): (6.47, 6.28, 6.02, 6.55, 6.80),
    ("ood", MELODY): (3.64, 2.70, 2.87, 2.99, 3.33), ("generated", SMALL): (5.59, 5.08, 4.73, 5.62, 5.86),
    ("generated", MEDIUM): (6.67, 6.35, 5.96, 6.76, 6.88), ("generated", MELODY): (5.01, 3.82, 3.74, 4.20, 4.75),
    ("trainset", SMALL): (5.55, 5.38, 4.79, 5.72, 5.87), ("trainset", MEDIUM): (6.80, 6.72, 6.20, 6.89, 6.99),
    ("trainset", MELODY): (5.23, 3.90, 3.76, 4.30, 4.86),
}


def demo_colours() -> pd.DataFrame:
    """Demo page, noise colours at 200 tk: ``kind, model, colour, loss, delta`` (Δ against the clean "ref"; ≈;
    Melody values are codebook 0 with the self-target bug, Protocol page: Scoring)."""
    rows = []
    for (kind, model), (ref, *vals) in _DEMO_COLOURS.items():
        for colour, v in zip(("white", "butter-blue", "butter-pink", "butter-brown"), vals):
            rows.append({"kind": kind, "model": model, "colour": colour, "loss": v, "delta": round(v - ref, 2)})
    return pd.DataFrame(rows)
