"""DARTS and GDAS: the discrete choice of an operation relaxed into a softmax over all of them.

Every edge of the cell carries all candidate operations at once (a ``MixedOp``); its output is their sum
weighted by softmax(alpha_edge). The network weights w and the architecture parameters alpha are then trained
by alternating gradient steps (the bilevel problem of ``architect.py``): w on one half of the training split,
alpha on the other. At the end the continuous cell is made discrete again (``derive_genotype``).

GDAS (Dong & Yang, CVPR 2019) samples one operation per edge instead, with the Gumbel-softmax at a
temperature annealed from 10 to 0.1: the forward pass uses the hard one-hot sample, the backward pass the
gradient of the soft one (straight-through), and only the sampled operation is computed, so a step costs
about as much as one ordinary network. The exact gradient of the soft weights would need every operation's
output; the reference code (AutoDL-Projects) avoids it in two ways, and each supernet follows the code of its
own space. On the NAS-Bench-201 cell (``forward_gdas`` of AutoDL's search cell, the code behind the benchmark's
GDAS results) each unsampled weight, 0 in value, is added to the edge's output as a scalar, so it receives the
summed gradient of that output and every alpha of the edge is moved by it (AutoDL-Projects issue #36). On the
DARTS cell (AutoDL's DARTS-space ``MixedOp.forward_gdas``) only the sampled operation's weight carries a
gradient, which reaches the edge's alphas through the softmax.

Two supernets share the machinery: ``SearchNetwork`` over the DARTS cell (14 edges x 8 ops, normal and
reduction alphas) and ``NB201SearchNetwork`` over the NAS-Bench-201 cell (6 edges x 5 ops).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import batches, load_dataset
from ..errors import NASInputError, check_choice
from ..ops import DARTS_OPS, NB201_OPS, FactorizedReduce, ReLUConvBN, Zero, darts_op, nb201_op
from ..profiles import get_profile, seed_everything
from ..spaces.cell import EDGES as NB201_EDGES
from ..spaces.cell import ResidualReduction
from ..spaces.cell import to_str as nb201_str
from ..spaces.darts import CONCAT, NODES, Genotype, genotype_str
from .architect import DartsConfig, bilevel_search

DARTS_EDGES = [(i, node) for node in range(NODES) for i in range(node + 2)]  # (input state, node): 14 edges


def search_op(name: str, C: int, stride: int) -> nn.Module:
    """A DARTS candidate inside the supernet: BN without affine, and pooling followed by such a BN."""
    op = darts_op(name, C, stride, affine=False)
    if "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


class MixedOp(nn.Module):
    """One edge of the supernet: sum_k weights[k] * op_k(x) over its candidate operations.

    ``none`` contributes nothing, so it is not computed. Operations without parameters (pooling, identity)
    give the same output on every edge that reads the same state, so a cell passes one ``shared`` dict per
    state and they are computed once. With ``index`` (GDAS) only that one operation runs.
    """

    def __init__(self, ops: list):
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.active = [k for k, op in enumerate(ops) if not isinstance(op, Zero)]
        self.shareable = [not any(True for _ in op.parameters()) for op in ops]

    def run(self, k: int, x, shared):
        if shared is None or not self.shareable[k]:
            return self.ops[k](x)
        if k not in shared:
            shared[k] = self.ops[k](x)
        return shared[k]

    def forward(self, x, weights, index: int | None = None, shared: dict | None = None, rest: bool = False):
        if index is not None:
            out = weights[index] * self.run(index, x, shared)
            if rest:  # AutoDL's NAS-Bench-201 GDAS: the unsampled weights (0 in value) added as scalars
                out = out + weights[torch.arange(len(weights), device=weights.device) != index].sum()
            return out
        out = weights[self.active[0]] * self.run(self.active[0], x, shared)
        for k in self.active[1:]:
            out = out + weights[k] * self.run(k, x, shared)
        return out


class SearchCell(nn.Module):
    """The DARTS search cell: every earlier state feeds every node through a MixedOp (14 edges)."""

    def __init__(self, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C, affine=False) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1, affine=False))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, affine=False)
        self.edges = nn.ModuleList(
            MixedOp([search_op(name, C, 2 if reduction and i < 2 else 1) for name in DARTS_OPS])
            for i, _ in DARTS_EDGES)

    def forward(self, s0, s1, weights, index=None):
        states, shared, e = [self.preprocess0(s0), self.preprocess1(s1)], [{}, {}], 0
        for _ in range(NODES):  # node k reads every earlier state, through edges e .. e + k + 1
            states.append(sum(self.edges[e + i](h, weights[e + i], index and index[e + i], shared[i])
                              for i, h in enumerate(states)))
            shared.append({})
            e += len(states) - 1
        return torch.cat(states[2:], dim=1)


def gumbel_hard(alpha: torch.Tensor, tau: float):
    """GDAS' sample: one op per row, a hard one-hot forward and the soft Gumbel-softmax gradient."""
    gumbel = -torch.empty_like(alpha).exponential_().log()
    soft = F.softmax((alpha + gumbel) / tau, dim=-1)
    index = soft.argmax(dim=-1)
    hard = F.one_hot(index, alpha.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft, index.tolist()


class Supernet(nn.Module):
    """What both supernets share: alphas, the DARTS / GDAS edge weights, the loss, the parameter groups."""

    mode = "darts"  # or "gdas"
    tau = 10.0

    def alphas(self) -> dict:
        return {name: getattr(self, f"alpha_{name}") for name in self.cell_names}

    def arch_parameters(self) -> list:
        return list(self.alphas().values())

    def weight_parameters(self) -> list:
        ids = {id(a) for a in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def edge_weights(self, alpha):
        """(weights, index): softmax for DARTS; a Gumbel sample (training) or the argmax (eval) for GDAS."""
        if self.mode != "gdas":
            return F.softmax(alpha, dim=-1), None
        if self.training:
            return gumbel_hard(alpha, self.tau)
        index = alpha.argmax(dim=-1)
        return F.one_hot(index, alpha.shape[-1]).to(alpha.dtype), index.tolist()

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)

    @torch.no_grad()
    def recalibrate(self, x: torch.Tensor, batch_size: int = 256, n_batches: int = 4) -> None:
        """Re-estimate the BN running statistics for the current alphas (during the search they average
        over ever-changing mixtures, and after a few steps they are far off: evaluation would mislead)."""
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.eval()  # GDAS: the argmax cell, not a sample
        for m in norms:
            m.reset_running_stats()
            m.momentum, m.saved_momentum = None, m.momentum  # None: a plain average over the batches
            m.train()
        for (xb, _), _ in zip(batches(x, x[:, 0, 0, 0], batch_size), range(n_batches)):
            self(xb)
        for m in norms:
            m.momentum = m.saved_momentum
        self.eval()

    @torch.no_grad()
    def softmaxed(self) -> dict:
        """softmax(alpha) of each cell kind as nested lists (rows: edges, columns: ops)."""
        return {name: _softmax(a).tolist() for name, a in self.alphas().items()}


class SearchNetwork(Supernet):
    """DARTS' search network: a 3C stem, ``layers`` search cells (reduction at 1/3 and 2/3), a classifier.
    The alphas (14 x 8 each, normal and reduce) are shared by all cells of their kind."""

    cell_names = ("normal", "reduce")
    ops, edge_labels = DARTS_OPS, [f"{('c_{k-2}', 'c_{k-1}')[i] if i < 2 else f'n{i - 2}'}->n{n}"
                                   for i, n in DARTS_EDGES]

    def __init__(self, num_classes: int, in_channels: int = 3, C: int = 16, layers: int = 8,
                 stem_multiplier: int = 3):
        super().__init__()
        c = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        C_pp, C_p, C_cur, reduction_prev = c, c, C, False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            C_cur = 2 * C_cur if reduction else C_cur
            self.cells.append(SearchCell(C_pp, C_p, C_cur, reduction, reduction_prev))
            reduction_prev = reduction
            C_pp, C_p = C_p, NODES * C_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(len(DARTS_EDGES), len(DARTS_OPS)))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(len(DARTS_EDGES), len(DARTS_OPS)))

    def forward(self, x):
        normal, reduce = self.edge_weights(self.alpha_normal), self.edge_weights(self.alpha_reduce)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, *(reduce if cell.reduction else normal))
        return self.classifier(self.pool(s1).flatten(1))

    def derive(self, skip_limit: int | None = None) -> Genotype:
        return derive_genotype(self.alpha_normal, self.alpha_reduce, skip_limit)

    def arch_str(self, arch) -> str:
        return genotype_str(arch)

    @staticmethod
    def count_skips(arch) -> dict:
        return {"n_skip": sum(op == "skip_connect" for op, _ in arch.normal),
                "n_skip_reduce": sum(op == "skip_connect" for op, _ in arch.reduce)}


