"""Weight sharing on the NAS-Bench-201 cell space: ENAS, random search with weight sharing (RS-WS) and SPOS.

Training every candidate from scratch is what made early NAS cost thousands of GPU-days. Weight sharing trains
one *supernet* instead: every edge of the cell holds all five operations, and a forward pass takes one path
(one op per edge, i.e. one cell). Every cell of the space is then a sub-network whose weights already exist,
and its validation accuracy with those shared weights is a cheap (and biased) estimate of how good it is.

- ENAS (Pham et al. 2018): a controller samples a new child for every minibatch of the shared weights; in
  alternation the controller is trained by REINFORCE with reward = the child's accuracy on a validation
  minibatch (+ 1e-4 x entropy), against a moving-average baseline. The controller is the package's LSTM
  controller (``strategies.reinforce.Reinforce``), which writes a cell edge by edge through the space's
  token interface; here it is told the child's minibatch accuracy instead of a full training's. As ENAS' code
  (``scripts/cifar10_micro_search.sh``, ``micro_controller.py``, ``utils.py``): the operation logits are
  bounded (1.10 / 2.5 x tanh), so every operation keeps a floor of probability and its shared weights go on
  training; Adam runs at 0.0035 with beta1 = 0 and eps = 1e-3; the baseline starts at 0 and decays by 0.99;
  each controller step averages the gradients of 10 sampled children. ENAS takes 30 such steps after every
  epoch of the shared weights; here ``controller_steps`` (the profiles set it to the course's sizes). ENAS'
  fixed prior for its separable convolutions (``b_soft``) has no counterpart on this cell and is left out;
  its shared weights train with drop-path and auxiliary heads, here with the package's supernet recipe; and it
  scores a candidate on one validation minibatch with training-mode batch norm, here on the whole split with
  batch norm recalibrated (below), as every method of this module.
- RS-WS, random search with weight sharing (Li & Talwalkar 2019): a uniformly random path per training step
  (``strategies.random_search.RandomSearch`` proposes it), then uniformly random candidates scored with the
  shared weights. Their code screens 1,000 random cells on 10 validation minibatches and re-scores the best
  10 on the whole validation split, in eval mode with the running statistics of all paths (no
  recalibration); here every candidate is scored on the whole split with batch norm recalibrated (below), so
  that the methods' second stages compare at an equal number of supernet evaluations.
- SPOS, Single Path One-Shot (Guo et al. 2020): uniform single-path training (its first stage; the reference
  code draws paths uniformly within a FLOPs band, which an unconstrained search has no need of), then
  an evolutionary search over the trained supernet (its second stage, §3.3 and Algorithm 1): a population of
  P cells, each generation bred from the top k cells seen so far by mutation and crossover, every candidate
  scored by its shared-weight validation accuracy (``evolutionary_search``).

Before a path is scored its batch-norm statistics are recalibrated: the running statistics were averaged over
many different paths and belong to none of them, so they are reset and re-estimated on a few training batches
of this path (SPOS §3.3 does this for every candidate; a known pitfall otherwise: BN settings silently change
supernet rankings). SPOS' code re-estimates on 200 batches of 128 images; here on 4 batches of the search's
batch size (128 by default; the course's profiles use 64), the same for every candidate, as the course's sizes
afford. The supernet's batch norms keep their affine parameters and weight decay reaches every parameter;
every batch norm of SPOS' supernet is affine-free, and its weight decay spares batch-norm parameters and
biases. The first stage's optimiser is the package's supernet recipe for every method here (SGD at 0.1 with
Nesterov momentum, weight decay 5e-4, a cosine schedule, gradients clipped at norm 5); SPOS' code trains at
0.5 with a linear decay, plain momentum, weight decay 4e-5, label smoothing 0.1 and batch 1024, RS-WS' at
0.025 with a cosine to 0.001, weight decay 3e-4 and batch 64.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import batches
from ..errors import NASInputError, check_choice, check_positive
from ..evaluators import Evaluator, Result
from ..ops import NB201_OPS, nb201_op
from ..progress import tqdm
from ..search import history_frame
from ..spaces.cell import EDGES, NB201Space, skeleton, to_str
from ..strategies.random_search import RandomSearch
from ..strategies.reinforce import Reinforce
from ..train import evaluate

METHODS = ("enas", "rs-ws", "spos")


class SuperCell(nn.Module):
    """A NAS-Bench-201 cell whose every edge holds all the operations; ``forward(x, cell)`` runs one path."""

    def __init__(self, C: int):
        super().__init__()
        self.edges = nn.ModuleDict({f"{i}{j}": nn.ModuleDict({op: nb201_op(op, C) for op in NB201_OPS
                                                             if op != "none"}) for i, j in EDGES})

    def forward(self, x, cell):
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.edges[f"{i}{k}"][op](nodes[i]) for (i, k), op in zip(EDGES, cell)
                     if k == j and op != "none"]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[3]


class Supernet(nn.Module):
    """The NAS-Bench-201 skeleton (stem, 3 stages of N cells at C, 2C, 4C, residual reductions, head) with
    super-cells. ``forward(x, cell)`` runs the path ``cell``; without ``cell`` the path set by ``.cell``."""

    def __init__(self, num_classes: int, in_channels: int = 3, C: int = 16, N: int = 5, stem_stride: int = 1):
        super().__init__()
        self.stem, layers, self.head = skeleton(SuperCell, num_classes, in_channels, C, N, stem_stride)
        self.layers = nn.ModuleList(layers)
        self.cell = ("nor_conv_3x3",) * len(EDGES)

    def forward(self, x, cell=None):
        cell = self.cell if cell is None else cell
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, cell) if isinstance(layer, SuperCell) else layer(x)
        return self.head(x)

    @torch.no_grad()
    def recalibrate(self, cell, data, n_batches: int = 4, batch_size: int = 128) -> None:
        """Reset every BN's running statistics and re-estimate them on ``n_batches`` training batches of
        the path ``cell`` (a cumulative average, ``momentum=None``), so that eval mode fits this path."""
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        was_training = self.training
        self.train()
        for k, (xb, _) in enumerate(batches(data.train_x, data.train_y, batch_size)):
            if k >= n_batches:
                break
            self(xb, cell)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.train(was_training)

    def score(self, cell, data, n_batches: int = 4, batch_size: int = 128, split: str = "valid") -> float:
        """Accuracy (%) of the path ``cell`` with the shared weights, BN recalibrated first."""
        check_choice("split", split, ("valid", "test"))
        self.recalibrate(cell, data, n_batches, batch_size)
        self.cell = tuple(cell)
        return evaluate(self, getattr(data, f"{split}_x"), getattr(data, f"{split}_y"))[1]


def _cycle(data, batch_size: int, generator: torch.Generator):
    """Validation minibatches forever, reshuffled every pass (the controller's reward signal)."""
    while True:
        yield from batches(data.valid_x, data.valid_y, batch_size, shuffle=True, generator=generator)


def minibatch_training(model, data, epochs: float, batch_size: int, opt, seed: int, loss_of) -> tuple:
    """The loop the one-shot models of this package train with: shuffled training minibatches drawn from
    ``seed``, one step of ``opt`` per minibatch on ``loss_of(xb, yb, step, total)`` with gradients clipped at
    norm 5, a cosine schedule over all ``total`` steps. Returns (mean training loss per epoch, seconds)."""
    gen = torch.Generator().manual_seed(seed)
    total = max(1, round(epochs * max(1, math.ceil(len(data.train_y) / batch_size))))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    losses, step, start = [], 0, time.perf_counter()
    model.train()
    while step < total:
        running, seen = 0.0, 0
        for xb, yb in batches(data.train_x, data.train_y, batch_size, shuffle=True, generator=gen,
                              augment=data.augment):
            loss = loss_of(xb, yb, step, total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            running, seen, step = running + loss.item() * len(yb), seen + len(yb), step + 1
            if step >= total:
                break
        losses.append(running / max(1, seen))
    return losses, time.perf_counter() - start


def train_supernet(supernet: Supernet, data, strategy, epochs: float = 3, batch_size: int = 128,
                   lr: float = 0.1, controller_steps: int = 0, seed: int = 0, warmup_epochs: int = 0,
                   progress: bool = True) -> dict:
    """Train the shared weights, one path per minibatch proposed by ``strategy.ask()``; after each epoch,
    ``controller_steps`` steps of the strategy (ENAS: REINFORCE), each over ``strategy.aggregate`` children
    (ENAS: 10) told their validation-minibatch accuracy. During the first ``warmup_epochs`` the paths are
    uniform and the controller waits, so that it is not rewarded for what merely trains fastest (parameter-free
    paths win a barely trained supernet).

    Returns a log: ``loss`` (mean training loss per epoch), ``samples`` ((epoch, arch string) of every path
    the controller proposed in its own steps), ``seconds``.
    """
    check_positive("epochs", epochs)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(data.train_y) / batch_size))
    total = max(1, round(epochs * steps_per_epoch))
    opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    rewards, uniform, rng = _cycle(data, batch_size, gen), NB201Space(), np.random.default_rng(seed)
    log, step, start = {"loss": [], "samples": [], "seconds": 0.0}, 0, time.perf_counter()
    bar = tqdm(total=total, desc="supernet", disable=not progress, leave=False)
    while step < total:
        supernet.train()
        running, seen, warm = 0.0, 0, len(log["loss"]) < warmup_epochs
        propose = (lambda: uniform.sample(rng)) if warm else strategy.ask
        for xb, yb in batches(data.train_x, data.train_y, batch_size, shuffle=True, generator=gen,
                              augment=data.augment):
            loss = F.cross_entropy(supernet(xb, propose()), yb)  # a new child per minibatch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(supernet.parameters(), 5.0)
            opt.step()
            sched.step()
            running, seen, step = running + loss.item() * len(yb), seen + len(yb), step + 1
            bar.update(1)
            if step >= total:
                break
        log["loss"].append(running / max(1, seen))
        bar.set_postfix(loss=f"{log['loss'][-1]:.3f}")
        # the controller learns, reward = valid accuracy; each of its steps averages ``aggregate`` children
        for _ in range(0 if warm else controller_steps * getattr(strategy, "aggregate", 1)):
            cell = strategy.ask()
            xb, yb = next(rewards)
            with torch.no_grad():
                acc = 100.0 * (supernet(xb, cell).argmax(1) == yb).float().mean().item()
            strategy.tell(cell, Result(valid_acc=acc))
            log["samples"].append((len(log["loss"]), to_str(cell)))
    bar.close()
    log["seconds"] = time.perf_counter() - start
    return log


