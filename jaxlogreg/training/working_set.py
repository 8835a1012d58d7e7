"""Binary L1 / elastic-net fits to a certified optimum: working sets, proximal Newton, duality gap.

Minimises ``J(w, b) = Σ_i s_i L_i + λ₁ ||w||₁ + λ₂/2 ||w||²`` (``Σ s = 1``, b unpenalised) as
skglm and celer do: solve on a working set W (the support plus the features whose gradient
violates the optimality conditions, most first; |W| at least 2 |support| and ``P0``, grown
only, every feature from ``FULL_SHARE`` of them), then check every feature. Each subproblem is
solved, to a share of the KKT violation or to what the gap needs (:meth:`Rounds.inner_tol`),
by proximal Newton whose model is minimised by coordinate descent on X_W's columns, in C
(:mod:`jaxlogreg.kernels.native_cd`: X in its own dtype, only W's columns copied, the last W's
copied into the next when small; Anderson-extrapolated sweeps); without the library on its
dense Hessian ``[X_W 1]ᵀ D [X_W 1]`` (a jitted loop; |W| < ``MAX_DENSE_HESSIAN``, a warning
when the support reaches it). Status: "converged" only when the duality gap certifies ``J - J*
<= tol · J`` (:mod:`jaxlogreg.training.certificate`); "max_iter" after ``max_iter`` rounds;
"stalled" when rounds stop lowering J (rounding) or the support reaches the fallback's cap.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from jaxlogreg.core.model import Params, accumulation_dtype
from jaxlogreg.kernels.native import build_error
from jaxlogreg.kernels.native_cd import Columns, HostX, NewtonSettings, solve_subproblem
from jaxlogreg.training import certificate
from jaxlogreg.training.problem import Problem, check_penalty
from jaxlogreg.training.proximal import DECREASE_SLACK_ULPS
from jaxlogreg.training.settings import TrainConfig

P0 = 16  # the smallest working set
FULL_SHARE = 0.75  # a working set of this share of the features holds them all
MAX_DENSE_HESSIAN = 4096  # |W| + 1 unknowns, at most, without the native library: (|W| + 1)²
MAX_NEWTON = 50  # proximal Newton steps per working set
MAX_EPOCHS = 500  # coordinate-descent epochs per Newton step
INNER_SHARE = 0.1  # a subproblem is solved when its KKT violation is this share of the outer one
SHARE_CUT = 0.1  # ... cut by this factor after a round that did not lower J
CERTIFY = 0.3  # ... or this share of the violation the gap needs, once the working set holds it
MIN_SHARE = 1e-9  # ... below which the fit has stalled (rounding: J can go no lower)
MAX_HALVINGS = 30  # line search of a Newton step
ARMIJO = 1e-4
MAX_FLAT = 2  # Newton steps in a row within J's rounding, at most, in a subproblem
CD_FLOOR = 1e-12  # coordinate descent's tolerance, at least this share of max|∇f| (rounding)
FORCING = 0.3  # C: each Newton step's coordinate descent to this share of its KKT violation
ANDERSON = 3  # C: Anderson extrapolation of the coordinate-descent iterates every 4 sweeps
NEWTON = NewtonSettings(MAX_NEWTON, MAX_EPOCHS, FORCING, CD_FLOOR, ARMIJO, DECREASE_SLACK_ULPS,
                        MAX_HALVINGS, MAX_FLAT, ANDERSON)


class Result(NamedTuple):
    w: np.ndarray  # (n,) float64
    b: float
    status: str  # "converged", "max_iter" or "stalled"
    gap: float  # the duality gap at (w, b), an upper bound on J - J*
    objective: float
    rounds: int
    history: np.ndarray  # J at the start of each round
    dual: certificate.HostDualPoint | None = None  # at (w, b): a path's next solve starts there


class Rounds:
    """The outer loop's verdict after each round's duality gap, for the binary and the softmax
    solvers: "converged" when ``gap <= tol · J``; "max_iter" after ``max_iter`` rounds; "stalled"
    when rounds stop lowering J (each such round cuts the subproblems' tolerance share by
    :data:`SHARE_CUT`, down to :data:`MIN_SHARE`) or the support is too wide; None: go on.
    Every round's dual value ``J - gap`` is a lower bound on J*, so :attr:`gap` is J less the
    best of them."""

    def __init__(self) -> None:
        self.best, self.share, self.dual, self.gap = np.inf, INNER_SHARE, -np.inf, np.inf

    def verdict(self, J: float, gap: float, tol: float, rounds: int, max_iter: int,
                too_wide: bool = False) -> str | None:
        self.dual = max(self.dual, J - gap)
        self.gap = gap = max(J - self.dual, 0.0)
        if gap <= tol * J:
            return "converged"
        if J >= self.best:  # the last round did not lower J: solve the next subproblem tighter
            self.share *= SHARE_CUT
        if rounds == max_iter:
            return "max_iter"
        if self.share < MIN_SHARE or too_wide:
            return "stalled"
        self.best = min(self.best, J)
        return None

    def inner_tol(self, J: float, tol: float, worst: float, l1_norm: float,
                  outside: float) -> float:
        """The next subproblem's KKT tolerance: :attr:`share` of the largest violation
        ``worst``, lowered to :data:`CERTIFY` of what the gap needs, ``tol · J / ||w||₁`` (the
        gap is about ||w||₁ times the largest violation), once the features outside the support
        and the last working set violate by less (``outside``, :func:`outside_violation`), so
        that the next round can be the last."""
        loose = self.share * worst
        need = CERTIFY * tol * J / l1_norm if l1_norm > 0 else np.inf
        return min(loose, need) if outside <= need else loose


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``aᵀb`` without BLAS (threaded, 10^5 entries take it milliseconds on a busy machine)."""
    return float(np.einsum("i,i->", a, b))


