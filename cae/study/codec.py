"""The codec and the material, apart from the LM: what a codec makes of noise (:func:`codec_noise_response`), how
loud each kind of music is against the paper's absolute noise levels (:func:`music_levels`), and how faithfully a
codec round-trips the clean clips (:func:`resynthesis_quality`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cae.analysis import span_diversity
from cae.audio import load, rms_dbfs
from cae.datasets import resolve_datasets
from cae.errors import ModelError
from cae.models.base import MusicLM
from cae.paper.protocol import PAPER_ONSET_FRAME, paper_kind, paper_level
from cae.perturb import Noise, Span
from cae.reference.codec import codec_quality, perplexity
from cae.study.run import GENERATION_SEED

__all__ = ["codec_noise_response", "music_levels", "resynthesis_quality", "resynthesis_quality_table"]


def codec_noise_response(model: MusicLM, clips: Mapping[str, Sequence[str | Path]], *,
                         dbfs_levels: Sequence[float] = (-40.0, -30.0, -20.0, -10.0, 0.0),
                         snr_levels: Sequence[float] = (20.0, 10.0, 0.0, -10.0, -20.0),
                         length: int = 90, onset: int = PAPER_ONSET_FRAME, seed: int = 0) -> pd.DataFrame:
    """What a codec does to white noise, without the LM: per clip and noise level, the mean over codebooks of the
    distinct tokens inside ``[onset, onset + length)`` and the share of those frames repeating the previous frame's
    token, for noise replacing the music at absolute levels (``level_mode="dbfs"``) and at SNRs relative to each clip
    (``"snr"``); ``level_mode="clean"`` rows give the same statistics for the music itself.

    Returns:
        Rows ``model_id, kind, clip, level_mode, level_db, unique_tokens, repeat_rate``.
    """
    rows = []
    settings = [("clean", float("nan"))] + [("dbfs", float(v)) for v in dbfs_levels] + \
               [("snr", float(v)) for v in snr_levels]
    for kind, paths in clips.items():
        for path in paths:
            wave = load(path, sample_rate=model.sample_rate)
            for mode, level in settings:
                if mode == "clean":
                    x = wave
                else:
                    p = Noise(span=Span(onset, length, "frames", frame_rate=model.frame_rate), level_db=level,
                              reference="dbfs" if mode == "dbfs" else "snr-rms", seed=seed)
                    x = p.apply(wave, model.sample_rate)
                codes = np.asarray(model.encode(x, model.sample_rate))
                unique, repeat = span_diversity(codes, onset, onset + length)
                rows.append({"model_id": model.model_id, "kind": kind, "clip": str(path), "level_mode": mode,
                             "level_db": level, "unique_tokens": unique, "repeat_rate": repeat})
    return pd.DataFrame(rows)


def music_levels(models: Sequence[MusicLM], datasets: Mapping[str, str], *, n_clips: int | None = None
                 ) -> pd.DataFrame:
    """How loud the music of each dataset kind is, against the paper's absolute noise level for that kind.

    With the paper's fixed dBFS per kind (``level_mode="paper"``) the signal-to-noise ratio a clip gets depends on
    how loud the clip is: this table shows by how much. Clips as :func:`run` resolves them (per model, at the
    model's rate), pooled over models.

    Returns:
        One row per kind: ``mean``, ``min``, ``max`` of the clips' RMS level (:func:`cae.audio.rms_dbfs`, dBFS,
        rounded to 0.1), ``paper noise dBFS`` (NaN for a kind the paper has no level for) and ``effective SNR (dB)``
        (mean music level minus the noise level).
    """
    rows = []
    for model in models:
        for kind, paths in resolve_datasets(datasets, n_clips=n_clips, model=model, seed=GENERATION_SEED).items():
            rows += [{"kind": kind, "rms_dbfs": rms_dbfs(load(p, sample_rate=model.sample_rate))} for p in paths]
    table = pd.DataFrame(rows).groupby("kind")["rms_dbfs"].agg(["mean", "min", "max"]).round(1)
    table["paper noise dBFS"] = [paper_level(k) if paper_kind(k) else np.nan for k in table.index]
    table["effective SNR (dB)"] = (table["mean"] - table["paper noise dBFS"]).round(1)
    return table


def resynthesis_quality_table(models: Sequence[MusicLM], clips: Mapping[str, Mapping[str, Sequence[str | Path]]]
                              ) -> pd.DataFrame:
    """:func:`resynthesis_quality` of each model on ``clips[model.model_id]`` (``{kind: paths}``), averaged over
    clips per model and kind, in the book's column order."""
    cols = ["logmel_l1", "si_snr_db", "snr_db", "perplexity", "codes_used", "encode_s", "score_s", "decode_s"]
    table = pd.concat([resynthesis_quality(m, clips[m.model_id]) for m in models], ignore_index=True)
    out = table.groupby(["model_id", "kind"])[cols].mean().round(3)
    out.insert(0, "clips", table.groupby(["model_id", "kind"]).size())
    return out


def resynthesis_quality(model: MusicLM, clips: Mapping[str, Sequence[str | Path]]) -> pd.DataFrame:
    """How faithfully the codec round-trips each clean clip, ``decode(encode(x))`` against ``x``, and what it costs.

    Columns: ``model_id, kind, clip``, :func:`cae.reference.codec.codec_quality`'s ``snr_db`` (waveform SNR;
    meaningful only for a codec that keeps phase, like EnCodec, not for a Griffin-Lim decoder), ``si_snr_db`` and
    ``logmel_l1`` (phase-blind), the per-codebook code ``perplexity`` and ``codes_used`` (share of the entries that
    occur in the clip; means over codebooks), and ``encode_s`` /
    ``score_s`` / ``decode_s`` (wall-clock seconds for this clip). Models that cannot decode give NaN qualities.
    """
    rows = []
    for kind, paths in clips.items():
        for path in paths:
            x = load(path, sample_rate=model.sample_rate)
            t0 = time.perf_counter()
            codes = model.encode(x, model.sample_rate)
            t1 = time.perf_counter()
            model.token_nll(codes)
            t2 = time.perf_counter()
            row = {"model_id": model.model_id, "kind": kind, "clip": str(path), "encode_s": t1 - t0,
                   "score_s": t2 - t1, "perplexity": float(np.mean(perplexity(codes.numpy(), model.card))),
                   "codes_used": float(np.mean([len(np.unique(c)) for c in codes.numpy()])) / model.card}
            try:
                y = model.decode(codes)
                row["decode_s"] = time.perf_counter() - t2
                row.update(codec_quality(x, y, model.sample_rate))
            except ModelError:
                row.update({"decode_s": np.nan, "snr_db": np.nan, "si_snr_db": np.nan, "logmel_l1": np.nan})
            rows.append(row)
    return pd.DataFrame(rows)
