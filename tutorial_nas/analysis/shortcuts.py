"""How good are the shortcuts? Rank each one against the truth on the same cells.

Every remedy of incomplete training (weight sharing, low fidelity, learning-curve extrapolation, predictors,
zero-cost proxies) replaces "train the cell fully and measure it" with something cheaper. What matters for a
search is only whether it *orders* cells the way the truth does, so each shortcut scores the same cells and
is compared with the benchmark's test accuracy by Kendall's tau and Spearman's rho, next to what it cost.

    >>> sizes = {**profile.cell.as_dict(), **profile.oneshot.as_dict()}
    >>> df = rank_shortcuts(cells, bench, data, profile_sizes=sizes)
    >>> plot_shortcuts(df)
    >>> tau_groups(df)  # groups the cells can tell apart: a paired bootstrap against each group's first
    >>> taus = feature_taus(df, cells, bench)  # what the cells are made of, against the truth and the proxies
    >>> print(explain_sign(df, taus, "grad_norm"))
"""

from __future__ import annotations

from functools import partial

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
# ``nsas``: include NSAS and its control, the same loss with a subset drawn at random at every step (each step also
# trains the subset's paths: up to nine passes to SPOS' one; two of chapter 2's cpu runs measured NSAS' row at 66
# and 84 s against SPOS' 13 and 15 s, scoring the 100 cells included).
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
    one_shot = [(NSAS, train_nsas), (NSAS_CONTROL, partial(train_nsas, subset="random"))] if s["nsas"] else []
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


def tau_standard_error(n: int) -> float:
    """Standard error of Kendall's tau between ``n`` pairs of uncorrelated values (no ties)."""
    return float(np.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))))


NSAS, NSAS_CONTROL = "NSAS weight sharing", "NSAS-random weight sharing"


def resampled_taus(named: dict, truth, n_boot: int, seed: int) -> dict:
    """name -> the Kendall tau of its values (one per cell) with ``truth`` on each of ``n_boot`` resamples of the
    cells, drawn with replacement from ``seed``, the same resamples for every name (what makes a bootstrap
    paired); nan where a resample leaves a side constant."""
    truth = np.asarray(truth, dtype=float)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(truth), len(truth)) for _ in range(n_boot)]
    out = {}
    for name, values in named.items():
        values = np.asarray(values, dtype=float)
        out[name] = np.array([kendalltau(values[i], truth[i])[0] for i in resamples])
    return out


def _bootstrap_taus(df: pd.DataFrame, names, n_boot: int, seed: int) -> dict:
    """``resampled_taus`` of the named scores of a ``rank_shortcuts`` table against its truth."""
    scores, truth = df.attrs.get("scores"), df.attrs.get("truth")
    if not scores or truth is None or any(name not in scores for name in names):
        raise NASInputError(f"a paired bootstrap needs rank_shortcuts' table (its attrs keep every score and the "
                            f"truth) with scores of {', '.join(map(repr, names))}")
    return resampled_taus({name: scores[name] for name in names}, truth, n_boot, seed)


def _interval(diffs, level: float = 0.95) -> tuple:
    low, high = np.nanquantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def paired_tau_difference(df: pd.DataFrame, first: str, second: str, n_boot: int = 1000, level: float = 0.95,
                          seed: int = 0) -> tuple:
    """tau(``first``) - tau(``second``) on a ``rank_shortcuts`` table's cells, with the ``level`` interval of a
    paired bootstrap (the same resample of the cells for both): (difference, low, high)."""
    boot = _bootstrap_taus(df, (first, second), n_boot, seed)
    scores, truth = df.attrs["scores"], np.asarray(df.attrs["truth"], dtype=float)
    d = kendalltau(np.asarray(scores[first], float), truth)[0] - kendalltau(np.asarray(scores[second], float), truth)[0]
    return (float(d), *_interval(boot[first] - boot[second], level))


def nsas_control_verdict(df: pd.DataFrame, baseline: str = "SPOS weight sharing") -> str:
    """NSAS against its control (the same loss and passes, the subset drawn at random) and against uniform
    sampling (``baseline``), by the paired bootstrap of the difference in tau: is a gain the diversity's or the
    extra passes'?"""
    scores = df.attrs.get("scores") or {}
    if NSAS not in scores or NSAS_CONTROL not in scores:
        return "NSAS and its control are not in this table"
    text, gains = [], {}
    for other in (NSAS_CONTROL, baseline):
        if other not in scores:
            continue
        d, low, high = paired_tau_difference(df, NSAS, other)
        gains[other] = "above" if low > 0 else "below" if high < 0 else "within"
        text.append(f"tau({NSAS.split(' weight')[0]}) - tau({other.split(' weight')[0]}) = {d:+.2f} "
                    f"[{low:+.2f}, {high:+.2f}]")
    verdict = "; ".join(text) + " (95 % paired bootstrap over the cells): "
    if gains.get(NSAS_CONTROL) == "above":
        return verdict + "NSAS ranks better than its random control, so its diverse subset earns part of its tau"
    if gains.get(NSAS_CONTROL) == "below":
        return verdict + "the random subset ranks better than NSAS' diverse one"
    if gains.get(baseline) == "above":
        return verdict + ("NSAS ranks better than uniform sampling but no better than its random control, which "
                          "has the same loss and passes a step with a random subset: this run gives the diversity "
                          "no measurable share of the gain")
    return verdict + "NSAS is not shown to rank better than its random control"


