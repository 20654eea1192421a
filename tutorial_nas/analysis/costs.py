"""What full training costs: the seconds measured here per candidate, set beside the papers' search costs.

The extrapolation is deliberately simple and says so: a candidate's training time is taken to grow linearly
with the number of training images, the epochs and the pixels per image; the networks of the papers were
also far wider and deeper, so the figure is a lower bound.
"""

from __future__ import annotations

import pandas as pd

from ..data import Dataset
from .literature import load_cifar10

EARLY_METHODS = ("NAS-RL, Zoph & Le", "MetaQNN", "Large-scale Evolution", "GeNet")
CIFAR10 = dict(train_images=50_000, pixels=3 * 32 * 32)


def per_candidate(histories: dict) -> pd.DataFrame:
    """Candidates trained, mean seconds per candidate and total seconds, per strategy."""
    rows = []
    for name, h in histories.items():
        trained = h[h["cost_s"] > 0]
        rows.append({"strategy": name, "candidates": len(trained), "mean_s": trained["cost_s"].mean(),
                     "total_s": trained["cost_s"].sum(), "best_valid_acc": h["valid_acc"].max()})
    return pd.DataFrame(rows)


def at_cifar10_scale(seconds: float, data: Dataset, epochs: float, cifar_epochs: float = 50) -> float:
    """Seconds one candidate would take on CIFAR-10 (50,000 images of 3x32x32) for ``cifar_epochs``,
    scaled linearly from ``seconds`` measured on ``data`` for ``epochs``."""
    images = len(data.train_y)
    pixels = data.in_channels * data.image_size ** 2
    return seconds * (CIFAR10["train_images"] / images) * (cifar_epochs / epochs) * (CIFAR10["pixels"] / pixels)


def cost_table(histories: dict, data: Dataset, epochs: float, cifar_epochs: float = 50) -> pd.DataFrame:
    """This chapter's searches (measured here, and extrapolated to CIFAR-10) beside the early papers'."""
    ours = per_candidate(histories)
    rows = []
    for r in ours.itertuples():
        scaled = at_cifar10_scale(r.mean_s, data, epochs, cifar_epochs) * r.candidates
        rows.append({"search": f"{r.strategy} (this chapter)", "candidates": r.candidates,
                     "measured_s": r.total_s, "cifar10_days": scaled / 86400, "unit": "CPU-days (extrapolated)",
                     "source": "measured on this machine"})
    papers = load_cifar10()
    for method in EARLY_METHODS:
        row = papers[papers["method"] == method].iloc[0]
        rows.append({"search": method, "candidates": None, "measured_s": None, "cifar10_days": row["gpu_days"],
                     "unit": "GPU-days (published)", "source": row["source"]})
    return pd.DataFrame(rows)
