"""Hardware-aware search: measured latency as a second objective beside accuracy.

Parameters and FLOPs are proxies; what a phone or a server feels is latency on *its* hardware, and the two
disagree (a parameter-free pooling op is not free in time, a depthwise conv is cheap in FLOPs but slow per
FLOP). So latency is measured: ``measure_latency`` runs warm-up passes and then times ``repeats`` forward
passes and reports the median (robust to the odd slow run on a shared machine).

Two ways to search with it:

- MnasNet's reward (Tan et al., CVPR 2019): ``acc * (lat / target) ** w``, with ``w = alpha`` under the target
  and ``w = beta`` above it; alpha = beta = -0.07 is their soft constraint, alpha = 0, beta = -1 a hard one.
  ``LatencyAware`` wraps ``BenchmarkLookup`` and hands this reward to any strategy of the package as its
  ``valid_acc`` (the accuracy and latency stay in the row's ``accuracy`` and ``latency_ms``).
- Multi-objective search: no weight is chosen; the answer is the whole Pareto front of (accuracy, latency).
  ``pareto_search`` is a small evolution whose parents are drawn from the current front.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd
import torch

from ..errors import NASInputError, check_choice
from ..evaluators import BenchmarkLookup, Evaluator, Result
from ..search import history_frame
from ..spaces import cell as nb201


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(model: torch.nn.Module, input_shape: tuple, device=None, warmup: int = 5,
                    repeats: int = 20, batch_size: int = 1) -> float:
    """Median wall time (milliseconds) of one forward pass of a batch of ``batch_size`` inputs of shape
    ``input_shape`` (C, H, W) in eval mode on ``device``, after ``warmup`` untimed passes."""
    if not isinstance(repeats, int) or repeats < 1:
        raise NASInputError(f"repeats must be a whole number >= 1, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise NASInputError(f"warmup must be a whole number >= 0, got {warmup!r}")
    if len(tuple(input_shape)) != 3:
        raise NASInputError(f"input_shape is (channels, height, width) of one image, got {input_shape!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    x = torch.randn((batch_size, *input_shape), device=device)
    for _ in range(warmup):
        model(x)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def cell_model(arch, recipe: dict, num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
    """The network of NAS-Bench-201 cell ``arch`` at the size of a benchmark's ``recipe`` (``bench.recipe``)."""
    cell = nb201.parse(arch) if isinstance(arch, str) else tuple(arch)
    return nb201.NB201Network(cell, num_classes, in_channels, C=recipe["C"], N=recipe["N"],
                              stem_stride=recipe["stem_stride"])


def cell_latencies(arches, bench, device=None, warmup: int = 5, repeats: int = 20) -> pd.DataFrame:
    """Latency on ``device`` of each cell of ``arches`` at the benchmark's size, beside its parameters, FLOPs
    and accuracies from the table. One row per cell."""
    shape = (1, bench.recipe["image_size"], bench.recipe["image_size"])
    device = torch.device(device or "cpu")
    rows = []
    for arch in arches:
        r = bench.query(arch)
        torch.manual_seed(0)
        lat = measure_latency(cell_model(arch, bench.recipe), shape, device, warmup, repeats)
        rows.append({"arch": r["arch"], "latency_ms": lat, "params": r["params"], "flops": r["flops"],
                     "valid_acc": r["valid_acc"], "test_acc": r["test_acc"]})
    return pd.DataFrame(rows)


def pareto_front(points, maximize=(True, False)) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of ``points`` (n x k).

    ``maximize[j]`` says whether objective j is better high (accuracy) or low (latency). A point is dominated
    when another is at least as good in every objective and better in one; equal points dominate neither.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(maximize):
        raise NASInputError(f"points must be n x {len(maximize)} (one column per objective), got shape {p.shape}")
    if np.isnan(p).any():
        raise NASInputError("points contain nan; drop failed evaluations first")
    p = p * np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)  # every column: higher is better
    keep = []
    for i in range(len(p)):
        at_least = (p >= p[i]).all(axis=1)
        better = (p > p[i]).any(axis=1)
        if not (at_least & better).any():
            keep.append(i)
    return np.asarray(keep, dtype=int)


