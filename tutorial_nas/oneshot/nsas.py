"""NSAS: supernet training that does not forget (Zhang et al., CVPR 2020; T-PAMI 2021).

Training one path of a supernet changes weights that other paths share, so the paths trained before lose
accuracy: *multi-model forgetting*. Zhang et al. measure it as the drop in validation accuracy of the
architecture trained before after one step on a new one (CVPR §3, Fig. 1), and treat supernet training as
continual learning under constraints: learning the new path ``a_t`` must not raise the loss of the paths
learned before (§3.1, Eq. 3-4). The constraints cannot cover all previous paths, so a small *constraint subset*
``M`` stands for them, chosen to be as diverse as possible (§3.2, Novelty Search based Architecture Selection):

- novelty of a cell = its mean distance to its k nearest neighbours in M (k = 10 in the reference code);
  the distance between two NAS-Bench-201 cells is the share of their six edges whose operations differ (the
  reference code's DARTS distance counts differing (op, input) pairs, matched within a node in either order);
- while M is not full, each step adds the most novel of 10 uniformly random cells;
- once M is full (|M| = 8 in the reference code), each step finds the member most similar to the new path
  and puts in its place the most novel cell of the last C = 50 sampled paths (or keeps it, if none is more
  novel): a greedy novelty-search update (not the T-PAMI version's NSAS-G, a variant for few constraints);
- the step's loss is the relaxed constraint 0.5 L(a_t) + 0.5 mean_{a in M} L(a), on the same minibatch.

Difference from the reference code (miaozhang0525/NSAS_FOR_CVPR, ``RandomNAS_NSAS_demo.py``): it adds the
subset's loss as a number (``loss.item()``, computed on a deep copy), so no gradient reaches the shared
weights from the constraint and training equals plain uniform sampling with a rescaled loss. Here the
subset's loss back-propagates, as the paper's Eq. 4 and Algorithm 1 state, and as the same repository's
NAS-Bench-201 code (``NSAS_Bench201``, the T-PAMI version) does; that code keeps no novelty archive, though: each
step it trains the new path with a random path and a path that differs from that random path on every edge,
weighted 0.2, 0.4 and 0.4. Paths are sampled uniformly (the paper's RandomNAS-NSAS variant); the GDAS variant is
not built here. The optimiser is the package's supernet recipe (SGD, Nesterov, lr 0.1 cosine to 0, weight decay
5e-4), shared with the other supernets of chapter 2's table; the CVPR code trains at lr 0.025 with plain momentum
(weight decay 3e-4, batch 32).

The control (``subset="random"``, :class:`RandomSubset`): the same loss with a subset of as many paths drawn
uniformly anew at every step, modelled on the authors' ablation with random constraints in the same repository
(``NSAS_Bench201/exps/algos/random_NAS_NSAS_R_0.2_seed0.ipynb``, which trains two ``random_gene`` paths a step,
weighted as its NSAS, in place of the random and the diverse one). A step of NSAS costs 1 + |M|
forward-backward passes and halves the new path's share of the gradient; the control pays the same and differs
only in how M is chosen, so a gain of NSAS over it is the diversity's, and a gain over uniform sampling alone may
be the extra passes'.
"""
from __future__ import annotations

import copy
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import batches
from ..errors import NASInputError, check_choice, check_positive
from ..spaces.cell import NB201Space, to_str
from .supernet import Supernet, minibatch_training


def distance(a, b) -> float:
    """Share of the six edges whose operations differ (0: the same cell, 1: no edge in common)."""
    return sum(x != y for x, y in zip(a, b)) / len(a)


def novelty(cell, others, k: int = 10) -> float:
    """Mean distance of ``cell`` to its ``k`` nearest cells in ``others`` (1, the largest, when empty)."""
    if not others:
        return 1.0
    return float(np.mean(sorted(distance(cell, o) for o in others)[:k]))


