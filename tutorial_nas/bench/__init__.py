"""The tabular benchmark of the NAS-Bench-201 cell space, built by this package on offline data.

    >>> from tutorial_nas.bench import load_benchmark
    >>> bench = load_benchmark()            # loaded once per process, checksum verified
    >>> bench.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")

``build`` trains the table (``tutorial-nas bench build``), ``pack`` turns a build into the shipped files.
A table built elsewhere (say on CIFAR-10 with the ``gpu`` profile) loads the same way from its own folder:
``load_benchmark("nb201_cifar10", directory="path/to/tables")``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from ..errors import NASInputError, check_choice
from ..spaces import cell as nb201
from .build import Recipe, build, op_costs
from .reliability import pooled_seed_sd, reliability, spread
from .table import DATA_DIR, DEFAULT, _sha256, pack

_LOADED: dict = {}


def _halves(valid, test) -> tuple:
    """One cell's seeds split for held-out look-ups: the first half's validation accuracies and the second half's
    test accuracies, over the seeds where both are known (a seed with either missing is left out, so the two halves
    never share a training); two empty arrays where fewer than 2 seeds are known."""
    valid, test = np.asarray(valid, dtype=float), np.asarray(test, dtype=float)
    ok = np.flatnonzero(np.isfinite(valid) & np.isfinite(test))
    if len(ok) < 2:
        return np.array([], dtype=float), np.array([], dtype=float)
    half = len(ok) // 2
    return valid[ok[:half]], test[ok[half:]]


class Benchmark:
    """One packed table in memory: a row per canonical cell and an index from every arch string to its row.

    Isomorphic cells compute the same function, so they share their row's accuracies, losses and training
    time; their parameters and FLOPs are each cell's own (a dead convolution still has weights and still runs),
    the row's numbers corrected edge by edge with the per-op costs of the table's recipe (``op_costs``).
    """

    def __init__(self, arrays: dict, info: dict):
        self.info = info
        self.recipe = info["recipe"]
        self._a = arrays
        self._op_cost = op_costs(self.recipe)
        self.epochs = int(arrays["valid_curve"].shape[1])
        self._row_of = arrays["row_of"]
        # every arch string of the space -> its row (-1: not trained in a partial table)
        self._index = {nb201.to_str(c): i for i, c in enumerate(nb201.all_cells())}
        valid = arrays["valid_curve"]
        self._records = []
        for k, cell_index in enumerate(arrays["cells"]):
            self._records.append({
                "arch": nb201.to_str(nb201.from_index(int(cell_index))),
                "valid_acc": float(valid[k, -1]), "test_acc": float(arrays["test_acc"][k]),
                "valid_loss": float(arrays["valid_loss_curve"][k, -1]),
                "train_seconds": float(arrays["train_seconds"][k]), "params": int(arrays["params"][k]),
                "flops": int(arrays["flops"][k]), "valid_curve": tuple(float(v) for v in valid[k]),
                "epoch": self.epochs})

    def __len__(self):
        return len(self._records)

    def row(self, arch) -> int:
        """The table row of ``arch`` (an arch string or a cell tuple)."""
        text = arch if isinstance(arch, str) else nb201.to_str(arch)
        i = self._index.get(text)
        if i is None:
            nb201.parse(text)  # raises the clear error for a malformed string
            i = self._index[nb201.to_str(nb201.parse(text))]
        r = int(self._row_of[i])
        if r < 0:
            raise NASInputError(f"cell {text} was not trained in this (partial) table of {len(self)} cells")
        return r

    def query(self, arch, epoch: int | None = None) -> dict:
        """The recorded metrics of ``arch``; ``epoch`` gives the validation numbers after that epoch, the
        curve up to it and no further, and charges that share of the training time (a low-fidelity look-up
        sees what a training stopped there would have seen; the test accuracy is always the final one)."""
        r = self.row(arch)
        rec = dict(self._records[r])
        rec["arch"] = arch if isinstance(arch, str) else nb201.to_str(arch)
        cell = nb201.parse(rec["arch"])
        for op, rep_op in zip(cell, nb201.from_index(int(self._a["cells"][r]))):
            rec["params"] += self._op_cost[op][0] - self._op_cost[rep_op][0]
            rec["flops"] += self._op_cost[op][1] - self._op_cost[rep_op][1]
        if epoch is not None and epoch != self.epochs:
            if not isinstance(epoch, (int, np.integer)) or not 1 <= epoch <= self.epochs:
                raise NASInputError(f"epoch must be an integer from 1 to {self.epochs}, got {epoch!r}")
            rec["valid_curve"] = rec["valid_curve"][:epoch]
            rec["valid_acc"] = rec["valid_curve"][epoch - 1]
            rec["valid_loss"] = float(self._a["valid_loss_curve"][r, epoch - 1])
            rec["train_seconds"] *= epoch / self.epochs
            rec["epoch"] = epoch
        return rec

    def frame(self) -> pd.DataFrame:
        """One row per trained canonical cell."""
        df = pd.DataFrame(self._records).drop(columns=["valid_curve", "epoch"])
        df["cell_index"] = self._a["cells"]
        return df

    def mean_over_space(self, key: str = "train_seconds") -> float:
        """The mean of a per-cell number over every cell of the space the table answers for, each class counted
        once per member: what a uniform sample of the space's cells averages (the mean over the table's rows
        counts each class once, and the classes with many members, cells with dead edges, are the cheap ones)."""
        rows = self._row_of[self._row_of >= 0]
        values = np.array([r[key] for r in self._records], dtype=float)
        return float(values[rows].mean())

    def all_arches(self) -> list:
        """The arch strings of all cells the table answers for (every member of every trained class)."""
        return [s for s, i in self._index.items() if self._row_of[i] >= 0]

    @property
    def best_arch(self) -> str:
        return self._records[int(np.argmax(self._a["test_acc"]))]["arch"]

    @property
    def best_test_acc(self) -> float:
        return float(np.max(self._a["test_acc"]))

    def seeds(self) -> pd.DataFrame:
        """The multi-seed subset: final valid and test accuracy of each cell under each seed."""
        a = self._a
        cols = {f"valid_acc_seed{s}": a["seeds_valid_acc"][:, s] for s in range(a["seeds_valid_acc"].shape[1])}
        cols.update({f"test_acc_seed{s}": a["seeds_test_acc"][:, s] for s in range(a["seeds_test_acc"].shape[1])})
        return pd.DataFrame({"arch": [nb201.to_str(nb201.from_index(int(c))) for c in a["multi_cells"]], **cols})

    def _seed_row(self, arch) -> int | None:
        """The index of ``arch``'s row in the multi-seed arrays, or None for a cell trained with one seed."""
        cell = int(self._a["cells"][self.row(arch)])
        where = np.flatnonzero(np.asarray(self._a["multi_cells"]) == cell)
        return int(where[0]) if len(where) else None

    def seed_accuracies(self, arch, metric: str = "test_acc") -> np.ndarray:
        """The final ``metric`` ("test_acc" or "valid_acc") of ``arch`` under each seed it was trained with, for
        a cell of the multi-seed subset (``seeds``); an empty array for a cell trained with one seed only. Cells
        that compute one function share a row, so ``arch`` reads its row's seeds."""
        check_choice("metric", metric, ("test_acc", "valid_acc"))
        i = self._seed_row(arch)
        if i is None:
            return np.array([], dtype=float)
        values = np.asarray(self._a[f"seeds_{metric}"][i], dtype=float)
        return values[np.isfinite(values)]  # a table of cells with fewer seeds than columns pads them with nan

    def split_seeds(self, arch) -> tuple:
        """(search, report): the cell's seeds split in two halves, the first half's final validation accuracies
        and the second half's final test accuracies (seeds with a missing value left out), so that the noise a
        search selects on and the noise it reports come from different trainings, as NAS-Bench-201 selects on
        its 12-epoch runs and reports its 200-epoch ones. Two empty arrays for a cell with fewer than 2 seeds."""
        i = self._seed_row(arch)
        if i is None:
            return np.array([], dtype=float), np.array([], dtype=float)
        return _halves(self._a["seeds_valid_acc"][i], self._a["seeds_test_acc"][i])

    def compare(self, a, b, metric: str = "test_acc") -> dict:
        """``a``'s entry minus ``b``'s, read against the two cells' own seeds, paired by seed.

        Every cell of the table is trained with the same seeds, and a seed fixes the order of the minibatches
        (``Recipe.train_config``), so seed s of one cell and seed s of another share it: over the table's cells
        above 88 % the six seeds' mean deviations differ by up to 1.4 points, 50 times their standard error. The
        difference of two entries is therefore the mean of the per-seed differences, and its noise is theirs
        (a paired t-test, seeds - 1 degrees of freedom), not the pooled spread of single trainings
        (``stats()["spread"]["noise_band"]``, which also holds that shared seed effect and the large spread of
        poor cells). Returns ``diff`` (points), ``seeds`` (the seeds both cells have), ``se``, the 95 % interval
        ``low``-``high`` and the two-sided ``p``; ``same`` is True for two cells of one function (one row: no
        noise between them, ``diff`` 0). With fewer than 2 shared seeds, or per-seed differences that never
        vary, ``se``, ``low``, ``high`` and ``p`` are None."""
        check_choice("metric", metric, ("test_acc", "valid_acc"))
        same = self.row(a) == self.row(b)
        diff = float(self.query(a)[metric] - self.query(b)[metric])
        out = {"diff": 0.0 if same else diff, "seeds": 0, "se": None, "low": None, "high": None, "p": None,
               "same": same, "metric": metric}
        i, j = self._seed_row(a), self._seed_row(b)
        if same or i is None or j is None:
            return out
        values = np.asarray(self._a[f"seeds_{metric}"], dtype=float)
        d = values[i] - values[j]
        d = d[np.isfinite(d)]
        out["seeds"] = int(len(d))
        if len(d) < 2 or np.ptp(d) == 0:
            return out
        se = float(np.std(d, ddof=1) / np.sqrt(len(d)))
        mean, half = float(d.mean()), float(student_t.ppf(0.975, len(d) - 1) * se)
        out.update(diff=mean, se=se, low=mean - half, high=mean + half,
                   p=float(2 * student_t.sf(abs(mean) / se, len(d) - 1)))
        return out

    def best_report_test_acc(self) -> float:
        """The best test accuracy over the table's rows as ``split_seeds`` reports it (the second half's mean):
        the optimum a regret of held-out look-ups is measured from."""
        best = -np.inf
        for valid, test in zip(self._a["seeds_valid_acc"], self._a["seeds_test_acc"]):
            _, report = _halves(valid, test)
            if len(report):
                best = max(best, float(report.mean()))
        return best if np.isfinite(best) else self.best_test_acc

    def stats(self) -> dict:
        """What the table is and how far its ranking can be trusted (``reliability.py``).

        ``reliability``: the expected Kendall tau between this table and an independent rebuild with the same
        recipe (its entries are means of ``seeds_per_cell`` seeds), with its standard error, measured on the
        cells trained with enough seeds or projected from fewer; ``spread``: how far apart the cells are.
        """
        agreement = self.info.get("seed_agreement", {})
        k = int(self.recipe.get("seeds_per_cell", 1))
        acc = self._a["seeds_valid_acc"].astype(float)
        rel = reliability(acc, k)
        if acc.shape[1] >= k and not rel["measured"]:  # every cell's own k seeds, split in halves, projected to k
            rel["all_cells"] = reliability(acc[:, :k], k)
        cells = [nb201.from_index(int(i)) for i in self._a["cells"]]
        sd = pooled_seed_sd(acc[:, :k] if k > 1 else acc) if acc.shape[1] > 1 else None
        return {"n_cells": nb201.N_CELLS, "n_unique": self.info["n_unique"], "n_trained": len(self),
                "complete": self.info["complete"], "best_arch": self.best_arch,
                "best_test_acc": self.best_test_acc, "seeds_per_cell": k, "reliability": rel,
                "spread": spread(self._a["valid_curve"][:, -1], cells, sd, k),
                "seed_kendall_tau": agreement.get("tau_valid_acc"), "seed_agreement": agreement,
                "recipe": self.recipe, "machine": self.info.get("machine"), "built": self.info["packed"],
                "epochs": self.epochs}


