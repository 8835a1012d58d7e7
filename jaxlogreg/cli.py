"""The ``jaxlogreg`` command: train, evaluate, predict, check-grad and bench.

``main(argv) -> int`` returns the exit status: 0 on success, 1 when training diverged or a
gradient check failed, 2 for bad arguments, configs, data or model files (a one-line message
on stderr, no traceback; set ``JAXLOGREG_DEBUG=1`` to see the traceback).

Runs are described by TOML configs (:mod:`jaxlogreg.config`); ``--set section.key=value``
overrides single keys. Without ``--config`` the built-in default (``configs/default.toml``) runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from jaxlogreg.config import CATVNONCAT_ENV, Config, ConfigError, estimator_params, load_config

COURSE_LEARNING_RATES = (0.01, 0.001, 0.0001)
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
LEARNING_RATES_FILE = "learning_rates.png"


class CLIError(Exception):
    """A user error reported as one line on stderr with exit status 2."""


class Splits(NamedTuple):
    """Training and validation data as loaded (before standardization)."""

    train: Any  # jaxlogreg.data.Dataset
    validation: Any  # Dataset or None
    description: str
    class_names: tuple[Any, ...] | None


# ---------------------------------------------------------------------------- data


def _loader_options(path: str, d: Any) -> dict[str, Any]:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return {"label_column": d.label_column}
    if suffix in (".npz", ".h5", ".hdf5"):
        return {"x_key": d.x_key, "y_key": d.y_key}
    if suffix == ".npy":
        if not d.y_path:
            raise CLIError(f"{path} is a .npy features file: set data.y_path to its labels file")
        return {"y_path": d.y_path}
    return {}


def load_data(config: Config) -> Splits:
    """The ``[data]`` section's training and validation sets, in ``config.train.dtype``."""
    from jaxlogreg import data as jd

    d, dtype = config.data, config.train.dtype
    if d.source == "catvnoncat":
        if not Path(d.path).is_dir():
            env = os.environ.get(CATVNONCAT_ENV, "")
            origin = f" (from {CATVNONCAT_ENV})" if env and env == d.path else ""
            raise CLIError(
                f"catvnoncat folder {d.path}{origin} does not exist; point data.path or "
                f"{CATVNONCAT_ENV} to the folder holding train_catvnoncat.h5 and test_catvnoncat.h5"
            )
        train, test = jd.load_catvnoncat(d.path, dtype=dtype)
        return Splits(
            train, test, f"catvnoncat ({d.path}), validation = the course's test set", train.classes
        )
    if d.source == "synthetic":
        full = jd.make_classification(
            d.n_samples,
            d.n_features,
            d.n_classes,
            seed=d.seed,
            separation=d.separation,
            label_noise=d.label_noise,
            dtype=dtype,
        )
        description = full.source
    else:
        full = jd.load_dataset(d.path, **_loader_options(d.path, d), dtype=dtype)
        description = d.path
    if d.validation_path:
        validation = jd.load_dataset(
            d.validation_path, **_loader_options(d.validation_path, d), dtype=dtype
        )
        return Splits(
            full, validation, f"{description}, validation {d.validation_path}", full.classes
        )
    if d.validation_fraction == 0:
        return Splits(full, None, description, full.classes)
    X_tr, X_va, y_tr, y_va = jd.train_test_split(
        full.X, full.y, test_size=d.validation_fraction, seed=d.seed
    )
    return Splits(
        jd.Dataset(X_tr, y_tr, full.feature_names, full.classes, source=full.source),
        jd.Dataset(X_va, y_va, full.feature_names, full.classes, source=full.source),
        f"{description}, {d.validation_fraction:g} held out for validation",
        full.classes,
    )


def _read_features(path: str, label_column: str, dtype: str) -> Any:
    """X of a data file for ``predict``; a CSV file may lack the label column."""
    from jaxlogreg import data as jd

    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        try:
            return jd.load_csv(path, label_column, dtype=dtype).X
        except jd.DataFileError as err:
            if "not found" not in str(err):
                raise
        import numpy as np

        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
        try:
            return np.array([[float(c) for c in r] for r in rows[1:]], dtype=dtype)
        except ValueError as err:
            raise CLIError(f"{path}: features must be numbers ({err})") from None
    return jd.load_dataset(path, dtype=dtype).X


# ---------------------------------------------------------------------------- reporting


