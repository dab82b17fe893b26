"""The two result tables of a sweep and the arrays behind a condition's token rows.

* **tokens**: one row per (clip, condition, codebook, frame) with ``nll``, the clean ``nll_clean`` at the same
  position (NaN past the clean clip's end) and ``changed`` (the token differs from the clean token);
* **summary**: one row per (clip, condition) with the clip loss (mean over finite tokens), its difference from the
  clean loss (``delta_loss``), the token-change span, the perturbation as JSON, the seed, the model's provenance and
  the package versions; a clip that cannot be used gets a row with ``error`` set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["ScoreTables", "condition_arrays"]


@dataclass
class ScoreTables:
    tokens: pd.DataFrame
    summary: pd.DataFrame

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """Write ``out`` (tokens) and ``<stem>.summary<suffix>`` (summary) as parquet; returns both paths."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        summary_path = out.with_name(f"{out.stem}.summary{out.suffix or '.parquet'}")
        self.tokens.to_parquet(out, index=False)
        self.summary.to_parquet(summary_path, index=False)
        return out, summary_path


def condition_arrays(nll: torch.Tensor, clean_nll: torch.Tensor, changed: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The ``nll_clean`` and ``changed`` columns of a condition as ``[K, F]`` arrays aligned with ``nll [K, F]``:
    the clean NLL at the same position (NaN past the clean clip's end) and whether the token differs from the
    clean token (frames the clean clip does not have count as changed; ``changed=None`` means none changed)."""
    k, f = nll.shape
    clean = np.full((k, f), np.nan, dtype=np.float32)
    n = min(f, clean_nll.shape[1])
    clean[:, :n] = clean_nll[:, :n].numpy()
    ch = np.zeros((k, f), dtype=bool)
    if changed is not None:
        ch[:, : changed.shape[1]] = changed
        ch[:, changed.shape[1]:] = True
    return clean, ch
