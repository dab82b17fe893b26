"""What scoring costs at real size: FLOPs, memory and time per sweep unit, per architecture, dtype and clip length.

A *unit* is one clip under one condition (clean or perturbed): encode the audio with EnCodec, then score every
token with the decoder (:mod:`cae.scoring`). The model here is analytic, from the shipped configs
(:mod:`cae.models.published`):

* **decoder FLOPs** for ``S`` positions: ``2 · S · P_mm + 4 · L · S² · d`` — every weight matrix once per position
  (``P_mm``: the self-attention and feed-forward weights of ``L`` layers, ``12 d²`` each, plus the ``K`` output
  heads; cross-attention is skipped under null conditioning) and the attention scores and weighted sum. ``S`` is
  the frame count plus the ``K − 1`` delay steps, plus Melody's prepended conditions (235 chroma frames and one
  text token). Prefix reuse (:mod:`cae.scoring.prefix`) scores a perturbed unit only from its onset, so it costs
  ``(S − onset) / S`` of this, roughly;
* **codec FLOPs** per second of audio: the SEANet encoder's convolutions at their sample rates, its two-layer
  LSTM at the frame rate and the final projection (6.1 + 1.7 GFLOP per second for the 32 kHz EnCodec);
* **memory**: the weights (decoder in the scoring dtype, codec in float32, Melody's T5 encoder), the key/value
  cache that prefix reuse keeps (``2 · L · S · d`` values per clip), the logits and their float32 log-softmax
  (``K · S · V``), and the largest encoder activation;
* **time** = FLOPs / (efficiency × the device's matmul throughput). :func:`measure` measures both on the machine
  at hand (on this project's 2-core CPU: the book's performance page); :func:`paper_set_hours` for a GPU takes the
  datasheet peak and an assumed efficiency and per-unit overhead, stated where it is used.

``python -m cae.cost`` prints the table of the book's "Reproducing with the real checkpoints" page;
``python -m cae.cost --measure facebook/musicgen-small@random`` checks the prediction against a measured run.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from cae.models.published import ARCHITECTURES, Architecture, architecture, architecture_parameters, encodec_config
from cae.paper.protocol import PAPER_CLIPS

#: Bytes per element of the scoring dtypes.
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: Melody's prepended null conditions: 30 s of chroma frames (STFT hop 2^14 / 4 = 4096 at 32 kHz, centred:
#: 1 + 960000 // 4096 = 235) and one T5 token.
MELODY_PREFIX = 1 + (32000 * 30) // 4096 + 1


@dataclass(frozen=True)
class UnitCost:
    """Predicted cost of one unit (one clip under one condition), scored from frame 0."""

    model: str
    dtype: str
    seconds: float
    positions: int
    encode_gflop: float
    score_gflop: float
    weights_gb: float
    activations_gb: float

    @property
    def gflop(self) -> float:
        return self.encode_gflop + self.score_gflop

    @property
    def peak_gb(self) -> float:
        return self.weights_gb + self.activations_gb


def positions(arch: Architecture, frames: int) -> int:
    """Decoder positions for ``frames`` frames: delay steps (and Melody's prepended conditions) included."""
    return frames + arch.num_codebooks - 1 + (MELODY_PREFIX if arch.conditioning == "prepend" else 0)


def decoder_gflop(arch: Architecture, n_positions: int, context: int | None = None) -> float:
    """Forward FLOPs (×1e9) of the decoder over ``n_positions`` positions, one clip, null conditioning; each
    position attends to ``context`` positions (default ``n_positions``: a full pass; a pass over a suffix after a
    cached prefix attends to the whole sequence). Attention is counted as torch counts it, the full matrix."""
    d, layers = arch.hidden, arch.layers
    p_mm = layers * 12 * d * d + arch.num_codebooks * d * arch.card
    ctx = n_positions if context is None else context
    return (2 * n_positions * p_mm + 4 * layers * n_positions * ctx * d) / 1e9


def encoder_gflop(seconds: float, *, lstm: bool = True) -> float:
    """Forward FLOPs (×1e9) of the 32 kHz EnCodec encoder on ``seconds`` of mono audio (from its config)."""
    cfg = encodec_config()
    rate = cfg.sampling_rate * seconds
    c = cfg.num_filters
    flops = 2 * 1 * c * cfg.kernel_size * rate  # first convolution
    for r in reversed(cfg.upsampling_ratios):  # the encoder downsamples by the decoder's ratios, reversed
        hidden = c // cfg.compress
        flops += 2 * c * hidden * cfg.residual_kernel_size * rate + 2 * hidden * c * rate  # residual unit
        rate /= r
        flops += 2 * c * (2 * c) * (2 * r) * rate  # strided convolution, kernel 2r, channels doubled
        c *= 2
    if lstm:
        flops += cfg.num_lstm_layers * 2 * 4 * (c + c) * c * rate
    flops += 2 * c * cfg.hidden_size * cfg.last_kernel_size * rate  # projection to the latent
    return flops / 1e9


#: Parameters of X-Codec as :class:`cae.models.xcodec.XCodec` builds it (tests/test_yue.py counts the module).
XCODEC_PARAMETERS = 143_394_817


def is_yue(name: str) -> bool:
    """Whether ``name`` is YuE's stage 2 (:mod:`cae.models.yue`)."""
    from cae.models.yue import is_yue_name

    return is_yue_name(name)


def yue_positions(frames: int, alignment: str = "stage2") -> list[int]:
    """Sequence lengths YuE scores for ``frames`` frames: one per 6 s segment (``3 + 9 n``: the prompt's 2 + n + 1
    ids, then 8 per frame) under ``"stage2"``, the flat ``8 F`` ids under ``"paper"``.

    >>> yue_positions(750), yue_positions(750, "paper")
    ([2703, 2703, 1353], [6000])
    """
    from cae.models.yue import NUM_CODEBOOKS, segments

    if alignment == "paper":
        return [NUM_CODEBOOKS * frames]
    return [3 + (NUM_CODEBOOKS + 1) * (b - a) for a, b in segments(frames)]


def llama_gflop(cfg: object, n_positions: int) -> float:
    """Forward FLOPs (×1e9) of a LLaMA decoder over ``n_positions`` positions: every weight matrix once per
    position (attention projections, the three feed-forward matrices, the output head) and the full attention
    matrix, as :func:`decoder_gflop` counts it."""
    d, layers = cfg.hidden_size, cfg.num_hidden_layers
    kv = d // cfg.num_attention_heads * cfg.num_key_value_heads
    p_mm = layers * (2 * d * d + 2 * d * kv + 3 * d * cfg.intermediate_size) + cfg.vocab_size * d
    return (2 * n_positions * p_mm + 4 * layers * n_positions * n_positions * d) / 1e9


@functools.lru_cache(maxsize=8)
def xcodec_gflop(seconds: float) -> float:
    """Forward FLOPs (×1e9) of X-Codec's encoder on ``seconds`` of 16 kHz audio (both branches and the quantizer),
    counted by torch's FLOP counter on the published architecture built on the meta device (no weights, no
    arithmetic): about 25 GFLOP per second of audio."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cae.models.tiny import _quiet_transformers
    from cae.models.xcodec import XCodec

    with torch.device("meta"), _quiet_transformers():
        codec = XCodec()
    x = torch.zeros(1, int(round(seconds * codec.sample_rate)), device="meta")
    with FlopCounterMode(display=False) as counter:
        codec.encode(x, 8)
    return counter.get_total_flops() / 1e9


def yue_unit_cost(name: str, seconds: float = 15.0, dtype: str = "float32", batch: int = 1,
                  alignment: str = "stage2") -> UnitCost:
    """:func:`unit_cost` of YuE's stage 2: the LM over its segments (or the flat stream), X-Codec's encoder; memory:
    the LM in the scoring dtype and the codec in float32, the largest of one chunk of logits (1,024 positions ×
    the vocabulary, float32, with its log-softmax), the attention scores of one layer (heads × S², float32) and the
    hidden states (a few ``S × d`` and ``S × ffn`` tensors)."""
    from cae.models.yue import LOGIT_CHUNK, lm_config, lm_parameters

    cfg = lm_config()
    nbytes = DTYPE_BYTES[dtype]
    frames = math.ceil(seconds * 50)
    seqs = yue_positions(frames, alignment)
    weights = lm_parameters(cfg) * nbytes + XCODEC_PARAMETERS * 4
    s = max(seqs)
    act = max(LOGIT_CHUNK * cfg.vocab_size * 4 * 3, cfg.num_attention_heads * s * s * 4 * 2,
              s * (4 * cfg.hidden_size + 3 * cfg.intermediate_size) * 4)
    return UnitCost(model=name, dtype=dtype, seconds=seconds, positions=sum(seqs),
                    encode_gflop=batch * xcodec_gflop(seconds),
                    score_gflop=batch * sum(llama_gflop(cfg, n) for n in seqs),
                    weights_gb=weights / 1e9, activations_gb=batch * act / 1e9)


def unit_cost(name: str, seconds: float = 15.0, dtype: str = "float32", batch: int = 1) -> UnitCost:
    """Predicted FLOPs and peak memory of scoring ``batch`` clips of ``seconds`` under one condition (YuE: its
    stage-2 alignment, :func:`yue_unit_cost`)."""
    if is_yue(name):
        return yue_unit_cost(name, seconds, dtype, batch)
    arch = architecture(name)
    nbytes = DTYPE_BYTES[dtype]
    frames = math.ceil(seconds * arch.frame_rate)
    s = positions(arch, frames)
    params = architecture_parameters(name)
    weights = params["decoder"] * nbytes + params["conditioners"] * nbytes + params["codec"] * 4
    if arch.conditioning == "prepend":
        weights += params["text_encoder"] * 4  # Melody's T5 encoder is loaded (it encodes the null text)
    kv = 2 * arch.layers * s * arch.hidden * nbytes
    logits = arch.num_codebooks * s * arch.card * (nbytes + 4 + 4)  # logits, float32 copy, log-softmax
    encoder = 3 * encodec_config().num_filters * seconds * arch.sample_rate * 4  # widest full-rate activations
    act = batch * max(kv + logits, encoder)
    return UnitCost(
        model=name, dtype=dtype, seconds=seconds, positions=s,
        encode_gflop=batch * encoder_gflop(seconds), score_gflop=batch * decoder_gflop(arch, s),
        weights_gb=weights / 1e9, activations_gb=act / 1e9,
    )


def lstm_gflop(seconds: float) -> float:
    """The encoder LSTM's share of :func:`encoder_gflop` over ``seconds``."""
    return encoder_gflop(seconds) - encoder_gflop(seconds, lstm=False)


def perturbed_unit_gflop(name: str, seconds: float = 15.0, *, onset_s: float = 5.0, span_s: float = 2.0) -> float:
    """FLOPs (×1e9) of one perturbed unit in a sweep, where the clean clip's work is reused exactly: the
    incremental encoder recomputes the convolutions over the changed span plus about a second of receptive field
    and the LSTM from the onset on (:mod:`cae.scoring.encoder`); the decoder scores only from the first changed
    position, attending to the cached prefix (:mod:`cae.scoring.prefix`)."""
    arch = architecture(name)
    s = positions(arch, math.ceil(seconds * arch.frame_rate))
    prefix = int(onset_s * arch.frame_rate) + (MELODY_PREFIX if arch.conditioning == "prepend" else 0)
    encode = encoder_gflop(span_s + 1.0, lstm=False) + lstm_gflop(seconds - onset_s)
    return encode + decoder_gflop(arch, s - prefix, context=s)


def paper_set_units(clips: dict[str, int] | None = None, root: str | None = None) -> dict[str, int]:
    """Units per model that the ``paper`` parameter set asks for, notebook by notebook (units another notebook
    already computed are counted once), from ``params/paper/*.yaml`` and the notebooks' condition lists.

    RQ1–RQ3 share one noise sweep (clean + one unit per length, paper protocol) and RQ2 adds the pure-noise unit;
    RQ4 adds the shuffles (pair swaps only where a pair fits in 20 % of 14 s, segment and block swaps) on the
    TrainingSet and the coloured noise on every kind (white at RQ1's lengths is RQ1's units); the ablations rescore
    the sweep under the corrected protocol and add the SNR-relative levels, the SNR sweep and the crossfade; the
    profile page profiles every OOD clip and every step of the degradation ladders (a clean unit plus one per
    burst each) and the generated samples of its validation; the complexity page adds the segment swaps on every
    kind and profiles the detection clips under each detection perturbation; the results page adds its shuffles
    and SNR-matched noise. Approximate where notebooks share units in ways not counted here.
    """
    from cae.book.build import ROOT, load_params, notebook_parameters
    from cae.profile import DEFAULT_LADDERS

    clips = dict(PAPER_CLIPS if clips is None else clips)
    base = ROOT if root is None else root
    n = sum(clips.values())

    def get(name: str) -> dict:
        return {**notebook_parameters(name, base), **load_params("paper", name, base)}

    rq1, rq4, abl = get("rq1_noise_length"), get("rq4_shuffle_colour"), get("ablations")
    res, prof, cx = get("results"), get("profile_score"), get("complexity_detection")
    lengths = len(rq1["lengths"])
    pairs = [x for x in rq4["shuffle_lengths"] if int(0.2 * 700 / (2 * x)) >= 1]
    shuffles = len(pairs) + len(rq4["shuffle_lengths"]) + len(rq4["block_lengths"])
    white_shared = len(set(rq4["colour_lengths"]) & set(rq1["lengths"])) if "white" in rq4["colours"] else 0
    colours = len(rq4["colours"]) * len(rq4["colour_lengths"]) - white_shared
    bursts = 1 + len(prof["onsets"]) * len(prof["lengths"])
    ladders = sum(len(v) for v in (prof["families"] or DEFAULT_LADDERS).values())
    generated = prof["generated"] or {}
    samples = len(generated.get("top_ks", ())) * len(generated.get("temperatures", ())) * generated.get("per_setting", 0)
    detection = len(cx["noise_bursts"]) + len(cx["shuffles"]) + sum(len(v) for v in cx["filters"].values())
    return {
        "rq1_noise_length": n * (1 + lengths),
        "rq2_token_dynamics": n,
        "rq3_regions": 0,
        "rq4_shuffle_colour": clips["trainset"] * shuffles + n * colours,
        "ablations": n * (1 + lengths)  # corrected protocol
        + n * lengths  # SNR-relative level
        + n * len(abl["snr_levels"]) * len(abl["snr_lengths"])
        + n * len(abl["crossfade_lengths"]),
        "profile_score": clips["ood"] * bursts * (1 + ladders) + samples * bursts,
        "complexity_detection": n * len(cx["shuffle_lengths"]) + min(cx["detection_clips"], clips["ood"]) * detection * bursts,
        "results": clips["trainset"] * (len(res["short_shuffles"]) + len(res["long_shuffles"])) + n,
    }


def matmul_tflops(size: int = 2048, repeats: int = 10, dtype: str = "float32", device: str = "cpu") -> float:
    """This device's measured dense matmul throughput (TFLOP/s)."""
    import torch

    dt = getattr(torch, dtype)
    a = torch.randn(size, size, dtype=dt, device=device)
    b = torch.randn(size, size, dtype=dt, device=device)
    (a @ b).sum().item()
    t0 = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
    c.sum().item()
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e12


def measure(name: str, seconds: Sequence[float] = (5.0, 15.0), dtype: str = "float32", device: str = "cpu") -> list[dict]:
    """Build ``name`` (an ``@random`` id), then encode and score one clip per length after a warm-up pass, timing
    each step (synchronised on a GPU) and reading the peak memory (the process's peak RSS on the CPU, the peak of
    allocated device memory on a GPU); each row gives the prediction beside the measurement. The per-unit
    overhead that :func:`paper_set_hours` assumes is measured by the sweep itself, not here."""
    import resource

    import torch

    import cae

    cuda = str(device).startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    peak = matmul_tflops(dtype=dtype, device=device)
    t0 = time.perf_counter()
    model = cae.load_model(name, device=device, dtype=dtype)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    warm = (0.1 * rng.standard_normal(model.sample_rate)).astype(np.float32)
    model.token_nll(model.encode(warm, model.sample_rate))  # warm-up: first-call allocations and kernel choices
    rows = []
    for sec in seconds:
        wav = (0.1 * rng.standard_normal(int(sec * model.sample_rate))).astype(np.float32)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        codes = model.encode(wav, model.sample_rate)
        sync()
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.token_nll(codes)
        sync()
        t_score = time.perf_counter() - t0
        pred = unit_cost(name, sec, dtype)
        mem = (torch.cuda.max_memory_allocated() / 1e9 if cuda
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)  # ru_maxrss: kB on Linux
        rows.append({
            "model": name, "dtype": dtype, "seconds": sec, "build_s": round(build_s, 1),
            "matmul_tflops": round(peak, 3),
            "encode_s": round(t_enc, 2), "score_s": round(t_score, 2),
            "encode_gflop": round(pred.encode_gflop, 1), "score_gflop": round(pred.score_gflop, 1),
            "encode_efficiency": round(pred.encode_gflop / t_enc / (peak * 1e3), 3),
            "score_efficiency": round(pred.score_gflop / t_score / (peak * 1e3), 3),
            "predicted_peak_gb": round(pred.peak_gb, 2),
            ("measured_device_peak_gb" if cuda else "measured_peak_rss_gb"): round(mem, 2),
        })
    return rows


def loaded_parameters(name: str) -> int:
    """Parameters a scoring run holds in memory: decoder, codec, condition projections, and Melody's T5 encoder."""
    if is_yue(name):
        from cae.models.yue import lm_config, lm_parameters

        return lm_parameters(lm_config()) + XCODEC_PARAMETERS
    arch = architecture(name)
    p = architecture_parameters(name)
    return p["decoder"] + p["codec"] + p["conditioners"] + (p["text_encoder"] if arch.conditioning == "prepend" else 0)


def table(seconds: float = 15.0, dtypes: Sequence[str] = ("float32", "bfloat16")) -> list[dict]:
    """Per architecture and dtype: parameters held, FLOPs and peak memory of one unit of ``seconds``."""
    from cae.models.yue import YUE_S2

    rows = []
    for model_id, name in [(a.model_id, a.name) for a in ARCHITECTURES.values()] + [(YUE_S2, f"{YUE_S2}@random")]:
        for dtype in dtypes:
            u = unit_cost(name, seconds, dtype)
            rows.append({"model": model_id, "dtype": dtype, "parameters": loaded_parameters(name),
                         **{k: v for k, v in asdict(u).items() if k not in ("model", "dtype")},
                         "gflop": u.gflop, "peak_gb": u.peak_gb})
    return rows


#: A GPU's datasheet dense bfloat16 throughput (TFLOP/s): NVIDIA H200 SXM.
H200_BF16_TFLOPS = 989.0


def paper_set_hours(tflops: float = H200_BF16_TFLOPS, efficiency: float = 0.25, overhead_s: float = 0.1,
                    devices: int = 1, clips: dict[str, int] | None = None) -> list[dict]:
    """Predicted hours of the whole ``paper`` set per model: every unit of :func:`paper_set_units` costed as a
    perturbed unit of a 15 s clip (the clean units, about 2 % of them, cost about twice as much), at
    ``efficiency`` of ``tflops``, plus ``overhead_s`` of work per unit that is not the model's (reading and
    perturbing audio, writing the unit), spread over ``devices`` (a Dask cluster: units are independent)."""
    units = sum(paper_set_units(clips).values())
    rows = []
    for arch in ARCHITECTURES.values():
        tflop = units * perturbed_unit_gflop(arch.name) / 1e3
        compute_h = tflop / (tflops * efficiency) / 3600
        rows.append({"model": arch.model_id, "units": units, "pflop": tflop / 1e3, "compute_hours": compute_h,
                     "hours": (compute_h + units * overhead_s / 3600) / devices})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cae.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="clip length (default 15)")
    parser.add_argument("--measure", metavar="MODEL", help="build this @random model and measure a unit")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPE_BYTES))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30):
        if args.measure:
            print(pd.DataFrame(measure(args.measure, (args.seconds,), args.dtype, args.device)).to_string(index=False))
        else:
            print(pd.DataFrame(table(args.seconds)).round(2).to_string(index=False))
            print(f"\nthe paper set: {sum(paper_set_units().values())} units per model; one H200 (bfloat16, 25 % of "
                  f"{H200_BF16_TFLOPS:g} TFLOP/s, 0.1 s per unit besides the model):")
            print(pd.DataFrame(paper_set_hours()).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