def p_words(p: float) -> str:
    """A p-value to two decimals, or to one significant digit below 0.01, where two decimals would print 0.00."""
    return f"{p:.2f}" if p >= 0.01 else f"{p:.1g}"


def difference_words(c: dict, verdict: bool = True) -> str:
    """``Benchmark.compare``'s answer in words: the difference, its 95 % interval over the shared seeds and
    (``verdict``) whether it lies beyond the two cells' seed noise at 5 %; without it the words end with the
    p-value, for a caller that says what the difference means."""
    metric = "validation" if c["metric"] == "valid_acc" else "test"
    if c["same"]:
        return "the same function (one row of the table): no difference"
    if c["p"] is None:
        why = ("fewer than 2 seeds shared by the two cells" if c["seeds"] < 2 else
               f"the {c['seeds']} per-seed differences do not vary")
        return f"{c['diff']:+.2f} points of {metric} accuracy, with no seed noise to read it against ({why})"
    said = (f"{c['diff']:+.2f} points of {metric} accuracy, 95 % interval [{c['low']:+.2f}, {c['high']:+.2f}] over "
            f"the {c['seeds']} seeds the two cells share (paired t-test, p = {p_words(c['p'])})")
    if not verdict:
        return said
    return said + (": beyond their seed noise at 5 %" if c["p"] < 0.05 else ": not beyond their seed noise at 5 %")


