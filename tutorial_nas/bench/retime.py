"""Measure again the training time of the cells whose recorded time was inflated by the machine, not the cell.

A build runs for hours; while it runs the machine may be paused or busy with other work, and a job that
trained then records a wall time several times what the cell costs. The accuracies are unaffected (the
training is the same), but the table charges a simulated search that time for every look-up of the cell.
``slow_rows`` finds such rows: those whose ``train_seconds`` exceed ``factor`` times the median of the cells
with the same number of edges of each op (every edge is built and run, so what a training costs is set by
those counts; the position of the ops moves it by a few per cent). ``retime`` trains those cells again with
the table's recipe, its seeds and the build's worker layout, checks that their mean final validation
accuracies agree with the table's (a different recipe, data or library would not), and replaces only their
``train_seconds``; the table's ``.json`` records what was retimed, when and on what machine.

Retiming every row (``rows="all"``) puts the whole table's times on one footing: one run, one machine state.
That matters when the rows were measured in different builds (a table extended from one seed per cell to six
holds, in each row, the mean of a training alone and of five trained stacked). The accuracies do not reproduce
to the last bit: a job stacks a different number of seeds than the build did, which changes the order of
floating-point sums, and three epochs of SGD carry that difference to a few tenths of a point per seed, so the
check is on the median absolute difference of the cells' means.

A retime can be interrupted: with ``log`` each finished cell is appended to that file, and a second call with
the same log trains only the cells not in it.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np

from ..errors import NASInputError, check_positive
from ..ops import NB201_OPS
from ..progress import tqdm
from ..spaces import cell as nb201
from . import forget, read_table
from .build import Recipe, machine, read_results, run_jobs
from .table import DATA_DIR, DEFAULT, _sha256


def op_counts(index: int) -> tuple:
    """How many of the cell's six edges carry each op, in ``NB201_OPS`` order."""
    cell = nb201.from_index(int(index))
    return tuple(sum(op == name for op in cell) for name in NB201_OPS)


def slow_rows(cells, seconds, factor: float = 1.5) -> np.ndarray:
    """Rows whose time exceeds ``factor`` x the median time of the rows with the same op counts."""
    check_positive("factor", factor)
    seconds = np.asarray(seconds, dtype=float)
    groups = defaultdict(list)
    for row, index in enumerate(cells):
        groups[op_counts(index)].append(row)
    typical = np.empty(len(seconds))
    for rows in groups.values():
        typical[rows] = np.median(seconds[rows])
    return np.flatnonzero(seconds > factor * typical)


def group_sample(cells, per_group: int, prefer=(), seed: int = 0) -> np.ndarray:
    """Up to ``per_group`` rows of every op-count group (the cells in ``prefer`` first, then at random)."""
    prefer, rng = {int(c) for c in prefer}, np.random.default_rng(seed)
    groups = defaultdict(list)
    for row, index in enumerate(cells):
        groups[op_counts(index)].append(row)
    out = []
    for rows in groups.values():
        rows = [rows[i] for i in rng.permutation(len(rows))]
        rows.sort(key=lambda r: int(cells[r]) not in prefer)  # stable: the preferred first, the rest shuffled
        out += rows[:per_group]
    return np.array(sorted(out), dtype=int)


