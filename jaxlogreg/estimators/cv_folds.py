"""The folds of :class:`~.logistic_cv.LogisticRegressionCV`, checked before anything is fitted.

``cv`` becomes (train, test) row indices (:func:`checked_splits`): every fold's training rows
hold 2 classes of positive weight and its test rows some positive ``sample_weight`` to score
on. The fit then runs every (fold, C) model at once, each fold's training rows as a mask
(:func:`train_masks`), all rows one more fold for the refit; :func:`check_path_memory` refuses
a grid of ``(folds + refit) × Cs`` models larger than the machine's memory before it is
allocated. Every error names ``cv`` (or ``Cs``, ``sample_weight``) and what to change.
"""

from __future__ import annotations

import os
from numbers import Integral
from typing import Any

import jax
import numpy as np
from sklearn.model_selection import StratifiedKFold, check_cv

from jaxlogreg.core import checks as v
from jaxlogreg.estimators.inputs import FitData
from jaxlogreg.training.path import path_memory_bytes
from jaxlogreg.training.problem import row_indices

DEFAULT_FOLDS = 5
_CV_HINT = "an integer >= 2, a cross-validation splitter or an iterable of (train, test) splits"

Splits = list[tuple[np.ndarray, np.ndarray]]


def checked_splits(cv: Any, data: FitData) -> Splits:
    """The (train, test) row indices of every fold, checked: errors name ``cv`` (and
    ``sample_weight``, which weighs the test rows in scoring)."""
    X, y, y_idx, classes = data.problem.X, data.y, data.y_idx, data.classes
    m = X.shape[0]
    cv = DEFAULT_FOLDS if cv is None else cv
    _check_stratified_folds(cv, y_idx, classes)
    try:
        splitter = check_cv(cv, y, classifier=True)
        splits = list(splitter.split(X, y))
    except (TypeError, ValueError) as err:
        raise ValueError(f"cv must be {_CV_HINT}; {v.show(cv)} failed: {err}") from None
    if not splits:
        raise ValueError(f"cv must give at least one (train, test) split, got none from {cv!r}")
    weights = np.ones(m) if data.problem.weights is None else data.problem.weights
    sample_weight = data.sample_weight
    checked = []
    for f, split in enumerate(splits):
        try:
            train, test = split
        except (TypeError, ValueError):
            raise ValueError(f"cv fold {f} must be a (train, test) pair, got {split!r}") from None
        train = row_indices(train, m, f"cv fold {f}'s train")
        test = row_indices(test, m, f"cv fold {f}'s test")
        if test.size == 0:
            raise ValueError(f"cv fold {f} has no test rows; every fold needs some to score on")
        if sample_weight is not None and not np.any(sample_weight[test] > 0):
            raise ValueError(
                f"cv fold {f}'s test rows all have sample_weight 0, so no score can be computed "
                "on them (a weighted mean over zero weight); choose folds (cv) whose test rows "
                "include rows of positive sample_weight"
            )
        present = np.unique(y_idx[train][weights[train] > 0])
        if present.shape[0] < 2:
            got = "no rows of positive weight" if present.size == 0 else (
                f"only class {v.show(classes[present[0]])}")
            raise ValueError(
                f"cv fold {f}'s training rows hold {got}; every fold needs at least 2 classes "
                "to train on (use fewer folds, or stratified folds: cv=int or StratifiedKFold)"
            )
        checked.append((train, test))
    return checked


def _check_stratified_folds(cv: Any, y_idx: np.ndarray, classes: np.ndarray) -> None:
    """An int ``cv`` is at least 2; stratified folds (an int, or StratifiedKFold) are no more
    than the smallest class's rows, so every test fold holds every class."""
    n_splits = None
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be {_CV_HINT}, got {v.show(cv)}")
        n_splits = int(cv)
    elif isinstance(cv, StratifiedKFold):
        n_splits = cv.get_n_splits()
    elif isinstance(cv, bool | str | float) or cv is None:
        raise ValueError(f"cv must be {_CV_HINT}, got {v.show(cv)}")
    if n_splits is None:
        return
    counts = np.bincount(y_idx, minlength=classes.shape[0])
    smallest = int(np.argmin(counts))
    if n_splits > counts[smallest]:
        raise ValueError(
            f"cv={n_splits} folds is more than the {counts[smallest]} sample(s) of class "
            f"{v.show(classes[smallest])}, the smallest class: some test folds would lack it "
            f"(scikit-learn only warns); use cv <= {counts[smallest]}"
        )


def train_masks(splits: Splits, m: int, refit: bool) -> np.ndarray:
    """(F + refit, m) booleans: each fold's training rows, then (with ``refit``) all rows, so
    that the refit's models join the folds' program and share each pass over X."""
    masks = np.zeros((len(splits) + refit, m), bool)
    for f, (train, _) in enumerate(splits):
        masks[f, train] = True
    masks[len(splits):] = True
    return masks


def machine_memory_bytes() -> int | None:
    """The smaller of the host's physical memory and the default device's memory limit (None
    when neither is known)."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        pass
    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
        limits.append(int(stats["bytes_limit"]))
    return min(limits) if limits else None


def check_path_memory(n_Cs: int, n_folds: int, refit: bool, X: Any, n_classes: int,
                      dtype: str) -> None:
    """Refuse, before anything is allocated, a path whose models cannot fit in memory
    (:func:`~jaxlogreg.training.path.path_memory_bytes`)."""
    limit = machine_memory_bytes()
    m, n = X.shape
    n_models = n_Cs * (n_folds + refit)
    need = path_memory_bytes(n_models, m, n, n_classes, dtype, getattr(X, "nnz", None))
    if limit is not None and need > limit:
        raise ValueError(
            f"Cs={n_Cs} values x cv={n_folds} folds{' + the refit' if refit else ''} = "
            f"{n_models:,} models of {n} features and {n_classes} classes on {m} rows need about "
            f"{need / 2**30:,.1f} GiB, more than the {limit / 2**30:,.1f} GiB of memory of this "
            "machine; use fewer Cs or fewer folds (cv)"
        )
