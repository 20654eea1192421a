"""Training tricks against architecture search: how much does each buy, on the benchmark's own recipe?

Yang et al. (ICLR 2020, "NAS evaluation is frustratingly hard") retrained searched and random DARTS cells and
found that the training protocol (cutout, longer schedules, auxiliary towers, drop-path) moves the accuracy
more than the choice of cell. This module repeats the comparison on the NAS-Bench-201 space: a cell is trained
with the benchmark's recipe (``bench.build.Recipe``) and again with tricks switched on, one at a time or all:

- ``augment``: random translations of the data set (``data.DEFAULT_AUGMENT``), off in the recipe;
- ``cutout``: a random square of each training image set to zero (DeVries & Taylor 2017), batched on the device;
- ``label_smoothing``: cross-entropy against smoothed targets, eps = 0.1 spread over all K classes as PyTorch
  does (0.91 on the true class, 0.01 on each other with K = 10; Szegedy et al. 2016);
- ``longer``: the same schedule stretched over more epochs.

Both sides are measured so that neither is a winner's curse (a cell picked for its lucky number, scored by
the same number). The search side: ``search_picks`` runs a search on the benchmark with several seeds, each
choosing its cell by *validation* accuracy; those cells and a sample of random cells are trained again with
seeds the table did not use and scored on the *test* split. The gain from search is the picked cells' mean
test accuracy minus the random cells'; the gain from a trick is the same cell and seed with and without it.
``gains`` gives each with a 95 % bootstrap interval over the cells (each cell its mean over the seeds), and
``verdict`` says in words which moves the accuracy more.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ..errors import NASInputError, check_choice
from ..spaces import cell as nb201
from ..train import train

TRICKS = ("baseline", "augment", "cutout", "label_smoothing", "longer", "all")


def cutout(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square at a random centre of every image (clipped at the border), as one
    tensor operation on the batch's device. The centre may lie anywhere, so part of a square can fall outside."""
    if not isinstance(size, int) or size < 1:
        raise NASInputError(f"cutout size must be a whole number of pixels >= 1, got {size!r}")
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
    top, left = cy - size // 2, cx - size // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)  # (n, h)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)  # (n, w)
    hole = in_rows[:, :, None] & in_cols[:, None, :]  # (n, h, w)
    return x * (~hole)[:, None].to(x.dtype)


