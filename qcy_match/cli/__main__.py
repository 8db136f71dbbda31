"""``python -m qcy_match.cli``."""

import sys

from . import main

if __name__ == "__main__":  # importing the module (e.g. walking the package) must not run the CLI
    sys.exit(main())
