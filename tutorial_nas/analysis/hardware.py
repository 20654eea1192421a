"""Hardware-aware search: measured latency as a second objective beside accuracy.

Parameters and FLOPs are proxies; what a phone or a server feels is latency on *its* hardware, and the two
disagree (a parameter-free pooling op is not free in time, a depthwise conv is cheap in FLOPs but slow per
FLOP). So latency is measured: ``measure_latency`` runs warm-up passes and then times ``repeats`` forward
passes and reports the median (robust to the odd slow run on a shared machine). The speed of a machine drifts
between the moments two cells are timed, so ``paired_latency`` compares two cells by timing them again together,
interleaved over several rounds, and ``front_reach`` reads its latency comparisons from that where it is given the
evaluator.

Two ways to search with it:

- MnasNet's reward (Tan et al., CVPR 2019): ``acc * (lat / target) ** w``, with ``w = alpha`` under the target
  and ``w = beta`` above it; alpha = beta = -0.07 is their soft constraint, alpha = 0, beta = -1 a hard one.
  ``LatencyAware`` wraps ``BenchmarkLookup`` and hands this reward to any strategy of the package as its
  ``valid_acc`` (the accuracy and latency stay in the row's ``accuracy`` and ``latency_ms``).
- Multi-objective search: no weight is chosen; the answer is the whole Pareto front of (accuracy, latency).
  ``pareto_search`` is a small evolution whose parents are drawn from the current front (each cell once), in the
  spirit of LEMONADE (Elsken et al., ICLR 2019) without its density weighting and morphisms.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

import numpy as np
import pandas as pd
import torch
from scipy.stats import t as student_t

from ..bench import difference_words
from ..data import IMAGE_SIZE
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


# Channels and classes of the images of each data set of ``tutorial_nas.data`` (what its loaders return: grey
# digits, MNIST and Fashion-MNIST, colour CIFAR-10; ten classes each), so that a benchmark's network can be built at
# its recipe's size without loading the data.
DATA_SHAPE = {"digits": (1, 10), "mnist5k": (1, 10), "fashion-mnist": (1, 10), "cifar10": (3, 10)}


def _recipe_data(recipe: dict) -> tuple:
    """(channels, classes, image size) of the images ``recipe`` trains on: its ``dataset``, at its ``image_size``
    (the data set's own size where that is None, as ``bench.build.recipe_data`` loads it)."""
    if "dataset" not in recipe:
        raise NASInputError(f"the recipe names no dataset (one of {', '.join(DATA_SHAPE)}); got keys {sorted(recipe)}")
    check_choice("data set", recipe["dataset"], tuple(DATA_SHAPE))
    channels, classes = DATA_SHAPE[recipe["dataset"]]
    return channels, classes, recipe.get("image_size") or IMAGE_SIZE[recipe["dataset"]]


def input_shape(recipe: dict) -> tuple:
    """(channels, height, width) of one image of a benchmark's ``recipe`` (``bench.recipe``): the shape its cells'
    latency is measured at (CIFAR-10's three channels, MNIST's one)."""
    channels, _, size = _recipe_data(recipe)
    return (channels, size, size)


def cell_model(arch, recipe: dict, num_classes: int | None = None, in_channels: int | None = None) -> torch.nn.Module:
    """The network of NAS-Bench-201 cell ``arch`` at the size of a benchmark's ``recipe`` (``bench.recipe``), as
    the benchmark trained it: the input channels and classes of the recipe's data set unless given."""
    cell = nb201.parse(arch) if isinstance(arch, str) else tuple(arch)
    channels, classes, _ = _recipe_data(recipe)
    return nb201.NB201Network(cell, classes if num_classes is None else num_classes,
                              channels if in_channels is None else in_channels, C=recipe["C"], N=recipe["N"],
                              stem_stride=recipe["stem_stride"])


def cell_latencies(arches, bench, device=None, warmup: int = 5, repeats: int = 20) -> pd.DataFrame:
    """Latency on ``device`` of each cell of ``arches`` at the benchmark's size (its recipe's images, channels and
    classes), beside its parameters, FLOPs and accuracies from the table. One row per cell."""
    shape = input_shape(bench.recipe)
    device = torch.device(device or "cpu")
    rows = []
    for arch in arches:
        r = bench.query(arch)
        torch.manual_seed(0)
        lat = measure_latency(cell_model(arch, bench.recipe), shape, device, warmup, repeats)
        rows.append({"arch": r["arch"], "latency_ms": lat, "params": r["params"], "flops": r["flops"],
                     "valid_acc": r["valid_acc"], "test_acc": r["test_acc"]})
    return pd.DataFrame(rows)


def proxy_ceiling(again: float) -> float | None:
    """The most a perfect proxy's rank correlation with one noisy timing can reach, about sqrt(``again``), the
    Spearman correlation of two timings of the same cells (classical test theory's attenuation bound, here for
    ranks); None where the two timings do not rank the cells alike at all (``again`` at or below 0)."""
    return float(np.sqrt(again)) if again > 0 else None


def _ceiling_share(a1, a2, b1, b2=None, n_boot: int = 2000, seed: int = 0) -> tuple:
    """95 % percentile bootstrap interval, over the cells, of Spearman's correlation of ``a1`` with ``b1`` over its
    ceiling: sqrt of the correlation of two measurements of each noisy side (``a1`` with ``a2``; ``b1`` with ``b2``,
    or 1 where ``b2`` is None, a side without noise). Resamples where a side's two measurements do not correlate
    positively have no ceiling and are left out."""
    from scipy.stats import rankdata

    n = len(a1)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))

    def spearman(x, y):  # row by row over the resamples
        rx, ry = (rankdata(np.asarray(v, dtype=float)[idx], axis=1) for v in (x, y))
        rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))

    again = spearman(a1, a2) * (spearman(b1, b2) if b2 is not None else 1.0)
    keep = again > 0
    share = spearman(a1, b1)[keep] / np.sqrt(again[keep])
    share = share[np.isfinite(share)]
    if not len(share):
        return float("nan"), float("nan")
    low, high = np.percentile(share, [2.5, 97.5])
    return float(low), float(high)


