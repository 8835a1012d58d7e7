"""Data and configs shared by test_distributed.py and its worker processes."""

import numpy as np

from jaxlogreg import TrainConfig

N_SAMPLES = 203  # not divisible by the 4 devices of the 2-process run
N_FEATURES = 6

CASES = {
    "gd": TrainConfig(solver="gd", learning_rate=0.5, max_iter=25, tol=0.0, C=np.inf),
    "lbfgs": TrainConfig(solver="lbfgs", max_iter=8, tol=0.0, C=1.0 / (1e-2 * N_SAMPLES)),
    "adam": TrainConfig(solver="adam", learning_rate=0.05, batch_size=32, max_iter=4, tol=0.0,
                        C=np.inf),
    # the two processes hold different class proportions (58.8% and 51.5% ones): "balanced"
    # must use the (weighted) class counts of all rows, not of the process's own rows
    "balanced": TrainConfig(solver="lbfgs", max_iter=8, tol=0.0, class_weight="balanced"),
}
SEED = 7


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(np.float32)
    z = X @ np.linspace(-1.0, 1.0, N_FEATURES) + 0.3
    y = (rng.random(N_SAMPLES) < 1 / (1 + np.exp(-z))).astype(np.float32)
    sample_weight = rng.uniform(0.5, 2.0, size=N_SAMPLES).astype(np.float32)
    return X, y, sample_weight


def sample_weight_for(case: str, sample_weight: np.ndarray) -> np.ndarray | None:
    """Only the "balanced" case is weighted (its class weights multiply the sample weights)."""
    return sample_weight if case == "balanced" else None
