"""A scikit-learn estimator around :func:`jaxlogreg.train.fit`.

``LogisticRegression`` follows scikit-learn's contract (``fit`` returns ``self``, fitted
attributes end in ``_``, ``predict_proba`` columns follow ``classes_``) and minimises the same
objective as ``sklearn.linear_model.LogisticRegression``::

    C Σ_i s_i L_i + ½ ||W||²    (sklearn)   <=>   J = Σ_i s_i L_i / Σ_i s_i + λ/2 ||W||²  (jaxlogreg)

with ``λ = 1 / (C Σ_i s_i)``, where ``s_i`` is ``sample_weight`` times the class weight. The
intercept is not penalised. ``C = np.inf`` means no penalty (scikit-learn >= 1.8 spells it the
same way). Two classes give the binary model ``a = σ(z)``; K > 2 classes the softmax model.

Training runs on the device (one jitted loop, :mod:`jaxlogreg.train`); prediction is a small
NumPy computation on the host from ``coef_`` and ``intercept_``.
"""

from __future__ import annotations

import math
import sys
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from jaxlogreg import _validation as v
from jaxlogreg import train
from jaxlogreg.model import Params
from jaxlogreg.progress import ProgressBar
from jaxlogreg.solvers import LINE_SEARCH_SOLVERS

# Small problems are padded to power-of-two shapes (zero features, zero-weight samples), which
# leaves the objective and its minimiser unchanged but lets one compiled training loop serve
# many data sets: compiling the L-BFGS loop takes seconds, running it on small data milliseconds.
_PAD_MAX_ELEMENTS = 1 << 20
_PAD_MIN_SAMPLES = 512
_PAD_MIN_FEATURES = 32


class DivergenceError(RuntimeError):
    """Training produced a NaN or infinite objective (usually: the learning rate is too large).

    The estimator keeps the last parameters whose objective was finite as its fitted state.
    """


def _bucket(k: int, minimum: int) -> int:
    return max(minimum, 1 << (k - 1).bit_length())


