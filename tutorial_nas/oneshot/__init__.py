"""One-shot NAS: one supernet trained once stands in for every network of the space.

``darts``: the continuous relaxation (DARTS first and second order, GDAS) on the DARTS and NAS-Bench-201
cells; ``architect``: its bilevel architecture step and search loop; ``supernet``: weight sharing by sampled
paths (ENAS, SPOS).
"""

from .darts import darts_search, derive_genotype, derive_nb201

__all__ = ["darts_search", "derive_genotype", "derive_nb201"]
