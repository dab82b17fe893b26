"""Command line: ``cae score AUDIO... --model M [perturbations] --out results.parquet``,
``cae generate --model M --out DIR [--top-k 10 50 ...] [--per-k 20] [--seconds 15] [--seed 0]`` and
``cae profile FOLDER... [--model reference] --out profile.parquet`` (the profile score, :mod:`cae.profile`).

Perturbations come from three options that add up:

* ``--paper-noise KIND`` — the authors' grid for a dataset kind (``ood`` −30, ``generated`` −20, ``trainset`` −12
  dBFS): white noise replacing frames [250, 250+L) for L in ``--lengths`` (default 5 10 50 100 150 200), seeds
  42 + clip index (``--seeding index``, the default with this option; otherwise seeds follow each clip's content);
* ``--noise COLOUR`` with ``--level-db``, ``--reference``, ``--mode``, ``--onset-frames``, ``--lengths``,
  ``--crossfade-ms``, ``--seed`` — one noise condition per length;
* ``--perturb TEXT`` (repeatable) — the compact syntax of :mod:`cae.perturb.text`, e.g.
  ``noise:white:-30dbfs@250+100f``; or JSON (``--perturb '{"kind": ...}'``) or ``@file.json``, any perturbation as
  :func:`cae.perturb.from_dict` reads it (a file may hold one object or a list).

``cae score`` goes through the cached sweep engine (:func:`cae.scoring.run_sweep`; ``--cache-dir``), the same path as
the book. Output: the suffix of ``--out`` picks the format (``.parquet`` or ``.csv``; anything else is refused before
any work), for every command; the output folder is checked for writability before any work too. Rows are written
even when some clips fail; the failures are listed on stderr and the exit code is 1.

``cae profile`` scores every audio file in the given folders (recursively; files may also be named directly) under
the short-injection protocol (:class:`cae.profile.ProfileProtocol`: white-noise bursts of 5 and 10 frames at frames 150,
300 and 450, 0 dB SNR relative to the clip, replacing the audio; ``--lengths``, ``--onsets``, ``--level-db`` change
it) and writes the profile table (one row per clip × burst × codebook-or-"mean"; parquet, or CSV when ``--out`` ends
in ``.csv``) plus the per-clip scores beside it (``<stem>.scores<suffix>``), then prints a short summary. A file that
cannot be read, or a clip shorter than the protocol needs, becomes an error row naming the file; the rest completes
(exit code 1 when any row failed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cae.paper import PAPER_LENGTHS, PAPER_TOP_KS


def _lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"lengths must be whole frame counts, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"lengths must be positive, got {text!r}")
    return values


class UsageError(Exception):
    """A command-line value that cannot work; reported as one line, exit code 2, before any work."""


def _perturbations_from(values: list[str]) -> list[Any]:
    """``--perturb`` values: compact text (:mod:`cae.perturb.text`), JSON, or ``@file.json``."""
    from cae.perturb import PerturbationError, from_dict, parse

    out: list[Any] = []
    for v in values:
        source = v
        if not v.startswith(("@", "{", "[")):
            out.append(parse(v))
            continue
        if v.startswith("@"):
            path = Path(v[1:])
            if not path.is_file():
                raise UsageError(f"--perturb file {path} does not exist")
            v = path.read_text()
        try:
            data = json.loads(v)
        except json.JSONDecodeError as e:
            raise UsageError(f"--perturb {source!r} is not valid JSON: {e}") from None
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict):
                raise UsageError(f"--perturb {source!r}: expected a perturbation object (or a list of them), "
                                 f"got {json.dumps(item)}")
            try:
                out.append(from_dict(item))
            except (PerturbationError, KeyError, TypeError, ValueError) as e:
                raise UsageError(f"--perturb {source!r}: {e}") from None
    return out


def _table_path(out: str) -> Path:
    """The ``--out`` path, refused unless it ends in ``.parquet`` or ``.csv``."""
    path = Path(out)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"--out must end in .parquet or .csv (the suffix picks the format), got {path.name!r}")
    return path


def _check_writable(*paths: Path) -> None:
    """Fail now, not after the work, when an output cannot be written (a folder under a file, no permission)."""
    import os
    import tempfile

    for path in paths:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".cae-write-test-")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
        if path.is_dir():
            raise UsageError(f"cannot write {path}: it is a folder")


def _check_device(device: str | None) -> None:
    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA GPU is usable here (torch {torch.__version__}); "
                             "use --device cpu")


def build_perturbations(args: argparse.Namespace) -> list[Any]:
    from cae import paper, perturb

    out: list[Any] = []
    lengths = args.lengths or list(PAPER_LENGTHS)
    if args.paper_noise:
        out += [paper.paper_noise(n, args.paper_noise, file_index=0) for n in lengths]
    if args.noise:
        for n in lengths:
            out.append(perturb.Noise(
                span=perturb.Span(args.onset_frames, n, "frames"), colour=args.noise, mode=args.mode,
                level_db=args.level_db, reference=args.reference, crossfade_ms=args.crossfade_ms, seed=args.seed,
            ))
    out += _perturbations_from(args.perturb)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cae", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="per-token NLL of clips, clean and perturbed, into parquet tables")
    s.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG, ...)")
    s.add_argument("--model", required=True, help="registered name, hub id, 'audiocraft:<id>' or local folder")
    s.add_argument("--out", required=True,
                   help="per-token table, .parquet or .csv; the summary goes beside it (<stem>.summary.<suffix>)")
    s.add_argument("--alignment", default=None,
                   help="the model's scoring layout: its own by default (MusicGen: delay, YuE: stage2), or 'paper'")
    s.add_argument("--device", default=None)
    s.add_argument("--dtype", default=None, help="model dtype (float32 default; log-softmax is always float32)")
    s.add_argument("--prompt", default=None, help="text condition (default: null condition)")
    s.add_argument("--paper-noise", metavar="KIND", choices=["ood", "generated", "trainset"])
    s.add_argument("--noise", metavar="COLOUR", help="white, pink, brown, blue, violet, butter-pink, ...")
    s.add_argument("--level-db", type=float, default=-30.0)
    s.add_argument("--reference", choices=["dbfs", "snr-rms", "snr-lufs"], default="dbfs")
    s.add_argument("--mode", choices=["replace", "add"], default="replace")
    s.add_argument("--onset-frames", type=int, default=250)
    s.add_argument("--lengths", type=_lengths, default=None, help="frame lengths, e.g. '5,10,50'")
    s.add_argument("--crossfade-ms", type=float, default=0.0)
    s.add_argument("--seed", type=int, default=0, help="noise seed of --noise (plus a per-clip offset, see --seeding)")
    s.add_argument("--perturb", action="append", default=[], metavar="TEXT|JSON|@FILE",
                   help="e.g. noise:white:-30dbfs@250+100f (grammar: cae.perturb.text)")
    s.add_argument("--seeding", choices=["content", "index"], default=None,
                   help="per-clip noise seed offset: from the clip's bytes (default) or its position in the list "
                        "(the authors' 42 + index; the default with --paper-noise)")
    s.add_argument("--cache-dir", default=None, help="sweep cache (default $CAE_CACHE_DIR/sweeps)")
    s.add_argument("--no-progress", action="store_true")

    g = sub.add_parser("generate", help="a seeded unconditional 'Generated' set over a top-k sweep")
    g.add_argument("--model", required=True)
    g.add_argument("--out", required=True, help="output folder (WAV + codes .npy + manifest.csv)")
    g.add_argument("--top-k", type=int, nargs="+", default=None, help="default: the paper's 10 50 100 150 200 250 500")
    g.add_argument("--per-k", type=int, default=20)
    g.add_argument("--seconds", type=float, default=15.0)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--loudness-lufs", type=float, default=-14.0, help="target loudness (audiocraft's default)")
    g.add_argument("--device", default=None)
    g.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("profile", help="the profile score of audio files under short noise bursts (cae.profile)")
    r.add_argument("audio", nargs="+", help="folders (searched recursively for audio files) or audio files")
    r.add_argument("--model", default="reference", help="registered name, hub id or local folder (default: reference)")
    r.add_argument("--out", required=True, help="profile table: .parquet or .csv; the scores go beside it")
    r.add_argument("--lengths", type=_lengths, default=None, help="burst lengths in frames (default '5,10')")
    r.add_argument("--onsets", type=_lengths, default=None, help="burst onsets in frames (default '150,300,450')")
    r.add_argument("--level-db", type=float, default=0.0, help="burst SNR in dB relative to the clip's RMS (default 0)")
    r.add_argument("--seed", type=int, default=0, help="noise seed (plus an offset derived from each clip's content)")
    r.add_argument("--feature", default=None, help="feature the scores average (default: peak_contrast)")
    r.add_argument("--cache-dir", default=None, help="sweep cache (default $CAE_CACHE_DIR/sweeps)")
    r.add_argument("--device", default=None)
    r.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from cae.errors import CaeError

    args = _parser().parse_args(argv)
    run = {"score": _score, "generate": _generate, "profile": _profile}[args.command]
    try:
        return run(args)
    except (UsageError, CaeError) as e:
        print(f"cae {args.command}: {e}", file=sys.stderr)
        return 2


def _audio_inputs(items: list[str]) -> list[str]:
    """Folders expanded to their audio files (sorted, recursive); other paths kept as given (errors come later).
    A folder with no audio file is refused: it is almost always a wrong path."""
    from cae.data.folder import folder_dataset

    out: list[str] = []
    for item in items:
        if Path(item).is_dir():
            found = folder_dataset(item, manifest=False)["path"].tolist()
            if not found:
                raise UsageError(f"folder {item} holds no audio file")
            out += found
        else:
            out.append(item)
    return out


def _write_table(df: Any, path: Path) -> None:
    """Write ``df`` in the format the suffix names (``.csv`` or ``.parquet``; checked by :func:`_table_path`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _profile(args: argparse.Namespace) -> int:
    import math

    from cae.models import load_model
    from cae.profile import DEFAULT_SCORE_FEATURE, FEATURES, ProfileProtocol, clip_scores, profile_clips

    out = _table_path(args.out)
    scores_path = out.with_name(f"{out.stem}.scores{out.suffix}")
    feature = args.feature or DEFAULT_SCORE_FEATURE
    if feature not in FEATURES:
        raise UsageError(f"--feature {feature!r} is not a profile feature; choose from {', '.join(FEATURES)}")
    _check_writable(out, scores_path)
    _check_device(args.device)
    clips = _audio_inputs(args.audio)
    if not clips:
        raise UsageError(f"no audio files found in {' '.join(args.audio)}")
    defaults = ProfileProtocol()
    model = load_model(args.model, **({"device": args.device} if args.device else {}))
    try:
        protocol = ProfileProtocol(lengths=tuple(args.lengths or defaults.lengths),
                                   onsets=tuple(args.onsets or defaults.onsets), level_db=args.level_db, seed=args.seed,
                                   frame_rate=float(model.frame_rate))
    except ValueError as e:
        raise UsageError(str(e)) from None
    result = profile_clips(clips, model, protocol=protocol, cache_dir=args.cache_dir, progress=not args.no_progress)
    scores = clip_scores(result.table, feature=feature, max_length=None)
    _write_table(result.table, out)
    _write_table(scores, scores_path)

    errors = result.errors
    bad = set(errors["clip"])
    ok = scores[~scores["clip"].isin(bad) & scores["score"].notna()].sort_values("score", ascending=False)
    print(f"cae profile: {len(clips)} file(s), model {model.model_id}, bursts {list(protocol.lengths)} frames at "
          f"{list(protocol.onsets)}, {protocol.level_db:+g} dB SNR")
    print(f"wrote {out} ({len(result.table)} rows) and {scores_path} ({len(scores)} rows)")
    if len(ok):
        mean = float(ok["score"].mean())
        print(f"profile score ({feature}, codebook mean): mean {mean:.3f} over {len(ok)} clip(s); clean loss mean "
              f"{float(ok['loss_clean'].mean()):.3f} nats")
        for _, row in ok.head(5).iterrows():
            loss = row["loss_clean"]
            print(f"  {row['score']:8.3f}  loss {loss if math.isfinite(loss) else float('nan'):.3f}  {row['clip']}")
        if len(ok) > 5:
            print(f"  … {len(ok) - 5} more in {scores_path}")
    for _, row in errors.drop_duplicates(["clip", "error"]).iterrows():
        print(f"error [{row['clip']}]: {row['error']}", file=sys.stderr)
    return 1 if len(errors) else 0


def _generate(args: argparse.Namespace) -> int:
    from cae.generation import write_generated_set
    from cae.models import load_model

    if not args.seconds > 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds}")
    if args.per_k < 1:
        raise UsageError(f"--per-k must be at least 1, got {args.per_k}")
    if any(k < 0 for k in args.top_k or ()):
        raise UsageError(f"--top-k values must be 0 (all tokens) or positive, got {args.top_k}")
    if args.temperature < 0:
        raise UsageError(f"--temperature must be 0 (greedy) or positive, got {args.temperature}")
    _check_device(args.device)
    _check_writable(Path(args.out) / "manifest.csv")
    model = load_model(args.model, **({"device": args.device} if args.device else {}))
    manifest = write_generated_set(
        model, args.out, top_ks=args.top_k or PAPER_TOP_KS, per_k=args.per_k, seconds=args.seconds,
        temperature=args.temperature, seed=args.seed, loudness_lufs=args.loudness_lufs,
        progress=not args.no_progress,
    )
    print(f"wrote {len(manifest)} clips and {Path(args.out) / 'manifest.csv'}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from cae.models import load_model
    from cae.scoring import run_sweep

    out = _table_path(args.out)
    summary_out = out.with_name(f"{out.stem}.summary{out.suffix}")
    _check_writable(out, summary_out)
    _check_device(args.device)
    perturbations = build_perturbations(args)
    kwargs: dict[str, Any] = {} if args.alignment is None else {"alignment": args.alignment}
    if args.device:
        kwargs["device"] = args.device
    if args.dtype:
        kwargs["dtype"] = args.dtype
    model = load_model(args.model, **kwargs)
    seeding = args.seeding or ("index" if args.paper_noise else "content")
    tables = run_sweep(args.audio, perturbations, model, prompt=args.prompt, cache_dir=args.cache_dir,
                       progress=not args.no_progress, seeding=seeding)
    tokens_path, summary_path = out, summary_out
    _write_table(tables.tokens, tokens_path)
    _write_table(tables.summary, summary_path)
    print(f"wrote {tokens_path} ({len(tables.tokens)} token rows) and {summary_path} ({len(tables.summary)} rows)")
    errors = tables.summary[tables.summary["error"].notna()]
    for _, row in errors.iterrows():
        print(f"error [{row['clip']}, {row['condition']}]: {row['error']}", file=sys.stderr)
    return 1 if len(errors) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
