"""A scikit-learn estimator around :func:`jaxlogreg.fit`.

``LogisticRegression`` follows scikit-learn's contract (``fit`` returns ``self``, fitted
attributes end in ``_``, ``predict_proba`` columns follow ``classes_``) and minimises the same
objective as ``sklearn.linear_model.LogisticRegression`` (``C = np.inf``: no penalty)::

    C Σ_i s_i L_i + ½ ||W||²  (sklearn)  <=>  J = Σ_i s_i L_i / Σ_i s_i + λ/2 ||W||²  (jaxlogreg)

with ``λ = 1 / (C Σ_i s_i)`` (``s_i``: ``sample_weight`` times the class weight; the intercept
is not penalised). Training runs on the device (:mod:`jaxlogreg.training`); prediction is NumPy
on the host.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted

from jaxlogreg.core import checks as v
from jaxlogreg.core.model import Params
from jaxlogreg.estimators.inputs import (
    class_weight_by_index,
    fit_data,
    sample_weight_of,
    validated_X,
)
from jaxlogreg.estimators.layout import (
    checked_params,
    coef_and_intercept,
    params_of,
    per_class,
    predicted_index,
)
from jaxlogreg.stats.inference import Inference, inference
from jaxlogreg.training.pipeline import FitResult, fit_problem
from jaxlogreg.training.problem import relative_weights
from jaxlogreg.training.settings import TrainConfig
from jaxlogreg.training.stopping import STALL_WINDOW

_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(TrainConfig))


class DivergenceError(RuntimeError):
    """Training diverged: the objective became NaN or inf, grew far above its start, or ended
    above its start (usually: the learning rate is too large, or the features are badly scaled).

    The estimator keeps the last good parameters (or the start) as its fitted state.
    """


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic (two classes) or softmax (K > 2 classes) regression trained with JAX.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, as in scikit-learn: the penalty of the mean loss has
        strength ``λ = 1 / (C · Σ sample_weight)``. ``np.inf`` disables the penalty.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
        ``λ/2 ||W||²``, ``λ ||W||₁`` (exact zeros), or ``λ (r ||W||₁ + (1 - r)/2 ||W||²)`` with
        ``r = l1_ratio``; None: no penalty. L1 parts need "proximal", "working_set" or "gd".
    l1_ratio : float in [0, 1] or None, default=None
        r, the L1 share of the elastic-net penalty; only with ``penalty="elasticnet"``.
    fit_intercept : bool, default=True
        Learn the intercept ``b``; when False, ``b`` stays 0.
    solver : str, default="lbfgs"
        ``"lbfgs"`` (optax L-BFGS with line search; the fast choice for L2), ``"newton-cg"``
        (truncated Newton on Hessian-vector products; fewer passes over X: sparse X), ``"proximal"``
        (proximal gradient with Barzilai-Borwein steps; for L1 and elastic net), ``"working_set"``
        (L1 and elastic net to a certified duality gap, on the host: docs/sparse.md), ``"gd"`` (the
        course's ``w := w - α dw``; ISTA with L1), ``"sgd"`` (momentum 0.9), ``"adam"``,
        ``"adamw"``, or the name of any optax optimizer taking a learning rate.
    learning_rate : float or None, default=None
        α; None picks 0.1 for ``"gd"`` and 0.01 otherwise. Unused by ``"lbfgs"``,
        ``"newton-cg"`` and ``"proximal"``.
    max_iter : int, default=100
        Maximum number of iterations (epochs when ``batch_size`` is set), at most 10^7.
    tol : float, default=1e-4
        Stop when ``max |∇J| <= tol`` (full batch) or when the relative change of the epoch
        loss is ``<= tol`` (minibatches); L-BFGS also stops when the objective no longer
        decreases beyond float rounding. 0 always runs ``max_iter`` iterations. Binary L1:
        also the duality gap ``<= tol · J`` ("working_set": that alone; docs/stopping.md).
    tol_criterion : {"auto", "grad", "loss"}, default="auto"
        Which of the two rules ``tol`` applies to ("auto": "grad" for full batch, "loss" for
        minibatches).
    batch_size : int or None, default=None
        None for full-batch training, else shuffled minibatches of this size (capped at the
        number of samples).
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatch shuffling (None: a seed drawn from NumPy's global generator, as in
        scikit-learn). Full-batch training is deterministic and ignores it.
    dtype : {"float32", "float64"} or None, default=None
        Precision of training and of ``coef_``. None follows scikit-learn: float32 input
        gives a float32 model, anything else float64.
    x_dtype : {"bfloat16", "float32", "float64"} or None, default=None
        Storage dtype of X during training; "bfloat16" halves its memory (products
        accumulate in float32).
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into ``sample_weight`` (scikit-learn's meaning:
        "balanced" uses ``Σ s / (n_classes · Σ_{y_i = k} s_i)``, the weighted class counts).
    warm_start : bool, default=False
        Start from the previous ``coef_`` and ``intercept_`` (when the classes and the number
        of features are unchanged) instead of zeros.
    verbose : int, default=0
        1 draws a progress bar on stderr when stderr is a terminal; 2 also prints a one-line
        summary of the fit on stderr.
    grad : {"manual", "autodiff"}, default="manual"
        The hand-written gradient (``dz = a - y``) or ``jax.grad``.
    solver_params : dict or None, default=None
        Extra keyword arguments for the optax optimizer (e.g. ``{"momentum": 0.5}``); they
        override the built-in defaults.

    The parameters are exactly :class:`jaxlogreg.TrainConfig`'s fields and the ``[train]``
    keys of a config file, with the same defaults; they are checked by ``TrainConfig``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; columns of ``predict_proba`` follow this order.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights; one row for two classes (the weights of ``classes_[1]``).
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
        Iterations run (epochs with minibatches).
    loss_curve_ : ndarray of shape (n_recorded,)
        The objective J at each iteration (epoch mean with minibatches).
    loss_ : float
        J at the fitted parameters.
    fit_status_ : str
        "converged", "max_iter" (stopped by ``max_iter``) or "diverged".
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names (a pandas DataFrame).

    Raises
    ------
    DivergenceError
        From ``fit``, when training diverged (see :class:`DivergenceError`); the estimator then
        holds the last good parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from jaxlogreg.estimators.logistic import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression().fit(X, ["no", "no", "yes", "yes"])
    >>> clf.predict([[0.2], [2.8]]).tolist()
    ['no', 'yes']
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        penalty: str | None = "l2",
        l1_ratio: float | None = None,
        fit_intercept: bool = True,
        solver: str = "lbfgs",
        learning_rate: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-4,
        tol_criterion: str = "auto",
        batch_size: int | None = None,
        random_state: Any = None,
        dtype: str | None = None,
        x_dtype: str | None = None,
        class_weight: dict | str | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        grad: str = "manual",
        solver_params: dict | None = None,
    ) -> None:
        self.C = C
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.tol_criterion = tol_criterion
        self.batch_size = batch_size
        self.random_state = random_state
        self.dtype = dtype
        self.x_dtype = x_dtype
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.grad = grad
        self.solver_params = solver_params

    def _config(self) -> TrainConfig:
        """The parameters that are :class:`TrainConfig`'s fields, checked by it (a subclass's
        other parameters are its own to check); a RandomState becomes a seed drawn from it."""
        params = {key: value for key, value in self.get_params(deep=False).items()
                  if key in _CONFIG_FIELDS}
        seed = params.get("random_state")
        drawn = params.get("batch_size") is not None  # full batch: deterministic, no seed
        if drawn and not (seed is None or isinstance(seed, Integral)):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        params["random_state"] = seed if isinstance(seed, Integral) else None
        return TrainConfig(**params)

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model to X (n_samples, n_features) and labels y (n_samples,) of any type.

        Returns
        -------
        self
        """
        config = self._config()
        data = fit_data(self, X, y, sample_weight, config.dtype)
        classes, n = data.classes, data.problem.X.shape[1]
        result = fit_problem(data.problem, config.replace(class_weight=None),
                             init_params=self._warm_start_params(classes, n))
        self.classes_ = classes
        self.coef_, self.intercept_ = coef_and_intercept(result.params)
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
        self.loss_curve_ = np.asarray(result.loss_history)
        self.loss_ = float(result.loss)
        self.fit_status_ = result.status
        if self.verbose >= 2:
            print(
                f"LogisticRegression: solver={self.solver}, {result.n_iter} iterations, "
                f"{result.status}, loss {result.loss:.6g}",
                file=sys.stderr,
            )
        self._raise_or_warn(result, config)
        return self

    def _warm_start_params(self, classes: np.ndarray, n: int) -> Params | None:
        """The previous fit's parameters, when warm starting a compatible model."""
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        if self.coef_.shape[1] != n or not np.array_equal(self.classes_, classes):
            return None
        return to_params(self)

    def _raise_or_warn(self, result: FitResult, config: TrainConfig) -> None:
        if result.status == "diverged":
            alpha = config.resolved_learning_rate
            if config.solver_record.learning_rate is None:  # it chooses its steps
                what, hint = f"solver={self.solver!r}", "scale the features (standardize X)"
            else:
                what = f"solver={self.solver!r}, learning_rate={alpha:g}"
                hint = (f"lower learning_rate (e.g. learning_rate={alpha / 10:g}) or scale the "
                        "features (standardize X)")
            raise DivergenceError(
                f"LogisticRegression diverged after {result.n_iter} iterations with {what}: "
                "the objective became NaN or inf, or rose above its starting value; "
                f"{hint}. The estimator keeps the last good parameters (objective "
                f"{result.loss:.6g})."
            )
        if result.status == "max_iter" and (self.tol > 0 or self.max_iter == 0):
            warnings.warn(
                f"LogisticRegression (solver={self.solver!r}) did not converge in "
                f"max_iter={self.max_iter} iterations (tol={self.tol:g}); increase max_iter, "
                "or scale the features, or lower C",
                ConvergenceWarning,
                stacklevel=3,
            )
        if result.status == "stalled":
            warnings.warn(
                f"LogisticRegression (solver={self.solver!r}) stopped after {result.n_iter} "
                f"iterations without reaching tol={self.tol:g}: neither the objective nor its "
                f"gradient improved for {STALL_WINDOW} iterations (the precision of "
                f"dtype={result.params.w.dtype.name} may not allow tol; use dtype='float64' or "
                "a larger tol)",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ predict

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``z = X Wᵀ + b``: shape (n_samples,) for two classes (the score of
        ``classes_[1]``), (n_samples, n_classes) otherwise."""
        check_is_fitted(self)
        X = validated_X(self, X, reset=False)
        z = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``;
        for two classes ``[1 - a, a]`` with ``a = σ(z)``."""
        return per_class(self.decision_function(X), expit, softmax)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log`` of :meth:`predict_proba`, computed stably from the logits (``log σ(z)``,
        ``log_softmax(z)``), finite where the probabilities round to 0."""
        return per_class(self.decision_function(X), log_expit, log_softmax)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (``z > 0`` for two classes)."""
        z = self.decision_function(X)
        return self.classes_[predicted_index(z, binary=z.ndim == 1)]

    # ------------------------------------------------------------------ sparse coefficients

    def sparsify(self) -> LogisticRegression:
        """Store ``coef_`` as a scipy.sparse CSR matrix (after an L1 fit: mostly zeros), which
        makes ``decision_function`` cheaper on wide data. Returns self."""
        check_is_fitted(self)
        self.coef_ = sp.csr_matrix(self.coef_)
        return self

    def densify(self) -> LogisticRegression:
        """Store ``coef_`` as a dense array again (inverse of :meth:`sparsify`). Returns self."""
        check_is_fitted(self)
        if sp.issparse(self.coef_):
            self.coef_ = self.coef_.toarray()
        return self

    # ------------------------------------------------------------------ inference

    def inference(self, X: Any, y: Any, sample_weight: Any = None, cov_type: str = "nonrobust",
                  groups: Any = None, alpha: float = 0.05,
                  feature_names: Any = None) -> Inference:
        """Standard errors, z, p-values and intervals of the fitted parameters on the training
        data X, y (labels of ``classes_``), with this estimator's C, penalty and class weights
        (:func:`jaxlogreg.inference`; softmax in the reference-class form of ``classes_[0]``).
        Rows are named by ``feature_names`` (default ``feature_names_in_``, else x0, x1...)."""
        check_is_fitted(self)
        X = validated_X(self, X, reset=False)
        y = np.asarray(y)
        y_idx = np.searchsorted(self.classes_, y).clip(0, self.classes_.shape[0] - 1)
        unknown = y.shape != (X.shape[0],) or not np.array_equal(self.classes_[y_idx], y)
        if unknown:
            raise ValueError(f"y must hold {X.shape[0]} labels from classes_ "
                             f"{self.classes_.tolist()}, got {v.describe(y)}")
        weights, total = relative_weights(
            y_idx, sample_weight_of(sample_weight, X.shape[0]),
            class_weight_by_index(self.class_weight, self.classes_), self.classes_.shape[0])
        C = self.C_[0] if hasattr(self, "C_") else self.C  # LogisticRegressionCV: the chosen C
        return inference(
            to_params(self), X, y_idx, C=float(C), penalty=getattr(self, "penalty", "l2"),
            l1_ratio=getattr(self, "l1_ratio", None), fit_intercept=self.fit_intercept,
            cov_type=cov_type,
            groups=groups, alpha=alpha, classes=self.classes_,
            feature_names=(getattr(self, "feature_names_in_", None) if feature_names is None
                           else feature_names),
            sample_weight=None if weights is None else weights * (total / weights.sum()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags


def from_params(params: Params, classes: Any, **kwargs: Any) -> LogisticRegression:
    """A fitted :class:`LogisticRegression` from parameters in the training layout.

    Args:
      params: ``Params(w, b)``: binary ``w`` (n,), ``b`` (); or softmax ``w`` (n, K), ``b`` (K,)
        (what :func:`jaxlogreg.fit` returns and :func:`jaxlogreg.load_model`
        reads).
      classes: the K labels, in column order.
      kwargs: hyper-parameters of the estimator (used only if it is fitted again).

    Raises ValueError when the parameters are not finite or their shapes do not match (a model
    with NaN weights would predict ``classes[0]`` for every row without a word).

    Examples:
      >>> import numpy as np
      >>> from jaxlogreg import Params
      >>> clf = from_params(Params(w=np.array([2.0]), b=np.array(-1.0)), ["no", "yes"])
      >>> clf.predict([[0.0], [1.0]]).tolist()
      ['no', 'yes']
    """
    w, b = checked_params(params)
    classes = np.asarray(classes)
    k = 2 if w.ndim == 1 else w.shape[1]
    if classes.ndim != 1 or classes.shape[0] != k:
        raise ValueError(f"classes must have {k} labels to match the parameters, got {classes!r}")
    clf = LogisticRegression(**kwargs)
    clf.classes_ = classes
    clf.coef_, clf.intercept_ = coef_and_intercept(Params(w, b))
    clf.n_features_in_ = int(w.shape[0])
    return clf


def to_params(clf: LogisticRegression) -> Params:
    """The fitted parameters of ``clf`` in the training layout (inverse of :func:`from_params`)."""
    check_is_fitted(clf)
    return params_of(clf.coef_, clf.intercept_, binary=clf.classes_.shape[0] == 2)

