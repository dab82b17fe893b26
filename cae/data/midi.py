"""MIDI edits made before rendering: instrument (GM program), tempo, and bar/time crops.

All functions work on :class:`pretty_midi.PrettyMIDI` objects, whose note times are in seconds. They return a
**new** object and leave their input untouched.

Programs
    General MIDI program numbers are **0-based** here, as in pretty_midi and in the bytes of a MIDI file
    (GM's printed tables are 1-based: "Church Organ" is GM 20, program byte 19). The ones the reference
    corpus uses, checked against ``pretty_midi.program_to_instrument_name``:

    >>> [pretty_midi.program_to_instrument_name(p) for p in (0, 19, 48, 52)]
    ['Acoustic Grand Piano', 'Church Organ', 'String Ensemble 1', 'Choir Aahs']

    :func:`set_program` gives every melodic track the same program (pretty_midi writes one program change per
    track at time 0, so the file's own program changes are replaced); drum tracks (MIDI channel 10) are
    dropped by default, because a GM drum kit would not become the requested timbre.

Tempo
    :func:`scale_tempo` plays the piece ``factor`` times faster (``factor=1.1`` is 10 % faster): every event
    time ``t`` becomes ``t / factor`` (pitch is unchanged).

Crops
    :func:`crop_time` keeps what sounds in ``[start, end)`` and shifts it to start at 0; notes that cross the
    end are shortened to end there. :func:`bar_times` gives bar lines from pretty_midi's ``get_downbeats``
    (tempo and time-signature changes of the file), and :func:`crop_bars` crops to the first ``n`` bars.

>>> pm = pretty_midi.PrettyMIDI()
>>> inst = pretty_midi.Instrument(program=40)
>>> inst.notes = [pretty_midi.Note(velocity=80, pitch=60 + i, start=i * 0.5, end=i * 0.5 + 0.5) for i in range(8)]
>>> pm.instruments.append(inst)
>>> set_program(pm, 19).instruments[0].program, pm.instruments[0].program
(19, 40)
>>> float(scale_tempo(pm, 2.0).get_end_time())
2.0
>>> float(crop_time(pm, 1.0, 2.25).get_end_time())
1.25
>>> len(crop_bars(pm, 1).instruments[0].notes)   # 4/4 at 120 qpm: one bar = 2 s = 4 notes
4
"""

from __future__ import annotations

import copy
import io
import os
import warnings

import numpy as np
import pretty_midi

__all__ = [
    "MidiLike",
    "load_midi",
    "midi_bytes",
    "note_count",
    "set_program",
    "scale_tempo",
    "crop_time",
    "bar_times",
    "crop_bars",
]

#: A MIDI file path or an already-loaded :class:`pretty_midi.PrettyMIDI`.
MidiLike = str | os.PathLike[str] | pretty_midi.PrettyMIDI


def load_midi(midi: MidiLike) -> pretty_midi.PrettyMIDI:
    """Load a MIDI file, or deep-copy a :class:`pretty_midi.PrettyMIDI` (so callers may edit the result)."""
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return copy.deepcopy(midi)
    with warnings.catch_warnings():
        # pretty_midi warns about odd but harmless meta events in many score files
        warnings.simplefilter("ignore", RuntimeWarning)
        return pretty_midi.PrettyMIDI(os.fspath(midi))


def midi_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    """The standard MIDI file pretty_midi writes for ``pm`` (deterministic for equal objects)."""
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def note_count(pm: pretty_midi.PrettyMIDI) -> int:
    """Number of notes over all tracks."""
    return sum(len(inst.notes) for inst in pm.instruments)


def set_program(pm: pretty_midi.PrettyMIDI, program: int, *, drop_drums: bool = True) -> pretty_midi.PrettyMIDI:
    """Copy of ``pm`` with every melodic track on GM ``program`` (0-based, 0..127).

    Args:
        pm: The MIDI to edit (not modified).
        program: 0-based General MIDI program number.
        drop_drums: Remove drum tracks (channel 10); if False they are kept as they are.
    """
    if not 0 <= int(program) <= 127:
        raise ValueError(f"GM program must be in 0..127 (0-based), got {program}")
    out = copy.deepcopy(pm)
    if drop_drums:
        out.instruments = [inst for inst in out.instruments if not inst.is_drum]
    for inst in out.instruments:
        if not inst.is_drum:
            inst.program = int(program)
            inst.name = pretty_midi.program_to_instrument_name(int(program))
    return out


