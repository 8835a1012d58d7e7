"""Checkpoints of the training loop: save every N iterations, resume from the latest.

A checkpoint is the whole loop state (:class:`jaxlogreg.training.loop.LoopState`), so a resumed
fit ends with the model of an uninterrupted one (bit for bit on the same machine); with
minibatches the position is an epoch boundary. The fit pipeline calls
:meth:`Checkpointer.restore` before the loop and :meth:`Checkpointer.save` between segments.
A file ``ckpt-<iteration>.npz`` is an archive of :mod:`jaxlogreg.data.archive` (no pickle,
atomic writes): a JSON header (settings, iteration, data fingerprint, each leaf's path, shape
and dtype) and the leaves. Other settings or data raise :class:`CheckpointMismatch`; a damaged
file is skipped with a ``RuntimeWarning``, and :class:`CheckpointError` names every damaged file
when none is intact. Only process 0 writes. The format and its rules: docs/scaling.md,
"Checkpoints".
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlogreg.core import checks as v
from jaxlogreg.data.archive import ArchiveError, array_bytes, jsonable, open_archive, write_archive
from jaxlogreg.training.loop import LoopState
from jaxlogreg.training.settings import TrainConfig

FORMAT = "jaxlogreg.checkpoint"
VERSION = 2
_NAME = re.compile(r"^ckpt-(\d{9})\.npz$")
_NUMPY_KINDS = "biuf"
_IGNORED_SETTINGS = ("verbose", "warm_start")  # do not change the fit
FINGERPRINT_RTOL = 1e-4
_NON_FINITE = ("inf", "-inf", "nan")  # how jsonable stores non-finite floats

PathLike = str | os.PathLike


class CheckpointError(ArchiveError):
    """A checkpoint that cannot be resumed from; ``path`` names it."""

    what = "checkpoint"


class CheckpointMismatch(CheckpointError):
    """An intact checkpoint of another fit: other settings, model size or data."""


def _settings_json(config: TrainConfig) -> dict[str, Any]:
    fields = dataclasses.asdict(config)
    return jsonable({k: x for k, x in fields.items() if k not in _IGNORED_SETTINGS})


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


def save_checkpoint(
    path: PathLike, state: LoopState, config: TrainConfig, fingerprint: list[float]
) -> Path:
    """Write ``state`` (with the settings and the data's fingerprint) to ``path`` atomically."""
    host = jax.device_get(state)  # replicated or single-device arrays -> NumPy
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(host)]
    treedef, described = _describe_tree(state)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": _settings_json(config),
        "iteration": int(host.iteration),
        "n_recorded": int(host.n_recorded),
        "status": int(host.status),
        "fingerprint": list(fingerprint),
        "tree": treedef,
        "leaves": described,
        "jax_version": jax.__version__,
    }
    arrays = {f"leaf_{i:04d}": _to_storable(leaf) for i, leaf in enumerate(leaves)}
    return write_archive(path, header, arrays)


