"""Score clips, clean and perturbed, into tidy tables.

For each clip: load (mono, model rate) → encode and score the clean audio once → for each perturbation, apply it
with its seed, re-encode, score → rows. Two tables come out:

* **tokens**: one row per (clip, condition, codebook, frame) with ``nll``, the clean ``nll_clean`` at the same
  position (NaN past the clean clip's end) and ``changed`` (the token differs from the clean token);
* **summary**: one row per (clip, condition) with the clip loss (mean over finite tokens), its difference from the
  clean loss, the token-change span, the perturbation as JSON, the seed, the model's provenance and the package
  versions; a clip that cannot be used (unreadable, too short, ...) gets a row with ``error`` set, and the rest of
  the run goes on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from cae.analysis import clip_loss, mask_summary, token_mask
from cae.checks import clip_warnings, perturbation_warning
from cae.errors import CaeError
from cae.models.base import MusicLM
from cae.provenance import file_sha256, versions

CLEAN = "clean"


class Perturbation(Protocol):
    """What :func:`score_clips` needs of a perturbation (see :mod:`cae.perturb`)."""

    def apply(self, wave: np.ndarray, sample_rate: int, rng: Any = None) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


def condition_label(p: Perturbation) -> str:
    """Short label of a perturbation for result rows (its ``label`` when it has one)."""
    label = getattr(p, "label", None)
    return str(label) if label else json.dumps(p.to_dict(), sort_keys=True)


SEEDINGS = ("content", "index")


def seed_offset(seeding: str, clip_index: int, clip_sha256: str | None) -> int:
    """What a clip adds to a perturbation's seed.

    * ``"content"`` (the corrected protocol): ``int(sha256[:6], 16)``, from the clip file's bytes, so a clip gets the
      same noise whatever list, order or machine it is scored in;
    * ``"index"`` (the authors' protocol, their "42 + file index"): the clip's position in the list.

    >>> seed_offset("index", 3, None), seed_offset("content", 3, "00002a" + "0" * 58)
    (3, 42)
    """
    if seeding == "index":
        return int(clip_index)
    if seeding == "content":
        if not clip_sha256:
            raise ValueError("content seeding needs the clip's SHA-256")
        return int(clip_sha256[:6], 16)
    raise ValueError(f"seeding must be one of {SEEDINGS}, got {seeding!r}")


def for_clip(p: Perturbation, offset: int) -> Perturbation:
    """The copy of ``p`` applied to a clip: its ``seed`` advanced by ``offset`` (:func:`seed_offset`), if it has one."""
    if dataclasses.is_dataclass(p) and hasattr(p, "seed"):
        return dataclasses.replace(p, seed=int(p.seed) + int(offset))  # type: ignore[type-var]
    return p


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
    tokens = pd.concat(token_frames, ignore_index=True) if token_frames else _token_rows("", "", torch.zeros(0, 0), torch.zeros(0, 0), None)
    summary = pd.DataFrame(rows)
    for col in ("error", "warning", "perturbation", "seed", "loss", "delta_loss", "n_frames", "first_changed",
                "last_changed", "n_changed_tokens"):
        if col not in summary:
            summary[col] = None
    return ScoreTables(tokens=tokens, summary=summary)
