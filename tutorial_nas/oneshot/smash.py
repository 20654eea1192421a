"""SMASH: one-shot architecture search through a hypernetwork (Brock et al., ICLR 2018), on the NAS-Bench-201 cell.

Weight sharing gives every candidate the *same* weights for an op wherever it appears. SMASH instead trains an
auxiliary HyperNet that *generates* a candidate's weights from an encoding of its architecture, W = H(c) (§3):
at every training step a random architecture is sampled, its weights are generated, and the training loss is
backpropagated through the generated weights into the HyperNet (and into the ordinary weights around the
generated ones, which train along). After training, candidates are ranked by
their validation accuracy with generated weights (the "SMASH score", §4.1), which the paper shows to correlate
with the accuracy of the same networks trained normally.

What differs from the paper and its code (ajbrock/SMASH):

- The encoding is the cell's one-hot (6 edges x 5 ops) instead of SMASH's memory-bank read/write tensor, and
  the HyperNet is a small MLP instead of its 7-layer DenseNet: the MLP maps the encoding to ``rank``
  coefficients for every convolution of every cell, and that convolution's weight is a learned base tensor
  plus the coefficient-weighted sum of ``rank`` learned tensors (a linear read-out of rank ``rank``: the MLP
  stays small at any width, but the read-out holds ``rank + 1`` tensors the size of each generated weight, so
  the HyperNet grows with the width squared, about four times the plain supernet's parameters at C = 8).
  Every generated weight depends on the *whole* cell, so the same op on the same edge gets different weights
  in different cells.
- Every convolution of the cells is generated, 1 x 1 and 3 x 3 alike, so a cell holds no weights of its own.
  SMASH's code generates only the 1 x 1 convolutions of its blocks; their spatial filters are ordinary
  weights, shared by every architecture. Here the whole cell is generated, which makes the SMASH score a
  cleaner test of the HyperNet (nothing of a cell's weights is shared), at the cost of more for the HyperNet
  to learn. The generated convolutions are followed by batch norms without affine parameters; SMASH's code
  has no batch norm in its ops and normalises each generated weight tensor by its norm instead. The fixed
  skeleton around the cells (stem, residual reductions, classifier), the same in every candidate, has ordinary
  weights trained along.
- The HyperNet reads the encoding alone; SMASH's also reads a fresh Gaussian noise at every call, so its score
  of a network is itself a random draw. Here a cell's generated weights, and its score, are fixed.
- The candidates to rank are given (``score``); SMASH's code draws 500 random architectures, then perturbs
  and walks from the best.
- Before a candidate is scored, its batch-norm statistics are re-estimated on a few training batches of that
  candidate (``Supernet.recalibrate``), as the package's weight-sharing supernets do.
- Adam (lr 0.01, default betas) with a cosine decay and gradients clipped at norm 5 is this package's choice
  (at lr 0.001 the HyperNet barely learned in the few hundred steps of the course's sizes); SMASH's code uses
  lr 0.001, betas (0.5, 0.999), eps 1e-4, weight decay 1e-4 outside the HyperNet, and no clipping.

    >>> net, log = train_smash(data, epochs=3)
    >>> net.score(cell, data)          # validation accuracy with generated weights
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NASInputError, check_positive
from ..predictors import Shortcut
from ..spaces.cell import EDGES, NB201Space, encode_onehot, skeleton
from .supernet import Supernet, minibatch_training

CONVS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}  # the ops with weights, and their kernel sizes


class HyperCell(nn.Module):
    """A NAS-Bench-201 cell without weights: ``forward(x, cell, weights)`` runs ``cell`` with the convolution
    weights it is given, ``weights[f"{edge}_{op}"]`` for every edge ``"ij"`` and conv op."""

    def __init__(self, C: int):
        super().__init__()
        self.C = C
        self.norms = nn.ModuleDict({f"{i}{j}_{op}": nn.BatchNorm2d(C, affine=False) for i, j in EDGES for op in CONVS})

    def shapes(self) -> dict:
        return {f"{i}{j}_{op}": (self.C, self.C, k, k) for i, j in EDGES for op, k in CONVS.items()}

    def op(self, name: str, edge: str, x, weights):
        if name == "skip_connect":
            return x
        if name == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        key = f"{edge}_{name}"  # ReLU, generated convolution, batch norm: NAS-Bench-201's nor_conv
        return self.norms[key](F.conv2d(F.relu(x), weights[key], padding=CONVS[name] // 2))

    def forward(self, x, cell, weights):
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.op(op, f"{i}{k}", nodes[i], weights) for (i, k), op in zip(EDGES, cell)
                     if k == j and op != "none"]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[3]


class HyperNet(nn.Module):
    """Encoding -> every generated weight: an MLP gives ``rank`` coefficients per weight tensor, and the tensor
    is ``base + sum_r coef_r * basis_r`` (both learned)."""

    def __init__(self, shapes: dict, n_in: int = 30, hidden: int = 64, rank: int = 4):
        super().__init__()
        self.shapes, self.rank = dict(shapes), rank
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, len(shapes) * rank))
        # every tensor of the read-out at 1/(rank + 1) of He's variance: with coefficients of scale one, a
        # generated weight would start at He's variance; the untrained MLP gives coefficients of about 0.1, so
        # each weight starts near its base tensor and the cells' weights start close to one another
        self.bases = nn.ParameterDict({key: nn.Parameter(torch.randn(rank + 1, *shape) * math.sqrt(
            2.0 / (shape[1] * shape[2] * shape[3] * (rank + 1)))) for key, shape in self.shapes.items()})

    def forward(self, encoding: torch.Tensor) -> dict:
        coef = self.mlp(encoding).view(len(self.shapes), self.rank)
        return {key: basis[0] + torch.einsum("r,r...->...", c, basis[1:])
                for (key, basis), c in zip(self.bases.items(), coef)}


class SMASHNet(Supernet):
    """The NAS-Bench-201 skeleton with weightless ``HyperCell``s whose convolutions the ``hyper`` network
    generates from the cell's one-hot encoding. ``forward(x, cell)``; ``recalibrate`` and ``score`` (validation
    accuracy, BN re-estimated) are ``Supernet``'s."""

    def __init__(self, num_classes: int, in_channels: int = 3, C: int = 16, N: int = 5, stem_stride: int = 1,
                 hidden: int = 64, rank: int = 4):
        nn.Module.__init__(self)  # not Supernet's cells: only its path interface (cell, recalibrate, score)
        self.stem, layers, self.head = skeleton(HyperCell, num_classes, in_channels, C, N, stem_stride)
        self.layers = nn.ModuleList(layers)
        self.cell = ("nor_conv_3x3",) * len(EDGES)
        shapes = {f"{k}_{key}": shape for k, layer in enumerate(self.layers) if isinstance(layer, HyperCell)
                  for key, shape in layer.shapes().items()}
        self.hyper = HyperNet(shapes, hidden=hidden, rank=rank)

    def generate(self, cell) -> dict:
        """The weights of ``cell``: ``{f"{layer}_{edge}_{op}": tensor}``, computed by the HyperNet."""
        encoding = torch.as_tensor(encode_onehot(tuple(cell)), device=self.stem[0].weight.device)
        return self.hyper(encoding)

    def forward(self, x, cell=None):
        cell = tuple(self.cell if cell is None else cell)
        weights = self.generate(cell)
        x = self.stem(x)
        for k, layer in enumerate(self.layers):
            if isinstance(layer, HyperCell):
                x = layer(x, cell, {key: weights[f"{k}_{key}"] for key in layer.shapes()})
            else:
                x = layer(x)
        return self.head(x)


