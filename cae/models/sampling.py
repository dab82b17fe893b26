"""Sampling codes from a delay-pattern decoder, one sequence step at a time with a key/value cache.

Generation mirrors :mod:`cae.models.layout`: step 0 is BOS in every slot; the logits of head ``k`` at step ``s`` give
the distribution of slot ``k`` at step ``s + 1``, which holds frame ``s - k`` of codebook ``k`` when that frame lies in
``[0, F)`` and the special token otherwise. So ``F + K - 1`` decoder steps produce ``F`` full frames, and each new
column is fed back before the next step. Sampling is top-k with temperature, drawn from a seeded
``torch.Generator``: the same seed gives the same codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: ``step(column [B, K, 1], state) -> (logits [B, K, V], state)``: one decoder step with its cache in ``state``.
StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def sample_top_k(logits: torch.Tensor, top_k: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Sample one token per row of ``logits [..., V]`` among the ``top_k`` most likely (0 = all), at ``temperature``.

    ``temperature == 0`` is greedy (argmax).
    """
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = (logits / temperature).softmax(-1)
    flat = probs.reshape(-1, probs.shape[-1]).cpu()
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1]).to(logits.device)


@torch.inference_mode()
def sample_delay(
    step: StepFn,
    *,
    batch: int,
    num_codebooks: int,
    frames: int,
    special: int,
    device: torch.device,
    top_k: int = 250,
    temperature: float = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """Sample ``[batch, K, frames]`` codes from a delay-pattern decoder.

    Args:
        step: one decoder step (see :data:`StepFn`); ``state`` starts as ``None``.
        batch, num_codebooks, frames: output shape.
        special: the BOS / pad token id.
        device: where the decoder runs.
        top_k, temperature, seed: sampling parameters.

    Returns:
        LongTensor ``[batch, K, frames]`` on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    codes = torch.full((batch, num_codebooks, frames), special, dtype=torch.long)
    column = torch.full((batch, num_codebooks, 1), special, dtype=torch.long, device=device)
    state: Any = None
    for s in range(frames + num_codebooks - 1):
        logits, state = step(column, state)  # [B, K, V] predicting step s + 1
        drawn = sample_top_k(logits, top_k, temperature, g).cpu()  # [B, K]
        column = torch.full((batch, num_codebooks, 1), special, dtype=torch.long)
        for k in range(num_codebooks):
            t = s - k
            if 0 <= t < frames:
                codes[:, k, t] = drawn[:, k]
                column[:, k, 0] = drawn[:, k]
        column = column.to(device)
    return codes


def hf_decoder_step(decoder: Any) -> StepFn:
    """A :data:`StepFn` for a transformers ``MusicgenForCausalLM`` (null condition: no cross-attention)."""

    def step(column: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        b, k, _ = column.shape
        out = decoder(input_ids=column.reshape(b * k, 1), past_key_values=cache, use_cache=True)
        return out.logits.reshape(b, k, -1), out.past_key_values

    return step
