"""Search strategies by name. Each file holds one algorithm, readable top to bottom."""

from __future__ import annotations

import importlib

from ..errors import check_choice
from .base import Strategy

# name -> "module:Class"; modules are imported on first use so that a learner pays only for what runs.
STRATEGIES = {
    "random": "random_search:RandomSearch",
    "reinforce": "reinforce:Reinforce",
    "qlearning": "qlearning:MetaQNN",
    "evolution": "evolution:LargeScaleEvolution",
    "regularized": "evolution:RegularizedEvolution",
    "genetic": "evolution:GeneticCNN",
    "bo": "bayesopt:BANANAS",
}


def make_strategy(name: str, space, seed: int = 0, **options) -> Strategy:
    """The strategy ``name`` on ``space`` with ``seed``; ``options`` go to its constructor."""
    check_choice("strategy", name, STRATEGIES)
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(space, seed=seed, **options)


__all__ = ["STRATEGIES", "Strategy", "make_strategy"]
