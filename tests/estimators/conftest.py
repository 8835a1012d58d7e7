"""Fixtures of the estimator tests: a check that LogisticRegressionCV refuses before compiling."""

from __future__ import annotations

import pytest

from jaxlogreg.estimators import logistic_cv as estimator_cv
from jaxlogreg.training import data as training_data
from jaxlogreg.training import path


@pytest.fixture
def assert_rejected_before_compiling(monkeypatch):
    """``check(clf, X, y, match, sample_weight=None)``: ``clf.fit`` raises a ValueError matching
    ``match`` without calling ``path_of`` and without compiling a path or data program."""

    def check(clf, X, y, match, sample_weight=None):
        calls = []
        monkeypatch.setattr(estimator_cv, "path_of", lambda *a, **k: calls.append(1))
        before = (path._run_path_program._cache_size(), training_data._prepare._cache_size())
        with pytest.raises(ValueError, match=match):
            clf.fit(X, y, sample_weight=sample_weight)
        assert calls == []
        after = (path._run_path_program._cache_size(), training_data._prepare._cache_size())
        assert after == before

    return check
