"""The fit that test_checkpoint.py interrupts and resumes (shared with _ckpt_worker.py)."""

import numpy as np

from jaxlogreg import TrainConfig

CONFIG = TrainConfig(solver="adam", learning_rate=0.05, batch_size=16, max_iter=24, tol=0.0,
                     C=float("inf"), random_state=11)
EVERY = 3  # checkpoint every 3 epochs: 8 checkpoints


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 5)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) + rng.normal(size=150) > 0).astype(np.float32)
    return X, y
