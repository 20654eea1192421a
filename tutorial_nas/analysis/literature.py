"""The published results of Part III, as data with their sources, and the claims they support.

``literature.csv`` holds three tables, told apart by its ``table`` column:

- ``cifar10``: the survey's CIFAR-10 table (Ren et al. 2020, Table 1): family, method, venue, test error %,
  parameters (millions) and search cost (GPU-days);
- ``imagenet``: its ImageNet table (Table 2): top-1 / top-5 accuracy %, parameters, input size, GPU-days;
- ``nb201``: NAS-Bench-201's Table 5 (Dong & Yang 2020): search seconds and the validation / test accuracy
  (mean and std) on CIFAR-10, CIFAR-100 and ImageNet16-120.

Every row names its ``source``; where sources disagree (ENAS's error, NASNet's GPU-days) the ``note`` says
so. A number the source leaves out (N/A) stays empty, never zero. The families are those of the survey:
RL (reinforcement learning), EA (evolution), GO (gradient optimisation), RS (random search), SMBO (sequential
model-based optimisation) and Human (hand-designed networks). A method's ``family`` is how it searches;
``survey_family`` keeps the survey's own grouping. The two differ where the survey puts weight-sharing methods
under GO although none of them optimises the architecture by gradient (``regrouped`` lists them): ENAS trains
its controller by REINFORCE (RL with weight sharing; Pham et al., ICML 2018), SMASH ranks randomly sampled
architectures with hypernetwork-generated weights (Brock et al., ICLR 2018) and the one-shot model of Bender
et al. (ICML 2018) ranks randomly sampled architectures with its shared weights (both RS). Colours and medians
follow ``family``.

The claims of the chapter are computed from the table, not typed: ``median_cost_by_family`` and
``best_nas_vs_best_human`` return their numbers with the one sentence they support, and ``gap_against_spread`` says
whether a gap of a given size would stand out from a given set of searches' seed-to-seed spread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import NASInputError

CSV = Path(__file__).with_name("literature.csv")
FAMILIES = ("RL", "EA", "GO", "RS", "SMBO", "Human")
FAMILY_NAMES = {"RL": "reinforcement learning", "EA": "evolution", "GO": "gradient optimisation",
                "RS": "random search", "SMBO": "model-based optimisation", "Human": "hand-designed"}
COLORS = {"RL": "tab:red", "EA": "tab:green", "GO": "tab:blue", "RS": "tab:gray", "SMBO": "tab:purple",
          "Human": "black"}
_COLUMNS = {
    "cifar10": ["family", "survey_family", "method", "venue", "error", "params_m", "gpu_days", "source", "note"],
    "imagenet": ["family", "survey_family", "method", "top1", "top5", "params_m", "input_size", "gpu_days", "source",
                 "note"],
    "nb201": ["family", "survey_family", "method", "search_s"]
    + [f"{d}_{s}{std}" for d in ("c10", "c100", "in16") for s in ("valid", "test") for std in ("", "_std")]
    + ["source", "note"],
}


def _load(table: str) -> pd.DataFrame:
    df = pd.read_csv(CSV, keep_default_na=False, na_values=[""], dtype={"venue": str, "note": str})
    df = df[df["table"] == table][_COLUMNS[table]].reset_index(drop=True)
    for col in ("family", "survey_family", "venue", "note"):
        if col in df:
            df[col] = df[col].fillna("")
    return df


def load_cifar10() -> pd.DataFrame:
    """The CIFAR-10 table: one row per published result (error %, params in M, search GPU-days)."""
    return _load("cifar10")


def load_imagenet() -> pd.DataFrame:
    """The ImageNet table: top-1 / top-5 accuracy %, params in M, input size in pixels, search GPU-days."""
    return _load("imagenet")


def load_nb201_table() -> pd.DataFrame:
    """NAS-Bench-201's Table 5: each method's search seconds and accuracies (mean, std) on three data sets."""
    return _load("nb201")


def regrouped(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose family here is not the survey's, with the survey's grouping beside the one used here."""
    _check_columns(df, ["family", "survey_family", "method"])
    moved = df[df["family"] != df["survey_family"]]
    return moved[["method", "survey_family", "family"]].rename(columns={"family": "family_here"})


