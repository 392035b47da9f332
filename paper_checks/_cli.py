"""Command-line pieces shared by ``python -m paper_checks`` and its ``grid`` subcommand."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["OneLineParser", "add_tpt_threshold"]


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line (``PROG: error: ...``, exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def add_tpt_threshold(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--tpt-threshold`` option (the terminal phase's definition), shared by the main job, compare and grid."""
    group.add_argument("--tpt-threshold", type=float, default=0.0, metavar="FRACTION",
                       help="the terminal phase starts at the first measured epoch from which the training error stays "
                            "at or below this fraction of the training set (default: %(default)s, exactly zero: the "
                            "paper's definition; e.g. 1e-3 tolerates a few never-fitted, mislabelled samples)")