class Cutout(nn.Module):
    """A first layer that applies ``cutout`` in training mode only (evaluation sees whole images)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x):
        return cutout(x, self.size) if self.training else x


def trick_settings(trick: str, recipe, longer: int = 2, cutout_size: int | None = None,
                   smoothing: float = 0.1, schedule: int = 1) -> tuple:
    """(training config, cutout size or 0) of ``trick`` on top of ``recipe`` (``bench.build.Recipe``).

    ``schedule`` multiplies the epochs of every training, the baseline's included (a longer recipe);
    ``longer`` multiplies them again for the ``longer`` trick. ``cutout_size`` defaults to half the image side
    (16 of 32 on CIFAR-10 in the Cutout paper)."""
    check_choice("trick", trick, TRICKS)
    for name, value in (("longer", longer), ("schedule", schedule)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise NASInputError(f"{name} multiplies the recipe's epochs: a whole number >= 1, got {value!r}")
    config = recipe.train_config(seed=0)
    config = replace(config, epochs=config.epochs * schedule)
    size = cutout_size or max(1, recipe.image_size // 2)
    on = {"augment": trick in ("augment", "all"), "cutout": trick in ("cutout", "all"),
          "label_smoothing": trick in ("label_smoothing", "all"), "longer": trick in ("longer", "all")}
    config = replace(config, augment=on["augment"] or config.augment,
                     label_smoothing=smoothing if on["label_smoothing"] else config.label_smoothing,
                     epochs=config.epochs * longer if on["longer"] else config.epochs)
    return config, (size if on["cutout"] else 0)


def train_with_trick(arch, data, recipe, trick: str = "baseline", seed: int = 0, **settings) -> dict:
    """Train the NAS-Bench-201 cell ``arch`` on ``data`` with the recipe plus ``trick``; return its row."""
    cell = nb201.parse(arch) if isinstance(arch, str) else tuple(arch)
    config, size = trick_settings(trick, recipe, **settings)
    torch.manual_seed(seed)
    model = nb201.NB201Network(cell, data.num_classes, data.in_channels, C=recipe.C, N=recipe.N,
                               stem_stride=recipe.stem_stride)
    if size:
        model = nn.Sequential(Cutout(size), model)
    record = train(model, data, replace(config, seed=seed), progress=False)
    return {"arch": nb201.to_str(cell), "trick": trick, "seed": seed, "epochs": config.epochs,
            "valid_acc": record.final_valid_acc, "test_acc": record.test_acc, "seconds": record.seconds}


def tricks_table(cells: dict, data, recipe, tricks=("baseline", "all"), seeds=(0,), **settings) -> pd.DataFrame:
    """Train every cell of ``cells`` (role -> arch string, e.g. {"search 1": ..., "random 1": ...}) with every
    trick and every seed of ``seeds``; one row each, with the cell's ``role`` and ``group`` (the role without
    its number: "search", "random"). Every number is a fresh training: pass seeds the benchmark did not use
    to score cells independently of the table that chose them. ``settings`` go to ``trick_settings``."""
    if "baseline" not in tricks:
        raise NASInputError(f"tricks must include 'baseline' to measure a gain against; got {tricks!r}")
    seeds = tuple(seeds)
    if not seeds:
        raise NASInputError("tricks_table needs at least one training seed")
    rows = []
    for role, arch in cells.items():
        group = role.rstrip("0123456789 ") or role
        for seed in seeds:
            for trick in tricks:
                rows.append({"role": role, "group": group,
                             **train_with_trick(arch, data, recipe, trick, seed, **settings)})
    return pd.DataFrame(rows)


def search_picks(bench, seeds=(0, 1, 2), budget: int = 100, strategy: str = "regularized") -> pd.DataFrame:
    """The cell ``strategy`` picks on the benchmark with ``budget`` look-ups, for each seed: the evaluated cell
    of the highest *validation* accuracy (what the search sees), beside its table test accuracy (what it does
    not). One row per seed: ``seed``, ``arch``, ``valid_acc``, ``test_acc``."""
    from ..evaluators import BenchmarkLookup
    from ..search import search

    space = nb201.NB201Space()
    rows = []
    for seed in seeds:
        history = search(space, strategy, BenchmarkLookup(space, bench), budget, seed=seed, progress=False)
        best = history.loc[history["valid_acc"].idxmax()]
        rows.append({"seed": seed, "arch": best["arch"], "valid_acc": float(best["valid_acc"]),
                     "test_acc": float(best["test_acc"])})
    return pd.DataFrame(rows)


def _interval(values, n_boot: int, rng) -> tuple:
    values = np.asarray(values, dtype=float)
    boot = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    return tuple(np.percentile(boot, [2.5, 97.5]))


def gains(table: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Gains in test accuracy points, each with a 95 % bootstrap interval over the cells (every cell counted
    as its mean over the seeds, so that a lucky seed cannot carry a side):

    - ``trick: X``: the same cell and seed with X minus without it, over every cell of the table;
    - ``search``: the mean baseline test accuracy of the cells of group "search" minus that of group "random"
      (the two groups resampled independently), where both groups are present.

    One row per gain: ``what``, ``gain``, ``low``, ``high``, ``n_cells``, ``n_seeds``."""
    rng = np.random.default_rng(seed)
    key = ["role", "seed"]
    base = table[table.trick == "baseline"].set_index(key)["test_acc"]
    rows = []
    for trick, group in table[table.trick != "baseline"].groupby("trick", sort=False):
        delta = group.set_index(key)["test_acc"] - base.reindex(group.set_index(key).index)
        per_cell = delta.groupby(level="role").mean()
        low, high = _interval(per_cell, n_boot, rng)
        rows.append({"what": f"trick: {trick}", "gain": float(per_cell.mean()), "low": low, "high": high,
                     "n_cells": len(per_cell), "n_seeds": group["seed"].nunique()})
    cells = table[table.trick == "baseline"].groupby(["group", "role"])["test_acc"].mean()
    if {"search", "random"} <= set(cells.index.get_level_values("group")):
        picked, rand = cells.loc["search"].to_numpy(), cells.loc["random"].to_numpy()
        boot = (picked[rng.integers(0, len(picked), (n_boot, len(picked)))].mean(axis=1)
                - rand[rng.integers(0, len(rand), (n_boot, len(rand)))].mean(axis=1))
        low, high = np.percentile(boot, [2.5, 97.5])
        rows.append({"what": "search: picked vs random cells", "gain": float(picked.mean() - rand.mean()),
                     "low": float(low), "high": float(high), "n_cells": len(picked) + len(rand),
                     "n_seeds": table["seed"].nunique()})
    return pd.DataFrame(rows)


