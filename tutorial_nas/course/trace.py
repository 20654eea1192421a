"""One step of a method, traced with real numbers on a tiny input, for a notebook to print.

Each trace runs the package's own classes and functions (nothing here re-implements a method) and returns a
dict of the numbers that step reads and writes, so a chapter can show, for example, that the probability of
an architecture rises when its reward beats the baseline, or which individual dies in regularized evolution.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch

from ..errors import check_choice
from ..evaluators import BenchmarkLookup
from ..oneshot.architect import Architect, first_order_grad, unrolled_grad, virtual_weights
from ..oneshot.darts import (
    DARTS_EDGES,
    NB201_EDGES,
    MixedOp,
    NB201SearchNetwork,
    _derive_cell,
    _softmax,
    derive_nb201,
    gumbel_hard,
)
from ..ops import DARTS_OPS, NB201_OPS, nb201_op
from ..spaces.cell import NB201Space, to_str
from ..spaces.chain import ChainSpace
from ..strategies.evolution import RegularizedEvolution
from ..strategies.morphism import MorphNet, net2wider
from ..strategies.qlearning import TERMINAL, MetaQNN
from ..strategies.reinforce import Reinforce, zoph_le_reward


def trace_reinforce_step(seed: int = 0, bench=None, warmup: int = 1) -> dict:
    """One REINFORCE step of Zoph & Le's controller on NAS-Bench-201 cells, scored by the benchmark.

    ``warmup`` architectures are told first: the baseline starts as the first reward (as in ``Reinforce``),
    so that the traced step has a baseline to beat. Returns the sampled cell, its accuracy and reward, the
    baseline and the advantage, its log-probability, and its probability before and after the update.

    ``reward_acc`` is the accuracy the reward cubes, as ``zoph_le_reward`` reads it: the best validation
    accuracy of the last 5 entries of the cell's curve (``curve``), not its final ``valid_acc``."""
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
    last = [float(v) for v in list(result.curve)[-5:] if math.isfinite(v)]  # what zoph_le_reward cubes
    reward_acc = max(last) if last else float(result.valid_acc)
    return {"arch": to_str(arch), "valid_acc": result.valid_acc, "curve": list(result.curve),
            "reward_acc": reward_acc, "reward": reward, "baseline": baseline,
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
    its initial 0.5. Each warm-up episode is learned as ``QLearning.learn`` does (remembered, then ``replay`` = 10
    episodes drawn from memory backed up; a search's MetaQNN replays 100). The traced episode is then backed up
    once, directly (``QLearning.update``), without joining the memory or a replay, so that its rows are that one
    episode's backups. One row per transition: the state, the action (the next layer, or terminate), Q before,
    the reward (only at the end), max_a' Q(s', a'), Q after. ``attrs`` holds ``warmup`` and ``replay``."""
    space = ChainSpace(max_layers=3, filters=(16, 32), kernels=(3, 5), pools=("none", "max_pool_2x2"))
    strategy = MetaQNN(space, seed=seed, replay=10)
    agent, rng = strategy.agent, strategy.rng
    for _ in range(warmup):  # exploring episodes (epsilon = 1), as at the start of Baker et al.'s schedule
        agent.learn(agent.rollout(strategy.start, 1.0, rng), float(rng.random()), rng)
    states = agent.rollout(strategy.start, 1.0, rng)
    frame = _backups(agent, states, reward, step_reward=0.0)  # one backup per transition, last first
    frame.attrs.update(warmup=warmup, replay=agent.replay)
    return frame


def _backups(agent, states: list, reward: float, step_reward: float) -> pd.DataFrame:
    """``agent.update(states, reward)`` traced: one row per transition, from the last back to the first, with Q
    before and after, the reward the transition earns (``reward`` at the end, ``step_reward`` before it) and the
    best Q of the next state."""
    before = dict(agent.q)
    agent.update(states, reward)
    rows = []
    for t in reversed(range(len(states) - 1)):
        s, a = states[t], states[t + 1]
        end = a == TERMINAL
        rows.append({"state": s, "action": a, "q_before": before.get((s, a), agent.q_init),
                     "reward": reward if end else step_reward,
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


def trace_gumbel_sample(seed: int = 0, tau: float = 1.0, edges: int = 2, form: str = "nb201") -> dict:
    """GDAS' hard Gumbel sample (``gumbel_hard``) on ``edges`` edges of the NAS-Bench-201 cell (5 operations).

    The alphas are drawn from ``seed``; ``gumbel_hard`` then draws its noise from ``torch.manual_seed(seed)``,
    and the same draw is repeated here to read it: E ~ Exp(1), u = exp(-E) ~ U(0, 1), g = -log E = -log(-log u).
    The gradient the network sends back to the sample, dL/dh, is a random stand-in (drawn from ``seed``): on the
    chosen operation the gradient through its output; on the others, with ``form="nb201"`` (AutoDL's
    NAS-Bench-201 GDAS, as ``NB201SearchCell``), one value per edge, the summed gradient of the edge's output,
    and with ``form="darts"`` (its DARTS-cell GDAS, as ``SearchCell``) zero. Returns one row per (edge,
    operation) with alpha, u, g, alpha + g, the soft sample softmax((alpha + g) / tau), the hard one-hot
    sample, dL/dh and the gradient with respect to alpha through the straight-through estimator; and
    ``grad_soft``, the gradient of the same loss through the soft sample alone (the two are equal)."""
    check_choice("form", form, ("nb201", "darts"))
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.randn(edges, len(NB201_OPS), generator=gen, dtype=torch.float64).requires_grad_(True)
    upstream = torch.randn(edges, 1, generator=gen, dtype=torch.float64)
    summed = torch.randn(edges, 1, generator=gen, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        hard, index = gumbel_hard(alpha, tau)
        torch.manual_seed(seed)
        exp = torch.empty_like(alpha).exponential_()
    chosen = hard.detach().round()
    rest = summed * (1 - chosen) if form == "nb201" else 0.0
    upstream = upstream * chosen + rest + 0.0  # + 0.0: no negative zeros
    u, g = torch.exp(-exp), -exp.log()
    grad = torch.autograd.grad((hard * upstream).sum(), alpha)[0]
    soft = torch.softmax((alpha + g) / tau, dim=-1)
    grad_soft = torch.autograd.grad((soft * upstream).sum(), alpha)[0]
    columns = {"alpha": alpha, "u": u, "g": g, "alpha + g": alpha + g, "soft": soft, "hard": hard,
               "dL/dh": upstream, "grad alpha": grad}
    frame = pd.DataFrame({k: v.detach().flatten().numpy() for k, v in columns.items()},
                         index=pd.MultiIndex.from_product([range(edges), NB201_OPS], names=["edge", "op"]))
    return {"table": frame, "index": index, "chosen": [NB201_OPS[k] for k in index], "tau": tau,
            "grad_soft": grad_soft.numpy()}


def trace_mixed_op(seed: int = 0, C: int = 4) -> dict:
    """One edge of DARTS' supernet (``MixedOp`` over the 5 NAS-Bench-201 operations, as ``NB201SearchCell``
    builds it) on one random 1 x ``C`` x 3 x 3 input, in training mode as during the search.

    Returns one row per operation: alpha (drawn from ``seed``), its softmax weight, and its output summarised
    (its centre value on channel 0, its largest absolute value); ``weighted_sum``, sum_o softmax(alpha)_o o(x)
    computed here from those outputs, ``mixed``, the ``MixedOp``'s own output, and the largest absolute
    difference between them."""
    torch.manual_seed(seed)
    edge = MixedOp([nb201_op(name, C, affine=False) for name in NB201_OPS])
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.randn(len(NB201_OPS), generator=gen)
    x = torch.randn(1, C, 3, 3, generator=gen)
    weights = torch.softmax(alpha, dim=-1)
    with torch.no_grad():
        outs = [op(x) for op in edge.ops]
        weighted_sum = sum(w * o for w, o in zip(weights, outs))
        mixed = edge(x, weights)
    frame = pd.DataFrame({"alpha": alpha.numpy(), "softmax weight": weights.numpy(),
                          "output[0, 0, 1, 1]": [o[0, 0, 1, 1].item() + 0.0 for o in outs],
                          "output max |.|": [o.abs().max().item() for o in outs]}, index=list(NB201_OPS))
    return {"table": frame, "x": x, "weighted_sum": weighted_sum, "mixed": mixed,
            "max_diff": (weighted_sum - mixed).abs().max().item()}


def trace_derivation(node_weights=None, node: int = 1, nb201_weights=None, seed: int = 0) -> dict:
    """Which edges and operations the package's derivation keeps, from softmaxed alphas.

    DARTS space (``_derive_cell``, the rule of ``derive_genotype``): ``node_weights`` are the softmaxed alphas
    of the ``node + 2`` edges into intermediate node ``node`` (rows: input states, columns: ``DARTS_OPS``),
    drawn from ``seed`` when not given; the other nodes get uniform weights. NAS-Bench-201 cell
    (``derive_nb201``): ``nb201_weights`` are 6 x 5 softmaxed alphas, also drawn when not given. Returns
    ``darts``, one row per input with its weights, its strongest operation other than ``none`` and that
    weight, the strongest operation with ``none`` included, and whether the edge is kept; ``kept``, the
    (operation, input) pairs the package derives for the node; ``nb201``, one row per edge with its weights and
    the operation kept; ``nb201_cell``, the derived cell."""
    rng = np.random.default_rng(seed)
    darts_ops, n_in = list(DARTS_OPS), node + 2
    if node_weights is None:
        node_weights = _softmax(rng.normal(size=(n_in, len(darts_ops))))
    node_weights = np.asarray(node_weights, dtype=float)
    if nb201_weights is None:
        nb201_weights = _softmax(rng.normal(size=(len(NB201_EDGES), len(NB201_OPS))))
    nb201_weights = np.asarray(nb201_weights, dtype=float)
    start = sum(n + 2 for n in range(node))
    W = np.full((len(DARTS_EDGES), len(darts_ops)), 1.0 / len(darts_ops))
    W[start:start + n_in] = node_weights
    kept = list(_derive_cell(W)[2 * node:2 * node + 2])
    darts = pd.DataFrame(node_weights, columns=darts_ops, index=pd.Index(range(n_in), name="input"))
    no_none = darts.drop(columns="none")
    darts["strongest op (not none)"] = no_none.idxmax(axis=1)
    darts["its weight"] = no_none.max(axis=1)
    darts["strongest op (none included)"] = darts[darts_ops].idxmax(axis=1)
    darts["kept"] = [any(i == k for _, k in kept) for i in range(n_in)]
    cell = derive_nb201(torch.as_tensor(np.log(nb201_weights)))
    nb201 = pd.DataFrame(nb201_weights, columns=list(NB201_OPS),
                         index=pd.Index([f"{i}->{j}" for i, j in NB201_EDGES], name="edge"))
    nb201["kept op"] = list(cell)
    return {"darts": darts, "kept": kept, "nb201": nb201, "nb201_cell": to_str(cell)}


def trace_net2wider(seed: int = 0, spec: str = "c2k3-c3k3", layer: int = 0, new_width: int = 4,
                    noise: float = 0.5) -> dict:
    """Net2WiderNet (``net2wider``) on a tiny random ``MorphNet``: block ``layer`` widened to ``new_width``.

    The mapping g is read from a copy of the generator ``net2wider`` is given (it draws g first, with
    ``rng.integers``). Returns ``g`` and the copy counts |{x: g(x) = g(j)}|; ``filters``, for every unit j of the
    wider layer, the largest difference between its filter and the old filter g(j) (0: a copy); ``reader``, for
    every j, the weight by which the next block's output unit h = 0 reads unit j at its centre tap, named as in
    the chapter's formula: the old weight W[g(j), h], the plain division W / count, the symmetry-breaking noise
    (the package's weight minus the division) and the package's new weight U[j, h]; ``noise_sum``, the largest
    absolute sum of the noise over the copies of one unit (all taps, all readers; 0 up to rounding); and
    ``output_diff``, the largest difference between the two networks' outputs on 4 random 8 x 8 images (eval
    mode)."""
    torch.manual_seed(seed)
    small = MorphNet(spec, num_classes=3, in_channels=1)
    rng = np.random.default_rng(seed)
    old = small.blocks[layer].layer.channels
    g = np.concatenate([np.arange(old), copy.deepcopy(rng).integers(0, old, new_width - old)])
    counts = np.bincount(g, minlength=old)[g]
    wide = net2wider(small, layer, new_width, rng, noise=noise)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    small.eval()
    wide.eval()
    with torch.no_grad():
        old_w, new_w = small.blocks[layer].conv.weight, wide.blocks[layer].conv.weight
        filters = [(new_w[j] - old_w[g[j]]).abs().max().item() for j in range(new_width)]
        U, V = small.blocks[layer + 1].conv.weight, wide.blocks[layer + 1].conv.weight
        divided = U[:, g] / torch.as_tensor(counts, dtype=U.dtype).view(1, -1, 1, 1)
        eps = V - divided
        noise_sum = max(eps[:, g == k].sum(dim=1).abs().max().item() for k in range(old))
        c = U.shape[-1] // 2
        # named as in the chapter's formula: W the old weights, U the new ones, h = 0 the reading unit
        reader = pd.DataFrame({"g(j)": g, "count": counts, "W[g(j), h]": U[0, g, c, c].numpy(),
                               "W / count": divided[0, :, c, c].numpy(), "noise": eps[0, :, c, c].numpy(),
                               "U[j, h]": V[0, :, c, c].numpy()}, index=pd.Index(range(new_width), name="j"))
        output_diff = (wide(x) - small(x)).abs().max().item()
    return {"small": str(small), "wide": str(wide), "g": g.tolist(), "counts": counts.tolist(),
            "filters": filters, "reader": reader, "noise_sum": noise_sum, "output_diff": output_diff}


def trace_oneshot_variants(seed: int = 0, C: int = 4) -> dict:
    """One step of each of four one-shot variants, with the package's own functions on tiny inputs (random 8 x 8
    images and labels: the numbers show the mechanics, not learning).

    ``bender``: the path-dropout rate at the first, middle and last of 100 steps (``drop_rate``, final rate 0.5)
    and, at the last, each node's k candidate operations, their drop probability r^(1/k) and the operations a
    sampled pattern keeps (``sample_mask``). ``dna``: for every block b, the mean squared error between the
    student's block on the teacher's input Y_{b-1} and the teacher's Y_b (Eq. 3, the training loss) and the
    rating R_b = mean|difference| / std(Y_b) (the reference code's), each computed by hand and by the package
    (``block_loss``, ``block_rating``).
    ``smash``: two cells that differ on one edge, how much each generated weight tensor of the first cell
    differs between the two (in the package's hypernetwork every weight depends on the whole encoding), which of
    the tensors the first cell uses (``smash_used``) and which of those sit on edges where the two cells hold the
    same operation (``smash_same_op``). ``nsas``: a constraint subset of 3 (k = 2
    neighbours, the last 4 paths remembered) fed 8 sampled paths; per step the path, the member it resembles most
    (once M is full), whether the greedy NSAS-G update replaced it, and the subset's mean novelty. The subset is
    filled with one random draw a member (the package draws 10 and keeps the most novel), so that it starts less
    diverse than it can be and the update has something to improve on at this tiny size."""
    from ..oneshot.bender import drop_rate, node_slots, sample_mask
    from ..oneshot.dna import block_loss, block_rating, run_block, stage_blocks, teacher_features
    from ..oneshot.nsas import ConstraintSubset, distance, novelty
    from ..oneshot.smash import SMASHNet
    from ..oneshot.supernet import Supernet
    from ..spaces.cell import EDGES, NB201Network

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    space = NB201Space()
    # Bender: the schedule, then one pattern at the final rate
    total, final = 100, 0.5
    rates = {step: drop_rate(step, total, final) for step in (0, total // 2, total - 1)}
    mask = sample_mask(rates[total - 1], rng)
    nodes = []
    for j in (1, 2, 3):
        slots = node_slots(j)
        kept = [f"{op}~{EDGES[e][0]}" for e, op in slots if op in mask[e]]
        nodes.append({"node": j, "candidates k": len(slots), "drop probability r^(1/k)":
                      rates[total - 1] ** (1 / len(slots)), "kept": len(kept), "kept operations": ", ".join(kept)})
    # DNA: the block losses of one cell, by hand and by block_loss
    x = torch.randn(8, 3, 8, 8)
    teacher = NB201Network(space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        10, 3, C=C, N=1).eval()
    student = Supernet(10, 3, C=C, N=1).eval()
    cell = space.sample(rng)
    feats = teacher_features(teacher, x)
    dna = []
    with torch.no_grad():
        for b in range(3):
            diff = run_block(stage_blocks(student)[b], feats[b], cell) - feats[b + 1]
            dna.append({"block": b, "input": "image" if b == 0 else f"Y_{b - 1}",
                        "shape of Y_b": tuple(feats[b + 1].shape), "std of Y_b": feats[b + 1].std().item(),
                        "MSE by hand": (diff ** 2).mean().item(),
                        "block_loss": block_loss(student, b, feats, cell).item(),
                        "R_b by hand": (diff.abs().mean() / feats[b + 1].std()).item(),
                        "block_rating": block_rating(student, b, feats, cell).item()})
    # SMASH: the generated weights of two cells one edge apart
    smash = SMASHNet(10, 3, C=C, N=1)
    a = tuple(space.sample(rng))
    edge = int(rng.integers(len(a)))
    b_ops = [op for op in NB201_OPS if op != a[edge]]
    b = a[:edge] + (b_ops[int(rng.integers(len(b_ops)))],) + a[edge + 1:]
    with torch.no_grad():
        wa, wb = smash.generate(a), smash.generate(b)
    changed = pd.Series({k: ((wa[k] - wb[k]).norm() / wa[k].norm()).item() for k in wa}, name="relative change")
    # keys "{layer}_{ij}_{op}": cell a uses a tensor where its edge ij holds that convolution
    edge_of = {f"{i}{j}": e for e, (i, j) in enumerate(EDGES)}
    used = [k for k in wa if a[edge_of[k.split("_", 2)[1]]] == k.split("_", 2)[2]]
    same_op = [k for k in used if edge_of[k.split("_", 2)[1]] != edge]
    # NSAS: the constraint subset over a few sampled paths
    subset, rows = ConstraintSubset(size=3, k=2, recent=4, draws=1, seed=seed), []
    for step in range(8):
        path = space.sample(rng)
        full = len(subset.cells) == subset.size
        nearest = (int(np.argmin([distance(path, c) for c in subset.cells])) if full else None)
        before = [to_str(c) for c in subset.cells]
        after = [to_str(c) for c in subset.update(path)]
        rows.append({"step": step, "path": to_str(path), "M full": full,
                     "nearest member": nearest, "replaced": full and before[nearest] != after[nearest],
                     "M": after, "mean novelty of M": float(np.mean([novelty(c, subset.cells[:i] + subset.cells[i + 1:],
                                                                             subset.k)
                                                                     for i, c in enumerate(subset.cells)]))})
    return {"bender_rates": rates, "bender_nodes": pd.DataFrame(nodes), "dna": pd.DataFrame(dna),
            "smash_cells": (to_str(a), to_str(b)), "smash_edge": edge, "smash_changed": changed,
            "smash_used": used, "smash_same_op": same_op,
            "nsas": pd.DataFrame(rows).astype({"nearest member": "Int64"})}


def trace_hierarchical_mutation(seed: int = 0, steps: int = 3) -> pd.DataFrame:
    """Liu et al.'s mutation (``HierarchicalSpace.mutation``) applied ``steps`` times from the trivial genotype:
    per step the level, the motif (m1.. at level 2, top at level 3), the edge (i, j), its op before and after,
    whether the mutated motif is in the network (a level-2 motif the top motif does not hold changes the genotype
    but not the network: a neutral mutation), and the genotype after. Every other edge of every motif is
    unchanged."""
    from ..spaces.hierarchical import HierarchicalSpace, edges

    space, rng = HierarchicalSpace(), np.random.default_rng(seed)
    arch, rows = space.trivial(), []
    for step in range(1, steps + 1):
        m = space.mutation(arch, rng)
        nodes = space.motif_nodes if m.level == 2 else space.top_nodes
        k = edges(nodes).index(m.edge)
        before = arch.motifs[m.motif][k] if m.level == 2 else arch.top[k]
        after = m.arch.motifs[m.motif][k] if m.level == 2 else m.arch.top[k]
        name = f"m{m.motif + 1}" if m.level == 2 else "top"
        rows.append({"step": step, "level": m.level, "motif": name, "edge (i, j)": m.edge, "op before": before,
                     "op after": after, "in the network": m.level == 3 or name in m.arch.top,
                     "genotype": space.to_str(m.arch)})
        arch = m.arch
    return pd.DataFrame(rows)


def trace_blockqnn_backup(seed: int = 0, bench=None, warmup: int = 5) -> pd.DataFrame:
    """BlockQNN's shaped Q-learning backups (``ShapedQLearning.update``) for one block of the NAS-Bench-201
    cell, scored by the benchmark, from the last transition back to the first. ``warmup`` exploring blocks are
    learned first, so that the table holds more than its initial 0.5. One row per transition: the state (edge,
    op), the action, Q before, the reward it earns (the block's r_T / T before the end, r_T at the end), the
    best Q of the next state, Q after."""
    from ..bench import load_benchmark
    from ..evaluators import Result
    from ..strategies.blockqnn import BlockQNN

    bench = bench or load_benchmark()
    space = NB201Space()
    strategy = BlockQNN(space, seed=seed, schedule=((1.0, warmup + 1),))
    for _ in range(warmup):
        arch = strategy.ask()
        strategy.tell(arch, Result(valid_acc=bench.query(to_str(arch))["valid_acc"]))
    arch = strategy.ask()
    reward = bench.query(to_str(arch))["valid_acc"] / 100
    states = [strategy.start] + list(enumerate(arch)) + [TERMINAL]
    # one update of the block, last transition first, with the shaped rewards (r_T / T before the end); in a
    # search, learn() makes such an update only when replay draws the block, as often as it does
    return _backups(strategy.agent, states, reward, step_reward=reward / (len(states) - 1))


def trace_maskconnect_step(seed: int = 0, modules: int = 3, C: int = 2, fan_in: int = 2,
                           mask_lr: float = 0.05) -> pd.DataFrame:
    """One MaskConnect step (Ahmed & Torresani, Sec. 3.3) on a tiny ``MaskConnectNet`` and a random minibatch of
    8 x 8 images: the binary masks sampled from the real ones, the gradient the real mask receives, the same
    gradient read off the graph as <dE/dx_j, h_i> (x_j block j's input, h_i candidate input i, captured with
    hooks), and the real mask after m~ <- clip(m~ - mask_lr * dE/dm, 0, 1). The real masks start at random
    values (the package starts them at 0.5) so that the sampling has something to prefer. One row per (module
    j, candidate input i); input 0 is the stem."""
    from ..oneshot.maskconnect import MaskConnectNet

    torch.manual_seed(seed)
    net = MaskConnectNet(10, 1, modules, C, fan_in)
    net.generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.masks:
            m.copy_(torch.rand(m.shape))
    start = [m.detach().clone() for m in net.masks]
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    inputs, outputs = [], [None]

    def keep_input(module, args):
        args[0].retain_grad()
        inputs.append(args[0])

    hooks = [b.register_forward_pre_hook(keep_input) for b in net.blocks]
    hooks.append(net.stem.register_forward_hook(lambda m, a, out: outputs.__setitem__(0, out)))
    hooks += [b.register_forward_hook(lambda m, a, out: outputs.append(out)) for b in net.blocks]
    net.train()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    for h in hooks:
        h.remove()
    rows = []
    with torch.no_grad():
        for j, (m, binary) in enumerate(zip(net.masks, net.binary)):
            after = (m - mask_lr * m.grad).clamp(0.0, 1.0)
            for i in range(len(m)):
                rows.append({"module j": j, "input i": "stem" if i == 0 else f"module {i - 1}",
                             "real mask": start[j][i].item(), "sampled": int(binary[i].item()),
                             "dE/dm": m.grad[i].item(), "<dE/dx_j, h_i>": (inputs[j].grad * outputs[i]).sum().item(),
                             "real mask after": after[i].item()})
    return pd.DataFrame(rows)


def trace_dpp_step(bench, keep: int = 4, seed: int = 0, latency_fn=None) -> pd.DataFrame:
    """DPP-Net's second step (Dong et al., Sec. 3.2-3.3) from the five cells of its first (the four one-edge cells
    and the empty one), with ``dpp_search``'s own step (``score_children``, ``pareto_select``): every kept cell
    grown by node 1 (one child per new function, ``grow``; none that computes a function listed before), the
    surrogate fitted on the evaluated cells, each child's ``score`` (the prediction, or the measured accuracy of a
    parent that stops growing), its latency (``latency_fn``; by default measured on the
    CPU, ``measured_latency``) and parameters, its non-dominated layer (1: the front of score up, latency and
    parameters down; 2: the front of what is left; ...; ``pareto_layers``) and whether ``pareto_select`` keeps it
    (``keep`` children: whole layers in order, then the children of highest score from the layer that does not
    fit). One row per child."""
    from ..predictors import PerformancePredictor
    from ..spaces import cell as nb201
    from ..strategies.dpp import EMPTY, grow, measured_latency, pareto_layers, pareto_select, score_children

    latency_fn = latency_fn or measured_latency(bench)
    parents = grow(EMPTY, 1)  # dpp_search's first step: every cell of the first size evaluated
    accuracy = {c: bench.query(nb201.to_str(c))["valid_acc"] for c in parents}
    children, _, objectives = score_children(bench, parents, 2, accuracy, PerformancePredictor(seed=seed), latency_fn)
    cells, points = [c for c, _ in children], np.asarray(objectives, dtype=float)
    layer = np.zeros(len(cells), dtype=int)
    for depth, rows in enumerate(pareto_layers(points), 1):
        layer[rows] = depth
    chosen = set(pareto_select(points, keep).tolist())
    return pd.DataFrame({"child": [nb201.to_str(c) for c in cells], "parent": [nb201.to_str(p) for _, p in children],
                         "measured before": [c in accuracy for c in cells], "score": points[:, 0],
                         "latency_ms": points[:, 1], "params": points[:, 2].astype(int), "layer": layer,
                         "kept": [i in chosen for i in range(len(cells))]})


def trace_predictor_ensemble(bench, n_train: int = 50, n_test: int = 6, seed: int = 0) -> dict:
    """The package's small surrogate (``PerformancePredictor``: an ensemble of MLPs on the path encoding) fitted on
    ``n_train`` random cells of the benchmark, read on ``n_test`` other cells: ``table`` has, per held-out cell,
    each member's prediction, their mean and standard deviation (what ``predict(..., return_std=True)``
    returns), the benchmark's validation accuracy and the mean's absolute error; ``spread`` the members' mean
    standard deviation on the training cells and on the held-out ones; ``max_diff`` the largest difference
    between the mean of the members and ``predict``; ``bananas`` the same spreads and the mean |error| on the
    held-out cells of BANANAS' own ensemble as chapter 3's search trains it (``strategies.bayesopt``: 10 layers
    of 20, mean absolute error, batches of 32, its default epochs), fitted on the same cells."""
    import inspect

    from ..predictors import PerformancePredictor
    from ..spaces.cell import encode_path
    from ..strategies.bayesopt import BANANAS, MLPEnsemble

    frame = bench.frame()
    rows = np.random.default_rng(seed).choice(len(frame), n_train + n_test, replace=False)
    cells = [NB201Space().parse(a) for a in frame["arch"].iloc[rows]]
    acc = frame["valid_acc"].iloc[rows].to_numpy(dtype=float)
    X = np.stack([encode_path(c) for c in cells]).astype(np.float32)
    predictor = PerformancePredictor(seed=seed).fit(X[:n_train], acc[:n_train])
    members = predictor.model.member_predictions(X[n_train:]).astype(float)  # (members, cells)
    mean, std = predictor.predict(X[n_train:], return_std=True)
    table = pd.DataFrame(members.T, columns=[f"member {m + 1}" for m in range(len(members))])
    table.insert(0, "cell", [to_str(c) for c in cells[n_train:]])
    table["mean"], table["std"], table["benchmark"] = mean.astype(float), std.astype(float), acc[n_train:]
    table["|error|"] = (table["mean"] - table["benchmark"]).abs()
    _, train_std = predictor.predict(X[:n_train], return_std=True)
    defaults = {k: v.default for k, v in inspect.signature(BANANAS.__init__).parameters.items()}
    bananas = MLPEnsemble(X.shape[1], defaults["members"], defaults["hidden"], seed, defaults["layers"]).fit(
        X[:n_train], acc[:n_train], epochs=defaults["epochs"])
    b_mean, b_std = bananas.predict(X[n_train:])
    _, b_train_std = bananas.predict(X[:n_train])
    return {"table": table, "spread": {"training cells": float(train_std.mean()), "held-out cells": float(std.mean())},
            "max_diff": float(np.abs(members.mean(axis=0) - mean).max()),
            "bananas": {"training cells": float(b_train_std.mean()), "held-out cells": float(b_std.mean()),
                        "|error|": float(np.abs(b_mean - acc[n_train:]).mean())}}
