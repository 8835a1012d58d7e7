"""``jaxlogreg cv``: choose C by cross-validation, every (fold, C) model fitted in one program.

The ``[cv]`` section says what to search (how many values of C or which, folds, scoring,
refit); ``[train]`` gives the model's other settings (intercept, tolerance, iterations, class
weights, dtype, gradient); ``[data]`` the data, whose training part is split into folds (the
validation part, if any, reports the chosen model). Prints C against the mean and standard
deviation of the held-out scores and the chosen C; ``--out DIR`` writes the refit model
(``model.npz``), ``cv.json`` and ``cv_scores.png``. Sparse data (LIBSVM files) stay sparse;
their feature scaling is handled as by ``jaxlogreg train`` (:mod:`jaxlogreg.cli.train`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jaxlogreg.cli.config import CLIError, Config, load_config
from jaxlogreg.cli.train import (
    MODEL_FILE,
    check_splits,
    data_dtype,
    metrics_of,
    metrics_table,
    output_folder,
    params_to_save,
    scaling_text,
    write_json,
)
from jaxlogreg.data.scaling import fit_scaler, scale
from jaxlogreg.data.sources import load_splits

CV_FILE = "cv.json"
CV_PLOT_FILE = "cv_scores.png"


def cmd_cv(args: argparse.Namespace) -> int:
    overrides = list(args.set or []) + ([f"output.dir={args.out}"] if args.out else [])
    config = load_config(args.config, overrides)
    if config.train.penalty != "l2":
        raise CLIError(
            f"jaxlogreg cv chooses C for the L2 penalty only; the config has train.penalty = "
            f"{config.train.penalty!r} (set it to 'l2', or train with a fixed C)"
        )
    with output_folder(config.output.dir) as out_dir:
        return _cv(args, config, out_dir)


def _cv(args: argparse.Namespace, config: Config, out_dir: Path | None) -> int:
    from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV

    splits = load_splits(config.data, data_dtype(config))
    check_splits(splits)
    train, validation = splits.train, splits.validation
    scaler = fit_scaler(train.X) if config.data.standardize else None  # sparse: not centered
    X = scale(scaler, train.X)
    t, c = config.train, config.cv
    clf = LogisticRegressionCV(
        Cs=c.Cs, cv=c.folds, scoring=c.scoring, refit=c.refit, fit_intercept=t.fit_intercept,
        tol=t.tol, max_iter=t.max_iter, class_weight=t.class_weight, dtype=t.dtype, grad=t.grad,
    ).fit(X, train.y)
    scores = next(iter(clf.scores_.values()))  # (folds, Cs): the same array for every class
    table = [{"C": float(C), "mean": float(scores[:, i].mean()), "std": float(scores[:, i].std())}
             for i, C in enumerate(clf.Cs_)]
    reports = {"train": metrics_of(clf, X, train.y)}
    if validation is not None:
        reports["validation"] = metrics_of(clf, scale(scaler, validation.X), validation.y)
    written = [] if out_dir is None else _write(out_dir, config, clf, scaler, table, scores,
                                                reports, train.feature_names)
    if not args.quiet:
        _report(config, clf, splits, scaler, table, reports, written)
    return 0


def _report(config: Config, clf: Any, splits: Any, scaler: Any, table: list[dict], reports,
            written) -> None:
    out = sys.stdout
    m, n = splits.train.X.shape
    print(f"data        {splits.description}", file=out)
    print(f"            {m} training samples, {n} features{scaling_text(scaler)}, "
          f"{config.cv.folds} folds, {len(table)} values of C, {config.cv.scoring}", file=out)
    print(f"{'C':>12}{'mean':>10}{'std':>10}", file=out)
    best = float(np.atleast_1d(clf.C_)[0])
    for row in table:
        mark = "  <- chosen" if row["C"] == best else ""
        print(f"{row['C']:>12.4g}{row['mean']:>10.4f}{row['std']:>10.4f}{mark}", file=out)
    how = "refit on all training rows" if config.cv.refit else "the mean of the folds' models"
    print(f"chosen      C = {best:.4g} ({how})", file=out)
    metrics_table(reports, out)
    if written:
        print("wrote       " + ", ".join(str(p) for p in written), file=out)


def _write(out_dir: Path, config: Config, clf: Any, scaler: Any, table, scores, reports,
           feature_names):
    from jaxlogreg.data.model_io import save_model
    from jaxlogreg.report import plots

    best = float(np.atleast_1d(clf.C_)[0])
    params, saved_scaler, note = params_to_save(clf, scaler)
    model = save_model(out_dir / MODEL_FILE, params, classes=clf.classes_,
                       config=config.to_dict(), scaler=saved_scaler,
                       metadata={"cv": {"C_": best, "scoring": config.cv.scoring}, **note},
                       feature_names=feature_names)
    doc = {"C_": best, "scoring": config.cv.scoring, "folds": config.cv.folds, "table": table,
           "fold_scores": scores.tolist(), **reports, "config": config.to_dict()}
    write_json(out_dir / CV_FILE, doc)
    written = [model, out_dir / CV_FILE]
    if config.output.plot:
        try:
            written.append(plots.plot_cv_scores(clf.Cs_, scores, out_dir / CV_PLOT_FILE,
                                                chosen=best, scoring=config.cv.scoring,
                                                title=f"{config.data.source}: cross-validation"))
        except plots.PlotUnavailableError as err:
            print(f"jaxlogreg cv: note: skipped {CV_PLOT_FILE}: {err}", file=sys.stderr)
    return written