def scale_tempo(pm: pretty_midi.PrettyMIDI, factor: float) -> pretty_midi.PrettyMIDI:
    """Copy of ``pm`` played ``factor`` times as fast (event time ``t`` → ``t / factor``; tempo map scaled too)."""
    if not factor > 0:
        raise ValueError(f"tempo factor must be positive, got {factor}")
    out = copy.deepcopy(pm)
    if factor == 1.0:
        return out
    end = max(out.get_end_time(), 1e-3)
    out.adjust_times(np.array([0.0, end]), np.array([0.0, end / factor]))
    return out


def crop_time(pm: pretty_midi.PrettyMIDI, start: float, end: float | None = None) -> pretty_midi.PrettyMIDI:
    """Copy of ``pm`` holding what sounds in ``[start, end)`` seconds, shifted to begin at 0.

    Notes that start before ``start`` but sound past it are dropped (a crop begins at note onsets, as the
    crops here begin on bar lines); notes that cross ``end`` are shortened to end at ``end``. The last control
    change / pitch bend of each kind before ``start`` is moved to 0 so the state (sustain, volume) carries over.
    Time and key signatures are shifted with the notes; the tempo map is not (note times in seconds are exact
    whatever it says, but :func:`bar_times` of a crop that starts after a tempo change is only approximate).

    Args:
        pm: The MIDI to crop (not modified).
        start: Crop start in seconds (≥ 0).
        end: Crop end in seconds; ``None`` means the end of the file.
    """
    end = pm.get_end_time() if end is None else float(end)
    start = float(start)
    if start < 0 or end <= start:
        raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
    out = copy.deepcopy(pm)
    for inst in out.instruments:
        notes = []
        for note in inst.notes:
            if start <= note.start < end:
                note.end = min(note.end, end) - start
                note.start -= start
                notes.append(note)
        inst.notes = notes
        last_cc: dict[int, pretty_midi.ControlChange] = {}
        ccs = []
        for cc in sorted(inst.control_changes, key=lambda c: c.time):
            if cc.time < start:
                last_cc[cc.number] = cc
            elif cc.time < end:
                cc.time -= start
                ccs.append(cc)
        for cc in last_cc.values():
            cc.time = 0.0
        inst.control_changes = sorted(last_cc.values(), key=lambda c: c.number) + ccs
        before = [b for b in inst.pitch_bends if b.time < start]
        bends = [b for b in inst.pitch_bends if start <= b.time < end]
        for b in bends:
            b.time -= start
        if before:
            last = max(before, key=lambda b: b.time)
            last.time = 0.0
            bends.insert(0, last)
        inst.pitch_bends = bends
    if start > 0:
        _shift_meta(out, start)
    return out


def _shift_meta(pm: pretty_midi.PrettyMIDI, start: float) -> None:
    """Shift time/key signature changes by ``-start`` (keeping the one in force at ``start`` at time 0)."""
    for attr in ("time_signature_changes", "key_signature_changes"):
        events = sorted(getattr(pm, attr), key=lambda e: e.time)
        before = [e for e in events if e.time <= start]
        after = [e for e in events if e.time > start]
        kept = before[-1:]
        for e in kept:
            e.time = 0.0
        for e in after:
            e.time -= start
        setattr(pm, attr, kept + after)


def bar_times(pm: pretty_midi.PrettyMIDI) -> np.ndarray:
    """Bar-line (downbeat) times in seconds from the file's tempo and time-signature events.

    pretty_midi assumes 4/4 when the file has no time signature. Downbeats are generated up to the end of the
    file; the time :meth:`~pretty_midi.PrettyMIDI.get_end_time` is appended when it falls after the last one,
    so ``len(bar_times(pm)) - 1`` counts started bars.
    """
    downbeats = np.asarray(pm.get_downbeats(), dtype=np.float64)
    end = pm.get_end_time()
    if downbeats.size == 0 or end > downbeats[-1] + 1e-9:
        downbeats = np.append(downbeats, end)
    return downbeats


def crop_bars(pm: pretty_midi.PrettyMIDI, n_bars: int, *, first_bar: int = 0) -> pretty_midi.PrettyMIDI:
    """Copy of ``pm`` cropped to bars ``first_bar .. first_bar + n_bars`` (by :func:`bar_times`).

    If the file has fewer bars, everything from ``first_bar`` to the end is kept (the authors' scripts return
    the whole file in that case).
    """
    if n_bars < 1:
        raise ValueError(f"n_bars must be >= 1, got {n_bars}")
    bars = bar_times(pm)
    if first_bar >= len(bars) - 1:
        raise ValueError(f"file has {len(bars) - 1} bar(s); cannot start at bar {first_bar}")
    start = float(bars[first_bar])
    stop = first_bar + n_bars
    end = float(bars[stop]) if stop < len(bars) else pm.get_end_time()
    return crop_time(pm, start, end)
