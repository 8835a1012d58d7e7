"""The command line on LIBSVM files: sparse X from the file to the fit, the metrics, the model
file and prediction, never densified.

Most commands run in this process through ``main`` (they share its compiled programs); the
widest data set and one ``predict`` run the real command (``python -m jaxlogreg``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import jaxlogreg
from jaxlogreg.cli import main as cli_main
from jaxlogreg.cli.config import load_config
from jaxlogreg.data import load_svmlight
from jaxlogreg.data.model_io import load_model
from jaxlogreg.data.scaling import fit_scaler, scale
from jaxlogreg.data.sources import load_splits
from jaxlogreg.estimators.logistic import from_params

REPO = Path(__file__).resolve().parents[2]


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli_main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jaxlogreg", *args],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ),
        timeout=timeout,
    )


def _write_libsvm(path: Path, m: int, n: int, seed: int = 0, *, k: int = 6) -> Path:
    """m lines of k non-zeros among n features, labels from a logistic model; features of
    different scales (1 or 10)."""
    g = np.random.default_rng(seed)
    w = g.normal(size=n)
    lines = []
    for _ in range(m):
        idx = np.sort(g.choice(n, size=k, replace=False))
        val = np.round(g.normal(size=k) * g.choice([1.0, 10.0], size=k), 4)
        label = int(g.random() < 1 / (1 + np.exp(-(val @ w[idx]) / 3)))
        lines.append(f"{label} " + " ".join(f"{j + 1}:{v:g}" for j, v in zip(idx, val)))
    path.write_text("\n".join(lines) + "\n")
    return path


def _predictions(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["prediction", "proba_0", "proba_1"]
    return [r[0] for r in rows[1:]], np.array([[float(p) for p in r[1:]] for r in rows[1:]])


def _data_sets(path: Path) -> list[str]:
    return ["--set", "data.source=file", "--set", f"data.path={path}"]


def _python_api_fit(overrides: list[str]):
    """What ``jaxlogreg train`` fits, through the Python API: the same split, scaling and
    settings (and the scaler, None without ``data.standardize``). ``overrides`` are the
    command's ``--set`` arguments."""
    config = load_config(None, [o for o in overrides if o != "--set"])
    splits = load_splits(config.data, "float32")
    scaler = fit_scaler(splits.train.X) if config.data.standardize else None
    settings = dataclasses.asdict(config.train) | {"verbose": 0}
    clf = jaxlogreg.LogisticRegression(**settings).fit(scale(scaler, splits.train.X),
                                                        splits.train.y)
    return clf, scaler, splits


@pytest.fixture(scope="module")
def libsvm_file(tmp_path_factory) -> Path:
    return _write_libsvm(tmp_path_factory.mktemp("libsvm") / "d.svm", m=300, n=50)


# --------------------------------------------------------------------------- train and predict


@pytest.mark.slow
def test_train_l1_proximal_then_predict_match_the_python_api(capsys, tmp_path, libsvm_file):
    """End to end on a small LIBSVM file: train with penalty = l1 and the proximal solver,
    then predict with the saved model (the real command); the predictions are the Python
    API's, on the sparse X the loader gives."""
    overrides = [*_data_sets(libsvm_file), "--set", "train.penalty=l1", "--set",
                 "train.solver=proximal", "--set", "train.C=0.5"]
    status, out, err = _main(capsys, "train", *overrides, "--out", str(tmp_path / "run"))
    assert status == 0, err
    assert "240 train / 60 validation samples, 50 features, classes 0, 1, sparse" in out
    assert "L1 penalty, C=0.5" in out and "proximal" in out
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.npz", "metrics.json"} <= names
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["train"]["penalty"] == "l1"
    assert metrics["validation"]["accuracy"] > 0.7

    clf, _, splits = _python_api_fit(overrides)
    assert sp.issparse(splits.train.X)
    saved = load_model(tmp_path / "run" / "model.npz")
    assert saved.scaler is None
    np.testing.assert_allclose(saved.params.w, clf.coef_[0], rtol=1e-5, atol=1e-6)
    assert np.sum(saved.params.w == 0) > 0  # L1: exact zeros
    np.testing.assert_array_equal(saved.params.w == 0, clf.coef_[0] == 0)
    assert metrics["train"]["accuracy"] == pytest.approx(clf.score(splits.train.X, splits.train.y))

    pred_path = tmp_path / "pred.csv"
    proc = _run("predict", "--model", str(tmp_path / "run" / "model.npz"), "--data",
                str(libsvm_file), "--output", str(pred_path))
    assert proc.returncode == 0, proc.stderr
    labels, proba = _predictions(pred_path.read_text())
    X = load_svmlight(libsvm_file).X
    assert sp.issparse(X) and len(labels) == X.shape[0] == 300
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert labels == [str(c) for c in clf.predict(X)]

    status, out, err = _main(capsys, "evaluate", "--model", str(tmp_path / "run" / "model.npz"),
                             "--data", str(libsvm_file), "--output", str(tmp_path / "ev.json"))
    assert status == 0, err
    report = json.loads((tmp_path / "ev.json").read_text())["data"]
    assert report["n_samples"] == 300
    assert report["accuracy"] == pytest.approx(clf.score(X, load_svmlight(libsvm_file).y))


