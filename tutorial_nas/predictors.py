"""Incomplete training: cheaper ways to guess how good a cell is, each one a ``Shortcut``.

- Low fidelity (Zela et al. 2018; Li et al. 2017): train fewer epochs, on less data or with fewer channels,
  or read the benchmark at an earlier epoch; ``successive_halving`` and ``hyperband`` spend a budget on many
  cells cheaply and on the survivors generously.
- Learning-curve extrapolation (Domhan et al. 2015): fit parametric curves to the first epochs, predict the
  last one, stop training a candidate that will not beat the best so far (Baker et al.'s regression on the
  curve is ``learning_curves``).
- Performance predictors (White et al. 2021, BANANAS): an ensemble of small MLPs on the path encoding,
  trained on a few hundred (cell, accuracy) pairs, with a mean and a spread.
- Zero-cost proxies (Abdelfattah et al. 2021; Mellor et al. 2021): ``synflow``, ``grad_norm``, ``snip``,
  ``naswot`` and ``jacob_cov`` of an untrained network on one batch: no training at all.

Every shortcut answers ``score(cells) -> np.ndarray`` (higher = predicted better) and records what that cost
in ``cost_s``, so they can be ranked against the truth on one axis (``tutorial_nas.analysis.shortcuts``).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import curve_fit

from .errors import NASInputError, check_choice, check_positive
from .evaluators import LowFidelity
from .spaces.cell import NB201Network, NB201Space, encode_path, to_str
from .strategies.bayesopt import MLPEnsemble
from .train import TrainConfig

FLOOR = -1e6  # what a proxy reports for a cell where it is undefined (-inf or nan), below every real score


class Shortcut:
    """A per-cell estimate of quality. Subclasses implement ``_score``; ``score`` times it into ``cost_s``."""

    name = "shortcut"
    cost_s = 0.0

    def score(self, cells) -> np.ndarray:
        start = time.perf_counter()
        out = np.asarray(self._score([tuple(c) for c in cells]), dtype=np.float64)
        self.cost_s = self.charged_s(cells) + time.perf_counter() - start
        return out

    def charged_s(self, cells) -> float:
        """Seconds charged beyond wall time (a benchmark look-up charges the training it stands for)."""
        return 0.0

    def _score(self, cells) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} does not define _score")


# -- (a) low fidelity ----------------------------------------------------------------------------------------


class LowFidelityShortcut(Shortcut):
    """Really train each cell, cheaply: ``epochs``, ``data_fraction`` and the model sizes set the price."""

    def __init__(self, data, epochs: float = 1, data_fraction: float = 1.0, config: TrainConfig | None = None,
                 C: int = 8, N: int = 1, stem_stride: int = 1):
        self.evaluator = LowFidelity(NB201Space(), data, config, epochs=epochs, data_fraction=data_fraction,
                                     cache=False, C=C, N=N, stem_stride=stem_stride)
        self.name = f"train {epochs:g} ep" + (f" on {data_fraction:.0%}" if data_fraction < 1 else "")

    def _score(self, cells):
        return [self.evaluator.evaluate(c).valid_acc for c in cells]


class BenchEarlyEpoch(Shortcut):
    """Low fidelity by look-up: the benchmark's valid accuracy after ``epoch`` epochs (charged pro rata)."""

    def __init__(self, bench, epoch: int):
        self.bench, self.epoch, self.name = bench, epoch, f"bench epoch {epoch}"

    def _score(self, cells):
        return [self.bench.query(to_str(c), epoch=self.epoch)["valid_acc"] for c in cells]

    def charged_s(self, cells):
        return sum(self.bench.query(to_str(c), epoch=self.epoch)["train_seconds"] for c in cells)


@dataclass
class Halving:
    """What a successive-halving or Hyperband run found: the ``best`` cell and every evaluation in ``log``."""

    best: tuple
    log: pd.DataFrame


