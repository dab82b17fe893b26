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
# # The reference models — MusicGen in miniature, trained here
#
# MusicGen's weights cannot be downloaded where this book is built, so the notebooks run on models trained in this
# repository, on audio it renders itself (Bach chorales on organ, strings and choir; other composers on piano as
# the out-of-distribution kind). Two ship with `cae`:
#
# - **`reference`** (the default): a neural codec with EnCodec's architecture — a non-causal SEANet encoder and
#   decoder with a 2-layer LSTM, 32 kHz, hop 640 (50 frames/s), a residual vector quantiser with 4 codebooks of 512
#   entries trained with EMA codebooks, k-means initialisation and dead-code restarts — and a transformers
#   `MusicgenForCausalLM` decoder trained on its tokens with MusicGen's delay pattern and BOS. Both load through
#   exactly the classes the paper's checkpoints use (`EncodecModel`, `MusicgenForCausalLM`, `HFMusicGen`).
# - **`reference-mel`** (the ablation): the first reference model, whose tokenizer is log-mel frames quantised by
#   residual k-means (4 × 256) and decoded by Griffin-Lim, with the same decoder architecture.
#
# Everything below is either read from the metadata that ships with the weights (what was measured while
# training) or measured now, on held-out clips the models never saw. Retrain with `make reference-model` (codec,
# then decoder; resumable) and `make reference-mel`.

# %% tags=["parameters"]
models = ["reference", "reference-mel"]
datasets = {"heldout": "reference:heldout", "ood": "reference:ood"}
n_clips = 10
example_seconds = 8.0
example_top_k = 250
device = None
plugins = []

# %%
from IPython.display import Markdown, display

from cae import plotting, study
from cae.datasets import resolve_datasets
from cae.reference import records

plotting.enable()
model_list = study.load_models(models, device=device, plugins=plugins)
shipped = [m.model_id for m in model_list if m.model_id in ("reference", "reference-mel")]

# %% [markdown]
# ## How the decoders learned
#
# Mean per-token loss on the 40 held-out clips along each decoder's training run (recorded at training time;
# the intermediate checkpoints ship too, as `reference@step<N>`, and feed the profile score's validation).

# %%
curves = records.decoder_curves(shipped)
plotting.line_ci(curves, x="step", y="heldout_loss", color="model", x_title="training step",
                 y_title="held-out loss (nats/token)", zero_line=False, width=420)

# %% [markdown]
# Loss per corpus kind at the end of training, against two baselines on the same codes: the **unigram** loss
# (each codebook's token frequencies in the training set: what a model knows without context) and the **uniform**
# loss (log of the codebook size). The two models' losses are not comparable with each other — 512 codes per
# codebook against 256 — but each one's distance to its baselines is.

# %%
losses = records.loss_table(shipped)
losses["gain over unigram"] = losses["unigram"] - losses["loss"]
losses.set_index(["model", "kind"]).round(3)

# %% [markdown]
# ## How the codec learned
#
# The neural codec's held-out quality during training (10 held-out clips, every 1000 steps).

# %%
codec = records.codec_curve()
long = codec.melt(id_vars="step", value_vars=["logmel_l1", "si_snr_db", "perplexity"], var_name="metric")
plotting.line_ci(long, x="step", y="value", column="metric", x_title="training step", y_title="", zero_line=False, width=220, wrap=3)

# %% [markdown]
# ## Quality, measured now
#
# Each model's codec round-trips clean clips it never trained on: log-mel distance (phase-blind; lower is
# better), waveform SNR and scale-invariant SNR (phase-aware; a Griffin-Lim decoder loses phase, so these mean
# little for `reference-mel`), the codes' perplexity per codebook (how many entries are effectively used), and
# wall-clock time per 15 s clip to encode, score and decode on this machine.

# %%
clips = {m.model_id: resolve_datasets(datasets, n_clips=n_clips, model=m, seed=study.GENERATION_SEED)
         for m in model_list}
quality = study.resynthesis_quality_table(model_list, clips)
quality

# %% [markdown]
# ## Listening
#
# An unconditional sample of each model (`example_seconds` s, top-k `example_top_k`), decoded by its own codec:
# the neural decoder for `reference`, Griffin-Lim for `reference-mel`.

# %%
for m in model_list:
    codes = m.generate(example_seconds, top_k=example_top_k, seed=0)
    display(Markdown(f"**{m.model_id}** — sample, seed 0"))
    display(plotting.audio(m.decode(codes), m.sample_rate))

# %%
lines = []
for name, g in quality.reset_index().groupby("model_id"):
    held = g[g["kind"] == "heldout"].iloc[0] if (g["kind"] == "heldout").any() else g.iloc[0]
    lines.append(f"- **{name}** on held-out clips: log-mel L1 {held['logmel_l1']:.2f}, SI-SNR "
                 f"{held['si_snr_db']:+.1f} dB, code perplexity {held['perplexity']:.0f}; encode "
                 f"{held['encode_s']:.2f} s and score {held['score_s']:.2f} s per clip.")
for name, g in losses.groupby("model"):
    h = g[g["kind"] == "heldout"].iloc[0]
    lines.append(f"- **{name}** decoder: held-out loss {h['loss']:.2f} nats/token after {h['steps']} steps, "
                 f"{h['gain over unigram']:.2f} below the unigram baseline ({h['unigram']:.2f}) and "
                 f"{h['uniform'] - h['loss']:.2f} below uniform.")
display(Markdown("**What this shows.**\n\n" + "\n".join(lines)))
