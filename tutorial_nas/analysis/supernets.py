"""Why supernets mislead, measured: DARTS collapse and its remedies, ranking quality, multi-model forgetting.

- Collapse (Zela et al., ICLR 2020; DARTS+; P-DARTS): as a DARTS search goes on, parameter-free skip
  connections take over the derived cell. ``darts_remedies`` reads one plain DARTS run and derives, epoch by
  epoch, what the two remedies would return: P-DARTS' cap on skip connections (``skip_limit``) and DARTS+'
  early stopping (``early_stop``). Neither remedy changes the supernet's training, only which cell is read off
  it, so both are exact re-readings of the same run (``darts_search(skip_limit=..., early_stop=...)`` gives the
  same cells; the tests check it).
- Ranking (Yu, Sciuto et al., ICLR 2020): ``ranking_over_training`` trains a uniform single-path supernet
  epoch by epoch and after each epoch measures Kendall's tau between the shared-weight accuracy of a fixed set
  of cells and their benchmark accuracy.
- Multi-model forgetting (Benyahia et al., ICML 2019): ``forgetting`` trains the supernet on all paths, then
  only on *other* paths, and tracks the shared-weight accuracy of a fixed set of paths as it drifts.
  ``forgetting_per_step`` measures it as Zhang et al. (CVPR 2020) define it, the accuracy a previously trained
  path loses when one step trains a new path, for uniform sampling and for NSAS (``oneshot.nsas``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau

from ..errors import NASInputError
from ..evaluators import Result
from ..oneshot.darts import derive_nb201
from ..oneshot.nsas import step_forgetting
from ..oneshot.supernet import Supernet, train_supernet
from ..spaces.cell import NB201Space, parse, to_str
from ..strategies.random_search import RandomSearch


def _bench_acc(bench, arch: str) -> float:
    """The benchmark's test accuracy of ``arch``, nan where a partial table lacks it."""
    try:
        return bench.query(arch)["test_acc"]
    except NASInputError:
        return float("nan")


def darts_remedies(history: pd.DataFrame, bench, skip_limit: int = 2, early_stop: int = 1) -> pd.DataFrame:
    """Per epoch of a plain DARTS run on ``nb201``: the derived cell, its skip connections and benchmark test
    accuracy; the cell with at most ``skip_limit`` skips (P-DARTS) and its accuracy; and the cell DARTS+ would
    return (the search stops after the first epoch whose cell has more than ``early_stop`` skips)."""
    if "alphas" not in history or history.attrs.get("space") != "nb201":
        raise NASInputError("darts_remedies needs the History of darts_search(space='nb201')")
    rows, stopped = [], None
    for _, row in history.iterrows():
        alpha = np.log(np.clip(np.asarray(row["alphas"]["cell"]), 1e-300, None))  # softmax(log p) = p
        capped = to_str(derive_nb201(alpha, skip_limit))
        if stopped is None and row["n_skip"] > early_stop:
            stopped = row["arch"]  # DARTS+ stops here and returns this epoch's cell
        rows.append({"epoch": int(row["epoch"]), "darts": row["arch"], "n_skip": int(row["n_skip"]),
                     "darts_acc": _bench_acc(bench, row["arch"]), "capped": capped,
                     "capped_n_skip": sum(op == "skip_connect" for op in parse(capped)),
                     "capped_acc": _bench_acc(bench, capped),
                     "early_stop": stopped or row["arch"],
                     "early_stop_acc": _bench_acc(bench, stopped or row["arch"])})
    return pd.DataFrame(rows)


