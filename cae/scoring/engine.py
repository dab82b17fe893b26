"""Score one clip under many perturbations, fast and exactly: clean work once, perturbed work batched and reused.

For a clip and a model, :class:`ClipEngine`

1. encodes the clean audio and scores its tokens **once** (keeping what the perturbed conditions reuse: the
   encoder's intermediate features and LSTM states, the decoder's KV cache);
2. for a batch of perturbed waveforms, re-encodes them:

   * transformers EnCodec: incrementally (:class:`~cae.scoring.encoder.IncrementalEncodec`): only the frames a
     perturbation can reach are recomputed, mathematically exactly;
   * any other codec: the adapter's ``encode`` on waves stacked ``[B, N]`` (equal lengths together);

3. scores the perturbed tokens:

   * transformers MusicGen without a prompt: the clean KV cache is reused up to the first step whose logits or
     scored token can differ (:class:`~cae.scoring.prefix.PrefixScorer`), suffixes batched;
   * otherwise: the adapter's ``token_nll`` on codes stacked ``[B, K, F]``.

Each path computes the same quantity as ``model.token_nll(model.encode(p.apply(wav)))`` (the reference pipeline of
:func:`cae.scoring.naive.score_clips`); differences are floating-point summation order (module docstrings of
:mod:`~cae.scoring.prefix` and :mod:`~cae.scoring.encoder`). On a GPU, give the model ``dtype="float16"`` (or
``"bfloat16"``): weights and activations run in half precision with SDPA attention (transformers' default), the
log-softmax always in float32 (:func:`cae.models.layout.nll_from_logits`).
"""

from __future__ import annotations

import warnings

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from cae.errors import CaeError
from cae.models.base import MusicLM
from cae.scoring.encoder import IncrementalEncodec, supports_incremental_encoding
from cae.scoring.prefix import PrefixScorer, supports_prefix_reuse
from cae.types import Codes, TokenNLL, Wave

__all__ = ["ClipEngine", "EngineCache", "EngineOptions", "Scored", "engine_bytes", "engines_of"]

#: Errors that mean "this input cannot be scored" (recorded in a row); anything else propagates.
DATA_ERRORS: tuple[type[BaseException], ...] = (CaeError, ValueError, OSError)


_SLOW_NOTED: set[str] = set()


def _note_slow_path(model: MusicLM) -> None:
    """Say once per model id that it is scored without the engine's fast paths, and why."""
    if model.model_id in _SLOW_NOTED:
        return
    _SLOW_NOTED.add(model.model_id)
    warnings.warn(f"{model.model_id}: every unit is encoded and scored in full (no prefix reuse, no incremental "
                  f"encoding): {model.slow_path_reason}", stacklevel=3)


@dataclass(frozen=True)
class EngineOptions:
    """How :class:`ClipEngine` computes; none of these change results beyond floating-point rounding.

    Attributes:
        batch_size: perturbed conditions per batch (default: the model's ``batch_size``).
        reuse_prefix: reuse the clean KV cache (transformers MusicGen, no prompt).
        incremental_encoder: re-encode only what a perturbation reaches (transformers EnCodec).
        lstm_batch: conditions per LSTM run in the incremental encoder (``None``: 1 on the CPU, the model's own
            batch-of-one LSTM arithmetic; 64 on a GPU). See :mod:`cae.scoring.encoder` on rounding and ties.
        lstm_threads: CPU threads for the encoder's LSTM recurrence (``None``: torch's setting).
    """

    batch_size: int | None = None
    reuse_prefix: bool = True
    incremental_encoder: bool = True
    lstm_batch: int | None = None
    lstm_threads: int | None = 1


@dataclass
class Scored:
    """One condition's result: codes ``[K, F]`` and NLL ``[K, F]`` (CPU), or an error message."""

    codes: Codes | None = None
    nll: TokenNLL | None = None
    error: str | None = None


