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

from jaxlogreg import cli
from jaxlogreg.config import CATVNONCAT_ENV, load_config
from jaxlogreg.progress import ProgressBar

REPO = Path(__file__).resolve().parents[1]


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
    clf, _, saved = cli._load_model(str(out / "model.npz"))
    X_val = cli.load_data(load_config(None, ["train.dtype=float32"])).validation.X
    np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], clf.predict(X_val))
    np.testing.assert_array_equal(
        np.array([[float(p) for p in r[1:]] for r in rows[1:]]), clf.predict_proba(X_val)
    )
    assert saved.config["train"]["solver"] == "lbfgs"


def test_saved_model_reloads_to_identical_predictions(tmp_path):
    from jaxlogreg.data import Standardizer, make_classification
    from jaxlogreg.estimator import LogisticRegression, from_params, to_params
    from jaxlogreg.model_io import load_model, save_model

    data = make_classification(200, 4, 3, seed=3)
    labels = np.array(["a", "b", "c"])[data.y]
    std = Standardizer.fit(data.X)
    X = std.transform(data.X)
    clf = LogisticRegression().fit(X, labels)
    save_model(tmp_path / "m.npz", to_params(clf), classes=clf.classes_, standardizer=std)
    saved = load_model(tmp_path / "m.npz")
    again = from_params(saved.params, saved.classes)
    X2 = Standardizer.from_dict(saved.standardizer).transform(data.X)
    np.testing.assert_array_equal(again.predict(X2), clf.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X2), clf.predict_proba(X))


def test_bad_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = 0.1\n")
    proc = _run("train", "--config", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"unknown key 'train.lr' in {bad}; known keys in [train]:" in proc.stderr


def test_bench_help_forwards_to_the_benchmarks():
    pytest.importorskip("jaxlogreg.bench", reason="jaxlogreg.bench is not installed")
    proc = _run("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: jaxlogreg bench" in proc.stdout


# ---------------------------------------------------------------------------- in-process


def _main(capsys, *argv):
    status = cli.main(list(argv))
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
            "catvnoncat folder /nonexistent/cats does not exist",
        ),
    ],
)
def test_errors_are_one_line_exit_2(capsys, monkeypatch, argv, message):
    monkeypatch.chdir(REPO)
    status, _, err = _main(capsys, *argv)
    assert status == 2
    assert message in err and err.count("\n") == 1, err
    assert err.startswith(f"jaxlogreg {argv[0]}: error: ")


def test_predict_needs_exactly_one_data_source(capsys, tmp_path, default_run):
    _, out = default_run
    status, _, err = _main(capsys, "predict", "--model", str(out / "model.npz"))
    assert status == 2 and "either --data FILE or --config" in err


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


def test_check_grad_default_config(capsys):
    status, out, _ = _main(capsys, "check-grad")
    assert status == 0, out
    assert "hand-written vs jax.grad" in out and "finite differences" in out
    assert out.splitlines()[-1] == "OK"


def test_train_flags_become_config_overrides():
    args = cli.build_parser().parse_args(
        ["train", "--set", "train.tol=0", "--out", "runs/x", "--grad", "autodiff"]
    )
    config = load_config(None, cli.train_overrides(args))
    assert (config.train.grad, config.train.tol, config.output.dir) == ("autodiff", 0.0, "runs/x")


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


def test_estimator_progress_bar_via_train_callback(monkeypatch):
    """verbose=1 on a terminal: the bar is fed by train.fit's callback between segments."""
    from jaxlogreg.estimator import LogisticRegression

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


def test_docs_usage_commands_run_as_written(tmp_path, monkeypatch, capsys, catvnoncat_dir):
    """Every console command and Python block of README.md (but two marked long ones), in
    order, from a folder that looks like the repository root. Commands go through ``main``,
    the function behind both ``jaxlogreg`` and ``python -m jaxlogreg``, in this process, so
    they share its compiled programs (the real command is run by the tests above)."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CATVNONCAT_ENV, str(catvnoncat_dir))
    steps = list(_doc_steps((REPO / "README.md").read_text(encoding="utf-8")))
    assert sum(kind == "console" for kind, *_ in steps) >= 10
    namespace = {"__name__": "__readme__"}  # the README's Python blocks build on each other
    for kind, what, line in steps:
        if kind == "python":
            exec(compile(what, "README.md", "exec"), namespace)  # noqa: S102
        else:
            status = cli.main(what)
            assert status == 0, (line, capsys.readouterr().err)
    metrics = json.loads((tmp_path / "runs" / "catvnoncat" / "metrics.json").read_text())
    # the course: train accuracy 99.04306220095694 %, test accuracy 70 %, cost 0.140872 at 1900
    assert metrics["train"]["accuracy"] == pytest.approx(207 / 209)
    assert metrics["validation"]["accuracy"] == pytest.approx(0.70)
    assert metrics["fit"]["n_iter"] == 2000
    assert (tmp_path / "runs" / "catvnoncat" / "test_predictions.csv").is_file()
    assert (tmp_path / "runs" / "points" / "predictions.csv").is_file()
