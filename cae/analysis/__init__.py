"""Analysis of per-token scores: Δℓ_t, token masks, Peak / Assimilation / Recovery regions, statistics.

Conventions: per-token NLL arrays are ``[K, F]`` (nats) indexed by **target frame** ``f`` (NaN where there is no
prediction); codes are integer ``[K, F]``. Torch tensors are accepted anywhere an array is; results are numpy /
pandas. The authors' CSV curves are indexed by position ``p`` = frame ``p + 1``; only
:mod:`cae.analysis.paper_detector` uses that convention, internally, and reports windows in both.

Modules:

* :mod:`~cae.analysis.delta`: :func:`delta`, :func:`codebook_mean`, :func:`delta_curve`, :func:`clip_loss`;
* :mod:`~cae.analysis.mask`: :func:`token_mask`, :func:`mask_summary`;
* :mod:`~cae.analysis.windows`: :class:`Window`, :data:`REGIONS`, :func:`window_mean`;
* :mod:`~cae.analysis.paper_detector`: the authors' detector, :func:`paper_regions`;
* :mod:`~cae.analysis.regions`: mask-anchored windows, :func:`anchored_regions`, and :func:`regions_table`;
* :mod:`~cae.analysis.stats`: :func:`bootstrap_ci`, :func:`bootstrap_curve`, :func:`length_correlation`,
  :func:`paired_test`, :func:`group_summary`.
"""

from __future__ import annotations

from cae.analysis.delta import clip_loss, codebook_mean, delta, delta_curve
from cae.analysis.mask import MaskSummary, mask_summary, span_diversity, token_mask
from cae.analysis.paper_detector import CSV_OFFSET, PaperRegions, paper_regions, to_csv_curve
from cae.analysis.regions import AnchoredRegions, anchored_regions, regions_table
from cae.analysis.stats import (
    BootstrapCI,
    CorrelationResult,
    PairedTestResult,
    bootstrap_ci,
    bootstrap_curve,
    group_summary,
    length_correlation,
    paired_test,
)
from cae.analysis.windows import REGIONS, Window, window_mean

__all__ = [
    "CSV_OFFSET",
    "REGIONS",
    "AnchoredRegions",
    "BootstrapCI",
    "CorrelationResult",
    "MaskSummary",
    "PairedTestResult",
    "PaperRegions",
    "Window",
    "anchored_regions",
    "bootstrap_ci",
    "bootstrap_curve",
    "clip_loss",
    "codebook_mean",
    "delta",
    "delta_curve",
    "group_summary",
    "length_correlation",
    "mask_summary",
    "span_diversity",
    "paired_test",
    "paper_regions",
    "regions_table",
    "to_csv_curve",
    "token_mask",
    "window_mean",
]
