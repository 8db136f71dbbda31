"""Memory of indexing N synthetic achievements in one process: RSS with the input table, after the build (input
freed) and the peak. The target of issue 3 is 1M achievements under 4 GiB peak.

Usage: python -m benchmarks.build_memory 1000000 [--encoder lsa]
"""

from __future__ import annotations

import argparse
import gc
import json
import time

from qcy_match import EngineConfig, MatchEngine

from . import synth
from .speed import peak_rss_mib, rss_mib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int)
    ap.add_argument("--encoder", default="lsa")
    args = ap.parse_args()
    t0 = time.time()
    corpus = synth.generate(args.n, 0)
    gc.collect()
    with_input = rss_mib()
    engine = MatchEngine(EngineConfig(encoder=args.encoder)).index(corpus)
    build_s = time.time() - t0
    del corpus
    gc.collect()
    print(json.dumps({"n": args.n, "encoder": args.encoder, "index": engine.dense_.kind_,
                      "rss_with_input_mib": round(with_input), "rss_after_build_mib": round(rss_mib()),
                      "peak_rss_mib": round(peak_rss_mib()),
                      "build_s": round(build_s)}))


if __name__ == "__main__":
    main()
