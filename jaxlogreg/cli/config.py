"""Run configurations: TOML files with four sections, read into frozen dataclasses.

The sections are ``[data]`` (:class:`jaxlogreg.data.sources.DataConfig`), ``[train]``
(:class:`jaxlogreg.TrainConfig`: the ``LogisticRegression`` parameters and defaults), ``[cv]``
(:class:`CVConfig`) and ``[output]`` (:class:`OutputConfig`); every key is optional, its default
the built-in config's (:class:`Config`, identical to ``configs/default.toml``). Types are
checked here against the dataclasses' annotations, values by the dataclasses. Unknown keys,
wrong types and values out of range raise :class:`ConfigError` naming the key::

    unknown key 'train.lr' in configs/x.toml; known keys in [train]: C, fit_intercept, ...

Overrides ``"section.key=value"`` (``--set``) apply after the file, read as TOML values, other
text as a string; ``none`` (in a file ``"none"``) resets an optional key. Relative paths in a
file are relative to its folder. The rules: docs/cli.md.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from jaxlogreg.core import checks as v
from jaxlogreg.data.archive import jsonable
from jaxlogreg.data.files import NotRegularFileError, open_regular
from jaxlogreg.data.sources import CATVNONCAT_ENV, DataConfig
from jaxlogreg.training.settings import TrainConfig

_PATH_KEYS = {("data", "path"), ("data", "validation_path"), ("data", "y_path"), ("output", "dir")}


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


class CLIError(Exception):
    """A user error of the command line, reported as one line on stderr with exit status 2."""


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
class CVConfig:
    """``[cv]``: what ``jaxlogreg cv`` searches (the model's other settings are ``[train]``'s).

    Attributes:
      Cs: how many values of C on scikit-learn's grid ``logspace(-4, 4, Cs)``, or a list of them.
      folds: stratified folds of the training data, at least 2.
      scoring: "accuracy", "neg_log_loss", "roc_auc" or another scikit-learn scorer name.
      refit: refit the chosen C on all training rows (else: average the folds' models).
    """

    Cs: int | list = 10
    folds: int = 5
    scoring: str = "accuracy"
    refit: bool = True

    def __post_init__(self) -> None:
        from sklearn.metrics import get_scorer_names

        from jaxlogreg.training.path import check_Cs

        if isinstance(self.Cs, list):
            check_Cs(self.Cs)
        else:
            v.check_int_at_least(self.Cs, "Cs", 1, 1000)
        v.check_int_at_least(self.folds, "folds", 2, 1000)
        if self.scoring not in get_scorer_names():
            raise ValueError(f"scoring must be a scikit-learn scorer name such as 'accuracy', "
                             f"'neg_log_loss' or 'roc_auc', got {v.show(self.scoring)}")


_SECTIONS: dict[str, type] = {
    "data": DataConfig, "train": TrainConfig, "cv": CVConfig, "output": OutputConfig,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run configuration; ``Config()`` is the built-in default."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    cv: CVConfig = dataclasses.field(default_factory=CVConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    origin: str = dataclasses.field(default="<built-in default>", compare=False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready dict of the sections (non-finite floats as "inf"/"nan"; None kept)."""
        return {name: jsonable(dataclasses.asdict(getattr(self, name))) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], origin: str = "<dict>") -> Config:
        """Inverse of :meth:`to_dict` (also accepts a parsed TOML document)."""
        sections = {}
        for name, section in d.items():
            if name in _SECTIONS and isinstance(section, Mapping):
                section = {
                    k: float(x)
                    if x in ("inf", "-inf", "nan") and float in _types(name, k)
                    else x
                    for k, x in section.items()
                }
            sections[name] = section
        return _build(sections, origin)


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read a TOML config (None: the built-in default) and apply ``"section.key=value"`` overrides.

    Raises:
      ConfigError: a missing or unreadable file, one that is not a regular file (a FIFO, a
        directory), not UTF-8, invalid TOML, unknown section or key, wrong type or value.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        doc: dict[str, Any] = {}
        origin = "<built-in default>"
        base_dir = None
    else:
        origin = os.fspath(path)
        try:
            with open_regular(path, "config file") as f:
                doc = tomllib.load(f)
        except (FileNotFoundError, NotRegularFileError) as err:
            raise ConfigError(str(err)) from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {origin}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"config file {origin} is not UTF-8 text (TOML files are): "
                              f"{err}") from None
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
    section, dot, key = name.strip().partition(".")
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
    except tomllib.TOMLDecodeError as err:
        if raw.startswith(("{", "[")) and str not in _types(section, key):
            kind = "table" if raw.startswith("{") else "list"
            reason = str(err).split(" (at line")[0]  # its columns count the hidden "v = "
            raise ConfigError(
                f"override {item!r}: {raw} is not a valid TOML {kind} ({reason}); TOML writes "
                "true/false and quoted strings, e.g. train.solver_params={ nesterov = true }"
            ) from None
        value = raw  # a bare word or path: keep the text
    if _types(section, key) == (str,) and not isinstance(value, str):
        value = raw  # e.g. data.path=2024 stays the string "2024"
    return section, key, value


def _types(section: str, key: str) -> tuple[type, ...]:
    """The Python types a key accepts (None excluded), from the dataclass annotation."""
    hint = typing.get_type_hints(_SECTIONS[section])[key]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
    else:
        args = (hint,)
    return tuple(typing.get_origin(a) or a for a in args if a is not type(None))


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "a table such as { momentum = 0.5 }", list: "a list such as [0.1, 1, 10]"}


def _coerce(section: str, key: str, value: Any) -> Any:
    """Check one value's type against the annotation; ints are accepted as floats."""
    name = f"{section}.{key}"
    allowed = _types(section, key)
    expected = " or ".join(_TYPE_NAMES[t] for t in allowed)
    optional = type(None) in typing.get_args(typing.get_type_hints(_SECTIONS[section])[key])
    if optional and isinstance(value, str) and value.strip().lower() == "none":
        value = None  # TOML has no null: penalty = "none" in a file, as --set train.penalty=none
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} cannot be none; it must be {expected}")
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and (int in allowed or float in allowed):
        return value if int in allowed else float(value)
    elif isinstance(value, Mapping) and dict in allowed:
        return dict(value)
    elif (isinstance(value, list) and list in allowed) or (
        isinstance(value, float | str) and type(value) in allowed
    ):
        return value
    raise ConfigError(f"{name} must be {expected}, got {value!r}")


def _build(doc: Mapping[str, Any], origin: str) -> Config:
    _check_keys(doc, origin)
    sections = {}
    for name, cls in _SECTIONS.items():
        values = {key: _coerce(name, key, x) for key, x in doc.get(name, {}).items()}
        try:
            sections[name] = cls(**values)
        except ValueError as err:  # the section's own validator names the key
            raise ConfigError(f"{name}.{err}") from None
    return Config(**sections, origin=origin)
