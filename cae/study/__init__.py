"""Studies: the paper's experiments as cached sweeps over dataset kinds, and the tables the notebooks plot.

The method, step by step (each step a module, each function one call in a notebook):

1. **setting** (:mod:`cae.study.setup`): every model under a *protocol* (:func:`load_models`). ``"corrected"``
   scores in MusicGen's training layout (delay pattern, BOS, every token) and anchors regions on the token mask;
   ``"paper"`` reproduces the authors' computation (un-delayed codes, no BOS, ``alignment="paper"``) and their
   fixed-constant region detector.
2. **conditions** (:mod:`cae.study.conditions`: :func:`noise_conditions`, :class:`NoiseSweep`,
   :func:`shuffle_conditions`, :func:`pure_noise`): perturbations as serialisable records, at the level of a
   *level mode* (the paper's dBFS per kind, one absolute level, or an SNR against each clip).
3. **sweep** (:mod:`cae.study.run`: :func:`run`, :func:`run_study`): every (model, kind, clip, condition) through
   :func:`cae.scoring.run_sweep`, so results are cached by content and reruns are free (:class:`StudyResults`).
4. **tables** (:mod:`cae.study.tables`): Δ of the clip loss with bootstrap CIs, tests against length, Δℓ_t curves
   around the onset, the absolute curves of the paper's Fig. 3, Peak / Assimilation / Recovery means, one example
   clip to listen to.
5. **the codec and the material** (:mod:`cae.study.codec`): what a codec makes of noise, how loud the music is,
   how faithfully the codec round-trips it.

All frames are target frames; ``onset`` is the first perturbed frame (the paper: 250).
"""

from __future__ import annotations

from cae.study.codec import codec_noise_response, music_levels, resynthesis_quality, resynthesis_quality_table
from cae.study.conditions import PURE_NOISE_FRAMES, NoiseSweep, noise_conditions, pure_noise, shuffle_conditions
from cae.study.run import GENERATION_SEED, StudyResults, perturbation_columns, run, run_study
from cae.study.setup import (
    LEVEL_MODES,
    PROTOCOLS,
    StudyError,
    StudyProtocol,
    import_plugins,
    load_models,
    protocol,
    random_weights_note,
)
from cae.study.tables import (
    ExampleClip,
    absolute_curves,
    clip_curve,
    clip_deltas,
    delta_by_length,
    example_clip,
    is_pure_noise,
    length_tests,
    noise_token_stats,
    onset_curves,
    paired_by_length,
    region_means,
    token_array,
)

__all__ = [
    "GENERATION_SEED", "LEVEL_MODES", "PROTOCOLS", "PURE_NOISE_FRAMES", "ExampleClip", "NoiseSweep", "StudyError",
    "StudyProtocol", "StudyResults", "absolute_curves", "clip_curve", "clip_deltas", "codec_noise_response",
    "delta_by_length", "example_clip", "import_plugins", "is_pure_noise", "length_tests", "load_models",
    "music_levels", "noise_conditions", "noise_token_stats", "onset_curves", "paired_by_length",
    "perturbation_columns", "protocol", "pure_noise", "random_weights_note", "region_means",
    "resynthesis_quality", "resynthesis_quality_table", "run", "run_study", "shuffle_conditions", "token_array",
]
