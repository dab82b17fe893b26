"""The paper's noise-injection experiment as one function: clip losses, Δ, regions and noise-token diversity.

For every clip and noise length L: replace frames ``[onset, onset + L)`` with noise, re-encode, score, and record

* the clip losses (clean, noisy) and their difference (the per-token mean, as in the paper's Fig. 2; Protocol page: Scoring);
* the token-change span (first/last changed frame) from the token mask;
* region means of the codebook-mean Δℓ_t by the authors' detector (:func:`cae.analysis.paper_regions`, empty → 0)
  and by mask-anchored windows (:func:`cae.analysis.anchored_regions`, empty → NaN);
* noise-token diversity inside the noise span (unique tokens and the share of frames that repeat the previous
  frame's token, per codebook, averaged): a loud noise that collapses to one repeated token makes "assimilation"
  mere copying.

Rows carry the perturbation (JSON), its seed, and the model's provenance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cae.analysis import anchored_regions, clip_loss, codebook_mean, delta, mask_summary, paper_regions, token_mask
from cae.models.base import MusicLM
from cae.perturb import PAPER_LENGTHS, PAPER_ONSET_FRAME, Perturbation, paper_noise


def noise_diversity(codes: np.ndarray, start: int, stop: int) -> tuple[float, float]:
    """Mean over codebooks of (unique tokens, share of frames equal to the previous frame) in ``[start, stop)``.

    >>> noise_diversity(np.array([[1, 1, 1, 2], [3, 4, 5, 6]]), 0, 4)
    (3.0, 0.333...)
    """
    span = np.asarray(codes)[:, start:stop]
    if span.shape[1] == 0:
        return float("nan"), float("nan")
    unique = float(np.mean([len(np.unique(row)) for row in span]))
    repeat = float(np.mean(span[:, 1:] == span[:, :-1])) if span.shape[1] > 1 else float("nan")
    return unique, repeat


def run_noise_injection(
    model: MusicLM,
    clips: Mapping[str, Sequence[str | Path]],
    *,
    lengths: Sequence[int] = PAPER_LENGTHS,
    make_noise: Callable[[int, str, int], Perturbation] | None = None,
    onset_frame: int = PAPER_ONSET_FRAME,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the noise-injection grid; one row per (clip, length).

    Args:
        model: the scoring model.
        clips: ``{kind: [paths]}`` (kinds as in the paper: trainset / heldout / ood / generated ...).
        lengths: noise lengths in frames.
        make_noise: ``(length, kind, clip_index) -> Perturbation``; default :func:`cae.perturb.paper_noise`
            (white, replace, the paper's per-kind dBFS level, seed 42 + clip index).
        onset_frame: nominal onset (frame), used to anchor regions.
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    from cae.audio import load

    make_noise = make_noise or (lambda n, kind, i: paper_noise(n, _paper_kind(kind), file_index=i))
    info = model.info().as_dict()
    rows: list[dict[str, Any]] = []
    total = sum(len(v) for v in clips.values())
    bar = tqdm(total=total, disable=not progress, desc="noise injection", unit="clip")
    for kind, paths in clips.items():
        for index, path in enumerate(paths):
            wav = load(path, sample_rate=model.sample_rate)
            clean_codes = model.encode(wav, model.sample_rate)
            clean_nll = model.token_nll(clean_codes)
            noises = [make_noise(n, kind, index) for n in lengths]
            noisy_codes = model.encode(np.stack([p.apply(wav, model.sample_rate) for p in noises]),
                                       model.sample_rate)
            noisy_nll = model.token_nll(noisy_codes)
            loss_clean = clip_loss(clean_nll)
            for n, p, codes, nll in zip(lengths, noises, noisy_codes, noisy_nll):
                d = delta(nll, clean_nll)
                mask = token_mask(clean_codes, codes)
                span = mask_summary(mask)
                anchored = anchored_regions(d, mask, onset_frame, onset_frame + n)
                paper = paper_regions(codebook_mean(d), n)
                unique, repeat = noise_diversity(codes.numpy(), onset_frame, onset_frame + n)
                loss = clip_loss(nll)
                row = {
                    "kind": kind, "clip": str(path), "clip_index": index, "length": n,
                    "loss_clean": loss_clean, "loss": loss, "delta": loss - loss_clean,
                    "first_changed": span.first, "last_changed": span.last,
                    "noise_unique_tokens": unique, "noise_repeat_rate": repeat,
                    "perturbation": json.dumps(p.to_dict(), sort_keys=True), "seed": getattr(p, "seed", None),
                    **info,
                }
                row.update({f"anchored_{r}": v for r, v in anchored.means.items()})
                row.update({f"paper_{r}": v for r, v in paper.means.items()})
                rows.append(row)
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


def _paper_kind(kind: str) -> str:
    """The paper's level class for a corpus kind: held-out music is scored like training music."""
    return {"heldout": "trainset", "train": "trainset"}.get(kind, kind)


def summarize_noise_injection(df: pd.DataFrame) -> pd.DataFrame:
    """Mean Δ, share of clips with lower loss and region means per (kind, length)."""
    cols = ["delta", "anchored_peak", "anchored_assimilation", "anchored_recovery", "paper_peak",
            "paper_assimilation", "paper_recovery", "noise_unique_tokens", "noise_repeat_rate"]
    g = df.groupby(["kind", "length"])
    out = g[cols].mean()
    out["share_lower"] = g["delta"].apply(lambda s: float((s < 0).mean()))
    out["n"] = g.size()
    return out.reset_index()
