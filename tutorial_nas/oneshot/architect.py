"""The architecture step of DARTS' bilevel problem (Liu et al., ICLR 2019, Section 2.3).

    min_alpha  L_val(w*(alpha), alpha)   subject to   w*(alpha) = argmin_w L_train(w, alpha)

Solving the inner problem for every alpha is out of the question, so DARTS approximates w*(alpha) by a single
training step and differentiates through it:

- first order (``order=1``): pretend w* does not depend on alpha, grad = d/dalpha L_val(w, alpha);
- second order (``order=2``): the "unrolled" objective L_val(w', alpha), where w' is the step the weight
  optimiser would take next (SGD with momentum mu, its momentum buffer b, weight decay lambda):

      w' = w - xi * (mu * b + grad_w L_train(w, alpha) + lambda * w).

  The paper's Eq. 6-7 write w' = w - xi * grad_w L_train(w, alpha); DARTS' code (``cnn/architect.py``,
  ``_compute_unrolled_model``) adds the momentum and the weight decay, and this follows the code. Neither
  term depends on alpha, so the gradient keeps the paper's form (Eq. 7):

      grad_alpha L_val(w', alpha) - xi * grad^2_{alpha,w} L_train(w, alpha) . v,  v = grad_w' L_val(w', alpha)

  and the Hessian-vector product is a central finite difference, with R = 0.01 / ||v|| (Eq. 8):

      grad^2_{alpha,w} L_train . v  ~  (grad_alpha L_train(w + R v) - grad_alpha L_train(w - R v)) / (2 R).

The virtual step is taken in place on the network's own weights and undone afterwards (DARTS' code builds a
second copy of the network instead), and only the gradients that are used are asked of autograd.

``bilevel_search`` is DARTS' ``train_search.py``: per minibatch one architecture step on the alpha half of
the training split and one weight step on the other half; after every epoch the cell is derived. Each method
keeps the recipe of its reference code (``DartsConfig``): DARTS (first and second order) that of quark0/darts,
architecture step first, weights by SGD with weight decay 3e-4; GDAS that of its authors' code (AutoDL-Projects,
``exps/NAS-Bench-201-algos/GDAS.py`` and its configs for both spaces), weight step first, SGD with Nesterov
momentum and weight decay 5e-4. (AutoDL's first-order DARTS on NAS-Bench-201 also takes the weight step first;
the DARTS here is the DARTS paper's code.) The search returns the cell derived at its end (DARTS, GDAS, and
NAS-Bench-201's runs of both): the History's incumbent is the latest row, never the epoch a benchmark likes best.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn

from ..data import batches
from ..errors import NASInputError
from ..progress import tqdm
from ..search import history_frame
from ..train import evaluate


def _grads(loss, params):
    """Gradients of ``loss`` for ``params``; a parameter the loss never touched gets zeros."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def first_order_grad(model, valid_batch) -> list:
    """d/dalpha L_val(w, alpha): the weights are taken as already optimal."""
    return _grads(model.loss(*valid_batch), model.arch_parameters())


def virtual_weights(model, train_batch, xi: float, w_optimizer=None) -> list:
    """w' = w - xi (mu * b + grad_w L_train(w, alpha) + lambda * w): the next step of ``w_optimizer`` (SGD,
    momentum mu with buffer b, weight decay lambda) before clipping, as DARTS' code takes it. Without an
    optimiser (or before its first step, when it has no buffer yet) the missing terms are zero. With Nesterov
    momentum (not DARTS' recipe) the step is SGD's own: d + mu * (mu * b + d), d = grad + lambda * w."""
    weights = model.weight_parameters()
    groups = {id(p): g for g in (w_optimizer.param_groups if w_optimizer else []) for p in g["params"]}
    grads = _grads(model.loss(*train_batch), weights)
    out = []
    with torch.no_grad():
        for w, g in zip(weights, grads):
            group = groups.get(id(w), {})
            d = g + group.get("weight_decay", 0.0) * w
            buf = w_optimizer.state[w].get("momentum_buffer") if w_optimizer else None
            mu = group.get("momentum", 0.0)
            step = d if buf is None else mu * buf + d  # SGD's next buffer (its first one is d itself)
            if group.get("nesterov", False):
                step = d + mu * step
            out.append(w - xi * step)
    return out