def train_smash(data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, lr: float = 0.01,
                seed: int = 0, stem_stride: int = 1, hidden: int = 64, rank: int = 4) -> tuple:
    """Train a ``SMASHNet`` for ``data``: a uniformly random cell per minibatch, its weights generated, the
    cross-entropy backpropagated into the HyperNet (and the fixed skeleton). Returns (net, log) with ``loss``
    (mean per epoch) and ``seconds``."""
    check_positive("epochs", epochs)
    if not isinstance(rank, int) or rank < 1:
        raise NASInputError(f"rank is the number of learned tensors per generated weight, at least 1; got {rank!r}")
    torch.manual_seed(seed)
    net = SMASHNet(data.num_classes, data.in_channels, C, N, stem_stride, hidden, rank).to(data.device)
    rng, space = np.random.default_rng(seed), NB201Space()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses, seconds = minibatch_training(  # a new architecture every step
        net, data, epochs, batch_size, opt, seed, lambda xb, yb, *_: F.cross_entropy(net(xb, space.sample(rng)), yb))
    log = {"loss": losses, "seconds": seconds}
    return net, log


class SMASHShortcut(Shortcut):
    """Rate each cell by its SMASH score: validation accuracy with HyperNet-generated weights."""

    name = "SMASH hypernetwork"

    def __init__(self, data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, seed: int = 0,
                 stem_stride: int = 1, **options):
        self.data = data
        self.options = dict(epochs=epochs, C=C, N=N, batch_size=batch_size, seed=seed, stem_stride=stem_stride,
                            **options)

    def _score(self, cells):
        self.net, self.log = train_smash(self.data, **self.options)
        return [self.net.score(c, self.data, batch_size=self.options["batch_size"]) for c in cells]
