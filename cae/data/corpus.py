"""The reference corpus: the project's offline default dataset, rendered from music21's bundled scores.

It mirrors the paper's dataset kinds ([spec] §2.2) with material that ships with music21, so it builds anywhere
without a network, deterministically, in minutes on two cores.

Sources and splits
    * **Bach chorales**: the 350 distinct files behind the 371 entries of ``music21.corpus.chorales.Iterator``
      (Riemenschneider numbering lists 21 harmonisations twice). A seeded permutation of their sorted names puts
      ``round(0.15 · 350) = 52`` in ``heldout`` (never trained on) and the other 298 in ``train``. Every piece
      is rendered whole (music21 expands repeats when writing MIDI; no measure slicing). Timbre: per piece a
      seeded choice of GM church organ (program 19), string ensemble 1 (48) or choir aahs (52), 0-based, no
      piano. Tempo: music21's score tempo (its default is 120 qpm when
      the score has none), times a seeded factor uniform in [0.9, 1.1] (rounded to 3 decimals, recorded).
    * **OOD** (the analogue of the authors' ASAP set: classical piano score MIDIs rendered with a GM soundfont):
      the music21 corpus works of :data:`OOD_COMPOSERS` (Beethoven, Mozart, Haydn, and single works by other
      composers; one file per work, MusicXML preferred over Humdrum duplicates), rendered on acoustic grand
      piano (program 0) at score tempo. Like the authors' ASAP crop, each is cut to its first
      :data:`OOD_BARS` = 32 bars (music21 measures 0..32, so a pickup is kept), after removing repeat signs, so
      multi-movement files cost no more than a page. OOD differs from train in composer, texture and timbre.

Rendering (:mod:`cae.data.render`)
    FluidSynth with FluidR3_GM at 32 kHz, reverb/chorus off, gain :data:`~cae.data.render.DEFAULT_GAIN`, mixed to
    mono, trailing silence trimmed. A render whose peak passes −1 dBFS is scaled down to −1 dBFS peak (the
    applied gain is recorded). Pieces are stored as 16-bit FLAC: ``train/`` (what the model trains on),
    ``heldout_pieces/`` (validation), ``ood_pieces/``. A piece that fails to parse, convert or render is
    skipped and listed in the manifest with the reason.

Clips (:mod:`cae.data.clips`)
    15 s (480,000 samples) clips for the experiments: ``clips/trainset/`` from train pieces (the paper's
    TrainingSet analogue: music the model was trained on), ``clips/heldout/`` and ``clips/ood/``. For each kind
    the eligible pieces are put in a seeded order and visited round-robin, one clip per piece per round, until
    ``clips_per_kind`` clips are found (so one clip per piece where there are enough pieces; later rounds never
    overlap earlier clips of the same piece). Start positions are seeded per piece and rejected when the music
    is near-silent in [4 s, 10 s] or quiet overall; pieces that yield no (further) clip are listed in
    ``corpus.json`` under ``clip_pieces_given_up`` with the reason. A clip's samples are exactly the stored
    piece's samples from ``start_s`` on (16-bit values copied, not re-quantised).

Determinism
    Every random choice comes from :func:`cae.data.seeding.rng_for` keyed by the seed and the piece, so a
    piece's split, timbre, tempo and clip start draws do not depend on the subset built, the order work
    finishes in or the number of workers (which pieces give the clips does depend on the pieces built). With the same
    music21, FluidSynth, soundfont and libsndfile, two builds give identical files and the same
    :attr:`~cae.data.manifest.Manifest.corpus_hash`.

Layout of ``out_dir`` (default ``cae.paths.data_dir() / "reference"``)::

    manifest.csv  corpus.json  .verified.json
    train/<piece>.flac  heldout_pieces/<piece>.flac  ood_pieces/<piece>.flac
    clips/{trainset,heldout,ood}/<piece>_at<start>s.flac

A build writes into a temporary sibling folder and swaps it in at the end, so an interrupted build never leaves
a half-written corpus. The builder owns ``out_dir``: a rebuild replaces it entirely.

Command line: ``python -m cae.data.corpus [--out DIR] [--seed N] [--small] [--workers N] [--force]``.

Why one module of about 700 lines: it is one recipe (pieces → render → cut → split → manifest) whose stages share
the build's seed, folder layout and atomic swap; the parts that stand alone (MIDI, rendering, clips, manifest)
already live in their own modules of :mod:`cae.data`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from cae.audio import DEFAULT_SAMPLE_RATE, peak_dbfs, save
from cae.data.clips import CLIP_SAMPLES, choose_clip_start
from cae.data.errors import DataError, RenderError
from cae.data.manifest import COLUMNS, Manifest, load_manifest
from cae.data.render import DEFAULT_GAIN, find_soundfont, fluidsynth_version, render_midi_to_array
from cae.data.seeding import rng_for
from cae.provenance import file_sha256

__all__ = [
    "CORPUS_FORMAT",
    "TRAIN_PROGRAMS",
    "OOD_PROGRAM",
    "OOD_COMPOSERS",
    "OOD_BARS",
    "HELDOUT_FRACTION",
    "TEMPO_JITTER",
    "PEAK_LIMIT_DBFS",
    "CLIP_KINDS",
    "SMALL",
    "default_corpus_dir",
    "chorale_ids",
    "ood_sources",
    "split_chorales",
    "PieceJob",
    "plan_pieces",
    "build_reference_corpus",
    "ensure_reference_corpus",
    "main",
]

#: Bumped whenever a change to this module changes what a build produces.
CORPUS_FORMAT = 1
#: Timbres for chorales, 0-based GM programs: church organ, string ensemble 1, choir aahs.
TRAIN_PROGRAMS: tuple[int, ...] = (19, 48, 52)
#: OOD timbre: acoustic grand piano.
OOD_PROGRAM = 0
#: music21 corpus composers whose works form the OOD set.
OOD_COMPOSERS: tuple[str, ...] = (
    "beethoven", "mozart", "haydn", "schubert", "chopin", "joplin", "cpebach",
    "handel", "corelli", "verdi", "weber", "beach", "schoenberg",
)  # fmt: skip
#: OOD works are cut to their first this many bars (the authors' ASAP crop).
OOD_BARS = 32
#: Share of chorales held out.
HELDOUT_FRACTION = 0.15
#: Chorale tempo factors are uniform in [1 - TEMPO_JITTER, 1 + TEMPO_JITTER].
TEMPO_JITTER = 0.10
#: Renders peaking above this are scaled down to it.
PEAK_LIMIT_DBFS = -1.0
#: Clip kind → the split its pieces come from.
CLIP_KINDS: dict[str, str] = {"trainset": "train", "heldout": "heldout", "ood": "ood"}
#: Whole-piece kind and folder per split.
PIECE_KINDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train"),
    "heldout": ("heldout_piece", "heldout_pieces"),
    "ood": ("ood_piece", "ood_pieces"),
}
#: Parameters of ``--small`` (a quick corpus for trying things out).
SMALL: dict[str, int] = {"n_train": 12, "n_heldout": 4, "n_ood": 6, "clips_per_kind": 4}
_KIND_ORDER = ["train", "heldout_piece", "ood_piece", "trainset", "heldout", "ood"]
_SCORE_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid")


def default_corpus_dir() -> Path:
    """``cae.paths.data_dir() / "reference"`` (``$CAE_DATA_DIR`` moves it)."""
    from cae.paths import data_dir

    return data_dir() / "reference"


# -- sources ---------------------------------------------------------------------------------------------------


def chorale_ids() -> list[str]:
    """The distinct chorales of music21's Riemenschneider iterator (``"bach/bwv269"``, ...), sorted.

    The iterator has 371 entries but only 350 distinct files: 21 harmonisations appear twice in the
    Riemenschneider numbering. Each file is listed once, so no chorale can be in both train and heldout.
    """
    from music21 import corpus

    return sorted({str(n) for n in corpus.chorales.Iterator(returnType="filename")})


def ood_sources(composers: Sequence[str] = OOD_COMPOSERS) -> list[str]:
    """music21 corpus paths of the OOD works (``"mozart/k155/movement1.mxl"``, ...), sorted.

    A work stored in two formats (``movement1.krn`` and ``movement1.mxl``) is taken once, in the first format of
    ``.mxl, .musicxml, .xml, .krn, .abc, .mid``.
    """
    from music21 import common, corpus

    root = Path(common.getCorpusFilePath())
    best: dict[str, str] = {}
    for composer in composers:
        for path in corpus.getComposer(composer):
            rel = Path(path).relative_to(root).as_posix()
            stem, ext = os.path.splitext(rel)
            if ext not in _SCORE_EXTENSIONS:
                continue
            rank = _SCORE_EXTENSIONS.index
            if stem not in best or rank(ext) < rank(os.path.splitext(best[stem])[1]):
                best[stem] = rel
    return sorted(best.values())


def split_chorales(seed: int = 0, heldout_fraction: float = HELDOUT_FRACTION) -> tuple[list[str], list[str]]:
    """Seeded train/heldout split of :func:`chorale_ids`: ``(train, heldout)``, each in permuted order."""
    ids = chorale_ids()
    order = rng_for(seed, "split", "chorales").permutation(len(ids))
    n_heldout = int(round(heldout_fraction * len(ids)))
    perm = [ids[i] for i in order]
    return perm[n_heldout:], perm[:n_heldout]


def _piece_id(source: str) -> str:
    stem, ext = os.path.splitext(source)
    return stem if ext in _SCORE_EXTENSIONS else source


def _file_stem(piece_id: str) -> str:
    return piece_id.replace("/", "_").replace(" ", "_")


@dataclass(frozen=True)
class PieceJob:
    """Everything a worker needs to render one piece (picklable).

    Attributes:
        piece_id: Stable name (``"bach/bwv269"``).
        source: What :func:`music21.corpus.parse` is given.
        split: ``"train"``, ``"heldout"`` or ``"ood"``.
        program: 0-based GM program.
        tempo_factor: Playback speed factor.
        bars: Keep measures 0..bars (after removing repeat signs); None: the whole piece, repeats expanded.
        rel_path: Where the FLAC goes, relative to the corpus folder.
    """

    piece_id: str
    source: str
    split: str
    program: int
    tempo_factor: float
    bars: int | None
    rel_path: str

    @property
    def composer(self) -> str:
        return self.piece_id.split("/", 1)[0]


def plan_pieces(
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_heldout: int | None = None,
    n_ood: int | None = None,
    heldout_fraction: float = HELDOUT_FRACTION,
    tempo_jitter: float = TEMPO_JITTER,
    ood: Sequence[str] | None = None,
) -> list[PieceJob]:
    """The pieces a build renders, with their seeded program and tempo.

    ``n_train``/``n_heldout``/``n_ood`` keep the first that many of each split's seeded order (None: all). The
    split itself is always made over all 350 chorales, so a subset's heldout pieces are heldout in the full
    corpus too. ``ood`` replaces :func:`ood_sources` (music21 corpus paths).
    """
    train, heldout = split_chorales(seed, heldout_fraction)
    ood_list = sorted(ood) if ood is not None else ood_sources()
    order = rng_for(seed, "order", "ood").permutation(len(ood_list))
    ood_list = [ood_list[i] for i in order]
    jobs: list[PieceJob] = []
    for split, sources, limit in (("ood", ood_list, n_ood), ("train", train, n_train), ("heldout", heldout, n_heldout)):
        for source in sources[: None if limit is None else int(limit)]:
            pid = _piece_id(source)
            if split == "ood":
                program, tempo, bars = OOD_PROGRAM, 1.0, OOD_BARS
            else:
                program = int(rng_for(seed, "program", pid).choice(TRAIN_PROGRAMS))
                jitter = rng_for(seed, "tempo", pid).uniform(-tempo_jitter, tempo_jitter) if tempo_jitter else 0.0
                tempo, bars = round(1.0 + float(jitter), 3), None
            folder = PIECE_KINDS[split][1]
            jobs.append(PieceJob(pid, source, split, program, tempo, bars, f"{folder}/{_file_stem(pid)}.flac"))
    return jobs


# -- rendering one piece (runs in worker processes) -------------------------------------------------------------


def _strip_repeats(score: Any) -> None:
    """Remove repeat barlines, repeat expressions (D.C., segno, ...) and volta brackets, in place."""
    from music21 import bar, repeat, spanner, stream

    for m in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(m.leftBarline, bar.Repeat):
            m.leftBarline = None
        if isinstance(m.rightBarline, bar.Repeat):
            m.rightBarline = None
    for expr in list(score.recurse().getElementsByClass(repeat.RepeatExpression)):
        if expr.activeSite is not None:
            expr.activeSite.remove(expr)
    for sp in list(score.recurse().getElementsByClass(spanner.RepeatBracket)):
        if sp.activeSite is not None:
            sp.activeSite.remove(sp)


def _score_to_midi(job: PieceJob, midi_path: Path) -> str:
    """Parse ``job.source`` with music21 and write MIDI; return a remark ("" if none)."""
    from music21 import corpus

    score = corpus.parse(job.source)
    remark = ""
    if job.bars is not None:
        _strip_repeats(score)
        score = score.measures(0, job.bars)
        remark = f"first {job.bars} bars, repeat signs removed"
    try:
        score.write("midi", fp=str(midi_path))
    except Exception as exc:  # music21 raises ExpanderException & co. on inconsistent repeats
        if job.bars is not None:
            raise
        _strip_repeats(score)
        score.write("midi", fp=str(midi_path))
        remark = f"repeat signs removed ({type(exc).__name__}: {exc})"
    return remark


def render_piece(job: PieceJob, root: str, *, sample_rate: int, gain: float, soundfont: str) -> dict[str, Any]:
    """Render one piece into ``root/job.rel_path`` (16-bit FLAC) and return its manifest fields.

    Never raises for a bad piece: failures come back as ``{"status": "skipped", "reason": ...}``.
    """
    row: dict[str, Any] = {
        "path": job.rel_path, "kind": PIECE_KINDS[job.split][0], "split": job.split, "piece_id": job.piece_id,
        "source": job.source, "composer": job.composer, "program": job.program,
        "tempo_factor": job.tempo_factor, "sample_rate": sample_rate, "status": "ok", "reason": "", "remark": "",
    }  # fmt: skip
    import pretty_midi

    row["instrument"] = pretty_midi.program_to_instrument_name(job.program)
    try:
        with tempfile.TemporaryDirectory(prefix="cae-piece-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi_path = Path(tmp) / "score.mid"
            try:
                row["remark"] = _score_to_midi(job, midi_path)
            except Exception as exc:  # noqa: BLE001 - any music21 failure skips the piece
                return _skip(row, f"music21 could not convert the score: {type(exc).__name__}: {exc}")
            wave = render_midi_to_array(
                midi_path,
                program=job.program,
                tempo_factor=job.tempo_factor,
                soundfont=soundfont,
                sample_rate=sample_rate,
                gain=gain,
                name=f"{job.piece_id} ({job.source})",
            )
    except RenderError as exc:
        return _skip(row, f"render failed: {exc.problem}")
    except Exception as exc:  # noqa: BLE001 - e.g. pretty_midi failing on music21's MIDI: skip, do not abort
        return _skip(row, f"render failed: {type(exc).__name__}: {exc}")
    peak = peak_dbfs(wave)
    gain_db = min(0.0, PEAK_LIMIT_DBFS - peak)
    if gain_db < 0:
        wave = (wave * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
    out = Path(root) / job.rel_path
    out.parent.mkdir(parents=True, exist_ok=True)
    save(out, wave, sample_rate, subtype="PCM_16")
    row.update(gain_db=round(gain_db, 4), num_samples=int(wave.size))
    return row


def _skip(row: dict[str, Any], reason: str) -> dict[str, Any]:
    row.update(path="", status="skipped", reason=reason.replace("\n", " ")[:500])
    return row


def _render_all(
    jobs: list[PieceJob], root: Path, *, workers: int, progress: bool, **kw: Any
) -> list[dict[str, Any]]:
    bar = _progress(len(jobs), "rendering pieces", progress)
    rows: list[dict[str, Any]] = []
    try:
        if workers <= 1:
            for job in jobs:
                rows.append(render_piece(job, str(root), **kw))
                bar.update(1)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(render_piece, job, str(root), **kw) for job in jobs]
                for fut in as_completed(futures):
                    rows.append(fut.result())
                    bar.update(1)
    finally:
        bar.close()
    return rows


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False)


# -- clips ------------------------------------------------------------------------------------------------------


def _read_int16(path: Path) -> np.ndarray:
    return sf.read(os.fspath(path), dtype="int16")[0]


def _cut_clips(
    pieces: list[dict[str, Any]], root: Path, *, seed: int, clips_per_kind: int, sample_rate: int, progress: bool
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """Choose and write the clips of every kind; return their rows, warnings, and the pieces given up on."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    given_up: list[dict[str, Any]] = []
    bar = _progress(clips_per_kind * len(CLIP_KINDS), "cutting clips", progress)
    for kind, split in CLIP_KINDS.items():
        eligible = sorted(
            (p for p in pieces if p["split"] == split and p["status"] == "ok"), key=lambda p: p["piece_id"]
        )
        order = [eligible[i] for i in rng_for(seed, "clip-order", kind).permutation(len(eligible))]
        taken: dict[str, list[int]] = {p["piece_id"]: [] for p in order}
        exhausted: set[str] = set()
        found = 0
        rnd = 0
        while found < clips_per_kind and len(exhausted) < len(order):
            for piece in order:
                if found >= clips_per_kind:
                    break
                pid = piece["piece_id"]
                if pid in exhausted:
                    continue
                audio = _read_int16(root / piece["path"])
                wave = audio.astype(np.float32) / np.float32(32768.0)
                start, why = choose_clip_start(
                    wave, rng_for(seed, "clip", kind, pid, rnd), sample_rate=sample_rate, avoid=taken[pid]
                )
                if start is None:
                    exhausted.add(pid)
                    given_up.append({"kind": kind, "piece_id": pid, "round": rnd, "reason": why})
                    continue
                taken[pid].append(start)
                start_s = round(start / sample_rate, 6)
                rel = f"clips/{kind}/{_file_stem(pid)}_at{start_s:07.2f}s.flac"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(os.fspath(root / rel), audio[start : start + CLIP_SAMPLES], sample_rate, subtype="PCM_16")
                clip = {k: piece[k] for k in ("split", "piece_id", "source", "composer", "program", "instrument",
                                               "tempo_factor", "gain_db", "sample_rate", "remark")}  # fmt: skip
                clip.update(path=rel, kind=kind, start_s=start_s, num_samples=CLIP_SAMPLES, status="ok", reason="")
                rows.append(clip)
                found += 1
                bar.update(1)
            rnd += 1
        if found < clips_per_kind:
            notes.append(f"{kind}: only {found} of {clips_per_kind} clips found in {len(order)} usable piece(s)")
    bar.close()
    return rows, notes, given_up