# ENAS' micro search (its code, scripts/cifar10_micro_search.sh and main.py's defaults): Adam at 0.0035 with
# beta1 = 0 and eps = 1e-3 for the controller, operation logits bounded by controller_tanh_constant /
# controller_op_tanh_reduce = 1.10 / 2.5, a baseline from 0 decaying by controller_bl_dec = 0.99, and
# controller_num_aggregate = 10 children per step
ENAS_CONTROLLER_LR = 0.0035
ENAS_OP_TANH = 1.10 / 2.5
ENAS_CONTROLLER = dict(betas=(0.0, 0.999), eps=1e-3, baseline_decay=0.99, baseline_start=0.0, aggregate=10)


def train_weight_sharing(method: str, data, epochs: float = 3, C: int = 8, N: int = 1, batch_size: int = 128,
                         seed: int = 0, progress: bool = True, stem_stride: int = 1, **options) -> tuple:
    """Build a supernet for ``data``, train it with ``method``: (supernet, strategy, log).

    "enas" trains the controller along; "rs-ws" and "spos" train on uniformly sampled paths (the two differ
    only in how they search the trained supernet). ``stem_stride=2`` halves the map in the stem (the
    benchmark's recipe on small images). ``options``: ``lr``, ``controller_steps`` (ENAS, per epoch);
    ``controller_lr``, ``entropy_weight``.
    """
    check_choice("weight-sharing method", method, METHODS)
    steps = options.pop("controller_steps", 50)
    controller = {k: options.pop(k) for k in ("controller_lr", "entropy_weight") if k in options}
    torch.manual_seed(seed)
    supernet = Supernet(data.num_classes, data.in_channels, C=C, N=N, stem_stride=stem_stride).to(data.device)
    if method == "enas":  # ENAS' reward, entropy bonus, controller learning rate and bounded operation logits
        strategy = Reinforce(NB201Space(), seed=seed, lr=controller.get("controller_lr", ENAS_CONTROLLER_LR),
                             reward="accuracy", entropy_weight=controller.get("entropy_weight", 1e-4),
                             tanh_constant=ENAS_OP_TANH, **ENAS_CONTROLLER)
    else:
        strategy, steps = RandomSearch(NB201Space(), seed=seed), 0
    log = train_supernet(supernet, data, strategy, epochs, batch_size, controller_steps=steps, seed=seed,
                         progress=progress, **options)
    return supernet, strategy, log


