"""The naive scorer, kept as the test oracle of :func:`cae.scoring.run_sweep`.

For each clip: load (mono, model rate) → encode and score the clean audio once → for each perturbation, apply it with
its seed, re-encode the whole clip, score it from the first frame → rows. No cache, no reuse of the clean pass, no
batching: every number comes from the model's plain ``encode`` and ``token_nll``, which is what makes it an
independent check of the sweep engine (``tests/test_sweep.py``). Use :func:`cae.scoring.run_sweep` for real work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cae.analysis import clip_loss, mask_summary, token_mask
from cae.checks import clip_warnings, perturbation_warning
from cae.errors import CaeError
from cae.models.base import MusicLM
from cae.perturb import Perturbation
from cae.provenance import file_sha256, versions
from cae.scoring.conditions import CLEAN, condition_label, for_clip, seed_offset
from cae.scoring.tables import ScoreTables, condition_arrays

__all__ = ["score_clips"]


def _token_rows(clip: str, condition: str, nll: torch.Tensor, clean_nll: torch.Tensor,
                changed: np.ndarray | None) -> pd.DataFrame:
    k, f = nll.shape
    clean, ch = condition_arrays(nll, clean_nll, changed)
    return pd.DataFrame({
        "clip": clip,
        "condition": condition,
        "codebook": np.repeat(np.arange(k, dtype=np.int16), f),
        "frame": np.tile(np.arange(f, dtype=np.int32), k),
        "nll": nll.numpy().reshape(-1),
        "nll_clean": clean.reshape(-1),
        "changed": ch.reshape(-1),
    })


def score_clips(
    paths: Sequence[str | Path],
    model: MusicLM,
    perturbations: Iterable[Perturbation] = (),
    *,
    prompt: str | None = None,
    progress: bool = True,
    seeding: str = "content",
) -> ScoreTables:
    """Score every clip clean and under every perturbation.

    Args:
        paths: audio files (anything :func:`cae.audio.load` reads).
        model: a loaded :class:`~cae.models.base.MusicLM`.
        perturbations: perturbation objects. A perturbation with a ``seed`` field is applied to each clip as a
            copy with ``seed + seed_offset(seeding, i, sha256)`` (:func:`seed_offset`), so clips get different
            noise, and the row's ``perturbation`` JSON holds the exact seed used.
        prompt: text condition (``None`` = null condition).
        progress: show a tqdm progress bar.
        seeding: ``"content"`` (a clip's noise follows from its bytes) or ``"index"`` (the authors' 42 + index).

    Returns:
        :class:`ScoreTables` (tokens, summary).
    """
    from tqdm.auto import tqdm

    from cae.audio import load

    perturbations = list(perturbations)
    info = model.info(prompt).as_dict()
    vers = {f"version_{k}": v for k, v in versions().items()}
    token_frames: list[pd.DataFrame] = []
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(paths) * (1 + len(perturbations)), disable=not progress, unit="cond", desc="scoring")
    for index, path in enumerate(paths):
        clip = str(path)
        base = {"clip": clip, "clip_index": index, **info, **vers}
        try:
            sha = file_sha256(path)
            wav = load(path, sample_rate=model.sample_rate)
            clean_codes = model.encode(wav, model.sample_rate)
            clean_nll = model.token_nll(clean_codes, prompt=prompt)
        except (CaeError, OSError, ValueError) as e:
            rows.append({**base, "condition": CLEAN, "error": f"{type(e).__name__}: {e}"})
            bar.update(1 + len(perturbations))
            continue
        clean_loss = clip_loss(clean_nll)
        base["clip_sha256"] = sha
        base["duration_s"] = len(wav) / model.sample_rate
        clip_note = clip_warnings(clip, wav, model, int(clean_codes.shape[1]))
        rows.append({**base, "condition": CLEAN, "perturbation": None, "loss": clean_loss, "delta_loss": 0.0,
                     "n_frames": clean_codes.shape[1], "error": None, "warning": clip_note})
        token_frames.append(_token_rows(clip, CLEAN, clean_nll, clean_nll, None))
        bar.update(1)
        for p in perturbations:
            p = for_clip(p, seed_offset(seeding, index, sha))
            label = condition_label(p)
            spec = json.dumps(p.to_dict(), sort_keys=True)
            seed_used = getattr(p, "seed", None)
            try:
                codes = model.encode(p.apply(wav, model.sample_rate, None), model.sample_rate)
                nll = model.token_nll(codes, prompt=prompt)
            except (CaeError, ValueError) as e:
                rows.append({**base, "condition": label, "perturbation": spec, "seed": seed_used,
                             "error": f"{clip}: {type(e).__name__}: {e}"})
                bar.update(1)
                continue
            changed = token_mask(clean_codes, codes)
            span = mask_summary(changed)
            loss = clip_loss(nll)
            rows.append({**base, "condition": label, "perturbation": spec, "seed": seed_used, "loss": loss,
                         "delta_loss": loss - clean_loss, "n_frames": codes.shape[1],
                         "first_changed": span.first, "last_changed": span.last,
                         "n_changed_tokens": int(changed.sum()), "error": None,
                         "warning": "; ".join(w for w in (clip_note, perturbation_warning(p, wav, model.sample_rate))
                                              if w) or None})
            token_frames.append(_token_rows(clip, label, nll, clean_nll, changed))
            bar.update(1)
    bar.close()
    empty = _token_rows("", "", torch.zeros(0, 0), torch.zeros(0, 0), None)
    tokens = pd.concat(token_frames, ignore_index=True) if token_frames else empty
    summary = pd.DataFrame(rows)
    for col in ("error", "warning", "perturbation", "seed", "loss", "delta_loss", "n_frames", "first_changed",
                "last_changed", "n_changed_tokens"):
        if col not in summary:
            summary[col] = None
    return ScoreTables(tokens=tokens, summary=summary)