def read_header(path: PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint file (format and version checked)."""
    with open_archive(path, CheckpointError) as archive:
        return _checked_header(archive)


def _checked_header(archive: Any) -> dict[str, Any]:
    header = archive.header()
    if header.get("format") != FORMAT:
        raise archive.fail(f"not a jaxlogreg checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise archive.fail(
            f"checkpoint version {header.get('version')!r} is not supported (this jaxlogreg "
            f"reads version {VERSION}); start afresh in an empty directory"
        )
    for key, typ in (("config", dict), ("leaves", list), ("tree", str), ("fingerprint", list)):
        if not isinstance(header.get(key), typ):
            raise archive.fail(f"header field {key!r} must be a {typ.__name__}")
    for leaf in header["leaves"]:
        if not (isinstance(leaf, dict) and isinstance(leaf.get("path"), str)
                and isinstance(leaf.get("dtype"), str) and isinstance(leaf.get("shape"), list)
                and all(isinstance(d, int) and d >= 0 for d in leaf["shape"])):
            raise archive.fail(f"malformed leaf entry {leaf!r} in the header")
    if not all(isinstance(x, int | float) or x in _NON_FINITE for x in header["fingerprint"]):
        raise archive.fail("header field 'fingerprint' must be a list of numbers")
    return header


def load_checkpoint(
    path: PathLike,
    template: LoopState,
    config: TrainConfig | None = None,
    fingerprint: list[float] | None = None,
    *,
    force: bool = False,
) -> LoopState:
    """Read a checkpoint into the structure, dtypes and device placement of ``template``.

    Args:
      path: a checkpoint file.
      template: a state of the same fit (e.g. its starting state); its leaves give the
        devices (shardings) to restore onto.
      config: if given, must equal the settings saved in the checkpoint.
      fingerprint: if given, must match the data fingerprint saved in the checkpoint
        (unless ``force``).

    Raises:
      CheckpointMismatch: it belongs to other settings, another state structure or other data.
      CheckpointError: the file is damaged.
    """
    with open_archive(path, CheckpointError) as archive:
        header = _checked_header(archive)
        _check_compatible(path, header, template, config, fingerprint, force)
        template_leaves, tree = jax.tree.flatten(template)
        described = header["leaves"]
        archive.check_names({"header"} | {f"leaf_{i:04d}" for i in range(len(described))})
        restored = []
        for i, (like, desc) in enumerate(zip(template_leaves, described, strict=True)):
            raw = archive.array(f"leaf_{i:04d}", array_bytes(desc))
            dtype = jnp.dtype(desc["dtype"])
            if raw.shape != tuple(desc["shape"]) or raw.dtype.itemsize != dtype.itemsize:
                raise archive.fail(f"leaf {desc['path']} does not match its header entry")
            leaf = raw.view(dtype)
            sharding = getattr(like, "sharding", None)
            restored.append(jax.device_put(leaf, sharding) if sharding is not None else leaf)
    state = jax.tree.unflatten(tree, restored)
    for name in ("params", "last_good"):
        if not all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(
                getattr(state, name))):
            raise CheckpointError(path, f"the saved {name} hold NaN or inf")
    return state


def _check_compatible(path, header, template, config, fingerprint, force) -> None:
    if config is not None:
        saved, current = header["config"], _settings_json(config)
        if saved != current:
            diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            details = ", ".join(f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}" for k in diff)
            raise CheckpointMismatch(
                path,
                f"it was saved with other settings ({details}); resume with the same settings "
                "or use another checkpoint directory"
            )
    treedef, described = _describe_tree(template)
    if header["tree"] != treedef or header["leaves"] != described:
        raise CheckpointMismatch(
            path,
            "the saved state does not match this fit's state (different model size, number of "
            "classes, dtype, solver or max_iter); saved leaves "
            f"{[(d['path'], d['shape'], d['dtype']) for d in header['leaves']]}, expected "
            f"{[(d['path'], d['shape'], d['dtype']) for d in described]}"
        )
    if fingerprint is not None and not force and not _same_data(header["fingerprint"], fingerprint):
        raise CheckpointMismatch(
            path,
            "it was saved while training on other data (the data's fingerprint differs: column "
            "sums, row order, labels or weights changed); resume on the same data, use another "
            "checkpoint directory, or pass Checkpointer(..., force=True) to continue anyway"
        )


def _same_data(saved: list[Any], current: list[float]) -> bool:
    if len(saved) != len(current):
        return False
    # float() reads the strings "inf", "-inf", "nan" that JSON stores for non-finite sums
    saved_arr = np.asarray([float(x) for x in saved], np.float64)
    current_arr = np.asarray(current, np.float64)
    finite = np.abs(current_arr[np.isfinite(current_arr)])
    scale = max(float(finite.max()) if finite.size else 0.0, 1.0)
    return bool(np.allclose(saved_arr, current_arr, rtol=FINGERPRINT_RTOL,
                            atol=FINGERPRINT_RTOL * 1e-3 * scale))


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

    Pass it to :func:`jaxlogreg.fit` (``fit(X, y, config, checkpoint=Checkpointer(d, 10))``),
    ``fit_distributed`` or ``fit_streaming``.

    Attributes:
      directory: where ``ckpt-<iteration>.npz`` files go (created if missing).
      every: iterations (epochs with minibatches) between checkpoints, at least 1.
      keep: how many of the newest checkpoints to keep (older ones are deleted), at least 1.
      resume: start from the latest intact checkpoint in ``directory`` when there is one.
      force: resume even when the training data differ from those the checkpoint was saved on.
    """

    directory: PathLike
    every: int = 10
    keep: int = 2
    resume: bool = True
    force: bool = False

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.every = v.check_int_at_least(self.every, "every", 1)
        self.keep = v.check_int_at_least(self.keep, "keep", 1)
        for name in ("resume", "force"):
            value = getattr(self, name)
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {v.show(value)}")
            setattr(self, name, bool(value))

    def path_for(self, iteration: int) -> Path:
        return Path(self.directory) / f"ckpt-{iteration:09d}.npz"

    def save(self, state: LoopState, config: TrainConfig, fingerprint: list[float]) -> Path | None:
        """Write a checkpoint of ``state`` (process 0 only) and prune old ones."""
        if jax.process_index() != 0:
            return None
        path = save_checkpoint(self.path_for(int(state.iteration)), state, config, fingerprint)
        for old in list_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def restore(
        self, template: LoopState, config: TrainConfig, fingerprint: list[float]
    ) -> LoopState | None:
        """The newest intact checkpoint of this fit loaded like ``template``; None if there is
        none (or ``resume`` is False). Damaged files are skipped with a warning naming them."""
        if not self.resume:
            return None
        found = list_checkpoints(self.directory)
        problems = []
        for k, path in enumerate(reversed(found)):
            try:
                return load_checkpoint(path, template, config, fingerprint, force=self.force)
            except CheckpointMismatch:  # intact, but of another fit: never skipped
                raise
            except CheckpointError as err:
                problems.append(str(err))
                then = "trying the previous checkpoint" if k + 1 < len(found) else "none left"
                warnings.warn(f"{err}; {then}", RuntimeWarning, stacklevel=2)
        if problems:
            raise CheckpointError(
                self.directory,
                "no intact checkpoint to resume from (" + "; ".join(problems) + "); remove the "
                "damaged files, or use Checkpointer(..., resume=False) to start afresh",
            )
        return None
