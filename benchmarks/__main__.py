"""``python -m benchmarks <name>|all [options]`` (from the repository root)."""

import sys

from benchmarks import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
