"""Part III's experiment: every strategy on the same space, the same budget, many seeds, one table.

    for strategy in strategies:
        for seed in seeds:
            History = search(space, strategy, evaluator, budget, seed=seed)   # one run
    -> one tidy DataFrame: strategy, seed, step, spent_s, valid_acc, test_acc, incumbent, regret

A single run proves little: on NAS-Bench-201 the spread between seeds of one method is as large as the gap
between methods (Dong & Yang 2020, Table 5). So the comparison is over seeds, and it says how sure it is:
``plot_anytime`` draws the mean regret with a 95 % t-interval over seeds against the budget spent, and
``final_table`` gives each strategy's mean, spread and confidence interval, with a rank-sum test against
random search, the baseline every method must beat (Li & Talwalkar 2019; Yang et al. 2020 compare with
random sampling, the average architecture).

The regret of a run at a moment is the best test accuracy of the whole benchmark minus the test accuracy
of the run's incumbent, the architecture the method would return if stopped then: for the ask/tell
strategies the one with the best *validation* accuracy so far. The search never sees test accuracy, and its
look-ups read the validation accuracy of one half of each cell's trainings while the report reads the test
accuracy of the other half (``BenchmarkLookup(trial="held-out")``, as NAS-Bench-201 searches on its 12-epoch
runs and reports its 200-epoch ones): a pick that was lucky on validation is no lucky report, so the regret
measures what a user of the search would get, not the seed noise the search selected. The best test accuracy
of the benchmark is read the same way (``Benchmark.best_report_test_acc``).

Each strategy draws from a stream of its own for each seed (``strategy_seed``): with one generator per seed for
all, regularized evolution's and BANANAS' first cells would be random search's own, and the rank-sum tests,
which assume independent runs, would compare runs that share their start.

One-shot methods (DARTS, GDAS, random search with weight sharing) do not run through the ask/tell loop;
``add_oneshot`` appends their Histories in the same columns, their cost being the wall seconds they ran.
Their incumbent is what the method itself returns (``search.incumbents``): after epoch e of DARTS or GDAS the
cell derived at epoch e, as their papers and NAS-Bench-201 report them (never the epoch whose cell the
benchmark likes best); for weight sharing the candidate with the best shared-weight accuracy.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from ..errors import NASInputError
from ..evaluators import BenchmarkLookup
from ..progress import tqdm
from ..search import Budget, search
from ..text import count

# The four families that search through the benchmark (RS, EA, RL, SMBO); GO methods join via add_oneshot.
STRATEGIES = ("random", "regularized", "reinforce", "bo")
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
COLUMNS = ["strategy", "seed", "step", "arch", "spent_s", "valid_acc", "test_acc", "best_valid_acc",
           "best_test_acc", "regret"]


def strategy_seed(name: str, seed: int) -> int:
    """The generator seed of strategy ``name``'s run number ``seed``: one stream per (strategy, seed), stable
    whatever other strategies a comparison holds."""
    import zlib

    return int(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0])


def budget_from_trainings(bench, trainings: float) -> Budget:
    """A time budget worth ``trainings`` mean cell trainings of ``bench``: trainings x the mean seconds of a
    cell of the space (``Benchmark.mean_over_space``: over all its cells, so that random search, which samples
    them uniformly, makes about ``trainings`` look-ups; the mean over the table's rows, one per isomorphism
    class, is higher, as the classes with many members are the cheap cells with dead edges).

    A budget in seconds is only meaningful against the table it is charged from: the same 140 s are 100
    look-ups where a cell cost 1.4 s to train and 230 where it cost 0.6 s. Counting the budget in mean
    trainings keeps the number of look-ups a run can afford when the table changes. The budget is planned for
    ``trainings`` evaluations (rounded), so that a strategy whose exploration schedule spans the run (BlockQNN's
    epsilon) spreads it over about the look-ups it will make, not over the paper's own count."""
    if isinstance(trainings, bool) or not isinstance(trainings, (int, float, np.integer, np.floating)) \
            or not np.isfinite(trainings) or trainings <= 0:
        raise NASInputError(f"trainings must be a number above zero (the profile's budget_trainings), got "
                            f"{trainings!r}")
    return Budget(seconds=float(trainings) * bench.mean_over_space("train_seconds"), planned=max(1, round(trainings)))


def profile_budget(profile, bench) -> Budget:
    """The ``compare`` section's budget: ``budget_trainings`` mean cell trainings of ``bench`` (or, for a
    profile that only names seconds, its ``budget_s``)."""
    sizes = profile.compare.as_dict()
    if "budget_trainings" in sizes:
        return budget_from_trainings(bench, sizes["budget_trainings"])
    return Budget.parse(f"{sizes['budget_s']}s")


def _seeds(seeds) -> list:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise NASInputError(f"seeds must be a count above zero or a list of seeds, got {seeds!r}")
        return list(range(int(seeds)))
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise NASInputError(f"seeds must be a count above zero or a list of integers, got {seeds!r}")
    return [int(s) for s in seeds]


