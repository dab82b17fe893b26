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
# # RQ1 — Does corrupting music lower the loss, and how does it scale with length?
#
# The paper replaces the audio from 5 s (frame 250) for *L* frames with white noise, re-encodes the clip and
# compares the clip's mean per-token loss with the clean clip's: Δ = loss(perturbed) − loss(clean). Its Fig. 2
# shows Δ near zero for short noise and increasingly **negative** as the noise gets longer, on every model and
# dataset — the "Context Amnesia Effect".
#
# This notebook regenerates Fig. 2 on the model(s) named in the parameters: Δ per noise length and dataset kind
# with bootstrap 95 % CIs over clips, the share of clips whose loss went down, and per-kind tests of the
# association between Δ and length (one point per clip and length, not the paper's 6 means). When a model is one
# of the paper's MusicGen checkpoints, the paper's values are shown beside ours.
#
# Parameters (papermill): `models`, `datasets` (kind → spec, see {py:mod}`cae.datasets`), `n_clips`, `lengths`,
# `colour`, `level_mode` (`paper`: the authors' dBFS per kind; `snr`/`dbfs` with `level_db`), `onset`,
# `protocol` (`corrected`: delay-aligned scoring; `paper`: the authors' un-delayed scoring), `seed`, `device`,
# `cache_dir`, `plugins` (modules that register extra model adapters).

# %% tags=["parameters"]
models = ["reference"]
datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood",
            "generated": "generated"}
n_clips = 40
lengths = [5, 10, 50, 100, 150, 200]
colour = "white"
level_mode = "paper"
level_db = None
onset = 250
protocol = "corrected"
seed = 42
device = None
cache_dir = None
plugins = []

# %%
from IPython.display import Markdown, display

from cae import paper, plotting, study
from cae.paper import claims
from cae.provenance import versions

plotting.enable()
model_list = study.load_models(models, protocol_name=protocol, device=device, plugins=plugins)
noise = study.NoiseSweep.from_params(globals())  # the lengths, onset, colour, level and seed above
results = study.run(model_list, datasets, noise, n_clips=n_clips, protocol_name=protocol, cache_dir=cache_dir)
display(Markdown(f"Scored **{results.summary['clip'].nunique()} clips** × {len(lengths) + 1} conditions with "
                 f"{', '.join(f'`{m.model_id}` ({m.alignment} alignment)' for m in model_list)}; "
                 f"{len(results.errors())} error rows. Package versions: "
                 + ", ".join(f"{k} {v}" for k, v in versions().items() if k in ('cae', 'torch', 'transformers'))))
results.summary.groupby(["model_id", "kind"]).agg(clips=("clip", "nunique"), clean_loss=("loss_clean", "mean"),
                                                  clean_loss_sd=("loss_clean", "std")).round(3)

# %% [markdown]
# ## Δ of the clip loss against noise length
#
# Points are means over clips; bars are bootstrap 95 % CIs (BCa, 2000 resamples over clips). Hover for values.

# %%
by_length = study.delta_by_length(results)
plotting.line_ci(by_length, x="length", color="kind", column="model_id",
                 x_title="noise length (frames)",
                 y_title="Δ clip loss (nats/token)", tooltip=["share_lower", "n"])

# %%
by_length.pivot_table(index=["model_id", "kind"], columns="length", values="mean").round(3)

# %% [markdown]
# Share of clips whose loss went **down** (the paper's claim is that it does, for longer noise):

# %%
by_length.pivot_table(index=["model_id", "kind"], columns="length", values="share_lower").round(2)

# %% [markdown]
# ## The paper's Fig. 2, for comparison
#
# Readings of the published figure (MusicGen checkpoints, the authors' un-delayed scoring, ±0.02). Their
# TrainingSet is MusicGen training music; our `trainset` is the reference model's training music and `heldout`
# is music of the same style it never saw.

# %%
fig2 = paper.fig2().assign(mean=lambda d: d["delta"])
plotting.line_ci(fig2, x="length", color="kind", column="model", x_title="noise length (frames)",
                 y_title="Δ clip loss (paper)", width=180, height=180)

# %%
ours_vs_paper = claims.fig2_beside(by_length)
if len(ours_vs_paper):
    display(ours_vs_paper.round(3))
else:
    display(Markdown("No model here is one of the paper's checkpoints; run the `paper` parameter set on a machine "
                     "with the MusicGen weights to put the two side by side."))

# %% [markdown]
# ## Is Δ associated with noise length?
#
# One point per (clip, length): Pearson and Spearman correlation (one-sided, negative), the least-squares slope
# per 100 frames of noise, and at the longest length a one-sided paired t-test and Wilcoxon test of
# loss(perturbed) < loss(clean) across clips (Cohen's d_z as effect size).

# %%
tests = study.length_tests(results)
tests.round(4)

# %% [markdown]
# Per length: one-sided paired tests of loss(perturbed) < loss(clean) across clips (mean difference, Cohen's d_z,
# t-test and Wilcoxon p-values):

# %%
study.paired_by_length(results).round(4)

# %%
lines = []
for _, r in tests.iterrows():
    d = by_length.query("model_id == @r.model_id and kind == @r.kind and length == @r.longest").iloc[0]
    direction = "lower" if d["mean"] < 0 else "higher"
    lines.append(f"- **{r.kind}** ({r.model_id}): at L = {r.longest} the loss is {direction} by "
                 f"{abs(d['mean']):.3f} nats/token (95 % CI {d['ci_low']:.3f} … {d['ci_high']:.3f}); "
                 f"{100 * d['share_lower']:.0f} % of clips go down; Spearman ρ with length = {r.spearman_r:.2f} "
                 f"(one-sided p = {r.spearman_p:.2g}).")
display(Markdown("**What this run shows.**\n\n" + "\n".join(lines)))
