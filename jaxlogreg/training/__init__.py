"""Training: the settings (:mod:`~.settings`), the optimizers (:mod:`~.solvers`), the on-device
loop (:mod:`~.loop`), data preparation (:mod:`~.data`) and the one fit pipeline
(:mod:`~.pipeline`) that every entry point (``fit``, the estimator, ``fit_distributed``,
``fit_streaming``) goes through."""
