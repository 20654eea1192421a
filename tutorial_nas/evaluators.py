"""How a candidate is scored: one interface, several prices.

``evaluate(arch)`` returns a ``Result`` with the validation accuracy a search may look at, the test accuracy
it may not (kept for reporting), and the cost in seconds charged to the search's budget.

- ``FullTraining``: train the network with the full recipe, as the early methods did (cost: wall seconds).
- ``LowFidelity``: the same with fewer epochs, less data or fewer channels (cheaper, noisier).
- ``BenchmarkLookup``: read the tabular benchmark (cost: the recorded training seconds, so a simulated
  search pays what a real one would have paid).
Weight-sharing estimates live with the supernets in ``tutorial_nas.oneshot``.
"""

from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from .data import Dataset
from .errors import NASInputError, check_choice
from .spaces.base import SearchSpace
from .train import TrainConfig, train


@dataclass
class Result:
    """The score of one candidate and what it cost."""

    valid_acc: float
    test_acc: float = math.nan
    cost_s: float = 0.0
    params: int = 0
    flops: int = 0
    curve: list = field(default_factory=list)  # valid accuracy per epoch, when there is one
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Evaluator(ABC):
    """Scores an architecture of a space."""

    name = "evaluator"

    @abstractmethod
    def evaluate(self, arch) -> Result:
        """Score ``arch``: its validation (and test) accuracy and the seconds to charge for it."""

    # Hooks for evaluations that run elsewhere (``tutorial_nas.parallel``): a cache kept where the search
    # runs, and a move to the device a remote worker was given.
    def cached(self, arch) -> Result | None:
        """The result of ``arch`` if it is known without evaluating it (as ``evaluate`` would return it)."""
        return None

    def remember(self, arch, result: Result) -> None:
        """Keep ``result``, computed elsewhere, so that ``cached`` knows it (an evaluator without a cache doesn't)."""
        return None

    def to(self, device) -> "Evaluator":
        """This evaluator with its data and models on ``device`` (itself when it has none)."""
        return self


class FullTraining(Evaluator):
    """Train every candidate from scratch with one recipe; the cost is the wall time of that training (building the
    network, training it and reading its validation accuracy each epoch; not the test evaluation, which a search
    never reads to choose, nor the FLOP count).

    A candidate seen before is not trained again (its result is reused and charged nothing), since a
    search that proposes the same network twice has learned nothing new by paying twice. Every training
    starts from the recipe's seed (initial weights, batch order, augmentation), as NAS-Bench-201 trains
    every cell with the same seeds: a result depends on the candidate and the seed only, never on what ran
    before it in the process, so a resumed search trains what the interrupted one would have.
    """

    name = "full-training"

    def __init__(self, space: SearchSpace, data: Dataset, config: TrainConfig | None = None,
                 progress: bool = False, cache: bool = True, **model_sizes):
        self.space, self.data, self.config = space, data, (config or TrainConfig()).check()
        self.model_sizes, self.progress, self.cache = model_sizes, progress, cache
        self._seen: dict = {}

    def build(self, arch):
        return self.space.to_model(arch, num_classes=self.data.num_classes,
                                   in_channels=self.data.in_channels, **self.model_sizes)

    def cached(self, arch) -> Result | None:
        key = self.space.key(arch)
        if self.cache and key in self._seen:
            return replace(self._seen[key], cost_s=0.0, info={**self._seen[key].info, "cached": True})
        return None

    def remember(self, arch, result: Result) -> None:
        if not result.info.get("cached"):
            self._seen[self.space.key(arch)] = result

    def to(self, device) -> "FullTraining":
        if torch.device(device) == self.data.device:
            return self
        moved = copy.copy(self)
        moved.data = self.data.to(device)
        return moved

    def evaluate(self, arch) -> Result:
        hit = self.cached(arch)
        if hit is not None:
            return hit
        start = time.perf_counter()
        torch.manual_seed(self.config.seed)  # the initial weights: drawn from the global generator
        model = self.build(arch).to(self.data.device)
        record = train(model, self.data, self.config, progress=self.progress)
        result = Result(valid_acc=record.final_valid_acc, test_acc=record.test_acc,
                        cost_s=time.perf_counter() - start - record.unpaid_seconds,
                        params=record.params, flops=record.flops,
                        curve=list(record.valid_acc))
        self.remember(arch, result)
        return result


class LowFidelity(FullTraining):
    """Full training made cheaper: fewer ``epochs``, a ``data_fraction`` of the data, or smaller models."""

    name = "low-fidelity"

    def __init__(self, space: SearchSpace, data: Dataset, config: TrainConfig | None = None,
                 epochs: float | None = None, data_fraction: float | None = None, **kwargs):
        config = config or TrainConfig()
        changes = {k: v for k, v in (("epochs", epochs), ("data_fraction", data_fraction)) if v is not None}
        super().__init__(space, data, replace(config, **changes), **kwargs)


TRIALS = ("mean", "held-out", "random")