def _check_columns(df: pd.DataFrame, needed) -> None:
    missing = [c for c in needed if c not in df]
    if missing:
        raise NASInputError(f"the table lacks column(s) {missing}; pass load_cifar10() or load_imagenet()")


# -- figures ----------------------------------------------------------------------------------------------
def _scatter(df: pd.DataFrame, x: str, xlabel: str, ax, label_best: int):
    import matplotlib.pyplot as plt

    y, ylabel = ("error", "test error (%)") if "error" in df else ("top1", "top-1 accuracy (%)")
    _check_columns(df, ["family", "method", x, y])
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    shown = df.dropna(subset=[x, y])
    for fam in FAMILIES:
        part = shown[shown["family"] == fam]
        if len(part):
            ax.scatter(part[x], part[y], color=COLORS[fam], label=f"{fam} ({FAMILY_NAMES[fam]})", alpha=0.8)
    ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    legend = ax.legend(fontsize=8)
    best = shown.nsmallest(label_best, y) if y == "error" else shown.nlargest(label_best, y)
    _label_points(ax, legend, shown[[x, y]].to_numpy(dtype=float), best[[x, y, "method"]].itertuples(index=False))
    return ax


# offsets (points) of a label from its point, nearest first: right of the point, then left, then a line up or
# down, up to nine lines away, then the same further to the side
_OFFSETS = [(side * dx, sign * 8 * k) for dx in (5, 30) for k in range(10) for sign in ((1, -1) if k else (1,))
            for side in (1, -1)]


def _renderer(fig):
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()


def _fix_legend(ax, legend, frame, renderer):
    """Keep the legend where "best" put it (``frame``): by the name of that place where the name puts it there
    (it then stays there at any resolution), else by its corner in axes coordinates."""
    cx, cy = ax.transAxes.inverted().transform(((frame.x0 + frame.x1) / 2, (frame.y0 + frame.y1) / 2))
    vertical = "lower" if cy < 1 / 3 else "upper" if cy > 2 / 3 else "center"
    horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    name = "center" if vertical == horizontal == "center" else f"{vertical} {horizontal}"
    legend.set_loc(name)
    ax.figure.draw_without_rendering()
    moved = legend.get_window_extent(renderer)
    if max(abs(moved.x0 - frame.x0), abs(moved.y0 - frame.y0)) > 1:
        legend.set_loc(tuple(ax.transAxes.inverted().transform((frame.x0, frame.y0))))


def _label_points(ax, legend, points, labels, fontsize: int = 7):
    """Write each label beside its point where its drawn text box overlaps no other label and not the legend and
    stays inside the axes; among such places the nearest to the point that covers the fewest other points.

    The boxes are the rendered text's window extents, so long names are measured as drawn. The legend's
    "best" place is fixed first (it would otherwise move when the labels appear). A label away from its
    point gets a thin line to it.
    """
    fig = ax.figure
    fig.draw_without_rendering()  # final limits and the legend's place
    renderer = _renderer(fig)
    frame = legend.get_window_extent(renderer)
    _fix_legend(ax, legend, frame, renderer)
    inside = ax.get_window_extent(renderer)
    dots = [ax.transData.transform(p) for p in points if np.all(np.isfinite(p))]
    radius = 3.5 * fig.dpi / 72  # the default marker's radius, in pixels
    taken = [frame]
    for lx, ly, name in sorted(labels, key=lambda r: (r[0], r[1])):
        text = ax.annotate(name, (lx, ly), fontsize=fontsize, xytext=_OFFSETS[0], textcoords="offset points",
                           va="center")
        best = None
        for dx, dy in _OFFSETS:
            text.set_position((dx, dy))
            text.set_horizontalalignment("left" if dx > 0 else "right")
            box = text.get_window_extent(renderer).padded(4)  # no line to the point yet: the text, a gap around it
            score = (1000 * sum(box.overlaps(t) for t in taken)  # never on a label or the legend,
                     + 1000 * (not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)))  # nor out
                     + 5 * sum(box.x0 - radius < px < box.x1 + radius and box.y0 - radius < py < box.y1 + radius
                               for px, py in dots)  # a covered point costs five lines of distance
                     + abs(dy) / 8 + 3 * (abs(dx) > 5) + 0.5 * (dx < 0))  # near the point, right before left
            if best is None or score < best[0]:
                best = (score, dx, dy, box)
        _, dx, dy, box = best
        text.remove()
        ax.annotate(name, (lx, ly), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points", va="center",
                    ha="left" if dx > 0 else "right",
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "gray", "shrinkA": 1, "shrinkB": 3,
                                "relpos": (0.0 if dx > 0 else 1.0, 0.5)} if (abs(dx), dy) != _OFFSETS[0] else None)
        taken.append(box)


