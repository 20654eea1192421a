"""Evolution: large-scale evolution, regularized (aging) evolution and Genetic CNN.

All three keep a population of evaluated architectures and make children with the space's ``mutate`` (and,
for Genetic CNN, ``crossover``); they differ in who may be a parent and who dies.

- ``LargeScaleEvolution`` (Real et al., ICML 2017): pick two individuals at random; the worse one dies,
  the better one is copied and mutated, and the child joins the population once trained. Nothing else
  ever dies, so an individual that was lucky once can live forever.
- ``RegularizedEvolution`` (Real et al., AAAI 2019): sample S individuals, mutate the best of the sample,
  and remove the *oldest* individual of the population. Aging removes lucky ones too, which makes the
  search robust to noisy accuracies; P = 10 and S = 3 as in AutoDL's NAS-Bench-201 runs.
- ``GeneticCNN`` (Xie & Yuille, ICCV 2017): generations of N bit strings (``GeneticSpace``); each
  generation is selected by Russian roulette (chance proportional to fitness minus the worst fitness),
  crossed over (pairs swap stages with probability p_C) and mutated (probability p_M), then evaluated.

Fitness is the validation accuracy. Each strategy first proposes random architectures until its population
is full; afterwards every ``ask`` makes a child.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import NASInputError
from .base import Strategy


@dataclass
class Individual:
    arch: object
    fitness: float
    born: int  # the step at which it joined the population (its age, for aging evolution)


def fitness_of(result) -> float:
    """The validation accuracy, with a failed evaluation (nan) the worst possible."""
    value = float(result.valid_acc)
    return -math.inf if math.isnan(value) else value


def _check_size(kind: str, value, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise NASInputError(f"{kind} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


class LargeScaleEvolution(Strategy):
    """Pairwise tournaments: the worse of two random individuals dies, the better one is mutated."""

    name = "evolution"
    parallel = 8

    def __init__(self, space, seed: int = 0, population: int = 10):
        super().__init__(space, seed)
        self.size = _check_size("population", population, 2)
        self.population: list[Individual] = []
        self.asked = 0
        self.told = 0

    def ask(self):
        self.asked += 1
        if self.asked <= self.size or len(self.population) < 2:
            return self.space.sample(self.rng)  # fill the population first
        i, j = self.rng.choice(len(self.population), size=2, replace=False)
        a, b = self.population[i], self.population[j]
        better, worse = (a, b) if a.fitness >= b.fitness else (b, a)
        self.population.remove(worse)  # killed now: a parallel worker never picks it again
        return self.space.mutate(better.arch, self.rng)

    def tell(self, arch, result) -> None:
        self.population.append(Individual(arch, fitness_of(result), self.told))
        self.told += 1


class RegularizedEvolution(Strategy):
    """Aging evolution: tournament of ``sample`` individuals picks the parent, the oldest individual dies."""

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
        k = min(self.sample, len(self.population))
        picked = self.rng.choice(len(self.population), k, replace=False)
        contenders = [self.population[int(i)] for i in picked]
        parent = max(contenders, key=lambda ind: ind.fitness)
        return self.space.mutate(parent.arch, self.rng)

    def tell(self, arch, result) -> None:
        self.population.append(Individual(arch, fitness_of(result), self.told))
        self.told += 1
        if len(self.population) > self.size:
            self.population.popleft()  # the oldest dies, however good it was


class GeneticCNN(Strategy):
    """Generations of ``population`` individuals: roulette selection, stage crossover, bit-flip mutation.

    The paper's settings are N = 20, p_C = 0.2, p_M = 0.8 (q_C = 0.2 and q_M = 0.05 are the space's
    ``swap_prob`` and ``flip_prob``). A whole generation can be evaluated at once (``parallel`` = N); if
    asked for more before every result is in, the next generation is bred from the results told so far.
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

    def ask(self):
        if not self.queue:
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
        """The next generation: selection, then crossover of pairs (2k, 2k+1), then mutation."""
        if not self.scored:
            raise NASInputError("Genetic CNN needs one result of this generation before breeding the next")
        children = self.select()
        for k in range(0, len(children) - 1, 2):
            if self.rng.random() < self.crossover_prob:
                children[k], children[k + 1] = self._cross(children[k], children[k + 1])
        mutate = [self.rng.random() < self.mutation_prob for _ in children]
        return [self.space.mutate(c, self.rng) if m else c for c, m in zip(children, mutate)]

    def _cross(self, a, b):
        if hasattr(self.space, "swap_stages"):
            return self.space.swap_stages(a, b, self.rng)
        return self.space.crossover(a, b, self.rng), self.space.crossover(b, a, self.rng)
