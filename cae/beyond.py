"""Beyond the paper: is the Context Amnesia Effect input complexity, and which signal detects corruption?

Two questions a reviewer would ask first, as tables over a study's results (:mod:`cae.study`):

1. **Input complexity** (:func:`complexity_table`, :func:`complexity_deltas`). For every scored clip version the
   model's mean per-token loss is set beside a model-free complexity ``L`` of the same token stream
   (:mod:`cae.analysis.complexity`: an adaptive order-1 Markov code per codebook, and lzma), both in nats per
   token, and the complexity-corrected score ``S = loss − L`` (Serrà et al., ICLR 2020). The paper's Δ is then
   recomputed on each: Δloss, ΔL and ΔS per noise length and kind with bootstrap CIs over clips. If noise lowers
   the loss only because it makes the tokens simpler, ΔL falls with ΔLoss and ΔS does not go negative.
2. **Detection power** (:func:`detection_table`). For each perturbation, how well does a score flag the perturbed
   version of a clip against clean clips: paired accuracy and AUROC (:mod:`cae.analysis.detection`), for the clip
   loss, the corrected score, the profile score and its features, and a cross-validated combination of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cae.analysis import group_summary
from cae.analysis.complexity import markov_code_length, window_code_length
from cae.analysis.detection import bootstrap_metrics, cross_validated_scores
from cae.perturb import BitCrush, LowPass, Perturbation

__all__ = ["complexity_deltas", "complexity_table", "detection_table", "profile_versions", "write_version"]

#: The quantities of :func:`complexity_table`, in nats per token, as the book names them.
QUANTITIES = {"loss": "loss (model NLL)", "markov": "L: Markov-1 code", "lzma": "L: lzma",
              "s_markov": "S = loss − Markov", "s_lzma": "S = loss − lzma"}


def _stream_costs(codes: np.ndarray, nll: np.ndarray, card: int, order: int) -> tuple[float, float, float]:
    """Mean NLL, Markov cost and lzma cost (nats/token) of one version ``[K, F]``. The NLL and the Markov cost are
    averaged over the tokens the model scored (finite NLL: all of them under the delay alignment; the paper
    alignment leaves frame 0 out); lzma compresses the whole stream, codebook by codebook."""
    mask = np.isfinite(nll)
    markov = np.vstack([markov_code_length(c, order=order, alphabet=card) for c in codes])
    flat = codes.reshape(-1)  # codebook by codebook, as the compressor reads them
    lz = window_code_length(flat, 0, flat.size, method="lzma")
    return float(nll[mask].mean()), float(markov[mask].mean()), lz


def _version_costs(tokens: pd.DataFrame, card: int, order: int) -> tuple[float, float, float]:
    """:func:`_stream_costs` of one version's token rows (``codebook, frame, code, nll``)."""
    g = tokens.sort_values(["codebook", "frame"])
    k = int(g["codebook"].max()) + 1
    return _stream_costs(g["code"].to_numpy().reshape(k, -1), g["nll"].to_numpy(dtype=float).reshape(k, -1), card,
                         order)


def complexity_table(results: Any, *, order: int = 1) -> pd.DataFrame:
    """One row per (model, kind, clip, condition) with ``loss``, ``markov``, ``lzma`` (nats/token), the corrected
    scores ``s_markov`` and ``s_lzma``, and each one's Δ against the clip's clean version (``d_<quantity>``).

    Args:
        results: a :class:`cae.study.StudyResults` run with ``codes=True``.
        order: the Markov code's context length.
    """
    tokens = results.tokens
    if "code" not in tokens:
        raise ValueError("complexity needs the scored tokens: run the study with codes=True")
    summary = results.summary[results.summary["error"].isna()]
    keys = ["model_id", "kind", "clip", "condition"]
    rows = []
    cards = summary.groupby("model_id")["card"].first()
    for key, g in tokens.groupby(keys, sort=False):
        loss, markov, lz = _version_costs(g, int(cards[key[0]]), order)
        rows.append({**dict(zip(keys, key)), "loss": loss, "markov": markov, "lzma": lz})
    t = pd.DataFrame(rows)
    t["s_markov"], t["s_lzma"] = t["loss"] - t["markov"], t["loss"] - t["lzma"]
    cols = [c for c in ("perturbation_kind", "length", "colour", "level_db") if c in summary]
    t = t.merge(summary[keys + cols], on=keys, how="left")
    clean = t[t["condition"] == "clean"].set_index(["model_id", "kind", "clip"])[list(QUANTITIES)]
    joined = t.join(clean, on=["model_id", "kind", "clip"], rsuffix="_clean")
    for q in QUANTITIES:
        t[f"d_{q}"] = joined[q] - joined[f"{q}_clean"]
    return t


