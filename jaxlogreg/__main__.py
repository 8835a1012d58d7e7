"""``python -m jaxlogreg``: the same command as ``jaxlogreg`` (see :mod:`jaxlogreg.cli`)."""

from jaxlogreg.cli import main

raise SystemExit(main())
