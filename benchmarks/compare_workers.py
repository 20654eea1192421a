"""The comparison of chapter 3 at full seed count: one process against worker processes, side by side.

Runs ``tutorial_nas.analysis.compare.compare`` on the shipped benchmark (the four benchmark-driven strategies, the
profile's budget) with ``workers=1`` and with ``workers=N`` in the same run, checks that both return the same
DataFrame, and prints the wall seconds of each and their ratio.

    python benchmarks/compare_workers.py [--seeds 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.profiles import get_profile
from tutorial_nas.spaces import make_space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    bench, space, profile = load_benchmark(), make_space("nb201"), get_profile()
    strategies, budget = C.STRATEGIES, f"{profile.compare.budget_s}s"
    print(f"{len(strategies)} strategies x {args.seeds} seeds, budget {budget} per run, "
          f"{os.cpu_count()} cores, profile {profile.name}")
    frames, seconds = {}, {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        frames[workers] = C.compare(space, strategies, args.seeds, budget, bench=bench, progress=False,
                                    workers=workers)
        seconds[workers] = time.perf_counter() - start
        print(f"workers={workers}: {seconds[workers]:6.1f} s", flush=True)
    pd.testing.assert_frame_equal(frames[1], frames[args.workers])
    print(f"same DataFrame; {args.workers} workers: {seconds[1] / seconds[args.workers]:.2f}x faster than one")


if __name__ == "__main__":
    main()