def load_benchmark(name: str = DEFAULT, directory=None, verify: bool = True) -> Benchmark:
    """Load table ``name`` once per process (later calls return the same object); verify its checksum.

    ``directory`` defaults to ``TUTORIAL_NAS_BENCH_DIR`` when set (a table built elsewhere), else the tables
    shipped inside the package. A table that is damaged or from another version is refused with a clear error.
    """
    directory = Path(directory or os.environ.get("TUTORIAL_NAS_BENCH_DIR") or DATA_DIR)
    meta_path, npz_path = directory / f"{name}.json", directory / f"{name}.npz"
    try:
        key = (str(directory.resolve()), name)
        found = meta_path.is_file() and npz_path.is_file()
    except (OSError, ValueError):  # a name the file system cannot hold (a NUL byte, too long)
        found = False
    if not found:
        raise NASInputError(f"no benchmark table {name!r} in {directory}; build one with "
                            "`tutorial-nas bench build --data mnist5k --out DIR` and pack it")
    if key not in _LOADED:
        arrays, info = read_table(name, directory, verify)
        try:
            _LOADED[key] = Benchmark(arrays, info)
        except (KeyError, TypeError, ValueError):  # a recipe without the sizes the per-op costs need
            raise _damaged(name, directory) from None
    return _LOADED[key]


