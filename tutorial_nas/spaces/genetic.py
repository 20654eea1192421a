"""The Genetic CNN space (Xie & Yuille, ICCV 2017): a network as a fixed-length binary string.

The network has S stages joined by 2x2 max-pooling. Stage s holds K_s ordered nodes, each a 3x3
convolution + batch norm + ReLU, and one bit for every pair of nodes i < j says whether node i feeds node
j: K_s(K_s-1)/2 bits per stage, so ``nodes=(3, 4, 5)`` is 3 + 6 + 10 = 19 bits and 2**19 networks.

Two default nodes close the stage: the input node (a convolution of the stage's input) feeds every node
that has no predecessor, and the output node (a convolution of a sum) reads every node that has no
successor. A node with no connection at all is left out, and a stage whose bits are all zero is the input
node followed by the output node. Nodes add their inputs, so any bit string is a valid network.

An architecture is a tuple with one tuple of bits per stage, written stage by stage with the bits of each
node (the bits from nodes 1..j-1 into node j) grouped by ``-`` and the stages separated by ``|``, as in
the paper's figures: ``1-01|1-00-111`` is a 3-node stage and a 4-node stage.
"""

from __future__ import annotations

import re

import numpy as np
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NASInputError
from .base import Decision, SearchSpace

FORM = "the bits of each node grouped by '-' and the stages separated by '|', e.g. '1-01|1-00-111'"


def stage_edges(bits, K: int) -> list:
    """The connections (i, j), 1 <= i < j <= K, of one stage, in bit order: (1,2), (1,3), (2,3), (1,4)..."""
    pairs = [(i, j) for j in range(2, K + 1) for i in range(1, j)]
    return [pair for pair, bit in zip(pairs, bits) if bit]


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Stage(nn.Module):
    """One stage: input node, the connected nodes of the bit string (summing their inputs), output node."""

    def __init__(self, bits, K: int, c_in: int, c: int):
        super().__init__()
        edges = stage_edges(bits, K)
        self.active = sorted({n for edge in edges for n in edge})  # isolated nodes are left out
        self.preds = {j: [i for i, k in edges if k == j] for j in self.active}
        self.sinks = [i for i in self.active if not any(a == i for a, _ in edges)]
        self.input_node = conv_bn_relu(c_in, c)
        self.nodes = nn.ModuleDict({str(j): conv_bn_relu(c, c) for j in self.active})
        self.output_node = conv_bn_relu(c, c)

    def forward(self, x):
        x = self.input_node(x)
        out = {}
        for j in self.active:
            preds = self.preds[j]
            out[j] = self.nodes[str(j)](sum(out[i] for i in preds) if preds else x)
        return self.output_node(sum(out[j] for j in self.sinks) if self.sinks else x)


class GeneticNetwork(nn.Module):
    """The stages with C, 2C, 4C... channels, max-pooling between them, global pooling, linear classifier."""

    def __init__(self, arch, nodes, num_classes: int, in_channels: int = 3, C: int = 8):
        super().__init__()
        stages, c_in = [], in_channels
        for s, (bits, K) in enumerate(zip(arch, nodes)):
            stages.append(Stage(bits, K, c_in, C * 2 ** s))
            c_in = C * 2 ** s
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s < len(self.stages) - 1 and min(x.shape[-2:]) >= 2:  # never below 1x1, even on 8x8 digits
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return self.classifier(x.mean(dim=(2, 3)))


