"""PNG plots: they are written, are real PNGs of the expected size, and a missing matplotlib
gives a clear error."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from jaxlogreg.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_loss_curve_png(tmp_path):
    pytest.importorskip("matplotlib")
    curve = 0.7 * np.exp(-np.arange(200) / 50) + 0.1
    path = plots.plot_loss_curve(curve, tmp_path / "loss.png", validation_loss=0.2)
    assert path == tmp_path / "loss.png"
    assert _png_size(path) == (640, 420)


def test_learning_rates_png(tmp_path):
    pytest.importorskip("matplotlib")
    curves = {lr: 0.7 * np.exp(-lr * np.arange(100)) for lr in (0.01, 0.001, 0.0001)}
    path = plots.plot_learning_rates(curves, tmp_path / "lr.png")
    assert _png_size(path) == (640, 420)


def test_bad_curves_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="loss_history must be a non-empty 1-D"):
        plots.plot_loss_curve([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one learning rate"):
        plots.plot_learning_rates({}, tmp_path / "x.png")


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(plots.PlotUnavailableError, match=r"pip install 'jaxlogreg\[plot\]'"):
        plots.plot_loss_curve([1.0, 0.5], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