class NB201SearchCell(nn.Module):
    """The NAS-Bench-201 cell with a MixedOp of the 5 operations on each of its 6 edges."""

    def __init__(self, C: int):
        super().__init__()
        self.edges = nn.ModuleList(MixedOp([nb201_op(name, C, affine=False) for name in NB201_OPS])
                                   for _ in NB201_EDGES)

    def forward(self, x, weights, index=None):
        nodes, shared = [x], [{}]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[i], weights[e], index and index[e], shared[i], rest=True)
                             for e, (i, k) in enumerate(NB201_EDGES) if k == j))
            shared.append({})
        return nodes[3]


class NB201SearchNetwork(Supernet):
    """The NAS-Bench-201 skeleton (``spaces/cell.py``) with search cells; one 6 x 5 alpha for all cells."""

    cell_names = ("cell",)
    ops, edge_labels = NB201_OPS, [f"{i}->{j}" for i, j in NB201_EDGES]

    def __init__(self, num_classes: int, in_channels: int = 3, C: int = 16, N: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.cells, c = nn.ModuleList(), C
        for stage in range(3):
            if stage > 0:
                self.cells.append(ResidualReduction(c, 2 * c))
                c *= 2
            self.cells.extend(NB201SearchCell(c) for _ in range(N))
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(c, num_classes))
        self.alpha_cell = nn.Parameter(1e-3 * torch.randn(len(NB201_EDGES), len(NB201_OPS)))

    def forward(self, x):
        weights, index = self.edge_weights(self.alpha_cell)
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights, index) if isinstance(cell, NB201SearchCell) else cell(x)
        return self.head(x)

    def derive(self, skip_limit: int | None = None) -> tuple:
        return derive_nb201(self.alpha_cell, skip_limit)

    def arch_str(self, arch) -> str:
        return nb201_str(arch)

    @staticmethod
    def count_skips(arch) -> dict:
        return {"n_skip": sum(op == "skip_connect" for op in arch)}


