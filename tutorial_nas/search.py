"""The ask/tell loop every discrete strategy runs through, with its budget, records and checkpoints.

    strategy.ask() -> arch -> evaluator.evaluate(arch) -> Result -> strategy.tell(arch, result)

The strategy is told the Result without its test accuracy (nan): that number is kept in the History for
the report and never steers the search. Each evaluation's cost is charged to the budget (a count of
evaluations or a number of seconds); an evaluation that would overdraw the budget is not recorded, so no
strategy is ever charged past it. Every evaluation is appended to the History (one row each) and, when
``checkpoint`` is given, written to disk atomically. ``resume=True`` replays the recorded evaluations
through a fresh strategy with the same seed (no training, no look-up) and then continues: the resumed run is
the run that was interrupted.

``executor="ray"`` (or a ``tutorial_nas.parallel.RayExecutor``) evaluates several candidates at once, as
many as the cluster runs and the strategy can propose before it is told results (``strategy.parallel``).
Results are told as they finish; the checkpoint records in which order, next to the asks that preceded
each tell, so a resumed parallel search replays exactly what the strategy saw and evaluates again only the
candidates that were in flight when it stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import NASInputError
from .evaluators import Evaluator, Result
from .progress import tqdm

CHECKPOINT_VERSION = 1
_MAX_IN_FLIGHT = 4096  # candidates evaluated at once, at most (a sanity bound when a checkpoint is read)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_EVALUATIONS = 10**15


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` evaluations, or once ``seconds`` of evaluation cost are spent.

    ``planned``: for a budget in seconds, the number of evaluations it is expected to afford (a budget worth so
    many mean trainings, ``analysis.compare.budget_from_trainings``). It stops nothing; strategies whose schedule
    spans the run (MetaQNN's and BlockQNN's epsilon) are told it, as they are told a count of evaluations.
    It is written into the budget's text, ``"140 s (planned for 100 evaluations)"``, which ``parse`` reads back."""

    evaluations: int | None = None
    seconds: float | None = None
    planned: int | None = None

    def __post_init__(self):
        if self.planned is not None and (isinstance(self.planned, bool) or int(self.planned) != self.planned
                                         or self.planned < 1):
            raise NASInputError(f"planned is a count of evaluations above zero, got {self.planned!r}")

    @classmethod
    def parse(cls, value) -> "Budget":
        """``20``, ``"20"`` or ``"20 evaluations"`` (evaluations), ``"600s"``, ``"10m"``, ``"2h"`` (seconds charged),
        or what ``str`` writes of a budget."""
        if isinstance(value, Budget):
            return value
        if isinstance(value, bool):
            value = str(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 < value <= _MAX_EVALUATIONS:
                return cls(evaluations=value)
            value = str(value) if abs(value) < 10**100 else ("-" if value < 0 else "") + "9" * 100
        if isinstance(value, float):
            value = str(value)
        text = str(value).strip().lower()
        text = re.sub(r"^(\d+)\s*evaluations?$", r"\1", text)  # what ``str`` writes of a count
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)(?:\s*\(planned for (\d+) evaluations\))?", text)
        if not m:
            raise NASInputError(f"budget {value!r} is not understood; write a count of evaluations (20) "
                                "or a time charged to the search (600s, 10m, 2h)")
        number, unit = float(m.group(1)), m.group(2)
        if not math.isfinite(number) or (not unit and number > _MAX_EVALUATIONS):
            raise NASInputError(f"budget {value!r} is too large; no search runs that long")
        if number <= 0:
            raise NASInputError(f"budget must be above zero, got {value!r}")
        if unit:
            return cls(seconds=number * _UNITS[unit], planned=int(m.group(3)) if m.group(3) else None)
        if m.group(3):
            raise NASInputError(f"budget {value!r}: only a budget in seconds is planned for a count of evaluations")
        if number != int(number):
            raise NASInputError(f"a count of evaluations must be whole, got {value!r}")
        return cls(evaluations=int(number))

    def allows(self, n_done: int, spent: float, next_cost: float = 0.0) -> bool:
        if self.evaluations is not None and n_done >= self.evaluations:
            return False
        if self.seconds is not None and spent + next_cost > self.seconds:
            return False
        return True

    @property
    def total(self) -> float:
        return self.evaluations if self.evaluations is not None else self.seconds

    def __str__(self):
        if self.evaluations is not None:
            return f"{self.evaluations} evaluations"
        return f"{self.seconds:g} s" + (f" (planned for {self.planned} evaluations)" if self.planned else "")