def plot_error_vs_cost(df: pd.DataFrame, ax=None, label_best: int = 5):
    """Error against search cost (GPU-days, log scale), one colour per family: four orders of magnitude of
    cost for about one point of error. Rows without a cost (hand-designed networks, N/A) are left out."""
    ax = _scatter(df, "gpu_days", "search cost (GPU-days, log scale)", ax, label_best)
    measure = "test error" if "error" in df else "top-1 accuracy"
    ax.set_title(f"Published results: {measure} against search cost")
    return ax


def plot_error_vs_params(df: pd.DataFrame, ax=None, label_best: int = 5):
    """Error against model size (millions of parameters, log scale): hand-designed networks included."""
    ax = _scatter(df, "params_m", "parameters (millions, log scale)", ax, label_best)
    measure = "test error" if "error" in df else "top-1 accuracy"
    ax.set_title(f"Published results: {measure} against model size")
    return ax


# -- claims -----------------------------------------------------------------------------------------------
@dataclass
class Claim:
    """A statement computed from the table: the ``numbers`` behind it and the ``sentence`` it supports."""

    numbers: object
    sentence: str

    def __str__(self):
        return self.sentence


def search_of(method: str) -> str:
    """The search behind a reported result: a network retrained with Cutout ("NAO + Cutout") comes from the same
    search as the one without ("NAO"), at the same search cost."""
    return re.sub(r"\s*\+\s*cutout\s*$", "", str(method), flags=re.IGNORECASE).strip()


GAP_RATIO = 10.0  # a median between two middle searches more than this many times apart sits in a gap


