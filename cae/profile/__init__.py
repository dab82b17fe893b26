"""The profile score: read quality from the *shape* of the loss response to short noise injections.

The paper argues that the absolute loss of a music LM is a poor quality signal (noise can lower it), and that the
shape of the token-wise response Δℓ_t to a perturbation carries the information instead: a sharp **Peak** on a
short injection shows that the model can tell musical material from non-musical material. This package makes that
claim operational and testable.

Method
------
1. **Protocol** (:mod:`cae.profile.run`, :class:`ProfileProtocol`): short white-noise bursts *replace* the clip at
   a few onsets (default: 5 and 10 frames, i.e. 0.1 and 0.2 s, at frames 150, 300 and 450), each as loud as the
   clip (SNR 0 dB relative to its RMS). Every burst is its own perturbed copy of the clip, scored with
   :func:`cae.scoring.run_sweep` (cached); :func:`profile_clips` runs it all.
2. **Features** (:mod:`cae.profile.features`, :mod:`cae.profile.table`): from Δℓ_t (``nll_perturbed −
   nll_clean``, ``[K, F]``, target-frame indexed) and the token mask, per codebook and for the codebook mean, a
   fixed set of numbers (:data:`FEATURES`: peak height, width, prominence and contrast, assimilation time and
   depth, exit spike, recovery time, areas) read off the Peak / Assimilation / Exit / Recovery windows, which are
   anchored on the changed tokens (:func:`curve_features`, :func:`clip_profile`, :func:`profile_table`).
3. **Scores** (:mod:`cae.profile.scores`): :func:`model_scores` (one number per model: how strongly and sharply
   it reacts to short bursts on real music) and :func:`clip_scores` (one number per clip and model: how strongly
   the model reacts to a burst in *this* clip). Both are means of one feature (default
   :data:`DEFAULT_SCORE_FEATURE`, the peak contrast of the codebook-mean curve) over the short bursts.
4. **Validation** (:mod:`cae.profile.validation`): Spearman rank correlations, with bootstrap CIs over clips,
   between the scores and a known quality order (training checkpoints of the reference model, :func:`validate_models`;
   graded degradations of real clips, :mod:`cae.profile.ladder` and :mod:`cae.perturb.filters`, and generated
   sets over top-k and temperature, :func:`validate_clips`), next to the same correlation for the absolute clean
   loss, the baseline the paper argues against.

``Protocol`` is the former name of :class:`ProfileProtocol`, kept as an alias.
"""

from __future__ import annotations

from cae.profile.features import FEATURES, FeatureParams, clip_profile, curve_features, feature_marks
from cae.perturb import BitCrush, LowPass
from cae.profile.ladder import DEFAULT_LADDERS, degradation_ladder
from cae.profile.run import ProfileProtocol, ProfileResult, burst_marks, profile_clips
from cae.profile.scores import DEFAULT_SCORE_FEATURE, clip_scores, model_scores
from cae.profile.table import profile_table
from cae.profile.validation import (
    ClipValidation,
    ModelValidation,
    checkpoint_models,
    rank_correlations,
    validate_clips,
    validate_models,
)

__all__ = [
    "checkpoint_models",
    "DEFAULT_LADDERS",
    "DEFAULT_SCORE_FEATURE",
    "FEATURES",
    "BitCrush",
    "ClipValidation",
    "FeatureParams",
    "LowPass",
    "ModelValidation",
    "ProfileProtocol",
    "ProfileResult",
    "burst_marks",
    "clip_profile",
    "clip_scores",
    "curve_features",
    "degradation_ladder",
    "feature_marks",
    "model_scores",
    "profile_clips",
    "profile_table",
    "rank_correlations",
    "validate_clips",
    "validate_models",
]
