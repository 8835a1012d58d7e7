"""Run configurations: TOML files with three sections, read into frozen dataclasses.

A config file has the sections ``[data]``, ``[train]`` and ``[output]``; every key is optional
and defaults to the built-in default config (:class:`Config`, identical to
``configs/default.toml``). Unknown sections or keys, and values of the wrong type, raise
:class:`ConfigError` naming the key::

    unknown key 'train.lr' in configs/x.toml; known keys in [train]: solver, learning_rate, ...
    train.max_iter must be an integer, got 'abc'

Overrides ``"section.key=value"`` (the CLI's ``--set``) are applied after the file. The value
is read as a TOML value (``0.01``, ``true``, ``inf``, ``"text"``); anything that is not valid
TOML is taken as a plain string (``--set train.solver=adam``), and ``none`` resets an optional
key (``--set train.learning_rate=none``).

Paths: a relative path written in a config file is relative to that file's folder; a path
given on the command line is relative to the current directory. For ``data.source =
"catvnoncat"`` the environment variable ``JAXLOGREG_CATVNONCAT_DIR``, when set, replaces the
file's ``data.path`` (a ``--set data.path=...`` still wins over both).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from jaxlogreg.solvers import LINE_SEARCH_SOLVERS, check_solver, make_optimizer

CATVNONCAT_ENV = "JAXLOGREG_CATVNONCAT_DIR"
DATA_SOURCES = ("synthetic", "catvnoncat", "file")
_PATH_KEYS = {("data", "path"), ("data", "validation_path"), ("data", "y_path"), ("output", "dir")}


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the examples come from and how they are split and scaled.

    Attributes:
      source: "synthetic" (``jaxlogreg.data.make_classification``), "catvnoncat" (the course's
        images; ``path`` is the folder with the two .h5 files) or "file" (``path`` is a
        .csv/.npz/.npy/.h5/.svm file read by ``jaxlogreg.data.load_dataset``).
      path: data file or folder ("" for synthetic data).
      label_column: the label column of a CSV file.
      x_key, y_key: array names inside .npz/.h5 files.
      y_path: the labels file for a .npy features file.
      validation_path: a separate validation file; "" splits ``validation_fraction`` off the
        training data instead (catvnoncat uses the course's test set).
      validation_fraction: share held out for validation, in [0, 1); 0 for none.
      standardize: scale features to mean 0, std 1 with statistics of the training part (the
        scaling is saved in the model file and applied again at prediction).
      seed: seed of the synthetic data and of the split.
      n_samples, n_features, n_classes, separation, label_noise: synthetic data only.
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


@dataclasses.dataclass(frozen=True)
class TrainSection:
    """``[train]``: the model and the optimizer (the :class:`LogisticRegression` parameters).

    Attributes:
      solver: "lbfgs", "gd", "sgd", "adam", "adamw" or an optax optimizer name.
      learning_rate: α (absent: 0.1 for gd, 0.01 otherwise; unused by lbfgs).
      max_iter: iterations (epochs with ``batch_size``).
      tol: stopping tolerance; 0 runs all ``max_iter`` iterations.
      C: inverse L2 strength as in scikit-learn, λ = 1 / (C · n_samples); ``inf`` for none.
      fit_intercept: learn b (false keeps b = 0).
      batch_size: minibatch size (absent: full batch).
      class_weight: "balanced" (absent: all classes weigh 1).
      grad: "manual" (hand-written backward pass) or "autodiff" (jax.grad).
      dtype: "float32" or "float64".
      seed: seed of the minibatch shuffling.
      solver_params: extra optax arguments, e.g. ``{ momentum = 0.5 }``.
    """

    solver: str = "lbfgs"
    learning_rate: float | None = None
    max_iter: int = 100
    tol: float = 1e-4
    C: float = 1.0
    fit_intercept: bool = True
    batch_size: int | None = None
    class_weight: str | None = None
    grad: str = "manual"
    dtype: str = "float32"
    seed: int = 0
    solver_params: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """``[output]``: what ``jaxlogreg train`` writes.

    Attributes:
      dir: folder for model.npz, metrics.json and loss_curve.png ("" writes nothing; the
        CLI's ``--out DIR`` sets it).
      plot: write loss_curve.png (needs matplotlib).
    """

    dir: str = ""
    plot: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run configuration; ``Config()`` is the built-in default."""

    data: DataConfig = DataConfig()
    train: TrainSection = TrainSection()
    output: OutputConfig = OutputConfig()
    origin: str = dataclasses.field(default="<built-in default>", compare=False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready dict: sections of plain values (``inf`` as the string "inf", None kept)."""
        out: dict[str, dict[str, Any]] = {}
        for name in _SECTIONS:
            section = {}
            for key, value in dataclasses.asdict(getattr(self, name)).items():
                if isinstance(value, float) and not math.isfinite(value):
                    value = str(value)
                if key == "solver_params":
                    value = dict(value)
                section[key] = value
            out[name] = section
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], origin: str = "<dict>") -> Config:
        """Inverse of :meth:`to_dict` (also accepts a parsed TOML document)."""
        sections = {}
        for name, section in d.items():
            if name in _SECTIONS and isinstance(section, Mapping):
                known = _known_keys(name)
                section = {
                    k: float(val)
                    if k in known and _base_type(name, k) is float and val in ("inf", "-inf", "nan")
                    else val
                    for k, val in section.items()
                }
            sections[name] = section
        return _build(sections, origin)


_SECTIONS: dict[str, type] = {"data": DataConfig, "train": TrainSection, "output": OutputConfig}


# ---------------------------------------------------------------------------- loading


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read a TOML config (None: the built-in default) and apply ``"section.key=value"`` overrides.

    Raises:
      ConfigError: unreadable file, invalid TOML, unknown section or key, wrong type or value.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        doc: dict[str, Any] = {}
        origin = "<built-in default>"
        base_dir = None
    else:
        origin = os.fspath(path)
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {origin} does not exist") from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {origin}: {err.strerror or err}") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{origin} is not valid TOML: {err}") from None
        base_dir = os.path.dirname(origin)
    _check_keys(doc, origin)
    for section, key in _PATH_KEYS:  # relative to the config file's folder
        value = doc.get(section, {}).get(key)
        if base_dir is not None and isinstance(value, str) and value:
            doc[section][key] = _join(base_dir, os.path.expanduser(value))
    overridden = set()
    for item in overrides:
        section, key, value = _parse_override(item)
        if (section, key) in _PATH_KEYS and isinstance(value, str):
            value = os.path.expanduser(value)
        doc.setdefault(section, {})[key] = value
        overridden.add((section, key))
    env_dir = environ.get(CATVNONCAT_ENV, "")
    data = doc.get("data", {})
    if env_dir and data.get("source") == "catvnoncat" and ("data", "path") not in overridden:
        data["path"] = env_dir
    return _build(doc, origin)


def _join(base: str, path: str) -> str:
    """``path`` relative to the folder ``base``, with symbolic links in ``base`` resolved
    first (so ``..`` means the parent of the real folder)."""
    if os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(os.path.realpath(base or "."), path))


def _known_keys(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(_SECTIONS[section])]


def _check_keys(doc: Mapping[str, Any], origin: str) -> None:
    for section, table in doc.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {origin}; known sections: {', '.join(_SECTIONS)}"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"{section} in {origin} must be a table [{section}], got {table!r}")
        known = _known_keys(section)
        for key in table:
            if key not in known:
                raise ConfigError(
                    f"unknown key '{section}.{key}' in {origin}; known keys in [{section}]: "
                    f"{', '.join(known)}"
                )


def _parse_override(item: str) -> tuple[str, str, Any]:
    """``"train.max_iter=50"`` -> ("train", "max_iter", 50), checking that the key exists."""
    name, sep, raw = item.partition("=")
    name = name.strip()
    section, dot, key = name.partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.tol=0")
    if section not in _SECTIONS:
        raise ConfigError(
            f"unknown section {section!r} in override {item!r}; known sections: "
            f"{', '.join(_SECTIONS)}"
        )
    if key not in _known_keys(section):
        raise ConfigError(
            f"unknown key '{section}.{key}' in override {item!r}; known keys in [{section}]: "
            f"{', '.join(_known_keys(section))}"
        )
    raw = raw.strip()
    if raw.lower() == "none":
        return section, key, None
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word or path: keep the text
    if _base_type(section, key) is str and not isinstance(value, str):
        value = raw  # e.g. data.path=2024 stays the string "2024"
    return section, key, value


def _base_type(section: str, key: str) -> Any:
    hints = typing.get_type_hints(_SECTIONS[section])
    hint = hints[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return args[0]
    return typing.get_origin(hint) or hint


def _optional(section: str, key: str) -> bool:
    hint = typing.get_type_hints(_SECTIONS[section])[key]
    return type(None) in typing.get_args(hint)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _coerce(section: str, key: str, value: Any) -> Any:
    """Check the type of one value against the dataclass field; ints are accepted as floats."""
    name = f"{section}.{key}"
    if value is None:
        if _optional(section, key):
            return None
        raise ConfigError(f"{name} cannot be none; it must be {_describe_type(section, key)}")
    base = _base_type(section, key)
    if key == "solver_params":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a table such as {{ momentum = 0.5 }}, got {value!r}")
        return tuple(sorted(dict(value).items()))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, base):
        raise ConfigError(f"{name} must be {_TYPE_NAMES[base]}, got {value!r}")
    return value


def _describe_type(section: str, key: str) -> str:
    return _TYPE_NAMES.get(_base_type(section, key), "a table")


def _build(doc: Mapping[str, Any], origin: str) -> Config:
    _check_keys(doc, origin)
    sections = {}
    for name, cls in _SECTIONS.items():
        table = doc.get(name, {})
        values = {key: _coerce(name, key, value) for key, value in table.items()}
        sections[name] = cls(**values)
    config = Config(**sections, origin=origin)
    _check_values(config)
    return config


def _fail(name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{name} must be {expected}, got {value!r}")


def _check_values(config: Config) -> None:
    """Range and choice checks, naming the key."""
    d, t = config.data, config.train
    if d.source not in DATA_SOURCES:
        raise _fail("data.source", f"one of {list(DATA_SOURCES)}", d.source)
    if d.source in ("file", "catvnoncat") and not d.path:
        what = "data file" if d.source == "file" else "folder holding the course's .h5 files"
        hint = f" (or set {CATVNONCAT_ENV})" if d.source == "catvnoncat" else ""
        raise ConfigError(f"data.path must name the {what} for data.source = {d.source!r}{hint}")
    if not 0 <= d.validation_fraction < 1:
        raise _fail("data.validation_fraction", "in [0, 1)", d.validation_fraction)
    for key in ("n_samples", "n_features"):
        if getattr(d, key) < 1:
            raise _fail(f"data.{key}", "an integer >= 1", getattr(d, key))
    if d.n_classes < 2:
        raise _fail("data.n_classes", "an integer >= 2", d.n_classes)
    if d.seed < 0:
        raise _fail("data.seed", "an integer >= 0", d.seed)
    if not (math.isfinite(d.separation) and d.separation >= 0):
        raise _fail("data.separation", "a finite number >= 0", d.separation)
    if not 0 <= d.label_noise <= 1:
        raise _fail("data.label_noise", "in [0, 1]", d.label_noise)

    try:
        check_solver(t.solver)
    except ValueError as err:
        raise ConfigError(f"train.{err}") from None
    if t.learning_rate is not None and not (math.isfinite(t.learning_rate) and t.learning_rate > 0):
        raise _fail("train.learning_rate", "a finite number > 0", t.learning_rate)
    if t.solver_params:
        try:
            make_optimizer(t.solver, 0.1, **dict(t.solver_params))
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"train.solver_params {dict(t.solver_params)} are not valid for train.solver = "
                f"{t.solver!r}: {err}"
            ) from None
    if t.max_iter < 1:
        raise _fail("train.max_iter", "an integer >= 1", t.max_iter)
    if not (math.isfinite(t.tol) and t.tol >= 0):
        raise _fail("train.tol", "a finite number >= 0", t.tol)
    if math.isnan(t.C) or t.C <= 0:
        raise _fail("train.C", "a number > 0 (inf for no penalty)", t.C)
    if t.batch_size is not None:
        if t.batch_size < 1:
            raise _fail("train.batch_size", "an integer >= 1", t.batch_size)
        if t.solver in LINE_SEARCH_SOLVERS:
            raise ConfigError(
                f"train.batch_size must be absent with train.solver = {t.solver!r} (it needs "
                f"full-batch gradients), got {t.batch_size}"
            )
    if t.class_weight not in (None, "balanced"):
        raise _fail("train.class_weight", "'balanced' or absent", t.class_weight)
    if t.grad not in ("manual", "autodiff"):
        raise _fail("train.grad", "one of ['manual', 'autodiff']", t.grad)
    if t.dtype not in ("float32", "float64"):
        raise _fail("train.dtype", "one of ['float32', 'float64']", t.dtype)
    if t.seed < 0:
        raise _fail("train.seed", "an integer >= 0", t.seed)


def estimator_params(section: TrainSection) -> dict[str, Any]:
    """The :class:`jaxlogreg.LogisticRegression` keyword arguments of a ``[train]`` section."""
    return {
        "C": section.C,
        "fit_intercept": section.fit_intercept,
        "solver": section.solver,
        "learning_rate": section.learning_rate,
        "max_iter": section.max_iter,
        "tol": section.tol,
        "batch_size": section.batch_size,
        "random_state": section.seed,
        "dtype": section.dtype,
        "class_weight": section.class_weight,
        "grad": section.grad,
        "solver_params": dict(section.solver_params) or None,
    }
