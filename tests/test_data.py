"""Tests of cae.data: rendering, MIDI edits, clips, the reference corpus, folder datasets, the ASAP pipeline.

Rendering tests need the ``fluidsynth`` program and Debian's FluidR3_GM soundfont (``make test`` environments
have both); they are skipped with a reason elsewhere. MIDI inputs are made here with pretty_midi.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pytest
import soundfile as sf

from cae.audio import rms_dbfs
from cae.data import asap, corpus, midi
from cae.data.clips import CLIP_SAMPLES, START_GRID, choose_clip_start, clip_problem
from cae.data.errors import DataError, DownloadError, RenderError
from cae.data.folder import folder_dataset
from cae.data.manifest import COLUMNS, load_manifest
from cae.data.render import DEFAULT_SOUNDFONT, render_midi, render_midi_to_array, trim_trailing_silence
from cae.data.seeding import rng_for

SR = 32000
HAVE_SYNTH = shutil.which("fluidsynth") is not None and (
    Path(os.environ.get("CAE_SOUNDFONT", "")).is_file() or DEFAULT_SOUNDFONT.is_file()
)
needs_synth = pytest.mark.skipif(not HAVE_SYNTH, reason="needs fluidsynth and a GM soundfont (apt-get install "
                                 "fluidsynth fluid-soundfont-gm)")  # fmt: skip


def make_midi(
    path: Path | None = None,
    *,
    bars: int = 4,
    program: int = 0,
    qpm: float = 120.0,
    numerator: int = 4,
    gap_bars: tuple[int, int] | None = None,
    notes_per_beat: int = 1,
) -> pretty_midi.PrettyMIDI:
    """A piano-ish test piece: a C-major arpeggio, one note per beat (optionally a silent stretch of bars)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0.0))
    inst = pretty_midi.Instrument(program=program)
    beat = 60.0 / qpm / notes_per_beat
    pitches = [60, 64, 67, 72, 67, 64]
    for i in range(bars * numerator * notes_per_beat):
        bar = i // (numerator * notes_per_beat)
        if gap_bars and gap_bars[0] <= bar < gap_bars[1]:
            continue
        start = i * beat
        inst.notes.append(pretty_midi.Note(velocity=96, pitch=pitches[i % 6], start=start, end=start + beat * 0.95))
    pm.instruments.append(inst)
    if path is not None:
        pm.write(str(path))
    return pm


def fake_synth(tmp_path: Path, body: str) -> Path:
    """An executable taking FluidSynth's arguments; ``$OUT`` is the value after ``-F``."""
    script = tmp_path / "fake-fluidsynth"
    script.write_text(
        "#!/bin/sh\nOUT=''\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -F ]; then OUT=$2; fi; shift; done\n" + body + "\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


# -- rendering --------------------------------------------------------------------------------------------------


@needs_synth
def test_render_duration_mono_rate_and_level(tmp_path):
    make_midi(tmp_path / "a.mid", bars=2)  # 8 beats at 120 qpm = 4 s of notes
    out = tmp_path / "a.wav"
    wave = render_midi(tmp_path / "a.mid", out)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 4.0 <= wave.size / SR <= 5.5  # notes + release, trailing silence trimmed
    assert rms_dbfs(wave) > -40
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, wave.size)
    assert np.array_equal(render_midi_to_array(tmp_path / "a.mid"), wave)  # deterministic (reverb/chorus off)


