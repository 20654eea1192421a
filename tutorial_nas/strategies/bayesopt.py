"""Model-based search (SMBO), the way BANANAS does it (White, Neiswanger & Savani, AAAI 2021).

    evaluate a few random architectures
    repeat:
        fit a surrogate on (encoding, valid accuracy) of every architecture evaluated so far
        build a pool of candidates: mutations of the best architectures so far
        score the pool with an acquisition function of the surrogate's mean and spread
        evaluate the best-scoring candidates, a batch of them

Bayesian optimisation needs a model that says not only how good a candidate should be but how sure it is.
A Gaussian process gives that directly; BANANAS found that an *ensemble* of neural networks on the *path
encoding* does as well on cell spaces: members trained from different initial weights agree where the data
are dense and disagree where they are not, so their spread stands in for the posterior's.

The pieces, as the paper and its code (naszilla) define them:

- the path encoding (``NB201Space(encoding="path")``, ``spaces.cell.encode_path``): one bit per sequence of
  ops from input to output, 155 bits on NAS-Bench-201. naszilla's run of BANANAS truncates it to its first 30
  bits (the paths of 1 and 2 ops); ``encoding_bits=30`` does the same, the default keeps all of them;
- the surrogate: 5 feed-forward networks of 10 hidden layers of width 20 (ReLU), each trained on the mean
  absolute error by Adam (lr 0.01, betas 0.9 and 0.99, no weight decay) in batches of 32, its weights drawn as
  Keras draws a Dense layer's (Glorot uniform, biases 0): naszilla's ``MetaNeuralnet``. Targets are
  standardised before training (NASLib's MLP predictor does the same; naszilla trains on the raw error in
  percent), so that one learning rate fits any scale of accuracy. ``epochs`` is 150, naszilla's standard
  setting. Measured on a 2-core CPU, a search of 100 look-ups on the shipped table took 0.33 s with 50 epochs,
  0.90 s with 150 and 1.19 s with 200, and over 10 seeds its final test accuracy was 90.58, 90.54 and 90.67 %
  (standard errors 0.05-0.06; random search: 90.21 +- 0.10): fewer epochs would save little time here and
  change nothing measurable;
- the acquisition: independent Thompson sampling (the default) draws one plausible accuracy per candidate
  from N(mean, spread); UCB adds ``beta`` spreads to the mean (naszilla: 0.5); expected improvement weighs by
  how much a candidate may beat the best seen, with the spread divided by 5 first (naszilla's
  ``ei_calibration_factor``);
- the candidates, as naszilla's ``get_candidates``: ``pool_size`` mutations of the best architecture, then as
  many of the next best, up to the 5 best, until the pool holds ``pool_size`` (checked before each parent, so a
  pool may hold more), never one seen before. On NAS-Bench-201 a mutation is naszilla's
  (``NB201Space.mutate_each``: each of the 6 edges changed with probability 1/4, 1.5 edges on average; a draw
  that changes none is the parent, already seen, and dropped). naszilla tells architectures apart by their
  string, the package by isomorphism class (``space.key``), as its table has one row a class. On a space
  without ``mutate_each`` a mutation is one ``space.mutate`` or, half of the time, two;
- 10 random architectures first, then rounds of 10 proposals (naszilla's ``k``): the surrogate is refitted
  once a round, and the round's proposals are the pool's 10 best acquisition scores.

Only the space's ``sample``, ``mutate`` (or ``mutate_each``), ``encode`` and ``key`` are used, so any space
with an encoding works.
The ensemble is plain numpy, all members at once as batched matrices; its training is nearly all the cost.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NASInputError, check_choice, check_positive
from .base import Strategy

ACQUISITIONS = ("its", "ucb", "ei")
LOSSES = ("mae", "mse")


class MLPEnsemble:
    """``members`` MLPs (inputs -> ``layers`` x ``hidden`` ReLU units -> 1), trained as one in plain numpy.

    Member m's weights are slice m of each array, so one batched matrix product runs every member. All the
    arrays are views into one flat vector, so Adam updates them all in a handful of operations: on inputs
    this small, per-operation overhead is the whole cost, and numpy with the gradients written out runs a
    training step several times faster than autograd. The defaults are BANANAS' (5 members, 10 layers of 20).
    """

    def __init__(self, n_inputs: int, members: int = 5, hidden: int = 20, seed: int = 0, layers: int = 10):
        widths = [n_inputs] + [hidden] * layers + [1]
        self.shapes = [s for a, b in zip(widths, widths[1:]) for s in ((members, a, b), (members, 1, b))]
        self.theta = np.zeros(sum(math.prod(s) for s in self.shapes), dtype=np.float32)
        self.params = self._views(self.theta)  # w1, b1, w2, b2, ..., the output layer's last
        self.rng = np.random.default_rng(seed)
        for w in self.params[::2]:  # Keras' Dense default (Glorot uniform), a draw per member; biases start at 0
            limit = math.sqrt(6.0 / (w.shape[1] + w.shape[2]))
            w[:] = self.rng.uniform(-limit, limit, w.shape)
        self.mean, self.scale = 0.0, 1.0  # targets are standardised for training

    def _views(self, flat: np.ndarray) -> list:
        out, start = [], 0
        for shape in self.shapes:
            out.append(flat[start:start + math.prod(shape)].reshape(shape))
            start += math.prod(shape)
        return out

    def _forward(self, x: np.ndarray):
        """The outputs (members, n) and every layer's input, which backpropagation needs."""
        inputs = [x]  # (n, inputs) for all members alike, or (members, n, inputs) for a batch per member
        for w, b in zip(self.params[:-2:2], self.params[1:-2:2]):
            inputs.append(np.maximum(inputs[-1] @ w + b, 0.0))
        return (inputs[-1] @ self.params[-2] + self.params[-1])[..., 0], inputs

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int = 200, lr: float = 0.01, batch_size: int | None = 32,
            loss: str = "mae", weight_decay: float = 0.0, betas=(0.9, 0.99)) -> "MLPEnsemble":
        """Adam on each member's ``loss`` ("mae" or "mse"); every member sees the data in its own random order,
        ``batch_size`` at a time (None: the whole data set, one step per epoch)."""
        check_choice("loss", loss, LOSSES)
        self.mean, self.scale = float(np.mean(y)), float(np.std(y)) or 1.0
        x = np.asarray(x, dtype=np.float32)
        target = ((np.asarray(y) - self.mean) / self.scale).astype(np.float32)
        members, n = self.params[0].shape[0], len(x)
        size = n if batch_size is None else min(int(batch_size), n)
        grad = np.zeros_like(self.theta)
        grads = self._views(grad)
        m, v, t = np.zeros_like(self.theta), np.zeros_like(self.theta), 0
        for _ in range(int(epochs)):
            order = None if size == n else self.rng.permuted(np.tile(np.arange(n), (members, 1)), axis=1)
            for start in range(0, n, size):
                if order is None:
                    xb, yb = x, target
                else:  # (members, batch, inputs): each member's own batch
                    rows = order[:, start:start + size]
                    xb, yb = x[rows], target[rows]
                out, inputs = self._forward(xb)
                err = out - yb
                d = (np.sign(err) if loss == "mae" else 2.0 * err)[..., None] / err.shape[-1]  # d loss / d out
                for layer in range(len(inputs) - 1, -1, -1):  # back through each layer and its ReLU
                    h = inputs[layer]
                    grads[2 * layer][:] = (h.T if h.ndim == 2 else h.transpose(0, 2, 1)) @ d
                    grads[2 * layer + 1][:] = d.sum(axis=1, keepdims=True)
                    if layer:
                        d = (d @ self.params[2 * layer].transpose(0, 2, 1)) * (h > 0)
                t += 1
                grad += weight_decay * self.theta
                m += (1 - betas[0]) * (grad - m)
                v += (1 - betas[1]) * (grad * grad - v)
                step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
                self.theta -= step * m / (np.sqrt(v) + 1e-8)
        return self

    def member_predictions(self, x: np.ndarray) -> np.ndarray:
        """Every member's prediction, (members, n), in the targets' own units."""
        return self._forward(np.asarray(x, dtype=np.float32))[0] * self.scale + self.mean

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread over the members, in the targets' own units."""
        out = self.member_predictions(x)
        return out.mean(axis=0), out.std(axis=0)


