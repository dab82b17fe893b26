"""A model adapter in one file: the *copy baseline*, a "music LM" that only knows that tokens repeat.

It predicts that every token equals the previous token of the same codebook with probability ``p_repeat`` and
spreads the rest uniformly over the other tokens. It needs no training, yet it shows the trap the ablations warn
about: a noise burst that the codec turns into one repeated token is *easy* for it, so its loss drops inside the
noise — "assimilation" by copying.

How a new model plugs into cae (the book's "Adding a model" page walks through it):

1. subclass :class:`cae.models.MusicLM`, call ``self._setup(...)`` in ``__init__`` and set ``sample_rate``,
   ``frame_rate``, ``num_codebooks`` and ``card``;
2. implement ``_encode(wav [B, N]) -> codes [B, K, F]`` and ``_token_nll(codes [B, K, F], prompt) -> nll [B, K, F]``
   (nats, ``-log p(codes[b, k, f] | what the model conditions on)``, float32);
3. register a factory name with :func:`cae.register_model`; notebooks load it with ``plugins=["<this file>"]`` and
   ``models=["copy-baseline"]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cae import register_model
from cae.models import MusicLM


class CopyBaseline(MusicLM):
    """p(x_f = x_{f-1}) = p_repeat per codebook; uniform otherwise. The codec is the reference model's tokenizer."""

    backend = "example-copy-baseline"

    def __init__(self, p_repeat: float = 0.5, *, alignment: str = "delay", device: Any = None, dtype: Any = None,
                 revision: str | None = None, batch_size: int = 8):
        from cae.reference.model import load_reference

        if not 0.0 < p_repeat < 1.0:
            raise ValueError(f"p_repeat must be in (0, 1), got {p_repeat}")
        self._setup(model_id="copy-baseline", revision=revision or f"p{p_repeat:g}", alignment=alignment,
                    device="cpu", dtype=dtype, batch_size=batch_size)
        self.codec = load_reference(device="cpu")  # reuse the shipped tokenizer as this model's codec
        self.sample_rate, self.frame_rate = self.codec.sample_rate, self.codec.frame_rate
        self.num_codebooks, self.card = self.codec.num_codebooks, self.codec.card
        self.p_repeat = float(p_repeat)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.codec._encode(wav)

    def _token_nll(self, codes: torch.Tensor, prompt: str | None) -> torch.Tensor:
        nll = torch.full(codes.shape, math.log(self.card), dtype=torch.float32)  # frame 0: no previous token
        same = codes[..., 1:] == codes[..., :-1]
        hit = -math.log(self.p_repeat)
        miss = -math.log((1.0 - self.p_repeat) / (self.card - 1))
        nll[..., 1:] = torch.where(same, torch.tensor(hit), torch.tensor(miss))
        return nll

    # optional: sampling and decoding make the `generated` dataset kind work with this model too
    def _generate(self, num_samples: int, frames: int, top_k: int, temperature: float, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        codes = torch.empty(num_samples, self.num_codebooks, frames, dtype=torch.long)
        codes[..., 0] = torch.randint(0, self.card, (num_samples, self.num_codebooks), generator=g)
        for f in range(1, frames):
            keep = torch.rand(num_samples, self.num_codebooks, generator=g) < self.p_repeat
            fresh = torch.randint(0, self.card, (num_samples, self.num_codebooks), generator=g)
            codes[..., f] = torch.where(keep, codes[..., f - 1], fresh)
        return codes

    def decode(self, codes: torch.Tensor) -> Any:
        return self.codec.decode(codes)


@register_model("copy-baseline", overwrite=True)
def copy_baseline(**kwargs: Any) -> CopyBaseline:
    return CopyBaseline(**kwargs)
