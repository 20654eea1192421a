"""Model-based search (SMBO), the way BANANAS does it (White, Neiswanger & Savani, AAAI 2021).

    evaluate a few random architectures
    repeat:
        fit a surrogate on (encoding, valid accuracy) of every architecture evaluated so far
        build a pool of candidates: mutations of the best architectures so far, plus a few random ones
        score the pool with an acquisition function of the surrogate's mean and spread
        evaluate the best-scoring candidate

Bayesian optimisation needs a model that says not only how good a candidate should be but how sure it is.
A Gaussian process gives that directly; BANANAS found that an *ensemble* of small neural networks on the
*path encoding* does as well on cell spaces: members trained from different initial weights agree where the
data are dense and disagree where they are not, so their spread stands in for the posterior's.

The acquisition turns mean and spread into one score. Independent Thompson sampling (the BANANAS default)
draws one plausible accuracy per candidate from N(mean, spread); UCB adds ``beta`` spreads to the mean;
expected improvement weighs by how much a candidate may beat the best seen. Each one trades exploiting
what the model believes against exploring where it is unsure.

Only the space's ``sample``, ``mutate``, ``encode`` and ``key`` are used, so any space with an encoding works.
The ensemble is trained full-batch, all members at once as batched matrices, once per round of
``retrain_every`` results, and each round's pool serves all its proposals: 100 evaluations on the tabular
benchmark cost about 0.3 s of CPU. Five members of width 20, as in BANANAS.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NASInputError, check_choice, check_positive
from .base import Strategy

ACQUISITIONS = ("its", "ucb", "ei")


class MLPEnsemble:
    """``members`` MLPs (inputs -> hidden -> hidden -> 1, ReLU) trained as one, in plain numpy.

    Member m's weights are slice m of each array, so one batched matrix product runs every member. All the
    arrays are views into one flat vector, so Adam updates them all in a handful of operations: on inputs
    this small, per-operation overhead is the whole cost, and numpy with the gradients written out runs a
    training step several times faster than autograd.
    """

    def __init__(self, n_inputs: int, members: int = 5, hidden: int = 32, seed: int = 0):
        self.shapes = [(members, n_inputs, hidden), (members, 1, hidden), (members, hidden, hidden),
                       (members, 1, hidden), (members, hidden, 1), (members, 1, 1)]
        self.theta = np.zeros(sum(math.prod(s) for s in self.shapes), dtype=np.float32)
        self.params = self._views(self.theta)  # w1, b1, w2, b2, w3, b3
        rng = np.random.default_rng(seed)
        for w in self.params[::2]:  # He initialisation, an independent draw per member; biases start at 0
            w[:] = rng.normal(0.0, math.sqrt(2.0 / w.shape[1]), w.shape)
        self.mean, self.scale = 0.0, 1.0  # targets are standardised for training

    def _views(self, flat: np.ndarray) -> list:
        out, start = [], 0
        for shape in self.shapes:
            out.append(flat[start:start + math.prod(shape)].reshape(shape))
            start += math.prod(shape)
        return out

    def _forward(self, x: np.ndarray):
        """The outputs (members, n) and the hidden activations that backpropagation needs."""
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = np.maximum(x @ w1 + b1, 0.0)  # (n, inputs) @ (members, inputs, hidden) -> (members, n, hidden)
        h2 = np.maximum(h1 @ w2 + b2, 0.0)
        return (h2 @ w3 + b3)[..., 0], h1, h2

    def fit(self, x: np.ndarray, y: np.ndarray, steps: int = 150, lr: float = 0.01,
            weight_decay: float = 1e-4, betas=(0.9, 0.999)) -> "MLPEnsemble":
        """Full-batch Adam on each member's mean squared error."""
        self.mean, self.scale = float(np.mean(y)), float(np.std(y)) or 1.0
        x = np.asarray(x, dtype=np.float32)
        target = ((np.asarray(y) - self.mean) / self.scale).astype(np.float32)
        w1, b1, w2, b2, w3, b3 = self.params
        grad = np.zeros_like(self.theta)
        g_w1, g_b1, g_w2, g_b2, g_w3, g_b3 = self._views(grad)
        m, v = np.zeros_like(self.theta), np.zeros_like(self.theta)
        for t in range(1, steps + 1):
            out, h1, h2 = self._forward(x)
            d = (2.0 / len(x)) * (out - target)[..., None]  # d loss / d output, (members, n, 1)
            g_w3[:], g_b3[:] = h2.transpose(0, 2, 1) @ d, d.sum(axis=1, keepdims=True)
            d = (d @ w3.transpose(0, 2, 1)) * (h2 > 0)  # back through layer 3 and the ReLU
            g_w2[:], g_b2[:] = h1.transpose(0, 2, 1) @ d, d.sum(axis=1, keepdims=True)
            d = (d @ w2.transpose(0, 2, 1)) * (h1 > 0)
            g_w1[:], g_b1[:] = x.T @ d, d.sum(axis=1, keepdims=True)
            grad += weight_decay * self.theta
            m += (1 - betas[0]) * (grad - m)
            v += (1 - betas[1]) * (grad * grad - v)
            step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
            self.theta -= step * m / (np.sqrt(v) + 1e-8)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread over the members, in the targets' own units."""
        out = self._forward(np.asarray(x, dtype=np.float32))[0] * self.scale + self.mean
        return out.mean(axis=0), out.std(axis=0)