def complexity_deltas(table: pd.DataFrame, *, by: Sequence[str] = ("model_id", "kind", "length"),
                      n_resamples: int = 2000) -> pd.DataFrame:
    """Δ of every quantity per group (perturbed rows), long format: ``quantity`` (as :data:`QUANTITIES` names it),
    ``mean, sd, n, ci_low, ci_high`` and ``share_lower`` (share of clips whose value went down)."""
    p = table[table["condition"] != "clean"]
    parts = []
    for q, name in QUANTITIES.items():
        d = p.assign(delta=p[f"d_{q}"])
        s = group_summary(d, list(by), "delta", n_resamples=n_resamples)
        share = d.groupby(list(by))["delta"].apply(lambda v: float((v < 0).mean())).rename("share_lower")
        parts.append(s.merge(share.reset_index(), on=list(by)).assign(quantity=name))
    return pd.concat(parts, ignore_index=True)


def verdict(deltas: pd.DataFrame, *, length: int | None = None) -> pd.DataFrame:
    """Per (model, kind), at ``length`` (default the longest): does the loss drop, and does the drop survive the
    complexity correction?

    A drop is a CI entirely below 0. ``"no drop"``: Δloss is not significantly negative; ``"drop survives"``: ΔS is
    significantly negative under both complexity estimates; ``"drop explained"``: under neither (the corrected
    score does not go down); ``"survives Markov only"`` / ``"survives lzma only"``: the estimates disagree.
    """
    length = int(deltas["length"].max()) if length is None else length
    d = deltas[deltas["length"] == length]
    rows = []
    for (model, kind), g in d.groupby(["model_id", "kind"]):
        q = g.set_index("quantity")
        loss, sm, sl = q.loc[QUANTITIES["loss"]], q.loc[QUANTITIES["s_markov"]], q.loc[QUANTITIES["s_lzma"]]
        markov_ok, lzma_ok = bool(sm["ci_high"] < 0), bool(sl["ci_high"] < 0)
        if not loss["ci_high"] < 0:
            text = "no drop"
        elif markov_ok and lzma_ok:
            text = "drop survives"
        elif not markov_ok and not lzma_ok:
            text = "drop explained"
        else:
            text = "survives Markov only" if markov_ok else "survives lzma only"
        rows.append({"model_id": model, "kind": kind, "length": length, "d_loss": loss["mean"],
                     "d_markov": q.loc[QUANTITIES["markov"], "mean"], "d_s_markov": sm["mean"],
                     "d_lzma": q.loc[QUANTITIES["lzma"], "mean"], "d_s_lzma": sl["mean"], "verdict": text})
    return pd.DataFrame(rows)


# ---- detection -----------------------------------------------------------------------------------------------
def write_version(src: str | Path, perturbation: Perturbation, out_dir: str | Path, sample_rate: int) -> Path:
    """Write ``src`` under ``perturbation`` as a float WAV once; returns its path. The name holds the source's
    content hash and the hash of the perturbation's full parameters (seed included) and the sample rate, so a
    changed clip, seed or level never reuses an old file."""
    import hashlib
    import json

    import soundfile as sf

    from cae.audio import load

    src = Path(src)
    spec = json.dumps({"perturbation": perturbation.to_dict(), "sample_rate": int(sample_rate)}, sort_keys=True)
    audio = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    out = Path(out_dir) / f"{src.stem}-{audio}--{hashlib.sha256(spec.encode()).hexdigest()[:16]}.wav"
    if not out.exists():
        wav = load(src, sample_rate)
        y = np.asarray(perturbation.apply(wav, sample_rate), dtype=np.float32)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.wav")
        sf.write(tmp, y, sample_rate, subtype="FLOAT")
        tmp.replace(out)
    return out