def mnas_reward(acc: float, latency_ms: float, target_ms: float, alpha: float = -0.07,
                beta: float = -0.07) -> float:
    """MnasNet's reward ``acc * (lat / target) ** w``, w = ``alpha`` if lat <= target else ``beta``."""
    if target_ms <= 0 or latency_ms <= 0:
        raise NASInputError(f"latency and target must be above zero, got {latency_ms!r} and {target_ms!r}")
    w = alpha if latency_ms <= target_ms else beta
    return acc * (latency_ms / target_ms) ** w


class LatencyAware(Evaluator):
    """``BenchmarkLookup`` plus the cell's latency, measured once per cell on ``device`` and cached.

    ``objective="mnas"``: ``valid_acc`` of the Result is MnasNet's reward (what the strategy maximises);
    ``objective="accuracy"``: it stays the accuracy (latency is recorded only). Either way the row keeps
    ``accuracy`` (benchmark validation accuracy) and ``latency_ms``. The cost charged is the benchmark's
    training seconds, as in ``BenchmarkLookup``.
    """

    name = "latency-aware"

    def __init__(self, space, bench, target_ms: float, objective: str = "mnas", alpha: float = -0.07,
                 beta: float = -0.07, device=None, warmup: int = 3, repeats: int = 10):
        check_choice("objective", objective, ("mnas", "accuracy"))
        if not target_ms > 0:
            raise NASInputError(f"target_ms must be above zero, got {target_ms!r}")
        self.lookup = BenchmarkLookup(space, bench)
        self.space, self.bench, self.target_ms, self.objective = space, bench, float(target_ms), objective
        self.alpha, self.beta, self.device = alpha, beta, torch.device(device or "cpu")
        self.warmup, self.repeats = warmup, repeats
        self.latencies: dict = {}

    def measure(self, arch) -> float:
        """One timing of ``arch`` at the benchmark's size with this evaluator's settings (not cached)."""
        shape = (1, self.bench.recipe["image_size"], self.bench.recipe["image_size"])
        torch.manual_seed(0)
        return measure_latency(cell_model(self.space.to_str(arch), self.bench.recipe), shape, self.device,
                               self.warmup, self.repeats)

    def latency(self, arch) -> float:
        """The cached timing of ``arch`` (``measure`` the first time it is asked for)."""
        key = self.space.to_str(arch)
        if key not in self.latencies:
            self.latencies[key] = self.measure(arch)
        return self.latencies[key]

    def evaluate(self, arch) -> Result:
        r = self.lookup.evaluate(arch)
        lat = self.latency(arch)
        score = r.valid_acc
        if self.objective == "mnas":
            score = mnas_reward(r.valid_acc, lat, self.target_ms, self.alpha, self.beta)
        return Result(valid_acc=score, test_acc=r.test_acc, cost_s=r.cost_s, params=r.params, flops=r.flops,
                      curve=r.curve, info={"accuracy": r.valid_acc, "latency_ms": lat})


def pareto_search(space, evaluator: LatencyAware, budget: int, seed: int = 0, initial: int = 10) -> pd.DataFrame:
    """Multi-objective evolution over (accuracy up, latency down): ``initial`` random cells, then each child
    is a mutation of a parent drawn uniformly from the current Pareto front. Returns a History of every
    evaluated cell with ``accuracy``, ``latency_ms`` and ``on_front`` (on the final front)."""
    if not isinstance(budget, int) or budget < 1:
        raise NASInputError(f"budget is a number of evaluations >= 1, got {budget!r}")
    rng = np.random.default_rng(seed)
    rows, archs, spent, start = [], [], 0.0, time.perf_counter()
    for step in range(budget):
        if step < initial or not rows:
            arch = space.sample(rng)
        else:
            points = [(r["accuracy"], r["latency_ms"]) for r in rows]
            front = pareto_front(points)
            arch = space.mutate(archs[int(rng.choice(front))], rng)
        r = evaluator.evaluate(arch)
        spent += r.cost_s
        archs.append(arch)
        rows.append({"step": step, "arch": space.to_str(arch), "valid_acc": r.info["accuracy"],
                     "test_acc": r.test_acc, "cost_s": r.cost_s, "spent_s": spent,
                     "wall_s": time.perf_counter() - start, "params": r.params, "flops": r.flops,
                     "curve": list(r.curve), **r.info})
    history = history_frame(rows, {"space": space.name, "strategy": "pareto-evolution", "seed": seed,
                                   "budget": f"{budget} evaluations", "evaluator": evaluator.name})
    front = pareto_front(history[["accuracy", "latency_ms"]].to_numpy())
    history["on_front"] = False
    history.loc[history.index[front], "on_front"] = True
    return history


