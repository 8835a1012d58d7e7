"""8 simulated CPU devices: sharded fits against single-device fits, for test_sharding.py.

Runs in its own process because the device count must be set before JAX's backend starts.
Prints one JSON line: {case: {"max_abs_diff": ..., ...}} (not collected by pytest).
"""

import json
import sys
import tempfile

import jax

jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])
import jaxlogreg as jl
from jaxlogreg.core.gradients import value_and_backward_t
from jaxlogreg.core.model import init_params
from jaxlogreg.scale import checkpoint, sharding
from jaxlogreg.training import mesh as mesh_layout
from jaxlogreg.training.data import device_data, prepare_data
from jaxlogreg.training.problem import validate


def problem(m: int, n: int = 5, n_classes: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(np.float32)
    if n_classes == 2:
        y = (X @ np.linspace(-1, 1, n) + rng.normal(size=m) > 0).astype(np.float32)
    else:
        y = np.argmax(X[:, :n_classes] + rng.normal(size=(m, n_classes)), axis=1)
    return X, y, rng.uniform(0.5, 2.0, size=m).astype(np.float32)


def compare(ref: jl.FitResult, res: jl.FitResult) -> dict:
    return {
        "max_abs_diff": float(max(np.max(np.abs(ref.params.w - res.params.w)),
                                  np.max(np.abs(ref.params.b - res.params.b)))),
        "scale": float(np.max(np.abs(ref.params.w))),
        "loss_diff": abs(ref.loss - res.loss),
        "history_diff": float(np.max(np.abs(ref.loss_history - res.loss_history))),
        "n_iter": [ref.n_iter, res.n_iter],
        "status": [ref.status, res.status],
    }


GD = jl.TrainConfig(solver="gd", learning_rate=0.5, max_iter=30, tol=0.0, C=np.inf)
CASES = {
    # name: (m, n_classes, weighted, config)
    "gd_m203": (203, 2, False, GD),
    "gd_m200_divisible": (200, 2, False, GD),
    "lbfgs_m203": (203, 2, False, jl.TrainConfig(solver="lbfgs", max_iter=10, tol=0.0,
                                                 C=1.0 / (1e-2 * 203))),
    "newton_cg_softmax_weighted_m203": (203, 3, True, jl.TrainConfig(
        solver="newton-cg", max_iter=3, tol=0.0, C=1.0 / (1e-2 * 203))),
    "adam_minibatch_m203": (203, 2, False, jl.TrainConfig(
        solver="adam", learning_rate=0.05, batch_size=24, max_iter=5, tol=0.0, C=np.inf)),
    "softmax_gd_weighted_m203": (203, 3, True, GD),
}


class Interrupted(Exception):
    pass


def stop_at(iteration: int):
    def callback(i, loss):
        if i == iteration:
            raise Interrupted

    return callback


def checkpoint_across_devices(mesh) -> dict:
    """A fit checkpointed on 8 devices resumes on 1 device (and the data fingerprints agree)."""
    X, y, _ = problem(203)
    config = jl.TrainConfig(solver="adam", learning_rate=0.05, batch_size=24, max_iter=6,
                            tol=0.0, random_state=3)
    sharded_fp = device_data(validate(X, y), mesh=mesh).fingerprint()
    single_fp = device_data(validate(X, y)).fingerprint()
    out = {
        "fingerprint_lengths": [len(sharded_fp), len(single_fp)],
        "same_fingerprint": checkpoint._same_data(sharded_fp, single_fp),
    }
    with tempfile.TemporaryDirectory() as d:
        try:
            jl.fit(X, y, config, mesh=mesh, checkpoint=jl.Checkpointer(d, every=2),
                   callback=stop_at(3), n_segments=config.max_iter)
        except Interrupted:
            pass
        out["saved"] = [p.name for p in checkpoint.list_checkpoints(d)]
        seen = []
        try:
            resumed = jl.fit(X, y, config, checkpoint=jl.Checkpointer(d, every=2),
                             callback=lambda i, loss: seen.append(i), n_segments=config.max_iter)
        except checkpoint.CheckpointError as err:
            out["error"] = str(err)[-600:]
            return out
    out["resumed_iterations"] = seen
    out.update(compare(jl.fit(X, y, config), resumed))
    return out


def fit_path_on_the_mesh(mesh) -> dict:
    """Every (fold, C) model of fit_path on 8 devices against the single-device run."""
    from jaxlogreg.training.path import fit_path

    X, y, sw = problem(203, n_classes=3)
    folds = [np.flatnonzero(np.arange(203) % 3 != f) for f in range(3)]
    kwargs = {"folds": folds, "sample_weight": sw, "tol": 1e-6}
    one = fit_path(X, y, [0.1, 10.0], **kwargs)
    eight = fit_path(X, y, [0.1, 10.0], mesh=mesh, **kwargs)
    return {"loss_diff": float(np.max(np.abs(one.loss - eight.loss))),
            "loss_scale": float(np.max(one.loss)),
            "converged": bool(eight.converged.all())}


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    mesh = mesh_layout.make_mesh()
    out = {}
    for name, (m, n_classes, weighted, config) in CASES.items():
        X, y, sw = problem(m, n_classes=n_classes)
        sw = sw if weighted else None
        ref = jl.fit(X, y, config, sample_weight=sw, random_state=3)
        res = jl.fit(X, y, config, sample_weight=sw, random_state=3, mesh=mesh)
        out[name] = compare(ref, res)

    # Layout: padded to a multiple of 8 with zero weight at the end, Xt split by columns.
    X, y, _ = problem(203)
    data = prepare_data(X, y, 2, "float32")
    sharded, layout = sharding.shard_data(data, mesh)
    weights = np.asarray(sharded.sample_weight)
    out["layout"] = {
        "Xt_shape": list(sharded.Xt.shape),
        "Xt_spec": str(sharded.Xt.sharding.spec),
        "y_spec": str(sharded.y.sharding.spec),
        "n_samples": layout.n_samples,
        "real_weights_one": bool(np.all(weights[:203] == 1)),
        "pad_weights_zero": bool(np.all(weights[203:] == 0)),
        "shard_shapes": sorted({tuple(s.data.shape) for s in sharded.Xt.addressable_shards}),
    }

    # The gradient through shard_map + psum equals the compiler-partitioned one.
    params = layout.replicate(init_params(X.shape[1]))
    params = params._replace(w=params.w + 0.1)
    J1, g1 = jax.jit(lambda p, d: value_and_backward_t(p, *d, 0.01))(params, sharded)
    J2, g2 = jax.jit(lambda p, d: sharding.value_and_grad_shard_map(p, d, 0.01, mesh))(
        params, sharded)
    J0, g0 = value_and_backward_t(init_params(X.shape[1])._replace(
        w=jnp.full(X.shape[1], 0.1)), *data, 0.01)
    out["shard_map_gradient"] = {
        "max_abs_diff": float(max(np.max(np.abs(np.asarray(g1.w) - np.asarray(g2.w))),
                                  abs(float(g1.b) - float(g2.b)), abs(float(J1) - float(J2)))),
        "vs_single_device": float(max(np.max(np.abs(np.asarray(g2.w) - np.asarray(g0.w))),
                                      abs(float(J2) - float(J0)))),
        "params_spec": str(g2.w.sharding.spec) if hasattr(g2.w.sharding, "spec") else "",
    }
    out["checkpoint_across_devices"] = checkpoint_across_devices(mesh)
    out["fit_path"] = fit_path_on_the_mesh(mesh)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
