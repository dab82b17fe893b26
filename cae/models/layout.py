"""Input layouts for scoring codec tokens with a multi-codebook LM, and the gather of per-token NLL.

MusicGen models K parallel codebook streams with the *delay* pattern (Copet et al., 2023, §2.2): at sequence step
``s`` the input slot of codebook ``k`` holds ``codes[k, s - 1 - k]``; step 0 holds the special token (BOS) in every
slot, as do slots whose frame index falls outside ``[0, F)``. The output of head ``k`` at step ``s`` is the
distribution of the token in slot ``k`` at step ``s + 1``, i.e. of ``codes[k, s - k]``. So scoring all ``K x F`` tokens
needs ``S = F + K - 1`` input steps, and the logits for ``codes[k, t]`` sit at step ``t + k``. The tail slots (frames
past the end, for the finer codebooks' last predictions) hold the special token, exactly as in transformers'
``build_delay_pattern_mask`` and in MusicGen's own generation loop.

The authors of the paper instead fed the *un-delayed* codes without BOS (Protocol page: Scoring): input ``codes[:, :F-1]``, head
``k`` at step ``p`` scored against ``codes[k, p + 1]``. We keep that as the ``"paper"`` alignment for the ablation,
indexed by target frame: frame 0 has no prediction (NaN).

>>> import torch
>>> codes = torch.arange(6).view(1, 2, 3)          # B=1, K=2, F=3
>>> delay_inputs(codes, special=9)[0]
tensor([[9, 0, 1, 2],
        [9, 9, 3, 4]])
"""

from __future__ import annotations

from typing import Literal

import torch

Alignment = Literal["delay", "paper"]
ALIGNMENTS: tuple[str, ...] = ("delay", "paper")


def delay_inputs(codes: torch.Tensor, special: int) -> torch.Tensor:
    """Build the delayed input sequence that predicts every token of ``codes``.

    Args:
        codes: LongTensor ``[B, K, F]``.
        special: id of the special (BOS / pad) token, ``card`` for MusicGen (2048).

    Returns:
        LongTensor ``[B, K, F + K - 1]``: step 0 is all ``special``; slot ``k`` at step ``s`` is
        ``codes[:, k, s - 1 - k]`` where that frame exists, else ``special``.
    """
    b, k_count, f = codes.shape
    steps = f + k_count - 1
    out = codes.new_full((b, k_count, steps), special)
    for k in range(k_count):
        # frames 0 .. F-1 of codebook k go to steps k+1 .. k+F, clipped to the S available steps
        n = min(f, steps - (k + 1))
        if n > 0:
            out[:, k, k + 1 : k + 1 + n] = codes[:, k, :n]
    return out


def paper_inputs(codes: torch.Tensor) -> torch.Tensor:
    """The authors' input: un-delayed codes without BOS, last frame dropped. ``[B, K, F]`` → ``[B, K, F - 1]``."""
    if codes.shape[-1] < 2:
        raise ValueError("the 'paper' alignment needs at least 2 frames")
    return codes[..., :-1]


def nll_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each target under its logits, computed in float32.

    Args:
        logits: ``[..., V]`` any float dtype.
        targets: LongTensor ``[...]`` with values in ``[0, V)``.

    Returns:
        Float32 tensor ``[...]``: ``logsumexp(logits) - logits[target]`` = ``-log softmax(logits)[target]``.
    """
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(logits, dim=-1) - picked


def gather_delay_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-token NLL from logits computed on :func:`delay_inputs`.

    Args:
        logits: ``[B, K, F + K - 1, V]`` (head ``k`` at step ``s`` predicts slot ``k`` at step ``s + 1``).
        codes: LongTensor ``[B, K, F]``.

    Returns:
        Float32 ``[B, K, F]``: entry ``[b, k, t]`` is ``-log p(codes[b, k, t] | steps <= t + k)``.
    """
    b, k_count, f = codes.shape
    out = torch.empty((b, k_count, f), dtype=torch.float32, device=codes.device)
    for k in range(k_count):
        out[:, k] = nll_from_logits(logits[:, k, k : k + f], codes[:, k])
    return out


def gather_paper_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-token NLL from logits computed on :func:`paper_inputs`, indexed by target frame.

    Args:
        logits: ``[B, K, F - 1, V]``; step ``p`` of head ``k`` is scored against ``codes[:, k, p + 1]``.
        codes: LongTensor ``[B, K, F]``.

    Returns:
        Float32 ``[B, K, F]``; frame 0 is NaN (no prediction).
    """
    b, k_count, f = codes.shape
    out = torch.full((b, k_count, f), float("nan"), dtype=torch.float32, device=codes.device)
    out[:, :, 1:] = nll_from_logits(logits, codes[:, :, 1:])
    return out
