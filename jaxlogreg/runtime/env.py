"""The package's environment: its settings, read one way (:func:`flag`), and the cores this
process may run on (:func:`usable_cores`).

``JAXLOGREG_NO_CACHE`` (the ``jaxlogreg`` command's compilation cache) and
``JAXLOGREG_NATIVE`` (the C gradient kernel, :mod:`jaxlogreg.kernels.native`) are on/off
switches; a value that is neither is an error naming the variable, never a silent guess.
"""

from __future__ import annotations

import os

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def flag(name: str, default: bool) -> bool:
    """The switch ``name``: True for 1/true/yes/on, False for 0/false/no/off (any case),
    ``default`` when unset or empty; ValueError for anything else."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"environment variable {name} must be one of {'/'.join(TRUE)} or "
                     f"{'/'.join(FALSE)}, got {os.environ[name]!r}")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