def _middle(costs: pd.Series) -> tuple:
    """The two middle values of ``costs`` in order: the same value twice for an odd count."""
    values = np.sort(costs.to_numpy(dtype=float))
    n = len(values)
    return float(values[(n - 1) // 2]), float(values[n // 2])


def median_cost_by_family(df: pd.DataFrame, gap_ratio: float = GAP_RATIO) -> Claim:
    """The median search cost (GPU-days) of each family over its searches with a known cost (``n``): a search
    whose network is reported with and without Cutout (``search_of``) is counted once, not once per training.

    The sentence gives each family's range beside its median. With an even number of searches the median is the
    midpoint of the two middle ones (``middle_low``, ``middle_high``); where those are more than ``gap_ratio``
    times apart (``median_in_gap``), no search of the family costs near its median, and the sentence says so."""
    _check_columns(df, ["family", "gpu_days"])
    known = df.dropna(subset=["gpu_days"])
    if "method" in known:
        known = known.assign(search=known["method"].map(search_of)).drop_duplicates(["family", "search"])
    grouped = known.groupby("family")["gpu_days"]
    table = grouped.agg(median_gpu_days="median", min_gpu_days="min", max_gpu_days="max", n="count")
    middle = grouped.apply(_middle)
    table["middle_low"] = [middle[f][0] for f in table.index]
    table["middle_high"] = [middle[f][1] for f in table.index]
    table["median_in_gap"] = table["middle_high"] > gap_ratio * table["middle_low"]
    table = table.sort_values("median_gpu_days")
    if len(table) < 2:
        raise NASInputError("median_cost_by_family needs results of at least two families with a known cost")
    medians = table["median_gpu_days"]
    cheap, dear = medians.index[0], medians.index[-1]
    listed = ", ".join(f"{fam} {row.median_gpu_days:g} ({row.min_gpu_days:,g} to {row.max_gpu_days:,g}, "
                       f"{row.n:d})" for fam, row in table.iterrows())
    sentence = (f"Median search cost (GPU-days, each search counted once; in brackets the range and the number of "
                f"searches): {listed}; the median {FAMILY_NAMES.get(dear, dear)} "
                f"search costs {medians[dear] / medians[cheap]:,.0f}x the median "
                f"{FAMILY_NAMES.get(cheap, cheap)} one.")
    main = sentence
    for fam, row in table[table["median_in_gap"]].iterrows():
        sentence += (f" {fam}'s median, {row.median_gpu_days:g}, is the midpoint of its two middle searches, "
                     f"{row.middle_low:,g} and {row.middle_high:,g} GPU-days, "
                     f"{row.middle_high / row.middle_low:,.0f}x apart: none of its {row.n:d} searches costs between "
                     f"the two, half cost {row.middle_low:,g} or less"
                     + (", and the ratio above rests on that midpoint." if fam in (cheap, dear) else "."))
    table.attrs.update(medians=main, gaps=sentence[len(main):].strip())  # the two parts, for a short slide
    return Claim(table, sentence)


def best_nas_vs_best_human(df: pd.DataFrame, max_params: float | None = None) -> Claim:
    """How much lower the best NAS error is than the best hand-designed one, both under ``max_params`` M.

    Without ``max_params`` every result counts, whatever its size; a bound compares like with like.
    """
    _check_columns(df, ["family", "method", "error", "params_m"])
    pool = df.dropna(subset=["error"])
    if max_params is not None:
        pool = pool[pool["params_m"] <= max_params]  # an unknown size cannot be shown to fit the bound
    human, nas = pool[pool["family"] == "Human"], pool[pool["family"] != "Human"]
    if not len(human) or not len(nas):
        raise NASInputError(f"no hand-designed and NAS results to compare under {max_params} M parameters; "
                            "raise max_params or pass None")
    h, n = human.loc[human["error"].idxmin()], nas.loc[nas["error"].idxmin()]
    gain = float(h["error"] - n["error"])
    numbers = {"best_nas": n["method"], "best_nas_family": n["family"], "best_nas_error": float(n["error"]),
               "best_nas_params_m": float(n["params_m"]), "best_human": h["method"],
               "best_human_error": float(h["error"]), "best_human_params_m": float(h["params_m"]),
               "gain_points": gain, "relative_reduction": gain / float(h["error"]),
               "max_params_m": max_params}
    size = f"Under {max_params:g}M parameters, t" if max_params is not None else "T"
    sentence = (f"{size}he best NAS result ({n['method']}, {n['error']:.2f} % at {_m(n['params_m'])}) has "
                f"{gain:.2f} points lower error than the best hand-designed network ({h['method']}, "
                f"{h['error']:.2f} % at {_m(h['params_m'])}): {100 * gain / h['error']:.0f} % fewer errors.")
    return Claim(numbers, sentence)


def gap_against_spread(gap: float, spread: pd.Series, where: str, z: float = 1.96,
                       decimals: int | None = None) -> Claim:
    """Would a difference of ``gap`` points between two single results stand out from the seed-to-seed noise of
    searches whose final accuracy varies by ``spread`` (a std per search method, indexed by its name)? ``where``
    names whose searches these are: the test is about that spread, not about the results the gap came from.

    A difference of one search run from one other result stands out at the two-sided 5 % level (``z`` = 1.96;
    the level follows ``z``) only above ``z`` times the std of the difference: from ``z`` x std, if the other
    result had no noise at all, to ``z`` x sqrt(2) x std, if it were as noisy as a search run. Each method is
    ``within`` the noise (at or below the lower bound), ``between`` the bounds, or ``above`` both.

    ``decimals``: where the gap and the stds are published numbers printed to that many decimals (a gap being the
    difference of two of them), each is known only to half a unit of its last digit; a method whose bound lies
    within that rounding of the gap (``|gap - bound| <= z x 0.5 u + u``, u = 10^-decimals, with sqrt(2) z for
    the upper bound) is ``undecided``: the printed digits do not say on which side of the bound the gap falls.
    NAS-Bench-201's REA (std 0.30, lower bound 0.588) against a gap of 0.59 is such a case."""
    from scipy.stats import norm

    spread = pd.Series(spread, dtype=float).dropna()
    if spread.empty:
        raise NASInputError("gap_against_spread needs the std of at least one search method")
    if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0):
        raise NASInputError(f"decimals is the number of decimals the gap and stds were printed with; got {decimals!r}")
    low, high = z * spread, z * np.sqrt(2) * spread
    if decimals is None:
        undecided = pd.Series(False, index=spread.index)
    else:
        u = 10.0 ** -decimals
        undecided = ((gap - low).abs() <= z * 0.5 * u + u) | ((gap - high).abs() <= z * np.sqrt(2) * 0.5 * u + u)
    groups = {"within": low.index[(gap <= low) & ~undecided].tolist(),
              "between": low.index[(gap > low) & (gap <= high) & ~undecided].tolist(),
              "above": high.index[(gap > high) & ~undecided].tolist(),
              "undecided": low.index[undecided].tolist()}
    numbers = {"gap": float(gap), "std_min": float(spread.min()), "std_max": float(spread.max()),
               "low_min": float(low.min()), "low_max": float(low.max()),
               "high_min": float(high.min()), "high_max": float(high.max()), **groups}
    d = 2  # decimals: enough that a bound printed beside the gap never reads as equal to it
    while d < 6 and any(round(b, d) == round(gap, d) and b != gap for b in [*low, *high]):
        d += 1

    def names(key, bounds):  # each method of a group with its bounds
        listed = [f"{m} ({' to '.join(f'{b[m]:.{d}f}' for b in bounds)})" for m in groups[key]]
        return ", ".join(listed) or "no method"

    level = 100 * 2 * norm.sf(z)
    sentence = (f"{where[:1].upper()}{where[1:]}: the final accuracy varies by {spread.min():.2f} to "
                f"{spread.max():.2f} points (std) from one search seed to the next, so a difference of a single "
                f"search run from a single other result stands out at the {level:.2g} % level only above {z:g} x std "
                f"({low.min():.{d}f} to {low.max():.{d}f} points) if the other result has no noise, up to {z:g} x "
                f"sqrt(2) x std ({high.min():.{d}f} to {high.max():.{d}f}) if it is as noisy as a search run. A gap "
                f"of {gap:.{d}f} points would be within that noise even at the lower bound for "
                f"{names('within', [low])}; would stand out only against a nearly noise-free other result for "
                f"{names('between', [low, high])}; would stand out at either bound for {names('above', [high])}.")
    if groups["undecided"]:
        sentence += (f" For {names('undecided', [low, high])} the gap lies at a bound within the rounding of the "
                     f"published numbers (printed to {decimals} decimals, each known to half a unit of its last "
                     "digit): the printed digits do not say on which side of it the gap falls.")
    return Claim(numbers, sentence)


def _m(params) -> str:
    return "unknown size" if params is None or np.isnan(params) else f"{params:g}M"