def plot_remedies(table: pd.DataFrame, axes=None):
    """Left: skip connections in the derived cell per epoch; right: its benchmark test accuracy."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].plot(table.epoch, table.n_skip, "o-", label="DARTS")
    axes[0].plot(table.epoch, table.capped_n_skip, "s--", label="skip limit (P-DARTS)")
    axes[0].set(xlabel="search epoch", ylabel="skip connections in the cell", title="Skip connections")
    for col, label, style in (("darts_acc", "DARTS", "o-"), ("capped_acc", "skip limit (P-DARTS)", "s--"),
                              ("early_stop_acc", "early stop (DARTS+)", "^:")):
        axes[1].plot(table.epoch, table[col], style, label=label)
    axes[1].set(xlabel="search epoch", ylabel="benchmark test accuracy (%)", title="The derived cell")
    for ax in axes:
        ax.legend()
    return axes


class _Paths:
    """A strategy that proposes uniformly from a fixed list of cells (only ``ask`` is used in training)."""

    def __init__(self, cells: list, seed: int = 0):
        self.cells, self.rng = [parse(c) if isinstance(c, str) else tuple(c) for c in cells], \
            np.random.default_rng(seed)

    def ask(self):
        return self.cells[int(self.rng.integers(len(self.cells)))]

    def tell(self, arch, result: Result) -> None:
        pass


def _supernet(data, C: int, N: int, stem_stride: int, seed: int) -> Supernet:
    torch.manual_seed(seed)
    return Supernet(data.num_classes, data.in_channels, C=C, N=N, stem_stride=stem_stride).to(data.device)


def _scores(supernet: Supernet, cells: list, data, batch_size: int) -> list:
    return [supernet.score(parse(c), data, batch_size=batch_size) for c in cells]


def ranking_over_training(data, bench, cells: list, epochs: int = 3, C: int = 8, N: int = 1,
                          stem_stride: int = 2, batch_size: int = 128, seed: int = 0) -> pd.DataFrame:
    """Train a uniform single-path supernet one epoch at a time; after each epoch, Kendall's tau between the
    shared-weight accuracy of ``cells`` and their benchmark validation accuracy. One row per epoch, with the
    scores. Each epoch is a fresh cosine cycle of ``train_supernet``: a schedule of restarts."""
    if not isinstance(epochs, int) or epochs < 1:
        raise NASInputError(f"epochs must be a whole number >= 1, got {epochs!r}")
    if len(cells) < 3:
        raise NASInputError(f"a ranking needs at least 3 cells, got {len(cells)}")
    truth = [bench.query(c)["valid_acc"] for c in cells]
    supernet, strategy, rows = _supernet(data, C, N, stem_stride, seed), RandomSearch(NB201Space(), seed=seed), []
    for epoch in range(1, epochs + 1):
        log = train_supernet(supernet, data, strategy, epochs=1, batch_size=batch_size, seed=seed + epoch,
                             progress=False)
        scores = _scores(supernet, cells, data, batch_size)
        tau = kendalltau(scores, truth).statistic
        rows.append({"epoch": epoch, "kendall_tau": float(tau), "train_loss": log["loss"][-1],
                     "mean_ws_acc": float(np.mean(scores)), "ws_acc": scores})
    out = pd.DataFrame(rows)
    out.attrs["bench_valid_acc"] = truth
    return out


def forgetting(data, kept: list, others: list, warm_epochs: int = 1, epochs: int = 2, C: int = 8, N: int = 1,
               stem_stride: int = 2, batch_size: int = 128, seed: int = 0) -> pd.DataFrame:
    """Multi-model forgetting: train the supernet on uniform paths for ``warm_epochs``, then for ``epochs``
    epochs on ``others`` only; after the warm-up and after each later epoch, the shared-weight accuracy of
    every cell of ``kept`` (which is no longer trained) and, for reference, of the trained ``others``.
    One row per (epoch, cell)."""
    if not kept or not others:
        raise NASInputError("forgetting needs a non-empty list of kept cells and of other cells")
    supernet = _supernet(data, C, N, stem_stride, seed)
    train_supernet(supernet, data, RandomSearch(NB201Space(), seed=seed), epochs=warm_epochs,
                   batch_size=batch_size, seed=seed, progress=False)
    rows, strategy = [], _Paths(others, seed)

    def record(epoch):
        for group, cells in (("kept (not trained)", kept), ("others (trained)", others)):
            for cell, acc in zip(cells, _scores(supernet, cells, data, batch_size)):
                rows.append({"epoch": epoch, "group": group, "arch": cell, "ws_acc": acc})

    record(0)
    for epoch in range(1, epochs + 1):
        train_supernet(supernet, data, strategy, epochs=1, batch_size=batch_size, seed=seed + epoch,
                       progress=False)
        record(epoch)
    return pd.DataFrame(rows)


def forgetting_per_step(data, methods=("uniform", "nsas"), **options) -> pd.DataFrame:
    """Zhang et al.'s forgetting (``oneshot.nsas.step_forgetting``) for each of ``methods`` from the same
    warmed-up supernet, paths and minibatches: one row per method with the mean and the share of steps that
    forgot (``forgetting`` > 0); ``attrs["steps"]`` holds every step."""
    steps = pd.concat([step_forgetting(data, method, **options) for method in methods], ignore_index=True)
    out = steps.groupby("method", sort=False).agg(mean_forgetting=("forgetting", "mean"),
                                                  share_forgot=("forgetting", lambda f: float((f > 0).mean())),
                                                  mean_before=("before", "mean")).reset_index()
    out.attrs["steps"] = steps
    return out


def plot_forgetting(table: pd.DataFrame, ax=None):
    """Mean shared-weight accuracy of each group against the epochs trained on the other paths only."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for group, g in table.groupby("group"):
        mean = g.groupby("epoch")["ws_acc"].agg(["mean", "min", "max"])
        ax.plot(mean.index, mean["mean"], "o-", label=group)
        ax.fill_between(mean.index, mean["min"], mean["max"], alpha=0.2)
    ax.set(xlabel="epochs trained on the other paths only", ylabel="shared-weight accuracy (%)",
           title="Multi-model forgetting")
    ax.legend()
    return ax
