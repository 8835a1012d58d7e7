"""``jaxlogreg inference``: standard errors, z-tests and intervals of a saved model's parameters.

The model file's training config gives C, penalty, l1_ratio, fit_intercept and class_weight
(``--C`` and ``--fit-intercept`` override them; a file without a config means C = inf, an
intercept, no class weights). The data are the training data (``--data FILE`` or the
training part of ``--config``), read as ``evaluate`` reads them; a saved feature scaling is
applied first, so the coefficients are those of the scaled features, as the model holds them.
``--groups-column NAME`` takes the clusters of ``--cov-type cluster`` from a CSV column, which
is then no feature. See docs/inference.md.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from jaxlogreg.cli.config import CLIError
from jaxlogreg.cli.train import _class_weight, write_json
from jaxlogreg.cli.use import _apply, _datasets, _file_options, _load_model

_CSV_COLUMNS = ("name", "coef", "std_err", "z", "p_value", "ci_lower", "ci_upper")


def add_options(p: argparse.ArgumentParser) -> None:
    """The command's options (registered by :mod:`jaxlogreg.cli.main`)."""
    p.add_argument("--model", required=True, metavar="FILE", help="model file from train --out")
    p.add_argument("--config", metavar="FILE", help="use the training part of this config's data")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override one config key (repeatable)")
    p.add_argument("--data", metavar="FILE", help="the labelled training data file")
    p.add_argument("--label-column", default="label", help="label column of a CSV (default label)")
    p.add_argument("--y-path", metavar="FILE", help="labels (.npy) of a .npy features file")
    p.add_argument("--cov-type", default="nonrobust",
                   help="nonrobust (inverse Hessian, default), HC0 or HC1 (sandwich), cluster")
    p.add_argument("--groups-column", metavar="NAME",
                   help="with --cov-type cluster: the CSV column holding each row's cluster")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="1 - confidence level of the intervals (default 0.05)")
    p.add_argument("--C", type=float, metavar="C",
                   help="inverse penalty strength (default: the model file's train.C; inf when "
                        "the file records no config)")
    p.add_argument("--fit-intercept", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the model has an intercept (default: the model file's)")
    p.add_argument("--output", metavar="JSON|CSV", help="also write the table (.json or .csv)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_inference)


def cmd_inference(args: argparse.Namespace) -> int:
    from jaxlogreg.data.model_io import load_model

    output = _output_kind(args.output)
    if args.groups_column is not None and args.cov_type != "cluster":
        raise CLIError("--groups-column goes with --cov-type cluster")
    if args.cov_type == "cluster" and args.groups_column is None:
        raise CLIError("--cov-type cluster needs --groups-column NAME (a column of the CSV)")
    if args.data is None and args.config is None and not args.set:
        raise CLIError("give --data FILE or --config/--set (its training part is used)")
    clf, scaler, dtype, names = _load_model(args)
    train = load_model(args.model).config.get("train", {})
    X, y, groups = _data(args, clf, dtype, names)
    clf, X = _apply(clf, scaler, X)
    clf.set_params(**_hyper_parameters(train, args, clf.classes_))
    result = clf.inference(X, y, cov_type=args.cov_type, groups=groups, alpha=args.alpha,
                           feature_names=names)
    if not args.quiet:
        C = clf.get_params()["C"]
        print(f"model       {args.model}: C={C:g}, penalty={clf.penalty}, "
              f"{X.shape[0]} rows{', scaled features' if scaler is not None else ''}")
        print(result.summary())
    if output == "json":
        write_json(Path(args.output), result.to_dict())
    elif output == "csv":
        _write_csv(Path(args.output), result)
    if output and not args.quiet:
        print(f"wrote       {args.output}")
    return 0


def _output_kind(path: str | None) -> str | None:
    if path is None:
        return None
    kind = Path(path).suffix.lower().lstrip(".")
    if kind not in ("json", "csv"):
        raise CLIError(f"--output must end in .json or .csv, got {path!r}")
    return kind


def _data(args: argparse.Namespace, clf: Any, dtype: str, names: Any):
    """X, y and the cluster of each row (or None) of the training data."""
    if args.groups_column is None:
        sets = _datasets(args, dtype, clf.n_features_in_, names, labels="required")
        data = sets.get("data", sets.get("train"))
        return data.X, data.y, None
    if args.data is None or Path(args.data).suffix.lower() != ".csv":
        raise CLIError("--groups-column needs --data FILE.csv with a header row")
    from jaxlogreg.data.sources import load_file

    wanted = None if names is None else (*names, args.groups_column)
    data = load_file(args.data, _file_options(args), labels="required", dtype="float64",
                     feature_names=wanted)
    columns = list(data.feature_names or ())
    if args.groups_column not in columns:
        raise CLIError(f"--groups-column {args.groups_column!r} is not a column of {args.data}; "
                       f"its columns are {columns}")
    where = columns.index(args.groups_column)
    X = np.delete(np.asarray(data.X), where, axis=1).astype(dtype)
    if X.shape[1] != clf.n_features_in_:
        raise CLIError(f"{args.data} has {X.shape[1]} feature columns besides "
                       f"{args.groups_column!r}, the model {clf.n_features_in_}")
    return X, data.y, np.asarray(data.X)[:, where]


def _hyper_parameters(train: dict[str, Any], args: argparse.Namespace, classes: Any):
    """C, penalty, l1_ratio, fit_intercept and class_weight: the file's, then the options."""
    C = float(train.get("C", math.inf)) if args.C is None else args.C
    fit_intercept = train.get("fit_intercept", True) if args.fit_intercept is None \
        else args.fit_intercept
    return {"C": C, "penalty": train.get("penalty", "l2"), "l1_ratio": train.get("l1_ratio"),
            "fit_intercept": bool(fit_intercept),
            "class_weight": _class_weight(train.get("class_weight"), np.asarray(classes))}


def _write_csv(path: Path, result: Any) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for i, name in enumerate(result.names):
            values = (result.coef[i], result.std_err[i], result.z[i], result.p_value[i],
                      *result.conf_int[i])
            writer.writerow([name, *(repr(float(x)) for x in values)])