def unrolled_grad(model, train_batch, valid_batch, xi: float, w_optimizer=None, r: float = 0.01) -> list:
    """d/dalpha L_val(w', alpha) at the virtual step w' (``virtual_weights``), the Hessian term by finite
    differences."""
    alphas, weights = model.arch_parameters(), model.weight_parameters()
    backup = [w.detach().clone() for w in weights]

    # 1. the virtual step w' = w - xi * (mu * b + grad_w L_train(w, alpha) + lambda * w), taken in place
    stepped = virtual_weights(model, train_batch, xi, w_optimizer)
    with torch.no_grad():
        for w, v in zip(weights, stepped):
            w.copy_(v)

    # 2. the validation loss at w': its gradient for alpha (direct term) and for w' (the vector v)
    grads = _grads(model.loss(*valid_batch), alphas + weights)
    d_alpha, v = grads[:len(alphas)], grads[len(alphas):]

    # 3. the Hessian-vector product grad^2_{alpha,w} L_train(w, alpha) v by central differences around w
    eps = r / torch.cat([x.flatten() for x in v]).norm().clamp_min(1e-12)
    sides = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for w, b, vi in zip(weights, backup, v):
                w.copy_(b + sign * eps * vi)
        sides.append(_grads(model.loss(*train_batch), alphas))
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    return [da - xi * (gp - gn) / (2 * eps) for da, gp, gn in zip(d_alpha, *sides)]


class Architect:
    """Updates the architecture parameters with Adam (DARTS: lr 3e-4, betas (0.5, 0.999), wd 1e-3)."""

    def __init__(self, model, order: int = 1, lr: float = 3e-4, betas=(0.5, 0.999), weight_decay=1e-3):
        self.model, self.order = model, order
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=lr, betas=betas,
                                          weight_decay=weight_decay)

    def step(self, train_batch, valid_batch, xi: float, w_optimizer=None) -> None:
        """One update of alpha; ``xi`` is the virtual step's learning rate (DARTS uses the weights' lr) and
        ``w_optimizer`` the weights' SGD, whose momentum and weight decay the virtual step takes too."""
        if self.order == 2:
            grads = unrolled_grad(self.model, train_batch, valid_batch, xi, w_optimizer)
        else:
            grads = first_order_grad(self.model, valid_batch)
        for a, g in zip(self.model.arch_parameters(), grads):
            a.grad = g
        self.optimizer.step()


# DARTS' search on CIFAR-10: 50 epochs of 25,000 images per half at batch 64, ~391 steps an epoch. GDAS keeps
# DARTS' architecture learning rate but searches 240 epochs (Dong & Yang, CVPR 2019): one sampled operation per
# edge makes an epoch cheap. Its steps are those of AutoDL's NAS-Bench-201 configuration
# (``configs/nas-benchmark/algos/GDAS.config``: 240 epochs at batch 64, 391 steps an epoch); its configuration for
# the DARTS space (``configs/search-opts/GDAS-NASNet-CIFAR.config``: 250 epochs at batch 256, ~98 steps an epoch)
# takes about a quarter as many, so on the DARTS cell this count gives GDAS' alphas about four times its travel.
DARTS_ARCH_LR, DARTS_SEARCH_STEPS, GDAS_SEARCH_STEPS = 3e-4, 50 * 391, 240 * 391


