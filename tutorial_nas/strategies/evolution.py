"""Evolution: large-scale evolution, regularized (aging) evolution and Genetic CNN.

All three keep a population of evaluated architectures and make children by mutation (and, for Genetic CNN,
crossover); they differ in who may be a parent and who dies.

- ``LargeScaleEvolution`` (Real et al., ICML 2017): every network starts without a convolution; pick two
  individuals at random, the worse one dies, the better one is copied and mutated (its architecture or its
  learning rate), and the child trains from its parent's weights wherever their shapes match. Nothing else
  ever dies, so an individual that was lucky once can live forever.
- ``RegularizedEvolution`` (Real et al., AAAI 2019): sample S individuals (with replacement), mutate the best
  of the sample, and remove the *oldest* individual of the population. Aging removes lucky ones too, which
  makes the search robust to noisy accuracies; P = 10 and S = 3 as in AutoDL's NAS-Bench-201 runs, and the
  space's own mutation (on NAS-Bench-201 AutoDL's: a node, then one of its inputs, then another op). AutoDL's
  look-ups (``R_EA.train_and_eval``) return one random training run of the cell, of NAS-Bench-201's 12-epoch
  schedule (the chosen cell is reported at 200 epochs), so a repeated cell may score differently and aging has
  noise to be robust to; the package's default look-up returns each cell's mean over its seeds, the same number every
  time; ``BenchmarkLookup(..., trial="random")`` answers as AutoDL's look-ups do, from the table's one recipe.
- ``GeneticCNN`` (Xie & Yuille, ICCV 2017): generations of N bit strings (``GeneticSpace``); each
  generation is selected by Russian roulette (chance proportional to fitness minus the worst fitness),
  crossed over (pairs swap stages with probability p_C), and each individual left out of crossover is
  mutated with probability p_M (Algorithm 1 of the paper; gentun's replica of it does the same), then
  evaluated.

Fitness is the validation accuracy. Each strategy first fills its population (large-scale evolution with
conv-free networks, the others with random architectures); afterwards every ``ask`` makes a child.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..errors import NASInputError, check_choice
from ..evaluators import Evaluator, FullTraining, Result
from ..train import train
from .base import Strategy


@dataclass
class Individual:
    arch: object
    fitness: float
    born: int  # the step at which it joined the population (its age, for aging evolution)
    lr: float | None = None  # large-scale evolution: the learning rate in its genome ...
    weights: dict | None = field(default=None, repr=False, compare=False)  # ... and its trained weights (CPU)


def fitness_of(result) -> float:
    """The validation accuracy, with a failed evaluation (nan) the worst possible."""
    value = float(result.valid_acc)
    return -math.inf if math.isnan(value) else value


def _check_size(kind: str, value, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise NASInputError(f"{kind} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------ large-scale evolution

class Genome(tuple):
    """A child of large-scale evolution: its chain architecture and what its training needs.

    It *is* the tuple of layers (equal to it, printed and built as it), so the search loop, the History and
    the space treat it as any architecture. ``lr``: its learning rate; ``mutation``: how it was made;
    ``origins``: for each layer, the parent layer whose weights it may take (None: a new layer);
    ``parent_weights``: the parent's trained ``state_dict`` to start from (None: fresh weights).
    """

    def __new__(cls, layers=(), lr=None, mutation=None, origins=(), parent_weights=None):
        genome = super().__new__(cls, layers)
        genome.lr, genome.mutation, genome.origins = lr, mutation, tuple(origins)
        genome.parent_weights = parent_weights
        return genome


@dataclass
class TrainedResult(Result):
    """A Result that brings the trained weights back (on the CPU) for the children of this individual."""

    weights: dict | None = field(default=None, repr=False, compare=False)


class WeightInheritance(Evaluator):
    """Train each ``Genome`` from its parent's weights, wherever their shapes match, at its own learning rate.

    Wraps a training evaluator (``FullTraining``, ``LowFidelity``): the recipe, the data and the devices are
    its own, the learning rate the genome's. Nothing is cached: the same architecture trained again from its
    parent's weights is a new individual (the identity mutation means "keep training"). The History gets
    three columns: ``lr``, ``mutation`` and ``inherited``, the share of the child's parameters that it took
    from its parent. ``inherit=False`` trains every child from fresh weights, the comparison's other arm.
    """

    def __init__(self, training: FullTraining, inherit: bool = True):
        self.training, self.inherit = training, inherit
        self.name = training.name + ("+inheritance" if inherit else "")

    def to(self, device) -> "WeightInheritance":
        moved = copy.copy(self)
        moved.training = self.training.to(device)
        return moved

    def evaluate(self, arch) -> TrainedResult:
        t = self.training
        start = time.perf_counter()
        torch.manual_seed(t.config.seed)  # fresh weights as FullTraining draws them: the candidate and the seed only
        model = t.build(arch)
        parent = getattr(arch, "parent_weights", None)
        taken = model.inherit(parent, arch.origins) if self.inherit and parent is not None else []
        params = dict(model.named_parameters())
        share = sum(params[n].numel() for n in taken if n in params) / sum(p.numel() for p in params.values())
        lr = getattr(arch, "lr", None) or t.config.lr
        record = train(model.to(t.data.device), t.data, replace(t.config, lr=lr), progress=t.progress)
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return TrainedResult(valid_acc=record.final_valid_acc, test_acc=record.test_acc,
                             cost_s=time.perf_counter() - start - record.unpaid_seconds,
                             params=record.params, flops=record.flops,
                             curve=list(record.valid_acc), weights=weights,
                             info={"lr": lr, "mutation": getattr(arch, "mutation", None), "inherited": share})


class LargeScaleEvolution(Strategy):
    """Real et al. (ICML 2017): conv-free start, pairwise tournaments, mutation, weight inheritance.

    The population starts as ``population`` copies of the simplest network, no convolution at all (the
    image globally averaged into a linear classifier), each with learning rate ``lr`` (0.1 in the paper).
    Then each ``ask`` is a tournament (Section 3): two individuals drawn at random, the worse one dies at
    once, the better one -- which stays -- is copied and changed by one mutation drawn uniformly among those
    that apply to it. The paper's mutations (Section 3), here:

    - alter-learning-rate: ``alter_learning_rate`` (the rate times a factor in [1/2, 2], log-uniform: the
      example code of the paper's supplementary material, ``2 ** uniform(-1, 1)``);
    - identity ("keep training") and reset-weights: ``identity`` and ``reset_weights``;
    - insert-convolution, remove-convolution: ``add_layer``, ``remove_layer`` (the chain space inserts a 3x3
      convolution, stride 1 or 2, as wide as its input, where the space allows it);
    - alter-stride: ``alter_pool`` (none, stride 2 or a 2x2 max-pool); alter-number-of-channels:
      ``alter_filters``; filter-size: ``alter_kernel`` (square kernels: both sides at once);
    - add-skip, remove-skip: ``add_skip``, ``remove_skip`` (the chain space concatenates, as Zoph & Le did,
      where the paper adds);
    - insert-one-to-one has no counterpart: every layer of the chain space is a convolution.

    Every mutation but reset-weights keeps the parent's trained weights wherever the shapes match
    (``inherit=True``, through ``WeightInheritance``, which ``search`` puts around a training evaluator);
    ``inherit=False`` trains every child from fresh weights. The weights travel with the child to wherever
    it trains and come back with its result, so this works on Ray workers too. A resumed search replays
    every decision, but the checkpoint holds no weights: children of individuals trained before the stop
    start from fresh weights (their ``inherited`` is 0).
    """

    name = "large-scale-evolution"
    parallel = 8  # the paper's workers ran asynchronously, each one tournament at a time
    kinds = ("alter_learning_rate", "identity", "reset_weights")  # the mutations that keep the architecture

    def __init__(self, space, seed: int = 0, population: int = 10, inherit: bool = True, lr: float = 0.1):
        super().__init__(space, seed)
        if getattr(space, "min_layers", None) != 0 or not hasattr(space, "mutation"):
            raise NASInputError("large-scale evolution starts from networks without a convolution and grows them "
                                f"mutation by mutation: it needs ChainSpace(min_layers=0), not {space!r}")
        if not isinstance(inherit, bool):
            raise NASInputError(f"inherit must be True or False, got {inherit!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
            raise NASInputError(f"lr must be a number above zero, got {lr!r}")
        self.size = _check_size("population", population, 2)
        self.inherit, self.lr = inherit, float(lr)
        self.population: list[Individual] = []
        self.asked = 0
        self.told = 0

    def ask(self):
        self.asked += 1
        if self.asked <= self.size or len(self.population) < 2:
            return Genome((), self.lr, "initial")  # fill the population with the trivial network
        i, j = (int(k) for k in self.rng.choice(len(self.population), size=2, replace=False))
        if self.population[i].fitness < self.population[j].fitness:
            i, j = j, i
        parent = self.population[i]
        self.population.pop(j)  # the worse one dies now: a parallel worker never picks it again
        return self.mutate(parent)

    def mutate(self, parent: Individual, kind: str | None = None) -> Genome:
        """A copy of ``parent`` changed by one mutation (``kind``, else one drawn among those that apply)."""
        kinds = [*self.kinds, *self.space.applicable_mutations(parent.arch)]
        if kind is None:
            kind = kinds[int(self.rng.integers(len(kinds)))]
        check_choice("mutation", kind, kinds)
        arch, lr, origins = parent.arch, parent.lr or self.lr, tuple(range(len(parent.arch)))
        if kind == "alter_learning_rate":
            lr *= 2.0 ** self.rng.uniform(-1, 1)
        elif kind not in self.kinds:
            arch, _, origins = self.space.mutation(parent.arch, self.rng, kind)
        weights = parent.weights if self.inherit and kind != "reset_weights" else None
        return Genome(arch, lr, kind, origins, weights)

    def tell(self, arch, result) -> None:
        weights = getattr(result, "weights", None) if self.inherit else None  # none when replayed from a checkpoint
        self.population.append(Individual(tuple(arch), fitness_of(result), self.told,
                                          lr=getattr(arch, "lr", None) or self.lr, weights=weights))
        self.told += 1

    def wrap_evaluator(self, evaluator: Evaluator) -> Evaluator:
        """A training evaluator wrapped in ``WeightInheritance``; any other (a synthetic score) as it is."""
        if isinstance(evaluator, FullTraining):
            return WeightInheritance(evaluator, inherit=self.inherit)
        return evaluator


# ------------------------------------------------------------------------------------ regularized evolution

class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al. 2019, Algorithm 1): the best of ``sample`` individuals drawn with replacement
    is the parent; the oldest individual dies."""

    name = "regularized"
    parallel = 8

    def __init__(self, space, seed: int = 0, population: int = 10, sample: int = 3):
        super().__init__(space, seed)
        self.size = _check_size("population", population)
        self.sample = _check_size("sample", sample)
        if self.sample > self.size:
            raise NASInputError(f"sample ({sample}) cannot be larger than the population ({population})")
        self.population: deque[Individual] = deque()
        self.asked = 0
        self.told = 0

    def ask(self):
        self.asked += 1
        if self.asked <= self.size or not self.population:
            return self.space.sample(self.rng)
        # Algorithm 1 of the paper: S times "a random element of the population", so with replacement
        picked = self.rng.choice(len(self.population), self.sample, replace=True)
        contenders = [self.population[int(i)] for i in picked]
        parent = max(contenders, key=lambda ind: ind.fitness)
        return self.space.mutate(parent.arch, self.rng)

    def tell(self, arch, result) -> None:
        self.population.append(Individual(arch, fitness_of(result), self.told))
        self.told += 1
        if len(self.population) > self.size:
            self.population.popleft()  # the oldest dies, however good it was


# --------------------------------------------------------------------------------------------- Genetic CNN

class GeneticCNN(Strategy):
    """Generations of ``population`` individuals: roulette selection, stage crossover, bit-flip mutation.

    The paper's settings are N = 20, p_C = 0.2, p_M = 0.8 (q_C = 0.2 and q_M = 0.05, its CIFAR-10 settings, are
    the space's ``swap_prob`` and ``flip_prob``; on MNIST it used q_C = 0.3 and q_M = 0.1). On a
    ``GeneticSpace`` a mutation is the paper's independent bit flips (``flip_bits``), which may flip none; a
    child can then be its parent again, which the search loop looks up instead of training it again. The paper
    trains an individual again in every generation it appears in and keeps the mean accuracy of its trainings as
    its fitness, against the noise of training; the package's trainings start from the recipe's seed, so a second
    training would reproduce the first exactly, and the lookup gives the same fitness without paying for it. A whole
    generation can be evaluated at once (``parallel`` = N), and the next is bred from all N of its results, as
    the paper's Algorithm 1 does: until the last is told, ``ready`` is False (the search loop waits) and
    ``ask`` refuses.
    """

    name = "genetic"

    def __init__(self, space, seed: int = 0, population: int = 8, crossover_prob: float = 0.2,
                 mutation_prob: float = 0.8):
        super().__init__(space, seed)
        self.size = _check_size("population", population, 2)
        for kind, p in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if not 0 <= p <= 1:
                raise NASInputError(f"{kind} must be a probability in [0, 1], got {p!r}")
        self.crossover_prob, self.mutation_prob = crossover_prob, mutation_prob
        self.parallel = self.size
        self.generation = 0
        self.queue = [space.sample(self.rng) for _ in range(self.size)]  # generation 0: random strings
        self.scored: list[tuple] = []  # (arch, fitness) told in the current generation
        self.told = 0

    def ready(self) -> bool:
        """A candidate of this generation is left to ask, or every result of it has been told."""
        return bool(self.queue) or len(self.scored) >= self.size

    def ask(self):
        if not self.queue:
            if not self.ready():
                raise NASInputError(f"Genetic CNN breeds a generation from all {self.size} results of the last: "
                                    f"{len(self.scored)} told so far; tell the others before asking again")
            self.queue = self.breed()
            self.scored, self.generation = [], self.generation + 1
        return self.queue.pop(0)

    def tell(self, arch, result) -> None:
        self.scored.append((arch, fitness_of(result)))
        self.told += 1

    def select(self) -> list:
        """Russian roulette: N draws with replacement, chance proportional to fitness - min fitness."""
        fitness = np.array([f for _, f in self.scored], dtype=float)
        ok = np.isfinite(fitness)  # a failed evaluation is never selected (unless all failed)
        weights = np.zeros(len(fitness))
        if ok.any():
            weights[ok] = fitness[ok] - fitness[ok].min()
        if weights.sum() == 0:  # all equal: every valid individual is as likely
            weights = ok.astype(float) if ok.any() else np.ones(len(fitness))
        p = weights / weights.sum()
        return [self.scored[int(i)][0] for i in self.rng.choice(len(self.scored), size=self.size, p=p)]

    def breed(self) -> list:
        """The next generation: selection, crossover of pairs (2k, 2k+1), mutation of those not crossed."""
        if not self.scored:
            raise NASInputError("Genetic CNN needs one result of this generation before breeding the next")
        children = self.select()
        crossed = [False] * len(children)
        for k in range(0, len(children) - 1, 2):
            if self.rng.random() < self.crossover_prob:
                children[k], children[k + 1] = self._cross(children[k], children[k + 1])
                crossed[k] = crossed[k + 1] = True
        # only an individual left out of crossover may mutate (Algorithm 1: "each non-crossover individual")
        mutate = [not x and self.rng.random() < self.mutation_prob for x in crossed]
        # the paper's bit flips (a mutation may flip none) where the space has them, else a generic neighbour
        flip = getattr(self.space, "flip_bits", self.space.mutate)
        self.last_breed = {"crossed": crossed, "mutated": mutate}  # what happened to each child, for a reader
        return [flip(c, self.rng) if m else c for c, m in zip(children, mutate)]

    def _cross(self, a, b):
        if hasattr(self.space, "swap_stages"):
            return self.space.swap_stages(a, b, self.rng)
        return self.space.crossover(a, b, self.rng), self.space.crossover(b, a, self.rng)
