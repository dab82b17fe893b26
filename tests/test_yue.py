"""YuE (stage-2 LM on X-Codec tokens): token ids, codec frames, both alignments against independent computations,
parameter count, strict loading of real-weight folders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import cae
from cae.errors import ModelError
from cae.models import yue
from cae.models.xcodec import XCodec, load_xcodec_state


@pytest.fixture(scope="module")
def tiny() -> yue.YuE:
    return cae.load_model("tiny-yue", device="cpu")


def _published_npy2ids(codes: np.ndarray) -> list[int]:
    """A transcription of YuE's ``CodecManipulator('xcodec', 0, 8).npy2ids``: ``offset_tok_ids`` adds
    ``global_offset + k * codebook_size`` to row ``k``, then ``flatten`` is ``rearrange('K T -> (T K)')``."""
    x = codes.astype(np.uint32).copy()
    for k in range(0, 8):
        x[k] += 45334 + k * 1024
    out = []
    for t in range(x.shape[1]):
        for k in range(x.shape[0]):
            out.append(int(x[k, t]))
    return out


def test_ids_follow_the_published_offset_rule_and_round_trip():
    codes = torch.randint(0, 1024, (2, 8, 13), generator=torch.Generator().manual_seed(0))
    ids = yue.codes_to_ids(codes)
    for b in range(2):
        assert ids[b].tolist() == _published_npy2ids(codes[b].numpy())
    assert torch.equal(yue.ids_to_codes(ids), codes)
    assert int(ids.min()) >= 45334 and int(ids.max()) < 53526
    with pytest.raises(ValueError, match="range"):
        yue.ids_to_codes(ids.roll(1, dims=1))  # frames no longer start at codebook 0


@pytest.mark.parametrize("samples", [319, 320, 321, 3200, 16001])
def test_frames_are_ceil_of_samples_over_hop(tiny, samples):
    wav = 0.1 * torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    codes = tiny.encode(wav, 16000)
    assert tuple(codes.shape) == (8, math.ceil(samples / 320))
    assert int(codes.min()) >= 0 and int(codes.max()) < 1024


def test_paper_alignment_equals_transformers_loss_over_flat_ids(tiny, monkeypatch):
    monkeypatch.setattr(yue, "LOGIT_CHUNK", 5)  # logits in many chunks, as for a real clip
    codes = torch.randint(0, 1024, (8, 9), generator=torch.Generator().manual_seed(1))
    model = cae.load_model("tiny-yue", alignment="paper", device="cpu")
    nll = model.token_nll(codes)
    assert torch.isnan(nll[0, 0]) and not torch.isnan(nll.flatten()[1:]).any()
    ids = yue.codes_to_ids(codes[None])
    with torch.no_grad():
        out = model.lm(input_ids=ids, labels=ids)
        per_token = torch.nn.functional.cross_entropy(out.logits[0, :-1].double(), ids[0, 1:], reduction="none")
    # flat position p = 8 f + k: the token of codebook k at frame f, scored given every earlier id
    assert torch.allclose(nll.T.reshape(-1)[1:].double(), per_token, atol=1e-4)
    assert abs(float(torch.nanmean(nll)) - float(out.loss)) < 1e-4


def _brute_force_stage2(lm, codes: torch.Tensor, segment: int) -> torch.Tensor:
    """For every codebook-1..7 token: its own context written out (the segment's prompt, then the frames before it,
    then its frame's earlier tokens), one forward pass per token, float64 log-softmax of the last position."""
    k_count, f = codes.shape
    out = torch.full((k_count, f), float("nan"), dtype=torch.float64)
    for a in range(0, f, segment):
        e = min(a + segment, f)
        prompt = [32001, 32013] + [45334 + int(codes[0, t]) for t in range(a, e)] + [32017]
        for t in range(a, e):
            for k in range(1, k_count):
                context = list(prompt)
                for tt in range(a, t):
                    context += [45334 + 1024 * kk + int(codes[kk, tt]) for kk in range(k_count)]
                context += [45334 + 1024 * kk + int(codes[kk, t]) for kk in range(k)]
                with torch.no_grad():
                    logits = lm(input_ids=torch.tensor([context])).logits[0, -1].double()
                out[k, t] = -torch.log_softmax(logits, -1)[45334 + 1024 * k + int(codes[k, t])]
    return out


def test_stage2_alignment_equals_brute_force_oracle_across_segments(monkeypatch):
    monkeypatch.setattr(yue, "LOGIT_CHUNK", 7)
    model = cae.load_model("tiny-yue", device="cpu", segment_frames=3)
    codes = torch.randint(0, 1024, (8, 7), generator=torch.Generator().manual_seed(2))  # segments 0-3, 3-6, 6-7
    nll = model.token_nll(codes)
    oracle = _brute_force_stage2(model.lm, codes, 3)
    assert torch.isnan(nll[0]).all() and not torch.isnan(nll[1:]).any()
    assert torch.allclose(nll[1:].double(), oracle[1:], atol=1e-4)
    # segments do not see each other: changing frame 2 leaves the second and third segments' values unchanged
    other = codes.clone()
    other[:, 2] = (other[:, 2] + 1) % 1024
    nll2 = model.token_nll(other)
    assert torch.equal(nll2[1:, 3:], nll[1:, 3:]) and not torch.equal(nll2[1:, :3], nll[1:, :3])
    # and codebook 0 of a frame is given: it changes the predictions of its whole segment (it is in the prompt)
    other = codes.clone()
    other[0, 5] = (other[0, 5] + 1) % 1024
    nll3 = model.token_nll(other)
    assert not torch.equal(nll3[1:, 3], nll[1:, 3]) and torch.equal(nll3[1:, :3], nll[1:, :3])


def test_batched_scoring_equals_one_clip_at_a_time(tiny):
    codes = torch.randint(0, 1024, (3, 8, 5), generator=torch.Generator().manual_seed(3))
    together = tiny.token_nll(codes, batch_size=3)
    alone = torch.stack([tiny.token_nll(c) for c in codes])
    assert torch.allclose(together, alone, atol=1e-5, equal_nan=True)


def test_paper_frame_curve_reproduces_the_authors_grouping():
    nll = torch.arange(8 * 4, dtype=torch.float32).view(4, 8).T.contiguous()  # nll[k, f] = 8 f + k (flat position)
    nll[0, 0] = float("nan")
    curve = yue.paper_frame_curve(nll)
    # theirs: losses of targets 1..8F-1 in order, the last 7 dropped, mean of each 8 consecutive
    ce = np.arange(1, 32, dtype=np.float64)
    ce = ce[: len(ce) - len(ce) % 8]
    assert curve.tolist() == pytest.approx(ce.reshape(-1, 8).mean(1).tolist())
    assert curve.tolist() == [4.5, 12.5, 20.5]  # frame t: codebooks 1-7 of t and codebook 0 of t + 1


def test_lm_parameters_from_config_match_a_count_by_hand_and_the_built_model():
    cfg = yue.lm_config()
    by_hand = (83840 * 2048            # embeddings
               + 32 * (4 * 2048 * 2048    # q, k, v, o (16 key/value heads of 128 = 2048)
                       + 3 * 2048 * 5504  # gate, up, down
                       + 2 * 2048)        # two RMSNorm weights
               + 2048                     # final norm
               + 83840 * 2048)            # untied output head
    assert yue.lm_parameters(cfg) == by_hand == 1_962_543_104  # 1.96 B: more than the name says (see the config's sources)
    small = yue.lm_config(**yue.TINY_LM)
    assert yue.lm_parameters(small) == sum(p.numel() for p in yue._random_lm(small, 0).parameters())


def test_alignments_are_declared_and_others_refused():
    with pytest.raises(ModelError, match="stage2"):
        cae.load_model("tiny-yue", alignment="delay")
    with pytest.raises(ModelError, match="no text prompt"):
        cae.load_model("tiny-yue").token_nll(torch.zeros(8, 3, dtype=torch.long), prompt="piano")


def test_names_resolve_to_the_yue_backend():
    assert yue.is_yue_name("m-a-p/YuE-s2-1B-general@random") and yue.is_yue_name("yue:/some/folder")
    assert not yue.is_yue_name("facebook/musicgen-small@random")
    with pytest.raises(ModelError, match="no shipped architecture"):
        cae.load_model("m-a-p/YuE-s1-7B-anneal-en-cot@random")


def _write_xcodec_folder(root, codec: XCodec, state: dict) -> None:
    (root / "final_ckpt").mkdir(parents=True)
    (root / "final_ckpt" / "config.yaml").write_text(
        "generator:\n  name: SoundStream\n  config:\n    n_filters: 4\n    D: 8\n    ratios: [8, 5, 4, 2]\n"
        "    sample_rate: 16000\n    bins: 1024\n")
    torch.save({"codec_model": state}, root / "final_ckpt" / "ckpt_00000001.pth")


def test_real_weight_folders_load_strictly_and_name_missing_keys(tmp_path, tiny, monkeypatch):
    # the tiny model's codec config differs from the shipped one only where config.yaml does not speak
    monkeypatch.setattr("cae.models.xcodec.config", lambda name="": dict(yue.TINY_CODEC))
    state = {k: v.clone() for k, v in tiny.codec.state_dict().items()}
    # one convolution in the checkpoint's weight-norm form (g · v / |v|), to be folded on load
    w = state.pop("encoder.block.0.weight")
    state["encoder.block.0.weight_g"] = w.norm(dim=(1, 2), keepdim=True)
    scale = torch.rand(w.shape[0], 1, 1, generator=torch.Generator().manual_seed(5)) * 3 + 0.5  # ‖v‖ ≠ g
    state["encoder.block.0.weight_v"] = w * scale
    state["fc_post1.weight"] = torch.zeros(1)  # training-only parts are dropped
    good = tmp_path / "good"
    _write_xcodec_folder(good, tiny.codec, state)
    tiny.lm.save_pretrained(tmp_path / "lm")
    loaded = cae.load_model(f"yue:{tmp_path / 'lm'}", codec=good, device="cpu")
    wav = 0.1 * torch.randn(3200, generator=torch.Generator().manual_seed(4))
    codes = tiny.encode(wav, 16000)
    with torch.no_grad():  # the folded weight equals the original up to rounding: the latents agree to float precision
        assert torch.allclose(loaded.codec.latent(wav[None]), tiny.codec.latent(wav[None]), atol=1e-5, rtol=1e-4)
    assert torch.equal(loaded.encode(wav, 16000)[0], codes[0])  # (deeper levels quantize tiny residuals: near ties)
    assert torch.allclose(loaded.token_nll(codes), tiny.token_nll(codes), atol=1e-5, equal_nan=True)

    broken = dict(state)
    del broken["quantizer.vq.layers.3._codebook.embed"]
    bad = tmp_path / "bad"
    _write_xcodec_folder(bad, tiny.codec, broken)
    with pytest.raises(ModelError, match=r"missing 1 key\(s\) \['quantizer.vq.layers.3._codebook.embed'\]"):
        yue.load_xcodec(bad)
    with pytest.raises(ModelError, match="unexpected 1 key"):
        load_xcodec_state(XCodec(yue.TINY_CODEC), dict(state, **{"extra.weight": torch.zeros(1)}))


def test_yue_claims_on_a_hand_made_study():
    """Δ known by construction: on 'ood' every clip's loss falls linearly with length (r = −1, all lower); on
    'generated' one clip rises at the shortest length (not all lower)."""
    import pandas as pd

    from cae.paper import claims
    from cae.study.run import StudyResults

    rows = []
    for kind in ("ood", "generated"):
        for clip in range(3):
            for length in (10, 50, 100, 200):
                delta = -0.001 * length - 0.01 * clip
                if kind == "generated" and clip == 0 and length == 10:
                    delta = +0.05
                rows.append({"model_id": "yue-x", "kind": kind, "clip": f"c{clip}", "condition": f"noise{length}",
                             "length": length, "onset": 250, "n_frames": 750, "perturbation_kind": "noise",
                             "loss": 5 + delta, "loss_clean": 5.0, "delta_loss": delta, "error": None})
    res = StudyResults(pd.DataFrame(rows), pd.DataFrame())
    table = pd.DataFrame(claims.yue_rows(res, ["yue-x"]))
    corr = table[table["claim"].str.contains("falls")].set_index("kind")
    lower = table[table["claim"].str.contains("every noisy")].set_index("kind")
    assert corr.loc["ood", "verdict"] == "holds" and corr.loc["ood", "mean"] == pytest.approx(-1.0)
    assert lower.loc["ood", "verdict"] == "holds" and lower.loc["ood", "mean"] == 1.0
    assert lower.loc["generated", "verdict"] == "does not hold" and lower.loc["generated", "mean"] == pytest.approx(11 / 12)
    assert claims.yue_rows(res, []) == []


def test_llama_flops_equal_torch_flop_counter_at_real_size():
    """The cost model's LM FLOPs against torch's own count of the real-size architecture on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaForCausalLM

    from cae import cost

    cfg = yue.lm_config()
    with torch.device("meta"):
        lm = LlamaForCausalLM(cfg).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            lm(input_ids=torch.zeros(1, 103, dtype=torch.long))
    assert math.isclose(cost.llama_gflop(cfg, 103), fc.get_total_flops() / 1e9, rel_tol=1e-9)


def test_yue_unit_cost_counts_its_segments_and_codec():
    from cae import cost
    from cae.models.xcodec import XCodec

    with torch.device("meta"):
        codec = XCodec()
    assert sum(p.numel() for p in codec.parameters()) == 143_394_817  # the constant cae.cost uses
    u = cost.unit_cost("m-a-p/YuE-s2-1B-general@random", 15.0, "float32")
    assert u.positions == 2 * (3 + 9 * 300) + 3 + 9 * 150
    assert 20 < cost.xcodec_gflop(1.0) < 30 and u.weights_gb == pytest.approx((1_962_543_104 + 143_394_817) * 4 / 1e9)
    assert cost.loaded_parameters("m-a-p/YuE-s2-1B-general@random") == 1_962_543_104 + 143_394_817


def test_fast_paths_are_declared_capabilities_and_the_slow_path_says_why(tiny, recwarn):
    from cae.scoring import engine
    from cae.scoring.encoder import supports_incremental_encoding
    from cae.scoring.prefix import supports_prefix_reuse

    musicgen = cae.load_model("tiny", device="cpu")
    assert supports_prefix_reuse(musicgen) and supports_incremental_encoding(musicgen)
    assert not supports_prefix_reuse(tiny) and not supports_incremental_encoding(tiny)
    # an adapter that subclasses nothing of MusicGen's gets a fast path by declaring it, not by its type
    assert "prefix_reuse" in musicgen.capabilities and not tiny.capabilities
    engine._SLOW_NOTED.discard(tiny.model_id)
    wav = 0.1 * np.random.default_rng(0).standard_normal(3200).astype(np.float32)
    engine.ClipEngine(tiny, wav)
    engine.ClipEngine(tiny, wav)
    said = [str(w.message) for w in recwarn if "scored in full" in str(w.message)]
    assert len(said) == 1 and "HuBERT attends over the whole clip" in said[0]


def test_codebook_mean_leaves_out_a_codebook_never_predicted_item_by_item():
    from cae.analysis.delta import codebook_mean

    nan = float("nan")
    yue_like = [[nan, nan, nan], [1.0, 2.0, 3.0], [3.0, nan, 5.0]]
    musicgen_like = [[nan, 1.0, 1.0], [nan, 3.0, 5.0], [nan, 5.0, 6.0]]  # paper alignment: frame 0 unscored
    out = codebook_mean(np.array([yue_like, musicgen_like, [[nan] * 3] * 3]))
    assert out[0].tolist()[0] == 2.0 and np.isnan(out[0][1]) and out[0][2] == 4.0
    assert np.isnan(out[1][0]) and out[1][1:].tolist() == [3.0, 4.0]
    assert np.isnan(out[2]).all()
