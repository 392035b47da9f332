"""Command line of the empirical package: ``python -m empirical {train,sweep,plot,export-csv,presets}``.

Examples::

    python -m empirical train --preset digits-mlp --out runs/digits
    python -m empirical train --out runs/digits --resume
    torchrun --nproc_per_node 2 -m empirical train --preset digits-mlp --out runs/ddp
    python -m empirical sweep --preset digits-mlp --lrs 0.05,0.1,0.2,0.4 --epochs 50 --out runs/digits-sweep
    python -m empirical plot runs/digits

Option precedence (:func:`empirical.config.merge_preset`): :class:`TrainConfig` defaults < ``--preset`` <
``--config FILE`` < explicit options.  ``--resume`` refuses changed options except ``device``, ``threads``,
progress and the checkpoint options.  Known errors print ``error: ...`` to stderr and exit with status 2;
a diverging loss exits with status 3 after keeping every measured epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _default(name: str) -> str:
    """``default: V``, V the :class:`TrainConfig` default of the field ``name`` (for the options' help)."""
    from .config import TrainConfig

    value = {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]
    return f"default: {value}"


def add_train_options(t: argparse.ArgumentParser) -> None:
    """Every :class:`TrainConfig` option (``train`` and ``sweep``); unset options stay unset (the parser's
    ``argument_default=SUPPRESS``), so they do not override preset / config values."""
    t.add_argument("--preset", help="named defaults (see `presets`); train and sweep need --preset, "
                                    "--dataset or a --config file that names the dataset")
    t.add_argument("--config", dest="config_file", help="JSON file of TrainConfig options")
    t.add_argument("--dataset",
                   help="a dataset of empirical.data.DATASETS: digits, gaussian, mnist, fashion-mnist, kmnist, "
                        "cifar10, svhn, stl10 (required unless --preset or --config sets it)")
    t.add_argument("--model", help=f"a network of empirical.models.MODELS ({_default('model')})")
    t.add_argument("--out", help="run directory (default: runs/<preset or dataset-model>)")
    t.add_argument("--per-class", type=int, help="balanced subset size N (default: the whole training split)")
    t.add_argument("--epochs", type=int, help=f"training epochs ({_default('epochs')})")
    t.add_argument("--lr", type=float, help=f"SGD learning rate ({_default('lr')}, the paper's MSE rate)")
    t.add_argument("--momentum", type=float, help=f"SGD momentum ({_default('momentum')})")
    t.add_argument("--weight-decay", type=float, help=f"SGD weight decay ({_default('weight_decay')})")
    t.add_argument("--batch-size", type=int, help=f"training batch size ({_default('batch_size')})")
    t.add_argument("--keep-last-batch", dest="drop_last", action="store_false",
                   help="train on the incomplete last batch too (default: skipped, as in the notebook)")
    t.add_argument("--loss", choices=["mse", "ce"], help=f"training loss ({_default('loss')})")
    t.add_argument("--mse-scale", metavar="k,M",
                   help="Hui & Belkin's rescaled MSE: k weights the true class's output, M is its target "
                        f"(math §3.6; {_default('mse_scale')}, the plain nn.MSELoss(); --loss mse only)")
    t.add_argument("--lr-gamma", type=float, help=f"learning-rate factor at each milestone ({_default('lr_gamma')})")
    t.add_argument("--milestones", help="comma-separated epochs (default: epochs//3, 2*epochs//3)")
    t.add_argument("--measure-epochs", help="'paper' (default: log-spaced, rescaled), 'all', or comma-separated epochs")
    t.add_argument("--no-test", dest="measure_test", action="store_false",
                   help="do not load / evaluate the test split (default: evaluated)")
    t.add_argument("--eval-batch-size", type=int,
                   help=f"batch size of the measurement passes ({_default('eval_batch_size')})")
    t.add_argument("--data-root", help="folder of the dataset files (default: $NC_DATA_ROOT, else the system folders)")
    t.add_argument("--image-size", type=int,
                   help="image side length (default: the dataset's: 28x28 sets padded to 32, "
                        "digits 8x8, others native)")
    t.add_argument("--model-arg", dest="model_args", type=_kv, action="append", default=[],
                   help="KEY=VALUE passed to build_model (VALUE parsed as JSON when possible; default: none)")
    t.add_argument("--data-arg", dest="data_args", type=_kv, action="append", default=[],
                   help="KEY=VALUE passed to load_train_test (e.g. dim=64 for gaussian; default: none)")
    t.add_argument("--seed", type=int,
                   help=f"seed of the subset, the initialisation and the batch order ({_default('seed')})")
    t.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms (torch.use_deterministic_algorithms; default: off)")
    t.add_argument("--device", help=f"auto (CUDA when present), cpu, cuda, cuda:1 ... ({_default('device')})")
    t.add_argument("--amp", choices=["auto", "bf16", "none"],
                   help=f"autocast of the training step (auto: bf16 on CUDA; {_default('amp')})")
    # values are validated by TrainConfig (empirical.step.COMPILE_MODES), so --help needs no torch import
    t.add_argument("--compile", metavar="MODE",
                   help="torch.compile the training step: auto (reduce-overhead on CUDA in one process, "
                        "else none), none, default, reduce-overhead, max-autotune-no-cudagraphs; a failed compile "
                        f"warns and trains eagerly ({_default('compile')})")
    t.add_argument("--channels-last", metavar="{auto,on,off}",
                   help=f"NHWC layout for conv models (auto: on CUDA; {_default('channels_last')})")
    t.add_argument("--measure-precision", metavar="{auto,tf32,fp32}",
                   help="float32 arithmetic of the measurement's forward passes on CUDA (auto: tf32, PyTorch's "
                        "default for convolutions, ~5x faster; fp32: IEEE float32); statistics are float64 "
                        f"({_default('measure_precision')})")
    # the layer-wise measurement (empirical.layers, math §3.5)
    t.add_argument("--measure-layers", metavar="NAMES|all-blocks",
                   help="also measure the outputs of these modules (comma-separated names, or all-blocks: each block "
                        "of the model) in the same pass: NC1, NC2, NC4, CDNV and a least-squares probe per layer")
    t.add_argument("--layer-reduce", metavar="{gap,flatten}",
                   help=f"how a layer's (n, C, H, W) map becomes features ({_default('layer_reduce')}: global "
                        "average pooling)")
    t.add_argument("--layer-ridge", type=float, help=f"ridge lambda of the layer probes ({_default('layer_ridge')})")
    t.add_argument("--tile", type=int,
                   help=f"rows per tile of the measurement's C x C computations, memory O(tile^2) ({_default('tile')})")
    t.add_argument("--checkpoint-every", type=int, help="also checkpoint every N epochs (default: by time only)")
    t.add_argument("--checkpoint-every-s", type=float,
                   help=f"checkpoint every S seconds of wall time (0: only by epoch and at the end; "
                        f"{_default('checkpoint_every_s')})")
    t.add_argument("--keep-checkpoints",
                   help="keep the weights of these epochs for load_run: 'measured' or comma-separated epochs "
                        "(default: only the last state)")
    t.add_argument("--threads", dest="num_threads", type=int, help="CPU threads of torch (default: torch's own choice)")
    t.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (default: a bar on a terminal, a line per measurement otherwise)")
    t.add_argument("--resume", action="store_true", default=False,
                   help="continue the run in --out from its last checkpoint")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m empirical", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a network and measure neural collapse",
                       argument_default=argparse.SUPPRESS)
    add_train_options(t)

    sw = sub.add_parser("sweep", help="train K configurations (lr x weight decay x seed) at once on one device",
                        argument_default=argparse.SUPPRESS)
    add_train_options(sw)
    sw.add_argument("--lrs", default=None, help="'paper' (25 values, logspace 1e-4 .. 0.25) or comma-separated "
                                                "(no default: a new sweep needs it; on --resume the stored ones)")
    sw.add_argument("--seeds", default=None, help="comma-separated seeds (default: --seed)")
    sw.add_argument("--weight-decays", default=None, help="comma-separated weight decays (default: --weight-decay)")
    sw.add_argument("--max-members-per-chunk", type=int, default=None,
                    help="members trained together at most (default: as many as fit the device's memory, estimated "
                         "from one member's training step)")
    # values are validated by SweepSpec (empirical.sweep.spec.STRATEGIES): a one-line error, exit 2
    sw.add_argument("--strategy", default=None, metavar="{threaded,interleaved}",
                    help="how the members train together: 'threaded' (CPU: each member's own step on worker threads, "
                         "as many at a time as the cores hold at --threads each; --threads 1: one member per core) "
                         "or 'interleaved' (each member's own step in turn; on CUDA each on its own stream). "
                         "Default: threaded on the CPU, interleaved on CUDA. On --resume: switch the stored strategy")
    sw.add_argument("--no-figures", dest="figures", action="store_false", default=True,
                    help="skip the figures (default: accuracy_vs_lr.png and each member's panels)")

    pl = sub.add_parser("plot", help="draw the paper's panels into RUN/figures")
    pl.add_argument("run_dir", help="a run directory (metrics.jsonl)")
    pl.add_argument("--out", default=None, help="folder for the PNGs (default RUN/figures)")
    pl.add_argument("--tpt-threshold", type=float, default=0.0, help="terminal phase: training error stays <= this "
                                                                     "fraction from its first epoch on "
                         "(default: %(default)s, exactly zero)")

    ex = sub.add_parser("export-csv", help="write RUN/metrics.jsonl as CSV")
    ex.add_argument("run_dir", help="a run directory (metrics.jsonl)")
    ex.add_argument("--out", default=None, help="CSV file (default RUN/metrics.csv)")

    sub.add_parser("presets", help="list the named presets")
    return p


