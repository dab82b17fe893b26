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
# # The profile score — does the loss curve's *shape* measure quality?
#
# The paper's last claim is that the absolute loss misleads (noise can lower it) while the *shape* of the
# token-wise response to a perturbation carries quality information: "a model's sharp Peak on short injections is a
# proxy for its ability to discern musical integrity". The paper only envisions this profile-based evaluation. Here
# it is built ({py:mod}`cae.profile`) and tested against known quality orders, with the absolute loss as the
# baseline it is meant to beat.
#
# **Protocol.** Short white-noise bursts (`lengths` frames: 0.1 and 0.2 s) *replace* the clip at several onsets,
# each as loud as the clip itself (SNR 0 dB against the clip's RMS, so quiet and loud clips are probed alike).
# **Features** are read off each burst's Δℓ_t curve (peak height, width, contrast, assimilation time and depth, exit
# spike, recovery time, areas; definitions in {py:mod}`cae.profile`). **Scores**: the clip score is the mean *peak
# contrast* (peak height minus the loss that stays raised for the rest of the burst: strength × sharpness) over the
# short bursts; the model score is its mean over clips.
#
# **Validation.** Model level: checkpoints of the reference model's own training run, whose held-out loss falls
# with training (plus an untrained model as the floor). Clip level: real clips under graded degradations of known
# severity, and the model's own samples over top-k and temperature. Reported as Spearman rank correlations with
# bootstrap 95 % CIs over clips, beside the same correlations for the absolute clean loss.

# %% tags=["parameters"]
models = ["reference"]
dataset = "reference:heldout"
n_clips = 20
lengths = [5, 10]
onsets = [150, 300, 450]
level_db = 0.0
validation_models = None  # {model name: quality}; None: the reference model's checkpoints (training step)
families = None  # {family: levels}; None: noise, shuffle, low-pass, bit-crush ladders
generated = {"top_ks": [10, 50, 250], "temperatures": [0.7, 1.0, 1.3], "per_setting": 8}
example_length = 10
example_onset = 300
seed = 0
device = None
cache_dir = None
plugins = []

# %%
import pandas as pd
from IPython.display import Markdown, display

from cae import plotting, profile, study
from cae.datasets import resolve_dataset

plotting.enable()
model_list = study.load_models(models, device=device, plugins=plugins)
protocol = profile.ProfileProtocol(lengths=tuple(lengths), onsets=tuple(onsets), level_db=level_db, seed=seed)
params = profile.FeatureParams()
clips = resolve_dataset(dataset, n_clips=n_clips, model=model_list[0], seed=study.GENERATION_SEED)
display(Markdown(f"{len(clips)} clips from `{dataset}`; {len(protocol.perturbations())} bursts per clip "
                 f"(lengths {lengths} × onsets {onsets}); clips must be at least {protocol.min_seconds:.1f} s."))

# %% [markdown]
# ## Where each feature is read
#
# One clip, one burst of `example_length` frames, the codebook-mean Δℓ_t coloured by window (Peak, Assimilation,
# Exit, Recovery); the black marks show the span each feature is measured over, at the level it marks (hover for
# its value). The areas (sums over a window) are in the table below the chart.

# %%
curve, marks = profile.burst_marks(clips[0], model_list[0], protocol, onset=example_onset, length=example_length,
                                   params=params, cache_dir=cache_dir)
plotting.feature_chart(curve, marks, onset=example_onset, length=example_length)

# %%
marks[["feature", "frame_start", "frame_stop", "value", "feature_value"]].round(3)

# %% [markdown]
# ## The profile of each model under study
#
# Clip scores (mean peak contrast over the short bursts) and the model score with its bootstrap CI, next to the
# clean loss.

# %%
tables = []
for mdl in model_list:
    tables.append(profile.profile_clips(clips, mdl, protocol=protocol, params=params, cache_dir=cache_dir).table)
table = pd.concat(tables, ignore_index=True)
scores = profile.clip_scores(table)
profile.model_scores(table).round(3)

# %%
feat = (table[(table["codebook"] == "mean")].groupby(["model_id", "length_frames"])
        [["peak_height", "peak_width", "peak_contrast", "assim_time", "exit_spike", "recovery_time", "loss_clean"]]
        .mean().round(3))
feat

# %% [markdown]
# ## Model level: does the score track training?
#
# The same clips scored by checkpoints along the reference model's training (quality = training step; the
# held-out loss falls along it) and by an untrained decoder. Scores with bootstrap CIs over clips:

# %%
mv = profile.validate_models(clips, validation_models, protocol=protocol, params=params, cache_dir=cache_dir,
                             model_kwargs={"device": device} if device else None)
ms = mv.scores
display(ms[["model_name", "quality", "score", "ci_low", "ci_high", "loss_clean", "heldout_loss_recorded"]].round(3))
both = pd.concat([ms.assign(metric="model score (peak contrast)", mean=ms["score"]),
                  ms.assign(metric="clean loss", mean=ms["loss_clean"], ci_low=ms["loss_clean_ci_low"],
                            ci_high=ms["loss_clean_ci_high"])])
plotting.line_ci(both, x="quality", column="metric", x_title="quality (training step)",
                 y_title="nats", tooltip=["model_name"], zero_line=False, width=250)

# %% [markdown]
# Spearman ρ between quality and each metric, oriented so that higher should mean better (the clean loss enters as
# −loss): across model means (CI from resampling clips) and within clips (each clip ranks the models itself).

# %%
RHO = ["metric", "rho", "rho_ci_low", "rho_ci_high", "rho_within", "rho_within_ci_low", "rho_within_ci_high",
       "n_clusters"]
mv.correlations[RHO].round(3)

# %% [markdown]
# ## Clip level: does the score rank degraded versions of a clip?
#
# Each clip degraded along ladders of known severity (level 0 = the clean clip), and the model's own samples over
# top-k and temperature (assuming less randomness means higher quality, and real music above samples).

# %%
cv = profile.validate_clips(clips, model_list[0], families=families, generated=generated, protocol=protocol,
                            params=params, cache_dir=cache_dir, seed=seed)
corr = cv.correlations
corr[corr["column"].isin(["score", "loss_clean"])][["family", *RHO]].round(3)

# %% [markdown]
# Every feature, per family (the score is one of them, chosen before looking at these data):

# %%
pd.set_option("display.max_rows", 200)
corr[["family", *RHO]].round(3)

# %%
items = cv.items
deg = items[items["severity"].notna() & items["family"].notna()]
long = pd.concat([deg.assign(metric="profile score", value=deg["score"]),
                  deg.assign(metric="clean loss", value=deg["loss_clean"])])
agg = long.groupby(["family", "metric", "severity"])["value"].agg(["mean", "sem"]).reset_index()
agg["ci_low"], agg["ci_high"] = agg["mean"] - 1.96 * agg["sem"], agg["mean"] + 1.96 * agg["sem"]
plotting.line_ci(agg, x="severity", color="family", column="metric", x_title="severity level (0 = clean)",
                 y_title="mean over clips (± 1.96 SE)", zero_line=False, width=250)

# %%
def rho(frame, column):
    r = frame[frame["column"] == column]
    return r.iloc[0] if len(r) else None


def fmt(r):
    return (f"ρ = {r['rho']:.2f} [{r['rho_ci_low']:.2f}, {r['rho_ci_high']:.2f}], within clips "
            f"{r['rho_within']:.2f}")


lines = []
for label, col in (("profile score", "score"), ("clean loss", "loss_clean")):
    r = rho(mv.correlations, col)
    if r is not None:
        lines.append(f"- model level, **{label}** against training: {fmt(r)}")
group = "family" if "family" in corr.columns else None
for fam, g in (corr.groupby(group) if group else [("all", corr)]):
    s_, l_ = rho(g, "score"), rho(g, "loss_clean")
    if s_ is not None and l_ is not None:
        wins = [s_["rho"] > l_["rho"]] + ([s_["rho_within"] > l_["rho_within"]] if pd.notna(s_["rho_within"])
                                          and pd.notna(l_["rho_within"]) else [])
        verdict = "beats" if all(wins) else ("does not beat" if not any(wins) else "is mixed against")
        lines.append(f"- clip level, **{fam}**: score {fmt(s_)}; clean loss {fmt(l_)} — the score {verdict} the "
                     "loss.")
display(Markdown("**What this run shows** (Spearman ρ, oriented so that positive means the metric ranks by "
                 "quality; NaN where too few items vary).\n\n" + "\n".join(lines)))

# %% [markdown]
# ## Scoring your own audio
#
# ```bash
# cae profile path/to/folder --model reference --out profile.parquet      # or --model facebook/musicgen-small
# ```
#
# writes the per-burst feature table (one row per clip × burst × codebook or mean) and `profile.scores.parquet`
# (one clip score per file); unreadable or too-short files become error rows naming the file.