# -- building ---------------------------------------------------------------------------------------------------


def _config(
    *, seed: int, n_train: int | None, n_heldout: int | None, n_ood: int | None, clips_per_kind: int,
    ood: Sequence[str] | None, sample_rate: int, gain: float, soundfont: Path | None,
) -> dict[str, Any]:  # fmt: skip
    """The parameters that determine a corpus's content (``soundfont`` left out when it is None)."""
    config = {
        "format": CORPUS_FORMAT,
        "seed": int(seed),
        "n_train": n_train,
        "n_heldout": n_heldout,
        "n_ood": n_ood,
        "clips_per_kind": int(clips_per_kind),
        "ood_sources": None if ood is None else sorted(ood),
        "heldout_fraction": HELDOUT_FRACTION,
        "tempo_jitter": TEMPO_JITTER,
        "train_programs": list(TRAIN_PROGRAMS),
        "ood_program": OOD_PROGRAM,
        "ood_bars": OOD_BARS,
        "clip_samples": CLIP_SAMPLES,
        "sample_rate": int(sample_rate),
        "gain": float(gain),
        "peak_limit_dbfs": PEAK_LIMIT_DBFS,
    }
    if soundfont is not None:
        config["soundfont"] = {"name": soundfont.name, "bytes": soundfont.stat().st_size}
    return config


