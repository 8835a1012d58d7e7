"""One process of the 2-process test in test_distributed.py (not collected by pytest).

Usage: python tests/_dist_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR
Each process gets 2 simulated CPU devices and writes its models to OUT_DIR/models_<id>.npz.
"""

import sys

import jax

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_platforms", "cpu")

import numpy as np

sys.path[:0] = [__file__.rsplit("/tests/", 1)[0], __file__.rsplit("/", 1)[0]]
from _dist_cases import CASES, SEED, make_data, sample_weight_for

from jaxlogreg.scale import distributed
from jaxlogreg.training import mesh as mesh_layout


def main(process_id: int, num_processes: int, port: int, out_dir: str) -> None:
    info = distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
    assert info.process_count == num_processes and info.device_count == 2 * num_processes, info
    X, y, sample_weight = make_data()
    mesh = mesh_layout.make_mesh()
    rows = distributed.local_rows(X.shape[0], mesh)
    out = {}
    for name, config in CASES.items():
        sw = sample_weight_for(name, sample_weight)
        # Each process passes only its own rows, as it would after loading its part of a file.
        result = distributed.fit_distributed(
            X[rows], y[rows], config, n_samples=X.shape[0], mesh=mesh, random_state=SEED,
            sample_weight=None if sw is None else sw[rows],
        )
        out[f"{name}_w"], out[f"{name}_b"] = result.params.w, result.params.b
        out[f"{name}_loss"] = np.asarray(result.loss)
    out["rows"] = np.asarray([rows.start, rows.stop])
    np.savez(f"{out_dir}/models_{process_id}.npz", **out)
    distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
