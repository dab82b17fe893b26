"""MusicGen through 🤗 transformers: EnCodec tokens and delay-aligned per-token scoring.

Scoring (``alignment="delay"``, the default) feeds the decoder exactly the layout it was trained on: BOS (the special
token ``card``, MusicGen's ``decoder_start_token_id`` = ``pad_token_id`` = 2048) at step 0, codebook ``k`` delayed by
``k`` steps, special tokens where the pattern has no frame (see :mod:`cae.models.layout`). Every one of the ``K x F``
tokens is scored; this is the quantity behind transformers' own labels-based MusicGen loss.

Conditioning. With no prompt the decoder runs without ``encoder_hidden_states`` and so skips cross-attention. That
is the null (unconditional) condition: MusicGen's null text is an all-masked, zero encoder state, its cross-attention
has no biases, so the cross-attention output is exactly zero (a test checks the equivalence against the full
encoder-decoder model on ``get_unconditional_inputs``). With a prompt the full model runs its text encoder.

``alignment="paper"`` reproduces the authors' computation (Protocol page: Scoring): un-delayed codes, no BOS, no conditioning,
``codes[:, :F-1]`` in and ``codes[:, 1:]`` scored, reported at the target frame (frame 0 NaN).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae.errors import ModelError
from cae.models.base import MusicLM, hub_offline, missing_weights_message, register_backend
from cae.models.layout import delay_inputs, gather_delay_nll, gather_paper_nll, paper_inputs
from cae.models.sampling import hf_decoder_step, sample_delay
from cae.models.weights import folder_digest


#: MusicGen was trained on 30 s segments: 1500 frames at 50 Hz.
MUSICGEN_CONTEXT_FRAMES = 1500


class HFMusicGen(MusicLM):
    """A transformers MusicGen (small / medium / large, mono) as a :class:`~cae.models.base.MusicLM`.

    Build it with :meth:`from_pretrained` (hub id or local folder) or :meth:`from_model` (an already-built model).
    """

    backend = "transformers"
    batched_generation = True
    capabilities = frozenset({"prefix_reuse", "incremental_encoding"})

    def __init__(
        self,
        decoder: Any,
        audio_encoder: Any | None = None,
        *,
        full_model: Any | None = None,
        tokenizer: Any | None = None,
        model_id: str = "transformers-musicgen",
        revision: str | None = None,
        alignment: str = "delay",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        sample_rate: int | None = None,
        frame_rate: float | None = None,
    ):
        cfg = decoder.config
        if getattr(cfg, "model_type", "") == "musicgen_melody" or "Melody" in type(decoder).__name__:
            raise ModelError(
                "MusicGen-Melody prepends its conditioning instead of cross-attending; score it with the "
                "audiocraft backend: load_model('audiocraft:facebook/musicgen-melody')"
            )
        if getattr(cfg, "audio_channels", 1) != 1:
            raise ModelError(f"{model_id}: stereo MusicGen checkpoints are not supported (mono scoring only)")
        self._setup(model_id=model_id, revision=revision, alignment=alignment, device=device, dtype=dtype,
                    batch_size=batch_size)
        self.num_codebooks = int(cfg.num_codebooks)
        self.card = int(cfg.vocab_size)
        self.special = int(cfg.pad_token_id if cfg.pad_token_id is not None else cfg.vocab_size)
        self.bos = int(cfg.bos_token_id if cfg.bos_token_id is not None else self.special)
        if self.bos != self.special:
            raise ModelError(f"{model_id}: expected BOS == pad token (MusicGen convention), got {self.bos} and {self.special}")
        self.decoder = decoder.to(self.device, self.dtype).eval()
        # the codec always runs in float32: the tokens must not depend on the precision the LM runs in (and a
        # checkpoint loaded with dtype=float16 would otherwise get float32 audio into a float16 EnCodec)
        self.audio_encoder = None if audio_encoder is None else audio_encoder.to(self.device, torch.float32).eval()
        self.full_model = full_model
        self.tokenizer = tokenizer
        if self.audio_encoder is not None:
            acfg = self.audio_encoder.config
            self.sample_rate = int(acfg.sampling_rate)
            self.frame_rate = float(acfg.frame_rate)
            self._bandwidth = self._bandwidth_for(self.num_codebooks)
        else:  # a decoder alone scores codes; its rates are the codec's, declared by the caller when known
            self._bandwidth = None
            if sample_rate is not None:
                self.sample_rate = int(sample_rate)
            if frame_rate is not None:
                self.frame_rate = float(frame_rate)

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Any, audio_encoder: Any | None = None, **kwargs: Any) -> HFMusicGen:
        """Wrap a built ``MusicgenForConditionalGeneration`` (decoder, EnCodec and text encoder are taken from it)
        or a bare ``MusicgenForCausalLM`` decoder plus an optional ``EncodecModel``."""
        if hasattr(model, "decoder") and hasattr(model, "audio_encoder"):
            kwargs.setdefault("model_id", getattr(model.config, "_name_or_path", "") or "transformers-musicgen")
            return cls(model.decoder, model.audio_encoder if audio_encoder is None else audio_encoder,
                       full_model=model, **kwargs)
        return cls(model, audio_encoder, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        *,
        revision: str | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> HFMusicGen:
        """Load ``model_id`` (hub id such as ``facebook/musicgen-small``, or a local folder).

        Looks in the local cache first; goes to the hub only when that fails and ``HF_HUB_OFFLINE`` is not set.
        A missing checkpoint raises :class:`~cae.errors.ModelError` saying how to get it. The weights' identity
        (:meth:`~cae.models.base.MusicLM.weights_digest`) is the folder's file hashes for a local folder, the
        snapshot's commit for a hub id.
        """
        from transformers import AutoTokenizer, MusicgenForConditionalGeneration

        # weights are loaded in float32 and only the decoder is cast to ``dtype`` (in ``__init__``): the codec must
        # keep full-precision weights, or half-precision loading would change the tokens themselves
        tries = [True] if (local_files_only or hub_offline()) else [True, False]
        if local_files_only is False:
            tries = [False]
        last: BaseException | None = None
        for local in tries:
            try:
                model = MusicgenForConditionalGeneration.from_pretrained(
                    model_id, revision=revision, local_files_only=local, dtype=torch.float32
                )
                break
            except (OSError, ValueError) as e:  # missing files / no network
                last = e
        else:
            raise ModelError(missing_weights_message(model_id, "transformers", last or RuntimeError("?")))
        tokenizer = None
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision, local_files_only=True)
        except (OSError, ValueError):
            pass  # text prompts then raise a clear error; null-conditioned scoring does not need it
        commit = getattr(model.config, "_commit_hash", None)
        out = cls.from_model(model, tokenizer=tokenizer, model_id=model_id, revision=revision or commit, **kwargs)
        out.context_frames = MUSICGEN_CONTEXT_FRAMES
        if Path(model_id).is_dir():  # a local folder can be retrained in place: hash what was just loaded
            out.set_weights_digest(folder_digest(model_id))
        elif commit:  # a hub snapshot: its commit names its files' bytes
            out.set_weights_digest(f"hub:{commit}")
        return out

    # ---- codec ----------------------------------------------------------------------------------------------------
    def _bandwidth_for(self, k: int) -> float:
        enc = self.audio_encoder
        for bw in sorted(enc.config.target_bandwidths):
            if enc.quantizer.get_num_quantizers_for_bandwidth(bw) == k:
                return float(bw)
        raise ModelError(
            f"{self.model_id}: no EnCodec bandwidth in {enc.config.target_bandwidths} gives {k} codebooks"
        )

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        if self.audio_encoder is None:
            raise ModelError(f"{self.model_id}: no audio encoder attached; pass codes to token_nll directly")
        out = self.audio_encoder.encode(wav[:, None, :], bandwidth=self._bandwidth, return_dict=True)
        codes = out.audio_codes
        if codes.shape[0] != 1:
            raise ModelError(f"{self.model_id}: chunked EnCodec configs are not supported (got {codes.shape[0]} chunks)")
        return codes[0]

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        if self.audio_encoder is None:
            raise ModelError(f"{self.model_id}: no audio encoder attached, cannot decode")
        batch, _ = self._as_batch(codes)
        audio = self.audio_encoder.decode(batch[:1, None].to(self.device), [None], return_dict=True).audio_values
        return audio[0, 0].float().cpu().numpy()

    #: Decoders up to this many parameters are sampled in float64 on the CPU (:meth:`sampling_decoder`).
    SAMPLING_FLOAT64_MAX_PARAMETERS = 100_000_000

    def sampling_decoder(self) -> Any:
        """The decoder :meth:`generate` samples from: on the CPU, for a decoder of at most
        :data:`SAMPLING_FLOAT64_MAX_PARAMETERS` parameters, a float64 copy (made once), so that a clip's samples do not
        depend on the batch it is sampled in (:mod:`cae.models.sampling`); otherwise the decoder itself."""
        if self.device.type != "cpu":
            return self.decoder
        if "_sampling_decoder" not in self.__dict__:
            size = sum(p.numel() for p in self.decoder.parameters())
            self._sampling_decoder = (copy.deepcopy(self.decoder).double()
                                      if size <= self.SAMPLING_FLOAT64_MAX_PARAMETERS else self.decoder)
        return self._sampling_decoder

    def __getstate__(self) -> dict[str, Any]:  # the float64 sampling copy is remade where it is needed
        state = self.__dict__.copy()
        state.pop("_sampling_decoder", None)
        return state

    def _generate(self, num_samples: int, frames: int, top_k: int, temperature: float,
                  seed: int | list[int]) -> torch.Tensor:
        return sample_delay(
            hf_decoder_step(self.sampling_decoder(), frames + self.num_codebooks - 1), batch=num_samples,
            num_codebooks=self.num_codebooks, frames=frames, special=self.special, device=self.device, top_k=top_k,
            temperature=temperature, seed=seed,
        )

    # ---- scoring --------------------------------------------------------------------------------------------------
    def conditioning(self, prompt: str | None = None) -> str:
        if self.alignment == "paper":
            return "none (paper: decoder without cross-attention)"
        return super().conditioning(prompt)

    def _logits(self, inputs: torch.Tensor, prompt: str | None) -> torch.Tensor:
        """Decoder logits ``[B, K, S, V]`` for an input layout ``[B, K, S]``."""
        b, k, s = inputs.shape
        flat = inputs.reshape(b * k, s)
        if prompt is None:
            logits = self.decoder(input_ids=flat).logits
        else:
            if self.full_model is None or self.tokenizer is None:
                raise ModelError(f"{self.model_id}: text prompts need the full model and its tokenizer")
            enc = self.tokenizer([prompt] * b, return_tensors="pt", padding=True).to(self.device)
            logits = self.full_model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], decoder_input_ids=flat
            ).logits
        return logits.reshape(b, k, s, -1)

    def _token_nll(self, codes: torch.Tensor, prompt: str | None) -> torch.Tensor:
        if self.alignment == "paper":
            if prompt is not None:
                raise ModelError("the 'paper' alignment is unconditioned; it takes no prompt")
            return gather_paper_nll(self._logits(paper_inputs(codes), None), codes)
        return gather_delay_nll(self._logits(delay_inputs(codes, self.special), prompt), codes)


def is_transformers_name(name: str) -> bool:
    """Whether :func:`~cae.models.base.load_model` hands ``name`` to transformers: ``hf:<id>``, an ``owner/name``
    hub id, or a local folder."""
    return name.startswith("hf:") or "/" in name or Path(name).is_dir()


def load_transformers(name: str, **kwargs: Any) -> HFMusicGen:
    """:meth:`HFMusicGen.from_pretrained` on ``name`` without its ``hf:`` prefix."""
    return HFMusicGen.from_pretrained(name.removeprefix("hf:"), **kwargs)


register_backend("transformers", is_transformers_name, load_transformers,
                 describe="'hf:<id>', a hub id ('owner/name') or a local folder")
