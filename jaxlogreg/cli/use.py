"""``jaxlogreg evaluate``, ``predict`` and ``check-grad``: use a saved model, or the gradient.

A saved model is the estimator rebuilt from the file (:func:`jaxlogreg.estimators.logistic.from_params`)
and the feature scaling it was trained with, applied again before every prediction. Data with
column names (a CSV header) are matched to the model's feature names: columns in another order
are reordered, other columns refused (:mod:`jaxlogreg.data.sources`).

Sparse data (LIBSVM files) are never densified: a LIBSVM file is read with the model's width
(a feature index beyond it is an error naming the line), and a saved scaler that centers the
features is folded into the model's parameters instead of being applied to sparse features
(:func:`jaxlogreg.data.scaling.fold_scaling`). Models trained on sparse data hold their scaling
folded in already.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import scipy.sparse as sp

from jaxlogreg.cli.config import CLIError, load_config
from jaxlogreg.cli.train import classes_text, data_dtype, metrics_of, metrics_table, write_json
from jaxlogreg.data.scaling import fold_scaling, scale
from jaxlogreg.data.sources import DataConfig, load_file, load_splits


def _load_model(args: argparse.Namespace) -> tuple[Any, Any, str, tuple[str, ...] | None]:
    """The estimator of ``--model``, its feature scaling (or None), the dtype to load data
    in and its feature names (or None), once the data options are known to name one source."""
    from jaxlogreg.data.model_io import load_model
    from jaxlogreg.estimators.logistic import from_params

    if args.data is not None and (args.config is not None or args.set):
        raise CLIError("give either --data FILE or --config/--set, not both")
    saved = load_model(args.model)
    dtype = str(saved.params.w.dtype)
    dtype = dtype if dtype in ("float32", "float64") else "float32"
    return from_params(saved.params, saved.classes), saved.scaler, dtype, saved.feature_names


def _file_options(args: argparse.Namespace) -> DataConfig:
    """How to read a ``--data`` file: the label column of a CSV, the labels of a .npy."""
    return DataConfig(label_column=args.label_column, y_path=getattr(args, "y_path", None) or "")


def _config_splits(args: argparse.Namespace, dtype: str, n_features: int, names: Any):
    """The train/validation data of ``--config``/``--set``, loaded in the model's dtype (LIBSVM
    files with the model's width, named columns in the order of the model's ``names``)."""
    return load_splits(load_config(args.config, args.set or []).data, dtype, n_features, names)


def _apply(clf: Any, scaler: Any, X: Any) -> tuple[Any, Any]:
    """The model and features to predict with: ``scale(scaler, X)``, or for sparse X the
    scaling folded into the model (X stays sparse and unscaled)."""
    if scaler is None or not sp.issparse(X):
        return clf, scale(scaler, X)
    from jaxlogreg.estimators.logistic import from_params, to_params

    return from_params(fold_scaling(to_params(clf), scaler), clf.classes_), X


def _metrics(clf: Any, scaler: Any, X: Any, y: Any) -> dict[str, Any]:
    return metrics_of(*_apply(clf, scaler, X), y)


def _datasets(args: argparse.Namespace, dtype: str, n_features: int, names: Any,
              labels: str) -> dict[str, Any]:
    """The data to use the model on: ``{"data": ...}`` for ``--data`` (read with the model's
    dtype, width and column names; ``labels`` "required" or "optional"), else the config's
    ``{"train": ..., "validation": ...}`` (validation only when the config has some)."""
    if args.data is not None:
        data = load_file(args.data, _file_options(args), labels=labels, dtype=dtype,
                         n_features=n_features, feature_names=names)
        return {"data": data}
    splits = _config_splits(args, dtype, n_features, names)
    parts = {"train": splits.train, "validation": splits.validation}
    return {name: part for name, part in parts.items() if part is not None}


def cmd_evaluate(args: argparse.Namespace) -> int:
    clf, scaler, dtype, names = _load_model(args)
    sets = _datasets(args, dtype, clf.n_features_in_, names, labels="required")
    reports = {name: _metrics(clf, scaler, ds.X, ds.y) for name, ds in sets.items()}
    if args.output:
        write_json(Path(args.output), reports)
    if not args.quiet:
        print(
            f"model       {args.model}: {len(clf.classes_)} classes "
            f"{classes_text(clf.classes_, None)}, {clf.n_features_in_} features",
        )
        metrics_table(reports, sys.stdout)
        if args.output:
            print(f"wrote       {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    clf, scaler, dtype, names = _load_model(args)
    if args.data is None and args.config is None and not args.set:
        raise CLIError("give --data FILE or --config/--set (with --split)")
    sets = _datasets(args, dtype, clf.n_features_in_, names, labels="optional")
    part = sets["data"] if args.data is not None else sets.get(args.split)
    if part is None:
        raise CLIError("the config has no validation data (data.validation_fraction = 0)")
    clf, X = _apply(clf, scaler, part.X)
    proba, pred = clf.predict_proba(X), clf.predict(X)
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


_GRAD_TOLERANCE = {"float64": (1e-10, 1e-5), "float32": (1e-4, 5e-2)}


def cmd_check_grad(args: argparse.Namespace) -> int:
    from jaxlogreg.core.gradcheck import check_gradients
    from jaxlogreg.data.scaling import fit_scaler

    config = load_config(args.config, list(args.set or []) + [f"train.dtype={args.dtype}"])
    splits = load_splits(config.data, data_dtype(config))
    X = splits.train.X
    if config.data.standardize:
        X = scale(fit_scaler(X), X)
    classes, y = np.unique(splits.train.y, return_inverse=True)
    if classes.shape[0] < 2:
        raise CLIError(f"the training part of the data holds only one class, {classes[0]!r}")
    m, n = X.shape
    l2 = config.train.l2(m)  # the smooth part: an L1 part has no gradient at 0 to check
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
