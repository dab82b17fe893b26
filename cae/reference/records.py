"""What was recorded when the reference models were trained, as tables for the book.

Everything here is read from the metadata that ships with the weights (``reference.json``, ``codec/training.json``,
``checkpoints/checkpoints.json``), so the book shows the numbers of the files it loads, not numbers copied by hand.

>>> sorted(decoder_curves(["reference-mel"])["model"].unique())
['reference-mel']
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd

from cae.reference.model import FAMILIES, read_meta

__all__ = ["codec_curve", "decoder_curves", "loss_table"]


def decoder_curves(families: Sequence[str] = tuple(FAMILIES)) -> pd.DataFrame:
    """Held-out loss along each decoder's training run: ``model, step, heldout_loss, train_loss, minutes``."""
    rows = []
    for family in families:
        for point in read_meta(FAMILIES[family])["curve"]:
            rows.append({"model": family, **point})
    return pd.DataFrame(rows)


def loss_table(families: Sequence[str] = tuple(FAMILIES)) -> pd.DataFrame:
    """Mean per-token NLL per corpus kind at the end of training, beside the unigram (token frequencies of the
    training set) and uniform baselines on the same codes: ``model, kind, loss, unigram, uniform, steps``."""
    rows = []
    for family in families:
        meta = read_meta(FAMILIES[family])
        steps = int(meta["curve"][-1]["step"]) if meta.get("curve") else None
        for kind, loss in meta["loss_per_kind"].items():
            rows.append({"model": family, "kind": kind, "loss": loss, "unigram": meta["unigram_per_kind"][kind],
                         "uniform": meta["uniform_nll"], "steps": steps,
                         "codebook_size": int(round(math.exp(meta["uniform_nll"])))})
    return pd.DataFrame(rows)


def codec_curve(family: str = "reference") -> pd.DataFrame:
    """The neural codec's training record: held-out quality every evaluation (``step, snr_db, si_snr_db,
    logmel_l1, perplexity`` and the running training losses)."""
    meta = json.loads((FAMILIES[family] / "codec" / "training.json").read_text())
    return pd.DataFrame(meta["curve"])
