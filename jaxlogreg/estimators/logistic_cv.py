"""``LogisticRegressionCV``: the inverse regularization strength C chosen by cross-validation.

Every (fold, C) model is fitted in one compiled program (:func:`jaxlogreg.training.path.fit_path`),
then scored on its fold's held-out rows on the host. The choice of C, the fitted attributes and
their shapes follow ``sklearn.linear_model.LogisticRegressionCV`` (its legacy attributes, without
the ``l1_ratios`` axis): the same folds and scoring give the same ``C_``.

Everything that can be wrong with the settings, the data or the folds is reported, with the name
of the parameter, before anything is compiled or run on the device.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from numbers import Integral
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer, get_scorer_names, make_scorer
from sklearn.model_selection import StratifiedKFold, check_cv
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.estimators.cv_checks import (
    best_C,
    best_C_per_fold,
    best_mean_score,
    call_scorer,
    check_path_memory,
    check_scorer,
)
from jaxlogreg.estimators.logistic import DivergenceError, LogisticRegression, from_params
from jaxlogreg.training.path import check_Cs, path_of
from jaxlogreg.training.settings import MAX_ITER_LIMIT, TrainConfig

DEFAULT_FOLDS = 5
MAX_GRID = 10**7  # an int Cs above this is refused before its grid is made (80 MB); fewer
# can still be too many for the memory, which the check before fitting tells
_CV_HINT = "an integer >= 2, a cross-validation splitter or an iterable of (train, test) splits"


class LogisticRegressionCV(LogisticRegression):
    """Logistic (two classes) or softmax (K > 2 classes) regression with C chosen by
    cross-validation, trained with JAX.

    For each candidate ``C`` in ``Cs`` and each fold ``f`` the model minimises, on the fold's
    training rows, the objective of :class:`~jaxlogreg.LogisticRegression`::

        J_fC(W, b) = Σ_{i ∈ train_f} s_i L_i / Σ_{i ∈ train_f} s_i + λ/2 ||W||²,
        λ = 1 / (C Σ_{i ∈ train_f} s_i)

    (``s_i``: ``sample_weight`` times the class weight; the intercept is not penalised;
    ``C = inf`` means no penalty), i.e. scikit-learn's ``C Σ s_i L_i + ½ ||W||²``. All
    ``n_folds × n_Cs`` models are fitted together in one compiled program (batched L-BFGS). Each is scored on its
    fold's held-out rows with ``scoring``; ``C_`` is the C of the best score summed over folds
    (the first such C in the order of ``Cs`` when several tie; never a C with a NaN score,
    which scikit-learn would choose: a warning names it), and the final model is refitted
    on all rows at ``C_`` (``refit=True``) or is the mean over folds of each fold's best model
    (``refit=False``), as in ``sklearn.linear_model.LogisticRegressionCV``. With ``refit=True``
    the models of every C on all rows join the same program (all rows as one more fold), so the
    refit needs no second program: the extra models share each pass over X.

    Parameters
    ----------
    Cs : int or list of float, default=10
        The candidate C values: an int ``k`` gives ``np.logspace(-4, 4, k)`` (scikit-learn's
        grid); a list gives the values themselves, each > 0 (``np.inf``: no penalty).
    fit_intercept : bool, default=True
        Learn the intercept ``b``; when False, ``b`` stays 0.
    cv : int, cross-validation splitter, iterable or None, default=None
        None: 5 folds; an int: that many :class:`~sklearn.model_selection.StratifiedKFold`
        folds (it may not exceed the smallest class's count); or any scikit-learn splitter, or
        an iterable of ``(train, test)`` index arrays. Every fold's training rows must hold at
        least 2 classes and its test rows at least one row.
    scoring : str, callable or None, default=None
        None: accuracy (weighted by ``sample_weight``); the name of a scikit-learn scorer
        (e.g. ``"neg_log_loss"``, ``"roc_auc"``, see :func:`sklearn.metrics.get_scorer`); or a
        callable ``scorer(estimator, X, y)``. Greater is better. ``sample_weight`` of the test
        rows is passed to the scorer when given, as scikit-learn does (each test fold needs a
        row of positive weight). A named scorer (or a scorer object) is tried on every test fold
        with the model of zero coefficients before fitting, so one that cannot score the folds
        (e.g. ``"roc_auc"`` with 3 classes) fails first, naming ``scoring``.
    tol : float, default=1e-4
        Each model stops when ``max |∇J| <= tol`` (or when J no longer decreases).
    max_iter : int, default=100
        Accepted L-BFGS steps per model, at most (1 to 100000).
    class_weight : dict, "balanced" or None, default=None
        Weights per class label, multiplied into ``sample_weight``; "balanced" is computed once
        on all rows (scikit-learn's rule) and used in every fold and in the refit.
    refit : bool, default=True
        Refit on all rows at ``C_`` (True), or average the folds' best models (False).
    dtype : {"float32", "float64"} or None, default=None
        Precision of training and of ``coef_``; None: float32 for float32 X, else float64.
    grad : {"manual", "autodiff"}, default="manual"
        The hand-written gradient (``dz = a - y``) or ``jax.grad``.
    verbose : int, default=0
        1 or more prints a one-line summary of the fit on stderr.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    Cs_ : ndarray of shape (n_Cs,)
        The candidate C values (float64).
    C_ : ndarray of shape (1,) (two classes) or (n_classes,)
        The chosen C, repeated for each class (scikit-learn's legacy layout). With
        ``refit=False``, the mean over folds of each fold's best C.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    scores_ : dict
        ``{class: ndarray (n_folds, n_Cs)}``, the held-out score of every model: for two
        classes the only key is ``classes_[1]``; for more, every class maps to the same array.
    coefs_paths_ : dict
        ``{class: ndarray (n_folds, n_Cs, n_features (+1 with an intercept))}``, the
        coefficients of every model (intercept last): for two classes the only key is
        ``classes_[1]``; for more, each class's own coefficients.
    n_iter_ : ndarray of shape (1, n_folds, n_Cs)
        L-BFGS steps of every cross-validation model.
    loss_ : float
        J of the refitted model on all rows; only with ``refit=True``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names (a pandas DataFrame).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from jaxlogreg.estimators.logistic_cv import LogisticRegressionCV
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = LogisticRegressionCV(Cs=[0.01, 1.0, 100.0], cv=5).fit(X, y)
    >>> clf.C_.tolist()
    [100.0, 100.0, 100.0]
    >>> clf.scores_[0].shape, clf.coefs_paths_[0].shape, clf.coef_.shape
    ((5, 3), (5, 3, 5), (3, 4))
    >>> clf.predict(X[:2]).tolist()
    [0, 0]
    """

    def __init__(
        self,
        Cs: int | Any = 10,
        *,
        fit_intercept: bool = True,
        cv: Any = None,
        scoring: Any = None,
        tol: float = 1e-4,
        max_iter: int = 100,
        class_weight: dict | str | None = None,
        refit: bool = True,
        dtype: str | None = None,
        grad: str = "manual",
        verbose: int = 0,
    ) -> None:
        self.Cs = Cs
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.refit = refit
        self.dtype = dtype
        self.grad = grad
        self.verbose = verbose

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> tuple[np.ndarray, TrainConfig, Any]:
        """The candidate Cs, the shared settings (checked by TrainConfig) and the scorer."""
        Cs = self.Cs
        is_int = isinstance(Cs, Integral) and not isinstance(Cs, bool)
        if isinstance(Cs, bool | str) or (is_int and not 1 <= Cs <= MAX_GRID):
            raise ValueError(
                f"Cs must be an integer >= 1 and <= {MAX_GRID} (the number of values in "
                f"np.logspace(-4, 4, Cs)) or a non-empty list of numbers > 0, got {v.show(Cs)}"
            )
        Cs = check_Cs(np.logspace(-4, 4, int(Cs)) if is_int else Cs)
        # first: the path needs max_iter >= 1 (TrainConfig's message would say >= 0)
        v.check_int_at_least(self.max_iter, "max_iter", 1, MAX_ITER_LIMIT)
        config = TrainConfig(
            fit_intercept=self.fit_intercept, tol=self.tol, max_iter=self.max_iter,
            dtype=self.dtype, class_weight=self.class_weight, verbose=self.verbose,
            grad=self.grad,
        )
        if not isinstance(self.refit, bool) and type(self.refit).__name__ != "bool_":
            raise ValueError(f"refit must be True or False, got {v.show(self.refit)}")
        return Cs, config, _scorer(self.scoring)

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegressionCV:
        """Cross-validate every C, choose ``C_`` and fit the final model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels of any type (at least 2 classes).
        sample_weight : array-like of shape (n_samples,) or None
            Weights of the rows in training and, for the test rows, in scoring.

        Returns
        -------
        self
        """
        Cs, config, scorer = self._check_params()
        y, classes, y_idx, sw, problem = self._validate_fit_data(X, y, sample_weight, self.dtype)
        X = problem.X
        m, K = X.shape[0], classes.shape[0]
        weights = np.ones(m) if problem.weights is None else problem.weights
        splits = _splits(self.cv, X, y, y_idx, weights, classes, sw)
        scorer = _with_labels(scorer, classes)
        check_path_memory(Cs.shape[0], len(splits), bool(self.refit), X, K, problem.dtype)
        batched = _BATCHED_SCORES.get(self.scoring) if not callable(self.scoring) else None
        if batched is None and (isinstance(self.scoring, str) or hasattr(scorer, "_score_func")):
            check_scorer(scorer, self.scoring, classes, X, y, splits, sw)  # a plain callable is
            # called F x C times only, as in scikit-learn (it may count its calls)

        # Every (fold, C) model in one program. With refit, all rows are one more "fold": the
        # refit at C_ is then that fold's model at C_, with no second program to compile or
        # run (the extra models share each pass over X).
        F = len(splits)
        masks = np.zeros((F + bool(self.refit), m), bool)
        for f, (train, _) in enumerate(splits):
            masks[f, train] = True
        masks[F:] = True
        path = path_of(problem, Cs, folds=masks, fit_intercept=config.fit_intercept,
                       tol=config.tol, max_iter=config.max_iter, grad=config.grad)
        W, B = path.params
        _check_finite(W[:F], B[:F], "cross-validation")

        scores = np.empty((F, Cs.shape[0]))
        for f, (_, test) in enumerate(splits):
            X_test, y_test = X[test], y[test]
            s_test = None if sw is None else sw[test]
            if batched is not None:  # all Cs of the fold from one product
                scores[f] = batched(_logits(X_test, W[f], B[f]), y_idx[test], s_test)
                continue
            for c in range(Cs.shape[0]):
                model = from_params(Params(W[f, c], B[f, c]), classes)
                scores[f, c] = call_scorer(scorer, self.scoring, model, X_test, y_test, s_test,
                                           f"the model of cv fold {f} at C={Cs[c]:g}")
        unconverged = int(np.sum(~path.converged[:F]))

        if self.refit:
            best = best_C(scores, Cs, self.scoring)  # scikit-learn: first best of the sum
            C_best = float(Cs[best])
            w, b = W[F, best], B[F, best]
            _check_finite(w, b, "refit")
            unconverged += int(not path.converged[F, best])
        else:  # scikit-learn: each fold's best model, averaged; C_ the mean of their Cs
            best_per_fold = best_C_per_fold(scores, Cs, self.scoring)  # (F,)
            w = W[np.arange(F), best_per_fold].mean(axis=0).astype(W.dtype)
            b = B[np.arange(F), best_per_fold].mean(axis=0).astype(B.dtype)
            C_best = float(np.mean(Cs[best_per_fold]))

        keys = classes[1:] if K == 2 else classes
        paths = _coefs_paths(W[:F], B[:F], config.fit_intercept)  # (K or 1, F, C, n (+1))
        fitted = from_params(Params(w, b), classes)
        self.classes_ = classes
        self.Cs_ = Cs
        self.C_ = np.full(1 if K == 2 else K, C_best)
        self.coef_, self.intercept_ = fitted.coef_, fitted.intercept_
        self.scores_ = {key: scores.copy() for key in keys}
        self.coefs_paths_ = {key: paths[j] for j, key in enumerate(keys)}
        self.n_iter_ = path.n_iter[:F].astype(np.int32)[None]
        if self.refit:
            self.loss_ = float(path.loss[F, best])
        elif hasattr(self, "loss_"):
            del self.loss_  # no refitted model

        if config.verbose:
            print(
                f"LogisticRegressionCV: {F} folds x {Cs.shape[0]} Cs in one program, "
                f"C_={C_best:g}, mean score {best_mean_score(scores):.6g}"
                + (f", refit loss {self.loss_:.6g}" if self.refit else ""),
                file=sys.stderr,
            )
        if unconverged and config.tol > 0:
            total = F * Cs.shape[0] + bool(self.refit)
            warnings.warn(
                f"LogisticRegressionCV: {unconverged} of {total} models did not converge in "
                f"max_iter={config.max_iter} iterations (tol={config.tol:g}); increase max_iter, "
                "or scale the features, or remove the largest Cs",
                ConvergenceWarning, stacklevel=2,
            )
        return self

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """``scoring`` of the fitted model on X and y (None: accuracy), weighted by
        ``sample_weight``: the score C was chosen by, as in scikit-learn's
        ``LogisticRegressionCV.score``."""
        check_is_fitted(self)
        scorer = _with_labels(_scorer(self.scoring), self.classes_)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return float(scorer(self, X, y, **kwargs))


# ---------------------------------------------------------------------- helpers


def _scorer(scoring: Any) -> Any:
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
    """(C,) weighted share of rows whose predicted class (``z > 0``, or the first largest
    logit) is y: ``sklearn.metrics.accuracy_score`` of each model."""
    predicted = (z > 0).astype(np.intp) if z.ndim == 2 else np.argmax(z, axis=-1)
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


def _with_labels(scorer: Any, classes: np.ndarray) -> Any:
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


def _splits(
    cv: Any, X: np.ndarray, y: np.ndarray, y_idx: np.ndarray, weights: np.ndarray,
    classes: np.ndarray, sample_weight: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) row indices of every fold, checked: errors name ``cv`` (and
    ``sample_weight``, which weighs the test rows in scoring)."""
    m = X.shape[0]
    cv = DEFAULT_FOLDS if cv is None else cv
    n_splits = None
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be {_CV_HINT}, got {v.show(cv)}")
        n_splits = int(cv)
    elif isinstance(cv, StratifiedKFold):
        n_splits = cv.get_n_splits()
    elif isinstance(cv, bool | str | float) or cv is None:
        raise ValueError(f"cv must be {_CV_HINT}, got {v.show(cv)}")
    if n_splits is not None:  # stratified folds: every class in every test fold
        counts = np.bincount(y_idx, minlength=classes.shape[0])
        smallest = int(np.argmin(counts))
        if n_splits > counts[smallest]:
            raise ValueError(
                f"cv={n_splits} folds is more than the {counts[smallest]} sample(s) of class "
                f"{v.show(classes[smallest])}, the smallest class: some test folds would lack it "
                f"(scikit-learn only warns); use cv <= {counts[smallest]}"
            )
    try:
        splitter = check_cv(cv, y, classifier=True)
        splits = list(splitter.split(X, y))
    except (TypeError, ValueError) as err:
        raise ValueError(f"cv must be {_CV_HINT}; {v.show(cv)} failed: {err}") from None
    if not splits:
        raise ValueError(f"cv must give at least one (train, test) split, got none from {cv!r}")
    checked = []
    for f, split in enumerate(splits):
        try:
            train, test = (_indices(part, m) for part in split)
        except (TypeError, ValueError) as err:
            raise ValueError(f"cv fold {f}: {err}") from None
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


def _indices(part: Any, m: int) -> np.ndarray:
    """Row indices from an index array or a boolean mask of length m."""
    part = np.asarray(part)
    if part.dtype == bool:
        if part.shape != (m,):
            raise ValueError(f"a boolean mask must have shape ({m},), got {part.shape}")
        return np.flatnonzero(part)
    if part.ndim != 1 or (part.size and not np.issubdtype(part.dtype, np.integer)):
        raise ValueError(f"train and test must be 1-D arrays of row indices, got {part!r}")
    part = part.astype(np.intp)
    if part.size and (part.min() < 0 or part.max() >= m):
        raise ValueError(f"row indices must lie in [0, {m - 1}]")
    return part


def _coefs_paths(W: np.ndarray, B: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """(1 or K, F, C, n (+1)): each class's coefficients with its intercept last."""
    if W.ndim == 3:  # binary: (F, C, n), (F, C)
        W, B = W[..., None], B[..., None]
    W = np.moveaxis(W, -1, 0)  # (K, F, C, n)
    if not fit_intercept:
        return W
    return np.concatenate([W, np.moveaxis(B, -1, 0)[..., None]], axis=-1)


def _check_finite(w: np.ndarray, b: np.ndarray, what: str) -> None:
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise DivergenceError(
            f"LogisticRegressionCV: the {what} models have NaN or inf coefficients; scale the "
            "features (standardize X)"
        )
