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
# # RQ4 — Order shuffling, and robustness across noise colours
#
# **Shuffling** rearranges the music without adding anything. The paper's §5.1 (Fig. 5, MusicGen-Medium on its
# TrainingSet) reports a sharp loss increase for short shuffles (1–10 frames) and a loss close to the original
# for long ones — short-range sensitivity, long-range insensitivity. The authors' code has three variants
# (Protocol page: Order shuffling), all run here:
#
# - `pair_swaps` — random adjacent-block pair swaps within [0, 14 s), 20 % of the range moved (Fig. 5, L < 100;
#   the authors' overlapping-pairs bug fixed);
# - `segment_swap` — one swap of two random L-frame segments within [0, 14 s) (Fig. 5, L ≥ 100);
# - `block_swap` — the blocks [onset, onset+L) and [onset+L, onset+2L) swapped (the authors' CSV).
#
# **Colours**: the demo page claims the effect holds for pink, blue and brown noise. The authors' colours are
# Butterworth filter shapes (`butter-*`), not 1/f^α spectra (Protocol page: Noise injection); we run both theirs and exact power-law
# colours (`pink` 1/f, `brown` 1/f², `blue` f).

# %% tags=["parameters"]
models = ["reference"]
datasets = {"trainset": "reference:trainset", "heldout": "reference:heldout", "ood": "reference:ood"}
n_clips = 20
shuffle_lengths = [1, 2, 5, 10, 35, 50, 70, 100, 150, 200]
block_lengths = [5, 10, 50, 100, 150, 200]
variants = ["pair_swaps", "segment_swap", "block_swap"]
colours = ["white", "butter-pink", "butter-brown", "butter-blue", "pink", "brown", "blue"]
colour_lengths = [10, 50, 100, 200]
colour_datasets = {"heldout": "reference:heldout", "ood": "reference:ood"}
level_mode = "paper"
level_db = None
onset = 250
protocol = "corrected"
seed = 42
device = None
cache_dir = None
plugins = []

# %%
import pandas as pd
from IPython.display import Markdown, display

from cae import paper, plotting, study

plotting.enable()
model_list = study.load_models(models, protocol_name=protocol, device=device, plugins=plugins)


# pair swaps move 20 % of [0, 14 s): from L = 71 on not even one pair fits (paper.paper_pair_swaps(L) = 0), which is
# why the authors switched to one segment swap for their lengths from 100 on (paper.PAPER_SEGMENT_SWAP_FROM)
variant_lengths = {"pair_swaps": [n for n in shuffle_lengths if paper.paper_pair_swaps(n) >= 1],
                   "segment_swap": shuffle_lengths, "block_swap": block_lengths}


def shuffles(kind):
    out = []
    for v in variants:
        out += study.shuffle_conditions(v, variant_lengths[v], onset=onset, seed=seed)
    return out


shuffled = study.run(model_list, datasets, shuffles, n_clips=n_clips, protocol_name=protocol, cache_dir=cache_dir)
variant_of = {"random_pair_swaps": "pair_swaps", "segment_swap": "segment_swap", "block_swap": "block_swap"}
shuffled.summary["variant"] = shuffled.summary["perturbation_kind"].map(variant_of)
display(Markdown(f"Shuffles: {shuffled.summary['clip'].nunique()} clips, {len(shuffled.perturbed)} perturbed "
                 f"conditions, {len(shuffled.errors())} error rows."))

# %% [markdown]
# ## Loss under shuffling (Fig. 5 regenerated)
#
# Δ of the clip loss against shuffle length, per variant and dataset kind (mean over clips, BCa 95 % CIs).

# %%
by_len = study.delta_by_length(shuffled, by=("model_id", "variant", "kind", "length"))
plotting.line_ci(by_len, x="length", color="kind", column="variant",
                 x_scale="log", x_title="shuffle length (frames, log scale)", y_title="Δ clip loss (nats/token)",
                 tooltip=["share_lower", "n"], width=250)

# %% [markdown]
# Absolute clip losses, as the paper's box plot (original = length 0), for the `pair_swaps`/`segment_swap`
# mix of Fig. 5 (pair swaps below 100 frames, a segment swap from 100):

