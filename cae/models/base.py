"""The model adapter protocol, the registries of model names and of backends, and :func:`load_model`.

An adapter turns audio into codec tokens (:meth:`MusicLM.encode`) and scores every token
(:meth:`MusicLM.token_nll`): ``nll[k, f] = -log p(codes[k, f] | what the model conditions on)`` in nats, computed
with a float32 log-softmax whatever the model's dtype, NaN where the model makes no prediction. A new model is one
subclass plus one :func:`register_model` call; see the book's "adding a model" page.

Names resolve in two ways. A *registered name* (:func:`register_model`, or a provider of names known only at run
time, :func:`register_provider`) maps to a factory. Any other name goes to the first *backend*
(:func:`register_backend`) that takes it: a predicate on the name and a loader, e.g. every ``audiocraft:<id>``. This
module imports no backend; each backend module registers itself when imported and :mod:`cae.models` imports them
all, so the package (always run before any of its modules) makes every name loadable.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cae.audio import resample
from cae.errors import ModelError
from cae.models.layout import ALIGNMENTS
from cae.types import BatchCodes, BatchTokenNLL, Codes, TokenNLL


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """``None`` → float32; a name such as ``"bfloat16"`` → that floating torch dtype.

    >>> resolve_dtype("bfloat16"), resolve_dtype(None)
    (torch.bfloat16, torch.float32)
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    out = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(out, torch.dtype) or not out.is_floating_point:
        raise ModelError(f"dtype must be a floating torch dtype such as 'float32' or 'bfloat16', got {dtype!r}")
    return out


#: What every adapter must declare (:class:`MusicLM`).
DECLARED: tuple[str, ...] = ("sample_rate", "frame_rate", "num_codebooks", "card")


class UndeclaredAttributeError(ModelError, AttributeError):
    """An adapter was used without declaring one of :data:`DECLARED` (``hasattr`` sees it as missing)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a result row records about the model that produced it."""

    model_id: str
    backend: str
    revision: str | None
    alignment: str
    dtype: str
    conditioning: str
    sample_rate: int
    frame_rate: float
    num_codebooks: int
    card: int
    #: :meth:`MusicLM.weights_digest`: what identifies the weights (``"<kind>:<hex>"``, :mod:`cae.models.weights`).
    weights: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d.update(self.extra)
        return d