def device_agreement(a_first: pd.DataFrame, a_second: pd.DataFrame, b_first: pd.DataFrame,
                     b_second: pd.DataFrame, names=("CPU", "GPU")) -> str:
    """Do two devices rank cells alike by latency? Four ``cell_latencies`` tables of the same cells in the same
    order: each device timed twice. Spearman's correlation of the two devices' first timings is read against what
    their timers allow: two noisy timings of one ranking correlate at most about sqrt(r_a r_b), where r_a and r_b
    are each device's correlation of its two timings (the attenuation bound of ``proxy_reading``, both sides
    noisy). The verdict reads the share of that ceiling by its 95 % bootstrap interval over the cells: the devices
    rank the cells differently only where it lies below 100 %."""
    tables = (a_first, a_second, b_first, b_second)
    if any(list(t["arch"]) != list(a_first["arch"]) for t in tables):
        raise NASInputError("device_agreement needs four timings of the same cells, in the same order")
    if len(a_first) < 3:
        raise NASInputError(f"a rank correlation needs at least 3 cells, got {len(a_first)}")
    lat = [t["latency_ms"] for t in tables]
    rho = float(lat[0].corr(lat[2], method="spearman"))
    r_a, r_b = (float(x.corr(y, method="spearman")) for x, y in ((lat[0], lat[1]), (lat[2], lat[3])))
    a, b = names
    text = (f"Spearman correlation of {a} and {b} latency over {len(a_first)} cells: {rho:.2f}; each timed twice: "
            f"{r_a:.2f} on the {a}, {r_b:.2f} on the {b}")
    if r_a <= 0 or r_b <= 0:
        return text + ": a timer does not rank these cells alike twice, so the devices cannot be compared here"
    ceiling = float(np.sqrt(r_a * r_b))
    low, high = _ceiling_share(lat[0], lat[1], lat[2], lat[3])
    text += (f"; two devices that ranked the cells alike would reach about sqrt({r_a:.2f} x {r_b:.2f}) = "
             f"{ceiling:.2f} through their timers' noise: {rho / ceiling:.0%} of that (95 % interval {low:.0%} to "
             f"{high:.0%}, bootstrap over the cells)")
    if high < 1:
        return text + (f": below what the timers allow, so the devices rank these cells differently: a cell fast on "
                       f"the {a} is not necessarily fast on the {b}")
    return text + (": an interval that holds 100 % (or lies above it, a ceiling estimated too low): the devices "
                   "rank these cells as alike as their timers can show")