@dataclass
class EngineStats:
    """Counts of what a :class:`ClipEngine` ran (for tests and the benchmark)."""

    encode_calls: int = 0
    score_calls: int = 0
    conditions: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class ClipEngine:
    """Clean computation for one clip, then batches of perturbed versions (module docstring).

    Args:
        model: any :class:`~cae.models.base.MusicLM`.
        wav: the clean clip, float32 ``[N]`` at ``model.sample_rate``.
        prompt: text condition (``None``: the null condition).
        options: :class:`EngineOptions`.
        clean: the clean tokens ``[K, F]`` and NLL ``[K, F]`` when already known (a cached clean unit): the clean
            pass then runs only when a perturbation can reuse it (incremental encoding, a shared decoder prefix), so
            conditions that change the clip from its first frame (pure noise, a length change near the start) cost
            no clean pass. The results are the same bits either way: the deferred parts are computed as they would
            have been.

    Attributes:
        clean_codes: LongTensor ``[K, F]``.
        clean_nll: float32 ``[K, F]``.

    Raises:
        Whatever encoding or scoring the clean clip raises (e.g. ``ValueError`` for a clip under 2 frames).
    """

    def __init__(self, model: MusicLM, wav: Wave, *, prompt: str | None = None,
                 options: EngineOptions | None = None, clean: tuple[Codes, TokenNLL] | None = None):
        self.model = model
        self.prompt = prompt
        self.options = options or EngineOptions()
        self.stats = EngineStats()
        self.wav = np.asarray(wav, dtype=np.float32)
        known_codes, known_nll = (None, None) if clean is None else (
            torch.tensor(np.asarray(clean[0]), dtype=torch.long), torch.tensor(np.asarray(clean[1]), dtype=torch.float32))
        self._encoder: IncrementalEncodec | None = None
        if self.options.incremental_encoder and supports_incremental_encoding(model):
            self._encoder = IncrementalEncodec(model, lstm_batch=self.options.lstm_batch,
                                               threads=self.options.lstm_threads)
            if known_codes is None:
                self.clean_codes = self._encoder.encode_clean(self.wav)
            else:
                self._encoder.set_clean(self.wav, known_codes)
                self.clean_codes = known_codes
        else:
            self.clean_codes = model.encode(self.wav, model.sample_rate) if known_codes is None else known_codes
        self.stats.encode_calls += known_codes is None
        self._scorer: PrefixScorer | None = None
        if self.options.reuse_prefix and not getattr(model, "capabilities", ()):
            _note_slow_path(model)
        if self.options.reuse_prefix and supports_prefix_reuse(model, prompt):
            self._scorer = PrefixScorer(model, self.clean_codes, clean_nll=known_nll)
            self.clean_nll = self._scorer.clean_nll
        else:
            self.clean_nll = (model.token_nll(self.clean_codes, prompt=prompt) if known_nll is None else known_nll)
        self.stats.score_calls += known_nll is None

    @property
    def batch_size(self) -> int:
        return self.options.batch_size or self.model.batch_size

    # ---- encoding -------------------------------------------------------------------------------------------------
    def encode(self, waves: Sequence[Wave]) -> list[Codes]:
        """Tokens of perturbed versions of the clip: LongTensors ``[K, F_i]`` equal to ``model.encode(w)``."""
        self.stats.encode_calls += 1
        if self._encoder is not None:
            return self._encoder.encode(waves)
        out: list[Codes | None] = [None] * len(waves)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(waves):
            groups.setdefault(len(w), []).append(i)
        for idx in groups.values():
            for lo in range(0, len(idx), self.batch_size):
                part = idx[lo : lo + self.batch_size]
                codes = self.model.encode(np.stack([waves[i] for i in part]), self.model.sample_rate)
                for j, i in enumerate(part):
                    out[i] = codes[j]
        return out  # type: ignore[return-value]

    # ---- scoring --------------------------------------------------------------------------------------------------
    def token_nll(self, codes: Sequence[Codes]) -> list[TokenNLL]:
        """Per-token NLL of perturbed codes: float32 ``[K, F_i]`` equal to ``model.token_nll(c)``."""
        self.stats.score_calls += 1
        if self._scorer is not None:
            return self._scorer.score(codes, batch_size=self.batch_size)
        out: list[TokenNLL | None] = [None] * len(codes)
        groups: dict[int, list[int]] = {}
        for i, c in enumerate(codes):
            groups.setdefault(int(c.shape[-1]), []).append(i)
        for idx in groups.values():
            nll = self.model.token_nll(torch.stack([codes[i] for i in idx]), prompt=self.prompt,
                                       batch_size=self.batch_size)
            for j, i in enumerate(idx):
                out[i] = nll[j]
        return out  # type: ignore[return-value]

    def score(self, waves: Sequence[Wave | None]) -> list[Scored]:
        """Encode and score a batch of perturbed waves (``None`` entries are skipped and come back empty).

        A batch that fails is retried one wave at a time, so that one unusable wave (say, too short to encode)
        gives one error and the others still get scored.
        """
        todo = [i for i, w in enumerate(waves) if w is not None]
        out = [Scored() for _ in waves]
        self.stats.conditions += len(todo)
        try:
            codes = self.encode([waves[i] for i in todo])  # type: ignore[misc]
            nll = self.token_nll(codes)
            for j, i in enumerate(todo):
                out[i] = Scored(codes[j], nll[j])
            return out
        except DATA_ERRORS as e:
            if len(todo) == 1:
                out[todo[0]] = Scored(error=f"{type(e).__name__}: {e}")
                return out
        for i in todo:
            try:
                [c] = self.encode([waves[i]])  # type: ignore[list-item]
                [n] = self.token_nll([c])
                out[i] = Scored(c, n)
            except DATA_ERRORS as e:
                out[i] = Scored(error=f"{type(e).__name__}: {e}")
        return out


