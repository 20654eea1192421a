"""How far a benchmark table can be trusted: would its ranking survive a rebuild, and does it tell cells apart?

A table trained with one recipe ranks cells with some noise: another seed reorders them. Two numbers say how much.

- **Reliability**: the Kendall tau between two independent builds of the table. It is measured on the cells trained
  with several seeds, as the tau between the means of two disjoint groups of seeds (every split of the seeds into
  two groups of ``g``, averaged), and given for the table as shipped, whose entries are the means of ``k`` seeds.
  When ``2k`` seeds are there it is measured directly; otherwise it is projected from ``g`` seeds to ``k`` with
  the Spearman-Brown formula applied to Greiner's correlation ``r = sin(pi tau / 2)`` (exact for normal noise;
  tested on simulated tables). The standard error comes from a bootstrap over cells.
- **Spread**: the gap between the best cell and the median, the share of cell pairs whose difference exceeds what
  the seed noise explains (two-sided 95 %), and where the cells without any convolution on a path rank.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.stats import kendalltau

from ..spaces import cell as nb201


def greiner(tau: float) -> float:
    """Pearson's r of a bivariate normal with Kendall's ``tau``."""
    return math.sin(math.pi * tau / 2)


def projected_tau(tau_g: float, g: int, k: int) -> float:
    """The tau between two ``k``-seed means, from the tau ``tau_g`` between two ``g``-seed means."""
    r = greiner(tau_g)
    if r <= 0:
        return tau_g
    rel1 = r / (g - (g - 1) * r)  # the single-seed reliability behind a g-seed reliability (Spearman-Brown)
    rk = k * rel1 / (1 + (k - 1) * rel1)
    return 2 / math.pi * math.asin(rk)


def _splits(n_seeds: int, g: int, limit: int = 20):
    """Pairs of disjoint seed groups of size ``g`` (each unordered pair once, at most ``limit``)."""
    out = []
    for a in itertools.combinations(range(n_seeds), g):
        rest = [s for s in range(n_seeds) if s not in a]
        for b in itertools.combinations(rest, g):
            if a < b:
                out.append((list(a), list(b)))
    return out[:limit]


def split_tau(acc: np.ndarray, g: int) -> float:
    """Mean Kendall tau between the means of two disjoint groups of ``g`` seeds; ``acc`` is (cells, seeds)."""
    return float(np.mean([kendalltau(acc[:, a].mean(1), acc[:, b].mean(1))[0] for a, b in _splits(acc.shape[1], g)]))


def reliability(acc: np.ndarray, k: int, n_boot: int = 50, seed: int = 0) -> dict:
    """The reliability of a table whose entries are ``k``-seed means, from ``acc`` (cells x seeds, no NaN).

    ``tau`` is the expected Kendall tau between two independent builds, ``se`` its bootstrap standard error,
    ``measured`` whether it was measured directly (at least ``2k`` seeds) or projected from ``g`` seeds.
    ``tau_one_seed`` is measured, never projected: the mean tau between two single seeds, over the pairs of seeds
    (the projection assumes normal noise of one size for every cell, and a table's noise is neither).
    """
    acc = np.asarray(acc, dtype=float)
    acc = acc[~np.isnan(acc).any(1)]
    m = acc.shape[1]
    if m < 2 or len(acc) < 3:
        return {"tau": None, "se": None, "k": k, "g": None, "measured": False, "n_cells": int(len(acc))}
    g = min(k, m // 2)
    estimate = lambda a: projected_tau(split_tau(a, g), g, k)  # noqa: E731
    rng = np.random.default_rng(seed)
    boot = [estimate(acc[rng.integers(0, len(acc), len(acc))]) for _ in range(n_boot)]
    return {"tau": estimate(acc), "se": float(np.std(boot, ddof=1)), "k": k, "g": g, "measured": g == k,
            "n_cells": int(len(acc)), "seeds": m, "tau_one_seed": split_tau(acc, 1)}


def has_convolution(cell: tuple) -> bool:
    """Whether a convolution lies on some path from the input to the output (dead edges do not count)."""
    return "conv" in nb201.unique_str(cell, "drop_zero")


def spread(valid: np.ndarray, cells: list, seed_sd: float | None, k: int) -> dict:
    """How well the table separates its cells: the top-median gap, the resolved pairs, the conv-free cells.

    ``valid`` are the table's final accuracies (one per cell, the mean of ``k`` seeds), ``seed_sd`` the
    standard deviation of one seed's accuracy around its cell's mean (pooled over the multi-seed cells).
    ``noise_band`` and ``resolved_pairs`` are table-wide summaries from that pooled deviation: the weak cells,
    which scatter far more from seed to seed, weigh in it, and so does the part of a seed's deviation that every
    cell trained with that seed shares, which cancels in a difference of two entries. They overstate the noise
    between two good cells; ``Benchmark.compare`` reads the difference of two given cells seed by seed.
    """
    valid = np.asarray(valid, dtype=float)
    out = {"best": float(valid.max()), "median": float(np.median(valid)),
           "best_minus_median": float(valid.max() - np.median(valid)),
           "top1pct": float(np.quantile(valid, 0.99))}
    if seed_sd is not None:
        noise = 1.96 * seed_sd * math.sqrt(2 / k)  # the 95 % band of a difference of two k-seed means
        s = np.sort(valid)
        n = len(s)
        # pairs (i < j) with s[j] - s[i] > noise, counted with one binary search per cell
        resolved = int((n - np.searchsorted(s, s + noise, side="right")).sum())
        out.update(seed_sd=float(seed_sd), noise_band=float(noise), resolved_pairs=resolved / (n * (n - 1) / 2))
    conv = np.array([has_convolution(c) for c in cells])
    if (~conv).any():
        pct = 100.0 * (valid[None, ~conv] > valid[:, None]).mean(0)  # share of all cells each conv-free cell beats
        out.update(conv_free_cells=int((~conv).sum()), conv_free_best=float(valid[~conv].max()),
                   conv_free_best_percentile=float(pct.max()), conv_free_median_percentile=float(np.median(pct)))
    return out


def pooled_seed_sd(acc: np.ndarray) -> float:
    """The standard deviation of one seed around its cell's mean, pooled over cells (cells x seeds)."""
    acc = np.asarray(acc, dtype=float)
    acc = acc[~np.isnan(acc).any(1)]
    return float(np.sqrt(np.mean(np.var(acc, axis=1, ddof=1))))
