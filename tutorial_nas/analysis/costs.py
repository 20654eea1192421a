"""What full training costs: the seconds measured here per candidate, set beside the papers' search costs.

The extrapolation is deliberately simple and says so: a candidate's training time is taken to grow linearly
with the number of training images, the epochs and the pixels per image; the networks of the papers were
also far wider and deeper, so the figure is a lower bound.

A number is only comparable with another measured on the same kind of device. The table therefore keeps one
column per device: what this machine measured and its extrapolation are in days of *this* device (a CPU here,
a GPU on Colab), the papers' costs in their published GPU-days, and no column holds both.
"""

from __future__ import annotations

import math

import pandas as pd

from ..data import Dataset
from ..text import count
from .literature import load_cifar10

EARLY_METHODS = ("NAS-RL, Zoph & Le", "MetaQNN", "Large-scale Evolution", "GeNet")
CIFAR10 = dict(train_images=50_000, area=32 * 32)
# Networks each paper trained in its CIFAR-10 search, where the paper states the count: Zoph & Le (ICLR 2017,
# Sec. 4.1) "after the controller trains 12,800 architectures"; Baker et al. (ICLR 2017, Table 2) 2,700 models
# over the epsilon schedule. Real et al. and Xie & Yuille report populations and generations, not a total here.
PAPER_CANDIDATES = {"NAS-RL, Zoph & Le": 12_800, "MetaQNN": 2_700}
# Epochs each of those networks was trained for during the search: Zoph & Le (Sec. 4.1) 50 epochs a child network;
# Baker et al. (Sec. 5) 20 epochs a model.
PAPER_EPOCHS = {"NAS-RL, Zoph & Le": 50, "MetaQNN": 20}


def device_name(device) -> str:
    """``"CPU"``, ``"GPU"`` (CUDA) or ``"MPS"`` (Apple): the kind of device a measurement was made on."""
    kind = getattr(device, "type", str(device)).split(":")[0]
    return {"cpu": "CPU", "cuda": "GPU", "mps": "MPS"}.get(kind, kind.upper())


def columns(device) -> dict:
    """The cost table's column names, the device in each: key -> name."""
    dev = device_name(device)
    return {"trained": "networks trained",
            "params": "parameters (here: mean of those trained; papers: final network)",
            "measured_s": f"the search, measured here ({dev}-seconds)",
            "candidate_h": f"a candidate at CIFAR-10 scale ({dev}-hours, extrapolated)",
            "search_days": f"the search at CIFAR-10 scale ({dev}-days, extrapolated)",
            "paper_candidate_h": "a candidate (GPU-hours, implied: survey's GPU-days / networks)",
            "paper_days": "the search (GPU-days, survey's Table 1)"}


def per_candidate(histories: dict) -> pd.DataFrame:
    """Candidates trained (a looked-up repeat is no training), mean seconds per trained candidate, total seconds
    and mean parameters of the trained networks (where the history has them), per strategy."""
    rows = []
    for name, h in histories.items():
        trained = h[h["cost_s"] > 0]
        rows.append({"strategy": name, "candidates": len(trained), "mean_s": trained["cost_s"].mean(),
                     "total_s": trained["cost_s"].sum(), "best_valid_acc": h["valid_acc"].max(),
                     "mean_params": trained["params"].mean() if "params" in h else math.nan})
    return pd.DataFrame(rows)


def at_cifar10_scale(seconds: float, data: Dataset, epochs: float, cifar_epochs: float = 50) -> float:
    """Seconds one candidate would take on CIFAR-10 (50,000 images of 32x32) for ``cifar_epochs``, scaled
    linearly from ``seconds`` measured on ``data`` for ``epochs``: by the images, the epochs and the images' area.
    The same network's convolutions cost in proportion to the area of their feature maps; CIFAR-10's three colour
    channels change only what the layers that read the image read, so they are not scaled."""
    images = len(data.train_y)
    area = data.image_size ** 2
    return seconds * (CIFAR10["train_images"] / images) * (cifar_epochs / epochs) * (CIFAR10["area"] / area)


