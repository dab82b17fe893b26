"""Benchmark: sampling a Generated set one clip at a time against one batch with per-clip seeds.

``python -m cae.bench_generate [--model reference] [--clips 20] [--seconds 15] [--top-k 250]`` samples the same
clips twice in one process, first one ``model.generate(seconds, seed=s)`` call per clip (what the book did before),
then one ``model.generate(seconds, seed=[s_1, ..., s_n])`` call, checks that every clip has the same codes both
ways, and prints both wall times and ``throughput ratio: X.X`` (one-at-a-time time / batched time). Decoding the
codes to audio is not timed: it is the same work either way.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import torch


def main(argv: Sequence[str] | None = None) -> int:
    import cae

    ap = argparse.ArgumentParser(prog="python -m cae.bench_generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="reference")
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--top-k", type=int, default=250)
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    model = cae.load_model(args.model, **({"device": args.device} if args.device else {}))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {model.model_id} ({model.revision}), device {model.device}, torch threads "
          f"{torch.get_num_threads()}, load average {load:.2f}; {args.clips} clips of {args.seconds:g} s, "
          f"top-k {args.top_k}", flush=True)
    seeds = list(range(args.clips))
    t0 = time.perf_counter()
    single = [model.generate(args.seconds, top_k=args.top_k, seed=s) for s in seeds]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = model.generate(args.seconds, top_k=args.top_k, seed=seeds)
    t_batched = time.perf_counter() - t0
    same = sum(bool(torch.equal(a, b)) for a, b in zip(single, batched))
    frames = batched.shape[-1]
    print(f"one at a time: {t_single:.1f} s ({args.clips * frames / t_single:.0f} frames/s)")
    print(f"one batch:     {t_batched:.1f} s ({args.clips * frames / t_batched:.0f} frames/s)")
    print(f"identical clips: {same}/{args.clips}")
    print(f"throughput ratio: {t_single / t_batched:.1f}")
    return 0 if same == args.clips else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