def acquisition(kind: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator,
                beta: float = 1.0) -> np.ndarray:
    """The score of each candidate (higher is better) from the surrogate's ``mean`` and spread ``std``."""
    if kind == "its":  # independent Thompson sampling: one plausible value per candidate
        return rng.normal(mean, std + 1e-9)
    if kind == "ucb":  # optimism in the face of uncertainty
        return mean + beta * std
    # expected improvement over the best value seen: E[max(f - best, 0)] under N(mean, std)
    from scipy.stats import norm

    std = std + 1e-9
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)


class BANANAS(Strategy):
    """Bayesian optimisation with a neural ensemble surrogate, path encoding and mutation-based pools.

    ``n_init`` random evaluations first; then a pool of ``pool_size`` candidates (``random_fraction`` of them
    random, the rest mutations of the ``n_parents`` best) is scored by ``acquisition`` ("its", "ucb", "ei").
    Several asks before their tells (``parallel``) get distinct candidates: a proposed architecture is never
    proposed again.
    """

    name = "bo"
    parallel = 10

    def __init__(self, space, seed: int = 0, n_init: int = 10, pool_size: int = 100, n_parents: int = 10,
                 random_fraction: float = 0.2, acquisition: str = "its", retrain_every: int = 10,
                 members: int = 5, hidden: int = 20, steps: int = 100, beta: float = 1.0):
        super().__init__(space, seed)
        check_choice("acquisition", acquisition, ACQUISITIONS)
        for kind, value in (("n_init", n_init), ("pool_size", pool_size), ("n_parents", n_parents),
                            ("retrain_every", retrain_every), ("members", members), ("hidden", hidden),
                            ("steps", steps)):
            check_positive(kind, value)
        if not 0 <= random_fraction <= 1:
            raise NASInputError(f"random_fraction must be between 0 and 1, got {random_fraction!r}")
        self.n_init, self.pool_size, self.n_parents = int(n_init), int(pool_size), int(n_parents)
        self.random_fraction, self.acquisition, self.beta = float(random_fraction), acquisition, float(beta)
        self.retrain_every, self.members, self.hidden, self.steps = retrain_every, members, hidden, steps
        self.archs: list = []      # told architectures with a finite valid accuracy ...
        self.scores: list = []     # ... and that accuracy
        self.proposed: set = set()  # keys of everything asked for or told: never proposed twice
        self.surrogate: MLPEnsemble | None = None
        self.fitted_on = 0
        self.pool: list | None = None  # this round's unproposed candidates, their predicted mean and spread
        self.mean = self.std = np.zeros(0)
        self._codes: dict = {}

    def encode(self, arch) -> np.ndarray:
        if arch not in self._codes:
            self._codes[arch] = np.asarray(self.space.encode(arch), dtype=np.float32)
        return self._codes[arch]

    # -- proposals --------------------------------------------------------------------------------------
    def ask(self):
        if len(self.scores) < max(self.n_init, 2):
            arch = self._fresh(lambda: self.space.sample(self.rng))
        else:
            if self.pool is None or not self.pool or len(self.scores) - self.fitted_on >= self.retrain_every:
                self._new_round()
            score = acquisition(self.acquisition, self.mean, self.std, max(self.scores), self.rng, self.beta)
            i = int(np.argmax(score))
            arch = self.pool.pop(i)  # gone from the pool: the next ask of this round picks another
            self.mean, self.std = np.delete(self.mean, i), np.delete(self.std, i)
        self.proposed.add(self.space.key(arch))
        return arch

    def _new_round(self) -> None:
        """Refit the surrogate on every result so far, then build and score a fresh pool of candidates.

        The asks until the next refit draw from this one pool (BANANAS proposes its batch the same way), so
        a round pays for one fit and one pool however many candidates it proposes.
        """
        x = np.stack([self.encode(a) for a in self.archs])
        seed = int(self.rng.integers(2**31))
        self.surrogate = MLPEnsemble(x.shape[1], self.members, self.hidden, seed).fit(
            x, np.asarray(self.scores, dtype=np.float64), steps=self.steps)
        self.fitted_on = len(self.scores)
        self.pool = self._pool()
        self.mean, self.std = self.surrogate.predict(np.stack([self.encode(a) for a in self.pool]))

    def _pool(self) -> list:
        """Mutants of the best architectures (one or two edits each) and random samples, all unseen."""
        order = np.argsort(self.scores)[::-1][: self.n_parents]
        parents = [self.archs[i] for i in order]
        n_random = int(round(self.pool_size * self.random_fraction))
        pool, keys = [], set()

        def add(arch):
            key = self.space.key(arch)
            if key not in self.proposed and key not in keys:
                pool.append(arch)
                keys.add(key)

        for i in range(3 * (self.pool_size - n_random)):  # some mutants were seen before: try a few more
            if len(pool) >= self.pool_size - n_random:
                break
            arch = self.space.mutate(parents[i % len(parents)], self.rng)
            add(self.space.mutate(arch, self.rng) if self.rng.random() < 0.5 else arch)
        for _ in range(3 * n_random):
            if len(pool) >= self.pool_size:
                break
            add(self.space.sample(self.rng))
        return pool or [self._fresh(lambda: self.space.sample(self.rng))]

    def _fresh(self, draw, tries: int = 1000):
        """An architecture not proposed before (or, in a space nearly exhausted, the last one drawn)."""
        for _ in range(tries):
            arch = draw()
            if self.space.key(arch) not in self.proposed:
                return arch
        return arch

    # -- learning ---------------------------------------------------------------------------------------
    def tell(self, arch, result) -> None:
        self.proposed.add(self.space.key(arch))
        if result.valid_acc is not None and math.isfinite(result.valid_acc):
            self.archs.append(arch)
            self.scores.append(float(result.valid_acc))