# --- Derivation: from the continuous alphas back to one discrete cell -------------------------------------

_NONE, _SKIP = DARTS_OPS.index("none"), DARTS_OPS.index("skip_connect")


def _first_argmax(row) -> int:
    """The index of the largest value; on a tie, the lowest index."""
    return int(np.flatnonzero(row == row.max())[0])


def _derive_cell(W: np.ndarray) -> tuple:
    """DARTS' rule on softmaxed weights W (14 x 8): per node the 2 inputs whose strongest non-`none` op is
    largest, each with that op. Ties: the lower input index, the lower op index (DARTS_OPS order)."""
    pairs, start = [], 0
    for node in range(NODES):
        rows = W[start:start + node + 2]
        strength = [max(w for k, w in enumerate(row) if k != _NONE) for row in rows]
        for i in sorted(range(node + 2), key=lambda i: (-strength[i], i))[:2]:
            row = rows[i].copy()
            row[_NONE] = -np.inf
            pairs.append((DARTS_OPS[_first_argmax(row)], i))
        start += node + 2
    return tuple(pairs)


def _limit_skips(W: np.ndarray, derive, skip: int, limit: int | None):
    """Derive; while more than ``limit`` edges keep skip_connect, forbid it on the kept edge where its weight
    is smallest (ties: the lower edge) and derive again (P-DARTS' cap on skip connections)."""
    W = W.copy()
    while True:
        arch, edges = derive(W)
        skips = [(W[e, skip], e) for e, k in edges if k == skip]
        if limit is None or len(skips) <= limit:
            return arch
        W[min(skips)[1], skip] = -np.inf


