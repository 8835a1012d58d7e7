"""``jaxlogreg inference``: the table, the JSON/CSV files, the model file's C, and its errors.

Runs in-process through ``main``; the reference numbers are statsmodels' (spector data).
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

import jaxlogreg as jl
from jaxlogreg import Params
from jaxlogreg.cli import main as cli_main

sm = pytest.importorskip("statsmodels.api")

NAMES = ["GPA", "TUCE", "PSI"]


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas()
    X, y = data.exog[NAMES].to_numpy(float), data.endog.to_numpy().astype(int)
    model = sm.Logit(y, sm.add_constant(X, prepend=False))
    return X, y, model


@pytest.fixture(scope="module")
def files(spector, tmp_path_factory):
    """A CSV with a header, label and cluster column, the same without the cluster column,
    and model files of statsmodels' estimate: without a config, and with train.C = 0.5."""
    X, y, model = spector
    folder = tmp_path_factory.mktemp("inference")
    groups = np.arange(X.shape[0]) % 7
    for name, extra in (("data.csv", []), ("grouped.csv", ["cluster"])):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([*NAMES, "label", *extra])
            for i in range(X.shape[0]):
                writer.writerow([*X[i], y[i], *([groups[i]] if extra else [])])
    theta = model.fit(disp=0, tol=1e-12, method="newton").params
    params = Params(np.asarray(theta[:-1]), np.asarray(theta[-1]))
    jl.save_model(folder / "plain.npz", params, classes=[0, 1], feature_names=NAMES)
    jl.save_model(folder / "penalised.npz", params, classes=[0, 1], feature_names=NAMES,
                  config={"train": {"C": 0.5, "penalty": "l2", "fit_intercept": True}})
    return folder, params, groups


def test_prints_the_table_and_writes_json(spector, files, capsys):
    model = spector[2]
    folder, _, _ = files
    out = folder / "out.json"
    assert cli_main(["inference", "--model", str(folder / "plain.npz"),
                     "--data", str(folder / "data.csv"), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cov_type=nonrobust" in text and "GPA" in text and "C=inf" in text
    doc = json.loads(out.read_text(encoding="utf-8"))
    ref = model.fit(disp=0, tol=1e-12, method="newton")
    assert doc["names"] == [*NAMES, "intercept"]
    np.testing.assert_allclose(doc["std_err"], ref.bse, rtol=1e-6)
    np.testing.assert_allclose(doc["p_value"], ref.pvalues, rtol=1e-6)


def test_cluster_from_a_csv_column_writes_csv(spector, files, capsys):
    model = spector[2]
    folder, _, groups = files
    out = folder / "out.csv"
    assert cli_main(["inference", "--model", str(folder / "plain.npz"), "--data",
                     str(folder / "grouped.csv"), "--cov-type", "cluster", "--groups-column",
                     "cluster", "--output", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ref = model.fit(disp=0, tol=1e-12, method="newton", cov_type="cluster",
                    cov_kwds={"groups": groups})
    assert [row["name"] for row in rows] == [*NAMES, "intercept"]
    np.testing.assert_allclose([float(row["std_err"]) for row in rows], ref.bse, rtol=1e-6)


def test_the_model_files_C_and_the_C_option(spector, files, capsys):
    X, y, _ = spector
    folder, params, _ = files
    for model, extra, C in (("penalised.npz", [], 0.5), ("plain.npz", ["--C", "2"], 2.0)):
        out = folder / f"C{C}.json"
        assert cli_main(["inference", "--model", str(folder / model), "--data",
                         str(folder / "data.csv"), "--output", str(out), *extra]) == 0
        expected = jl.inference(params, X, y, C=C).std_err
        np.testing.assert_allclose(json.loads(out.read_text())["std_err"], expected, rtol=1e-9)
    assert "C=0.5" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--output", "out.txt"], "--output must end in .json or .csv"),
    (["--cov-type", "cluster"], "needs --groups-column"),
    (["--cov-type", "HC3"], "cov_type must be one of"),
    (["--groups-column", "cluster"], "goes with --cov-type cluster"),
    (["--cov-type", "cluster", "--groups-column", "site"], r"missing column\(s\) \['site'\]"),
    (["--alpha", "2"], r"alpha must be a number in \(0, 1\)"),
])
def test_bad_options_exit_2_with_a_message(files, capsys, extra, message):
    folder, _, _ = files
    data = "grouped.csv" if "--groups-column" in extra else "data.csv"
    status = cli_main(["inference", "--model", str(folder / "plain.npz"), "--data",
                       str(folder / data), *extra])
    assert status == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.slow
def test_train_then_inference_equals_statsmodels(spector, files, capsys):
    model = spector[2]
    folder, _, _ = files
    run = folder / "run"
    assert cli_main(["train", "--quiet", "--out", str(run), "--set", "data.source=file",
                     "--set", f"data.path={folder / 'data.csv'}",
                     "--set", "data.validation_fraction=0", "--set", "train.C=inf",
                     "--set", "train.dtype=float64", "--set", "train.tol=1e-10",
                     "--set", "train.max_iter=1000"]) == 0
    out = folder / "trained.json"
    assert cli_main(["inference", "--model", str(run / "model.npz"), "--data",
                     str(folder / "data.csv"), "--cov-type", "HC0", "--output", str(out)]) == 0
    ref = model.fit(disp=0, tol=1e-12, method="newton", cov_type="HC0")
    np.testing.assert_allclose(json.loads(out.read_text())["std_err"], ref.bse, rtol=1e-6)
