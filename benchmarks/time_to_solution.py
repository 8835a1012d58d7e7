"""`python benchmarks/time_to_solution.py [options]`: the same as `jaxlogreg bench time_to_solution [options]`.

The benchmark itself lives in jaxlogreg/bench/time_to_solution.py; see benchmarks/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from jaxlogreg.bench import main

if __name__ == "__main__":
    raise SystemExit(main(["time_to_solution", *sys.argv[1:]]))