def _tidy(history: pd.DataFrame, strategy: str, seed: int, best_test: float, cost: str = "spent_s"):
    """One run's History in the comparison's columns (``cost`` names the column charged as spent_s)."""
    out = pd.DataFrame({"strategy": strategy, "seed": seed, "step": history["step"].to_numpy(),
                        "arch": history["arch"].to_numpy(), "spent_s": history[cost].to_numpy(dtype=float)})
    for col in ("valid_acc", "test_acc", "best_valid_acc", "best_test_acc"):
        out[col] = history[col].to_numpy(dtype=float)
    out["regret"] = best_test - out["best_test_acc"]
    return out


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op threads, then restore the previous number.

    The strategies' own models (an LSTM of 64 units, an ensemble of small MLPs) are far too small to gain from
    several threads; on a CPU that is busy with anything else, the threads mostly wait for each other.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compare(space, strategies=STRATEGIES, seeds=10, budget=100, *, bench=None, evaluator_factory=None,
            strategy_options: dict | None = None, progress: bool = True, threads: int | None = 1,
            workers: int = 1) -> pd.DataFrame:
    """Run every strategy with every seed under ``budget``; return one tidy DataFrame (``COLUMNS``).

    Candidates are scored by looking them up in ``bench`` (the shipped benchmark when neither ``bench`` nor
    ``evaluator_factory`` is given), or by ``evaluator_factory(space)``, called afresh for every run. The
    regret is measured from the benchmark's best test accuracy; without a benchmark, from the best test
    accuracy any run found. ``strategy_options`` maps a strategy name to its constructor's options.
    ``threads``: torch threads while the runs go (one by default, see :func:`torch_threads`; None leaves it).
    ``workers``: processes that share the runs (benchmark look-ups only; each run is seeded on its own, so the
    result is the same DataFrame as with one worker, in the same order).
    """
    from ..strategies import STRATEGIES as REGISTRY

    strategies = [strategies] if isinstance(strategies, str) else list(strategies)
    unknown = [s for s in strategies if s not in REGISTRY]
    if not strategies or unknown:
        raise NASInputError(f"unknown strategies {unknown}; choose from: {', '.join(REGISTRY)}")
    seeds, budget, options = _seeds(seeds), Budget.parse(budget), dict(strategy_options or {})
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise NASInputError(f"workers must be a whole number of at least 1, got {workers!r}")
    if workers > 1 and evaluator_factory is not None:
        raise NASInputError("workers > 1 shares benchmark look-ups between processes; with an "
                            "evaluator_factory, run with workers=1")
    if evaluator_factory is None:
        if bench is None:
            from ..bench import load_benchmark

            bench = load_benchmark()
        lookup = BenchmarkLookup(space, bench, trial="held-out")
        evaluator_factory = lambda _space: lookup  # noqa: E731  (a look-up keeps no state between runs)
    best_test = bench.best_report_test_acc() if bench is not None else np.nan

    runs = []
    bar = tqdm(total=len(strategies) * len(seeds), disable=not progress, desc="compare", unit="run")
    n_threads = threads if threads is not None else torch.get_num_threads()
    if workers > 1:  # benchmark look-ups only (checked above)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        tasks = [(name, seed, budget, options.get(name, {}), best_test) for name in strategies for seed in seeds]
        # spawn, not fork: a forked child of a process that already ran torch's thread pool can hang
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(space, bench, n_threads)) as pool:
            for run in pool.map(_worker_run, tasks):  # results in submission order: the same frame as one worker
                runs.append(run)
                bar.update(1)
    else:
        with torch_threads(n_threads):
            for name in strategies:
                for seed in seeds:
                    history = search(space, name, evaluator_factory(space), budget, progress=False,
                                     seed=strategy_seed(name, seed), **options.get(name, {}))
                    runs.append(_tidy(history, name, seed, best_test))
                    bar.update(1)
    bar.close()
    df = pd.concat(runs, ignore_index=True)
    if np.isnan(best_test):  # no table to read the optimum from: measure from the best any run found
        best_test = float(df["test_acc"].max())
        df["regret"] = best_test - df["best_test_acc"]
    df.attrs.update(space=space.name, budget=str(budget), best_test_acc=best_test)
    return df


_WORKER: dict = {}


def _init_worker(space, bench, threads: int) -> None:
    torch.set_num_threads(max(1, int(threads)))
    _WORKER.update(space=space, lookup=BenchmarkLookup(space, bench, trial="held-out"))


def _worker_run(task) -> pd.DataFrame:
    name, seed, budget, options, best_test = task
    history = search(_WORKER["space"], name, _WORKER["lookup"], budget, progress=False,
                     seed=strategy_seed(name, seed), **options)
    return _tidy(history, name, seed, best_test)


def add_oneshot(df: pd.DataFrame, name: str, histories) -> pd.DataFrame:
    """``df`` with the Histories of a one-shot method appended as strategy ``name``.

    Each History is one seed (its ``seed`` attribute, else its position); its cost is the wall seconds the
    method ran (``wall_s``), since a supernet's training is not charged per candidate. The incumbent is the
    History's own (``best_valid_acc``, ``best_test_acc``: for DARTS and GDAS the latest derived cell).
    """
    if isinstance(histories, pd.DataFrame):
        histories = [histories]
    if name in set(df["strategy"]):
        raise NASInputError(f"{name!r} is already in the comparison; name the one-shot runs otherwise")
    if not histories:
        raise NASInputError("add_oneshot needs at least one History")
    best_test = df.attrs.get("best_test_acc", float(df["test_acc"].max()))
    runs = []
    for i, history in enumerate(histories):
        missing = [c for c in ("step", "arch", "valid_acc", "test_acc", "best_test_acc") if c not in history]
        if missing:
            raise NASInputError(f"History {i} of {name!r} lacks columns {missing}; pass what search() or "
                                "the one-shot methods return")
        cost = "wall_s" if "wall_s" in history else "spent_s"
        runs.append(_tidy(history, name, int(history.attrs.get("seed", i)), best_test, cost))
    out = pd.concat([df, *runs], ignore_index=True)
    out.attrs.update(df.attrs)
    return out


