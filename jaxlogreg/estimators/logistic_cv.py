"""``LogisticRegressionCV``: the inverse regularization strength C chosen by cross-validation.

Every (fold, C) model is fitted in one compiled program (:func:`jaxlogreg.training.path.fit_path`),
then scored on its fold's held-out rows on the host. The choice of C, the fitted attributes and
their shapes follow ``sklearn.linear_model.LogisticRegressionCV`` (its legacy attributes): the
same folds and scoring give the same ``C_``. With an L1 part (``penalty="l1"``, or
``"elasticnet"`` and ``l1_ratios``) each (fold, l1_ratio) is a path along C with warm starts
(:mod:`jaxlogreg.training.path_l1`) and the attributes gain scikit-learn's ``l1_ratios`` axis.

Everything that can be wrong with the settings, the data or the folds is reported, with the name
of the parameter, before anything is compiled or run on the device.
"""

from __future__ import annotations

import sys
import warnings
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.estimators.cv_folds import check_path_memory, checked_splits, train_masks
from jaxlogreg.estimators.cv_gradient import gradient_search
from jaxlogreg.estimators.cv_scoring import (
    best_C,
    best_C_per_fold,
    best_grid_point,
    best_mean_score,
    check_scorer,
    fold_scores,
    scorer_of,
    with_labels,
)
from jaxlogreg.estimators.inputs import fit_data
from jaxlogreg.estimators.logistic import (
    _CONFIG_FIELDS,
    DivergenceError,
    LogisticRegression,
    from_params,
)
from jaxlogreg.training.path import check_Cs, path_of
from jaxlogreg.training.path_l1 import check_l1_ratios, check_n_jobs, fit_point, l1_path_of
from jaxlogreg.training.settings import MAX_ITER_LIMIT, TrainConfig

MAX_GRID = 10**7  # an int Cs above this is refused before its grid is made (80 MB)


