"""The sweep cache knows what computed its numbers: the digest of the weights and the version of the scoring code.

* a checkpoint folder overwritten with other weights is scored again (the issue's reproduction), an unchanged one is
  a cache hit;
* ``@random`` seeds, tiny models, already-built models and user adapters each get a weights digest that follows
  their weights;
* the scoring code's source matches the fingerprint recorded with ``SCORING_VERSION``
  (``tests/scoring_fingerprint.txt``), so a change to it cannot reuse old numbers unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import cae
from cae.models.base import MusicLM
from cae.models.hf import HFMusicGen
from cae.perturb import Noise, Span
from cae.scoring import run_sweep, unit_key
from cae.scoring import fingerprint
from cae.scoring.cache import SCORING_VERSION, key_document

SR = 32000


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _clips(folder: Path, n: int = 2) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    paths = []
    for i in range(n):
        wav = 0.2 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = folder / f"clip{i}.wav"
        sf.write(path, wav.astype(np.float32), SR, subtype="FLOAT")
        paths.append(str(path))
    return paths


# ---- the reproduction ----------------------------------------------------------------------------------------
def test_a_checkpoint_folder_retrained_in_place_is_scored_again(tmp_path: Path) -> None:
    from cae.models.tiny import tiny_hf_musicgen

    folder, cache = tmp_path / "ckpt", tmp_path / "cache"
    clips = _clips(tmp_path / "clips")
    perturbations = [Noise(Span(10, 5), level_db=-20.0, seed=1)]

    def sweep():
        model = cae.load_model(str(folder), device="cpu")
        return run_sweep(clips, perturbations, model, cache_dir=cache, progress=False)

    tiny_hf_musicgen(seed=0).save_pretrained(folder)
    first = sweep()
    assert (first.stats.units, first.stats.computed) == (4, 4)
    assert first.summary["weights"].str.startswith("files:").all()

    again = sweep()  # the same weights, loaded again: every unit from the cache
    assert (again.stats.cached, again.stats.computed) == (4, 0)
    assert again.summary["loss"].equals(first.summary["loss"])

    tiny_hf_musicgen(seed=1).save_pretrained(folder)  # retrained in place: same path, same model id, other weights
    retrained = sweep()
    assert (retrained.stats.cached, retrained.stats.computed) == (0, 4)
    assert (retrained.summary["weights"] != first.summary["weights"]).all()
    assert (retrained.summary["loss"] != first.summary["loss"]).all()
    assert (retrained.summary["model_id"] == first.summary["model_id"]).all()


# ---- weights digests per kind of model -------------------------------------------------------------------------------
def test_random_seeds_give_different_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """``@random`` models through :func:`cae.models.published.build_random`, at a tiny width (the published configs
    swapped for tiny ones) so that the test builds in milliseconds; the digest is the recipe, not the tensors."""
    from cae.models import published as P
    from cae.models import tiny

    monkeypatch.setattr(P, "decoder_config", lambda arch: tiny.tiny_hf_decoder_config())
    monkeypatch.setattr(P, "encodec_config", lambda: tiny.tiny_hf_encodec_config())
    name = "facebook/musicgen-small@random"

    def key(model: MusicLM) -> str:
        return unit_key("0" * 64, None, model.info().as_dict())

    a, a_again, b = (cae.load_model(name, device="cpu", seed=s) for s in (0, 0, 1))
    assert key(a) == key(a_again) != key(b)
    assert a.weights_digest() == P.random_weights_digest(P.architecture(name), 0)
    assert a.weights_digest().startswith("random:")
    assert a.info().revision == "random:seed=0"  # the digest is recorded beside the seed, not instead of it


def test_built_models_hash_their_tensors_once() -> None:
    """An already-built model (tiny ones included) is identified by its tensors: equal for the same seed, different
    for another, fixed per adapter object unless refreshed; private helpers (the float64 sampling copy) do not count."""
    from cae.models.tiny import tiny_hf_musicgen

    model = HFMusicGen.from_model(tiny_hf_musicgen(seed=0), device="cpu")
    digest = model.weights_digest()
    assert digest.startswith("state-dict:") and model.info().weights == digest
    assert cae.load_model("tiny", device="cpu").weights_digest() == digest  # the registered "tiny" is seed 0
    assert cae.load_model("tiny", device="cpu", seed=1).weights_digest() != digest
    model.generate(0.1, seed=0)  # makes the private float64 decoder copy
    assert model.weights_digest(refresh=True) == digest
    changed = HFMusicGen.from_model(tiny_hf_musicgen(seed=0), device="cpu")
    with torch.no_grad():
        changed.decoder.lm_heads[0].weight[0, 0] += 1.0  # fine-tuned in place
    assert changed.weights_digest() != digest  # first computed after the change
    other = HFMusicGen.from_model(tiny_hf_musicgen(seed=0), device="cpu")
    assert other.weights_digest() == digest
    with torch.no_grad():
        other.decoder.lm_heads[0].weight[0, 0] += 1.0
    assert other.weights_digest() == digest and other.weights_digest(refresh=True) != digest  # once per object


def test_user_adapters_get_a_digest_without_overriding_anything() -> None:
    class NoWeights(MusicLM):
        sample_rate, frame_rate, num_codebooks, card = 32000, 50.0, 4, 2048

        def __init__(self) -> None:
            self._setup(model_id="none", revision=None, alignment="delay", device="cpu", dtype=None, batch_size=1)

        def _encode(self, wav):  # pragma: no cover - not called
            raise NotImplementedError

        def _token_nll(self, codes, prompt):  # pragma: no cover - not called
            raise NotImplementedError

    class Linear(NoWeights):
        def __init__(self, seed: int) -> None:
            super().__init__()
            torch.manual_seed(seed)
            self.net = torch.nn.Linear(3, 3)

    class Wrapper(NoWeights):  # borrows another adapter, as examples/copy_baseline.py borrows a codec
        def __init__(self, inner: MusicLM) -> None:
            super().__init__()
            self.codec = inner

    none = NoWeights().weights_digest()
    assert none.startswith("no-weights:") and none == NoWeights().weights_digest()
    assert NoWeights().info().weights == none
    assert Linear(0).weights_digest() == Linear(0).weights_digest() != Linear(1).weights_digest()
    wrapped = [Wrapper(Linear(s)).weights_digest() for s in (0, 0, 1)]
    assert wrapped[0] == wrapped[1] != wrapped[2]


def test_reference_models_are_identified_by_their_verified_checksums() -> None:
    from cae.models.weights import state_dict_digest
    from cae.reference.model import read_meta, weights_digest

    ref = cae.load_model("reference", device="cpu")
    assert ref.weights_digest() == weights_digest(read_meta()) and ref.weights_digest().startswith("reference:")
    step = cae.load_model("reference@step250", device="cpu")
    untrained = cae.load_model("reference@untrained", device="cpu")
    assert len({ref.weights_digest(), step.weights_digest(), untrained.weights_digest()}) == 3
    assert untrained.weights_digest() == weights_digest(read_meta(), state_dict_digest({"decoder": untrained.decoder}))
    half = cae.load_model("reference@untrained", device="cpu", dtype="bfloat16")
    assert half.weights_digest() == untrained.weights_digest()  # hashed as drawn, before the cast


# ---- the scoring code's version --------------------------------------------------------------------------------------
def test_scoring_code_matches_its_recorded_fingerprint() -> None:
    """Fails when a module of ``SCORING_MODULES`` changed: bump ``SCORING_VERSION`` in cae/scoring/cache.py and run
    ``python -m cae.scoring.fingerprint --update`` (see :mod:`cae.scoring.fingerprint`)."""
    problem = fingerprint.check()
    assert problem is None, problem


def test_the_key_holds_the_scoring_version_and_the_weights() -> None:
    info = {"model_id": "m", "weights": "files:aa"}
    assert key_document("0" * 64, None, info)["scoring"] == SCORING_VERSION
    keys = {unit_key("0" * 64, None, info), unit_key("0" * 64, None, {**info, "weights": "files:bb"}),
            unit_key("0" * 64, None, info, scoring_version=SCORING_VERSION + 1)}
    assert len(keys) == 3


def test_a_changed_fingerprint_asks_for_a_new_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "fp.txt"
    current = fingerprint.source_fingerprint()
    fingerprint.write_record(record, fingerprint.Record(SCORING_VERSION, "0" * 64))  # code changed since recorded
    assert "bump SCORING_VERSION" in (fingerprint.check(record) or "")
    assert fingerprint.main(["--update", "--file", str(record)]) == 1  # refuses to keep the version
    assert fingerprint.read_record(record).fingerprint == "0" * 64
    assert fingerprint.main(["--update", "--cosmetic", "--file", str(record)]) == 0  # the author's explicit claim
    assert fingerprint.read_record(record) == fingerprint.Record(SCORING_VERSION, current)
    assert fingerprint.check(record) is None and fingerprint.main(["--file", str(record)]) == 0
    fingerprint.write_record(record, fingerprint.Record(SCORING_VERSION - 1, "0" * 64))  # bumped, not recorded
    assert "update it" in (fingerprint.check(record) or "")
    assert fingerprint.main(["--update", "--file", str(record)]) == 0 and fingerprint.check(record) is None
    capsys.readouterr()
    assert fingerprint.source_fingerprint(reversed(fingerprint.SCORING_MODULES)) == current  # order does not matter


def test_line_endings_do_not_change_the_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {"lf": b"x = 1\ny = 2\n", "crlf": b"x = 1\r\ny = 2\r\n", "cr": b"x = 1\ry = 2\r",
               "edit": b"x = 1\ny = 3\n"}
    prints = {}
    for kind, data in sources.items():
        (tmp_path / kind).write_bytes(data)
        monkeypatch.setattr(fingerprint, "module_file", lambda name, kind=kind: tmp_path / kind)
        prints[kind] = fingerprint.source_fingerprint(["cae.module"])
    assert prints["lf"] == prints["crlf"] == prints["cr"] != prints["edit"]
