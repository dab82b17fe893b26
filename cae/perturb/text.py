"""A compact text syntax for perturbations, as ``cae score --perturb`` takes them.

Grammar (spaces not allowed; ``[...]`` optional, ``|`` alternatives)::

    perturbation := noise | silence | delete
    noise        := "noise:" COLOUR ":" LEVEL "@" SPAN (":" OPTION)*
    silence      := "silence@" SPAN
    delete       := "delete@" SPAN
    LEVEL        := NUMBER ("dbfs" | "snr" | "lufs")     e.g. -30dbfs, 0snr, -6lufs
    SPAN         := INT "+" INT "f"                        frames (50 per second), e.g. 250+100f
                  | NUMBER "s+" NUMBER "s"                 seconds, e.g. 5s+2s
                  | INT "+" INT "smp"                      samples, e.g. 160000+64000smp
    OPTION       := "add" | "xf=" NUMBER ["ms"] | "seed=" INT

``dbfs`` is an absolute RMS level (the paper's); ``snr`` sets the noise RMS relative to the clip's RMS and ``lufs``
relative to its loudness (a level of ``-6snr`` puts the noise 6 dB *above* the clip: the number is the
signal-to-noise ratio). ``add`` mixes the noise into the music instead of replacing it; ``xf`` is a raised-cosine
crossfade at both edges; ``seed`` is the base seed (the sweep adds a per-clip offset). The noise colours are those of
:class:`cae.perturb.Noise`. :func:`cae.perturb.parse` is this module's :func:`parse`.

>>> parse("noise:white:-30dbfs@250+100f").label
'noise-white-replace-dbfs-30@250+100f'
>>> p = parse("noise:pink:0snr@5s+2s:add:xf=5ms:seed=7")
>>> (p.reference, p.level_db, p.mode, p.crossfade_ms, p.seed, p.span.unit)
('snr-rms', 0.0, 'add', 5.0, 7, 's')
>>> parse("delete@250+50f").label
'delete@250+50f'
>>> parse("noise:white:-30dbs@250+100f")
Traceback (most recent call last):
...
cae.perturb.text.SyntaxError_: cannot read perturbation 'noise:white:-30dbs@250+100f': level '-30dbs' is not a number followed by dbfs, snr or lufs (e.g. -30dbfs)
    noise:white:-30dbs@250+100f
                ^^^^^^
"""

from __future__ import annotations

import re

from cae.errors import CaeError, PerturbationError
from cae.perturb.base import Perturbation, Span
from cae.perturb.edit import Delete, Silence
from cae.perturb.noise import Noise

__all__ = ["SyntaxError_", "parse"]

_LEVEL = re.compile(r"^([+-]?\d+(?:\.\d+)?)(dbfs|snr|lufs)$")
_REFERENCE = {"dbfs": "dbfs", "snr": "snr-rms", "lufs": "snr-lufs"}
_SPANS = (
    (re.compile(r"^(\d+)\+(\d+)f$"), "frames", int),
    (re.compile(r"^(\d+(?:\.\d+)?)s\+(\d+(?:\.\d+)?)s$"), "s", float),
    (re.compile(r"^(\d+)\+(\d+)smp$"), "samples", int),
)


class SyntaxError_(CaeError, ValueError):  # noqa: N801 - not Python's SyntaxError
    """A perturbation text that does not follow the grammar; the message points at the bad token."""


def _fail(text: str, start: int, token: str, why: str) -> SyntaxError_:
    caret = " " * (4 + start) + "^" * max(1, len(token))
    return SyntaxError_(f"cannot read perturbation {text!r}: {why}\n    {text}\n{caret}")


def _span(text: str, start: int, token: str) -> Span:
    for pattern, unit, cast in _SPANS:
        m = pattern.match(token)
        if m:
            try:
                return Span(cast(m.group(1)), cast(m.group(2)), unit)
            except PerturbationError as e:
                raise _fail(text, start, token, str(e)) from None
    raise _fail(text, start, token, f"span {token!r} is not ONSET+LENGTHf, ONSETs+LENGTHs or ONSET+LENGTHsmp "
                                    "(e.g. 250+100f)")


def parse(text: str) -> Perturbation:
    """The perturbation a text describes (module docstring); :class:`SyntaxError_` names the bad token."""
    text = text.strip()
    kind, sep, rest = text.partition("@") if not text.startswith("noise:") else ("noise", "", text[len("noise:"):])
    if kind in ("silence", "delete"):
        if not sep:
            raise _fail(text, 0, text, f"{kind} needs a span: {kind}@ONSET+LENGTHf")
        span = _span(text, len(kind) + 1, rest)
        return Silence(span) if kind == "silence" else Delete(span)
    if kind != "noise":
        head = text.split("@")[0].split(":")[0]
        raise _fail(text, 0, head, f"unknown perturbation {head!r}; expected noise:…, silence@… or delete@…")
    offset = len("noise:")
    head, at, tail = rest.partition("@")
    if not at:
        raise _fail(text, offset, rest, "noise needs COLOUR:LEVEL@SPAN, e.g. noise:white:-30dbfs@250+100f")
    colour, colon, level = head.partition(":")
    if not colon or not colour:
        raise _fail(text, offset, head, f"{head!r} is not COLOUR:LEVEL, e.g. white:-30dbfs")
    m = _LEVEL.match(level.lower())
    level_at = offset + len(colour) + 1
    if not m:
        raise _fail(text, level_at, level,
                    f"level {level!r} is not a number followed by dbfs, snr or lufs (e.g. -30dbfs)")
    parts = tail.split(":")
    span_at = offset + len(head) + 1
    kwargs: dict[str, object] = {"colour": colour, "level_db": float(m.group(1)), "reference": _REFERENCE[m.group(2)],
                                 "span": _span(text, span_at, parts[0])}
    pos = span_at + len(parts[0]) + 1
    for opt in parts[1:]:
        if opt == "add":
            kwargs["mode"] = "add"
        elif opt.startswith("xf=") and re.match(r"^\d+(\.\d+)?(ms)?$", opt[3:]):
            kwargs["crossfade_ms"] = float(opt[3:].removesuffix("ms"))
        elif opt.startswith("seed=") and opt[5:].isdigit():
            kwargs["seed"] = int(opt[5:])
        else:
            raise _fail(text, pos, opt, f"unknown option {opt!r}; expected add, xf=<ms> or seed=<n>")
        pos += len(opt) + 1
    try:
        return Noise(**kwargs)  # type: ignore[arg-type]
    except PerturbationError as e:
        raise _fail(text, offset, colour if "colour" in str(e) else head, str(e)) from None
