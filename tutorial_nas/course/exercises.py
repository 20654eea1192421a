"""Checkers for the "write it yourself" cells: ``check(name, fn)`` runs a learner's function beside the package's.

Each exercise is the core of one method, small enough to write in a cell. ``task(name)`` says what to write;
``check(name, fn)`` calls ``fn`` and the package's own version on the same random inputs (several seeds and
shapes) and prints ``correct`` or the first input where they differ, what was expected and what came back, with
a hint when the answer looks like a known mistake. ``answer(name)`` is the text of a solution; every solution is
checked by the tests against the package, so the solutions notebook cannot drift from the code that runs.

Exercises: ``reinforce_loss``, ``mixed_op``, ``darts_derive``, ``nb201_derive``, ``aging_step``,
``its_acquisition``, ``q_backup``, ``mnasnet_reward``, ``pareto_front``.
"""

from __future__ import annotations

import copy
import inspect
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..analysis.hardware import mnas_reward, pareto_front
from ..errors import NASInputError, check_choice
from ..evaluators import Result
from ..oneshot.darts import MixedOp, _derive_cell, _softmax, derive_nb201
from ..ops import DARTS_OPS, NB201_OPS, nb201_op
from ..spaces.darts import NODES
from ..strategies.bayesopt import acquisition
from ..strategies.evolution import RegularizedEvolution
from ..strategies.qlearning import q_backup
from ..strategies.reinforce import policy_loss
from .source import show_source

SEEDS = range(6)


# --- The solutions, as a learner would write them (tests check each one against the package); where the
# package has the exercise as a function of its own (policy_loss, q_backup, mnas_reward), that is the answer.

def solution_mixed_op(x, alpha, ops):
    weights = torch.softmax(alpha, dim=-1)
    return sum(w * op(x) for w, op in zip(weights, ops))


def solution_darts_derive(alpha):
    weights = torch.softmax(alpha, dim=-1)
    none = DARTS_OPS.index("none")
    pairs, start = [], 0
    for node in range(4):  # node k reads the 2 cell inputs and the k nodes before it: k + 2 edges
        edges = weights[start:start + node + 2].clone()
        edges[:, none] = -1  # "none" never wins
        strongest, best_op = edges.max(dim=1)
        for i in strongest.argsort(descending=True, stable=True)[:2].tolist():
            pairs.append((DARTS_OPS[best_op[i]], i))
        start += node + 2
    return pairs


def solution_nb201_derive(alpha):
    return tuple(NB201_OPS[k] for k in alpha.argmax(dim=1).tolist())  # "none" included, as NAS-Bench-201 does


def solution_aging_step(population, sample, mutate, evaluate, rng):
    picked = rng.choice(len(population), sample, replace=True)
    parent, _ = max((population[i] for i in picked), key=lambda individual: individual[1])
    child = mutate(parent, rng)
    return population[1:] + [(child, evaluate(child))]  # the oldest (the first) dies


def solution_its_acquisition(mean, std, rng):
    return rng.normal(mean, std)  # one draw per candidate from N(mean, std ** 2): the scale is the std


def solution_mnasnet_reward(acc, latency_ms, target_ms):
    w = -0.07  # the soft constraint: alpha = beta = w, faster than the target earns a little, slower loses a little
    return acc * (latency_ms / target_ms) ** w


def solution_pareto_front(points):
    keep = []
    for i, (acc, lat) in enumerate(points):
        # b dominates a: at least as good in both (accuracy high, latency low) and strictly better in one
        dominated = any(a >= acc and t <= lat and (a > acc or t < lat) for a, t in points)
        if not dominated:  # an equal row is not strictly better: a row and its copy both stay
            keep.append(i)
    return keep


# --- The package's versions, called the way the exercises are ----------------------------------------------

class _Space:
    """Just enough of a space for RegularizedEvolution: its ``mutate`` is the exercise's."""

    name = "exercise"

    def __init__(self, mutate):
        self.mutate = mutate


def package_aging_step(population, sample, mutate, evaluate, rng):
    """One cycle of ``RegularizedEvolution`` itself (ask, then tell), on the given population and rng."""
    strategy = RegularizedEvolution(_Space(mutate), population=len(population), sample=sample)
    for arch, fitness in population:
        strategy.tell(arch, Result(valid_acc=fitness))
    strategy.rng, strategy.asked = rng, len(population)  # the population is full: the next ask is a child
    child = strategy.ask()
    strategy.tell(child, Result(valid_acc=evaluate(child)))
    return [(ind.arch, ind.fitness) for ind in strategy.population]


