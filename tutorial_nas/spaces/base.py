"""What every search space can do, each capability explicit (Archai's discrete-search API is the model).

An architecture is a plain, hashable Python value (a tuple, a namedtuple); the space knows how to
sample it, change it, print it as a string that parses back, encode it for a predictor and build it as a
network. Controllers that write an architecture token by token (REINFORCE, ENAS) use the token interface:
``next_decision(tokens)`` says what the next choice is (or ``None`` when the architecture is complete),
``from_tokens`` and ``to_tokens`` convert.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch.nn as nn


@dataclass(frozen=True)
class Decision:
    """One choice a controller makes.

    ``kind`` is ``"choice"`` (pick one of ``choices``; ``group`` names the softmax head, so that every
    decision of one group shares it) or ``"anchor"`` (a yes/no skip connection from layer ``source`` into
    layer ``target``, scored by Zoph & Le's attention between the two layers' controller states).
    """

    name: str
    choices: tuple
    group: str
    kind: str = "choice"
    target: int = 0
    source: int = 0


class SearchSpace(ABC):
    """A discrete space of architectures."""

    name: str = "space"

    @abstractmethod
    def sample(self, rng: np.random.Generator):
        """One architecture drawn uniformly (or as uniformly as the space allows)."""

    @abstractmethod
    def mutate(self, arch, rng: np.random.Generator):
        """A neighbour of ``arch``: one small random change."""

    @abstractmethod
    def to_str(self, arch) -> str:
        """The architecture as a string that ``parse`` reads back."""

    @abstractmethod
    def parse(self, text: str):
        """The architecture written by ``to_str``; a clear ``NASInputError`` otherwise."""

    @abstractmethod
    def encode(self, arch) -> np.ndarray:
        """A fixed-length float vector for predictors and model-based search."""

    @abstractmethod
    def to_model(self, arch, num_classes: int, in_channels: int, **sizes) -> nn.Module:
        """The network of ``arch``; ``sizes`` (channels, cells...) come from the profile."""

    @abstractmethod
    def size(self) -> int:
        """How many architectures the space holds."""

    # The token interface for controllers. Spaces that support it override all three.
    def next_decision(self, tokens: list) -> Decision | None:
        raise TypeError(f"the {self.name!r} space has no token interface")

    def from_tokens(self, tokens: list):
        raise TypeError(f"the {self.name!r} space has no token interface")

    def to_tokens(self, arch) -> list:
        raise TypeError(f"the {self.name!r} space has no token interface")

    def crossover(self, a, b, rng: np.random.Generator):
        """A child mixing ``a`` and ``b``; spaces without a natural crossover return a mutant of ``a``."""
        return self.mutate(a, rng)

    def key(self, arch) -> str:
        """A hashable identity used to deduplicate (isomorphic architectures may share one)."""
        return self.to_str(arch)