def _metrics(clf: Any, X: Any, y: Any) -> dict[str, Any]:
    import numpy as np

    from jaxlogreg import metrics

    # float64 probabilities: metrics checks that rows sum to 1 at float64 precision
    proba = clf.predict_proba(np.asarray(X, dtype=np.float64))
    return metrics.classification_report(y, proba, labels=clf.classes_)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _metrics_table(rows: dict[str, dict[str, Any]], out: TextIO) -> None:
    print(f"{'':12}{'loss':>10}{'accuracy':>10}{'AUC':>10}", file=out)
    for name, r in rows.items():
        print(
            f"{name:12}{_fmt(r['log_loss']):>10}{_fmt(r['accuracy']):>10}{_fmt(r['roc_auc']):>10}",
            file=out,
        )


def _classes_text(classes: Any, names: tuple[Any, ...] | None) -> str:
    labels = [str(c) for c in classes]
    if names is not None and len(names) == len(labels) and list(names) != list(classes):
        labels = [f"{c} ({n})" for c, n in zip(labels, names, strict=True)]
    return ", ".join(labels)


# ---------------------------------------------------------------------------- train


def _interactive(quiet: bool) -> bool:
    from jaxlogreg.progress import is_interactive

    return not quiet and is_interactive(sys.stderr)


def _fit(clf: Any, X: Any, y: Any) -> tuple[float, list[str]]:
    """Fit, returning the wall time and the text of any ConvergenceWarning."""
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X, y)
    elapsed = time.perf_counter() - start
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return elapsed, notes


