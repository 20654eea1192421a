"""MetaQNN: Q-learning over layers (Baker, Gupta, Naik & Raskar, ICLR 2017).

The agent builds a network layer by layer. A state is the description of the last layer added, here
(depth, kernel, filters, pool); an action is the next layer, or terminating the network (from any state at
least ``min_layers`` deep). Baker et al.'s state also holds the representation size (binned) and forbids a
layer whose kernel or pool exceeds it; the chain space here has no such state, since it stops shrinking a map
at 1 x 1 (a layer may follow a 1 x 1 map), and its layers merge a convolution with its pooling. The only
reward comes at the end: the validation accuracy of the trained network, scaled to 0..1 (the best accuracy
over its epochs, as the reference code's ``accuracy_best_val``). Three ideas make it work with so few rewards:

- epsilon-greedy exploration on a schedule: pure exploration (epsilon = 1) for the first models, then
  0.9, 0.8, ... down to 0.1 for the last ones, so that the table is filled before it is trusted. The paper's
  schedule (Table 2) counts unique models: 1,500 at epsilon = 1, 100 each at 0.9 to 0.7, 150 each at 0.6 to
  0.1, 2,700 in all. A repeat is looked up, learnt from, and followed by a new proposal at the same epsilon
  (Sec. 4.3; the reference code counts the distinct networks trained), and so it is here. The schedule is
  scaled to the search's own budget, each epsilon keeping its share (56 % of the models at 1.0, 3.7 % at each
  of 0.9 to 0.7, 5.6 % at each of 0.6 to 0.1), so that a search of 20 models and one of 2,000 both explore
  first and end exploiting at 0.1. ``search`` tells the strategy its budget (``plan``); without one (a budget
  in seconds) the paper's counts are used as they are. The search's budget counts every evaluation, repeats
  included, so a run that repeats itself ends before its schedule does;
- tabular Q-learning, Q(s, a) <- (1 - alpha) Q(s, a) + alpha [r + gamma max_a' Q(s', a')], with
  alpha = 0.01 and gamma = 1, updated from the last state of a trajectory back to the first;
- experience replay: after every model, ``replay`` trajectories drawn from all those seen so far are
  replayed, so that each reward is propagated many times (100, the paper's Sec. 4.3; its reference code's
  ``replay_number`` is 128).

A network whose training fails (a nan accuracy) is not learnt from here; the reference code stores it with the
reward of a chance guess, 1 / the number of classes.

``QLearning`` below is the agent on any finite layer problem (a function giving the next states of a state);
``MetaQNN`` is that agent on the chain space, building plain chains (no skips, as in the paper).
"""

from __future__ import annotations

import numpy as np

from ..errors import NASInputError
from ..spaces.chain import plain_chain
from .base import Strategy

TERMINAL = "terminate"
# Baker et al.'s schedule (Table 2): (epsilon, number of models); ``epsilon_at`` scales it to any budget.
BAKER_SCHEDULE = ((1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100), (0.6, 150), (0.5, 150), (0.4, 150),
                  (0.3, 150), (0.2, 150), (0.1, 150))


def epsilon_at(model: int, schedule=BAKER_SCHEDULE, total: int | None = None) -> float:
    """The epsilon for the ``model``-th model (from 0); after the schedule ends the last epsilon stays.

    With ``total``, the schedule is scaled to span ``total`` models, each epsilon keeping its share of them:
    model m takes the epsilon found (m + 1/2) / total of the way through the schedule, so that every share is
    within one model of its exact proportion and the last model of a budget of 9 or more takes the last
    epsilon."""
    length = sum(n for _, n in schedule)
    position = (model + 0.5) * length / total if total else model
    for epsilon, n in schedule:
        if position < n:
            return float(epsilon)
        position -= n
    return float(schedule[-1][0])


def q_backup(q: float, reward: float, max_next: float, alpha: float, gamma: float) -> float:
    """One Q-learning backup, Baker et al.'s update rule:

        Q(s, a) <- (1 - alpha) Q(s, a) + alpha [r + gamma max_a' Q(s', a')]

    ``max_next`` is max_a' Q(s', a') of the state reached (0 after the last layer: nothing follows)."""
    return (1 - alpha) * q + alpha * (reward + gamma * max_next)


