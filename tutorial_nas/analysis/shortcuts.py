"""How good are the shortcuts? Rank each one against the truth on the same cells.

Every remedy of incomplete training (weight sharing, low fidelity, learning-curve extrapolation, predictors,
zero-cost proxies) replaces "train the cell fully and measure it" with something cheaper. What matters for a
search is only whether it *orders* cells the way the truth does, so each shortcut scores the same cells and
is compared with the benchmark's test accuracy by Kendall's tau and Spearman's rho, next to what it cost.

    >>> sizes = {**profile.cell.as_dict(), **profile.oneshot.as_dict()}
    >>> df = rank_shortcuts(cells, bench, data, profile_sizes=sizes)
    >>> plot_shortcuts(df)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import kendalltau, spearmanr

from ..errors import NASInputError
from ..learning_curves import SRMShortcut
from ..oneshot.bender import train_one_shot
from ..oneshot.dna import DNAShortcut
from ..oneshot.nsas import train_nsas
from ..oneshot.smash import SMASHShortcut
from ..oneshot.supernet import WeightSharingEvaluator, train_weight_sharing
from ..predictors import (
    PROXIES,
    BenchEarlyEpoch,
    CurveExtrapolation,
    LowFidelityShortcut,
    PredictorShortcut,
    Shortcut,
    ZeroCostProxy,
)
from ..progress import tqdm
from ..spaces.cell import NB201Space, to_str

# Sizes used when ``profile_sizes`` leaves them out (the ``ci`` profile's, on the benchmark's recipe).
# ``nsas``: include NSAS (about nine times SPOS' cost: each step also trains the constraint subset's paths).
DEFAULT_SIZES = dict(C=8, N=1, stem_stride=1, epochs=3, batch_size=128, train_epochs=1, early_epoch=1,
                     predictor_cells=200, proxy_batch=64, controller_steps=50, seed=0, nsas=True)


def recipe_config(bench, epochs: float, seed: int = 0):
    """The benchmark's own training recipe (batch size, learning rate, weight decay, augmentation), cut to
    ``epochs``: low fidelity that differs from the table's epochs only in the budget (and the seed)."""
    from dataclasses import fields, replace

    from ..bench.build import Recipe

    known = {f.name for f in fields(Recipe)}
    recipe = Recipe(**{k: v for k, v in bench.recipe.items() if k in known})
    return replace(recipe.train_config(seed), epochs=epochs)


class WeightSharingShortcut(Shortcut):
    """Train a supernet with ENAS or SPOS, then score each cell with the shared weights (BN recalibrated)."""

    def __init__(self, method: str, data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128,
                 seed: int = 0, controller_steps: int = 50, stem_stride: int = 1):
        self.method, self.data, self.name = method, data, f"{method.upper()} weight sharing"
        self.options = dict(epochs=epochs, C=C, N=N, batch_size=batch_size, seed=seed,
                            controller_steps=controller_steps, stem_stride=stem_stride)

    def _score(self, cells):
        supernet, _, _ = train_weight_sharing(self.method, self.data, progress=False, **self.options)
        evaluator = WeightSharingEvaluator(supernet, self.data, batch_size=self.options["batch_size"])
        return [evaluator.evaluate(c).valid_acc for c in cells]


class OneShotShortcut(Shortcut):
    """Train a supernet with ``train(data, **options)`` (NSAS, or Bender et al.'s path dropout), then score each
    cell with the shared weights (BN recalibrated), as ``WeightSharingShortcut`` does."""

    def __init__(self, name: str, train, data, batch_size: int = 128, **options):
        self.name, self.train, self.data, self.options = name, train, data, dict(batch_size=batch_size, **options)

    def _score(self, cells):
        supernet, _ = self.train(self.data, **self.options)
        evaluator = WeightSharingEvaluator(supernet, self.data, batch_size=self.options["batch_size"])
        return [evaluator.evaluate(c).valid_acc for c in cells]


