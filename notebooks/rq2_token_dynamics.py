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
# # RQ2 — What does the token-wise loss do around and after the noise?
#
# The paper's §4.1 describes three stages in Δℓ_t (perturbed minus clean per-token loss): a **Peak** at the
# onset, an **Assimilation** inside the noise where the loss falls below the clean loss, and a **Recovery**
# after it where the loss oscillates around the clean loss. Its Fig. 3 illustrates this with a composite drawing,
# not data (Protocol page: Published numbers).
#
# Here the curves come from data: Δℓ_t aligned at the onset (frame 0 = first noisy frame), mean over clips with a
# bootstrap 95 % band (clips resampled), per noise length and dataset kind, per codebook; then the absolute
# curves behind Fig. 3 (clean music, pure noise, music with noise); then an example to listen to.

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
window_before = 20
window_after = 320
example_length = 100
example_kind = "ood"

# %%
from IPython.display import Markdown, display

from cae import plotting, study

plotting.enable()
model_list = study.load_models(models, protocol_name=protocol, device=device, plugins=plugins)
# the paper's noise lengths, plus the whole clip (14 s) replaced by noise: the "Noise" curve of Fig. 3
noise = study.NoiseSweep.from_params(globals(), pure=True)
results = study.run(model_list, datasets, noise, n_clips=n_clips, protocol_name=protocol, cache_dir=cache_dir,
                    codes=True)
display(Markdown(f"{results.summary['clip'].nunique()} clips, {len(results.errors())} error rows."))

# %% [markdown]
# ## Δℓ_t around the onset, per noise length
#
# Codebook mean. The grey span is the longest noise; each colour is one noise length *L* (the noise covers
# frames 0 … L−1). Hover for the mean, the band and the number of clips.

# %%
curves = study.onset_curves(results, onset=onset, before=window_before, after=window_after)
mean_curves = curves[curves["codebook"] == "mean"]
plotting.curve_chart(mean_curves, color="length", column="kind", row="model_id" if len(model_list) > 1 else None,
                     shade=(0, max(lengths)), width=250, height=200)

# %% [markdown]
# Mean Δℓ_t over windows relative to the onset (frames), per kind and length — the numbers behind the chart:

# %%
import pandas as pd

bins = sorted({-window_before, window_after} | {b for b in (-5, 0, 5, 50, 100, 150, 200)
                                               if -window_before < b < window_after})
t = mean_curves.assign(window=pd.cut(mean_curves["rel_frame"], bins, right=False).astype(str))
t.pivot_table(index=["model_id", "kind", "length"], columns="window", values="mean", aggfunc="mean",
              sort=False).round(3)

# %% [markdown]
# ## Per codebook (L = `example_length`)
#
# The paper averages the 4 codebooks; we also show per-codebook curves (Protocol page: What cae corrects) because coarse (k = 0) and fine
# (k = 3) codebooks react differently.

# %%
cb = curves[(curves["codebook"] != "mean") & (curves["length"] == example_length)]
plotting.curve_chart(cb, color="codebook", column="kind", row="model_id" if len(model_list) > 1 else None,
                     shade=(0, example_length), width=250, height=180)

# %% [markdown]
# ## The paper's Fig. 3, from data
#
# Absolute codebook-mean NLL per frame: the clean clip (*music*), the whole clip replaced by noise (*noise*) and
# the clip with `example_length` frames of noise (*music + perturb*), mean over clips with bootstrap bands.
# If the loss inside the noise falls to the pure-noise curve, the model is predicting noise from noise.

# %%
absolute = study.absolute_curves(results, length=example_length, onset=onset, before=window_before,
                                 after=window_after)
plotting.curve_chart(absolute, color="curve", column="kind", row="model_id" if len(model_list) > 1 else None,
                     y_title="NLL (nats/token)", shade=(0, example_length), width=250, height=200)

# %%
absolute.assign(inside=lambda d: (d["rel_frame"] >= 5) & (d["rel_frame"] < example_length)).query("inside") \
    .groupby(["model_id", "kind", "curve"])["mean"].mean().unstack("curve").round(3)

# %% [markdown]
# ## Listen: one clip, clean and with noise
#
# The first `example_kind` clip, clean and with `example_length` frames of noise exactly as scored (same seed).

# %%
ex = study.example_clip(results, model_list[0], example_kind, noise.at(example_kind, example_length),
                        protocol_name=protocol)
display(Markdown(f"**Clean** — `{ex.clip.split('/')[-1]}`"))
display(plotting.audio(ex.wave, ex.sample_rate))
display(Markdown(f"**With noise** — `{ex.perturbation.label}` (seed {ex.perturbation.seed})"))
display(plotting.audio(ex.perturbed(), ex.sample_rate))

# %% [markdown]
# Δℓ_t of this clip (codebook mean), frame by frame:

# %%
one = study.clip_curve(results, ex, onset=onset, before=window_before, after=window_after)
plotting.curve_chart(one.assign(length=example_length), color="length", column=None, shade=(0, example_length),
                     width=560, height=200)

# %%
from cae.paper import claims  # noqa: E402

display(Markdown(f"**What this run shows** (L = {example_length} frames of noise).\n\n"
                 + "\n".join(f"- {line}" for line in claims.dynamics_findings(curves, absolute, example_length))
                 + "\n\nThe paper's Assimilation is the middle number below zero; its Fig. 3 has the loss inside "
                   "the noise fall to the pure-noise curve."))