def best_rankers(df: pd.DataFrame, names: list, n_boot: int = 1000) -> list:
    """Of ``names`` (rows of a ``rank_shortcuts`` table), the best by tau and every other the paired bootstrap
    does not tell apart from it (the interval of their difference reaches 0)."""
    taus = df.set_index("shortcut").loc[list(names), "kendall_tau"].sort_values(ascending=False, kind="stable")
    order = [str(n) for n in taus.index]
    boot = _bootstrap_taus(df, order, n_boot, seed=0)
    return order[:1] + [n for n in order[1:] if _interval(boot[order[0]] - boot[n])[0] <= 0]


def tau_groups(df: pd.DataFrame, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> list:
    """Read a ``rank_shortcuts`` table in groups that the data can tell apart. The shortcuts in order of their
    tau; the first leads the first group, and each next one joins the current group unless it ranks below that
    group's leader beyond doubt: where the paired bootstrap interval (``level``, ``n_boot`` resamples of the
    cells, the same resample for both shortcuts) of their difference in tau lies above 0, it leads a new group.
    So a group holds the shortcuts not shown to rank below its first; a shortcut of a later group ranks below
    the leader of every earlier one.

    Returns a list of groups, each a list of (shortcut, tau, (low, high)): the interval of the difference from the
    group's leader (None for the leader)."""
    if not df.attrs.get("scores") or df.attrs.get("truth") is None:
        raise NASInputError("tau_groups needs the table of rank_shortcuts (its attrs keep every score and the truth)")
    if not 0 < level < 1 or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise NASInputError(f"level must be in (0, 1) and n_boot a whole number of at least 10, got {level!r}, "
                            f"{n_boot!r}")
    order = df.dropna(subset=["kendall_tau"]).sort_values("kendall_tau", ascending=False, kind="stable")
    names = order["shortcut"].astype(str).tolist()
    boot = _bootstrap_taus(df, names, n_boot, seed)
    groups, leader = [], None
    for name, tau in zip(names, order["kendall_tau"]):
        taus = boot[name]
        if leader is not None:
            low, high = _interval(leader - taus, level)
            if low <= 0:
                groups[-1].append((name, float(tau), (low, high)))
                continue
        groups.append([(name, float(tau), None)])
        leader = taus
    return groups


def plot_shortcuts(df: pd.DataFrame) -> Figure:
    """Two panels on one row per shortcut, best ranking at the top: its Kendall tau with test accuracy (bars; the
    grey band is two standard errors either side of 0, where a tau cannot be told from chance on this many cells)
    and its cost (log scale). Each name is written once, as a row label, so no two labels can collide however
    close the shortcuts' numbers are."""
    order = df.sort_values("kendall_tau", ascending=False, kind="stable")
    names, tau = order["shortcut"].astype(str).tolist(), order["kendall_tau"].to_numpy(dtype=float)
    cost = np.maximum(order["cost_s"].to_numpy(dtype=float), 1e-3)
    n_cells, y = int(df["n_cells"].iloc[0]), np.arange(len(order))
    fig = Figure(figsize=(8.0, 1.4 + 0.3 * len(order)))
    ax_tau, ax_cost = fig.subplots(1, 2, sharey=True, gridspec_kw=dict(width_ratios=(3, 2)))
    if n_cells >= 2:
        band = 2 * tau_standard_error(n_cells)
        ax_tau.axvspan(-band, band, color="0.88", zorder=0)
    ax_tau.barh(y, np.nan_to_num(tau), color=np.where(tau < 0, "tab:red", "tab:blue"), height=0.6, zorder=2)
    ax_tau.axvline(0, color="grey", lw=0.8, zorder=1)
    ax_tau.set_xlim(min(-0.1, np.nanmin(tau, initial=0) - 0.05), max(0.1, np.nanmax(tau, initial=0) + 0.05))
    ax_tau.set_yticks(y, names, fontsize=8)
    ax_tau.invert_yaxis()
    ax_tau.set_xlabel("Kendall tau with test accuracy\n(grey: within 2 standard errors of 0)", fontsize=9)
    ax_cost.hlines(y, cost.min() / 3, cost, color="0.7", lw=1)
    ax_cost.plot(cost, y, "o", color="tab:blue", ms=5)
    ax_cost.set_xscale("log")
    ax_cost.set_xlim(cost.min() / 3, cost.max() * 3)
    ax_cost.set_xlabel("cost (seconds, log scale)", fontsize=9)
    ax_cost.tick_params(axis="y", left=False)
    for ax in (ax_tau, ax_cost):
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="0.92", zorder=0)
    fig.suptitle(f"Shortcuts ranked against the benchmark ({n_cells} cells)", fontsize=10)
    fig.tight_layout()
    return fig


