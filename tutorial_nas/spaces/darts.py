"""The NASNet / DARTS cell space (Zoph et al. 2018; Liu et al., ICLR 2019), as the DARTS code writes it.

A network is a stack of two kinds of cell: the *normal* cell keeps the map size, the *reduction* cell halves
it (and doubles the channels). Each cell has two inputs, the outputs of the two cells before it (c_{k-2} and
c_{k-1}), and four intermediate nodes; node k sums two operations, each applied to one earlier state:

    state 0 = c_{k-2},  state 1 = c_{k-1},  state j >= 2 = node j - 2;   cell output = concat(nodes 0..3)

So a cell is 8 ``(op, input)`` pairs, two per node, and a whole architecture is a ``Genotype``:

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

Here the fields hold tuples so that a genotype is hashable (a plain value a search can store in a set);
``genotype_str`` prints the DARTS form with lists and ``parse_genotype`` reads it back, without ``eval``.

Size: node k chooses 2 of its k + 2 inputs and one of the 7 operations (``none`` excluded) on each, so a cell
has prod_k C(k+2, 2) * 7**2 = 180 * 7**8, about 1.0e9 choices, and a normal + reduction pair about 1.1e18.
"""

from __future__ import annotations

import re
from collections import namedtuple
from math import comb, prod

import numpy as np
import torch
import torch.nn as nn

from ..errors import NASInputError
from ..ops import DARTS_OPS, FactorizedReduce, ReLUConvBN, darts_op
from .base import Decision, SearchSpace

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

PRIMITIVES = DARTS_OPS
CELL_OPS = tuple(op for op in DARTS_OPS if op != "none")  # a derived cell never holds `none`
NODES = 4
CONCAT = (2, 3, 4, 5)
CELLS = ("normal", "reduce")
FORM = ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ... 8 pairs], "
        "normal_concat=[2, 3, 4, 5], reduce=[... 8 pairs], reduce_concat=[2, 3, 4, 5])")


def genotype_str(g: Genotype) -> str:
    """The DARTS repr of ``g``: lists of ``('op', input)`` pairs and concat lists."""
    g = as_genotype(g)
    return (f"Genotype(normal={[tuple(p) for p in g.normal]}, normal_concat={list(g.normal_concat)}, "
            f"reduce={[tuple(p) for p in g.reduce]}, reduce_concat={list(g.reduce_concat)})")


def as_genotype(g) -> Genotype:
    """A hashable Genotype from one with lists (as the DARTS code builds them) or from its string."""
    if isinstance(g, str):
        return parse_genotype(g)
    if not isinstance(g, tuple) or len(g) != 4:
        raise NASInputError(f"expected a Genotype of the form {FORM}, got {g!r}")
    normal, normal_concat, reduce, reduce_concat = g
    return Genotype(tuple((str(op), int(i)) for op, i in normal), tuple(int(c) for c in normal_concat),
                    tuple((str(op), int(i)) for op, i in reduce), tuple(int(c) for c in reduce_concat))


_PAIR = r"\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*,\s*(-?\d+)\s*,?\s*\)"
_CONCAT = r"\[[\d,\s]*\]|range\(\s*\d+\s*,\s*\d+\s*\)"
_GENOTYPE_RE = re.compile(
    r"^\s*Genotype\(\s*normal\s*=\s*\[(?P<normal>[^\]]*)\]\s*,\s*normal_concat\s*=\s*(?P<normal_concat>"
    + _CONCAT + r")\s*,\s*reduce\s*=\s*\[(?P<reduce>[^\]]*)\]\s*,\s*reduce_concat\s*=\s*(?P<reduce_concat>"
    + _CONCAT + r")\s*,?\s*\)\s*$")


def _parse_pairs(cell: str, body: str) -> tuple:
    pairs = re.findall(_PAIR, body)
    leftover = re.sub(_PAIR, "", body).replace(",", "").strip()
    if leftover:
        raise NASInputError(f"the {cell} cell holds something that is not an ('op', input) pair: "
                            f"{leftover!r}; expected the form {FORM}")
    if len(pairs) != 2 * NODES:
        raise NASInputError(f"the {cell} cell has {len(pairs)} (op, input) pairs; a DARTS cell has exactly "
                            f"{2 * NODES} (two for each of its {NODES} nodes)")
    out = []
    for p, (op, i) in enumerate(pairs):
        node, i = p // 2, int(i)
        if op not in CELL_OPS:
            raise NASInputError(f"unknown operation {op!r} in the {cell} cell; a derived cell uses one of: "
                                f"{', '.join(CELL_OPS)}")
        if not 0 <= i <= node + 1:
            raise NASInputError(f"pair {p} of the {cell} cell ({op!r}, {i}) belongs to node {node}, whose "
                                f"input must be 0..{node + 1} (0 = c_{{k-2}}, 1 = c_{{k-1}}, "
                                f"j >= 2 = node j-2)")
        out.append((op, i))
    return tuple(out)


