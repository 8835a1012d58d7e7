"""Reporting: classification metrics (:mod:`~.metrics`) and plots (:mod:`~.plots`)."""