def plot_front(frame: pd.DataFrame, x: str = "latency_ms", y: str = "accuracy", ax=None, label: str = "cells",
               title: str | None = None):
    """Scatter of ``frame`` (y up is better, x down is better) with its Pareto front drawn as a staircase."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(frame[x], frame[y], s=12, alpha=0.5, label=label)
    idx = pareto_front(frame[[y, x]].to_numpy())
    front = frame.iloc[idx].sort_values(x)
    ax.step(front[x], front[y], where="post", color="tab:red", lw=1.5, marker="o", ms=4, label="Pareto front")
    ax.set_xlabel({"latency_ms": "latency (ms)", "params": "parameters", "flops": "FLOPs"}.get(x, x))
    ax.set_ylabel({"accuracy": "validation accuracy (%)"}.get(y, y))
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def clip_near_chance(ax, x, y, chance: float) -> int:
    """Start the y axis just below the lowest cell above twice ``chance`` accuracy, so that cells near chance (a
    cell whose every path is cut off by ``none``) do not squash the rest, and mark each hidden cell with a red
    downward triangle on the bottom edge at its ``x``, labelled for the legend. Returns how many were hidden (0,
    and the axis untouched, when none is or every cell is)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    hidden = y <= 2 * chance
    if not hidden.any() or hidden.all():
        return 0
    low = float(y[~hidden].min())
    bottom = low - 0.1 * (float(y.max()) - low) - 0.1
    ax.set_ylim(bottom, None)
    ax.scatter(x[hidden], np.full(int(hidden.sum()), bottom), marker="v", s=40, color="tab:red", clip_on=False,
               zorder=3, label=f"below the axis: near chance ({chance:.0f} %)")
    return int(hidden.sum())


def summarize_front(history: pd.DataFrame) -> pd.DataFrame:
    """The cells on the front, fastest first: arch, accuracy, latency, parameters; a cell the search
    evaluated more than once (a mutation can lead back to it) is listed once."""
    cols = ["arch", "accuracy", "latency_ms", "test_acc", "params", "flops"]
    front = history[history["on_front"]] if "on_front" in history else history.iloc[
        pareto_front(history[["accuracy", "latency_ms"]].to_numpy())]
    return front[cols].drop_duplicates("arch").sort_values("latency_ms").reset_index(drop=True)


