"""Search strategies by name. Each file holds one algorithm, readable top to bottom."""

from __future__ import annotations

import importlib

from ..errors import NASInputError, check_choice
from .base import Strategy

# name -> "module:Class"; modules are imported on first use so that a learner pays only for what runs.
# One name for one algorithm, the same in search(), compare(), the command line and the chapters.
STRATEGIES = {
    "random": "random_search:RandomSearch",
    "reinforce": "reinforce:Reinforce",
    "reinforce-nb201": "reinforce:NB201Reinforce",
    "qlearning": "qlearning:MetaQNN",
    "blockqnn": "blockqnn:BlockQNN",
    "large-scale-evolution": "evolution:LargeScaleEvolution",
    "regularized": "evolution:RegularizedEvolution",
    "genetic": "evolution:GeneticCNN",
    "bo": "bayesopt:BANANAS",
}
# names that would mean more than one algorithm: refused, with the choices
AMBIGUOUS = {
    "evolution": "'evolution' could mean two algorithms; choose 'large-scale-evolution' (Real et al. 2017: "
                 "networks grown from no convolution by pairwise tournaments, weights inherited; chain space) "
                 "or 'regularized' (Real et al. 2019: regularized, or aging, evolution; any space)",
}


def check_strategy(name) -> None:
    """Raise a clear error unless ``name`` is in ``STRATEGIES`` (an ambiguous name lists its choices)."""
    if isinstance(name, str) and name in AMBIGUOUS:
        raise NASInputError(AMBIGUOUS[name])
    check_choice("strategy", name, STRATEGIES)


def make_strategy(name: str, space, seed: int = 0, **options) -> Strategy:
    """The strategy ``name`` on ``space`` with ``seed``; ``options`` go to its constructor."""
    check_strategy(name)
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(space, seed=seed, **options)


__all__ = ["AMBIGUOUS", "STRATEGIES", "Strategy", "check_strategy", "make_strategy"]