def test_standardized_sparse_data_are_scaled_not_centered_and_folded(capsys, tmp_path,
                                                                   libsvm_file):
    """data.standardize on sparse X divides by the training std (no centering, X stays
    sparse); the model file holds that scaling folded into w, so predict and evaluate on the
    raw LIBSVM file give the Python API's results on the scaled X."""
    overrides = [*_data_sets(libsvm_file), "--set", "data.standardize=true", "--set",
                 "output.plot=false"]
    status, out, err = _main(capsys, "train", *overrides, "--out", str(tmp_path / "run"))
    assert status == 0, err
    assert "scaled to std 1 (sparse: not centered)" in out
    saved = load_model(tmp_path / "run" / "model.npz")
    assert saved.scaler is None and "folded into w" in saved.metadata["feature_scaling"]

    clf, scaler, splits = _python_api_fit(overrides)
    assert not scaler.with_mean
    X_scaled = scale(scaler, splits.train.X)
    assert sp.issparse(X_scaled) and X_scaled.nnz == splits.train.X.nnz
    np.testing.assert_allclose(X_scaled.toarray(), splits.train.X.toarray() / scaler.scale_,
                               rtol=1e-6)
    np.testing.assert_allclose(saved.params.w, clf.coef_[0] / scaler.scale_, rtol=1e-5,
                               atol=1e-7)

    X = load_svmlight(libsvm_file).X
    status, out, err = _main(capsys, "predict", "--model", str(tmp_path / "run" / "model.npz"),
                             "--data", str(libsvm_file))
    assert status == 0, err
    labels, proba = _predictions(out)
    np.testing.assert_allclose(proba, clf.predict_proba(scale(scaler, X)), rtol=1e-4,
                               atol=1e-6)
    agree = np.mean(np.array(labels) == clf.predict(scale(scaler, X)).astype(str))
    assert agree >= 299 / 300  # a probability within rounding of 0.5 may flip
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    status, _, err = _main(capsys, "evaluate", "--model", str(tmp_path / "run" / "model.npz"),
                           *_data_sets(libsvm_file), "--output", str(tmp_path / "ev.json"))
    assert status == 0, err
    again = json.loads((tmp_path / "ev.json").read_text())
    for part in ("train", "validation"):
        assert again[part]["accuracy"] == pytest.approx(metrics[part]["accuracy"])
        assert again[part]["log_loss"] == pytest.approx(metrics[part]["log_loss"], rel=1e-4)


def test_a_centering_scaler_is_folded_for_sparse_features(capsys, tmp_path):
    """A model trained on a dense CSV with data.standardize (mean and std) predicts a LIBSVM
    file of the same features by folding its scaling into w, not by centering (densifying)
    the sparse X: the same probabilities as for the CSV."""
    g = np.random.default_rng(3)
    mask = g.random((80, 4)) < 0.6
    X = np.round(g.normal(size=(80, 4)) * mask * [1, 5, 0.2, 3] + [0, 2, 0, 0], 3)  # b: mean 2
    y = (X @ [1.0, -0.5, 3.0, 0.4] + g.normal(size=80) > 0).astype(int)
    with open(tmp_path / "d.csv", "w") as f:
        f.write("a,b,c,d,label\n")
        f.writelines(",".join(f"{v:g}" for v in row) + f",{lab}\n" for row, lab in zip(X, y))
    with open(tmp_path / "d.svm", "w") as f:
        f.writelines(f"{lab} " + " ".join(f"{j + 1}:{v:g}" for j, v in enumerate(row) if v)
                     + "\n" for row, lab in zip(X, y))
    status, _, err = _main(capsys, "train", "--quiet", *_data_sets(tmp_path / "d.csv"), "--set",
                           "data.standardize=true", "--set", "output.plot=false", "--out",
                           str(tmp_path / "run"))
    assert status == 0, err
    model = str(tmp_path / "run" / "model.npz")
    assert load_model(model).scaler.with_mean
    outs = {}
    for name in ("d.csv", "d.svm"):
        status, out, err = _main(capsys, "predict", "--model", model, "--data",
                                 str(tmp_path / name))
        assert status == 0, (name, err)
        outs[name] = _predictions(out)
    assert outs["d.csv"][0] == outs["d.svm"][0]
    np.testing.assert_allclose(outs["d.svm"][1], outs["d.csv"][1], rtol=1e-4, atol=1e-6)


