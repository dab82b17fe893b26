"""Training checkpoints of the reference decoders, shipped so that the book can compare models offline.

Each reference model (:data:`cae.reference.model.FAMILIES`: ``reference``, ``reference-mel``) ships intermediate
decoders of the run that trained it in ``<its folder>/checkpoints/``, stored as **float16** (half the size; the
relative rounding error is below 5e-4 of each tensor's largest value) and upcast to float32 at load. The final step
is the shipped ``decoder.safetensors`` itself (float32), so it is not stored twice. ``checkpoints.json`` records the
SHA-256 of every stored file (verified at every load, like the shipped weights), the SHA-256 of the float32 file each
was converted from, and the held-out loss measured at training time.

The **untrained** decoder is the architecture's initialisation under ``torch.manual_seed(seed)`` (default 0, the
seed the training run initialised from, so with the same torch version it is the run's step-0 decoder); it is built
in a forked RNG, so loading it leaves torch's global generator untouched. All checkpoints of a model share its codec.

Registered model names (:func:`cae.load_model`; this module lists them, :func:`reference_models`, when a name is
looked up): ``"<model>"`` for each shipped model, ``"<model>@step<N>"`` for every stored step and the final one, and
``"<model>@untrained"``, e.g. ``"reference@step250"`` or ``"reference-mel@untrained"``. Each gets its own ``model_id``
and ``revision`` (the stored file's SHA-256 prefix, or ``init-seed<seed>``), so sweep caches never mix them up.

>>> available_checkpoints("reference-mel")
(100, 250, 500, 1000)
>>> checkpoint_name(250), checkpoint_name("untrained", "reference-mel")
('reference@step250', 'reference-mel@untrained')
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch

from cae.errors import ModelError
from cae.models.base import Factory, register_provider
from cae.models.hf import HFMusicGen
from cae.models.weights import state_dict_digest
from cae.provenance import file_sha256
from cae.reference.model import (
    DECODER_FILE,
    FAMILIES,
    decoder_from_config,
    load_decoder_state,
    load_reference,
    load_tokenizer,
    verify_weights,
    weights_digest,
    wrap,
)

__all__ = [
    "CHECKPOINTS_FILE",
    "UNTRAINED",
    "available_checkpoints",
    "checkpoint_name",
    "checkpoint_table",
    "checkpoints_dir",
    "load_checkpoint",
    "read_checkpoints",
    "reference_models",
]

#: Metadata file: stored dtype, file, SHA-256 and held-out loss per step.
CHECKPOINTS_FILE = "checkpoints.json"
#: The name of the untrained (random-init) decoder in :func:`load_checkpoint`.
UNTRAINED = "untrained"


def _family_dir(family: str) -> Path:
    if family not in FAMILIES:
        raise ModelError(f"unknown reference model {family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[family]


def checkpoints_dir(family: str = "reference") -> Path:
    """Folder of a reference model's stored checkpoints."""
    return _family_dir(family) / "checkpoints"


def read_checkpoints(folder: str | Path | None = None, family: str = "reference") -> dict[str, Any]:
    """The contents of ``checkpoints.json`` (raises :class:`~cae.errors.ModelError` when it is missing)."""
    path = Path(folder or checkpoints_dir(family)) / CHECKPOINTS_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: the reference checkpoints are not installed; reinstall cae")
    return json.loads(path.read_text())


def available_checkpoints(family: str = "reference", folder: str | Path | None = None) -> tuple[int, ...]:
    """Training steps that can be loaded (sorted), the shipped final step included; empty when none ship."""
    try:
        return tuple(sorted(int(s) for s in read_checkpoints(folder, family)["steps"]))
    except ModelError:
        return ()


def checkpoint_name(step: int | str, family: str = "reference") -> str:
    """Registered model name of a checkpoint: ``"<family>@step<step>"`` or ``"<family>@untrained"``."""
    if str(step) == UNTRAINED:
        return f"{family}@{UNTRAINED}"
    return f"{family}@step{int(step)}"


def checkpoint_table(family: str = "reference") -> list[dict[str, Any]]:
    """One dict per loadable model: ``name, step, heldout_loss`` (the untrained one last, step -1 and NaN loss,
    since its loss was not recorded at training time; it is at or above log(codebook size))."""
    meta = read_checkpoints(family=family)
    rows = [{"name": checkpoint_name(s, family), "step": int(s), "heldout_loss": float(v["heldout_loss"])}
            for s, v in sorted(meta["steps"].items(), key=lambda kv: int(kv[0]))]
    rows.append({"name": checkpoint_name(UNTRAINED, family), "step": -1, "heldout_loss": float("nan")})
    return rows