def _padded_shape(m: int, n: int, minibatch: bool) -> tuple[int, int]:
    """Padded (m, n): powers of two for small problems; m unchanged with minibatches."""
    m_pad = m if minibatch else _bucket(m, _PAD_MIN_SAMPLES)
    n_pad = _bucket(n, _PAD_MIN_FEATURES)
    if m_pad * n_pad > _PAD_MAX_ELEMENTS:
        return m, n
    return m_pad, n_pad


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic (two classes) or softmax (K > 2 classes) regression trained with JAX.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, as in scikit-learn: the L2 penalty of the mean loss
        is ``λ = 1 / (C · Σ sample_weight)``. ``np.inf`` disables the penalty.
    fit_intercept : bool, default=True
        Learn the intercept ``b``; when False, ``b`` stays 0.
    solver : str, default="lbfgs"
        ``"lbfgs"`` (optax L-BFGS with line search; the fast choice), ``"gd"`` (the course's
        ``w := w - α dw``), ``"sgd"`` (momentum 0.9), ``"adam"``, ``"adamw"``, or the name of
        any optax optimizer taking a learning rate.
    learning_rate : float or None, default=None
        α; None picks 0.1 for ``"gd"`` and 0.01 otherwise. Unused by ``"lbfgs"``.
    max_iter : int, default=100
        Maximum number of iterations (epochs when ``batch_size`` is set).
    tol : float, default=1e-4
        Stop when ``max |∇J| <= tol`` (full batch) or when the relative change of the epoch
        loss is ``<= tol`` (minibatches). 0 always runs ``max_iter`` iterations.
    batch_size : int or None, default=None
        None for full-batch training, else shuffled minibatches of this size.
    random_state : int, RandomState instance or None, default=None
        Seeds the minibatch shuffling (None: a seed drawn from NumPy's global generator, as in
        scikit-learn). Full-batch training is deterministic and ignores it.
    dtype : {"float64", "float32"}, default="float64"
        Precision of training and of ``coef_``. float64 matches scikit-learn; float32 is
        about twice as fast and what accelerators prefer.
    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into ``sample_weight`` (scikit-learn's meaning:
        "balanced" uses ``n_samples / (n_classes * bincount(y))``).
    warm_start : bool, default=False
        Start from the previous ``coef_`` and ``intercept_`` (when the classes and the number
        of features are unchanged) instead of zeros.
    verbose : int, default=0
        1 draws a progress bar on stderr when stderr is a terminal; 2 also prints a one-line
        summary of the fit on stderr.
    grad : {"manual", "autodiff"}, default="manual"
        The hand-written gradient (``dz = a - y``) or ``jax.grad``.
    solver_params : dict or None, default=None
        Extra keyword arguments for the optax optimizer (e.g. ``{"momentum": 0.5}``).

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
        From ``fit``, when the objective becomes NaN or inf; the estimator then holds the last
        parameters with a finite objective.

    Examples
    --------
    >>> import numpy as np
    >>> from jaxlogreg.estimator import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression().fit(X, ["no", "no", "yes", "yes"])
    >>> clf.predict([[0.2], [2.8]]).tolist()
    ['no', 'yes']
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        fit_intercept: bool = True,
        solver: str = "lbfgs",
        learning_rate: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-4,
        batch_size: int | None = None,
        random_state: Any = None,
        dtype: str = "float64",
        class_weight: dict | str | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        grad: str = "manual",
        solver_params: dict | None = None,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.random_state = random_state
        self.dtype = dtype
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.grad = grad
        self.solver_params = solver_params

    # ------------------------------------------------------------------ hyper-parameters

    def _check_params(self) -> None:
        """Validate the hyper-parameters; each message names the parameter and the value."""
        C = self.C
        if not isinstance(C, Real) or isinstance(C, bool) or math.isnan(C) or C <= 0:
            raise ValueError(f"C must be a real number > 0 (np.inf for no penalty), got {C!r}")
        for name in ("fit_intercept", "warm_start"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                # ValueError like every bad hyper-parameter (scikit-learn's convention)
                raise ValueError(  # noqa: TRY004
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")
        if not isinstance(self.verbose, Integral) or self.verbose < 0:
            raise ValueError(f"verbose must be an integer >= 0, got {self.verbose!r}")
        if self.solver_params is not None and not isinstance(self.solver_params, dict):
            raise ValueError(
                f"solver_params must be a dict or None, got {type(self.solver_params).__name__}"
            )
        # solver, learning_rate, max_iter, tol, batch_size, dtype and grad: checked by the
        # training config, with messages naming the parameter
        self._train_config(l2=0.0)

    def _train_config(self, l2: float) -> train.TrainConfig:
        return train.TrainConfig(
            solver=self.solver,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            tol=self.tol,
            l2=l2,
            batch_size=self.batch_size,
            grad=self.grad,
            solver_params=tuple(sorted((self.solver_params or {}).items())),
            dtype=self.dtype,
            fit_intercept=bool(self.fit_intercept),
        )

    # ------------------------------------------------------------------ fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model to X (n_samples, n_features) and labels y (n_samples,) of any type.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(
                "LogisticRegression needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0]!r}"
            )
        m, n = X.shape
        sw = self._sample_weight(sample_weight, m, classes, y)
        weighted_classes = np.unique(y_idx[sw > 0])
        if weighted_classes.shape[0] < 2:
            raise ValueError(
                "LogisticRegression needs at least 2 classes with positive sample_weight, "
                f"got only class {classes[weighted_classes[0]]!r} (after class_weight)"
            )
        n_classes = classes.shape[0]
        sw_sum = float(np.sum(sw))
        l2 = 0.0 if math.isinf(self.C) else 1.0 / (float(self.C) * sw_sum)
        config = self._train_config(l2)

        init = self._warm_start_params(classes, n)
        m_pad, n_pad = _padded_shape(m, n, self.batch_size is not None)
        if (m_pad, n_pad) == (m, n):  # large data: no copy
            Xp, yp, swp = X, y_idx, sw
        else:
            Xp = np.zeros((m_pad, n_pad), X.dtype)
            Xp[:m, :n] = X
            yp = np.zeros(m_pad, np.int32)
            yp[:m] = y_idx
            swp = np.zeros(m_pad, np.float64)
            swp[:m] = sw
            if init is not None:
                init = _pad_params(init, n_pad)
        seed = 0
        if self.batch_size is not None:  # only minibatches use randomness
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        bar = ProgressBar(self.max_iter, "fit", enabled=None if self.verbose else False)
        with bar:
            result = train.fit(
                Xp,
                yp,
                config,
                sample_weight=swp,
                init_params=init,
                n_classes=n_classes,
                seed=seed,
                callback=bar.update if bar.enabled else None,
            )

        w = np.asarray(result.params.w)[:n]
        b = np.asarray(result.params.b)
        self.classes_ = classes
        if n_classes == 2:
            self.coef_ = w.reshape(1, n).copy()
            self.intercept_ = b.reshape(1).copy()
        else:
            self.coef_ = np.ascontiguousarray(w.T)
            self.intercept_ = b.copy()
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

    def _sample_weight(self, sample_weight: Any, m: int, classes: np.ndarray, y: Any) -> np.ndarray:
        if sample_weight is None:
            sw = np.ones(m, np.float64)
        else:
            sw = v.as_array(sample_weight, "sample_weight")
            if sw.ndim == 0:
                sw = np.full(m, float(sw))
            v.check_sample_weight(sw, m)
            sw = np.asarray(sw, np.float64)
        if self.class_weight is not None:
            class_weight = compute_class_weight(self.class_weight, classes=classes, y=y)
            sw = sw * class_weight[np.searchsorted(classes, y)]
            if not np.all(np.isfinite(sw)) or np.sum(sw) <= 0:
                raise ValueError(
                    "class_weight times sample_weight must be finite with a positive sum, "
                    f"got class weights {class_weight.tolist()}"
                )
        return sw

    def _warm_start_params(self, classes: np.ndarray, n: int) -> Params | None:
        """The previous fit's parameters, when warm starting a compatible model."""
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        if self.coef_.shape[1] != n or not np.array_equal(self.classes_, classes):
            return None
        if classes.shape[0] == 2:
            return Params(w=self.coef_[0], b=self.intercept_[0])
        return Params(w=self.coef_.T, b=self.intercept_)

    def _raise_or_warn(self, result: train.FitResult, config: train.TrainConfig) -> None:
        if result.status == "diverged":
            alpha = config.resolved_learning_rate
            hint = (
                f"lower learning_rate (e.g. learning_rate={alpha / 10:g})"
                if self.solver not in LINE_SEARCH_SOLVERS
                else "check the scale of X (standardize the features)"
            )
            raise DivergenceError(
                f"LogisticRegression diverged: the objective became NaN or inf after "
                f"{result.n_iter} iterations with solver={self.solver!r}, learning_rate="
                f"{alpha:g}; {hint}. The estimator keeps the last parameters with a finite "
                "objective."
            )
        if result.status == "max_iter" and self.tol > 0:
            warnings.warn(
                f"LogisticRegression (solver={self.solver!r}) did not converge in "
                f"max_iter={self.max_iter} iterations (tol={self.tol:g}); increase max_iter, "
                "or scale the features, or lower C",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ predict

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``z = X Wᵀ + b``: shape (n_samples,) for two classes (the score of
        ``classes_[1]``), (n_samples, n_classes) otherwise."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        z = X @ self.coef_.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``;
        for two classes ``[1 - a, a]`` with ``a = σ(z)``."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.column_stack([expit(-z), expit(z)])
        return softmax(z, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log`` of :meth:`predict_proba`, computed stably from the logits (``log σ(z)``,
        ``log_softmax(z)``), finite where the probabilities round to 0."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.column_stack([log_expit(-z), log_expit(z)])
        return log_softmax(z, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (``z > 0`` for two classes)."""
        z = self.decision_function(X)
        idx = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.classifier_tags.multi_class = True
        return tags


def from_params(params: Params, classes: Any, **kwargs: Any) -> LogisticRegression:
    """A fitted :class:`LogisticRegression` from parameters in the training layout.

    Args:
      params: ``Params(w, b)``: binary ``w`` (n,), ``b`` (); or softmax ``w`` (n, K), ``b`` (K,)
        (what :func:`jaxlogreg.train.fit` returns and :func:`jaxlogreg.model_io.load_model`
        reads).
      classes: the K labels, in column order.
      kwargs: hyper-parameters of the estimator (used only if it is fitted again).

    Examples:
      >>> import numpy as np
      >>> from jaxlogreg import Params
      >>> clf = from_params(Params(w=np.array([2.0]), b=np.array(-1.0)), ["no", "yes"])
      >>> clf.predict([[0.0], [1.0]]).tolist()
      ['no', 'yes']
    """
    w = np.asarray(params.w)
    b = np.asarray(params.b)
    classes = np.asarray(classes)
    k = 2 if w.ndim == 1 else w.shape[1]
    if classes.ndim != 1 or classes.shape[0] != k:
        raise ValueError(f"classes must have {k} labels to match the parameters, got {classes!r}")
    clf = LogisticRegression(**kwargs)
    clf.classes_ = classes
    clf.coef_ = w.reshape(1, -1).copy() if k == 2 else np.ascontiguousarray(w.T)
    clf.intercept_ = b.reshape(1).copy() if k == 2 else b.copy()
    clf.n_features_in_ = int(w.shape[0])
    return clf


def to_params(clf: LogisticRegression) -> Params:
    """The fitted parameters of ``clf`` in the training layout (inverse of :func:`from_params`)."""
    check_is_fitted(clf)
    if clf.classes_.shape[0] == 2:
        return Params(w=clf.coef_[0].copy(), b=np.asarray(clf.intercept_[0]))
    return Params(w=np.ascontiguousarray(clf.coef_.T), b=clf.intercept_.copy())


def _pad_params(params: Params, n_pad: int) -> Params:
    w = np.asarray(params.w)
    pad = [(0, n_pad - w.shape[0])] + [(0, 0)] * (w.ndim - 1)
    return Params(w=np.pad(w, pad), b=np.asarray(params.b))