#: Parser destinations that are not TrainConfig options.
_NOT_OPTIONS = ("command", "resume", "model_args", "data_args", "preset", "config_file",
                "lrs", "seeds", "weight_decays", "max_members_per_chunk", "figures", "strategy")


def explicit_options(ns: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig options given on the command line, parsed (lists, epochs, kwargs)."""
    from .config import TrainConfig, merged_options, parse_keep_checkpoints
    from .loss import parse_mse_scale
    from .schedule import parse_epoch_list
    from .sweep.spec import parse_ints

    opts = {k: v for k, v in vars(ns).items() if k not in _NOT_OPTIONS}
    if "milestones" in opts:
        opts["lr_milestones"] = sorted(parse_ints(opts.pop("milestones"), "--milestones"))
    if "measure_epochs" in opts:
        epochs = opts.get("epochs")
        if epochs is None and getattr(ns, "resume", False):
            epochs = stored_epochs(ns)  # 'paper' / 'all' of the run being resumed, not of its preset
        if epochs is None:
            base = merged_options(getattr(ns, "preset", None), getattr(ns, "config_file", None))
            epochs = int(base.get("epochs", TrainConfig.epochs))
        opts["measure_epochs"] = parse_epoch_list(opts["measure_epochs"], int(epochs))
    if "keep_checkpoints" in opts:
        opts["keep_checkpoints"] = parse_keep_checkpoints(opts["keep_checkpoints"])
    if "mse_scale" in opts:
        opts["mse_scale"] = parse_mse_scale(opts["mse_scale"])
    if getattr(ns, "model_args", None):
        opts["model_kwargs"] = dict(ns.model_args)
    if getattr(ns, "data_args", None):
        opts["data_kwargs"] = dict(ns.data_args)
    return opts


def stored_epochs(ns: argparse.Namespace) -> int | None:
    """The epoch count stored in ``--out`` (a run's ``config.json`` or a sweep's ``sweep.json``), if readable."""
    from .config import TrainConfig

    out = Path(getattr(ns, "out", "") or "")
    for path, section in ((out / "sweep.json", ("spec", "base")), (out / "config.json", ("config",))):
        try:
            d = json.loads(path.read_text())
            for key in section:
                d = d[key]
            return int(d.get("epochs", TrainConfig.epochs))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


def resume_options(ns: argparse.Namespace) -> dict[str, Any]:
    """The options given with ``--resume``, to compare with the stored ones: ``--config``, explicit options and
    the preset's *name* only (``--preset P --resume`` continues a run started as ``--preset P --epochs 30``)."""
    from .config import merged_options

    preset, config_file, explicit = getattr(ns, "preset", None), getattr(ns, "config_file", None), explicit_options(ns)
    started = merged_options(preset, config_file, **explicit)  # what these options started (checks the preset)
    given = merged_options(None, config_file, **explicit)
    for key in ("model_kwargs", "data_kwargs"):
        if key in given:
            given[key] = started[key]
    if preset is not None:
        given["preset"] = preset
    return given


def config_from_args(ns: argparse.Namespace):
    """The :class:`TrainConfig` of the options (:func:`empirical.config.merge_preset`); a new run needs a dataset."""
    from .config import merge_preset, merged_options

    preset, config_file, explicit = getattr(ns, "preset", None), getattr(ns, "config_file", None), explicit_options(ns)
    # TrainConfig's digits/MLP at the paper's lr is no run anyone asked for
    if not getattr(ns, "resume", False) and "dataset" not in merged_options(preset, config_file, **explicit):
        raise ValueError("no dataset: give --preset (e.g. digits-mlp; `python -m empirical presets` lists them), "
                         "--dataset, or a --config file that names one")
    return merge_preset(preset, config_file, **explicit)


def _cmd_train(ns: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .runs import read_config
    from .training import train

    if ns.resume:
        if not hasattr(ns, "out"):
            raise ValueError("--resume needs --out RUN_DIR")
        run_dir = train(TrainConfig(out=ns.out), resume=True, overrides=resume_options(ns))
    else:
        run_dir = train(config_from_args(ns))
    _print_notes(read_config(run_dir).get("notes", []))
    print(f"run written to {run_dir}", file=sys.stderr)
    return 0


def _print_notes(notes: list[str]) -> None:
    """A run's ``config.json`` notes, one ``note:`` line each on stderr."""
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _cmd_sweep(ns: argparse.Namespace) -> int:
    from .sweep import SweepSpec, parse_floats, parse_ints, parse_lrs, run_sweep

    if not hasattr(ns, "out"):
        raise ValueError("sweep needs --out DIR (the sweep's folder)")
    spec = None
    if not ns.resume or ns.lrs is not None:
        if ns.lrs is None:
            raise ValueError("sweep needs --lrs: 'paper' or comma-separated learning rates")
        base = config_from_args(ns)
        spec = SweepSpec(
            base=base, lrs=parse_lrs(ns.lrs),
            weight_decays=parse_floats(ns.weight_decays, "--weight-decays") if ns.weight_decays is not None
            else [base.weight_decay],
            seeds=parse_ints(ns.seeds, "--seeds") if ns.seeds is not None else [base.seed],
            max_members_per_chunk=ns.max_members_per_chunk, strategy=ns.strategy,
        )
    overrides = resume_options(ns) if ns.resume else None
    out = run_sweep(spec, ns.out, resume=ns.resume, overrides=overrides, figures=ns.figures, strategy=ns.strategy)
    _print_notes(spec.base.resolved().notes() if spec is not None else [])
    print(f"sweep written to {out} ({out / 'sweep.json'})", file=sys.stderr)
    return 0


def _cmd_plot(ns: argparse.Namespace) -> int:
    from .plot import plot_run

    for path in plot_run(ns.run_dir, ns.out, tpt_threshold=ns.tpt_threshold):
        print(path)
    return 0


def _cmd_export(ns: argparse.Namespace) -> int:
    from .export import export_csv

    print(export_csv(ns.run_dir, ns.out))
    return 0


def _cmd_presets(ns: argparse.Namespace) -> int:
    from .config import PRESETS

    for name, values in sorted(PRESETS.items()):
        print(f"{name}: {json.dumps(values, sort_keys=True)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    from .runs import RunError
    from .training import NonFiniteLossError

    ns = build_parser().parse_args(argv)
    handler = {
        "train": _cmd_train,
        "sweep": _cmd_sweep,
        "plot": _cmd_plot,
        "export-csv": _cmd_export,
        "presets": _cmd_presets,
    }[ns.command]
    try:
        return handler(ns)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except (ValueError, FileNotFoundError, NotADirectoryError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; measured epochs are kept, continue with --resume", file=sys.stderr)
        return 130
