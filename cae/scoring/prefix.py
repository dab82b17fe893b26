"""Score perturbed token sequences against their clean clip, reusing the clean clip's KV cache.

A perturbation changes the waveform in one region; after re-tokenisation the perturbed codes equal the clean codes
up to a first changed token. A causal decoder's output at sequence step ``s`` depends on the input steps ``0..s``
only, so everything the decoder computes before the first changed *input* step is the clean computation.

The bound. Write ``inputs[k, s]`` for the decoder input layout (:func:`cae.models.layout.delay_inputs` or
:func:`~cae.models.layout.paper_inputs`) and ``step[k, t]`` for the step whose logits score token ``codes[k, t]``:

* delay pattern: ``inputs[k, s] = codes[k, s - 1 - k]`` and ``step[k, t] = t + k``;
* paper alignment: ``inputs[k, s] = codes[k, s]`` and ``step[k, t] = t - 1`` (frame 0 is not scored).

Let ``d`` be the first step where the perturbed inputs differ from the clean inputs, and ``P_t`` the smallest
``step[k, t]`` over the tokens that differ (a token past the clean clip's end counts as different). Then with
``P = min(d, P_t)``:

* the logits at steps ``0..P-1`` are the clean logits (their inputs are identical: ``P <= d``);
* every token scored at a step ``< P`` is unchanged (``P <= P_t``), so its NLL *is* the clean NLL.

So the clean NLL is copied for tokens with ``step < P`` and the decoder runs only on input steps ``P..S'-1``, on top
of a KV cache holding the clean keys and values of steps ``0..P-1``. For the delay pattern ``P = P_t =
min_k (f_k + k)``, ``f_k`` being the first changed frame of codebook ``k`` (in the notation of the issue: with
``f = min_k f_k``, input steps ``0..f`` are identical, and the first scored changed token sits at step ``f_k + k
>= f``; the step ``P`` itself must be recomputed because it scores a changed target). Conditions of equal length are
batched with the smallest ``P`` of the batch, which is exact for every member (it only recomputes more).

Memory. The decoder runs over at most ``chunk`` input steps per call, appending each chunk's keys and values to the
cache before the next: the attention mask of a call is ``chunk × (cached + chunk)`` and its logits ``chunk × V`` per
sequence, so peak memory grows linearly with the clip length (one dense mask over the whole suffix and the whole clip
grew with its square: a 10-minute clip needed tens of GB). Chunking is exact up to float rounding: a step attends to
the same keys either way.

Only the null condition (no text prompt: no cross-attention, see :mod:`cae.models.hf`) is handled here; a text
prompt goes through the adapter's full forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cae.models.base import MusicLM
from cae.models.layout import delay_inputs, nll_from_logits, paper_inputs
from cae.types import Codes, TokenNLL

__all__ = ["PrefixScorer", "reuse_bound", "supports_prefix_reuse", "token_steps"]


def supports_prefix_reuse(model: MusicLM, prompt: str | None = None) -> bool:
    """Whether :class:`PrefixScorer` can score for ``model``: an adapter that declares ``"prefix_reuse"`` in its
    :attr:`~cae.models.base.MusicLM.capabilities` (a transformers MusicGen decoder), without a text prompt, in
    the delay or paper layout."""
    return ("prefix_reuse" in getattr(model, "capabilities", ()) and prompt is None
            and model.alignment in ("delay", "paper"))


def token_steps(alignment: str, num_codebooks: int, num_frames: int) -> torch.Tensor:
    """Sequence step whose logits score each token.

    Args:
        alignment: ``"delay"`` or ``"paper"``.
        num_codebooks: ``K``.
        num_frames: ``F``.

    Returns:
        LongTensor ``[K, F]``: ``t + k`` (delay) or ``t - 1`` (paper; ``-1`` for frame 0, which is not scored).

    >>> token_steps("delay", 2, 3).tolist()
    [[0, 1, 2], [1, 2, 3]]
    """
    t = torch.arange(num_frames).expand(num_codebooks, num_frames)
    if alignment == "delay":
        return t + torch.arange(num_codebooks)[:, None]
    if alignment == "paper":
        return t - 1
    raise ValueError(f"no step map for alignment {alignment!r}")


def reuse_bound(clean_inputs: torch.Tensor, inputs: torch.Tensor, clean_codes: Codes, codes: Codes,
                steps: torch.Tensor) -> int:
    """The number ``P`` of leading sequence steps whose logits and scored tokens equal the clean ones.

    Args:
        clean_inputs: decoder input layout of the clean codes, ``[K, S]``.
        inputs: input layout of the perturbed codes, ``[K, S']``.
        clean_codes: ``[K, F]``.
        codes: ``[K, F']``.
        steps: :func:`token_steps` for ``[K, F']``.

    Returns:
        ``P = min(d, P_t)`` (module docstring); ``P >= S'`` means nothing needs computing.
    """
    common = min(clean_inputs.shape[1], inputs.shape[1])  # the clean cache has no steps past its own end
    differs = (clean_inputs[:, :common] != inputs[:, :common]).any(0)
    d = int(differs.nonzero()[0, 0]) if bool(differs.any()) else common
    f = min(clean_codes.shape[1], codes.shape[1])
    changed = torch.ones(codes.shape, dtype=torch.bool)
    changed[:, :f] = clean_codes[:, :f] != codes[:, :f]
    changed &= steps >= 0
    p_t = int(steps[changed].min()) if bool(changed.any()) else inputs.shape[1]
    return min(d, p_t)


@dataclass
class PrefixStats:
    """What a :class:`PrefixScorer` computed: decoder steps run (summed over batch items) and forward calls."""

    clean_steps: int = 0
    suffix_steps: int = 0
    copied_conditions: int = 0
    forward_calls: int = 0


class PrefixScorer:
    """Per-token NLL of perturbed versions of one clean clip, with the clean KV cache reused (module docstring).

    Args:
        model: a :class:`~cae.models.hf.HFMusicGen` (see :func:`supports_prefix_reuse`).
        clean_codes: LongTensor ``[K, F]``.
        chunk: input steps per decoder call (bounds the memory of one call; see the module docstring).
        clean_nll: the clean NLL when already known (a cached clean unit): the clean pass that fills the KV cache
            then runs only when a perturbed version shares a prefix with the clean clip.

    Attributes:
        clean_nll: float32 ``[K, F]`` on the CPU, equal to ``model.token_nll(clean_codes)``.
        stats: :class:`PrefixStats`.
    """

    def __init__(self, model: MusicLM, clean_codes: Codes, chunk: int = 512, clean_nll: TokenNLL | None = None):
        if not supports_prefix_reuse(model):
            raise TypeError(f"{model!r} does not support prefix reuse")
        from transformers import DynamicCache

        self.model = model
        self._cache_class = DynamicCache
        self.alignment = model.alignment
        self.clean_codes, _ = model._as_batch(clean_codes)
        self.clean_codes = self.clean_codes[0]
        self.clean_inputs = self._layout(self.clean_codes[None])[0]  # [K, S]
        if int(chunk) < 1:
            raise ValueError(f"chunk must be at least 1 step, got {chunk}")
        self.chunk = int(chunk)
        self.stats = PrefixStats()
        #: per layer (keys, values), each ``[1, heads, S, head_dim]`` on the model's device (None: not yet computed)
        self._kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        if clean_nll is None:
            self.clean_nll = self._clean_pass()
        else:
            self.clean_nll = torch.as_tensor(clean_nll, dtype=torch.float32).cpu()

    def _clean_pass(self) -> TokenNLL:
        """Run the decoder over the clean clip, keeping its keys and values; returns the clean NLL."""
        cache = self._cache_class()
        steps = token_steps(self.alignment, *self.clean_codes.shape)
        with torch.inference_mode():
            nll = self._run(self.clean_inputs[None], cache, self.clean_codes[None], steps, 0, None)[0]
        self.stats.clean_steps += self.clean_inputs.shape[1]
        self._kv = [(layer.keys, layer.values) for layer in cache.layers]
        return nll

    # ---- internals ------------------------------------------------------------------------------------------------
    def _layout(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, K, F]`` codes → decoder inputs ``[B, K, S]`` for this alignment."""
        if self.alignment == "paper":
            return paper_inputs(codes)
        return delay_inputs(codes, self.model.special)

    def _forward(self, inputs: torch.Tensor, cache: object) -> torch.Tensor:
        """Decoder logits ``[B, K, q, V]`` for input steps ``[B, K, q]`` after the steps held in ``cache``."""
        b, k, q = inputs.shape
        out = self.model.decoder(input_ids=inputs.reshape(b * k, q).to(self.model.device), cache=cache,
                                 use_cache=True)
        self.stats.forward_calls += 1
        return out.logits.reshape(b, k, q, -1)

    def _run(self, inputs: torch.Tensor, cache: object, codes: torch.Tensor, steps: torch.Tensor, start: int,
             clean: torch.Tensor | None) -> torch.Tensor:
        """NLL ``[B, K, F]`` of ``codes`` with the decoder run over input steps ``start..`` (``inputs`` ``[B, K,
        S - start]``) in chunks of :attr:`chunk` steps on top of ``cache`` (which holds steps ``0..start-1`` and
        grows); tokens scored before ``start`` take ``clean``."""
        b, k_count, f = codes.shape
        out = torch.full((b, k_count, f), float("nan"), dtype=torch.float32)
        before = (steps < start) & (steps >= 0)
        if bool(before.any()):
            common = min(f, 0 if clean is None else clean.shape[1])
            if clean is None or bool(before[:, common:].any()):
                raise RuntimeError("internal error: tokens before the computed steps need the clean NLL")
            mask = before[:, :common]
            out[:, :, :common][:, mask] = clean[:, :common][mask]
        for lo in range(0, inputs.shape[-1], self.chunk):
            logits = self._forward(inputs[:, :, lo : lo + self.chunk], cache)  # [B, K, q, V]
            self._fill(out, logits, codes, steps, start + lo)
            del logits
        return out

    def _prefix_cache(self, length: int, batch: int) -> object:
        """A fresh cache holding the clean keys/values of steps ``0..length-1``, repeated ``batch`` times."""
        cache = self._cache_class()
        if length <= 0:
            return cache
        if self._kv is None:
            self._clean_pass()
        for i, (keys, values) in enumerate(self._kv):  # type: ignore[arg-type]
            cache.update(keys[:, :, :length].expand(batch, -1, -1, -1), values[:, :, :length].expand(batch, -1, -1, -1), i)
        return cache

    @staticmethod
    def _fill(out: torch.Tensor, logits: torch.Tensor, codes: torch.Tensor, steps: torch.Tensor, first: int) -> None:
        """Write into ``out`` ``[B, K, F]`` the NLL of the tokens scored by ``logits`` ``[B, K, q, V]``, which cover
        sequence steps ``first..first+q-1``."""
        q = logits.shape[2]
        for k in range(codes.shape[1]):
            idx = steps[k] - first
            sel = ((idx >= 0) & (idx < q)).nonzero()[:, 0]
            if not sel.numel():
                continue
            lo, hi = int(idx[sel[0]]), int(idx[sel[-1]]) + 1
            if hi - lo == sel.numel():  # steps are consecutive (both alignments): a view, no copy
                lg = logits[:, k, lo:hi]
            else:
                lg = logits[:, k, idx[sel].to(logits.device)]  # [B, n, V]
            out[:, k, sel] = nll_from_logits(lg, codes[:, k, sel].to(logits.device)).float().cpu()

    # ---- public ---------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, codes: Sequence[Codes], batch_size: int | None = None) -> list[TokenNLL]:
        """Per-token NLL of each perturbed version, equal to ``model.token_nll(c)`` for each ``c`` in ``codes``.

        Args:
            codes: LongTensors ``[K, F_i]`` (lengths may differ from the clean clip and from each other).
            batch_size: suffixes per decoder call (default: the model's ``batch_size``).

        Returns:
            Float32 ``[K, F_i]`` tensors on the CPU, in the order of ``codes``.
        """
        size = batch_size or self.model.batch_size
        items = [self.model._as_batch(c)[0][0] for c in codes]
        out: list[TokenNLL | None] = [None] * len(items)
        pending: dict[int, list[tuple[int, int, torch.Tensor, torch.Tensor]]] = {}
        for i, c in enumerate(items):
            inputs = self._layout(c[None])[0]
            steps = token_steps(self.alignment, *c.shape)
            p = reuse_bound(self.clean_inputs, inputs, self.clean_codes, c, steps)
            if p >= inputs.shape[1]:  # nothing differs before the end: the clean NLL, token for token
                out[i] = self._run(inputs[None, :, p:], None, c[None], steps, p, self.clean_nll)[0]
                self.stats.copied_conditions += 1
                continue
            pending.setdefault(inputs.shape[1], []).append((i, p, inputs, steps))
        for seq_len, group in pending.items():
            for lo in range(0, len(group), size):
                chunk = group[lo : lo + size]
                start = min(p for _, p, _, _ in chunk)
                batch = torch.stack([inputs[:, start:] for _, _, inputs, _ in chunk])  # [B, K, S' - start]
                frames = torch.stack([items[i] for i, _, _, _ in chunk])
                nll = self._run(batch, self._prefix_cache(start, len(chunk)), frames, chunk[0][3], start,
                                self.clean_nll)
                self.stats.suffix_steps += len(chunk) * (seq_len - start)
                for j, (i, _, _, _) in enumerate(chunk):
                    out[i] = nll[j]
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:
            raise RuntimeError(f"internal error: conditions {missing} were not scored")
        return out  # type: ignore[return-value]