class MusicLM(abc.ABC):
    """Base class of model adapters: audio → codes → per-token NLL.

    Subclasses set the attributes below in ``__init__`` and implement :meth:`_encode` and :meth:`_token_nll`
    on batched tensors; this class handles shapes, validation, resampling and batching.
    """

    model_id: str = "unknown"
    backend: str = "unknown"
    revision: str | None = None
    #: What the model's tokens are, declared by every adapter (a class attribute or set in ``__init__``); nothing
    #: is inherited, so an adapter at 24 kHz or 75 frames/s cannot silently run with MusicGen's values. Reading one
    #: that was never set raises :class:`UndeclaredAttributeError` naming the adapter and the attribute.
    sample_rate: int  #: audio samples per second that :meth:`_encode` takes
    frame_rate: float  #: codec frames per second (the time axis of ``[K, F]``; seconds ↔ frames)
    num_codebooks: int  #: ``K``
    card: int  #: codes per codebook (token values lie in ``[0, card)``)
    alignment: str = "delay"
    #: The alignments this adapter scores (its first is its own, corrected layout); others are refused.
    alignments: tuple[str, ...] = ALIGNMENTS
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    #: Default number of clips per forward pass in :meth:`token_nll`.
    batch_size: int = 8
    #: Longest sequence (frames) the model was trained on, when known; longer clips are scored with a warning.
    context_frames: int | None = None
    #: ``_generate`` accepts a list of per-clip seeds (one batch); otherwise :meth:`generate` calls it per seed.
    batched_generation: bool = False
    #: Exact fast paths of the sweep engine this adapter offers (:mod:`cae.scoring.engine`): ``"prefix_reuse"``
    #: (score a perturbed clip only from its first changed position, attending to the clean clip's cached keys and
    #: values: :class:`cae.scoring.prefix.PrefixScorer`, which reads a transformers MusicGen decoder) and
    #: ``"incremental_encoding"`` (re-encode only what a perturbation reaches:
    #: :class:`cae.scoring.encoder.IncrementalEncodec`, which reads a transformers EnCodec). An adapter without
    #: them is scored in full, unit by unit, and the engine says so once, with :attr:`slow_path_reason`.
    capabilities: frozenset[str] = frozenset()
    #: Why an adapter has no fast path (shown once by the engine when it scores on the slow path).
    slow_path_reason: str = "the adapter declares no fast path (capabilities)"
    #: The weights are seeded random draws (an ``@random`` architecture, :mod:`cae.models.published`): the losses
    #: exercise the code at real size but mean nothing about music. Recorded in every result row it produces (its
    #: id ends in ``@random`` and ``random_weights`` is true).
    random_weights: bool = False

    def __getattr__(self, name: str) -> Any:  # only reached when normal lookup fails
        if name in DECLARED:
            raise UndeclaredAttributeError(
                f"{type(self).__name__} ({self.__dict__.get('model_id', type(self).model_id)}) does not declare "
                f"`{name}`: an adapter sets {', '.join(DECLARED)} itself (no MusicGen default is inherited)")
        parent = getattr(super(), "__getattr__", None)  # e.g. torch.nn.Module's, for an adapter that is also one
        if parent is not None:
            return parent(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- to implement -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _encode(self, wav: torch.Tensor) -> BatchCodes:
        """Encode ``[B, N]`` float32 audio at ``self.sample_rate`` on ``self.device`` → LongTensor ``[B, K, F]``."""

    @abc.abstractmethod
    def _token_nll(self, codes: BatchCodes, prompt: str | None) -> BatchTokenNLL:
        """Score ``[B, K, F]`` codes (validated, on ``self.device``) → float32 ``[B, K, F]``."""

    def conditioning(self, prompt: str | None = None) -> str:
        """How the model is conditioned when scoring, as recorded in result rows."""
        return "null" if prompt is None else f"text:{prompt}"

    def decode(self, codes: Codes) -> np.ndarray:
        """Tokens → waveform at ``self.sample_rate`` (float32 ``[N]``), where the codec can decode."""
        raise ModelError(f"{self.model_id}: this adapter cannot decode tokens to audio")

    def _generate(self, num_samples: int, frames: int, top_k: int, temperature: float,
                  seed: int | Sequence[int]) -> BatchCodes:
        """Sample ``[num_samples, K, frames]`` codes under the null condition (``seed``: one for the batch, or one
        per clip, see :meth:`generate`)."""
        raise ModelError(f"{self.model_id}: this adapter cannot generate")

    def generate(self, seconds: float, *, top_k: int = 250, temperature: float = 1.0,
                 seed: int | Sequence[int] = 0, num_samples: int = 1) -> Codes | BatchCodes:
        """Sample codes unconditionally (null condition), as the paper's "Generated" set was made (Protocol page: Models and datasets).

        Args:
            seconds: duration; ``round(seconds * frame_rate)`` frames are sampled.
            top_k: sample among the k most likely tokens (0 = all); MusicGen's default is 250.
            temperature: softmax temperature (0 = greedy).
            seed: the same seed gives the same codes. A list of seeds samples one clip per seed in one batch
                (``num_samples`` is then their number), each clip as :meth:`generate` gives it alone with its seed
                (up to the float rounding of batched forward passes; identical in the tests on the CPU).
            num_samples: clips to sample in one batch (with one seed).

        Returns:
            LongTensor ``[K, F]`` (or ``[num_samples, K, F]`` when ``num_samples > 1`` or seeds are a list) on the
            CPU.
        """
        frames = int(round(seconds * self.frame_rate))
        if frames < 1:
            raise ValueError(f"seconds={seconds} gives no frame at {self.frame_rate} frames/s")
        top_k = min(int(top_k), self.card)  # a k beyond the vocabulary means "all tokens"
        if isinstance(seed, (int, np.integer)):
            codes = self._generate(num_samples, frames, top_k, float(temperature), int(seed)).long().cpu()
            return codes[0] if num_samples == 1 else codes
        seeds = [int(s) for s in seed]
        if not seeds:
            raise ValueError("an empty list of seeds samples nothing")
        if not self.batched_generation:  # an adapter whose _generate takes one seed: one call per clip
            return torch.cat([self._generate(1, frames, top_k, float(temperature), s).long().cpu() for s in seeds])
        return self._generate(len(seeds), frames, top_k, float(temperature), seeds).long().cpu()

    def _setup(self, *, model_id: str, revision: str | None, alignment: str, device: str | torch.device | None,
               dtype: str | torch.dtype | None, batch_size: int) -> None:
        """Set the attributes every adapter shares (call first in a subclass ``__init__``)."""
        self.model_id = model_id
        self.revision = revision
        self.alignment = alignment
        self._check_alignment()
        self.device = torch.device(device or default_device())
        self.dtype = resolve_dtype(dtype)
        self.batch_size = batch_size

    # ---- public API -----------------------------------------------------------------------------------------------
    def _check_alignment(self) -> None:
        if self.alignment not in self.alignments:
            raise ModelError(f"{self.model_id}: alignment must be one of {self.alignments}, got {self.alignment!r}")

    @torch.inference_mode()
    def encode(self, wav: np.ndarray | torch.Tensor, sample_rate: int) -> Codes | BatchCodes:
        """Encode mono audio into codec tokens.

        Args:
            wav: float audio ``[N]`` (one clip) or ``[B, N]`` (clips of equal length).
            sample_rate: rate of ``wav``; resampled to :attr:`sample_rate` when different.

        Returns:
            LongTensor ``[K, F]`` for one clip, ``[B, K, F]`` for a batch (on the CPU).
        """
        arr = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
        if arr.ndim not in (1, 2):
            raise ValueError(f"wav must be [N] or [B, N] mono audio, got shape {tuple(arr.shape)}")
        single = arr.ndim == 1
        arr = np.atleast_2d(arr).astype(np.float32, copy=False)
        if arr.shape[-1] == 0:
            raise ValueError("wav is empty")
        if not np.isfinite(arr).all():
            raise ValueError("wav contains NaN or Inf samples")
        if sample_rate != self.sample_rate:
            arr = np.stack([resample(x, sample_rate, self.sample_rate) for x in arr])
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        codes = self._encode(x).long().cpu()
        return codes[0] if single else codes

    def _as_batch(self, codes: Codes | BatchCodes) -> tuple[torch.Tensor, bool]:
        if not isinstance(codes, torch.Tensor):
            codes = torch.as_tensor(np.asarray(codes))
        if codes.ndim not in (2, 3):
            raise ValueError(f"codes must be [K, F] or [B, K, F], got shape {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integer tokens, got dtype {codes.dtype}")
        single = codes.ndim == 2
        codes = codes.long()
        if single:
            codes = codes.unsqueeze(0)
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"{self.model_id} has {self.num_codebooks} codebooks, codes have {codes.shape[1]}")
        if codes.shape[-1] < 2:
            raise ValueError("codes need at least 2 frames")
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= self.card:
            raise ValueError(f"codes must lie in [0, {self.card}), got values in [{lo}, {hi}]")
        return codes, single

    @torch.inference_mode()
    def token_nll(
        self, codes: Codes | BatchCodes, prompt: str | None = None, batch_size: int | None = None
    ) -> TokenNLL | BatchTokenNLL:
        """Per-token negative log-likelihood in nats.

        Args:
            codes: LongTensor ``[K, F]`` or ``[B, K, F]`` with values in ``[0, card)``.
            prompt: optional text condition; ``None`` is the model's null (unconditional) condition.
            batch_size: clips per forward pass (default :attr:`batch_size`).

        Returns:
            Float32 ``[K, F]`` (or ``[B, K, F]``) on the CPU: ``-log p(codes[k, f] | context)`` where the context is
            given by :attr:`alignment` (``"delay"``: MusicGen's training layout, every token scored; ``"paper"``:
            the authors' un-delayed layout, frame 0 NaN).
        """
        self._check_alignment()
        batch, single = self._as_batch(codes)
        size = batch_size or self.batch_size
        parts = [
            self._token_nll(batch[i : i + size].to(self.device), prompt).float().cpu()
            for i in range(0, batch.shape[0], size)
        ]
        out = torch.cat(parts)
        return out[0] if single else out

    # ---- weights identity -----------------------------------------------------------------------------------------
    def weight_modules(self) -> dict[str, Any]:
        """What holds this adapter's weights, by attribute name: every public attribute that is a torch module or
        another adapter (a codec borrowed from a shipped model). :meth:`weights_digest` hashes them when no cheaper
        identity was recorded; override it when the weights live elsewhere."""
        return {name: v for name, v in vars(self).items()
                if not name.startswith("_") and isinstance(v, (torch.nn.Module, MusicLM))}

    def weights_digest(self, *, refresh: bool = False) -> str:
        """What identifies this adapter's weights: ``"<kind>:<hex>"`` (:mod:`cae.models.weights`), recorded in
        :meth:`info` and so in every result row and sweep cache key.

        Loaders record the cheapest exact identity they know (:meth:`set_weights_digest`: a local folder's file
        hashes, a hub snapshot's commit, an ``@random`` recipe, a shipped model's verified checksums). Otherwise it
        is computed here, once per adapter object: SHA-256 over the tensors of :meth:`weight_modules` (an adapter
        they contain contributes its own digest), or, for an adapter without any, its class's qualified name
        (kind ``no-weights``).

        Args:
            refresh: forget the recorded digest and hash the weights in memory again, for an adapter whose weights
                were changed in place after loading (fine-tuning); a freshly loaded model needs no refresh.
        """
        if refresh or self.__dict__.get("_weights_digest") is None:
            self._weights_digest = self._compute_weights_digest()
        return self._weights_digest

    def set_weights_digest(self, digest: str) -> None:
        """Record the weights' identity a loader knows (``"<kind>:<hex>"``), sparing :meth:`weights_digest` the
        hashing of tensors."""
        self._weights_digest = str(digest)

    def _compute_weights_digest(self) -> str:
        from cae.models.weights import digest_of, no_weights_digest, state_dict_digest

        held = self.weight_modules()
        modules = {k: v for k, v in held.items() if isinstance(v, torch.nn.Module)}
        adapters = {k: v.weights_digest() for k, v in held.items() if isinstance(v, MusicLM) and v is not self}
        if not modules and not adapters:
            return no_weights_digest(type(self))
        if not adapters:
            return state_dict_digest(modules)
        return digest_of("state-dict", {"modules": state_dict_digest(modules) if modules else None,
                                        "adapters": adapters})

    def info(self, prompt: str | None = None) -> ModelInfo:
        """Provenance of this adapter for result rows (the sweep cache key holds all of it)."""
        return ModelInfo(
            model_id=self.model_id,
            backend=self.backend,
            revision=self.revision,
            alignment=self.alignment,
            dtype=str(self.dtype).removeprefix("torch."),
            conditioning=self.conditioning(prompt),
            sample_rate=self.sample_rate,
            frame_rate=self.frame_rate,
            num_codebooks=self.num_codebooks,
            card=self.card,
            weights=self.weights_digest(),
            extra={"random_weights": True} if self.random_weights else {},
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.model_id!r}, alignment={self.alignment!r}, "
            f"device={str(self.device)!r}, dtype={str(self.dtype).removeprefix('torch.')})"
        )