class LogisticRegressionCV(LogisticRegression):
    """Logistic (two classes) or softmax (K > 2 classes) regression with C chosen by
    cross-validation, trained with JAX.

    For each candidate ``C`` in ``Cs`` and each fold ``f`` the model minimises, on the fold's
    training rows, the objective of :class:`~jaxlogreg.LogisticRegression`::

        J_fC(W, b) = Σ_{i ∈ train_f} s_i L_i / Σ_{i ∈ train_f} s_i + λ/2 ||W||²,
        λ = 1 / (C Σ_{i ∈ train_f} s_i)

    (``s_i``: ``sample_weight`` times the class weight; the intercept is not penalised; ``C =
    inf``: no penalty), scikit-learn's ``C Σ s_i L_i + ½ ||W||²``. All ``n_folds × n_Cs``
    models are fitted together in one compiled program (batched L-BFGS).
    Each is scored on its fold's held-out rows with ``scoring``; ``C_`` is the C of the best
    score summed over folds (the first such C in the order of ``Cs`` when several tie; never a
    C with a NaN score, which scikit-learn would choose: a warning names it), and the final
    model is refitted on all rows at ``C_`` (``refit=True``) or is the mean over folds of each
    fold's best model (``refit=False``), as in ``sklearn.linear_model.LogisticRegressionCV``.
    With ``refit=True`` the models of every C on all rows join the same program (all rows as
    one more fold): the refit shares each pass over X.

    Parameters
    ----------
    Cs : int or list of float, default=10
        The candidate C values: an int ``k`` gives ``np.logspace(-4, 4, k)`` (scikit-learn's
        grid); a list gives the values themselves, each > 0 (``np.inf``: no penalty).
    penalty : {"l2", "l1", "elasticnet"}, default="l2"
        ``λ/2 ||W||²``, ``λ ||W||₁``, or ``λ (r ||W||₁ + (1 - r)/2 ||W||²)`` for each r of
        ``l1_ratios`` (scikit-learn's ``C Σ s_i L_i + r ||W||₁ + (1 - r)/2 ||W||²``). With an L1
        part, models stop at the relative duality gap ``tol`` (the working-set solvers, ``max_iter``
        their rounds; softmax without the C library: "proximal"); ``search`` must be "grid".
    l1_ratios : list of float in [0, 1] or None, default=None
        The candidate r; only with ``penalty="elasticnet"``, where it is required.
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
        with zero coefficients before fitting: one that cannot score the folds (``"roc_auc"``
        with 3 classes) fails first, naming ``scoring``.
    tol : float, default=1e-4
        Each model stops when ``max |∇J| <= tol`` (or when J no longer decreases).
    max_iter : int, default=100
        Accepted L-BFGS steps per model, at most (1 to 100000).
    class_weight : dict, "balanced" or None, default=None
        Weights per class label, multiplied into ``sample_weight``; "balanced" is computed once
        on all rows (scikit-learn's rule) and used in every fold and in the refit.
    n_jobs : int or None, default=None
        L1 / elastic-net folds fitted at a time, in threads (None: 1, -1: every CPU).
    refit : bool, default=True
        Refit on all rows at ``C_`` (True), or average the folds' best models (False).
    dtype : {"float32", "float64"} or None, default=None
        Precision of training and of ``coef_``; None: float32 for float32 X, else float64.
    grad : {"manual", "autodiff"}, default="manual"
        The hand-written gradient (``dz = a - y``) or ``jax.grad``.
    search : {"grid", "gradient"}, default="grid"
        "grid": every C of ``Cs``. "gradient": L-BFGS steps on log C that minimise the
        cross-validated log-loss (whatever ``scoring``), each step one Newton solve per fold
        differentiated implicitly (:func:`jaxlogreg.tune_penalty`), from the geometric mean of
        the smallest and largest of ``Cs`` (1.0 for an int); ``Cs_``, ``scores_``,
        ``coefs_paths_`` and ``n_iter_`` (Newton steps) then hold the Cs it evaluated, in
        order. Needs a dense X; ``grad`` and ``tol`` are not used.
    verbose : int, default=0
        1 or more prints a one-line summary of the fit on stderr.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    Cs_ : ndarray of shape (n_Cs,)
        The candidate C values (float64).
    l1_ratios_ : ndarray of shape (n_l1_ratios,)
        ``l1_ratios``; ``[None]`` (object) for "l1" and "l2", as in scikit-learn.
    l1_ratio_ : ndarray of the shape of ``C_``
        The chosen r ([None] for "l1" and "l2" with ``refit``, [0.0] without: scikit-learn's).
    C_ : ndarray of shape (1,) (two classes) or (n_classes,)
        The chosen C, repeated for each class (scikit-learn's legacy layout). With
        ``refit=False``, the mean over folds of each fold's best C.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    scores_ : dict
        ``{class: ndarray (n_folds, n_Cs)}``, the held-out score of every model: for two
        classes the only key is ``classes_[1]``; for more, every class maps to the same array.
        "elasticnet": (n_folds, n_Cs, n_l1_ratios), and so in ``coefs_paths_`` and ``n_iter_``.
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
        penalty: str = "l2",
        l1_ratios: Any = None,
        fit_intercept: bool = True,
        cv: Any = None,
        scoring: Any = None,
        tol: float = 1e-4,
        max_iter: int = 100,
        class_weight: dict | str | None = None,
        n_jobs: int | None = None,
        refit: bool = True,
        dtype: str | None = None,
        grad: str = "manual",
        search: str = "grid",
        verbose: int = 0,
    ) -> None:
        self.Cs = Cs
        self.penalty = penalty
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.refit = refit
        self.dtype = dtype
        self.grad = grad
        self.search = search
        self.verbose = verbose

    def _config(self) -> TrainConfig:
        """The shared settings, checked by TrainConfig (the penalty grid is checked apart)."""
        return TrainConfig(**{key: value for key, value in self.get_params(deep=False).items()
                              if key in _CONFIG_FIELDS and key != "penalty"})

    def _check_params(self) -> tuple[np.ndarray, np.ndarray | None, TrainConfig, Any]:
        """The candidate Cs and l1_ratios (None: L2), the shared settings and the scorer."""
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
        v.check_choice(self.search, "search", ("grid", "gradient"))
        check_n_jobs(self.n_jobs)
        ratios = check_l1_ratios(self.penalty, self.l1_ratios)
        if ratios is not None and self.search != "grid":
            raise ValueError(f"search must be 'grid' with penalty={self.penalty!r}, got "
                             f"{self.search!r} (the gradient search tunes an L2 penalty)")
        config = self._config()
        if not isinstance(self.refit, bool) and type(self.refit).__name__ != "bool_":
            raise ValueError(f"refit must be True or False, got {v.show(self.refit)}")
        return Cs, ratios, config, scorer_of(self.scoring)

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
        Cs, ratios, config, scorer = self._check_params()
        data = fit_data(self, X, y, sample_weight, self.dtype)
        problem, classes, refit = data.problem, data.classes, bool(self.refit)
        splits = checked_splits(self.cv, data)
        scorer = with_labels(scorer, classes)
        F = len(splits)
        if ratios is not None:
            check_scorer(scorer, self.scoring, data, splits)
            return self._fit_l1(data, splits, scorer, Cs, ratios, config)
        if self.search == "grid":
            check_path_memory(Cs.shape[0], F, refit, problem.X, classes.shape[0], problem.dtype)
        check_scorer(scorer, self.scoring, data, splits)
        if self.search == "gradient":
            found = gradient_search(problem, splits, Cs, fit_intercept=config.fit_intercept,
                                    max_iter=config.max_iter, refit=refit)
            scores = fold_scores(scorer, self.scoring, data, splits, found.path.params, found.Cs)
            self._set_fitted(classes, found.Cs, found.C, found.final, found.loss, scores,
                             *found.path.params, found.path.n_iter, config.fit_intercept,
                             ratio=None if refit else 0.0)
            if config.verbose:
                print(f"LogisticRegressionCV: gradient search, {F} folds x {found.Cs.shape[0]} "
                      f"Cs evaluated, C_={found.C:g}", file=sys.stderr)
            return self
        # Every (fold, C) model in one program; with refit, all rows are one more fold, whose
        # model at C_ is the refit (no second program to compile or run)
        path = path_of(problem, Cs, folds=train_masks(splits, problem.X.shape[0], refit),
                       fit_intercept=config.fit_intercept, tol=config.tol,
                       max_iter=config.max_iter, grad=config.grad)
        W, B = path.params
        _check_finite(W[:F], B[:F], "cross-validation")
        scores = fold_scores(scorer, self.scoring, data, splits, Params(W[:F], B[:F]), Cs)
        unconverged = int(np.sum(~path.converged[:F]))
        loss = None  # J of the refitted model
        if refit:
            best = best_C(scores, Cs, self.scoring)  # scikit-learn: first best of the sum
            C_best, final = float(Cs[best]), Params(W[F, best], B[F, best])
            _check_finite(*final, "refit")
            loss = float(path.loss[F, best])
            unconverged += int(not path.converged[F, best])
        else:  # scikit-learn: each fold's best model, averaged; C_ the mean of their Cs
            best_per_fold = best_C_per_fold(scores, Cs, self.scoring)  # (F,)
            C_best = float(np.mean(Cs[best_per_fold]))
            chosen = (np.arange(F), best_per_fold)
            final = Params(W[chosen].mean(axis=0).astype(W.dtype),
                           B[chosen].mean(axis=0).astype(B.dtype))
        self._set_fitted(classes, Cs, C_best, final, loss, scores, W[:F], B[:F], path.n_iter[:F],
                         config.fit_intercept, ratio=None if refit else 0.0)
        if config.verbose:
            print(
                f"LogisticRegressionCV: {F} folds x {Cs.shape[0]} Cs in one program, "
                f"C_={C_best:g}, mean score {best_mean_score(scores):.6g}"
                + (f", refit loss {self.loss_:.6g}" if refit else ""),
                file=sys.stderr,
            )
        _warn_unconverged(unconverged, F * Cs.shape[0] + refit, config)
        return self

    def _fit_l1(self, data: Any, splits: list, scorer: Any, Cs: np.ndarray, ratios: np.ndarray,
                config: TrainConfig) -> LogisticRegressionCV:
        """The L1 / elastic-net grid: a warm-started C path per (fold, l1_ratio); the refit
        starts from the folds' mean at the chosen point, as scikit-learn's."""
        problem, F, (C, R) = data.problem, len(splits), (Cs.shape[0], ratios.shape[0])
        options = {"fit_intercept": config.fit_intercept, "tol": config.tol,
                   "max_iter": config.max_iter, "grad": config.grad}
        path = l1_path_of(problem, Cs, ratios, train_masks(splits, problem.X.shape[0], False),
                          verbose=config.verbose, n_jobs=self.n_jobs, **options)
        W, B = path.params
        _check_finite(W, B, "cross-validation")
        scores = np.stack([fold_scores(scorer, self.scoring, data, splits,
                                       Params(W[:, :, r], B[:, :, r]), Cs) for r in range(R)], -1)
        unconverged, loss = int(np.sum(~path.converged)), None
        elastic = self.penalty == "elasticnet"
        c, r = best_grid_point(scores, Cs, self.scoring, bool(self.refit))
        if self.refit:
            C_best, ratio = float(Cs[c]), float(ratios[r]) if elastic else None
            start = Params(W[:, c, r].mean(axis=0), B[:, c, r].mean(axis=0))
            final, loss, _, converged = fit_point(problem, C_best, ratios[r], start, **options)
            _check_finite(*final, "refit")
            unconverged += int(not converged)
        else:
            C_best, ratio = float(np.mean(Cs[c])), float(np.mean(ratios[r])) if elastic else 0.0
            final = Params(W[np.arange(F), c, r].mean(axis=0).astype(W.dtype),
                           B[np.arange(F), c, r].mean(axis=0).astype(B.dtype))
        squeeze = (lambda a: a) if elastic else (lambda a: a[:, :, 0])
        n_iter = np.maximum(path.n_iter, 1)  # a model set at w = 0 or certified at its start
        self._set_fitted(data.classes, Cs, C_best, final, loss, squeeze(scores), squeeze(W),
                         squeeze(B), squeeze(n_iter), config.fit_intercept,
                         ratios if elastic else None, ratio)
        _warn_unconverged(unconverged, F * C * R + self.refit, config, stacklevel=4)
        return self

    def _set_fitted(self, classes: np.ndarray, Cs: np.ndarray, C_best: float, final: Params,
                    loss: float | None, scores: np.ndarray, W: np.ndarray, B: np.ndarray,
                    n_iter: np.ndarray, fit_intercept: bool, ratios: np.ndarray | None = None,
                    ratio: float | None = None) -> None:
        """The fitted attributes, in scikit-learn's legacy layout: per-class dicts (for two
        classes only ``classes[1]``) and ``C_``, ``l1_ratio_`` repeated for each; ``loss_``
        only with a refit (``loss`` not None). W, B, n_iter, scores: [fold, C(, l1_ratio)]."""
        K = classes.shape[0]
        keys = classes[1:] if K == 2 else classes  # scikit-learn's: only classes_[1] for two
        paths = _coefs_paths(W, B, fit_intercept, K == 2)  # (K or 1, F, C(, R), n (+1))
        fitted = from_params(final, classes)
        self.classes_, self.Cs_ = classes, Cs
        self.C_ = np.full(1 if K == 2 else K, C_best)
        self.l1_ratios_ = np.array([None]) if ratios is None else ratios
        self.l1_ratio_ = np.full(1 if K == 2 else K, ratio)
        self.coef_, self.intercept_ = fitted.coef_, fitted.intercept_
        self.scores_ = {key: scores.copy() for key in keys}
        self.coefs_paths_ = {key: paths[j] for j, key in enumerate(keys)}
        self.n_iter_ = n_iter.astype(np.int32)[None]
        if loss is not None:
            self.loss_ = loss
        elif hasattr(self, "loss_"):
            del self.loss_  # no refitted model

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """``scoring`` of the fitted model on X and y (None: accuracy), weighted by
        ``sample_weight``: the score C was chosen by (scikit-learn's ``score``)."""
        check_is_fitted(self)
        scorer = with_labels(scorer_of(self.scoring), self.classes_)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return float(scorer(self, X, y, **kwargs))


def _coefs_paths(W: np.ndarray, B: np.ndarray, fit_intercept: bool, binary: bool) -> np.ndarray:
    """(1 or K, F, C(, R), n (+1)): each class's coefficients with its intercept last."""
    if binary:  # (F, C(, R), n), (F, C(, R))
        W, B = W[..., None], B[..., None]
    W = np.moveaxis(W, -1, 0)  # (K, F, C, n)
    return np.concatenate([W, np.moveaxis(B, -1, 0)[..., None]], axis=-1) if fit_intercept else W


def _check_finite(w: np.ndarray, b: np.ndarray, what: str) -> None:
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise DivergenceError(
            f"LogisticRegressionCV: the {what} models have NaN or inf coefficients; scale the "
            "features (standardize X)"
        )


def _warn_unconverged(unconverged: int, total: int, config: TrainConfig, stacklevel: int = 3
                      ) -> None:
    """A ConvergenceWarning, at the caller of ``fit``, when some models missed ``tol``."""
    if unconverged and config.tol > 0:
        warnings.warn(
            f"LogisticRegressionCV: {unconverged} of {total} models did not converge in "
            f"max_iter={config.max_iter} iterations (tol={config.tol:g}); increase max_iter, "
            "or scale the features, or remove the largest Cs",
            ConvergenceWarning, stacklevel=stacklevel,
        )
