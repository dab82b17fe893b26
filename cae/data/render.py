"""Render MIDI to mono float32 audio with the FluidSynth command-line synthesiser.

Method
    1. The MIDI is loaded with pretty_midi and optionally edited (:mod:`cae.data.midi`): one GM ``program`` for
       every melodic track (drum tracks dropped), a ``tempo_factor``. The edited file goes to a temporary folder.
    2. ``fluidsynth -ni -q -R 0 -C 0 -g <gain> -r <rate> -T wav -O float -F out.wav <sf2> <midi>`` renders it
       offline ("fast render", no audio device). **Reverb and chorus are off**: with them on, two renders of the
       same file differ (measured with FluidSynth 2.3.1); with them off the output is bit-identical, so corpora
       built from it have stable hashes. Samples are 32-bit float, so loud passages are not clipped.
    3. FluidSynth writes stereo; the channels are averaged (mean) to mono, as :func:`cae.audio.load` does.
    4. Trailing silence is trimmed: FluidSynth keeps rendering a few seconds after the last event, and what
       follows the last sample with ``|x| >= 10^(TRAIL_SILENCE_DBFS/20)`` (−60 dBFS) is cut. The start is kept,
       so audio time 0 is MIDI time 0.

Guards (a known failure: about 1 % of renders of some MIDI files hang or write multi-GB files)
    Every render runs under a wall-clock timeout, ``max(MIN_TIMEOUT_S, TIMEOUT_FACTOR × expected duration)``
    unless given, and the output file's size is watched while FluidSynth runs; it may not exceed
    ``SIZE_FACTOR ×`` the size the expected duration implies (plus ``SIZE_SLACK_S`` seconds). The expected
    duration is the MIDI's end time plus ``TAIL_S``. Either violation kills the process (its whole process
    group) and raises :class:`RenderError` naming the MIDI file. So do a missing executable or soundfont, a
    non-zero exit status, and empty or non-finite output.

Soundfont
    :func:`find_soundfont`: an explicit path, else ``$CAE_SOUNDFONT``, else Debian's ``fluid-soundfont-gm``
    (``/usr/share/sounds/sf2/FluidR3_GM.sf2``). The authors rendered with GeneralUser-GS; renders with another
    soundfont sound different and give different hashes.

>>> fluidsynth_command("in.mid", "out.wav", soundfont="gm.sf2", sample_rate=32000, gain=0.6)[:6]
['fluidsynth', '-ni', '-q', '-R', '0', '-C']
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from cae.audio import DEFAULT_SAMPLE_RATE, save
from cae.data.errors import RenderError
from cae.data.midi import MidiLike, load_midi, scale_tempo, set_program
from cae.types import Wave

__all__ = [
    "RenderError",
    "DEFAULT_SOUNDFONT",
    "SOUNDFONT_ENV",
    "DEFAULT_GAIN",
    "TRAIL_SILENCE_DBFS",
    "MIN_TIMEOUT_S",
    "TIMEOUT_FACTOR",
    "SIZE_FACTOR",
    "TAIL_S",
    "find_soundfont",
    "fluidsynth_version",
    "fluidsynth_command",
    "expected_bytes",
    "trim_trailing_silence",
    "render_midi_to_array",
    "render_midi",
]

#: Debian/Ubuntu package ``fluid-soundfont-gm``.
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: Environment variable naming a soundfont to use instead of :data:`DEFAULT_SOUNDFONT`.
SOUNDFONT_ENV = "CAE_SOUNDFONT"
#: FluidSynth master gain (its default is 0.2). At 0.6 on FluidR3_GM, four-voice chorales peak at about −9 dBFS
#: (organ) to −12 dBFS (strings, choir), RMS −22 to −26 dBFS; piano quartet scores peak up to about 0 dBFS.
DEFAULT_GAIN = 0.6
#: Samples after the last one at or above this level (dBFS, absolute) are trimmed.
TRAIL_SILENCE_DBFS = -60.0
#: Shortest timeout given to a render, seconds.
MIN_TIMEOUT_S = 30.0
#: Timeout = TIMEOUT_FACTOR × expected duration (FluidSynth renders ~50× faster than real time, so this is slack).
TIMEOUT_FACTOR = 4.0
#: Largest output allowed, as a multiple of the expected size.
SIZE_FACTOR = 4.0
#: Extra seconds of audio allowed for in the size limit.
SIZE_SLACK_S = 10.0
#: Seconds FluidSynth may render after the last MIDI event (releases); part of the expected duration.
TAIL_S = 5.0
#: How often the running process is checked, seconds.
POLL_S = 0.02
_WAV_HEADER_BYTES = 4096
_OUT_CHANNELS = 2
_BYTES_PER_SAMPLE = 4  # -O float


def find_soundfont(soundfont: str | os.PathLike[str] | None = None) -> Path:
    """The soundfont to render with: ``soundfont``, else ``$CAE_SOUNDFONT``, else :data:`DEFAULT_SOUNDFONT`.

    Raises:
        RenderError: The file does not exist (the message says how to install the default one).
    """
    path = Path(soundfont or os.environ.get(SOUNDFONT_ENV) or DEFAULT_SOUNDFONT)
    if not path.is_file():
        raise RenderError(
            path,
            "soundfont not found; install Debian's fluid-soundfont-gm (apt-get install fluid-soundfont-gm) "
            f"or point ${SOUNDFONT_ENV} at a .sf2 file",
        )
    return path


@functools.lru_cache(maxsize=4)
def fluidsynth_version(executable: str = "fluidsynth") -> str:
    """FluidSynth's version string (e.g. ``"2.3.1"``), or ``"unknown"`` if it cannot be asked."""
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if "runtime version" in line:
            return line.rsplit(" ", 1)[-1].strip()
    return "unknown"


