"""Does GDAS' own recipe change where it ends at CPU scale? GDAS on the NAS-Bench-201 supernet at chapter 3's
sizes, once with DARTS' recipe and once with its authors' (AutoDL-Projects), seed by seed.

Chapter 3 runs GDAS with the recipe of its reference code (``oneshot.architect.METHOD_RECIPES``: the weight step
before the architecture step, SGD with Nesterov momentum and weight decay 5e-4); before, it ran DARTS' (the
architecture step first, plain momentum, weight decay 3e-4). Both with the architecture learning rate the chapter
scales to the steps (``compare.darts_config``) and the chapter's data, supernet and epochs (the ``cpu`` profile's
``compare`` and ``cell`` sections unless given). One JSON line per (recipe, seed) is appended to ``--out``: the
derived cell, what it computes once the edges cut off by ``none`` are dropped (``spaces.cell.unique_str``), its
parameter-free edges, its benchmark accuracy epoch by epoch, the alphas' final entropy against uniform, the
supernet's own accuracy. A run already in the file is skipped, so an interrupted sweep continues. The summary
prints each recipe's cells and their accuracies side by side.

    python benchmarks/gdas_recipe.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tutorial_nas.analysis.compare import darts_config
from tutorial_nas.bench import load_benchmark
from tutorial_nas.bench.build import read_results
from tutorial_nas.data import load_dataset
from tutorial_nas.oneshot.architect import METHOD_RECIPES
from tutorial_nas.oneshot.darts import darts_search, mean_entropy
from tutorial_nas.profiles import get_profile
from tutorial_nas.spaces.cell import parse, unique_str

OUT = Path(__file__).resolve().parent / "results" / "gdas_recipe.jsonl"
RECIPES = {"darts": METHOD_RECIPES["darts"], "autodl": METHOD_RECIPES["gdas"]}
PARAM_FREE = ("none", "skip_connect", "avg_pool_3x3")


def run(recipe: str, seed: int, profile, data, epochs: int, N: int, bench) -> dict:
    batch_size = profile.compare.oneshot_batch_size
    config = replace(darts_config("gdas", data, epochs, batch_size), **RECIPES[recipe])
    start = time.perf_counter()
    history = darts_search(space="nb201", data=data, method="gdas", epochs=epochs, C=profile.cell.C, N=N,
                           batch_size=batch_size, seed=seed, progress=False, bench=bench, config=config)
    arch = history["arch"].iloc[-1]
    ops = parse(arch)
    return dict(recipe=recipe, seed=seed, epochs=epochs, N=N, a_lr=config.a_lr,
                secs=round(time.perf_counter() - start), arch=arch, computes=unique_str(ops, "drop_zero"),
                param_free=sum(op in PARAM_FREE for op in ops),
                acc=[round(float(x), 2) for x in history["test_acc"]],
                entropy=round(mean_entropy(history["alphas"].iloc[-1]["cell"]) / np.log(5), 3),
                supernet=round(float(history["valid_acc"].iloc[-1]), 1))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--epochs", type=int, default=None, help="the supernet's epochs (default: the profile's)")
    p.add_argument("--N", type=int, default=None, help="cells per stage (default: the profile's)")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    profile, bench, out = get_profile(args.profile), load_benchmark(), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["recipe"], r["seed"], r["epochs"], r["N"]) for r in read_results(out, trim=True)}
    epochs, N = args.epochs or profile.compare.gdas_epochs, args.N or profile.cell.N
    data = load_dataset(profile.compare.oneshot_dataset, image_size=profile.compare.oneshot_image_size)
    for seed in args.seeds:  # the recipes alternate, so a sweep cut short leaves them side by side
        for recipe in args.recipes:
            if (recipe, seed, epochs, N) not in done:
                with open(out, "a") as f:
                    f.write(json.dumps(run(recipe, seed, profile, data, epochs, N, bench)) + "\n")
    rows = [r for r in read_results(out) if r["epochs"] == epochs and r["N"] == N]
    best = bench.best_test_acc
    for recipe in args.recipes:
        mine = [r for r in rows if r["recipe"] == recipe]
        for r in mine:
            print(f"{recipe:6s} seed {r['seed']} ({r['secs']} s): {r['arch']} computes {r['computes']}, "
                  f"{r['param_free']} of 6 edges without parameters, {r['acc'][-1]:.2f} % (epoch by epoch "
                  f"{' '.join(f'{a:.0f}' for a in r['acc'])}), entropy {r['entropy']:.0%} of uniform, supernet "
                  f"{r['supernet']:.1f} %")
        if mine:
            print(f"{recipe:6s} mean over {len(mine)} seeds: {np.mean([r['acc'][-1] for r in mine]):.2f} % "
                  f"(the table's best cell: {best:.2f} %); distinct functions computed: "
                  f"{len({r['computes'] for r in mine})}")


if __name__ == "__main__":
    main()