def successive_halving(cells, evaluate_fn, min_budget: float, max_budget: float, eta: float = 3) -> Halving:
    """Evaluate all ``cells`` at ``min_budget``, keep the best 1/``eta``, multiply the budget by ``eta``,
    repeat until ``max_budget`` (Jamieson & Talwalkar 2016). ``evaluate_fn(cell, budget)`` -> score, higher
    is better."""
    check_positive("min_budget", min_budget)
    if max_budget < min_budget or eta <= 1:
        raise NASInputError(f"need min_budget <= max_budget and eta > 1, got min_budget={min_budget}, "
                            f"max_budget={max_budget}, eta={eta}")
    survivors, budget, rows, rnd = list(cells), float(min_budget), [], 0
    if not survivors:
        raise NASInputError("successive_halving needs at least one cell")
    while True:
        scores = [float(evaluate_fn(c, budget)) for c in survivors]
        rows += [{"round": rnd, "budget": budget, "cell": c, "score": s} for c, s in zip(survivors, scores)]
        order = np.argsort(scores)[::-1]
        if budget >= max_budget or len(survivors) == 1:
            return Halving(best=survivors[order[0]], log=pd.DataFrame(rows))
        survivors = [survivors[i] for i in order[: max(1, int(len(survivors) / eta))]]
        budget, rnd = budget * eta, rnd + 1
        if budget >= max_budget * (1 - 1e-9):  # 66.67 x 3 may round to 199.99..., one round short of 200
            budget = float(max_budget)


def hyperband(sample_fn, evaluate_fn, min_budget: float, max_budget: float, eta: float = 3,
              rng: np.random.Generator | None = None) -> Halving:
    """Hyperband (Li et al. 2017): successive halving in several brackets, from many cells at a small
    budget to a few at the full one, hedging against a small budget that ranks badly.
    ``sample_fn(n, rng)`` -> n cells. The best: the top score at the largest budget any bracket reached."""
    rng = rng if rng is not None else np.random.default_rng(0)
    s_max = int(math.floor(math.log(max_budget / min_budget, eta) + 1e-9))
    logs = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta ** s))
        run = successive_halving(sample_fn(n, rng), evaluate_fn, max_budget * eta ** -s, max_budget, eta)
        logs.append(run.log.assign(bracket=s))
    log = pd.concat(logs, ignore_index=True)
    top = log[log["budget"] == log["budget"].max()]
    return Halving(best=top.loc[top["score"].idxmax(), "cell"], log=log)


def bench_evaluate_fn(bench, key: str = "valid_acc"):
    """``evaluate_fn(cell, budget)``: the benchmark after ``budget`` epochs (halving on the table)."""
    return lambda cell, budget: bench.query(to_str(cell), epoch=int(round(budget)))[key]


# -- (b) learning-curve extrapolation ------------------------------------------------------------------------


def pow3(x, c, a, alpha):
    return c - a * np.power(x, -alpha)


def log_power(x, a, b, c):
    return a / (1.0 + np.power(x / np.exp(b), c))


def exp3(x, c, a, b):
    return c - a * np.exp(-b * x)


# name -> (function, initial guess from the curve, bounds); parameters keep each family increasing
CURVES = {
    "pow3": (pow3, lambda y: (y[-1] + 5, y[-1] - y[0] + 5, 0.5), ([0, 0, 0.01], [200, 500, 5])),
    "log_power": (log_power, lambda y: (y[-1] + 5, 0.0, -1.0), ([0, -10, -10], [200, 10, 0])),
    "exp3": (exp3, lambda y: (y[-1] + 5, y[-1] - y[0] + 5, 0.5), ([0, 0, 1e-3], [200, 500, 10])),
}