def _spectrum(wave: np.ndarray) -> np.ndarray:
    frames = wave[: wave.size // 4096 * 4096].reshape(-1, 4096)
    mag = np.abs(np.fft.rfft(frames * np.hanning(4096), axis=1)).mean(axis=0)
    return mag / np.linalg.norm(mag)


@needs_synth
def test_program_rewrite_changes_timbre():
    pm = make_midi(bars=2, program=0)
    piano = render_midi_to_array(pm)
    organ = render_midi_to_array(pm, program=19)
    assert pm.instruments[0].program == 0  # input untouched
    assert float(_spectrum(piano) @ _spectrum(organ)) < 0.9
    assert np.array_equal(render_midi_to_array(pm, program=0), piano)


@needs_synth
def test_tempo_factor_shortens_render():
    pm = make_midi(bars=4)
    slow, fast = render_midi_to_array(pm), render_midi_to_array(pm, tempo_factor=2.0)
    assert fast.size / SR == pytest.approx(slow.size / SR - 4.0, abs=0.3)


@needs_synth
def test_timeout_raises_render_error_naming_file(tmp_path):
    make_midi(tmp_path / "hangs.mid")
    t0 = time.monotonic()
    with pytest.raises(RenderError, match=r"hangs\.mid.*timed out"):
        render_midi_to_array(tmp_path / "hangs.mid", timeout_s=0.5, executable=fake_synth(tmp_path, "sleep 30"))
    assert time.monotonic() - t0 < 10


@needs_synth
def test_size_guard_kills_runaway_output(tmp_path):
    make_midi(tmp_path / "big.mid")
    runaway = fake_synth(tmp_path, 'head -c 5000000 /dev/zero > "$OUT"; sleep 30')
    with pytest.raises(RenderError, match=r"big\.mid.*grew past 100000 bytes"):
        render_midi_to_array(tmp_path / "big.mid", max_bytes=100_000, executable=runaway)


@needs_synth
def test_failing_or_missing_synthesiser(tmp_path):
    make_midi(tmp_path / "x.mid")
    with pytest.raises(RenderError, match="status 3"):
        render_midi_to_array(tmp_path / "x.mid", executable=fake_synth(tmp_path, "echo broken >&2; exit 3"))
    with pytest.raises(RenderError, match="apt-get install fluidsynth"):
        render_midi_to_array(tmp_path / "x.mid", executable=tmp_path / "no-such-program")


def test_missing_soundfont_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="fluid-soundfont-gm"):
        render_midi_to_array(make_midi(), soundfont=tmp_path / "none.sf2")


def test_trim_trailing_silence():
    x = np.zeros(100, dtype=np.float32)
    x[10] = 0.5
    assert trim_trailing_silence(x).size == 11


# -- MIDI edits -------------------------------------------------------------------------------------------------


def test_crop_bars_follows_time_signature():
    pm = make_midi(bars=10, numerator=3)  # 3/4 at 120 qpm: a bar is 1.5 s
    assert len(midi.bar_times(pm)) == 11
    cropped = midi.crop_bars(pm, 4)
    assert 5.9 < cropped.get_end_time() <= 6.0
    assert midi.note_count(cropped) == 12
    assert midi.note_count(midi.crop_bars(pm, 50)) == 30  # fewer bars than asked: all of it


def test_set_program_drops_drums():
    pm = make_midi()
    pm.instruments.append(pretty_midi.Instrument(program=0, is_drum=True))
    out = midi.set_program(pm, 52)
    assert [i.program for i in out.instruments] == [52] and len(pm.instruments) == 2


# -- clips ------------------------------------------------------------------------------------------------------


