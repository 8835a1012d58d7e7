"""Config files: the shipped configs load, the built-in default equals configs/default.toml,
overrides, path rules, and errors that name the key."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from pathlib import Path

import pytest

from jaxlogreg.cli.config import Config, ConfigError, load_config
from jaxlogreg.data.sources import CATVNONCAT_ENV
from jaxlogreg.estimators.logistic import LogisticRegression
from jaxlogreg.training.settings import TrainConfig

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_default_is_configs_default_toml():
    assert load_config(REPO / "configs" / "default.toml", environ={}) == Config()
    assert load_config(None, environ={}) == Config()


def test_train_section_keys_are_the_estimator_parameters_with_their_defaults():
    assert Config().train == TrainConfig()
    estimator = LogisticRegression().get_params()
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(estimator)
    written = tomllib.loads((REPO / "configs" / "default.toml").read_text())["train"]
    assert set(written) <= set(estimator)
    assert all(estimator[k] == v for k, v in written.items())
    assert "seed" not in estimator and "random_state" in estimator


def test_shipped_configs_load_and_build_an_estimator():
    names = {p.name for p in CONFIGS}
    assert {
        "default.toml",
        "catvnoncat.toml",
        "adam.toml",
        "lbfgs.toml",
        "large_synthetic.toml",
    } <= names
    for path in CONFIGS:
        config = load_config(path, environ={})
        clf = LogisticRegression(**dataclasses.asdict(config.train))
        assert clf._config() == config.train  # every [train] section is an estimator's settings
        assert Config.from_dict(config.to_dict()) == config


def test_catvnoncat_config_is_the_course_setup():
    config = load_config(REPO / "configs" / "catvnoncat.toml", environ={})
    t = config.train
    assert (t.solver, t.learning_rate, t.max_iter, t.tol) == ("gd", 0.005, 2000, 0.0)
    assert math.isinf(t.C) and config.data.source == "catvnoncat"
    # relative to the config file's folder: <repo>/../shared/data/catvnoncat
    expected = (REPO / ".." / "shared" / "data" / "catvnoncat").resolve()
    assert Path(config.data.path).resolve() == expected


def test_catvnoncat_env_var_replaces_file_path_but_not_set(tmp_path):
    path = REPO / "configs" / "catvnoncat.toml"
    env = {CATVNONCAT_ENV: "/data/cats"}
    assert load_config(path, environ=env).data.path == "/data/cats"
    assert load_config(path, ["data.path=here"], environ=env).data.path == "here"


def test_relative_paths_follow_the_config_file(tmp_path):
    sub = tmp_path / "cfg"
    sub.mkdir()
    path = _write(sub, '[data]\nsource = "file"\npath = "../d/x.csv"\n[output]\ndir = "out"\n')
    config = load_config(path, environ={})
    assert config.data.path == os.path.normpath(tmp_path / "d" / "x.csv")
    assert config.output.dir == os.path.normpath(sub / "out")
    # on the command line: relative to the current directory, unchanged
    assert load_config(path, ["data.path=y.csv"], environ={}).data.path == "y.csv"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.learning_rate=0.01", {"learning_rate": 0.01}),
        ("train.solver=adam", {"solver": "adam"}),
        ('train.solver="sgd"', {"solver": "sgd"}),
        ("train.C=inf", {"C": math.inf}),
        ("train.max_iter=5", {"max_iter": 5}),
        ("train.tol=0", {"tol": 0.0}),
        ("train.fit_intercept=false", {"fit_intercept": False}),
        (
            "train.solver=sgd;train.solver_params={ momentum = 0.5 }",
            {"solver_params": {"momentum": 0.5}},
        ),
        ("train.learning_rate=none", {"learning_rate": None}),
    ],
)
def test_overrides(override, expected):
    train = load_config(None, override.split(";"), environ={}).train
    for key, value in expected.items():
        assert getattr(train, key) == value


@pytest.mark.parametrize(
    "text_or_override, message",
    [
        ("[train]\nlr = 0.1\n", "unknown key 'train.lr' in {path}; known keys in [train]: C,"),
        ("[train]\nseed = 1\n", "unknown key 'train.seed' in {path}; known keys in [train]: C,"),
        ("[model]\nC = 1\n", "unknown section [model] in {path}; known sections: data, train"),
        ('[train]\nmax_iter = "abc"\n', "train.max_iter must be an integer, got 'abc'"),
        ("[train]\nmax_iter = 1.5\n", "train.max_iter must be an integer, got 1.5"),
        ("[train]\nmax_iter = true\n", "train.max_iter must be an integer, got True"),
        ("[train]\ntol = -1\n", "train.tol must be a finite real number >= 0, got -1.0"),
        ("[train]\nC = 0\n", "train.C must be a real number > 0 (inf for no penalty), got 0.0"),
        ("[train]\nmax_iter = 10000000000\n", "train.max_iter must be an integer in [0, 10000000]"),
        ('[train]\nclass_weight = "auto"\n', "train.class_weight must be None, 'balanced' or a dict"),
        ("[train]\nclass_weight = 3\n", "train.class_weight must be a string or a table"),
        ('[train]\nsolver = "sgd"\nsolver_params = { momentum = "abc" }\n',
         "train.solver_params['momentum'] must be a number for solver 'sgd', got 'abc'"),
        ('[train]\nsolver = "newton"\n', "train.solver must be one of"),
        ('[train]\nsolver = "lbfgs"\nbatch_size = 32\n', "train.batch_size must be None with"),
        ('[train]\nsolver = "gd"\nsolver_params = { momentum = 0.9 }\n', "train.solver_params"),
        ('[train]\ndtype = "float16"\n', "train.dtype must be one of"),
        ("[data]\nstandardize = 1\n", "data.standardize must be true or false, got 1"),
        ('[data]\nsource = "file"\n', "data.path must name the data file"),
        ('[data]\nsource = "web"\n', "data.source must be one of"),
        ("[data]\nvalidation_fraction = 1.0\n", "data.validation_fraction must be in [0, 1)"),
        ("[train\n", "is not valid TOML"),
        ("--set train.max_iter=abc", "train.max_iter must be an integer, got 'abc'"),
        ("--set train.lr=0.1", "unknown key 'train.lr' in override 'train.lr=0.1'"),
        ("--set max_iter=3", "must look like section.key=value"),
        ("--set train.C=none", "train.C cannot be none"),
        ("--set data.n_samples=100000000000", "data.n_samples * n_features must be at most"),
        ("--set train.solver_params={nesterov=yes}",
         ("override 'train.solver_params={{nesterov=yes}}': {{nesterov=yes}} is not a valid TOML "
         "table (Invalid value); TOML writes true/false and quoted strings")),
        ("--set cv.Cs=[1, 2", "[1, 2 is not a valid TOML list"),
    ],
)
def test_errors_name_the_key(tmp_path, text_or_override, message):
    if text_or_override.startswith("--set "):
        path, overrides = None, [text_or_override.removeprefix("--set ")]
    else:
        path, overrides = _write(tmp_path, text_or_override), []
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides, environ={})
    assert message.format(path=path) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_a_table_override_keeps_its_booleans_and_numbers():
    """What --set train.solver_params={...} hands to TrainConfig: TOML values, so false is the
    boolean False (never the string "false"), 0.9 a float, "x" a string."""
    overrides = ["train.solver=sgd", "train.solver_params={ momentum = 0.9, nesterov = false }"]
    params = load_config(None, overrides, environ={}).train.solver_params
    assert params == {"momentum": 0.9, "nesterov": False}
    assert params["nesterov"] is False and type(params["momentum"]) is float
    spaceless = ["train.solver=sgd", "train.solver_params={nesterov=true}"]
    assert load_config(None, spaceless, environ={}).train.solver_params["nesterov"] is True


def test_a_config_file_that_is_not_utf8_text_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[train]\nsolver = "débil"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=f"^config file {path} is not UTF-8 text"):
        load_config(path)


def test_a_config_path_that_is_not_a_regular_file_is_named(tmp_path):
    """A directory or a device (here a link to one); a FIFO: tests/cli/test_cli.py runs the
    command on one, under a timeout, and tests/data/test_files.py every reader."""
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "dev.toml").symlink_to(os.devnull)
    for name, what in (("dir.toml", "a directory"), ("dev.toml", "a character device")):
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / name)
        assert str(info.value) == f"config file {tmp_path / name} is {what}, not a regular file"
