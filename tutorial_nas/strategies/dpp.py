"""DPP-Net: device-aware progressive search for Pareto-optimal architectures (Dong, Cheng, Juan, Wei & Sun,
ECCV 2018).

PNAS (Liu et al., ECCV 2018) grows cells one block at a time and lets a surrogate choose which of the grown
cells to train; it keeps the K with the highest predicted accuracy. DPP-Net keeps the same loop but chooses by
Pareto optimality (Section 3.3): the kept cells are those on the front of predicted accuracy against a
device-related objective, here the latency measured on this machine, and a device-agnostic one, the number of
parameters (the paper's model size); the paper names memory usage as a second device-related objective, which is
not measured here. Each step:

1. expand every cell kept at the last step by one more block (Section 3.2, "progressive");
2. predict each child's accuracy with the surrogate trained on every cell evaluated so far;
3. keep ``keep`` children by Pareto optimality of (predicted accuracy up, latency down, parameters down);
4. train and evaluate them (here: read the benchmark's validation accuracy) and refit the surrogate.

The answer is the Pareto front of the *evaluated* cells under (accuracy, latency, parameters); the paper goes on
to train the front's networks in full and to name one for each device, which a table look-up has no need of.

Adapted to NAS-Bench-201. PNAS' block adds one node with its inputs; here a block adds one node of the cell
with its edges: step 1 decides the edge input -> output, step 2 node 1 (edges 0->1 and 1->3), step 3 node 2
(0->2, 1->2, 2->3); see ``GROW_ORDER``. Undecided edges are ``none``, so every grown cell is a complete NB201 cell
the benchmark answers for (a cell of growing complexity, as PNAS' cells of b blocks). In PNAS and DPP-Net every
block added feeds the cell's output, so each step of growth changes the network: ``grow`` lists only the children
whose new node is live, those that compute a function other than their parent's (another isomorphism class under
``RULE``; ``none`` on the new node's output edge, or on all its inputs, would copy the parent), and of children
that compute one function only the first, in the order of ``NB201_OPS``. Besides them a cell may stop growing:
the parent itself is ``grow``'s first child, competes with its measured accuracy and costs no new evaluation. A
step also drops a child that computes the function of a cell evaluated before or of a child listed before it
(parents in the order kept), so a run never looks up two cells of one class (nor reads one row of the table
twice), and a seed gives the same run. Both rules narrow what three steps reach: a node that feeds the output only
through a later node (node 1 with 1->3 ``none`` and 1->2 not) is never grown, and a child dropped for computing
another's function takes its own children with it (node 1 a convolution and 1->3 a skip computes what node 1 a
skip and 1->3 that convolution computes, until node 2 reads node 1). At most 4,007 of the 5,390 classes of
``RULE`` can be reached (4,784 by live growth alone). Step 1 evaluates all 5 cells of the first size (the 4
one-edge cells and the empty one), as PNAS and DPP-Net train every cell of the first size. How K places are
filled from the fronts is this package's rule (``pareto_select``): whole non-dominated layers are taken in order
(the front, then the front of what is left, ...); from the layer that does not fit whole, its cells of highest
score (the predicted accuracy, or the measured one of a parent that stops growing) fill the places left.

The paper's surrogate is a recurrent regressor over the block sequence; here it is the package's
``PerformancePredictor`` (an ensemble of small MLPs) on the path encoding (``encode``; an undecided edge reads
``none``) -- the same role, a smaller model, refitted on every evaluated cell at each step. Parameters come
from the benchmark's table (a property of the cell that needs no training); only the accuracy read counts as
an evaluation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from scipy.stats import hypergeom

from ..analysis.hardware import cell_model, input_shape, measure_latency, pareto_front
from ..errors import NASInputError
from ..ops import NB201_OPS
from ..predictors import PerformancePredictor
from ..spaces import cell as nb201

# the edges (positions in the cell tuple) each step decides: 0->3; node 1 (0->1, 1->3); node 2 (0->2, 1->2, 2->3)
GROW_ORDER = ((3,), (0, 4), (1, 2, 5))
EMPTY = ("none",) * len(nb201.EDGES)
# isomorphism: a node that sums only zero terms is zero (``spaces.cell``), which makes this rule coarser than
# AutoDL's: cells of one class compute one function and share one row of a table built under either rule
RULE = "drop_zero"


def _function(cell: tuple) -> str:
    """What ``cell`` computes: its isomorphism class under ``RULE``."""
    return nb201.unique_str(cell, RULE)


def measured_latency(bench, device=None, warmup: int = 3, repeats: int = 10):
    """A latency function: the median forward time (ms) of a cell's network at the benchmark's size on
    ``device``, measured once per cell and cached (DPP-Net's device-aware objective)."""
    cache: dict = {}
    shape = input_shape(bench.recipe)

    def latency(arch: str) -> float:
        if arch not in cache:
            torch.manual_seed(0)
            cache[arch] = measure_latency(cell_model(arch, bench.recipe), shape, device or "cpu", warmup, repeats)
        return cache[arch]

    return latency


def grow(cell: tuple, step: int) -> list:
    """The children of ``cell`` at ``step`` (1-based): ``cell`` itself first (a cell may stop growing), then the
    edges ``GROW_ORDER[step - 1]`` set to each choice of ops whose new node is live, i.e. whose child computes a
    function other than ``cell``'s (another class of ``unique_str`` under ``RULE``), one child per function: the
    first in the order of ``NB201_OPS``. At most 5, 25 or 125 children, ``cell`` included."""
    if not isinstance(step, int) or not 1 <= step <= len(GROW_ORDER):
        raise NASInputError(f"step is which block of the cell to grow (1: the output edge, 2: node 1, 3: node 2), "
                            f"got {step!r}")
    parent = tuple(cell)
    children, seen = [parent], {_function(parent)}
    for ops in itertools.product(NB201_OPS, repeat=len(GROW_ORDER[step - 1])):
        child = list(parent)
        for e, op in zip(GROW_ORDER[step - 1], ops):
            child[e] = op
        key = _function(tuple(child))
        if key not in seen:  # a dead new node (the parent's function) or a function already listed
            seen.add(key)
            children.append(tuple(child))
    return children


def pareto_layers(points, maximize=(True, False, False)):
    """The non-dominated layers of ``points``, in order: the front, then the front of what is left, ... (each an
    array of row indices). A generator, so a caller that needs only the first few computes only those."""
    points = np.asarray(points, dtype=float)
    left = np.arange(len(points))
    while len(left):
        layer = left[pareto_front(points[left], maximize)]
        yield layer
        left = np.setdiff1d(left, layer)


def pareto_select(points, k: int, maximize=(True, False, False)) -> np.ndarray:
    """Indices of ``k`` rows of ``points`` (column 0: predicted accuracy) taken front by front; from the front
    that does not fit whole, its rows of highest column 0 fill the places left."""
    points = np.asarray(points, dtype=float)
    chosen = []
    for layer in pareto_layers(points, maximize):
        if len(chosen) >= k:
            break
        room = k - len(chosen)
        if len(layer) > room:
            layer = layer[np.argsort(-points[layer, 0], kind="stable")[:room]]
        chosen.extend(layer.tolist())
    return np.asarray(sorted(chosen), dtype=int)


def candidates(kept: list, step: int, evaluated) -> list:
    """One step's candidates as (child, parent) pairs: every cell of ``kept`` grown at ``step`` (``grow``: the
    parent itself, then its children of a new function), less a child that computes the function of a cell of
    ``evaluated`` or of a child listed before it (under ``RULE``; parents in the order of ``kept``)."""
    seen = {_function(c) for c in evaluated}
    children = []
    for p in kept:
        for c in grow(p, step):
            key = _function(c)
            if c == p or key not in seen:  # the parent stops growing, or a function neither evaluated nor listed
                seen.add(key)
                children.append((c, p))
    return children


def score_children(bench, kept: list, step: int, accuracy: dict, surrogate, latency_fn,
                   encode=nb201.encode_path) -> tuple:
    """One step's candidates (``candidates``, against every cell evaluated so far), so that no candidate is a
    second cell of an evaluated or listed class; the surrogate refitted on every cell evaluated so far
    (``accuracy``: cell -> validation accuracy); and each child's objectives for ``pareto_select``: (its score,
    latency, parameters), the score being the surrogate's prediction or, for a parent that stops growing, its
    measured accuracy. Returns ``(children, predicted, objectives)``, ``children`` as (child, parent) pairs."""
    children = candidates(kept, step, accuracy)
    known = list(accuracy)
    surrogate.fit(np.stack([encode(c) for c in known]), [accuracy[c] for c in known])
    cells = [c for c, _ in children]
    predicted = surrogate.predict(np.stack([encode(c) for c in cells]))
    score = [accuracy.get(c, p) for c, p in zip(cells, predicted)]
    objectives = [(s, latency_fn(nb201.to_str(c)), bench.query(c)["params"]) for c, s in zip(cells, score)]
    return children, predicted, objectives


def dpp_search(bench, latency_fn=None, steps: int = len(GROW_ORDER), keep: int = 8, seed: int = 0,
               encode=nb201.encode_path, predictor_options: dict | None = None) -> pd.DataFrame:
    """DPP-Net on NAS-Bench-201 (module doc). ``latency_fn(arch_str) -> ms``; None measures each cell on the
    CPU (``measured_latency``). ``steps``: how many blocks to grow (1..3); ``keep``: cells kept per step.

    Returns one row per evaluated cell: ``arch``, ``step``, ``parent`` (the kept cell it grew from; None at
    step 1), ``predicted`` (the surrogate's accuracy when it was chosen; nan at step 1), ``accuracy``
    (benchmark validation accuracy), ``test_acc``, ``latency_ms``, ``params`` and ``pareto`` (on the final
    front of accuracy up, latency and parameters down). ``len(frame)`` is the number of look-ups; no two of its
    cells compute one function (``score_children``), so they read as many rows of the table.
    """
    if not isinstance(steps, int) or not 1 <= steps <= len(GROW_ORDER):
        raise NASInputError(f"steps is how many blocks of the cell to grow (the output edge, node 1, node 2): 1 to "
                            f"{len(GROW_ORDER)}, got {steps!r}")
    if not isinstance(keep, int) or keep < 1:
        raise NASInputError(f"keep is how many cells to evaluate per step, a whole number >= 1, got {keep!r}")
    latency_fn = latency_fn or measured_latency(bench)
    surrogate = PerformancePredictor(seed=seed, **(predictor_options or {}))
    rows, accuracy = [], {}  # accuracy: every evaluated cell -> its benchmark validation accuracy

    def evaluate(cell, step, parent, predicted):
        arch = nb201.to_str(cell)
        r = bench.query(arch)
        accuracy[cell] = r["valid_acc"]
        rows.append({"arch": arch, "step": step, "parent": parent, "predicted": predicted,
                     "accuracy": r["valid_acc"], "test_acc": r["test_acc"],
                     "latency_ms": float(latency_fn(arch)), "params": r["params"]})

    kept = grow(EMPTY, 1)  # every one-edge cell (and the empty one) is evaluated, no prediction yet
    for cell in kept:
        evaluate(cell, 1, None, float("nan"))
    history = [[nb201.to_str(c) for c in kept]]
    for step in range(2, steps + 1):
        children, predicted, objectives = score_children(bench, kept, step, accuracy, surrogate, latency_fn, encode)
        cells = [c for c, _ in children]
        chosen = pareto_select(objectives, keep)
        kept = [cells[i] for i in chosen]
        for i in chosen:
            if cells[i] not in accuracy:
                evaluate(cells[i], step, nb201.to_str(children[i][1]), float(predicted[i]))
        history.append([nb201.to_str(c) for c in kept])
    frame = pd.DataFrame(rows)
    frame["pareto"] = False
    front = pareto_front(frame[["accuracy", "latency_ms", "params"]].to_numpy(), (True, False, False))
    frame.loc[frame.index[front], "pareto"] = True
    frame.attrs["kept"] = history  # the cells kept at each step, the parents of the next
    return frame


def random_at_equal_lookups(bench, frame: pd.DataFrame, seeds: int = 20) -> dict:
    """DPP-Net's run ``frame`` (``dpp_search``) against random search given the same number of benchmark
    look-ups (``len(frame)`` distinct cells drawn uniformly from every cell the table answers for), one random
    search per seed ``0 .. seeds - 1``. Both are scored by the best validation accuracy they read and by its
    regret, the table's best validation accuracy minus it.

    Returns ``lookups``, ``table_best``, ``dpp_best`` (the best cell on DPP-Net's front, which is the best it
    evaluated), ``dpp_regret``, ``dpp_percentile`` (the share of the space's cells below ``dpp_best``),
    ``random`` (a frame, one row per seed: ``seed``, ``best``, ``regret``), ``random_mean_regret``,
    ``random_se`` (its standard error over the seeds; nan for one seed), ``random_beats`` (the share of seeds
    whose best exceeds ``dpp_best``), ``p_random_beats`` and ``p_random_short`` (the exact probabilities that one
    random search of as many look-ups reads a better cell than ``dpp_best``, or only worse ones: hypergeometric,
    over every draw of that many of the table's cells; what is left is a tie, a best of the same accuracy) and
    ``verdict``. DPP-Net is one run, so it is set against the spread of random search's single runs, not against
    the standard error of their mean (which shrinks with the number of seeds while one run's luck does not):
    better, or worse, only where a random search reads only worse, or a better, cell than DPP-Net's best with
    probability at least 95 %; otherwise within the spread. The verdict reads the exact probabilities, not the
    seeds' shares: with 20 seeds one seed is 5 %, so a share of 95 % can stand for a probability of 91 %.
    DPP-Net's own seed noise is not in the comparison.
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise NASInputError(f"seeds is how many random searches to run, a whole number >= 1, got {seeds!r}")
    if len(frame) == 0 or "pareto" not in frame:
        raise NASInputError("frame must be a dpp_search result with at least one evaluated cell")
    arches = bench.all_arches()
    valid = np.array([bench.query(a)["valid_acc"] for a in arches])
    lookups = len(frame)
    table_best = float(valid.max())
    dpp_best = float(frame.loc[frame["pareto"], "accuracy"].max())
    rows = []
    for seed in range(seeds):
        picks = np.random.default_rng(seed).choice(len(arches), size=min(lookups, len(arches)), replace=False)
        best = float(valid[picks].max())
        rows.append({"seed": seed, "best": best, "regret": table_best - best})
    runs = pd.DataFrame(rows)
    mean = float(runs["regret"].mean())
    se = float(runs["regret"].std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("nan")
    dpp_regret = table_best - dpp_best
    beats = float((runs["best"] > dpp_best).mean())  # random runs that read a better cell than DPP-Net's best
    short = float((runs["best"] < dpp_best).mean())  # random runs whose best stays below it
    # the same two shares over every draw of ``picks`` cells: no cell above dpp_best drawn, or none at or above it
    picks = min(lookups, len(arches))
    p_beats = 1.0 - float(hypergeom.pmf(0, len(arches), int((valid > dpp_best).sum()), picks))
    p_short = float(hypergeom.pmf(0, len(arches), int((valid >= dpp_best).sum()), picks))
    scale = f"regret {dpp_regret:.2f} against random search's {mean:.2f} +- {se:.2f}, mean +- standard error"
    p_tie = max(0.0, 1.0 - p_beats - p_short)  # the best drawn has DPP-Net's accuracy (often an isomorphic cell)
    exact = (f"exactly, over every draw of {picks} of the space's {len(arches)} cell strings, in which a best of the "
             f"same accuracy, often an isomorphic string of the same row, has probability {p_tie:.1%}; of the {seeds} "
             f"seeds run here, {beats:.0%} read a better cell and {short:.0%} only worse ones")
    if p_short >= 0.95:
        verdict = (f"a random search of {lookups} look-ups reads only cells below DPP-Net's best front cell with "
                   f"probability {p_short:.1%} ({exact}; {scale}): better than random search, beyond the spread "
                   f"of single runs")
    elif p_beats >= 0.95:
        verdict = (f"a random search of {lookups} look-ups reads a better cell than DPP-Net's best with probability "
                   f"{p_beats:.1%} ({exact}; {scale}): worse than random search, beyond the spread of single runs")
    else:
        verdict = (f"DPP-Net's one run lies within the spread of random search's single runs at {lookups} look-ups: "
                   f"one reads a better cell with probability {p_beats:.1%} and only worse ones with "
                   f"{p_short:.1%} ({exact}; {scale}); neither exact probability reaches 95 % (the seeds' shares "
                   f"estimate them from {seeds} draws), so one run cannot tell them apart")
    return {"lookups": lookups, "table_best": table_best, "dpp_best": dpp_best, "dpp_regret": dpp_regret,
            "dpp_percentile": float((valid < dpp_best).mean()), "random": runs, "random_mean_regret": mean,
            "random_se": se, "random_beats": beats, "p_random_beats": p_beats, "p_random_short": p_short,
            "verdict": verdict}


__all__ = ["GROW_ORDER", "RULE", "measured_latency", "grow", "pareto_layers", "pareto_select", "score_children",
           "dpp_search", "random_at_equal_lookups"]
