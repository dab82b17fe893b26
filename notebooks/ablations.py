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
# # Ablations — does the effect survive correction?
#
# The paper's numbers come from a particular protocol (Protocol page: What cae corrects): un-delayed scoring without BOS, noise at an
# absolute dBFS level fixed per dataset, hard cuts, and a codec that re-tokenises the noise. Each ablation below
# changes one of these and reruns the noise experiment of RQ1:
#
# 1. **Scoring alignment** — MusicGen's delay layout (`corrected`) vs the authors' un-delayed computation
#    (`paper`).
# 2. **Noise level** — the authors' absolute dBFS per kind vs a level relative to each clip (SNR), and a sweep
#    over SNRs.
# 3. **Crossfade** — a raised-cosine ramp vs the hard cut, on the Peak.
# 4. **Codec vs LM** — what the codec makes of the noise: tokens changed, distinct tokens and repeats inside the
#    noise (a noise that collapses to one repeated token makes "assimilation" mere copying), and how faithfully the
#    codec resynthesises clean music.
# 5. **Two codecs, one LM recipe** — the same experiment on the two reference models: `reference` (a neural codec
#    with EnCodec's architecture, trained here) and `reference-mel` (log-mel frames quantised by k-means). Same
#    corpus, same decoder architecture and objective: what differs between them is what the codec does to noise.

# %% tags=["parameters"]
models = ["reference"]
datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood",
            "generated": "generated"}
n_clips = 20
lengths = [5, 10, 50, 100, 150, 200]
snr_levels = [20.0, 10.0, 0.0, -10.0]
snr_lengths = [50, 200]
matched_snr = 0.0
crossfade_ms = 5.0
crossfade_lengths = [10, 100]
onset = 250
seed = 42
codec_models = ["reference", "reference-mel"]
codec_dbfs_levels = [-40.0, -30.0, -20.0, -10.0, 0.0]
codec_snr_levels = [20.0, 10.0, 0.0, -10.0, -20.0]
codec_noise_frames = 90
codec_clips = 5
device = None
cache_dir = None
plugins = []

# %%
import pandas as pd
from IPython.display import Markdown, display

from cae import plotting, study
from cae.audio import load
from cae.datasets import resolve_datasets
from cae.perturb import Noise, Span

plotting.enable()


def paper_noise(kind):
    return study.noise_conditions(kind, lengths, level_mode="paper", onset=onset, seed=seed)


# %% [markdown]
# ## 1. Delay-aligned vs the authors' un-delayed scoring
#
# Only the scoring alignment differs: both runs use the same noise, seeded from each clip's content.

# %%
runs = {}
for proto in ["corrected", "paper"]:
    ms = study.load_models(models, protocol_name=proto, device=device, plugins=plugins)
    runs[proto] = study.run(ms, datasets, paper_noise, n_clips=n_clips, protocol_name=proto, cache_dir=cache_dir,
                            seeding="content")
by_proto = pd.concat([study.delta_by_length(r).assign(protocol=p) for p, r in runs.items()], ignore_index=True)
plotting.line_ci(by_proto, x="length", color="kind", column="protocol",
                 x_title="noise length (frames)", y_title="Δ clip loss (nats/token)", width=250)

# %%
clean = pd.concat([r.summary[r.summary["condition"] == "clean"].assign(protocol=p) for p, r in runs.items()])
table = by_proto.pivot_table(index=["model_id", "kind", "length"], columns="protocol", values="mean").round(3)
display(clean.groupby(["model_id", "protocol", "kind"])["loss"].mean().unstack("kind").round(3)
        .rename_axis(columns="clean loss by kind"))
table

# %%
regions = pd.concat([study.region_means(r, onset=onset).assign(protocol=p) for p, r in runs.items()])
(regions[regions["length"] >= 50].groupby(["model_id", "protocol", "method", "region", "kind"])["delta"].mean()
 .unstack("kind").round(3))

# %% [markdown]
# ## 2. Absolute dBFS vs a level relative to each clip
#
# `paper`: the authors' levels (OOD −30, Generated −20, TrainingSet and held-out −12 dBFS, whatever the music's
# level). `snr`: the noise RMS set `matched_snr` dB below each clip's RMS. Then a sweep over SNRs.

# %%
model_list = study.load_models(models, protocol_name="corrected", device=device, plugins=plugins)
levels = study.run(model_list, datasets, lambda k: study.noise_conditions(
    k, lengths, level_mode="snr", level_db=matched_snr, onset=onset, seed=seed), n_clips=n_clips,
    cache_dir=cache_dir)
