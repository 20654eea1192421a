"""Training tricks against architecture search: how much does each buy, on the benchmark's own recipe?

Yang et al. (ICLR 2020, "NAS evaluation is frustratingly hard") retrained the cells of eight NAS methods beside
random cells of their spaces (their section 3: the methods' gains over the average random cell are small), and
trained eight random DARTS cells under protocols from the simplest to the most advanced (section 4.2: cutout,
longer schedules, auxiliary towers, drop-path, AutoAugment, more channels), which moved the accuracy by more than
3 points: more than the choice of cell. This module repeats the comparison on the NAS-Bench-201 space: a cell is trained
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
``gains`` gives each with a 95 % t interval over the cells (each cell its mean over the seeds): paired t for a
trick, Welch's t for the search (a percentile bootstrap over so few cells is far too narrow), and ``verdict``
says in words which moves the accuracy more, comparing the search with a trick by the interval of their
difference, and reading the tricks with Holm's (which help) and Bonferroni's (the best one) corrections.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from scipy import stats

from ..errors import NASInputError, check_choice
from ..spaces import cell as nb201
from ..train import train
from .compare import holm

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


def tied_means(table: pd.DataFrame, decimals: int = 1) -> str:
    """Cells of ``tricks_table``'s table whose mean test accuracy over the seeds prints the same (rounded to
    ``decimals``) under a setting, each with its accuracies seed by seed, so that equal means read as what they
    are: one result twice (identical per-seed accuracies) or different trainings that average alike. On a test
    split of 1,000 images an accuracy is a multiple of 0.1 points and a mean of two seeds one of 0.05, so
    different cells of similar accuracy often print the same mean. Empty when no two means tie."""
    means = table.groupby(["trick", "role"], sort=False)["test_acc"].mean().round(decimals)
    per_seed = table.groupby(["trick", "role"], sort=False)["test_acc"].apply(tuple)
    parts = []
    for trick in dict.fromkeys(table["trick"]):
        for a, b in combinations(means[trick].index, 2):
            if means[trick][a] == means[trick][b]:
                sa, sb = per_seed[trick][a], per_seed[trick][b]
                how = "the same accuracies seed by seed" if sa == sb else "different trainings"
                parts.append(f"{trick}: {a} ({', '.join(f'{x:.1f}' for x in sa)}) and {b} "
                             f"({', '.join(f'{x:.1f}' for x in sb)}), {how}")
    if not parts:
        return ""
    return (f"equal means (to {decimals} decimal{'s' if decimals != 1 else ''}), with the test accuracy of each "
            f"seed in order: " + "; ".join(parts))


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


ALPHA = 0.05  # two-sided error rate of every interval and test below (95 % intervals)
SEARCH = "search: picked vs random cells"


def _linear(z: np.ndarray, groups: np.ndarray, level: float = 1 - ALPHA) -> dict:
    """The t interval of ``sum(z)``, a sum over independent cells, where the cells of one group are exchangeable
    (they share a mean and a variance) and the groups are independent: ``se^2 = sum_g n_g s_g^2`` (``s_g^2`` the
    sample variance of the group's ``z``) with the Welch-Satterthwaite degrees of freedom
    ``(sum_g v_g)^2 / sum_g v_g^2 / (n_g - 1)``, ``v_g = n_g s_g^2``. With one group and ``z = d / n`` it is the
    one-sample (paired) t interval of the mean of ``d``; with ``z = a / n_a`` and ``-b / n_b`` in two groups it
    is Welch's interval of ``mean(a) - mean(b)``. A group of fewer than 2 cells has no variance: no interval."""
    z, groups = np.asarray(z, dtype=float), np.asarray(groups)
    estimate = float(z.sum()) if len(z) else float("nan")
    out = {"estimate": estimate, "low": float("nan"), "high": float("nan"), "se": float("nan"),
           "df": float("nan"), "p": float("nan")}
    parts = [z[groups == g] for g in dict.fromkeys(groups)]
    if not parts or any(len(part) < 2 for part in parts):
        return out
    v = np.array([len(part) * part.var(ddof=1) for part in parts])
    n = np.array([len(part) for part in parts])
    se = float(np.sqrt(v.sum()))
    if se == 0:  # every cell of every group agrees: the point is its own interval
        return out | {"low": estimate, "high": estimate, "se": 0.0, "df": float(n.sum() - len(n)),
                      "p": 1.0 if estimate == 0 else 0.0}
    df = float(v.sum() ** 2 / np.sum(v ** 2 / (n - 1)))
    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * se
    return out | {"low": estimate - half, "high": estimate + half, "se": se, "df": df,
                  "p": float(2 * stats.t.sf(abs(estimate) / se, df))}


def gains(table: pd.DataFrame, n_boot: int | None = None, seed: int | None = None) -> pd.DataFrame:
    """Gains in test accuracy points, each with a 95 % t interval over the cells (every cell counted as its mean
    over the seeds, so that a lucky seed cannot carry a side, and the cells taken as the independent units):

    - ``trick: X``: the same cell and seed with X minus without it, over every cell of the table; the interval is
      the paired (one-sample) t interval of the per-cell differences, ``n_cells - 1`` degrees of freedom;
    - ``search``: the mean baseline test accuracy of the cells of group "search" minus that of group "random",
      where both groups are present; the interval is Welch's (unequal variances, Welch-Satterthwaite degrees of
      freedom), the two groups being different cells.

    A percentile bootstrap over 3 and 5 cells (what this function used before) is far too narrow: under the null
    its interval excluded 0 in about 17 % of simulated tables instead of 5 %. Where a gain rests on a group of
    fewer than 2 cells its spread is unknown: ``low``, ``high``, ``se``, ``df`` and ``p`` are nan.

    One row per gain: ``what``, ``gain``, ``low``, ``high``, ``n_cells``, ``n_seeds`` as before, then ``se``
    and ``df`` (of the t interval; ``gain +- t_{df} * se`` at any level) and ``p`` (two-sided t test of no
    gain). The trick rows also carry the trick's gain minus the search's, measured on the same table:
    ``minus_search`` with its 95 % interval ``minus_search_low``, ``minus_search_high``, and its
    ``minus_search_se``, ``minus_search_df``. The two gains share cells (the search's baselines are the trick's
    baselines), so this difference is a sum over cells of ``d_c / n - w_c * b_c`` (``d_c`` the cell's trick gain,
    ``b_c`` its baseline, ``w_c`` = 1 / n_search or -1 / n_random), with a Welch interval over the groups of cells:
    paired within a cell, unpaired between the groups. ``n_boot`` and ``seed`` are ignored (kept so that old calls
    still run)."""
    key = ["role", "seed"]
    baseline = table[table.trick == "baseline"]
    base = baseline.set_index(key)["test_acc"]
    group_of = table.groupby("role", sort=False)["group"].first()
    cells = baseline.groupby("role", sort=False)["test_acc"].mean()
    cell_group = group_of.reindex(cells.index)
    n_search, n_random = int((cell_group == "search").sum()), int((cell_group == "random").sum())
    both = n_search > 0 and n_random > 0
    weight = cell_group.map({"search": 1 / max(n_search, 1), "random": -1 / max(n_random, 1)}).fillna(0.0)
    search_z = (weight * cells)[weight != 0]  # sum: the picked cells' mean minus the random cells'
    rows = []
    for trick, group in table[table.trick != "baseline"].groupby("trick", sort=False):
        delta = group.set_index(key)["test_acc"] - base.reindex(group.set_index(key).index)
        per_cell = delta.groupby(level="role", sort=False).mean().dropna()
        t = _linear((per_cell / len(per_cell)).to_numpy(), np.zeros(len(per_cell)))  # one group: paired t
        row = {"what": f"trick: {trick}", "gain": float(per_cell.mean()), "low": t["low"], "high": t["high"],
               "n_cells": len(per_cell), "n_seeds": group["seed"].nunique(), "se": t["se"], "df": t["df"],
               "p": t["p"]}
        if both:
            z = (per_cell / len(per_cell)).reindex(per_cell.index.union(search_z.index, sort=False), fill_value=0.0)
            z = z.sub(search_z, fill_value=0.0)
            d = _linear(z.to_numpy(), group_of.reindex(z.index).to_numpy())
            row |= {"minus_search": d["estimate"], "minus_search_low": d["low"], "minus_search_high": d["high"],
                    "minus_search_se": d["se"], "minus_search_df": d["df"]}
        rows.append(row)
    if both:
        s = _linear(search_z.to_numpy(), group_of.reindex(search_z.index).to_numpy())
        rows.append({"what": SEARCH, "gain": s["estimate"], "low": s["low"], "high": s["high"],
                     "n_cells": n_search + n_random, "n_seeds": table["seed"].nunique(), "se": s["se"],
                     "df": s["df"], "p": s["p"]})
    return pd.DataFrame(rows)


def _spread(row) -> tuple:
    """(se, df) of a row of ``gains``; a table built by hand with only ``low`` and ``high`` is read as a normal
    95 % interval (df infinite)."""
    se, df = row.get("se", np.nan), row.get("df", np.nan)
    if pd.notna(se) and (pd.notna(df) or se == 0):
        return float(se), float(df) if pd.notna(df) else np.inf
    if pd.notna(row.get("low", np.nan)) and pd.notna(row.get("high", np.nan)):
        return float(row["high"] - row["low"]) / (2 * stats.norm.ppf(1 - ALPHA / 2)), np.inf
    return np.nan, np.nan


def _bounds(estimate: float, se: float, df: float, level: float) -> tuple:
    if not (np.isfinite(se) and np.isfinite(estimate)):
        return np.nan, np.nan
    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * se if se > 0 else 0.0
    return estimate - half, estimate + half


def _p(estimate: float, se: float, df: float) -> float:
    if not (np.isfinite(se) and np.isfinite(estimate)):
        return np.nan
    if se == 0:
        return 1.0 if estimate == 0 else 0.0
    return float(2 * stats.t.sf(abs(estimate) / se, df))


def trick_effects(gain_table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The tricks of ``gains``' table, each with its two-sided p-value (t test of no gain) and Holm's adjusted
    p-value over all the tricks of the table, and ``effect``: "helps" or "costs" where the adjusted p < ``alpha``
    (the familywise error over the tricks is then at most ``alpha``), "unclear" where not, "no interval" where the
    gain has none (fewer than 2 cells). Tables built by hand without ``p`` are read as normal 95 % intervals."""
    tr = gain_table[gain_table["what"].str.startswith("trick")].reset_index(drop=True)
    p = [_p(float(r["gain"]), *_spread(r)) for _, r in tr.iterrows()]
    adjusted = holm(p)
    effect = ["no interval" if np.isnan(a) else ("helps" if g > 0 else "costs") if a < alpha else "unclear"
              for g, a in zip(tr["gain"], adjusted)]
    return pd.DataFrame({"what": tr["what"], "trick": tr["what"].str[7:], "gain": tr["gain"], "p": p,
                         "p_holm": adjusted, "effect": effect})


def _minus_search(row, s) -> tuple:
    """(estimate, se, df) of a trick's gain minus the search's: the paired-and-Welch values of ``gains`` where the
    table has them, else (a table built by hand) the two treated as independent normal estimates."""
    if "minus_search" in row.index and pd.notna(row["minus_search"]):
        se, df = row.get("minus_search_se", np.nan), row.get("minus_search_df", np.nan)
        if pd.notna(se) and se == 0:
            df = np.inf if pd.isna(df) else df
        return float(row["minus_search"]), float(se), float(df)
    (se_t, df_t), (se_s, df_s) = _spread(row), _spread(s)
    se = float(np.hypot(se_t, se_s))
    df = np.inf if np.isinf(df_t) and np.isinf(df_s) else (
        se ** 4 / (se_t ** 4 / df_t + se_s ** 4 / df_s) if se > 0 else np.inf)
    return float(row["gain"] - s["gain"]), se, df


def _fmt(low: float, high: float) -> str:
    return "[no interval]" if np.isnan(low) or np.isnan(high) else f"[{low:+.1f}, {high:+.1f}]"


def verdict(gain_table: pd.DataFrame) -> str:
    """Which moves the test accuracy more, the search or a training trick, in words, from ``gains``' table.

    - The search against random cells: from the search's own 95 % interval (Welch's t).
    - Which tricks help or cost accuracy here: each trick's t test of no gain, with Holm's correction over the
      k tricks (``trick_effects``), so that reading k intervals at once keeps a 5 % familywise error.
    - The search against the tricks: from the interval of their *difference* (trick gain minus search gain,
      paired where the two share cells, ``gains``' ``minus_search``), never from whether the two intervals
      overlap (two 95 % intervals can overlap while the interval of the difference excludes 0). The best trick is
      the largest of k noisy gains, so its difference is judged with a Bonferroni interval at 1 - 0.05 / k: those
      intervals hold for all k tricks at once with 95 % probability, hence also for whichever is picked after the
      fact (no winner's curse).
    - The trick that moves the accuracy most, up or down, against the search: said only where its interval
      excludes 0 and lies entirely farther from 0 than the search's interval reaches, the trick's interval at
      1 - 0.025 / k (it is the largest of k) and the search's at 97.5 %, so that both hold together with at least
      95 % probability (Bonferroni). Separated ends are a conservative criterion for a difference in size: they
      imply it, not the reverse.

    A gain without an interval (a group of fewer than 2 cells) is said to have none, and nothing is concluded
    from it. A table built by hand with only ``low`` and ``high`` is read as normal 95 % intervals, the search
    and the tricks as independent."""
    g = gain_table.set_index("what")
    trick_rows = g[g.index.str.startswith("trick")]
    if SEARCH not in g.index or trick_rows.empty:
        return "a verdict needs both sides: tricks and the search's picked and random cells"
    s = g.loc[SEARCH]
    k = len(trick_rows)
    level = 1 - ALPHA / k  # Bonferroni: all k tricks at once
    adjusted = (f"a {100 * level:.1f} % interval, Bonferroni over the {k} tricks since the best is picked after "
                "the fact" if k > 1 else "a 95 % interval")
    best = trick_rows["gain"].idxmax()
    b = trick_rows.loc[best]
    largest = trick_rows["gain"].abs().idxmax()
    big = trick_rows.loc[largest]
    text = (f"search gains {s.gain:+.1f} points {_fmt(s.low, s.high)} over random cells; the best trick "
            f"({best[7:]}) {b.gain:+.1f} {_fmt(b.low, b.high)}; the trick that moves the accuracy most "
            f"({largest[7:]}) {big.gain:+.1f} {_fmt(big.low, big.high)} (95 % t intervals over the cells). ")
    if np.isnan(s.low) or np.isnan(s.high):
        text += ("The search's gain has no interval (a group has fewer than 2 cells, so the spread between cells "
                 "is unknown): nothing can be said about it. ")
    elif s.low > 0:
        text += "The search's cells are better than random ones (its interval lies above 0). "
    elif s.high < 0:
        text += "The search's cells are worse than random ones (its interval lies below 0). "
    else:
        text += "The search's cells are not distinguishable from random ones (its interval reaches 0). "

    effects = trick_effects(gain_table)
    named = {e: ", ".join(effects.trick[effects.effect == e]) or "none" for e in ("helps", "costs")}
    over = f"with Holm's correction over the {k} tricks (5 % familywise error)" if k > 1 else "at 5 %"
    text += (f"Tricks that help here, by their t tests {over}: {named['helps']}; that cost accuracy here: "
             f"{named['costs']}")
    missing = effects.trick[effects.effect == "no interval"]
    text += (f"; without an interval (fewer than 2 cells): {', '.join(missing)}. " if len(missing) else ". ")

    diffs = {w: _minus_search(r, s) for w, r in trick_rows.iterrows()}
    bounds = {w: _bounds(*v, level) for w, v in diffs.items()}
    d_best, (lo, hi) = diffs[best][0], bounds[best]
    about = f"the best trick's gain minus the search's is {d_best:+.1f} {_fmt(lo, hi)}, {adjusted}"
    above = [w[7:] for w, (low, _) in bounds.items() if low > 0]
    if np.isnan(lo) or np.isnan(hi):
        text += (f"Search against tricks: {about}; without an interval nothing can be said about which gains "
                 "more.")
    elif lo > 0:
        text += f"The best trick gains more than the search: {about}. Yang et al.'s point holds here."
    elif all(high < 0 for _, high in bounds.values()):
        text += (f"The search gains more than any trick: every trick's gain minus the search's lies below 0; "
                 f"{about}. Here Yang et al.'s point does not hold for gains.")
    elif above:
        text += (f"Trick(s) {', '.join(above)} gain more than the search (their gain minus the search's lies above "
                 f"0 at the same level), though {about}.")
    else:
        text += (f"Whether the search or the best trick gains more is not settled here: {about}, an interval that "
                 "reaches 0.")
    # two statements at once (the trick's size, the search's reach): each at half the error, Bonferroni
    big_low, big_high = _bounds(float(big.gain), *_spread(big), 1 - ALPHA / (2 * k))
    s_low, s_high = _bounds(float(s.gain), *_spread(s), 1 - ALPHA / 2)
    if big_low * big_high > 0 and min(abs(big_low), abs(big_high)) > max(abs(s_low), abs(s_high)):
        text += (f" The protocol moves the accuracy more than the search does ({largest[7:]}: "
                 f"{big.gain:+.1f} points, {_fmt(big_low, big_high)} at {100 * (1 - ALPHA / (2 * k)):.2f} % against "
                 f"the search's {_fmt(s_low, s_high)} at {100 * (1 - ALPHA / 2):.1f} %"
                 + (", a loss: it shows how much this recipe's result depends on its protocol, not a trick worth "
                    "using here" if big.gain < 0 else "") +
                 "): a comparison of cells trained under different protocols compares the protocols.")
    return text


def _reference(df: float | None):
    """The distribution a gain over its standard error is read against: normal where the standard error is known
    (``df`` None), Student's t on ``df`` degrees of freedom where it is estimated from a few trainings."""
    if df is None:
        return stats.norm
    if not df > 0:
        raise NASInputError(f"df is the degrees of freedom of the standard error's estimate, above 0; got {df!r}")
    return stats.t(df)


def beyond_noise(values: dict, se: float, alpha: float = ALPHA, df: float | None = None) -> pd.DataFrame:
    """Which of several gains (name -> points) lie beyond a noise of standard error ``se`` (e.g. single
    trainings' seed-to-seed spread, averaged over the cells), read together: each gain's two-sided test of no
    gain, with Holm's correction over the gains tested, so that the chance of calling any of them a help or a cost
    by noise alone is at most ``alpha``. The test is a z test where ``se`` is known (``df`` None) and a t test on
    ``df`` degrees of freedom where ``se`` is estimated (a spread from a handful of trainings is itself noisy, and
    a z test would read it as exact). One row per gain: ``what``, ``gain``, ``z`` (gain / se), ``p``, ``p_holm``
    and ``effect`` ("helps", "costs" or "unclear")."""
    if not se > 0:
        raise NASInputError(f"se is the standard error of a gain, above 0; got {se!r}")
    reference = _reference(df)
    names = list(values)
    gain = np.array([float(values[w]) for w in names])
    z = gain / se
    p = 2 * reference.sf(np.abs(z))
    adjusted = holm(p)
    effect = [("helps" if g > 0 else "costs") if a < alpha else "unclear" for g, a in zip(gain, adjusted)]
    return pd.DataFrame({"what": names, "gain": gain, "z": z, "p": p, "p_holm": adjusted, "effect": effect})


def leader(values: dict, se: float, alpha: float = ALPHA, df: float | None = None) -> dict:
    """The largest of several gains (name -> points) and whether its lead is beyond the noise. The leader is
    picked after the fact, the largest of k noisy gains, so its lead is read at ``alpha`` familywise error over
    all k (k - 1) / 2 pairs of gains (Bonferroni, which holds for whichever gain comes out on top): the lead over
    the runner-up must exceed ``bound`` = q_{1 - alpha / (k (k - 1))} x ``se``, ``se`` being the standard error of
    the difference of two gains and q the normal quantile where ``se`` is known (``df`` None), Student's t on
    ``df`` degrees of freedom where it is estimated. Returns ``top``, ``gain`` (its gain), ``runner_up``,
    ``lead``, ``bound``, ``pairs`` and ``established`` (None with one gain only)."""
    if not values:
        raise NASInputError("leader needs at least one gain")
    ranked = sorted(values.items(), key=lambda kv: -float(kv[1]))
    top, gain = ranked[0][0], float(ranked[0][1])
    out = {"top": top, "gain": gain, "runner_up": None, "lead": float("nan"), "bound": float("nan"), "pairs": 0,
           "established": None}
    if len(ranked) < 2:
        return out
    if not se > 0:
        raise NASInputError(f"se is the standard error of a difference of two gains, above 0; got {se!r}")
    pairs = len(ranked) * (len(ranked) - 1) // 2
    bound = float(_reference(df).ppf(1 - alpha / (2 * pairs))) * se
    lead = gain - float(ranked[1][1])
    return out | {"runner_up": ranked[1][0], "lead": lead, "bound": bound, "pairs": pairs,
                  "established": bool(lead > bound)}


def leader_change(first: dict, second: dict, first_name: str, second_name: str) -> str:
    """Whether the most useful trick changes from one setting to another, in words, from two ``leader`` answers:
    a change is established only where both leads are beyond their noise and the leaders differ; the measured
    leaders are named either way."""
    moved = first["top"] != second["top"]
    said = (f"the measured top trick moves from {first['top']} ({first['gain']:+.2f}) under {first_name} to "
            f"{second['top']} ({second['gain']:+.2f}) under {second_name}" if moved else
            f"the measured top trick is {first['top']} under both ({first['gain']:+.2f} under {first_name}, "
            f"{second['gain']:+.2f} under {second_name})")
    shown = [name for lead, name in ((first, first_name), (second, second_name)) if lead["established"]]
    if len(shown) == 2:
        return "Does the answer change? " + ("Yes: " if moved else "No: ") + said + ", and both leads are beyond " \
            "their noise"
    where = ("under neither" if not shown else f"only under {shown[0]}")
    return (f"Does the answer change? Not established: {said}, but a lead beyond the noise is shown {where}, so "
            + ("a change of the most useful trick is not established" if moved else
               "that it stays the same is not established either"))


def plot_gains(gain_table: pd.DataFrame, ax=None, title: str | None = None):
    """Horizontal bars of the gains, tricks in one colour and search in another, with their 95 % t intervals
    (a gain without an interval is drawn without error bars)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(gain_table)))
    y = np.arange(len(gain_table))
    colours = ["tab:orange" if w.startswith("trick") else "tab:blue" for w in gain_table["what"]]
    err = np.nan_to_num(np.vstack([gain_table["gain"] - gain_table["low"], gain_table["high"] - gain_table["gain"]]))
    ax.barh(y, gain_table["gain"], xerr=err, color=colours, capsize=3)
    ax.set_yticks(y, gain_table["what"])
    ax.axvline(0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy gained (points), with 95 % t intervals over the cells")
    ax.set_title(title or "What buys more accuracy: training tricks or architecture search?")
    return ax
