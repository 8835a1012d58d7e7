"""The ``jaxlogreg`` command: train, cv, evaluate, predict, inference and check-grad.

``main(argv) -> int`` returns the exit status: 0 on success, 1 when training diverged or a
gradient check failed, 2 for bad arguments, configs, data or model files (a one-line message
on stderr, no traceback; set ``JAXLOGREG_DEBUG=1`` to see the traceback).

Runs are described by TOML configs (:mod:`jaxlogreg.cli.config`); ``--set section.key=value``
overrides single keys. Without ``--config`` the built-in default (``configs/default.toml``) runs.
The command turns on JAX's persistent compilation cache for its process
(:func:`jaxlogreg.enable_compilation_cache`; ``JAXLOGREG_NO_CACHE=1`` keeps it off).
The benchmarks are scripts of the repository: ``python benchmarks/<name>.py``.
``jaxlogreg --version --verbose`` prints the environment report (:func:`jaxlogreg.show_config`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from jaxlogreg.cli.config import CLIError, ConfigError
from jaxlogreg.cli.cv import CV_FILE, CV_PLOT_FILE, cmd_cv
from jaxlogreg.cli.inference_cmd import add_options as _inference_options
from jaxlogreg.cli.train import (
    LEARNING_RATES_FILE,
    LOSS_CURVE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    cmd_train,
)
from jaxlogreg.cli.use import cmd_check_grad, cmd_evaluate, cmd_predict
from jaxlogreg.runtime import cache, env
from jaxlogreg.runtime.version import __version__

# ---------------------------------------------------------------------------- parser


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="TOML config (default: the built-in default config)"
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config key, e.g. --set train.learning_rate=0.01 (repeatable)",
    )


def _add_model_and_data_options(p: argparse.ArgumentParser, data_help: str, label_help: str):
    """``--model``, then the data: ``--config``/``--set`` or ``--data`` (with its label column)."""
    p.add_argument("--model", required=True, metavar="FILE", help="model file from train --out")
    _add_config_options(p)
    p.add_argument("--data", metavar="FILE", help=data_help)
    p.add_argument("--label-column", default="label", help=f"{label_help} (default label)")


def _add_output_options(p: argparse.ArgumentParser, metavar: str, output_help: str,
                        quiet_help: str, func: Any) -> None:
    p.add_argument("--output", metavar=metavar, help=output_help)
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    p.set_defaults(func=func)


def _train_options(p: argparse.ArgumentParser) -> None:
    _add_config_options(p)
    p.add_argument("--out", metavar="DIR",
                   help=f"write {MODEL_FILE}, {METRICS_FILE} and {LOSS_CURVE_FILE} to DIR")
    p.add_argument("--grad", choices=("manual", "autodiff"),
                   help="gradient: hand-written backward pass or jax.grad (train.grad)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar and no report (warnings and errors still go to stderr)")
    p.add_argument("--compare-learning-rates", nargs="*", type=float, metavar="LR",
                   help="also train with each learning rate (default: the course's 0.01 0.001 "
                   f"0.0001) and plot the costs to DIR/{LEARNING_RATES_FILE}")
    p.set_defaults(func=cmd_train)


def _cv_options(p: argparse.ArgumentParser) -> None:
    _add_config_options(p)
    p.add_argument("--out", metavar="DIR",
                   help=f"write {MODEL_FILE}, {CV_FILE} and {CV_PLOT_FILE} to DIR")
    p.add_argument("--quiet", action="store_true", help="no report (errors still go to stderr)")
    p.set_defaults(func=cmd_cv)


def _evaluate_options(p: argparse.ArgumentParser) -> None:
    _add_model_and_data_options(p, "a labelled data file instead of a config",
                                "label column of a CSV")
    p.add_argument("--y-path", metavar="FILE", help="labels (.npy) of a .npy features file")
    _add_output_options(p, "JSON", "also write the metrics to this JSON file",
                        "print nothing but errors", cmd_evaluate)


def _predict_options(p: argparse.ArgumentParser) -> None:
    _add_model_and_data_options(
        p, "features (.csv with or without header and label column, .npy, .npz, .h5, .svm)",
        "label column of a CSV, ignored when present")
    p.add_argument("--split", choices=("validation", "train"), default="validation",
                   help="with --config: which part of the config's data (default validation)")
    _add_output_options(p, "CSV", "output file (default: standard output)",
                        "no message on stderr", cmd_predict)


def _check_grad_options(p: argparse.ArgumentParser) -> None:
    _add_config_options(p)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the check (default float64)")
    p.add_argument("--max-coords", type=int, default=256, metavar="N",
                   help="finite differences on at most N coordinates (default 256)")
    p.set_defaults(func=cmd_check_grad)


# Each command: (help, description, the function adding its options).
COMMANDS = {
    "train": (
        "train a model from a config and report its metrics",
        ("Train on the config's data (the built-in default config without --config) and print "
         "data, solver, iterations, time and train/validation loss, accuracy and AUC."),
        _train_options),
    "cv": (
        "choose C by cross-validation (all folds and Cs in one program)",
        ("Cross-validate the config's [cv] grid of C on the training part of its data (every "
         "fold and C fitted together), print C against the held-out scores and the chosen C, "
         "and report the chosen model."),
        _cv_options),
    "evaluate": (
        "metrics of a saved model on data",
        ("Metrics of a saved model on the train/validation data of a config, or on one data "
         "file (--data)."),
        _evaluate_options),
    "predict": (
        "predict classes and probabilities for a data file",
        ("Write one CSV row per sample: the predicted class and the probability of each class, "
         "for a data file (--data) or for a config's data (--config/--set, --split)."),
        _predict_options),
    "inference": (
        "standard errors, z-tests and confidence intervals of a saved model",
        ("Standard errors, z, p-values and confidence intervals of a saved model's parameters "
         "on its training data (--data, or the training part of --config): the inverse "
         "Hessian, a sandwich (HC0, HC1) or clustered (--groups-column); prints the table and "
         "writes --output .json or .csv. C, penalty and fit_intercept come from the model "
         "file's config (C = inf when it has none; --C overrides). See docs/inference.md."),
        _inference_options),
    "check-grad": (
        "hand-written gradient vs jax.grad and finite differences",
        ("Compare the hand-written gradient with jax.grad and central finite differences on the "
         "config's training data; exit status 1 when an error exceeds its tolerance."),
        _check_grad_options),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxlogreg",
        description="Logistic regression in JAX: train, evaluate and inspect models.",
        epilog="Configs: configs/*.toml and docs/cli.md. Benchmarks: python "
        "benchmarks/<name>.py in a checkout.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--verbose", action="store_true",
                        help="with --version: the environment report instead, for bug reports "
                        "(jaxlogreg.show_config(); builds the C kernel to say whether it builds)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, description, add_options) in COMMANDS.items():
        add_options(sub.add_parser(name, help=help_text, description=description))
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line parsed: a command, or ``--version`` (``--verbose`` only with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and not args.version:
        parser.error("--verbose goes with --version: jaxlogreg --version --verbose")
    if args.command is None and not args.version:
        parser.error("the following arguments are required: COMMAND")
    return args


def _print_version(verbose: bool) -> int:
    if verbose:
        from jaxlogreg.report.environment import show_config

        show_config(build_native=True)  # whether the C kernel builds: part of the report
    else:
        print(f"jaxlogreg {__version__}")
    return 0


def _errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input, reported in one line with exit status 2."""
    from jaxlogreg.report.plots import PlotUnavailableError

    return (CLIError, ConfigError, OSError, ValueError, TypeError, PlotUnavailableError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxlogreg`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    debug = env.flag("JAXLOGREG_DEBUG", default=False)
    try:
        args = parse_args(argv)
        if args.version:
            return _print_version(args.verbose)
        cache.enabled_by_command()  # the command's own process: new runs reuse compiled programs
        return args.func(args)
    except KeyboardInterrupt:
        print("\njaxlogreg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from jaxlogreg.estimators.logistic import DivergenceError

        if debug:
            raise
        if isinstance(err, DivergenceError):
            status = 1
        elif isinstance(err, _errors()):
            status = 2
        else:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"jaxlogreg {command or ''}: error: {message}".replace("  ", " "), file=sys.stderr)
        return status
