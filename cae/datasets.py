"""Dataset specs: one string names where a dataset kind's clips come from, so a notebook parameter can say it.

A study takes ``{kind: spec}`` (e.g. ``{"ood": "reference:ood", "generated": "generated"}``) and
:func:`resolve_datasets` turns it into ``{kind: [paths]}``, building what is missing once and caching it:

* ``"reference:<kind>"``: the reference corpus' 15 s clips of that kind (``trainset``, ``heldout``, ``ood``), built
  on first use by :func:`cae.data.corpus.ensure_reference_corpus` (minutes; then reused).
* ``"generated"``: the paper's Generated kind made by the model under study: seeded unconditional samples over
  the paper's top-k values (:func:`cae.generation.write_generated_set`), cached per model revision in
  ``<data dir>/generated/``. ``"generated:<model name>"`` samples with another registered model instead.
* ``"synthetic"``: deterministic synthesised melodies (harmonic tones with decaying envelopes on a pentatonic
  scale, 15 s, −20 dBFS RMS), for smoke runs and tests that must not wait for the corpus.
* anything else: a folder of audio files (every audio file under it, sorted; :func:`cae.data.folder.folder_dataset`)
  or a glob pattern; a relative path is tried from the working folder, then from the checkout's root.

The first ``n_clips`` clips in the spec's stable order are used (all when ``n_clips`` is ``None``); for
``generated`` they are taken round-robin over the top-k values so that every k is represented.

>>> parse_spec("reference:ood"), parse_spec("generated"), parse_spec("generated:tiny"), parse_spec("synthetic")
(('reference', 'ood'), ('generated', None), ('generated', 'tiny'), ('synthetic', None))
>>> parse_spec("/data/asap")
('path', '/data/asap')
"""

from __future__ import annotations

import glob as _glob
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cae.errors import CaeError
from cae.models.base import MusicLM
from cae.paper.protocol import PAPER_CLIP_SECONDS, PAPER_CLIPS_PER_TOP_K, PAPER_TOP_KS
from cae.paths import REPO_ROOT, cache_dir, data_dir

__all__ = ["DatasetError", "parse_spec", "resolve_dataset", "resolve_datasets", "synthetic_clips"]



