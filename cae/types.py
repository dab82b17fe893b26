"""Type aliases for arrays and tensors used across cae, with their shapes.

Shapes use these letters:

* ``N``: audio samples (mono);
* ``K``: codebooks (MusicGen: 4);
* ``F``: codec frames (MusicGen: 50 per second, hop 640 samples at 32 kHz);
* ``B``: batch;
* ``V``: vocabulary size (codebook cardinality, MusicGen: 2048).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

#: Mono waveform, float32 in [-1, 1] nominally, shape ``[N]``.
Wave = npt.NDArray[np.float32]
#: Codec tokens of one clip, shape ``[K, F]`` (``torch.long``).
Codes = torch.Tensor
#: Codec tokens of a batch of clips, shape ``[B, K, F]`` (``torch.long``).
BatchCodes = torch.Tensor
#: Per-token negative log-likelihood in nats, shape ``[K, F]`` (``torch.float32``); NaN where no prediction.
TokenNLL = torch.Tensor
#: Per-token NLL of a batch, shape ``[B, K, F]``.
BatchTokenNLL = torch.Tensor