# -- why a proxy ranks against the benchmark ------------------------------------------------------------------

def cell_features(cells, bench) -> pd.DataFrame:
    """What a cell is made of, one row per cell: the benchmark's parameter count and the number of edges of
    each kind (skip connections, convolutions, pooling, ``none``)."""
    cells = [tuple(c) if not isinstance(c, str) else NB201Space().parse(c) for c in cells]
    return pd.DataFrame({
        "parameters": [bench.query(to_str(c))["params"] for c in cells],
        "skip connections": [sum(op == "skip_connect" for op in c) for c in cells],
        "convolutions": [sum(op.startswith("nor_conv") for op in c) for c in cells],
        "pooling edges": [sum(op == "avg_pool_3x3" for op in c) for c in cells],
        "none edges": [sum(op == "none" for op in c) for c in cells],
    })


def feature_taus(table: pd.DataFrame, cells, bench, proxies=("grad_norm", "snip")) -> pd.DataFrame:
    """Kendall tau of each cell feature (``cell_features``) with the benchmark's test accuracy and with each
    proxy's scores in ``table`` (from ``rank_shortcuts`` on ``cells``); nan where a feature is constant."""
    features = cell_features(cells, bench)
    truth, scores = table.attrs["truth"], table.attrs["scores"]
    if len(truth) != len(features):
        raise NASInputError(f"table scored {len(truth)} cells, got {len(features)}")
    out = pd.DataFrame(index=features.columns)
    out.index.name = "feature"
    out["test accuracy"] = [kendalltau(features[f], truth)[0] for f in features]
    for p in proxies:
        out[p] = [kendalltau(features[f], scores[p])[0] for f in features]
    return out


def explain_sign(table: pd.DataFrame, taus: pd.DataFrame, proxy: str) -> str:
    """A sentence, chosen from ``taus`` (``feature_taus``), on what ``proxy``'s negative tau goes with: a feature
    goes with it when test accuracy and the proxy move in opposite directions with that feature, each beyond two
    standard errors of a tau under no correlation on these cells (``tau_standard_error``; a feature's tau nearer
    zero is not told apart from chance). Size (the parameter count) is read first; then every other feature that
    qualifies is named, the strongest opposition first. These are correlations over the cells: they say what the
    proxy's order goes with, not what causes it."""
    tau = float(table.set_index("shortcut").loc[proxy, "kendall_tau"])
    if not tau < 0:
        return f"{proxy} (tau {tau:+.2f}) ranks with the benchmark: no negative sign to explain."
    bound = 2 * tau_standard_error(len(table.attrs["truth"]))

    def clear(t):
        return bool(abs(t) > bound)  # False for nan

    def moves(t):
        return ("rises" if t > 0 else "falls") if clear(t) else "moves no more than chance"

    def by(feature):
        return taus.loc[feature, "test accuracy"], taus.loc[feature, proxy]

    def opposed(a, b):
        return clear(a) and clear(b) and a * b < 0

    a, b = by("parameters")
    head = (f"{proxy} ranks against the benchmark (tau {tau:+.2f}; a feature's tau counts beyond {bound:.2f}, two "
            "standard errors of no correlation)")
    if opposed(a, b):
        return (f"{head}, and so does size: test accuracy {moves(a)} with the number of parameters (tau {a:+.2f}) "
                f"and {proxy} {moves(b)} with it (tau {b:+.2f}).")
    if np.isnan(a * b):
        text = f"{head}, not with size: every cell has the same number of parameters."
    else:
        how = "not with size" if clear(a) and clear(b) else "not clearly with size"
        text = (f"{head}, {how}: test accuracy {moves(a)} with the number of parameters (tau {a:+.2f}) and "
                f"{proxy} {moves(b)} with it (tau {b:+.2f}).")
    others = sorted((f for f in taus.index if f != "parameters" and opposed(*by(f))), key=lambda f: np.prod(by(f)))
    if not others:
        return text + " No other feature of the cells moves the two in opposite directions beyond chance either."
    parts = []
    for f in others:
        a, b = by(f)
        parts.append(f"the {f} (test accuracy {moves(a)} with their number, tau {a:+.2f}; {proxy} {moves(b)}, "
                     f"tau {b:+.2f})")
    return (text + f" What moves test accuracy and {proxy} in opposite directions beyond chance: " + "; ".join(parts)
            + " (correlations over the cells, not a cause shown).")
