"""Build the tabular benchmark: train every canonical NAS-Bench-201 cell with one fixed recipe.

Every cell is trained with ``seeds_per_cell`` seeds (the table holds their mean), and a random subset of cells
with ``seeds`` seeds, to measure how much of the ranking is the cell and how much the seed. A job is one cell
and some of its seeds, trained together as one stacked network (``stacked.py``: each seed as it would train
alone, faster on a CPU; ``benchmarks/build_speed.py`` measures by how much). Jobs run in worker processes of
one thread each (on two cores two such processes train 1.7x as many cells per second as one process of two
threads). Every finished (cell, seed) is appended as one JSON line to ``results.jsonl`` and flushed to disk,
so an interrupted build loses at most the jobs in flight: ``resume=True`` skips what is there (a half-written
last line is dropped) and goes on with the recipe the build was started with (``recipe.json``).

A row's ``seconds`` is its share of its job's wall time (the job's time divided by its seeds): what the
table charges a simulated search for one training of the cell. A long build's times can be disturbed by the
machine; ``retime.py`` measures them again in one run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

from ..data import DATASETS, IMAGE_SIZE, load_dataset
from ..errors import NASInputError, check_choice
from ..ops import NB201_OPS
from ..progress import tqdm
from ..spaces import cell as nb201
from ..train import TrainConfig
from .stacked import train_stacked


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a cell's numbers in the table."""

    dataset: str = "mnist5k"
    image_size: int = 14
    C: int = 8
    N: int = 1
    stem_stride: int = 2
    train_images: int = 1000
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = False
    split_seed: int = 0
    multi_seed_cells: int = 500
    seeds: int = 3
    rule: str = "drop_zero"
    seeds_per_cell: int = 6

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, augment=self.augment,
                           weight_decay=self.weight_decay, label_smoothing=self.label_smoothing, seed=seed)


def op_costs(recipe: dict) -> dict:
    """op -> (parameters, FLOPs) that one edge with that op adds to the network the recipe trains.

    The network is ``NB201Network(cell, C=C, N=N, stem_stride=stem_stride)``: 3 stages of N cells at C, 2C and
    4C channels on maps of the stem's size, then halved by each residual reduction. Only the convolutions of
    ``nor_conv_kxk`` (ReLU, k x k conv, batch norm) carry weights (k*k*c*c, plus the norm's scale and shift)
    and FLOPs (2 per multiply-add, as ``train.count_flops`` counts: pooling, skip and zero count nothing).
    Every edge is built and run, so a dead edge (one whose output never reaches the cell's output) costs too.
    """
    C, N, stride = recipe["C"], recipe["N"], recipe["stem_stride"]
    size = recipe.get("image_size") or IMAGE_SIZE[recipe["dataset"]]
    size = (size - 1) // stride + 1  # the stem: 3x3, padding 1
    out = {op: [0, 0] for op in NB201_OPS}
    for stage in range(3):
        c = C * 2**stage
        for op, k in (("nor_conv_1x1", 1), ("nor_conv_3x3", 3)):
            out[op][0] += N * (k * k * c * c + 2 * c)
            out[op][1] += N * 2 * k * k * c * c * size * size
        size = (size - 1) // 2 + 1  # the reduction: 3x3, stride 2, padding 1
    return {op: tuple(v) for op, v in out.items()}


