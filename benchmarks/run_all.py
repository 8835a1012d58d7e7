"""`python benchmarks/run_all.py [options]`: every benchmark, the same as `jaxlogreg bench all`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from jaxlogreg.bench import main

if __name__ == "__main__":
    raise SystemExit(main(["all", *sys.argv[1:]]))