def _music(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_clip_problem_only_cares_about_noise_region_and_overall_level():
    clip = _music(15)
    assert clip_problem(clip) is None
    late_gap = clip.copy()
    late_gap[12 * SR : 13 * SR] = 0
    assert clip_problem(late_gap) is None
    gap = clip.copy()
    gap[int(9.2 * SR) : int(9.8 * SR)] = 0
    assert "near-silent" in clip_problem(gap)
    assert "near-silent" in clip_problem(clip * np.float32(10 ** (-30 / 20)))  # a -53 dBFS sine
    quiet = clip * np.float32(10 ** (-20 / 20))  # -43 dBFS: loud enough per window, too quiet overall
    assert "clip RMS -43.0 dBFS" in clip_problem(quiet)


def test_choose_clip_start_seeded_on_grid_and_avoids_overlap():
    wave = _music(60)
    a, _ = choose_clip_start(wave, rng_for(0, "t"))
    b, _ = choose_clip_start(wave, rng_for(0, "t"))
    assert a == b and a % START_GRID == 0 and a + CLIP_SAMPLES <= wave.size
    c, _ = choose_clip_start(wave, rng_for(1, "t"), avoid=[a], tries=50)
    assert c is not None and abs(c - a) >= CLIP_SAMPLES
    start, why = choose_clip_start(_music(10), rng_for(0, "t"))
    assert start is None and "shorter" in why
    silent = np.zeros(30 * SR, dtype=np.float32)
    assert choose_clip_start(silent, rng_for(0, "t"))[0] is None


# -- the reference corpus ---------------------------------------------------------------------------------------

TINY = dict(n_train=3, n_heldout=1, n_ood=1, clips_per_kind=1, ood=["mozart/k545/movement1_exposition.mxl"])


def test_plan_is_seeded_and_subsets_agree():
    full = corpus.plan_pieces(seed=0)
    train = [j for j in full if j.split == "train"]
    heldout = [j for j in full if j.split == "heldout"]
    assert (len(train), len(heldout)) == (298, 52)  # 350 distinct chorales
    assert not {j.piece_id for j in train} & {j.piece_id for j in heldout}
    assert {j.program for j in train + heldout} == set(corpus.TRAIN_PROGRAMS)
    assert all(0.9 <= j.tempo_factor <= 1.1 for j in train)
    small = corpus.plan_pieces(seed=0, n_train=3, n_heldout=1, n_ood=2)
    assert [j for j in small if j.split == "train"] == train[:3]
    assert [j for j in small if j.split == "heldout"] == heldout[:1]
    assert all(j.program == 0 and j.bars == 32 for j in small if j.split == "ood")
    assert corpus.plan_pieces(seed=1, n_train=3) != corpus.plan_pieces(seed=0, n_train=3)


def test_ood_sources_prefers_musicxml_over_humdrum():
    sources = corpus.ood_sources(["beethoven"])
    assert "beethoven/opus18no1/movement1.mxl" in sources
    assert "beethoven/opus18no1/movement1.krn" not in sources


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    if not HAVE_SYNTH:
        pytest.skip("needs fluidsynth and a GM soundfont")
    out = tmp_path_factory.mktemp("corpus") / "ref"
    return corpus.build_reference_corpus(out, workers=2, progress=False, **TINY)


def test_tiny_corpus_manifest_and_files(tiny_corpus):
    m = tiny_corpus
    assert list(m.table.columns) == list(COLUMNS)
    assert m.counts() == {"heldout": 1, "heldout_piece": 1, "ood": 1, "ood_piece": 1, "train": 3, "trainset": 1}
    assert m.verify(full=True) == []
    assert m.info["corpus_hash"] == m.corpus_hash
    files = m.files
    assert set(files.loc[files["split"] != "ood", "program"]) <= set(corpus.TRAIN_PROGRAMS)
    assert set(files.loc[files["split"] == "ood", "program"]) == {0}
    assert (files["sample_rate"] == SR).all()
    for row in m.files.itertuples():
        info = sf.info(str(m.root / row.path))
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("FLAC", "PCM_16", 1, SR)
        assert info.frames == row.num_samples
    clips = files[files["kind"].isin(["trainset", "heldout", "ood"])]
    assert (clips["num_samples"] == CLIP_SAMPLES).all()
    # a clip is exactly the stored piece's samples from start_s on
    clip = clips.iloc[0]
    piece = files[(files["piece_id"] == clip["piece_id"]) & files["start_s"].isna()].iloc[0]
    start = int(round(clip["start_s"] * SR))
    whole = sf.read(str(m.root / piece["path"]), dtype="int16")[0]
    assert np.array_equal(sf.read(str(m.root / clip["path"]), dtype="int16")[0], whole[start : start + CLIP_SAMPLES])
    # trainset clips come from train pieces
    assert set(clips.loc[clips["kind"] == "trainset", "piece_id"]) <= set(m.kind("train")["piece_id"])
    reread = load_manifest(m.root)
    pd.testing.assert_frame_equal(reread.table, m.table)


def test_building_twice_gives_identical_files(tiny_corpus, tmp_path):
    again = corpus.build_reference_corpus(tmp_path / "again", workers=1, progress=False, **TINY)
    assert again.corpus_hash == tiny_corpus.corpus_hash
    assert (again.root / "manifest.csv").read_bytes() == (tiny_corpus.root / "manifest.csv").read_bytes()


def test_ensure_is_a_no_op_when_valid_and_rebuilds_when_corrupted(tiny_corpus, tmp_path):
    root = tmp_path / "ref"
    shutil.copytree(tiny_corpus.root, root)
    t0 = time.monotonic()
    same = corpus.ensure_reference_corpus(root, workers=1, progress=False, **TINY)
    assert time.monotonic() - t0 < 5 and same.corpus_hash == tiny_corpus.corpus_hash
    manifest_mtime = (root / "manifest.csv").stat().st_mtime_ns
    again = corpus.ensure_reference_corpus(root, workers=1, progress=False, **TINY)
    assert (root / "manifest.csv").stat().st_mtime_ns == manifest_mtime and again.counts() == same.counts()

    victim = root / same.kind("trainset")["path"].iloc[0]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert any("SHA-256" in p for p in load_manifest(root).verify())
    rebuilt = corpus.ensure_reference_corpus(root, workers=1, progress=False, **TINY)
    assert rebuilt.corpus_hash == tiny_corpus.corpus_hash and rebuilt.verify(full=True) == []
    assert victim.read_bytes() == (tiny_corpus.root / victim.relative_to(root)).read_bytes()


def test_ensure_rebuilds_when_missing_or_built_differently(tiny_corpus, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(corpus, "build_reference_corpus", lambda out, **kw: calls.append((out, kw)) or "built")
    root = tmp_path / "ref"
    shutil.copytree(tiny_corpus.root, root)
    (root / tiny_corpus.kind("ood")["path"].iloc[0]).unlink()
    assert any("missing" in p for p in load_manifest(root).verify())
    assert corpus.ensure_reference_corpus(root, progress=False, **TINY) == "built"
    shutil.rmtree(root)
    shutil.copytree(tiny_corpus.root, root)
    assert corpus.ensure_reference_corpus(root, progress=False, **{**TINY, "seed": 1}) == "built"
    assert corpus.ensure_reference_corpus(tmp_path / "nothing", progress=False, **TINY) == "built"
    assert len(calls) == 3
    assert corpus.ensure_reference_corpus(root, progress=False, **TINY).corpus_hash == tiny_corpus.corpus_hash


def test_ensure_accepts_a_copied_corpus_without_soundfont(tiny_corpus, tmp_path, monkeypatch):
    root = tmp_path / "ref"
    shutil.copytree(tiny_corpus.root, root)
    monkeypatch.setenv("CAE_SOUNDFONT", str(tmp_path / "none.sf2"))
    assert corpus.ensure_reference_corpus(root, progress=False, **TINY).corpus_hash == tiny_corpus.corpus_hash


def test_command_line_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        corpus.main(["--help"])
    assert exit_.value.code == 0 and "--small" in capsys.readouterr().out


def test_build_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="refusing"):
        corpus.build_reference_corpus(tmp_path, progress=False, **TINY)
    assert (tmp_path / "mine.txt").exists()


def test_load_manifest_of_a_non_corpus_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="manifest.csv"):
        load_manifest(tmp_path)