def verdict(gain_table: pd.DataFrame) -> str:
    """Which moves the test accuracy more, the search or a training trick, in words, from ``gains``' table:
    a difference counts only where the 95 % intervals do not overlap."""
    g = gain_table.set_index("what")
    trick_rows = g[g.index.str.startswith("trick")]
    if "search: picked vs random cells" not in g.index or trick_rows.empty:
        return "a verdict needs both sides: tricks and the search's picked and random cells"
    s = g.loc["search: picked vs random cells"]
    best = trick_rows["gain"].idxmax()
    b = trick_rows.loc[best]
    largest = trick_rows["gain"].abs().idxmax()
    big = trick_rows.loc[largest]
    text = (f"search gains {s.gain:+.1f} points [{s.low:+.1f}, {s.high:+.1f}] over random cells; the best trick "
            f"({best[7:]}) {b.gain:+.1f} [{b.low:+.1f}, {b.high:+.1f}]; the trick that moves the accuracy most "
            f"({largest[7:]}) {big.gain:+.1f} [{big.low:+.1f}, {big.high:+.1f}]. ")
    if s.low > 0:
        text += "The search's cells are better than random ones (its interval lies above 0). "
    else:
        text += "The search's cells are not distinguishable from random ones (its interval reaches 0). "
    if b.low > s.high:
        text += "The best trick gains more than the search: Yang et al.'s point holds here."
    elif s.low > b.high:
        text += "The search gains more than any trick: here Yang et al.'s point does not hold for gains."
    else:
        text += "The search and the best trick cannot be told apart (their intervals overlap)."
    if big.low * big.high > 0 and min(abs(big.low), abs(big.high)) > max(abs(s.low), abs(s.high)):
        text += (f" The protocol moves the accuracy more than the search does ({largest[7:]}: "
                 f"{big.gain:+.1f} points"
                 + (", a loss: it shows how much this recipe's result depends on its protocol, not a trick worth "
                    "using here" if big.gain < 0 else "") +
                 "): a comparison of cells trained under different protocols compares the protocols.")
    return text


def plot_gains(gain_table: pd.DataFrame, ax=None, title: str | None = None):
    """Horizontal bars of the gains, tricks in one colour and search in another, with their 95 % intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(gain_table)))
    y = np.arange(len(gain_table))
    colours = ["tab:orange" if w.startswith("trick") else "tab:blue" for w in gain_table["what"]]
    err = np.vstack([gain_table["gain"] - gain_table["low"], gain_table["high"] - gain_table["gain"]])
    ax.barh(y, gain_table["gain"], xerr=err, color=colours, capsize=3)
    ax.set_yticks(y, gain_table["what"])
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy gained (points), with 95 % intervals over the cells")
    ax.set_title(title or "What buys more accuracy: training tricks or architecture search?")
    return ax
