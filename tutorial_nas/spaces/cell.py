"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), exactly.

A cell is a DAG of 4 nodes; node 0 is the input, node 3 the output, and every edge i -> j (i < j) carries one
of five operations, so a cell is 6 op names and the space holds 5**6 = 15,625 cells. Nodes sum their inputs.
The arch string lists the edges into node 1, then node 2, then node 3:

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

Here a cell is the tuple of its 6 op names in that order: (e01, e02, e12, e03, e13, e23).

Isomorphism. Many cells compute the same function. The canonical rule is AutoDL's
``Structure.to_unique_str(consider_zero=True)``: a node is the sorted sum of its incoming terms, where a
``none`` edge, or any edge out of a node whose whole expression is the single term ``#``, gives the zero term
``#`` (a node summing two or more zero terms is written ``#+#`` and does not zero the edges out of it, as AutoDL
writes it), a ``skip_connect``
passes its input's expression through, and any other op writes ``(input)@op``. That rule gives 6,466 classes;
also dropping the zero terms from every sum (rule ``"drop_zero"``) gives 5,390. Each class is represented by
its member with the smallest index (the base-5 number of its op indices).
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn

from ..errors import NASInputError, check_choice
from ..ops import NB201_OPS, ReLUConvBN, nb201_op
from .base import Decision, SearchSpace

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (from, to), in arch-string order
N_CELLS = len(NB201_OPS) ** len(EDGES)
_OP_INDEX = {op: i for i, op in enumerate(NB201_OPS)}
_NODE_RE = re.compile(r"\|(?:[a-z0-9_]+~[0-9]\|)+")  # used with fullmatch: no trailing newline slips through
FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


def to_str(cell: tuple) -> str:
    """The NAS-Bench-201 arch string of ``cell``."""
    ops = list(cell)
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def parse(text: str) -> tuple:
    """The cell of an arch string; a clear error names the expected form and the allowed ops."""
    if not isinstance(text, str):
        raise NASInputError(f"an arch string must be a str, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != 3 or not all(_NODE_RE.fullmatch(n) for n in nodes):
        raise NASInputError(f"malformed arch string {text!r}; expected the form {FORM} with ops from "
                            f"{', '.join(NB201_OPS)}")
    cell = []
    for j, node in enumerate(nodes, start=1):
        terms = node.strip("|").split("|")
        if len(terms) != j:
            raise NASInputError(f"node {j} of {text!r} has {len(terms)} inputs, expected {j}; "
                                f"the form is {FORM}")
        for i, term in enumerate(terms):
            op, src = term.split("~")
            if int(src) != i:
                raise NASInputError(f"node {j} of {text!r}: input {i} is written ~{src}; the form is {FORM}")
            check_choice("NAS-Bench-201 operation", op, NB201_OPS)
            cell.append(op)
    return tuple(cell)


def index(cell: tuple) -> int:
    """The cell's number in 0..15624: its op indices read as a base-5 number, first edge most significant."""
    i = 0
    for op in cell:
        i = i * len(NB201_OPS) + _OP_INDEX[op]
    return i


def from_index(i: int) -> tuple:
    if not 0 <= int(i) < N_CELLS:
        raise NASInputError(f"cell index must be in 0..{N_CELLS - 1}, got {i!r}")
    ops = []
    for _ in EDGES:
        i, r = divmod(int(i), len(NB201_OPS))
        ops.append(NB201_OPS[r])
    return tuple(reversed(ops))


def all_cells():
    """All 15,625 cells in index order."""
    return [tuple(c) for c in itertools.product(NB201_OPS, repeat=len(EDGES))]


def unique_str(cell: tuple, rule: str = "autodl") -> str:
    """The isomorphism key of ``cell`` (see the module doc). ``rule``: ``"autodl"`` or ``"drop_zero"``."""
    check_choice("isomorphism rule", rule, ("autodl", "drop_zero"))
    nodes = {0: "0"}
    for j in (1, 2, 3):
        terms = []
        for (i, k), op in zip(EDGES, cell):
            if k != j:
                continue
            if op == "none" or nodes[i] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[i])
            else:
                terms.append(f"({nodes[i]})@{op}")
        if rule == "drop_zero":
            terms = [t for t in terms if t != "#"] or ["#"]
        nodes[j] = "+".join(sorted(terms))
    return nodes[3]


