"""Why supernets mislead, measured: DARTS collapse and its remedies, ranking quality, multi-model forgetting.

- Collapse (Zela et al., ICLR 2020; DARTS+; P-DARTS): as a DARTS search goes on, parameter-free skip
  connections take over the derived cell. ``collapse_table`` counts, epoch by epoch, the parameter-free edges
  of the derived cell and the entropy of the alphas; ``collapse_verdict`` says in words whether the count rose.
  ``darts_remedies`` reads one plain DARTS run and derives, epoch by
  epoch, what the two remedies would return: P-DARTS' cap on skip connections (``skip_limit``) and DARTS+'
  early stopping (``early_stop``). Neither remedy changes the supernet's training, only which cell is read off
  it, so both are exact re-readings of the same run (``darts_search(skip_limit=..., early_stop=...)`` gives the
  same cells; the tests check it).
- Ranking (Yu, Sciuto et al., ICLR 2020): ``ranking_over_training`` trains a uniform single-path supernet
  under one cosine schedule and at checkpoints measures Kendall's tau between the shared-weight accuracy of a
  fixed set of cells and their benchmark accuracy; ``learned_verdict`` says whether the supernet has learned
  (its shared-weight accuracy far above chance) before anything is read from its ranking.
- Multi-model forgetting (Benyahia et al., ICML 2019): ``forgetting`` trains the supernet on all paths (or
  starts from a trained one), then only on *other* paths, and tracks the shared-weight accuracy of a fixed set
  of paths as it drifts; ``forgetting_verdict`` says whether the kept paths lost accuracy or only gained less.
  ``forgetting_per_step`` measures it as Zhang et al. (CVPR 2020) define it, the accuracy a previously trained
  path loses when one step trains a new path, for uniform sampling and for NSAS (``oneshot.nsas``).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from scipy.stats import t as student_t

from ..errors import NASInputError
from ..evaluators import Result
from ..oneshot.darts import derive_nb201
from ..oneshot.nsas import step_forgetting
from ..oneshot.supernet import Supernet, minibatch_training, train_supernet
from ..ops import NB201_OPS
from ..spaces.cell import NB201Space, parse, to_str
from ..strategies.random_search import RandomSearch
from ..text import count
from .compare import confidence_interval


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
    """Left: skip connections in the derived cell per epoch; right: its benchmark test accuracy.

    Where a remedy changed nothing its line lies on DARTS', so DARTS is drawn as a wide pale band under the
    remedies' thin lines (both stay visible) and a panel whose lines coincide everywhere says so in its title."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    band = dict(lw=6, alpha=0.3, solid_capstyle="round")
    axes[0].plot(table.epoch, table.n_skip, "-", color="C0", label="DARTS", **band)
    axes[0].plot(table.epoch, table.capped_n_skip, "s--", color="C1", ms=3, label="skip limit (P-DARTS)")
    same = (table.n_skip == table.capped_n_skip).all()
    axes[0].set(xlabel="search epoch", ylabel="skip connections in the cell",
                title="Skip connections" + (" (the cap changed nothing)" if same else ""))
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].plot(table.epoch, table.darts_acc, "-", color="C0", label="DARTS", **band)
    axes[1].plot(table.epoch, table.capped_acc, "s--", color="C1", ms=3, label="skip limit (P-DARTS)")
    axes[1].plot(table.epoch, table.early_stop_acc, "^:", color="C2", ms=3, label="early stop (DARTS+)")
    axes[1].set(xlabel="search epoch", ylabel="benchmark test accuracy (%)", title="The derived cell")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


PARAM_FREE = ("none", "skip_connect", "avg_pool_3x3")  # the NB201 operations without weights


def collapse_table(history: pd.DataFrame) -> pd.DataFrame:
    """Per epoch of a DARTS or GDAS run on ``nb201``: the derived cell, how many of its 6 edges hold each
    parameter-free op (``n_skip``, ``n_none``, ``n_pool``) and all of them together (``param_free``), the
    softmax weight the alphas give the parameter-free ops, averaged over the edges (``free_weight``; 3/5 when
    uniform: it moves smoothly where the argmax of near-uniform alphas jumps), the mean per-edge entropy of the
    softmaxed alphas (``entropy``; uniform over 5 ops: log 5) and, where the run had a benchmark, the cell's
    ``test_acc``."""
    if "alphas" not in history or history.attrs.get("space") != "nb201":
        raise NASInputError("collapse_table needs the History of darts_search(space='nb201')")
    rows = []
    for _, row in history.iterrows():
        ops = parse(row["arch"])
        p = np.clip(np.asarray(row["alphas"]["cell"], dtype=float), 1e-300, None)
        rows.append({"epoch": int(row["epoch"]), "arch": row["arch"],
                     "n_skip": ops.count("skip_connect"), "n_none": ops.count("none"),
                     "n_pool": ops.count("avg_pool_3x3"), "param_free": sum(op in PARAM_FREE for op in ops),
                     "free_weight": float(p[:, [NB201_OPS.index(op) for op in PARAM_FREE]].sum(axis=1).mean()),
                     "entropy": float(-(p * np.log(p)).sum(axis=1).mean()),
                     "test_acc": float(row.get("test_acc", float("nan")))})
    return pd.DataFrame(rows)


