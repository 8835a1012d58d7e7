"""The ``jaxlogreg`` command line, the progress bar, and the commands of README.md.

Subprocess tests run the real command (``python -m jaxlogreg``); each costs a few seconds of
JAX import, so there are few of them. Error paths are checked in-process through ``main``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxlogreg.cli import main as cli_main
from jaxlogreg.cli import train as cli_train
from jaxlogreg.cli import use as cli_use
from jaxlogreg.cli.config import load_config
from jaxlogreg.cli.main import build_parser
from jaxlogreg.data.sources import CATVNONCAT_ENV, load_splits
from jaxlogreg.training.progress import ProgressBar

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "jaxlogreg", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``jaxlogreg train --out DIR`` with the built-in default config, run once."""
    out = tmp_path_factory.mktemp("default_run")
    proc = _run("train", "--out", str(out))
    return proc, out


@pytest.mark.slow
def test_train_without_arguments_reports_and_writes_files(default_run):
    proc, out = default_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for start in ("data ", "model ", "solver ", "train ", "validation ", "wrote "):
        assert any(line.startswith(start) for line in lines), (start, proc.stdout)
    assert "lbfgs" in proc.stdout and "800 train / 200 validation samples" in proc.stdout
    assert "\r" not in proc.stderr  # not a terminal: no progress bar
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] > 0.7
    assert metrics["fit"]["status"] == "converged"
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_predict_subprocess_matches_reloaded_model(default_run):
    proc, out = default_run
    assert proc.returncode == 0, proc.stderr
    pred = _run(
        "predict",
        "--model",
        str(out / "model.npz"),
        "--config",
        "configs/default.toml",
        "--output",
        str(out / "pred.csv"),
    )
    assert pred.returncode == 0, pred.stderr
    with open(out / "pred.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction", "proba_0", "proba_1"]
    args = build_parser().parse_args(["predict", "--model", str(out / "model.npz")])
    clf, scaler, dtype, names = cli_use._load_model(args)
    assert names is None  # synthetic data have no column names
    assert scaler is None and dtype == "float32"
    X_val = load_splits(load_config(None).data, dtype).validation.X
    np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], clf.predict(X_val))
    np.testing.assert_array_equal(
        np.array([[float(p) for p in r[1:]] for r in rows[1:]]), clf.predict_proba(X_val)
    )


def test_saved_model_reloads_to_identical_predictions(tmp_path):
    from jaxlogreg.data import fit_scaler, make_classification
    from jaxlogreg.data.model_io import load_model, save_model
    from jaxlogreg.estimators.logistic import LogisticRegression, from_params, to_params

    data = make_classification(200, 4, 3, seed=3)
    labels = np.array(["a", "b", "c"])[data.y]
    scaler = fit_scaler(data.X)
    X = scaler.transform(data.X)
    clf = LogisticRegression().fit(X, labels)
    save_model(tmp_path / "m.npz", to_params(clf), classes=clf.classes_, scaler=scaler)
    saved = load_model(tmp_path / "m.npz")
    again = from_params(saved.params, saved.classes)
    X2 = saved.scaler.transform(data.X)
    np.testing.assert_array_equal(again.predict(X2), clf.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X2), clf.predict_proba(X))