def _parse_concat(cell: str, text: str) -> tuple:
    if text.startswith("range"):
        a, b = (int(n) for n in re.findall(r"\d+", text))
        concat = tuple(range(a, b))
    else:
        concat = tuple(int(n) for n in re.findall(r"\d+", text))
    if not concat or sorted(set(concat)) != list(concat) or not set(concat) <= set(CONCAT):
        raise NASInputError(f"{cell}_concat {text!r} must list distinct node states in increasing order from "
                            f"{list(CONCAT)}")
    return concat


def parse_genotype(text: str) -> Genotype:
    """Read the DARTS repr of a genotype (``range(2, 6)`` is accepted for the concat lists too)."""
    if not isinstance(text, str):
        raise NASInputError(f"a genotype string must be a str, got {type(text).__name__}")
    m = _GENOTYPE_RE.match(text)
    if m is None:
        raise NASInputError(f"malformed genotype {text[:80]!r}; expected the form {FORM}")
    return Genotype(_parse_pairs("normal", m["normal"]), _parse_concat("normal", m["normal_concat"]),
                    _parse_pairs("reduce", m["reduce"]), _parse_concat("reduce", m["reduce_concat"]))


def cell_size() -> int:
    """Distinct cells: each node picks 2 of its k + 2 inputs and an op (not `none`) on each."""
    return prod(comb(k + 2, 2) * len(CELL_OPS) ** 2 for k in range(NODES))