class QLearning:
    """Tabular Q-learning for episodes that end with a single reward.

    ``next_states(state)`` lists the states reachable from ``state`` (``TERMINAL`` among them when the
    episode may end there). An action is identified with the state it leads to, as in MetaQNN.
    """

    def __init__(self, next_states, alpha: float = 0.01, gamma: float = 1.0, q_init: float = 0.5,
                 replay: int = 100):
        if not 0 < alpha <= 1 or not 0 <= gamma <= 1 or int(replay) < 0:
            raise NASInputError(f"alpha must be in (0, 1], gamma in [0, 1] and replay at least 0, got "
                                f"alpha={alpha!r}, gamma={gamma!r}, replay={replay!r}")
        self.next_states, self.alpha, self.gamma, self.q_init = next_states, alpha, gamma, q_init
        self.replay = int(replay)
        self.q: dict = {}  # (state, next state) -> value; unseen pairs are worth q_init (optimism)
        self.memory: list = []  # (episode, reward) of every episode so far

    def value(self, state, action) -> float:
        return self.q.get((state, action), self.q_init)

    def greedy(self, state, rng=None):
        """The best action; ties broken at random when ``rng`` is given, else by the first one."""
        actions = self.next_states(state)
        values = np.array([self.value(state, a) for a in actions])
        best = np.flatnonzero(values == values.max())
        return actions[int(best[rng.integers(len(best))]) if rng is not None else int(best[0])]

    def rollout(self, start, epsilon: float, rng) -> list:
        """An episode from ``start``: with probability epsilon a random action, else the greedy one."""
        states = [start]
        while states[-1] != TERMINAL:
            actions = self.next_states(states[-1])
            if rng.random() < epsilon:
                states.append(actions[int(rng.integers(len(actions)))])
            else:
                states.append(self.greedy(states[-1], rng))
        return states

    def update(self, states: list, reward: float) -> None:
        """Q-learning along one episode, from its last transition back to its first (reward at the end)."""
        for t in reversed(range(len(states) - 1)):
            s, a = states[t], states[t + 1]
            if a == TERMINAL:  # the reward comes at the end, and nothing follows
                r, max_next = reward, 0.0
            else:
                r, max_next = 0.0, max(self.value(a, b) for b in self.next_states(a))
            self.q[(s, a)] = q_backup(self.value(s, a), r, max_next, self.alpha, self.gamma)

    def learn(self, states: list, reward: float, rng) -> None:
        """Remember the episode, then replay ``replay`` episodes drawn from memory (experience replay)."""
        self.memory.append((list(states), float(reward)))
        for i in rng.integers(len(self.memory), size=self.replay):
            self.update(*self.memory[int(i)])


class MetaQNN(Strategy):
    """Q-learning over the layers of a ``ChainSpace``; ``schedule`` is a list of (epsilon, number of models).

    Without a ``schedule``, Baker et al.'s is scaled to ``models`` models: the first 56 % explore at random,
    the rest exploit more and more. ``models`` left at None is filled by ``search`` with its budget (``plan``);
    a budget in seconds leaves it None unless it was planned for a count of evaluations (``Budget.planned``),
    and then the paper's own counts apply.
    """

    name = "qlearning"
    parallel = 1

    def __init__(self, space, seed: int = 0, schedule=None, models: int | None = None, alpha: float = 0.01,
                 gamma: float = 1.0, replay: int = 100):
        super().__init__(space, seed)
        if not all(hasattr(space, a) for a in ("max_layers", "kernels", "filters", "pools")):
            raise NASInputError(f"MetaQNN builds chains of layers; it needs the chain space, "
                                f"not {space.name!r}")
        if schedule is not None:
            schedule = tuple((float(e), int(n)) for e, n in schedule)
            if not schedule or not all(0 <= e <= 1 and n > 0 for e, n in schedule):
                raise NASInputError(f"schedule must be a list of (epsilon in [0, 1], number of models > 0), "
                                    f"got {schedule!r}")
        if models is not None and (not isinstance(models, (int, np.integer)) or isinstance(models, bool)
                                   or models < 1):
            raise NASInputError(f"models (the number of models the schedule spans) must be a whole number of "
                                f"at least 1, got {models!r}")
        self.schedule, self.models = schedule, None if models is None else int(models)
        self.asked = 0  # models proposed so far, repeats included
        self.distinct: set = set()  # the distinct models proposed: where the search is in the schedule
        self.layers = [(k, f, p) for k in space.kernels for f in space.filters for p in space.pools]
        self.agent = QLearning(self._next_states, alpha=alpha, gamma=gamma, replay=replay)
        self.start = (0, None, None, None)

    def _next_states(self, state):
        """From a layer at depth d: any layer at depth d+1, or stop (not before the space's ``min_layers``)."""
        depth = state[0]
        nxt = [(depth + 1, *layer) for layer in self.layers] if depth < self.space.max_layers else []
        return nxt + ([TERMINAL] if depth >= getattr(self.space, "min_layers", 1) else [])

    def plan(self, evaluations: int) -> None:
        """Span the schedule over the ``evaluations`` the search will make (unless ``models`` was given)."""
        if self.models is None:
            self.models = int(evaluations)

    def epsilon(self, model: int | None = None) -> float:
        """The exploration rate for the ``model``-th unique model (from 0); by default the next new one."""
        model = len(self.distinct) if model is None else model
        if self.schedule is not None:
            return epsilon_at(model, self.schedule)
        return epsilon_at(model, BAKER_SCHEDULE, total=self.models)

    def ask(self):
        states = self.agent.rollout(self.start, self.epsilon(), self.rng)
        self.asked += 1
        arch = plain_chain(s[1:] for s in states[1:-1])
        self.distinct.add(self.space.key(arch))
        return arch

    def tell(self, arch, result) -> None:
        """Learn from the network's layers and its accuracy (skip connections, if any, are not seen)."""
        accuracy = max(result.curve) if result.curve else result.valid_acc
        if accuracy != accuracy:  # nan: nothing to learn
            return
        states = [self.start] + [(i + 1, layer.kernel, layer.filters, layer.pool)
                                 for i, layer in enumerate(arch)]
        self.agent.learn(states + [TERMINAL], float(accuracy) / 100.0, self.rng)