def anytime(df: pd.DataFrame, grid=None, points: int = 60, x: str = "seconds") -> pd.DataFrame:
    """The incumbent of every run on a common grid, as a long DataFrame.

    ``x="seconds"``: the grid is budgets in seconds spent (column ``budget_s``). Before a run's first
    evaluation completes it has no incumbent (NaN); after its last, it keeps its final incumbent. ``grid``
    defaults to ``points`` budgets spaced evenly on a log scale over what was spent.

    ``x="evaluations"``: the grid is numbers of evaluations made (column ``evaluations``; for a look-up
    strategy, look-ups), the incumbent after the run's n-th row in step order. A run that stopped before its
    n-th evaluation has no value there (NaN): it did not make that evaluation. ``grid`` defaults to every count
    from 1 to the longest run.
    """
    if x not in ("seconds", "evaluations"):
        raise NASInputError(f"x must be 'seconds' or 'evaluations', got {x!r}")
    if x == "evaluations":
        if grid is None:
            grid = np.arange(1, int(df.groupby(["strategy", "seed"], sort=False).size().max()) + 1)
        grid = np.asarray(grid, dtype=float)
        parts = []
        for (strategy, seed), run in df.groupby(["strategy", "seed"], sort=False):
            run = run.sort_values("step", kind="stable")
            idx = np.floor(grid).astype(int) - 1
            ok = (idx >= 0) & (idx < len(run))
            pick = np.clip(idx, 0, len(run) - 1)
            best = np.where(ok, run["best_test_acc"].to_numpy()[pick], np.nan)
            regret = np.where(ok, run["regret"].to_numpy()[pick], np.nan)
            parts.append(pd.DataFrame({"strategy": strategy, "seed": seed, "evaluations": grid,
                                       "best_test_acc": best, "regret": regret}))
        return pd.concat(parts, ignore_index=True)
    if grid is None:
        spent = df["spent_s"][df["spent_s"] > 0]
        if not len(spent):
            raise NASInputError("no run spent any seconds: pass an explicit grid of budgets")
        grid = np.geomspace(spent.min(), spent.max(), points)
    grid = np.asarray(grid, dtype=float)
    parts = []
    for (strategy, seed), run in df.groupby(["strategy", "seed"], sort=False):
        run = run.sort_values("spent_s")
        idx = np.searchsorted(run["spent_s"].to_numpy(), grid, side="right") - 1
        best = np.where(idx >= 0, run["best_test_acc"].to_numpy()[np.maximum(idx, 0)], np.nan)
        regret = np.where(idx >= 0, run["regret"].to_numpy()[np.maximum(idx, 0)], np.nan)
        parts.append(pd.DataFrame({"strategy": strategy, "seed": seed, "budget_s": grid,
                                   "best_test_acc": best, "regret": regret}))
    return pd.concat(parts, ignore_index=True)


def confidence_interval(values, level: float = 0.95) -> tuple:
    """Mean and the half-width of its ``level`` t-interval (NaN half-width for a single value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan
    if len(values) == 1:
        return float(values[0]), np.nan
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * sem)


def plot_anytime(df: pd.DataFrame, ax=None, grid=None, level: float = 0.95, x: str = "seconds",
                 yscale: str = "auto", budget_s: float | None = None):
    """Mean test regret against the budget, a ``level`` t-band over seeds per strategy, clipped to what a regret
    can take (from 0 to the best test accuracy); each strategy has its own dashes and width, so that curves
    that coincide stay visible, and the same colour in every panel.

    ``x="seconds"``: against the seconds charged (log scale), every strategy. A curve starts at the budget where
    every seed of its strategy has an incumbent (before, a mean of one or two seeds is no estimate) and ends
    where the strategy's longest run ended.
    ``x="evaluations"``: against the number of look-ups made (log scale), the look-up strategies only (a
    one-shot method of ``ONESHOT`` looks nothing up: its rows are epochs or scored candidates). A curve ends
    at the look-up where the first seed of its strategy ran out of budget (beyond, the mean would mix runs that
    go on with runs that stopped); the legend gives the mean look-ups a run made.
    ``x="both"``: the two panels side by side (``ax``: None or two axes); returns the two axes.
    ``grid`` is the grid of the one panel drawn (seconds, or counts of look-ups); with ``"both"``, of the
    seconds panel.

    ``yscale``: "linear", "symlog" (linear from 0 to the power of ten below the smallest mean regret drawn,
    logarithmic above, so that regrets of a fraction of a point and of tens of points are both read) or
    "auto": symlog where the strategies' curves end more than ten times apart (``regret_scale``: one-shot
    runs far behind look-up strategies), else linear. With ``"both"`` it applies to the seconds panel; the
    look-up panel holds look-up strategies only, on a symlog axis where their curves fall more than tenfold from
    the first look-up to their ends (``regret_fall``: on a linear axis the final regrets, the ones compared, would
    lie in the bottom tenth), else a linear one.

    ``budget_s``: the look-up strategies' budget in seconds, drawn on the seconds panel as a dotted vertical line,
    so that a one-shot run charged more seconds shows as a curve that goes on past it."""
    import matplotlib.pyplot as plt

    if x not in ("seconds", "evaluations", "both"):
        raise NASInputError(f"x must be 'seconds', 'evaluations' or 'both', got {x!r}")
    if yscale not in ("auto", "linear", "symlog"):
        raise NASInputError(f"yscale must be 'auto', 'linear' or 'symlog', got {yscale!r}")
    title = f"Anytime performance: mean test regret over seeds, {int(level * 100)} % confidence band"
    if x == "both":
        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(13, 4.5), sharey=False)
        else:
            ax = np.asarray(ax).ravel()
            if len(ax) != 2:
                raise NASInputError(f"x='both' draws two panels: pass two axes, got {len(ax)}")
            fig = ax[0].figure
        _anytime_panel(df, ax[0], grid, level, "seconds", yscale, budget_s)
        _anytime_panel(df, ax[1], None, level, "evaluations", "fall")
        ax[0].set_title("against the seconds charged, every strategy", fontsize=10)
        ax[1].set_title("against the look-ups made, look-up strategies only", fontsize=10)
        fig.suptitle(title)
        return ax
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    _anytime_panel(df, ax, grid, level, x, yscale, budget_s)
    ax.set_title(title if x == "seconds" else f"{title}\n(look-up strategies only)")
    return ax


def regret_scale(curves, ratio: float = 10.0) -> str:
    """"symlog" where the strategies' mean regret curves end more than ``ratio`` times apart (one-shot runs far
    behind look-up strategies), so that on a linear axis the low curves would lie on one another near zero,
    else "linear"."""
    ends = [float(c[-1]) for c in curves if len(c) and np.isfinite(c[-1]) and c[-1] > 0]
    if len(ends) < 2:
        return "linear"
    return "symlog" if max(ends) > ratio * min(ends) else "linear"


def regret_fall(curves, ratio: float = 10.0) -> str:
    """"symlog" where the highest point of the mean regret curves is more than ``ratio`` times the lowest of their
    ends (the regret of the first look-ups against the final ones), so that on a linear axis the final regrets
    would be squashed at the bottom, else "linear"."""
    ends = [float(c[-1]) for c in curves if len(c) and np.isfinite(c[-1]) and c[-1] > 0]
    tops = [float(np.nanmax(c)) for c in curves if len(c) and np.isfinite(c).any()]
    if not ends or not tops:
        return "linear"
    return "symlog" if max(tops) > ratio * min(ends) else "linear"


def _ceiling(df: pd.DataFrame) -> float:
    """The test accuracy of the table's best cell (``df.attrs["best_test_acc"]``), 100 where it is unknown."""
    best = df.attrs.get("best_test_acc", 100.0)
    return 100.0 if best is None or not np.isfinite(best) else float(best)