def forget(name: str = DEFAULT, directory=None) -> None:
    """Drop table ``name`` from this process's cache, so that the next ``load_benchmark`` reads its files again
    (after they were rewritten, say by ``bench retime``)."""
    directory = Path(directory or os.environ.get("TUTORIAL_NAS_BENCH_DIR") or DATA_DIR)
    _LOADED.pop((str(directory.resolve()), name), None)


def _damaged(name: str, directory: Path) -> NASInputError:
    return NASInputError(f"benchmark table {name!r} in {directory} is damaged or from another version of "
                         "tutorial_nas; reinstall the package or rebuild the table")


def read_table(name: str, directory: Path, verify: bool = True) -> tuple:
    """The arrays and the ``.json`` record of table ``name`` in ``directory``, read from disk every call
    (``load_benchmark`` caches what this returns); checked for damage and, with ``verify``, its checksum."""
    meta_path, npz_path = directory / f"{name}.json", directory / f"{name}.npz"
    try:
        info = json.loads(meta_path.read_text())
        blob = npz_path.read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _damaged(name, directory) from None
    if not isinstance(info, dict) or not all(isinstance(info.get(k), t) for k, t in _INFO.items()) \
            or not isinstance(info.get("seed_agreement", {}), dict):
        raise _damaged(name, directory)
    if verify and _sha256(blob) != info.get("sha256"):
        raise NASInputError(f"benchmark table {npz_path} does not match its checksum: the file is damaged; "
                            "reinstall the package or rebuild the table")
    try:
        with np.load(io.BytesIO(blob)) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # a damaged archive fails in the zip, zlib or numpy format layers, each its own way
        raise _damaged(name, directory) from None
    if not _consistent(arrays):
        raise _damaged(name, directory)
    return arrays, info


_INFO = {"recipe": dict, "n_unique": int, "complete": bool, "packed": str}  # what a table's .json must hold
_PER_CELL = ("test_acc", "train_seconds", "params", "flops")


def _consistent(a: dict) -> bool:
    """The arrays ``pack`` writes, with the shapes and ranges ``Benchmark`` relies on."""
    try:
        n = len(a["cells"])
        return (a["cells"].ndim == 1 and n > 0 and a["row_of"].shape == (nb201.N_CELLS,)
                and a["valid_curve"].ndim == 2 and a["valid_curve"].shape[0] == n and a["valid_curve"].shape[1] >= 1
                and a["valid_loss_curve"].shape == a["valid_curve"].shape
                and all(a[k].shape == (n,) for k in _PER_CELL)
                and int(a["cells"].min()) >= 0 and int(a["cells"].max()) < nb201.N_CELLS
                and int(a["row_of"].min()) >= -1 and int(a["row_of"].max()) < n
                and a["multi_cells"].ndim == 1 and a["seeds_valid_acc"].ndim == 2
                and a["seeds_test_acc"].shape == a["seeds_valid_acc"].shape
                and a["seeds_valid_acc"].shape[0] == len(a["multi_cells"])
                and all(np.issubdtype(a[k].dtype, np.integer) for k in ("cells", "row_of", "multi_cells")))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


__all__ = ["Benchmark", "Recipe", "build", "difference_words", "load_benchmark", "p_words", "pack"]
