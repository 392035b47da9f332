"""``python -m empirical ...``: see :mod:`empirical.cli`.

A ``torchrun`` rank ends through :func:`empirical.distributed.end_rank` whatever happens, an uncaught exception
included (its traceback printed as Python would, status 1): finalisation with the gloo workers alive can abort it.
"""

import sys
import traceback

from .cli import main
from .runs import launched_world_size

if __name__ == "__main__":
    if launched_world_size() <= 1:
        sys.exit(main())
    from .distributed import end_rank

    status = 1
    try:
        status = main()
    except SystemExit as exc:  # argparse's usage error (2) or --help (0)
        status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # noqa: BLE001 - printed as Python prints it; the rank still ends through end_rank
        traceback.print_exc()
    end_rank(status)