@pytest.mark.slow
def test_bad_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = 0.1\n")
    proc = _run("train", "--config", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"unknown key 'train.lr' in {bad}; known keys in [train]:" in proc.stderr


# ---------------------------------------------------------------------------- in-process


def _main(capsys, *argv):
    status = cli_main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "train.max_iter=abc"], "train.max_iter must be an integer, got 'abc'"),
        (["train", "--set", "data.source=file", "--set", "data.path=nope.csv"], "nope.csv"),
        (["train", "--config", "nope.toml"], "config file nope.toml does not exist"),
        (["train", "--compare-learning-rates"], "give --out DIR"),
        (["evaluate", "--model", "nope.npz", "--data", "x.csv"], "model file nope.npz"),
        (["evaluate", "--model", "configs/default.toml", "--data", "x.csv"], "expected an .npz"),
        (["predict", "--model", "nope.npz"], "model file nope.npz"),
        (
            [
                "train",
                "--config",
                "configs/catvnoncat.toml",
                "--set",
                "data.path=/nonexistent/cats",
            ],
            "/nonexistent/cats does not exist",
        ),
        (["train", "--set", "train.max_iter=10000000000"], "train.max_iter must be an integer in"),
        (["train", "--set", "data.n_samples=100000000000"], "data.n_samples * n_features must be"),
        (["train", "--out", "/proc/jaxlogreg-cannot-write"], "output folder /proc/"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, monkeypatch, argv, message):
    monkeypatch.chdir(REPO)
    status, _, err = _main(capsys, *argv)
    assert status == 2
    assert message in err and err.count("\n") == 1, err
    assert err.startswith(f"jaxlogreg {argv[0]}: error: ")


@pytest.mark.slow
def test_predict_needs_exactly_one_data_source(capsys, tmp_path, default_run):
    _, out = default_run
    status, _, err = _main(capsys, "predict", "--model", str(out / "model.npz"))
    assert status == 2 and "give --data FILE or --config/--set" in err


def test_evaluate_and_predict_on_a_csv_without_labels(capsys, tmp_path):
    from jaxlogreg.data import make_classification

    data = make_classification(120, 3, seed=5)
    labels = np.array(["no", "yes"])[data.y]
    with open(tmp_path / "d.csv", "w") as f:
        f.write("a,b,c,label\n")
        f.writelines(f"{x[0]},{x[1]},{x[2]},{lab}\n" for x, lab in zip(data.X, labels))
    np.savetxt(tmp_path / "features.csv", data.X[:7], delimiter=",", header="a,b,c", comments="")
    status, out, _ = _main(
        capsys,
        "train",
        "--quiet",
        "--set",
        "data.source=file",
        "--set",
        f"data.path={tmp_path / 'd.csv'}",
        "--set",
        "data.standardize=true",
        "--set",
        "output.plot=false",
        "--out",
        str(tmp_path / "run"),
    )
    assert status == 0 and out == ""
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json", "model.npz"]
    model = str(tmp_path / "run" / "model.npz")
    status, out, _ = _main(capsys, "evaluate", "--model", model, "--data", str(tmp_path / "d.csv"))
    assert status == 0 and "classes no, yes" in out and out.splitlines()[-1].startswith("data ")
    status, out, _ = _main(
        capsys, "predict", "--model", model, "--data", str(tmp_path / "features.csv")
    )
    rows = list(csv.reader(io.StringIO(out)))
    assert status == 0 and rows[0] == ["prediction", "proba_no", "proba_yes"] and len(rows) == 8
    assert {r[0] for r in rows[1:]} <= {"no", "yes"}


