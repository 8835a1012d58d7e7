"""Checkpoints of the training loop: save every N iterations, resume from the latest.

A checkpoint is the whole :class:`jaxlogreg.train.LoopState` (parameters, optimizer state,
iteration, loss history, the last good parameters, status and the shuffling key), so a resumed
fit continues exactly where the saved one stopped: it runs the same jitted loop
(:func:`jaxlogreg.train.run_segment`) with ``stop_at`` advancing in steps of N, and ends with
the same model as an uninterrupted fit (bit for bit on the same machine). With minibatches,
the position is an epoch boundary.

File format (no pickle)::

    <directory>/ckpt-000000040.npz     one file per checkpoint, named by iteration
      header      0-d unicode array: JSON with format, version, the TrainConfig, the iteration,
                  the tree structure and each leaf's path, shape and dtype
      leaf_0000   the LoopState leaves in jax.tree order (bfloat16 stored as uint16 bits)
      ...

Each file is written to a temporary file in the same directory, flushed to disk, then renamed
over the final name with ``os.replace`` (atomic on POSIX): a crash leaves the previous
checkpoints intact and never a half-written ``ckpt-*.npz``. In a multi-process run only process
0 writes; every process reads (the directory must be shared).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg import _validation as v
from jaxlogreg import train

FORMAT = "jaxlogreg.checkpoint"
VERSION = 1
_NAME = re.compile(r"^ckpt-(\d{9})\.npz$")
_NUMPY_KINDS = "biuf"

PathLike = str | os.PathLike


def _config_json(config: train.TrainConfig) -> dict[str, Any]:
    """The config as plain JSON values (tuples become lists; unknown objects their repr)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=repr))


def _describe_tree(state: Any) -> tuple[str, list[dict[str, Any]]]:
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(state)
    leaves = [
        {"path": jax.tree_util.keystr(path), "shape": list(np.shape(leaf)),
         "dtype": str(jnp.dtype(leaf.dtype))}
        for path, leaf in leaves_with_paths
    ]
    return str(treedef), leaves


def _to_storable(leaf: np.ndarray) -> np.ndarray:
    """NumPy-native dtypes as they are; others (bfloat16) as unsigned integers of their bits."""
    if leaf.dtype.kind in _NUMPY_KINDS and leaf.dtype.name in np.sctypeDict:
        return leaf
    return leaf.view(np.dtype(f"uint{leaf.dtype.itemsize * 8}"))