def build_shortcuts(cells, bench, data, sizes: dict) -> list:
    """The shortcuts of chapter 2, sized by ``sizes``; the predictor trains on benchmark cells not in
    ``cells``. Real training at low fidelity uses the benchmark's recipe cut to ``train_epochs``, so that it
    differs from the table's early epochs only by its schedule (a whole cosine cycle) and its seed."""
    s = {**DEFAULT_SIZES, **{k: v for k, v in (sizes or {}).items() if k in DEFAULT_SIZES}}
    space, rng = NB201Space(), np.random.default_rng(s["seed"])
    held_out = {space.key(c) for c in cells}
    others = [a for a in bench.frame()["arch"] if space.key(space.parse(a)) not in held_out]
    pick = rng.choice(len(others), size=min(s["predictor_cells"], len(others)), replace=False)
    observed = max(1, min(3, bench.epochs - 1))
    net = dict(C=s["C"], N=s["N"], stem_stride=s["stem_stride"])
    shortcuts = [WeightSharingShortcut(method, data, s["epochs"], batch_size=s["batch_size"], seed=s["seed"],
                                       controller_steps=s["controller_steps"], **net)
                 for method in ("enas", "spos")]
    one_shot = [("NSAS weight sharing", train_nsas)] if s["nsas"] else []
    shortcuts += [OneShotShortcut(name, train, data, s["batch_size"], epochs=s["epochs"], seed=s["seed"], **net)
                  for name, train in one_shot + [("path dropout (Bender)", train_one_shot)]]
    shortcuts += [BenchEarlyEpoch(bench, min(s["early_epoch"], bench.epochs)),
                  LowFidelityShortcut(data, epochs=s["train_epochs"],
                                      config=recipe_config(bench, s["train_epochs"], s["seed"]), **net),
                  CurveExtrapolation(bench, observed),
                  PredictorShortcut(bench, [space.parse(others[i]) for i in pick], seed=s["seed"])]
    if bench.epochs >= 2:  # Baker et al.'s regression on the same early epochs, trained on the predictor's cells
        shortcuts.append(SRMShortcut(bench, [space.parse(others[i]) for i in pick], observed, seed=s["seed"]))
    shortcuts += [ZeroCostProxy(p, data, batch_size=s["proxy_batch"], seed=s["seed"], **net) for p in PROXIES]
    shortcuts += [DNAShortcut(data, s["epochs"], batch_size=s["batch_size"], seed=s["seed"], teacher_epochs=s["epochs"],
                              **net),
                  SMASHShortcut(data, s["epochs"], batch_size=s["batch_size"], seed=s["seed"], **net)]
    return shortcuts


def rank_shortcuts(cells, bench, data, profile_sizes: dict | None = None, progress: bool = True,
                   shortcuts: list | None = None) -> pd.DataFrame:
    """One row per shortcut: Kendall tau and Spearman rho between its scores and the benchmark's test accuracy
    on ``cells``, and its cost in seconds (wall time, plus the training time a benchmark look-up stands for).

    ``profile_sizes`` sets the shortcuts' sizes (keys of ``DEFAULT_SIZES``; others are ignored);
    ``shortcuts`` replaces the default list. ``attrs["scores"]`` keeps every shortcut's scores.
    """
    cells = [tuple(c) if not isinstance(c, str) else NB201Space().parse(c) for c in cells]
    if len(cells) < 3:
        raise NASInputError(f"ranking needs at least 3 cells, got {len(cells)}")
    truth = np.array([bench.query(to_str(c))["test_acc"] for c in cells])
    shortcuts = shortcuts if shortcuts is not None else build_shortcuts(cells, bench, data, profile_sizes)
    rows, scores = [], {}
    for shortcut in tqdm(shortcuts, desc="shortcuts", disable=not progress):
        values = shortcut.score(cells)
        scores[shortcut.name] = values.tolist()
        rows.append({"shortcut": shortcut.name, "kendall_tau": kendalltau(values, truth)[0],
                     "spearman_rho": spearmanr(values, truth)[0], "cost_s": shortcut.cost_s,
                     "n_cells": len(cells), "floored": getattr(shortcut, "floored", 0)})
    df = pd.DataFrame(rows)
    df.attrs["scores"] = scores
    df.attrs["truth"] = truth.tolist()
    return df


def plot_shortcuts(df: pd.DataFrame) -> Figure:
    """Kendall tau against cost (log scale): the cheap-and-right corner is the top left."""
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    cost = np.maximum(df["cost_s"].to_numpy(dtype=float), 1e-3)
    ax.scatter(cost, df["kendall_tau"], color="tab:blue")
    for name, x, y in zip(df["shortcut"], cost, df["kendall_tau"]):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("cost (seconds, log scale)")
    ax.set_ylabel("Kendall tau with test accuracy")
    ax.set_title(f"Shortcuts ranked against the benchmark ({int(df['n_cells'].iloc[0])} cells)")
    fig.tight_layout()
    return fig
