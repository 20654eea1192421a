"""Search spaces: the global chain of the early papers, the NAS-Bench-201 cell, the DARTS cell pair, Genetic CNN's
stages and the hierarchical motifs of Liu et al. (2018)."""

from __future__ import annotations

import importlib

from ..errors import check_choice
from .base import Decision, SearchSpace

SPACES = {
    "nb201": "cell:NB201Space",
    "chain": "chain:ChainSpace",
    "genetic": "genetic:GeneticSpace",
    "darts": "darts:DartsSpace",
    "hierarchical": "hierarchical:HierarchicalSpace",
}


def make_space(name: str, **options) -> SearchSpace:
    """The space ``name`` (``chain``, ``nb201``, ``darts``, ``genetic``, ``hierarchical``)."""
    check_choice("search space", name, SPACES)
    module, cls = SPACES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**options)


__all__ = ["SPACES", "Decision", "SearchSpace", "make_space"]
