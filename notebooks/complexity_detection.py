# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the paper — is Context Amnesia input complexity, and which signal detects corruption?
#
# Two questions the paper leaves open.
#
# **1. Input complexity.** Likelihood models give *higher* likelihood to simpler inputs (Serrà et al., ICLR 2020;
# Nalisnick et al., 2019). Noise that the codec maps to a few repeated tokens is a very simple input. So for every
# scored clip version we measure, without the model, how compressible its token stream is — an adaptive order-1
# Markov code per codebook and lzma, both in nats per token ({py:mod}`cae.analysis.complexity`) — and recompute the
# paper's Δ on the complexity-corrected score S = loss − L. If the loss drops only because the tokens got simpler,
# ΔL drops with it and ΔS stays at or above zero. The shuffles, which keep the audio's samples and so its
# complexity roughly constant, are the contrast case.
#
# **2. Detection power.** The paper's claim is that the absolute loss is an unreliable quality signal and the shape
# of the loss curve an informative one. We measure it: for each perturbation, how well does each signal flag the
# perturbed version of a clip — paired accuracy (against the clip's own clean version) and AUROC (against clean
# clips), with bootstrap CIs over clips ({py:mod}`cae.analysis.detection`, {py:mod}`cae.beyond`).
#
# Parameters (papermill): `models` (the complexity part runs each; detection uses the first), `datasets`,
# `n_clips`, `lengths`, `onset`, `seed`, `markov_order`, `shuffle_variant`, `shuffle_lengths`,
# `detection_dataset`, `detection_clips`, the detection perturbations (`noise_bursts`: colour and length in frames;
# `shuffles`: variant and length; `filters`: the profile page's low-pass cutoffs in Hz and bit-crush depths), the
# profile's probe bursts (`probe_lengths`, `probe_onsets`), `device`, `cache_dir`, `plugins`.

# %% tags=["parameters"]
models = ["reference", "reference-mel"]
datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood"}
n_clips = 20
lengths = [5, 10, 50, 100, 150, 200]
onset = 250
seed = 42
markov_order = 1
shuffle_variant = "segment_swap"
shuffle_lengths = [1, 2, 5, 10, 35, 50, 70, 100, 150, 200]
detection_dataset = "reference:heldout"
detection_clips = 10
noise_bursts = [["white", 10], ["white", 50], ["white", 200], ["pink", 200], ["brown", 200]]
shuffles = [["pair_swaps", 10], ["segment_swap", 100], ["block_swap", 50]]
filters = {"lowpass": [4000.0, 1000.0], "bitcrush": [8, 4]}
probe_lengths = [5]
probe_onsets = [150, 300, 450]
device = None
cache_dir = None
plugins = []

# %%
from IPython.display import Markdown, display

from cae import beyond, plotting, study
from cae.datasets import resolve_dataset
from cae.paths import cache_dir as cae_cache_dir
from cae.profile import FEATURES

plotting.enable()
model_list = study.load_models(models, protocol_name="corrected", device=device, plugins=plugins)

# %% [markdown]
# ## 1. Does the drop survive the complexity correction?
#
# The paper's noise (white, the authors' dBFS per kind, from frame 250) on every model and kind; the scored tokens
# give L and S. Points are means over clips with bootstrap 95 % CIs.

# %%
noise = study.run(model_list, datasets, lambda k: study.noise_conditions(k, lengths, level_mode="paper", onset=onset,
                                                                         seed=seed),
                  n_clips=n_clips, cache_dir=cache_dir, codes=True)
table = beyond.complexity_table(noise, order=markov_order)
deltas = beyond.complexity_deltas(table)
plotting.line_ci(deltas, x="length", color="kind", column="quantity",
                 row="model_id", x_title="noise length (frames)", y_title="Δ (nats/token)", width=170, height=150)

# %% [markdown]
# At the longest noise, per model and kind (Δ in nats per token; the verdict reads the 95 % CIs):

# %%
verdicts = beyond.verdict(deltas)
verdicts.round(3)

# %% [markdown]
# ## The contrast: shuffles
#
# A segment swap moves audio without adding any: the token stream's complexity should barely change, and any Δ of
# the loss is about order, not simplicity.

# %%
shuffled = study.run(model_list[:1], datasets, lambda k: study.shuffle_conditions(shuffle_variant, shuffle_lengths,
                                                                                   onset=onset, seed=seed),
                     n_clips=n_clips, cache_dir=cache_dir, codes=True)
shuffle_deltas = beyond.complexity_deltas(beyond.complexity_table(shuffled, order=markov_order))
plotting.line_ci(shuffle_deltas, x="length", color="kind", column="quantity",
                 x_title="shuffle length (frames)", y_title="Δ (nats/token)", width=170, height=150, wrap=5)

# %% [markdown]
# ## 2. Which signal detects corruption?
#
# Each clip of the detection set clean and under each perturbation (by default: white noise of three lengths and
# pink and brown noise at the paper's level from frame 250, the three shuffles, and two steps each of the profile
# page's low-pass and bit-crush ladders). Every version is scored whole (its clip loss and the complexity-corrected S) and
# profiled (short probe bursts, {doc}`profile_score`). Signals: the clip **loss** and **S** (higher = more
# anomalous), the **profile score** (lower = worse quality, its claim), the single profile **feature** that works
# best on these data (chosen here, so optimistic), and a **combined** logistic regression of all of them fitted with
# folds over clips (honest: never tested on a clip it was fitted on).

# %%
detector = model_list[0]
clips = resolve_dataset(detection_dataset, n_clips=detection_clips, model=detector)
perturbations = beyond.detection_perturbations(noise_bursts, shuffles, filters, onset=onset, seed=seed)
versions = beyond.profile_versions(clips, perturbations, detector, work_dir=cae_cache_dir() / "detection",
                                   cache_dir=cache_dir, markov_order=markov_order, probe_lengths=probe_lengths,
                                   probe_onsets=probe_onsets)
best = beyond.best_feature(versions, FEATURES)
detection = beyond.detection_table(
    versions, {"loss": 1, "s_markov": 1, "score": -1, best.name: best.direction},
    combine=["loss", "markov", "lzma", "score", *FEATURES])
detection["score"] = detection["score"].replace({"loss": "clip loss", "s_markov": "S = loss − Markov",
                                                 "score": "profile score", best.name: f"feature: {best.name}",
                                                 "combined": "combined (CV)"})
plotting.detection_chart(detection)

# %% [markdown]
# The same numbers (paired accuracy and AUROC with 95 % CIs over clips):

# %%
beyond.detection_pivot(detection).round(2)

# %%
display(Markdown("**What this run shows.**\n\n" + beyond.summary_text(verdicts, detection)))