def _anytime_panel(df: pd.DataFrame, ax, grid, level: float, x: str, yscale: str = "linear",
                   budget_s: float | None = None) -> None:
    """One panel of ``plot_anytime``: ``x`` is "seconds" or "evaluations"; ``yscale`` and ``budget_s`` as there."""
    from matplotlib.ticker import FuncFormatter

    from ..course.viz import line_style

    ceiling = _ceiling(df)  # a regret lies between 0 and the best accuracy itself
    names = list(dict.fromkeys(df["strategy"]))  # one colour and dash per strategy, the same in every panel
    if x == "evaluations":
        df = df[~df["strategy"].isin(list(ONESHOT))]
    column = "budget_s" if x == "seconds" else "evaluations"
    curves = anytime(df, grid, x=x) if len(df) else pd.DataFrame(columns=["strategy", "seed", column, "regret"])
    drawn = []  # each strategy's mean regret curve, for the choice of the y scale
    for strategy, part in curves.groupby("strategy", sort=False):
        i = names.index(strategy)
        # in seconds, a curve ends where its strategy's longest run ended: beyond, nothing was spent or found
        end = df.loc[df["strategy"] == strategy, "spent_s"].max() if x == "seconds" else np.inf
        stats = [(b, *confidence_interval(g["regret"], level)) for b, g in part.groupby(column)
                 if g["regret"].notna().all() and b <= end]
        if not stats:
            continue
        budget, mean, half = (np.array(v, dtype=float) for v in zip(*stats))
        style = line_style(i)
        color = style["color"]
        n = part["seed"].nunique()
        label = f"{strategy} ({n} seeds)"
        if x == "evaluations":
            per_run = df[df["strategy"] == strategy].groupby("seed").size()
            label = f"{strategy} ({n} seeds, {per_run.mean():.0f} look-ups a run)"
        drawn.append(mean)
        # a curve of one or two points (a method whose every seed has an incumbent only near its end, such as
        # random search with weight sharing, whose supernet trains first) is no visible line: mark its points,
        # with their intervals as error bars
        few = len(budget) <= 2
        ax.plot(budget, mean, color=color, linestyle=style["linestyle"], label=label, marker="o" if few else None,
                linewidth=1.2 + 1.3 * (len(names) - 1 - i) / max(1, len(names) - 1))
        low, high = np.clip(mean - half, 0, ceiling), np.clip(mean + half, 0, ceiling)  # what a regret can take
        ax.fill_between(budget, low, high, color=color, alpha=0.15, linewidth=0)
        if few:
            ax.errorbar(budget, mean, yerr=[mean - low, high - mean], fmt="none", color=color, capsize=3)
    ax.set_xscale("log")
    xlabel = ("budget spent (seconds, log scale)" if x == "seconds" else
              "look-ups made (evaluations, log scale)")
    ylabel = "test regret (accuracy points)"
    if yscale == "auto":
        yscale = regret_scale(drawn)
    elif yscale == "fall":
        yscale = regret_fall(drawn)
    if yscale == "symlog":
        positive = np.concatenate(drawn)[np.concatenate(drawn) > 0] if drawn else np.array([])
        linthresh = float(10.0 ** np.floor(np.log10(positive.min()))) if len(positive) else 1.0
        ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylim(bottom=0)
        ylabel = f"test regret (accuracy points,\nlog scale above {linthresh:g}, linear below)"
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if budget_s is not None and x == "seconds" and ax.get_lines():
        ax.axvline(budget_s, color="0.3", linestyle=":", linewidth=1.2, label=f"look-ups' budget ({budget_s:.1f} s)")
    if ax.get_lines():
        ax.legend(fontsize=8)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of the p-values of several tests (Holm, 1979): the i-th smallest of m is
    multiplied by m - i + 1, and each adjusted value is at least the one before it in that order (capped at 1).
    Rejecting where an adjusted value is below alpha keeps the chance of any false rejection among the m tests
    at most alpha. NaN (no test) stays NaN and does not count among the m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m, running = len(order), 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        out[index] = running
    return out


EXACT_RANK_SUM_MAX = 10  # exact rank-sum p-values where the smaller group has at most this many runs


def rank_sum_p(a, b) -> float:
    """Two-sided p-value of the Wilcoxon-Mann-Whitney rank-sum test of ``a`` against ``b``.

    Where the smaller group has at most ``EXACT_RANK_SUM_MAX`` values the p-value is exact: over all ways to pick
    that many of the pooled values (midranks for ties), twice the smaller share of picks whose rank sum is at
    least, or at most, the observed one (scipy's two-sided convention), counted by dynamic programming over the
    pooled ranks; ties, which table look-ups have many of, are where scipy itself falls back on the
    approximation. Otherwise it is scipy's normal approximation with tie and continuity corrections, which is good
    when both groups are large: with 3 runs against 100 it is not (3 runs below all of 100 tied look-up runs have
    an exact p of 2 / C(103, 3) = 1.1e-5, where the approximation gives about 0.002)."""
    from scipy.stats import mannwhitneyu, rankdata

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(len(a), len(b)) > EXACT_RANK_SUM_MAX:
        return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    small = a if len(a) <= len(b) else b
    k = len(small)
    ranks = np.rint(2 * rankdata(np.concatenate([small, b if small is a else a]))).astype(int)  # twice the midranks
    top = int(ranks.sum())
    counts = np.zeros((k + 1, top + 1))  # counts[j, s]: subsets of j of the ranks seen so far with (doubled) sum s
    counts[0, 0] = 1.0
    for r in ranks:
        counts[1:, r:] += counts[:-1, :top + 1 - r].copy()
    observed, sums = int(ranks[:k].sum()), np.arange(top + 1)
    dist = counts[k] / counts[k].sum()
    return float(min(1.0, 2 * min(dist[sums >= observed].sum(), dist[sums <= observed].sum())))


