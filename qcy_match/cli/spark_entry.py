"""The script ``spark-submit`` runs: ``spark-submit $(python -m qcy_match.cli.spark_entry --path) --index …``.

Its arguments are those of ``qcy-match spark-match``; the master and the resources are spark-submit's.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["--path"]:  # where this script is, for the spark-submit command line
        print(__file__)
        sys.exit(0)
    from qcy_match.cli import main

    sys.exit(main(["spark-match", *sys.argv[1:]]))
