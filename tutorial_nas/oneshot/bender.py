"""One-shot architecture search as Bender et al. (ICML 2018) simplified it: path dropout, no controller.

"Understanding and Simplifying One-Shot Architecture Search" trains a one-shot model in which every operation
of every edge is present and their outputs are *summed* (not one path, as in SPOS or RS-WS). Trained like that,
the candidates co-adapt: the model learns to rely on all operations at once, and a sub-network with most of
them removed says little. Their remedy is *path dropout* (§3.2): at each training step every operation is
zeroed out independently. The rate r_t rises linearly over training from 0 at the first step to the final rate
``r`` at the last (``drop_rate``); with k operations feeding a node, each is dropped with probability
r_t^(1/k), so that the chance of a node losing all its inputs is r_t whatever k is. The probability of dropping
one operation is therefore not linear in the step: it rises steeply at first (with k = 8, r_t = 0.005 already
drops an operation with probability 0.52) and ends at r^(1/k) (0.92 for r = 0.5, k = 8). Weight decay reaches
only the operations a step uses (the paper's L2 on the active paths): a dropped operation gets no gradient
(``None``, not zero), and SGD leaves such a parameter untouched, its decay and momentum included. A candidate
is then scored by the one-shot model with the operations it does not use zeroed out (§3.3) — on a NAS-Bench-201
cell that is the cell's path through the shared weights — and candidates are ranked by that accuracy, as in
RS-WS and SPOS.

Choices where the NB201 supernet differs from the paper's model: a draw that would zero *every* input of a node
keeps one of its operations, drawn uniformly, so that no node is left with nothing to sum (the paper's space
let a whole cell input vanish); the node's ``k`` counts the operations on all its incoming edges (4 per
edge: ``none`` is what dropping already means); one dropout pattern per minibatch, shared by all cells of the
network, and no ghost batch normalisation; a candidate's batch-norm statistics are re-estimated on its path
before scoring, as for the other weight-sharing methods (``Supernet.score``).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NASInputError, check_positive
from ..ops import NB201_OPS
from ..spaces.cell import EDGES
from .supernet import SuperCell, Supernet, minibatch_training

OPS = tuple(op for op in NB201_OPS if op != "none")  # the operations that can be dropped


def drop_rate(step: int, total: int, final_rate: float) -> float:
    """The schedule: the rate r rises linearly from 0 at the first step to ``final_rate`` at the last."""
    return final_rate * step / max(1, total - 1)


def node_slots(j: int) -> list:
    """The (edge, operation) pairs that feed node ``j``: every operation of every edge into it."""
    return [(e, op) for e, (_, k) in enumerate(EDGES) if k == j for op in OPS]


def sample_mask(rate: float, rng) -> tuple:
    """One dropout pattern: per edge (``EDGES`` order) the tuple of operations kept. Each operation into node
    j is dropped with probability rate^(1/k), k the operations into j; if all are dropped, one is kept."""
    kept = [list(OPS) for _ in EDGES]
    for j in (1, 2, 3):
        slots = node_slots(j)
        p = rate ** (1 / len(slots)) if rate > 0 else 0.0
        drop = rng.random(len(slots)) < p
        if drop.all():  # no node without input: keep one operation of this node's
            drop[int(rng.integers(len(slots)))] = False
        for (e, op), d in zip(slots, drop):
            if d:
                kept[e].remove(op)
    return tuple(tuple(ops) for ops in kept)


def _cell(module: SuperCell, x, mask):
    """The super-cell with every kept operation on, their outputs summed at each node."""
    nodes = [x]
    for j in (1, 2, 3):
        terms = [module.edges[f"{i}{k}"][op](nodes[i]) for (i, k), ops in zip(EDGES, mask) if k == j for op in ops]
        nodes.append(sum(terms) if terms else torch.zeros_like(x))  # only a scored cell's node can be empty
    return nodes[3]


def forward_masked(supernet: Supernet, x, mask):
    """The one-shot model's forward pass with the operations not in ``mask`` zeroed out."""
    x = supernet.stem(x)
    for layer in supernet.layers:
        x = _cell(layer, x, mask) if isinstance(layer, SuperCell) else layer(x)
    return supernet.head(x)


def train_one_shot(data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, lr: float = 0.1,
                   final_rate: float = 0.5, seed: int = 0, stem_stride: int = 1) -> tuple:
    """Train the one-shot model with scheduled path dropout; (supernet, log) with ``loss`` per epoch,
    ``rate`` (the drop rate at each step) and ``seconds``. ``final_rate=0`` trains every operation always."""
    check_positive("epochs", epochs)
    if not isinstance(final_rate, (int, float)) or not 0 <= final_rate < 1:
        raise NASInputError(f"final_rate is a drop probability from 0 to below 1, got {final_rate!r}")
    torch.manual_seed(seed)
    supernet = Supernet(data.num_classes, data.in_channels, C=C, N=N, stem_stride=stem_stride).to(data.device)
    rng = np.random.default_rng(seed)
    opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    rates = []

    def loss_of(xb, yb, step, total):
        rates.append(drop_rate(step, total, final_rate))
        return F.cross_entropy(forward_masked(supernet, xb, sample_mask(rates[-1], rng)), yb)

    losses, seconds = minibatch_training(supernet, data, epochs, batch_size, opt, seed, loss_of)
    log = {"loss": losses, "rate": rates, "seconds": seconds}
    return supernet, log
