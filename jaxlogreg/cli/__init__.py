"""The ``jaxlogreg`` command line: configs (:mod:`~.config`), ``train`` (:mod:`~.train`), ``cv`` (:mod:`~.cv`),
``evaluate``/``predict``/``check-grad`` (:mod:`~.use`) and the entry point (:mod:`~.main`)."""

from jaxlogreg.cli.main import main as main

__all__ = ["main"]
