"""Training checkpoints of the reference decoder, shipped so that the book can compare models offline.

The shipped reference model (:func:`cae.reference.model.load_reference`) is the decoder after 1000 training steps.
The same run (seed 0, see :mod:`cae.reference.train`) saved intermediate decoders; three of them ship here, in
``cae/reference/weights/checkpoints/``, stored as **float16** (half the size; the relative rounding error is below
5e-4 of each tensor's largest value) and upcast to float32 at load:

===========  ==========================  =======================================
name         weights                     held-out loss at training time (nats)
===========  ==========================  =======================================
step 100     ``step00100.safetensors``   5.44 (about the unigram baseline, 5.45)
step 250     ``step00250.safetensors``   5.05
step 500     ``step00500.safetensors``   3.94
step 1000    ``../decoder.safetensors``  3.63 (the shipped model, float32)
untrained    none: seeded random init    log 256 = 5.55 or above
===========  ==========================  =======================================

The step-1000 checkpoint of the run is tensor-for-tensor (and byte-for-byte) the shipped ``decoder.safetensors``, so it
is not stored twice. ``checkpoints.json`` records the SHA-256 of every stored file (verified at every load, like the
shipped weights), the SHA-256 of the float32 file each was converted from, and the held-out losses. The **untrained**
decoder is the architecture's initialisation under ``torch.manual_seed(seed)`` (default 0, the seed the training run
initialised from, so with the same torch version it is the run's step-0 decoder); it is built in a forked RNG, so
loading it leaves torch's global generator untouched. All checkpoints share the shipped tokenizer.

Registered model names (:func:`cae.load_model`): ``"reference@step100"``, ``"reference@step250"``,
``"reference@step500"``, ``"reference@step1000"`` (the shipped weights under a checkpoint name) and
``"reference@untrained"``. Each gets its own ``model_id`` and ``revision`` (the stored file's SHA-256 prefix, or
``init-seed<seed>``), so sweep caches never mix them up.

>>> available_checkpoints()
(100, 250, 500, 1000)
>>> checkpoint_name(250), checkpoint_name("untrained")
('reference@step250', 'reference@untrained')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cae.errors import ModelError
from cae.provenance import file_sha256
from cae.reference.model import (
    DECODER_FILE,
    TOKENIZER_FILE,
    WEIGHTS_DIR,
    ReferenceMusicLM,
    decoder_from_config,
    load_reference,
    verify_weights,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "CHECKPOINTS_FILE",
    "FINAL_STEP",
    "UNTRAINED",
    "available_checkpoints",
    "checkpoint_name",
    "checkpoint_table",
    "load_checkpoint",
    "read_checkpoints",
]

#: Folder of the stored checkpoints and their metadata.
CHECKPOINTS_DIR = WEIGHTS_DIR / "checkpoints"
#: Metadata file: stored dtype, file, SHA-256 and held-out loss per step.
CHECKPOINTS_FILE = "checkpoints.json"
#: The step of the shipped decoder.
FINAL_STEP = 1000
#: The name of the untrained (random-init) decoder in :func:`load_checkpoint`.
UNTRAINED = "untrained"


def read_checkpoints(checkpoints_dir: str | Path = CHECKPOINTS_DIR) -> dict[str, Any]:
    """The contents of ``checkpoints.json`` (raises :class:`~cae.errors.ModelError` when it is missing)."""
    path = Path(checkpoints_dir) / CHECKPOINTS_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: the reference checkpoints are not installed; reinstall cae")
    return json.loads(path.read_text())


def available_checkpoints(checkpoints_dir: str | Path = CHECKPOINTS_DIR) -> tuple[int, ...]:
    """Training steps that can be loaded (sorted), the shipped final step included."""
    return tuple(sorted(int(s) for s in read_checkpoints(checkpoints_dir)["steps"]))


def checkpoint_name(step: int | str) -> str:
    """Registered model name of a checkpoint: ``"reference@step<step>"`` or ``"reference@untrained"``."""
    if str(step) == UNTRAINED:
        return f"reference@{UNTRAINED}"
    return f"reference@step{int(step)}"


def checkpoint_table(checkpoints_dir: str | Path = CHECKPOINTS_DIR) -> list[dict[str, Any]]:
    """One dict per loadable model: ``name, step, heldout_loss`` (the untrained one last, step -1 and NaN loss,
    since its loss was not recorded at training time; it is at or above log 256)."""
    meta = read_checkpoints(checkpoints_dir)
    rows = [{"name": checkpoint_name(s), "step": int(s), "heldout_loss": float(v["heldout_loss"])}
            for s, v in sorted(meta["steps"].items(), key=lambda kv: int(kv[0]))]
    rows.append({"name": checkpoint_name(UNTRAINED), "step": -1, "heldout_loss": float("nan")})
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


def load_checkpoint(step: int | str, *, seed: int = 0, checkpoints_dir: str | Path = CHECKPOINTS_DIR,
                    weights_dir: str | Path = WEIGHTS_DIR, **kwargs: Any) -> ReferenceMusicLM:
    """A reference model with the decoder of a training checkpoint, upcast to float32.

    Args:
        step: a training step from :func:`available_checkpoints` (100, 250, 500, 1000), or ``"untrained"``.
        seed: seed of the untrained decoder's initialisation (ignored for trained steps).
        checkpoints_dir: folder holding ``checkpoints.json`` and the float16 files.
        weights_dir: folder of the shipped weights (tokenizer, decoder config, and the step-1000 decoder).
        **kwargs: passed to :class:`~cae.reference.model.ReferenceMusicLM` (``device``, ``dtype``, ``alignment`` …).

    Returns:
        A :class:`~cae.reference.model.ReferenceMusicLM` with ``model_id = checkpoint_name(step)`` and ``revision``
        = the first 12 hex digits of the decoder file's SHA-256 (``"init-seed<seed>"`` when untrained).

    Raises:
        ModelError: unknown step, a missing file, or a file whose SHA-256 differs from ``checkpoints.json`` (or, for
            the shared tokenizer and the step-1000 decoder, from ``reference.json``).
    """
    from cae.reference.tokenizer import MelRVQTokenizer

    weights_dir = Path(weights_dir)
    kwargs.setdefault("model_id", checkpoint_name(step))
    if str(step) == UNTRAINED:
        meta = verify_weights(weights_dir)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            decoder = decoder_from_config(meta["decoder_config"])
        kwargs.setdefault("revision", f"init-seed{int(seed)}")
        return ReferenceMusicLM(decoder.eval(), MelRVQTokenizer.load(weights_dir / TOKENIZER_FILE), **kwargs)
    info = read_checkpoints(checkpoints_dir)["steps"].get(str(int(step)))
    if info is None:
        known = available_checkpoints(checkpoints_dir)
        raise ModelError(f"no reference checkpoint for step {step!r}; available: {known} and {UNTRAINED!r}")
    path = (Path(checkpoints_dir) / info["file"]).resolve()
    if path == (weights_dir / DECODER_FILE).resolve():
        return load_reference(weights_dir, **kwargs)  # the shipped decoder (its checksum is verified there)
    meta = verify_weights(weights_dir)
    decoder = decoder_from_config(meta["decoder_config"])
    state = _load_state(path, info["sha256"])
    missing, unexpected = decoder.load_state_dict(state, strict=False)
    missing = [m for m in missing if ".encoder_attn" not in m and "embed_positions" not in m]
    if missing or unexpected:
        raise ModelError(f"{path} does not fit the decoder config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    kwargs.setdefault("revision", info["sha256"][:12])
    return ReferenceMusicLM(decoder.eval(), MelRVQTokenizer.load(weights_dir / TOKENIZER_FILE), **kwargs)
