"""MusicGen through audiocraft (optional extra): ``LMModel.compute_predictions`` with its mask.

audiocraft applies the delay pattern itself (``CodebooksPatternProvider``): we call
``lm.compute_predictions(codes, conditions, keep_only_valid_steps=False)`` so that every token gets a prediction, with
special tokens in the tail slots (as in MusicGen's generation loop and in transformers' labels loss; audiocraft's
training loss uses ``keep_only_valid_steps=True`` and so leaves out the last ``k`` frames of codebook ``k``). Logits at
invalid pattern positions are NaN by design; we set the NLL there to NaN from the returned mask, so no NaN logit
ever reaches a reduction.

Conditioning: the null condition is built as MusicGen builds its classifier-free-guidance null branch
(``ClassifierFreeGuidanceDropout(p=1)``: text → None, melody wav → an empty wav), so MusicGen-Melody is scored with a
null text *and* a null chroma. A prompt sets the ``description`` text attribute.

``alignment="paper"`` runs ``lm.forward`` on the un-delayed codes without BOS and scores each step against the *next*
frame (the authors' HF computation, Protocol page: Scoring). The authors' Melody script scored each step against its own input
token (Protocol page: Scoring); that off-by-one is not reproduced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae.errors import ModelError
from cae.models.base import MusicLM, default_device, hub_offline, missing_weights_message, register_backend
from cae.models.layout import gather_paper_nll, nll_from_logits, paper_inputs
from cae.models.sampling import audiocraft_step, sample_delay
from cae.models.weights import digest_of, folder_digest, hub_snapshot_commit


def _import_audiocraft() -> Any:
    try:
        import audiocraft  # noqa: F401
        from audiocraft.modules import conditioners
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError(
            "the audiocraft backend needs the 'audiocraft' extra: "
            "pip install --no-deps audiocraft==1.3.0 xformers torchaudio && pip install 'cae[audiocraft]' "
            f"(see README). Import failed: {e}"
        ) from e
    return conditioners


class AudiocraftMusicGen(MusicLM):
    """An audiocraft MusicGen (``compression_model`` + ``lm``) as a :class:`~cae.models.base.MusicLM`."""

    backend = "audiocraft"
    slow_path_reason = ("the engine's fast paths read transformers' MusicGen decoder and EnCodec, not audiocraft's "
                        "LMModel and compression model")
    batched_generation = True

    def __init__(
        self,
        compression_model: Any | None,
        lm: Any,
        *,
        model_id: str = "audiocraft-musicgen",
        revision: str | None = None,
        alignment: str = "delay",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 8,
        sample_rate: int | None = None,
        frame_rate: float | None = None,
    ):
        self._cond = _import_audiocraft()
        self._setup(model_id=model_id, revision=revision, alignment=alignment, device=device, dtype=dtype,
                    batch_size=batch_size)
        self.lm = lm.to(self.device, self.dtype).eval()
        # the codec always runs in float32, whatever dtype the LM runs in (tokens must not depend on it)
        self.compression_model = (None if compression_model is None
                                  else compression_model.to(self.device, torch.float32).eval())
        self.num_codebooks = int(lm.num_codebooks)
        self.card = int(lm.card)
        if sample_rate is not None:  # a LM alone scores codes; its rates are the codec's, declared when known
            self.sample_rate = int(sample_rate)
        if frame_rate is not None:
            self.frame_rate = float(frame_rate)
        if self.compression_model is not None:
            self.sample_rate = int(self.compression_model.sample_rate)
            self.frame_rate = float(self.compression_model.frame_rate)
            if int(self.compression_model.num_codebooks) != self.num_codebooks:
                raise ModelError(
                    f"{model_id}: codec has {self.compression_model.num_codebooks} codebooks, LM {self.num_codebooks}"
                )

    @classmethod
    def from_model(cls, compression_model: Any | None, lm: Any, **kwargs: Any) -> AudiocraftMusicGen:
        """Wrap already-built audiocraft parts (``EncodecModel`` or ``None``, and ``LMModel``)."""
        return cls(compression_model, lm, **kwargs)

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> AudiocraftMusicGen:
        """Load ``facebook/musicgen-{small,medium,large,melody}`` (or a local checkpoint folder) with audiocraft; its
        weights digest is the folder's file hashes, or the hub snapshot's commits."""
        _import_audiocraft()
        from audiocraft.models.loaders import load_compression_model, load_lm_model

        device = kwargs.get("device") or default_device()
        if hub_offline() and not Path(model_id).is_dir():
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(model_id, "state_dict.bin"), str):
                raise ModelError(missing_weights_message(
                    model_id, "audiocraft", FileNotFoundError(f"{model_id}/state_dict.bin is not in the HF cache")))
        try:
            lm = load_lm_model(model_id, device=device)
            compression_model = load_compression_model(model_id, device=device)
        except Exception as e:  # audiocraft raises many kinds on missing files / no network
            raise ModelError(missing_weights_message(model_id, "audiocraft", e)) from e
        if "self_wav" in lm.condition_provider.conditioners:  # as MusicGen.get_pretrained does
            lm.condition_provider.conditioners["self_wav"].match_len_on_eval = True
            lm.condition_provider.conditioners["self_wav"]._use_masking = False
        out = cls(compression_model, lm, model_id=model_id, **kwargs)
        digest = _checkpoint_digest(model_id, compression_model)
        if digest is not None:
            out.set_weights_digest(digest)
        return out

    # ---- codec ----------------------------------------------------------------------------------------------------
    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        if self.compression_model is None:
            raise ModelError(f"{self.model_id}: no compression model attached; pass codes to token_nll directly")
        codes, scale = self.compression_model.encode(wav[:, None, :])
        if scale is not None:
            raise ModelError(f"{self.model_id}: codecs with a normalisation scale are not supported")
        return codes

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> np.ndarray:
        if self.compression_model is None:
            raise ModelError(f"{self.model_id}: no compression model attached, cannot decode")
        batch, _ = self._as_batch(codes)
        audio = self.compression_model.decode(batch[:1].to(self.device), None)
        return audio[0, 0].float().cpu().numpy()

    def _generate(self, num_samples: int, frames: int, top_k: int, temperature: float,
                  seed: int | list[int]) -> torch.Tensor:
        """The delay sampler of :mod:`cae.models.sampling` (per-clip seeds, one batch) over audiocraft's
        ``LMModel`` in streaming mode (its key/value cache; prepended conditions enter on the first step). Under the
        null condition with ``cfg_coef = 1``, audiocraft's own ``generate`` computes the same distribution: its
        conditional and null branches are both null. What differs is the random stream (audiocraft draws from
        torch's global RNG for the whole batch), so samples are not audiocraft's for the same seed."""
        provider = self.lm.condition_provider
        conditions = self._conditions(num_samples, None)
        with torch.inference_mode():
            tensors = provider(provider.tokenize(conditions)) if conditions else {}
        with self.lm.streaming():
            return sample_delay(audiocraft_step(self.lm, tensors), batch=num_samples,
                                num_codebooks=self.num_codebooks, frames=frames, special=int(self.lm.special_token_id),
                                device=self.device, top_k=top_k, temperature=temperature, seed=seed)

    # ---- scoring --------------------------------------------------------------------------------------------------
    def conditioning(self, prompt: str | None = None) -> str:
        if self.alignment == "paper" and not self.lm.condition_provider.conditioners:
            return "none"
        return super().conditioning(prompt)

    def _conditions(self, batch: int, prompt: str | None) -> list[Any]:
        """ConditioningAttributes for ``batch`` items: null (CFG null branch) unless a prompt is given."""
        c = self._cond
        provider = self.lm.condition_provider
        if not provider.conditioners:
            return []
        attrs = []
        for _ in range(batch):
            a = c.ConditioningAttributes(text={name: None for name in provider.text_conditions})
            if "description" in provider.text_conditions:
                a.text["description"] = prompt
            elif prompt is not None:
                raise ModelError(f"{self.model_id} has no 'description' text conditioner; it takes no prompt")
            for name in provider.wav_conditions:
                a.wav[name] = c.WavCondition(
                    torch.zeros((1, 1, 1), device=self.device), torch.tensor([0], device=self.device),
                    sample_rate=[self.sample_rate], path=[None],
                )
            attrs.append(a)
        if prompt is None:
            attrs = c.ClassifierFreeGuidanceDropout(p=1.0)(attrs)  # a fresh module is in training mode: drops all
        return attrs

    def _token_nll(self, codes: torch.Tensor, prompt: str | None) -> torch.Tensor:
        conditions = self._conditions(codes.shape[0], prompt)
        if self.alignment == "paper":
            logits = self.lm(paper_inputs(codes), conditions)  # [B, K, F-1, V]
            return gather_paper_nll(logits, codes)
        out = self.lm.compute_predictions(codes, conditions, keep_only_valid_steps=False)
        mask = out.mask.bool()
        logits = torch.where(mask[..., None], out.logits, torch.zeros((), dtype=out.logits.dtype, device=codes.device))
        nll = nll_from_logits(logits, codes)
        return nll.masked_fill(~mask, float("nan"))


#: The files audiocraft loads from a checkpoint folder or hub repository (LM, then codec).
CHECKPOINT_FILES = ("state_dict.bin", "compression_state_dict.bin")


def _checkpoint_digest(model_id: str, compression_model: Any) -> str | None:
    """The weights digest of a loaded audiocraft checkpoint: a local folder's file hashes, or the commits of the hub
    snapshot its files came from (with the codec's own repository when the checkpoint points to a pretrained one,
    as MusicGen's does to ``facebook/encodec_32khz``); ``None`` when a file's origin is unknown (the adapter then
    hashes its tensors)."""
    if Path(model_id).is_dir():
        return folder_digest(model_id)
    from audiocraft.models.loaders import get_audiocraft_cache_dir
    from huggingface_hub import try_to_load_from_cache

    commits: dict[str, str | None] = {}
    for filename in CHECKPOINT_FILES:
        try:
            path = try_to_load_from_cache(model_id, filename, cache_dir=get_audiocraft_cache_dir())
        except (ValueError, OSError):  # not a valid repository id
            path = None
        commits[filename] = hub_snapshot_commit(path) if isinstance(path, str) else None
    if not all(commits.values()):
        return None
    codec = getattr(getattr(compression_model, "model", None), "config", None)  # HFEncodecCompressionModel
    commits["codec"] = getattr(codec, "_commit_hash", None)
    return digest_of("hub", commits)


#: Prefix of the names :func:`~cae.models.base.load_model` loads with audiocraft.
PREFIX = "audiocraft:"


def load_audiocraft(name: str, **kwargs: Any) -> AudiocraftMusicGen:
    """:meth:`AudiocraftMusicGen.from_pretrained` on ``name`` without its ``audiocraft:`` prefix."""
    return AudiocraftMusicGen.from_pretrained(name.removeprefix(PREFIX), **kwargs)


register_backend("audiocraft", lambda name: name.startswith(PREFIX), load_audiocraft, priority=10,
                 describe="'audiocraft:<id>'")
