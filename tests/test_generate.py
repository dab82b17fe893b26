"""Generation walks the same delay layout as scoring: greedy samples are the per-position argmax of token_nll."""

from __future__ import annotations

import pytest
import torch

import cae


def _greedy_is_argmax(model, codes, positions):
    """Swapping token (k, t) for every vocabulary entry leaves its own context unchanged (causality), so the
    scores at (k, t) over the batch are -log p(v | context); the greedy token must have the lowest."""
    for k, t in positions:
        variants = codes.repeat(model.card, 1, 1)
        variants[:, k, t] = torch.arange(model.card)
        nll = model.token_nll(variants, batch_size=model.card)[:, k, t]
        assert int(nll.argmin()) == int(codes[k, t]), (k, t)


@pytest.mark.parametrize("name", ["tiny", "tiny-audiocraft"])
def test_greedy_generation_is_argmax_of_the_scores(name):
    if name == "tiny-audiocraft":
        pytest.importorskip("audiocraft")
    model = cae.load_model(name, device="cpu")
    codes = model.generate(0.2, temperature=0, seed=0)  # 10 frames
    assert codes.shape == (4, 10) and codes.dtype == torch.long
    _greedy_is_argmax(model, codes, [(0, 0), (3, 0), (1, 5), (2, 9), (3, 9)])


def test_sampling_is_seeded_and_respects_top_k():
    model = cae.load_model("tiny", device="cpu")
    a = model.generate(0.4, top_k=5, seed=11, num_samples=2)
    assert a.shape == (2, 4, 20)
    assert torch.equal(a, model.generate(0.4, top_k=5, seed=11, num_samples=2))
    assert not torch.equal(a, model.generate(0.4, top_k=5, seed=12, num_samples=2))
    # top_k = 1 is greedy
    assert torch.equal(model.generate(0.4, top_k=1, seed=3), model.generate(0.4, temperature=0, seed=99))
    # every sampled token lies among the 5 most likely under the model's own scores
    codes = a[0]
    for k, t in [(0, 3), (2, 7), (3, 19)]:
        variants = codes.repeat(model.card, 1, 1)
        variants[:, k, t] = torch.arange(model.card)
        nll = model.token_nll(variants, batch_size=model.card)[:, k, t]
        assert int(codes[k, t]) in nll.argsort()[:5].tolist()


def test_generate_rejects_empty_duration():
    model = cae.load_model("tiny", device="cpu")
    with pytest.raises(ValueError, match="no frame"):
        model.generate(0.001)


@pytest.mark.parametrize("name", ["tiny", "tiny-audiocraft"])
def test_batched_generation_equals_one_at_a_time(name):
    """Per-clip seeds: a clip sampled in a batch is the clip sampled alone with its seed (whatever its batch)."""
    if name == "tiny-audiocraft":
        pytest.importorskip("audiocraft")
    model = cae.load_model(name, device="cpu")
    seeds = [5, 17, 1003, 4]
    batch = model.generate(0.6, top_k=20, seed=seeds)
    assert batch.shape == (4, 4, 30)
    for s, codes in zip(seeds, batch):
        assert torch.equal(codes, model.generate(0.6, top_k=20, seed=s))
    assert torch.equal(model.generate(0.6, top_k=20, seed=seeds[1:3]), batch[1:3])
    assert not torch.equal(batch[0], batch[1])


def test_generated_set_does_not_depend_on_the_batch_size(tmp_path):
    import numpy as np

    from cae.generation import write_generated_set

    model = cae.load_model("tiny", device="cpu")
    a = write_generated_set(model, tmp_path / "a", top_ks=[5], per_k=3, seconds=0.5, progress=False, batch_size=1)
    b = write_generated_set(model, tmp_path / "b", top_ks=[5], per_k=3, seconds=0.5, progress=False, batch_size=2)
    assert a.drop(columns="path").equals(b.drop(columns="path"))
    for rel in a["path"]:
        npy = rel.replace(".wav", ".npy")
        assert np.array_equal(np.load(tmp_path / "a" / npy), np.load(tmp_path / "b" / npy))


def test_generation_benchmark_runs_and_checks_identity(capsys):
    from cae.bench_generate import main

    assert main(["--model", "tiny", "--clips", "3", "--seconds", "0.3", "--top-k", "10"]) == 0
    out = capsys.readouterr().out
    assert "identical clips: 3/3" in out and "throughput ratio:" in out


def test_growing_cache_computes_what_the_default_cache_computes():
    """The sampler's key/value buffers hand attention the same tensors as transformers' DynamicCache: bit for bit."""
    from cae.models.sampling import growing_cache

    model = cae.load_model("tiny", device="cpu")
    dec = model.decoder
    cols = torch.randint(0, model.card, (3, model.num_codebooks, 12), generator=torch.Generator().manual_seed(0))
    outs = {}
    for name in ("dynamic", "growing"):
        cache = None if name == "dynamic" else growing_cache(dec.config.num_hidden_layers, 12)
        logits = []
        with torch.inference_mode():
            for s in range(12):
                out = dec(input_ids=cols[:, :, s:s + 1].reshape(-1, 1), cache=cache, use_cache=True)
                cache = out.cache
                logits.append(out.logits)
        outs[name] = torch.stack(logits)
    assert torch.equal(outs["dynamic"], outs["growing"])
    full = growing_cache(dec.config.num_hidden_layers, 2)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="full"):
        for s in range(3):
            full = dec(input_ids=cols[:, :, s:s + 1].reshape(-1, 1), cache=full, use_cache=True).cache


def test_fewer_frames_than_codebooks_are_sampled_in_the_delay_layout():
    model = cae.load_model("tiny", device="cpu")
    frames = 2  # < 4 codebooks: the last codebook's first frame comes 3 steps after the first codebook's
    codes = model.generate(frames / model.frame_rate, temperature=0, seed=0)
    assert codes.shape == (4, frames)
    _greedy_is_argmax(model, codes, [(0, 0), (3, 0), (3, 1), (1, 1)])
    assert torch.equal(model.generate(frames / model.frame_rate, top_k=5, seed=[3, 4])[1],
                       model.generate(frames / model.frame_rate, top_k=5, seed=4))
