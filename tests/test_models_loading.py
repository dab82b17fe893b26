"""Loading models by name: registry, local folders, offline behaviour and its error messages."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import cae
from cae.errors import ModelError
from cae.models import HFMusicGen, MusicLM


def test_register_model_as_decorator_and_call(hf_full):
    @cae.register_model("test-decorated")
    def build(**kwargs):
        return HFMusicGen.from_model(hf_full, model_id="test-decorated", **kwargs)

    model = cae.load_model("test-decorated", device="cpu", alignment="paper")
    assert isinstance(model, MusicLM) and model.alignment == "paper" and model.model_id == "test-decorated"
    assert "test-decorated" in cae.models.registered_models()
    with pytest.raises(ModelError, match="already registered"):
        cae.register_model("test-decorated", lambda **k: None)


def test_a_new_adapter_only_implements_encode_and_score():
    """The "adding a model" recipe: a subclass with _encode and _token_nll gets validation and batching."""

    class Uniform(MusicLM):
        model_id, backend, card, num_codebooks = "uniform", "test", 16, 2
        sample_rate, frame_rate = 32000, 50.0

        def _encode(self, wav):
            frames = wav.shape[-1] // 640
            return (wav[:, : frames * 640].reshape(wav.shape[0], 1, frames, 640).abs().mean(-1) * 15).long().expand(-1, 2, -1)

        def _token_nll(self, codes, prompt):
            return torch.full(codes.shape, float(np.log(self.card)))

    cae.register_model("test-uniform", lambda **kw: Uniform(), overwrite=True)
    model = cae.load_model("test-uniform")
    codes = model.encode(np.full(6400, 0.5, dtype=np.float32), 32000)
    assert codes.shape == (2, 10) and int(codes[0, 0]) == 7
    assert torch.allclose(model.token_nll(codes), torch.full((2, 10), float(np.log(16))))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        model.token_nll(torch.full((2, 4), 16))


def test_a_backend_takes_a_family_of_names(monkeypatch):
    """A backend is a predicate and a loader; the most specific (highest priority) that takes a name loads it."""
    from cae.models import base

    monkeypatch.setattr(base, "_BACKENDS", dict(base._BACKENDS))
    seen = []
    cae.models.register_backend("test-prefix", lambda n: n.startswith("test:"),
                                lambda n, **kw: seen.append((n, kw)) or "loaded", priority=30)
    assert cae.load_model("test:x", device="cpu") == "loaded" and seen == [("test:x", {"device": "cpu"})]
    assert [b.name for b in base.backends()] == ["test-prefix", "yue", "random", "audiocraft", "transformers"]
    assert base.backends()[2].matches("audiocraft:facebook/musicgen-melody@random")  # @random before audiocraft:


@pytest.mark.parametrize("first", ["cae.reference.model", "cae.models.base"])
def test_every_name_is_known_whichever_module_is_imported_first(first):
    """cae.models registers the reference models and cae.reference builds on cae.models: either may come first."""
    code = (f"import {first}; from cae.models.base import backends, registered_models; "
            "assert {'reference', 'reference-mel@untrained', 'tiny'} <= set(registered_models()), registered_models(); "
            "assert [b.name for b in backends()] == ['yue', 'random', 'audiocraft', 'transformers']")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_an_adapter_must_declare_its_rates_and_vocabulary():
    """No MusicGen value is inherited: an adapter at 24 kHz / 75 frames/s that forgets its frame rate fails with an
    error naming it, instead of running with 50 frames/s."""
    from cae.models.base import UndeclaredAttributeError

    class Forgetful(MusicLM):
        model_id, backend, card, num_codebooks, sample_rate = "forgetful", "test", 16, 8, 24000

        def _encode(self, wav):
            return torch.zeros(wav.shape[0], 8, wav.shape[-1] // 320, dtype=torch.long)

        def _token_nll(self, codes, prompt):
            return torch.zeros(codes.shape)

    m = Forgetful()
    with pytest.raises(UndeclaredAttributeError, match=r"Forgetful \(forgetful\) does not declare `frame_rate`"):
        m.info()
    with pytest.raises(ModelError, match="frame_rate"):
        m.generate(1.0)
    assert not hasattr(m, "frame_rate") and hasattr(m, "sample_rate")
    m.frame_rate = 75.0
    assert m.info().frame_rate == 75.0


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        cae.load_model("no-such-model")


def test_local_checkpoint_folder_loads_and_scores_the_same(hf_full, tmp_path, codes):
    hf_full.save_pretrained(tmp_path / "ckpt")
    loaded = cae.load_model(str(tmp_path / "ckpt"), device="cpu")
    direct = HFMusicGen.from_model(hf_full, device="cpu")
    assert isinstance(loaded, HFMusicGen)
    assert (loaded.token_nll(codes[0]) - direct.token_nll(codes[0])).abs().max().item() < 1e-5
    assert loaded.info().as_dict()["model_id"] == str(tmp_path / "ckpt")


def test_missing_hub_weights_offline_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as err:
        cae.load_model("facebook/musicgen-small")
    msg = str(err.value)
    assert "facebook/musicgen-small" in msg and "HF_HUB_OFFLINE" in msg and "huggingface-cli download" in msg


def test_missing_audiocraft_weights_offline_say_how_to_get_them(tmp_path, monkeypatch):
    pytest.importorskip("audiocraft")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tmp_path / "ac"))
    with pytest.raises(ModelError, match="facebook/musicgen-melody.*audiocraft backend"):
        cae.load_model("audiocraft:facebook/musicgen-melody", device="cpu")


def test_registered_tiny_models_follow_the_audio():
    """The tiny codecs are initialised so that noise changes tokens around (and a little before) the onset."""
    t = np.arange(64000) / 32000
    wav = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    noisy = wav.copy()
    noisy[32000:38400] = 0.03 * np.random.default_rng(0).standard_normal(6400)  # frames 50..59
    for name in ("tiny", "tiny-audiocraft"):
        model = cae.load_model(name, device="cpu")
        changed = (model.encode(wav, 32000) != model.encode(noisy, 32000)).any(0).nonzero().flatten()
        assert len(changed) > 0, name
        assert 40 <= int(changed.min()) <= 50 and 59 <= int(changed.max()) <= 75, (name, changed)


def test_info_records_provenance(hf_full):
    info = HFMusicGen.from_model(hf_full, device="cpu", model_id="x", revision="abc").info(prompt="jazz").as_dict()
    assert info["model_id"] == "x" and info["revision"] == "abc" and info["alignment"] == "delay"
    assert info["conditioning"] == "text:jazz" and info["dtype"] == "float32" and info["num_codebooks"] == 4


def test_half_precision_checkpoint_keeps_the_codec_in_float32(hf_full, tmp_path):
    """A checkpoint loaded with dtype=float16 runs its LM in float16 but its EnCodec in float32, so the tokens are
    the float32 model's tokens (and float32 audio does not meet a float16 codec)."""
    import numpy as np

    hf_full.save_pretrained(tmp_path)
    half = cae.load_model(str(tmp_path), dtype="float16", device="cpu")
    full = cae.load_model(str(tmp_path), device="cpu")
    assert next(half.decoder.parameters()).dtype == torch.float16
    assert next(half.audio_encoder.parameters()).dtype == torch.float32
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    codes = half.encode(x, 16000)
    assert torch.equal(codes, full.encode(x, 16000))
    nll = half.token_nll(codes)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