class WeightSharingEvaluator(Evaluator):
    """Score any cell with a trained supernet: shared weights, BN recalibrated, accuracy on the valid split.

    The cost is the wall time of the scoring alone (the supernet's training was paid once, up front).
    """

    name = "weight-sharing"

    def __init__(self, supernet: Supernet, data, calibration_batches: int = 4, batch_size: int = 128):
        self.supernet, self.data = supernet, data
        self.calibration_batches, self.batch_size = calibration_batches, batch_size

    def evaluate(self, arch) -> Result:
        start = time.perf_counter()
        acc = self.supernet.score(arch, self.data, self.calibration_batches, self.batch_size)
        return Result(valid_acc=acc, cost_s=time.perf_counter() - start, info={"ws_acc": acc})


def candidates(strategy, n: int, tries: int = 20) -> list:
    """``n`` distinct cells (up to isomorphism) from the trained ENAS controller, or uniform (RS-WS)."""
    space, out, keys = NB201Space(), [], set()
    for _ in range(tries * n):
        cell = strategy.ask()
        if space.key(cell) not in keys:
            keys.add(space.key(cell))
            out.append(cell)
        if len(out) == n:
            break
    return out


def mutate(cell, prob: float, rng) -> tuple:
    """SPOS's mutation: every edge's op is redrawn uniformly from all ops with probability ``prob`` (0.1 in
    the paper). As in the reference code, a redraw may return the op it replaces, so a child can differ from
    its parent in none, one or several edges (``NB201Space.mutate``, regularized evolution's, changes one)."""
    return tuple(NB201_OPS[int(rng.integers(len(NB201_OPS)))] if rng.random() < prob else op for op in cell)