def incumbents(history: pd.DataFrame) -> np.ndarray:
    """The row of the incumbent after each row of a History, by the rule in ``history.attrs["incumbent"]``:

    - a column name (default ``"valid_acc"``): the row with the best value of that column so far (the first
      on a tie, a nan never best) -- what an ask/tell search returns, or weight sharing with ``"ws_acc"``;
    - ``"last"``: the latest row. DARTS, GDAS and NAS-Bench-201's runs of them return the cell derived at the
      end of the search, whatever any benchmark says of the cells derived before.
    """
    rule = history.attrs.get("incumbent", "valid_acc")
    if rule == "last":
        return np.arange(len(history))
    if rule not in history:
        raise NASInputError(f"the History's incumbent rule {rule!r} names no column; use 'last' or one of "
                            f"{list(history.columns)}")
    score = np.nan_to_num(history[rule].to_numpy(dtype=float), nan=-math.inf)
    out, current = np.zeros(len(score), dtype=int), 0
    for i, value in enumerate(score):
        if value > score[current]:
            current = i
        out[i] = current
    return out


def history_frame(rows: list, meta: dict) -> pd.DataFrame:
    """The History: one row per evaluation, and the incumbent's validation and test accuracy after each row
    (``best_valid_acc``, ``best_test_acc``; the incumbent by ``meta["incumbent"]``, see :func:`incumbents`)."""
    df = pd.DataFrame(rows)
    df.attrs.update(meta)
    if len(df):
        idx = incumbents(df)
        df["best_valid_acc"] = np.nan_to_num(df["valid_acc"].to_numpy(dtype=float), nan=-math.inf)[idx]
        df["best_test_acc"] = df["test_acc"].to_numpy(dtype=float)[idx]
    return df


def best(history: pd.DataFrame) -> dict:
    """The run's final incumbent (:func:`incumbents`): for an ask/tell search the evaluated architecture with
    the best validation accuracy; for DARTS and GDAS the cell derived last."""
    if not len(history):
        raise NASInputError("the history is empty: the budget allowed no evaluation")
    row = history.iloc[incumbents(history)[-1]]
    return {"arch": row["arch"], "valid_acc": float(row["valid_acc"]), "test_acc": float(row["test_acc"])}


