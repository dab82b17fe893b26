"""The authors' OOD set, rebuilt: ASAP score MIDIs, selected, cropped, rendered and filtered.

For users with a network. :func:`fetch_asap` downloads the public ASAP repository
(``fosfrancesco/asap-dataset``, branch ``master``, as a GitHub zip archive) and unpacks it;
:func:`build_asap_ood` then runs the pipeline below. Every step also works on MIDI files you already have
(:func:`select_scores`, :func:`crop_score`, :func:`render_ood_clips`).

The pipeline, step by step (the authors' scripts in brackets)
    1. *Select* (``selected_midi.py``): keep scores with at least one instrument and at least
       ``min_notes`` = 10 notes in the first instrument; draw ``n`` (100) of them at random. The authors used
       ``random.sample`` with **no seed**; here the draw is seeded. They drew from ``metadata.csv`` rows, which
       are performances, so one score could be drawn twice; here each score MIDI is a candidate once.
    2. *Crop to 32 bars*, then *to a random 8–16 bars from bar 0* (``selected_midi.py``,
       ``selected_midi_short.py``; again unseeded there, seeded here). Bars are pretty_midi downbeats
       (``get_downbeats``: the file's tempo and time-signature events). A file with fewer bars is kept whole,
       as theirs. Two small differences: the authors' second crop measured bars on a file that their first crop
       had rewritten with pretty_midi's default 120 qpm tempo, so their "bars" there were 120-qpm bars; and
       they kept notes crossing the crop end at full length, where :func:`cae.data.midi.crop_time` shortens
       them. Both only change where a crop ends, after the 15 s that are kept for files of 15 s or more.
    3. *Render* (``tools/midi2wav.py``): FluidSynth with a GM soundfont. They used GeneralUser-GS at 44.1 kHz,
       gain 0.9, then ``sox`` to 16-bit mono 32 kHz with −3 dB. Here: FluidR3_GM (Debian's
       ``fluid-soundfont-gm``; another soundfont, so other timbres) rendered directly at 32 kHz,
       :mod:`cae.data.render`'s gain, reverb/chorus off, trailing silence trimmed, peaks above −1 dBFS brought
       down to −1 dBFS. The file's own programs are kept (ASAP scores are piano, program 0).
    4. *Tempo classes* (``tempo_select.py``, librosa beat tracking into 5 folders): not reproduced; it only sorts
       files into folders.
    5. *Filter* (``rm_silent_music.py``, :func:`asap_problem`): drop renders shorter than 15 s, with a silence
       longer than 2 s, or with "low volume" longer than 1 s, both meaning frame RMS more than 60 dB below the
       loudest frame (frames of 2048 samples, hop 512, centred, as ``librosa.feature.rms`` +
       ``amplitude_to_db(ref=np.max)``). Trailing silence was trimmed in step 3, so only pauses inside the music
       count.
    6. *Cut to 15 s* (``cut_length_ffmpeg.py``): the first 480,000 samples exactly (their ``ffmpeg -c copy``
       cut gave 15.04 s).

Output: 16-bit mono 32 kHz WAV files named like theirs, ``<composer>_<idx:03d>_<stem>_short.wav``, and a
``manifest.csv`` (``kind`` = ``"ood"``) that :func:`cae.data.folder.folder_dataset` reads.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi

from cae.audio import DEFAULT_SAMPLE_RATE, peak_dbfs, save
from cae.data.clips import CLIP_SAMPLES
from cae.data.errors import DataError, DownloadError, RenderError
from cae.data.midi import MidiLike, crop_bars, load_midi
from cae.data.render import DEFAULT_GAIN, render_midi_to_array
from cae.data.seeding import rng_for
from cae.paths import data_dir
from cae.types import Wave

__all__ = [
    "ASAP_REPOSITORY",
    "ASAP_ARCHIVE_URL",
    "fetch_asap",
    "asap_scores",
    "is_eligible",
    "select_scores",
    "crop_score",
    "frame_db_re_max",
    "quiet_runs",
    "asap_problem",
    "render_ood_clips",
    "build_asap_ood",
]

ASAP_REPOSITORY = "fosfrancesco/asap-dataset"
ASAP_ARCHIVE_URL = f"https://github.com/{ASAP_REPOSITORY}/archive/refs/heads/master.zip"
_ARCHIVE_ROOT = "asap-dataset-master"

MIN_NOTES = 10
FIRST_BARS = 32
MIN_BARS = 8
MAX_BARS = 16
SILENCE_DB = -60.0
MAX_SILENCE_S = 2.0
MAX_LOW_VOLUME_S = 1.0
FRAME = 2048
HOP = 512
PEAK_LIMIT_DBFS = -1.0


# -- download ---------------------------------------------------------------------------------------------------


def _download(url: str, dest: Path, timeout_s: float) -> None:
    """Stream ``url`` into ``dest`` (raises urllib/OS errors as they come)."""
    request = urllib.request.Request(url, headers={"User-Agent": "cae (python urllib)"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _safe_extract(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        root = dest.resolve()
        for member in zf.infolist():
            target = (dest / member.filename).resolve()
            if root != target and root not in target.parents:
                raise DownloadError(archive, f"archive member {member.filename!r} would land outside {dest}")
        zf.extractall(dest)


def fetch_asap(
    dest: str | os.PathLike[str] | None = None,
    *,
    url: str = ASAP_ARCHIVE_URL,
    timeout_s: float = 60.0,
    force: bool = False,
) -> Path:
    """Download and unpack the ASAP dataset; return its folder (the one holding ``metadata.csv``).

    Args:
        dest: Where to put it; default ``cae.paths.data_dir() / "asap"``. The dataset lands in
            ``dest/asap-dataset-master``.
        url: Archive to fetch (GitHub's zip of the ``master`` branch).
        timeout_s: Network timeout per read.
        force: Download again even if the folder is already there.

    Raises:
        DownloadError: No network, HTTP error, a broken archive, or an archive without ``metadata.csv``. The
            message says how to provide the dataset by hand.
    """
    if dest is None:
        dest = data_dir() / "asap"
    dest = Path(dest)
    root = dest / _ARCHIVE_ROOT
    if (root / "metadata.csv").is_file() and not force:
        return root
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{_ARCHIVE_ROOT}.zip.part"
    archive = dest / f"{_ARCHIVE_ROOT}.zip"
    manual = (
        f"Without network access, download {url} elsewhere and unzip it into {dest} "
        f"(so that {root / 'metadata.csv'} exists), or pass your own MIDI files to select_scores()."
    )
    try:
        _download(url, part, timeout_s)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(url, f"could not download the ASAP dataset ({reason}). {manual}") from exc
    part.replace(archive)
    try:
        if root.exists():
            shutil.rmtree(root)
        _safe_extract(archive, dest)
    except zipfile.BadZipFile as exc:
        raise DownloadError(url, f"the downloaded file is not a valid zip archive ({exc}). {manual}") from exc
    if not (root / "metadata.csv").is_file():
        raise DownloadError(url, f"the archive has no {_ARCHIVE_ROOT}/metadata.csv. {manual}")
    archive.unlink(missing_ok=True)
    return root


# -- selection and crops ----------------------------------------------------------------------------------------


def asap_scores(root: str | os.PathLike[str]) -> pd.DataFrame:
    """The distinct score MIDIs listed in ASAP's ``metadata.csv``: ``composer``, ``title``, ``midi_score``
    (relative), ``path`` (absolute), sorted by ``midi_score``.

    Raises:
        DataError: No readable ``metadata.csv`` with ``composer`` and ``midi_score`` columns under ``root``.
    """
    meta = Path(root) / "metadata.csv"
    try:
        table = pd.read_csv(meta)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(meta, f"cannot read ASAP metadata: {exc}") from exc
    if not {"composer", "midi_score"} <= set(table.columns):
        raise DataError(meta, "ASAP metadata needs 'composer' and 'midi_score' columns")
    if "title" not in table.columns:
        table["title"] = ""
    table = table.drop_duplicates("midi_score").sort_values("midi_score", kind="stable")
    table = table[["composer", "title", "midi_score"]].reset_index(drop=True)
    table["path"] = [str(Path(root) / p) for p in table["midi_score"]]
    return table


def is_eligible(pm: pretty_midi.PrettyMIDI, min_notes: int = MIN_NOTES) -> bool:
    """The authors' test: at least one instrument, and at least ``min_notes`` notes in the first one.

    >>> pm = pretty_midi.PrettyMIDI(); is_eligible(pm)
    False
    """
    return len(pm.instruments) >= 1 and len(pm.instruments[0].notes) >= min_notes


def select_scores(
    paths: Sequence[str | os.PathLike[str]], n: int = 100, *, seed: int = 0, min_notes: int = MIN_NOTES
) -> list[Path]:
    """Seeded random sample of ``n`` eligible MIDI files (all of them if fewer are eligible).

    Candidates are de-duplicated and sorted first, so the result depends only on the set of files and the
    seed. Unreadable files are not eligible. The sample is in draw order (like ``random.sample``).
    """
    candidates = sorted({Path(p) for p in paths})
    eligible = []
    for path in candidates:
        try:
            pm = load_midi(path)
        except Exception:  # noqa: BLE001 - pretty_midi/mido raise many kinds on bad files
            continue
        if is_eligible(pm, min_notes):
            eligible.append(path)
    k = min(int(n), len(eligible))
    picks = rng_for(seed, "asap", "select").choice(len(eligible), size=k, replace=False) if k else []
    return [eligible[int(i)] for i in picks]


def crop_score(
    midi: MidiLike,
    rng: np.random.Generator,
    *,
    first_bars: int = FIRST_BARS,
    min_bars: int = MIN_BARS,
    max_bars: int = MAX_BARS,
) -> tuple[pretty_midi.PrettyMIDI, int]:
    """Crop to the first ``first_bars`` bars, then to a random ``min_bars``–``max_bars`` bars from bar 0.

    Returns:
        ``(cropped, n_bars)``: the crop and the drawn bar count (a file with fewer bars is kept whole).
    """
    pm = load_midi(midi)
    n_bars = int(rng.integers(min_bars, max_bars + 1))
    return crop_bars(crop_bars(pm, first_bars), n_bars), n_bars


# -- the silence filter -----------------------------------------------------------------------------------------


def frame_db_re_max(wave: Wave, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """Frame RMS in dB relative to the loudest frame (centred frames, zero padding; floor −80 dB).

    Frame ``i`` is centred on sample ``i·hop``; there are ``1 + len // hop`` frames, as in librosa. The frames and
    padding are ``librosa.feature.rms(center=True)``'s, but the sums are float64 cumulative sums: librosa's values
    differ by up to about 4e-6 dB (measured on 20 s test signals), enough to move a frame lying at the −60 dB
    threshold, so the filter's decisions stay those of this function.

    >>> frame_db_re_max(np.ones(4096, dtype=np.float32)).max()
    np.float64(0.0)
    """
    x = np.pad(np.asarray(wave, dtype=np.float64), frame // 2)
    n_frames = 1 + (x.size - frame) // hop
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n_frames) * hop
    rms = np.sqrt(np.maximum(csum[starts + frame] - csum[starts], 0.0) / frame)
    ref = rms.max() if rms.size else 0.0
    if ref <= 0:
        return np.full(n_frames, -80.0)
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-10) / ref), -80.0)


def quiet_runs(
    wave: Wave,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    threshold_db: float = SILENCE_DB,
    min_duration_s: float = 0.0,
    frame: int = FRAME,
    hop: int = HOP,
) -> list[tuple[float, float]]:
    """Runs of frames below ``threshold_db`` (re the loudest frame) lasting at least ``min_duration_s``.

    A run's times are frame-centre times (``i·hop/sample_rate``), from its first quiet frame to the first
    loud frame after it (or to the last frame if the audio ends quiet), as in the authors' script.

    >>> sr = 8000
    >>> x = np.ones(5 * sr, dtype=np.float32); x[sr : 4 * sr] = 0
    >>> [(round(a, 2), round(b, 2)) for a, b in quiet_runs(x, sr, min_duration_s=2.0)]
    [(1.15, 3.9)]
    """
    quiet = frame_db_re_max(wave, frame, hop) < threshold_db
    times = np.arange(quiet.size) * hop / sample_rate
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs = []
    for a, b in zip(starts, stops):
        end = times[b] if b < quiet.size else times[-1]
        if end - times[a] >= min_duration_s:
            runs.append((float(times[a]), float(end)))
    return runs


def asap_problem(wave: Wave, sample_rate: int = DEFAULT_SAMPLE_RATE, *, min_seconds: float = 15.0) -> str | None:
    """The authors' filter (step 5): why a render is dropped, or ``None`` if it is kept."""
    duration = wave.size / sample_rate
    if duration < min_seconds:
        return f"too short: {duration:.2f} s < {min_seconds:g} s"
    silences = quiet_runs(wave, sample_rate, min_duration_s=MAX_SILENCE_S)
    if silences:
        return f"{len(silences)} silence(s) longer than {MAX_SILENCE_S:g} s below {SILENCE_DB:g} dB re max"
    lows = quiet_runs(wave, sample_rate, min_duration_s=MAX_LOW_VOLUME_S)
    if lows:
        return f"{len(lows)} low-volume segment(s) longer than {MAX_LOW_VOLUME_S:g} s below {SILENCE_DB:g} dB re max"
    return None


# -- rendering --------------------------------------------------------------------------------------------------


def render_ood_clips(
    midis: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    composers: Sequence[str] | None = None,
    seed: int = 0,
    soundfont: str | os.PathLike[str] | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    gain: float = DEFAULT_GAIN,
    clip_samples: int = CLIP_SAMPLES,
    progress: bool = False,
) -> pd.DataFrame:
    """Steps 2–6 for each MIDI file: crop, render, filter, cut; write WAVs and ``manifest.csv`` into ``out_dir``.

    Args:
        midis: Selected MIDI files, in order (the index in the output name is the position here).
        out_dir: Output folder (created).
        composers: Name prefix per file (ASAP's composer); default: each file's parent folder name.
        seed: Seed of the 8–16-bar draws (one stream per file name and position).
        soundfont, sample_rate, gain: Rendering (see :func:`cae.data.render.render_midi_to_array`).
        clip_samples: Length kept (480,000 = 15 s at 32 kHz); shorter renders are dropped.
        progress: Print one line per file to stderr.

    Returns:
        One row per input: ``path`` (relative, "" if dropped), ``kind`` (``"ood"``), ``source``, ``composer``,
        ``n_bars``, ``render_s`` (render length before the cut), ``status`` (``ok``/``skipped``), ``reason``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(composers) if composers is not None else [Path(m).parent.name or "unknown" for m in midis]
    if len(names) != len(midis):
        raise ValueError(f"{len(midis)} MIDI files but {len(names)} composer names")
    rows = []
    for idx, (midi, composer) in enumerate(zip(midis, names)):
        midi = Path(midi)
        stem = f"{str(composer).replace(' ', '_')}_{idx:03d}_{midi.stem}_short"
        row = {"path": "", "kind": "ood", "source": str(midi), "composer": str(composer), "n_bars": None,
               "render_s": None, "status": "skipped", "reason": ""}  # fmt: skip
        try:
            cropped, row["n_bars"] = crop_score(midi, rng_for(seed, "asap", "bars", idx, midi.name))
            wave = render_midi_to_array(
                cropped, soundfont=soundfont, sample_rate=sample_rate, gain=gain, name=str(midi)
            )
        except RenderError as exc:
            row["reason"] = f"render failed: {exc.problem}"
        except Exception as exc:  # noqa: BLE001 - unreadable MIDI, impossible crop
            row["reason"] = f"cannot crop: {type(exc).__name__}: {exc}"
        else:
            row["render_s"] = round(wave.size / sample_rate, 6)
            problem = asap_problem(wave, sample_rate, min_seconds=clip_samples / sample_rate)
            if problem:
                row["reason"] = problem
            else:
                clip = wave[:clip_samples]
                gain_db = min(0.0, PEAK_LIMIT_DBFS - peak_dbfs(clip))
                if gain_db < 0:
                    clip = (clip * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)
                save(out / f"{stem}.wav", clip, sample_rate, subtype="PCM_16")
                row.update(path=f"{stem}.wav", status="ok")
        if progress:
            print(f"[{idx + 1}/{len(midis)}] {midi.name}: {row['status']} {row['reason']}", file=sys.stderr)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "manifest.csv", index=False, lineterminator="\n")
    return table


def build_asap_ood(
    out_dir: str | os.PathLike[str] | None = None,
    *,
    asap_root: str | os.PathLike[str] | None = None,
    n: int = 100,
    seed: int = 0,
    progress: bool = True,
    **render_kwargs: object,
) -> pd.DataFrame:
    """The whole pipeline on ASAP: fetch (unless ``asap_root`` is given), select ``n``, then
    :func:`render_ood_clips` into ``out_dir`` (default ``cae.paths.data_dir() / "asap_ood"``)."""
    if out_dir is None:
        out_dir = data_dir() / "asap_ood"
    root = Path(asap_root) if asap_root is not None else fetch_asap()
    scores = asap_scores(root)
    chosen = select_scores(scores["path"].tolist(), n, seed=seed)
    composer_of = dict(zip(scores["path"], scores["composer"]))
    return render_ood_clips(
        chosen, out_dir, composers=[composer_of[str(p)] for p in chosen], seed=seed, progress=progress,
        **render_kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