def final_table(df: pd.DataFrame, baseline: str = "random", level: float = 0.95, alpha: float = 0.05) -> pd.DataFrame:
    """Per strategy: the test accuracy of the final incumbent (for a one-shot run, the cell it derived last):
    mean, std and t-interval over seeds (clipped to what a mean of picks can take: from 0 to the test accuracy of
    the table's best cell, ``df.attrs["best_test_acc"]``, or 100 % without it), mean regret, the p-value
    of a two-sided Mann-Whitney U test against ``baseline`` (NaN when the baseline is absent; exact where a side
    has at most ``EXACT_RANK_SUM_MAX`` runs, as the one-shot methods' few seeds do, :func:`rank_sum_p`),
    ``p_holm_vs_<baseline>``, the same p-values adjusted for the number of strategies tested against the baseline
    (:func:`holm`), and in ``vs_<baseline>`` the direction: "better" or "worse" where the adjusted p < ``alpha``
    (by the difference of the mean ranks, the test's own statistic), else "not different". The runs of different
    strategies are independent (``compare`` gives each strategy a stream of its own for each seed), as the test
    assumes."""
    from scipy.stats import rankdata

    final = df.sort_values("step").groupby(["strategy", "seed"], sort=False).tail(1)
    groups = {s: g["best_test_acc"].to_numpy() for s, g in final.groupby("strategy", sort=False)}
    ceiling = _ceiling(df)  # every pick is a cell of the table: neither it nor a mean of picks can pass the best
    rows, higher = [], {}
    for strategy, acc in groups.items():
        mean, half = confidence_interval(acc, level)
        p = np.nan
        if baseline in groups and strategy != baseline:
            p = rank_sum_p(acc, groups[baseline])
            # the test's statistic: this strategy ranks higher where its runs' mean rank in the pooled runs is above
            # the pooled mean rank (the same as U, the pairs it wins, above half of them)
            ranks = rankdata(np.concatenate([acc, groups[baseline]]))
            higher[strategy] = ranks[:len(acc)].mean() > (len(ranks) + 1) / 2
        rows.append({"strategy": strategy, "seeds": len(acc), "mean_test_acc": mean,
                     "std_test_acc": float(np.std(acc, ddof=1)) if len(acc) > 1 else np.nan,
                     "ci_low": max(0.0, mean - half), "ci_high": min(ceiling, mean + half),
                     "mean_regret": float(df.attrs.get("best_test_acc", np.nan) - mean),
                     f"p_vs_{baseline}": p})
    table = pd.DataFrame(rows).sort_values("mean_test_acc", ascending=False).set_index("strategy")
    adjusted = holm(table[f"p_vs_{baseline}"])
    table[f"vs_{baseline}"] = [("better" if higher[s] else "worse") if a < alpha else "not different"
                               if s in higher else "" for s, a in zip(table.index, adjusted)]
    table[f"p_holm_vs_{baseline}"] = adjusted
    table.attrs.update(alpha=alpha, baseline=baseline, level=level)
    return table


TIE_POINTS = 0.01  # means of final accuracy closer than this (points) are tied: no order between them


def ranked(means: pd.Series, tie: float = TIE_POINTS) -> str:
    """Strategies in descending order of their means (a Series indexed by name), as "a > b = c > d": "=" joins
    two neighbours in that order whose means are less than ``tie`` points apart, which the means do not order."""
    order = means.sort_values(ascending=False, kind="stable")
    text = str(order.index[0]) if len(order) else ""
    for (_, before), (name, value) in zip(order.items(), list(order.items())[1:]):
        text += f" {'=' if before - value < tie else '>'} {name}"
    return text


def verdicts(table: pd.DataFrame, baseline: str = "random") -> str:
    """The final table's tests in words: which strategies are better than ``baseline``, which are worse and
    which are not shown to differ, at the level the table was made with, Holm-corrected for the number of
    strategies tested (a table from ``final_table``)."""
    alpha = table.attrs.get("alpha", 0.05)
    column = f"vs_{baseline}"
    if column not in table:
        raise NASInputError(f"the table has no column {column!r}: pass final_table(df, baseline={baseline!r})")
    if baseline not in table.index:
        raise NASInputError(f"{baseline!r} is not in the table; run it to test the others against it")
    parts = []
    for key in ("better", "worse", "not different"):
        names = table.index[table[column] == key].tolist()
        listed = ", ".join(f"{n} ({table.loc[n, 'mean_test_acc']:.2f} %, p = {table.loc[n, f'p_vs_{baseline}']:.2g}, "
                           f"Holm {table.loc[n, f'p_holm_vs_{baseline}']:.2g})" for n in names) or "none"
        parts.append(f"  {key:13s} {listed}")
    tested = table[f"p_vs_{baseline}"].notna()
    head = (f"Against {baseline} ({table.loc[baseline, 'mean_test_acc']:.2f} %), two-sided rank-sum tests at the "
            f"{100 * alpha:g} % level, Holm-corrected for the {count(int(tested.sum()), 'test')}:")
    lost = table.index[tested & (table[f"p_vs_{baseline}"] < alpha) & (table[column] == "not different")].tolist()
    if lost:
        parts.append(f"  below {100 * alpha:g} % before the correction only: {', '.join(lost)}")
    return "\n".join([head, *parts])