def fluidsynth_command(
    midi: str | os.PathLike[str],
    out_wav: str | os.PathLike[str],
    *,
    soundfont: str | os.PathLike[str],
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    gain: float = DEFAULT_GAIN,
    executable: str | os.PathLike[str] = "fluidsynth",
) -> list[str]:
    """The FluidSynth command line that renders ``midi`` to a float32 stereo WAV ``out_wav``.

    ``-ni``: no MIDI input driver, no shell; ``-q``: quiet; ``-R 0 -C 0``: reverb and chorus off (determinism);
    ``synth.dynamic-sample-loading=1``: load only the soundfont samples the file uses (a third faster for a
    short file; the audio is the same); ``-g``: master gain; ``-r``: sample rate; ``-T wav -O float``: 32-bit
    float WAV; ``-F``: fast (offline) render.
    """
    return [
        os.fspath(executable), "-ni", "-q", "-R", "0", "-C", "0",
        "-o", "synth.dynamic-sample-loading=1",
        "-g", f"{float(gain):g}", "-r", str(int(sample_rate)),
        "-T", "wav", "-O", "float", "-F", os.fspath(out_wav),
        os.fspath(soundfont), os.fspath(midi),
    ]  # fmt: skip


def expected_bytes(duration_s: float, sample_rate: int = DEFAULT_SAMPLE_RATE) -> int:
    """Size of FluidSynth's float stereo WAV for ``duration_s`` seconds (header included, roughly).

    >>> expected_bytes(1.0, 32000)
    260096
    """
    return int(round(duration_s * sample_rate)) * _OUT_CHANNELS * _BYTES_PER_SAMPLE + _WAV_HEADER_BYTES


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process group we started (FluidSynth, or a wrapper script and its children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _run_guarded(cmd: list[str], out_wav: Path, *, name: str, timeout_s: float, max_bytes: int, log: Path) -> None:
    """Run ``cmd``; kill it and raise RenderError on timeout, runaway output or failure."""
    try:
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
    except FileNotFoundError as exc:
        raise RenderError(
            name, f"cannot run {cmd[0]!r}: {exc.strerror}; install FluidSynth (apt-get install fluidsynth)"
        ) from exc
    t0 = time.monotonic()
    while True:
        try:
            rc = proc.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        size = out_wav.stat().st_size if out_wav.exists() else 0
        if size > max_bytes:
            _kill(proc)
            raise RenderError(name, f"render output grew past {max_bytes} bytes ({size} bytes written); killed")
        if time.monotonic() - t0 > timeout_s:
            _kill(proc)
            raise RenderError(name, f"render timed out after {timeout_s:.1f} s; killed")
    if rc != 0:
        tail = log.read_text(errors="replace").strip()[-500:]
        raise RenderError(name, f"{Path(cmd[0]).name} exited with status {rc}: {tail or '(no message)'}")
    if not out_wav.exists():
        raise RenderError(name, "renderer wrote no output file")
    size = out_wav.stat().st_size
    if size > max_bytes:
        raise RenderError(name, f"render output is {size} bytes, more than the limit of {max_bytes}")


def trim_trailing_silence(wave: Wave, threshold_dbfs: float = TRAIL_SILENCE_DBFS) -> Wave:
    """Cut everything after the last sample with ``|x| >= 10^(threshold_dbfs/20)`` (all of it if none is).

    >>> trim_trailing_silence(np.array([0.0, 0.5, 0.0, 1e-4, 0.0], dtype=np.float32)).tolist()
    [0.0, 0.5]
    """
    loud = np.flatnonzero(np.abs(wave) >= 10.0 ** (threshold_dbfs / 20.0))
    return wave[: int(loud[-1]) + 1] if loud.size else wave[:0]


def render_midi_to_array(
    midi: MidiLike,
    *,
    program: int | None = None,
    tempo_factor: float = 1.0,
    soundfont: str | os.PathLike[str] | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    gain: float = DEFAULT_GAIN,
    trim: bool = True,
    timeout_s: float | None = None,
    max_bytes: int | None = None,
    executable: str | os.PathLike[str] = "fluidsynth",
    name: str | None = None,
) -> Wave:
    """Render a MIDI file (or :class:`pretty_midi.PrettyMIDI`) to a mono float32 waveform.

    Args:
        midi: MIDI file path or pretty_midi object (not modified).
        program: If given, every melodic track is set to this 0-based GM program and drum tracks are dropped.
        tempo_factor: Play this many times as fast (1.0: as written).
        soundfont: ``.sf2`` file; see :func:`find_soundfont`.
        sample_rate: Output rate in Hz (FluidSynth renders at it directly).
        gain: FluidSynth master gain.
        trim: Trim trailing silence (:func:`trim_trailing_silence`).
        timeout_s: Wall-clock limit; default ``max(MIN_TIMEOUT_S, TIMEOUT_FACTOR × expected duration)``.
        max_bytes: Output size limit; default ``SIZE_FACTOR × expected_bytes(expected duration + SIZE_SLACK_S)``.
        executable: The FluidSynth program (any program taking the same arguments, e.g. in tests).
        name: What to call the input in errors (default: the path, or ``"<PrettyMIDI>"``).

    Returns:
        Float32 array of shape ``[N]`` at ``sample_rate``.

    Raises:
        RenderError: Names the MIDI: no FluidSynth or soundfont, timeout, output too large, non-zero exit,
            unreadable, empty, silent-only or non-finite output.
    """
    if name is None:
        name = "<PrettyMIDI>" if not isinstance(midi, (str, os.PathLike)) else os.fspath(midi)
    font = find_soundfont(soundfont)
    try:
        pm = load_midi(midi)
    except Exception as exc:  # pretty_midi/mido raise many kinds on bad files
        raise RenderError(name, f"cannot read MIDI: {type(exc).__name__}: {exc}") from exc
    if program is not None:
        pm = set_program(pm, program)
    if tempo_factor != 1.0:
        pm = scale_tempo(pm, tempo_factor)
    expected_s = float(pm.get_end_time()) + TAIL_S
    if timeout_s is None:
        timeout_s = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * expected_s)
    if max_bytes is None:
        max_bytes = int(SIZE_FACTOR * expected_bytes(expected_s + SIZE_SLACK_S, sample_rate))
    with tempfile.TemporaryDirectory(prefix="cae-render-") as tmp:
        mid_path, wav_path, log = Path(tmp) / "in.mid", Path(tmp) / "out.wav", Path(tmp) / "stderr.txt"
        try:
            pm.write(os.fspath(mid_path))
        except Exception as exc:
            raise RenderError(name, f"cannot write edited MIDI: {type(exc).__name__}: {exc}") from exc
        cmd = fluidsynth_command(
            mid_path, wav_path, soundfont=font, sample_rate=sample_rate, gain=gain, executable=executable
        )
        _run_guarded(cmd, wav_path, name=name, timeout_s=timeout_s, max_bytes=max_bytes, log=log)
        try:
            data, rate = sf.read(os.fspath(wav_path), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise RenderError(name, f"cannot read the rendered audio: {exc}") from exc
    if rate != sample_rate:
        raise RenderError(name, f"renderer wrote {rate} Hz audio, expected {sample_rate} Hz")
    if data.size == 0:
        raise RenderError(name, "renderer wrote no audio samples")
    if not np.isfinite(data).all():
        raise RenderError(name, "rendered audio contains NaN/Inf samples")
    wave = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    if trim:
        wave = trim_trailing_silence(wave)
        if wave.size == 0:
            raise RenderError(name, f"rendered audio is silent (no sample above {TRAIL_SILENCE_DBFS} dBFS)")
    return wave


def render_midi(
    midi: MidiLike,
    out_path: str | os.PathLike[str],
    *,
    subtype: str = "FLOAT",
    **kwargs: object,
) -> Wave:
    """Render like :func:`render_midi_to_array` and save the result with :func:`cae.audio.save`.

    Args:
        midi: MIDI file path or pretty_midi object.
        out_path: Output audio file (format from the extension: ``.wav``, ``.flac``, ...).
        subtype: libsndfile sample format (``"FLOAT"`` keeps everything; ``"PCM_16"`` refuses samples
            outside [-1, 1)).
        **kwargs: Passed to :func:`render_midi_to_array`.

    Returns:
        The rendered waveform (as computed, before any quantisation by ``subtype``).
    """
    sample_rate = int(kwargs.get("sample_rate", DEFAULT_SAMPLE_RATE))  # type: ignore[call-overload]
    wave = render_midi_to_array(midi, **kwargs)  # type: ignore[arg-type]
    save(out_path, wave, sample_rate, subtype=subtype)
    return wave
