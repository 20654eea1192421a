"""DNA: block-wisely supervised NAS with knowledge distillation (Li et al., CVPR 2020), on the NAS-Bench-201 cell.

A supernet trained end to end shares its weights among so many paths that their ranking suffers. DNA cuts the
supernet into blocks and supervises every block on its own with a trained *teacher* of the same macro shape
(§3.1-3.2): block ``b`` of the student takes the teacher's output of block ``b - 1`` as its input and learns to
reproduce the teacher's output of block ``b``, with the loss (Eq. 3)

    L_b = ||Y_b - student_b(Y_{b-1})||^2 / K        (K: the number of numbers in Y_b, i.e. the mean squared error)

where the teacher is frozen and one random path of the block is trained per step (single-path sampling, as in
SPOS). Each block is then small enough for every candidate to be rated, and a whole network is rated by the sum
of its blocks' ratings (lower is better; the paper's §3.4 traverses the blocks' sorted candidates with it). The
rating follows the reference code (changlin31/DNA): Eq. 3 is what the blocks are *trained* on, but a candidate is
*rated* by the relative L1 distance ``cl_loss`` of ``distill_train._potential``,

    R_b = mean|Y_b - student_b(Y_{b-1})| / std(Y_b)        (std over every number of the batch's Y_b)

averaged over the validation batches, and ``process_potential.py`` sums it over the blocks (``loss_join='sum'``,
``norm_mse=False``). Dividing by the spread of each block's target puts the blocks on one scale: summed MSEs
would be ruled by whichever block's features happen to be largest (``course.trace.trace_oneshot_variants``
shows both on one cell). The reference's configuration trains each block on the plain feature loss (its per-stage
``mse_weight`` enters only a combined loss with the labels, which that configuration does not train).

On NAS-Bench-201 the blocks are the skeleton's three stages: block 0 is the stem and the first N cells, blocks 1
and 2 a residual reduction and N cells each (the classifier head is no block; nothing is searched there). The
paper searches each block separately and may put a different architecture in each; here one cell is repeated in
every stage, so a cell's score is the sum of its three block ratings *with the same cell in each block*, and the
blocks are trained independently, each on its own random path per step: Adam with the reference's weight decay
(1e-4 as L2 on the weights, none on biases and batch-norm parameters, as its ``add_weight_decay``) at the
reference's per-stage rates (``train_pipeline.yaml``: 0.002 for its first and last stages, 0.005 for the four
between them; here ``DNA_LR``: 0.002, 0.005 and 0.002 for the three blocks), a cosine decay instead of its step
decay, and each block's gradients clipped at norm 5 on their own (as the package's supernets clip theirs), so that
no block's step depends on another's. The teacher (default:
NAS-Bench-201's ResNet cell) is trained briefly with ``tutorial_nas.train`` and then frozen in eval mode: its
targets use its trained batch-norm statistics (the reference's training loop leaves the teacher in train mode, so
its targets use each batch's statistics, and re-estimates the teacher's statistics on one training batch before
rating). Before a cell is rated the student's batch-norm statistics are re-estimated on a few training batches of
that path, as the package's other supernets do (``Supernet.recalibrate``; the reference: one batch), and the
rating averages over the whole validation split (the reference: 19 batches).

    >>> student, teacher, log = train_dna(data, epochs=3)
    >>> dna_losses(student, teacher, cell, data)    # per-block MSE (Eq. 3) on the validation split
    >>> dna_ratings(student, teacher, cell, data)   # per-block rating R_b; the cell's score is minus their sum
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import batches
from ..errors import NASInputError, check_positive
from ..predictors import Shortcut
from ..spaces.cell import NB201Network, NB201Space, ResidualReduction, parse
from ..train import train
from .supernet import SuperCell, Supernet

# NAS-Bench-201's ResNet cell: two 3x3 convolutions in a row, plus a skip connection over them
RESNET_CELL = parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")


def stage_blocks(net: nn.Module) -> list:
    """The three blocks of a NAS-Bench-201 network or supernet, as lists of modules: the stem and the first
    stage's cells; then each reduction with the cells of its stage."""
    layers = list(net.cells if isinstance(net, NB201Network) else net.layers)
    cuts = [i for i, layer in enumerate(layers) if isinstance(layer, ResidualReduction)]
    bounds = [0, *cuts, len(layers)]
    blocks = [layers[a:b] for a, b in zip(bounds, bounds[1:])]
    return [[net.stem, *blocks[0]], *blocks[1:]]


def run_block(block: list, x: torch.Tensor, cell=None) -> torch.Tensor:
    """Run the modules of one block; super-cells run the path ``cell``."""
    for module in block:
        x = module(x, cell) if isinstance(module, SuperCell) else module(x)
    return x


@torch.no_grad()
def teacher_features(teacher: NB201Network, x: torch.Tensor) -> list:
    """The input image and the teacher's output of every block: ``[x, Y_0, Y_1, Y_2]``."""
    feats = [x]
    for block in stage_blocks(teacher):
        feats.append(run_block(block, feats[-1]))
    return feats