def baseline_rank(bench, arch=RESNET_CELL) -> dict:
    """Where a given cell (by default NAS-Bench-201's ResNet-like cell) ranks among all cells of ``bench``.

    ``rank`` counts the cells with a strictly higher test accuracy, plus one; ``percentile`` is the share of
    cells it beats; ``tied``, the other cells of exactly its test accuracy (a table's means are rounded, so ties
    happen), counted on neither side of ``percentile``; ``top_percent``, the share of cells at or above it, ties
    included (``100 - percentile``): ``rank / cells`` would leave the ties out. A hand-designed cell that already
    sits in the top few percent is a hard baseline.
    ``test_se`` is the standard error of its ``test_acc`` as a mean over its ``seeds`` trainings (NaN for a cell
    of fewer than two seeds): a strategy beats the cell only by more than that noise and its own
    (:func:`against_cell`).
    """
    from ..spaces import cell as nb201

    arch_str = arch if isinstance(arch, str) else nb201.to_str(tuple(arch))
    nb201.parse(arch_str)  # a clear error for a malformed string
    row, frame = bench.query(arch_str), bench.frame()
    test, valid = frame["test_acc"].to_numpy(), frame["valid_acc"].to_numpy()
    per_seed = bench.seed_accuracies(arch_str, "test_acc")
    se = float(per_seed.std(ddof=1) / np.sqrt(len(per_seed))) if len(per_seed) > 1 else float("nan")
    return {"arch": arch_str, "valid_acc": float(row["valid_acc"]), "test_acc": float(row["test_acc"]),
            "seeds": max(1, len(per_seed)), "test_se": se,
            "rank": int((test > row["test_acc"]).sum()) + 1,
            "rank_valid": int((valid > row["valid_acc"]).sum()) + 1, "cells": len(frame),
            "percentile": float(100 * (test < row["test_acc"]).mean()),
            "tied": int((test == row["test_acc"]).sum()) - 1,
            "top_percent": float(100 * (test >= row["test_acc"]).mean()),
            "best_test_acc": float(test.max()), "gap_to_best": float(test.max() - row["test_acc"])}


def welch_p(mean_a: float, std_a: float, n_a: int, mean_b: float, se_b: float, n_b: int) -> tuple:
    """(t, degrees of freedom, two-sided p) of Welch's t-test of two means: ``a`` given by its values' mean, std
    and count, ``b`` by its mean, the standard error of that mean and its count. A side without a spread (``b``'s
    se NaN: one training; or a std of 0) adds no variance, and the degrees of freedom are the other side's own
    (the one-sample test); with no variance on either side, or fewer than 2 values on ``a``'s, there is no test
    (NaN). Where both sides have a spread it is ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``."""
    from scipy.stats import t as student

    var_a = std_a ** 2 / n_a if n_a > 1 and np.isfinite(std_a) else np.nan
    var_b = se_b ** 2 if n_b > 1 and np.isfinite(se_b) else 0.0
    if np.isnan(var_a) or var_a + var_b <= 0:
        return np.nan, np.nan, np.nan
    dof = (var_a + var_b) ** 2 / ((var_a ** 2 / (n_a - 1) if var_a else 0.0)
                                  + (var_b ** 2 / (n_b - 1) if var_b else 0.0))
    stat = (mean_a - mean_b) / np.sqrt(var_a + var_b)
    return float(stat), float(dof), float(2 * student.sf(abs(stat), dof))


def against_cell(table: pd.DataFrame, cell: dict, alpha: float = 0.05) -> pd.DataFrame:
    """Does each strategy of a ``final_table`` find better cells on average than one given cell (``cell``: a dict
    from :func:`baseline_rank`, whose ``test_acc`` is itself a mean over ``seeds`` trainings with standard error
    ``test_se``)? Per strategy: the difference of the means, Welch's t-test of it (:func:`welch_p`: a strategy of
    3 seeds against a cell of little noise gets a t with about 2 degrees of freedom, which passes 2 about 9 % of
    the time where there is no difference, where a normal z passes it 2.3 % of the time), the p-values
    Holm-corrected over the strategies tested (:func:`holm`), and in ``vs_cell`` "better" or "worse" where the
    corrected p < ``alpha``, else "not different" ("" untested: a strategy of one seed)."""
    rows = []
    for name, row in table.iterrows():
        stat, dof, p = welch_p(row["mean_test_acc"], row["std_test_acc"], int(row["seeds"]), cell["test_acc"],
                               cell.get("test_se", np.nan), int(cell.get("seeds", 1)))
        rows.append({"strategy": name, "diff": row["mean_test_acc"] - cell["test_acc"], "t": stat, "dof": dof,
                     "p": p})
    out = pd.DataFrame(rows).set_index("strategy")
    out["p_holm"] = holm(out["p"])
    out["vs_cell"] = ["" if np.isnan(p) else ("better" if d > 0 else "worse") if p < alpha else "not different"
                      for d, p in zip(out["diff"], out["p_holm"])]
    out.attrs.update(alpha=alpha, tests=int(out["p"].notna().sum()))
    return out


def plot_final(df: pd.DataFrame, ax=None, zoom: float | None = 3.0):
    """The final test accuracy of every run: a box per strategy with each seed as a dot, and the space's
    ceiling (the highest report-half mean of the benchmark, ``df.attrs["best_test_acc"]``) as a dashed line.

    Where some strategies end far below the others (one-shot runs tens of points behind), one axis would squash
    the rest into a sliver: without ``ax``, a second panel then zooms on the strategies whose median lies within
    ``zoom`` points of the best median (None: one panel always). Returns the first panel."""
    import matplotlib.pyplot as plt

    final = df.sort_values("step").groupby(["strategy", "seed"], sort=False).tail(1)
    order = final.groupby("strategy")["best_test_acc"].mean().sort_values(ascending=False).index.tolist()
    values = {s: final.loc[final["strategy"] == s, "best_test_acc"].to_numpy() for s in order}
    medians = {s: float(np.median(v)) for s, v in values.items()}
    near = [s for s in order if medians[s] >= max(medians.values()) - zoom] if zoom is not None else order
    two = ax is None and 2 <= len(near) < len(order)
    if ax is None:
        _, axes = plt.subplots(1, 2 if two else 1, figsize=(12, 4.5) if two else (7, 4.5), squeeze=False,
                               gridspec_kw=dict(width_ratios=(len(order), len(near))) if two else None)
        ax = axes[0][0]
    ceiling = df.attrs.get("best_test_acc")
    ceiling = ceiling if ceiling is not None and np.isfinite(ceiling) else None

    def draw(panel, names):
        shown = [values[s] for s in names]
        panel.boxplot(shown, showfliers=False)
        panel.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")  # long names never run together
        jitter = np.random.default_rng(0)
        for i, v in enumerate(shown, start=1):
            panel.scatter(i + jitter.uniform(-0.15, 0.15, len(v)), v, s=10, alpha=0.6, color="tab:blue", zorder=3)
        if ceiling is not None:
            panel.axhline(ceiling, color="k", linestyle="--", linewidth=1, label=f"regrets' ceiling ({ceiling:.2f})")
            panel.legend(fontsize=8, loc="lower left")
        panel.set_ylabel("final test accuracy (%)")

    draw(ax, order)
    ax.set_title("Final test accuracy of each run (one dot per seed)", fontsize=10)
    if two:
        zoomed = axes[0][1]
        draw(zoomed, near)
        low = min(float(values[s].min()) for s in near)
        high = max([float(values[s].max()) for s in near] + ([ceiling] if ceiling is not None else []))
        pad = 0.05 * max(high - low, 0.1)
        zoomed.set_ylim(low - pad, high + pad)
        zoomed.set_title(f"zoom: the strategies whose median is within {zoom:g} points of the best", fontsize=10)
        ax.figure.tight_layout()
    return ax


