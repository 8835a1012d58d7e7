"""A training run with checkpoints, for test_checkpoint.py (not collected by pytest).

Usage: python tests/_ckpt_worker.py CHECKPOINT_DIR OUT_FILE [SLEEP_S]
Trains on the data of tests/_ckpt_cases.py with a Checkpointer (resuming from the latest
checkpoint in CHECKPOINT_DIR) and writes the final model to OUT_FILE. SLEEP_S pauses at each
checkpoint so that the test can kill the process mid-run.
"""

import sys
import time

sys.path[:0] = [__file__.rsplit("/tests/", 1)[0], __file__.rsplit("/", 1)[0]]

import numpy as np
from _ckpt_cases import CONFIG, EVERY, make_data

import jaxlogreg as jl


def main(directory: str, out_file: str, sleep_s: float) -> None:
    X, y = make_data()
    checkpointer = jl.Checkpointer(directory, every=EVERY)

    def callback(iteration: int, loss: float) -> None:  # every EVERY epochs, with the checkpoint
        print(f"checkpoint {iteration}", flush=True)
        time.sleep(sleep_s)

    result = jl.fit(X, y, CONFIG, checkpoint=checkpointer, callback=callback,
                    n_segments=CONFIG.max_iter // EVERY)
    np.savez(out_file, w=result.params.w, b=result.params.b, loss_history=result.loss_history,
             n_iter=result.n_iter)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
