"""The hierarchical space of Liu et al. (ICLR 2018), "Hierarchical Representations for Efficient Architecture Search".

Level 1 is six primitives on C channels (Section 2.3): ``conv1x1``, ``dwconv3x3`` (3x3 depthwise), ``sepconv3x3``
(3x3 separable), ``maxpool3x3``, ``avgpool3x3`` and ``identity``; ``none`` means no edge. A level-2 motif is a DAG
whose edges hold primitives; the level-3 motif is a DAG whose edges hold level-2 motifs (or ``none``). In every
DAG node 0 is the input, the last node the output, and an edge runs from a lower node to a higher one, so every
genotype is acyclic by construction. A node with several inputs merges them by depthwise concatenation, the
paper's merge, followed here by a 1x1 convolution (with batch norm and ReLU) back to C channels, so that every node
keeps C channels; the 1x1 convolution is this package's. A node with one input passes it on.

The paper uses M=6 level-2 motifs of 4 nodes and one level-3 motif of 5 nodes; the defaults here are scaled
down to 3 motifs of 4 nodes and a level-3 motif of 4 nodes, so that a network trains in seconds on a CPU. As in the
paper (Section 4.1: "Each level-2 motif is followed by a 1x1 convolution with the same number of channels as on the
motif input to reduce the number of parameters"), every level-2 motif on an edge of the level-3 motif is followed
by a 1x1 convolution, C to C channels, with its own weights (an edge that is ``none`` holds neither). The paper
says nothing of batch norm or ReLU around this convolution; the package builds it as its other convolutions,
convolution then batch norm then ReLU (``conv_bn_relu``, the order of Section 2.3's primitives). So even the
trivial genotype's network has weights in its cells: one such convolution per edge of its level-3 chain.

A genotype is a ``Hierarchy``: ``motifs`` (one tuple of edge ops per level-2 motif) and ``top`` (the level-3
motif's edge ops, ``m1``..``mM`` or ``none``). Edges are listed by target node, then source node: for 4 nodes
(0,1), (0,2), (1,2), (0,3), (1,3), (2,3). Written as a string, the inputs of each node are separated by ``|``:

    m1: conv1x1 | identity,none | sepconv3x3,none,maxpool3x3 ; m2: ... ; m3: ... ; top: m1 | m2,none | m3,m1,m2

Two deviations, both so that every genotype is a working network: a node must keep at least one incoming edge
(the paper lets ``none`` cut a node off), and a mutation always picks an op different from the current one (the
paper may draw the same op again, a mutation that changes nothing).

Search runs through the package's strategies: ``search(space, "random", ...)`` draws genotypes as the paper
initialises them; ``search(space, "regularized", ...)`` evolves them with this mutation. The paper's evolution
(Section 3.3) is tournament selection of 5 % of the population, the best of them mutated, and nobody removed;
regularized evolution's tournament (``sample`` of ``population``) selects the same way, with three differences:
the oldest individual dies, the sample is drawn with replacement (Real et al.'s), and the population keeps its
size, so ``sample = population // 20`` is the paper's 5 % at the start only (the paper's population, and its 5 %,
grow with every individual evaluated).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NASInputError
from .base import SearchSpace

PRIMITIVES = ("none", "identity", "conv1x1", "dwconv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3")


class Hierarchy(NamedTuple):
    """A genotype: the level-2 motifs' edge ops and the level-3 motif's edge ops."""

    motifs: tuple
    top: tuple


class Mutation(NamedTuple):
    """A child and where it differs from its parent: the level (2 or 3), the motif (0-based), the edge (i, j)."""

    arch: Hierarchy
    level: int
    motif: int
    edge: tuple


def edges(nodes: int) -> list:
    """The edges (i, j), i < j, of a DAG on ``nodes`` nodes, by target node then source node."""
    return [(i, j) for j in range(1, nodes) for i in range(j)]


# --------------------------------------------------------------------------------------------- the network

def conv_bn_relu(conv: nn.Module, c: int) -> nn.Module:
    """Each convolutional primitive is followed by batch norm and ReLU (Section 2.3)."""
    return nn.Sequential(conv, nn.BatchNorm2d(c), nn.ReLU())


def primitive(op: str, c: int) -> nn.Module:
    if op == "identity":
        return nn.Identity()
    if op == "conv1x1":
        return conv_bn_relu(nn.Conv2d(c, c, 1, bias=False), c)
    if op == "dwconv3x3":
        return conv_bn_relu(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), c)
    if op == "sepconv3x3":
        return conv_bn_relu(nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
                                          nn.Conv2d(c, c, 1, bias=False)), c)
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, 1, 1)
    if op == "avgpool3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    raise NASInputError(f"no primitive {op!r}; the primitives are {', '.join(PRIMITIVES[1:])}")


class Motif(nn.Module):
    """A DAG of ops (``build(op)`` makes the module of one edge op); several inputs: concat, then 1x1 conv."""

    def __init__(self, ops: tuple, nodes: int, c: int, build):
        super().__init__()
        self.inputs = [[(i, k) for k, (i, j) in enumerate(edges(nodes)) if j == node and ops[k] != "none"]
                       for node in range(nodes)]
        self.ops = nn.ModuleDict({str(k): build(op) for k, op in enumerate(ops) if op != "none"})
        self.merge = nn.ModuleDict({str(node): conv_bn_relu(nn.Conv2d(len(ins) * c, c, 1, bias=False), c)
                                    for node, ins in enumerate(self.inputs) if len(ins) > 1})

    def forward(self, x):
        states = [x]
        for node in range(1, len(self.inputs)):
            outs = [self.ops[str(k)](states[i]) for i, k in self.inputs[node]]
            states.append(self.merge[str(node)](torch.cat(outs, 1)) if len(outs) > 1 else outs[0])
        return states[-1]


def level2_edge(motif: Motif, c: int) -> nn.Sequential:
    """A level-3 edge: the level-2 ``motif``, then the paper's 1x1 convolution of ``c`` channels (Section 4.1),
    here convolution, batch norm and ReLU as the primitives. Its parts are ``.motif`` and ``.conv``."""
    return nn.Sequential(OrderedDict(motif=motif, conv=conv_bn_relu(nn.Conv2d(c, c, 1, bias=False), c)))


class HierarchicalNetwork(nn.Module):
    """The small skeleton: stem (3x3 conv), cell, reduction (3x3 separable conv, stride 2, doubling the
    channels, as the paper's reductions), cell, global average pool and a linear head. Both cells are the
    level-3 motif, each with its own weights. The paper's search network has three cells with a reduction
    between each two and a 3x3 separable convolution after the last (Section 4.1, Figure 2); this one stops
    after the second cell, so that it trains in seconds on a CPU."""

    def __init__(self, space: "HierarchicalSpace", arch: Hierarchy, num_classes: int, in_channels: int, C: int):
        super().__init__()
        self.stem = conv_bn_relu(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), C)
        self.cell1 = space.cell(arch, C)
        self.reduce = conv_bn_relu(nn.Sequential(nn.Conv2d(C, C, 3, 2, 1, groups=C, bias=False),
                                                 nn.Conv2d(C, 2 * C, 1, bias=False)), 2 * C)
        self.cell2 = space.cell(arch, 2 * C)
        self.head = nn.Linear(2 * C, num_classes)

    def forward(self, x):
        x = self.cell2(self.reduce(self.cell1(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ----------------------------------------------------------------------------------------------- the space

class HierarchicalSpace(SearchSpace):
    """``motifs`` level-2 motifs of ``motif_nodes`` nodes and one level-3 motif of ``top_nodes`` nodes."""

    name = "hierarchical"

    def __init__(self, motifs: int = 3, motif_nodes: int = 4, top_nodes: int = 4, init_mutations: int = 1000):
        for kind, value, low in (("motifs", motifs, 1), ("motif_nodes", motif_nodes, 2), ("top_nodes", top_nodes, 2),
                                 ("init_mutations", init_mutations, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise NASInputError(f"{kind} must be a whole number of at least {low}, got {value!r}")
        self.n_motifs, self.motif_nodes, self.top_nodes = motifs, motif_nodes, top_nodes
        self.init_mutations = init_mutations
        self.motif_names = ("none",) + tuple(f"m{k + 1}" for k in range(motifs))

    def __repr__(self):
        return (f"HierarchicalSpace(motifs={self.n_motifs}, motif_nodes={self.motif_nodes}, "
                f"top_nodes={self.top_nodes})")

    def _level(self, level: int):
        """(nodes, the ops an edge may hold) of a motif at ``level``: the ops of the level below, with none."""
        return (self.motif_nodes, PRIMITIVES) if level == 2 else (self.top_nodes, self.motif_names)

    @staticmethod
    def _connected(ops: tuple, nodes: int) -> bool:
        """Every node but the input has an incoming edge (so every node is computed from the input)."""
        fed = {j for (i, j), op in zip(edges(nodes), ops) if op != "none"}
        return fed == set(range(1, nodes))

    # -- how many genotypes, and how to draw one
    def size(self) -> int:
        """Exactly: node j of a motif has j incoming edges, not all none, so (K**j - 1) choices for K ops."""
        def motifs(nodes, k):
            return int(np.prod([k ** j - 1 for j in range(1, nodes)], dtype=object))
        return motifs(self.motif_nodes, len(PRIMITIVES)) ** self.n_motifs * motifs(self.top_nodes,
                                                                                    len(self.motif_names))

    def trivial(self) -> Hierarchy:
        """The paper's starting genotype (Section 3.2, initialisation): every motif a chain of identity mappings,
        edge (j - 1, j) the identity into every node j and every other edge ``none``. A level-3 edge holds a
        level-2 motif here (identity is a level-1 op only), so the level-3 chain is of motif m1, itself a chain of
        identities. Its motifs compute the identity, but each level-2 motif on a level-3 edge is followed by the
        paper's 1x1 convolution (with batch norm and ReLU), so each cell of its network is a chain of
        ``top_nodes - 1`` such convolutions, ``(top_nodes - 1) * (c * c + 2 * c)`` parameters on ``c`` channels: the
        network is the skeleton and these convolutions."""
        def chain(nodes, op):
            return tuple(op if i == j - 1 else "none" for i, j in edges(nodes))

        return Hierarchy(tuple(chain(self.motif_nodes, "identity") for _ in range(self.n_motifs)),
                         chain(self.top_nodes, "m1"))

    def sample(self, rng):
        """As the paper initialises (Section 3.2): the trivial genotype after ``init_mutations`` mutations."""
        arch = self.trivial()
        for _ in range(self.init_mutations):
            arch = self.mutation(arch, rng).arch
        return arch

    # -- the paper's mutation (Section 3.1)
    def mutate(self, arch, rng):
        return self.mutation(arch, rng).arch

    def mutation(self, arch, rng) -> Mutation:
        """Pick a level, a motif at that level, a target node j, a source node i < j, and give edge (i, j) a
        random op of the level below (``none`` included) other than its current one. An edge with no such op
        (with a single level-2 motif, the only input of a level-3 node can become nothing else) is drawn again."""
        for _ in range(1000):
            level = int(rng.integers(2, 4))
            m = int(rng.integers(self.n_motifs)) if level == 2 else 0
            nodes, options = self._level(level)
            j = int(rng.integers(1, nodes))
            i = int(rng.integers(j))
            k = edges(nodes).index((i, j))
            ops = arch.motifs[m] if level == 2 else arch.top
            others = [op for op in options if op != ops[k]
                      and self._connected(ops[:k] + (op,) + ops[k + 1:], nodes)]
            if others:
                break
        else:
            raise NASInputError(f"no edge of {arch!r} can be mutated")
        new = ops[:k] + (others[int(rng.integers(len(others)))],) + ops[k + 1:]
        child = (arch._replace(motifs=arch.motifs[:m] + (new,) + arch.motifs[m + 1:]) if level == 2
                 else arch._replace(top=new))
        return Mutation(child, level, m, (i, j))

    # -- strings
    @staticmethod
    def _motif_str(ops: tuple, nodes: int) -> str:
        by_node = [[op for (i, j), op in zip(edges(nodes), ops) if j == node] for node in range(1, nodes)]
        return " | ".join(",".join(ins) for ins in by_node)

    def to_str(self, arch) -> str:
        parts = [f"m{k + 1}: {self._motif_str(ops, self.motif_nodes)}" for k, ops in enumerate(arch.motifs)]
        return " ; ".join(parts + [f"top: {self._motif_str(arch.top, self.top_nodes)}"])

    def parse(self, text: str):
        form = ("'m1: <motif> ; ... ; m{M}: <motif> ; top: <motif>', a motif listing each node's incoming ops "
                "(from node 0 up), nodes separated by '|', e.g. 'conv1x1 | identity,none | ...'")
        if not isinstance(text, str) or not text.strip():
            raise NASInputError(f"a hierarchical genotype must be a non-empty str, got {text!r}; the form is {form}")
        parts = [p.strip() for p in text.split(";")]
        names = [f"m{k + 1}" for k in range(self.n_motifs)] + ["top"]
        if len(parts) != len(names):
            raise NASInputError(f"{text!r} has {len(parts)} motifs; this space has {self.n_motifs} level-2 motifs "
                                f"and one level-3 motif, written {form}")
        motifs = []
        for name, part in zip(names, parts):
            label, _, body = part.partition(":")
            if label.strip() != name:
                raise NASInputError(f"expected motif {name!r} in {text!r}, got {part!r}; the form is {form}")
            nodes, options = self._level(3 if name == "top" else 2)
            by_node = [[op.strip() for op in group.split(",")] for group in body.split("|")]
            if [len(ins) for ins in by_node] != list(range(1, nodes)):
                raise NASInputError(f"motif {name} in {text!r}: node j (1..{nodes - 1}) lists j incoming ops, "
                                    f"got {[len(ins) for ins in by_node]}")
            ops = tuple(op for ins in by_node for op in ins)
            for op in ops:
                if op not in options:
                    raise NASInputError(f"motif {name} has op {op!r}; its edges hold {', '.join(options)}")
            if not self._connected(ops, nodes):
                raise NASInputError(f"motif {name} in {text!r} leaves a node without an incoming edge "
                                    "(every node needs one op other than none)")
            motifs.append(ops)
        return Hierarchy(tuple(motifs[:-1]), motifs[-1])

    # -- encoding and building
    def encode(self, arch) -> np.ndarray:
        """One-hot op per edge: every level-2 motif's edges, then the level-3 motif's."""
        rows = [np.eye(len(PRIMITIVES), dtype=np.float32)[[PRIMITIVES.index(op) for op in ops]]
                for ops in arch.motifs]
        rows.append(np.eye(len(self.motif_names), dtype=np.float32)[[self.motif_names.index(op) for op in arch.top]])
        return np.concatenate([r.ravel() for r in rows])

    def cell(self, arch: Hierarchy, c: int) -> nn.Module:
        """The level-3 motif on ``c`` channels, each edge (other than ``none``) a level-2 motif followed by the
        paper's 1x1 convolution of ``c`` channels (``level2_edge``), each with its own weights."""
        def level2(name):
            ops = arch.motifs[self.motif_names.index(name) - 1]
            return level2_edge(Motif(ops, self.motif_nodes, c, lambda op: primitive(op, c)), c)
        return Motif(arch.top, self.top_nodes, c, level2)

    def to_model(self, arch, num_classes: int, in_channels: int, C: int = 8, **_) -> nn.Module:
        return HierarchicalNetwork(self, arch, num_classes, in_channels, C)