class GeneticSpace(SearchSpace):
    """Bit strings of ``sum(K(K-1)/2)`` bits for stages of ``nodes`` = (K_1, ..., K_S) nodes.

    ``flip_prob`` is the paper's q_M (each bit flips with it in a mutation); ``swap_prob`` its q_C (each
    stage is swapped with it in a crossover). The defaults are its CIFAR-10 settings: three stages of
    (3, 4, 5) nodes, q_M = 0.05, q_C = 0.2 (on MNIST: two stages of (3, 5), q_M = 0.1, q_C = 0.3).
    """

    name = "genetic"

    def __init__(self, nodes=(3, 4, 5), flip_prob: float = 0.05, swap_prob: float = 0.2):
        nodes = tuple(nodes)
        if not nodes or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 2
                                for k in nodes):
            raise NASInputError(f"nodes must list at least one stage of 2 or more nodes, got {nodes!r}")
        for kind, p in (("flip_prob", flip_prob), ("swap_prob", swap_prob)):
            if not 0 <= p <= 1:
                raise NASInputError(f"{kind} must be a probability in [0, 1], got {p!r}")
        self.nodes = tuple(int(k) for k in nodes)
        self.bits = tuple(k * (k - 1) // 2 for k in self.nodes)
        self.flip_prob, self.swap_prob = flip_prob, swap_prob

    def __repr__(self):
        return f"GeneticSpace(nodes={self.nodes})"

    def size(self) -> int:
        return 2 ** sum(self.bits)

    def sample(self, rng):
        """Every bit a fair coin, as the paper initialises its population."""
        return tuple(tuple(int(b) for b in rng.integers(0, 2, size=n)) for n in self.bits)

    def flip_bits(self, arch, rng):
        """The paper's mutation: every bit flips independently with probability ``flip_prob`` (q_M). With 19 bits
        and q_M = 0.05, 0.95^19 = 38 % of mutations flip none and leave the individual as it was."""
        flat = np.array(self.to_tokens(arch), dtype=np.int64)
        return self._split(np.where(rng.random(len(flat)) < self.flip_prob, 1 - flat, flat))

    def mutate(self, arch, rng):
        """A neighbour for the generic strategies (regularized evolution and the others need a child that
        differs): ``flip_bits``' rule, and if no bit flipped, one flipped at random. Genetic CNN itself mutates
        by ``flip_bits``."""
        child = self.flip_bits(arch, rng)
        if child != tuple(tuple(stage) for stage in arch):
            return child
        flat = np.array(self.to_tokens(arch), dtype=np.int64)
        k = int(rng.integers(len(flat)))
        flat[k] = 1 - flat[k]
        return self._split(flat)

    def swap_stages(self, a, b, rng) -> tuple:
        """The paper's crossover: each stage is exchanged between the two parents with ``swap_prob``."""
        a, b = list(a), list(b)
        for s in range(len(a)):
            if rng.random() < self.swap_prob:
                a[s], b[s] = b[s], a[s]
        return tuple(a), tuple(b)

    def crossover(self, a, b, rng):
        return self.swap_stages(a, b, rng)[0]

    def _split(self, flat) -> tuple:
        out, pos = [], 0
        for n in self.bits:
            out.append(tuple(int(b) for b in flat[pos:pos + n]))
            pos += n
        return tuple(out)

    def check(self, arch) -> tuple:
        """``arch`` as a tuple of bit tuples, one per stage of the right length, or a NASInputError."""
        try:
            arch = tuple(tuple(stage) for stage in arch)
        except TypeError:
            arch = None
        if (arch is None or tuple(len(stage) for stage in arch) != self.bits
                or not all(b in (0, 1) and not isinstance(b, float) for stage in arch for b in stage)):
            raise NASInputError(f"a Genetic CNN architecture of this space is {len(self.bits)} stage(s) of "
                                f"{self.bits} bits (0 or 1), got {arch!r}; the string form is {FORM}")
        return tuple(tuple(int(b) for b in stage) for stage in arch)

    def to_str(self, arch) -> str:
        arch = self.check(arch)
        stages = []
        for bits, K in zip(arch, self.nodes):
            groups, pos = [], 0
            for j in range(2, K + 1):
                groups.append("".join(str(b) for b in bits[pos:pos + j - 1]))
                pos += j - 1
            stages.append("-".join(groups))
        return "|".join(stages)

    def parse(self, text: str):
        if not isinstance(text, str):
            raise NASInputError(f"a Genetic CNN string must be a str, got {type(text).__name__}; "
                                f"the form is {FORM}")
        stages = text.strip().split("|")
        if len(stages) != len(self.nodes):
            raise NASInputError(f"{text!r} has {len(stages)} stage(s); this space has {len(self.nodes)} "
                                f"(nodes={self.nodes}); the form is {FORM}")
        arch = []
        for s, (stage, K) in enumerate(zip(stages, self.nodes)):
            groups = stage.strip().split("-")
            expected = [j - 1 for j in range(2, K + 1)]
            if [len(g) for g in groups] != expected or not all(re.fullmatch(r"[01]+", g) for g in groups):
                shown = "-".join("b" * n for n in expected)
                raise NASInputError(f"stage {s} of {text!r} is {stage!r}; a stage of {K} nodes is written "
                                    f"{shown} with b in 0/1 ({FORM})")
            arch.append(tuple(int(b) for b in "".join(groups)))
        return tuple(arch)

    def encode(self, arch) -> np.ndarray:
        return np.concatenate([np.array(stage, dtype=np.float32) for stage in arch])

    def to_model(self, arch, num_classes: int, in_channels: int, C: int = 8, **_) -> nn.Module:
        """The network with ``C`` channels in the first stage, doubled per stage (8, 16, 32 on MNIST)."""
        return GeneticNetwork(self.check(arch), self.nodes, num_classes, in_channels, C=C)

    # the token interface: one yes/no decision per bit, so a controller can also search this space
    def next_decision(self, tokens):
        if len(tokens) >= sum(self.bits):
            return None
        return Decision(f"bit {len(tokens)}", (0, 1), "bit")

    def from_tokens(self, tokens):
        tokens = list(tokens)
        if len(tokens) != sum(self.bits):
            raise NASInputError(f"this space's architectures are {sum(self.bits)} bits, got {len(tokens)} tokens")
        return self.check(self._split(tokens))

    def to_tokens(self, arch):
        return [int(b) for stage in arch for b in stage]
