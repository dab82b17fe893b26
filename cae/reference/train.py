"""Train a reference decoder: a small MusicGen decoder on the tokens of the corpus' train split.

The tokens come from the trained neural codec (``--codec encodec``, the default; train it first with
``python -m cae.reference.codec``) or from the mel-RVQ tokenizer fitted here (``--codec mel``, the ablation model).

The objective is exactly the score cae reports: the mean per-token NLL of 15 s windows in MusicGen's delay layout
with BOS (:func:`cae.models.layout.delay_inputs` / :func:`~cae.models.layout.gather_delay_nll`), so the training loss
and ``token_nll`` are one quantity. Everything is seeded (tokenizer fit, initialisation, window sampling, dropout)
and the run length is a step count, not a wall-clock budget, so a rerun gives the same weights on the same machine.

Run ``python -m cae.reference.train`` (``make reference-model``). It writes the model's folder under
``cae/reference/weights/`` with float16 copies of the intermediate checkpoints in ``checkpoints/`` (used to study how
the loss-curve profile changes with training). Every ``resume_every`` steps the decoder, optimiser and generators are
saved under ``<data dir>/reference/``; a killed run started again resumes from there.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae.audio import load
from cae.data.corpus import ensure_reference_corpus
from cae.models.layout import delay_inputs, gather_delay_nll
from cae.provenance import file_sha256
from cae.reference.codec_files import load_codec
from cae.reference.model import (
    CODEC_DIR,
    DECODER_FILE,
    MEL_DIR,
    REFERENCE_DIR,
    decoder_from_config,
    decoder_state,
    save_reference,
)
from cae.reference.resume import load_state, save_state
from cae.reference.tokenizer import MelRVQTokenizer


@dataclass
class TrainConfig:
    """Everything that determines the trained weights (recorded in ``reference.json``)."""

    seed: int = 0
    #: ``"encodec"`` (the trained neural codec) or ``"mel"`` (the mel-RVQ tokenizer, fitted here).
    codec: str = "encodec"
    #: Length of the learning-rate schedule (warm-up + cosine decay).
    steps: int = 2200
    #: Stop after this many steps (None: run the whole schedule). ``reference-mel`` stopped at 1000 of a 2200-step
    #: schedule (the CPU time of the session that trained it ran out); ``reference`` runs its whole schedule.
    stop_at: int | None = None
    batch_size: int = 8
    window_frames: int = 750
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 150
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    codebook_size: int = 512
    num_codebooks: int = 4
    tokenizer_max_frames: int = 300_000
    eval_every: int = 250
    checkpoint_steps: tuple[int, ...] = (100, 250, 500, 1000)
    resume_every: int = 100
    threads: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def decoder_config(self) -> dict[str, Any]:
        c = self.codebook_size
        return dict(
            vocab_size=c, num_codebooks=self.num_codebooks, hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads, ffn_dim=self.ffn_dim,
            max_position_embeddings=2048, dropout=self.dropout, attention_dropout=0.0, activation_dropout=0.0,
            pad_token_id=c, bos_token_id=c, decoder_start_token_id=c, activation_function="gelu",
        )


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio · lr`` at the last step.

    >>> cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    >>> lr_at(0, cfg), lr_at(9, cfg), round(lr_at(99, cfg), 3)
    (0.1, 1.0, 0.1)
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def sample_windows(pieces: list[np.ndarray], rng: np.random.Generator, batch: int, frames: int) -> torch.Tensor:
    """``batch`` random windows of ``frames`` frames from token arrays ``[K, F_i]`` (pieces chosen ∝ length)."""
    lengths = np.array([p.shape[1] - frames + 1 for p in pieces], dtype=np.float64)
    idx = rng.choice(len(pieces), size=batch, p=lengths / lengths.sum())
    out = [pieces[i][:, (s := int(rng.integers(0, lengths[i]))): s + frames] for i in idx]
    return torch.from_numpy(np.stack(out)).long()


@torch.no_grad()
def mean_nll(decoder: Any, clips: list[np.ndarray], special: int, batch: int = 8) -> float:
    """Mean per-token NLL of token clips ``[K, F]`` (equal lengths within a batch) under ``decoder`` in eval mode."""
    was_training = decoder.training
    decoder.eval()
    total, count = 0.0, 0
    by_length: dict[int, list[np.ndarray]] = {}
    for c in clips:
        by_length.setdefault(c.shape[1], []).append(c)
    groups = [g[i : i + batch] for g in by_length.values() for i in range(0, len(g), batch)]
    for group in groups:
        codes = torch.from_numpy(np.stack(group)).long()
        b, k, _ = codes.shape
        inputs = delay_inputs(codes, special)
        logits = decoder(input_ids=inputs.reshape(b * k, -1)).logits.reshape(b, k, inputs.shape[-1], -1)
        nll = gather_delay_nll(logits, codes)
        total += float(nll.sum())
        count += nll.numel()
    decoder.train(was_training)
    return total / max(count, 1)


def unigram_nll(train: list[np.ndarray], clips: list[np.ndarray], card: int) -> float:
    """Cross-entropy of ``clips`` under per-codebook token frequencies of ``train`` (add-one smoothing): the
    baseline a model must beat to show it learned anything about context."""
    k = train[0].shape[0]
    counts = np.ones((k, card))
    for p in train:
        for j in range(k):
            counts[j] += np.bincount(p[j], minlength=card)
    logp = np.log(counts / counts.sum(1, keepdims=True))
    total = sum(-logp[np.arange(k)[:, None], c].sum() for c in clips)
    return float(total / sum(c.size for c in clips))


def fit_decoder(
    decoder: Any,
    pieces: list[np.ndarray],
    cfg: TrainConfig,
    *,
    evaluate: Callable[[], float] | None = None,
    on_checkpoint: Callable[[int, float | None], None] | None = None,
    resume: Path | None = None,
    resume_tag: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``decoder`` in place on random windows of ``pieces`` (token arrays ``[K, F_i]``); the seed is
    ``cfg.seed`` (window sampling) and torch's global generator (dropout) as set by the caller.

    With ``resume`` (a file path), the decoder, optimiser, both generators and the curve are saved there every
    ``cfg.resume_every`` steps, and a run that finds the file continues from it (same configuration and same
    ``resume_tag``, e.g. the corpus hash and the codec's checksum, required).

    Returns the learning curve: ``{step, train_loss (running mean), heldout_loss, minutes}`` every
    ``cfg.eval_every`` steps and at the end (``heldout_loss`` only when ``evaluate`` is given).
    ``on_checkpoint(step, heldout_loss)`` is called at each of ``cfg.checkpoint_steps``.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    special = int(decoder.config.vocab_size)
    decoder.train()
    opt = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    state = load_state(resume, config=asdict(cfg), tag=resume_tag, model=decoder, optimizer=opt, rng=rng) or {}
    start, minutes = int(state.get("step", 0)), float(state.get("minutes", 0.0))
    curve: list[dict[str, float]] = list(state.get("curve", []))
    running: float | None = state.get("running")
    t0 = time.time()
    last = min(cfg.stop_at or cfg.steps, cfg.steps)
    bar = tqdm(range(start, last), initial=start, total=last, disable=not progress, desc="training", unit="step")
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        codes = sample_windows(pieces, rng, cfg.batch_size, cfg.window_frames)
        b, k, _ = codes.shape
        inputs = delay_inputs(codes, special)
        logits = decoder(input_ids=inputs.reshape(b * k, -1)).logits.reshape(b, k, inputs.shape[-1], -1)
        loss = gather_delay_nll(logits, codes).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), cfg.grad_clip)
        opt.step()
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.set_postfix(loss=f"{running:.3f}")
        done = step + 1
        heldout: float | None = None
        if done % cfg.eval_every == 0 or done == last or done in cfg.checkpoint_steps:
            heldout = evaluate() if evaluate is not None else None
        if done % cfg.eval_every == 0 or done == last:
            point = {"step": done, "train_loss": running, "minutes": minutes + (time.time() - t0) / 60}
            if heldout is not None:
                point["heldout_loss"] = heldout
            curve.append(point)
        if on_checkpoint is not None and done in cfg.checkpoint_steps and done != last:  # the last is the result
            on_checkpoint(done, heldout)
        if resume is not None and (done % cfg.resume_every == 0 or done == last):
            save_state(resume, config=asdict(cfg), tag=resume_tag, model=decoder, optimizer=opt, rng=rng, step=done,
                       curve=curve, running=running, minutes=minutes + (time.time() - t0) / 60)
    decoder.eval()
    return curve


def half_checkpoint(decoder: Any, folder: Path, step: int) -> dict[str, str]:
    """Store the decoder as float16 ``step<NNNNN>.safetensors`` in ``folder``; returns its file name and the SHA-256
    of the stored file and of the float32 weights it was converted from."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = decoder_state(decoder)
    name = f"step{step:05d}.safetensors"
    save_file({k: v.half() for k, v in state.items()}, str(folder / name))
    full = folder / f".{name}.float32"
    save_file(state, str(full))
    source = file_sha256(full)
    full.unlink()
    return {"file": name, "sha256": file_sha256(folder / name), "source_sha256_float32": source}