# -- the one-shot families (GO and weight sharing) ---------------------------------------------------------
ONESHOT = {"darts": "DARTS (first order) on the NAS-Bench-201 supernet",
           "gdas": "GDAS (Gumbel sampling of one path)",
           "rsws": "random search with weight sharing (uniformly sampled paths, then scored)",
           "spos": "SPOS (uniformly sampled paths, then evolution scored with the shared weights)"}


def darts_config(method: str, data, epochs: int, batch_size: int):
    """The method's own recipe (``DartsConfig``: DARTS' code for DARTS, AutoDL's for GDAS) with the architecture
    learning rate scaled to this search's steps (``scaled_arch_lr``): the alphas travel as far as in the method's
    own search (DARTS' 50 epochs, GDAS' 240), so that a short search derives a cell from weights that have
    moved, not from the argmax of nearly uniform ones."""
    from ..oneshot.architect import DARTS_SEARCH_STEPS, GDAS_SEARCH_STEPS, DartsConfig, scaled_arch_lr, search_steps

    reference = GDAS_SEARCH_STEPS if method == "gdas" else DARTS_SEARCH_STEPS
    return DartsConfig(a_lr=scaled_arch_lr(search_steps(data, epochs, batch_size), reference_steps=reference))


def oneshot_runs(method: str, seeds, profile=None, bench=None, data=None, progress: bool = False,
                 epochs=None) -> list:
    """One History per seed of a one-shot ``method`` (``ONESHOT``) on the NAS-Bench-201 supernet.

    Sizes come from the profile's ``compare`` section (``oneshot_candidates``, its data set, and the supernet's
    epochs: ``<method>_epochs`` where the section sets it, else ``oneshot_epochs``; ``epochs`` overrides
    both; DARTS and GDAS with ``darts_config``'s architecture learning rate); the derived cells are looked up in
    ``bench`` for their test accuracy (the report only: a DARTS or GDAS run returns the cell derived at its end),
    and every run is charged the wall seconds it took here, supernet training included.
    """
    from ..data import load_dataset
    from ..oneshot.darts import darts_search
    from ..oneshot.supernet import weight_sharing_search
    from ..profiles import get_profile

    if method not in ONESHOT:
        raise NASInputError(f"unknown one-shot method {method!r}; choose from: {', '.join(ONESHOT)}")
    profile = profile or get_profile()
    s = profile.compare
    if bench is None:
        from ..bench import load_benchmark

        bench = load_benchmark()
    if data is None:
        data = load_dataset(s.oneshot_dataset, image_size=s.oneshot_image_size, device=profile.device)
    epochs = _epochs(s.as_dict(), method) if epochs is None else epochs
    runs = []
    for seed in _seeds(seeds):
        if method in ("rsws", "spos"):
            ws_method = "rs-ws" if method == "rsws" else method
            history = weight_sharing_search(method=ws_method, data=data, epochs=epochs, C=profile.cell.C,
                                            N=profile.cell.N, batch_size=s.oneshot_batch_size, seed=seed,
                                            n_candidates=s.oneshot_candidates, bench=bench, progress=progress,
                                            stem_stride=s.oneshot_stem_stride)
        else:
            history = darts_search(space="nb201", data=data, method=method, epochs=epochs,
                                   C=profile.cell.C, N=profile.cell.N, batch_size=s.oneshot_batch_size,
                                   seed=seed, progress=progress, bench=bench,
                                   config=darts_config(method, data, epochs, s.oneshot_batch_size))
        history.attrs["seed"] = seed
        runs.append(history)
    return runs


def _epochs(sizes: dict, method: str):
    """The supernet epochs of ``method``: its own ``<method>_epochs`` in the section, else ``oneshot_epochs``."""
    return sizes.get(f"{method}_epochs", sizes["oneshot_epochs"])


FAR_ABOVE_CHANCE = 0.5  # "far above chance": at least half of the way from chance to 100 %
NEAR_CHANCE = 0.1  # "near chance": less than a tenth of the way


def supernet_accuracy(history) -> dict:
    """What a one-shot run's supernet achieves on the validation split with its shared weights, at the end.

    DARTS: the supernet itself (every edge the softmax mixture of its ops); GDAS: the path it derives (the
    argmax op of each edge); RS-WS, SPOS, ENAS: the candidates it scored (their mean and best). BN statistics
    are recalibrated for what is measured in every case, as SPOS and DARTS' supernet evaluation do; RS-WS'
    reference code scores in eval mode with the running statistics of all paths, and ENAS' with training-mode
    batch norm on one minibatch (``oneshot/supernet.py`` says where the package departs from them)."""
    if "ws_acc" in history:
        return {"accuracy": float(history["ws_acc"].mean()), "best": float(history["ws_acc"].max()),
                "measured": f"mean over the {len(history)} cells it scored"}
    strategy = history.attrs.get("strategy", "darts")
    what = "the derived path (argmax op per edge)" if strategy == "gdas" else "the mixture of all ops"
    last = float(history["valid_acc"].iloc[-1])
    return {"accuracy": last, "best": last, "measured": what}


