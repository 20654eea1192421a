"""One step of a method, traced with real numbers on a tiny input, for a notebook to print.

Each trace runs the package's own classes and functions (nothing here re-implements a method) and returns a
dict of the numbers that step reads and writes, so a chapter can show, for example, that the probability of
an architecture rises when its reward beats the baseline, or which individual dies in regularized evolution.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import torch

from ..evaluators import BenchmarkLookup
from ..oneshot.architect import Architect, first_order_grad, unrolled_grad, virtual_weights
from ..oneshot.darts import NB201SearchNetwork
from ..spaces.cell import NB201Space, to_str
from ..spaces.chain import ChainSpace
from ..strategies.evolution import RegularizedEvolution
from ..strategies.qlearning import TERMINAL, MetaQNN
from ..strategies.reinforce import Reinforce, zoph_le_reward


def trace_reinforce_step(seed: int = 0, bench=None, warmup: int = 1) -> dict:
    """One REINFORCE step of Zoph & Le's controller on NAS-Bench-201 cells, scored by the benchmark.

    ``warmup`` architectures are told first: the baseline starts as the first reward (as in ``Reinforce``),
    so that the traced step has a baseline to beat. Returns the sampled cell, its accuracy and reward, the
    baseline and the advantage, its log-probability, and its probability before and after the update."""
    space = NB201Space()
    evaluator = BenchmarkLookup(space, bench)
    strategy = Reinforce(space, seed=seed)
    for _ in range(warmup):
        arch = strategy.ask()
        strategy.tell(arch, evaluator.evaluate(arch))
    baseline = strategy.baseline
    arch = strategy.ask()
    log_prob = strategy.log_prob(arch)
    result = evaluator.evaluate(arch)
    strategy.tell(arch, result)
    reward = zoph_le_reward(result)
    return {"arch": to_str(arch), "valid_acc": result.valid_acc, "reward": reward, "baseline": baseline,
            "advantage": reward - baseline, "log_prob": log_prob, "prob_before": math.exp(log_prob),
            "prob_after": strategy.prob(arch), "baseline_after": strategy.baseline}


def _frame(model, tensor) -> pd.DataFrame:
    return pd.DataFrame(tensor.detach().double().numpy(), index=model.edge_labels, columns=list(model.ops))


def trace_darts_step(order: int = 1, seed: int = 0, xi: float = 0.025, C: int = 4, batch: int = 8,
                     image: int = 8) -> dict:
    """One architecture step of DARTS (``Architect``, DARTS' Adam) on a tiny NAS-Bench-201 supernet.

    The batches are random images (``batch`` of 1 x ``image`` x ``image``, 10 classes). Returns the
    validation loss and the alphas before and after the step, and the gradient used. With ``order=2`` also
    the hypergradient's two terms (``unrolled_grad``, DARTS' Eq. 7): ``direct``, grad_alpha L_val(w', alpha)
    at the virtual step w' = w - xi grad_w L_train, and ``hessian_term``, -xi grad^2_{alpha,w} L_train . v
    (by finite differences); their sum is ``grad``."""
    torch.manual_seed(seed)
    model = NB201SearchNetwork(num_classes=10, in_channels=1, C=C, N=1)
    gen = torch.Generator().manual_seed(seed)
    train_batch, valid_batch = ((torch.randn(batch, 1, image, image, generator=gen),
                                 torch.randint(10, (batch,), generator=gen)) for _ in range(2))
    architect = Architect(model, order=order)
    out = {"order": order, "xi": xi, "alphas_before": _frame(model, model.alpha_cell)}
    with torch.no_grad():
        out["valid_loss_before"] = model.loss(*valid_batch).item()
    if order == 2:
        weights = model.weight_parameters()
        backup = [w.detach().clone() for w in weights]
        stepped = virtual_weights(model, train_batch, xi)
        with torch.no_grad():  # the direct term: the first-order gradient, taken at the virtual step w'
            for w, v in zip(weights, stepped):
                w.copy_(v)
        direct = first_order_grad(model, valid_batch)[0]
        with torch.no_grad():
            for w, b in zip(weights, backup):
                w.copy_(b)
        grad = unrolled_grad(model, train_batch, valid_batch, xi)[0]
        out.update(direct=_frame(model, direct), hessian_term=_frame(model, grad - direct))
    else:
        grad = first_order_grad(model, valid_batch)[0]
    architect.step(train_batch, valid_batch, xi)
    with torch.no_grad():
        out["valid_loss_after"] = model.loss(*valid_batch).item()
    out.update(grad=_frame(model, grad), alphas_after=_frame(model, model.alpha_cell))
    return out


def trace_q_backup(seed: int = 0, reward: float = 0.8, warmup: int = 5) -> pd.DataFrame:
    """The Q-learning backups of one MetaQNN episode on a small chain space (Baker et al.: alpha = 0.01,
    gamma = 1), from the last transition back to the first, as ``QLearning.update`` makes them.

    ``warmup`` episodes (random rewards) are learned first, replay included, so that the table holds more than
    its initial 0.5. One row per transition: the state, the action (the next layer, or terminate), Q before,
    the reward (only at the end), max_a' Q(s', a'), Q after."""
    space = ChainSpace(max_layers=3, filters=(16, 32), kernels=(3, 5), pools=("none", "max_pool_2x2"))
    strategy = MetaQNN(space, seed=seed, replay=10)
    agent, rng = strategy.agent, strategy.rng
    for _ in range(warmup):  # exploring episodes (epsilon = 1), as at the start of Baker et al.'s schedule
        agent.learn(agent.rollout(strategy.start, 1.0, rng), float(rng.random()), rng)
    states = agent.rollout(strategy.start, 1.0, rng)
    before = dict(agent.q)
    agent.update(states, reward)  # one backup per transition, last first
    rows = []
    for t in reversed(range(len(states) - 1)):
        s, a = states[t], states[t + 1]
        end = a == TERMINAL
        rows.append({"state": s, "action": a, "q_before": before.get((s, a), agent.q_init),
                     "reward": reward if end else 0.0,
                     "max_next_q": 0.0 if end else max(agent.value(a, b) for b in agent.next_states(a)),
                     "q_after": agent.q[(s, a)], "alpha": agent.alpha, "gamma": agent.gamma})
    return pd.DataFrame(rows)


def trace_aging_step(seed: int = 0, bench=None, population: int = 5, sample: int = 3) -> dict:
    """One cycle of regularized evolution (``RegularizedEvolution``) on NAS-Bench-201 cells.

    The population is filled with random cells scored by the benchmark, then one child is asked for and told.
    The tournament drawn is read from a copy of the strategy's generator: the strategy draws it with one
    ``rng.choice(len(population), sample, replace=True)`` (``course.exercises``' ``aging_step`` contract).
    Returns the population before (oldest first), the tournament, the parent, the child and who died."""
    space = NB201Space()
    evaluator = BenchmarkLookup(space, bench)
    strategy = RegularizedEvolution(space, seed=seed, population=population, sample=sample)
    for _ in range(population):
        arch = strategy.ask()
        strategy.tell(arch, evaluator.evaluate(arch))
    before = list(strategy.population)
    drawn = [int(i) for i in copy.deepcopy(strategy.rng).choice(len(before), sample, replace=True)]
    child = strategy.ask()
    strategy.tell(child, evaluator.evaluate(child))
    parent = max((before[i] for i in drawn), key=lambda ind: ind.fitness)
    dead = [ind for ind in before if all(ind is not alive for alive in strategy.population)]

    def row(ind):
        return {"born": ind.born, "arch": to_str(ind.arch), "fitness": ind.fitness}

    return {"population": pd.DataFrame([{**row(ind), "drawn": drawn.count(i)} for i, ind in enumerate(before)]),
            "tournament": [before[i].born for i in drawn], "parent": row(parent), "child": row(strategy.population[-1]),
            "died": [row(ind) for ind in dead]}