def jobs(recipe: Recipe, order_seed: int = 0) -> list:
    """(cell index, seeds) jobs in the order they are trained; the seeds of a job train together.

    The canonical cells are shuffled once, so a partial build is a uniform sample of the space. A fifth of
    the multi-seed subset comes first with all its seeds (the noise is known early), then every remaining
    cell with its ``seeds_per_cell`` seeds (the table covers the space as soon as possible), then the other
    seeds of the rest of the subset.
    """
    cells = [nb201.index(c) for c in nb201.unique_cells(recipe.rule)]
    order = np.random.default_rng(order_seed).permutation(len(cells))
    cells = [cells[i] for i in order]
    subset = cells[: recipe.multi_seed_cells]
    early = subset[: len(subset) // 5]
    k, every = recipe.seeds_per_cell, max(recipe.seeds, recipe.seeds_per_cell)
    out = [(c, tuple(range(every))) for c in early]
    out += [(c, tuple(range(k))) for c in cells[len(early):]]
    out += [(c, tuple(range(k, every))) for c in subset[len(early):] if every > k]
    return out


_WORKER: dict = {}


def _init_worker(recipe: Recipe, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["recipe"] = recipe
    _WORKER["data"] = recipe_data(recipe)


def recipe_data(recipe: Recipe):
    """The recipe's data: the fixed splits, with the training split cut to ``train_images`` (the same
    images for every cell and seed)."""
    data = load_dataset(recipe.dataset, image_size=recipe.image_size, seed=recipe.split_seed)
    if recipe.train_images and recipe.train_images < len(data.train_y):
        data = data.subset(recipe.train_images / len(data.train_y), seed=recipe.split_seed)
    return data


def train_cell(job: tuple) -> list:
    """Train one cell with some seeds (stacked) under the worker's recipe; return one row per seed."""
    index, seeds = job
    recipe, data = _WORKER["recipe"], _WORKER["data"]
    arch = nb201.from_index(index)
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(nb201.NB201Network(arch, data.num_classes, data.in_channels, C=recipe.C, N=recipe.N,
                                         stem_stride=recipe.stem_stride))
    records = train_stacked(models, data, [recipe.train_config(s) for s in seeds])
    return [{"index": index, "seed": seed, "arch": nb201.to_str(arch), "train_loss": rec.train_loss,
             "valid_acc": rec.valid_acc, "valid_loss": rec.valid_loss, "test_acc": rec.test_acc,
             "seconds": rec.seconds, "params": rec.params, "flops": rec.flops} for seed, rec in zip(seeds, records)]


def read_results(path: Path, trim: bool = False) -> list:
    """The finished rows of a build (or any file of one JSON object a line); a truncated last line (a kill
    mid-write) is ignored, and with ``trim`` cut from the file, so that appending goes on after the last whole
    line. Trimming writes the whole lines to a temporary file beside it that then replaces the file in one
    step, and only when there is something to cut: a kill during the trim leaves the old file as it was."""
    rows, lines, cut = [], [], False
    path = Path(path)
    if path.exists():
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    cut = True
                    break
                lines.append(line)
        if lines and not lines[-1].endswith("\n"):  # a whole object whose newline was not written yet
            lines[-1] += "\n"
            cut = True
        if trim and cut:
            tmp = path.with_name(path.name + ".trim")
            try:
                with open(tmp, "w") as f:
                    f.writelines(lines)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return rows


def run_jobs(recipe: Recipe, todo: list, workers: int, sink) -> None:
    """Train the jobs ``todo`` (cell index, seeds) under ``recipe`` and hand each job's rows to ``sink`` as it
    finishes: in this process when ``workers`` is 1 (or there is one job), else in ``workers`` spawned
    processes, each with an equal share of the cores' threads (the layout the build is measured with)."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    if workers <= 1 or len(todo) <= 1:
        before = torch.get_num_threads()
        try:
            if todo:
                _init_worker(recipe, threads)
            for rows in map(train_cell, todo):
                sink(rows)
        finally:
            torch.set_num_threads(before)
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(recipe, threads)) as pool:
            for rows in pool.imap_unordered(train_cell, todo, chunksize=1):
                sink(rows)


def build(out, data: str | None = None, resume: bool = False, workers: int = 2, limit: int | None = None,
          progress: bool = True, **recipe_overrides) -> Path:
    """Train the jobs of the recipe into ``out/results.jsonl``; return that path.

    A new build's recipe is ``Recipe`` on data set ``data`` (default "mnist5k") with ``recipe_overrides``
    (``epochs=5``, ``seeds_per_cell=2``, ...), written to ``out/recipe.json``. ``resume=True`` goes on with the
    recipe in ``recipe.json``: ``data`` and overrides may be left out or repeat it, and one that differs from it
    is refused (rows of two recipes in one table would not be comparable). ``limit`` stops after that many
    trainings (cell, seed) in total (a partial build, resumable later).
    """
    if data is not None:
        check_choice("data set", data, DATASETS)
    unknown = sorted(set(recipe_overrides) - set(Recipe.__dataclass_fields__) - {"dataset"})
    if unknown or "dataset" in recipe_overrides:
        wrong = unknown or ["dataset"]
        raise NASInputError(f"unknown recipe field {', '.join(wrong)}; the data set is chosen with data=..., the "
                            f"other fields are: {', '.join(f for f in Recipe.__dataclass_fields__ if f != 'dataset')}")
    out = Path(out)
    recipe = Recipe(dataset=data or "mnist5k", **recipe_overrides)
    recipe_file, results = out / "recipe.json", out / "results.jsonl"
    if out.exists() and results.exists() and not resume:
        raise NASInputError(f"{out} already holds a build; pass resume=True (--resume) to continue it, "
                            "or choose another directory")
    if resume and recipe_file.exists():  # a resumed build keeps its own recipe; asking for another is an error
        recipe = Recipe(**json.loads(recipe_file.read_text())["recipe"])
        asked = {"dataset": data, **recipe_overrides} if data is not None else recipe_overrides
        differ = {k: v for k, v in asked.items() if v != getattr(recipe, k)}
        if differ:
            shown = ", ".join(f"{k} {getattr(recipe, k)!r} there, {v!r} asked" for k, v in differ.items())
            raise NASInputError(f"{out} holds a build with another recipe ({shown}); resume it without those "
                                "arguments (it goes on with its own recipe.json), or build into another directory")
    if not isinstance(recipe.seeds_per_cell, int) or not 1 <= recipe.seeds_per_cell <= 64:
        raise NASInputError(f"seeds_per_cell must be a whole number from 1 to 64, got {recipe.seeds_per_cell!r}")
    out.mkdir(parents=True, exist_ok=True)
    if not recipe_file.exists() or not resume:  # a new build (a recipe.json without results is not one yet)
        recipe_file.write_text(json.dumps({"recipe": asdict(recipe), "machine": machine(),
                                           "started": date.today().isoformat()}, indent=1))
    done = {(r["index"], r["seed"]) for r in read_results(results, trim=True)}
    todo, budget = [], (None if limit is None else max(0, limit - len(done)))
    for index, seeds in jobs(recipe):
        seeds = tuple(s for s in seeds if (index, s) not in done)
        if budget is not None:
            seeds = seeds[:max(0, budget - sum(len(j[1]) for j in todo))]
        if seeds:
            todo.append((index, seeds))
    bar = tqdm(total=sum(len(s) for _, s in todo), desc="benchmark build", unit="training", disable=not progress)
    with open(results, "a") as f:
        def write(rows):
            f.writelines(json.dumps(row) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(rows))
        run_jobs(recipe, todo, workers, write)
    bar.close()
    return results


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "time": time.strftime("%Y-%m-%d")}