def proxy_reading(first: pd.DataFrame, second: pd.DataFrame) -> str:
    """How closely FLOPs and parameters rank cells by latency, read against the timer itself: ``first`` and
    ``second`` are two ``cell_latencies`` tables of the same cells in the same order (timed one after the other).
    Spearman's correlation of each proxy with the first timing is set beside the correlation ``r`` of the two
    timings. A timing is the latency plus the timer's noise, and a noisy measurement correlates with anything at
    most as well as the noise-free quantity does, about sqrt(r) (classical test theory's attenuation bound, here
    for ranks): a perfect proxy would reach about sqrt(r), not 1, and each proxy is given as a share of that. The
    verdict reads the better proxy's share by its 95 % bootstrap interval over the cells (r from a hundred cells
    is itself imprecise): below 100 % only where the interval lies below it, above only where it lies above."""
    if list(first["arch"]) != list(second["arch"]):
        raise NASInputError("proxy_reading needs two timings of the same cells, in the same order")
    if len(first) < 3:
        raise NASInputError(f"a rank correlation needs at least 3 cells, got {len(first)}")
    rho = {k: float(first["latency_ms"].corr(first[k], method="spearman")) for k in ("flops", "params")}
    again = float(first["latency_ms"].corr(second["latency_ms"], method="spearman"))
    text = (f"Spearman correlation with latency over {len(first)} cells: FLOPs {rho['flops']:.2f}, parameters "
            f"{rho['params']:.2f}; the same cells timed a second time: {again:.2f} with the first timing")
    ceiling = proxy_ceiling(again)
    if ceiling is None:
        return text + ": the timer does not rank these cells alike twice, so no proxy can be read against it here"
    share = {k: v / ceiling for k, v in rho.items()}
    text += (f"; a perfect proxy, the latency without the timer's noise, would reach about sqrt({again:.2f}) = "
             f"{ceiling:.2f} against one timing: FLOPs reach {share['flops']:.0%} of that, parameters "
             f"{share['params']:.0%}")
    best = max(share, key=share.get)
    low, high = _ceiling_share(first["latency_ms"], second["latency_ms"], first[best])
    text += (f" ({'FLOPs' if best == 'flops' else 'parameters'}: 95 % interval {low:.0%} to {high:.0%}, "
             "bootstrap over the cells)")
    if low > 1:
        return text + (": above 100 %, the estimated ceiling is too low to be one (the two passes need not be "
                       "equally noisy); the proxies follow one timing more closely than a second timing does, so on "
                       "this machine the timer is the weak link, and how close they come to the latency itself "
                       "cannot be read here")
    if high < 1:
        return text + (": less closely than this timer could show, so part of what the timer resolves is not in "
                       "their count")
    return text + (": an interval that holds 100 %, so they rank the cells by latency as closely as this timer can "
                   "show, as far as these cells can tell; whether they fall short of it is not established here")


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
        """One timing of ``arch`` at the benchmark's size (its recipe's images, channels and classes) with this
        evaluator's settings (not cached)."""
        torch.manual_seed(0)
        return measure_latency(cell_model(self.space.to_str(arch), self.bench.recipe), input_shape(self.bench.recipe),
                               self.device, self.warmup, self.repeats)

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


