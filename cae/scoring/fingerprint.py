"""The scoring code's fingerprint: what makes :data:`~cae.scoring.cache.SCORING_VERSION` change with the code.

A unit's key holds ``SCORING_VERSION`` (:mod:`cae.scoring.cache`), so cached numbers are reused only by the code
version that computed them. A version number is only as good as the discipline of bumping it, so the test suite
enforces it: :func:`source_fingerprint` hashes the source files of :data:`~cae.scoring.cache.SCORING_MODULES` (their
bytes, line endings normalised to ``\\n``), and ``tests/scoring_fingerprint.txt`` records the fingerprint together
with the version it belongs to. When the source no longer matches, the test fails and says what to do:

1. bump ``SCORING_VERSION`` in ``cae/scoring/cache.py`` (every cached unit is then computed again);
2. record the new fingerprint: ``python -m cae.scoring.fingerprint --update``.

``--update`` refuses to record a changed fingerprint under an unchanged version. A change that provably cannot
change a number (a comment, a docstring) may keep the version, and the caches, with ``--update --cosmetic``; that is
the author's claim, made in the diff of the recorded file. ``python -m cae.scoring.fingerprint`` alone checks and
exits non-zero when the record is stale.

>>> fp = source_fingerprint()
>>> len(fp), fp == source_fingerprint()
(64, True)
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cae.paths import PACKAGE_DIR, REPO_ROOT
from cae.scoring.cache import SCORING_MODULES, SCORING_VERSION

__all__ = ["FINGERPRINT_FILE", "Record", "check", "module_file", "read_record", "source_fingerprint", "write_record"]

#: Where the recorded fingerprint lives (a source checkout's ``tests/``; ``None`` for an installed package).
FINGERPRINT_FILE: Path | None = None if REPO_ROOT is None else REPO_ROOT / "tests" / "scoring_fingerprint.txt"
_UPDATE = "python -m cae.scoring.fingerprint --update"


def module_file(name: str) -> Path:
    """The source file of a ``cae`` module, found without importing it.

    >>> module_file("cae.scoring.cache").relative_to(PACKAGE_DIR).as_posix()
    'scoring/cache.py'
    """
    if name != "cae" and not name.startswith("cae."):
        raise ValueError(f"{name!r} is not a cae module")
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.is_file():
        raise FileNotFoundError(f"no source file for module {name!r} (looked for {path})")
    return path


def source_fingerprint(modules: Iterable[str] = SCORING_MODULES) -> str:
    """Hex SHA-256 over each module's name and source bytes (``\\r\\n`` and ``\\r`` read as ``\\n``), in sorted name
    order, so that neither the order of the list nor a checkout's line endings change it."""
    h = hashlib.sha256(b"cae.scoring.fingerprint\0")
    for name in sorted(set(modules)):
        data = module_file(name).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Record:
    """What ``tests/scoring_fingerprint.txt`` holds: a scoring version and the fingerprint recorded with it."""

    version: int
    fingerprint: str


def read_record(path: str | Path) -> Record:
    """Parse a fingerprint file (``version N`` and ``fingerprint HEX`` lines; ``#`` starts a comment)."""
    fields: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    try:
        return Record(int(fields["version"]), fields["fingerprint"])
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path}: expected 'version N' and 'fingerprint HEX' lines ({e})") from e


def write_record(path: str | Path, record: Record) -> None:
    """Write ``record`` in the format :func:`read_record` reads."""
    Path(path).write_text(
        "# The scoring code's fingerprint and the SCORING_VERSION it belongs to (cae/scoring/fingerprint.py).\n"
        f"# Checked by tests/test_cache_weights.py; rewrite with: {_UPDATE}\n"
        f"version {record.version}\nfingerprint {record.fingerprint}\n"
    )


def check(path: str | Path | None = None) -> str | None:
    """``None`` when the recorded fingerprint matches the source and :data:`SCORING_VERSION`, else what to do."""
    path = Path(path or _default_file())
    recorded = read_record(path)
    current = Record(SCORING_VERSION, source_fingerprint())
    if recorded == current:
        return None
    if recorded.fingerprint != current.fingerprint and recorded.version == current.version:
        return (f"scoring code changed (a module of SCORING_MODULES): bump SCORING_VERSION in cae/scoring/cache.py "
                f"(now {SCORING_VERSION}) and update {path.name} ({_UPDATE}); for a change that cannot change a "
                f"number (comments, docstrings) keep the version with `{_UPDATE} --cosmetic`")
    also = "" if recorded.fingerprint == current.fingerprint else " and other scoring code"
    return (f"{path.name} records SCORING_VERSION {recorded.version}, the code has {SCORING_VERSION}{also}: "
            f"update it ({_UPDATE})")


def _default_file() -> Path:
    if FINGERPRINT_FILE is None:
        raise FileNotFoundError("the scoring fingerprint is recorded in a source checkout's tests/ folder")
    return FINGERPRINT_FILE


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cae.scoring.fingerprint [--update [--cosmetic]] [--file PATH]`` (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m cae.scoring.fingerprint", description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="record the current fingerprint and version")
    parser.add_argument("--cosmetic", action="store_true",
                        help="with --update: keep the version although the source changed (no number can change)")
    parser.add_argument("--file", type=Path, default=None, help="the record (default: tests/scoring_fingerprint.txt)")
    args = parser.parse_args(argv)
    path = args.file or _default_file()
    problem = check(path) if path.is_file() else f"{path} is missing"
    if not args.update:
        print(problem or f"{path.name}: up to date (SCORING_VERSION {SCORING_VERSION})")
        return 1 if problem else 0
    current = Record(SCORING_VERSION, source_fingerprint())
    if path.is_file() and not args.cosmetic:
        recorded = read_record(path)
        if recorded.version == current.version and recorded.fingerprint != current.fingerprint:
            print(f"the scoring code changed but SCORING_VERSION is still {SCORING_VERSION}: bump it in "
                  "cae/scoring/cache.py first (or pass --cosmetic for a change that cannot change a number)",
                  file=sys.stderr)
            return 1
    write_record(path, current)
    print(f"{path}: recorded SCORING_VERSION {current.version}, fingerprint {current.fingerprint[:12]}…")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
