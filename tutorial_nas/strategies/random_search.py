"""Random search: the baseline every NAS method must beat (Li & Talwalkar 2019; Yang et al. 2020)."""

from __future__ import annotations

from .base import Strategy


class RandomSearch(Strategy):
    """Sample uniformly from the space; learn nothing."""

    name = "random"
    parallel = 64

    def ask(self):
        return self.space.sample(self.rng)

    def tell(self, arch, result) -> None:
        pass