def block_output(student: Supernet, b: int, feats: list, cell) -> torch.Tensor:
    """Student block ``b`` run on the teacher's input ``feats[b]`` (the teacher's output of block ``b - 1``, or
    the image), with the path ``cell``."""
    return run_block(stage_blocks(student)[b], feats[b], cell)


def relative_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean absolute error over the target's standard deviation (every number of the batch)."""
    return (out - target).abs().mean() / (target.std() + 1e-9)


def block_loss(student: Supernet, b: int, feats: list, cell) -> torch.Tensor:
    """Eq. 3: the mean squared error between student block ``b`` on the teacher's input ``feats[b]`` (the
    teacher's output of block ``b - 1``, or the image) and the teacher's output ``feats[b + 1]``."""
    return F.mse_loss(block_output(student, b, feats, cell), feats[b + 1])


def freeze(teacher: nn.Module) -> nn.Module:
    """Eval mode (its BN statistics stay as trained) and no gradients: the teacher only supplies targets."""
    return teacher.eval().requires_grad_(False)


WEIGHT_DECAY = 1e-4  # the reference's train_pipeline.yaml
# Adam's rate for each block: the reference's per-stage rates (train_pipeline.yaml: 0.002, 0.005, 0.005, 0.005, 0.005,
# 0.002 over its six stages), its first stage's for block 0, its middle stages' for block 1, its last's for block 2
DNA_LR = (0.002, 0.005, 0.002)


