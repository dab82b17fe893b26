"""The paper in one place: its protocol, the perturbations it used, the numbers it published and its claims.

* :mod:`cae.paper.protocol`: the protocol as constants (onset, noise lengths, levels per dataset kind and the one
  alias table for dataset kinds, seeds, the Fig. 5 shuffle settings, the Generated set's top-k values), and
  :func:`paper_level`.
* :mod:`cae.paper.presets`: the paper's perturbations built from it (:func:`paper_noise`, :func:`paper_block_swap`,
  :func:`paper_shuffle`, :func:`paper_pair_swaps`).
* :mod:`cae.paper.published`: the published figure values as tables (:func:`fig2`, :func:`fig4`, :func:`fig5`,
  :func:`block_swap_csv`, :func:`demo_colours`) and :func:`model_key`.
* :mod:`cae.paper.claims`: the paper's claims tested on a run (``from cae.paper import claims``). It sits on top of
  :mod:`cae.study`, so this package does not import it: ``from cae import paper`` stays as light as
  :mod:`cae.perturb` and pandas.

Dependencies point one way: ``protocol`` imports nothing of cae but :mod:`cae.errors`; ``presets`` imports
:mod:`cae.perturb` (which never imports this package); ``claims`` imports :mod:`cae.study`, which reads ``protocol``.

>>> paper_noise(PAPER_LENGTHS[-1], "trainset").level_db, int(fig2()["length"].max())
(-12.0, 200)
"""

from __future__ import annotations

from cae.paper import presets, protocol, published
from cae.paper.presets import *  # noqa: F403 - the package re-exports its modules' public names
from cae.paper.protocol import *  # noqa: F403
from cae.paper.published import *  # noqa: F403

__all__ = [*protocol.__all__, *presets.__all__, *published.__all__]
