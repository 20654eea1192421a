"""Random search: the baseline every NAS method must beat (Li & Talwalkar 2019).

Yang et al. (ICLR 2020) set NAS methods against an even plainer baseline, random sampling: the average
architecture of the space, which no search chose."""

from __future__ import annotations

from .base import Strategy


class RandomSearch(Strategy):
    """Sample from the space's own distribution (``space.sample``: uniform over the space for most; the
    hierarchical space draws as its paper initialises, 1,000 random mutations of the trivial genotype); learn
    nothing."""

    name = "random"
    parallel = 64

    def ask(self):
        return self.space.sample(self.rng)

    def tell(self, arch, result) -> None:
        pass