def _versions(soundfont: Path) -> dict[str, str]:
    out = {"fluidsynth": fluidsynth_version(), "libsndfile": sf.__libsndfile_version__}
    for pkg in ("cae", "music21", "pretty_midi", "numpy", "soundfile"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    out["soundfont_sha256"] = file_sha256(soundfont)
    return out


def _sort_rows(table: pd.DataFrame) -> pd.DataFrame:
    ok = table[table["status"] == "ok"].copy()
    ok["_k"] = ok["kind"].map({k: i for i, k in enumerate(_KIND_ORDER)})
    ok = ok.sort_values(["_k", "path"], kind="stable").drop(columns="_k")
    skipped = table[table["status"] != "ok"].sort_values(["split", "piece_id"], kind="stable")
    return pd.concat([ok, skipped], ignore_index=True)


def build_reference_corpus(
    out_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_heldout: int | None = None,
    clips_per_kind: int = 40,
    n_ood: int | None = None,
    workers: int = 2,
    progress: bool = True,
    ood: Sequence[str] | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    gain: float = DEFAULT_GAIN,
    soundfont: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Render the reference corpus into ``out_dir`` (replacing what is there) and return its manifest.

    Args:
        out_dir: Corpus folder; default :func:`default_corpus_dir`. If it exists it must be a corpus
            (hold a ``manifest.csv``) or be empty; it is replaced as a whole.
        seed: Global seed of every random choice (split, timbres, tempi, clip starts).
        n_train: Train chorales to render (first of the seeded order); None: all (298).
        n_heldout: Heldout chorales to render; None: all (52).
        clips_per_kind: Clips per kind (``trainset``, ``heldout``, ``ood``).
        n_ood: OOD works to render; None: all.
        workers: Processes rendering in parallel (1: in this process).
        progress: Show progress bars and a summary on stderr.
        ood: music21 corpus paths to use instead of :func:`ood_sources` (tests use one small work).
        sample_rate: Output rate in Hz.
        gain: FluidSynth gain.
        soundfont: ``.sf2`` file (:func:`~cae.data.render.find_soundfont`).

    Returns:
        The :class:`~cae.data.manifest.Manifest` of the new corpus (already verified and stamped).

    Raises:
        DataError: ``out_dir`` holds something else than a corpus, or no train piece could be rendered.
        RenderError: FluidSynth or the soundfont is missing.
    """
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else default_corpus_dir()
    if out.exists() and any(out.iterdir()) and not (out / "manifest.csv").is_file():
        raise DataError(out, "exists, is not empty and holds no manifest.csv; refusing to replace it")
    font = find_soundfont(soundfont)
    if shutil.which("fluidsynth") is None:
        raise RenderError(None, "fluidsynth not found on PATH; install it (apt-get install fluidsynth)")
    config = _config(
        seed=seed, n_train=n_train, n_heldout=n_heldout, n_ood=n_ood, clips_per_kind=clips_per_kind, ood=ood,
        sample_rate=sample_rate, gain=gain, soundfont=font,
    )  # fmt: skip
    jobs = plan_pieces(seed=seed, n_train=n_train, n_heldout=n_heldout, n_ood=n_ood, ood=ood)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.building-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        pieces = _render_all(
            jobs, work, workers=workers, progress=progress, sample_rate=sample_rate, gain=gain, soundfont=str(font)
        )
        if not any(p["status"] == "ok" and p["split"] == "train" for p in pieces):
            reasons = "; ".join(sorted({p["reason"] for p in pieces if p["status"] != "ok"}))[:800]
            raise DataError(out, f"no train piece could be rendered: {reasons}")
        clips, notes, given_up = _cut_clips(
            pieces, work, seed=seed, clips_per_kind=clips_per_kind, sample_rate=sample_rate, progress=progress
        )
        rows = pieces + clips
        for row in rows:
            if row["status"] == "ok":
                path = work / row["path"]
                row["bytes"] = path.stat().st_size
                row["sha256"] = file_sha256(path)
                row["duration_s"] = round(row["num_samples"] / sample_rate, 6)
        table = _sort_rows(pd.DataFrame(rows, columns=list(COLUMNS)))
        manifest = Manifest(root=work, table=table)
        train = manifest.kind("train")
        manifest.info = {
            "config": config,
            "counts": manifest.counts(),
            "skipped": int(len(manifest.skipped)),
            "train_hours": round(float(train["num_samples"].sum()) / sample_rate / 3600, 4),
            "warnings": notes,
            "clip_pieces_given_up": given_up,
            "versions": _versions(font),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": None,
            "workers": int(workers),
        }
        manifest.info["build_seconds"] = round(time.perf_counter() - t0, 1)
        manifest.write()
        _swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    manifest = load_manifest(out)
    manifest.write_stamp()
    if progress:
        _summary(manifest)
    return manifest


def _swap_in(work: Path, out: Path) -> None:
    """Replace ``out`` by ``work`` with two renames (the old corpus is deleted afterwards)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        work.rename(out)


def _summary(manifest: Manifest) -> None:
    info = manifest.info
    counts = ", ".join(f"{k} {v}" for k, v in manifest.counts().items())
    print(
        f"reference corpus at {manifest.root}: {counts}; train audio {info.get('train_hours', 0):.2f} h; "
        f"{info.get('skipped', 0)} piece(s) skipped; built in {info.get('build_seconds')} s; "
        f"corpus hash {manifest.corpus_hash[:16]}",
        file=sys.stderr,
    )
    for note in info.get("warnings", []):
        print(f"warning: {note}", file=sys.stderr)


def ensure_reference_corpus(
    out_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_heldout: int | None = None,
    clips_per_kind: int = 40,
    n_ood: int | None = None,
    workers: int = 2,
    progress: bool = True,
    ood: Sequence[str] | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    gain: float = DEFAULT_GAIN,
    soundfont: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Return the corpus in ``out_dir``, building it first if it is missing, differs or fails verification.

    The corpus is reused when its recorded ``config`` equals the one these arguments give (the soundfont is
    compared by name and size; when no soundfont is installed, it is not compared, so a copied corpus stays
    usable) and :meth:`~cae.data.manifest.Manifest.verify` finds no problem. That is cheap while the files are unchanged
    since the last verification (a stat of each file); otherwise every file is hashed once. Arguments as for
    :func:`build_reference_corpus`.
    """
    out = Path(out_dir) if out_dir is not None else default_corpus_dir()
    try:
        font: Path | None = find_soundfont(soundfont)
    except RenderError:
        font = None  # a corpus copied to a machine without the soundfont is still usable
    wanted = _config(
        seed=seed, n_train=n_train, n_heldout=n_heldout, n_ood=n_ood, clips_per_kind=clips_per_kind, ood=ood,
        sample_rate=sample_rate, gain=gain, soundfont=font,
    )  # fmt: skip
    why = "missing"
    try:
        manifest = load_manifest(out)
    except DataError:
        manifest = None
    if manifest is not None:
        have = manifest.config
        if font is None:
            have.pop("soundfont", None)
        if have != wanted:
            why = "built with other parameters"
        else:
            problems = manifest.verify()
            if not problems:
                return manifest
            why = f"{len(problems)} problem(s), e.g. {problems[0]}"
    if progress:
        print(f"building the reference corpus at {out} ({why})", file=sys.stderr)
    return build_reference_corpus(
        out, seed=seed, n_train=n_train, n_heldout=n_heldout, clips_per_kind=clips_per_kind, n_ood=n_ood,
        workers=workers, progress=progress, ood=ood, sample_rate=sample_rate, gain=gain, soundfont=soundfont,
    )  # fmt: skip


# -- command line -----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cae.data.corpus``: build (or check) the reference corpus."""
    parser = argparse.ArgumentParser(
        prog="python -m cae.data.corpus",
        description="Build the reference corpus (Bach chorales for train/heldout, other composers on piano for OOD) "
        "if it is missing or does not verify.",
    )
    parser.add_argument("--out", type=Path, default=None, help="corpus folder (default: $CAE_DATA_DIR/reference, "
                        "or .../reference-small with --small)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    parser.add_argument("--small", action="store_true", help=f"a quick small corpus: {SMALL}")
    parser.add_argument("--workers", type=int, default=2, help="parallel render processes (default 2)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid corpus is there")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    sizes: dict[str, Any] = dict(SMALL) if args.small else {}
    out = args.out
    if out is None:
        out = default_corpus_dir().with_name("reference-small") if args.small else default_corpus_dir()
    fn = build_reference_corpus if args.force else ensure_reference_corpus
    try:
        manifest = fn(out, seed=args.seed, workers=args.workers, progress=not args.quiet, **sizes)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = " ".join(f"{k}={v}" for k, v in manifest.counts().items())
    print(f"{manifest.root}  corpus_hash={manifest.corpus_hash}  {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