def save_checkpoint(path: PathLike, state: train.LoopState, config: train.TrainConfig) -> Path:
    """Write ``state`` (with ``config`` in the header) to ``path`` atomically.

    Returns:
      ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    host = jax.device_get(state)  # replicated or single-device arrays -> NumPy
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(host)]
    treedef, described = _describe_tree(state)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": _config_json(config),
        "iteration": int(host.iteration),
        "n_recorded": int(host.n_recorded),
        "status": int(host.status),
        "tree": treedef,
        "leaves": described,
        "jax_version": jax.__version__,
    }
    arrays = {f"leaf_{i:04d}": _to_storable(leaf) for i, leaf in enumerate(leaves)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_header(path: PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint file."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a jaxlogreg checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise ValueError(
            f"{path}: checkpoint version {header.get('version')} is not supported "
            f"(this jaxlogreg reads version {VERSION})"
        )
    return header


def load_checkpoint(
    path: PathLike, template: train.LoopState, config: train.TrainConfig | None = None
) -> train.LoopState:
    """Read a checkpoint into the structure, dtypes and device placement of ``template``.

    Args:
      path: a checkpoint file.
      template: a state of the same fit, e.g. :func:`jaxlogreg.train.init_state` of the same
        config and parameter shapes; its leaves give the devices (shardings) to restore onto.
      config: if given, must equal the config saved in the checkpoint.

    Raises:
      ValueError: the checkpoint belongs to another config or another state structure.
    """
    header = read_header(path)
    if config is not None:
        saved, current = header["config"], _config_json(config)
        if saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            details = ", ".join(
                f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}" for k in diff
            )
            raise ValueError(
                f"{path}: the checkpoint was saved with another training config ({details}); "
                "resume with the same config or use another checkpoint directory"
            )
    treedef, described = _describe_tree(template)
    if header["tree"] != treedef or header["leaves"] != described:
        raise ValueError(
            f"{path}: the saved state does not match this fit's state (different model size, "
            f"number of classes, solver or max_iter); saved leaves "
            f"{[(d['path'], d['shape']) for d in header['leaves']]}, expected "
            f"{[(d['path'], d['shape']) for d in described]}"
        )
    template_leaves, tree = jax.tree.flatten(template)
    restored = []
    with np.load(path, allow_pickle=False) as z:
        for i, (like, desc) in enumerate(zip(template_leaves, described, strict=True)):
            leaf = z[f"leaf_{i:04d}"].view(jnp.dtype(desc["dtype"]))
            sharding = getattr(like, "sharding", None)
            restored.append(jax.device_put(leaf, sharding) if sharding is not None else leaf)
    return jax.tree.unflatten(tree, restored)


def list_checkpoints(directory: PathLike) -> list[Path]:
    """Checkpoint files of ``directory``, oldest first (temporary files are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


@dataclasses.dataclass
class Checkpointer:
    """Save the loop state every ``every`` iterations to ``directory``; resume from the latest.

    Pass it to :func:`jaxlogreg.train.fit` (``fit(X, y, config, checkpoint=Checkpointer(d, 10))``)
    or call :meth:`run` with a prepared state.

    Attributes:
      directory: where ``ckpt-<iteration>.npz`` files go (created if missing).
      every: iterations (epochs with minibatches) between checkpoints, at least 1.
      keep: how many of the newest checkpoints to keep (older ones are deleted), at least 1.
      resume: start from the latest checkpoint in ``directory`` when there is one.
    """

    directory: PathLike
    every: int = 10
    keep: int = 2
    resume: bool = True

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        v.check_int_at_least(self.every, "every", 1)
        v.check_int_at_least(self.keep, "keep", 1)

    def path_for(self, iteration: int) -> Path:
        return Path(self.directory) / f"ckpt-{iteration:09d}.npz"

    def save(self, state: train.LoopState, config: train.TrainConfig) -> Path | None:
        """Write a checkpoint of ``state`` (process 0 only) and prune old ones."""
        if jax.process_index() != 0:
            return None
        path = save_checkpoint(self.path_for(int(state.iteration)), state, config)
        for old in list_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def restore(
        self, template: train.LoopState, config: train.TrainConfig
    ) -> train.LoopState | None:
        """The latest checkpoint loaded like ``template``, or None when there is none."""
        path = latest_checkpoint(self.directory)
        return None if path is None else load_checkpoint(path, template, config)

    def run(
        self,
        state: train.LoopState,
        data: train.TrainData,
        config: train.TrainConfig,
        *,
        callback: Callable[[int, float], None] | None = None,
        layout: Any = None,
    ) -> train.LoopState:
        """Run the loop to the end from the latest checkpoint (or ``state``), saving every N.

        ``callback(iteration, loss)`` is called after each checkpoint is written.
        """
        if self.resume:
            restored = self.restore(state, config)
            state = state if restored is None else restored
        hyper, spec = train.hyper_of(config), train.LoopSpec.of(config, layout)
        while True:
            iteration = int(state.iteration)
            if (
                int(state.status) != train.RUNNING
                or iteration >= config.max_iter
                or int(state.n_recorded) >= config.max_iter
            ):
                return state
            stop_at = min((iteration // self.every + 1) * self.every, config.max_iter)
            stop = jnp.asarray(stop_at, jnp.int32)
            state = train.run_segment(state, data, hyper, stop, spec=spec)
            self.save(state, config)
            if callback is not None:
                n_recorded = int(state.n_recorded)
                callback(int(state.iteration), float(state.loss_history[n_recorded - 1]))
