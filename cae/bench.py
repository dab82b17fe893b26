"""Benchmark: the paper's noise sweep, cae's sweep engine against the naive pipeline, on MusicGen-small's shapes.

``python -m cae.bench [--clips 2] [--seconds 15]`` builds a random-weight model with the architecture of
``facebook/musicgen-small`` (EnCodec 32 kHz: ratios 8·5·4·4, 64 filters, 2 LSTM layers, 4 codebooks of 2048;
decoder: 24 layers, width 1024, 16 heads, FFN 4096), places the codebooks on encoder outputs
(:func:`cae.models.tiny.init_hf_codebooks`) so that tokens follow the audio, writes synthetic 15-second clips, and
runs the paper's sweep (white noise replacing frames ``[250, 250 + L)``, L in 5/10/50/100/150/200, -30 dBFS, seed
42 + clip index) twice in one process:

* **naive**: :func:`naive_sweep`, the calls :func:`cae.scoring.naive.score_clips` makes: for each condition perturb → full
  encode → full forward, batch 1, one condition at a time (the clean clip once per clip);
* **engine**: :func:`cae.scoring.run_sweep` into an empty cache (clean pass once, incremental re-encoding, KV-cache
  prefix reuse, batched suffixes).

It compares the two condition by condition: where the tokens are identical, the largest per-token NLL difference;
where a token differs, where, and how close the naive encoder's quantiser decision was to a tie (random EnCodec
codebooks put many decisions within float32 rounding of a tie, and any change of summation order, batching
included, can flip those). Then it prints the wall times, the decoder ("LM") FLOPs and
achieved GFLOP/s of each against a measured fp32 GEMM rate on the same machine, and, last, ``speedup: X.XX``
(naive wall time / engine wall time).

FLOP count (LM forward only; embeddings, norms, activations and the log-softmax left out). Per scored sequence
step and batch item: ``2 * N`` for the matrix products, ``N`` = per layer ``4 d^2`` (self-attention q, k, v, o)
``+ 2 d f`` (FFN) over 24 layers, plus ``K d V`` (the 4 output heads); the unused cross-attention weights are not
counted. Attention adds ``4 d (s + 1)`` per layer for a query at position ``s`` (``QK^T`` and ``AV`` over the ``s + 1``
visible keys; causal, so masked keys are not counted). Both runs are counted the same way from the decoder calls
they actually make (hooks record each call's batch, past length and new length).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["LMCounter", "bench_model", "compare", "gemm_gflops", "main", "naive_sweep", "quantizer_margin", "synth_clip"]

SAMPLE_RATE = 32000


def bench_model(seed: int = 0, device: str | None = None, dtype: str | None = None, batch_size: int = 8) -> Any:
    """A random-weight :class:`~cae.models.hf.HFMusicGen` shaped like ``facebook/musicgen-small`` (module docstring)."""
    from transformers import EncodecConfig, EncodecModel, MusicgenDecoderConfig, MusicgenForCausalLM

    from cae.models.hf import HFMusicGen
    from cae.models.tiny import _quiet_transformers, init_hf_codebooks

    torch.manual_seed(seed)
    codec_cfg = EncodecConfig(
        sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
        target_bandwidths=[2.2], num_filters=64, hidden_size=128, num_lstm_layers=2, use_causal_conv=False,
        codebook_dim=128, normalize=False, chunk_length_s=None,
    )
    with _quiet_transformers():
        codec = EncodecModel(codec_cfg).eval()
        decoder = MusicgenForCausalLM(MusicgenDecoderConfig(
            vocab_size=2048, num_codebooks=4, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            ffn_dim=4096, max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048,
            decoder_start_token_id=2048,
        )).eval()
    init_hf_codebooks(codec, seed)
    return HFMusicGen(decoder, codec, model_id="bench:musicgen-small-random", device=device, dtype=dtype,
                      batch_size=batch_size)


def synth_clip(seed: int, seconds: float = 15.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Seeded synthetic music: decaying harmonic notes on a 12-tone scale with percussive noise hits, peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    pos = 0
    while pos < n:
        dur = min(int(rng.uniform(0.15, 0.5) * sample_rate), n - pos)
        t = np.arange(dur) / sample_rate
        f0 = 110.0 * 2 ** (int(rng.integers(0, 36)) / 12)
        tone = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
        out[pos : pos + dur] += 0.3 * np.exp(-t * rng.uniform(2, 8)) * tone
        if rng.random() < 0.4:
            m = min(int(0.05 * sample_rate), dur)
            out[pos : pos + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / 400)
        pos += dur
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def gemm_gflops(device: str = "cpu", n: int = 4096, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 ``[n, n] @ [n, n]`` rate in GFLOP/s (``2 n^3`` FLOPs per product)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = math.inf
    with torch.inference_mode():
        a @ b
        for _ in range(repeats):
            if device != "cpu":
                torch.cuda.synchronize()
            t = time.perf_counter()
            a @ b
            if device != "cpu":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


@dataclass
class LMCounter:
    """Forward hooks on a MusicGen decoder: wall time inside it and FLOPs of every call (module docstring)."""

    decoder: Any
    seconds: float = 0.0
    flops: float = 0.0
    calls: int = 0
    steps: int = 0
    _t0: float = 0.0
    _handles: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.decoder.config
        d, f, layers = cfg.hidden_size, cfg.ffn_dim, cfg.num_hidden_layers
        self.k = cfg.num_codebooks
        self.d, self.layers = d, layers
        self.linear_params = layers * (4 * d * d + 2 * d * f) + self.k * d * cfg.vocab_size

    def __enter__(self) -> LMCounter:
        self._handles = [
            self.decoder.register_forward_pre_hook(self._pre, with_kwargs=True),
            self.decoder.register_forward_hook(self._post),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def _pre(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("cache")
        past = cache.get_seq_length() if cache is not None else 0
        batch, q = ids.shape[0] // self.k, ids.shape[-1]
        s = np.arange(past, past + q, dtype=np.float64)
        self.flops += batch * (2 * self.linear_params * q + self.layers * 4 * self.d * float((s + 1).sum()))
        self.steps += batch * q
        self.calls += 1
        self._sync()
        self._t0 = time.perf_counter()

    def _post(self, module: Any, args: tuple, output: Any) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._t0


def _write_clips(folder: Path, count: int, seconds: float) -> list[str]:
    import soundfile as sf

    paths = []
    for i in range(count):
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, synth_clip(1000 + i, seconds), SAMPLE_RATE, subtype="FLOAT")
        paths.append(str(path))
    return paths


def naive_sweep(paths: Sequence[str], model: Any, perturbations: Sequence[Any], first_index: int = 0
                ) -> dict[tuple[str, str], Any]:
    """The naive pipeline, exactly the calls :func:`cae.scoring.naive.score_clips` makes: per clip, clean encode + score;
    per condition, perturb (seed + clip index) → ``model.encode`` (full clip, batch 1) → ``model.token_nll``.

    Args:
        paths: clips; clip ``paths[i]`` has sweep index ``first_index + i`` (its seeds).
        model: the model.
        perturbations: unseeded perturbations.

    Returns:
        ``{(clip, condition label): (wave or None for clean, codes [K, F], nll [K, F])}``; conditions that cannot
        be applied to a clip are left out.
    """
    from cae.audio import load
    from cae.errors import PerturbationError
    from cae.scoring import CLEAN, condition_label, for_clip

    out: dict[tuple[str, str], Any] = {}
    for i, path in enumerate(paths, start=first_index):
        wav = load(path, sample_rate=model.sample_rate)
        codes = model.encode(wav, model.sample_rate)
        out[(path, CLEAN)] = (None, codes, model.token_nll(codes))
        for p in perturbations:
            p = for_clip(p, i)  # the engine side runs with seeding='index' (below)
            try:
                w = p.apply(wav, model.sample_rate, None)
            except PerturbationError:
                continue
            codes = model.encode(w, model.sample_rate)
            out[(path, condition_label(p))] = (w, codes, model.token_nll(codes))
    return out


@torch.inference_mode()
def quantizer_margin(model: Any, wave: np.ndarray, codes: torch.Tensor, codebook: int, frame: int) -> tuple[float, float]:
    """How close the full encoder's choice of ``codes[codebook, frame]`` is to a tie.

    Returns:
        ``(margin, relative)``: the gap between the two smallest squared distances from the residual to the
        codebook's entries, and that gap over the smallest squared distance.
    """
    codec = model.audio_encoder
    emb = codec.encoder(torch.as_tensor(wave, device=model.device)[None, None])[0, :, frame].double()
    res = emb
    for j, layer in enumerate(codec.quantizer.layers[: codebook + 1]):
        table = layer.codebook.embed.double()
        if j < codebook:
            res = res - table[int(codes[j, frame])]
            continue
        d2 = ((table - res) ** 2).sum(-1).sort().values
        return float(d2[1] - d2[0]), float((d2[1] - d2[0]) / d2[0])
    raise ValueError("codebook out of range")


def compare(naive: dict[tuple[str, str], Any], engine: Any, model: Any) -> dict[str, Any]:
    """Compare the engine's tables (with codes) with :func:`naive_sweep`'s results, condition by condition.

    Where the engine's tokens equal the naive tokens, the NLLs must agree to rounding; where a token differs, the
    difference is located and the naive encoder's quantiser margin there is measured (a floating-point tie has a
    margin near the float32 resolution of the squared distances).
    """
    tok = engine.tokens
    same, differ, max_same, margins = 0, [], 0.0, []
    for (clip, cond), (wave, codes, nll) in naive.items():
        rows = tok[(tok["clip"] == clip) & (tok["condition"] == cond)]
        k, f = codes.shape
        if len(rows) != k * f:
            differ.append((clip, cond, "missing or different length"))
            continue
        ecodes = torch.tensor(rows["code"].to_numpy().reshape(k, f), dtype=torch.long)
        enll = torch.tensor(rows["nll"].to_numpy().reshape(k, f))
        if torch.equal(ecodes, codes):
            same += 1
            max_same = max(max_same, float((enll - nll).abs().nan_to_num().max()))
            continue
        bad = (ecodes != codes).nonzero()
        first = bad[bad[:, 1].argmin()]
        m = quantizer_margin(model, wave, codes, int(first[0]), int(first[1])) if wave is not None else (float("nan"),) * 2
        margins.append(m)
        differ.append((clip, cond, f"{len(bad)} tokens differ, first at codebook {int(first[0])} frame {int(first[1])}, "
                                   f"naive quantiser margin {m[0]:.2g} ({m[1]:.2g} relative)"))
    return {"conditions": len(naive), "same_codes": same, "max_diff_same_codes": max_same, "differ": differ}


def main(argv: Sequence[str] | None = None) -> int:
    from cae.paper import PAPER_LENGTHS, paper_noise
    from cae.scoring import EngineOptions, run_sweep

    ap = argparse.ArgumentParser(prog="python -m cae.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=2, help="number of clips (default 2)")
    ap.add_argument("--seconds", type=float, default=15.0, help="clip length in seconds (default 15)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--dtype", default=None, help="model dtype (default: float16 on cuda, float32 on cpu)")
    ap.add_argument("--batch-size", type=int, default=8, help="conditions per engine batch (default 8)")
    ap.add_argument("--lstm-batch", type=int, default=None, help="engine LSTM batch (default: 1 on cpu)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads for both runs (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("float16" if device.startswith("cuda") else "float32")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, dtype {dtype}, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {load:.2f}, engine LSTM batch {args.lstm_batch or 'default'}", flush=True)
    peak = gemm_gflops(device)
    print(f"fp32 GEMM 4096^3: {peak:.1f} GFLOP/s", flush=True)
    t = time.perf_counter()
    model = bench_model(device=device, dtype=dtype, batch_size=args.batch_size)
    print(f"model built in {time.perf_counter() - t:.1f} s: decoder {sum(p.numel() for p in model.decoder.parameters()) / 1e6:.0f} M "
          f"parameters ({LMCounter(model.decoder).linear_params / 1e6:.0f} M in the counted products), "
          f"codec {sum(p.numel() for p in model.audio_encoder.parameters()) / 1e6:.0f} M")
    perts = [paper_noise(length, "ood") for length in PAPER_LENGTHS]
    with tempfile.TemporaryDirectory(prefix="cae-bench-") as tmp:
        paths = _write_clips(Path(tmp), args.clips, args.seconds)
        print(f"{len(paths)} clips x {args.seconds:g} s, conditions: clean + {', '.join(p.label for p in perts)}")

        # Interleaved clip by clip (naive, then engine), so that a change of machine load hits both alike. The
        # engine call for clip i sweeps clips 0..i: clips before i are cache hits, so it computes clip i only.
        naive: dict[tuple[str, str], Any] = {}
        t_naive = t_engine = 0.0
        lm_naive, lm_engine = LMCounter(model.decoder), LMCounter(model.decoder)
        options = EngineOptions(batch_size=args.batch_size, lstm_batch=args.lstm_batch)
        for i, path in enumerate(paths):
            with lm_naive:
                t = time.perf_counter()
                naive.update(naive_sweep([path], model, perts, first_index=i))
                t_naive += time.perf_counter() - t
            with lm_engine:
                t = time.perf_counter()
                engine = run_sweep(paths[: i + 1], perts, model, cache_dir=Path(tmp) / "cache", progress=False,
                                   codes=True, options=options, seeding="index")
                t_engine += time.perf_counter() - t
            print(f"clip {i}: naive {t_naive:.1f} s, engine {t_engine:.1f} s (cumulative)", flush=True)
        cmp = compare(naive, engine, model)
    peak_after = gemm_gflops(device)
    print(f"fp32 GEMM 4096^3 after the runs: {peak_after:.1f} GFLOP/s; using the larger as the peak")
    peak = max(peak, peak_after)

    def line(name: str, wall: float, lm: LMCounter) -> str:
        return (f"{name:7s} wall {wall:7.1f} s | LM {lm.seconds:6.1f} s in {lm.calls:3d} calls, {lm.steps:6d} steps, "
                f"{lm.flops / 1e9:8.0f} GFLOP, {lm.flops / 1e9 / max(lm.seconds, 1e-9):6.1f} GFLOP/s "
                f"({100 * lm.flops / 1e9 / max(lm.seconds, 1e-9) / peak:4.1f}% of GEMM) | rest {wall - lm.seconds:6.1f} s")

    print(line("naive", t_naive, lm_naive))
    print(line("engine", t_engine, lm_engine))
    print(f"naive-equivalent LM rate of the engine: {lm_naive.flops / 1e9 / max(t_engine, 1e-9):.1f} GFLOP/s "
          f"(naive LM FLOPs / engine wall time) vs naive {lm_naive.flops / 1e9 / t_naive:.1f} GFLOP/s")
    print(f"conditions: {cmp['conditions']}, tokens identical to the naive pipeline's in {cmp['same_codes']}")
    for clip, cond, what in cmp["differ"]:
        print(f"  {Path(clip).name} {cond}: {what}")
    print(f"max per-token |NLL difference| (conditions with identical tokens): {cmp['max_diff_same_codes']:.3g} nats")
    print(f"speedup: {t_naive / t_engine:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
