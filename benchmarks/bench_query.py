"""The shipped tabular benchmark: load time, queries per second and peak memory, printed.

    python benchmarks/bench_query.py [--queries 200000]

Goals: load under 1 s, at least 100,000 queries per second, under 200 MB. Load time and memory are measured
in a fresh interpreter (a child process), so nothing imported before counts against the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import numpy as np
from tutorial_nas.spaces import cell
from tutorial_nas.bench import load_benchmark
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
bench = load_benchmark()
load_s = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = int(sys.argv[1])
arches = bench.all_arches()  # every arch string the table answers (all 15,625 when complete)
picks = [arches[i] for i in np.random.default_rng(0).integers(0, len(arches), n)]
t = time.perf_counter()
for a in picks:
    bench.query(a)
query_s = time.perf_counter() - t
t = time.perf_counter()
for a in picks[: n // 4]:
    bench.query(a, epoch=1)
early_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "qps": n / query_s, "qps_epoch": (n // 4) / early_s,
                  "table_mb": (after - imported) / 1024, "process_mb": after / 1024,
                  "cells": len(bench)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=200_000)
    args = p.parse_args()
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.queries)], capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"table rows            {m['cells']}")
    print(f"load                  {m['load_s']:.3f} s        (goal < 1 s)")
    print(f"queries per second    {m['qps']:,.0f}      (goal >= 100,000)")
    print(f"  at an earlier epoch {m['qps_epoch']:,.0f}")
    print(f"memory of the table   {m['table_mb']:.1f} MB      (peak RSS growth while loading)")
    print(f"peak RSS of process   {m['process_mb']:.1f} MB      (torch itself is imported)")


if __name__ == "__main__":
    main()
