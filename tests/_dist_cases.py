"""Data and configs shared by test_distributed.py and its worker processes."""

import numpy as np

from jaxlogreg.train import TrainConfig

N_SAMPLES = 203  # not divisible by the 4 devices of the 2-process run
N_FEATURES = 6

CASES = {
    "gd": TrainConfig(solver="gd", learning_rate=0.5, max_iter=25, tol=0.0),
    "lbfgs": TrainConfig(solver="lbfgs", max_iter=8, tol=0.0, l2=1e-2),
    "adam": TrainConfig(solver="adam", learning_rate=0.05, batch_size=32, max_iter=4, tol=0.0),
}


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(np.float32)
    z = X @ np.linspace(-1.0, 1.0, N_FEATURES) + 0.3
    y = (rng.random(N_SAMPLES) < 1 / (1 + np.exp(-z))).astype(np.float32)
    return X, y
