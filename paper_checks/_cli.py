"""Command-line pieces shared by ``python -m paper_checks`` and its ``grid`` subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from theory._validation import OneLineParser  # the one-line-error parser every command line of the toolkit uses

__all__ = ["OneLineParser", "add_comparison_options", "add_tpt_threshold"]


def add_tpt_threshold(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The ``--tpt-threshold`` option (the terminal phase's definition), shared by the main job, compare and grid."""
    group.add_argument("--tpt-threshold", type=float, default=0.0, metavar="FRACTION",
                       help="the terminal phase starts at the first measured epoch from which the training error stays "
                            "at or below this fraction of the training set (default: %(default)s, exactly zero: the "
                            "paper's definition; e.g. 1e-3 tolerates a few never-fitted, mislabelled samples)")


def add_comparison_options(group: argparse.ArgumentParser | argparse._ArgumentGroup,
                           time_choices: Sequence[str]) -> None:
    """The options of the comparison with the theory, shared by the main job and compare: ``--time``,
    ``--early-epoch``, ``--fit-from`` and ``--tpt-threshold``."""
    group.add_argument("--time", default="auto", choices=list(time_choices),
                       help="clock of the fit: auto = the flow time of math §6.5 when the log allows (flow_time, or "
                            "lr_weighted_steps with the run's momentum and loss reduction), else lr_weighted_steps, "
                            "else epoch; flow, lr_steps and epoch force one (default: %(default)s)")
    group.add_argument("--early-epoch", type=int,
                       help="start epoch of the forward ODE prediction (default: the fit window's first)")
    group.add_argument("--fit-from", type=int,
                       help="first epoch of the fit window (default: start of the terminal phase)")
    add_tpt_threshold(group)
