"""Convert an audiocraft MusicGen ``LMModel`` into a transformers ``MusicgenForCausalLM`` with the same weights.

The two implementations are the same network: per-codebook token embeddings summed, sinusoidal positions
(cos half then sin half, period 10000), pre-norm transformer layers (self-attention, optional cross-attention,
GELU feed-forward), a final LayerNorm and one linear head per codebook. The mapping:

==========================================  ============================================================
audiocraft                                  transformers
==========================================  ============================================================
``emb.{k}``                                 ``model.decoder.embed_tokens.{k}``
``transformer.layers.{i}.self_attn``        ``…layers.{i}.self_attn.{q,k,v}_proj`` (``in_proj_weight`` split in 3) and ``out_proj``
``transformer.layers.{i}.cross_attention``  ``…layers.{i}.encoder_attn`` (same split)
``transformer.layers.{i}.norm1/norm_cross/norm2``  ``self_attn_layer_norm / encoder_attn_layer_norm / final_layer_norm``
``transformer.layers.{i}.linear1/linear2``  ``fc1 / fc2``
``out_norm``                                ``model.decoder.layer_norm``
``linears.{k}``                             ``lm_heads.{k}``
==========================================  ============================================================

Only bias-free attention / feed-forward / heads (MusicGen's configuration) map exactly onto transformers' MusicGen.
"""

from __future__ import annotations

from typing import Any

import torch

from cae.errors import ModelError

_LAYER_RENAMES = {
    "linear1": "fc1",
    "linear2": "fc2",
    "norm1": "self_attn_layer_norm",
    "norm_cross": "encoder_attn_layer_norm",
    "norm2": "final_layer_norm",
    "out_proj": "out_proj",
}


def audiocraft_to_hf_state_dict(lm_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and split) the decoder weights of an audiocraft ``LMModel`` state dict for ``MusicgenForCausalLM``.

    Conditioner weights (``condition_provider.*``) are left out: they belong to the text encoder side.
    """
    out: dict[str, torch.Tensor] = {}
    for name, w in lm_state.items():
        if name.startswith("condition_provider.") or name.startswith("fuser."):
            continue
        parts = name.split(".")
        if parts[0] == "emb":
            out[f"model.decoder.embed_tokens.{parts[1]}.{parts[2]}"] = w
        elif parts[0] == "linears":
            out[f"lm_heads.{parts[1]}.{parts[2]}"] = w
        elif parts[0] == "out_norm":
            out[f"model.decoder.layer_norm.{parts[1]}"] = w
        elif parts[:2] == ["transformer", "layers"]:
            i, rest = parts[2], parts[3:]
            prefix = f"model.decoder.layers.{i}."
            if rest[0] in ("self_attn", "cross_attention"):
                attn = "self_attn" if rest[0] == "self_attn" else "encoder_attn"
                if rest[1] == "in_proj_weight":
                    q, k, v = w.chunk(3, dim=0)
                    out[prefix + f"{attn}.q_proj.weight"] = q
                    out[prefix + f"{attn}.k_proj.weight"] = k
                    out[prefix + f"{attn}.v_proj.weight"] = v
                elif rest[1] == "out_proj":
                    out[prefix + f"{attn}.out_proj.{rest[2]}"] = w
                else:
                    raise ModelError(f"cannot map audiocraft weight {name!r} (attention biases are not supported)")
            elif rest[0] in _LAYER_RENAMES:
                out[prefix + _LAYER_RENAMES[rest[0]] + "." + ".".join(rest[1:])] = w
            else:
                raise ModelError(f"cannot map audiocraft weight {name!r}")
        else:
            raise ModelError(f"cannot map audiocraft weight {name!r}")
    return out


def audiocraft_to_hf_decoder(lm: Any, *, max_position_embeddings: int = 2048) -> Any:
    """Build a ``MusicgenForCausalLM`` holding the weights of the audiocraft ``lm``.

    Raises :class:`~cae.errors.ModelError` when the LM uses features transformers' MusicGen lacks (biases, a
    non-delay pattern, a different norm or activation).
    """
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    state = lm.state_dict()
    layer0 = lm.transformer.layers[0]
    ffn_dim = int(layer0.linear1.weight.shape[0])
    cfg = MusicgenDecoderConfig(
        vocab_size=int(lm.card),
        num_codebooks=int(lm.num_codebooks),
        hidden_size=int(lm.dim),
        num_hidden_layers=len(lm.transformer.layers),
        num_attention_heads=int(layer0.self_attn.num_heads),
        ffn_dim=ffn_dim,
        max_position_embeddings=max_position_embeddings,
        activation_function="gelu",
        pad_token_id=int(lm.card),
        bos_token_id=int(lm.card),
        decoder_start_token_id=int(lm.card),
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    hf = MusicgenForCausalLM(cfg)
    mapped = audiocraft_to_hf_state_dict(state)
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    missing = [m for m in missing if ".encoder_attn" not in m and "embed_positions" not in m]
    if missing or unexpected:
        raise ModelError(f"weights do not line up: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return hf.eval()