def retime(name: str = DEFAULT, directory=None, factor: float = 1.5, rows=None, per_group: int = 5,
           workers: int = 2, tolerance: float = 0.5, log=None, progress: bool = True) -> dict:
    """Retrain rows of table ``name`` and replace their ``train_seconds`` with the new measurement.

    ``rows``: ``None``, the slow rows (``slow_rows`` with ``factor``); ``"all"``, every row; ``"groups"``,
    ``per_group`` rows of every op-count group, after which every row of the table is charged the median new
    time of its group (one run, and a median that a few measurements disturbed by the machine do not move);
    or a list of row numbers.

    ``tolerance``: the most, in accuracy points, by which the retrained cells' mean final validation
    accuracies may differ from the table's, in median; more stops with an error before anything is written.
    Returns what was done: the rows, their old and new seconds, the accuracy differences.
    """
    directory = Path(directory or DATA_DIR)
    arrays, info = read_table(name, directory)
    recipe = Recipe(**info["recipe"])
    cells, seconds = arrays["cells"], arrays["train_seconds"]
    grouped = isinstance(rows, str) and rows == "groups"
    if rows is None:
        rows = slow_rows(cells, seconds, factor)
    elif isinstance(rows, str) and rows == "all":
        rows = np.arange(len(cells))
    elif grouped:
        if not isinstance(per_group, int) or per_group < 1:
            raise NASInputError(f"per_group must be a whole number above zero, got {per_group!r}")
        logged = _read_log(log, {int(c): r for r, c in enumerate(cells)}) if log else {}
        position = {int(c): r for r, c in enumerate(cells)}
        # every cell a previous run measured counts, and each group gets at least per_group
        rows = np.union1d(group_sample(cells, per_group, prefer=logged), [position[c] for c in logged]).astype(int)
    elif isinstance(rows, str):
        raise NASInputError(f"rows must be 'all', 'groups', None or row numbers, got {rows!r}")
    else:
        rows = np.asarray(rows, dtype=int).reshape(-1)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(cells)):
        raise NASInputError(f"rows must lie in 0..{len(cells) - 1}")
    seeds = tuple(range(recipe.seeds_per_cell))
    todo = [(int(cells[r]), seeds) for r in rows]
    row_of = {int(cells[r]): int(r) for r in rows}
    new = _read_log(log, row_of) if log else {}
    todo = [job for job in todo if job[0] not in new]
    bar = tqdm(total=len(row_of), initial=len(new), desc="retime", unit="cell", disable=not progress)
    sink = open(log, "a") if log else None

    def record(out):
        index = out[0]["index"]
        new[index] = (float(np.mean([o["seconds"] for o in out])), float(np.mean([o["valid_acc"][-1] for o in out])))
        if sink:
            sink.write(json.dumps({"index": index, "seconds": new[index][0], "valid_acc": new[index][1]}) + "\n")
            sink.flush()
        bar.update(1)
    try:
        run_jobs(recipe, todo, workers, record)
    finally:
        bar.close()
        if sink:
            sink.close()
    old_seconds = seconds.copy()
    diffs = []
    for index, (secs, acc) in new.items():
        r = row_of[index]
        diffs.append(abs(acc - float(arrays["valid_curve"][r, -1])))
        seconds[r] = secs
    if grouped:
        by_group = defaultdict(list)
        for index, (secs, _) in new.items():
            by_group[op_counts(index)].append(secs)
        for r, index in enumerate(cells):
            seconds[r] = np.median(by_group[op_counts(index)])
        rows = np.arange(len(cells))
    typical = float(np.median(diffs)) if diffs else 0.0
    if typical > tolerance:
        raise NASInputError(f"the retrained cells' accuracies differ from the table's by {typical:.2f} points in "
                            f"median (more than {tolerance}): this is not the recipe, data or library that "
                            "built it; nothing was written")
    worst = max(diffs, default=0.0)
    arrays["train_seconds"] = seconds.astype(np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    blob = buf.getvalue()
    (directory / f"{name}.npz").write_bytes(blob)
    report = {"rows": len(rows), "mode": "groups" if grouped else "rows", "trained": len(new), "factor": factor,
              "date": date.today().isoformat(), "machine": machine(),
              "median_valid_acc_difference": round(typical, 3), "max_valid_acc_difference": round(worst, 3),
              "seconds_before": round(float(old_seconds[rows].sum()), 1),
              "seconds_after": round(float(seconds[rows].sum()), 1)}
    info.setdefault("retimed", []).append(report)
    info["sha256"] = _sha256(blob)
    (directory / f"{name}.json").write_text(json.dumps(info, indent=1))
    forget(name, directory)  # a table this process loaded before is read again
    return {**report, "row_numbers": [int(r) for r in rows], "old": old_seconds[rows].tolist(),
            "new": seconds[rows].tolist()}


def _read_log(log, row_of: dict) -> dict:
    """The cells a previous, interrupted retime finished (a half-written last line is cut from the log)."""
    return {r["index"]: (float(r["seconds"]), float(r["valid_acc"]))
            for r in read_results(Path(log), trim=True) if r.get("index") in row_of}