def profile_versions(clips: Sequence[str | Path], perturbations: Mapping[str, Perturbation], model: Any, *,
                     work_dir: str | Path, cache_dir: str | Path | None = None, markov_order: int = 1,
                     probe_lengths: Sequence[int] = (5,), probe_onsets: Sequence[int] = (150, 300, 450),
                     progress: bool = False) -> pd.DataFrame:
    """Every clip clean and under each named perturbation (whole-clip versions written once as WAVs, noise seeded
    by the clip's index), scored whole and profiled by ``model`` (:func:`cae.profile.profile_clips`) with probe bursts
    of ``probe_lengths`` frames at ``probe_onsets`` (the profile page's bursts; its clean clips' units are reused).

    Returns:
        One row per (clip, version): ``version`` (``"clean"`` or the perturbation's name), ``perturbed`` (0/1), the
        version's clip ``loss``, its complexity ``markov`` and ``lzma`` and ``s_markov``/``s_lzma`` (as
        :func:`complexity_table`), the profile ``score`` and the mean of every profile feature over the short
        bursts.
    """
    from cae.profile import FEATURES, ProfileProtocol, profile_clips
    from cae.scoring import for_clip, seed_offset
    from cae.scoring import run_sweep

    paths: dict[tuple[str, str], Path] = {}
    skipped: list[tuple[str, str, str]] = []
    for i, c in enumerate(clips):
        paths[(str(c), "clean")] = Path(c)
        for name, p in perturbations.items():
            try:
                paths[(str(c), name)] = write_version(c, for_clip(p, seed_offset("index", i, None)), Path(work_dir),
                                                      model.sample_rate)
            except (ValueError, OSError) as e:  # a clip too short for the perturbation: a row of NaN, not a crash
                skipped.append((str(c), name, f"{type(e).__name__}: {e}"))
    files = [str(p) for p in paths.values()]
    protocol = ProfileProtocol(lengths=tuple(int(v) for v in probe_lengths), onsets=tuple(int(v) for v in probe_onsets))
    res = profile_clips(files, model, protocol=protocol, cache_dir=cache_dir, progress=progress)
    whole = run_sweep(files, [], model, cache_dir=cache_dir, codes=True, progress=False).tokens  # cached units
    costs: dict[str, tuple[float, float, float]] = {}
    for clip, g in whole.dropna(subset=["code"]).groupby("clip", sort=False):
        costs[clip] = _version_costs(g, model.card, markov_order)
    table = res.table[res.table["error"].isna() & (res.table["codebook"] == "mean")]
    features = table[table["length_frames"] <= 10].groupby("clip")[list(FEATURES)].mean()
    scores = res.clips.set_index("clip")
    nan = float("nan")
    rows = []
    for (clip, version), path in paths.items():
        key = str(path)
        loss, markov, lz = costs.get(key, (nan, nan, nan))
        rows.append({"clip": clip, "version": version, "perturbed": int(version != "clean"), "loss": loss,
                     "markov": markov, "lzma": lz, "s_markov": loss - markov, "s_lzma": loss - lz,
                     "score": float(scores.loc[key, "score"]) if key in scores.index else nan,
                     **{f: float(features.loc[key, f]) if key in features.index else nan for f in FEATURES},
                     "error": None if key in costs else "not scored (see the sweep's error rows)"})
    for clip, version, error in skipped:
        rows.append({"clip": clip, "version": version, "perturbed": 1, "error": error})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Feature:
    """A feature and the direction in which it flags corruption (+1: higher is more anomalous)."""

    name: str
    direction: int
    auroc: float


def best_feature(versions: pd.DataFrame, features: Sequence[str]) -> Feature:
    """The single feature that best separates all perturbed versions from the clean clips (pooled AUROC, farthest
    from 0.5), with the orientation that makes it ≥ 0.5. Chosen on the data it is then evaluated on: optimistic."""
    from cae.analysis.detection import auroc

    clean = versions[versions["perturbed"] == 0]
    pert = versions[versions["perturbed"] == 1]
    best = Feature("", 1, 0.5)
    for f in features:
        a = auroc(clean[f].to_numpy(dtype=float), pert[f].to_numpy(dtype=float))
        if np.isfinite(a) and abs(a - 0.5) > abs(best.auroc - 0.5):
            best = Feature(f, 1 if a >= 0.5 else -1, max(a, 1 - a))
    if not best.name:
        raise ValueError("no feature has a finite AUROC")
    return best


def detection_perturbations(noise_bursts: Sequence[Sequence[Any]], shuffles: Sequence[Sequence[Any]],
                             filters: Mapping[str, Sequence[float]], *, onset: int = 250, seed: int = 42
                             ) -> dict[str, Perturbation]:
    """The named perturbations of the detection study: noise bursts ``(colour, frames)`` at the paper's TrainingSet
    level from ``onset``, shuffles ``(variant, frames)`` (:func:`cae.study.shuffle_conditions`), and whole-clip
    filters ``{"lowpass": [Hz, ...], "bitcrush": [bits, ...]}`` (the profile page's ladders).

    >>> list(detection_perturbations([["white", 50]], [["segment_swap", 100]], {"lowpass": [1000]}))
    ['noise white 50f', 'segment_swap 100f', 'low-pass 1000 Hz']
    """
    from cae.study import noise_conditions, shuffle_conditions

    out: dict[str, Perturbation] = {}
    for colour, n in noise_bursts:
        out[f"noise {colour} {n}f"] = noise_conditions("heldout", [int(n)], colour=str(colour), level_mode="paper",
                                                       onset=onset, seed=seed)[0]
    for variant, n in shuffles:
        out[f"{variant} {n}f"] = shuffle_conditions(str(variant), [int(n)], onset=onset, seed=seed)[0]
    for family, values in filters.items():
        for v in values:
            if family == "lowpass":
                out[f"low-pass {v:g} Hz"] = LowPass(float(v))
            elif family == "bitcrush":
                out[f"bit-crush {int(v)} bit"] = BitCrush(int(v))
            else:
                raise ValueError(f"unknown filter family {family!r}; known: lowpass, bitcrush")
    return out