def _write_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    """Read a search checkpoint, refusing one from another version or one that is truncated."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise NASInputError(f"no checkpoint at {path}; start without resume to create one") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise NASInputError(f"checkpoint {path} is truncated or not a checkpoint; delete it to start over") from None
    except OSError as err:
        raise NASInputError(f"cannot read the checkpoint {path}: {err.strerror or err}") from None
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION or "rows" not in payload:
        raise NASInputError(f"checkpoint {path} is from another version of tutorial_nas "
                            f"(expected version {CHECKPOINT_VERSION}); delete it to start over")
    return payload


def _row(step: int, arch_str: str, result: Result, spent: float, wall: float) -> dict:
    row = {"step": step, "arch": arch_str, "valid_acc": result.valid_acc, "test_acc": result.test_acc,
           "cost_s": result.cost_s, "spent_s": spent, "wall_s": wall, "params": result.params,
           "flops": result.flops, "curve": list(result.curve)}
    row.update({k: v for k, v in result.info.items() if k not in row})
    return row


def _told(result: Result) -> Result:
    """What a strategy is told of an evaluation: all of it but the test accuracy, which stays in the History
    for the report. A search that chose by test accuracy would report an optimistically biased number."""
    return replace(result, test_acc=math.nan)


def _result_from_row(row: dict) -> Result:
    return Result(valid_acc=row["valid_acc"], cost_s=row["cost_s"], params=row["params"], flops=row["flops"],
                  curve=list(row.get("curve", [])))  # test_acc left nan: the strategy is never told it


def _plan(strategy, budget) -> None:
    """Tell a strategy that plans by the budget (``plan``: MetaQNN's and BlockQNN's epsilon schedules) how many
    evaluations the search makes, from the budget as the History's meta writes it: its count, or for a budget in
    seconds the count it was planned for (``Budget.planned``); a budget in seconds without one gives no count."""
    if budget is None or not hasattr(strategy, "plan"):
        return
    budget = Budget.parse(budget)
    count = budget.evaluations or budget.planned
    if count:
        strategy.plan(count)


def _replay(path, payload: dict, space, strategy) -> tuple[list, list, list, int]:
    """Tell a fresh strategy what the checkpointed run told it, in the same order, after the same asks.

    Returns the rows, their ``[ticket, asks before the tell]`` order, the candidates asked for but never told
    (in flight when the run stopped: they are evaluated again) and the number of asks made.
    """
    rows, order = payload["rows"], payload.get("order")
    damaged = NASInputError(f"checkpoint {path} is damaged or not a checkpoint; delete it to start over")
    if not isinstance(rows, list):
        raise damaged
    if order is None:  # written by one process: ask, tell, ask, tell ...
        order = [[i, i + 1] for i in range(len(rows))]
    if not isinstance(order, list) or len(order) != len(rows):
        raise damaged
    asked: list = []
    told: set = set()
    for i, (row, entry) in enumerate(zip(rows, order)):
        if not (isinstance(row, dict) and isinstance(entry, list) and len(entry) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)):
            raise damaged
        ticket, n_asked = entry
        # each ask answered once; never more asks outstanding than any run keeps in flight
        if not (len(asked) <= n_asked <= i + 1 + _MAX_IN_FLIGHT and 0 <= ticket < n_asked and ticket not in told):
            raise damaged
        if not all(isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
                   for k in ("valid_acc", "test_acc", "cost_s", "spent_s", "params", "flops")):
            raise damaged
        while len(asked) < n_asked:
            asked.append(strategy.ask())
        arch = asked[ticket]
        if space.to_str(arch) != row.get("arch"):
            raise NASInputError(f"checkpoint {path} does not replay with this strategy and seed")
        try:
            strategy.tell(arch, _result_from_row(row))
        except (KeyError, TypeError) as err:
            raise NASInputError(f"checkpoint {path} is damaged ({type(err).__name__}: {err}); "
                                "delete it to start over") from None
        told.add(ticket)
    lost = [(t, arch) for t, arch in enumerate(asked) if t not in told]
    return list(rows), [list(o) for o in order], lost, len(asked)


def search(space, strategy, evaluator: Evaluator, budget, *, checkpoint=None, resume: bool = False,
           progress: bool = True, executor=None, seed: int = 0, callback=None, label: str | None = None,
           **strategy_options) -> pd.DataFrame:
    """Run ``strategy`` on ``space`` until ``budget`` is spent; return the History (a DataFrame).

    ``strategy`` is a Strategy object or a name from ``tutorial_nas.strategies.STRATEGIES`` (built with
    ``seed`` and ``strategy_options``). ``callback(rows)`` is called after every evaluation with the rows so
    far (a live plot uses it). ``executor``: ``None``/``"local"`` (this process, one at a time), ``"ray"`` (a
    local Ray instance) or an executor object such as ``RayExecutor(address="auto")``. ``label``: the progress
    bar's text, by default ``"<strategy name> search"`` (two runs of one strategy can then be told apart).
    """
    from .parallel import make_executor
    from .strategies import make_strategy

    if isinstance(strategy, str):
        strategy = make_strategy(strategy, space, seed=seed, **strategy_options)
    evaluator = strategy.wrap_evaluator(evaluator)  # large-scale evolution: children start from the parent's weights
    budget = Budget.parse(budget)
    executor = make_executor(executor)
    meta = {"space": space.name, "strategy": strategy.name, "seed": strategy.seed, "budget": str(budget),
            "evaluator": evaluator.name}
    rows: list = []
    order: list = []  # per row: [ticket (the ask it answers, from 0), asks made before it was told]
    lost: list = []  # (ticket, arch) asked before a stop but never told: evaluated first
    n_asked = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and resume and path.exists():
        payload = load_checkpoint(path)
        same = lambda m: {k: v for k, v in m.items() if k != "budget"}  # noqa: E731 - a larger budget may resume
        if not isinstance(payload.get("meta"), dict) or same(payload["meta"]) != same(meta):
            raise NASInputError(f"checkpoint {path} is of another search ({payload.get('meta')}), not {meta}")
        _plan(strategy, payload["meta"].get("budget"))  # the resumed run's plan, so that the replay matches
        rows, order, lost, n_asked = _replay(path, payload, space, strategy)
    else:
        _plan(strategy, meta["budget"])
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise NASInputError(f"cannot create the checkpoint folder {path.parent}: "
                                    f"{err.strerror or err}") from None

    spent = rows[-1]["spent_s"] if rows else 0.0
    executor.start(evaluator)
    bar = tqdm(total=budget.total, initial=len(rows) if budget.evaluations else spent, disable=not progress,
               desc=f"{strategy.name} search" if label is None else str(label),
               unit="eval" if budget.evaluations else "s")
    start = time.perf_counter()
    window = max(1, min(int(getattr(strategy, "parallel", 1)), executor.workers, _MAX_IN_FLIGHT))
    pending: dict = {}  # ticket -> arch, being evaluated
    try:
        while True:
            # keep every worker busy, never asking for more candidates than the budget has evaluations left
            while len(pending) < window and budget.allows(len(rows) + len(pending), spent):
                if lost:
                    ticket, arch = lost.pop(0)
                elif not strategy.ready():  # a generation waits for its last results before breeding the next
                    break
                else:
                    ticket, arch = n_asked, strategy.ask()
                    n_asked += 1
                pending[ticket] = arch
                executor.submit(ticket, arch)
            if not pending:
                break
            stop = False
            for ticket, result in executor.wait():
                arch = pending.pop(ticket)
                if not budget.allows(len(rows), spent, result.cost_s):
                    stop = True  # this evaluation would overdraw the budget: it is not charged and not recorded
                    break
                strategy.tell(arch, _told(result))
                spent += result.cost_s
                rows.append(_row(len(rows), space.to_str(arch), result, spent, time.perf_counter() - start))
                order.append([ticket, n_asked])
                if path is not None:
                    _write_atomic(path, {"version": CHECKPOINT_VERSION, "meta": meta, "rows": rows, "order": order})
                if callback is not None:
                    callback(rows)
                bar.update(1 if budget.evaluations else result.cost_s)
                bar.set_postfix(best=f"{max(r['valid_acc'] for r in rows):.2f}")
            if stop:
                break
    finally:
        executor.cancel()
        executor.close()
        bar.close()
    return history_frame(rows, meta)
