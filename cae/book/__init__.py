"""Building the book: notebooks (jupytext ``.py``) → papermill with a parameter set → jupyter-book HTML → a
headless-browser check of the built pages.

* :mod:`cae.book.build`: ``python -m cae.book build --set default`` (what ``make book`` runs).
* :mod:`cae.book.check`: ``python -m cae.book.check _build/html`` (headless Chromium, network off).
"""