def fit_curve(curve, family: str = "pow3"):
    """Least-squares fit of ``family`` to ``curve`` (values at epochs 1, 2, ...): the parameters, or None."""
    check_choice("curve family", family, CURVES)
    f, guess, bounds = CURVES[family]
    y = np.asarray(curve, dtype=np.float64)
    x = np.arange(1, len(y) + 1, dtype=np.float64)
    p0 = np.clip(guess(y), np.asarray(bounds[0]) + 1e-6, np.asarray(bounds[1]) - 1e-6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(f, x, y, p0=p0, bounds=bounds, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return params if np.all(np.isfinite(f(x, *params))) else None


def extrapolate(curve, final_epoch: int, families=tuple(CURVES), fallback: bool = True):
    """The predicted value at ``final_epoch`` from the observed ``curve``: a combination of the families that
    fit, each weighted by the inverse of its squared error (a cheap stand-in for Domhan's MCMC ensemble over
    eleven families; pow3 and log_power are two of them, exp3 is one their code defines and leaves out).

    With fewer than 3 points (3 parameters cannot be fitted) or when no fit succeeds: the last observed value,
    or None with ``fallback=False``. The prediction is kept within [0, 100] since accuracies are percentages.
    """
    y = np.asarray(curve, dtype=np.float64)
    if len(y) == 0:
        raise NASInputError("extrapolate needs at least one observed point")
    if isinstance(final_epoch, bool) or not isinstance(final_epoch, (int, np.integer)) or final_epoch < 1:
        raise NASInputError(f"final_epoch is the epoch to predict, a whole number of at least 1, got {final_epoch!r}")
    if len(y) >= final_epoch:
        return float(y[final_epoch - 1])
    if len(y) < 3:
        return float(y[-1]) if fallback else None
    x = np.arange(1, len(y) + 1, dtype=np.float64)
    preds, weights = [], []
    for family in families:
        params = fit_curve(y, family)
        if params is None:
            continue
        f = CURVES[family][0]
        preds.append(float(f(final_epoch, *params)))
        weights.append(1.0 / (float(np.sum((f(x, *params) - y) ** 2)) + 1e-6))
    if not preds:
        return float(y[-1]) if fallback else None
    return float(np.clip(np.average(preds, weights=weights), 0.0, 100.0))


def should_stop(curve, final_epoch: int, best_so_far: float, margin: float = 0.0) -> bool:
    """Early stopping: stop when the extrapolated final accuracy falls ``margin`` short of the best seen.

    As Domhan et al.'s termination criterion (``pylrpredictor/terminationcriterion.py``) it never stops a run
    that could not be fitted (fewer than 3 points, or no family fits: it carries on) nor one whose observed
    best already beats ``best_so_far``. Its test is simpler: the point prediction against the best, where
    theirs stops when the MCMC ensemble gives P(final > best) < 0.05."""
    y = np.asarray(curve, dtype=np.float64)
    if len(y) and y.max() > best_so_far:
        return False
    predicted = extrapolate(curve, final_epoch, fallback=False)
    return predicted is not None and predicted < best_so_far - margin


def early_stopping(final_epoch: int, best_so_far: float, min_epochs: int = 3, margin: float = 0.0):
    """An ``on_epoch`` callback for ``train.train`` that stops a candidate predicted not to beat the best."""
    def on_epoch(epoch, record):
        return epoch >= min_epochs and should_stop(record.valid_acc, final_epoch, best_so_far, margin)
    return on_epoch


class CurveExtrapolation(Shortcut):
    """Observe the benchmark's curve for ``observed`` epochs, extrapolate to the last (charged those)."""

    def __init__(self, bench, observed: int):
        self.bench, self.observed = bench, observed
        self.name = f"curve fit of {observed} ep"

    def _score(self, cells):
        return [extrapolate(self.bench.query(to_str(c))["valid_curve"][: self.observed], self.bench.epochs)
                for c in cells]

    def charged_s(self, cells):
        return sum(self.bench.query(to_str(c), epoch=self.observed)["train_seconds"] for c in cells)


# -- (c) performance predictor -------------------------------------------------------------------------------


class PerformancePredictor:
    """A small surrogate in BANANAS' manner: an ensemble of MLPs (``strategies.bayesopt.MLPEnsemble``) on any
    encoding, smaller than BANANAS' own: 2 hidden layers of 32 trained full-batch on the squared error (weight
    decay 1e-4, 300 steps), where BANANAS (``strategies.bayesopt``, naszilla's ``MetaNeuralnet``) trains 10 of 20 on
    the mean absolute error in batches of 32. Trained full-batch, its members differ only by their starting
    weights, and they agree closely on the cells they were fitted on; BANANAS' members (deeper, another loss,
    mini-batches in orders of their own) keep a wider spread there.

    ``fit(X, y)`` then ``predict(X)`` (the ensemble mean) or ``predict(X, return_std=True)`` (mean, spread).
    """

    def __init__(self, members: int = 5, hidden: int = 32, steps: int = 300, lr: float = 0.01, seed: int = 0):
        self.members, self.hidden, self.steps, self.lr, self.seed = members, hidden, steps, lr, seed
        self.model = None

    def fit(self, X, y) -> "PerformancePredictor":
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(y) < 2:
            raise NASInputError(f"fit needs X of shape (n, features) and n >= 2 targets, got X {X.shape} "
                                f"and y {y.shape}")
        # two hidden layers trained full-batch on the squared error: smaller and faster than BANANAS' own
        self.model = MLPEnsemble(X.shape[1], self.members, self.hidden, self.seed, layers=2).fit(
            X, y, epochs=self.steps, lr=self.lr, batch_size=None, loss="mse", weight_decay=1e-4, betas=(0.9, 0.999))
        return self

    def predict(self, X, return_std: bool = False):
        if self.model is None:
            raise NASInputError("call fit(X, y) before predict(X)")
        mean, std = self.model.predict(np.asarray(X, dtype=np.float32))
        return (mean, std) if return_std else mean


class PredictorShortcut(Shortcut):
    """A predictor trained on the benchmark's accuracy of ``train_cells`` (charged their training time)."""

    def __init__(self, bench, train_cells, seed: int = 0, **predictor_options):
        self.bench, self.train_cells = bench, [tuple(c) for c in train_cells]
        self.predictor = PerformancePredictor(seed=seed, **predictor_options)
        self.name = f"predictor ({len(self.train_cells)} cells)"

    def _score(self, cells):
        y = [self.bench.query(to_str(c))["valid_acc"] for c in self.train_cells]
        self.predictor.fit(np.stack([encode_path(c) for c in self.train_cells]), y)
        return self.predictor.predict(np.stack([encode_path(c) for c in cells]))

    def charged_s(self, cells):
        return sum(self.bench.query(to_str(c))["train_seconds"] for c in self.train_cells)


# -- (d) zero-cost proxies -----------------------------------------------------------------------------------
#
# As Abdelfattah et al. (2021) compute them in their reference code (zero-cost-nas): an untrained network in
# train mode (batch-norm uses the batch's statistics), cross-entropy on one batch, and the per-weight scores
# summed over the weights of the convolutions and linear layers only (no batch-norm parameter, no bias).


def _weights(model: nn.Module) -> list:
    """The weight tensors the proxies score: those of every Conv2d and Linear."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _weight_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list:
    """(weight, dL/dweight) for every scored weight; a weight the loss does not reach has gradient zero."""
    model.train()
    weights = _weights(model)
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
    return [(w, torch.zeros_like(w) if g is None else g) for w, g in zip(weights, grads)]


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over the Conv2d and Linear layers of the L2 norm of the loss gradient of their weight."""
    return sum(g.norm().item() for _, g in _weight_grads(model, x, y))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP (Lee et al. 2019): sum of |w * dL/dw| over the Conv2d and Linear weights, the loss's sensitivity to
    removing each connection (the gradient of a mask of ones multiplying the weights)."""
    return sum((w * g).abs().sum().item() for w, g in _weight_grads(model, x, y))


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow (Tanaka et al. 2020), log of sum |w * dR/dw| over the Conv2d and Linear weights, with R the
    summed output of a copy of the network made linear and positive: |parameters|, batch norm removed (the
    reference's ``synflow``, not ``synflow_bn``), float64, one input of ones. Data-free: ``x`` gives only the
    input shape and ``y`` is unused. The reference reports the sum itself; its log ranks the same and stays
    readable (the sum grows with the product of the layers' weights). Every batch norm goes, as Tanaka et al.
    and the reference's generic copy do; the reference's own NAS-Bench-201 network keeps the batch norms of its
    reduction blocks and gives its cell's convolutions biases, so its NAS-Bench-201 numbers are not these."""
    net = copy.deepcopy(model).double()
    for name, m in list(net.named_modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, nn.Identity())
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = _weights(net)
    out = net(torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    total = sum((w * g).abs().sum().item() for w, g in zip(weights, grads) if g is not None)
    return math.log(total) if total > 0 else -math.inf


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor, live_only: bool = True) -> float:
    """NASWOT (Mellor et al. 2021, eq. 2): log |K_H| with K_H[i, j] = N_A - d_H(c_i, c_j), where c_i is the
    binary code of which ReLUs input i switches on and N_A the number of ReLUs: the number of units on which
    inputs i and j agree. Networks that tell the inputs of a batch apart score high.

    The reference code (``score_networks.py``) counts the ReLUs a backward pass from the output reaches, so a
    branch computed and thrown away adds nothing: ``live_only`` (the default) does the same. On NAS-Bench-201
    its network keeps every ``none`` edge as a multiplication by 0, which stays in the graph, so there every
    ReLU that runs is reached, those on branches cut off by ``none`` too; the package's cell leaves ``none``
    edges out, and ``ZeroCostProxy`` passes ``live_only=False`` to count what the reference counts there."""
    inputs, outputs = [], []

    def keep(_m, inp, out):
        inputs.append(inp[0].detach())
        outputs.append(out)

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, nn.ReLU)]
    model.train()
    try:
        with torch.enable_grad():
            out = model(x.detach().requires_grad_(True))
    finally:
        for h in hooks:
            h.remove()
    if not outputs:
        return -math.inf
    if live_only:
        live = [(a, o) for a, o in zip(inputs, outputs) if o.requires_grad]
        reached = torch.autograd.grad(out.sum(), [o for _, o in live], allow_unused=True) if live else []
        codes = [(a > 0).flatten(1).double() for (a, _), g in zip(live, reached) if g is not None]
    else:
        codes = [(a > 0).flatten(1).double() for a in inputs]
    if not codes:
        return -math.inf
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return torch.linalg.slogdet(k)[1].item()  # -inf when K_H is singular


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al. 2020, the first version of NASWOT), as zero-cost-nas computes it:
    J_i = d(sum of the outputs)/d(input i) for each input of the batch, Sigma their correlation matrix with
    eigenvalues lambda, score -sum(log(lambda + k) + 1 / (lambda + k)) with k = 1e-5. The score is highest (-N
    for a batch of N) when the Jacobians are uncorrelated: the network treats different inputs differently."""
    model.train()
    x = x.detach().clone().requires_grad_(True)
    (jacobian,) = torch.autograd.grad(model(x).sum(), x, allow_unused=True)
    if jacobian is None:  # the output does not depend on the input (a cell that passes nothing)
        return math.nan
    corr = np.corrcoef(jacobian.flatten(1).double().cpu().numpy())  # nan where a Jacobian is constant
    if not np.isfinite(corr).all():
        return math.nan
    lam, k = np.linalg.eigvalsh(corr), 1e-5
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


PROXIES = {"synflow": synflow, "grad_norm": grad_norm, "snip": snip, "naswot": naswot, "jacob_cov": jacob_cov}


class ZeroCostProxy(Shortcut):
    """Score each cell's untrained NB201 network (initialised with ``seed``) on one batch of ``batch_size``.

    A proxy is undefined for some cells (a cell whose edges are all ``none`` passes no signal: synflow's sum
    is zero, NASWOT's matrix singular, the Jacobians of jacob_cov constant): such a cell scores ``FLOOR``,
    below every real score, and ``floored`` counts how many did. In the reference code (zero-cost-nas) such a
    cell scores 0 for synflow, grad_norm and snip (its network computes ``none`` as x * 0), which ranks it
    last as ``FLOOR`` does; only where it returns nan (jacob_cov) does its correlation notebook leave the cell
    out (``nan_policy='omit'``). There, ranked last here, the cells that pass no signal, which the table also
    puts near the bottom, count for the proxy, so its tau can come out higher than with them left out.
    """

    def __init__(self, proxy: str, data, C: int = 8, N: int = 1, batch_size: int = 64, seed: int = 0,
                 stem_stride: int = 1):
        check_choice("zero-cost proxy", proxy, PROXIES)
        self.proxy, self.data, self.seed = proxy, data, seed
        self.sizes = dict(C=C, N=N, stem_stride=stem_stride)
        self.name, self.floored = proxy, 0
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data.train_y), generator=gen)[:batch_size].to(data.device)
        self.x, self.y = data.train_x[idx], data.train_y[idx]

    def score_one(self, cell) -> float:
        torch.manual_seed(self.seed)
        model = NB201Network(tuple(cell), self.data.num_classes, self.data.in_channels, **self.sizes)
        options = {"live_only": False} if self.proxy == "naswot" else {}  # as the reference's NB201 network
        value = PROXIES[self.proxy](model.to(self.data.device), self.x, self.y, **options)
        return value if math.isfinite(value) else None

    def _score(self, cells):
        values = [self.score_one(c) for c in cells]
        self.floored = sum(v is None for v in values)
        return [FLOOR if v is None else v for v in values]