def weight_decay_groups(model: nn.Module, weight_decay: float = WEIGHT_DECAY) -> list:
    """Parameter groups as the reference's ``add_weight_decay``: L2 on the weights, none on biases and the
    one-dimensional batch-norm parameters."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def block_lrs(lr) -> tuple:
    """One learning rate for each of the three blocks: ``lr`` itself if it is three numbers, else ``lr`` three times."""
    rates = tuple(lr) if isinstance(lr, (tuple, list, np.ndarray)) else (lr,) * 3
    if len(rates) != 3 or not all(isinstance(r, (int, float, np.number)) and r > 0 for r in rates):
        raise NASInputError(f"lr must be a positive number or one for each of the 3 blocks, got {lr!r}")
    return tuple(float(r) for r in rates)


def block_groups(student: Supernet, lr=DNA_LR, weight_decay: float = WEIGHT_DECAY) -> list:
    """``weight_decay_groups`` block by block, each block at its own rate (``block_lrs``); the head, which no block
    holds and no loss reaches, is left out."""
    groups = []
    for block, rate in zip(stage_blocks(student), block_lrs(lr)):
        groups += [{**group, "lr": rate} for group in weight_decay_groups(nn.ModuleList(block), weight_decay)]
    return groups


def distill(student: Supernet, teacher: NB201Network, data, epochs: float = 3, batch_size: int = 128,
            lr=DNA_LR, seed: int = 0) -> dict:
    """Train every block of ``student`` to mimic the frozen ``teacher`` block by block, one uniformly random
    path per block and step, each block at its rate of ``lr`` (``block_lrs``). Returns a log: ``loss`` (per epoch,
    the mean of each block's loss), ``seconds``."""
    check_positive("epochs", epochs)
    groups = block_groups(student, lr)
    freeze(teacher)
    gen, rng, space = torch.Generator().manual_seed(seed), np.random.default_rng(seed), NB201Space()
    total = max(1, round(epochs * math.ceil(len(data.train_y) / batch_size)))
    # one optimiser over disjoint blocks whose losses are summed: Adam is per parameter and each block's gradients
    # are clipped on their own, so each block trains exactly as it would alone (the reference trains the stages
    # one after another, each with its own optimiser: the same updates, block by block)
    opt = torch.optim.Adam(groups)
    blocks = [[p for module in block for p in module.parameters()] for block in stage_blocks(student)]
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    log, step, start = {"loss": [], "seconds": 0.0}, 0, time.perf_counter()
    student.train()
    while step < total:
        running, seen = np.zeros(3), 0
        for xb, _ in batches(data.train_x, data.train_y, batch_size, shuffle=True, generator=gen,
                             augment=data.augment):
            feats = teacher_features(teacher, xb)
            losses = [block_loss(student, b, feats, space.sample(rng)) for b in range(3)]
            opt.zero_grad(set_to_none=True)
            live = [v for v in losses if v.requires_grad]  # a path that reaches no output passes no gradient
            if live:
                sum(live).backward()
            for params in blocks:  # as the package's supernets: a rare path can blow up
                nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            running, seen, step = running + np.array([v.item() for v in losses]) * len(xb), seen + len(xb), step + 1
            if step >= total:
                break
        log["loss"].append((running / max(1, seen)).tolist())
    log["seconds"] = time.perf_counter() - start
    return log


def block_rating(student: Supernet, b: int, feats: list, cell) -> torch.Tensor:
    """The reference code's rating of block ``b`` on one batch: the mean absolute error between the student's
    block on ``feats[b]`` and the teacher's ``feats[b + 1]``, divided by the standard deviation of
    ``feats[b + 1]`` (a relative L1 distance, in units of the target's own spread)."""
    return relative_l1(block_output(student, b, feats, cell), feats[b + 1])


MEASURES = {"mse": F.mse_loss, "rating": relative_l1}  # of (block output, target): block_loss, block_rating


@torch.no_grad()
def block_measures(student: Supernet, teacher: NB201Network, cell, data, n_batches: int = 4,
                   batch_size: int = 128, measures=("mse", "rating")) -> dict:
    """For each name in ``measures`` (``"mse"``: Eq. 3, ``block_loss``; ``"rating"``: ``block_rating``), the
    three blocks' values for ``cell`` on the validation split (each block fed the teacher's input; per batch,
    averaged over batches weighted by their size), after re-estimating the path's batch-norm statistics on
    ``n_batches`` training batches. One pass computes them all."""
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise NASInputError(f"unknown DNA measure(s) {unknown}; choose from {sorted(MEASURES)}")
    cell = tuple(cell)
    freeze(teacher)
    blocks = stage_blocks(student)
    norms = [m for m in student.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    student.train()
    for k, (xb, _) in enumerate(batches(data.train_x, data.train_y, batch_size)):
        if k >= n_batches:
            break
        feats = teacher_features(teacher, xb)
        for b, block in enumerate(blocks):
            run_block(block, feats[b], cell)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    student.eval()
    totals, n = {name: np.zeros(3) for name in measures}, 0
    for xb, _ in batches(data.valid_x, data.valid_y, 1024):
        feats = teacher_features(teacher, xb)
        outs = [run_block(block, feats[b], cell) for b, block in enumerate(blocks)]  # each block run once
        for name in measures:
            totals[name] += np.array([MEASURES[name](out, feats[b + 1]).item() for b, out in enumerate(outs)]) \
                * len(xb)
        n += len(xb)
    student.train()
    return {name: total / max(1, n) for name, total in totals.items()}


def dna_losses(student: Supernet, teacher: NB201Network, cell, data, n_batches: int = 4,
               batch_size: int = 128) -> np.ndarray:
    """The three block losses (Eq. 3, the mean squared error) of ``cell`` on the validation split."""
    return block_measures(student, teacher, cell, data, n_batches, batch_size, measures=("mse",))["mse"]


def dna_ratings(student: Supernet, teacher: NB201Network, cell, data, n_batches: int = 4,
                batch_size: int = 128) -> np.ndarray:
    """The three block ratings (``block_rating``) of ``cell`` on the validation split; the cell's DNA score is
    minus their sum."""
    return block_measures(student, teacher, cell, data, n_batches, batch_size, measures=("rating",))["rating"]


def train_dna(data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, seed: int = 0,
              stem_stride: int = 1, teacher_cell=RESNET_CELL, teacher_epochs: float = 3, lr=DNA_LR) -> tuple:
    """Train a teacher NB201 network with ``teacher_cell`` for ``teacher_epochs``, then a student supernet of
    the same shape by ``distill``: (student, teacher, log); the log also holds the teacher's accuracy."""
    block_lrs(lr)  # a bad rate fails before the teacher trains
    teacher_cell = parse(teacher_cell) if isinstance(teacher_cell, str) else tuple(teacher_cell)
    if len(teacher_cell) != 6:
        raise NASInputError(f"teacher_cell is a NAS-Bench-201 cell (6 op names or an arch string), got {teacher_cell}")
    torch.manual_seed(seed)
    sizes = dict(C=C, N=N, stem_stride=stem_stride)
    teacher = NB201Network(teacher_cell, data.num_classes, data.in_channels, **sizes).to(data.device)
    record = train(teacher, data, epochs=teacher_epochs, batch_size=batch_size, seed=seed, progress=False,
                   test=False, channels_last=False)
    student = Supernet(data.num_classes, data.in_channels, **sizes).to(data.device)
    log = distill(student, teacher, data, epochs, batch_size, lr, seed)
    log.update(teacher_valid_acc=record.final_valid_acc, teacher_seconds=record.seconds)
    return student, freeze(teacher), log


class DNAShortcut(Shortcut):
    """Rate each cell by DNA: minus the sum of its three block ratings (``block_rating``, the reference code's
    relative L1 distance; higher = closer to the teacher). ``losses`` keeps each cell's Eq. 3 block losses
    beside its ``ratings``."""

    name = "DNA distillation"

    def __init__(self, data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128, seed: int = 0,
                 stem_stride: int = 1, teacher_cell=RESNET_CELL, teacher_epochs: float = 3, lr=DNA_LR):
        self.data = data
        self.options = dict(epochs=epochs, C=C, N=N, batch_size=batch_size, seed=seed, stem_stride=stem_stride,
                            teacher_cell=teacher_cell, teacher_epochs=teacher_epochs, lr=lr)

    def _score(self, cells):
        self.student, self.teacher, self.log = train_dna(self.data, **self.options)
        # statistics re-estimated on 4 batches of the search's batch size, as the package's other supernets do
        measured = [block_measures(self.student, self.teacher, c, self.data, batch_size=self.options["batch_size"])
                    for c in cells]
        self.losses = [m["mse"] for m in measured]
        self.ratings = [m["rating"] for m in measured]
        return [-float(np.sum(r)) for r in self.ratings]
