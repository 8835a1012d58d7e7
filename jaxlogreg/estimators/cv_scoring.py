"""How :class:`~.logistic_cv.LogisticRegressionCV` scores its models and chooses C.

Each (fold f, C c) model is scored on fold f's held-out rows with ``scoring`` (greater is
better); ``C_`` is the C of the best score summed over folds, the first in the order of ``Cs``
when several tie, never one with a NaN score (scikit-learn's would be chosen: a warning names
it). Accuracy and log loss are computed for all Cs of a fold from one product ``X Wᵀ``; other
scorings are called per model, as in scikit-learn. A scoring that cannot score the folds fails
before anything is fitted (:func:`check_scorer`). Every error names ``scoring``.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import get_scorer, get_scorer_names, make_scorer
from sklearn.utils.extmath import safe_sparse_dot

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.estimators.cv_folds import Splits
from jaxlogreg.estimators.inputs import FitData
from jaxlogreg.estimators.layout import predicted_index
from jaxlogreg.estimators.logistic import from_params


def scorer_of(scoring: Any) -> Any:
    """The scorer for ``scoring`` (None: accuracy), checked before anything is fitted."""
    if scoring is None:
        return get_scorer("accuracy")
    if callable(scoring):
        return scoring
    if not isinstance(scoring, str) or scoring not in get_scorer_names():
        raise ValueError(
            "scoring must be None, a callable scorer(estimator, X, y) or the name of a "
            "scikit-learn scorer (e.g. 'accuracy', 'neg_log_loss', 'roc_auc'; see "
            f"sklearn.metrics.get_scorer_names()), got {v.show(scoring)}"
        )
    return get_scorer(scoring)


def with_labels(scorer: Any, classes: np.ndarray) -> Any:
    """A scorer whose metric takes ``labels`` gets all the classes (a test fold may lack some),
    and ``pos_label=classes[-1]`` for two classes: scikit-learn's ``_log_reg_scoring_path``."""
    func = getattr(scorer, "_score_func", None)
    if func is None:
        return scorer
    params = inspect.signature(func).parameters
    if "labels" not in params:
        return scorer
    pos_label = (
        {"pos_label": classes[-1]} if classes.shape[0] == 2 and "pos_label" in params else {}
    )
    return make_scorer(
        func,
        greater_is_better=scorer._sign == 1,
        response_method=scorer._response_method,
        labels=classes,
        **pos_label,
        **getattr(scorer, "_kwargs", {}),
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


def check_scorer(scorer: Any, scoring: Any, data: FitData, splits: Splits) -> None:
    """Score every test fold once with the model of zero coefficients (where every fit starts),
    so that a scoring that cannot score these folds (e.g. ``"roc_auc"`` with 3 classes) fails
    before the fit, not after it. Warnings of the metric on that model are not shown.

    Only named scorings and scorer objects are tried: the batched ones are computed here, and a
    plain callable is called ``n_folds x n_Cs`` times only, as in scikit-learn (it may count
    its calls)."""
    named = isinstance(scoring, str) or hasattr(scorer, "_score_func")
    if not named or _batched(scoring) is not None:
        return
    X, classes, k = data.problem.X, data.classes, data.classes.shape[0]
    n = X.shape[1]
    zero = Params(np.zeros(n) if k == 2 else np.zeros((n, k)), np.zeros(() if k == 2 else k))
    model = from_params(zero, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f, (_, test) in enumerate(splits):
            s = None if data.sample_weight is None else data.sample_weight[test]
            call_scorer(scorer, scoring, model, X[test], data.y[test], s,
                        f"cv fold {f}'s test rows (tried before fitting, on the model with zero "
                        "coefficients)")


def fold_scores(scorer: Any, scoring: Any, data: FitData, splits: Splits, params: Params,
                Cs: np.ndarray) -> np.ndarray:
    """(F, C) the score of every model on its fold's test rows; ``params`` (F, C, ...) in the
    layout of :class:`~jaxlogreg.training.path.PathResult`."""
    X, W, B, batched = data.problem.X, params.w, params.b, _batched(scoring)
    scores = np.empty((len(splits), Cs.shape[0]))
    for f, (_, test) in enumerate(splits):
        s_test = None if data.sample_weight is None else data.sample_weight[test]
        if batched is not None:  # all Cs of the fold from one product
            scores[f] = batched(_logits(X[test], W[f], B[f]), data.y_idx[test], s_test)
            continue
        for c in range(Cs.shape[0]):
            model = from_params(Params(W[f, c], B[f, c]), data.classes)
            scores[f, c] = call_scorer(scorer, scoring, model, X[test], data.y[test], s_test,
                                       f"the model of cv fold {f} at C={Cs[c]:g}")
    return scores


def _logits(X: np.ndarray, W: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``z = X wᵀ + b`` of every C's model at once, in X's dtype as ``decision_function``:
    (t, C) for two classes from W (C, n), B (C,); (t, C, K) for K classes from W (C, n, K),
    B (C, K)."""
    if W.ndim == 2:
        return safe_sparse_dot(X, W.T, dense_output=True) + B
    C, n, K = W.shape  # (t, n) @ (n, C·K): X may be sparse
    z = safe_sparse_dot(X, W.transpose(1, 0, 2).reshape(n, C * K), dense_output=True)
    return z.reshape(-1, C, K) + B


def _accuracy(z: np.ndarray, y: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    """(C,) weighted share of rows whose predicted class is y: ``accuracy_score`` of each
    model."""
    predicted = predicted_index(z, binary=z.ndim == 2)
    return np.average(predicted == y[:, None], axis=0, weights=s)


def _neg_log_loss(z: np.ndarray, y: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    """(C,) minus the weighted mean cross-entropy ``softplus(-(2y-1) z)`` or
    ``logsumexp(z) - z_y``, in float64 from the logits, each row's capped at ``-log eps``
    (eps of z's dtype): ``sklearn.metrics.log_loss`` of each model, which clips the
    probabilities to [eps, 1 - eps]."""
    eps = np.finfo(z.dtype).eps
    z = z.astype(np.float64)
    if z.ndim == 2:
        loss = np.logaddexp(0.0, -(2.0 * y[:, None] - 1.0) * z)
    else:
        loss = logsumexp(z, axis=-1) - np.take_along_axis(z, y[:, None, None], axis=-1)[..., 0]
    return -np.average(np.clip(loss, -np.log1p(-eps), -np.log(eps)), axis=0, weights=s)


# Scorings computed for all Cs of a fold at once (the others call the scorer per model).
_BATCHED_SCORES = {None: _accuracy, "accuracy": _accuracy, "neg_log_loss": _neg_log_loss}


def _batched(scoring: Any) -> Any:
    """The batched score of ``scoring`` (all Cs of a fold at once), or None."""
    return None if callable(scoring) else _BATCHED_SCORES.get(scoring)


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


def best_grid_point(scores: np.ndarray, Cs: np.ndarray, scoring: Any, refit: bool
                    ) -> tuple[Any, Any]:
    """The (C, l1_ratio) indices chosen on scores (F, C, R), as scikit-learn does: with
    ``refit``, the first best of the sum over folds in the order (C, l1_ratio) (two ints);
    without, each fold's best (two (F,) arrays). NaN scores as in :func:`best_C`."""
    F, C, R = scores.shape
    grid, labels = scores.reshape(F, C * R), np.repeat(Cs, R)
    best = best_C(grid, labels, scoring) if refit else best_C_per_fold(grid, labels, scoring)
    return np.unravel_index(best, (C, R))