def oneshot_report(runs: dict, budget, num_classes: int = 10) -> pd.DataFrame:
    """One row per one-shot run (``runs``: method -> its Histories): the wall seconds it used against
    ``budget`` (a ``Budget`` in seconds, the look-up strategies' own), the supernet's validation accuracy
    (``supernet_accuracy``) against chance (100 / ``num_classes`` %), and two verdicts in words.

    ``trained`` is "far above chance" when the accuracy is at least ``FAR_ABOVE_CHANCE`` of the way from chance
    to 100 %, "near chance" below ``NEAR_CHANCE`` of the way (a ranking with such a supernet says little), else
    "above chance, not far". ``budget_use`` says whether the run stayed within the budget."""
    budget = Budget.parse(budget)
    if budget.seconds is None:
        raise NASInputError(f"oneshot_report compares wall seconds with a budget in seconds, got {budget}")
    chance = 100.0 / num_classes
    far, near = (chance + share * (100.0 - chance) for share in (FAR_ABOVE_CHANCE, NEAR_CHANCE))
    rows = []
    for method, histories in runs.items():
        for i, history in enumerate([runs[method]] if isinstance(histories, pd.DataFrame) else histories):
            acc = supernet_accuracy(history)
            wall = float(history["wall_s"].iloc[-1])
            rows.append({"method": method, "seed": int(history.attrs.get("seed", i)),
                         "epochs": _history_epochs(history), "wall_s": wall,
                         "budget_share": wall / budget.seconds,
                         "budget_use": "within the budget" if wall <= budget.seconds else "over the budget",
                         "supernet_acc": acc["accuracy"], "measured": acc["measured"], "chance": chance,
                         "trained": "far above chance" if acc["accuracy"] >= far else
                         "near chance" if acc["accuracy"] < near else "above chance, not far",
                         "arch": history["arch"].iloc[-1] if "epoch" in history else
                         history["arch"].iloc[int(history["ws_acc"].to_numpy().argmax())]})
    return pd.DataFrame(rows)


def _history_epochs(history) -> float:
    if "epoch" in history:
        return float(history["epoch"].iloc[-1])
    budget = str(history.attrs.get("budget", ""))
    return float(budget.split()[0]) if budget[:1].isdigit() else float("nan")


def parse_strategies(text) -> tuple:
    """``"random,regularized,darts"`` -> (discrete registry names, one-shot names), in the order given."""
    from ..strategies import AMBIGUOUS
    from ..strategies import STRATEGIES as REGISTRY

    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    for n in names:
        if n in AMBIGUOUS:  # "evolution": large-scale or regularized? (EA here is regularized evolution)
            raise NASInputError(AMBIGUOUS[n])
    allowed = sorted({*STRATEGIES, *ONESHOT})
    unknown = [n for n in names if n not in REGISTRY and n not in ONESHOT]
    if not names or unknown:
        raise NASInputError(f"unknown strategies {unknown or names}; choose from: {', '.join(allowed)}")
    discrete = list(dict.fromkeys(n for n in names if n not in ONESHOT))
    return discrete, list(dict.fromkeys(n for n in names if n in ONESHOT))


def run_cli_compare(args) -> dict:
    """``tutorial-nas compare``: run the comparison, write ``compare.csv``, ``final_table.csv``, ``anytime.png``
    and ``final_accuracy.png`` into ``args.out``, and return a JSON-able summary.

    Discrete strategies run ``args.seeds`` seeds under ``args.budget``; one-shot methods run
    ``min(seeds, profile.compare.oneshot_seeds)`` seeds, each charged its wall seconds.
    """
    import time
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..bench import load_benchmark
    from ..profiles import get_profile
    from ..spaces import make_space

    if args.space != "nb201":
        raise NASInputError(f"compare runs on the benchmark's space 'nb201', not {args.space!r}")
    discrete, oneshot = parse_strategies(args.strategies)
    profile = get_profile(args.profile)
    seeds = profile.compare.seeds if args.seeds is None else args.seeds
    if not isinstance(seeds, int) or seeds < 1:
        raise NASInputError(f"--seeds must be a whole number of at least 1, got {seeds!r}")
    progress, start = not args.json, time.perf_counter()
    bench = load_benchmark()
    budget = Budget.parse(args.budget) if args.budget is not None else profile_budget(profile, bench)
    if discrete:
        df = compare(make_space("nb201"), discrete, seeds, budget, bench=bench, progress=progress,
                     workers=getattr(args, "workers", 1))
    else:
        df = pd.DataFrame(columns=COLUMNS)
        df.attrs.update(space="nb201", budget=str(budget), best_test_acc=bench.best_test_acc)
    oneshot_seeds = min(seeds, profile.compare.oneshot_seeds)
    for method in oneshot:
        df = add_oneshot(df, method, oneshot_runs(method, oneshot_seeds, profile, bench, progress=progress))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = final_table(df)
    files = {"table": out / "compare.csv", "final_table": out / "final_table.csv",
             "anytime": out / "anytime.png", "final_accuracy": out / "final_accuracy.png"}
    df.to_csv(files["table"], index=False)
    table.to_csv(files["final_table"])
    for key, plot in (("anytime", plot_anytime), ("final_accuracy", plot_final)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot(df, ax=ax)
        fig.tight_layout()
        fig.savefig(files[key], dpi=120)
        plt.close(fig)
    results = {s: {"seeds": int(r["seeds"]), "mean_test_acc": r["mean_test_acc"], "std_test_acc": r["std_test_acc"],
                   "mean_regret": r["mean_regret"], "p_vs_random": r["p_vs_random"]} for s, r in table.iterrows()}
    return {"space": "nb201", "profile": profile.name, "strategies": discrete + oneshot, "seeds": seeds,
            "oneshot_seeds": oneshot_seeds if oneshot else 0, "budget": str(budget),
            "best_test_acc": bench.best_test_acc, "results": results,
            "files": {k: str(v) for k, v in files.items()}, "seconds": time.perf_counter() - start}
