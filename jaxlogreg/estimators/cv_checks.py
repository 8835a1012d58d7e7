"""What :class:`~.logistic_cv.LogisticRegressionCV` checks around its one compiled program.

Before anything is fitted: that the (folds × Cs) models fit in memory (:func:`check_path_memory`)
and that ``scoring`` can score these folds (:func:`check_scorer`, on the model with zero
coefficients every fit starts from). After scoring: the choice of C never falls on a NaN score
(:func:`best_C`, :func:`best_C_per_fold`). Every error names the parameter to change.
"""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any

import jax
import numpy as np

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.estimators.logistic import from_params
from jaxlogreg.training.data import bucketed_shape
from jaxlogreg.training.path import path_of

# the L-BFGS history length of the path (LogisticRegressionCV keeps its default)
PATH_MEMORY: int = inspect.signature(path_of).parameters["memory"].default


def path_memory_bytes(n_models: int, m: int, n: int, n_classes: int, dtype: str,
                      nnz: int | None = None) -> int:
    """Bytes :func:`~jaxlogreg.training.path.path_of` holds for ``n_models`` models at once.

    Per model, with ``K' = 1`` (two classes) or K, ``p = n_pad K' + K'`` parameters and b bytes a
    value (the accumulation dtype): its ``_State``, ``(2 memory + 5) p`` values (the L-BFGS pairs
    S and Y, the point, the base point, its gradient, the direction and the new gradient); and
    per row, the host's float64 weights and their cast (``(8 + b) m`` bytes), the device's
    scale, logits, probabilities and their gradient (``(1 + 3 K') m_pad`` values).
    """
    m_pad, n_pad = bucketed_shape(m, n, minibatch=False, nnz=nnz)
    k = 1 if n_classes == 2 else n_classes
    p = n_pad * k + k
    b = np.dtype(accumulation_dtype(dtype)).itemsize
    per_model = (2 * PATH_MEMORY + 5) * p * b + (8 + b) * m + (1 + 3 * k) * m_pad * b
    return int(n_models) * per_model


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
    """Refuse, before anything is allocated, a path whose models cannot fit in memory."""
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


def scoring_name(scoring: Any) -> str:
    """How a message names ``scoring``: the string, or the callable's name."""
    if scoring is None or isinstance(scoring, str):
        return repr(scoring)
    return getattr(scoring, "__name__", None) or repr(scoring)


def call_scorer(scorer: Any, scoring: Any, model: Any, X: Any, y: np.ndarray,
                sample_weight: np.ndarray | None, where: str) -> float:
    """``scorer(model, X, y[, sample_weight=...])`` as a float; an error raised by the scorer,
    or a result that is not one real number, is a ValueError naming ``scoring`` and ``where``."""
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    try:
        score = np.asarray(scorer(model, X, y, **kwargs))
    except Exception as err:  # any scorer's failure: the user's code or a metric's check
        raise ValueError(
            f"scoring={scoring_name(scoring)} failed on {where}: {type(err).__name__}: {err}"
        ) from err
    if score.ndim != 0 or score.dtype.kind not in "biuf":
        raise ValueError(
            f"scoring={scoring_name(scoring)} must return one real number, got "
            f"{v.describe(score)} on {where}"
        )
    return float(score)


def check_scorer(scorer: Any, scoring: Any, classes: np.ndarray, X: Any, y: np.ndarray,
                 splits: list[tuple[np.ndarray, np.ndarray]],
                 sample_weight: np.ndarray | None) -> None:
    """Score every test fold once with the model of zero coefficients (where every fit starts),
    so that a scoring that cannot score these folds (e.g. ``"roc_auc"`` with 3 classes) fails
    before the fit, not after it. Warnings of the metric on that model are not shown."""
    k = classes.shape[0]
    n = X.shape[1]
    zero = Params(np.zeros(n) if k == 2 else np.zeros((n, k)), np.zeros(() if k == 2 else k))
    model = from_params(zero, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f, (_, test) in enumerate(splits):
            s = None if sample_weight is None else sample_weight[test]
            call_scorer(scorer, scoring, model, X[test], y[test], s,
                        f"cv fold {f}'s test rows (tried before fitting, on the model with zero "
                        "coefficients)")


def _warn_nan(scores: np.ndarray, Cs: np.ndarray, scoring: Any, nan: np.ndarray) -> None:
    """A UserWarning listing each C with NaN scores and the folds where they are NaN."""
    if not nan.any():
        return
    where = "; ".join(f"C={Cs[c]:g} on cv fold(s) {np.flatnonzero(nan[:, c]).tolist()}"
                      for c in np.flatnonzero(nan.any(axis=0)))
    warnings.warn(
        f"LogisticRegressionCV: scoring={scoring_name(scoring)} gave NaN scores for {where}; a "
        "NaN score counts as the worst, so those models are not chosen (scikit-learn would "
        "choose the first of them)",
        UserWarning, stacklevel=4,  # the caller of LogisticRegressionCV.fit
    )


def best_C(scores: np.ndarray, Cs: np.ndarray, scoring: Any) -> int:
    """The index of the C of the best score summed over folds (scores (F, C)), the first of
    equal ones; a C whose sum is NaN (a NaN score on some fold) is never chosen."""
    totals = scores.sum(axis=0)
    candidates = np.flatnonzero(~np.isnan(totals))
    if candidates.size == 0:
        raise ValueError(
            f"scoring={scoring_name(scoring)} gave a NaN score for every C (Cs={Cs.tolist()}) "
            "on some cv fold, so no C can be chosen; check the scorer, or the test folds (cv)"
        )
    _warn_nan(scores, Cs, scoring, np.isnan(scores))
    return int(candidates[np.argmax(totals[candidates])])


def best_C_per_fold(scores: np.ndarray, Cs: np.ndarray, scoring: Any) -> np.ndarray:
    """(F,) each fold's index of its best C, the first of equal ones, never a NaN score."""
    nan = np.isnan(scores)
    hopeless = np.flatnonzero(nan.all(axis=1))
    if hopeless.size:
        raise ValueError(
            f"scoring={scoring_name(scoring)} gave a NaN score for every C (Cs={Cs.tolist()}) "
            f"on cv fold(s) {hopeless.tolist()}, so those folds have no best C; check the "
            "scorer, or the test folds (cv)"
        )
    _warn_nan(scores, Cs, scoring, nan)
    ok = [np.flatnonzero(~row) for row in nan]  # the first best among the non-NaN scores
    return np.array([c[np.argmax(row[c])] for row, c in zip(scores, ok)], np.intp)


def best_mean_score(scores: np.ndarray) -> float:
    """The best mean over folds of a C's scores, NaN means left out (-inf when all are)."""
    means = scores.mean(axis=0)
    return float(np.max(means, where=~np.isnan(means), initial=-np.inf))
