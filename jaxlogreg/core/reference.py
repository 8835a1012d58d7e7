"""The lectures' own algorithms, kept readable and used as references in tests.

Plain Python / NumPy in float64, written the way the course writes them on the board, with the
lecture's loss ``-(y log a + (1 - y) log(1 - a))`` taken literally. They are slow on purpose and
meant for moderate logits; the library's kernels (:mod:`jaxlogreg.core.loss`,
:mod:`jaxlogreg.core.gradients`) are the fast, numerically stable versions.

- :func:`single_example_step` — lecture 2.9, one example with two features.
- :func:`loop_gradients` — lecture 2.10, m examples with explicit for loops.
- :func:`vectorized_gradients` — lectures 2.13/2.14, ``Z = wᵀX + b`` over all examples at once.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class SingleExampleStep(NamedTuple):
    """Every node of lecture 2.9's graph for one example, and the updated parameters."""

    z: float
    a: float
    loss: float
    da: float
    dz: float
    dw1: float
    dw2: float
    db: float
    w1: float
    w2: float
    b: float


def sigmoid(z: float) -> float:
    """σ(z) = 1 / (1 + e^{-z}) for a Python float, without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def single_example_step(
    x1: float, x2: float, y: float, w1: float, w2: float, b: float, alpha: float
) -> SingleExampleStep:
    """Lecture 2.9: forward, backward and one gradient-descent update for one example.

    ``z = w1 x1 + w2 x2 + b``, ``a = σ(z)``, ``da = -y/a + (1-y)/(1-a)``,
    ``dz = da · a(1-a) = a - y``, ``dw1 = x1 dz``, ``dw2 = x2 dz``, ``db = dz``,
    then ``w1 := w1 - α dw1``, ``w2 := w2 - α dw2``, ``b := b - α db``.
    """
    z = w1 * x1 + w2 * x2 + b
    a = sigmoid(z)
    loss = -(y * math.log(a) + (1 - y) * math.log(1 - a))
    da = -y / a + (1 - y) / (1 - a)
    dz = da * a * (1 - a)  # the chain rule through σ; equals a - y
    dw1 = x1 * dz
    dw2 = x2 * dz
    db = dz
    return SingleExampleStep(
        z, a, loss, da, dz, dw1, dw2, db, w1 - alpha * dw1, w2 - alpha * dw2, b - alpha * db
    )


def loop_gradients(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float
) -> tuple[float, np.ndarray, float]:
    """Lecture 2.10: cost J and gradients over m examples with explicit for loops.

    Args:
      X: (m, n) inputs, y: (m,) labels in {0, 1}, w: (n,) weights, b: intercept.

    Returns:
      ``(J, dw, db)`` with ``J = (1/m) Σ L(a_i, y_i)``, ``dw`` (n,), ``db`` a float.
    """
    m, n = len(X), len(w)
    J, dw, db = 0.0, [0.0] * n, 0.0
    for i in range(m):
        z_i = b
        for j in range(n):
            z_i += w[j] * X[i][j]
        a_i = sigmoid(z_i)
        J += -(y[i] * math.log(a_i) + (1 - y[i]) * math.log(1 - a_i))
        dz_i = a_i - y[i]
        for j in range(n):
            dw[j] += X[i][j] * dz_i
        db += dz_i
    return J / m, np.array(dw) / m, db / m


def vectorized_gradients(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float
) -> tuple[float, np.ndarray, float]:
    """Lectures 2.13/2.14: the same as :func:`loop_gradients` without a loop.

    In the course's layout ``X_c = Xᵀ`` (n, m): ``Z = wᵀX_c + b``, ``A = σ(Z)``, ``dZ = A - Y``,
    ``dw = X_c dZᵀ / m``, ``db = Σ dZ / m``.
    """
    X_c = np.asarray(X, dtype=np.float64).T
    Y = np.asarray(y, dtype=np.float64)
    m = X_c.shape[1]
    Z = np.asarray(w, dtype=np.float64) @ X_c + b
    A = 1.0 / (1.0 + np.exp(-Z))
    J = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    dZ = A - Y
    return float(J), X_c @ dZ / m, float(np.sum(dZ) / m)


def gradient_descent(
    X: np.ndarray, y: np.ndarray, learning_rate: float, num_iterations: int
) -> tuple[np.ndarray, float, list[float]]:
    """The course's vectorized batch gradient descent from ``w = 0, b = 0``: ``w := w - α dw``.

    Returns ``(w, b, costs)`` with ``costs[i]`` the cost before update i.
    """
    w, b, costs = np.zeros(np.shape(X)[1]), 0.0, []
    for _ in range(num_iterations):
        J, dw, db = vectorized_gradients(X, y, w, b)
        costs.append(J)
        w, b = w - learning_rate * dw, b - learning_rate * db
    return w, b, costs
