"""Every command line's ``--help`` runs and names every option's default, so the help cannot drift from the code.

The parsers are built in process (no subprocess, no training): ``python -m theory``, ``python -m simulate``,
``python -m empirical`` and its subcommands, ``python -m paper_checks`` with ``compare`` and ``grid``.  An option
whose argparse default is not ``None`` / ``False`` / empty must show that value in its help (``%(default)s``
does it without typing it twice); the ``train`` / ``sweep`` options, whose argparse default is ``SUPPRESS`` so
that presets can fill them, must show :class:`empirical.config.TrainConfig`'s default instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest

import empirical.cli
import paper_checks.__main__ as pc_main
import paper_checks.grid
import simulate.__main__
import theory.__main__
from empirical.config import TrainConfig

#: TrainConfig fields whose command-line behaviour is not the dataclass default, and what their help says instead.
NOT_THE_FIELD_DEFAULT = {"dataset": "required unless --preset", "out": "runs/<preset or dataset-model>"}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser of the four packages, by the command that reaches it."""
    empirical_parser = empirical.cli.build_parser()
    parsers = {
        "python -m theory": theory.__main__.build_parser(),
        "python -m simulate": simulate.__main__.build_parser(),
        "python -m empirical": empirical_parser,
        "python -m paper_checks": pc_main._main_parser(),
        "python -m paper_checks compare": pc_main._compare_parser(),
        "python -m paper_checks grid": paper_checks.grid._parser(),
    }
    parsers |= {f"python -m empirical {name}": sub for name, sub in subparsers(empirical_parser).items()}
    return parsers


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text ``--help`` prints for ``action``, ``%(default)s`` and the like expanded, spaces collapsed."""
    if not action.help:
        return ""
    return " ".join(parser._get_formatter()._expand_help(action).split())


def is_flag(action: argparse.Action) -> bool:
    """``store_true`` / ``store_false`` and the like: the default is the flag's absence."""
    return action.nargs == 0


def shown_default(action: argparse.Action) -> str | None:
    """The text the help must contain for ``action``'s default, or None when there is nothing to show."""
    if is_flag(action) or isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
        return None
    default = action.default
    if default is argparse.SUPPRESS:
        fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        if action.dest in NOT_THE_FIELD_DEFAULT:
            return NOT_THE_FIELD_DEFAULT[action.dest]
        default = fields.get(action.dest)
        return None if default is None else f"default: {default}"
    if default is None or default is False or default == []:
        return None
    return str(default)


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Options without help, and options whose help does not name their default."""
    problems = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        text = option_help(parser, action)
        if not text:
            problems.append(f"{parser.prog} {name}: no help")
            continue
        wanted = shown_default(action)
        if wanted is not None and wanted not in text:
            problems.append(f"{parser.prog} {name}: help does not name its default {wanted!r}: {text!r}")
    return problems


def test_every_option_has_help_that_names_its_default():
    parsers = all_parsers()
    assert len(parsers) == 11  # 6 commands and the 5 subcommands of empirical
    problems = [p for parser in parsers.values() for p in help_problems(parser)]
    assert not problems, "\n".join(problems)
    # the help text printed is the one checked: every default shown appears in the formatted page (compared
    # without white space: argparse wraps lines at spaces and after hyphens)
    for parser in parsers.values():
        page = "".join(parser.format_help().split())
        for action in parser._actions:
            wanted = shown_default(action)
            if wanted is not None and action.help:
                assert "".join(wanted.split()) in page, (parser.prog, action.dest)


def test_the_check_fails_on_an_option_that_hides_its_default():
    """The checker is not vacuous: an option added without its default, or without help, is reported."""
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--rate", type=float, default=0.5, help="a rate")
    parser.add_argument("--name", default="x")
    parser.add_argument("--shown", type=int, default=3, help="shown (default: %(default)s)")
    parser.add_argument("--unset", type=int, default=None, help="no default to show")
    parser.add_argument("--flag", action="store_true", help="a flag")
    assert help_problems(parser) == ["demo --rate: help does not name its default '0.5': 'a rate'",
                                     "demo --name: no help"]


def test_train_options_show_the_dataclass_defaults():
    """``--lr`` and friends carry TrainConfig's values, read from the dataclass (not typed into the help)."""
    train = subparsers(empirical.cli.build_parser())["train"]
    page = "".join(train.format_help().split())
    for text in (f"default: {TrainConfig.lr}", f"default: {TrainConfig.epochs}", f"default: {TrainConfig.batch_size}",
                 f"default: {TrainConfig.weight_decay}", "required unless --preset"):
        assert "".join(text.split()) in page


@pytest.mark.parametrize("argv", [[], ["train"], ["sweep"], ["plot"], ["export-csv"], ["presets"]])
def test_empirical_help_runs(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        empirical.cli.main([*argv, "--help"])
    assert exc.value.code == 0 and "usage: python -m empirical" in capsys.readouterr().out


@pytest.mark.parametrize("main, argv, prog", [
    (theory.__main__.main, ["--help"], "python -m theory"),
    (simulate.__main__.main, ["--help"], "python -m simulate"),
    (pc_main.main, ["--help"], "python -m paper_checks"),
    (pc_main.main, ["compare", "--help"], "python -m paper_checks compare"),
    (pc_main.main, ["grid", "--help"], "python -m paper_checks grid"),
])
def test_help_runs(main, argv, prog, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith(f"usage: {prog}")


def test_paper_checks_help_lists_its_subcommands_and_grid_says_what_lr_does(capsys):
    page = pc_main._main_parser().format_help()
    listed = re.findall(r"^  (compare|grid)\b.{20,}$", page, re.MULTILINE)  # one line each, with what it does
    assert listed == ["compare", "grid"]
    grid = paper_checks.grid._parser()
    lr = next(a for a in grid._actions if a.dest == "lr")
    assert "module doc" not in lr.help and "0.0184" in lr.help and "0.0679" in lr.help
    grid_page = " ".join(grid.format_help().split())
    assert "exit status" in grid_page and "no run was trained" in grid_page
    time = next(a for a in pc_main._compare_parser()._actions if a.dest == "time")
    assert time.help and "flow time" in time.help


@pytest.mark.parametrize("command", [["train"], ["sweep", "--lrs", "0.1"]])
def test_train_without_a_dataset_is_a_one_line_error(command, tmp_path, capsys):
    """No --preset / --dataset / --config: exit 2 with one line naming the fix, nothing written (it used to train
    TrainConfig's digits/MLP at lr 0.0184 silently, where the digits-mlp preset uses 0.4)."""
    out = tmp_path / "run"
    code = empirical.cli.main([*command, "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: no dataset") and "--preset" in err and "--dataset" in err
    assert not out.exists()


def test_the_model_list_names_each_model_once():
    from empirical.models import MODELS
    from empirical.models.registry import model_names

    names = [entry.split(" (")[0] for entry in model_names().split(", ")]
    assert names == list(MODELS) and names.count("densenet") == 1
    with pytest.raises(ValueError, match=r"densenet \(DenseNet-BC"):
        from empirical.models import build_model

        build_model("alexnet", num_classes=10, in_channels=3)