# ---- registry -------------------------------------------------------------------------------------------------------
Factory = Callable[..., MusicLM]
_REGISTRY: dict[str, Factory] = {}
#: Functions returning ``{name: factory}`` for families of models whose names are only known at run time (such as
#: the shipped checkpoints); called when a name is looked up, never at import.
_PROVIDERS: list[Callable[[], dict[str, Factory]]] = []


@dataclass(frozen=True)
class Backend:
    """A family of model names that one loader resolves, such as every ``audiocraft:<id>``.

    Attributes:
        name: what the backend is called (a second registration under the same name replaces the first).
        matches: ``matches(name)`` is true for the names this backend loads.
        load: ``load(name, **kwargs)`` builds the adapter; it gets the name exactly as given to :func:`load_model`.
        priority: backends are tried from the highest priority down, so a more specific family (``…@random``)
            is tried before a broader one (any ``owner/name``).
        describe: the names it takes, for the error on an unknown name.
    """

    name: str
    matches: Callable[[str], bool]
    load: Callable[..., MusicLM]
    priority: int = 0
    describe: str = ""


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, matches: Callable[[str], bool], load: Callable[..., MusicLM], *, priority: int = 0,
                     describe: str = "") -> Backend:
    """Let :func:`load_model` load every name for which ``matches(name)`` holds with ``load(name, **kwargs)``.

    Each backend module (:mod:`cae.models.hf`, :mod:`cae.models.audiocraft`, :mod:`cae.models.published`) registers
    itself when imported, and :mod:`cae.models` imports them all, so any import of a ``cae.models`` module (the
    package runs first) knows every backend.
    """
    backend = Backend(name, matches, load, priority, describe)
    _BACKENDS[name] = backend
    return backend


