"""``python -m empirical ...``: see :mod:`empirical.cli`."""

import sys

from .cli import main
from .runs import launched_world_size

if __name__ == "__main__":
    status = main()
    if launched_world_size() > 1:  # a torchrun rank: see empirical.distributed.end_rank
        from .distributed import end_rank

        end_rank(status)
    sys.exit(status)