def _load_state(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall cae (the reference checkpoints ship with the package)")
    got = file_sha256(path)
    if got != sha256:
        raise ModelError(
            f"{path} is corrupted: SHA-256 {got[:12]}… does not match {sha256[:12]}… recorded in "
            f"{CHECKPOINTS_FILE}; reinstall cae"
        )
    return {k: v.float() for k, v in load_file(str(path)).items()}


def load_checkpoint(step: int | str, *, family: str = "reference", seed: int = 0,
                    checkpoints_dir: str | Path | None = None, weights_dir: str | Path | None = None,
                    **kwargs: Any) -> HFMusicGen:
    """A reference model with the decoder of a training checkpoint, upcast to float32.

    Args:
        step: a training step from :func:`available_checkpoints`, or ``"untrained"``.
        family: which reference model (``"reference"`` or ``"reference-mel"``).
        seed: seed of the untrained decoder's initialisation (ignored for trained steps).
        checkpoints_dir: folder holding ``checkpoints.json`` and the float16 files (default: the family's).
        weights_dir: folder of the shipped model (codec, decoder config, final decoder; default: the family's).
        **kwargs: passed to the adapter (``device``, ``dtype``, ``alignment`` …).

    Returns:
        The scoring adapter with ``model_id = checkpoint_name(step, family)``, ``revision`` = the first 12 hex
        digits of the decoder file's SHA-256 (``"init-seed<seed>"`` when untrained) and a weights digest of the
        verified checksums (:func:`cae.reference.model.weights_digest`; the untrained decoder's tensors, hashed).

    Raises:
        ModelError: unknown step, a missing file, or a file whose SHA-256 differs from ``checkpoints.json`` (or, for
            the codec and the final decoder, from ``reference.json``).
    """
    weights_dir = Path(weights_dir or _family_dir(family))
    folder = Path(checkpoints_dir or weights_dir / "checkpoints")
    kwargs.setdefault("model_id", checkpoint_name(step, family))
    meta = verify_weights(weights_dir)
    if str(step) == UNTRAINED:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            decoder = decoder_from_config(meta["decoder_config"])
        kwargs.setdefault("revision", f"init-seed{int(seed)}")
        digest = weights_digest(meta, state_dict_digest({"decoder": decoder}))  # float32 on the CPU, as drawn
        model = wrap(decoder.eval(), load_tokenizer(weights_dir, meta), meta, **kwargs)
        model.set_weights_digest(digest)
        return model
    info = read_checkpoints(folder)["steps"].get(str(int(step)))
    if info is None:
        known = available_checkpoints(folder=folder)
        raise ModelError(f"no {family} checkpoint for step {step!r}; available: {known} and {UNTRAINED!r}")
    path = (folder / info["file"]).resolve()
    if path == (weights_dir / DECODER_FILE).resolve():
        return load_reference(weights_dir, **kwargs)  # the shipped decoder (its checksum is verified there)
    decoder = load_decoder_state(decoder_from_config(meta["decoder_config"]), _load_state(path, info["sha256"]), path)
    kwargs.setdefault("revision", info["sha256"][:12])
    model = wrap(decoder, load_tokenizer(weights_dir, meta), meta, **kwargs)
    model.set_weights_digest(weights_digest(meta, {f"checkpoints/{info['file']}": info["sha256"]}))
    return model


@register_provider
def reference_models() -> dict[str, Factory]:
    """The shipped reference models (``reference``: neural codec, the book's default; ``reference-mel``: the mel-RVQ
    ablation), each training checkpoint as ``<name>@step<N>`` and the untrained decoder as ``<name>@untrained``,
    as ``{name: factory}`` for :func:`cae.models.base.load_model`.

    >>> [n.removeprefix("reference-mel") for n in reference_models() if n.startswith("reference-mel")]
    ['', '@step100', '@step250', '@step500', '@step1000', '@untrained']
    """
    out: dict[str, Factory] = {}
    for family, folder in FAMILIES.items():
        out[family] = functools.partial(load_reference, folder)
        for step in (*available_checkpoints(family), UNTRAINED):
            out[checkpoint_name(step, family)] = functools.partial(load_checkpoint, step, family=family)
    return out