def test_predict_reads_libsvm_files_with_the_models_width(capsys, tmp_path, libsvm_file):
    """A LIBSVM file whose largest index is below the model's width is read with that width;
    an index beyond it is an error naming the file and line."""
    status, _, err = _main(capsys, "train", "--quiet", *_data_sets(libsvm_file), "--set",
                           "output.plot=false", "--out", str(tmp_path / "run"))
    assert status == 0, err
    model = str(tmp_path / "run" / "model.npz")
    narrow = tmp_path / "narrow.svm"
    narrow.write_text("1 1:2 3:-1\n0 2:0.5\n")
    status, out, err = _main(capsys, "predict", "--model", model, "--data", str(narrow))
    assert status == 0, err
    labels, proba = _predictions(out)
    saved = load_model(model)
    clf = from_params(saved.params, saved.classes)
    X = np.zeros((2, 50), np.float32)
    X[0, 0], X[0, 2], X[1, 1] = 2, -1, 0.5
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-5)
    assert labels == [str(c) for c in clf.predict(X)]
    wide = tmp_path / "wide.svm"
    wide.write_text("1 1:2\n0 2:0.5 51:1\n")
    status, _, err = _main(capsys, "predict", "--model", model, "--data", str(wide))
    assert status == 2
    assert f"{wide}, line 2: feature index 51 exceeds n_features=50" in err


def test_bad_libsvm_lines_are_named_by_the_cli(capsys, tmp_path):
    bad = tmp_path / "bad.svm"
    bad.write_text("1 1:2\n0 2:1\n1 3:x\n")
    status, _, err = _main(capsys, "train", *_data_sets(bad))
    assert status == 2 and err.count("\n") == 1
    assert f"{bad}, line 3: malformed feature '3:x': expected index:value" in err


# --------------------------------------------------------------------------- cv and check-grad


@pytest.mark.slow
def test_cv_and_check_grad_on_libsvm(capsys, tmp_path, libsvm_file):
    status, out, err = _main(capsys, "cv", *_data_sets(libsvm_file), "--set", "cv.Cs=3",
                             "--set", "cv.folds=3", "--set", "data.standardize=true", "--set",
                             "output.plot=false", "--out", str(tmp_path / "cv"))
    assert status == 0, err
    assert "240 training samples, 50 features, scaled to std 1 (sparse: not centered)" in out
    doc = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(doc["table"]) == 3 and doc["validation"]["accuracy"] > 0.7
    saved = load_model(tmp_path / "cv" / "model.npz")
    assert saved.scaler is None  # folded
    status, out, err = _main(capsys, "evaluate", "--model", str(tmp_path / "cv" / "model.npz"),
                             *_data_sets(libsvm_file))
    assert status == 0, err
    status, _, err = _main(capsys, "cv", *_data_sets(libsvm_file), "--set", "train.penalty=l1",
                           "--set", "train.solver=proximal")
    assert status == 2 and "jaxlogreg cv chooses C for the L2 penalty only" in err
    status, out, err = _main(capsys, "check-grad", *_data_sets(libsvm_file), "--max-coords", "20")
    assert status == 0, err
    assert out.splitlines()[-1] == "OK"


# --------------------------------------------------------------------------- too wide to densify