def package_its_acquisition(mean, std, rng):
    """BANANAS' default acquisition (``acquisition("its", ...)``); ``best`` plays no part in Thompson sampling."""
    return acquisition("its", mean, std, float(np.max(mean)), rng)


def _darts_pairs(alpha):
    return list(_derive_cell(_softmax(alpha)))


# --- Inputs: several seeds and shapes ------------------------------------------------------------------

def _inputs_reinforce(seed):
    g = torch.Generator().manual_seed(seed)
    n = (1, 3, 6)[seed % 3]  # decisions in the architecture
    logits = torch.randn(n, 5, generator=g, requires_grad=True)
    log_probs = torch.log_softmax(logits, dim=1)[torch.arange(n), torch.randint(5, (n,), generator=g)]
    reward, baseline = torch.rand(2, generator=g).tolist()
    return (log_probs, reward, baseline), {}


def _inputs_mixed(seed):
    g = torch.Generator().manual_seed(seed)
    C, size = (2, 4)[seed % 2], (5, 6)[seed % 2]
    with torch.random.fork_rng():  # seeded initial weights, without touching the notebook's own random state
        torch.manual_seed(seed)
        ops = nn.ModuleList(nb201_op(name, C, affine=False) for name in NB201_OPS).eval()
    return (torch.randn(2, C, size, size, generator=g), torch.randn(len(NB201_OPS), generator=g), ops), {}


def _inputs_alpha(rows, cols):
    def make(seed):
        g = torch.Generator().manual_seed(seed)
        alpha = torch.randn(rows, cols, generator=g) * (1 + seed % 3)
        alpha[:, 0] += seed % 2  # sometimes "none" (op 0) is the strongest on many edges
        return (alpha,), {}
    return make


def _inputs_aging(seed):
    rng = np.random.default_rng(seed)
    size = (3, 5, 10)[seed % 3]
    population = [(f"a{i}", float(rng.integers(50, 100))) for i in range(size)]  # oldest first; ties happen

    def mutate(arch, rng):
        return f"{arch}>{int(rng.integers(100))}"

    def evaluate(arch):
        return float(zlib.crc32(arch.encode()) % 100)

    return (population, (2, 3, size)[seed % 3], mutate, evaluate), {"rng": np.random.default_rng(100 + seed)}


def _inputs_its(seed):
    rng = np.random.default_rng(seed)
    n = (4, 10, 100)[seed % 3]  # candidates in the pool
    mean, std = rng.uniform(70, 95, n), rng.uniform(0.05, 5, n)  # spreads below and above 1
    return (mean, std), {"rng": np.random.default_rng(200 + seed)}


def _inputs_pareto(seed):
    rng = np.random.default_rng(seed)
    n = (5, 8, 15)[seed % 3]
    points = np.stack([rng.integers(80, 95, n) + 0.5 * rng.integers(0, 2, n),  # accuracy (%): ties happen
                       rng.integers(1, 10, n) / 10], axis=1)  # latency (ms)
    best = np.lexsort((points[:, 1], -points[:, 0]))[0]  # the most accurate, fastest of those: on the front
    at = int(rng.integers(n + 1))
    return (np.insert(points, at, points[best], axis=0),), {}  # with a copy of it: equal rows both stay


def _inputs_q(seed):
    rng = np.random.default_rng(seed)
    q, reward, max_next = rng.random(3)
    alpha, gamma = ((0.01, 1.0), (0.1, 0.9), (0.5, 0.5))[seed % 3]
    return (float(q), float(reward), float(max_next), alpha, gamma), {}


def _inputs_mnas(seed):
    rng = np.random.default_rng(seed)
    target = float(rng.uniform(5, 50))
    latency = target * float(rng.uniform(0.3, 0.9) if seed % 2 else rng.uniform(1.1, 3.0))
    return (float(rng.uniform(50, 95)), latency, target), {}


# --- The exercises -------------------------------------------------------------------------------------