def engine_bytes(engine: ClipEngine) -> int:
    """Memory an engine holds for reuse: the clean wave, the incremental encoder's features and LSTM states, the
    clean tokens and NLL, and the decoder's clean key/value cache."""
    tensors: list[torch.Tensor] = [engine.clean_codes, engine.clean_nll]
    enc = engine._encoder._clean if engine._encoder is not None else None
    if enc is not None:
        tensors += [t for t in (enc.wav, enc.z, enc.y, enc.codes) if t is not None]
        tensors += [t for state in (enc.states or {}).values() if state is not None for t in state]
    if engine._scorer is not None:
        tensors += [t for kv in engine._scorer._kv or [] for t in kv]
    return int(engine.wav.nbytes) + sum(int(t.nelement() * t.element_size()) for t in tensors)


class EngineCache:
    """Clip engines of one model kept between sweeps, least recently used first out, within ``budget_bytes``.

    A notebook often sweeps the same clips several times (one sweep per shuffle variant, noise level or colour);
    each sweep would otherwise redo every clip's clean pass (encode, score, keep the key/value cache). An engine
    depends only on the model, the clip's bytes, the prompt and the :class:`EngineOptions`, and scoring never
    changes it, so a kept engine gives exactly the results a fresh one gives.

    Each model object carries its own cache (:func:`engines_of`), so the engines live and die with the model (an
    engine refers to its model, so a dropped model and its engines go at Python's next cyclic garbage collection),
    and two models can never share one; the key also holds the model's alignment, dtype and device, in case one is
    changed in place. ``budget_bytes`` bounds what one model keeps (default: ``$CAE_ENGINE_CACHE_MB`` MiB, else 2048
    on the CPU and 256 on an accelerator, whose memory is scarcer); an engine larger than the budget is not kept (a
    real MusicGen checkpoint's key/value cache is 100+ MB per clip, so few of those are kept).
    """

    def __init__(self, budget_bytes: int | None = None, *, device: str = "cpu"):
        import os
        import threading
        from collections import OrderedDict

        if budget_bytes is None:
            default = "2048" if device == "cpu" else "256"
            budget_bytes = int(float(os.environ.get("CAE_ENGINE_CACHE_MB", default)) * 2**20)
        self.budget = int(budget_bytes)
        self._items: OrderedDict[tuple, tuple[ClipEngine, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._held()

    def _held(self) -> int:
        return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(self, model: MusicLM, clip_sha256: str, wav: Wave, *, prompt: str | None = None,
            options: EngineOptions | None = None, clean: tuple[Codes, TokenNLL] | None = None) -> ClipEngine:
        """The engine for (clip, prompt, options) of ``model`` (the model this cache belongs to): kept from an
        earlier sweep, or built now (with ``clean``, see :class:`ClipEngine`) and kept."""
        options = options or EngineOptions()
        key = (clip_sha256, prompt, options, model.alignment, str(model.dtype), str(model.device))
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return item[0]
            self.misses += 1
        engine = ClipEngine(model, wav, prompt=prompt, options=options, clean=clean)
        size = engine_bytes(engine)
        if size <= self.budget:
            with self._lock:
                self._items[key] = (engine, size)
                while self._held() > self.budget:
                    self._items.popitem(last=False)
        return engine

    def __getstate__(self) -> dict:  # a model sent to a worker travels without its engines
        return {"budget": self.budget, "hits": 0, "misses": 0}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["budget"])  # type: ignore[misc]


_ATTRIBUTE = "_cae_engine_cache"


def engines_of(model: MusicLM) -> EngineCache:
    """The :class:`EngineCache` of ``model`` (created on first use, stored on the model object)."""
    cache = model.__dict__.get(_ATTRIBUTE)
    if cache is None:
        cache = model.__dict__.setdefault(_ATTRIBUTE, EngineCache(device=model.device.type))
    return cache
