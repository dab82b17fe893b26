"""Train the reference model: fit the tokenizer on the corpus' train split, then a small MusicGen decoder on it.

The objective is exactly the score cae reports: the mean per-token NLL of 15 s windows in MusicGen's delay layout
with BOS (:func:`cae.models.layout.delay_inputs` / :func:`~cae.models.layout.gather_delay_nll`), so the training loss
and ``token_nll`` are one quantity. Everything is seeded (tokenizer fit, initialisation, window sampling, dropout)
and the run length is a step count, not a wall-clock budget, so a rerun gives the same weights on the same machine.

Run ``python -m cae.reference.train`` (``make reference-model``). It writes ``cae/reference/weights/`` and
intermediate checkpoints under ``<data dir>/reference/checkpoints/`` (used to study how the loss-curve profile
changes with training).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cae.models.layout import delay_inputs, gather_delay_nll
from cae.reference.model import WEIGHTS_DIR, decoder_from_config, save_reference


@dataclass
class TrainConfig:
    """Everything that determines the trained weights (recorded in ``reference.json``)."""

    seed: int = 0
    #: Length of the learning-rate schedule (warm-up + cosine decay).
    steps: int = 2200
    #: Stop after this many steps (None: run the whole schedule). The shipped model stops at 1000 of a 2200-step
    #: schedule: the CPU time of the session that trained it ran out (see reference.json).
    stop_at: int | None = 1000
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
    codebook_size: int = 256
    num_codebooks: int = 4
    tokenizer_max_frames: int = 300_000
    eval_every: int = 250
    checkpoint_steps: tuple[int, ...] = (100, 250, 500, 1000, 1500)
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


def decoder_state(decoder: Any) -> dict[str, torch.Tensor]:
    """Decoder weights worth storing: the cross-attention blocks (unused under the null condition) and the
    sinusoidal position table (recomputed) are left out."""
    return {n: p.detach().float().contiguous() for n, p in decoder.state_dict().items()
            if ".encoder_attn" not in n and "embed_positions" not in n}


def fit_decoder(
    decoder: Any,
    pieces: list[np.ndarray],
    cfg: TrainConfig,
    *,
    evaluate: Callable[[], float] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``decoder`` in place on random windows of ``pieces`` (token arrays ``[K, F_i]``); the seed is
    ``cfg.seed`` (window sampling) and torch's global generator (dropout) as set by the caller.

    Returns the learning curve: ``{step, train_loss (running mean), heldout_loss, minutes}`` every
    ``cfg.eval_every`` steps and at the end (``heldout_loss`` only when ``evaluate`` is given).
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    special = int(decoder.config.vocab_size)
    decoder.train()
    opt = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    curve: list[dict[str, float]] = []
    t0 = time.time()
    running: float | None = None
    last = min(cfg.stop_at or cfg.steps, cfg.steps)
    bar = tqdm(range(last), disable=not progress, desc="training", unit="step")
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
        if done % cfg.eval_every == 0 or done == last:
            point = {"step": done, "train_loss": running, "minutes": (time.time() - t0) / 60}
            if evaluate is not None:
                point["heldout_loss"] = evaluate()
            curve.append(point)
        if on_checkpoint is not None and done in cfg.checkpoint_steps:
            on_checkpoint(done)
    decoder.eval()
    return curve


def train(cfg: TrainConfig, *, data_dir: Path | None = None, weights_dir: Path = WEIGHTS_DIR,
          progress: bool = True) -> dict[str, Any]:
    """Build the corpus if needed, fit the tokenizer, train the decoder, save weights; returns the metadata."""
    from safetensors.torch import save_file

    from cae.audio import load
    from cae.data.corpus import ensure_reference_corpus
    from cae.reference.tokenizer import MelRVQTokenizer

    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    manifest = ensure_reference_corpus(data_dir)
    root = Path(manifest.root)
    train_paths = manifest.paths("train")  # whole training pieces (the 15 s "trainset" clips are cut from them)
    clip_paths = {kind: manifest.paths(kind) for kind in ("trainset", "heldout", "ood")}
    train_audio = [load(p) for p in train_paths]
    hours = sum(len(a) for a in train_audio) / 32000 / 3600

    t1 = time.time()
    tokenizer = MelRVQTokenizer(num_codebooks=cfg.num_codebooks, codebook_size=cfg.codebook_size)
    tokenizer.fit(train_audio, seed=cfg.seed, max_frames=cfg.tokenizer_max_frames)
    fit_s = time.time() - t1
    pieces = [tokenizer.encode(a) for a in train_audio]
    pieces = [p for p in pieces if p.shape[1] >= cfg.window_frames]
    clips = {kind: [tokenizer.encode(load(p)) for p in paths] for kind, paths in clip_paths.items()}
    del train_audio

    torch.manual_seed(cfg.seed)
    decoder = decoder_from_config(cfg.decoder_config())
    special = cfg.codebook_size
    ckpt_dir = root / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    checkpoints: dict[str, str] = {}

    def on_checkpoint(done: int) -> None:
        path = ckpt_dir / f"step{done:05d}.safetensors"
        save_file(decoder_state(decoder), str(path))
        checkpoints[str(done)] = path.name

    t2 = time.time()
    curve = fit_decoder(decoder, pieces, cfg, evaluate=lambda: mean_nll(decoder, clips["heldout"], special),
                        on_checkpoint=on_checkpoint, progress=progress)
    train_s = time.time() - t2
    losses = {kind: mean_nll(decoder, c, special) for kind, c in clips.items()}
    baselines = {kind: unigram_nll(pieces, c, cfg.codebook_size) for kind, c in clips.items()}
    meta = {
        "train_config": asdict(cfg),
        "corpus_hash": manifest.corpus_hash,
        "train_hours": hours,
        "train_pieces": len(pieces),
        "clips_per_kind": {k: len(v) for k, v in clips.items()},
        "parameters": sum(p.numel() for p in decoder.parameters() if p.requires_grad),
        "tokenizer_fit_seconds": fit_s,
        "train_seconds": train_s,
        "total_seconds": time.time() - t0,
        "loss_per_kind": losses,
        "unigram_per_kind": baselines,
        "uniform_nll": math.log(cfg.codebook_size),
        "curve": curve,
        "checkpoints": checkpoints,
        "torch_version": torch.__version__,
    }
    return save_reference(decoder, tokenizer, weights_dir, meta)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train the cae reference model (writes cae/reference/weights/).")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    p.add_argument("--stop-at", type=int, default=TrainConfig.stop_at, help="stop early in the schedule (0: never)")
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--data", type=Path, default=None, help="corpus folder (default: <data dir>/reference)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    a = p.parse_args(argv)
    cfg = TrainConfig(steps=a.steps, seed=a.seed, batch_size=a.batch_size, eval_every=a.eval_every,
                      stop_at=a.stop_at or None)
    meta = train(cfg, data_dir=a.data, weights_dir=a.out)
    summary = {k: meta[k] for k in ("train_hours", "parameters", "train_seconds", "loss_per_kind", "unigram_per_kind")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