def acquisition(kind: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator,
                beta: float = 0.5, ei_calibration: float = 5.0) -> np.ndarray:
    """The score of each candidate (higher is better) from the surrogate's ``mean`` and spread ``std``. Expected
    improvement takes the spread divided by ``ei_calibration`` (naszilla: 5, an ensemble's spread being wider
    than the error it makes)."""
    if kind == "its":  # independent Thompson sampling: one plausible value per candidate
        return rng.normal(mean, std + 1e-9)
    if kind == "ucb":  # optimism in the face of uncertainty
        return mean + beta * std
    # expected improvement over the best value seen: E[max(f - best, 0)] under N(mean, std)
    from scipy.stats import norm

    std = std / ei_calibration + 1e-9
    z = (mean - best) / std
    return (mean - best) * norm.cdf(z) + std * norm.pdf(z)


class BANANAS(Strategy):
    """Bayesian optimisation with a neural ensemble surrogate, path encoding and mutation-based pools.

    ``n_init`` random evaluations first; then rounds of ``retrain_every`` proposals: the surrogate
    (``members`` MLPs of ``layers`` x ``hidden``, ``epochs`` of training) is refitted, a pool of at least
    ``pool_size`` candidates is built (mutants of the ``n_parents`` best, the best first; ``random_fraction`` of
    random ones, 0 in the paper) and scored once by ``acquisition`` ("its", "ucb" with ``beta``, "ei"), and the
    round's asks take the pool's best scores in turn. ``encoding_bits`` keeps only the first bits of the encoding
    (naszilla's truncated path encoding: 30 on NAS-Bench-201, the paths of 1 and 2 ops, which leave edge 1->2
    out; the BANANAS repository's own NAS-Bench-201 runs keep 40). Several asks before their tells
    (``parallel``) get distinct candidates: a proposed architecture is never proposed again.
    """

    name = "bo"
    parallel = 10

    def __init__(self, space, seed: int = 0, n_init: int = 10, pool_size: int = 100, n_parents: int = 5,
                 random_fraction: float = 0.0, acquisition: str = "its", retrain_every: int = 10,
                 members: int = 5, hidden: int = 20, layers: int = 10, epochs: int = 150, beta: float = 0.5,
                 encoding_bits: int | None = None):
        super().__init__(space, seed)
        check_choice("acquisition", acquisition, ACQUISITIONS)
        for kind, value in (("n_init", n_init), ("pool_size", pool_size), ("n_parents", n_parents),
                            ("retrain_every", retrain_every), ("members", members), ("hidden", hidden),
                            ("layers", layers), ("epochs", epochs)):
            check_positive(kind, value)
        if encoding_bits is not None:
            check_positive("encoding_bits", encoding_bits)
        if not 0 <= random_fraction <= 1:
            raise NASInputError(f"random_fraction must be between 0 and 1, got {random_fraction!r}")
        self.n_init, self.pool_size, self.n_parents = int(n_init), int(pool_size), int(n_parents)
        self.random_fraction, self.acquisition, self.beta = float(random_fraction), acquisition, float(beta)
        self.retrain_every, self.members, self.hidden = int(retrain_every), int(members), int(hidden)
        self.layers, self.epochs, self.encoding_bits = int(layers), int(epochs), encoding_bits
        self.archs: list = []      # told architectures with a finite valid accuracy ...
        self.scores: list = []     # ... and that accuracy
        self.proposed: set = set()  # keys of everything asked for or told: never proposed twice
        self.surrogate: MLPEnsemble | None = None
        self.fitted_on = 0
        self.pool: list | None = None  # this round's unproposed candidates and their acquisition scores
        self.pool_scores = np.zeros(0)
        self._codes: dict = {}

    def encode(self, arch) -> np.ndarray:
        if arch not in self._codes:
            self._codes[arch] = np.asarray(self.space.encode(arch), dtype=np.float32)[: self.encoding_bits]
        return self._codes[arch]

    # -- proposals --------------------------------------------------------------------------------------
    def ask(self):
        if len(self.scores) < max(self.n_init, 2):
            arch = self._fresh(lambda: self.space.sample(self.rng))
        else:
            if not self.pool or len(self.scores) - self.fitted_on >= self.retrain_every:
                self._new_round()
            i = int(np.argmax(self.pool_scores))
            arch = self.pool.pop(i)  # gone from the pool: the next ask of this round takes the next best
            self.pool_scores = np.delete(self.pool_scores, i)
        self.proposed.add(self.space.key(arch))
        return arch

    def _new_round(self) -> None:
        """Refit the surrogate on every result so far, then build a fresh pool and score it once.

        The asks until the next refit draw from this one pool (BANANAS proposes its batch of ``k`` the same
        way), so a round pays for one fit and one pool however many candidates it proposes.
        """
        x = np.stack([self.encode(a) for a in self.archs])
        seed = int(self.rng.integers(2**31))
        self.surrogate = MLPEnsemble(x.shape[1], self.members, self.hidden, seed, self.layers).fit(
            x, np.asarray(self.scores, dtype=np.float64), epochs=self.epochs)
        self.fitted_on = len(self.scores)
        self.pool = self._pool()
        mean, std = self.surrogate.predict(np.stack([self.encode(a) for a in self.pool]))
        self.pool_scores = acquisition(self.acquisition, mean, std, max(self.scores), self.rng, self.beta)

    def _pool(self) -> list:
        """Mutants of the best architectures, the best first, and random samples, all unseen (naszilla's
        ``get_candidates``: all ``pool_size`` tries of a parent are made once it is started)."""
        order = np.argsort(self.scores, kind="stable")[::-1][: self.n_parents]
        n_random = int(round(self.pool_size * self.random_fraction))
        pool, keys = [], set()

        def add(arch):
            key = self.space.key(arch)
            if key not in self.proposed and key not in keys:
                pool.append(arch)
                keys.add(key)

        each = getattr(self.space, "mutate_each", None)

        def mutant(parent):  # the space's per-edge mutation, else one or (half of the time) two of its edits
            if each is not None:
                return each(parent, self.rng)
            arch = self.space.mutate(parent, self.rng)
            return self.space.mutate(arch, self.rng) if self.rng.random() < 0.5 else arch

        for i in order:  # as naszilla: pool_size mutations of the best, then of the next best ...
            if len(pool) >= self.pool_size - n_random:
                break
            for _ in range(self.pool_size):
                add(mutant(self.archs[i]))
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