def spos_sizes(budget: int, population: int | None = None, top_k: int | None = None) -> tuple:
    """(P, k) for ``budget`` evaluations: what is given, else the reference code's proportions scaled to the
    budget. The reference evaluates P = 50 cells, then T = 20 generations of P from the top k = 10: T = 0.4 P,
    k = P / 5 and budget = P (T + 1) = 1050; solving P (0.4 P + 1) = budget gives P (at least 2, at most the
    budget)."""
    for name, value in (("budget", budget), ("population", population), ("top_k", top_k)):
        if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1):
            raise NASInputError(f"{name} must be a whole number of at least 1, got {value!r}")
    population = population or min(budget, max(2, round((math.sqrt(1 + 1.6 * budget) - 1) / 0.8)))
    return population, top_k or min(population, max(2, population // 5))


def evolutionary_search(score, budget: int, population: int | None = None, top_k: int | None = None,
                        mutation_prob: float = 0.1, seed: int = 0) -> list:
    """SPOS's second stage (Guo et al. 2020, §3.3, Algorithm 1): evolution over a trained supernet.

    ``score(cell)`` is called once per new cell (up to isomorphism) and must return a number to maximise (the
    shared-weight validation accuracy). The first population is P uniformly random cells; every following
    generation is P/2 mutants (``mutate``) and P/2 children of uniform crossover, every parent drawn uniformly
    from the top k cells evaluated so far; cells already seen are redrawn, and where ten times as many draws
    do not give enough new ones, random cells fill the population, as in the reference code
    (megvii-model/SinglePathOneShot, ``search.py``). It stops after ``budget`` calls of ``score``, so that it
    can be compared with random sampling at an equal number of supernet evaluations. The paper's FLOPs
    constraint is left out: NAS-Bench-201 cells do differ in cost (on the shipped table's network the costliest
    cell has 6.2 times the FLOPs of the cheapest), but the benchmark's searches, as this one, are
    unconstrained. ``population``/``top_k`` default to ``spos_sizes``.

    Returns the evaluated cells in order: dicts with ``cell``, ``score``, ``origin`` (random, mutation or
    crossover) and ``generation``.
    """
    population, top_k = spos_sizes(budget, population, top_k)
    if not isinstance(mutation_prob, (int, float, np.floating)) or not 0 <= mutation_prob <= 1:
        raise NASInputError(f"mutation_prob is a probability from 0 to 1 (the paper uses 0.1), got {mutation_prob!r}")
    space, rng = NB201Space(), np.random.default_rng(seed)
    seen, evaluated = set(), []

    def draw(origin: str, parents: list) -> tuple:
        if origin == "random":
            return space.sample(rng)
        pick = lambda: parents[int(rng.integers(len(parents)))]  # noqa: E731
        return mutate(pick(), mutation_prob, rng) if origin == "mutation" else space.crossover(pick(), pick(), rng)

    def breed(n: int, origin: str, generation: int, parents: list = ()) -> None:
        made = 0
        for _ in range(10 * n):  # at most ten draws per wanted cell
            if made == n or len(evaluated) == budget:
                return
            cell = draw(origin, parents)
            if space.key(cell) not in seen:  # each cell costs one supernet evaluation, once
                seen.add(space.key(cell))
                evaluated.append({"cell": cell, "score": float(score(cell)), "origin": origin,
                                  "generation": generation})
                made += 1

    breed(population, "random", 0)
    for generation in range(1, budget):
        if len(evaluated) == budget:
            break
        top = [e["cell"] for e in sorted(evaluated, key=lambda e: -e["score"])[:top_k]]  # over all seen so far
        before = len(evaluated)
        breed(population // 2, "mutation", generation, top)
        breed(population - population // 2, "crossover", generation, top)
        breed(population - (len(evaluated) - before), "random", generation)
        if len(evaluated) == before:  # nothing new left to find
            break
    return evaluated


def weight_sharing_search(method: str = "spos", data=None, epochs: float = 3, C: int = 8, N: int = 1,
                          batch_size: int = 128, seed: int = 0, n_candidates: int = 30, bench=None,
                          progress: bool = True, stem_stride: int = 1, population: int | None = None,
                          top_k: int | None = None, mutation_prob: float = 0.1, **options):
    """Train a supernet with ``method``, then score ``n_candidates`` cells with the shared weights: ENAS's
    controller proposes them, RS-WS draws them uniformly, SPOS evolves them (``evolutionary_search`` with
    ``population``, ``top_k``, ``mutation_prob``). ``n_candidates`` is the number of supernet evaluations
    in every method, so equal budgets compare the methods' second stages.

    Returns a History (``search.history_frame``): one row per candidate with ``ws_acc`` (shared-weight
    accuracy) and ``origin`` (controller, random, mutation or crossover) and ``generation`` (SPOS; else 0);
    ``valid_acc``/``test_acc`` from ``bench`` when given (else ``valid_acc = ws_acc``); ``cost_s``
    the wall seconds of its scoring, the first row also carrying the supernet's training. The incumbent
    (``best_valid_acc``, ``best_test_acc``) is the candidate with the best ``ws_acc`` so far: the search sees
    only the shared weights. ``attrs`` also hold the per-epoch ``train_loss`` and ENAS's
    ``controller_samples``.
    """
    if data is None:
        raise NASInputError("weight_sharing_search needs data=load_dataset(...)")
    if not isinstance(n_candidates, (int, np.integer)) or n_candidates < 1:
        raise NASInputError(f"n_candidates must be a whole number of at least 1, got {n_candidates!r}")
    if method != "spos" and (population, top_k, mutation_prob) != (None, None, 0.1):
        raise NASInputError(f"population, top_k and mutation_prob set SPOS's evolution; {method} has none")
    supernet, strategy, log = train_weight_sharing(method, data, epochs, C, N, batch_size, seed, progress,
                                                  stem_stride, **options)
    evaluator = WeightSharingEvaluator(supernet, data, batch_size=batch_size)
    rows, clock = [], time.perf_counter()
    bar = tqdm(total=n_candidates, desc="score candidates", disable=not progress, leave=False)

    def evaluate(cell) -> float:
        r = evaluator.evaluate(cell)
        cost = r.cost_s + (log["seconds"] if not rows else 0.0)
        truth = bench.query(to_str(cell)) if bench is not None else {}
        rows.append({"step": len(rows), "arch": to_str(cell), "valid_acc": truth.get("valid_acc", r.valid_acc),
                     "test_acc": truth.get("test_acc", math.nan), "cost_s": cost,
                     "spent_s": cost + (rows[-1]["spent_s"] if rows else 0.0),
                     "wall_s": log["seconds"] + time.perf_counter() - clock, "params": truth.get("params", 0),
                     "flops": truth.get("flops", 0), "curve": [], "ws_acc": r.valid_acc})
        bar.update(1)
        return r.valid_acc

    if method == "spos":
        # a stream of its own: from ``seed`` itself, the first population would be the first paths trained
        bred = evolutionary_search(evaluate, n_candidates, population, top_k, mutation_prob,
                                   np.random.SeedSequence([seed, 2]))
        origins = [(e["origin"], e["generation"]) for e in bred]
    else:
        for cell in candidates(strategy, n_candidates):
            evaluate(cell)
        origins = [("controller" if method == "enas" else "random", 0)] * len(rows)
    bar.close()
    for row, (origin, generation) in zip(rows, origins):
        row.update(origin=origin, generation=generation)
    history = history_frame(rows, {"space": "nb201", "strategy": method, "seed": seed,
                                   "budget": f"{epochs} supernet epochs", "evaluator": "weight-sharing",
                                   "incumbent": "ws_acc"})  # search.best: the best shared-weight accuracy
    incumbent = history["ws_acc"].expanding().apply(lambda s: s.argmax(), raw=True).astype(int).to_numpy()
    history["best_valid_acc"] = history["valid_acc"].to_numpy()[incumbent]
    history["best_test_acc"] = history["test_acc"].to_numpy()[incumbent]
    history.attrs.update(train_loss=list(log["loss"]), controller_samples=list(log["samples"]))
    return history