def pareto_search(space, evaluator: LatencyAware, budget: int, seed: int = 0, initial: int = 10,
                  tries: int = 100) -> pd.DataFrame:
    """Multi-objective evolution over (accuracy up, latency down): ``initial`` random cells, then each child is a
    mutation of a parent drawn uniformly from the distinct cells of the current Pareto front of everything
    evaluated so far. Returns a History of every evaluated cell with ``accuracy``, ``latency_ms`` and ``on_front``
    (on the final front).

    LEMONADE (Elsken, Metzen & Hutter, ICLR 2019, Alg. 1) keeps the Pareto front itself as its population, a set
    of networks, and draws parents from it with a probability inversely proportional to the density of the cheap
    objective around each (so sparse regions of the front get more children); its children are network morphisms,
    new networks by construction. This search is the simplest form of the idea: parents drawn uniformly, one entry
    per cell however often it appears in the history (a cell's rows are equal, so counting them would weigh it by
    its re-evaluations), and plain mutations. A table answers a cell again with the same numbers, so a child (or
    an initial cell) already evaluated is drawn again, up to ``tries`` times, with another parent and mutation;
    where all of those were evaluated (the front's neighbourhood is used up), a random cell not yet evaluated is
    taken, and only where ``tries`` random cells were all evaluated too is a cell evaluated twice."""
    if not isinstance(budget, int) or budget < 1:
        raise NASInputError(f"budget is a number of evaluations >= 1, got {budget!r}")
    if not isinstance(tries, int) or isinstance(tries, bool) or tries < 1:
        raise NASInputError(f"tries is how often to draw a cell not yet evaluated, a whole number >= 1, got {tries!r}")
    rng = np.random.default_rng(seed)
    rows, spent, start = [], 0.0, time.perf_counter()
    archs, points = {}, {}  # one entry per distinct cell (by its string): the cell, its (accuracy, latency)

    def fresh(draw):  # a cell not evaluated yet, if one of ``tries`` draws is; else the last draw
        for _ in range(tries):
            arch = draw()
            if space.to_str(arch) not in archs:
                break
        return arch

    for step in range(budget):
        if step < initial or not rows:
            arch = fresh(lambda: space.sample(rng))
        else:
            keys = list(points)
            front = [keys[i] for i in pareto_front(list(points.values()))]  # each cell once, however often evaluated
            arch = fresh(lambda front=front: space.mutate(archs[front[int(rng.integers(len(front)))]], rng))
            if space.to_str(arch) in archs:  # the front's neighbourhood is evaluated: a random new cell instead
                arch = fresh(lambda: space.sample(rng))
        r = evaluator.evaluate(arch)
        spent += r.cost_s
        archs.setdefault(space.to_str(arch), arch)
        points.setdefault(space.to_str(arch), (r.info["accuracy"], r.info["latency_ms"]))
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
    downward triangle on the bottom edge at its ``x``, labelled for the legend. Returns how many distinct points
    were hidden (0, and the axis untouched, when none is or every cell is): a cell given twice at the same place,
    e.g. in two searches' tables drawn on one axis, is one mark and counts once."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    hidden = y <= 2 * chance
    if not hidden.any() or hidden.all():
        return 0
    low = float(y[~hidden].min())
    bottom = low - 0.1 * (float(y.max()) - low) - 0.1
    ax.set_ylim(bottom, None)
    ax.scatter(x[hidden], np.full(int(hidden.sum()), bottom), marker="v", s=40, color="tab:red", clip_on=False,
               zorder=3, label=f"below the axis: near chance ({chance:.0f} %)")
    return len({(float(a), float(b)) for a, b in zip(x[hidden], y[hidden])})


def summarize_front(history: pd.DataFrame) -> pd.DataFrame:
    """The cells on the front, fastest first: arch, accuracy, latency, parameters; a cell the search
    evaluated more than once (a mutation can lead back to it) is listed once."""
    cols = ["arch", "accuracy", "latency_ms", "test_acc", "params", "flops"]
    front = history[history["on_front"]] if "on_front" in history else history.iloc[
        pareto_front(history[["accuracy", "latency_ms"]].to_numpy())]
    return front[cols].drop_duplicates("arch").sort_values("latency_ms").reset_index(drop=True)


def _near_tie(tie_ms: float) -> str:
    """The words for a domination of the same accuracy by less than twice the timing noise ``tie_ms``."""
    return (f"a near-tie: the gap is under twice the timing noise of {tie_ms:.3f} ms, itself measured from a "
            "handful of timings")


def _arch_str(arch) -> str:
    return nb201.to_str(nb201.parse(arch) if isinstance(arch, str) else tuple(arch))


def edges_run(arch) -> int:
    """How many edges of NAS-Bench-201 cell ``arch`` its network builds and runs: every edge that is not ``none``
    (``spaces.cell.Cell`` leaves ``none`` out), whether or not its output reaches the cell's output."""
    return sum(op != "none" for op in nb201.parse(_arch_str(arch)))


PAIRED_ROUNDS = 6  # rounds of an interleaved re-timing of two cells (``paired_latency``)


def paired_latency(evaluator: LatencyAware, a, b, rounds: int = PAIRED_ROUNDS) -> dict:
    """Time cells ``a`` and ``b`` again, interleaved: ``rounds`` rounds, each timing both with ``evaluator.measure``
    (its seed, warm-up and repeats) one right after the other, ``a`` first in the even rounds and ``b`` first in
    the odd ones. A drift of the machine's speed between the moments the two were first timed, which re-timing one
    cell back to back (``latency_spread``) cannot see, then falls on both alike, and a steady drift within the
    rounds cancels between the two orders. Returns ``diff_ms``, the mean over the rounds of ``a``'s time minus
    ``b``'s (positive where ``b`` is faster), its 95 % t interval over the rounds ``low``, ``high``, ``resolved``
    (the interval excludes 0), each cell's median time ``a_ms``, ``b_ms``, and ``rounds``. The cache is left
    alone."""
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 2:
        raise NASInputError(f"rounds is how often to time the two cells, a whole number >= 2, got {rounds!r}")
    cells = {"a": nb201.parse(_arch_str(a)), "b": nb201.parse(_arch_str(b))}
    times = {"a": [], "b": []}
    for r in range(rounds):
        for key in ("a", "b") if r % 2 == 0 else ("b", "a"):
            times[key].append(float(evaluator.measure(cells[key])))
    d = np.subtract(times["a"], times["b"])
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(rounds))
    half = float(student_t.ppf(0.975, rounds - 1)) * se
    return {"diff_ms": mean, "low": mean - half, "high": mean + half,
            "resolved": bool(mean - half > 0 or mean + half < 0), "a_ms": float(np.median(times["a"])),
            "b_ms": float(np.median(times["b"])), "rounds": rounds}