def cost_table(histories: dict, data: Dataset, epochs: float, cifar_epochs: float = 50) -> pd.DataFrame:
    """This chapter's searches (measured here, and extrapolated to CIFAR-10) beside the early papers'.

    One row per search; the columns name their device (``columns(data.device)``): this machine's numbers in
    its own seconds, hours and days, the papers' in published GPU-hours and GPU-days, never both in one column.
    """
    col = columns(data.device)
    rows = []
    for r in per_candidate(histories).itertuples():
        candidate_s = at_cifar10_scale(r.mean_s, data, epochs, cifar_epochs)
        rows.append({"search": f"{r.strategy.strip()} (this chapter)", col["trained"]: r.candidates,
                     col["params"]: r.mean_params, col["measured_s"]: r.total_s, col["candidate_h"]: candidate_s / 3600,
                     col["search_days"]: candidate_s * r.candidates / 86400, "source": "measured on this machine"})
    papers = load_cifar10()
    for method in EARLY_METHODS:
        row = papers[papers["method"] == method].iloc[0]
        n = PAPER_CANDIDATES.get(method, math.nan)
        rows.append({"search": method, col["trained"]: n, col["params"]: row["params_m"] * 1e6,
                     col["paper_candidate_h"]: row["gpu_days"] * 24 / n, col["paper_days"]: row["gpu_days"],
                     "source": row["source"]})
    table = pd.DataFrame(rows, columns=["search", *col.values(), "source"])
    table[col["trained"]] = table[col["trained"]].astype("Int64")
    table[col["params"]] = table[col["params"]].round().astype("Int64")
    return table


def paper_scale(table: pd.DataFrame, device, reference: str = "random (this chapter)",
                cifar_epochs: float = 50) -> list[str]:
    """Sentences that read the table: this machine's extrapolated cost of a candidate (``reference``'s row, at
    ``cifar_epochs`` as in ``cost_table``; by default random search's, whose proposals do not depend on what it
    learns), the range over this chapter's searches, the same candidates at the numbers of networks the papers
    trained and for the epochs they trained each (``PAPER_EPOCHS``), in this device's days, and the survey's
    GPU-days for the papers beside them -- each in its own unit, with the networks' sizes."""
    col, dev = columns(device), device_name(device)
    ours = table[table["source"] == "measured on this machine"]
    row = ours[ours["search"] == reference].iloc[0] if (ours["search"] == reference).any() else ours.iloc[0]
    hours = float(row[col["candidate_h"]])
    lo, hi = ours.loc[ours[col["search_days"]].idxmin()], ours.loc[ours[col["search_days"]].idxmax()]
    cheap, dear = ours.loc[ours[col["candidate_h"]].idxmin()], ours.loc[ours[col["candidate_h"]].idxmax()]

    def name(r) -> str:
        return r["search"].replace(" (this chapter)", "").strip()

    def search(r) -> str:
        return f"{name(r)}, {count(int(r[col['trained']]), 'network')} trained"

    lines = [f"A candidate of {row['search']} at CIFAR-10 scale ({cifar_epochs:g} epochs): {hours:.2f} {dev}-hours on "
             f"this machine; this chapter's searches cost from {lo[col['search_days']]:.2f} {dev}-days "
             f"({search(lo)}) to {hi[col['search_days']]:.2f} ({search(hi)}).",
             f"A candidate's cost depends on the networks a strategy proposes: from {cheap[col['candidate_h']]:.2f} "
             f"({name(cheap)}) to {dear[col['candidate_h']]:.2f} {dev}-hours ({name(dear)}) at that scale. The lines "
             f"below scale {name(row)}'s, whose proposals do not depend on what the search learns."]
    size = row[col["params"]]
    for method, n in PAPER_CANDIDATES.items():
        paper = table[table["search"] == method].iloc[0]
        epochs = PAPER_EPOCHS[method]
        days = n * hours * epochs / cifar_epochs / 24
        ours_size = f"; {name(row)}'s networks here hold {int(size):,} on average" if not pd.isna(size) else ""
        lines.append(f"{n:,} such candidates of {epochs} epochs, as many networks as {method} trained for as long: "
                     f"{days:,.0f} {dev}-days on this machine; the survey's Table 1 gives {method} "
                     f"{paper[col['paper_days']]:,.0f} GPU-days ({paper[col['paper_candidate_h']]:.1f} GPU-hours a "
                     f"network, implied), on GPUs, for a search whose final network holds "
                     f"{paper[col['params']] / 1e6:.1f}M parameters{ours_size}.")
    lines.append(f"The {dev} columns and the GPU columns are different units, and the papers trained larger networks "
                 f"(the sizes above are their final networks', larger than the candidates their searches trained): "
                 f"set side by side they give the order of magnitude of full training, not a conversion from one "
                 f"device to the other.")
    return lines
