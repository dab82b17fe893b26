"""Sampling codes from a delay-pattern decoder, one sequence step at a time with a key/value cache.

Generation mirrors :mod:`cae.models.layout`: step 0 is BOS in every slot; the logits of head ``k`` at step ``s`` give
the distribution of slot ``k`` at step ``s + 1``, which holds frame ``s - k`` of codebook ``k`` when that frame lies in
``[0, F)`` and the special token otherwise. So ``F + K - 1`` decoder steps produce ``F`` full frames, and each new
column is fed back before the next step.

Sampling is top-k with temperature by the inverse CDF: the ``top_k`` most likely tokens, sorted, their softmax at
``temperature``, and the token whose cumulative probability first exceeds a uniform draw ``u``. All uniforms of a
clip are drawn before the first step from the clip's own seeded ``torch.Generator`` (``[steps, K]``), so a clip's
randomness never depends on the clips sampled beside it, and a step of a whole batch is a handful of tensor
operations, not one random call per clip. The decoder keeps its keys and values in buffers allocated once for the
whole sequence (:func:`growing_cache` for transformers; audiocraft's streaming state), so no step copies the
cache; batching amortises the per-step overhead that dominates a small model on a CPU (the matrix products and
attention still grow with the batch).

Batched and one-at-a-time samples. A matrix product over 20 rows does not round exactly as one over 1 row, so the
logits of a clip in a batch differ from its logits alone by ~1e-6, and about one clip in ten then crosses a
sampling boundary somewhere in 15 s and goes its own way. Adapters therefore sample small decoders on the CPU in
float64 (:meth:`cae.models.hf.HFMusicGen.sampling_decoder`), where the two differ by ~1e-15 and the float32
probabilities agree: a clip is the same whatever batch it was sampled in. Large decoders, accelerators and the
audiocraft backend sample in the model's own dtype: there a batched clip equals the clip alone up to that
rounding (identical for the tests' tiny models, not guaranteed for 15 s of a large one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Names the sampling method; stored with every generated set, and part of where it is kept, so that sets sampled
#: by an earlier method are never mixed with new ones.
SAMPLER_VERSION = "inverse-cdf-1"

#: ``step(column [B, K, 1], state) -> (logits [B, K, V], state)``: one decoder step with its cache in ``state``.
StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def clip_uniforms(seed: int | Sequence[int], batch: int, steps: int, num_codebooks: int) -> torch.Tensor:
    """The uniform draws of a sampling run, ``[batch, steps, K]`` float64 in ``[0, 1)``.

    One seed: one generator for the whole batch (drawn ``[batch, steps, K]`` at once). A sequence of ``batch``
    seeds: row ``b`` is ``torch.rand((steps, K))`` from a generator seeded with ``seed[b]`` alone, so a clip's draws
    are the same in any batch.
    """
    if isinstance(seed, int):
        return torch.rand((batch, steps, num_codebooks), generator=torch.Generator().manual_seed(seed),
                          dtype=torch.float64)
    if len(seed) != batch:
        raise ValueError(f"{len(seed)} seeds for a batch of {batch}")
    return torch.stack([torch.rand((steps, num_codebooks), generator=torch.Generator().manual_seed(int(s)),
                                   dtype=torch.float64) for s in seed])


def sample_top_k(logits: torch.Tensor, top_k: int, temperature: float, u: torch.Tensor) -> torch.Tensor:
    """One token per row of ``logits [..., V]`` among the ``top_k`` most likely (0 = all), at ``temperature``.

    ``u`` (shape ``logits.shape[:-1]``, values in ``[0, 1)``) picks the token by the inverse CDF of the sorted top-k
    distribution: the first token whose cumulative probability exceeds ``u``. ``temperature == 0`` is greedy
    (argmax; ``u`` unused).

    >>> logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]]))
    >>> sample_top_k(logits, 0, 1.0, torch.tensor([0.5])).item(), sample_top_k(logits, 0, 1.0, torch.tensor([0.7])).item()
    (1, 2)
    >>> sample_top_k(logits, 2, 1.0, torch.tensor([0.99])).item(), sample_top_k(logits, 0, 0.0, torch.tensor([0.99])).item()
    (2, 1)
    """
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    k = top_k if 0 < top_k < logits.shape[-1] else logits.shape[-1]
    vals, idx = logits.topk(k, dim=-1)  # sorted, most likely first
    cdf = (vals / temperature).softmax(-1).double().cumsum(-1)
    target = (u.to(cdf.device, torch.float64) * cdf[..., -1]).unsqueeze(-1)
    choice = torch.searchsorted(cdf.contiguous(), target.contiguous(), right=True).clamp_(max=k - 1)
    return idx.gather(-1, choice).squeeze(-1)


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
            generator (:func:`clip_uniforms`), so its codes do not depend on the other clips of the batch, up to the
            float rounding of a batched forward pass (on the CPU the tests find batched and single clips identical).

    Returns:
        LongTensor ``[batch, K, frames]`` on the CPU.
    """
    steps = frames + num_codebooks - 1
    u = clip_uniforms(seed, batch, steps, num_codebooks).to(device)
    seq = torch.full((batch, num_codebooks, steps + 1), special, dtype=torch.long, device=device)
    # valid[k, s + 1]: slot k at step s + 1 holds a frame (0 <= s - k < frames), else the special token
    s_idx = torch.arange(steps, device=device)[None, :]
    k_idx = torch.arange(num_codebooks, device=device)[:, None]
    valid = (s_idx - k_idx >= 0) & (s_idx - k_idx < frames)  # [K, steps]
    state: Any = None
    for s in range(steps):
        logits, state = step(seq[:, :, s:s + 1], state)  # [B, K, V] predicting step s + 1
        drawn = sample_top_k(logits, top_k, temperature, u[:, s])  # [B, K]
        seq[:, :, s + 1] = torch.where(valid[:, s], drawn, special)
    # slot k of step s + 1 holds frame s - k: undo the delay
    codes = torch.stack([seq[:, k, 1 + k:1 + k + frames] for k in range(num_codebooks)], dim=1)
    return codes.cpu()


