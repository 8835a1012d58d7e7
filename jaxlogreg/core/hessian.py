"""The Hessian of the objective, written by hand: the matrix and its product with a vector.

With ``Xa = [X; 1]`` (n + 1, m) (the intercept's row of ones; dropped without an intercept),
``a = σ(z)`` and the example scale ``s`` (as in :mod:`~jaxlogreg.core.gradients`)::

    binary    H = Xa D Xaᵀ + λ P,           D = diag(s ⊙ a(1 - a))
    softmax   H[(i,k),(j,l)] = Σ_m s x_i x_j (a_k δ_kl - a_k a_l) + λ P

``P`` puts λ on the weights, not on the intercept. Rows and columns are in the order of
``jax.flatten_util.ravel_pytree(Params(w, b))`` (w row-major, then b), so ``H`` equals
``jax.hessian`` of :func:`~jaxlogreg.core.loss.objective_t` on the flat vector
(``tests/kernels/test_contract.py`` checks it). :func:`hessian_t` is one matrix product over
X; :func:`hvp_t` is two passes and never forms H, for many features or classes;
:func:`diagonal_bound_t` bounds H's diagonal over all parameters (a preconditioner).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlogreg.core.loss import dot
from jaxlogreg.core.model import Params
from jaxlogreg.core.sample_csr import SampleCsr
from jaxlogreg.core.sparse import CooMatrix


def n_params(params: Params, fit_intercept: bool = True) -> int:
    """The side k of H: the entries of w, and of b when there is an intercept."""
    return params.w.size + (params.b.size if fit_intercept else 0)


def flat(params: Params, fit_intercept: bool = True) -> jax.Array:
    """The parameters as one vector (k,) in H's order: ``ravel_pytree`` order, without b when
    there is no intercept."""
    vector = ravel_pytree(params)[0]
    return vector if fit_intercept else vector[: params.w.size]


def unflat(vector: jax.Array, like: Params, fit_intercept: bool = True) -> Params:
    """:func:`flat`'s inverse: the vector (k,) as ``Params`` shaped as ``like`` (b = 0 when
    there is no intercept)."""
    w = vector[: like.w.size].reshape(like.w.shape)
    b = vector[like.w.size:].reshape(like.b.shape) if fit_intercept else jnp.zeros_like(like.b)
    return Params(w=w, b=b)


def _augmented(Xt: jax.Array, dtype: Any, fit_intercept: bool) -> jax.Array:
    """``Xa`` (n + 1, m) with the intercept's row of ones last, or X (n, m) without one."""
    X = Xt.astype(dtype)
    return jnp.concatenate([X, jnp.ones((1, X.shape[1]), dtype)]) if fit_intercept else X


def _penalty_diagonal(params: Params, l2: Any, fit_intercept: bool) -> jax.Array:
    """``λ P``'s diagonal (k,): λ on every weight, 0 on the intercept."""
    weights = jnp.full((params.w.size,), l2, params.w.dtype)
    if not fit_intercept:
        return weights
    return jnp.concatenate([weights, jnp.zeros((params.b.size,), params.w.dtype)])


def weighted_gram_t(Xt: jax.Array, c: jax.Array, fit_intercept: bool = True) -> jax.Array:
    """``Xa diag(c) Xaᵀ`` (p, p) for Xt (n, m) and c (m,), without forming ``Xa``: the blocks
    ``X c Xᵀ``, ``X c`` and ``Σ c`` (one matrix product over X). The binary Hessian is this with
    ``c = s ⊙ a(1 - a)``; a sandwich's "meat" with ``c = (s ⊙ (a - y))²``."""
    X = Xt.astype(c.dtype)
    gram = dot(X * c, X.T)
    if not fit_intercept:
        return gram
    column = dot(X, c)
    return jnp.block([[gram, column[:, None]], [column[None, :], jnp.sum(c)[None, None]]])


def hessian_t(params: Params, Xt: jax.Array, y: jax.Array, s: Any, l2: Any, *,
              fit_intercept: bool = True) -> jax.Array:
    """H (k, k) of ``J = Σ s_i L_i + λ/2 ||w||²`` at ``params``; Xt (n, m) dense, s (m,) or ().

    ``y`` is unused (the logistic Hessian does not depend on the labels); it is taken so
    that the signature is the gradient contract's. Memory: (n + 1) K m for softmax.
    """
    del y
    w, b = params
    s = jnp.broadcast_to(jnp.asarray(s, w.dtype), (Xt.shape[1],))
    if w.ndim == 1:
        a = jax.nn.sigmoid(dot(w, Xt.astype(w.dtype)) + b)  # (m,)
        H = weighted_gram_t(Xt, s * a * (1 - a), fit_intercept)  # Xa D Xaᵀ
    else:
        Xa = _augmented(Xt, w.dtype, fit_intercept)  # (p, m)
        A = jax.nn.softmax(dot(w.T, Xa[: w.shape[0]]) + b[:, None], axis=0)  # (K, m)
        p, K = Xa.shape[0], A.shape[0]
        diagonal = jnp.einsum("im,km,jm->ikj", Xa, s * A, Xa,
                              precision=jax.lax.Precision.HIGHEST)  # Σ s a_k x_i x_j
        G = (Xa[:, None, :] * A[None, :, :]).reshape(p * K, -1)  # x_i a_k, (pK, m)
        H = (diagonal[:, :, :, None] * jnp.eye(K, dtype=w.dtype)[None, :, None, :]
             ).reshape(p * K, p * K) - dot(G * s, G.T)
    return H + jnp.diag(_penalty_diagonal(params, l2, fit_intercept))