def _paired_words(p: dict, word: str = "faster", sign: int = 1) -> str:
    """How a paired re-timing (``paired_latency`` of the cell against a front cell) measured the front cell's gap;
    ``sign`` -1 turns it round (the cell's own saving)."""
    low, high = sorted((sign * p["low"], sign * p["high"]))
    return (f"when the two are re-timed interleaved ({p['rounds']} rounds; 95 % interval of how much {word}: "
            f"[{low:+.3f}, {high:+.3f}] ms)")


def _same_function_words(arch, other, paired: bool) -> str:
    """Why a cell is slower than a front cell that computes the same function: the edges it runs beyond the front
    cell's, where it runs more (``edges_run``); where it runs as many or fewer but other operations (a convolution
    whose output is never used where the front cell runs a skip connection), those can still explain it; only with
    no more edges and none of other operations do the words say the edges do not explain it."""
    mine, theirs = edges_run(arch), edges_run(other)
    if mine > theirs:
        return (f"it computes the same function with {theirs} edge{'s' if theirs != 1 else ''} where this cell runs "
                f"{mine}: the gap is the "
                f"time of edges this cell runs that its function does not need"
                + ("" if paired else ", or noise beyond tie_ms"))
    my_ops, their_ops = (Counter(op for op in nb201.parse(_arch_str(a)) if op != "none") for a in (arch, other))
    extra, instead = (sorted((x - y).elements()) for x, y in ((my_ops, their_ops), (their_ops, my_ops)))
    if extra:  # as many edges or fewer, but other operations: an unneeded edge can still be the costlier one
        return (f"it computes the same function, and this cell runs no more edges than it does ({mine} against "
                f"{theirs}) but other operations ({', '.join(extra)} where the front cell runs "
                f"{', '.join(instead) or 'fewer edges'}), which "
                "need not cost the same: the edges it runs can still explain the gap"
                + (": the interleaved re-timing resolves it" if paired else
                   ", or timing drift between the moments the two cells were timed, or noise beyond tie_ms; "
                   "re-timing the two interleaved (front_reach's evaluator) would judge it"))
    return (f"it computes the same function, and this cell runs no more edges than it does ({mine} against {theirs}), "
            "none of other operations, so edges its function does not need do not explain the gap"
            + (": the interleaved re-timing resolves it all the same" if paired else
               ": timing drift between the moments the two cells were timed, or noise beyond tie_ms; "
               "re-timing the two interleaved (front_reach's evaluator) would judge it"))


