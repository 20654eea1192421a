"""Which recipe makes the benchmark table reliable? Recipes measured side by side on the same cells and seeds.

For each recipe (a set of overrides of ``tutorial_nas.bench.Recipe``) the same random sample of canonical
NAS-Bench-201 cells is trained with the same seeds, the seeds of a cell as one stacked computation
(``bench/stacked.py``). Printed per recipe: the seconds per (cell, seed) on one thread, the reliability of a
table built with that recipe and ``k`` seeds per cell (``bench/reliability.py``: the Kendall tau between two
independent builds, measured between two disjoint halves of the seeds and projected to ``k``), and the spread
(top-median gap, share of cell pairs the seed noise cannot explain, rank of the cells without convolution).

Results go to ``--out`` as one JSON line per (recipe, cell) and are reused by a rerun (``--out`` is resumable),
so an interrupted study loses at most the cells in flight. Work is shared by ``--workers`` processes of one
thread each.

    python benchmarks/bench_recipes.py [--cells 100] [--seeds 4] [--k 4] [--workers 2] [--out runs/recipes]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import torch

from tutorial_nas.bench.build import Recipe, recipe_data
from tutorial_nas.bench.reliability import pooled_seed_sd, reliability, spread
from tutorial_nas.bench.stacked import train_stacked
from tutorial_nas.spaces import cell as nb201

# name -> overrides of the shipped recipe (mnist5k at 14x14, 1,000 training images, 3 epochs, lr 0.2, batch 64)
RECIPES = {
    "shipped": {},
    "2k images": {"train_images": 2000},
    "6 epochs": {"epochs": 6},
    "lr 0.1": {"lr": 0.1},
    "augment": {"augment": True},
    "2k images 5 epochs": {"train_images": 2000, "epochs": 5},
}

_DATA: dict = {}


def _run(job):
    name, index, seeds = job
    torch.set_num_threads(1)
    recipe = Recipe(**RECIPES[name])
    if name not in _DATA:
        _DATA[name] = recipe_data(recipe)
    data, arch = _DATA[name], nb201.from_index(index)
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(nb201.NB201Network(arch, data.num_classes, data.in_channels, C=recipe.C, N=recipe.N,
                                         stem_stride=recipe.stem_stride))
    start = time.perf_counter()
    recs = train_stacked(models, data, [recipe.train_config(s) for s in seeds])
    return {"recipe": name, "index": index, "valid": [r.final_valid_acc for r in recs],
            "test": [r.test_acc for r in recs], "seconds_per_seed": (time.perf_counter() - start) / len(seeds)}


def study(cells: int, seeds: int, out: Path, workers: int, recipes: list) -> list:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    done = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                done.append(json.loads(line))
            except json.JSONDecodeError:
                break
    have = {(r["recipe"], r["index"]) for r in done}
    unique = [nb201.index(c) for c in nb201.unique_cells("drop_zero")]
    sample = [unique[i] for i in np.random.default_rng(0).permutation(len(unique))[:cells]]
    # interleave the recipes so that a partial study (or a busy machine) affects them alike
    todo = [(name, i, list(range(seeds))) for i in sample for name in recipes if (name, i) not in have]
    with open(path, "a") as f:
        if workers <= 1:
            results = map(_run, todo)
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(workers)
            results = pool.imap_unordered(_run, todo)
        for k, row in enumerate(results, 1):
            f.write(json.dumps(row) + "\n")
            f.flush()
            done.append(row)
            if k % 20 == 0:
                print(f"  {k}/{len(todo)} trained", flush=True)
        if pool is not None:
            pool.close()
            pool.join()
    return [r for r in done if r["index"] in set(sample)]


def summarise(rows: list, recipes: list, k: int) -> list:
    table = []
    for name in recipes:
        mine = sorted((r for r in rows if r["recipe"] == name), key=lambda r: r["index"])
        if len(mine) < 10:
            continue
        acc = np.array([r["valid"] for r in mine])
        rel = reliability(acc, k)
        one = reliability(acc, 1)
        sp = spread(acc.mean(1), [nb201.from_index(r["index"]) for r in mine], pooled_seed_sd(acc), acc.shape[1])
        table.append({"recipe": name, "cells": len(mine), "seeds": acc.shape[1],
                      "s_per_seed": float(np.median([r["seconds_per_seed"] for r in mine])),
                      "tau_1": one["tau"], f"tau_{k}": rel["tau"], "se": rel["se"],
                      "median": sp["median"], "best_minus_median": sp["best_minus_median"],
                      "seed_sd": sp["seed_sd"], "resolved_pairs": sp["resolved_pairs"],
                      "conv_free_median_pct": sp.get("conv_free_median_percentile")})
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=100)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--k", type=int, default=4, help="seeds per cell of the table whose reliability is projected")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names of RECIPES")
    p.add_argument("--out", default="runs/recipes")
    args = p.parse_args(argv)
    recipes = [r.strip() for r in args.recipes.split(",")]
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        p.error(f"unknown recipe(s) {unknown}; choose from {list(RECIPES)}")
    rows = study(args.cells, args.seeds, Path(args.out), args.workers, recipes)
    table = summarise(rows, recipes, args.k)
    cols = list(table[0]) if table else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for t in table:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in t.values()) + " |")
    (Path(args.out) / "summary.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
