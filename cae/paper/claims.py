"""The paper's claims tested on a run: one row per claim, dataset kind and model, with a verdict from its CI.

:func:`evaluate` recomputes, from the cached sweeps the research-question notebooks ran (nothing is copied by
hand), every number the Results page and the book's opening page show. A claim is one of three shapes:

* **below zero** / **above zero** (:func:`verdict` with ``direction`` −1 / +1): *holds* when the 95 % CI excludes
  zero in the claimed direction, *does not hold* when it excludes zero in the other direction, *inconclusive*
  when it contains zero;
* **near zero** (:func:`near_zero`): *holds* when ``|mean| < tolerance``, with the tolerance part of the claim's
  text (the paper gives none; we state ours).

Each row names the notebook that shows the curves behind it (``page``), so that a summary can link there, and the
paper's own numbers for it (``paper``), quoted from :mod:`cae.paper.published` (:func:`published_range`), not
retyped. :func:`findings` turns the table into the short statements the book opens with: one per claim group,
saying on how many kinds it holds. :func:`headline` and :func:`fig2_beside` put the paper's Fig. 2 beside a run's
Δ per noise length, as the opening page's figure and as RQ1's table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from cae import beyond, study
from cae.analysis import group_summary
from cae.paper import published
from cae.paper.protocol import PAPER_LENGTHS, PAPER_ONSET_FRAME, PAPER_SEED_BASE

__all__ = ["ClaimSettings", "dynamics_findings", "evaluate", "fig2_beside", "findings", "headline", "near_zero",
           "noise_study", "published_range", "verdict"]

HOLDS, FAILS, INCONCLUSIVE, NA = "holds", "does not hold", "inconclusive", "n/a"


def verdict(low: float, high: float, direction: int) -> str:
    """A directional claim against a CI ``[low, high]``: ``direction`` −1 claims "below zero", +1 "above zero".

    >>> verdict(-0.3, -0.1, -1), verdict(0.1, 0.3, -1), verdict(-0.1, 0.1, -1), verdict(0.1, 0.3, +1)
    ('holds', 'does not hold', 'inconclusive', 'holds')
    >>> verdict(float("nan"), 0.1, -1)
    'n/a'
    """
    if direction not in (-1, 1):
        raise ValueError(f"direction must be -1 or +1, got {direction}")
    if pd.isna(low) or pd.isna(high):
        return NA
    lo, hi = (low, high) if direction > 0 else (-high, -low)
    return HOLDS if lo > 0 else (FAILS if hi < 0 else INCONCLUSIVE)


def near_zero(mean: float, tolerance: float) -> str:
    """A "≈ 0" claim: holds when ``|mean| < tolerance``.

    >>> near_zero(0.04, 0.05), near_zero(-0.06, 0.05), near_zero(float("nan"), 0.05)
    ('holds', 'does not hold', 'n/a')
    """
    if pd.isna(mean):
        return NA
    return HOLDS if abs(mean) < tolerance else FAILS


#: Shuffle lengths (frames) of the "short shuffles raise the loss" and "long shuffles stay near the original" claims.
SHORT_SHUFFLES, LONG_SHUFFLES = (1, 2, 5), (100, 150, 200)


def published_range(values: Iterable[float]) -> str:
    """Published values as the range the claims quote: two decimals with true minus signs, from the value nearest
    zero outwards when all are negative, else from the lowest to the highest.

    >>> published_range([-0.5, -0.16, -0.65]), published_range([0.04, -0.17, 0.05]), published_range([0.79, 0.54])
    ('−0.16 … −0.65', '−0.17 … +0.05', '+0.54 … +0.79')
    """
    v = sorted(float(x) for x in values)
    lo, hi = (v[-1], v[0]) if v[-1] < 0 else (v[0], v[-1])
    return f"{_signed(lo, 2)} … {_signed(hi, 2)}"


def _fig2_range(length: int) -> str:
    f = published.fig2()
    return published_range(f.loc[f["length"] == length, "delta"])


def _fig4_range(region: str) -> str:
    f = published.fig4()
    return published_range(f.loc[f["region"] == region, "mean"])


def _fig5_range(lengths: Sequence[int]) -> str:
    f = published.fig5()
    return published_range(f.loc[f["length"].isin(lengths), "delta"])


@dataclass(frozen=True)
class ClaimSettings:
    """What :func:`evaluate` runs (the Results notebook's parameters; see ``params/<set>/results.yaml``)."""

    datasets: Mapping[str, str]
    n_clips: int | None = 40
    ablation_clips: int | None = 20
    shuffle_datasets: Mapping[str, str] = field(default_factory=dict)
    shuffle_clips: int | None = 20
    lengths: Sequence[int] = PAPER_LENGTHS
    short_shuffles: Sequence[int] = SHORT_SHUFFLES
    long_shuffles: Sequence[int] = LONG_SHUFFLES
    matched_snr: float = 0.0
    onset: int = PAPER_ONSET_FRAME
    seed: int = PAPER_SEED_BASE
    cache_dir: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ClaimSettings:
        """The settings named in ``params`` (a notebook's parameters, e.g. ``globals()``); other names are ignored.

        >>> ClaimSettings.from_params({"datasets": {"ood": "synthetic"}, "n_clips": 2, "models": ["x"]}).n_clips
        2
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def _fmt(mean: float, low: float, high: float) -> str:
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _row(claim: str, group: str, page: str, r: Mapping[str, Any], paper: str, result: str,
         extra: str = "") -> dict[str, Any]:
    return {"claim": claim, "group": group, "page": page, "kind": r["kind"], "model": r["model_id"], "paper": paper,
            "this run": _fmt(r["mean"], r["ci_low"], r["ci_high"]) + extra, "mean": r["mean"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "verdict": result}


def _noise_rows(noise: Any, s: ClaimSettings) -> list[dict[str, Any]]:
    rows = []
    longest, shortest = max(s.lengths), min(s.lengths)
    by_length = study.delta_by_length(noise)
    for _, r in by_length[by_length["length"] == longest].iterrows():
        rows.append(_row(f"Δ clip loss < 0 with {longest}-frame noise (Fig. 2)", "long noise lowers the loss",
                         "rq1_noise_length", r, f"MusicGen {_fig2_range(max(PAPER_LENGTHS))}",
                         verdict(r["ci_low"], r["ci_high"], -1),
                         f"; {100 * r['share_lower']:.0f} % lower"))
    for _, r in by_length[by_length["length"] == shortest].iterrows():
        rows.append(_row(f"Δ ≈ 0 with {shortest}-frame noise (|Δ| < 0.05)", "short noise changes nothing",
                         "rq1_noise_length", r, _fig2_range(min(PAPER_LENGTHS)), near_zero(r["mean"], 0.05)))
    return rows


def _region_rows(noise: Any, s: ClaimSettings) -> list[dict[str, Any]]:
    regions = study.region_means(noise, onset=s.onset, methods=("anchored",))
    regions = regions[regions["length"] >= 50]
    per_clip = regions.groupby(["model_id", "kind", "clip", "region"])["delta"].mean().reset_index()
    rows = []
    for _, r in group_summary(per_clip, ["model_id", "kind", "region"], "delta", n_resamples=2000).iterrows():
        if r["region"] == "peak":
            rows.append(_row("Peak > 0 (Fig. 4)", "Peak, Assimilation, Recovery", "rq3_regions", r, _fig4_range("peak"),
                             verdict(r["ci_low"], r["ci_high"], +1)))
        elif r["region"] == "assimilation":
            rows.append(_row("Assimilation < 0 (Fig. 4)", "Peak, Assimilation, Recovery", "rq3_regions", r,
                             _fig4_range("assimilation"), verdict(r["ci_low"], r["ci_high"], -1)))
        else:
            rows.append(_row("Recovery ≈ 0 (|Δ| < 0.1; Fig. 4)", "Peak, Assimilation, Recovery", "rq3_regions", r,
                             _fig4_range("recovery"), near_zero(r["mean"], 0.1)))
    return rows


def _shuffle_rows(shuffled: Any, s: ClaimSettings) -> list[dict[str, Any]]:
    d = study.clip_deltas(shuffled)
    rows = []
    for name, ls in (("short", s.short_shuffles), ("long", s.long_shuffles)):
        per = d[d["length"].isin(ls)].groupby(["model_id", "kind", "clip"])["delta"].mean().reset_index()
        frames = ", ".join(map(str, ls))
        for _, r in group_summary(per, ["model_id", "kind"], "delta", n_resamples=2000).iterrows():
            if name == "short":
                rows.append(_row(f"short shuffles ({frames} frames) raise the loss (Fig. 5)", "order shuffles",
                                 "rq4_shuffle_colour", r, f"{_fig5_range(SHORT_SHUFFLES)} (Medium)",
                                 verdict(r["ci_low"], r["ci_high"], +1)))
            else:
                rows.append(_row(f"long shuffles ({frames} frames) stay near the original (|Δ| < 0.05)",
                                 "order shuffles", "rq4_shuffle_colour", r, f"{_fig5_range(LONG_SHUFFLES)} (Medium)",
                                 near_zero(r["mean"], 0.05)))
    return rows


def noise_study(models: Sequence[Any], s: ClaimSettings, *, progress: bool = False) -> Any:
    """The white-noise sweep the claims rest on (RQ1's, with codes): :func:`cae.study.run` over ``s.datasets``."""
    return study.run(models, s.datasets, study.NoiseSweep(s.lengths, onset=s.onset, seed=s.seed), n_clips=s.n_clips,
                     codes=True, cache_dir=s.cache_dir, progress=progress)


def yue_rows(noise: Any, model_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The paper's YuE claims (§3.2) on the noise study's rows of ``model_ids`` (YuE models; none: no rows).

    Per kind: the Pearson correlation of the mean Δ with the noise length over the lengths (the paper: "r < −0.90,
    p < 0.01" on TrainingSet and OOD; one-sided, negative), and the share of noisy clips, over every length, that
    score lower than their clean clip (the paper, on YuE's own generations: all of them).
    """
    from scipy import stats

    rows: list[dict[str, Any]] = []
    if not model_ids:
        return rows
    by_length = study.delta_by_length(noise)
    deltas = study.clip_deltas(noise)
    for (model, kind), g in by_length[by_length["model_id"].isin(model_ids)].groupby(["model_id", "kind"]):
        g = g.sort_values("length")
        if len(g) >= 3:
            r = stats.pearsonr(g["length"], g["mean"], alternative="less")
            result = HOLDS if (r.statistic < -0.9 and r.pvalue < 0.01) else FAILS
            rows.append({"claim": "YuE: the loss falls with noise length, r < −0.90, p < 0.01 (§3.2)", "group": "YuE",
                         "page": "rq1_noise_length", "kind": kind, "model": model,
                         "paper": "r < −0.90 (TrainingSet, OOD)", "mean": float(r.statistic), "ci_low": float("nan"),
                         "ci_high": float("nan"), "this run": f"r = {r.statistic:+.2f}, p = {r.pvalue:.3f}",
                         "verdict": result})
        d = deltas[(deltas["model_id"] == model) & (deltas["kind"] == kind)]["delta"]
        share = float((d < 0).mean()) if len(d) else float("nan")
        rows.append({"claim": "YuE: every noisy clip scores lower than its clean clip (§3.2)", "group": "YuE",
                     "page": "rq1_noise_length", "kind": kind, "model": model, "paper": "all (Generated by YuE)",
                     "mean": share, "ci_low": float("nan"), "ci_high": float("nan"),
                     "this run": f"{100 * share:.0f} % of {len(d)} lower", "verdict":
                     NA if not len(d) else (HOLDS if share == 1.0 else FAILS)})
    return rows


def evaluate(models: Sequence[Any], s: ClaimSettings, *, paper_models: Sequence[Any] | None = None,
             noise: Any = None, progress: bool = False) -> pd.DataFrame:
    """Every claim on ``models`` (loaded with the corrected protocol; ``paper_models``: the same models under the
    authors' protocol, for the scoring-alignment rows; ``None`` skips them).

    Returns:
        One row per claim × kind × model: ``claim, group, page, kind, model, paper, this run, mean, ci_low, ci_high,
        verdict`` (``page``: the notebook that shows it; ``group``: what :func:`findings` summarises).
        ``noise``: the noise study (:func:`noise_study`) when the caller already has it.
    """
    longest = max(s.lengths)
    run = dict(cache_dir=s.cache_dir, progress=progress)
    noise = noise if noise is not None else noise_study(models, s, progress=progress)
    rows = _noise_rows(noise, s) + _region_rows(noise, s)
    rows += yue_rows(noise, [m.model_id for m in models if getattr(m, "backend", "") == "yue"])
    if s.shuffle_datasets:
        lengths = sorted(set(s.short_shuffles) | set(s.long_shuffles))
        shuffled = study.run(models, s.shuffle_datasets,
                             lambda k: study.shuffle_conditions("fig5", lengths, seed=s.seed),
                             n_clips=s.shuffle_clips, **run)
        rows += _shuffle_rows(shuffled, s)

    def longest_only(**kw: Any) -> study.NoiseSweep:
        return study.NoiseSweep([longest], onset=s.onset, seed=s.seed, **kw)

    for proto, ms in (("paper", paper_models), ("corrected", models)):
        if ms is None:
            continue
        res = study.run(ms, s.datasets, longest_only(), n_clips=s.ablation_clips, protocol_name=proto, **run)
        label = "authors' un-delayed" if proto == "paper" else "delay-aligned"
        for _, r in study.delta_by_length(res).iterrows():
            rows.append(_row(f"Δ < 0 at {longest} frames, {label} scoring", "the drop under each protocol",
                             "ablations", r, "(the paper used un-delayed)", verdict(r["ci_low"], r["ci_high"], -1)))
    snr = study.run(models, s.datasets, longest_only(level_mode="snr", level_db=s.matched_snr),
                    n_clips=s.ablation_clips, **run)
    for _, r in study.delta_by_length(snr).iterrows():
        rows.append(_row(f"Δ < 0 at {longest} frames with noise matched to the music (SNR {s.matched_snr:+g} dB)",
                         "the drop under each protocol", "ablations", r, "(claimed 'matched'; actually absolute dBFS)",
                         verdict(r["ci_low"], r["ci_high"], -1)))
    complexity = beyond.complexity_deltas(beyond.complexity_table(noise))
    corrected = complexity[(complexity["length"] == longest)
                           & (complexity["quantity"] == beyond.QUANTITIES["s_markov"])]
    for _, r in corrected.iterrows():
        rows.append(_row(f"Δ < 0 at {longest} frames, complexity-corrected (S = loss − Markov-1 code; beyond the paper)",
                         "the drop beyond input complexity", "complexity_detection", r, "(not tested)",
                         verdict(r["ci_low"], r["ci_high"], -1)))
    return pd.DataFrame(rows)


#: Book page titles of the notebooks claims point to.
PAGES = {"rq1_noise_length": "RQ1", "rq3_regions": "RQ3", "rq4_shuffle_colour": "RQ4", "ablations": "Ablations",
         "complexity_detection": "Beyond the paper", "results": "Results"}

#: What each claim group tests, said once beside its verdicts.
WHY = {
    "long noise lowers the loss": "the paper's central observation, Fig. 2",
    "short noise changes nothing": "the other end of the same curve",
    "Peak, Assimilation, Recovery": "the three stages of the token-wise loss, on windows placed where the codec's "
                                    "tokens changed",
    "order shuffles": "shuffling frames instead of adding noise, Fig. 5",
    "the drop under each protocol": "whether the drop depends on how the authors scored and how loud their noise "
                                    "was",
    "YuE": "the paper's replication on its fifth model (§3.2); rows appear when a YuE model is in the run",
    "the drop beyond input complexity": "whether the drop is more than noise tokens being simpler to predict: the "
                                        "loss minus a model-free code length",
}


def _verdict_counts(rows: pd.DataFrame) -> str:
    parts = []
    for v in (HOLDS, FAILS, INCONCLUSIVE, NA):
        kinds = rows.loc[rows["verdict"] == v, "kind"].tolist()
        if not kinds:
            continue
        if len(rows) == 1:
            parts.append(f"{v} ({kinds[0]})")
        elif len(kinds) == len(rows):
            parts.append(f"{v} on all {len(rows)} kinds")
        else:
            parts.append(f"{v} on {len(kinds)} of {len(rows)} kinds ({', '.join(kinds)})")
    return ", ".join(parts)


def findings(table: pd.DataFrame, *, link: Callable[[str], str] = lambda page: f"{page}.ipynb") -> list[str]:
    """One Markdown statement per claim group (in the table's order): what the group tests (:data:`WHY`), then per
    claim (and per model, when there are several) on how many dataset kinds it holds, fails or is inconclusive and
    the range of its estimates, with a link to the page that shows it.

    >>> t = pd.DataFrame({"claim": ["Δ < 0"] * 3, "group": ["long noise lowers the loss"] * 3,
    ...                   "page": ["rq1_noise_length"] * 3, "kind": ["a", "b", "c"], "model": ["m"] * 3,
    ...                   "mean": [-0.2, -0.1, 0.05], "verdict": ["holds", "holds", "inconclusive"]})
    >>> print(findings(t)[0])
    **Long noise lowers the loss** — the paper's central observation, Fig. 2 ([RQ1](rq1_noise_length.ipynb)). Δ < 0: holds on 2 of 3 kinds (a, b), inconclusive on 1 of 3 kinds (c); Δ = −0.200 … +0.050.
    >>> two = pd.concat([t, t.assign(model="n", verdict="holds")])
    >>> print(findings(two)[0].split(")). ")[1])
    Δ < 0, m: holds on 2 of 3 kinds (a, b), inconclusive on 1 of 3 kinds (c); Δ = −0.200 … +0.050. Δ < 0, n: holds on all 3 kinds; Δ = −0.200 … +0.050.
    """
    several = table["model"].nunique() > 1
    out = []
    for group, rows in table.groupby("group", sort=False):
        page = rows["page"].iloc[0]
        claims = []
        for (claim, model), c in rows.groupby(["claim", "model"], sort=False):
            lo, hi = float(np.nanmin(c["mean"])), float(np.nanmax(c["mean"]))
            span = _signed(lo) if lo == hi else f"{_signed(lo)} … {_signed(hi)}"
            label = f"{claim}, {model}" if several else claim
            claims.append(f"{label}: {_verdict_counts(c)}; Δ = {span}")
        why = WHY.get(group)
        where = f"[{PAGES.get(page, page)}]({link(page)})"
        out.append(f"**{group[0].upper() + group[1:]}**{' — ' + why if why else ''} ({where}). " + ". ".join(claims)
                   + ".")
    return out


def _signed(x: float, digits: int = 3) -> str:
    return "n/a" if np.isnan(x) else f"{x:+.{digits}f}".replace("-", "−")


def _paper_checkpoints(by_length: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(model_id, the paper's Fig. 2 rows for its checkpoint)`` for each model of ``by_length`` that is one of the
    paper's checkpoints (:func:`cae.paper.model_key`), in the table's order."""
    fig2 = published.fig2()
    out = []
    for model_id in by_length["model_id"].unique():
        key = published.model_key(model_id)
        if key is not None:
            out.append((model_id, fig2[fig2["model"] == key]))
    return out


def headline(by_length: pd.DataFrame) -> pd.DataFrame:
    """The book's headline figure data: Δ of the clip loss per noise length, kind and model from
    :func:`cae.study.delta_by_length` (``source`` = "this run"), plus, for a model that is one of the paper's
    checkpoints (:func:`cae.paper.model_key`), the paper's Fig. 2 values for the same kinds (``source`` =
    "paper", no CI).

    >>> ours = pd.DataFrame({"model_id": ["facebook/musicgen-small@random"], "kind": ["ood"], "length": [200],
    ...                      "mean": [-0.1], "ci_low": [-0.2], "ci_high": [0.0]})
    >>> headline(ours)[["source", "mean"]].values.tolist()
    [['this run', -0.1], ['paper', -0.5]]
    """
    cols = ["model_id", "kind", "length", "mean", "ci_low", "ci_high"]
    parts = [by_length[cols].assign(source="this run")]
    for model_id, fig2 in _paper_checkpoints(by_length):
        kinds = by_length.loc[by_length["model_id"] == model_id, "kind"].unique()
        p = fig2[fig2["kind"].isin(kinds) & fig2["length"].isin(by_length["length"])]
        parts.append(pd.DataFrame({"model_id": model_id, "kind": p["kind"], "length": p["length"], "mean": p["delta"],
                                   "ci_low": p["delta"], "ci_high": p["delta"], "source": "paper"}))
    return pd.concat(parts, ignore_index=True)


def fig2_beside(by_length: pd.DataFrame) -> pd.DataFrame:
    """The paper's Fig. 2 beside this run: one row per paper checkpoint, kind and length that both have, with the
    paper's Δ (``paper``, ≈ readings; ``sd`` at 200 frames) and ours (``ours``: the ``mean`` of
    :func:`cae.study.delta_by_length`). Models that are not one of the paper's checkpoints are left out, so the table
    is empty when none is.

    Returns:
        Columns ``model`` (the checkpoint), ``kind``, ``length``, ``paper``, ``sd``, ``ours``.

    >>> ours = pd.DataFrame({"model_id": ["audiocraft:facebook/musicgen-large", "reference"], "kind": ["ood", "ood"],
    ...                      "length": [200, 200], "mean": [-0.31, 0.2]})
    >>> fig2_beside(ours).values.tolist()
    [['facebook/musicgen-large', 'ood', 200, -0.28, 0.46, -0.31]]
    """
    parts = []
    for model_id, fig2 in _paper_checkpoints(by_length):
        ours = by_length.loc[by_length["model_id"] == model_id, ["kind", "length", "mean"]]
        parts.append(fig2.rename(columns={"delta": "paper"}).merge(ours.rename(columns={"mean": "ours"}),
                                                                   on=["kind", "length"]))
    if not parts:
        return pd.DataFrame(columns=["model", "kind", "length", "paper", "sd", "ours"])
    return pd.concat(parts, ignore_index=True)


def dynamics_findings(curves: pd.DataFrame, absolute: pd.DataFrame, length: int) -> list[str]:
    """RQ2 in one line per model and kind: Δℓ_t (codebook mean, :func:`cae.study.onset_curves`) at the onset
    (frames 0–4), inside the noise (5 … L−1) and after it (L+5 … L+49), and the absolute loss inside the noise
    against the clean music's and pure noise's (:func:`cae.study.absolute_curves`) for noise of ``length`` frames.

    >>> curves = pd.DataFrame({"model_id": "m", "kind": "ood", "length": 10, "codebook": "mean",
    ...                        "rel_frame": range(-2, 70), "mean": [0.0, 0.0] + [1.0] * 5 + [-2.0] * 5 + [0.1] * 60})
    >>> absolute = pd.DataFrame({"model_id": "m", "kind": "ood", "curve": ["music", "music + perturb", "noise"],
    ...                          "rel_frame": 6, "mean": [5.0, 3.0, 2.5]})
    >>> print(dynamics_findings(curves, absolute, 10)[0])
    **ood** (m): Δℓ_t = +1.00 at the onset, −2.00 inside the noise, +0.10 after it; inside the noise the loss is 3.00 nats against 5.00 for the music and 2.50 for pure noise.
    """
    c = curves[(curves["codebook"] == "mean") & (curves["length"] == length)]
    a = absolute[(absolute["rel_frame"] >= 5) & (absolute["rel_frame"] < length)]
    out = []
    for (model_id, kind), g in c.groupby(["model_id", "kind"], sort=False):
        def window(lo: int, hi: int, g: pd.DataFrame = g) -> str:
            v = g.loc[(g["rel_frame"] >= lo) & (g["rel_frame"] < hi), "mean"]
            return _signed(float(v.mean()), 2) if len(v) else "n/a"

        line = (f"**{kind}** ({model_id}): Δℓ_t = {window(0, 5)} at the onset, {window(5, length)} inside the noise, "
                f"{window(length + 5, length + 50)} after it")
        levels = a[(a["model_id"] == model_id) & (a["kind"] == kind)].groupby("curve")["mean"].mean()
        if {"music", "music + perturb", "noise"} <= set(levels.index):
            line += (f"; inside the noise the loss is {levels['music + perturb']:.2f} nats against "
                     f"{levels['music']:.2f} for the music and {levels['noise']:.2f} for pure noise")
        out.append(line + ".")
    return out