# %%
segment_from = paper.PAPER_SEGMENT_SWAP_FROM
s = shuffled.summary[shuffled.summary["error"].isna()].copy()
fig5_rows = s[(s["condition"] == "clean") | ((s["variant"] == "pair_swaps") & (s["length"] < segment_from))
              | ((s["variant"] == "segment_swap") & (s["length"] >= segment_from))].copy()
fig5_rows["shuffle"] = fig5_rows["length"].map(lambda n: "original" if n == 0 else f"tk{int(n)}")
fig5_rows["clip_name"] = fig5_rows["clip"].str.split("/").str[-1]
order = ["original"] + [f"tk{n}" for n in shuffle_lengths]
plotting.box_chart(fig5_rows, x="shuffle", y="loss", color="kind", sort=order, y_title="clip loss",
                   tooltip=["clip_name"], width=520, height=240)

# %% [markdown]
# The paper's numbers beside ours: Fig. 5 means (MusicGen-Medium, TrainingSet) and the authors' block-swap CSV
# (MusicGen-Small, TrainingSet), as Δ against the original.

# %%
f5 = paper.fig5().query("length > 0")
theirs = pd.concat([f5.assign(variant="fig5 (pair/segment)")[["variant", "length", "delta"]],
                    paper.block_swap_csv().assign(variant="block_swap")[["variant", "length", "delta"]]])
mix = by_len[((by_len["variant"] == "pair_swaps") & (by_len["length"] < segment_from))
             | ((by_len["variant"] == "segment_swap") & (by_len["length"] >= segment_from))
             ].assign(variant="fig5 (pair/segment)")
ours = pd.concat([mix, by_len[by_len["variant"] == "block_swap"]])
ours.pivot_table(index=["variant", "length"], columns="kind", values="mean").round(3).join(
    theirs.set_index(["variant", "length"])["delta"].rename("paper (trainset)").round(3), how="left")

# %% [markdown]
# ## Noise colours
#
# Δ of the clip loss against noise length per colour (same level mode as RQ1). The authors' demo: brown (and often
# pink) noise *raised* the loss for MusicGen Small and Medium; only white and blue consistently lowered it.

# %%
def coloured(kind):
    out = []
    for c in colours:
        out += study.noise_conditions(kind, colour_lengths, colour=c, level_mode=level_mode, level_db=level_db,
                                      onset=onset, seed=seed)
    return out


coloured_results = study.run(model_list, colour_datasets, coloured, n_clips=n_clips, protocol_name=protocol,
                             cache_dir=cache_dir)
by_colour = study.delta_by_length(coloured_results, by=("model_id", "kind", "colour", "length"))
plotting.line_ci(by_colour, x="length", color="colour", column="kind",
                 x_title="noise length (frames)", y_title="Δ clip loss (nats/token)", width=250)

# %%
by_colour.pivot_table(index=["model_id", "kind", "colour"], columns="length", values="mean").round(3)

# %% [markdown]
# The demo page's values at 200 frames (Δ against the clean reference, pooled over files, ≈ readings):

# %%
paper.demo_colours().pivot_table(index=["kind", "model"], columns="colour", values="delta")

# %%
longest = max(colour_lengths)
lines = []
for (m, kind), g in by_colour[by_colour["length"] == longest].groupby(["model_id", "kind"]):
    down = ", ".join(g.loc[g["mean"] < 0, "colour"]) or "none"
    up = ", ".join(g.loc[g["mean"] >= 0, "colour"]) or "none"
    lines.append(f"- **{kind}** ({m}), L = {longest}: loss lower with {down}; not lower with {up}.")
sl = by_len[by_len["variant"] == "pair_swaps"]
for (m, kind), g in sl.groupby(["model_id", "kind"]):
    g = g.sort_values("length")
    lines.append(f"- **{kind}** ({m}), pair swaps: Δ {g['mean'].iloc[0]:+.3f} at L = {g['length'].iloc[0]}, "
                 f"{g['mean'].iloc[-1]:+.3f} at L = {g['length'].iloc[-1]}.")
display(Markdown("**What this run shows.**\n\n" + "\n".join(lines)))