by_level = pd.concat([study.delta_by_length(runs["corrected"]).assign(level="paper dBFS"),
                      study.delta_by_length(levels).assign(level=f"SNR {matched_snr:+g} dB")], ignore_index=True)
plotting.line_ci(by_level, x="length", color="kind", column="level",
                 x_title="noise length (frames)", y_title="Δ clip loss (nats/token)", width=250)

# %% [markdown]
# Music levels by kind (RMS dBFS): with absolute noise levels the effective SNR differs by kind.

# %%
study.music_levels(model_list, datasets, n_clips=n_clips)

# %%
sweep = study.run(model_list, datasets, lambda k: [p for snr in snr_levels for p in study.noise_conditions(
    k, snr_lengths, level_mode="snr", level_db=snr, onset=onset, seed=seed)], n_clips=n_clips,
    cache_dir=cache_dir, codes=True)
by_snr = study.delta_by_length(sweep, by=("model_id", "kind", "length", "level_db"))
by_snr["length"] = "L = " + by_snr["length"].astype(str)
plotting.line_ci(by_snr, x="level_db", color="kind", column="length",
                 x_title="SNR (dB): music RMS over noise RMS", y_title="Δ clip loss (nats/token)", width=250)

# %% [markdown]
# ## 3. Crossfade vs hard cut
#
# A `crossfade_ms` raised-cosine ramp at both ends of the noise removes the broadband click of a hard cut. Does the
# Peak survive? (anchored Peak window, mean over clips.)

# %%
xf = study.run(model_list, datasets, lambda k: [p for c in (0.0, crossfade_ms) for p in study.noise_conditions(
    k, crossfade_lengths, level_mode="paper", onset=onset, crossfade_ms=c, seed=seed)], n_clips=n_clips,
    cache_dir=cache_dir)
xr = study.region_means(xf, onset=onset, methods=("anchored",))
xr = xr.merge(xf.summary[["model_id", "kind", "clip", "condition", "crossfade_ms"]],
              on=["model_id", "kind", "clip", "condition"])
(xr.groupby(["model_id", "kind", "length", "crossfade_ms", "region"])["delta"].mean().unstack("region")
 [["peak", "assimilation", "recovery"]].round(3))

# %% [markdown]
# ## 4. Codec vs LM: what the tokens look like inside the noise
#
# Per SNR level and length: distinct tokens per codebook inside the noise, the share of noise frames repeating
# the previous frame's token, the share of tokens changed inside the noise and outside it (spill-over from the
# codec's receptive field), and the number of changed frames outside the noise.

# %%
stats = study.noise_token_stats(sweep, onset=onset).merge(
    sweep.summary[["model_id", "kind", "clip", "condition", "level_db"]], on=["model_id", "kind", "clip", "condition"])
stats.groupby(["model_id", "kind", "level_db", "length"])[
    ["unique_tokens", "repeat_rate", "changed_inside", "changed_outside", "spill_frames"]].mean().round(3)

# %% [markdown]
# Codec resynthesis of the clean clips (first 5 per kind): waveform SNR and SI-SNR (phase-aware; meaningless for a
# Griffin-Lim decoder like `reference-mel`'s) and the log-mel distance (phase-blind).

# %%
clips5 = resolve_datasets(datasets, n_clips=min(5, n_clips), model=model_list[0], seed=study.GENERATION_SEED)
(study.resynthesis_quality(model_list[0], clips5).groupby(["model_id", "kind"])[["snr_db", "si_snr_db", "logmel_l1"]]
 .mean().round(2))

# %% [markdown]
# ## 5. Codec or language model? The two reference models side by side
#
# The paper cannot separate what EnCodec does to noise from what MusicGen does with the tokens. Two models trained
# here on the same corpus with the same decoder recipe can: `reference` hears through a neural codec of EnCodec's
# architecture, `reference-mel` through log-mel frames quantised by k-means. First the paper's noise experiment
# (the authors' dBFS levels) on both: Δ clip loss per length and kind, on the corpus kinds (the same audio for both
# models; each model's own samples are compared in RQ1).

# %%
codec_list = study.load_models(codec_models, protocol_name="corrected", device=device, plugins=plugins)
corpus_kinds = {k: v for k, v in datasets.items() if k != "generated"}
both = study.run(codec_list, corpus_kinds, paper_noise, n_clips=n_clips, cache_dir=cache_dir, codes=True)
by_codec = study.delta_by_length(both)
plotting.line_ci(by_codec, x="length", color="kind", column="model_id",
                 x_title="noise length (frames)", y_title="Δ clip loss (nats/token)", width=250)

# %% [markdown]
# Peak / Assimilation / Recovery (token-mask-anchored windows, L ≥ 50 pooled) and what each codec makes of the
# noise inside the span: distinct tokens per codebook and the share of noise frames repeating the previous token.

