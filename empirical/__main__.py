"""``python -m empirical ...``: see :mod:`empirical.cli`."""

import os
import sys

from .cli import main

if __name__ == "__main__":
    status = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, end without interpreter finalisation. DDP keeps the gloo process group alive past
        # destroy_process_group (torch 2.13: its worker threads still run), and a worker that frees its last
        # collective's tensors while the interpreter finalises needs the GIL and aborts the rank (SIGABRT,
        # "terminate called without an active exception"; measured in 2 of 16 runs on a loaded machine).
        # Every run file is closed and the checkpoint writer joined by the time main() returns.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