@dataclass
class Exercise:
    task: str  # what to write, in a learner's words
    package: object  # the package's version, called as the learner's function is
    solution: object  # a learner's solution (``answer``)
    inputs: object  # seed -> (args, kwargs)
    mistakes: tuple = ()  # (wrong function, hint): a hint when the answer equals a known mistake
    normalize: object = None  # what is compared, when some differences do not matter (the order of pairs)


def _by_node(pairs):
    """A DARTS cell's pairs, node by node, in any order within a node."""
    pairs = [tuple(p) for p in pairs]
    return [sorted(pairs[k:k + 2], key=repr) for k in range(0, len(pairs), 2)]


def _remove_worst(population, sample, mutate, evaluate, rng, replace=True, worst=True):
    """A mistake: the worst individual dies instead of the oldest."""
    picked = rng.choice(len(population), sample, replace=replace)
    child = mutate(max((population[i] for i in picked), key=lambda individual: individual[1])[0], rng)
    dead = min(range(len(population)), key=lambda i: population[i][1]) if worst else 0
    return [p for i, p in enumerate(population) if i != dead] + [(child, evaluate(child))]


def _without_replacement(population, sample, mutate, evaluate, rng):
    """A mistake: the tournament drawn without replacement."""
    return _remove_worst(population, sample, mutate, evaluate, rng, replace=False, worst=False)


def _darts_with_none(alpha):
    """A mistake: the right edges, but 'none' allowed as their op."""
    rows = F.softmax(alpha, dim=-1)
    return [(DARTS_OPS[int(rows[start + i].argmax())], i) for (_, i), start in
            zip(_darts_pairs(alpha), np.repeat(np.cumsum([0, 2, 3, 4])[:NODES], 2))]


def _pareto_weak(points):
    """A mistake: 'at least as good in both' alone, so equal rows remove each other."""
    p = np.asarray(points, dtype=float)
    return [i for i in range(len(p))
            if not any(j != i and p[j, 0] >= p[i, 0] and p[j, 1] <= p[i, 1] for j in range(len(p)))]


def _indices(out):
    """Indices in any order (a boolean mask read as the rows it keeps)."""
    try:
        rows = np.asarray(out)
        return sorted(int(i) for i in (np.flatnonzero(rows) if rows.dtype == bool else rows.ravel()))
    except (TypeError, ValueError):
        return out


