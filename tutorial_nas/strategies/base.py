"""A search strategy proposes (``ask``) and learns from what it is told (``tell``)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import NASInputError
from ..spaces.base import SearchSpace


class Strategy(ABC):
    """Every strategy draws its randomness from its own generator, seeded once: same seed, same search.

    ``parallel`` says how many candidates may be asked for before their results are told (1 for strategies
    that must learn from each result before the next proposal, such as REINFORCE and Q-learning).
    """

    name = "strategy"
    parallel = 1

    def __init__(self, space: SearchSpace, seed: int = 0):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise NASInputError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
        self.space, self.seed = space, int(seed)
        self.rng = np.random.default_rng(self.seed)

    @abstractmethod
    def ask(self):
        """The next architecture to evaluate."""

    @abstractmethod
    def tell(self, arch, result) -> None:
        """Learn from the ``Result`` of evaluating ``arch``."""

    def ready(self) -> bool:
        """Whether ``ask`` may be called now. A generational strategy (Genetic CNN) breeds a generation from all
        the results of the last one, so with candidates still in flight it waits: the search loop asks only
        when this is True."""
        return True

    def wrap_evaluator(self, evaluator):
        """The evaluator that scores this strategy's candidates (``search`` asks): the one given, unless the
        strategy trains its candidates its own way (large-scale evolution: from the parent's weights)."""
        return evaluator
