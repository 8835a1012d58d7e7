"""The scikit-learn estimators: :class:`~.logistic.LogisticRegression` and
:class:`~.logistic_cv.LogisticRegressionCV`."""