def search_steps(data, epochs: int, batch_size: int) -> int:
    """The architecture steps ``bilevel_search`` takes: one per minibatch of the half of the training split
    that trains the weights (``Dataset.split_train``), every epoch."""
    return epochs * math.ceil(len(data.train_y) // 2 / batch_size)


def scaled_arch_lr(steps: int, lr: float = DARTS_ARCH_LR, reference_steps: int = DARTS_SEARCH_STEPS) -> float:
    """An architecture learning rate for a search of ``steps`` steps that gives the alphas the travel DARTS'
    Adam has over its own search: Adam moves a parameter by about ``lr`` a step while its gradient keeps its sign
    (by up to about 16 ``lr`` when a large gradient follows small ones, with DARTS' betas (0.5, 0.999)), so
    ``lr * steps`` is kept (3e-4 x 19,550 ~ 5.9). A short search gets a proportionally larger step; DARTS' own
    length, DARTS' lr."""
    if not isinstance(steps, int) or steps <= 0:
        raise NASInputError(f"steps must be a positive whole number, got {steps!r}")
    return lr * reference_steps / steps


# The weights' recipe of each method's reference code, where the two differ (``DartsConfig``): quark0/darts'
# ``train_search.py``; AutoDL-Projects' GDAS (``configs/nas-benchmark/algos/GDAS.config`` and
# ``configs/search-opts/GDAS-NASNet-CIFAR.config`` agree on these three; its search scripts step the weights first).
METHOD_RECIPES = {"darts": dict(w_weight_decay=3e-4, w_nesterov=False, weight_first=False),
                  "darts2": dict(w_weight_decay=3e-4, w_nesterov=False, weight_first=False),
                  "gdas": dict(w_weight_decay=5e-4, w_nesterov=True, weight_first=True)}


@dataclass
class DartsConfig:
    """The search recipe. The shared part is DARTS' (quark0/darts), which GDAS' code keeps: SGD at 0.025 cosine
    to 0.001 with momentum 0.9, Adam at 3e-4 for the alphas, gradient clipping at 5. The fields left as ``None``
    are the method's own (``METHOD_RECIPES``, filled in by ``resolved``): the weights' weight decay, Nesterov
    momentum, and whether a minibatch's weight step comes before its architecture step (GDAS) or after it (DARTS).
    The GDAS temperature is annealed linearly from ``tau[0]`` to ``tau[1]``, once per epoch as in AutoDL's
    code; the weights' cosine schedule also steps once per epoch (DARTS; AutoDL's steps every minibatch)."""

    w_lr: float = 0.025  # the weights: SGD, cosine schedule down to w_lr_min
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float | None = None  # DARTS 3e-4, GDAS 5e-4
    w_nesterov: bool | None = None  # GDAS only
    weight_first: bool | None = None  # GDAS: the weight step, then the architecture step
    a_lr: float = 3e-4  # the alphas: Adam
    a_betas: tuple = (0.5, 0.999)
    a_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    tau: tuple = (10.0, 0.1)  # GDAS only
    augment: bool = True

    def resolved(self, method: str) -> "DartsConfig":
        """This recipe with the fields left as ``None`` set to ``method``'s own (``METHOD_RECIPES``)."""
        if method not in METHOD_RECIPES:
            raise NASInputError(f"unknown one-shot method {method!r}; choose from: {', '.join(METHOD_RECIPES)}")
        own = {k: v for k, v in METHOD_RECIPES[method].items() if getattr(self, k) is None}
        return replace(self, **own)


def bilevel_search(model, data, method: str, epochs: int, batch_size: int, seed: int, config: DartsConfig,
                   progress: bool = True, bench=None, skip_limit=None, early_stop=None):
    """Train a supernet (``oneshot.darts``) by alternating steps; one History row per epoch, whose incumbent
    is the cell derived at that epoch (``attrs["incumbent"] = "last"``)."""
    config = config.resolved(method)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=config.w_lr, momentum=config.w_momentum,
                            weight_decay=config.w_weight_decay, nesterov=config.w_nesterov)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, epochs, eta_min=config.w_lr_min)
    architect = Architect(model, order=2 if method == "darts2" else 1, lr=config.a_lr, betas=config.a_betas,
                          weight_decay=config.a_weight_decay)
    half_w, half_alpha = data.split_train(seed)  # one half trains w, the other alpha
    gen = torch.Generator().manual_seed(seed)
    augment = data.augment if config.augment else None

    rows, spent, start = [], 0.0, time.perf_counter()
    meta = {"space": "darts" if "reduce" in model.cell_names else "nb201", "strategy": method, "seed": seed,
            "budget": f"{epochs} epochs", "evaluator": "bench" if bench is not None else "supernet",
            "incumbent": "last", "ops": list(model.ops), "edges": list(model.edge_labels),
            "cells": list(model.cell_names)}
    for epoch in tqdm(range(epochs), desc=f"{method} search", disable=not progress):
        t0 = time.perf_counter()
        model.tau = config.tau[0] - (config.tau[0] - config.tau[1]) * epoch / max(1, epochs - 1)
        xi = schedule.get_last_lr()[0]
        model.train()
        losses = []
        for train_batch, valid_batch in zip(
                batches(half_w.train_x, half_w.train_y, batch_size, True, gen, augment),
                batches(half_alpha.train_x, half_alpha.train_y, batch_size, True, gen, augment)):
            if not config.weight_first:
                architect.step(train_batch, valid_batch, xi, w_opt)
            w_opt.zero_grad(set_to_none=True)
            loss = model.loss(*train_batch)
            loss.backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), config.grad_clip)
            w_opt.step()
            losses.append(loss.item())
            if config.weight_first:
                architect.step(train_batch, valid_batch, xi, w_opt)
        schedule.step()

        arch = model.derive(skip_limit)
        model.recalibrate(half_w.train_x)
        # valid_acc: the supernet's own accuracy, BN recalibrated: DARTS' softmax mixture (as DARTS' ``infer``),
        # GDAS' strongest operation on every edge (on the DARTS cell, not the derived two-input genotype)
        row = {"step": epoch, "arch": model.arch_str(arch), "valid_acc": evaluate(model, data.valid_x, data.valid_y)[1],
               "test_acc": float("nan"), "bench_valid_acc": float("nan"), "params": 0, "flops": 0, "curve": []}
        if bench is not None:  # the derived cell's true numbers, for the report only (nothing chooses by them)
            answer = bench.query(row["arch"])
            row.update(test_acc=answer["test_acc"], bench_valid_acc=answer["valid_acc"], params=answer["params"],
                       flops=answer["flops"], curve=list(answer.get("valid_curve", [])))
        cost = time.perf_counter() - t0
        spent += cost
        row.update(cost_s=cost, spent_s=spent, wall_s=time.perf_counter() - start, epoch=epoch + 1,
                   **model.count_skips(arch), lr=xi,
                   train_loss=float(np.mean(losses)), tau=model.tau if model.mode == "gdas" else float("nan"),
                   alphas=model.softmaxed())
        rows.append(row)
        too_many_skips = isinstance(early_stop, int) and row["n_skip"] > early_stop
        if too_many_skips or callable(early_stop) and early_stop(row):
            meta["stopped_early"] = epoch + 1
            break
    return history_frame(rows, meta)
