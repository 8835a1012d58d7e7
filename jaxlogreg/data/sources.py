"""The data a run configures: the ``[data]`` section of a TOML config, loaded.

- :class:`DataConfig`: where the examples come from (synthetic data, the course's cat/non-cat
  images or a file) and how they are split; it checks its own values when created.
- :func:`load_splits`: the training data and the validation data (a separate file, the
  course's test set, or a fraction held out of the training data).
- :func:`load_file`: one data file, read with the config's label column, array keys and labels
  file; with ``labels="optional"`` (prediction) a file of features only.

A LIBSVM file stays sparse (CSR), ``n_features`` wide when given. Columns are matched by name
where both sides have names (``feature_names``, a validation file against the training file),
else taken in order (docs/cli.md, "Your own data"). Errors are ``ValueError`` (a
:class:`~jaxlogreg.data.loaders.DataFileError` for a bad file) or ``FileNotFoundError``; the
messages of :class:`DataConfig` start with the key's name.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any, NamedTuple

from jaxlogreg.core import checks as v
from jaxlogreg.data.datasets import Dataset, make_classification, train_test_split
from jaxlogreg.data.loaders import (
    FORMATS,
    DataFileError,
    PathLike,
    load_catvnoncat,
    load_dataset,
)

CATVNONCAT_ENV = "JAXLOGREG_CATVNONCAT_DIR"
DATA_SOURCES = ("synthetic", "catvnoncat", "file")
MAX_SYNTHETIC_VALUES = 10**9
"""The largest ``n_samples * n_features`` of synthetic data (4 GB of float32 features)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the examples come from and how they are split and scaled.

    Attributes:
      source: "synthetic" (:func:`~jaxlogreg.data.datasets.make_classification`), "catvnoncat"
        (the course's images; ``path`` is the folder with the two .h5 files, or
        ``$JAXLOGREG_CATVNONCAT_DIR``) or "file" (``path`` is a .csv/.npz/.npy/.h5/.svm file
        read by :func:`~jaxlogreg.data.loaders.load_dataset`).
      path: data file or folder ("" for synthetic data).
      label_column: the label column of a CSV file.
      x_key, y_key: array names inside .npz/.h5 files.
      y_path: the labels file of a .npy features file ``path``.
      validation_path: a separate validation file; "" holds ``validation_fraction`` out of
        the training data instead (catvnoncat uses the course's test set).
      validation_fraction: share held out for validation, in [0, 1); 0 for none.
      standardize: scale features to mean 0, std 1 with statistics of the training part
        (sparse features, from LIBSVM files: std 1 only, not centered, so they stay sparse).
      seed: seed of the synthetic data and of the split.
      n_samples, n_features, n_classes, separation, label_noise: synthetic data only;
        ``n_samples * n_features`` is at most :data:`MAX_SYNTHETIC_VALUES`.
    """

    source: str = "synthetic"
    path: str = ""
    label_column: str = "label"
    x_key: str = "X"
    y_key: str = "y"
    y_path: str = ""
    validation_path: str = ""
    validation_fraction: float = 0.2
    standardize: bool = False
    seed: int = 0
    n_samples: int = 1000
    n_features: int = 20
    n_classes: int = 2
    separation: float = 3.0
    label_noise: float = 0.05

    def __post_init__(self) -> None:
        v.check_choice(self.source, "source", DATA_SOURCES)
        if self.source != "synthetic" and not self.path:
            what = "data file" if self.source == "file" else "folder holding the course's .h5 files"
            hint = f" (or set {CATVNONCAT_ENV})" if self.source == "catvnoncat" else ""
            raise ValueError(f"path must name the {what} for source = {self.source!r}{hint}")
        if not _in_range(self.validation_fraction, upper_open=True):
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {v.show(self.validation_fraction)}"
            )
        m = v.check_int_at_least(self.n_samples, "n_samples", 1)
        n = v.check_int_at_least(self.n_features, "n_features", 1)
        v.check_int_at_least(self.n_classes, "n_classes", 2)
        v.check_int_at_least(self.seed, "seed", 0)
        v.check_positive(self.separation, "separation", allow_zero=True)
        if not _in_range(self.label_noise, upper_open=False):
            raise ValueError(f"label_noise must be in [0, 1], got {v.show(self.label_noise)}")
        if self.source == "synthetic" and m * n > MAX_SYNTHETIC_VALUES:
            raise ValueError(
                f"n_samples * n_features must be at most {MAX_SYNTHETIC_VALUES:,}, got "
                f"n_samples = {m:,} and n_features = {n:,}: {m * n:,} values, "
                f"{m * n * 4 / 2**30:,.1f} GiB of float32 features"
            )


def _in_range(x: Any, *, upper_open: bool) -> bool:
    """``x`` is a real number in [0, 1) (``upper_open``) or [0, 1]."""
    if isinstance(x, bool) or not isinstance(x, Real):
        return False
    return 0 <= x < 1 if upper_open else 0 <= x <= 1


class Splits(NamedTuple):
    """Training and validation data as loaded (before feature scaling)."""

    train: Dataset
    validation: Dataset | None
    description: str
    class_names: tuple[Any, ...] | None


def load_splits(config: DataConfig, dtype: str = "float32", n_features: int | None = None,
                feature_names: Sequence[str] | None = None) -> Splits:
    """The training and validation data of a ``[data]`` section, with ``X`` in ``dtype``.

    ``n_features`` is the width of LIBSVM files (default: the training file's largest index;
    a LIBSVM validation file then gets the training data's width, so its features line up even
    where its own largest index is smaller). Other formats have their own width.
    ``feature_names`` (a saved model's) orders the columns of both parts; without it a
    validation file's columns are matched to the training file's (module docstring).
    """
    if config.source == "catvnoncat":
        return _catvnoncat(config.path, dtype)
    if config.source == "synthetic":
        full = make_classification(
            config.n_samples,
            config.n_features,
            config.n_classes,
            seed=config.seed,
            separation=config.separation,
            label_noise=config.label_noise,
            dtype=dtype,
        )
        description = full.source
    else:
        full = load_file(config.path, config, dtype=dtype, n_features=n_features,
                         feature_names=feature_names)
        description = config.path
    if config.validation_path:
        if Path(config.validation_path).suffix.lower() == ".npy":
            raise ValueError(
                f"validation_path {config.validation_path} is a .npy file of features only "
                "(y_path holds the labels of path); store the validation data with its labels "
                "in one .npz, .csv, .h5 or LIBSVM file"
            )
        width = full.n_features if n_features is None else n_features
        validation = load_file(config.validation_path, config, dtype=dtype, n_features=width,
                               feature_names=feature_names)
        if feature_names is None:
            validation = _match_columns(validation, full.feature_names, "the training data's",
                                        config.label_column)
        description = f"{description}, validation {config.validation_path}"
        return Splits(full, validation, description, full.classes)
    fraction = config.validation_fraction
    if fraction == 0:
        return Splits(full, None, description, full.classes)
    try:
        X_tr, X_va, y_tr, y_va = train_test_split(
            full.X, full.y, test_size=fraction, seed=config.seed
        )
    except ValueError as err:
        raise ValueError(
            f"validation_fraction = {fraction:g} cannot split the {full.n_samples} sample(s) of "
            f"{description}: {err}"
        ) from None
    return Splits(
        Dataset(X_tr, y_tr, full.feature_names, full.classes, source=full.source),
        Dataset(X_va, y_va, full.feature_names, full.classes, source=full.source),
        f"{description}, {fraction:g} held out for validation",
        full.classes,
    )


def _catvnoncat(path: str, dtype: str) -> Splits:
    """The course's training set, and its test set as the validation data."""
    if not Path(path).is_dir():
        from_env = os.environ.get(CATVNONCAT_ENV, "") == path
        exists = os.path.exists(path)
        error = NotADirectoryError if exists else FileNotFoundError
        raise error(
            f"catvnoncat folder {path}{f' (from {CATVNONCAT_ENV})' if from_env else ''} "
            f"{'is not a folder' if exists else 'does not exist'}; point data.path or "
            f"{CATVNONCAT_ENV} to the folder holding train_catvnoncat.h5 and test_catvnoncat.h5"
        )
    train, test = load_catvnoncat(path, dtype=dtype)
    return Splits(
        train, test, f"catvnoncat ({path}), validation = the course's test set", train.classes
    )


def load_file(path: PathLike, config: DataConfig, *, labels: str = "required",
              dtype: str = "float32", n_features: int | None = None,
              feature_names: Sequence[str] | None = None) -> Dataset:
    """One data file: ``labels="required"`` for training and evaluation; ``"optional"`` for
    prediction (``y`` is then None when absent, a CSV's label column is dropped unread and a
    CSV may have no header). ``n_features`` is the width of a LIBSVM file (None: its largest
    index), ignored by other formats; ``feature_names`` (a saved model's) orders its columns
    by name (module docstring)."""
    options = _loader_options(path, config, n_features)
    data = load_dataset(path, labels=labels, dtype=dtype, **options)
    return _match_columns(data, feature_names, "the model's", config.label_column)


def _match_columns(
    data: Dataset, names: Sequence[str] | None, whose: str, label_column: str
) -> Dataset:
    """``data`` with its columns in the order of ``names``, matched by name; unchanged when
    either side has no names. Other names than ``names`` raise :class:`DataFileError`."""
    own = data.feature_names
    if names is None or own is None or tuple(own) == tuple(names):
        return data
    own_set, expected = set(own), set(names)
    missing = [name for name in names if name not in own_set]
    unexpected = [name for name in own if name not in expected]
    if missing or unexpected or len(own) != len(names):
        problems = []
        if missing:
            problems.append(f"missing column(s) {_listed(missing)}")
        if unexpected:
            problems.append(f"unexpected column(s) {_listed(unexpected)} (label_column is "
                            f"{label_column!r})")
        raise DataFileError(
            data.source,
            f"its columns do not match {whose} {len(names)} features {_listed(list(names))}: "
            f"{', '.join(problems) or 'repeated column names'}",
        )
    position = {name: j for j, name in enumerate(own)}
    X = data.X[:, [position[name] for name in names]]
    return dataclasses.replace(data, X=X, feature_names=tuple(names))


def _listed(names: list[str], limit: int = 10) -> str:
    """``names`` for a message: the first ``limit`` of them, and how many there are."""
    if len(names) <= limit:
        return repr(names)
    return repr(names[:limit])[:-1] + f", ...] ({len(names)} in all)"


def _loader_options(
    path: PathLike, config: DataConfig, n_features: int | None = None
) -> dict[str, Any]:
    """The config's keys (and ``n_features``) that the loader of ``path`` takes."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind == "svmlight":
        return {} if n_features is None else {"n_features": n_features}
    if kind == "csv":
        return {"label_column": config.label_column}
    if kind in ("npz", "hdf5"):
        return {"x_key": config.x_key, "y_key": config.y_key}
    if kind == "npy":
        return {"y_path": config.y_path or None}
    return {}