def front_reach(front: pd.DataFrame, others: dict, tie_ms: float = 0.0, bench=None,
                metric: str = "valid_acc", evaluator: LatencyAware | None = None,
                rounds: int | None = None) -> pd.DataFrame:
    """Where each cell of ``others`` (name -> a row with ``accuracy`` and ``latency_ms``, e.g. the winner of a
    search on accuracy alone) stands against ``front`` (cells with the same two columns, e.g.
    ``summarize_front``): ``dominated`` by a front cell, ``beyond`` it (more accurate than every front cell, or,
    less accurate, faster than every front cell: beyond its fast end),
    ``dominating`` k of its cells (as accurate and faster, or more accurate and as fast: the front is not the
    best it could be), or, where no front cell dominates it and it dominates none, ``on the front`` if it is one of
    the front's rows, else a trade-off the front lacks. A cell that is one of the front's rows is said to be so. One
    row per name, with the front's best accuracy, how many front cells it dominates and, where it is dominated, the
    margins of the dominating front cell nearest in latency (``margin_points`` more accurate, ``margin_ms`` faster).

    ``tie_ms`` is the timing noise (e.g. ``latency_spread``): a cell of the same accuracy that is faster, or
    slower, by no more than it is a tie, not a domination, since timing the two again could reverse the order.
    With ``tie_ms = 0`` every difference counts. A domination of the same accuracy by less than twice ``tie_ms``
    (``tie_ms`` itself comes from a handful of timings), either way round, is called a near-tie. Where both sides
    carry an ``arch`` of the NAS-Bench-201 cell, two
    cells that compute the same function (the same ``spaces.cell.unique_str(cell, "drop_zero")``: a ``none`` edge
    adds nothing, so leaving it out changes nothing) share a row of the table, so their accuracies count as equal;
    their latencies need not be, since ``spaces.cell.Cell`` builds and runs every edge that is not ``none``, a dead
    one (whose output never reaches the cell's output) or a skip routed through another node included. So the
    timing decides between them as between any two cells of the same accuracy: a tie within ``tie_ms``, else the
    faster dominates. The identity cell ``|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|`` dominates
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|``, the identity too, whose
    three 3x3 convolutions never reach node 3 but cost three times the parameters and about twice the latency.
    Such a gap is put down to the edges the slower cell runs that its function does not need only where it runs
    more edges than the faster one (``edges_run``); where it runs as many or fewer, the words say the edges do not
    explain the gap.

    ``tie_ms`` comes from re-timing one cell back to back (``latency_spread``), which misses a drift of the
    machine's speed between the moments two cells were first timed. Given ``evaluator`` (the ``LatencyAware``
    whose ``measure`` timed them), each front cell is re-timed together with the cell, interleaved
    (``paired_latency``, ``rounds`` rounds), and every latency comparison with it is read from that paired
    measurement instead of the first timings and ``tie_ms``: the gap is the mean per-round difference, and a gap
    whose 95 % interval reaches 0 is not resolved (a tie where the accuracy is the same, a latency gap within
    its noise where it is not). ``margin_ms`` is then that paired gap. A front cell that is the cell itself is not
    re-timed.

    A domination is measured twice over, in accuracy and in latency, and either gap can be noise. Given ``bench``
    (the ``bench.Benchmark`` the accuracies are ``metric`` of), a dominating cell's accuracy gap is read against
    the two cells' own seeds (``Benchmark.compare``, paired by seed); its latency gap, beyond a tie, against
    ``tie_ms``. Where either is not beyond its noise, ``where`` says so and ``established`` is False: a
    domination as measured, not one the run establishes (``established`` is True where both gaps are beyond
    their noise, or a gap is nil, and NaN for a cell that is not dominated). A cell beyond the front is read the
    same way: its lead over the front's most accurate cell against the two cells' seeds, its speed beyond the
    fast end against ``tie_ms``."""
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
        same = np.zeros(len(points), dtype=bool)  # the same function: the same accuracy, not the same latency
        arch = row.get("arch")
        if front_keys is not None and arch is not None:
            mine = key(arch)
            same = np.array([k == mine for k in front_keys], dtype=bool)
        gain = np.where(same, 0.0, gain)  # one function, one row of the table: the accuracy is the same
        paired, resolved, pairs = np.zeros(len(points), dtype=bool), np.zeros(len(points), dtype=bool), {}
        itself = (np.array([_arch_str(t) == _arch_str(arch) for t in front["arch"]], dtype=bool)
                  if arch is not None and "arch" in front else  # without cells, a row of the same two numbers
                  (points[:, 0] == acc) & (points[:, 1] == lat))
        member = bool(itself.any())  # the cell is one of the front's own rows
        if evaluator is not None and front_keys is not None and arch is not None:
            for k, theirs in enumerate(front["arch"]):
                if itself[k]:  # the cell itself: nothing to re-time
                    continue
                pairs[k] = paired_latency(evaluator, arch, theirs, rounds or PAIRED_ROUNDS)
                saving[k], paired[k], resolved[k] = pairs[k]["diff_ms"], True, pairs[k]["resolved"]
        beaten = (gain >= 0) & (saving >= 0) & ((gain > 0) | (saving > 0))
        beats = (gain <= 0) & (saving <= 0) & ((gain < 0) | (saving < 0))
        within = np.where(paired, ~resolved, np.abs(saving) <= tie_ms)  # apart by timing noise only
        tie = (gain == 0) & within
        clear_beaten, clear_beats = beaten & ~tie, beats & ~tie
        near = np.flatnonzero(clear_beaten)
        firm = near[~(paired[near] & ~resolved[near])]  # dominating by a latency gap the re-timing resolves
        near = firm if len(firm) else near  # of those where there are any, else of all:
        near = near[np.argmin(saving[near])] if len(near) else None  # the dominating cell nearest in latency
        established = float("nan")
        if near is not None:
            faster = (f"{saving[near]:.3f} ms faster" if round(float(saving[near]), 3) > 0 else
                      "as fast to the timer's three decimals of a ms")
            if paired[near]:
                faster += " " + _paired_words(pairs[near])
            why = ")"
            if same[near]:
                why = "; " + _same_function_words(arch, front["arch"].iloc[near], paired[near]) + ")"
            open_gap = paired[near] and not resolved[near]  # faster only as measured: it could be dominated
            passed = len(firm) and (paired & ~resolved & clear_beaten).any()  # nearer ones the re-timing left open
            where = (f"{'could be dominated' if open_gap else 'dominated'} (the dominating front cell nearest in "
                     f"latency{' of those the re-timing resolves' if passed else ''} is {gain[near]:+.2f} points and "
                     f"{faster}{why}")
            if not paired[near] and gain[near] == 0 and 0 < tie_ms and saving[near] <= 2 * tie_ms:
                where += "; " + _near_tie(tie_ms)  # noise from a handful of timings
            unsure = []
            if gain[near] > 0 and bench is not None and arch is not None and "arch" in front:
                c = bench.compare(front["arch"].iloc[near], arch, metric)
                if c["p"] is None:
                    unsure.append("its accuracy gap cannot be read against seed noise (" + difference_words(c) + ")")
                elif c["p"] >= 0.05:
                    unsure.append(f"its accuracy gap is not beyond the two cells' seed noise (95 % interval "
                                  f"[{c['low']:+.2f}, {c['high']:+.2f}] over the {c['seeds']} seeds they share, paired "
                                  f"t-test p = {c['p']:.2f})")
            if gain[near] > 0 and paired[near] and not resolved[near]:
                unsure.append("its latency gap is not resolved by re-timing the two interleaved (its interval "
                              "reaches 0)")
            elif gain[near] > 0 and saving[near] > 0 and not paired[near] and saving[near] <= tie_ms:
                unsure.append(f"its latency gap is within the timing noise of {tie_ms:.3f} ms")
            established = not unsure
            if unsure:
                where += ("; " + " and ".join(unsure) + ": a domination as measured, not one this run establishes "
                          "(trained and timed again, the two cells could be a trade-off of each other)")
            twin = np.flatnonzero(tie & same & ~itself)  # a front cell of the same function it ties with
            if len(twin):
                where += ("; it ties with a front cell that computes the same function (" + (
                    "re-timed interleaved, their gap is not resolved" if paired[twin[0]] else
                    f"timed {abs(saving[twin[0]]):.3f} ms apart, within the timing noise") + ")")
        elif (gain < 0).all():
            where = "beyond the front (more accurate than all of it)"
            top = int(np.argmax(points[:, 0]))
            if bench is not None and arch is not None and "arch" in front:
                c = bench.compare(arch, front["arch"].iloc[top], metric)
                if c["p"] is None or c["p"] >= 0.05:
                    tested = f" (paired t-test p = {c['p']:.2f})" if c["p"] is not None else ""
                    where += (f"; its lead of {-gain[top]:.2f} points over the front's most accurate cell is not "
                              f"beyond the two cells' seed noise{tested}")
        elif (saving < 0).all() and not clear_beats.any() and not (tie & paired).any():
            fastest = int(np.argmin(points[:, 1]))
            where = (f"beyond the front's fast end (faster than all of it, by {-saving[fastest]:.3f} ms than its "
                     f"fastest cell" + (" " + _paired_words(pairs[fastest], "faster", -1) if paired[fastest] else "")
                     + f", and {gain[fastest]:.2f} points less accurate than that cell)")
            if paired[fastest] and not resolved[fastest]:
                where += ("; that gap is not resolved by the interleaved re-timing: timed again, the cell could be "
                          "dominated")
            elif not paired[fastest] and -saving[fastest] <= tie_ms:
                where += (f"; that gap is within the timing noise of {tie_ms:.3f} ms: timed again, the cell could be "
                          "dominated")
        elif clear_beats.any():
            n_front = len(points) - int(itself.sum())
            cells = f"{n_front} cell{'s' if n_front != 1 else ''}"
            where = (f"a cell of the front itself, dominating {int(clear_beats.sum())} of its other {cells}"
                     + (" when re-timed interleaved (the first timings left them on the front)" if paired.any() else "")
                     if member else f"dominating {int(clear_beats.sum())} of the front's {cells}")
            close = clear_beats & (gain == 0) & (np.abs(saving) <= 2 * tie_ms) & ~paired
            if 0 < tie_ms and (close == clear_beats).all():  # every cell it beats, it beats by noise alone
                where += (f", each by the same accuracy and a gap of at most {float(np.abs(saving[close]).max()):.3f} "
                          "ms; " + _near_tie(tie_ms))
            elif (clear_beats & paired & ~resolved).any():  # more accurate, as fast only as measured
                n_open = int((clear_beats & paired & ~resolved).sum())
                where += (f", {n_open} of them only as measured: more accurate than those, but by a latency gap "
                          "that re-timing the two interleaved does not resolve")
            elif (clear_beats & paired).any():
                where += ", each latency gap resolved by re-timing the two cells interleaved"
            lead = np.flatnonzero(clear_beats & (gain < 0))  # cells it dominates by being more accurate
            if len(lead) and bench is not None and arch is not None and "arch" in front:
                tests = [bench.compare(arch, front["arch"].iloc[k], metric)["p"] for k in lead]
                open_lead = [p for p in tests if p is None or p >= 0.05]
                if open_lead:
                    where += (f"; its accuracy lead over {len(open_lead)} of the {len(lead)} less accurate ones is not "
                              "beyond the two cells' seed noise (paired by seed): dominations as measured, not "
                              "established")
        elif (tie & (beaten | beats | paired)).any():  # a paired re-timing that resolves nothing is a tie at 0 too
            contest = tie & (beaten | beats | paired)
            which = contest & (same if (same & contest).any() else True)
            k = int(np.flatnonzero(which)[np.argmin(np.abs(saving[which]))])
            what = ("a front cell that computes the same function (the same row of the table)," if same[k] else
                    "a front cell: the same accuracy,")
            if paired[k]:
                where = (f"tied with {what} {abs(saving[k]):.3f} ms apart when the two are re-timed interleaved "
                         f"({pairs[k]['rounds']} rounds, 95 % interval of the gap [{pairs[k]['low']:+.3f}, "
                         f"{pairs[k]['high']:+.3f}] ms, which reaches 0: the order is not resolved)")
            else:
                where = (f"tied with {what} timed {abs(saving[k]):.3f} ms apart, within the timing noise of "
                         f"{tie_ms:.3f} ms (timed again, the order could reverse)")
        else:
            where = ("on the front (one of its cells)" if member else
                     "not one of the front's cells, but no front cell dominates it and it dominates none: a trade-off "
                     "the front lacks")
            unresolved = paired & ~resolved & (gain > 0)  # faster than these more accurate cells, by noise only
            if unresolved.any():
                n = int(unresolved.sum())
                where += (f"; its latency order against {n} more accurate front cell{'s' if n > 1 else ''} is not "
                          "resolved by re-timing the two interleaved: timed again, it could be dominated")
        rows.append({"cell": name, "accuracy": acc, "latency_ms": lat, "front_best_accuracy": points[:, 0].max(),
                     "dominates": int(clear_beats.sum()), "where": where, "established": established,
                     "margin_points": float(gain[near]) if near is not None else float("nan"),
                     "margin_ms": float(saving[near]) if near is not None else float("nan")})
    return pd.DataFrame(rows)


def latency_spread(evaluator: LatencyAware, arch, times: int = 5) -> float:
    """Timing noise: ``arch`` timed ``times`` more times with ``evaluator``'s settings (the same seed, warm-up
    and repeats), and the range (ms) of those times and the cached one (a cell not in the cache is timed once more
    in its place). Leaves the cache as it was: a cell not in it is not added."""
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise NASInputError(f"times is how often to time the cell again, a whole number >= 1, got {times!r}")
    cached = evaluator.latencies.get(evaluator.space.to_str(arch))
    times_ms = [evaluator.measure(arch) if cached is None else cached]
    times_ms += [evaluator.measure(arch) for _ in range(times)]
    return float(max(times_ms) - min(times_ms))


__all__ = ["measure_latency", "DATA_SHAPE", "input_shape", "cell_model", "cell_latencies", "pareto_front",
           "mnas_reward", "LatencyAware", "pareto_search", "plot_front", "summarize_front", "front_reach",
           "latency_spread", "paired_latency", "edges_run"]
