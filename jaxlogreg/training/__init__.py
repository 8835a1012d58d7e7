"""Training: the settings (:mod:`~.settings`), the optimizers (:mod:`~.solvers`), the on-device
loop (:mod:`~.loop`), data preparation (:mod:`~.data`) and the one fit pipeline
(:mod:`~.pipeline`) that every entry point (``fit``, the estimator, ``fit_distributed``,
``fit_streaming``) goes through.

Model selection has its own solver: :mod:`~.path` fits every (fold, C) model of a
cross-validation together, in one program (``fit_path``)."""
