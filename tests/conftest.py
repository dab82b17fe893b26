"""Shared fixtures: tiny random-weight models of both backends (built once per session)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore", message=".*xFormers.*")

SR = 32000


def music(seconds: float = 8.0, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A deterministic, non-trivial clean clip: two partials plus a little noise, about -20 dBFS."""
    t = np.arange(round(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1330 * t) + 0.01 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS, written out (an independent check of :func:`cae.audio.rms_dbfs`)."""
    x = np.asarray(x, dtype=np.float64)
    return 20 * math.log10(math.sqrt(float(np.mean(x * x))))


@pytest.fixture(scope="session")
def hf_full():
    from cae.models.tiny import tiny_hf_musicgen

    return tiny_hf_musicgen(seed=0)


@pytest.fixture(scope="session")
def ac_lm():
    pytest.importorskip("audiocraft")
    from cae.models.tiny import tiny_audiocraft_lm

    return tiny_audiocraft_lm(seed=1)


@pytest.fixture(scope="session")
def ac_codec():
    pytest.importorskip("audiocraft")
    from cae.models.tiny import tiny_audiocraft_codec

    return tiny_audiocraft_codec(seed=2)


@pytest.fixture()
def codes():
    g = torch.Generator().manual_seed(123)
    return torch.randint(0, 64, (3, 4, 17), generator=g)


def damage(path, how: str) -> None:
    """Damage a file the way disks and interrupted copies do: ``"corrupt"`` flips one bit in its middle,
    ``"missing"`` deletes it."""
    if how == "corrupt":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif how == "missing":
        path.unlink()
    else:
        raise ValueError(how)
