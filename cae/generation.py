"""The "Generated" dataset kind: seeded unconditional samples over a top-k sweep (Protocol page: Models and datasets).

The authors sampled MusicGen-small unconditionally (temperature 1, no seed) for 7 top-k values × 20 clips of 15 s,
decoded, loudness-normalised (audiocraft's ``strategy="loudness"``, −14 LUFS) and saved 16-bit WAVs, which were then
re-encoded for scoring; so the scored tokens were not the sampled ones (Protocol page: What cae corrects). Here every sample has its own
seed (``seed + 1000·k_index + i``); the decoded audio is loudness-normalised the same way but written as float WAV
(nothing clips), and the sampled codes are kept beside it (``.npy``), so both "re-encoded audio" and "the model's
own tokens" can be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cae.models.base import MusicLM
from cae.models.sampling import SAMPLER_VERSION
from cae.paper.protocol import PAPER_TOP_KS


def write_generated_set(
    model: MusicLM,
    out_dir: str | Path,
    *,
    top_ks: Sequence[int] = PAPER_TOP_KS,
    per_k: int = 20,
    seconds: float = 15.0,
    temperature: float = 1.0,
    seed: int = 0,
    loudness_lufs: float | None = -14.0,
    progress: bool = True,
    batch_size: int = 20,
) -> pd.DataFrame:
    """Sample, decode and write a Generated set; returns (and writes) its manifest.

    The clips of one top-k value are sampled ``batch_size`` at a time, each with its own seed, so a clip is the same
    whatever the batch size (:meth:`~cae.models.base.MusicLM.generate` with a list of seeds).

    Files: ``<out_dir>/topk{K}/sample_{i:03d}.wav`` (float32) and ``.npy`` (codes ``[K, F]``), plus
    ``<out_dir>/manifest.csv`` with one row per clip (path relative to ``out_dir``, kind ``generated``, top_k,
    temperature, seed, model id and revision, and the sampling method, :data:`cae.models.sampling.SAMPLER_VERSION`).
    """
    import soundfile as sf
    from tqdm.auto import tqdm

    from cae.audio import normalize_loudness

    out_dir = Path(out_dir)
    rows = []
    info = model.info().as_dict()
    bar = tqdm(total=len(top_ks) * per_k, disable=not progress, desc="generating", unit="clip")
    for ki, k in enumerate(top_ks):
        sub = out_dir / f"topk{k}"
        sub.mkdir(parents=True, exist_ok=True)
        for lo in range(0, per_k, batch_size):
            index = list(range(lo, min(lo + batch_size, per_k)))
            seeds = [seed + 1000 * ki + i for i in index]
            batch = model.generate(seconds, top_k=k, temperature=temperature, seed=seeds)
            for i, clip_seed, codes in zip(index, seeds, batch):
                wav = model.decode(codes)
                if loudness_lufs is not None:
                    wav = normalize_loudness(wav, model.sample_rate, loudness_lufs)
                stem = sub / f"sample_{i:03d}"
                sf.write(stem.with_suffix(".wav"), wav.astype(np.float32), model.sample_rate, subtype="FLOAT")
                np.save(stem.with_suffix(".npy"), codes.numpy())
                rows.append({
                    "path": str(stem.with_suffix(".wav").relative_to(out_dir)), "kind": "generated", "top_k": k,
                    "temperature": temperature, "seed": clip_seed, "seconds": seconds,
                    "loudness_lufs": loudness_lufs, "model_id": info["model_id"], "revision": info["revision"],
                    "sampler": SAMPLER_VERSION,
                })
                bar.update(1)
    bar.close()
    manifest = pd.DataFrame(rows)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    return manifest
