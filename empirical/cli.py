"""Command line of the empirical package: ``python -m empirical {train,plot,export-csv,presets}``.

Examples::

    python -m empirical train --preset digits-mlp --out runs/digits
    python -m empirical train --dataset fashion-mnist --model resnet18 --per-class 5000 \\
        --epochs 350 --lr 0.0184 --out runs/fmnist-resnet18
    python -m empirical train --out runs/fmnist-resnet18 --resume
    torchrun --nproc_per_node 2 -m empirical train --preset digits-mlp --out runs/ddp
    python -m empirical plot runs/digits
    python -m empirical export-csv runs/digits --out digits.csv

Option precedence: :class:`TrainConfig` defaults < ``--preset`` < ``--config FILE`` <
explicit options.  Known errors (bad input, missing data, unknown names, an existing run)
print ``error: ...`` to stderr and exit with status 2; a diverging loss exits with status 3
after keeping every measured epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m empirical", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a network and measure neural collapse")
    S = argparse.SUPPRESS  # unset options do not override preset / config values
    t.add_argument("--preset", default=S, help="named defaults (see `presets`)")
    t.add_argument("--config", dest="config_file", default=S, help="JSON file of TrainConfig options")
    t.add_argument("--dataset", default=S)
    t.add_argument("--model", default=S)
    t.add_argument("--out", default=S, help="run directory (default runs/<preset or dataset-model>)")
    t.add_argument("--per-class", dest="per_class", type=int, default=S, help="balanced subset size N")
    t.add_argument("--epochs", type=int, default=S)
    t.add_argument("--lr", type=float, default=S)
    t.add_argument("--momentum", type=float, default=S)
    t.add_argument("--weight-decay", dest="weight_decay", type=float, default=S)
    t.add_argument("--batch-size", dest="batch_size", type=int, default=S)
    t.add_argument("--keep-last-batch", dest="drop_last", action="store_false", default=S,
                   help="train on the incomplete last batch too (the notebook skips it)")
    t.add_argument("--loss", choices=["mse", "ce"], default=S)
    t.add_argument("--lr-gamma", dest="lr_gamma", type=float, default=S)
    t.add_argument("--milestones", default=S, help="comma-separated epochs (default epochs//3, 2*epochs//3)")
    t.add_argument("--measure-epochs", dest="measure_epochs", default=S,
                   help="'paper' (default: log-spaced, rescaled), 'all', or comma-separated epochs")
    t.add_argument("--no-test", dest="measure_test", action="store_false", default=S,
                   help="do not load / evaluate the test split")
    t.add_argument("--eval-batch-size", dest="eval_batch_size", type=int, default=S)
    t.add_argument("--data-root", dest="data_root", default=S)
    t.add_argument("--image-size", dest="image_size", type=int, default=S)
    t.add_argument("--model-arg", dest="model_args", type=_kv, action="append", default=[],
                   help="KEY=VALUE passed to build_model (VALUE parsed as JSON when possible)")
    t.add_argument("--data-arg", dest="data_args", type=_kv, action="append", default=[],
                   help="KEY=VALUE passed to load_train_test (e.g. dim=64 for gaussian)")
    t.add_argument("--seed", type=int, default=S)
    t.add_argument("--deterministic", action="store_true", default=S)
    t.add_argument("--device", default=S, help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    t.add_argument("--amp", choices=["auto", "bf16", "none"], default=S)
    # values are validated by TrainConfig (empirical.step.COMPILE_MODES), so --help needs no torch import
    t.add_argument("--compile", dest="compile", metavar="MODE", default=S,
                   help="torch.compile the training step: auto (default; reduce-overhead on CUDA in one process, "
                        "else none), none, default, reduce-overhead, max-autotune-no-cudagraphs; a failed compile "
                        "warns and trains eagerly")
    t.add_argument("--channels-last", dest="channels_last", metavar="{auto,on,off}", default=S,
                   help="NHWC layout for conv models (auto: on CUDA)")
    t.add_argument("--measure-precision", dest="measure_precision", metavar="{auto,tf32,fp32}", default=S,
                   help="float32 arithmetic of the measurement's forward passes on CUDA (auto: tf32, PyTorch's "
                        "default for convolutions, ~5x faster; fp32: IEEE float32); statistics are float64")
    t.add_argument("--checkpoint-every", dest="checkpoint_every", type=int, default=S)
    t.add_argument("--threads", dest="num_threads", type=int, default=S)
    t.add_argument("--no-progress", dest="progress", action="store_false", default=S)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")

    pl = sub.add_parser("plot", help="draw the paper's panels into RUN/figures")
    pl.add_argument("run_dir")
    pl.add_argument("--out", default=None, help="folder for the PNGs (default RUN/figures)")

    ex = sub.add_parser("export-csv", help="write RUN/metrics.jsonl as CSV")
    ex.add_argument("run_dir")
    ex.add_argument("--out", default=None, help="CSV file (default RUN/metrics.csv)")

    sub.add_parser("presets", help="list the named presets")
    return p


def config_from_args(ns: argparse.Namespace):
    """Merge defaults, preset, config file and explicit options into a :class:`TrainConfig`."""
    from .schedule import parse_epoch_list
    from .train import PRESETS, TrainConfig, read_config_file

    opts = {k: v for k, v in vars(ns).items() if k not in ("command", "resume", "model_args", "data_args")}
    values: dict[str, Any] = {}
    preset = opts.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        values.update(PRESETS[preset])
        values["preset"] = preset
    config_file = opts.pop("config_file", None)
    if config_file is not None:
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"config file not found: {config_file}")
        values.update(read_config_file(config_file))
    epochs = int(opts.get("epochs", values.get("epochs", TrainConfig.epochs)))
    if "milestones" in opts:
        text = opts.pop("milestones")
        try:
            opts["lr_milestones"] = sorted(int(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise ValueError(f"cannot parse --milestones {text!r}: expected comma-separated integers") from None
    if "measure_epochs" in opts:
        opts["measure_epochs"] = parse_epoch_list(opts["measure_epochs"], epochs)
    values.update(opts)
    if ns.model_args:
        values["model_kwargs"] = {**values.get("model_kwargs", {}), **dict(ns.model_args)}
    if ns.data_args:
        values["data_kwargs"] = {**values.get("data_kwargs", {}), **dict(ns.data_args)}
    if "out" not in values:
        name = preset or f"{values.get('dataset', TrainConfig.dataset)}-{values.get('model', TrainConfig.model)}"
        values["out"] = str(Path("runs") / name)
    return TrainConfig.from_dict(values)


def _cmd_train(ns: argparse.Namespace) -> int:
    from .train import RESUME_OVERRIDES, TrainConfig, train

    overrides = None
    if ns.resume:
        if not hasattr(ns, "out"):
            raise ValueError("--resume needs --out RUN_DIR")
        given = {k for k in vars(ns) if k not in ("command", "resume", "out", "model_args", "data_args")}
        ignored = sorted(given - set(RESUME_OVERRIDES)) + (["--model-arg/--data-arg"] if ns.model_args or ns.data_args else [])
        if ignored:
            raise ValueError(f"--resume continues the stored configuration; these options cannot change it: {ignored}")
        overrides = {k: getattr(ns, k) for k in RESUME_OVERRIDES if hasattr(ns, k)}
        cfg = TrainConfig(out=ns.out)
    else:
        cfg = config_from_args(ns)
    run_dir = train(cfg, resume=ns.resume, overrides=overrides)
    print(f"run written to {run_dir}", file=sys.stderr)
    return 0


def _cmd_plot(ns: argparse.Namespace) -> int:
    from .plot import plot_run

    for path in plot_run(ns.run_dir, ns.out):
        print(path)
    return 0


def _cmd_export(ns: argparse.Namespace) -> int:
    from .export import export_csv

    print(export_csv(ns.run_dir, ns.out))
    return 0


def _cmd_presets(ns: argparse.Namespace) -> int:
    from .train import PRESETS

    for name, values in sorted(PRESETS.items()):
        print(f"{name}: {json.dumps(values, sort_keys=True)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    from .runs import RunError
    from .train import NonFiniteLossError

    ns = build_parser().parse_args(argv)
    handler = {"train": _cmd_train, "plot": _cmd_plot, "export-csv": _cmd_export, "presets": _cmd_presets}[ns.command]
    try:
        return handler(ns)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except (ValueError, FileNotFoundError, NotADirectoryError, RunError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; measured epochs are kept, continue with --resume", file=sys.stderr)
        return 130
