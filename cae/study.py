"""Studies: the paper's experiments as cached sweeps over dataset kinds, and the tables the notebooks plot.

The method, step by step (each step a function the notebooks call):

1. **models** (:func:`load_models`): every model under a *protocol*. ``"corrected"`` scores in MusicGen's training
   layout (delay pattern, BOS, every token) and anchors regions on the token mask; ``"paper"`` reproduces the
   authors' computation (un-delayed codes, no BOS, ``alignment="paper"``) and their fixed-constant region detector.
2. **conditions** (:func:`noise_conditions`, :func:`shuffle_conditions`, :func:`pure_noise`): perturbations as
   serialisable records. Noise levels follow a *level mode*: ``"paper"`` (the authors' absolute dBFS per dataset
   kind and their legacy RNG), ``"dbfs"`` (one absolute level) or ``"snr"`` (relative to each clip's RMS).
3. **sweep** (:func:`run_study`): every (model, kind, clip, condition) through :func:`cae.sweep.run_sweep`, so
   results are cached by content and reruns are free; rows gain the dataset ``kind``, the perturbation's
   parameters as columns (``length``, ``colour``, ``level_db`` ...) and the protocol.
4. **tables**: :func:`clip_deltas` and :func:`delta_by_length` (Δ of the clip loss with bootstrap CIs),
   :func:`length_tests` (correlation with length, paired tests), :func:`onset_curves` (Δℓ_t aligned at the
   onset, mean and bootstrap band over clips, per codebook), :func:`absolute_curves` (clean / noise / perturbed
   NLL, the data behind the paper's Fig. 3), :func:`region_table` (Peak / Assimilation / Recovery by both
   detectors), :func:`noise_token_stats` (what the codec makes of the noise).

All frames are target frames; ``onset`` is the first perturbed frame (the paper: 250).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cae.analysis import anchored_regions, bootstrap_curve, group_summary, length_correlation, paired_test
from cae.analysis.paper_detector import paper_regions
from cae.errors import CaeError
from cae.experiments import noise_diversity
from cae.models.base import MusicLM, load_model
from cae.perturb import (
    BUTTERWORTH_COLOURS,
    PAPER_LEVELS_DBFS,
    PAPER_ONSET_FRAME,
    PAPER_SEED_BASE,
    PAPER_SHUFFLE_RANGE_FRAMES,
    BlockSwap,
    Noise,
    Perturbation,
    RandomPairSwaps,
    SegmentSwap,
    Span,
)

__all__ = [
    "LEVEL_MODES",
    "PROTOCOLS",
    "Protocol",
    "StudyResults",
    "absolute_curves",
    "clip_deltas",
    "delta_by_length",
    "length_tests",
    "load_models",
    "noise_conditions",
    "noise_token_stats",
    "onset_curves",
    "paired_by_length",
    "pure_noise",
    "region_table",
    "resynthesis_quality",
    "resynthesis_quality_table",
    "run",
    "run_study",
    "shuffle_conditions",
    "token_array",
]

LEVEL_MODES = ("paper", "dbfs", "snr")


@dataclass(frozen=True)
class Protocol:
    """How a study scores and where it reads regions.

    Attributes:
        name: ``"corrected"`` or ``"paper"``.
        alignment: the models' scoring layout (``"delay"`` or ``"paper"``).
        regions: the default region detector (``"anchored"`` on the token mask, or the authors' ``"paper"`` one).
        seeding: how a clip's noise seed is derived (:func:`cae.score.seed_offset`): from its content, or the
            authors' seed + position in the file list.
    """

    name: str
    alignment: str
    regions: str
    seeding: str


PROTOCOLS: dict[str, Protocol] = {
    "corrected": Protocol("corrected", "delay", "anchored", "content"),
    "paper": Protocol("paper", "paper", "paper", "index"),
}


class StudyError(CaeError):
    """A study parameter that cannot work (unknown protocol, level mode, kind without a paper level, ...)."""


def protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name``."""
    if name not in PROTOCOLS:
        raise StudyError(f"protocol must be one of {sorted(PROTOCOLS)}, got {name!r}")
    return PROTOCOLS[name]


def import_plugins(plugins: Iterable[str] = ()) -> None:
    """Import modules (or ``.py`` files) that register model adapters with :func:`cae.register_model`."""
    for name in plugins:
        if str(name).endswith(".py"):
            path = Path(name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise StudyError(f"cannot import plugin file {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            importlib.import_module(name)


def load_models(names: str | Sequence[str | MusicLM], *, protocol_name: str = "corrected", device: str | None = None,
                plugins: Iterable[str] = (), **kwargs: Any) -> list[MusicLM]:
    """Load every model under a protocol (its alignment), after importing adapter plugins.

    Args:
        names: model names for :func:`cae.load_model` (or loaded models, used as they are).
        protocol_name: ``"corrected"`` or ``"paper"``.
        device: ``"cpu"``, ``"cuda"``, or ``None`` (the adapter's default).
        plugins: modules or ``.py`` files to import first (they register new adapters).
        **kwargs: passed to every :func:`cae.load_model` call (``dtype``, ``revision`` ...).
    """
    proto = protocol(protocol_name)
    import_plugins(plugins)
    if isinstance(names, (str, MusicLM)):
        names = [names]
    out = []
    for n in names:
        if isinstance(n, MusicLM):
            out.append(n)
            continue
        kw = dict(kwargs, alignment=proto.alignment)
        if device is not None:
            kw["device"] = device
        out.append(load_model(n, **kw))
    _note_random_weights(out)
    return out


def random_weights_note(models: Sequence[MusicLM]) -> str | None:
    """The warning a notebook shows when a model has seeded random weights (an ``@random`` architecture), or
    ``None``."""
    ids = [m.model_id for m in models if getattr(m, "random_weights", False)]
    if not ids:
        return None
    return (f"**Random weights.** {', '.join(f'`{i}`' for i in ids)} "
            f"{'is' if len(ids) == 1 else 'are'} the published architecture with seeded random weights (a dry run: "
            "no checkpoint was downloaded). Every number and chart below exercises the code at the real size, but "
            "**means nothing about music**.")


def _note_random_weights(models: Sequence[MusicLM]) -> None:
    note = random_weights_note(models)
    if note is None:
        return
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the book extra
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:  # a notebook: a visible admonition on the page
        display(Markdown(f"```{{warning}}\n{note}\n```"))
    else:
        warnings.warn(note.replace("**", ""), stacklevel=3)


# ---- conditions ------------------------------------------------------------------------------------------------
def _paper_level(kind: str) -> float:
    key = {"heldout": "trainset", "train": "trainset", "training": "trainset", "asap": "ood"}.get(kind, kind)
    if key not in PAPER_LEVELS_DBFS:
        raise StudyError(f"level_mode='paper' has levels for {sorted(PAPER_LEVELS_DBFS)} (and heldout = trainset), "
                         f"not for kind {kind!r}: use level_mode='dbfs' or 'snr'")
    return PAPER_LEVELS_DBFS[key]


def noise_conditions(kind: str, lengths: Sequence[int], *, colour: str = "white", level_mode: str = "paper",
                     level_db: float | None = None, onset: int = PAPER_ONSET_FRAME, crossfade_ms: float = 0.0,
                     mode: str = "replace", seed: int = PAPER_SEED_BASE) -> list[Noise]:
    """Noise bursts ``[onset, onset + L)`` for every length, for one dataset kind.

    Args:
        kind: the dataset kind (sets the level in ``level_mode="paper"``).
        lengths: noise lengths in frames.
        colour: a :data:`cae.perturb.COLOURS` name (``"white"``, the authors' ``"butter-*"``, exact ``"pink"`` ...).
        level_mode: ``"paper"``: the authors' dBFS for the kind (OOD −30, Generated −20, TrainingSet and held-out
            −12) and their legacy RNG; ``"dbfs"``: ``level_db`` dBFS for every kind; ``"snr"``: ``level_db`` dB
            signal-to-noise ratio against each clip's RMS.
        level_db: the level for ``"dbfs"`` / ``"snr"``.
        onset: first noisy frame.
        crossfade_ms: raised-cosine ramps at both ends (0: the paper's hard cut).
        mode: ``"replace"`` (paper) or ``"add"``.
        seed: base seed; the sweep adds a per-clip offset (:func:`cae.score.seed_offset`: from the clip's content,
            or its index under the paper protocol, the authors' 42 + file index).

    >>> [p.label for p in noise_conditions("ood", [5, 100])]
    ['noise-white-replace-dbfs-30@250+5f', 'noise-white-replace-dbfs-30@250+100f']
    >>> noise_conditions("heldout", [10], level_mode="snr", level_db=0.0)[0].label
    'noise-white-replace-snr-rms+0@250+10f'
    """
    if level_mode not in LEVEL_MODES:
        raise StudyError(f"level_mode must be one of {LEVEL_MODES}, got {level_mode!r}")
    if level_mode == "paper":
        level, reference = _paper_level(kind), "dbfs"
    else:
        if level_db is None:
            raise StudyError(f"level_mode={level_mode!r} needs level_db")
        level, reference = float(level_db), ("dbfs" if level_mode == "dbfs" else "snr-rms")
    legacy = level_mode == "paper" and (colour == "white" or colour in BUTTERWORTH_COLOURS)
    return [Noise(Span(int(onset), int(n)), colour=colour, mode=mode, level_db=level, reference=reference,
                  crossfade_ms=float(crossfade_ms), seed=int(seed), legacy_rng=legacy) for n in lengths]


#: Length of the pure-noise condition: 14 s, like the authors' pure-noise files (Protocol page: Noise injection).
PURE_NOISE_FRAMES = 700


def pure_noise(kind: str, n_frames: int = PURE_NOISE_FRAMES, **kwargs: Any) -> Noise:
    """Noise from frame 0 for ``n_frames`` frames at the study's level: the "Noise" curve of the paper's Fig. 3
    (keyword arguments as :func:`noise_conditions`; the clips must be at least that long)."""
    kwargs = dict(kwargs)
    kwargs.pop("onset", None)
    return noise_conditions(kind, [int(n_frames)], onset=0, **kwargs)[0]


def shuffle_conditions(variant: str, lengths: Sequence[int], *, onset: int = PAPER_ONSET_FRAME,
                       seed: int = 0) -> list[Perturbation]:
    """Order perturbations of the three kinds in the authors' code (Protocol page: Order shuffling).

    Args:
        variant: ``"pair_swaps"`` (random adjacent-pair swaps, 20 % budget, frames [0, 700)), ``"segment_swap"``
            (one swap of two random segments in [0, 700)), ``"block_swap"`` (the blocks at ``onset`` and
            ``onset + L`` swapped) or ``"fig5"`` (the paper's Fig. 5 mix: pair swaps below 100 frames, a segment
            swap from 100).
        lengths: segment lengths in frames.
        onset: for ``block_swap``.
        seed: base seed (the sweep adds a per-clip offset, :func:`cae.score.seed_offset`).
    """
    lo, hi = PAPER_SHUFFLE_RANGE_FRAMES
    out: list[Perturbation] = []
    for n in lengths:
        n = int(n)
        if variant == "block_swap":
            out.append(BlockSwap(Span(int(onset), n)))
        elif variant == "pair_swaps" or (variant == "fig5" and n < 100):
            out.append(RandomPairSwaps(n, lo, hi, 0.2, 50.0, int(seed)))
        elif variant in ("segment_swap", "fig5"):
            out.append(SegmentSwap(n, lo, hi, 50.0, int(seed)))
        else:
            raise StudyError(f"variant must be pair_swaps, segment_swap, block_swap or fig5, got {variant!r}")
    return out


# ---- the sweep ---------------------------------------------------------------------------------------------------
def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def perturbation_columns(perturbation_json: str | float | None) -> dict[str, Any]:
    """A perturbation's parameters as flat columns: ``perturbation_kind``, ``length`` (frames), ``onset``,
    ``colour``, ``level_db``, ``reference``, ``crossfade_ms``, ``mode``, ``budget`` (where they apply).

    >>> c = perturbation_columns(noise_conditions("ood", [100])[0].to_dict().__repr__().replace("'", '"')
    ...                          .replace("False", "false").replace("True", "true"))
    >>> c["perturbation_kind"], c["length"], c["onset"], c["level_db"]
    ('noise', 100, 250, -30.0)
    """
    if not isinstance(perturbation_json, str) or not perturbation_json:
        return {"perturbation_kind": "clean", "length": 0}
    d = json.loads(perturbation_json)
    flat = _flat(d)
    out: dict[str, Any] = {"perturbation_kind": d.get("kind")}
    if "span_length" in flat:
        out["length"] = flat["span_length"]
        out["onset"] = flat.get("span_onset")
    elif "length" in flat:
        out["length"] = flat["length"]
    for k in ("colour", "level_db", "reference", "crossfade_ms", "mode", "budget"):
        if k in flat:
            out[k] = flat[k]
    return out


@dataclass
class StudyResults:
    """Tables of a study.

    Attributes:
        summary: one row per (model, kind, clip, condition): the sweep's summary columns (loss, ``delta_loss``,
            token-change span, perturbation JSON, seed, provenance, versions) plus ``kind``, ``protocol``,
            ``loss_clean`` and the perturbation's parameters as columns (:func:`perturbation_columns`).
        tokens: one row per (model, kind, clip, condition, codebook, frame): ``nll``, ``nll_clean``, ``changed``
            (and ``code`` when the study kept codes).
        params: the study's parameters, for the record.
    """

    summary: pd.DataFrame
    tokens: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def perturbed(self) -> pd.DataFrame:
        """Summary rows of perturbed conditions without errors."""
        s = self.summary
        return s[(s["condition"] != "clean") & s["error"].isna()]

    def errors(self) -> pd.DataFrame:
        """Rows with an error (file and message)."""
        return self.summary[self.summary["error"].notna()][["kind", "clip", "condition", "error"]]


def run_study(models: Sequence[MusicLM], clips: Mapping[str, Sequence[str | Path]],
              conditions: Callable[[str], Sequence[Perturbation]] | Mapping[str, Sequence[Perturbation]], *,
              protocol_name: str = "corrected", cache_dir: str | Path | None = None, codes: bool = False,
              progress: bool = True, executor: Any = None, params: Mapping[str, Any] | None = None,
              seeding: str | None = None) -> StudyResults:
    """Score every model on every kind's clips, clean and under that kind's conditions (cached sweep).

    Args:
        models: loaded models (see :func:`load_models`).
        clips: ``{kind: [paths]}`` (see :func:`cae.datasets.resolve_datasets`).
        conditions: ``kind -> [perturbations]`` (a function or a mapping).
        protocol_name: recorded in the rows.
        cache_dir: the sweep cache (default ``cae.paths.cache_dir() / "sweeps"``).
        codes: keep the tokens themselves (``code`` column; needed by :func:`noise_token_stats`).
        progress: progress bars.
        executor: passed to :func:`cae.sweep.run_sweep` (e.g. a Dask client).
        params: recorded as :attr:`StudyResults.params`.
        seeding: per-clip seed offsets (:func:`cae.score.seed_offset`); default: the protocol's.
    """
    from cae.sweep import run_sweep

    summaries, tokens = [], []
    for model in models:
        for kind, paths in clips.items():
            perts = list(conditions(kind) if callable(conditions) else conditions[kind])
            tables = run_sweep(list(paths), perts, model, cache_dir=cache_dir, progress=progress, codes=codes,
                               executor=executor, seeding=seeding or protocol(protocol_name).seeding)
            s = tables.summary.copy()
            s.insert(0, "kind", kind)
            s.insert(1, "protocol", protocol_name)
            t = tables.tokens
            t.insert(0, "kind", kind)
            summaries.append(s)
            tokens.append(t)
    summary = pd.concat(summaries, ignore_index=True)
    cols = pd.DataFrame([perturbation_columns(p) for p in summary["perturbation"]], index=summary.index)
    summary = pd.concat([summary, cols], axis=1)
    clean = summary[summary["condition"] == "clean"].set_index(["model_id", "alignment", "kind", "clip"])["loss"]
    key = pd.MultiIndex.from_frame(summary[["model_id", "alignment", "kind", "clip"]])
    summary["loss_clean"] = clean.reindex(key).to_numpy()
    return StudyResults(summary, pd.concat(tokens, ignore_index=True), dict(params or {}))


# ---- tables --------------------------------------------------------------------------------------------------------
def is_pure_noise(summary: pd.DataFrame) -> pd.Series:
    """Rows of the pure-noise condition (:func:`pure_noise`): noise from frame 0 covering all but at most 50
    frames of the clip."""
    if "onset" not in summary.columns:
        return pd.Series(False, index=summary.index)
    return ((summary["perturbation_kind"] == "noise") & (summary["onset"] == 0)
            & (summary["length"] >= summary["n_frames"] - 50))


def clip_deltas(results: StudyResults, perturbation_kind: str | None = None) -> pd.DataFrame:
    """Perturbed rows with ``delta = loss − loss_clean`` (Δ of the per-token mean, as the paper's Fig. 2);
    pure-noise conditions are left out."""
    p = results.perturbed
    p = p[~is_pure_noise(p)]
    if perturbation_kind is not None:
        p = p[p["perturbation_kind"] == perturbation_kind]
    p = p.assign(delta=p["delta_loss"])
    return p


def delta_by_length(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind", "length"),
                    perturbation_kind: str | None = None, n_resamples: int = 2000) -> pd.DataFrame:
    """Mean Δ per group with a bootstrap CI over clips, the SD, and the share of clips whose loss went down."""
    d = clip_deltas(results, perturbation_kind)
    out = group_summary(d, list(by), "delta", n_resamples=n_resamples)
    share = d.groupby(list(by))["delta"].apply(lambda s: float((s < 0).mean())).rename("share_lower")
    return out.merge(share.reset_index(), on=list(by))


def length_tests(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind"),
                 perturbation_kind: str | None = None) -> pd.DataFrame:
    """Per group: Pearson/Spearman of Δ against length over (clip, length) points (one-sided: negative), the
    slope per 100 frames, and a one-sided paired test (perturbed < clean) at the longest length."""
    d = clip_deltas(results, perturbation_kind)
    rows = []
    for key, g in d.groupby(list(by)):
        c = length_correlation(g["length"], g["delta"], alternative="less")
        longest = g[g["length"] == g["length"].max()]
        t = paired_test(longest["loss_clean"], longest["loss"], alternative="less")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n_points": c.n,
                     "pearson_r": c.pearson_r, "pearson_p": c.pearson_p, "spearman_r": c.spearman_r,
                     "spearman_p": c.spearman_p, "slope_per_100": 100 * c.slope, "longest": int(g["length"].max()),
                     "cohens_dz": t.cohens_dz, "paired_t_p": t.t_pvalue, "wilcoxon_p": t.wilcoxon_pvalue,
                     "n_clips": t.n})
    return pd.DataFrame(rows)


def paired_by_length(results: StudyResults, *, by: Sequence[str] = ("model_id", "kind", "length"),
                     perturbation_kind: str | None = None) -> pd.DataFrame:
    """Per (model, kind, length): paired tests of the perturbed against the clean clip loss across clips, one-sided
    (perturbed < clean): the mean difference, Cohen's d_z, the t-test and Wilcoxon p-values, and ``n``."""
    d = clip_deltas(results, perturbation_kind)
    rows = []
    for key, g in d.groupby(list(by)):
        t = paired_test(g["loss_clean"], g["loss"], alternative="less")
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": t.n, "mean_diff": t.mean_diff,
                     "cohens_dz": t.cohens_dz, "t_p": t.t_pvalue, "wilcoxon_p": t.wilcoxon_pvalue})
    return pd.DataFrame(rows)


