"""``python benchmarks/run_all.py [options]``: every benchmark (``python -m benchmarks all``).

Options: ``--out DIR`` (default benchmarks/results), ``--quick``, ``--repeats N``,
``--skip NAME ...``; each benchmark runs with its own defaults otherwise.
"""

import sys
from pathlib import Path

if not __package__:  # run as a script: import from the checkout's root, not from benchmarks/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from benchmarks import main

if __name__ == "__main__":
    raise SystemExit(main(["all", *sys.argv[1:]]))