@pytest.mark.slow
def test_train_and_predict_on_libsvm_data_far_too_large_to_densify(tmp_path):
    """200,000 samples x 2,500,000 features: 2 TB as dense float32 (4 TB in float64). The real
    ``jaxlogreg train`` splits, fits (L1, proximal), scores and saves in about 2 GB;
    ``predict`` reads a small file with the model's width. The model's weights are dense
    (n,), so the width, not m x n, sets the memory."""
    m, n = 200_000, 2_500_000
    g = np.random.default_rng(0)
    y = np.arange(m) % 2
    far = np.sort(g.integers(3, n, size=(m, 2)), axis=1)
    far[:, 1] += far[:, 0] == far[:, 1]  # strictly increasing indices
    lines = [f"{label} {1 + label}:1 {a}:0.5 {b}:-1" for label, (a, b) in zip(y, far)]
    lines[0] = f"0 1:1 {n}:2"  # the largest index sets the width
    path = tmp_path / "wide.svm"
    path.write_text("\n".join(lines) + "\n")
    out_dir = tmp_path / "run"
    code = (
        "import resource, sys\n"
        "from jaxlogreg.cli.main import main\n"
        "status = main(sys.argv[1:])\n"
        "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    args = ["train", *_data_sets(path), "--set", "train.penalty=l1", "--set",
            "train.solver=proximal", "--set", "train.C=10", "--set", "output.plot=false",
            "--out", str(out_dir)]
    proc = subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "160000 train / 40000 validation samples, 2500000 features" in proc.stdout
    maxrss = int(proc.stderr.split("maxrss_kb")[1].split()[0]) * 1024  # Linux: kB
    assert maxrss < 4 * 2**30, maxrss  # about 2 GB (runtime, compiler, a few (n,) vectors)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] > 0.99
    saved = load_model(out_dir / "model.npz")
    assert saved.params.w.shape == (n,)
    assert saved.params.w[0] < 0 < saved.params.w[1]  # feature 1 says 0, feature 2 says 1

    head = tmp_path / "head.svm"  # largest index < n: read with the model's width
    head.write_text("0 1:1\n1 2:1\n0 1:1 7:0.5\n")
    proc = _run("predict", "--model", str(out_dir / "model.npz"), "--data", str(head))
    assert proc.returncode == 0, proc.stderr
    labels, proba = _predictions(proc.stdout)
    assert labels == ["0", "1", "0"]
    clf = from_params(saved.params, saved.classes)
    X = load_svmlight(head, n_features=n).X
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-6)


# --------------------------------------------------------------------------- scaling pieces


def test_sparse_scaling_and_folding(tmp_path):
    from jaxlogreg.core.model import Params
    from jaxlogreg.data.model_io import save_model
    from jaxlogreg.data.scaling import fold_scaling, scaler_from_dict, scaler_to_dict

    g = np.random.default_rng(4)
    mask = g.random((30, 5)) < 0.5
    dense = g.normal(size=(30, 5)) * mask * [1, 3, 0.1, 8, 1] + [0, 0, 0, 0, 2]
    X = sp.csr_matrix(dense.astype(np.float32))
    scaler = fit_scaler(X)
    assert not scaler.with_mean
    np.testing.assert_allclose(scaler.scale_, dense.std(axis=0), rtol=1e-5)
    Xs = scale(scaler, X)
    assert sp.issparse(Xs) and Xs.dtype == np.float32 and Xs.nnz == X.nnz
    np.testing.assert_allclose(Xs.toarray(), dense / scaler.scale_, rtol=1e-5)
    np.testing.assert_allclose(scale(scaler, dense), dense / scaler.scale_, rtol=1e-6)
    centering = fit_scaler(dense)
    assert centering.with_mean
    with pytest.raises(ValueError, match="X is sparse, but the feature scaling centers the features"):
        scale(centering, X)
    for s in (scaler, centering):
        for w, b in ((g.normal(size=5), np.asarray(0.3)), (g.normal(size=(5, 3)), g.normal(size=3))):
            folded = fold_scaling(Params(w, b), s)
            z_scaled = s.transform(dense) @ w + b
            np.testing.assert_allclose(dense @ folded.w + folded.b, z_scaled, rtol=1e-10,
                                       atol=1e-10)
    d = scaler_to_dict(scaler)
    assert d["with_mean"] is False and d["mean"] == [0.0] * 5
    again = scaler_from_dict(d)
    assert not again.with_mean and sp.issparse(scale(again, X))
    np.testing.assert_array_equal(scale(again, X).toarray(), Xs.toarray())
    path = save_model(tmp_path / "m.npz", Params(np.ones(5), np.asarray(0.0)), classes=[0, 1],
                      scaler=scaler)
    loaded = load_model(path).scaler
    assert not loaded.with_mean
    np.testing.assert_array_equal(loaded.scale_, scaler.scale_)
    with pytest.raises(ValueError, match="with_mean = false needs a mean of all 0"):
        scaler_from_dict({**d, "mean": [1.0] * 5})
