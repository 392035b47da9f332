"""``python -m empirical ...``: see :mod:`empirical.cli`.

A ``torchrun`` rank ends through :func:`empirical.distributed.run_rank` whatever happens, an uncaught exception
included: interpreter finalisation with gloo's workers alive can abort it (:func:`empirical.distributed.end_rank`).
"""

import sys

from .cli import main
from .runs import launched_world_size

if __name__ == "__main__":
    if launched_world_size() <= 1:
        sys.exit(main())
    from .distributed import run_rank

    run_rank(main)