@lru_cache(maxsize=2)
def canonical_table(rule: str = "autodl") -> np.ndarray:
    """For each cell index, the index of its class representative (the smallest index in the class)."""
    rep: dict = {}
    table = np.empty(N_CELLS, dtype=np.int32)
    for i, cell in enumerate(all_cells()):
        table[i] = rep.setdefault(unique_str(cell, rule), i)
    return table


def canonical(cell: tuple, rule: str = "autodl") -> tuple:
    """The representative of ``cell``'s isomorphism class."""
    return from_index(int(canonical_table(rule)[index(cell)]))


def unique_cells(rule: str = "autodl") -> list:
    """One representative per class, in index order (6,466 under AutoDL's rule)."""
    table = canonical_table(rule)
    return [from_index(i) for i in np.flatnonzero(table == np.arange(N_CELLS))]


def is_connected(cell: tuple) -> bool:
    """Whether some path from input to output avoids ``none`` (341 cells have none)."""
    return unique_str(cell, "drop_zero") != "#"


def _another_op(op: str, rng) -> str:
    """One of the 4 operations other than ``op``, uniformly."""
    others = [o for o in NB201_OPS if o != op]
    return others[int(rng.integers(len(others)))]


def neighbours(cell: tuple) -> list:
    """The 24 cells that differ from ``cell`` on exactly one edge."""
    out = []
    for e, op in enumerate(cell):
        for other in NB201_OPS:
            if other != op:
                out.append(cell[:e] + (other,) + cell[e + 1:])
    return out


PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))  # input->output paths as edge positions (0->3, 0->1->3, 0->2->3, 0->1->2->3)
# the op order of naszilla's path encoding of NAS-Bench-201, so that the bits match its own
_PATH_OPS = ("avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3", "none", "skip_connect")


def encode_onehot(cell: tuple) -> np.ndarray:
    """6 edges x 5 ops, one-hot (30 numbers)."""
    v = np.zeros((len(EDGES), len(NB201_OPS)), dtype=np.float32)
    for e, op in enumerate(cell):
        v[e, _OP_INDEX[op]] = 1
    return v.ravel()


def encode_path(cell: tuple) -> np.ndarray:
    """Path encoding (White, Neiswanger & Savani, BANANAS, AAAI 2021): one bit per possible sequence of ops
    from input to output, 5 + 25 + 125 = 155 bits, set for the op sequence of each of the cell's 4 paths.

    A path is indexed by its ops alone, as naszilla's (and NASLib's) encoding of NAS-Bench-201: the paths
    0->1->3 and 0->2->3 share the 25 bits of length 2 (two equal sequences set one bit), and a path through
    ``none`` has its bit too. Bit = (5 + 25 if the path has 3 ops, 5 if 2, else 0) + sum_k op_k * 5**k, with
    op_k the index of the path's k-th op in ``_PATH_OPS`` (naszilla's order) -- bit for bit naszilla's.
    """
    v = np.zeros(sum(len(_PATH_OPS) ** n for n in (1, 2, 3)), dtype=np.float32)
    for path in PATHS:
        offset = sum(len(_PATH_OPS) ** n for n in range(1, len(path)))
        v[offset + sum(_PATH_OPS.index(cell[e]) * len(_PATH_OPS) ** k for k, e in enumerate(path))] = 1
    return v