class DatasetError(CaeError):
    """A dataset spec that cannot be resolved (unknown kind, empty folder, ...)."""


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a spec into ``(source, argument)``: ``reference``/``generated``/``synthetic``/``path``."""
    spec = str(spec).strip()
    m = re.fullmatch(r"(reference|generated|synthetic)(?::(.+))?", spec)
    if m:
        if m.group(1) == "reference" and not m.group(2):
            raise DatasetError("'reference' needs a kind: 'reference:trainset', 'reference:heldout' or 'reference:ood'")
        return m.group(1), m.group(2)
    return "path", spec


def _take(paths: Sequence[Path], n_clips: int | None) -> list[Path]:
    paths = list(paths)
    return paths if n_clips is None else paths[: int(n_clips)]


def _reference(kind: str, n_clips: int | None, progress: bool) -> list[Path]:
    from cae.data.corpus import ensure_reference_corpus

    manifest = ensure_reference_corpus(progress=progress)
    if kind not in manifest.counts():
        raise DatasetError(f"the reference corpus has no kind {kind!r}; kinds: {sorted(manifest.counts())}")
    return _take(manifest.paths(kind), n_clips)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _generated(model: MusicLM, n_clips: int | None, seed: int, progress: bool) -> list[Path]:
    """Round-robin over the paper's top-k values (Protocol page: Models and datasets): clip i has top-k
    ``PAPER_TOP_KS[i % 7]``; all of them: 20 clips of 15 s per value, as the paper."""
    import pandas as pd

    from cae.generation import write_generated_set
    from cae.models.sampling import SAMPLER_VERSION

    n = len(PAPER_TOP_KS) * PAPER_CLIPS_PER_TOP_K if n_clips is None else int(n_clips)
    # a prefix of the top-k list keeps every sample's seed (seed + 1000·k_index + i) the same as in the full set
    top_ks = PAPER_TOP_KS[: max(1, min(n, len(PAPER_TOP_KS)))]
    per_k = max(1, -(-n // len(top_ks)))
    info = model.info()
    key = hashlib.sha256(json.dumps([info.model_id, info.revision, info.backend, seed, PAPER_CLIP_SECONDS,
                                     SAMPLER_VERSION], sort_keys=True).encode()).hexdigest()[:12]
    root = data_dir() / "generated" / f"{_slug(info.model_id)}-{key}"
    stamp = root / "manifest.csv"
    table = pd.read_csv(stamp) if stamp.is_file() else None
    if (table is None or not set(top_ks) <= set(table["top_k"])
            or table[table["top_k"].isin(top_ks)].groupby("top_k").size().min() < per_k):
        table = write_generated_set(model, root, top_ks=top_ks, per_k=per_k, seconds=PAPER_CLIP_SECONDS,
                                    seed=seed, progress=progress)
    by_k = {k: sorted(root / p for p in g["path"]) for k, g in table.groupby("top_k")}
    out: list[Path] = []
    for i in range(per_k):
        for k in top_ks:
            if i < len(by_k[k]):
                out.append(by_k[k][i])
    return out[:n]


def synthetic_clips(n_clips: int = 4, *, seconds: float = 15.0, sample_rate: int = 32000, seed: int = 0,
                    root: str | Path | None = None) -> list[Path]:
    """Write (once) and return ``n_clips`` deterministic synthetic melodies as float WAV files.

    Each clip is a sequence of notes on a pentatonic scale (0.2–0.5 s, random), every note a sum of five
    harmonics with an exponential decay, mixed at −20 dBFS RMS. The same ``seed`` gives the same files.

    >>> import tempfile, soundfile as sf
    >>> paths = synthetic_clips(2, seconds=2.0, root=tempfile.mkdtemp())
    >>> [sf.info(str(p)).frames for p in paths]
    [64000, 64000]
    """
    import soundfile as sf

    root = Path(root) if root is not None else cache_dir() / "synthetic" / f"s{seed}-{seconds:g}s-{sample_rate}"
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(int(n_clips)):
        path = root / f"synthetic_{i:03d}.wav"
        if not path.is_file():
            wav = _melody(np.random.default_rng([seed, i]), seconds, sample_rate)
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, wav, sample_rate, subtype="FLOAT")
            tmp.replace(path)
        out.append(path)
    return out


def _melody(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    n = int(round(seconds * sr))
    wav = np.zeros(n)
    scale = np.array([0, 2, 4, 7, 9, 12, 14, 16])
    base = 220.0 * 2 ** (rng.integers(0, 5) / 12)
    t0 = 0
    while t0 < n:
        dur = int(rng.uniform(0.2, 0.5) * sr)
        f = base * 2 ** (rng.choice(scale) / 12)
        t = np.arange(min(dur, n - t0)) / sr
        note = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)) * np.exp(-3.0 * t)
        wav[t0:t0 + len(t)] += note
        t0 += dur
    wav *= 10 ** (-20 / 20) / max(float(np.sqrt(np.mean(wav**2))), 1e-12)
    return wav.astype(np.float32)


def _path(spec: str, n_clips: int | None) -> list[Path]:
    from cae.data.folder import folder_dataset

    p = Path(spec).expanduser()
    if not p.is_absolute() and not p.exists() and REPO_ROOT is not None and (REPO_ROOT / p).exists():
        p = REPO_ROOT / p  # a path relative to the checkout (notebooks run with notebooks/ as working folder)
    if p.is_dir():
        files = [Path(x) for x in folder_dataset(p, manifest=False)["path"]]
    elif any(ch in spec for ch in "*?["):
        files = sorted(Path(x) for x in _glob.glob(str(p), recursive=True) if Path(x).is_file())
    elif p.is_file():
        files = [p]
    else:
        raise DatasetError(f"dataset {spec!r}: no such folder, file or glob match")
    if not files:
        raise DatasetError(f"dataset {spec!r}: no audio files found")
    return _take(files, n_clips)


def resolve_dataset(spec: str, *, n_clips: int | None = None, model: MusicLM | None = None, seed: int = 0,
                    progress: bool = True) -> list[Path]:
    """The clip files a spec names (see the module docstring).

    Args:
        spec: the dataset spec.
        n_clips: how many clips (the first ones in the spec's order); ``None`` for all.
        model: the model under study (needed for ``"generated"``).
        seed: seed for ``generated`` / ``synthetic`` sources.
        progress: show progress while building a missing corpus or set.

    Raises:
        DatasetError: an unknown kind, a missing folder, no audio files, or ``generated`` without a model.
    """
    source, arg = parse_spec(spec)
    if source == "reference":
        return _reference(str(arg), n_clips, progress)
    if source == "generated":
        if arg is not None:
            from cae.models.base import load_model

            model = load_model(arg)
        if model is None:
            raise DatasetError("the 'generated' dataset samples from the model under study: pass model=")
        return _generated(model, n_clips, seed, progress)
    if source == "synthetic":
        return synthetic_clips(4 if n_clips is None else int(n_clips), seed=seed)
    return _path(str(arg), n_clips)


def resolve_datasets(datasets: Mapping[str, str], *, n_clips: int | None = None, model: MusicLM | None = None,
                     seed: int = 0, progress: bool = True) -> dict[str, list[Path]]:
    """``{kind: spec}`` → ``{kind: [paths]}`` (see :func:`resolve_dataset`)."""
    return {kind: resolve_dataset(spec, n_clips=n_clips, model=model, seed=seed, progress=progress)
            for kind, spec in datasets.items()}