class BenchmarkLookup(Evaluator):
    """Look the cell up in the tabular benchmark; charge the seconds its training took when the table was built.

    ``epoch`` reads the metrics at an earlier epoch (low fidelity by look-up), charged proportionally; the
    curve stops there too, so nothing of the epochs not paid for is seen.

    ``trial``: what a look-up answers. ``"mean"`` (the default) is the table's entry, the mean over the cell's
    seeds, the same number at every look-up; its test accuracy is the mean over the same trainings, so a search
    that selects on validation also selects the seed noise the test accuracy shares with it (a seed's deviation
    from its cell's mean on validation and on test correlate strongly on the shipped table), and a reported test
    accuracy of its pick is optimistic. The other two keep the two apart, as NAS-Bench-201 does (its searches are
    told its 12-epoch runs, its reports read the 200-epoch ones): the cell's seeds are split in halves
    (``Benchmark.split_seeds``), the search reads the first half's validation accuracies and the report the
    second half's mean test accuracy. ``"held-out"``: the first half's mean validation accuracy, the same at
    every look-up. ``"random"``, what NAS-Bench-201's algorithms were told (AutoDL's scripts query one random
    training run of the cell): one seed of the first half, drawn afresh at every look-up with a generator seeded
    by ``seed``, so a repeated cell may score differently. The table keeps no per-seed curve, and its mean curve
    holds the report half's noise, so these look-ups carry none (a strategy that reads the curve reads the
    validation accuracy). A cell with fewer than 2 seeds answers as ``"mean"``. A ``"random"`` look-up changes
    the evaluator's generator, so it runs in this process only (``parallel.RayExecutor`` refuses it: each Ray
    task would draw from a fresh copy of the generator, the same seed every time).
    """

    name = "benchmark"

    def __init__(self, space: SearchSpace, bench=None, epoch: int | None = None, trial: str = "mean",
                 seed: int = 0):
        from .bench import load_benchmark

        check_choice("trial", trial, TRIALS)
        self.space, self.bench = space, bench if bench is not None else load_benchmark()
        if epoch is not None and not 1 <= epoch <= self.bench.epochs:
            raise NASInputError(f"epoch must be from 1 to {self.bench.epochs}, got {epoch!r}")
        if trial != "mean" and epoch is not None:
            raise NASInputError(f"trial={trial!r} reads seeds' final accuracies (the table keeps no per-seed "
                                "curve); it cannot be read at an earlier epoch: leave epoch=None")
        self.epoch, self.trial, self.rng = epoch, trial, np.random.default_rng(seed)
        self.local_only = "trial='random' draws from the evaluator's own generator" if trial == "random" else None

    def evaluate(self, arch) -> Result:
        r = self.bench.query(self.space.to_str(arch), epoch=self.epoch)
        valid, curve = r["valid_acc"], list(r["valid_curve"])
        test = r["test_acc"]
        if self.trial != "mean":
            search, report = self.bench.split_seeds(r["arch"])
            if len(search):  # a cell trained with fewer than 2 seeds answers as "mean"
                valid = float(search[int(self.rng.integers(len(search)))] if self.trial == "random"
                              else search.mean())
                test, curve = float(report.mean()), []
        return Result(valid_acc=valid, test_acc=test, cost_s=r["train_seconds"],
                      params=r["params"], flops=r["flops"], curve=curve)


def training_from_profile(space: SearchSpace, profile, dataset: str | None = None,
                          progress: bool = False) -> FullTraining:
    """Full training with the recipe of ``profile`` for ``space`` (its data, epochs, batch size, model sizes).

    Chain and DARTS spaces read their own profile sections; the NAS-Bench-201 cell is trained with the training
    recipe of the shipped benchmark (``bench.Recipe``: epochs, batch size, rate, weight decay, label smoothing, no
    augmentation) at the profile's ``cell`` sizes. Where the profile's cell data set and sizes are the recipe's
    (the ``ci`` and ``cpu`` profiles), the data is the recipe's too, its training split cut to the same
    ``train_images`` (``bench.build.recipe_data``): a trained cell and a looked-up cell are then trained alike and
    can be compared. Elsewhere (the ``gpu`` profile's CIFAR-10 at full size) the profile's data is used whole.
    """
    from .data import load_dataset

    if space.name == "nb201":
        from .bench.build import Recipe, recipe_data

        r = Recipe()
        cell = profile.cell.as_dict()
        config = r.train_config(seed=0)
        sizes = {k: cell[k] for k in ("C", "N", "stem_stride")}
        name = dataset or cell["dataset"]
        same = (name, cell["image_size"], tuple(sizes.values())) == (r.dataset, r.image_size, (r.C, r.N, r.stem_stride))
        data = recipe_data(r).to(profile.device) if same else load_dataset(name, image_size=cell.get("image_size"),
                                                                             device=profile.device)
        return FullTraining(space, data, config, progress=progress, **sizes)
    section = {"genetic": "chain"}.get(space.name, space.name)
    s = getattr(profile, section).as_dict()
    s.setdefault("epochs", s.get("train_epochs", profile.train.epochs))
    s.setdefault("batch_size", profile.train.batch_size)
    s.setdefault("lr", profile.train.lr)
    data = load_dataset(dataset or s["dataset"], image_size=s.get("image_size"), device=profile.device)
    config = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"])
    sizes = {k: s[k] for k in ("C", "N", "stem_stride", "layers") if k in s}
    return FullTraining(space, data, config, progress=progress, **sizes)