def growing_cache(num_layers: int, capacity: int) -> Any:
    """A transformers ``Cache`` whose layers write keys and values into buffers of ``capacity`` positions allocated
    on the first step and hand attention a view of the positions filled so far. It computes what the default
    ``DynamicCache`` computes, bit for bit (the same tensors reach attention, with no mask over empty slots, unlike
    ``StaticCache``), without copying the whole cache at every step."""
    from transformers.cache_utils import Cache, DynamicLayer

    class _GrowingLayer(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None
            self._n = 0

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            if self._k is None:
                b, h, _, d = key_states.shape
                self._k = key_states.new_empty(b, h, capacity, d)
                self._v = value_states.new_empty(b, h, capacity, value_states.shape[-1])
                self.is_initialized = True
                self.device = key_states.device
            q, n = key_states.shape[-2], self._n
            if n + q > capacity:
                raise RuntimeError(f"key/value cache of {capacity} positions is full")
            self._k[:, :, n:n + q] = key_states
            self._v[:, :, n:n + q] = value_states  # type: ignore[index]
            self._n = n + q
            self.keys, self.values = self._k[:, :, :self._n], self._v[:, :, :self._n]  # type: ignore[index]
            return self.keys, self.values

    return Cache(layers=[_GrowingLayer() for _ in range(num_layers)])


def hf_decoder_step(decoder: Any, max_steps: int) -> StepFn:
    """A :data:`StepFn` for a transformers ``MusicgenForCausalLM`` (null condition: no cross-attention), with a
    :func:`growing_cache` of ``max_steps`` positions."""

    def step(column: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        b, k, _ = column.shape
        if cache is None:
            cache = growing_cache(decoder.config.num_hidden_layers, max_steps)
        out = decoder(input_ids=column.reshape(b * k, 1), cache=cache, use_cache=True)
        return out.logits.reshape(b, k, -1), out.cache

    return step


def audiocraft_step(lm: Any, condition_tensors: Any) -> StepFn:
    """A :data:`StepFn` for an audiocraft ``LMModel``; call it inside ``with lm.streaming():`` (its key/value cache
    and the prepended conditions live in the streaming state). ``condition_tensors``: the condition provider's
    output for the batch (``{}`` for a model without conditioners)."""

    def step(column: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits = lm(column, conditions=[], condition_tensors=condition_tensors)  # [B, K, 1, card]
        return logits[:, :, -1], state

    return step
