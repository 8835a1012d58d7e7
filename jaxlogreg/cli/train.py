"""``jaxlogreg train``: fit the configured model on the configured data, report, write files.

Everything that can be checked before the fit is checked first (the config, the output
folder, the data and its validation part), so a mistake costs no training time. The report
and the files use the same metrics (:func:`jaxlogreg.report.metrics.classification_report`).

Sparse data (LIBSVM files) stay sparse from the file to the fit, the metrics and the model
file. ``data.standardize`` divides sparse features by their standard deviation without
centering them (centering would densify them), and the saved model has that scaling folded
into its weights, so it applies to the raw features (:mod:`jaxlogreg.data.scaling`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import scipy.sparse as sp

from jaxlogreg.cli.config import CLIError, Config, load_config
from jaxlogreg.data.archive import dumps
from jaxlogreg.data.scaling import fit_scaler, fold_scaling, scale
from jaxlogreg.data.sources import Splits, load_splits

COURSE_LEARNING_RATES = (0.01, 0.001, 0.0001)
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.json"
LOSS_CURVE_FILE = "loss_curve.png"
LEARNING_RATES_FILE = "learning_rates.png"


def data_dtype(config: Config) -> str:
    """The dtype data are loaded in: the configured one, float32 when it follows the data."""
    return config.train.dtype or "float32"


def metrics_of(clf: Any, X: Any, y: Any) -> dict[str, Any]:
    from jaxlogreg.report.metrics import classification_report

    return classification_report(y, clf.predict_proba(X), clf.classes_)


def fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def metrics_table(rows: dict[str, dict[str, Any]], out: TextIO) -> None:
    print(f"{'':12}{'loss':>10}{'accuracy':>10}{'AUC':>10}", file=out)
    for name, r in rows.items():
        print(
            f"{name:12}{fmt(r['log_loss']):>10}{fmt(r['accuracy']):>10}{fmt(r['roc_auc']):>10}",
            file=out,
        )


def classes_text(classes: Any, names: tuple[Any, ...] | None) -> str:
    labels = [str(c) for c in classes]
    if names is not None and len(names) == len(labels) and list(names) != list(classes):
        labels = [f"{c} ({n})" for c, n in zip(labels, names, strict=True)]
    return ", ".join(labels)


def scaling_text(scaler: Any) -> str:
    """How the features were scaled, for the report ("" without scaling)."""
    if scaler is None:
        return ""
    return ", standardized" if scaler.with_mean else ", scaled to std 1 (sparse: not centered)"


def params_to_save(clf: Any, scaler: Any) -> tuple[Any, Any, dict[str, str]]:
    """The parameters and feature scaling a model file stores, and a metadata note.

    A scaler without centering (sparse data) is folded into the weights
    (:func:`~jaxlogreg.data.scaling.fold_scaling`): the file then holds no scaler, no
    per-feature lists in its header, and its model applies to the raw sparse features."""
    from jaxlogreg.estimators.logistic import to_params

    params = to_params(clf)
    if scaler is None or scaler.with_mean:
        return params, scaler, {}
    note = "divided by the training standard deviations (not centered), folded into w"
    return fold_scaling(params, scaler), None, {"feature_scaling": note}


def write_json(path: Path, doc: Any) -> None:
    """JSON with non-finite numbers as "inf"/"nan" strings (the package's one encoding)."""
    path.write_text(dumps(doc, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def output_folder(out_dir: str) -> Iterator[Path | None]:
    """The output folder, created and checked writable before any training (None when no
    folder is configured); a folder created here that a failed run leaves empty is removed."""
    if not out_dir:
        yield None
        return
    path = Path(out_dir)
    created = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise CLIError(f"output folder {out_dir} cannot be written: {err.strerror or err}") from None
    try:
        yield path
    finally:
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def check_splits(splits: Splits) -> None:
    """A fit needs two classes in the training part, and validation data of the same width."""
    classes = np.unique(splits.train.y)
    if classes.shape[0] < 2:
        raise CLIError(
            f"the training part of the data ({splits.train.n_samples} samples after holding "
            f"out validation data) holds only one class, {classes[0]!r}; a classifier needs "
            "samples of at least 2 classes (use more data or data.validation_fraction = 0)"
        )
    val = splits.validation
    if val is not None and val.n_features != splits.train.n_features:
        raise CLIError(
            f"the validation data ({val.source}) has {val.n_features} features, the training "
            f"data {splits.train.n_features}; they must have the same columns"
        )


def _class_weight(class_weight: Any, classes: np.ndarray) -> Any:
    """A TOML table's keys are strings: match them to the class labels by their text."""
    if not isinstance(class_weight, dict):
        return class_weight
    by_text = {str(c): c for c in classes.tolist()}
    unknown = sorted(set(class_weight) - set(by_text))
    if unknown:
        raise CLIError(
            f"train.class_weight names class(es) {unknown} that are not in the training data; "
            f"its classes are {sorted(by_text)}"
        )
    return {by_text[key]: weight for key, weight in class_weight.items()}


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


def overrides_of(args: argparse.Namespace) -> list[str]:
    """``--set`` values, then the dedicated flags ``--out`` and ``--grad`` as overrides."""
    overrides = list(args.set or [])
    if args.out is not None:
        overrides.append(f"output.dir={args.out}")
    if args.grad is not None:
        overrides.append(f"train.grad={args.grad}")
    return overrides


def _learning_rates(args: argparse.Namespace, config: Config) -> list[float] | None:
    rates = args.compare_learning_rates
    if rates is None:
        return None
    rates = list(rates) or list(COURSE_LEARNING_RATES)
    if not config.output.dir:
        raise CLIError("--compare-learning-rates writes learning_rates.png: give --out DIR")
    if config.train.solver_record.learning_rate is None:
        raise CLIError(
            "--compare-learning-rates needs a solver with a learning rate (gd, sgd, adam, ...), "
            f"the config has train.solver = {config.train.solver!r}, which chooses its own steps"
        )
    bad = [lr for lr in rates if not (math.isfinite(lr) and lr > 0)]
    if bad:
        raise CLIError(f"--compare-learning-rates values must be finite and > 0, got {bad}")
    _check_matplotlib(f"--compare-learning-rates writes {LEARNING_RATES_FILE}")
    return rates


def _check_matplotlib(why: str) -> None:
    """A plot that must be written needs matplotlib: checked before any fit."""
    from jaxlogreg.report.plots import INSTALL_HINT, PlotUnavailableError

    try:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise PlotUnavailableError(f"{why}, and {INSTALL_HINT}") from None


def cmd_train(args: argparse.Namespace) -> int:
    config = load_config(args.config, overrides_of(args))
    rates = _learning_rates(args, config)
    with output_folder(config.output.dir) as out_dir:
        return _train(args, config, rates, out_dir)


def _train(args: argparse.Namespace, config: Config, rates: list[float] | None,
           out_dir: Path | None) -> int:
    from jaxlogreg.estimators.logistic import LogisticRegression
    from jaxlogreg.training.progress import is_interactive

    splits = load_splits(config.data, data_dtype(config))
    check_splits(splits)
    train, validation = splits.train, splits.validation
    # sparse X: scaled without centering, kept sparse (see the module docstring)
    scaler = fit_scaler(train.X) if config.data.standardize else None
    X_train = scale(scaler, train.X)
    X_val = None if validation is None else scale(scaler, validation.X)

    verbose = 0 if args.quiet else max(config.train.verbose, int(is_interactive(sys.stderr)))
    settings = dataclasses.asdict(config.train) | {
        "verbose": verbose,
        "class_weight": _class_weight(config.train.class_weight, np.unique(train.y)),
    }
    clf = LogisticRegression(**settings)
    elapsed, notes = _fit(clf, X_train, train.y)
    reports = {"train": metrics_of(clf, X_train, train.y)}
    if validation is not None:
        reports["validation"] = metrics_of(clf, X_val, validation.y)
    fit_info = {
        "solver": config.train.solver,
        "n_iter": int(clf.n_iter_[0]),
        "status": clf.fit_status_,
        "objective": clf.loss_,
        "seconds": elapsed,
    }
    written, plot_note = [], None
    if out_dir is not None:
        written, plot_note = _write_outputs(out_dir, config, clf, scaler, splits, reports, fit_info)
    for note in notes:  # warnings show even with --quiet
        print(f"jaxlogreg train: warning: {note}", file=sys.stderr)
    if plot_note:
        print(f"jaxlogreg train: note: skipped {LOSS_CURVE_FILE}: {plot_note}", file=sys.stderr)
    if not args.quiet:
        _report(config, clf, splits, scaler, reports, fit_info, written, sys.stdout)
    if rates is not None:
        _compare_learning_rates(config, clf, rates, X_train, train.y, X_val, validation,
                                args.quiet)
    return 0


def _report(config, clf, splits, scaler, reports, fit_info, written, out: TextIO) -> None:
    m, n = splits.train.X.shape
    n_val = 0 if splits.validation is None else splits.validation.n_samples
    print(f"data        {splits.description}", file=out)
    print(
        f"            {m} train / {n_val} validation samples, {n} features, classes "
        f"{classes_text(clf.classes_, splits.class_names)}{scaling_text(scaler)}"
        + (", sparse" if sp.issparse(splits.train.X) else ""),
        file=out,
    )
    print(
        f"model       {len(clf.classes_)}-class logistic regression, {penalty_text(config)}, "
        f"{clf.coef_.dtype}, {config.train.grad} gradient",
        file=out,
    )
    print(
        f"solver      {_solver_text(config)}: {fit_info['n_iter']} iterations "
        f"({_status_text(clf)}), objective J {clf.loss_:.6f}, {fit_info['seconds']:.2f} s "
        "(including compilation)",
        file=out,
    )
    metrics_table(reports, out)
    if written:
        print("wrote       " + ", ".join(str(p) for p in written), file=out)


def penalty_text(config: Config) -> str:
    """The penalty and C, for the report."""
    t = config.train
    if t.penalty is None or math.isinf(t.C):
        return "no penalty"
    if t.penalty == "elasticnet":
        return f"elastic-net penalty (l1_ratio {t.l1_ratio:g}), C={t.C:g}"
    return f"{t.penalty.upper()} penalty, C={t.C:g}"


def _write_outputs(out_dir: Path, config, clf, scaler, splits, reports, fit_info):
    from jaxlogreg.data.model_io import save_model
    from jaxlogreg.report import plots

    summary = {
        name: {k: r[k] for k in ("log_loss", "accuracy", "roc_auc")} for name, r in reports.items()
    }
    params, saved_scaler, note = params_to_save(clf, scaler)
    metadata = {"data": splits.description, "fit": fit_info, "metrics": summary, **note}
    if splits.class_names is not None:
        metadata["class_names"] = [str(c) for c in splits.class_names]
    model_path = save_model(
        out_dir / MODEL_FILE,
        params,
        classes=clf.classes_,
        config=config.to_dict(),
        scaler=saved_scaler,
        metadata=metadata,
        feature_names=splits.train.feature_names,
    )
    metrics_path = out_dir / METRICS_FILE
    write_json(metrics_path, {"data": splits.description, "fit": fit_info, **reports,
                              "config": config.to_dict()})
    written, plot_note = [model_path, metrics_path], None
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


def _compare_learning_rates(config, clf, rates, X_train, y_train, X_val, validation, quiet):
    """The course's experiment: the same model trained with several learning rates."""
    from sklearn.base import clone

    from jaxlogreg.report import plots

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
        _fit(model, X_train, y_train)
        curves[lr] = model.loss_curve_
        if not quiet:
            acc_val = "-" if X_val is None else fmt(model.score(X_val, validation.y))
            print(
                f"{lr:<12g}{fmt(model.loss_, '.6f'):>10}"
                f"{fmt(model.score(X_train, y_train)):>11}{acc_val:>10}",
                file=out,
            )
    path = plots.plot_learning_rates(
        curves,
        Path(config.output.dir) / LEARNING_RATES_FILE,
        title=f"{config.data.source}: cost J for different learning rates ({config.train.solver})",
    )
    if not quiet:
        print(f"wrote       {path}", file=out)

