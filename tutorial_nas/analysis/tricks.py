"""Training tricks against architecture search: how much does each buy, on the benchmark's own recipe?

Yang et al. (ICLR 2020, "NAS evaluation is frustratingly hard") retrained searched and random DARTS cells and
found that the training protocol (cutout, longer schedules, auxiliary towers, drop-path) moves the accuracy
more than the choice of cell. This module repeats the comparison on the NAS-Bench-201 space: a cell is trained
with the benchmark's recipe (``bench.build.Recipe``) and again with tricks switched on, one at a time or all:

- ``augment``: random translations of the data set (``data.DEFAULT_AUGMENT``), off in the recipe;
- ``cutout``: a random square of each training image set to zero (DeVries & Taylor 2017), batched on the device;
- ``label_smoothing``: cross-entropy against 0.9 / 0.1 spread targets (Szegedy et al. 2016);
- ``longer``: the same schedule stretched over more epochs.

The gain from search is the best cell minus the median cell; the gain from tricks is the same cell with and
without them.
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


def trick_settings(trick: str, recipe, longer: float = 2.0, cutout_size: int | None = None,
                   smoothing: float = 0.1) -> tuple:
    """(training config, cutout size or 0) of ``trick`` on top of ``recipe`` (``bench.build.Recipe``).

    ``cutout_size`` defaults to half the image side (16 of 32 on CIFAR-10 in the Cutout paper)."""
    check_choice("trick", trick, TRICKS)
    config = recipe.train_config(seed=0)
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


def tricks_table(cells: dict, data, recipe, tricks=("baseline", "all"), seed: int = 0, bench=None,
                 **settings) -> pd.DataFrame:
    """Train every cell of ``cells`` (role -> arch string, e.g. {"best": ..., "random 1": ...}) with every
    trick; one row each, with the cell's ``role``.

    With ``bench`` (built with this recipe) the baseline is read from the table instead of trained again: the
    table's row is seed 0 of the same recipe, so ``seed=0`` retraining reproduces it."""
    if "baseline" not in tricks:
        raise NASInputError(f"tricks must include 'baseline' to measure a gain against; got {tricks!r}")
    rows = []
    for role, arch in cells.items():
        for trick in tricks:
            if trick == "baseline" and bench is not None:
                r = bench.query(arch)
                rows.append({"role": role, "arch": nb201.to_str(nb201.parse(arch)), "trick": trick, "seed": 0,
                             "epochs": float(recipe.epochs), "valid_acc": r["valid_acc"],
                             "test_acc": r["test_acc"], "seconds": r["train_seconds"]})
            else:
                rows.append({"role": role, **train_with_trick(arch, data, recipe, trick, seed, **settings)})
    return pd.DataFrame(rows)


def gains(table: pd.DataFrame, bench=None) -> pd.DataFrame:
    """Gain (test accuracy points) of each trick over the baseline of the same cell, and the gain from search.

    The search gain is measured twice: on the trained cells (best cell minus the median of the others) and,
    with ``bench``, on the whole table (best cell minus the median cell)."""
    base = table[table.trick == "baseline"].set_index("arch")["test_acc"]
    rows = []
    for trick, group in table[table.trick != "baseline"].groupby("trick", sort=False):
        delta = group["test_acc"].to_numpy() - base.loc[group["arch"]].to_numpy()
        rows.append({"what": f"trick: {trick}", "gain": float(np.mean(delta)), "min": float(delta.min()),
                     "max": float(delta.max()), "n": len(delta)})
    baseline = table[table.trick == "baseline"]
    best, others = baseline[baseline.role == "best"], baseline[baseline.role != "best"]
    if len(best) and len(others):
        gain = float(best["test_acc"].iloc[0] - others["test_acc"].median())
        rows.append({"what": "search: best vs median trained cell", "gain": gain, "min": gain, "max": gain,
                     "n": len(others)})
    if bench is not None:
        acc = bench.frame()["test_acc"]
        gain = float(acc.max() - acc.median())
        rows.append({"what": "search: best vs median cell of the table", "gain": gain, "min": gain,
                     "max": gain, "n": len(acc)})
    return pd.DataFrame(rows)


def plot_gains(gain_table: pd.DataFrame, ax=None, title: str | None = None):
    """Horizontal bars of the gains, tricks in one colour and search in another, with the min-max range."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(gain_table)))
    y = np.arange(len(gain_table))
    colours = ["tab:orange" if w.startswith("trick") else "tab:blue" for w in gain_table["what"]]
    err = np.vstack([gain_table["gain"] - gain_table["min"], gain_table["max"] - gain_table["gain"]])
    ax.barh(y, gain_table["gain"], xerr=err, color=colours, capsize=3)
    ax.set_yticks(y, gain_table["what"])
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy gained (points)")
    ax.set_title(title or "What buys more accuracy: training tricks or architecture search?")
    return ax