class ConstraintSubset:
    """The constraint subset M of NSAS: ``update(new_cell)`` after each sampled path, ``cells`` to train."""

    def __init__(self, size: int = 8, k: int = 10, recent: int = 50, draws: int = 10, seed: int = 0):
        for name, value in (("size", size), ("k", k), ("recent", recent), ("draws", draws)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise NASInputError(f"the constraint subset's {name} must be a whole number >= 1, got {value!r}")
        self.size, self.k, self.draws = size, k, draws
        self.cells, self.recent = [], deque(maxlen=recent)
        self.rng, self.space = np.random.default_rng([seed, 1]), NB201Space()  # a stream apart from the paths

    def update(self, new_cell) -> list:
        self.recent.append(tuple(new_cell))
        if len(self.cells) < self.size:  # filling: the most novel of a few random cells
            pool = [self.space.sample(self.rng) for _ in range(self.draws)]
            self.cells.append(max(pool, key=lambda c: novelty(c, self.cells, self.k)))
            return self.cells
        nearest = int(np.argmin([distance(new_cell, c) for c in self.cells]))  # the member a_t resembles most
        rest = self.cells[:nearest] + self.cells[nearest + 1:]
        best = self.cells[nearest]
        for cell in self.recent:  # a recent path replaces it only if it makes M more diverse
            if novelty(cell, rest, self.k) > novelty(best, rest, self.k):
                best = cell
        self.cells[nearest] = best
        return self.cells


class RandomSubset:
    """The control for NSAS' selection: ``update(new_cell)`` returns ``size`` paths drawn uniformly anew (from a
    stream apart from the sampled paths', as :class:`ConstraintSubset`'s), whatever was sampled before."""

    def __init__(self, size: int = 8, seed: int = 0):
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise NASInputError(f"the random subset's size must be a whole number >= 1, got {size!r}")
        self.size, self.cells = size, []
        self.rng, self.space = np.random.default_rng([seed, 1]), NB201Space()

    def update(self, new_cell) -> list:
        self.cells = [self.space.sample(self.rng) for _ in range(self.size)]
        return self.cells


def make_subset(kind: str, size: int, seed: int, k: int = 10, recent: int = 50):
    """NSAS' constraint subset (``"novelty"``) or its control (``"random"``)."""
    check_choice("constraint subset", kind, ("novelty", "random"))
    return ConstraintSubset(size, k, recent, seed=seed) if kind == "novelty" else RandomSubset(size, seed)


def nsas_loss(supernet: Supernet, xb, yb, cell, subset: list, weight: float = 0.5):
    """(1 - weight) L(cell) + weight mean_{a in subset} L(a) on one minibatch; plain L(cell) if no subset."""
    loss = F.cross_entropy(supernet(xb, cell), yb)
    if not subset:
        return loss
    constraint = torch.stack([F.cross_entropy(supernet(xb, a), yb) for a in subset]).mean()
    return (1 - weight) * loss + weight * constraint


def _optimiser(supernet, lr: float):
    """The same optimiser as ``train_supernet``: SGD with Nesterov momentum and weight decay."""
    return torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def _step(supernet, opt, loss) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(supernet.parameters(), 5.0)
    opt.step()


def train_nsas(data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, lr: float = 0.1,
               subset_size: int = 8, k: int = 10, recent: int = 50, weight: float = 0.5, seed: int = 0,
               stem_stride: int = 1, subset: str = "novelty") -> tuple:
    """Train a supernet with NSAS: a uniform path per minibatch, trained together with the constraint subset.
    ``subset_size=0`` is the uniform baseline (RS-WS / SPOS training); ``subset="random"`` the control, a
    subset drawn at random at every step (:class:`RandomSubset`). Returns (supernet, log) with ``loss`` per
    epoch, ``subset`` (the final M) and ``seconds``. Each step costs 1 + |M| forward/backward passes."""
    check_positive("epochs", epochs)
    if not 0 <= weight <= 1:
        raise NASInputError(f"weight is the constraint's share of the loss, from 0 to 1 (the paper: 0.5), "
                            f"got {weight!r}")
    torch.manual_seed(seed)
    supernet = Supernet(data.num_classes, data.in_channels, C=C, N=N, stem_stride=stem_stride).to(data.device)
    check_choice("constraint subset", subset, ("novelty", "random"))
    subset = make_subset(subset, subset_size, seed, k, recent) if subset_size else None
    rng, space = np.random.default_rng(seed), NB201Space()
    opt = _optimiser(supernet, lr)  # the cosine schedule is minibatch_training's

    def loss_of(xb, yb, *_):
        cell = space.sample(rng)
        return nsas_loss(supernet, xb, yb, cell, subset.update(cell) if subset else [], weight)

    losses, seconds = minibatch_training(supernet, data, epochs, batch_size, opt, seed, loss_of)
    log = {"loss": losses, "seconds": seconds}
    log["subset"] = list(subset.cells) if subset else []
    return supernet, log


@torch.no_grad()
def batch_accuracy(supernet: Supernet, cell, x, y) -> float:
    """Accuracy (%) of the path ``cell`` on (x, y) with batch-norm statistics of this batch and path (the
    running averages belong to no path); the running statistics are left as they were."""
    norms = [m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) running + 0 batch: unchanged
    was_training = supernet.training
    supernet.train()
    acc = 100.0 * (supernet(x, cell).argmax(1) == y).float().mean().item()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    supernet.train(was_training)
    return acc


def step_forgetting(data, method: str = "nsas", warm_epochs: float = 1, steps: int = 50, window: int = 1,
                    C: int = 8, N: int = 1, batch_size: int = 128, lr: float = 0.05, subset_size: int = 8,
                    eval_size: int = 500, seed: int = 0, stem_stride: int = 1, supernet: Supernet | None = None):
    """Zhang et al.'s forgetting: after ``warm_epochs`` of uniform training, ``steps`` steps each on a new
    uniform path a_t (``method="uniform"``), on a_t with the constraint subset (``"nsas"``) or with a subset
    drawn at random at every step (``"random-subset"``, NSAS' loss and passes without its selection); before and
    after each step, the accuracy on ``eval_size`` validation images of the ``window`` paths trained in the steps
    before. Forgetting = accuracy before - accuracy after (positive: the step made the supernet forget).

    The methods start from the same warmed-up weights and see the same paths and minibatches; NSAS's subset
    starts empty and fills during its first ``subset_size`` steps, the random one is full from the first. With
    ``supernet`` (a trained one) the steps start from a copy of it instead of a warm-up (the sizes C, N,
    stem_stride are then its own), and it is left as it is. One row per (step, previous path): ``step``,
    ``arch``, ``before``, ``after``, ``forgetting``, ``method``.
    """
    import pandas as pd

    check_choice("forgetting method", method, ("uniform", "random-subset", "nsas"))
    if not isinstance(steps, int) or steps < 2 or not isinstance(window, int) or window < 1:
        raise NASInputError(f"steps must be a whole number >= 2 and window >= 1, got {steps!r}, {window!r}")
    if supernet is None:
        supernet, _ = train_nsas(data, warm_epochs, C, N, batch_size, lr, subset_size=0, seed=seed,
                                 stem_stride=stem_stride)
    else:
        supernet = copy.deepcopy(supernet)
    subset = None if method == "uniform" else make_subset("novelty" if method == "nsas" else "random", subset_size,
                                                          seed)
    opt = _optimiser(supernet, lr)  # a constant rate: no schedule over so few steps
    gen, rng, space = torch.Generator().manual_seed(seed + 1), np.random.default_rng(seed + 1), NB201Space()
    xv, yv = data.valid_x[:eval_size], data.valid_y[:eval_size]
    def minibatches():  # the training split, reshuffled every pass, for as long as needed
        while True:
            yield from batches(data.train_x, data.train_y, batch_size, shuffle=True, generator=gen)

    trained, rows, stream = [], [], minibatches()
    for step in range(steps):
        xb_yb, cell, previous = next(stream), space.sample(rng), trained[-window:]
        before = [batch_accuracy(supernet, a, xv, yv) for a in previous]
        members = subset.update(cell) if subset else []
        supernet.train()
        _step(supernet, opt, nsas_loss(supernet, *xb_yb, cell, members))
        for a, b in zip(previous, before):
            after = batch_accuracy(supernet, a, xv, yv)
            rows.append({"method": method, "step": step, "arch": to_str(a), "before": b, "after": after,
                         "forgetting": b - after})
        trained.append(cell)
    return pd.DataFrame(rows)