def mean_entropy(weights) -> float:
    """The mean over edges of the entropy (in nats) of softmaxed alphas (rows: edges, each summing to 1), as
    ``History["alphas"]`` keeps them: log(number of ops) while the weights are uniform, 0 once every edge has
    put all its weight on one op."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or not np.allclose(w.sum(axis=1), 1.0, atol=1e-4) or (w < 0).any():
        raise NASInputError(f"expected softmaxed alphas (rows of non-negative weights summing to 1), got an "
                            f"array of shape {w.shape}; pass History['alphas'].iloc[-1][cell]")
    return float(-(w * np.log(np.clip(w, 1e-300, None))).sum(axis=1).mean())


def _softmax(alpha) -> np.ndarray:
    a = torch.as_tensor(alpha).detach().double()
    return F.softmax(a, dim=-1).cpu().numpy()


def _darts_edges(pairs):
    """(edge row, op index) of each kept pair of a derived DARTS cell."""
    starts = np.cumsum([0] + [n + 2 for n in range(NODES)])
    return [(starts[p // 2] + i, DARTS_OPS.index(op)) for p, (op, i) in enumerate(pairs)]


def derive_genotype(alpha_normal, alpha_reduce, skip_limit: int | None = None) -> Genotype:
    """The discrete DARTS genotype of the alphas (logits, 14 x 8 each); ``skip_limit`` caps skip_connect in
    the normal cell, as P-DARTS does (its code restricts the normal cell only; the reduction cell is derived
    without a cap). The pairs of a node are listed strongest first, as in the DARTS code. GDAS on the DARTS cell is
    derived by the same rule here; AutoDL's GDAS code keeps a node's two strongest (op, input) pairs instead,
    which may take two operations from one input."""

    def derive(W):
        pairs = _derive_cell(W)
        return pairs, _darts_edges(pairs)

    cells = [_limit_skips(_softmax(a), derive, _SKIP, limit) for a, limit in ((alpha_normal, skip_limit),
                                                                                (alpha_reduce, None))]
    return Genotype(cells[0], CONCAT, cells[1], CONCAT)


def derive_nb201(alpha, skip_limit: int | None = None) -> tuple:
    """The NAS-Bench-201 cell of the alphas (6 x 5): the argmax over all ops, `none` included, on every edge
    (as NAS-Bench-201's DARTS does); ties go to the lower op index (NB201_OPS order)."""

    def derive(W):
        picks = [_first_argmax(row) for row in W]
        return tuple(NB201_OPS[k] for k in picks), list(enumerate(picks))

    return _limit_skips(_softmax(alpha), derive, NB201_OPS.index("skip_connect"), skip_limit)


# --- The search: the supernet of the chosen space, trained by ``architect.bilevel_search`` ---------------

def build_supernet(space: str, num_classes: int, in_channels: int, C: int, layers: int, N: int) -> Supernet:
    check_choice("one-shot search space", space, ("darts", "nb201"))
    if space == "darts":
        return SearchNetwork(num_classes, in_channels, C=C, layers=layers)
    return NB201SearchNetwork(num_classes, in_channels, C=C, N=N)


def darts_search(space: str = "darts", data=None, method: str = "darts", epochs: int | None = None,
                 C: int | None = None, layers: int | None = None, N: int | None = None,
                 batch_size: int | None = None, seed: int = 0, progress: bool = True, bench=None,
                 skip_limit: int | None = None, early_stop=None, config: DartsConfig | None = None):
    """Search a cell with DARTS (``"darts"`` first order, ``"darts2"`` second order) or ``"gdas"``.

    ``space`` is ``"darts"`` (normal + reduction cell, ``C`` channels, ``layers`` cells) or ``"nb201"``
    (the NAS-Bench-201 skeleton, ``N`` cells per stage). Sizes left as ``None`` come from the profile's
    ``darts`` section, and so does the data set when ``data`` is ``None``. Returns a History: one row per
    epoch with the derived cell (``arch``), the supernet's own validation accuracy (``valid_acc``, BN
    recalibrated: for DARTS the softmax mixture of every edge, as DARTS' ``infer`` reports it; for GDAS the
    strongest operation of every edge, which on the DARTS cell is not the derived genotype, with its two inputs
    per node and no ``none``), the epoch's seconds, the skip connections of the derived cell (``n_skip``) and the
    softmaxed alphas. With ``bench`` (a benchmark, or ``True`` for the shipped one) on ``nb201``, ``test_acc``
    and ``bench_valid_acc`` are the benchmark's numbers for the derived cell, for the report only.

    The search's answer is the cell derived at its end, as in DARTS, GDAS and NAS-Bench-201's runs of them:
    the History's incumbent (``best_valid_acc``, ``best_test_acc``, ``search.best``) after epoch e is the
    cell derived at epoch e, never the epoch whose cell the benchmark likes best. ``skip_limit`` caps
    skip_connect in the derived cell; ``early_stop`` ends the search once the derived cell holds more than
    that many skip connections (DARTS+ stops at two: ``early_stop=1``), or once ``early_stop(row)`` is true.
    ``config`` (``architect.DartsConfig``) is the recipe; what it leaves as ``None`` is the method's own (DARTS'
    code for DARTS, AutoDL's for GDAS: step order, the weights' Nesterov momentum and weight decay).
    """
    check_choice("one-shot search space", space, ("darts", "nb201"))
    check_choice("one-shot method", method, ("darts", "darts2", "gdas"))
    profile = get_profile()
    sizes = profile.darts
    given = dict(epochs=epochs, C=C, layers=layers, N=N, batch_size=batch_size)
    for name, value in given.items():
        given[name] = value = getattr(sizes, name) if value is None else value
        if not isinstance(value, int) or value <= 0:
            raise NASInputError(f"{name} must be a positive integer, got {value!r}")
    if skip_limit is not None and (not isinstance(skip_limit, int) or skip_limit < 0):
        raise NASInputError(f"skip_limit must be a whole number >= 0 or None, got {skip_limit!r}")
    if not (early_stop is None or callable(early_stop) or isinstance(early_stop, int)):
        raise NASInputError(f"early_stop must be None, a number of skip connections or a function of "
                            f"the row, got {early_stop!r}")
    if bench is not None and space != "nb201":
        raise NASInputError("a benchmark answers only for the 'nb201' space; pass bench=None for 'darts'")
    if bench is True:
        from ..bench import load_benchmark

        bench = load_benchmark()
    epochs, C, layers, N, batch_size = given.values()
    if data is None:
        data = load_dataset(sizes.dataset, image_size=sizes.image_size, device=profile.device)

    seed_everything(seed)
    model = build_supernet(space, data.num_classes, data.in_channels, C, layers, N).to(data.device)
    model.mode = "gdas" if method == "gdas" else "darts"
    return bilevel_search(model, data, method, epochs, batch_size, seed, config or DartsConfig(), progress,
                          bench, skip_limit, early_stop)