# %%
codec_regions = study.region_means(both, onset=onset, methods=("anchored",))
codec_tokens = study.noise_token_stats(both, onset=onset)
side = (codec_regions[codec_regions["length"] >= 50].groupby(["model_id", "kind", "region"])["delta"].mean()
        .unstack("region")[["peak", "assimilation", "recovery"]])
side = side.join(codec_tokens[codec_tokens["length"] >= 50].groupby(["model_id", "kind"])[
    ["unique_tokens", "repeat_rate"]].mean())
side.round(3)

# %% [markdown]
# What each codec does to white noise replacing `codec_noise_frames` frames, without any language model: distinct
# tokens and repeat rate inside the noise against its level, absolute (dBFS) and relative to each clip (SNR). The
# `clean` rows are the music itself over the same frames.

# %%
few = resolve_datasets(corpus_kinds, n_clips=min(codec_clips, n_clips), model=codec_list[0],
                       seed=study.GENERATION_SEED)
response = pd.concat([study.codec_noise_response(m, few, dbfs_levels=codec_dbfs_levels, snr_levels=codec_snr_levels,
                                                 length=codec_noise_frames, onset=onset, seed=seed)
                      for m in codec_list], ignore_index=True)
curves = (response[response["level_mode"] != "clean"].groupby(["model_id", "level_mode", "level_db"])
          [["unique_tokens", "repeat_rate"]].agg(["mean", "min", "max"]))
for stat, title in (("unique_tokens", "distinct tokens per codebook inside the noise"),
                    ("repeat_rate", "share of noise frames repeating the previous token")):
    display(plotting.line_ci(curves[stat].reset_index(), x="level_db", low="min", high="max", color="model_id",
                             column="level_mode", x_title="noise level (dB)", y_title=stat.replace("_", " "),
                             title=title, width=250))
clean_stats = response[response["level_mode"] == "clean"].groupby("model_id")[["unique_tokens", "repeat_rate"]].mean()
clean_stats.round(3).rename_axis(columns="clean music, same frames")

# %% [markdown]
# One held-out clip with `codec_noise_frames` frames of white noise at −30 dBFS (the paper's OOD level), encoded and
# decoded by each codec: what the model is actually scored on. The dashed box is the noise.

# %%
example = next(iter(few.values()))[0]
burst = Noise(span=Span(onset, codec_noise_frames, "frames"), level_db=-30.0, seed=seed)
panels = []
for m in codec_list:
    noisy = burst.apply(load(example, sample_rate=m.sample_rate), m.sample_rate)
    decoded = m.decode(m.encode(noisy, m.sample_rate))
    for name, wav in (("input", noisy), ("decoded", decoded)):
        if name == "input" and m is not codec_list[0]:
            continue
        label = "input (noisy clip)" if name == "input" else f"decoded by {m.model_id}"
        panels.append(plotting.mel_frames(wav, m.sample_rate, seconds=(3.0, 9.0)).assign(panel=label))
t0, t1 = onset / 50, (onset + codec_noise_frames) / 50
plotting.spectrogram_chart(pd.concat(panels), column="panel", shade=(t0, t1), wrap=1, width=520)

# %%
lines = []
for kind, g in by_proto[by_proto["length"] == max(lengths)].groupby("kind"):
    v = g.set_index("protocol")["mean"]
    lines.append(f"- **{kind}**, L = {max(lengths)}: Δ = {v.get('corrected', float('nan')):+.3f} (delay-aligned) vs "
                 f"{v.get('paper', float('nan')):+.3f} (authors' alignment).")
for kind, g in by_level[by_level["length"] == max(lengths)].groupby("kind"):
    v = g.set_index("level")["mean"]
    lines.append(f"- **{kind}**, L = {max(lengths)}: Δ = " + ", ".join(f"{val:+.3f} ({lvl})" for lvl, val in v.items())
                 + ".")
for kind, g in by_codec[by_codec["length"] == max(lengths)].groupby("kind"):
    v = g.set_index("model_id")["mean"]
    lines.append(f"- **{kind}**, L = {max(lengths)}, two codecs: Δ = "
                 + ", ".join(f"{val:+.3f} ({name})" for name, val in v.items()) + ".")
for name, g in side.reset_index().groupby("model_id"):
    lines.append(f"- **{name}** inside the noise (L ≥ 50): {g['unique_tokens'].mean():.1f} distinct tokens per "
                 f"codebook, {100 * g['repeat_rate'].mean():.0f} % of frames repeat the previous token.")
display(Markdown("**What this run shows.**\n\n" + "\n".join(lines)))
