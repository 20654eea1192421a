"""Chapter 2's shortcut table: real low-fidelity training on the benchmark's own recipe, NSAS behind a size."""

from __future__ import annotations

import torch

from tutorial_nas.analysis.shortcuts import build_shortcuts, recipe_config
from tutorial_nas.bench import load_benchmark
from tutorial_nas.data import Augment, Dataset
from tutorial_nas.predictors import LowFidelityShortcut
from tutorial_nas.spaces.cell import parse


def toy() -> Dataset:
    x, y = torch.zeros(8, 1, 14, 14), torch.zeros(8, dtype=torch.long)  # nothing is trained: shapes suffice
    return Dataset("toy", x, y, x, y, x, y, num_classes=10, augment=Augment())


def test_low_fidelity_trains_with_the_benchmark_recipe_cut_to_its_epochs():
    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    sizes = {"predictor_cells": 20, "proxy_batch": 8, "train_epochs": 2, "seed": 3}
    low = [s for s in build_shortcuts(cells, bench, toy(), sizes) if isinstance(s, LowFidelityShortcut)]
    assert len(low) == 1
    config = low[0].evaluator.config
    r = bench.recipe
    assert (config.batch_size, config.lr, config.weight_decay) == (r["batch_size"], r["lr"], r["weight_decay"])
    assert config.augment == r["augment"] and config.epochs == 2 and config.seed == 3
    assert config.batch_size != 128 or config.lr != 0.05  # not the package's default TrainConfig


def test_recipe_config_keeps_everything_but_the_epochs():
    bench = load_benchmark()
    full, one = recipe_config(bench, bench.epochs, 0), recipe_config(bench, 1, 0)
    assert full.epochs == bench.epochs and one.epochs == 1
    assert {**vars(full), "epochs": 1} == vars(one)


def test_nsas_row_only_when_its_size_asks_for_it():
    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    base = {"predictor_cells": 20, "proxy_batch": 8}
    names = {flag: [s.name for s in build_shortcuts(cells, bench, toy(), {**base, "nsas": flag})]
             for flag in (True, False)}
    assert "NSAS weight sharing" in names[True] and "NSAS weight sharing" not in names[False]
    assert set(names[True]) - set(names[False]) == {"NSAS weight sharing"}
    assert "NSAS weight sharing" in [s.name for s in build_shortcuts(cells, bench, toy(), base)]  # the default