def backends() -> list[Backend]:
    """The registered backends in the order :func:`load_model` tries them (highest priority first).

    >>> [b.name for b in backends()]  # those of cae.models, registered when the package was imported
    ['yue', 'random', 'audiocraft', 'transformers']
    """
    return sorted(_BACKENDS.values(), key=lambda b: -b.priority)


def register_provider(provider: Callable[[], dict[str, Factory]]) -> Callable[[], dict[str, Factory]]:
    """Add a function that lists ``{name: factory}`` when a model name is looked up (usable as a decorator)."""
    _PROVIDERS.append(provider)
    return provider


def _factories() -> dict[str, Factory]:
    out: dict[str, Factory] = {}
    for provider in _PROVIDERS:
        out.update(provider())
    out.update(_REGISTRY)
    return out


def register_model(name: str, factory: Factory | None = None, *, overwrite: bool = False) -> Any:
    """Register a model factory under ``name`` so that ``load_model(name, **kwargs)`` calls ``factory(**kwargs)``.

    Use it as a call, ``register_model("mine", build_mine)``, or as a decorator::

        @register_model("mine")
        def build_mine(**kwargs) -> MusicLM: ...
    """

    def add(f: Factory) -> Factory:
        if name in _REGISTRY and not overwrite and _REGISTRY[name] is not f:
            raise ModelError(f"a model named {name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTRY[name] = f
        return f

    return add(factory) if factory is not None else add


def registered_models() -> list[str]:
    """Names accepted by :func:`load_model` besides hub ids and local folders."""
    return sorted(_factories())


def load_model(name: str, **kwargs: Any) -> MusicLM:
    """Load a scoring model by name.

    ``name`` is one of:

    * a registered name (:func:`register_model`), e.g. ``"reference"``;
    * a name one of the registered backends (:func:`register_backend`) takes, tried in this order:

      * a paper checkpoint's id with ``@random``, e.g. ``"facebook/musicgen-small@random"``: the published
        architecture with seeded random weights, built offline (:mod:`cae.models.published`; ``seed=`` picks the
        weights);
      * ``"audiocraft:<id>"``, e.g. ``"audiocraft:facebook/musicgen-melody"`` (needs the ``audiocraft`` extra);
      * ``"hf:<id>"`` or a bare transformers id such as ``"facebook/musicgen-small"``, or a local folder holding a
        transformers MusicGen checkpoint (``config.json`` + weights).

    Keyword arguments go to the adapter (``alignment``, ``device``, ``dtype``, ``revision``, ...).
    """
    factories = _REGISTRY if name in _REGISTRY else _factories()
    if name in factories:
        return factories[name](**kwargs)
    for backend in backends():
        if backend.matches(name):
            return backend.load(name, **kwargs)
    known = ", ".join(registered_models()) or "none"
    others = "; ".join(b.describe for b in backends() if b.describe)
    raise ModelError(f"unknown model {name!r}: not a registered name ({known}), and no backend takes it ({others})")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for no network access."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def missing_weights_message(model_id: str, backend: str, error: BaseException) -> str:
    """The error text shown when a checkpoint is not on this machine."""
    where = "audiocraft's cache (AUDIOCRAFT_CACHE_DIR / HF_HOME)" if backend == "audiocraft" else "the HF cache (HF_HOME)"
    return (
        f"cannot load {model_id!r} ({backend} backend): its weights are not available on this machine"
        f"{' and HF_HUB_OFFLINE is set' if hub_offline() else ' and the hub could not be reached'}.\n"
        f"Get them on a machine with network access, e.g. `huggingface-cli download {model_id}`, then copy "
        f"{where} here, or pass a local folder as the model name.\nUnderlying error: {type(error).__name__}: {error}"
    )