# -- folder datasets --------------------------------------------------------------------------------------------


@pytest.fixture()
def audio_folder(tmp_path):
    tone = _music(0.1)
    for rel in ("b/y.flac", "a/x.wav", "top.WAV", ".hidden/z.wav", "a/.dot.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp_path / rel), tone, SR)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_folder_dataset_without_manifest(audio_folder):
    table = folder_dataset(audio_folder)
    assert table["rel_path"].tolist() == ["a/x.wav", "b/y.flac", "top.WAV"]
    assert table["kind"].tolist() == ["a", "b", "unknown"]
    assert all(Path(p).is_absolute() or p.startswith(str(audio_folder)) for p in table["path"])


def test_folder_dataset_with_manifest(audio_folder):
    pd.DataFrame({"path": ["a/x.wav", str(audio_folder / "top.WAV")], "split": ["heldout", "ood"],
                  "note": ["n1", "n2"]}).to_csv(audio_folder / "list.csv", index=False)  # fmt: skip
    table = folder_dataset(audio_folder, manifest=audio_folder / "list.csv")
    assert table["kind"].tolist() == ["heldout", "b", "ood"]
    assert table["note"].fillna("").tolist() == ["n1", "", "n2"]
    # a manifest.csv in the folder is used automatically (kind wins over split), unless manifest=False
    pd.DataFrame({"path": ["b/y.flac"], "kind": ["trainset"], "split": ["train"]}).to_csv(
        audio_folder / "manifest.csv", index=False
    )
    assert folder_dataset(audio_folder)["kind"].tolist() == ["a", "trainset", "unknown"]
    assert folder_dataset(audio_folder, manifest=False)["kind"].tolist() == ["a", "b", "unknown"]
    pd.DataFrame({"path": ["a/x.wav"]}).to_csv(audio_folder / "bad.csv", index=False)
    with pytest.raises(DataError, match="'kind' or 'split'"):
        folder_dataset(audio_folder, manifest=audio_folder / "bad.csv")
    with pytest.raises(DataError, match="not a folder"):
        folder_dataset(audio_folder / "nope")


@needs_synth
def test_reference_corpus_is_a_folder_dataset(tiny_corpus):
    table = folder_dataset(tiny_corpus.root)
    assert sorted(table["kind"]) == sorted(tiny_corpus.files["kind"])


# -- the ASAP pipeline ------------------------------------------------------------------------------------------


def test_select_scores_keeps_eligible_and_is_seeded(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"ok{i}.mid")
        make_midi(paths[-1], bars=4)
    make_midi(tmp_path / "few.mid", bars=1)  # 4 notes < 10
    pretty_midi.PrettyMIDI().write(str(tmp_path / "empty.mid"))
    (tmp_path / "broken.mid").write_bytes(b"not midi")
    everything = sorted(tmp_path.glob("*.mid"))
    picked = asap.select_scores(everything, 3, seed=0)
    assert len(picked) == 3 and set(picked) <= set(paths)
    assert asap.select_scores(everything[::-1], 3, seed=0) == picked
    assert sorted(asap.select_scores(everything, 100, seed=0)) == sorted(paths)


def test_crop_score_draws_8_to_16_bars_of_the_first_32():
    pm = make_midi(bars=40)  # 4/4 at 120 qpm: 2 s per bar
    seen = set()
    for i in range(20):
        cropped, n_bars = asap.crop_score(pm, rng_for(0, "crop", i))
        assert 8 <= n_bars <= 16
        assert 2.0 * n_bars - 0.1 < cropped.get_end_time() <= 2.0 * n_bars
        seen.add(n_bars)
    assert len(seen) > 3
    short, n = asap.crop_score(make_midi(bars=5), rng_for(0, "crop"))
    assert short.get_end_time() == pytest.approx(9.975)  # fewer bars than drawn: kept whole


def test_quiet_runs_and_the_authors_filter():
    sr = 16000
    music = _music(20, sr)
    assert asap.asap_problem(music, sr) is None
    assert "too short" in asap.asap_problem(music[: 10 * sr], sr)
    gap = music.copy()
    gap[5 * sr : int(6.5 * sr)] = 0
    assert "low-volume" in asap.asap_problem(gap, sr)
    gap[5 * sr : 8 * sr] = 0
    assert "silence" in asap.asap_problem(gap, sr)
    runs = asap.quiet_runs(gap, sr, min_duration_s=2.0)
    assert len(runs) == 1 and runs[0][0] == pytest.approx(5.0, abs=0.1) and runs[0][1] == pytest.approx(8.0, abs=0.1)


@needs_synth
def test_render_ood_clips_pipeline(tmp_path):
    src = tmp_path / "midi"
    src.mkdir()
    make_midi(src / "good.mid", bars=40, notes_per_beat=2)
    make_midi(src / "gappy.mid", bars=40, gap_bars=(3, 5), notes_per_beat=2)  # 4 s of silence after bar 3
    make_midi(src / "short.mid", bars=5)  # 10 s: too short for a 15 s clip
    out = tmp_path / "ood"
    table = asap.render_ood_clips(sorted(src.glob("*.mid")), out, seed=0)
    names = [Path(s).name for s in table["source"]]
    status, reasons = dict(zip(names, table["status"])), dict(zip(names, table["reason"]))
    assert status == {"gappy.mid": "skipped", "good.mid": "ok", "short.mid": "skipped"}
    assert "silence" in reasons["gappy.mid"] and "too short" in reasons["short.mid"]
    (good,) = table.loc[table["status"] == "ok", "path"]
    assert good == "midi_001_good_short.wav"
    info = sf.info(str(out / good))
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (CLIP_SAMPLES, 1, SR, "PCM_16")
    listed = folder_dataset(out)
    assert listed["rel_path"].tolist() == [good] and listed["kind"].tolist() == ["ood"]


def test_asap_scores_reads_distinct_score_midis(tmp_path):
    pd.DataFrame({"composer": ["Bach", "Bach", "Chopin"], "title": ["P", "P", "E"],
                  "midi_score": ["Bach/p/midi_score.mid", "Bach/p/midi_score.mid", "Chopin/e/midi_score.mid"]}
                 ).to_csv(tmp_path / "metadata.csv", index=False)  # fmt: skip
    scores = asap.asap_scores(tmp_path)
    assert scores["composer"].tolist() == ["Bach", "Chopin"]
    assert scores["path"].tolist() == [str(tmp_path / p) for p in ("Bach/p/midi_score.mid", "Chopin/e/midi_score.mid")]


def test_fetch_asap_offline_gives_a_clear_error(tmp_path, monkeypatch):
    def offline(url, dest, timeout_s):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(asap, "_download", offline)
    with pytest.raises(DownloadError) as err:
        asap.fetch_asap(tmp_path)
    message = str(err.value)
    assert asap.ASAP_ARCHIVE_URL in message and "could not download" in message and "Without network" in message
    assert not list(tmp_path.glob("*.part"))
    # already there: no download needed
    (tmp_path / "asap-dataset-master").mkdir()
    (tmp_path / "asap-dataset-master" / "metadata.csv").write_text("composer,midi_score\n")
    assert asap.fetch_asap(tmp_path) == tmp_path / "asap-dataset-master"


def test_fetch_asap_unpacks_the_archive(tmp_path, monkeypatch):
    def fake_download(url, dest, timeout_s):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("asap-dataset-master/metadata.csv", "composer,midi_score\nBach,Bach/x/midi_score.mid\n")
        Path(dest).write_bytes(buf.getvalue())

    monkeypatch.setattr(asap, "_download", fake_download)
    root = asap.fetch_asap(tmp_path / "asap")
    assert (root / "metadata.csv").is_file() and not list((tmp_path / "asap").glob("*.zip*"))

    monkeypatch.setattr(asap, "_download", lambda url, dest, t: Path(dest).write_bytes(b"not a zip"))
    with pytest.raises(DownloadError, match="not a valid zip"):
        asap.fetch_asap(tmp_path / "other")