SQUARES_BLOCK = 1 << 16  # entries squared at a time: no temporary of nnz elements


def _sparse_column_squares(Xt: CooMatrix, s: Any, dtype: Any) -> jax.Array:
    """``Σ_i s_i x_ij²`` (n,) over Xt's entries, a block of :data:`SQUARES_BLOCK` at a time
    (the last block starts early and masks the entries already added); a
    :class:`~jaxlogreg.core.sample_csr.SampleCsr` finds each entry's sample in its ``indptr``."""
    n, nnz = Xt.shape[0], Xt.nnz
    csr = isinstance(Xt, SampleCsr)  # read in its stored arrays, past their lead
    data, row, lead = (Xt.stored_data, Xt.stored_row, Xt.lead) if csr else (Xt.data, Xt.row, 0)
    weighted = jnp.ndim(s) > 0
    s = jnp.asarray(s, dtype)
    block = min(nnz, SQUARES_BLOCK)
    if block == 0:
        return jnp.zeros((n,), dtype)

    def add_block(k: jax.Array, total: jax.Array) -> jax.Array:
        start = jnp.minimum(k * block, nnz - block)
        entry = start + jnp.arange(block)
        value = jax.lax.dynamic_slice(data, (lead + start,), (block,)).astype(dtype)
        value = jnp.where(entry >= k * block, value * value, 0)
        if weighted:
            sample = (jnp.searchsorted(Xt.indptr, entry, side="right") - 1 if csr
                      else jax.lax.dynamic_slice(Xt.col, (start,), (block,)))
            value = value * s[sample]
        return total.at[jax.lax.dynamic_slice(row, (lead + start,), (block,))].add(value)

    total = jax.lax.fori_loop(0, -(-nnz // block), add_block, jnp.zeros((n,), dtype))
    return total if weighted else total * s


def diagonal_bound_t(params: Params, Xt: Any, s: Any, l2: Any) -> Params:
    """An upper bound of H's diagonal that holds at every parameter (``a(1 - a) <= 1/4``), as
    ``Params`` shaped like ``params``: ``Σ_i s_i x_ij² / 4 + λ`` for each weight (every class
    alike) and ``Σ_i s_i / 4`` for the intercept. One pass over Xt (n, m), dense or a
    :class:`~jaxlogreg.core.sparse.CooMatrix` (a scalar s reads no sample ids); it depends on
    the data alone, so a solver computes it once (a Jacobi preconditioner)."""
    w, b = params
    dtype = w.dtype
    m = Xt.shape[1]
    if isinstance(Xt, CooMatrix):
        column = _sparse_column_squares(Xt, s, dtype)
    else:
        X = Xt.astype(dtype)
        column = jnp.einsum("nm,nm,m->n", X, X, jnp.broadcast_to(jnp.asarray(s, dtype), (m,)),
                            precision=jax.lax.Precision.HIGHEST)
    weight_sum = jnp.sum(jnp.broadcast_to(jnp.asarray(s, dtype), (m,)))
    column = column / 4 + l2
    return Params(w=jnp.broadcast_to(column.reshape(-1, *([1] * (w.ndim - 1))), w.shape),
                  b=jnp.full(b.shape, weight_sum / 4, dtype))


def hvp_t(params: Params, Xt: Any, y: jax.Array, s: Any, l2: Any, v: Params) -> Params:
    """``H v`` as ``Params`` (v's b is ignored without an intercept: pass zeros), in two
    passes over Xt (n, m), dense or a :class:`~jaxlogreg.core.sparse.CooMatrix`; H is never
    formed. ``y`` is unused, as in :func:`hessian_t`."""
    del y
    w, b = params
    X = Xt.astype(w.dtype)
    if w.ndim == 1:
        a = jax.nn.sigmoid(dot(w, X) + b)  # (m,)
        dz = s * a * (1 - a) * (dot(v.w, X) + v.b)  # D (Xaᵀ v)   (m,)
    else:
        A = jax.nn.softmax(dot(w.T, X) + b[:, None], axis=0)  # (K, m)
        Zv = dot(v.w.T, X) + v.b[:, None]  # the direction's logits (K, m)
        dz = s * A * (Zv - jnp.sum(A * Zv, axis=0))  # (diag(a) - a aᵀ) z_v per example
    Xdz = dot(X, dz.T) if dz.ndim == 2 else dot(X, dz)
    return Params(w=Xdz + l2 * v.w, b=jnp.sum(dz, axis=-1))


__all__ = ["diagonal_bound_t", "flat", "hessian_t", "hvp_t", "n_params", "unflat",
           "weighted_gram_t"]
