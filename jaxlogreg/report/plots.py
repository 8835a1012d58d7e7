"""Plots as PNG files: loss curves, the learning-rate comparison and cross-validation scores
(matplotlib, the optional ``plot`` extra).

matplotlib is imported only when a plot is drawn, and through its object API
(``Figure`` + the Agg canvas), so no GUI backend and no global ``pyplot`` state are involved.
Without matplotlib the functions raise :class:`PlotUnavailableError` saying how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

INSTALL_HINT = "plots need matplotlib: pip install 'jaxlogreg[plot]' (or pip install matplotlib)"


class PlotUnavailableError(ImportError):
    """matplotlib is not installed."""


def _new_figure(width: float = 6.4, height: float = 4.2) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise PlotUnavailableError(INSTALL_HINT) from err
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _as_curve(values: Any, name: str) -> np.ndarray:
    curve = np.asarray(values, dtype=np.float64)
    if curve.ndim != 1 or curve.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence of losses, got shape {curve.shape}"
        )
    return curve


def plot_loss_curve(
    loss_history: Sequence[float] | np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "Training loss",
    validation_loss: float | None = None,
    xlabel: str = "iteration",
) -> Path:
    """Write the objective J per iteration (``LogisticRegression.loss_curve_``) to a PNG.

    Args:
      loss_history: J at iterations 0, 1, ... (J before each update).
      path: the PNG file to write.
      title: the plot title.
      validation_loss: if given, drawn as a dashed horizontal line (loss of the final model
        on the validation data, without the penalty).
      xlabel: the x-axis label ("epoch" for minibatch training).

    Returns:
      ``path`` as a :class:`~pathlib.Path`.
    """
    curve = _as_curve(loss_history, "loss_history")
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(np.arange(curve.shape[0]), curve, color="C0", label="training objective J")
    if validation_loss is not None:
        ax.axhline(validation_loss, color="C1", linestyle="--", label="validation loss (final)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cost J")
    ax.set_title(title)
    if curve.shape[0] > 1 and np.all(curve > 0) and curve.max() / curve.min() > 100:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_learning_rates(
    curves: Mapping[float, Sequence[float] | np.ndarray],
    path: str | os.PathLike,
    *,
    title: str = "Cost for different learning rates",
) -> Path:
    """The course's comparison: one cost curve per learning rate on shared axes.

    Args:
      curves: ``{learning_rate: loss_history}``.
      path: the PNG file to write.
    """
    if not curves:
        raise ValueError("curves must hold at least one learning rate")
    fig = _new_figure()
    ax = fig.add_subplot()
    for lr, values in curves.items():
        curve = _as_curve(values, f"curves[{lr}]")
        ax.plot(np.arange(curve.shape[0]), curve, label=f"learning rate {lr:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost J")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", frameon=True)
    return _save(fig, path)


def plot_cv_scores(
    Cs: Sequence[float] | np.ndarray,
    scores: np.ndarray,
    path: str | os.PathLike,
    *,
    chosen: float,
    scoring: str = "accuracy",
    title: str = "Cross-validation",
) -> Path:
    """The held-out score against C (log axis): the fold mean, ± one standard deviation, each
    fold, and the chosen C.

    Args:
      Cs: (C,) the values of C.
      scores: (F, C) each fold's held-out score.
      path: the PNG file to write.
      chosen: the chosen C (a vertical line).
      scoring: the score's name (the y-axis label).
    """
    Cs = np.asarray(Cs, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != Cs.shape[0] or Cs.shape[0] == 0:
        raise ValueError(f"scores must have shape (folds, {Cs.shape[0]}), got {scores.shape}")
    mean, std = scores.mean(axis=0), scores.std(axis=0)
    fig = _new_figure()
    ax = fig.add_subplot()
    for fold in scores:
        ax.plot(Cs, fold, color="0.75", linewidth=0.8)
    ax.plot(Cs, mean, color="C0", marker="o", label=f"mean over {scores.shape[0]} folds")
    ax.fill_between(Cs, mean - std, mean + std, color="C0", alpha=0.2, label="± 1 std")
    ax.axvline(chosen, color="C1", linestyle="--", label=f"chosen C = {chosen:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("C (inverse regularization strength)")
    ax.set_ylabel(f"held-out {scoring}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