class Cell(nn.Module):
    """The searched cell: node j sums op_ij(node i) over i < j; ``none`` edges are left out."""

    def __init__(self, cell: tuple, C: int):
        super().__init__()
        self.cell = tuple(cell)
        self.edges = nn.ModuleDict({f"{i}{j}": nb201_op(op, C) for (i, j), op in zip(EDGES, cell)
                                    if op != "none"})

    def forward(self, x):
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.edges[f"{i}{j}"](nodes[i]) for i in range(j) if f"{i}{j}" in self.edges]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's reduction block: a ResNet basic block with stride 2 that doubles the channels. Its
    shortcut's average pooling rounds up (``ceil_mode``), where AutoDL's rounds down: the same on even maps, and on
    an odd one (7 x 7 at 14 pixels' second reduction) it matches the convolutions' output, which AutoDL's would not."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(x)


def skeleton(make_cell, num_classes: int, in_channels: int, C: int, N: int, stem_stride: int = 1):
    """The NAS-Bench-201 macro skeleton around ``make_cell(channels)``: (stem, list of layers, head)."""
    stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(C))
    layers, c = [], C
    for stage in range(3):
        if stage > 0:
            layers.append(ResidualReduction(c, 2 * c))
            c *= 2
        layers.extend(make_cell(c) for _ in range(N))
    head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    return stem, layers, head


class NB201Network(nn.Module):
    """The NAS-Bench-201 skeleton: stem, three stages of N cells at C, 2C, 4C channels joined by residual
    reduction blocks, then BN-ReLU, global average pooling and a linear classifier."""

    def __init__(self, cell: tuple, num_classes: int, in_channels: int = 3, C: int = 16, N: int = 5,
                 stem_stride: int = 1):
        super().__init__()
        self.stem, layers, self.head = skeleton(lambda c: Cell(cell, c), num_classes, in_channels, C, N, stem_stride)
        self.cells = nn.Sequential(*layers)

    def forward(self, x):
        return self.head(self.cells(self.stem(x)))


class NB201Space(SearchSpace):
    """The 15,625 cells of NAS-Bench-201, with the interfaces every strategy uses."""

    name = "nb201"

    def __init__(self, encoding: str = "path"):
        check_choice("encoding", encoding, ("onehot", "path"))
        self.encoding = encoding

    def sample(self, rng):
        return tuple(NB201_OPS[i] for i in rng.integers(0, len(NB201_OPS), size=len(EDGES)))

    def mutate(self, arch, rng):
        """One edge changed to another op, chosen as Real et al.'s mutation chooses (a node, then one of its
        inputs) and as AutoDL's regularized evolution on NAS-Bench-201 does (``R_EA.py``): a node of 1, 2, 3
        uniformly, then one of its incoming edges, then one of the 4 other ops. Edge 0->1, node 1's only input,
        changes a third of the time; each of node 3's three inputs a ninth."""
        node = int(rng.integers(1, 4))
        edges = [e for e, (_, j) in enumerate(EDGES) if j == node]
        e = edges[int(rng.integers(len(edges)))]
        return arch[:e] + (_another_op(arch[e], rng),) + arch[e + 1:]

    def mutate_each(self, arch, rng, rate: float = 1.0):
        """naszilla's mutation of a NAS-Bench-201 cell (BANANAS' code, ``cell_201.mutate``): every edge, with
        probability ``rate`` / 4, changed to one of the 4 other ops. 1.5 edges change on average, up to all 6;
        a draw may change none (BANANAS then rejects it as already seen)."""
        return tuple(_another_op(op, rng) if rng.random() < rate / 4 else op for op in arch)

    def crossover(self, a, b, rng):
        """Each edge's op from one parent or the other (uniform crossover)."""
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    def to_str(self, arch) -> str:
        return to_str(arch)

    def parse(self, text: str):
        return parse(text)

    def encode(self, arch) -> np.ndarray:
        return encode_path(arch) if self.encoding == "path" else encode_onehot(arch)

    def to_model(self, arch, num_classes: int, in_channels: int, C: int = 16, N: int = 5,
                 stem_stride: int = 1, **_) -> nn.Module:
        return NB201Network(arch, num_classes, in_channels, C=C, N=N, stem_stride=stem_stride)

    def size(self) -> int:
        return N_CELLS

    def key(self, arch) -> str:
        return unique_str(arch)

    def next_decision(self, tokens):
        if len(tokens) >= len(EDGES):
            return None
        i, j = EDGES[len(tokens)]
        return Decision(name=f"edge {i}->{j}", choices=NB201_OPS, group="op")

    def from_tokens(self, tokens):
        return tuple(NB201_OPS[t] for t in tokens)

    def to_tokens(self, arch):
        return [_OP_INDEX[op] for op in arch]