class DropPath(nn.Module):
    """Zero a whole sample's branch with probability ``p`` during training, rescaling the rest (as DARTS). The
    rate is constant here; DARTS' ``train.py`` raises it linearly over training (``drop_path_prob * epoch /
    epochs``), which a caller does by setting ``p`` each epoch."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p <= 0:
            return x
        keep = torch.bernoulli(torch.full((x.shape[0], 1, 1, 1), 1 - self.p, device=x.device, dtype=x.dtype))
        return x / (1 - self.p) * keep


class DartsCell(nn.Module):
    """One cell of a genotype: preprocess both inputs to C channels, compute 4 nodes, concatenate."""

    def __init__(self, pairs, concat, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, drop_path: float = 0.0):
        super().__init__()
        # If the previous cell halved the map, c_{k-2} is twice as large: halve it too.
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1)
        self.inputs = [i for _, i in pairs]
        self.concat = list(concat)
        # In a reduction cell the edges that read the cell inputs (0 and 1) carry stride 2.
        self.ops = nn.ModuleList(darts_op(op, C, 2 if reduction and i < 2 else 1) for op, i in pairs)
        self.drop = DropPath(drop_path)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(NODES):
            terms = []
            for e in (2 * node, 2 * node + 1):
                h = self.ops[e](states[self.inputs[e]])
                terms.append(h if isinstance(self.ops[e], nn.Identity) else self.drop(h))
            states.append(terms[0] + terms[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(nn.Module):
    """DARTS' network of a derived genotype (``NetworkCIFAR``): a 3C-channel stem, ``layers`` cells with reduction
    cells at 1/3 and 2/3 of the depth (channels doubled there), global average pooling and a linear classifier.
    The defaults (C = 16, 8 cells) are the search proxy's sizes; DARTS evaluates at C = 36 and 20 cells, with an
    auxiliary head that is not built here."""

    def __init__(self, genotype, num_classes: int, in_channels: int = 3, C: int = 16, layers: int = 8,
                 drop_path: float = 0.0, stem_multiplier: int = 3):
        super().__init__()
        g = as_genotype(genotype)
        c = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        C_pp, C_p, C_cur = c, c, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_cur *= 2
            pairs, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
            self.cells.append(DartsCell(pairs, concat, C_pp, C_p, C_cur, reduction, reduction_prev,
                                        drop_path))
            reduction_prev = reduction
            C_pp, C_p = C_p, len(concat) * C_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.pool(s1).flatten(1))


class DartsSpace(SearchSpace):
    """Pairs of DARTS cells (normal, reduce), with the interfaces every strategy uses."""

    name = "darts"

    def _sample_cell(self, rng):
        pairs = []
        for node in range(NODES):
            inputs = rng.choice(node + 2, size=2, replace=False)
            pairs.extend((CELL_OPS[int(rng.integers(len(CELL_OPS)))], int(i)) for i in inputs)
        return tuple(pairs)

    def sample(self, rng):
        """Two distinct inputs per node, uniform ops without `none`, for both cells."""
        return Genotype(self._sample_cell(rng), CONCAT, self._sample_cell(rng), CONCAT)

    def mutate(self, arch, rng):
        """Change one op, or one input (to a state the node does not read yet), of one cell."""
        g = as_genotype(arch)
        which = CELLS[int(rng.integers(2))]
        pairs = list(getattr(g, which))
        p = int(rng.integers(len(pairs)))
        op, i = pairs[p]
        node, other = p // 2, pairs[p ^ 1][1]
        free = [j for j in range(node + 2) if j not in (i, other)]
        if free and rng.random() < 0.5:
            pairs[p] = (op, int(rng.choice(free)))
        else:
            pairs[p] = (str(rng.choice([o for o in CELL_OPS if o != op])), i)
        return g._replace(**{which: tuple(pairs)})

    def crossover(self, a, b, rng):
        """Each node of each cell (both its pairs together) from one parent or the other."""
        a, b = as_genotype(a), as_genotype(b)
        cells = {}
        for which in CELLS:
            pa, pb = getattr(a, which), getattr(b, which)
            cells[which] = tuple(p for n in range(NODES)
                                 for p in (pa if rng.random() < 0.5 else pb)[2 * n:2 * n + 2])
        return a._replace(**cells)

    def to_str(self, arch) -> str:
        return genotype_str(arch)

    def parse(self, text: str):
        return parse_genotype(text)

    def key(self, arch) -> str:
        """The order of the two pairs of a node does not change the network: sort them."""
        g = as_genotype(arch)
        canon = {w: tuple(p for n in range(NODES)
                          for p in sorted(getattr(g, w)[2 * n:2 * n + 2], key=lambda t: (t[1], t[0])))
                 for w in CELLS}
        return genotype_str(g._replace(**canon))

    def encode(self, arch) -> np.ndarray:
        """For each cell, 14 possible edges x 7 ops, one-hot where the edge is used (196 numbers)."""
        g = as_genotype(arch)
        blocks = []
        for pairs in (g.normal, g.reduce):
            v = np.zeros((sum(k + 2 for k in range(NODES)), len(CELL_OPS)), dtype=np.float32)
            for p, (op, i) in enumerate(pairs):
                node = p // 2
                v[sum(k + 2 for k in range(node)) + i, CELL_OPS.index(op)] = 1
            blocks.append(v.ravel())
        return np.concatenate(blocks)

    def to_model(self, arch, num_classes: int, in_channels: int, C: int = 16, layers: int = 8,
                 drop_path: float = 0.0, **_) -> nn.Module:
        return DartsNetwork(arch, num_classes, in_channels, C=C, layers=layers, drop_path=drop_path)

    def size(self, pair: bool = True) -> int:
        """About 1.1e18 pairs (``pair=False``: about 1.0e9 cells of one kind)."""
        return cell_size() ** 2 if pair else cell_size()

    # Token interface: per cell and node, input a, op a, input b, op b (32 decisions).
    def next_decision(self, tokens):
        if len(tokens) >= 4 * NODES * 2:
            return None
        which, rest = divmod(len(tokens), 4 * NODES)
        node, slot = divmod(rest, 4)
        if slot % 2 == 0:
            return Decision(name=f"{CELLS[which]} node {node} input {slot // 2}",
                            choices=tuple(range(node + 2)), group=f"input{node}")
        return Decision(name=f"{CELLS[which]} node {node} op {slot // 2}", choices=CELL_OPS, group="op")

    def from_tokens(self, tokens):
        cells = []
        for which in range(2):
            t = tokens[which * 4 * NODES:(which + 1) * 4 * NODES]
            cells.append(tuple((CELL_OPS[t[k + 1]], int(t[k])) for k in range(0, len(t), 2)))
        return Genotype(cells[0], CONCAT, cells[1], CONCAT)

    def to_tokens(self, arch):
        g = as_genotype(arch)
        return [x for pairs in (g.normal, g.reduce) for op, i in pairs for x in (i, CELL_OPS.index(op))]
