"""Sampling codes from a delay-pattern decoder, one sequence step at a time with a key/value cache.

Generation mirrors :mod:`cae.models.layout`: step 0 is BOS in every slot; the logits of head ``k`` at step ``s`` give
the distribution of slot ``k`` at step ``s + 1``, which holds frame ``s - k`` of codebook ``k`` when that frame lies in
``[0, F)`` and the special token otherwise. So ``F + K - 1`` decoder steps produce ``F`` full frames, and each new
column is fed back before the next step. Sampling is top-k with temperature, drawn from a seeded
``torch.Generator``: the same seed gives the same codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

#: ``step(column [B, K, 1], state) -> (logits [B, K, V], state)``: one decoder step with its cache in ``state``.
StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def sample_top_k(logits: torch.Tensor, top_k: int, temperature: float,
                 generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """Sample one token per row of ``logits [..., V]`` among the ``top_k`` most likely (0 = all), at ``temperature``.

    ``temperature == 0`` is greedy (argmax). With a sequence of generators, batch item ``b`` (``logits[b]``) draws
    from ``generator[b]`` alone, so a clip's tokens do not depend on the other clips sampled beside it.
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
    if isinstance(generator, torch.Generator):
        flat = probs.reshape(-1, probs.shape[-1]).cpu()
        return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1]).to(logits.device)
    rows = [torch.multinomial(p.reshape(-1, p.shape[-1]).cpu(), 1, generator=g).reshape(p.shape[:-1])
            for p, g in zip(probs, generator, strict=True)]
    return torch.stack(rows).to(logits.device)


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
    seed: int | Sequence[int] = 0,
) -> torch.Tensor:
    """Sample ``[batch, K, frames]`` codes from a delay-pattern decoder.

    Args:
        step: one decoder step (see :data:`StepFn`); ``state`` starts as ``None``.
        batch, num_codebooks, frames: output shape.
        special: the BOS / pad token id.
        device: where the decoder runs.
        top_k, temperature: sampling parameters.
        seed: one seed for the whole batch, or one per clip (``batch`` of them): clip ``b`` then draws from its own
            generator, so its codes do not depend on the other clips of the batch, up to the float rounding of a
            batched forward pass (on the CPU the tests find batched and single clips identical).

    Returns:
        LongTensor ``[batch, K, frames]`` on the CPU.
    """
    if isinstance(seed, int):
        g: torch.Generator | list[torch.Generator] = torch.Generator().manual_seed(seed)
    else:
        if len(seed) != batch:
            raise ValueError(f"{len(seed)} seeds for a batch of {batch}")
        g = [torch.Generator().manual_seed(int(s)) for s in seed]
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
        out = decoder(input_ids=column.reshape(b * k, 1), cache=cache, use_cache=True)
        return out.logits.reshape(b, k, -1), out.cache

    return step
