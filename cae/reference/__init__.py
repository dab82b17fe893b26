"""The reference music LM shipped with cae: a small MusicGen-architecture decoder and its codec-like tokenizer.

:class:`~cae.reference.tokenizer.MelRVQTokenizer` turns 32 kHz audio into MusicGen-shaped tokens (4 codebooks,
50 frames/s): log-mel frames quantised by residual k-means, with an approximate Griffin-Lim decoder.
"""

from cae.reference.tokenizer import MelRVQTokenizer

__all__ = ["MelRVQTokenizer"]