EXERCISES = {
    "reinforce_loss": Exercise(
        "reinforce_loss(log_probs, reward, baseline) -> loss tensor: Zoph & Le's REINFORCE loss with a baseline, "
        "-(R - b) * sum of the log-probabilities of the decisions (log_probs: a 1-D tensor).",
        policy_loss, policy_loss, _inputs_reinforce,
        ((lambda lp, r, b: (r - b) * lp.sum(), "the sign is flipped: minimising -(R - b) log p raises p when R > b"),
         (lambda lp, r, b: -(r - b) * lp.mean(), "sum the log-probabilities (log p(arch) = sum over decisions), "
                                                 "do not average them"),
         (lambda lp, r, b: -r * lp.sum(), "subtract the baseline from the reward"))),
    "mixed_op": Exercise(
        "mixed_op(x, alpha, ops) -> tensor: DARTS' mixed operation, the sum over k of softmax(alpha)[k] * ops[k](x).",
        lambda x, alpha, ops: MixedOp(list(ops))(x, F.softmax(alpha, dim=-1)), solution_mixed_op, _inputs_mixed,
        ((lambda x, a, ops: sum(w * op(x) for w, op in zip(a, ops)),
          "the weights are softmax(alpha), not alpha itself: they must be positive and sum to 1"),
         (lambda x, a, ops: sum(op(x) for op in ops) / len(ops), "weight each op by softmax(alpha), not equally"))),
    "darts_derive": Exercise(
        "darts_derive(alpha) -> list of (op, input) pairs: the DARTS cell of a 14 x 8 alpha (rows: edges, node by "
        "node; columns: DARTS_OPS). Softmax each edge; for each of the 4 nodes keep the 2 incoming edges whose "
        "strongest op other than 'none' is largest, each with that op (2 pairs per node, in any order; 8 in all).",
        _darts_pairs, solution_darts_derive, _inputs_alpha(14, len(DARTS_OPS)),
        ((_darts_with_none, "'none' must never be chosen: take the argmax over the other ops"),), _by_node),
    "nb201_derive": Exercise(
        "nb201_derive(alpha) -> tuple of 6 op names: the NAS-Bench-201 cell of a 6 x 5 alpha (columns: NB201_OPS), "
        "the strongest op on each edge, 'none' included (as NAS-Bench-201's code derives it).",
        derive_nb201, solution_nb201_derive, _inputs_alpha(6, len(NB201_OPS)),
        ((lambda a: tuple(NB201_OPS[1 + int(r[1:].argmax())] for r in a),
          "in NAS-Bench-201's derivation 'none' competes like any other op"),)),
    "aging_step": Exercise(
        "aging_step(population, sample, mutate, evaluate, rng) -> new population: one cycle of regularized "
        "evolution. population: list of (arch, fitness), oldest first. Draw the tournament with ONE call "
        "rng.choice(len(population), sample, replace=True); the parent is the fittest of those drawn (the first "
        "drawn on a tie); child = mutate(parent_arch, rng); append (child, evaluate(child)); remove the oldest.",
        package_aging_step, solution_aging_step, _inputs_aging,
        ((_remove_worst, "remove the OLDEST individual (the first of the list), however good it is, not the worst"),
         (_without_replacement, "the tournament is drawn WITH replacement (Real et al. 2019, Algorithm 1)"))),
    "its_acquisition": Exercise(
        "its_acquisition(mean, std, rng) -> array of scores: BANANAS' independent Thompson sampling. mean and std "
        "are the ensemble's predicted mean and spread (standard deviation) of each pool candidate; draw one "
        "plausible value per candidate from N(mean, std ** 2), with ONE call of the generator rng (rng.normal), "
        "candidates in order. The round proposes the candidate with the highest score.",
        package_its_acquisition, solution_its_acquisition, _inputs_its,
        ((lambda mean, std, rng: mean, "that is the mean alone (pure exploitation): Thompson sampling draws one "
                                       "value per candidate from N(mean, std ** 2), so an uncertain candidate can win"),
         (lambda mean, std, rng: rng.normal(mean, std ** 2), "rng.normal's scale is the standard deviation, not the "
                                                             "variance: pass std, not std ** 2"),
         (lambda mean, std, rng: mean + std * rng.standard_normal(), "draw one value per candidate (independent "
                                                                      "draws), not one shared by all"))),
    "q_backup": Exercise(
        "q_backup(q, reward, max_next, alpha, gamma) -> float: one Q-learning backup, "
        "(1 - alpha) * q + alpha * (reward + gamma * max_next).",
        q_backup, q_backup, _inputs_q,
        ((lambda q, r, m, a, g: q + a * (r + g * m), "keep (1 - alpha) of the old value, not all of it"),)),
    "mnasnet_reward": Exercise(
        "mnasnet_reward(acc, latency_ms, target_ms) -> float: MnasNet's soft-constraint reward, "
        "acc * (latency / target) ** w with w = -0.07 (Tan et al. 2019).",
        mnas_reward, solution_mnasnet_reward, _inputs_mnas,
        ((lambda acc, lat, t: acc * (lat / t) ** 0.07, "the exponent is negative: a slower network earns less"),
         (lambda acc, lat, t: acc * (lat / t) ** (0 if lat <= t else -1), "that is the hard constraint "
                                                                            "(w = 0 / -1); the soft one is -0.07"))),
    "pareto_front": Exercise(
        "pareto_front(points) -> list of row indices (any order): the accuracy-latency Pareto front. points is an "
        "n x 2 array, column 0 the accuracy (higher is better), column 1 the latency in ms (lower is better). Keep "
        "the rows that no other row dominates; row b dominates row a when b is at least as good in both and "
        "strictly better in one, so equal rows dominate neither and both stay.",
        pareto_front, solution_pareto_front, _inputs_pareto,
        ((_pareto_weak, "equal rows dominate neither: b dominates a only when it is at least as good in both AND "
                        "strictly better in one; with 'at least as good' alone a row and its copy remove each other"),
         (lambda points: pareto_front(points, maximize=(True, True)),
          "latency is better LOW: b dominates a when acc_b >= acc_a and lat_b <= lat_a")), _indices),
}


# --- Comparing ---------------------------------------------------------------------------------------------