def detection_table(versions: pd.DataFrame, scores: Mapping[str, int], *, combine: Sequence[str] = (),
                    n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired accuracy and AUROC (with CIs) of each score for each perturbation.

    Args:
        versions: one row per (clip, version), as :func:`profile_versions` gives (plus any score columns).
        scores: ``{column: direction}``: ``+1`` when higher means more anomalous (a loss), ``−1`` when lower does.
        combine: feature columns of a logistic regression fitted per perturbation with folds over clips
            (reported as the score ``"combined"``).
    """
    rows = []
    clean = versions[versions["version"] == "clean"].set_index("clip")
    for name, pert in versions[versions["version"] != "clean"].groupby("version", sort=False):
        pert = pert.set_index("clip")
        clips = [c for c in pert.index if c in clean.index]
        cols = dict(scores)
        pair = pd.concat([clean.loc[clips].assign(perturbed=0), pert.loc[clips].assign(perturbed=1)])
        if combine:
            pair = pair.reset_index()
            pair["combined"] = cross_validated_scores(pair, list(combine)).to_numpy()
            pair = pair.set_index("clip")
            cols["combined"] = 1
        for col, direction in cols.items():
            c = pair[pair["perturbed"] == 0].loc[clips, col].to_numpy(dtype=float)
            p = pair[pair["perturbed"] == 1].loc[clips, col].to_numpy(dtype=float)
            m = bootstrap_metrics(c, p, direction, n_resamples=n_resamples, seed=seed)
            rows.append({"perturbation": name, "score": col, **m})
    return pd.DataFrame(rows)


def detection_pivot(detection: pd.DataFrame) -> pd.DataFrame:
    """:func:`detection_table` as one row per perturbation and, per score, ``AUROC [CI]`` and paired accuracy."""
    d = detection.assign(
        auroc_ci=lambda t: [f"{a:.2f} [{lo:.2f}, {hi:.2f}]" for a, lo, hi in zip(t.auroc, t.auroc_low, t.auroc_high)],
        accuracy_ci=lambda t: [f"{a:.2f} [{lo:.2f}, {hi:.2f}]"
                               for a, lo, hi in zip(t.accuracy, t.accuracy_low, t.accuracy_high)])
    out = d.pivot(index="perturbation", columns="score", values=["auroc_ci", "accuracy_ci"])
    out = out.reindex(index=list(dict.fromkeys(detection["perturbation"])))
    out.columns = [f"{score}: {'AUROC' if m == 'auroc_ci' else 'paired acc.'}" for m, score in out.columns]
    order = [c for s in dict.fromkeys(detection["score"]) for c in (f"{s}: AUROC", f"{s}: paired acc.")]
    return out[order]


def summary_text(verdicts: pd.DataFrame, detection: pd.DataFrame) -> str:
    """The notebook's computed "what this shows": the complexity verdict per model and kind, and which signal
    detects which perturbations."""
    lines = []
    for _, r in verdicts.iterrows():
        lines.append(f"- **{r.kind}** ({r.model_id}), noise of {r.length} frames: Δloss {r.d_loss:+.3f}, "
                     f"ΔL (Markov) {r.d_markov:+.3f}, ΔS {r.d_s_markov:+.3f} nats/token (lzma: ΔL {r.d_lzma:+.3f}, "
                     f"ΔS {r.d_s_lzma:+.3f}) — **{r.verdict}**.")
    mean = detection.groupby("score", sort=False)["auroc"].mean().sort_values(ascending=False)
    wrong = detection[detection["auroc_high"] < 0.5].groupby("score", sort=False)["perturbation"].apply(list)
    lines.append(f"- Detection, mean AUROC over the {detection['perturbation'].nunique()} perturbations: "
                 + ", ".join(f"{s} {v:.2f}" for s, v in mean.items()) + ".")
    for s, perts in wrong.items():
        lines.append(f"- {s} moves the *wrong* way (AUROC CI below 0.5) for: {', '.join(perts)}.")
    return "\n".join(lines)
