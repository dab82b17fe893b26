"""``python -m cae.book``: see :mod:`cae.book.build`."""

import sys

from cae.book.build import main

if __name__ == "__main__":
    sys.exit(main())
