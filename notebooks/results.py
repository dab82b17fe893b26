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
# # Results: the paper's claims against this run
#
# Each row is one claim of the paper, what the paper reports, and what the model(s) in the parameters show, with
# a verdict computed from the bootstrap CIs: **holds** (the CI excludes zero in the claimed direction),
# **does not hold** (it excludes zero in the other direction), **inconclusive** (the CI includes zero).
# The numbers are recomputed from the same cached sweeps as the research-question notebooks (nothing is copied by
# hand), so this page always matches them.

# %% tags=["parameters"]
models = ["reference"]
datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood",
            "generated": "generated"}
n_clips = 40
ablation_clips = 20
shuffle_datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood"}
shuffle_clips = 20
lengths = [5, 10, 50, 100, 150, 200]
short_shuffles = [1, 2, 5]
long_shuffles = [100, 150, 200]
matched_snr = 0.0
onset = 250
seed = 42
device = None
cache_dir = None
plugins = []

# %%
from IPython.display import Markdown, display

from cae import plotting, study
from cae.paper import claims

plotting.enable()
corrected = study.load_models(models, protocol_name="corrected", device=device, plugins=plugins)
settings = claims.ClaimSettings.from_params(globals())  # the parameters above
numbers = claims.evaluate(corrected, settings,
                          paper_models=study.load_models(models, protocol_name="paper", device=device, plugins=plugins))
numbers[["claim", "kind", "model", "paper", "this run", "verdict"]].style.hide(axis="index")

# %% [markdown]
# The two numbers most of the argument rests on, per dataset kind: Δ of the clip loss at the longest noise, under
# the authors' scoring and under delay-aligned scoring, with the noise level matched to the music, and after the
# complexity correction (bootstrap 95 % CIs; hover for values).

# %%
longest = max(lengths)
key = numbers[numbers["claim"].str.startswith(f"Δ < 0 at {longest} frames")]
key = key.assign(setting=key["claim"].str.replace(f"Δ < 0 at {longest} frames", "", regex=False).str.strip(" ,"))
plotting.interval_chart(key, y="setting", color="kind", x_title=f"Δ clip loss at L = {longest}",
                        tooltip=["this run", "verdict"], width=520)

# %%
numbers.groupby(["claim", "verdict"], sort=False).size().unstack(fill_value=0)

# %%
held = numbers[numbers["verdict"] == "holds"]
display(Markdown(
    f"**What this run shows.** {len(held)} of {len(numbers)} claim × kind rows hold "
    f"({', '.join(sorted(set(numbers['model'])))}). Rows that do not hold are findings, not failures: "
    "see the RQ pages for the curves behind each row, and the ablations for why the protocol matters.\n\n"
    + "\n".join(f"- {line}" for line in claims.findings(numbers))))