def token_array(tokens: pd.DataFrame, value: str) -> np.ndarray:
    """One condition's ``value`` column as a ``[K, F]`` array indexed by (codebook, frame); NaN where no row.

    >>> token_array(pd.DataFrame({"codebook": [0, 1], "frame": [1, 0], "nll": [2.0, 3.0]}), "nll").tolist()
    [[nan, 2.0], [3.0, nan]]
    """
    out = np.full((int(tokens["codebook"].max()) + 1, int(tokens["frame"].max()) + 1), np.nan)
    out[tokens["codebook"].to_numpy(), tokens["frame"].to_numpy()] = tokens[value].to_numpy(dtype=float)
    return out


def _groups(results: StudyResults, perturbation_kind: str | None) -> Iterable[tuple[pd.Series, pd.DataFrame]]:
    """(summary row, its tokens) for every perturbed condition."""
    rows = clip_deltas(results, perturbation_kind)
    wanted = rows.set_index(["model_id", "kind", "clip", "condition"])
    tok = results.tokens
    tok = tok[tok["condition"] != "clean"]
    for key, g in tok.groupby(["model_id", "kind", "clip", "condition"], sort=False):
        if key in wanted.index:
            row = wanted.loc[key]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            yield pd.Series({**dict(zip(["model_id", "kind", "clip", "condition"], key)), **row.to_dict()}), g


