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
# # cae: the Context Amnesia Effect, executable
#
# This book accompanies *When Noise Lowers the Loss: Rethinking Likelihood-Based Evaluation in Music LLMs*
# (Li, Liu, Wang; ICASSP 2026; arXiv 2602.02738). The paper replaces part of a music clip with noise, re-encodes
# it, and finds that a music language model's loss on the clip often goes **down**, more so the longer the noise:
# the "Context Amnesia Effect". Everything below is computed by this build from the cached sweeps of the
# notebooks it links to, on the model named in the parameters; nothing is typed in by hand.

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
from cae.book.provenance import build_provenance, provenance_markdown
from cae.paper import claims

plotting.enable()
corrected = study.load_models(models, protocol_name="corrected", device=device, plugins=plugins)
settings = claims.ClaimSettings.from_params(globals())  # the parameters above
noise = claims.noise_study(corrected, settings)
numbers = claims.evaluate(corrected, settings, noise=noise,
                          paper_models=study.load_models(models, protocol_name="paper", device=device, plugins=plugins))

# %% [markdown]
# ## What this run finds
#
# Δ is the clip's mean per-token loss with *L* frames of white noise from 5 s on, minus the clean clip's (nats per
# token; below zero: the noisy clip scores *better*). Points are means over clips with bootstrap 95 % CIs. Where
# the model is one of the paper's MusicGen checkpoints, the paper's Fig. 2 values are drawn dashed beside ours.

# %%
plotting.line_ci(claims.headline(study.delta_by_length(noise)), x="length", color="kind", column="model_id",
                 stroke_dash="source", x_title="noise length L (frames, 50 per s)",
                 y_title="Δ clip loss (nats/token)", width=420, height=260)

# %%
display(Markdown("\n".join(f"- {line}" for line in claims.findings(numbers))
                 + f"\n\nAll {len(numbers)} claim × kind rows, with the paper's values beside ours, are on the "
                 "[Results](results.ipynb) page."))

# %% [markdown]
# ## How to read this book
#
# A music language model such as MusicGen scores a clip token by token: the cross-entropy (negative
# log-likelihood) of each codec token given the tokens before it. Lower loss is usually read as "more musical".
# The paper describes three stages in the token-wise loss difference Δℓ_t around the noise: a **Peak** when the
# noise starts, **Assimilation** inside it (the model predicts the noise from the noise, below the clean loss),
# and **Recovery** after it. It concludes that the absolute loss is an unreliable quality measure and that the
# *shape* of the loss curve carries the information.
#
# This companion recomputes all of it and adds what the paper could not: scoring in the layout the model was
# trained on (the authors scored un-delayed codes), noise matched to each clip's level, regions placed where the
# codec's tokens actually changed, statistics over clips, a model-free complexity correction, and a test of the
# curve's shape as a quality score. MusicGen weights cannot be downloaded where this book is built, so it runs
# by default on a *reference model* trained here: a neural codec with EnCodec's architecture and a MusicGen
# decoder, on rendered Bach chorales; the `paper` parameter set runs the same notebooks on the four MusicGen
# checkpoints.
#
# | page | question |
# |---|---|
# | [Reference models](reference_models.ipynb) | The models this book runs on by default: how they were trained, how good they are |
# | [RQ1](rq1_noise_length.ipynb) | Does corruption lower the loss, and how does it scale with length? (Fig. 2) |
# | [RQ2](rq2_token_dynamics.ipynb) | What does the token-wise loss do around and after the noise? (Fig. 3) |
# | [RQ3](rq3_regions.ipynb) | Are Peak / Assimilation / Recovery consistent and detectable? (Fig. 4) |
# | [RQ4](rq4_shuffle_colour.ipynb) | Order shuffling, and other noise colours (Fig. 5, demo page) |
# | [Ablations](ablations.ipynb) | Scoring alignment, noise level, crossfade, codec vs LM |
# | [Profile score](profile_score.ipynb) | Does the curve's shape measure quality? |
# | [Beyond the paper](complexity_detection.ipynb) | Is the drop input complexity? Which signal detects corruption? |
# | [Results](results.ipynb) | The paper's claims against this run, with verdicts |
#
# The [method](../book/method.md) page defines every quantity and the [protocol](../book/protocol.md) page the
# paper's setup and what `cae` corrects; [reproducing](../book/reproducing.md) shows how to rerun a notebook with
# other parameters, [adding a model](../book/adding_a_model.md) how to plug in a new model, and
# [performance](../book/performance.md) what the build costs. [How to cite](../book/citing.md) has BibTeX for the
# paper and for this companion.
#
# ## This build
#
# The commit, package versions and model weights this page (and every page built with it) was computed with:

# %%
display(Markdown(provenance_markdown(build_provenance(corrected))))
