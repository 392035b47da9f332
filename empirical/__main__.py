"""``python -m empirical ...``: see :mod:`empirical.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