def front_reach(front: pd.DataFrame, others: dict, tie_ms: float = 0.0) -> pd.DataFrame:
    """Where each cell of ``others`` (name -> a row with ``accuracy`` and ``latency_ms``, e.g. the winner of a
    search on accuracy alone) stands against ``front`` (cells with the same two columns, e.g.
    ``summarize_front``): ``dominated`` by a front cell, ``beyond`` it (more accurate than every front cell),
    ``dominating`` k of its cells (as accurate and faster, or more accurate and as fast: the front is not the
    best it could be), or ``on the front`` (no front cell dominates it and it dominates none). One row per name,
    with the front's best accuracy, how many front cells it dominates and, where it is dominated, the margins of
    the dominating front cell nearest in latency (``margin_points`` more accurate, ``margin_ms`` faster).

    ``tie_ms`` is the timing noise (e.g. ``latency_spread``): a cell of the same accuracy that is faster, or
    slower, by no more than it is a tie, not a domination, since timing the two again could reverse the order.
    With ``tie_ms = 0`` every difference counts. Where both sides carry an ``arch`` of the NAS-Bench-201 cell, two
    cells that compute the same function (the same ``spaces.cell.unique_str(cell, "drop_zero")``: a ``none`` edge
    adds nothing, so leaving it out changes nothing) are a tie whatever their timings: the time between them can
    only be the timer's."""
    if not tie_ms >= 0:
        raise NASInputError(f"tie_ms is a timing noise in ms, >= 0; got {tie_ms!r}")
    points = front[["accuracy", "latency_ms"]].to_numpy(dtype=float)

    def key(arch):  # what the cell computes
        return nb201.unique_str(nb201.parse(arch) if isinstance(arch, str) else tuple(arch), "drop_zero")

    front_keys = [key(a) for a in front["arch"]] if "arch" in front else None
    rows = []
    for name, row in others.items():
        acc, lat = float(row["accuracy"]), float(row["latency_ms"])
        gain, saving = points[:, 0] - acc, lat - points[:, 1]  # what each front cell has over this one
        beaten = (gain >= 0) & (saving >= 0) & ((gain > 0) | (saving > 0))
        beats = (gain <= 0) & (saving <= 0) & ((gain < 0) | (saving < 0))
        same = np.zeros(len(points), dtype=bool)  # the same function: apart by the timer only
        arch = row.get("arch")
        if front_keys is not None and arch is not None:
            mine = key(arch)
            same = np.array([k == mine for k in front_keys], dtype=bool)
        tie = ((gain == 0) & (np.abs(saving) <= tie_ms)) | same  # the same accuracy, apart by timing noise only
        clear_beaten, clear_beats = beaten & ~tie, beats & ~tie
        near = np.flatnonzero(clear_beaten)
        near = near[np.argmin(saving[near])] if len(near) else None  # the dominating cell nearest in latency
        if near is not None:
            where = (f"dominated (the dominating front cell nearest in latency is {gain[near]:+.2f} points and "
                     f"{saving[near]:.3f} ms faster)")
        elif acc > points[:, 0].max():
            where = "beyond the front (more accurate than all of it)"
        elif clear_beats.any():
            where = f"dominating {int(clear_beats.sum())} of its {len(points)} cells"
        elif (same & (beaten | beats)).any():
            apart = float(np.abs(saving[same & (beaten | beats)]).min())
            where = (f"tied with a front cell that computes the same function (its none edges aside, the same "
                     f"cell), timed {apart:.3f} ms apart: the timer's difference, not the cells'")
        elif (tie & (beaten | beats)).any():
            apart = float(np.abs(saving[tie & (beaten | beats)]).min())
            where = (f"tied with a front cell: the same accuracy, {apart:.3f} ms apart, within the timing noise of "
                     f"{tie_ms:.3f} ms (timed again, the order could reverse)")
        else:
            where = "on the front"
        rows.append({"cell": name, "accuracy": acc, "latency_ms": lat, "front_best_accuracy": points[:, 0].max(),
                     "dominates": int(clear_beats.sum()), "where": where,
                     "margin_points": float(gain[near]) if near is not None else float("nan"),
                     "margin_ms": float(saving[near]) if near is not None else float("nan")})
    return pd.DataFrame(rows)


def latency_spread(evaluator: LatencyAware, arch, times: int = 5) -> float:
    """Timing noise: ``arch`` timed ``times`` more times with ``evaluator``'s settings (the same seed, warm-up
    and repeats), and the range (ms) of those times and the cached one. Leaves the cache as it was."""
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise NASInputError(f"times is how often to time the cell again, a whole number >= 1, got {times!r}")
    times_ms = [evaluator.latency(arch)] + [evaluator.measure(arch) for _ in range(times)]
    return float(max(times_ms) - min(times_ms))


__all__ = ["measure_latency", "cell_model", "cell_latencies", "pareto_front", "mnas_reward", "LatencyAware",
           "pareto_search", "plot_front", "summarize_front", "front_reach", "latency_spread"]