def _csv(path: Path, header: str | None, rows) -> Path:
    with open(path, "w") as f:
        if header is not None:
            f.write(header + "\n")
        f.writelines(",".join(str(v) for v in row) + "\n" for row in rows)
    return path


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A model trained on 3 features (a, b, c) with string labels, through the CLI."""
    from jaxlogreg.data import make_classification

    tmp = tmp_path_factory.mktemp("small_model")
    data = make_classification(120, 3, seed=5)
    labels = np.array(["no", "yes"])[data.y]
    _csv(tmp / "d.csv", "a,b,c,label", [[*x, lab] for x, lab in zip(data.X, labels)])
    status = cli_main(["train", "--quiet", "--set", "data.source=file",
                       "--set", f"data.path={tmp / 'd.csv'}", "--set", "output.plot=false",
                       "--out", str(tmp / "run")])
    assert status == 0
    return tmp / "run" / "model.npz", data


def test_predict_on_a_csv_without_header_keeps_every_row(capsys, tmp_path, small_model):  # D4
    model, data = small_model
    path = _csv(tmp_path / "x.csv", None, data.X[:2])
    status, out, err = _main(capsys, "predict", "--model", str(model), "--data", str(path))
    assert status == 0, err
    assert len(list(csv.reader(io.StringIO(out)))) == 3  # the header and 2 predictions


def test_predict_on_files_without_labels(capsys, tmp_path, small_model):  # D10
    model, data = small_model
    np.savez(tmp_path / "x_only.npz", X=data.X[:5])
    np.save(tmp_path / "x.npy", data.X[:4])
    _csv(tmp_path / "empty_labels.csv", "a,b,c,label", [[*x, ""] for x in data.X[:3]])
    for name, n in (("x_only.npz", 5), ("x.npy", 4), ("empty_labels.csv", 3)):
        status, out, err = _main(capsys, "predict", "--model", str(model), "--data",
                                 str(tmp_path / name))
        assert status == 0, (name, err)
        assert len(out.splitlines()) == n + 1, name


def test_evaluate_a_npy_features_file_with_its_labels_file(capsys, tmp_path, small_model):
    model, data = small_model
    np.save(tmp_path / "x.npy", data.X)
    np.save(tmp_path / "y.npy", np.array(["no", "yes"])[data.y])
    status, out, err = _main(capsys, "evaluate", "--model", str(model), "--data",
                             str(tmp_path / "x.npy"), "--y-path", str(tmp_path / "y.npy"))
    assert status == 0, err
    assert out.splitlines()[-1].startswith("data ")
    status, _, err = _main(capsys, "evaluate", "--model", str(model), "--data",
                           str(tmp_path / "x.npy"))
    assert status == 2 and "y_path" in err


def test_a_batch_size_above_m_is_capped(capsys):  # D5: it used to ask for 149 GB
    status, out, err = _main(capsys, "train", "--set", "train.solver=sgd", "--set",
                             "train.batch_size=100000000000", "--set", "train.max_iter=2",
                             "--set", "train.tol=0")
    assert status == 0, err
    assert "2 iterations" in out


def test_a_training_part_with_one_class_says_it_is_the_training_part(capsys, tmp_path):
    path = _csv(tmp_path / "two.csv", "x,label", [[0.0, "a"], [1.0, "b"]])
    status, _, err = _main(capsys, "train", "--set", "data.source=file",
                           "--set", f"data.path={path}")
    assert status == 2
    assert "the training part of the data (1 samples after holding out validation data)" in err


def test_problems_found_before_the_fit(capsys, tmp_path, monkeypatch):
    from jaxlogreg.estimators.logistic import LogisticRegression

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit must not start")

    monkeypatch.setattr(LogisticRegression, "fit", no_fit)
    train = _csv(tmp_path / "t.csv", "a,b,label", [[0.0, 1.0, 0], [1.0, 0.0, 1]] * 5)
    val = _csv(tmp_path / "v.csv", "a,label", [[0.0, 0], [1.0, 1]])
    status, _, err = _main(capsys, "train", "--set", "data.source=file", "--set",
                           f"data.path={train}", "--set", f"data.validation_path={val}")
    assert status == 2 and "do not match the training data's 2 features ['a', 'b']" in err
    unnamed = tmp_path / "v.npz"  # no column names: its width is checked
    np.savez(unnamed, X=np.zeros((2, 1)), y=np.array([0, 1]))
    status, _, err = _main(capsys, "train", "--set", "data.source=file", "--set",
                           f"data.path={train}", "--set", f"data.validation_path={unnamed}")
    assert status == 2 and "has 1 features, the training data 2" in err
    (tmp_path / "file").write_text("")
    status, _, err = _main(capsys, "train", "--out", str(tmp_path / "file" / "out"))
    assert status == 2 and "output folder" in err and "cannot be written" in err  # D2


def test_evaluate_and_predict_match_csv_columns_to_the_model_by_name(capsys, tmp_path,
                                                                   small_model):
    """The model keeps its training CSV's column names: a CSV with the columns in another order
    is scored as the training order; other columns are refused by name (exit 2)."""
    from jaxlogreg.data.model_io import load_model

    model, data = small_model
    assert load_model(model).feature_names == ("a", "b", "c")
    labels = np.array(["no", "yes"])[data.y]
    ordered = _csv(tmp_path / "abc.csv", "a,b,c,label", [[*x, y] for x, y in zip(data.X, labels)])
    shuffled = _csv(tmp_path / "cab.csv", "c,label,a,b",
                    [[x[2], y, x[0], x[1]] for x, y in zip(data.X, labels)])
    outputs = {}
    for path in (ordered, shuffled):
        report = tmp_path / f"{path.stem}.json"
        status, _, err = _main(capsys, "evaluate", "--model", str(model), "--data", str(path),
                               "--output", str(report), "--quiet")
        assert status == 0, err
        status, predicted, err = _main(capsys, "predict", "--model", str(model), "--data",
                                       str(path))
        assert status == 0, err
        outputs[path.stem] = (json.loads(report.read_text()), predicted)
    assert outputs["cab"] == outputs["abc"]
    assert outputs["abc"][0]["data"]["accuracy"] > 0.7  # the model's own training data
    other = _csv(tmp_path / "abd.csv", "a,b,d,label", [[1.0, 2.0, 3.0, "no"]])
    for command in ("evaluate", "predict"):
        status, _, err = _main(capsys, command, "--model", str(model), "--data", str(other))
        assert status == 2
        assert (f"{other}: its columns do not match the model's 3 features ['a', 'b', 'c']: "
                "missing column(s) ['c'], unexpected column(s) ['d']") in err


def test_cv_keeps_the_feature_names_in_the_model(capsys, tmp_path):
    from jaxlogreg.data.model_io import load_model

    rows = [[float(i % 7), float(i % 3), i % 2] for i in range(40)]
    path = _csv(tmp_path / "d.csv", "x1,x2,label", rows)
    status, _, err = _main(capsys, "cv", "--quiet", "--set", "data.source=file", "--set",
                           f"data.path={path}", "--set", "cv.Cs=[1.0]", "--set", "cv.folds=2",
                           "--set", "output.plot=false", "--out", str(tmp_path / "cv"))
    assert status == 0, err
    assert load_model(tmp_path / "cv" / "model.npz").feature_names == ("x1", "x2")


def test_files_that_are_not_regular_or_not_utf8_are_named(capsys, tmp_path, small_model):
    """Directories and devices (a FIFO: the slow test below, and tests/data/test_files.py)."""
    model, _ = small_model
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "dev.npy").symlink_to(os.devnull)
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[train]\nsolver = "débil"\n'.encode("latin-1"))
    cases = [
        (["evaluate", "--model", str(model), "--data", str(tmp_path / "dir.csv")],
         f"data file {tmp_path / 'dir.csv'} is a directory, not a regular file"),
        (["evaluate", "--model", str(model), "--data", str(tmp_path / "x.npy"), "--y-path",
          str(tmp_path / "dev.npy")],
         f"data file {tmp_path / 'dev.npy'} is a character device, not a regular file"),
        (["predict", "--model", str(tmp_path), "--data", str(tmp_path / "x.npy")],
         f"model file {tmp_path} is a directory, not a regular file"),
        (["train", "--set", "data.source=file", "--set", f"data.path={tmp_path / 'dir.csv'}"],
         f"data file {tmp_path / 'dir.csv'} is a directory"),
        (["train", "--config", str(latin1)], f"config file {latin1} is not UTF-8 text"),
    ]
    for argv, message in cases:
        status, _, err = _main(capsys, *argv)
        assert status == 2 and message in err and err.count("\n") == 1, (argv, err)


@pytest.mark.slow
def test_a_fifo_config_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    proc = _run("train", "--config", str(fifo), timeout=120)  # blocked: TimeoutExpired
    assert proc.returncode == 2
    assert proc.stderr == (f"jaxlogreg train: error: config file {fifo} is a named pipe (FIFO), "
                           "not a regular file\n")


def test_compare_learning_rates_checks_matplotlib_before_any_fit(capsys, tmp_path, monkeypatch):
    import builtins

    from jaxlogreg.estimators.logistic import LogisticRegression

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit must not start")

    real_import = builtins.__import__

    def without_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", no_fit)
    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    out = tmp_path / "out"
    status, _, err = _main(capsys, "train", "--set", "train.solver=gd",
                           "--compare-learning-rates", "--out", str(out))
    assert status == 2
    assert ("--compare-learning-rates writes learning_rates.png, and plots need matplotlib: "
            "pip install") in err
    assert not out.exists()  # nothing written, the folder it created removed


def test_class_weight_table_keys_name_the_labels(capsys):
    status, _, err = _main(capsys, "train", "--set", "train.class_weight={ 0 = 1.0, 1 = 3.0 }")
    assert status == 0, err
    status, _, err = _main(capsys, "train", "--set", "train.class_weight={ 7 = 1.0 }")
    assert status == 2 and "train.class_weight names class(es) ['7']" in err


def test_quiet_hides_the_report_but_not_warnings(capsys):
    status, out, err = _main(capsys, "train", "--quiet", "--set", "train.max_iter=2")
    assert status == 0 and out == ""
    assert "warning: LogisticRegression (solver='lbfgs') did not converge" in err


def test_divergence_exits_1_with_the_reason(capsys, tmp_path):  # D1 and D3
    status, _, err = _main(capsys, "train", "--set", "train.solver=gd", "--set",
                           "train.learning_rate=1e9", "--set", "train.C=inf",
                           "--set", "train.tol=0")
    assert status == 1 and "diverged" in err and "lower learning_rate" in err
    status, _, _ = _main(capsys, "train", "--set", "train.solver=gd", "--set",
                         "train.learning_rate=1e9", "--set", "train.C=inf", "--set", "train.tol=0",
                         "--out", str(tmp_path / "new" / "out"))
    assert status == 1 and not (tmp_path / "new").exists()  # D2: no empty folder left behind
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    rows = [[x0 * 1e30, x1, int(x1 > 0)] for x0, x1 in X]
    path = _csv(tmp_path / "huge.csv", "a,b,label", rows)
    status, _, err = _main(capsys, "train", "--set", "data.source=file", "--set",
                           f"data.path={path}", "--set", "train.dtype=float64")
    assert status == 1 and "scale the features" in err


def test_check_grad_default_config(capsys):
    status, out, _ = _main(capsys, "check-grad")
    assert status == 0, out
    assert "hand-written vs jax.grad" in out and "finite differences" in out
    assert out.splitlines()[-1] == "OK"


def test_train_flags_become_config_overrides():
    args = build_parser().parse_args(
        ["train", "--set", "train.tol=0", "--out", "runs/x", "--grad", "autodiff"]
    )
    config = load_config(None, cli_train.overrides_of(args))
    assert (config.train.grad, config.train.tol, config.output.dir) == ("autodiff", 0.0, "runs/x")


def test_penalty_settings_from_flags_and_files(capsys, tmp_path):
    """[train] penalty and l1_ratio: --set values are coerced (0.5, 1 -> 1.0, none -> None),
    and a file, where TOML has no null, says penalty = "none"."""
    config = load_config(None, ["train.penalty=elasticnet", "train.l1_ratio=1",
                                "train.solver=proximal"])
    assert (config.train.penalty, config.train.l1_ratio) == ("elasticnet", 1.0)
    assert isinstance(config.train.l1_ratio, float)
    assert load_config(None, ["train.penalty=none"]).train.penalty is None
    path = tmp_path / "p.toml"
    path.write_text('[train]\npenalty = "none"\nlearning_rate = "None"\n')
    config = load_config(path)
    assert config.train.penalty is None and config.train.learning_rate is None
    path.write_text('[data]\npath = "none"\n')  # a required string stays a string
    assert load_config(path).data.path.endswith("none")
    status, out, err = _main(capsys, "train", "--set", "data.n_samples=200", "--set",
                             "train.penalty=elasticnet", "--set", "train.l1_ratio=0.5", "--set",
                             "train.solver=proximal")
    assert status == 0, err
    assert "elastic-net penalty (l1_ratio 0.5), C=1" in out
    status, out, err = _main(capsys, "train", "--set", "data.n_samples=200", "--set",
                             "train.penalty=none")
    assert status == 0 and "no penalty" in out, err


# ---------------------------------------------------------------------------- progress bar


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_only_on_a_terminal():
    quiet = io.StringIO()
    with ProgressBar(10, "fit", stream=quiet) as bar:
        bar.update(5, 0.5)
    assert quiet.getvalue() == ""
    tty = _TTY()
    with ProgressBar(10, "fit", stream=tty) as bar:
        bar.update(5, 0.25)
        bar.update(10, 0.125)
    text = tty.getvalue()
    assert text.startswith("\rfit [") and text.endswith("\n")
    assert "5/10  loss 0.250000" in text and "10/10  loss 0.125000" in text
    assert "#" * 30 in text  # full at the end
    off = _TTY()
    with ProgressBar(10, stream=off, enabled=False) as bar:
        bar.update(3)
    assert off.getvalue() == ""


def test_estimator_progress_bar_via_the_pipelines_hook(monkeypatch):
    """verbose=1 on a terminal: the pipeline calls the bar between loop segments."""
    from jaxlogreg.estimators.logistic import LogisticRegression

    tty = _TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    LogisticRegression(solver="gd", max_iter=40, tol=0.0, verbose=1).fit(X, y)
    text = tty.getvalue()
    assert text.count("\r") >= 2 and "40/40" in text and text.endswith("\n")


# ---------------------------------------------------------------------------- README.md

_DOC_BLOCK = re.compile(r"(<!-- not run[^>]*-->\n)?```(console|python)\n(.*?)```", re.DOTALL)


def _doc_steps(text: str):
    """The runnable steps of a Markdown file: ("python", code) or ("console", argv, line)."""
    for skip, kind, body in _DOC_BLOCK.findall(text):
        if skip:
            continue
        if kind == "python":
            yield "python", body, None
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                argv = shlex.split(line[2:])
                if argv[:3] == ["python", "-m", "jaxlogreg"]:
                    yield "console", argv[3:], line
                elif argv[0] == "jaxlogreg":
                    yield "console", argv[1:], line
                else:
                    raise AssertionError(f"unexpected command in README.md: {line}")


@pytest.mark.slow
def test_docs_usage_commands_run_as_written(tmp_path, monkeypatch, capsys, catvnoncat_dir):
    """Every console command and Python block of README.md and docs/*.md (but those marked
    ``<!-- not run ... -->``), file by file and in order, from a folder that looks like the
    repository root. Commands go through ``main``, the function behind both ``jaxlogreg`` and
    ``python -m jaxlogreg``, in this process, so they share its compiled programs (the real
    command is run by the tests above)."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CATVNONCAT_ENV, str(catvnoncat_dir))
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    n_console = 0
    for page in pages:
        name = page.relative_to(REPO).as_posix()
        namespace = {"__name__": "__doc_page__"}  # a page's Python blocks build on each other
        for kind, what, line in _doc_steps(page.read_text(encoding="utf-8")):
            if kind == "python":
                exec(compile(what, name, "exec"), namespace)  # noqa: S102
            else:
                n_console += 1
                status = cli_main(what)
                assert status == 0, (name, line, capsys.readouterr().err)
    assert n_console >= 10
    metrics = json.loads((tmp_path / "runs" / "catvnoncat" / "metrics.json").read_text())
    # the course: train accuracy 99.04306220095694 %, test accuracy 70 %, cost 0.140872 at 1900
    assert metrics["train"]["accuracy"] == pytest.approx(207 / 209)
    assert metrics["validation"]["accuracy"] == pytest.approx(0.70)
    assert metrics["fit"]["n_iter"] == 2000
    assert (tmp_path / "runs" / "catvnoncat" / "test_predictions.csv").is_file()
    assert (tmp_path / "runs" / "points" / "predictions.csv").is_file()


def test_train_reports_validation_metrics_on_standardized_data(capsys, tmp_path):
    # the same numbers as `evaluate` on the saved model (which applies the saved scaling)
    sets = ["--set", "data.standardize=true", "--set", "data.n_samples=300",
            "--set", "output.plot=false"]
    status, _, err = _main(capsys, "train", "--quiet", *sets, "--out", str(tmp_path))
    assert status == 0, err
    reported = json.loads((tmp_path / "metrics.json").read_text())["validation"]
    status, _, err = _main(capsys, "evaluate", "--model", str(tmp_path / "model.npz"), *sets[:4],
                           "--output", str(tmp_path / "again.json"), "--quiet")
    assert status == 0, err
    again = json.loads((tmp_path / "again.json").read_text())["validation"]
    assert reported["log_loss"] == pytest.approx(again["log_loss"], rel=1e-12)
    assert reported["confusion_matrix"] == again["confusion_matrix"]


@pytest.mark.slow
def test_cv_prints_the_table_and_writes_the_chosen_model(capsys, tmp_path):
    status, out, err = _main(capsys, "cv", "--set", "cv.Cs=[0.001, 1.0, 100.0]", "--set",
                             "cv.folds=3", "--set", "data.n_samples=300", "--out", str(tmp_path))
    assert status == 0, err
    lines = out.splitlines()
    assert any(line.split()[:1] == ["0.001"] for line in lines)
    chosen = [line for line in lines if line.endswith("<- chosen")]
    assert len(chosen) == 1
    doc = json.loads((tmp_path / "cv.json").read_text())
    assert doc["C_"] == float(chosen[0].split()[0]) and len(doc["fold_scores"]) == 3
    assert [row["C"] for row in doc["table"]] == [0.001, 1.0, 100.0]
    assert (tmp_path / "cv_scores.png").read_bytes()[:4] == b"\x89PNG"
    from jaxlogreg.data.model_io import load_model

    assert load_model(tmp_path / "model.npz").metadata["cv"]["C_"] == doc["C_"]


@pytest.mark.parametrize(
    "setting, message",
    [
        ("cv.Cs=0", "cv.Cs must be an integer in [1, 1000], got 0"),
        ("cv.Cs=[1.0, -2.0]", "cv.Cs must be a non-empty list of numbers > 0"),
        ("cv.folds=1", "cv.folds must be an integer in [2, 1000], got 1"),
        ("cv.scoring=best", "cv.scoring must be a scikit-learn scorer name"),
    ],
)
def test_cv_settings_are_checked_by_name(capsys, setting, message):
    status, _, err = _main(capsys, "cv", "--set", setting)
    assert status == 2 and message in err, err


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_compare_learning_rates_refuses_solvers_choosing_their_own_steps(capsys, monkeypatch,
                                                                         tmp_path, solver):
    monkeypatch.chdir(REPO)
    status, _, err = _main(capsys, "train", "--set", f"train.solver={solver}",
                           "--compare-learning-rates", "--out", str(tmp_path / "out"))
    assert status == 2
    assert f"the config has train.solver = '{solver}', which chooses its own steps" in err
