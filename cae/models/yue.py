"""YuE's stage-2 model (``m-a-p/YuE-s2-1B-general``) on X-Codec tokens: the paper's fifth model (its §3.2).

YuE generates music in two stages. Stage 1 writes the first X-Codec codebook (with lyrics and text); stage 2, a
LLaMA decoder, writes codebooks 1–7 given codebook 0. Both read one flat stream of ids over a vocabulary shared
with text: codebook ``k``'s code ``c`` is id ``45334 + 1024·k + c`` and a frame's 8 ids follow each other
("frame-major": ``c0 c1 … c7`` of frame 0, then of frame 1, ...). :func:`codes_to_ids` / :func:`ids_to_codes`
convert ``[B, 8, F]`` codes to ``[B, 8F]`` ids and back.

Two alignments, each scoring ``nll[k, f] = -log p(codes[k, f] | context)`` with a float32 log-softmax over the
whole vocabulary (the model's own distribution, as its training loss measures it):

* ``"stage2"`` (default; what the model predicts in the way YuE uses it, YuE's ``inference/infer.py``): the clip is
  cut into segments of 300 frames (6 s; the last one shorter), and each segment is scored as YuE's stage 2 reads it::

      <SOA> <stage_1> c0(0) … c0(n-1) <stage_2> c0(0) c1(0) … c7(0) c0(1) c1(1) … c7(n-1)

  the segment's whole codebook 0 as a prompt, then frame by frame codebook 0 given again and codebooks 1–7
  predicted. One causal forward pass per segment gives every prediction of YuE's teacher-forced loop at once.
  Codebook 0 is never predicted by stage 2 (it is stage 1's output): its row is NaN. Segments do not see each
  other, as in YuE. Values are indexed by their true (codebook, frame).
* ``"paper"``: the authors' computation (GitHub YoEv/noiseloss): the flat ids of the whole clip with no prompt,
  next-token cross-entropy, so every token but the first is scored given all earlier ids (``nll[0, 0]`` is NaN).
  The per-token values are theirs exactly (up to their float16); they index them by true (codebook, frame).
  The authors' own per-frame curve averaged 8 *consecutive losses*, which, because the first id is never a
  target, puts codebooks 1–7 of frame ``t`` with codebook 0 of frame ``t + 1``: :func:`paper_frame_curve`
  reproduces it. The notebooks group by true frame under both alignments (the token mask and the regions are
  anchored on frames); the two differ by one token of eight moved to the neighbouring frame.

Where the authors' codec differs from YuE's: their script built the codec with ``D = 128`` (the published config
has 256) and loaded the checkpoint with ``strict=False`` from keys the checkpoint does not use (``model`` /
``state_dict``; YuE loads ``codec_model``), so it probably loaded no codec weight at all. ``cae`` builds the
published configuration and loads strictly (:mod:`cae.models.xcodec`).

Names: ``"m-a-p/YuE-s2-1B-general@random"`` builds both at real size with seeded random weights, offline (the LM
from the shipped ``configs/yue-s2-1b.json``, the codec from ``configs/xcodec-mini.json``); ``"m-a-p/YuE-s2-1B-general"``
(or ``"yue:<folder>"``) loads real weights from the HF cache or a folder, with the codec from ``codec=<folder>``,
``$CAE_XCODEC_DIR`` or the cached hub repository ``m-a-p/xcodec_mini_infer``; ``"tiny-yue"`` is a tiny random
model of the same layout for tests.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae.errors import ModelError
from cae.models.base import MusicLM, hub_offline, missing_weights_message, register_backend, register_model
from cae.models.layout import nll_from_logits
from cae.models.xcodec import XCodec, load_xcodec_state, random_xcodec
from cae.types import BatchCodes, BatchTokenNLL, Codes

#: The stage-2 checkpoint the paper scored, and X-Codec's hub repository.
YUE_S2 = "m-a-p/YuE-s2-1B-general"
XCODEC_REPO = "m-a-p/xcodec_mini_infer"
#: Id of codebook 0's code 0 in YuE's vocabulary; codebook ``k``'s code ``c`` is ``GLOBAL_OFFSET + 1024·k + c``.
GLOBAL_OFFSET = 45334
CODEBOOK_SIZE = 1024
NUM_CODEBOOKS = 8
#: YuE's special tokens (its ``mmtokenizer``).
SOA, EOA, STAGE_1, XCODEC_TOKEN, STAGE_2 = 32001, 32002, 32013, 32016, 32017
#: Stage 2 works on 6 s segments (300 frames at 50 Hz).
SEGMENT_FRAMES = 300
#: Positions whose logits are computed at once (the 83,840-wide logits of a 15 s clip would take 2 GB).
LOGIT_CHUNK = 1024


def codes_to_ids(codes: torch.Tensor) -> torch.Tensor:
    """``[B, K, F]`` codes → ``[B, F·K]`` YuE ids, frame-major (YuE's ``npy2ids``).

    >>> codes_to_ids(torch.tensor([[[0, 1], [2, 3]]])).tolist()   # K=2 codebooks, F=2 frames
    [[45334, 46360, 45335, 46361]]
    """
    k = torch.arange(codes.shape[1], device=codes.device)[:, None]
    return (codes + GLOBAL_OFFSET + CODEBOOK_SIZE * k).transpose(1, 2).reshape(codes.shape[0], -1)


def ids_to_codes(ids: torch.Tensor, num_codebooks: int = NUM_CODEBOOKS) -> torch.Tensor:
    """``[B, F·K]`` YuE ids → ``[B, K, F]`` codes (YuE's ``ids2npy``); refuses ids outside their codebook's range."""
    if ids.shape[-1] % num_codebooks:
        raise ValueError(f"{ids.shape[-1]} ids are not whole frames of {num_codebooks} codebooks")
    codes = ids.reshape(ids.shape[0], -1, num_codebooks).transpose(1, 2)
    codes = codes - GLOBAL_OFFSET - CODEBOOK_SIZE * torch.arange(num_codebooks, device=ids.device)[:, None]
    if int(codes.min()) < 0 or int(codes.max()) >= CODEBOOK_SIZE:
        raise ValueError("ids outside their codebook's range (not frame-major xcodec ids starting at codebook 0)")
    return codes


def stage2_sequence(codes: torch.Tensor) -> torch.Tensor:
    """One segment ``[B, K, n]`` → YuE's stage-2 input ``[B, 3 + n + K·n]`` (module docstring)."""
    b, _, n = codes.shape
    ids = codes_to_ids(codes)
    head = torch.tensor([SOA, STAGE_1], device=codes.device).expand(b, 2)
    return torch.cat([head, ids[:, :: codes.shape[1]][:, :n], torch.full((b, 1), STAGE_2, device=codes.device), ids], 1)


def segments(frames: int, length: int = SEGMENT_FRAMES) -> list[tuple[int, int]]:
    """YuE's stage-2 segments of a clip: whole ``length``-frame pieces, then the rest.

    >>> segments(750)
    [(0, 300), (300, 600), (600, 750)]
    """
    return [(a, min(a + length, frames)) for a in range(0, frames, length)]


def paper_frame_curve(nll: torch.Tensor) -> torch.Tensor:
    """The authors' per-frame curve from ``"paper"``-alignment NLL ``[K, F]``: their flat losses (targets 1 …
    ``K·F − 1``), cut to a multiple of ``K`` and averaged in groups of ``K`` consecutive losses → ``[F − 1]``.
    Group ``t`` holds codebooks 1…K−1 of frame ``t`` and codebook 0 of frame ``t + 1``."""
    k = nll.shape[0]
    flat = nll.T.reshape(-1)[1:]
    return flat[: flat.shape[0] // k * k].reshape(-1, k).mean(1)


class YuE(MusicLM):
    """YuE's stage-2 LM on X-Codec tokens (module docstring)."""

    backend = "yue"
    sample_rate = 16000
    frame_rate = 50.0
    num_codebooks = NUM_CODEBOOKS
    card = CODEBOOK_SIZE
    alignments = ("stage2", "paper")
    slow_path_reason = ("YuE's stage 2 is a LLaMA decoder over one flat id stream and X-Codec's HuBERT attends over "
                        "the whole clip, so neither the MusicGen prefix scorer nor the incremental EnCodec applies")

    def __init__(self, lm: Any, codec: XCodec | None, *, model_id: str = YUE_S2, revision: str | None = None,
                 alignment: str = "stage2", device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, batch_size: int = 1, segment_frames: int = SEGMENT_FRAMES,
                 random_weights: bool = False):
        self._setup(model_id=model_id, revision=revision, alignment=alignment, device=device, dtype=dtype,
                    batch_size=batch_size)
        vocab = int(lm.config.vocab_size)
        if vocab < GLOBAL_OFFSET + CODEBOOK_SIZE * NUM_CODEBOOKS:
            raise ModelError(f"{model_id}: vocabulary of {vocab} ids has no room for 8 xcodec codebooks")
        self.lm = lm.to(self.device, self.dtype).eval()
        # the codec runs in float32: tokens must not depend on the LM's precision
        self.codec = None if codec is None else codec.to(self.device, torch.float32).eval()
        self.segment_frames = int(segment_frames)
        self.random_weights = random_weights
        # stage 2 was trained on 6 s segments: the stage2 alignment cuts the clip into them; the paper alignment's
        # one flat stream over the whole clip is longer than any sequence the model saw (a warning past 300 frames)
        self.context_frames = None if alignment == "stage2" else SEGMENT_FRAMES

    def _encode(self, wav: torch.Tensor) -> BatchCodes:
        if self.codec is None:
            raise ModelError(f"{self.model_id}: no codec loaded; score codes with token_nll instead")
        return self.codec.encode(wav, self.num_codebooks)

    def decode(self, codes: Codes) -> np.ndarray:
        if self.codec is None:
            raise ModelError(f"{self.model_id}: no codec loaded")
        with torch.inference_mode():
            out = self.codec.decode(torch.as_tensor(codes).long()[None].to(self.device))
        return out[0].float().cpu().numpy()

    def _generate(self, num_samples: int, frames: int, top_k: int, temperature: float, seed: Any) -> BatchCodes:
        raise ModelError(
            f"{self.model_id}: YuE's stage 2 does not generate music on its own (codebook 0 comes from its 7B stage-1 "
            "model, which cae does not run); give the Generated kind as a folder of YuE's outputs "
            "(datasets: {generated: path/to/folder}) or sampled by another model ('generated:<model name>')")

    def conditioning(self, prompt: str | None = None) -> str:
        return "codebook0" if self.alignment == "stage2" else "none"

    def _scored(self, ids: torch.Tensor, first: int) -> torch.Tensor:
        """``-log p(ids[:, p] | ids[:, :p])`` for ``p ≥ first`` → float32 ``[B, S - first]``."""
        hidden = self.lm.model(input_ids=ids).last_hidden_state
        out = []
        for s in range(first - 1, ids.shape[1] - 1, LOGIT_CHUNK):
            e = min(s + LOGIT_CHUNK, ids.shape[1] - 1)
            out.append(nll_from_logits(self.lm.lm_head(hidden[:, s:e]), ids[:, s + 1 : e + 1]))
        return torch.cat(out, 1)

    def _token_nll(self, codes: BatchCodes, prompt: str | None) -> BatchTokenNLL:
        if prompt is not None:
            raise ModelError(f"{self.model_id}: YuE's stage 2 takes no text prompt")
        b, k, f = codes.shape
        out = torch.full((b, k, f), float("nan"), device=codes.device)
        if self.alignment == "paper":
            flat = torch.cat([torch.full((b, 1), float("nan"), device=codes.device), self._scored(codes_to_ids(codes), 1)], 1)
            return flat.reshape(b, f, k).transpose(1, 2)
        for a, e in segments(f, self.segment_frames):
            n = e - a
            nll = self._scored(stage2_sequence(codes[:, :, a:e]), 3 + n).reshape(b, n, k).transpose(1, 2)
            out[:, 1:, a:e] = nll[:, 1:]
        return out


# ---- building and loading -------------------------------------------------------------------------------------------
def lm_config(name: str = "yue-s2-1b.json", **overrides: Any) -> Any:
    """transformers ``LlamaConfig`` of the stage-2 LM from the shipped config (its ``_sources`` say where each value
    comes from)."""
    from transformers import LlamaConfig

    cfg = json.loads(resources.files("cae.models").joinpath("configs", name).read_text())
    cfg.pop("_sources", None)
    cfg.pop("architectures", None)
    cfg.pop("model_type", None)
    cfg.update(overrides)
    return LlamaConfig(**cfg)


def lm_parameters(cfg: Any) -> int:
    """Parameters of a LLaMA decoder counted from its config: embeddings, per layer the four attention projections,
    the three feed-forward matrices and two RMSNorm weights, the final norm and the (untied) output head."""
    d, ff, v, n = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.num_hidden_layers
    kv = d // cfg.num_attention_heads * cfg.num_key_value_heads
    layer = d * d * 2 + d * kv * 2 + 3 * d * ff + 2 * d
    return v * d + n * layer + d + (0 if cfg.tie_word_embeddings else v * d)


def _random_lm(cfg: Any, seed: int) -> Any:
    from transformers import LlamaForCausalLM

    from cae.models.tiny import _quiet_transformers

    torch.manual_seed(seed)
    with _quiet_transformers():
        return LlamaForCausalLM(cfg).eval()


#: Version of how :func:`build_random` draws weights from a seed; part of the weights digest (bump on any change).
GENERATOR_VERSION = 1


def random_weights_digest(name: str, seed: int, configs: tuple[str, ...] = ("yue-s2-1b.json", "xcodec-mini.json"),
                          extra: Any = None) -> str:
    """``"random:<hex>"``: the recipe of seeded random weights (configs, seed, generator version, library versions)."""
    from cae.models.weights import digest_of
    from cae.provenance import versions

    return digest_of("random", {
        "model_id": name, "seed": int(seed), "generator": GENERATOR_VERSION, "extra": extra,
        "configs": {f: resources.files("cae.models").joinpath("configs", f).read_text() for f in configs},
        "versions": {k: versions().get(k) for k in ("torch", "transformers")},
    })


def build_random(name: str = f"{YUE_S2}@random", *, seed: int = 0, revision: str | None = None, **kwargs: Any) -> YuE:
    """The stage-2 LM and X-Codec at their published sizes with weights drawn from ``seed`` (offline)."""
    if revision is not None:
        raise ModelError(f"{name}: an @random model has no revision (its weights come from seed=)")
    out = YuE(_random_lm(lm_config(), seed), random_xcodec(seed + 1), model_id=name, revision=f"random:seed={seed}",
              random_weights=True, **kwargs)
    out.set_weights_digest(random_weights_digest(name, seed))
    return out


#: The tiny test model: the real token layout and vocabulary, a 2-layer LM 16 wide, a codec 4 filters wide.
TINY_LM = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
               max_position_embeddings=8192)
TINY_CODEC = {"sample_rate": 16000, "ratios": [8, 5, 4, 2], "n_filters": 4, "acoustic_width": 4, "D": 8, "bins": 1024,
              "n_q": 8, "decoder_channels": 32,
              "semantic": {"model_type": "hubert", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 32, "conv_dim": [8] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
                           "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": False, "feat_extract_norm": "group",
                           "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}}


def build_tiny(*, seed: int = 0, **kwargs: Any) -> YuE:
    """``"tiny-yue"``: YuE's layout and vocabulary at toy size, random weights (tests and smoke runs)."""
    kwargs.setdefault("model_id", "tiny-yue")
    kwargs.pop("revision", None)
    out = YuE(_random_lm(lm_config(**TINY_LM), seed), random_xcodec(seed + 1, TINY_CODEC), revision=f"random:seed={seed}",
              **kwargs)
    out.set_weights_digest(random_weights_digest("tiny-yue", seed, ("yue-s2-1b.json",), [TINY_LM, TINY_CODEC]))
    return out


def _xcodec_folder(codec: str | os.PathLike[str] | None) -> Path:
    if codec is None:
        codec = os.environ.get("CAE_XCODEC_DIR")
    if codec is None:
        try:
            from huggingface_hub import snapshot_download

            codec = snapshot_download(XCODEC_REPO, local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any failure means: not in the cache
            raise ModelError(missing_weights_message(XCODEC_REPO, "transformers", e)
                             + "\nOr pass codec=<folder of xcodec_mini_infer> / set CAE_XCODEC_DIR.") from e
    return Path(codec)


def load_xcodec(folder: str | os.PathLike[str]) -> XCodec:
    """X-Codec from an ``xcodec_mini_infer`` folder: ``final_ckpt/config.yaml`` (the generator's settings),
    ``final_ckpt/*.pth`` (the state dict under ``codec_model``), ``semantic_ckpts/hf_1_325000`` (HuBERT's config, and
    its weights when the checkpoint lacks them). Strict: names every missing or unexpected key."""
    import yaml

    from cae.models.xcodec import config as shipped

    root = Path(folder)
    cfg_file = root / "final_ckpt" / "config.yaml"
    ckpts = sorted((root / "final_ckpt").glob("*.pth"))
    if not cfg_file.is_file() or not ckpts:
        raise ModelError(f"{root}: not an xcodec_mini_infer folder (needs final_ckpt/config.yaml and final_ckpt/*.pth)")
    gen = (yaml.safe_load(cfg_file.read_text()) or {}).get("generator", {}).get("config", {})
    cfg = shipped()
    for ours, theirs in (("D", "D"), ("ratios", "ratios"), ("bins", "bins"), ("sample_rate", "sample_rate"),
                         ("n_filters", "n_filters")):
        if theirs in gen:
            cfg[ours] = gen[theirs]
    semantic_dir = root / "semantic_ckpts" / "hf_1_325000"
    if (semantic_dir / "config.json").is_file():
        sem = json.loads((semantic_dir / "config.json").read_text())
        cfg["semantic"] = {k: v for k, v in sem.items() if not k.startswith("_") and k not in ("architectures",
                                                                                              "transformers_version")}
    try:
        blob = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # pickled with training objects besides the tensors: trusted local file
        warnings.warn(f"{ckpts[-1]}: not a tensors-only checkpoint; loading it with pickle (trust the file)",
                      stacklevel=2)
        blob = torch.load(ckpts[-1], map_location="cpu", weights_only=False)
    if "codec_model" not in blob:
        raise ModelError(f"{ckpts[-1]}: no 'codec_model' entry (keys: {sorted(blob)[:10]})")
    state = dict(blob["codec_model"])
    codec = XCodec(cfg)
    if not any(k.startswith("semantic_model.") for k in state):
        from transformers import HubertModel

        hubert = HubertModel.from_pretrained(semantic_dir, local_files_only=True)
        state.update({f"semantic_model.{k}": v for k, v in hubert.state_dict().items()})
    load_xcodec_state(codec, state, source=str(ckpts[-1]))
    return codec.eval()


def load_pretrained(name: str, *, codec: str | os.PathLike[str] | None = None, revision: str | None = None,
                    **kwargs: Any) -> YuE:
    """The real stage-2 LM (hub id from the HF cache, or a folder) and X-Codec (see :func:`load_xcodec`)."""
    from transformers import AutoModelForCausalLM

    source = name.removeprefix("yue:")
    tries = [True] if hub_offline() or Path(source).is_dir() else [True, False]
    lm, err = None, None
    for local in tries:
        try:
            lm = AutoModelForCausalLM.from_pretrained(source, revision=revision, local_files_only=local,
                                                      dtype=torch.float32)
            break
        except OSError as e:
            err = e
    if lm is None:
        raise ModelError(missing_weights_message(source, "transformers", err or OSError("not found")))
    from cae.models.weights import digest_of, folder_digest

    commit = getattr(lm.config, "_commit_hash", None)
    codec_dir = _xcodec_folder(codec)
    out = YuE(lm, load_xcodec(codec_dir), model_id=source, revision=revision or commit, **kwargs)
    lm_digest = folder_digest(source) if Path(source).is_dir() else f"hub:{commit}"
    out.set_weights_digest(digest_of("files", {"lm": lm_digest, "codec": folder_digest(codec_dir)}))
    return out


def is_yue_name(name: str) -> bool:
    """Names of this backend: ``yue:<folder or id>`` and YuE stage-2 hub ids (``@random`` or not)."""
    return name.startswith("yue:") or name.removesuffix("@random").split("/")[-1].lower().startswith("yue-s2")


def load_yue(name: str, **kwargs: Any) -> YuE:
    if name.endswith("@random"):
        if name.removesuffix("@random") != YUE_S2:
            raise ModelError(f"no shipped architecture for {name!r}; known: {YUE_S2}@random")
        return build_random(name, **kwargs)
    return load_pretrained(name, **kwargs)


register_backend("yue", is_yue_name, load_yue, priority=25, describe=f"'{YUE_S2}[@random]', 'yue:<folder>'")
register_model("tiny-yue", build_tiny, overwrite=True)
