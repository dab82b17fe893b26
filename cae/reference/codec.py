"""A neural audio codec with EnCodec's architecture, trained here: the tokenizer of the reference model.

MusicGen hears music through EnCodec; the reference model (:mod:`cae.reference`) hears it through a codec of the
same architecture, trained in this repo on the reference corpus's ``train`` split. The model *is* a transformers
``EncodecModel`` (the class MusicGen's checkpoints load into): a non-causal SEANet encoder (strided convolutions
8·5·4·4 = 640 samples per frame at 32 kHz, i.e. 50 frames/s, then a 2-layer LSTM), a residual vector quantiser
(4 codebooks), and the mirrored SEANet decoder. Training only adds what inference does not need:

* **Residual VQ with EMA codebooks** (:class:`ResidualVQ`). Stage ``k`` quantises the residual the earlier stages
  left, by nearest Euclidean neighbour. Codebooks are not learned by gradient but as exponential moving averages
  (decay ``ema_decay``) of the encoder outputs assigned to each entry: ``cluster_size`` (running count) and
  ``embed_avg`` (running sum), ``embed = embed_avg / cluster_size``, the buffers transformers' codebook already has.
  The encoder gets the decoder's gradient through the straight-through estimator plus a commitment loss
  ``‖z − sg(q)‖²``.
* **Warm-up, then k-means.** The first ``autoencoder_steps`` steps train encoder and decoder with no quantiser.
  Then each stage is initialised by k-means (scikit-learn) on the residuals of ``kmeans_seconds`` of random
  training audio. Starting from random codebooks instead collapses them (a few entries take every frame).
* **Dead-code restarts.** An entry whose running count falls below ``dead_fraction`` of the uniform count
  (frames per step / codebook size) is moved onto a random residual of the current batch, and its EMA statistics
  are reset with it (resetting only ``embed``, as some implementations do, lets the next EMA update pull the entry
  straight back to where it died).
* **Losses:** ``l1_weight · L1(wave)`` + multi-resolution mel loss (:class:`MelLoss`: L1 on mel power and on log
  mel power, FFT sizes 256 … 2048) + ``commit_weight`` · commitment. No adversarial term: on 2 CPU cores a
  discriminator roughly doubles the step cost, and the codec is scored by what it does to tokens, not by how good it
  sounds.

Everything is seeded (``numpy.random.default_rng(seed)`` for segments, ``torch.manual_seed(seed)`` for weights and
restarts); the run is a fixed number of steps, checkpointed every ``checkpoint_every`` steps with the optimiser and
both generators, so an interrupted run resumes where it stopped (``python -m cae.reference.codec``, ``make
reference-codec``). The result is saved with ``EncodecModel.save_pretrained`` and loaded with transformers alone
(:func:`load_codec`, SHA-256 verified; both live in :mod:`cae.reference.codec_files`, which loading the reference
model needs without this training code). :meth:`ResidualVQ.codes` is the training side's own encoder; a test checks it
gives the same codes as the shipped transformers model.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cae.audio import load
from cae.data.corpus import ensure_reference_corpus
from cae.errors import ModelError
from cae.reference.codec_files import load_codec, save_codec
from cae.reference.model import CODEC_DIR
from cae.reference.resume import load_state, save_state

__all__ = [
    "CodecConfig",
    "MelLoss",
    "ResidualVQ",
    "codec_quality",
    "encodec_config",
    "load_codec",
    "save_codec",
    "train_codec",
]


@dataclass
class CodecConfig:
    """Everything that determines the trained codec (recorded next to the weights)."""

    seed: int = 0
    steps: int = 6000
    batch_size: int = 8
    segment_seconds: float = 1.0
    #: segments quieter than this (RMS dBFS) are drawn again: silence teaches nothing
    min_segment_dbfs: float = -50.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.5, 0.9)
    grad_clip: float = 10.0
    autoencoder_steps: int = 300
    kmeans_seconds: float = 160.0
    kmeans_iters: int = 25
    num_filters: int = 16
    hidden_size: int = 64
    codebook_size: int = 512
    num_codebooks: int = 4
    ema_decay: float = 0.99
    dead_fraction: float = 0.3
    l1_weight: float = 10.0
    mel_weight: float = 1.0
    commit_weight: float = 1.0
    checkpoint_every: int = 250
    threads: int = 2
    sample_rate: int = 32000

    @property
    def segment(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))


def encodec_config(cfg: CodecConfig) -> Any:
    """The transformers ``EncodecConfig``: MusicGen's 32 kHz EnCodec layout at the widths of ``cfg``.

    ``target_bandwidths = [2.2]`` kbit/s is MusicGen's; with ``codebook_size`` entries (``log2`` bits each) at 50
    frames/s it selects ``num_codebooks`` quantisers whenever ``codebook_size`` is 256 … 2048 with 4 codebooks.
    """
    from transformers import EncodecConfig

    bits = math.log2(cfg.codebook_size)
    exact = cfg.num_codebooks * bits * 50 / 1000
    fits = lambda bw: exact <= bw < exact + bits * 50 / 1000  # noqa: E731
    bandwidth = 2.2 if fits(2.2) else round(exact + 1e-3, 4)
    config = EncodecConfig(
        target_bandwidths=[bandwidth], sampling_rate=cfg.sample_rate, audio_channels=1, normalize=False,
        chunk_length_s=None, overlap=None, hidden_size=cfg.hidden_size, num_filters=cfg.num_filters,
        num_residual_layers=1, upsampling_ratios=[8, 5, 4, 4], norm_type="weight_norm", kernel_size=7,
        last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=False,
        pad_mode="reflect", compress=2, num_lstm_layers=2, trim_right_ratio=1.0, codebook_size=cfg.codebook_size,
        codebook_dim=cfg.hidden_size, use_conv_shortcut=False,
    )
    if config.num_quantizers != cfg.num_codebooks:
        raise ValueError(f"bandwidth {bandwidth} gives {config.num_quantizers} quantisers, not {cfg.num_codebooks}")
    return config


# ---- residual vector quantisation -------------------------------------------------------------------------------
class ResidualVQ:
    """Training-time residual VQ over the codebooks of a transformers ``EncodecModel`` (whose buffers it updates).

    Shapes: embeddings ``z`` are ``[B, D, T]`` (the encoder's layout), codes ``[B, K, T]``.
    """

    def __init__(self, model: Any, cfg: CodecConfig):
        self.books = [layer.codebook for layer in model.quantizer.layers]
        self.cfg = cfg

    @staticmethod
    def _nearest(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry (squared Euclidean) for each row of ``x`` ``[N, D]``."""
        return torch.cdist(x, embed).argmin(dim=1)

    @torch.no_grad()
    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy residual quantisation of ``z`` ``[B, D, T]`` → codes ``[B, K, T]`` (no statistics change)."""
        residual = z.permute(0, 2, 1).reshape(-1, z.shape[1])
        out = []
        for book in self.books:
            idx = self._nearest(residual, book.embed)
            residual = residual - book.embed[idx]
            out.append(idx)
        b, _, t = z.shape
        return torch.stack(out, 0).reshape(len(self.books), b, t).permute(1, 0, 2)

    @torch.no_grad()
    def kmeans_init(self, z: torch.Tensor, frames_per_step: int, seed: int) -> None:
        """Initialise every stage by k-means on the residuals of ``z`` ``[B, D, T]``; counts are rescaled to what
        one training step of ``frames_per_step`` frames would give, so the EMA starts at its steady state."""
        from sklearn.cluster import KMeans

        residual = z.permute(0, 2, 1).reshape(-1, z.shape[1]).double()
        scale = frames_per_step / residual.shape[0]
        for k, book in enumerate(self.books):
            km = KMeans(n_clusters=self.cfg.codebook_size, n_init=1, max_iter=self.cfg.kmeans_iters,
                        random_state=seed + k).fit(residual.numpy())
            centres = torch.from_numpy(km.cluster_centers_).float()
            counts = torch.bincount(torch.from_numpy(km.labels_).long(), minlength=self.cfg.codebook_size).float()
            counts = (counts * scale).clamp_min(1e-3)
            book.embed.copy_(centres)
            book.cluster_size.copy_(counts)
            book.embed_avg.copy_(centres * counts[:, None])
            residual = residual - centres.double()[torch.from_numpy(km.labels_).long()]

    def __call__(self, z: torch.Tensor, *, update: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Quantise ``z`` ``[B, D, T]``: returns ``(straight-through output, commitment loss, stats)``; with
        ``update`` the EMA statistics move and dead entries restart."""
        b, d, t = z.shape
        flat = z.permute(0, 2, 1).reshape(-1, d)
        residual = flat.detach()
        quantized = torch.zeros_like(residual)
        dead_total = 0
        for book in self.books:
            idx = self._nearest(residual, book.embed)
            q = book.embed[idx].clone()
            if update:
                dead_total += self._ema_update(book, residual, idx)
            quantized = quantized + q
            residual = residual - q
        commit = torch.mean((flat - quantized.detach()) ** 2)
        out = flat + (quantized - flat).detach()  # straight-through
        return out.reshape(b, t, d).permute(0, 2, 1), commit, {"dead_codes": float(dead_total)}

    @torch.no_grad()
    def _ema_update(self, book: Any, x: torch.Tensor, idx: torch.Tensor) -> int:
        size = book.embed.shape[0]
        onehot_counts = torch.bincount(idx, minlength=size).float()
        sums = torch.zeros_like(book.embed).index_add_(0, idx, x)
        decay = self.cfg.ema_decay
        book.cluster_size.mul_(decay).add_(onehot_counts, alpha=1 - decay)
        book.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
        uniform = x.shape[0] / size
        dead = book.cluster_size < self.cfg.dead_fraction * uniform
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(0, x.shape[0], (n_dead,))
            book.embed_avg[dead] = x[pick] * uniform
            book.cluster_size[dead] = uniform
        book.embed.copy_(book.embed_avg / book.cluster_size.clamp_min(1e-5)[:, None])
        return n_dead


# ---- losses --------------------------------------------------------------------------------------------------------
class MelLoss(nn.Module):
    """Multi-resolution mel loss: mean over FFT sizes of ``L1(mel) + L1(log mel)`` (mel power, Hann window, hop
    ``n_fft / 4``, librosa's Slaney filterbank with ``min(64, n_fft / 8)`` bands)."""

    def __init__(self, sample_rate: int = 32000, sizes: tuple[int, ...] = (256, 512, 1024, 2048), eps: float = 1e-5):
        super().__init__()
        import librosa

        self.sizes = sizes
        self.eps = eps
        for n in sizes:
            fb = librosa.filters.mel(sr=sample_rate, n_fft=n, n_mels=min(64, n // 8), fmin=0.0, fmax=sample_rate / 2)
            self.register_buffer(f"fb{n}", torch.from_numpy(fb).float(), persistent=False)
            self.register_buffer(f"win{n}", torch.hann_window(n), persistent=False)

    def mel(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Mel power ``[B, M, frames]`` of ``x`` ``[B, N]`` at FFT size ``n``."""
        spec = torch.stft(x, n, hop_length=n // 4, window=getattr(self, f"win{n}"), return_complex=True)
        return getattr(self, f"fb{n}") @ spec.abs().pow(2)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total = y.new_zeros(())
        for n in self.sizes:
            my, mx = self.mel(y, n), self.mel(x, n)
            total = total + (my - mx).abs().mean() + (torch.log(my + self.eps) - torch.log(mx + self.eps)).abs().mean()
        return total / len(self.sizes)


# ---- data -----------------------------------------------------------------------------------------------------------
def draw_segments(pieces: list[np.ndarray], rng: np.random.Generator, batch: int, length: int,
                  min_dbfs: float) -> torch.Tensor:
    """``batch`` random segments ``[batch, length]`` (pieces drawn ∝ length; silent draws redrawn, 20 tries)."""
    sizes = np.array([len(p) - length + 1 for p in pieces], dtype=np.float64)
    prob = sizes / sizes.sum()
    out = []
    for _ in range(batch):
        for _try in range(20):
            i = int(rng.choice(len(pieces), p=prob))
            s = int(rng.integers(0, sizes[i]))
            seg = pieces[i][s : s + length]
            if 20 * np.log10(np.sqrt(np.mean(seg.astype(np.float64) ** 2)) + 1e-12) >= min_dbfs:
                break
        out.append(seg)
    return torch.from_numpy(np.stack(out).astype(np.float32))


def lr_at(step: int, cfg: CodecConfig) -> float:
    """Constant learning rate, then a cosine decay to ``min_lr_ratio · lr`` over the second half of the run.

    >>> cfg = CodecConfig(steps=100, lr=1.0, min_lr_ratio=0.1)
    >>> lr_at(0, cfg), lr_at(49, cfg), round(lr_at(99, cfg), 3)
    (1.0, 1.0, 0.1)
    """
    half = cfg.steps // 2
    if step < half:
        return cfg.lr
    progress = (step - half) / max(1, cfg.steps - 1 - half)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ---- quality --------------------------------------------------------------------------------------------------------
def _db_ratio(signal: float, noise: float) -> float:
    return 10 * math.log10(max(signal, 1e-20) / max(noise, 1e-20))


def codec_quality(reference: np.ndarray, decoded: np.ndarray, sample_rate: int = 32000) -> dict[str, float]:
    """Resynthesis quality of ``decoded`` against ``reference`` (mono, same rate; the shorter length is used).

    * ``snr_db``: waveform SNR, ``10 log10(Σx² / Σ(x − y)²)``;
    * ``si_snr_db``: scale-invariant SNR (``y`` projected on ``x``);
    * ``logmel_l1``: mean ``|ln(mel_x + 1e-5) − ln(mel_y + 1e-5)|`` over 64 Slaney mel bands, FFT 2048, hop 640.

    >>> x = np.sin(np.linspace(0, 2000, 32000)).astype(np.float32)
    >>> q = codec_quality(x, x)
    >>> q["logmel_l1"], q["snr_db"] > 100
    (0.0, True)
    """
    import librosa

    n = min(len(reference), len(decoded))
    x = np.asarray(reference[:n], dtype=np.float64)
    y = np.asarray(decoded[:n], dtype=np.float64)
    snr = _db_ratio(float(np.sum(x**2)), float(np.sum((x - y) ** 2)))
    alpha = float(np.dot(y, x) / max(np.dot(x, x), 1e-20))
    target = alpha * x
    si = _db_ratio(float(np.sum(target**2)), float(np.sum((y - target) ** 2)))
    kw = dict(sr=sample_rate, n_fft=2048, hop_length=640, n_mels=64, power=2.0)
    mx = librosa.feature.melspectrogram(y=x, **kw)
    my = librosa.feature.melspectrogram(y=y, **kw)
    l1 = float(np.mean(np.abs(np.log(mx + 1e-5) - np.log(my + 1e-5))))
    return {"snr_db": snr, "si_snr_db": si, "logmel_l1": l1}


def perplexity(codes: np.ndarray, card: int) -> list[float]:
    """Per-codebook perplexity ``exp(H)`` of the code histogram of ``codes`` ``[..., K, F]`` (``card`` = all used
    equally often).

    >>> perplexity(np.array([[0, 1, 2, 3], [0, 0, 0, 0]]), 4)
    [4.0, 1.0]
    """
    arr = np.asarray(codes)
    k = arr.shape[-2]
    flat = np.moveaxis(arr, -2, 0).reshape(k, -1)
    out = []
    for row in flat:
        p = np.bincount(row, minlength=card) / row.size
        p = p[p > 0]
        out.append(float(np.round(np.exp(-(p * np.log(p)).sum()), 6)))
    return out


# ---- training -------------------------------------------------------------------------------------------------------
def _encode_batch(model: Any, x: torch.Tensor) -> torch.Tensor:
    return model.encoder(x[:, None, :])


def _decode_batch(model: Any, q: torch.Tensor, length: int) -> torch.Tensor:
    return model.decoder(q)[:, 0, :length]


def _checkpoint_path(work: Path) -> Path:
    return work / "codec-train.pt"


def train_codec(cfg: CodecConfig, pieces: list[np.ndarray], work: Path, *, heldout: list[np.ndarray] | None = None,
                eval_every: int = 1000, progress: bool = True, tag: dict[str, Any] | None = None
                ) -> tuple[Any, list[dict[str, float]]]:
    """Train (or resume) a codec on mono float32 ``pieces`` at ``cfg.sample_rate``; checkpoints go to ``work``.

    ``tag`` (e.g. the corpus hash) is stored with the checkpoints; a run resumed on different data is refused.

    Returns the trained transformers ``EncodecModel`` (eval mode) and the learning curve (training losses and,
    when ``heldout`` is given, held-out quality every ``eval_every`` steps).
    """
    from tqdm.auto import tqdm
    from transformers import EncodecModel

    torch.set_num_threads(cfg.threads)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = EncodecModel(encodec_config(cfg))
    model.train()
    rvq = ResidualVQ(model, cfg)
    mel = MelLoss(cfg.sample_rate)
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)
    rng = np.random.default_rng(cfg.seed)
    ckpt = _checkpoint_path(work)
    try:
        state = load_state(ckpt, config=asdict(cfg), tag=tag, model=model, optimizer=opt, rng=rng) or {}
    except ValueError as e:
        raise ModelError(str(e)) from None
    start, seconds = int(state.get("step", 0)), float(state.get("seconds", 0.0))
    curve: list[dict[str, float]] = list(state.get("curve", []))
    running: dict[str, float] = dict(state.get("running", {}))
    frames_per_step = cfg.batch_size * cfg.segment // 640
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress, desc="codec", unit="step")
    t0 = time.time()
    for step in bar:
        if step == cfg.autoencoder_steps:
            n = int(cfg.kmeans_seconds / cfg.segment_seconds)
            with torch.no_grad():
                segs = draw_segments(pieces, rng, n, cfg.segment, cfg.min_segment_dbfs)
                z = torch.cat([_encode_batch(model, segs[i : i + 16]) for i in range(0, n, 16)])
            rvq.kmeans_init(z, frames_per_step, cfg.seed)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = draw_segments(pieces, rng, cfg.batch_size, cfg.segment, cfg.min_segment_dbfs)
        z = _encode_batch(model, x)
        if step >= cfg.autoencoder_steps:
            q, commit, stats = rvq(z, update=True)
        else:
            q, commit, stats = z, z.new_zeros(()), {"dead_codes": 0.0}
        y = _decode_batch(model, q, x.shape[-1])
        l1 = (y - x).abs().mean()
        ml = mel(y, x)
        loss = cfg.l1_weight * l1 + cfg.mel_weight * ml + cfg.commit_weight * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        for name, value in (("loss", loss.item()), ("l1", l1.item()), ("mel", ml.item()), ("commit", commit.item()),
                            ("dead_codes", stats["dead_codes"])):
            running[name] = value if name not in running else 0.98 * running[name] + 0.02 * value
        bar.set_postfix(mel=f"{running['mel']:.3f}", dead=f"{running['dead_codes']:.1f}")
        done = step + 1
        if heldout is not None and (done % eval_every == 0 or done == cfg.steps):
            model.eval()
            point = {"step": done, **{f"train_{k}": v for k, v in running.items()},
                     **evaluate_codec(model, heldout, cfg)}
            model.train()
            curve.append(point)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_state(ckpt, config=asdict(cfg), tag=tag, model=model, optimizer=opt, rng=rng, step=done,
                       curve=curve, seconds=seconds + time.time() - t0, running=running)
    model.eval()
    return model, curve


@torch.no_grad()
def evaluate_codec(model: Any, clips: list[np.ndarray], cfg: CodecConfig) -> dict[str, float]:
    """Mean resynthesis quality (:func:`codec_quality`) and mean codebook perplexity over ``clips``."""
    rvq = ResidualVQ(model, cfg)
    rows, codes = [], []
    for clip in clips:
        x = torch.from_numpy(np.asarray(clip, dtype=np.float32))[None]
        z = _encode_batch(model, x)
        c = rvq.codes(z)
        y = _decode_batch(model, model.quantizer.decode(c.permute(1, 0, 2)), x.shape[-1])
        rows.append(codec_quality(clip, y[0].numpy(), cfg.sample_rate))
        codes.append(c[0].numpy())
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["perplexity"] = float(np.mean(perplexity(np.concatenate(codes, axis=-1), cfg.codebook_size)))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m cae.reference.codec``: train (or resume) the reference codec and save it."""
    p = argparse.ArgumentParser(description="Train the reference model's neural codec (resumable).")
    p.add_argument("--steps", type=int, default=CodecConfig.steps)
    p.add_argument("--seed", type=int, default=CodecConfig.seed)
    p.add_argument("--data", type=Path, default=None, help="corpus folder (default: <data dir>/reference)")
    p.add_argument("--out", type=Path, default=CODEC_DIR)
    p.add_argument("--eval-every", type=int, default=1000)
    a = p.parse_args(argv)
    cfg = CodecConfig(steps=a.steps, seed=a.seed)
    manifest = ensure_reference_corpus(a.data)
    pieces = [load(path) for path in manifest.paths("train")]
    heldout = [load(path) for path in manifest.paths("heldout")[:10]]
    work = Path(manifest.root) / "codec-train"
    t0 = time.time()
    model, curve = train_codec(cfg, pieces, work, heldout=heldout, eval_every=a.eval_every,
                               tag={"corpus_hash": manifest.corpus_hash})
    sha = save_codec(model, a.out)
    meta = {"codec_config": asdict(cfg), "curve": curve, "sha256": sha, "corpus_hash": manifest.corpus_hash,
            "wall_seconds_this_run": time.time() - t0, "torch_version": torch.__version__}
    (Path(a.out) / "training.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps(curve[-1] if curve else {}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