def collapse_verdict(table: pd.DataFrame, reference_acc=None) -> str:
    """Whether the parameter-free edges of the derived cell rose over the search, in words, from the counts of
    ``collapse_table``: the mean count over the first third of the epochs against the last third. They rose if
    the mean grew by half an edge or more; a collapse is a rise that leaves at least 4 of the 6 edges of the
    last cell without parameters. Counting edges misses what ``none`` does: it cuts the paths through an edge,
    so a convolution whose every path to the output passes a ``none`` computes nothing. With the ``arch``
    column, the verdict also reads the last cell's live operations (on some input-to-output path without
    ``none``): where none of them has parameters, the cell is parameter-free in effect, a collapse whatever the
    trend of the counts. With ``free_weight``, the verdict also says whether the alphas' weight on the
    parameter-free operations rose (``weight_rose``), which the counts can miss when the first epochs' argmax
    already picks such operations from near-uniform alphas; and skip connections taking over half the cell or
    more (``skips_rose``) is the skip-connection collapse even where the total does not rise (pooling picked
    first, skip connections later). Dong & Yang's collapse is also a *degraded* cell (54 % against 94 % on
    CIFAR-10): given ``reference_acc`` (the benchmark's test accuracies) and the table's ``test_acc``, a takeover
    by skip connections whose last cell is better than the median of ``reference_acc`` is named as such, the
    collapse's form without its harm, and ``collapsed`` does not count it."""
    n = len(table)
    third = max(1, n // 3)
    early, late = table["param_free"].iloc[:third].mean(), table["param_free"].iloc[-third:].mean()
    skips_early, skips_late = table["n_skip"].iloc[:third].mean(), table["n_skip"].iloc[-third:].mean()
    span = (f"parameter-free edges of the derived cell (of 6): {early:.1f} on average over the first "
            f"{_epochs(third)} (the first third of the search), {late:.1f} over the last {_epochs(third)} (skip "
            f"connections: {skips_early:.1f} -> {skips_late:.1f}")
    if "free_weight" in table:
        w = table["free_weight"]
        span += (f"; the alphas' softmax weight on them, mean over edges: {w.iloc[:third].mean():.2f} -> "
                 f"{w.iloc[-third:].mean():.2f}, 0.60 when uniform")
    span += f"); the last cell has {int(table['param_free'].iloc[-1])}"
    live_free = None
    if "arch" in table:
        from .cell_shape import _live

        cell = parse(table["arch"].iloc[-1])
        live = sorted(_live(cell))
        live_free = sum(cell[e] in PARAM_FREE for e in live)
        span += f"; of its operations that reach the output, {live_free} of {len(live)} are without parameters"
        if not live:
            return span + ": the last cell computes nothing (no path reaches the output) -- a collapse in effect"
    if n < 2:
        return span + ": one epoch cannot show a trend"
    rose = counts_rose(table)  # the same mean over the first third against the last
    if rose and table["param_free"].iloc[-1] >= 4:
        return span + ": they rose, and most of the cell is now without parameters -- the collapse"
    drift = weight_rose(table)
    in_effect = live_free is not None and live_free == len(live)
    if in_effect:
        return span + (": every live operation of the last cell is without parameters (its convolutions, if any, "
                       "are cut off by none)" + (", and the alphas' weight on such operations rose over the search"
                                                 if drift else "") + " -- a collapse in effect")
    if skips_rose(table):
        took = (span + ": " + skip_reading(table)
                + ("" if drift or "free_weight" not in table else
                   " (read from the derived cells: the alphas' weight on parameter-free operations did not rise)"))
        if reference_acc is not None and "test_acc" in table:
            ref = np.asarray(reference_acc, dtype=float)
            share = float((ref < table["test_acc"].iloc[-1]).mean())
            if share >= 0.5:
                form = ("skip connections took over" if drift or "free_weight" not in table else
                        "the derived cell's argmax turned to skip connections while the alphas stayed near uniform")
                return took + (f"; the last cell is better than {share:.0%} of the table's cells -- {form}, the "
                               "collapse's form without its harm: not a degraded cell")
            took += f"; the last cell is better than only {share:.0%} of the table's cells"
        return took + " -- the skip-connection collapse"
    if rose:
        return span + ": they rose, but not to a cell mostly without parameters -- no full collapse"
    if drift:
        return span + (": the counts did not rise, but the alphas' weight on parameter-free operations did, a drift "
                       "the derived cell does not show yet -- no collapse in this run")
    return span + ": they did not rise -- no collapse in this run"


def _epochs(n: int) -> str:
    return "epoch" if n == 1 else f"{n} epochs"


def counts_rose(table: pd.DataFrame) -> bool:
    """Whether ``collapse_table``'s parameter-free edge counts rose over the search, as ``collapse_verdict``
    reads them: the mean over the last third of the epochs half an edge or more above the first third's. This is
    the trend Dong & Yang report; a last cell that is parameter-free in effect can come without it."""
    third = max(1, len(table) // 3)
    return len(table) > 1 and table["param_free"].iloc[-third:].mean() >= table["param_free"].iloc[:third].mean() + 0.5


def skips_rose(table: pd.DataFrame) -> bool:
    """Whether skip connections took over the derived cell, the collapse DARTS is known for (Dong & Yang's
    all-skip cell; the skip connections P-DARTS and DARTS+ count): their mean over the last third of the epochs at
    least one edge above the first epochs' (the first tenth, at least one) and at least half the cell (3 of 6)."""
    if len(table) < 2:
        return False
    start, third = max(1, len(table) // 10), max(1, len(table) // 3)
    late = table["n_skip"].iloc[-third:].mean()
    return late >= table["n_skip"].iloc[:start].mean() + 1 and late >= 3


HALF_CELL = 3  # skip connections on half of the 6 edges of a NAS-Bench-201 cell


def skip_course(table: pd.DataFrame) -> dict:
    """The course of ``collapse_table``'s skip connections over the search: the epoch at which they first held half
    the cell (``reached``; None where they never did) and whether that was within the first third of the epochs
    (``early``), in how many of the epochs from then on they held it (``held`` of ``after``), their ``peak`` with
    the first and last epoch at it (``peak_from``, ``peak_to``), their ``last`` count, their means over the first
    and the last third of the epochs (``first_third``, ``last_third``), the change between the two (``change``)
    and ``rose``: whether that change is at least one edge, the rise ``skips_rose`` asks for. Epochs are the
    table's ``epoch`` column where it has one, else counted from 1."""
    if not len(table):
        raise NASInputError("the collapse table has no epochs")
    skips = table["n_skip"].to_numpy(dtype=int)
    epochs = table["epoch"].to_numpy(dtype=int) if "epoch" in table else np.arange(1, len(skips) + 1)
    third = max(1, len(skips) // 3)
    at = np.flatnonzero(skips >= HALF_CELL)
    peak = int(skips.max())
    peaks = epochs[skips == peak]
    first, last = float(skips[:third].mean()), float(skips[-third:].mean())
    return {"reached": int(epochs[at[0]]) if len(at) else None, "early": bool(len(at) and at[0] < third),
            "held": int((skips[at[0]:] >= HALF_CELL).sum()) if len(at) else 0,
            "after": int(len(skips) - at[0]) if len(at) else 0, "peak": peak, "peak_from": int(peaks[0]),
            "peak_to": int(peaks[-1]), "last": int(skips[-1]), "first_third": first, "last_third": last,
            "change": last - first, "rose": last - first >= 1, "third": third}


def skip_reading(table: pd.DataFrame) -> str:
    """``skip_course`` in words: when the skip connections reached half the cell, whether they held it, their peak
    and last count, and their change from the first third of the search to the last against one edge, so that a
    takeover in the first epochs is not read as a drift over the search, nor the reverse."""
    c = skip_course(table)
    third = _epochs(c["third"])
    means = (f"their mean went from {c['first_third']:.1f} over the first {third} to {c['last_third']:.1f} over "
             f"the last {third}, a change of {c['change']:+.1f} edges, "
             + ("one edge or more" if c["rose"] else "less than the one edge that counts as a rise"))
    peak_at = (f"epoch {c['peak_from']}" if c["peak_from"] == c["peak_to"] else
               f"first at epoch {c['peak_from']}, last at epoch {c['peak_to']}")
    if c["reached"] is None:
        return (f"skip connections never held half the cell ({HALF_CELL} of 6 edges): at most {c['peak']} ({peak_at}), "
                f"{c['last']} in the last cell; {means}")
    course = (f"skip connections first held half the cell ({HALF_CELL} of 6 edges) or more at epoch {c['reached']}, "
              + ("within" if c["early"] else "after") + f" the first {third} of the search, and held it in "
              f"{c['held']} of the {c['after']} epochs from then on; they peaked at {c['peak']} ({peak_at}), "
              + (f"then came down to {c['last']} in the last cell" if c["last"] < c["peak"] else
                 "as many as the last cell holds") + f"; {means}")
    if c["early"]:
        return course + (": an early takeover that went on rising over the search" if c["rose"] else
                         ": an early takeover, not a drift over the search")
    return course + (": a rise over the search" if c["rose"] else
                     ": less than one edge of change between the thirds, no drift the counts can tell")


def weight_rose(table: pd.DataFrame, by: float = 0.05) -> bool:
    """Whether the alphas' softmax weight on the parameter-free operations (``free_weight``, mean over edges)
    rose by ``by`` or more from the first third of the epochs to the last: the drift behind a collapse, read from
    the alphas themselves rather than from the argmax of each edge (which near-uniform alphas make jump). False
    without that column."""
    if "free_weight" not in table or len(table) < 2:
        return False
    third = max(1, len(table) // 3)
    return table["free_weight"].iloc[-third:].mean() >= table["free_weight"].iloc[:third].mean() + by


def collapsed(verdict: str) -> bool:
    """Whether ``collapse_verdict``'s words say the run collapsed (by the counts or in effect)."""
    return verdict.endswith(("-- the collapse", "-- a collapse in effect", "-- the skip-connection collapse"))


def plot_collapse(table: pd.DataFrame, ax=None):
    """Stacked bars: the derived cell's edges holding none, skip_connect and avg_pool_3x3, epoch by epoch."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    bottom = np.zeros(len(table))
    for col, label in (("n_skip", "skip_connect"), ("n_none", "none"), ("n_pool", "avg_pool_3x3")):
        ax.bar(table["epoch"], table[col], bottom=bottom, label=label, width=0.8)
        bottom += table[col].to_numpy()
    ax.set(xlabel="search epoch", ylabel="edges of the derived cell (of 6)", ylim=(0, 6.5),
           title="Parameter-free edges of the DARTS cell")
    ax.legend(fontsize=8, loc="upper left")
    return ax


class _Paths:
    """A strategy that proposes uniformly from a fixed list of cells (only ``ask`` is used in training)."""

    def __init__(self, cells: list, seed: int = 0):
        self.cells, self.rng = [parse(c) if isinstance(c, str) else tuple(c) for c in cells], \
            np.random.default_rng(seed)

    def ask(self):
        return self.cells[int(self.rng.integers(len(self.cells)))]

    def tell(self, arch, result: Result) -> None:
        pass


def make_supernet(data, C: int = 8, N: int = 1, stem_stride: int = 2, seed: int = 0) -> Supernet:
    """A fresh single-path supernet for ``data`` (its weights drawn from ``seed``)."""
    torch.manual_seed(seed)
    return Supernet(data.num_classes, data.in_channels, C=C, N=N, stem_stride=stem_stride).to(data.device)



def _scores(supernet: Supernet, cells: list, data, batch_size: int) -> list:
    return [supernet.score(parse(c), data, batch_size=batch_size) for c in cells]


def ranking_over_training(data, bench, cells: list, epochs: int = 3, checkpoints=None, C: int = 8, N: int = 1,
                          stem_stride: int = 2, batch_size: int = 128, lr: float = 0.1, seed: int = 0,
                          supernet: Supernet | None = None) -> pd.DataFrame:
    """Train a uniform single-path supernet for ``epochs`` under one cosine schedule (SGD with Nesterov
    momentum, one uniformly random path per minibatch: SPOS' and RS-WS' first stage); after each epoch listed
    in ``checkpoints`` (default: every epoch), Kendall's tau between the shared-weight accuracy of ``cells``
    (BN recalibrated) and their benchmark validation accuracy. One row per checkpoint, with the scores.

    ``supernet``: train this one in place (``make_supernet``) to use it afterwards, e.g. for ``forgetting``."""
    if not isinstance(epochs, int) or epochs < 1:
        raise NASInputError(f"epochs must be a whole number >= 1, got {epochs!r}")
    if len(cells) < 3:
        raise NASInputError(f"a ranking needs at least 3 cells, got {len(cells)}")
    checkpoints = sorted(set(range(1, epochs + 1) if checkpoints is None else checkpoints))
    if not checkpoints or not all(isinstance(c, int) and 1 <= c <= epochs for c in checkpoints):
        raise NASInputError(f"checkpoints are epochs from 1 to {epochs}, got {checkpoints!r}")
    truth = [bench.query(c)["valid_acc"] for c in cells]
    supernet = make_supernet(data, C, N, stem_stride, seed) if supernet is None else supernet
    per_epoch = max(1, math.ceil(len(data.train_y) / batch_size))
    space, rng, rows = NB201Space(), np.random.default_rng(seed), []
    losses = []  # the training loss of every step since the last checkpoint

    def record(epoch):
        scores = _scores(supernet, cells, data, batch_size)
        rows.append({"epoch": epoch, "kendall_tau": float(kendalltau(scores, truth).statistic),
                     "train_loss": float(np.mean(losses)) if losses else float("nan"),
                     "mean_ws_acc": float(np.mean(scores)), "ws_acc": scores})
        losses.clear()
        supernet.train()

    def loss_of(xb, yb, step, total):
        if step and step % per_epoch == 0 and step // per_epoch in checkpoints:
            record(step // per_epoch)  # the end of a checkpoint epoch, before the next step
        loss = F.cross_entropy(supernet(xb, space.sample(rng)), yb)
        losses.append(loss.item())
        return loss

    opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    minibatch_training(supernet, data, epochs, batch_size, opt, seed, loss_of)
    if epochs in checkpoints:
        record(epochs)
    out = pd.DataFrame(rows)
    out.attrs["bench_valid_acc"] = truth
    return out


def tau_interval(scores, truth, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple:
    """A percentile bootstrap interval of Kendall's tau between ``scores`` and ``truth``, one value of each per
    cell: the cells drawn again with replacement ``n_boot`` times (a draw whose tau is undefined, every cell drawn
    with one value, is left out). It says how much the tau depends on which cells were sampled; the noise of the
    ground truth itself (a table entry is the mean of a few trainings) is not in it."""
    x, y = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise NASInputError(f"scores and truth are one value per cell, at least 3 cells; got shapes {x.shape} and "
                            f"{y.shape}")
    if not isinstance(n_boot, int) or n_boot < 1 or not 0 < level < 1:
        raise NASInputError(f"n_boot is a whole number >= 1 and level a share in (0, 1); got {n_boot!r}, {level!r}")
    from .shortcuts import _interval, resampled_taus

    return _interval(resampled_taus({"scores": x}, y, n_boot, seed)["scores"], level)


def learned_verdict(accuracy: float, num_classes: int = 10, what: str = "mean shared-weight accuracy") -> str:
    """Whether an accuracy (%) is far above chance, in words: far above means more than halfway from chance
    (100 / classes) to 100 %."""
    chance = 100.0 / num_classes
    halfway = chance + (100.0 - chance) / 2
    if accuracy >= halfway:
        verdict = f"far above chance (more than halfway from it to 100 %, {halfway:.0f} %): the supernet has learned"
    elif accuracy >= chance + 10:
        verdict = (f"above chance but less than halfway to 100 % ({halfway:.0f} %): the supernet is still "
                   f"learning, read its ranking with care")
    else:
        verdict = "near chance: the supernet has not learned, and a ranking by it is noise"
    return f"{what} {accuracy:.1f} % against {chance:.0f} % chance: {verdict}"


def forgetting(data, kept: list, others: list, warm_epochs: int = 1, epochs: int = 2, C: int = 8, N: int = 1,
               stem_stride: int = 2, batch_size: int = 128, seed: int = 0, lr: float = 0.02,
               supernet: Supernet | None = None) -> pd.DataFrame:
    """Multi-model forgetting: train the supernet on uniform paths for ``warm_epochs`` (or start from a copy
    of the trained ``supernet``, which is left as it is), then for ``epochs`` epochs on ``others`` only; after
    the warm-up and after each later epoch, the shared-weight accuracy of every cell of ``kept`` (which is no
    longer trained) and, for reference, of the trained ``others``. One row per (epoch, cell).

    The training on ``others`` is one run, as Benyahia et al. go on to train a second model: one optimiser
    (SGD with Nesterov momentum, the package's supernet recipe) and one cosine schedule over all ``epochs``
    from ``lr``, the accuracies read between two steps at each epoch's end. A schedule restarted every epoch
    would jolt every path at each restart, and that jolt would pass for the swing forgetting is read against;
    so would one restart at the recipe's 0.1 from a supernet whose own cosine ended near 0 (chapter 4's cpu
    run: every path, trained or kept, lost about 5 points in the first epoch). At the default 0.02 the trained
    paths gained at every epoch there (75.6 % to 77.4 % in 4 epochs) without that jolt."""
    if not kept or not others:
        raise NASInputError("forgetting needs a non-empty list of kept cells and of other cells")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise NASInputError(f"epochs must be a whole number >= 1, got {epochs!r}")
    if supernet is None:
        supernet = make_supernet(data, C, N, stem_stride, seed)
        train_supernet(supernet, data, RandomSearch(NB201Space(), seed=seed), epochs=warm_epochs,
                       batch_size=batch_size, seed=seed, progress=False)
    else:
        supernet = copy.deepcopy(supernet)
    rows, strategy = [], _Paths(others, seed)
    per_epoch = max(1, math.ceil(len(data.train_y) / batch_size))

    def record(epoch):
        for group, cells in (("kept (not trained)", kept), ("others (trained)", others)):
            for cell, acc in zip(cells, _scores(supernet, cells, data, batch_size)):
                rows.append({"epoch": epoch, "group": group, "arch": cell, "ws_acc": acc})
        supernet.train()

    def loss_of(xb, yb, step, total):
        if step and step % per_epoch == 0:
            record(step // per_epoch)  # the end of an epoch, before the next step
        return F.cross_entropy(supernet(xb, strategy.ask()), yb)

    record(0)
    opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    minibatch_training(supernet, data, epochs, batch_size, opt, seed + 1, loss_of)
    record(epochs)
    return pd.DataFrame(rows)


def _welch_interval(a: np.ndarray, b: np.ndarray) -> tuple:
    """Welch's 95 % interval of mean(a) - mean(b); a side of one value adds no variance (it has none to
    measure), and with no variance on either side the interval is the difference itself."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = float(a.mean() - b.mean())
    terms = [(x.var(ddof=1) / len(x), len(x) - 1) for x in (a, b) if len(x) > 1]
    var = sum(v for v, _ in terms)
    if var == 0:
        return d, d
    df = var ** 2 / sum(v ** 2 / k for v, k in terms if v > 0)
    half = float(student_t.ppf(0.975, df) * math.sqrt(var))
    return d - half, d + half


def forgetting_verdict(table: pd.DataFrame) -> str:
    """What ``forgetting``'s table shows, in words: the change of the kept paths' mean shared-weight accuracy
    from the start to the last epoch, with a 95 % t interval over the kept cells (each cell's own change, paired),
    beside the trained paths' change and the range the kept mean took in between. The trained paths' mean also
    moves from one epoch to the next (the shared weights, batch norm and learning rate move every path at once);
    its largest such move before the last epoch is the swing a change of the kept paths must exceed. Forgetting
    is a loss larger than that swing (and than a point) whose interval lies below zero; a loss with its interval
    below zero but within the swing is said to be so. Where the trained paths' change exceeds the kept paths' by
    more than a point, the verdict adds that gap with Welch's 95 % interval over the cells of the two groups and
    says the kept paths fell behind only where it lies above 0; it never calls a change of the trained paths a
    gain unless it is one. The intervals are t intervals, not percentile bootstraps: over the 8 cells a group has
    at the course's sizes, a percentile bootstrap of the mean is about a fifth narrower than the t interval
    (its standard error lacks the factor sqrt(n / (n - 1)), its quantile is 1.96 where t's is 2.36). The cells of
    one supernet share its weights, so their changes are not independent draws: the intervals describe this
    run's cells."""
    mean = table.groupby(["group", "epoch"])["ws_acc"].mean().unstack()
    kept, trained = mean.loc["kept (not trained)"], mean.loc["others (trained)"]
    d_kept, d_trained = kept.iloc[-1] - kept.iloc[0], trained.iloc[-1] - trained.iloc[0]
    per_cell = table[table["group"] == "kept (not trained)"].pivot_table(index="arch", columns="epoch",
                                                                         values="ws_acc")
    change = (per_cell.iloc[:, -1] - per_cell.iloc[:, 0]).to_numpy()
    mean_change, half = confidence_interval(change)  # one cell has no interval: its change itself
    low, high = mean_change - np.nan_to_num(half), mean_change + np.nan_to_num(half)
    # the swing from the epochs before the last (with two epochs there is none to read: a point)
    moved = float(trained.iloc[:-1].diff().abs().max()) if len(trained) > 2 else float("nan")
    swing = max(1.0, moved) if moved == moved else 1.0
    between = kept.iloc[1:-1]  # the epochs strictly between the start and the last
    text = (f"after {count(int(kept.index[-1]), 'epoch')} on the other paths only, the kept paths went from "
            f"{kept.iloc[0]:.1f} % to {kept.iloc[-1]:.1f} % ({d_kept:+.1f} points, 95 % interval over the "
            f"{len(change)} kept cells [{low:+.1f}, {high:+.1f}]"
            + (f"; in between their mean ranged over {between.min():.1f}-{between.max():.1f} %" if len(between) else "")
            + f"), the trained ones {d_trained:+.1f} points ("
            + (f"before the last epoch the trained paths' mean moved by up to {moved:.1f} points from one epoch to "
               f"the next; " if moved == moved else "")
            + f"a change is read against a swing of {swing:.1f} points, a point at least): ")
    gap = d_trained - d_kept
    behind = ""
    if gap > 1:  # the trained cells' changes against the kept ones', each group over its own cells
        trained_cells = table[table["group"] == "others (trained)"].pivot_table(index="arch", columns="epoch",
                                                                               values="ws_acc")
        t_change = (trained_cells.iloc[:, -1] - trained_cells.iloc[:, 0]).to_numpy()
        g_low, g_high = _welch_interval(t_change, change)
        behind = (f"; the trained paths' change ({d_trained:+.2f}) exceeds theirs ({d_kept:+.2f}) by {gap:.2f} "
                  f"points, Welch's 95 % interval [{g_low:+.2f}, {g_high:+.2f}] over the cells of the two groups: "
                  + ("the kept paths fell behind what was trained last" if g_low > 0 else
                     "whether the kept paths fell behind what was trained last is not established (an interval "
                     "that reaches 0)"))
    if high < 0:
        if d_kept < -swing:
            return text + "the kept paths lost more accuracy than that swing -- forgetting" + behind
        return text + (f"the kept paths lost accuracy (an interval below zero), but no more than that swing "
                       f"({d_kept:+.2f} against {swing:.2f}): a loss within what training moves every path, not "
                       "clearly forgetting" + behind)
    if low > 0 and d_kept > swing:
        if d_trained > d_kept + 1:
            return text + ("the kept paths gained too, through the shared weights, only less than the trained "
                           "ones: no forgetting here, but their standing shifts towards what was trained last")
        return text + "the kept paths gained as much as the trained ones: no forgetting here"
    why = (f"their interval [{low:+.1f}, {high:+.1f}] reaches 0" if low <= 0 else
           f"a gain of {d_kept:.2f} points, within that swing")
    return text + f"the kept paths held their accuracy ({why})" + behind


def forgetting_per_step(data, methods=("uniform", "random-subset", "nsas"), n_boot: int = 2000,
                        **options) -> pd.DataFrame:
    """Zhang et al.'s forgetting (``oneshot.nsas.step_forgetting``) for each of ``methods`` from the same
    warmed-up supernet (or a copy of ``supernet=``, a trained one), paths and minibatches: one row per method
    with the mean forgetting (accuracy points lost by the previous path in one step) and its 95 % bootstrap
    interval over the steps, the share of steps that forgot (``forgetting`` > 0) and the previous paths' mean
    accuracy before the step; ``attrs["steps"]`` holds every step. ``attrs["paired"]`` holds, for NSAS against
    each other method, the mean per-step difference in forgetting (NSAS minus the other) and its 95 % bootstrap
    interval, the steps paired (the methods take the same path on the same minibatch at each step, and the
    previous path is the same), which is what tells two methods apart; ``"random-subset"`` is NSAS' loss and
    passes with a subset drawn at random, the control that says whether NSAS' gain is its diversity's."""
    steps = pd.concat([step_forgetting(data, method, **options) for method in methods], ignore_index=True)
    out = steps.groupby("method", sort=False).agg(mean_forgetting=("forgetting", "mean"),
                                                  share_forgot=("forgetting", lambda f: float((f > 0).mean())),
                                                  mean_before=("before", "mean")).reset_index()
    rng = np.random.default_rng(0)
    for i, method in enumerate(out["method"]):
        f = steps.loc[steps["method"] == method, "forgetting"].to_numpy()
        boot = f[rng.integers(0, len(f), (n_boot, len(f)))].mean(axis=1)
        out.loc[i, ["low", "high"]] = np.percentile(boot, [2.5, 97.5])
    paired = {}
    if "nsas" in set(methods):
        by = steps.pivot_table(index=["step", "arch"], columns="method", values="forgetting")
        for other in (m for m in methods if m != "nsas"):
            d = (by["nsas"] - by[other]).dropna().to_numpy()
            boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
            paired[other] = (float(d.mean()), *map(float, np.percentile(boot, [2.5, 97.5])))
    out.attrs["steps"], out.attrs["paired"] = steps, paired
    return out


_METHOD_NAMES = {"uniform": "uniform sampling", "random-subset": "the random subset", "nsas": "NSAS"}


def forgetting_per_step_verdict(table: pd.DataFrame) -> str:
    """``forgetting_per_step``'s table in words: each method's forgetting by its interval, then NSAS against
    uniform sampling and against the random subset of the same size, by the paired interval of the difference
    (``attrs["paired"]``; without it, by whether the two methods' own intervals overlap). Where uniform sampling
    shows no forgetting (its interval reaches or lies below 0) and NSAS cannot be told apart from it, the
    comparison is said to neither support nor contradict Zhang et al.'s finding: there is no forgetting to reduce."""
    rows = table.set_index("method")
    text = "; ".join(f"{m}: {r.mean_forgetting:+.2f} points a step [{r.low:+.2f}, {r.high:+.2f}], "
                     f"{r.share_forgot:.0%} of the steps forgot" for m, r in rows.iterrows())
    text += (" (each interval resamples the steps of this one run, which follow each other on the same weights: "
             "it describes this run, not the spread between runs)")
    if not {"uniform", "nsas"} <= set(rows.index):
        return text
    for method, r in rows.iterrows():
        name = _METHOD_NAMES.get(method, method)
        if r.low > 0:
            text += f". {name[0].upper() + name[1:]} forgets (its interval lies above 0)"
        elif r.high < 0:
            text += (f". Under {name} a step raises the previous path's accuracy on average (its interval lies "
                     "below 0): no net forgetting")
        else:
            text += f". {name[0].upper() + name[1:]} shows no forgetting that its interval can tell from 0"
    paired = table.attrs.get("paired") or {}
    versus = {}  # method -> (low, high) of NSAS minus it
    for other in (m for m in ("uniform", "random-subset") if m in rows.index):
        name = _METHOD_NAMES[other]
        if other in paired:
            mean, low, high = paired[other]
            how = f"per step, NSAS minus {name}: {mean:+.2f} points [{low:+.2f}, {high:+.2f}], the steps paired"
        else:
            n, o = rows.loc["nsas"], rows.loc[other]
            low, high = n.low - o.high, n.high - o.low  # the intervals overlap exactly when this one holds 0
            how = "by the two intervals"
        versus[other] = low, high
        if high < 0:
            text += f"; NSAS forgets less than {name} ({how})"
        elif low > 0:
            text += f"; NSAS forgets more than {name} ({how})" + (
                ", against Zhang et al.'s finding" if other == "uniform" else "")
        else:
            text += f"; NSAS and {name} cannot be told apart ({how})"
    less = {m: high < 0 for m, (_, high) in versus.items()}
    if less.get("uniform") and "random-subset" in less:
        text += (": Zhang et al.'s finding, and the diversity of the subset is what it owes it to (a random subset "
                 "of the same size forgets more)" if less["random-subset"] else
                 ": Zhang et al.'s finding, but a random subset of the same size is not shown to do worse, so this "
                 "run cannot credit the diversity rather than the extra paths trained a step")
    elif less.get("uniform"):
        text += ": Zhang et al.'s finding, reproduced"
    else:
        text += ". Zhang et al.'s finding, that NSAS forgets less than uniform sampling, is not shown by this run"
        uniform = rows.loc["uniform"]
        low, high = versus["uniform"]
        if uniform.low <= 0 and low <= 0 <= high:  # nothing to reduce, and no difference either way
            text += ("; uniform sampling itself " + (
                "shows a net gain here, not forgetting (its interval lies below 0), so there is no forgetting"
                if uniform.high < 0 else
                "shows no forgetting its interval can tell from 0, so there is no established forgetting")
                + " here for NSAS to reduce, and the comparison, inconclusive, neither supports nor contradicts "
                "the finding")
    return text


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