def _same(expected, got) -> bool:
    if isinstance(expected, torch.Tensor):
        got = torch.as_tensor(got) if isinstance(got, (float, int)) and expected.numel() == 1 else got
        return (isinstance(got, torch.Tensor) and got.shape == expected.shape
                and torch.allclose(got.detach().double(), expected.detach().double(), rtol=1e-4, atol=1e-6))
    if isinstance(expected, np.ndarray):
        try:
            got = np.asarray(got, dtype=float)
        except (TypeError, ValueError, RuntimeError):
            return False
        return got.shape == expected.shape and bool(np.allclose(got, expected, rtol=1e-6, atol=1e-9))
    if isinstance(expected, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(expected)
                and all(_same(e, g) for e, g in zip(expected, got)))
    if isinstance(expected, (float, int, np.floating)) and not isinstance(expected, bool):
        return isinstance(got, (float, int, np.floating, torch.Tensor)) and np.isclose(float(got), expected,
                                                                                        rtol=1e-6, atol=1e-9)
    return expected == got


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 12:
            return f"tensor({np.round(value.detach().double().numpy(), 5).tolist()})"
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        if value.size <= 40:
            return f"array({np.round(value.astype(float), 4).tolist()})"
        return f"an array of shape {value.shape}"
    if isinstance(value, nn.Module):
        return f"{len(value)} ops" if isinstance(value, nn.ModuleList) else type(value).__name__
    if callable(value):
        return getattr(value, "__name__", "a function")
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + " ..."


def _run(fn, args, kwargs, normalize=None):
    """``fn`` on fresh copies of the inputs (it may change its arguments or draw from the rng)."""
    out = fn(*[list(a) if isinstance(a, list) else a.copy() if isinstance(a, np.ndarray) else a for a in args],
             **copy.deepcopy(kwargs))
    return normalize(out) if normalize else out


def mismatch(name: str, fn) -> str | None:
    """The first input on which ``fn`` and the package disagree, in words; None when they agree on all."""
    check_choice("exercise", name, EXERCISES)
    if not callable(fn):
        raise NASInputError(f"check({name!r}, fn) needs your function itself (no parentheses), got {fn!r}")
    ex = EXERCISES[name]
    for seed in SEEDS:
        args, kwargs = ex.inputs(seed)
        shown = ", ".join([_show(a) for a in args] + [f"{k}=<seeded generator>" for k in kwargs])
        expected = _run(ex.package, args, kwargs, ex.normalize)
        try:
            got = _run(fn, args, kwargs, ex.normalize)
        except Exception as error:  # the learner's code failed: say where, not a traceback
            return f"Not yet: on input ({shown}) your function raised {type(error).__name__}: {error}"
        if _same(expected, got):
            if isinstance(expected, torch.Tensor) and expected.requires_grad and not getattr(got, "requires_grad",
                                                                                             False):
                return ("Almost: the value is right but it carries no gradient; keep it a tensor (no .item(), "
                        "float() or .detach()) so that loss.backward() can reach the parameters")
            continue
        text = f"Not yet: on input ({shown})\n  expected {_show(expected)}\n  got      {_show(got)}"
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and expected.numel() > 12:
            text += f"\n  largest difference {float((got.detach() - expected.detach()).abs().max()):.3g}"
        for wrong, hint in ex.mistakes:
            try:
                if _same(_run(wrong, args, kwargs, ex.normalize), got):
                    return f"{text}\n  hint: {hint}"
            except Exception:
                pass
        return text
    return None


def check(name: str, fn) -> bool:
    """Run ``fn`` against the package's version of exercise ``name``; print ``correct`` or what differs."""
    problem = mismatch(name, fn)
    print(f"correct: {name} agrees with the package on {len(SEEDS)} random inputs" if problem is None else problem)
    return problem is None


def task(name: str) -> str:
    """What to write for exercise ``name``."""
    check_choice("exercise", name, EXERCISES)
    return EXERCISES[name].task


def answer(name: str) -> str:
    """The text of a solution of exercise ``name`` (for the solutions notebook)."""
    check_choice("exercise", name, EXERCISES)
    return inspect.getsource(EXERCISES[name].solution)


def show_answer(name: str) -> None:
    """Display the solution of exercise ``name`` with its file and name."""
    check_choice("exercise", name, EXERCISES)
    show_source(EXERCISES[name].solution)
