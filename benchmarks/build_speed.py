"""Benchmark build speed: the seeds of a cell trained one after another against stacked into one network.

The build trains every cell with ``k`` seeds. (a) is how each (cell, seed) was trained before: one
``tutorial_nas.train`` call per seed; (b) trains the ``k`` seeds of the cell as one grouped network
(``tutorial_nas.bench.stacked.train_stacked``), with the same recipe, batches and initialisations. The same random
cells go through both, alternating (a) (b) (a) (b) ..., on one thread, so a busy machine slows both alike; the
script prints the cells per hour of each and their ratio.

It also measures this CPU's fp32 matrix-multiply rate on one thread and reports the build's achieved FLOP/s as a
share of it: the training FLOPs of a cell (forward FLOPs per image counted by torch, times 3 for the forward and
backward passes over the training images of every epoch, plus the forward passes of validation and test).

    python benchmarks/build_speed.py [--cells 12] [--seeds 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from tutorial_nas.bench.build import Recipe, recipe_data
from tutorial_nas.bench.stacked import train_stacked
from tutorial_nas.spaces import cell as nb201
from tutorial_nas.train import count_flops, train


def gemm_rate(n: int = 512, repeats: int = 20) -> float:
    """fp32 FLOP/s of an n x n matrix product on the current threads (median of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


def networks(arch, data, recipe: Recipe, seeds) -> list:
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(nb201.NB201Network(arch, data.num_classes, data.in_channels, C=recipe.C, N=recipe.N,
                                      stem_stride=recipe.stem_stride))
    return out


def training_flops(model, data, recipe: Recipe) -> float:
    """FLOPs of one training run: 3x forward over the training images per epoch, 1x over valid and test."""
    f = count_flops(model, data.input_shape)
    return f * (3 * len(data.train_y) * recipe.epochs + len(data.valid_y) * recipe.epochs + len(data.test_y))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=12)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = Recipe()
    data = recipe_data(recipe)
    unique = [nb201.index(c) for c in nb201.unique_cells("drop_zero")]
    cells = [nb201.from_index(unique[i]) for i in np.random.default_rng(1).permutation(len(unique))[:args.cells]]
    seeds = list(range(args.seeds))
    t_one, t_stacked, flops = [], [], []
    for arch in cells:
        flops.append(training_flops(networks(arch, data, recipe, [0])[0], data, recipe) * len(seeds))
        t = time.perf_counter()
        for m, s in zip(networks(arch, data, recipe, seeds), seeds):
            train(m, data, recipe.train_config(s), progress=False)
        t_one.append(time.perf_counter() - t)
        t = time.perf_counter()
        train_stacked(networks(arch, data, recipe, seeds), data, [recipe.train_config(s) for s in seeds])
        t_stacked.append(time.perf_counter() - t)
    peak = gemm_rate()
    one, stacked = sum(t_one), sum(t_stacked)
    print(f"{len(cells)} cells x {len(seeds)} seeds, recipe {recipe.dataset} {recipe.image_size}x{recipe.image_size}, "
          f"{recipe.train_images} images, {recipe.epochs} epochs, {args.threads} thread(s)")
    print(f"one seed at a time: {3600 * len(cells) / one:7.1f} cells/h  "
          f"({one / len(cells) / len(seeds):.2f} s per seed)")
    print(f"seeds stacked:      {3600 * len(cells) / stacked:7.1f} cells/h  "
          f"({stacked / len(cells) / len(seeds):.2f} s per seed)")
    print(f"stacked / one at a time: {one / stacked:.2f}x more cells per hour")
    print(f"fp32 GEMM rate (512x512, {args.threads} thread(s)): {peak / 1e9:.1f} GFLOP/s")
    for name, t in (("one at a time", one), ("stacked", stacked)):
        print(f"achieved, {name}: {sum(flops) / t / 1e9:.2f} GFLOP/s ({100 * sum(flops) / t / peak:.1f} % of it)")


if __name__ == "__main__":
    main()