def _tokenizer(cfg: TrainConfig, train_audio: list[np.ndarray]
               ) -> tuple[Any, Callable[[np.ndarray], np.ndarray], float, str]:
    """The codec whose tokens the decoder learns, an ``encode(wave) -> [K, F]`` function, its fit time, and a
    fingerprint of it (a checksum of its weights or state)."""
    if cfg.codec == "mel":
        t = time.time()
        tok = MelRVQTokenizer(num_codebooks=cfg.num_codebooks, codebook_size=cfg.codebook_size)
        tok.fit(train_audio, seed=cfg.seed, max_frames=cfg.tokenizer_max_frames)
        return tok, tok.encode, time.time() - t, tok.state_sha256()
    meta = json.loads((CODEC_DIR / "training.json").read_text())
    codec = load_codec(CODEC_DIR, meta["sha256"])
    if codec.config.codebook_size != cfg.codebook_size or codec.config.num_quantizers != cfg.num_codebooks:
        raise ValueError(f"the codec has {codec.config.num_quantizers} x {codec.config.codebook_size} codes, the "
                         f"config asks for {cfg.num_codebooks} x {cfg.codebook_size}")
    bandwidth = float(codec.config.target_bandwidths[-1])

    @torch.inference_mode()
    def encode(wave: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None, None]
        return codec.encode(x, bandwidth=bandwidth).audio_codes[0, 0].numpy()

    return None, encode, 0.0, meta["sha256"]["model.safetensors"]