def train_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` values, then the dedicated flags ``--out`` and ``--grad`` as overrides."""
    overrides = list(args.set or [])
    if args.out is not None:
        overrides.append(f"output.dir={args.out}")
    if args.grad is not None:
        overrides.append(f"train.grad={args.grad}")
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from jaxlogreg.data import Standardizer
    from jaxlogreg.estimator import LogisticRegression

    config = load_config(args.config, train_overrides(args))
    out = sys.stdout
    quiet = args.quiet
    compare = args.compare_learning_rates
    if compare is not None:
        compare = list(compare) or list(COURSE_LEARNING_RATES)
        if not config.output.dir:
            raise CLIError("--compare-learning-rates writes learning_rates.png: give --out DIR")
        if config.train.solver == "lbfgs":
            raise CLIError(
                "--compare-learning-rates needs a solver with a learning rate (gd, sgd, adam, "
                "...), the config has train.solver = 'lbfgs'"
            )
        bad = [lr for lr in compare if not (math.isfinite(lr) and lr > 0)]
        if bad:
            raise CLIError(f"--compare-learning-rates values must be > 0, got {bad}")

    splits = load_data(config)
    train, validation = splits.train, splits.validation
    X_train = train.X
    X_val = None if validation is None else validation.X
    standardizer = None
    if config.data.standardize:
        standardizer = Standardizer.fit(X_train)
        X_train = standardizer.transform(X_train)
        X_val = None if X_val is None else standardizer.transform(X_val)

    params = estimator_params(config.train)
    clf = LogisticRegression(**params, verbose=1 if _interactive(quiet) else 0)
    elapsed, notes = _fit(clf, X_train, train.y)
    reports = {"train": _metrics(clf, X_train, train.y)}
    if validation is not None:
        reports["validation"] = _metrics(clf, X_val, validation.y)
    fit_info = {
        "solver": config.train.solver,
        "n_iter": int(clf.n_iter_[0]),
        "status": clf.fit_status_,
        "objective": clf.loss_,
        "seconds": elapsed,
    }

    written: list[Path] = []
    plot_note = None
    if config.output.dir:
        written, plot_note = _write_outputs(config, clf, standardizer, splits, reports, fit_info)
    if not quiet:
        m, n = X_train.shape
        n_val = 0 if validation is None else validation.X.shape[0]
        print(f"data        {splits.description}", file=out)
        print(
            f"            {m} train / {n_val} validation samples, {n} features, classes "
            f"{_classes_text(clf.classes_, splits.class_names)}"
            + (", standardized" if standardizer is not None else ""),
            file=out,
        )
        penalty = "no penalty" if math.isinf(config.train.C) else f"C={config.train.C:g}"
        print(
            f"model       {len(clf.classes_)}-class logistic regression, {penalty}, "
            f"{config.train.dtype}, {config.train.grad} gradient",
            file=out,
        )
        print(
            f"solver      {_solver_text(config)}: {fit_info['n_iter']} iterations "
            f"({_status_text(clf)}), objective J {clf.loss_:.6f}, {elapsed:.2f} s "
            "(including compilation)",
            file=out,
        )
        for note in notes:
            print(f"warning     {note}", file=out)
        _metrics_table(reports, out)
        if written:
            print("wrote       " + ", ".join(str(p) for p in written), file=out)
    if plot_note:
        print(f"jaxlogreg train: note: skipped {LOSS_CURVE_FILE}: {plot_note}", file=sys.stderr)

    if compare is not None:
        _compare_learning_rates(config, clf, compare, X_train, train.y, X_val, validation, quiet)
    return 0


def _write_outputs(config, clf, standardizer, splits, reports, fit_info):
    from jaxlogreg import plots
    from jaxlogreg.estimator import to_params
    from jaxlogreg.model_io import save_model

    out_dir = Path(config.output.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"data": splits.description, "fit": fit_info, "metrics": _summary(reports)}
    if splits.class_names is not None:
        metadata["class_names"] = [str(c) for c in splits.class_names]
    model_path = save_model(
        out_dir / MODEL_FILE,
        to_params(clf),
        classes=clf.classes_,
        config=config.to_dict(),
        standardizer=standardizer,
        metadata=metadata,
    )
    metrics_path = out_dir / METRICS_FILE
    doc = {"data": splits.description, "fit": fit_info, **reports, "config": config.to_dict()}
    metrics_path.write_text(json.dumps(_jsonable(doc), indent=2) + "\n", encoding="utf-8")
    written = [model_path, metrics_path]
    plot_note = None
    if config.output.plot:
        val = reports.get("validation", {}).get("log_loss")
        try:
            written.append(
                plots.plot_loss_curve(
                    clf.loss_curve_,
                    out_dir / LOSS_CURVE_FILE,
                    title=f"{config.data.source}: {_solver_text(config)}",
                    validation_loss=val if val is not None and math.isfinite(val) else None,
                    xlabel="iteration" if config.train.batch_size is None else "epoch",
                )
            )
        except plots.PlotUnavailableError as err:
            plot_note = str(err)
    return written, plot_note


def _solver_text(config: Config) -> str:
    lr = config.train.learning_rate
    return config.train.solver + ("" if lr is None else f", learning rate {lr:g}")


def _status_text(clf: Any) -> str:
    if clf.fit_status_ == "max_iter":
        return "all max_iter iterations, tol = 0" if clf.tol == 0 else "stopped at max_iter"
    return clf.fit_status_


def _summary(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {k: r[k] for k in ("log_loss", "accuracy", "roc_auc")} for name, r in reports.items()
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "item") and hasattr(obj, "dtype"):
        return _jsonable(obj.item())
    return obj


def _compare_learning_rates(config, clf, rates, X_train, y_train, X_val, validation, quiet):
    """The course's experiment: the same model trained with several learning rates."""
    from sklearn.base import clone

    from jaxlogreg import plots

    out = sys.stdout
    curves = {}
    if not quiet:
        print(
            f"\nlearning rates ({config.train.solver}, {config.train.max_iter} iterations)",
            file=out,
        )
        print(f"{'':12}{'final J':>10}{'train acc':>11}{'val acc':>10}", file=out)
    for lr in rates:
        model = clone(clf).set_params(learning_rate=lr, warm_start=False)
        _, _ = _fit(model, X_train, y_train)
        curves[lr] = model.loss_curve_
        if not quiet:
            acc_val = "-" if X_val is None else _fmt(model.score(X_val, validation.y))
            print(
                f"{lr:<12g}{_fmt(model.loss_, '.6f'):>10}"
                f"{_fmt(model.score(X_train, y_train)):>11}{acc_val:>10}",
                file=out,
            )
    path = plots.plot_learning_rates(
        curves,
        Path(config.output.dir) / LEARNING_RATES_FILE,
        title=f"{config.data.source}: cost J for different learning rates ({config.train.solver})",
    )
    if not quiet:
        print(f"wrote       {path}", file=out)


# ---------------------------------------------------------------------------- evaluate/predict


def _load_model(path: str) -> tuple[Any, Any, Any]:
    from jaxlogreg.data import Standardizer
    from jaxlogreg.estimator import from_params
    from jaxlogreg.model_io import load_model

    saved = load_model(path)
    clf = from_params(saved.params, saved.classes)
    std = None if saved.standardizer is None else Standardizer.from_dict(saved.standardizer)
    return clf, std, saved


def _model_dtype(saved: Any) -> str:
    dtype = str(saved.params.w.dtype)
    return dtype if dtype in ("float32", "float64") else "float32"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from jaxlogreg import data as jd

    clf, std, saved = _load_model(args.model)
    dtype = _model_dtype(saved)
    if args.data is not None:
        if args.config is not None or args.set:
            raise CLIError("give either --data FILE or --config/--set, not both")
        d = load_config(None, [f"data.label_column={args.label_column}"]).data
        ds = jd.load_dataset(args.data, **_loader_options(args.data, d), dtype=dtype)
        sets = {"data": ds}
    else:
        overrides = list(args.set or []) + [f"train.dtype={dtype}"]
        splits = load_data(load_config(args.config, overrides))
        sets = {"train": splits.train}
        if splits.validation is not None:
            sets["validation"] = splits.validation
    reports = {}
    for name, ds in sets.items():
        X = ds.X if std is None else std.transform(ds.X)
        reports[name] = _metrics(clf, X, ds.y)
    if args.output:
        Path(args.output).write_text(json.dumps(_jsonable(reports), indent=2) + "\n", "utf-8")
    if not args.quiet:
        print(
            f"model       {args.model}: {len(clf.classes_)} classes "
            f"{_classes_text(clf.classes_, None)}, {clf.n_features_in_} features",
            file=sys.stdout,
        )
        _metrics_table(reports, sys.stdout)
        if args.output:
            print(f"wrote       {args.output}", file=sys.stdout)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    clf, std, saved = _load_model(args.model)
    dtype = _model_dtype(saved)
    if (args.data is None) == (args.config is None and not args.set):
        raise CLIError("give either --data FILE or --config/--set (with --split), not both")
    if args.data is not None:
        X = _read_features(args.data, args.label_column, dtype)
    else:
        splits = load_data(
            load_config(args.config, list(args.set or []) + [f"train.dtype={dtype}"])
        )
        part = splits.train if args.split == "train" else splits.validation
        if part is None:
            raise CLIError("the config has no validation data (data.validation_fraction = 0)")
        X = part.X
    if std is not None:
        X = std.transform(X)
    proba = clf.predict_proba(X)
    pred = clf.predict(X)
    if args.output in (None, "-"):
        _write_predictions(sys.stdout, clf.classes_, pred, proba)
    else:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            _write_predictions(f, clf.classes_, pred, proba)
        if not args.quiet:
            print(f"wrote {len(pred)} predictions to {args.output}", file=sys.stderr)
    return 0


def _write_predictions(f: TextIO, classes: Any, pred: Any, proba: Any) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["prediction"] + [f"proba_{c}" for c in classes])
    for label, row in zip(pred.tolist(), proba.tolist(), strict=True):
        writer.writerow([label] + [repr(float(p)) for p in row])


# ---------------------------------------------------------------------------- check-grad

_GRAD_TOLERANCE = {"float64": (1e-10, 1e-5), "float32": (1e-4, 5e-2)}


def cmd_check_grad(args: argparse.Namespace) -> int:
    import numpy as np

    from jaxlogreg import check_gradients
    from jaxlogreg.data import Standardizer

    config = load_config(args.config, list(args.set or []) + [f"train.dtype={args.dtype}"])
    splits = load_data(config)
    X = splits.train.X
    if config.data.standardize:
        X = Standardizer.fit(X).transform(X)
    classes, y = np.unique(splits.train.y, return_inverse=True)
    if classes.shape[0] < 2:
        raise CLIError(f"the training data holds only one class, {classes[0]!r}")
    m, n = X.shape
    l2 = 0.0 if math.isinf(config.train.C) else 1.0 / (config.train.C * m)
    result = check_gradients(
        X, y, n_classes=int(classes.shape[0]), l2=l2, dtype=args.dtype, max_coords=args.max_coords
    )
    auto_tol, fd_tol = _GRAD_TOLERANCE[args.dtype]
    ok = result.autodiff_rel_error <= auto_tol and result.finite_diff_rel_error <= fd_tol
    print(f"data        {splits.description}")
    print(
        f"            training part {m} x {n}, {classes.shape[0]} classes, λ = {l2:g}, "
        f"{args.dtype}, at random parameters"
    )
    print(
        f"hand-written vs jax.grad              max relative error "
        f"{result.autodiff_rel_error:.3e}  (tolerance {auto_tol:g})"
    )
    print(
        f"hand-written vs finite differences    max relative error "
        f"{result.finite_diff_rel_error:.3e}  (tolerance {fd_tol:g}, "
        f"{result.n_coords_checked} coordinates)"
    )
    print("OK" if ok else "FAILED: the hand-written gradient disagrees")
    return 0 if ok else 1


# ---------------------------------------------------------------------------- bench


def cmd_bench(argv: Sequence[str]) -> int:
    try:
        from jaxlogreg import bench
    except ModuleNotFoundError as err:
        if err.name not in ("jaxlogreg.bench",):
            raise
        raise CLIError(
            "the benchmarks (jaxlogreg.bench) are not part of this installation"
        ) from None
    return int(bench.main(list(argv)) or 0)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxlogreg",
        description="Logistic regression in JAX: train, evaluate and inspect models.",
        epilog="Configs: see configs/*.toml and the README.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model from a config and report its metrics",
        description="Train on the config's data (the built-in default config "
        "without --config) and print data, solver, iterations, time and "
        "train/validation loss, accuracy and AUC.",
    )
    _add_config_options(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        help=f"write {MODEL_FILE}, {METRICS_FILE} and {LOSS_CURVE_FILE} to DIR",
    )
    p.add_argument(
        "--grad",
        choices=("manual", "autodiff"),
        help="gradient: hand-written backward pass or jax.grad (train.grad)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors, no progress bar")
    p.add_argument(
        "--compare-learning-rates",
        nargs="*",
        type=float,
        metavar="LR",
        help="also train with each learning rate (default: the course's 0.01 0.001 "
        f"0.0001) and plot the costs to DIR/{LEARNING_RATES_FILE}",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a saved model on data",
        description="Metrics of a saved model on the train/validation data of a "
        "config, or on one data file (--data).",
    )
    p.add_argument("--model", required=True, metavar="FILE", help="model file from train --out")
    _add_config_options(p)
    p.add_argument("--data", metavar="FILE", help="a labelled data file instead of a config")
    p.add_argument("--label-column", default="label", help="label column of a CSV (default label)")
    p.add_argument("--output", metavar="JSON", help="also write the metrics to this JSON file")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="predict classes and probabilities for a data file",
        description="Write one CSV row per sample: the predicted class and the "
        "probability of each class, for a data file (--data) or for a config's "
        "data (--config/--set, --split).",
    )
    p.add_argument("--model", required=True, metavar="FILE", help="model file from train --out")
    p.add_argument(
        "--data",
        metavar="FILE",
        help="features (.csv with or without a label column, .npz, .h5, .svm)",
    )
    _add_config_options(p)
    p.add_argument(
        "--split",
        choices=("validation", "train"),
        default="validation",
        help="with --config: which part of the config's data (default validation)",
    )
    p.add_argument("--output", metavar="CSV", help="output file (default: standard output)")
    p.add_argument(
        "--label-column",
        default="label",
        help="label column of a CSV, ignored when present (default label)",
    )
    p.add_argument("--quiet", action="store_true", help="no message on stderr")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "check-grad",
        help="hand-written gradient vs jax.grad and finite differences",
        description="Compare the hand-written gradient with jax.grad and central "
        "finite differences on the config's training data; exit status 1 when "
        "an error exceeds its tolerance.",
    )
    _add_config_options(p)
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="precision of the check (default float64)",
    )
    p.add_argument(
        "--max-coords",
        type=int,
        default=256,
        metavar="N",
        help="finite differences on at most N coordinates (default 256)",
    )
    p.set_defaults(func=cmd_check_grad)

    sub.add_parser("bench", help="benchmarks (jaxlogreg bench --help)", add_help=False)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("jaxlogreg")
    except Exception:  # noqa: BLE001 -- not installed: a source checkout
        return "unknown"


def _errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input, reported in one line with exit status 2."""
    from jaxlogreg.plots import PlotUnavailableError

    return (CLIError, ConfigError, OSError, ValueError, TypeError, PlotUnavailableError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxlogreg`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    debug = os.environ.get("JAXLOGREG_DEBUG", "") not in ("", "0")
    try:
        if command == "bench":
            return cmd_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:
        print("\njaxlogreg: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        from jaxlogreg.estimator import DivergenceError

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