def onset_curves(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME, before: int = 20, after: int = 300,
                 perturbation_kind: str | None = "noise", per_codebook: bool = True, n_resamples: int = 1000,
                 value: str = "delta") -> pd.DataFrame:
    """Δℓ_t aligned at the onset: mean and bootstrap band over clips per (model, kind, length, codebook).

    Args:
        results: the study.
        onset: the perturbation's first frame (relative frame 0).
        before, after: the window ``[onset − before, onset + after)``.
        perturbation_kind: which conditions (``None``: all).
        per_codebook: also one curve per codebook (``codebook`` 0..K−1; the codebook mean is ``"mean"``).
        n_resamples: bootstrap resamples (clips).
        value: ``"delta"`` (nll − nll_clean), ``"nll"`` or ``"nll_clean"``.

    Returns:
        Long table: ``model_id, kind, length, codebook, rel_frame, mean, low, high, n``.
    """
    lo, hi = onset - before, onset + after
    curves: dict[tuple[Any, ...], list[np.ndarray]] = {}
    for row, g in _groups(results, perturbation_kind):
        g = g[(g["frame"] >= lo) & (g["frame"] < hi)]
        if g.empty:
            continue
        g = g.assign(delta=g["nll"] - g["nll_clean"], frame=g["frame"] - lo)
        arr = np.full((int(results.tokens["codebook"].max()) + 1, hi - lo), np.nan)
        part = token_array(g, value)
        arr[:part.shape[0], :part.shape[1]] = part
        base = (row["model_id"], row["kind"], int(row["length"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with no finite value stay NaN
            curves.setdefault((*base, "mean"), []).append(np.nanmean(arr, axis=0))
        if per_codebook:
            for k in range(arr.shape[0]):
                curves.setdefault((*base, str(k)), []).append(arr[k])
    out = []
    rel = np.arange(lo, hi) - onset
    for (model_id, kind, length, cb), rows in curves.items():
        m, low, high = bootstrap_curve(np.stack(rows), n_resamples=n_resamples)
        out.append(pd.DataFrame({"model_id": model_id, "kind": kind, "length": length, "codebook": cb,
                                 "rel_frame": rel, "mean": m, "low": low, "high": high, "n": len(rows)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def absolute_curves(results: StudyResults, *, length: int, onset: int = PAPER_ONSET_FRAME, before: int = 20,
                    after: int = 300, n_resamples: int = 1000) -> pd.DataFrame:
    """The data behind the paper's Fig. 3: codebook-mean NLL per frame for the clean clip (``"music"``), the clip
    with noise of ``length`` frames at ``onset`` (``"music + perturb"``) and, when the study scored it, the
    pure-noise clip (``"noise"``, :func:`pure_noise`); mean and bootstrap band over clips, per (model, kind).

    Returns:
        Long table: ``model_id, kind, curve, rel_frame, mean, low, high, n``.
    """
    lo, hi = onset - before, onset + after
    s = results.summary[results.summary["error"].isna()]
    sets = {
        "music": (s[s["condition"] == "clean"], "nll"),
        "music + perturb": (s[(s["perturbation_kind"] == "noise") & (s["length"] == length) & (s["onset"] == onset)],
                            "nll"),
        "noise": (s[is_pure_noise(s)], "nll"),
    }
    tok = results.tokens[(results.tokens["frame"] >= lo) & (results.tokens["frame"] < hi)]
    out = []
    for curve, (rows, col) in sets.items():
        if rows.empty:
            continue
        keys = pd.MultiIndex.from_frame(rows[["model_id", "kind", "clip", "condition"]])
        t = tok.set_index(["model_id", "kind", "clip", "condition"])
        t = t[t.index.isin(keys)].reset_index()
        for (model_id, kind), g in t.groupby(["model_id", "kind"]):
            per_clip = g.groupby(["clip", "frame"])[col].mean().unstack("frame").reindex(columns=range(lo, hi))
            m, low, high = bootstrap_curve(per_clip.to_numpy(), n_resamples=n_resamples)
            out.append(pd.DataFrame({"model_id": model_id, "kind": kind, "curve": curve,
                                     "rel_frame": np.arange(lo, hi) - onset, "mean": m, "low": low, "high": high,
                                     "n": len(per_clip)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def region_table(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME, methods: Sequence[str] = ("anchored", "paper"),
                 peak_frames: int = 5, guard_frames: int = 0) -> pd.DataFrame:
    """Peak / Assimilation / Recovery means of Δℓ_t per (model, kind, clip, length, method, region).

    ``anchored``: windows anchored on the token mask (:func:`cae.analysis.anchored_regions`; empty → NaN).
    ``paper``: the authors' detector (:func:`cae.analysis.paper_regions`, constants shifted with ``onset``;
    empty → 0 as in their code). Noise conditions only.
    """
    rows = []
    for row, g in _groups(results, "noise"):
        d = token_array(g, "nll") - token_array(g, "nll_clean")
        changed = token_array(g, "changed")
        n = int(row["length"])
        base = {"model_id": row["model_id"], "kind": row["kind"], "clip": row["clip"], "length": n,
                "condition": row["condition"]}
        if "anchored" in methods:
            r = anchored_regions(d, changed > 0, onset, onset + n, peak_frames=peak_frames, guard_frames=guard_frames)
            for region, v in r.means.items():
                rows.append({**base, "method": "anchored", "region": region, "delta": v,
                             "start": r.windows[region].start, "stop": r.windows[region].stop})
        if "paper" in methods:
            dd = d.copy()
            dd[:, 0] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # frame 0 has no finite value
                curve = np.nanmean(dd, axis=0)
            curve = np.where(np.isfinite(curve), curve, 0.0)
            curve[0] = np.nan
            p = paper_regions(curve, n, peak_start=onset - 5, search_from=onset, fallback_end=onset + 45,
                              onset_index=onset - 1)
            for region, v in p.means.items():
                rows.append({**base, "method": "paper", "region": region, "delta": v,
                             "start": np.nan, "stop": np.nan})
    return pd.DataFrame(rows)


def noise_token_stats(results: StudyResults, *, onset: int = PAPER_ONSET_FRAME) -> pd.DataFrame:
    """What the codec makes of the noise, per (model, kind, clip, length), averaged over codebooks:
    distinct tokens inside ``[onset, onset + L)``, the share of those frames repeating the previous frame's
    token, the share of tokens changed inside the span and outside it (spill-over). Needs ``codes=True``."""
    if "code" not in results.tokens.columns:
        raise StudyError("noise_token_stats needs the tokens: run the study with codes=True")
    rows = []
    for row, g in _groups(results, "noise"):
        codes = token_array(g, "code")
        changed = token_array(g, "changed")
        n = int(row["length"])
        unique, repeat = noise_diversity(codes, onset, onset + n)
        inside = np.zeros(codes.shape[1], dtype=bool)
        inside[onset:onset + n] = True
        rows.append({
            "model_id": row["model_id"], "kind": row["kind"], "clip": row["clip"], "condition": row["condition"],
            "length": n, "unique_tokens": unique, "repeat_rate": repeat,
            "changed_inside": float(np.nanmean(changed[:, inside])),
            "changed_outside": float(np.nanmean(changed[:, ~inside])),
            "spill_frames": int(np.sum(np.any(changed[:, ~inside] > 0, axis=0))),
        })
    return pd.DataFrame(rows)


def codec_noise_response(model: MusicLM, clips: Mapping[str, Sequence[str | Path]], *,
                         dbfs_levels: Sequence[float] = (-40.0, -30.0, -20.0, -10.0, 0.0),
                         snr_levels: Sequence[float] = (20.0, 10.0, 0.0, -10.0, -20.0),
                         length: int = 90, onset: int = PAPER_ONSET_FRAME, seed: int = 0) -> pd.DataFrame:
    """What a codec does to white noise, without the LM: per clip and noise level, the mean over codebooks of the
    distinct tokens inside ``[onset, onset + length)`` and the share of those frames repeating the previous frame's
    token, for noise replacing the music at absolute levels (``level_mode="dbfs"``) and at SNRs relative to each clip
    (``"snr"``); ``level_mode="clean"`` rows give the same statistics for the music itself.

    Returns:
        Rows ``model_id, kind, clip, level_mode, level_db, unique_tokens, repeat_rate``.
    """
    from cae.audio import load

    rows = []
    settings = [("clean", float("nan"))] + [("dbfs", float(v)) for v in dbfs_levels] + \
               [("snr", float(v)) for v in snr_levels]
    for kind, paths in clips.items():
        for path in paths:
            wave = load(path, sample_rate=model.sample_rate)
            for mode, level in settings:
                if mode == "clean":
                    x = wave
                else:
                    p = Noise(span=Span(onset, length, "frames", frame_rate=model.frame_rate), level_db=level,
                              reference="dbfs" if mode == "dbfs" else "snr-rms", seed=seed)
                    x = p.apply(wave, model.sample_rate)
                codes = np.asarray(model.encode(x, model.sample_rate))
                unique, repeat = noise_diversity(codes, onset, onset + length)
                rows.append({"model_id": model.model_id, "kind": kind, "clip": str(path), "level_mode": mode,
                             "level_db": level, "unique_tokens": unique, "repeat_rate": repeat})
    return pd.DataFrame(rows)


# ---- one call per notebook -----------------------------------------------------------------------------------
#: Seed of the ``generated`` dataset kind (fixed, so changing the perturbation seed does not resample music).
GENERATION_SEED = 0


def run(models: Sequence[MusicLM], datasets: Mapping[str, str],
        conditions: Callable[[str], Sequence[Perturbation]], *, n_clips: int | None = None,
        protocol_name: str = "corrected", cache_dir: str | Path | None = None, codes: bool = False,
        progress: bool = True, executor: Any = None, params: Mapping[str, Any] | None = None,
        seeding: str | None = None) -> StudyResults:
    """:func:`run_study` from dataset specs (:mod:`cae.datasets`), resolved per model (``generated`` is sampled
    by each model under study), concatenated over models."""
    from cae.datasets import resolve_datasets

    parts = []
    for model in models:
        clips = resolve_datasets(datasets, n_clips=n_clips, model=model, seed=GENERATION_SEED, progress=progress)
        parts.append(run_study([model], clips, conditions, protocol_name=protocol_name, cache_dir=cache_dir,
                               codes=codes, progress=progress, executor=executor, params=params, seeding=seeding))
    return StudyResults(pd.concat([p.summary for p in parts], ignore_index=True),
                        pd.concat([p.tokens for p in parts], ignore_index=True), dict(params or {}))


def resynthesis_quality_table(models: Sequence[MusicLM], clips: Mapping[str, Mapping[str, Sequence[str | Path]]]
                              ) -> pd.DataFrame:
    """:func:`resynthesis_quality` of each model on ``clips[model.model_id]`` (``{kind: paths}``), averaged over
    clips per model and kind, in the book's column order."""
    cols = ["logmel_l1", "si_snr_db", "snr_db", "perplexity", "codes_used", "encode_s", "score_s", "decode_s"]
    table = pd.concat([resynthesis_quality(m, clips[m.model_id]) for m in models], ignore_index=True)
    out = table.groupby(["model_id", "kind"])[cols].mean().round(3)
    out.insert(0, "clips", table.groupby(["model_id", "kind"]).size())
    return out


def resynthesis_quality(model: MusicLM, clips: Mapping[str, Sequence[str | Path]]) -> pd.DataFrame:
    """How faithfully the codec round-trips each clean clip, ``decode(encode(x))`` against ``x``, and what it costs.

    Columns: ``model_id, kind, clip``, :func:`cae.reference.codec.codec_quality`'s ``snr_db`` (waveform SNR;
    meaningful only for a codec that keeps phase, like EnCodec, not for a Griffin-Lim decoder), ``si_snr_db`` and
    ``logmel_l1`` (phase-blind), the per-codebook code ``perplexity`` and ``codes_used`` (share of the entries that
    occur in the clip; means over codebooks), and ``encode_s`` /
    ``score_s`` / ``decode_s`` (wall-clock seconds for this clip). Models that cannot decode give NaN qualities.
    """
    import time

    from cae.audio import load
    from cae.errors import ModelError
    from cae.reference.codec import codec_quality, perplexity

    rows = []
    for kind, paths in clips.items():
        for path in paths:
            x = load(path, sample_rate=model.sample_rate)
            t0 = time.perf_counter()
            codes = model.encode(x, model.sample_rate)
            t1 = time.perf_counter()
            model.token_nll(codes)
            t2 = time.perf_counter()
            row = {"model_id": model.model_id, "kind": kind, "clip": str(path), "encode_s": t1 - t0,
                   "score_s": t2 - t1, "perplexity": float(np.mean(perplexity(codes.numpy(), model.card))),
                   "codes_used": float(np.mean([len(np.unique(c)) for c in codes.numpy()])) / model.card}
            try:
                y = model.decode(codes)
                row["decode_s"] = time.perf_counter() - t2
                row.update(codec_quality(x, y, model.sample_rate))
            except ModelError:
                row.update({"decode_s": np.nan, "snr_db": np.nan, "si_snr_db": np.nan, "logmel_l1": np.nan})
            rows.append(row)
    return pd.DataFrame(rows)