def train(cfg: TrainConfig, *, data_dir: Path | None = None, weights_dir: Path | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Build the corpus if needed, get the tokens, train the decoder, save weights; returns the metadata."""
    name = "reference" if cfg.codec == "encodec" else "reference-mel"
    weights_dir = Path(weights_dir or (REFERENCE_DIR if cfg.codec == "encodec" else MEL_DIR))
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    manifest = ensure_reference_corpus(data_dir)
    root = Path(manifest.root)
    train_paths = manifest.paths("train")  # whole training pieces (the 15 s "trainset" clips are cut from them)
    clip_paths = {kind: manifest.paths(kind) for kind in ("trainset", "heldout", "ood")}
    train_audio = [load(p) for p in train_paths]
    hours = sum(len(a) for a in train_audio) / 32000 / 3600

    tokenizer, encode, fit_s, codec_sha = _tokenizer(cfg, train_audio)
    t1 = time.time()
    pieces = [np.asarray(encode(a)) for a in train_audio]
    pieces = [p for p in pieces if p.shape[1] >= cfg.window_frames]
    clips = {kind: [np.asarray(encode(load(p))) for p in paths] for kind, paths in clip_paths.items()}
    encode_s = time.time() - t1
    del train_audio

    torch.manual_seed(cfg.seed)
    decoder = decoder_from_config(cfg.decoder_config())
    special = cfg.codebook_size
    resume = root / f"{name}-decoder-train.pt"
    staging = root / f"{name}-checkpoints"  # intermediate decoders; moved into the shipped folder at the end
    record = staging / "record.json"  # survives a resumed run, like the resume state itself
    if not resume.is_file() and staging.is_dir():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    checkpoints: dict[str, dict[str, Any]] = json.loads(record.read_text()) if record.is_file() else {}

    def on_checkpoint(done: int, heldout: float | None) -> None:
        info = half_checkpoint(decoder, staging, done)
        checkpoints[str(done)] = {**info, "heldout_loss": heldout}
        record.write_text(json.dumps(checkpoints, indent=2, sort_keys=True))

    t2 = time.time()
    curve = fit_decoder(decoder, pieces, cfg, evaluate=lambda: mean_nll(decoder, clips["heldout"], special),
                        on_checkpoint=on_checkpoint, resume=resume, progress=progress,
                        resume_tag={"corpus_hash": manifest.corpus_hash, "codec": codec_sha})
    train_s = time.time() - t2
    losses = {kind: mean_nll(decoder, c, special) for kind, c in clips.items()}
    baselines = {kind: unigram_nll(pieces, c, cfg.codebook_size) for kind, c in clips.items()}
    meta = {
        "name": name,
        "codec": "encodec" if cfg.codec == "encodec" else "mel-rvq",
        "train_config": asdict(cfg),
        "corpus_hash": manifest.corpus_hash,
        "train_hours": hours,
        "train_pieces": len(pieces),
        "clips_per_kind": {k: len(v) for k, v in clips.items()},
        "parameters": sum(p.numel() for p in decoder.parameters() if p.requires_grad),
        "tokenizer_fit_seconds": fit_s,
        "encode_seconds": encode_s,
        "train_seconds": train_s,
        "total_seconds": time.time() - t0,
        "loss_per_kind": losses,
        "unigram_per_kind": baselines,
        "uniform_nll": math.log(cfg.codebook_size),
        "curve": curve,
        "codec_sha256": codec_sha,
        "torch_version": torch.__version__,
    }
    full = save_reference(decoder, weights_dir, meta, tokenizer)
    shipped = weights_dir / "checkpoints"
    if shipped.is_dir():
        shutil.rmtree(shipped)
    shipped.mkdir(parents=True)
    for info in checkpoints.values():
        shutil.copy2(staging / info["file"], shipped / info["file"])
    final = int(curve[-1]["step"])
    checkpoints[str(final)] = {"file": f"../{DECODER_FILE}", "heldout_loss": losses["heldout"],
                               "sha256": full["sha256"][DECODER_FILE],
                               "source_sha256_float32": full["sha256"][DECODER_FILE]}
    note = (f"Intermediate checkpoints of the shipped {name} decoder (same training run, seed {cfg.seed}), stored as "
            f"float16 and upcast to float32 at load. Step {final} is the shipped decoder itself ({DECODER_FILE}). "
            f"heldout_loss: mean per-token NLL of the {len(clips['heldout'])} held-out clips, measured at training "
            "time in float32.")
    (weights_dir / "checkpoints" / "checkpoints.json").write_text(json.dumps(
        {"dtype": "float16", "final_file": f"../{DECODER_FILE}", "final_step": final, "note": note,
         "steps": checkpoints}, indent=2, sort_keys=True) + "\n")
    return full


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train a cae reference decoder (writes cae/reference/weights/<model>/).")
    p.add_argument("--codec", choices=("encodec", "mel"), default=TrainConfig.codec)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    p.add_argument("--stop-at", type=int, default=0, help="stop early in the schedule (0: never)")
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--codebook-size", type=int, default=None, help="default: 512 (encodec), 256 (mel)")
    p.add_argument("--data", type=Path, default=None, help="corpus folder (default: <data dir>/reference)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    size = a.codebook_size or (TrainConfig.codebook_size if a.codec == "encodec" else 256)
    cfg = TrainConfig(codec=a.codec, steps=a.steps, seed=a.seed, batch_size=a.batch_size, eval_every=a.eval_every,
                      stop_at=a.stop_at or None, codebook_size=size)
    meta = train(cfg, data_dir=a.data, weights_dir=a.out)
    summary = {k: meta[k] for k in ("train_hours", "parameters", "train_seconds", "loss_per_kind", "unigram_per_kind")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
