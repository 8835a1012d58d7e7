"""`python benchmarks/vectorization.py [options]`: the same as `jaxlogreg bench vectorization [options]`.

The benchmark itself lives in jaxlogreg/bench/vectorization.py; see benchmarks/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from jaxlogreg.bench import main

if __name__ == "__main__":
    raise SystemExit(main(["vectorization", *sys.argv[1:]]))
