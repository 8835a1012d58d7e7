"""What the estimators take in, checked once: X for ``fit`` and the predict methods, and the
labels and weights of ``fit``.

X's sparse indices are checked first (:func:`checked_if_sparse`), before scikit-learn converts
X or scipy multiplies it: native code trusts them. ``fit``'s labels become the sorted
``classes`` and each row's class index; ``sample_weight`` (a scalar weighs every row alike)
times ``class_weight`` (keyed by label) gives the row weights ``s_i`` of the checked
:class:`~jaxlogreg.training.problem.Problem`. A classifier needs at least 2 classes, 2 of them
with positive weight.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from jaxlogreg.core import checks as v
from jaxlogreg.core.sparse import as_csr, check_sparse, is_sparse
from jaxlogreg.training.problem import Problem, validate

SPARSE_FORMATS = ("csr", "csc")  # other scipy formats become CSR (rows can be indexed)


class FitData(NamedTuple):
    """What ``fit`` works on: y (m,) as given, the sorted ``classes``, ``y_idx`` (m,) the class
    index of each row, ``sample_weight`` (m,) as given (or None), and the checked
    :class:`~jaxlogreg.training.problem.Problem` (X, the class indices and the weights of each
    row, ``sample_weight`` times ``class_weight``)."""

    y: np.ndarray
    classes: np.ndarray
    y_idx: np.ndarray
    sample_weight: np.ndarray | None
    problem: Problem


def validated_X(estimator: Any, X: Any, y: Any = "no_validation", **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (of X, and y when given) for ``estimator``, after the
    sparse check: CSR or CSC, float64 or float32 (other dtypes become float64)."""
    return validate_data(estimator, checked_if_sparse(X), y, accept_sparse=SPARSE_FORMATS,
                         dtype=[np.float64, np.float32], **kwargs)


def fit_data(estimator: Any, X: Any, y: Any, sample_weight: Any, dtype: str | None) -> FitData:
    """The data of ``estimator.fit``, checked once: scikit-learn's checks of X and the labels,
    then :func:`jaxlogreg.training.problem.validate` (weights, class indices); at least 2
    classes, 2 of them with positive weight. Errors name the estimator's class."""
    name = type(estimator).__name__
    # NaN and inf are refused by the fit's own data path, which checks X while it lays it out
    X, y = validated_X(estimator, X, y, ensure_all_finite=False)
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(
            f"{name} needs samples of at least 2 classes in the data, but the data "
            f"contains only one class: {v.show(classes[0])}"
        )
    sw = sample_weight_of(sample_weight, X.shape[0])
    problem = validate(X, y_idx, sample_weight=sw,
                       class_weight=class_weight_by_index(estimator.class_weight, classes),
                       n_classes=classes.shape[0], dtype=dtype)
    weights = problem.weights
    weighted_classes = np.flatnonzero(np.bincount(  # O(m), no sort
        y_idx if weights is None else y_idx[weights > 0], minlength=classes.shape[0]))
    if weighted_classes.shape[0] < 2:
        raise ValueError(
            f"{name} needs at least 2 classes with positive sample_weight, got only class "
            f"{v.show(classes[weighted_classes[0]])} (after class_weight)"
        )
    return FitData(y, classes, y_idx, sw, problem)


def sample_weight_of(sample_weight: Any, m: int) -> Any:
    """``sample_weight`` as given; a scalar weighs every sample alike, as in scikit-learn
    (checked with the rest, by ``validate``)."""
    if sample_weight is None:
        return None
    sw = v.as_array(sample_weight, "sample_weight")
    return np.full(m, float(sw)) if sw.ndim == 0 else np.asarray(sw, np.float64)


def class_weight_by_index(class_weight: Any, classes: np.ndarray) -> Any:
    """``class_weight`` keyed by class index (a dict's keys are labels); other values as given."""
    if not isinstance(class_weight, dict):
        return class_weight
    unknown = [key for key in class_weight if key not in set(classes.tolist())]
    if unknown:
        raise ValueError(
            f"class_weight keys must be class labels {classes.tolist()}, got unknown key(s) "
            f"{unknown}"
        )
    per_class = compute_class_weight(class_weight, classes=classes, y=classes)
    return dict(enumerate(per_class.tolist()))


def checked_if_sparse(X: Any) -> Any:
    """A sparse X with its indices checked before scikit-learn converts it or scipy multiplies
    it (native code that trusts them); a JAX sparse matrix (BCOO, BCSR) as a scipy CSR array;
    anything else unchanged."""
    if sp.issparse(X):
        return check_sparse(X)
    return as_csr(X) if is_sparse(X) else X