def _abs_change(v: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``|v + d| - |v|`` without cancellation: ``sign(v) d`` where v + d keeps v's sign."""
    same = np.sign(v + d) * np.sign(v) > 0
    return np.where(same, np.sign(v) * d, np.abs(v + d) - np.abs(v))


def duality_gap(X: Any, y: np.ndarray, s: np.ndarray, w: np.ndarray, b: Any, l1: float,
                l2: float, fit_intercept: bool, z: np.ndarray | None = None
                ) -> tuple[float, float, np.ndarray]:
    """(J, gap, ∇f) of :func:`jaxlogreg.training.certificate.duality_gap` for host X (dense,
    SciPy or :class:`HostX`), in float64: ``gap >= J - J*``; binary (w (n,), b, y 0/1) or
    softmax (W (n, K), b (K,), y class indices); ``z = X w + b`` when not given. Binary:
    :func:`~jaxlogreg.training.certificate.host_binary_gap` (in C, else JAX)."""
    host = X if isinstance(X, HostX) else HostX.of(X)
    z = host.matvec(w, b) if z is None else z
    if np.ndim(w) == 1:
        return certificate.host_binary_gap(np.asarray(z, np.float64), np.asarray(y, np.float64),
                                           np.asarray(s, np.float64), np.asarray(w, np.float64),
                                           float(l1), float(l2), fit_intercept, host.rmatvec)
    with jax.enable_x64(True):
        J, gap, grad = certificate.duality_gap(z, y, s, w, l1, l2, fit_intercept,
                                               lambda u: host.rmatvec(np.asarray(u)))
        return float(J), float(gap), np.asarray(grad)


def kkt_violation(w: np.ndarray, grad: np.ndarray, l1: Any) -> np.ndarray:
    """Per feature, the distance of ∇f to ``-λ₁ ∂|w_j|``: ``|∇f_j + λ₁ sign w_j|`` where
    ``w_j ≠ 0``, ``max(|∇f_j| - λ₁, 0)`` where ``w_j = 0``; 0 at the optimum."""
    return np.where(w != 0, np.abs(grad + l1 * np.sign(w)), np.maximum(np.abs(grad) - l1, 0.0))


@jax.jit
def _coordinate_descent(H: jax.Array, g: jax.Array, v0: jax.Array, lam: jax.Array,
                        tol: jax.Array) -> jax.Array:
    """argmin over v of ``gᵀ(v - v0) + ½ (v - v0)ᵀ H (v - v0) + Σ_j lam_j |v_j|`` by cyclic
    coordinate descent, epochs until the largest change of a coordinate's gradient,
    ``|Δv_j| H_jj``, is at most ``tol`` (or :data:`MAX_EPOCHS`). H (k, k) symmetric PSD."""
    diag = jnp.diagonal(H)
    safe = jnp.where(diag > 0, diag, 1.0)

    def coordinate(j, carry):
        v, q, change = carry  # q = g + H (v - v0), the model's gradient
        target = v[j] - q[j] / safe[j]
        new = jnp.sign(target) * jnp.maximum(jnp.abs(target) - lam[j] / safe[j], 0.0)
        new = jnp.where(diag[j] > 0, new, v[j])
        d = new - v[j]
        q = q + d * jax.lax.dynamic_index_in_dim(H, j, keepdims=False)
        return v.at[j].set(new), q, jnp.maximum(change, jnp.abs(d) * diag[j])

    def epoch(carry):
        v, q, _, n = carry
        v, q, change = jax.lax.fori_loop(0, v.shape[0], coordinate, (v, q, jnp.zeros_like(tol)))
        return v, q, change, n + 1

    start = (v0, g, jnp.asarray(jnp.inf, v0.dtype), jnp.int32(0))
    v, *_ = jax.lax.while_loop(lambda c: (c[2] > tol) & (c[3] < MAX_EPOCHS), epoch, start)
    return v


def _bucket(k: int) -> int:
    """k rounded up to a power of two, or to a multiple of 512 above 512."""
    return max(P0, 1 << (k - 1).bit_length()) if k <= 512 else -(-k // 512) * 512


def _with_intercept_column(Xw: Any, fit_intercept: bool) -> tuple[Any, Any, np.ndarray | None]:
    """``[X_W 1]`` (``[X_W 0]`` without intercept: its coordinate never moves) as (columns,
    rows, the row of each stored entry): CSC and CSR arrays, or one dense array twice."""
    m = Xw.shape[0]
    last = np.full((m, 1), 1.0 if fit_intercept else 0.0)
    if not sp.issparse(Xw):
        Xa = np.hstack([Xw, last])
        return Xa, Xa, None
    Xa = sp.hstack([Xw, sp.csc_array(last)], format="csc")
    Xr = Xa.tocsr()
    return Xa, Xr, np.repeat(np.arange(m), np.diff(Xr.indptr))


class _Subproblem(NamedTuple):
    """J on the working set, in v = (w_W, b): ``Xa v`` are the logits (the fallback solver)."""

    Xa: Any  # [X_W 1] by columns (CSC) or dense
    Xr: Any  # the same by rows (CSR) or dense
    rows: np.ndarray | None  # the row of each entry of Xr (sparse)
    y: np.ndarray
    s: np.ndarray
    lam: np.ndarray  # λ₁ per coordinate, 0 for b
    ridge: np.ndarray  # λ₂ per coordinate, 0 for b

    def state(self, v: np.ndarray):
        """z, J, ∇J's smooth part and the Hessian weights D = s σ(z)(1 - σ(z))."""
        z = self.Xa @ v
        p = expit(z)
        grad = self.Xr.T @ (self.s * (p - self.y)) + self.ridge * v
        return z, self.value(z, v), grad, self.s * p * (1 - p)

    def value(self, z: np.ndarray, v: np.ndarray) -> float:
        loss = _dot(self.s, np.logaddexp(0.0, z) - self.y * z)
        return loss + _dot(self.lam, np.abs(v)) + 0.5 * _dot(self.ridge, v * v)

    def hessian(self, D: np.ndarray) -> np.ndarray:
        """``Xaᵀ diag(D) Xa + diag(λ₂)`` (k + 1, k + 1), dense."""
        if self.rows is None:
            H = (self.Xa * D[:, None]).T @ self.Xa
        else:
            XD = sp.csr_array((self.Xr.data * D[self.rows], self.Xr.indices, self.Xr.indptr),
                              shape=self.Xr.shape)
            H = (self.Xa.T @ XD).toarray()
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def solve(self, v: np.ndarray, tol: float) -> np.ndarray:
        """Proximal Newton steps until the KKT violation on the working set is at most ``tol``:
        the Newton direction minimises the quadratic model plus ``Σ λ₁ |v_j|`` (coordinate
        descent, :func:`_coordinate_descent`), the step Armijo's backtracking for proximal
        Newton (Lee, Sun and Saunders 2014)."""
        flat = 0  # steps in a row that did not lower J (below its rounding)
        for _ in range(MAX_NEWTON):
            z, J, grad, D = self.state(v)
            if np.max(kkt_violation(v, grad, self.lam), initial=0.0) <= tol or flat > MAX_FLAT:
                break
            cd_tol = max(0.3 * tol, CD_FLOOR * float(np.max(np.abs(grad), initial=0.0)))
            with jax.enable_x64(True):
                target = np.asarray(_coordinate_descent(self.hessian(D), grad, v, self.lam,
                                                        np.float64(cd_tol)))
            v, J_new = self._line_search(z, J, grad, v, target - v)
            if J_new is None:
                break
            flat = flat + 1 if J_new >= J else 0
        return v

    def _line_search(self, z, J, grad, v, d) -> tuple[np.ndarray, float | None]:
        """``J(v + t d) <= J(v) + σ t (∇fᵀd + Σ λ₁(|v + d| - |v|))``, t = 1, 1/2, ..., up to
        ``DECREASE_SLACK_ULPS`` of |J| (near the optimum the decrease is below J's rounding).
        The new point and its J; None when no step passed."""
        dz = self.Xa @ d
        decrease = _dot(grad, d) + _dot(self.lam, _abs_change(v, d))
        if not decrease < 0:
            return v, None
        t, rounding = 1.0, DECREASE_SLACK_ULPS * np.finfo(np.float64).eps * abs(J)
        for _ in range(MAX_HALVINGS):
            J_new = self.value(z + t * dz, v + t * d)
            if J_new <= J + ARMIJO * t * decrease + rounding:
                return v + t * d, J_new
            t *= 0.5
        return v, None


def _solve_subproblem(host: HostX, columns: Columns, y: np.ndarray, s: np.ndarray, l1: float,
                      l2: float, fit_intercept: bool, v: np.ndarray, z: np.ndarray,
                      tol: float) -> tuple[np.ndarray, np.ndarray]:
    """v = (w_W, b) minimising J on the working set's ``columns`` to KKT violation ``tol``
    and its logits, from v with logits z (w = 0 off W): in C on the columns (v and z updated
    in place), or on the dense Hessian without the library."""
    if host.use_native:
        solve_subproblem(columns, y, s, l1, l2, fit_intercept, v, z, tol, NEWTON)
        return v, z
    penalised = np.r_[np.ones(columns.shape[1]), 0.0]
    sub = _Subproblem(*_with_intercept_column(columns.float64(), fit_intercept), y, s,
                      l1 * penalised, l2 * penalised)
    v = sub.solve(v, tol)
    return v, sub.Xa @ v


def working_set_size(size: int, support: int, violating: int, cap: int,
                     every_feature: bool = True) -> int:
    """The next working set's size: at least the last one, twice the support and every
    violating feature (rounded up by :func:`_bucket`), at most ``cap``. When ``cap`` is
    ``every_feature``, all of them from :data:`FULL_SHARE` of it: their columns are read once,
    and no round waits on the few features left out."""
    size = min(cap, _bucket(max(size, 2 * support, violating) + 1) - 1)
    return cap if every_feature and size >= FULL_SHARE * cap else size


def _working_set(violation: np.ndarray, w: np.ndarray, grad: np.ndarray, l1: float, size: int,
                 cap: int, screened: int = 0) -> tuple[np.ndarray, int]:
    """The next working set (sorted) and its size: the support, then the features nearest to
    violating (``violation``: :func:`kkt_violation`), at least every violating one, the
    ``screened`` nearest (:func:`strong_rule`) and 2 |support|."""
    violating = max(int(np.count_nonzero(violation)), screened)
    size = working_set_size(size, int(np.count_nonzero(w)), violating, min(w.size, cap),
                            cap >= w.size)
    score = np.where(w != 0, np.inf, np.abs(grad) - l1)
    ws = np.sort(np.argpartition(-score, size - 1)[:size]) if size < w.size else (
        np.arange(w.size))
    return ws, size


def strong_rule(w: np.ndarray, grad: np.ndarray, l1: float, l1_start: float) -> int:
    """The features off the support that the sequential strong rule (Tibshirani et al. 2012)
    keeps at λ₁ from the optimum at ``l1_start`` >= λ₁: ``|∇f_j| >= 2 λ₁ - l1_start``; the
    others are predicted to stay at 0 (the gradient moving by at most l1_start - λ₁)."""
    return int(np.count_nonzero((w == 0) & (np.abs(grad) >= 2 * l1 - l1_start)))


def outside_violation(violation: np.ndarray, support: np.ndarray, ws: np.ndarray | None
                      ) -> float:
    """The largest of ``violation`` (per feature) where the features are outside the
    ``support`` (a mask) and outside the last working set ``ws`` (None: first round): a
    violation that the last subproblem did not see (0 when there is none)."""
    rest = ~support
    if ws is not None:
        rest[ws] = False
    return float(np.max(violation[rest], initial=0.0))


def solve(X: Any, y: Any, s: np.ndarray | None, l1: float, l2: float = 0.0, *,
          fit_intercept: bool = True, tol: float = 1e-6, max_iter: int = 50,
          w0: np.ndarray | None = None, b0: float = 0.0, native: bool | None = None,
          l1_start: float | None = None, dual0: certificate.HostDualPoint | None = None
          ) -> Result:
    """Minimise J (module docstring) for X (m, n) dense, scipy sparse or a :class:`HostX`, y
    (m,) 0/1, weights s (m,) (normalised here; None: 1/m each) until ``gap <= tol · J``; warm
    start at (w0, b0). ``max_iter`` bounds the working-set rounds; ``native``: the C solver
    (None: when :func:`jaxlogreg.kernels.native.available`; False: the dense-Hessian fallback).
    ``l1_start``: (w0, b0) is the optimum at this λ₁ >= l1 (a path): the first working set
    holds :func:`strong_rule`'s features, and every subproblem is solved to what the gap needs
    (from such a start few features enter, so the next round is likely the last).
    ``dual0``: the dual point at (w0, b0) (the last solve's :attr:`Result.dual`): the first gap
    then costs no product with X."""
    host = X if isinstance(X, HostX) else HostX.of(X, native)
    m, n = host.shape
    y = np.asarray(y, np.float64)
    s = np.full(m, 1.0 / m) if s is None else np.asarray(s, np.float64) / np.sum(s)
    w = np.zeros(n) if w0 is None else np.array(w0, np.float64)
    b = float(b0) if fit_intercept else 0.0
    cap = n if host.use_native else MAX_DENSE_HESSIAN - 1
    outer, rounds, status, ws_size = Rounds(), 0, "max_iter", P0
    J, gap, history, ws, columns = np.inf, np.inf, [], None, None
    point = _checked_dual(dual0, m, n)
    z = point.z.copy() if point is not None else (  # updated in place: dual0's z is kept
        host.matvec(w, b) if np.any(w) else np.full(m, b))
    for rounds in range(max_iter + 1):
        if rounds or point is None:
            point = certificate.host_dual_point(z, y, s, fit_intercept, host.rmatvec)
        J, gap, grad = certificate.host_gap_at(point, y, s, w, l1, l2)
        history.append(J)
        too_wide = cap < n and np.count_nonzero(w) >= cap  # the fallback's dense Hessian
        if (status := outer.verdict(J, gap, tol, rounds, max_iter, too_wide)) is not None:
            break
        violation = kkt_violation(w, grad, l1)
        screen = rounds == 0 and l1_start is not None  # the strong rule's first working set
        outside = 0.0 if l1_start is not None else outside_violation(violation, w != 0, ws)
        screened = strong_rule(w, grad, l1, l1_start) if screen else 0
        last, (ws, ws_size) = ws, _working_set(violation, w, grad, l1, ws_size, cap, screened)
        if last is None or not np.array_equal(last, ws):
            # small: its columns are copied, not read; else released before the next are read
            earlier, columns = host.reusable(last, columns), None
            columns, earlier = host.columns(ws, earlier), None
        worst = max(float(violation.max(initial=0.0)),
                    abs(_dot(s, expit(z) - y)) * fit_intercept)
        inner = outer.inner_tol(J, tol, worst, float(np.sum(np.abs(w))), outside)
        v = np.r_[w[ws], b]  # w is 0 outside W
        grad = violation = point = last = w = None  # released before the subproblem's work arrays
        v, z = _solve_subproblem(host, columns, y, s, l1, l2, fit_intercept, v, z, inner)
        w = np.zeros(n)  # w is 0 outside the working set, which holds the support
        w[ws], b = v[:-1], float(v[-1])
    if status == "stalled" and too_wide:  # the fallback's cap: say why the C solver did not run
        warnings.warn(f"the L1 fit stopped short of tol at {cap} non-zero weights, the most "
                      "without jaxlogreg's C library (which has no cap): "
                      f"{build_error() or 'native=False'}", RuntimeWarning, stacklevel=2)
    return Result(w, b, status, outer.gap, J, rounds, np.asarray(history), point)


def _checked_dual(dual: certificate.HostDualPoint | None, m: int, n: int
                  ) -> certificate.HostDualPoint | None:
    """``dual`` when its arrays fit X (m, n), else ValueError naming dual0."""
    if dual is not None and (np.shape(dual.z) != (m,) or np.shape(dual.p) != (m,)
                             or np.shape(dual.v) != (n,)):
        raise ValueError(f"dual0 must hold z and p of shape ({m},) and v of shape ({n},), got "
                         f"{np.shape(dual.z)}, {np.shape(dual.p)} and {np.shape(dual.v)}")
    return dual


def fit_problem(problem: Problem, config: TrainConfig, init_params: Params | None = None
                ) -> tuple[Params, int, np.ndarray, float, str]:
    """A binary fit of checked data with :func:`solve`, as the fit pipeline runs a solver:
    ``(params in the fit's dtype, rounds, J per round, J, status)``. ``config.tol`` is the
    relative duality gap, ``config.max_iter`` the working-set rounds; ``init_params``: a checked
    warm start (NumPy arrays). More classes: :func:`~.working_set_softmax.fit_problem`."""
    if problem.n_classes != 2:
        raise ValueError(f"working_set.fit_problem fits binary models, got {problem.n_classes} "
                         f"classes: use working_set_softmax.fit_problem")
    l1, l2 = config.l1(problem.weight_sum), config.l2(problem.weight_sum)
    check_penalty(l1 + l2, config.C, problem.weight_sum, problem.dtype)
    w0, b0 = (None, 0.0) if init_params is None else (init_params.w, float(init_params.b))
    r = solve(HostX.of(problem.X, checked=True), problem.y, problem.weights, l1, l2,
              fit_intercept=config.fit_intercept, tol=config.tol, max_iter=config.max_iter,
              w0=w0, b0=b0)
    dtype = np.dtype(accumulation_dtype(problem.dtype))
    params = Params(r.w.astype(dtype), np.asarray(r.b, dtype))
    return params, r.rounds, r.history.astype(dtype), r.objective, r.status
