"""BlockQNN: Q-learning over the layers of a block (Zhong, Yan, Wu, Shao & Liu, CVPR 2018, "Practical
Block-wise Neural Network Architecture Generation").

MetaQNN's agent (``qlearning.QLearning``) builds a whole network layer by layer; BlockQNN builds one block, a
small graph of layers, and stacks it into a fixed skeleton, so that what is learnt carries over to deeper
networks and to other data. Here the block is the NAS-Bench-201 cell inside its skeleton. A state is the
last layer added (the paper's Network Structure Code: index, type and predecessors; in NB201 the
predecessors of the k-th layer are fixed by its edge, so a state is (edge, op)); an action is the op of the
next edge, and after the sixth edge the block is done.

As in the paper (Sections 3.3 and 4.1):

- tabular Q-learning with alpha = 0.01 and gamma = 1, with experience replay;
- reward shaping (Section 3.3): a block is T = 7 steps here (one per edge, then the end), and each of the
  six before the last earns r_T / T while the last earns r_T, so that the early decisions get a signal from
  the first update on (``shaped=False``: MetaQNN's reward at the end only); r_T is the block's validation
  accuracy, scaled to 0..1;
- epsilon-greedy exploration on the schedule of Table 2, in iterations of 64 blocks: 95 iterations at
  epsilon = 1, 7 each at 0.9 to 0.7, 10 each at 0.6 to 0.2, 12 at 0.1 (178 in all), scaled to the
  search's budget as MetaQNN's (``qlearning.epsilon_at``), each epsilon keeping its share.

The paper trains 64 blocks at once on 32 GPUs and learns from a batch; here blocks are proposed and learnt
from one at a time (``parallel = 1``), the schedule counting blocks instead of iterations. Its variant with
a reward penalised by FLOPs and density for early-stopped training (Section 3.4) is left out: the benchmark has
no density measure, and its accuracies come from its own short recipe, not from an early stop of a longer one.
"""

from __future__ import annotations

import numpy as np

from ..errors import NASInputError
from ..ops import NB201_OPS
from ..spaces.cell import EDGES
from .base import Strategy
from .qlearning import TERMINAL, QLearning, epsilon_at

# Zhong et al.'s schedule (Table 2): (epsilon, number of iterations of 64 blocks)
BLOCKQNN_SCHEDULE = ((1.0, 95), (0.9, 7), (0.8, 7), (0.7, 7), (0.6, 10), (0.5, 10), (0.4, 10), (0.3, 10),
                     (0.2, 10), (0.1, 12))


class ShapedQLearning(QLearning):
    """MetaQNN's agent with BlockQNN's shaped reward: of a trajectory's T steps (T = len(states) - 1, the
    move to the end included), each before the last earns r_T / T and the last earns r_T."""

    def update(self, states: list, reward: float) -> None:
        steps = len(states) - 1
        for t in reversed(range(steps)):
            s, a = states[t], states[t + 1]
            if a == TERMINAL:
                target = reward
            else:
                target = reward / steps + self.gamma * max(self.value(a, b) for b in self.next_states(a))
            self.q[(s, a)] = (1 - self.alpha) * self.value(s, a) + self.alpha * target


class BlockQNN(Strategy):
    """Q-learning over the 6 edges of the NAS-Bench-201 cell; ``schedule`` is a list of (epsilon, number of
    blocks), by default Table 2's scaled to ``models`` blocks (filled by ``search`` with its budget)."""

    name = "blockqnn"
    parallel = 1

    def __init__(self, space, seed: int = 0, schedule=None, models: int | None = None, alpha: float = 0.01,
                 gamma: float = 1.0, replay: int = 100, shaped: bool = True):
        super().__init__(space, seed)
        if getattr(space, "name", None) != "nb201":
            raise NASInputError(f"BlockQNN builds the NAS-Bench-201 cell edge by edge; it needs the nb201 space, "
                                f"not {getattr(space, 'name', space)!r}")
        if schedule is not None:
            schedule = tuple((float(e), int(n)) for e, n in schedule)
            if not schedule or not all(0 <= e <= 1 and n > 0 for e, n in schedule):
                raise NASInputError(f"schedule must be a list of (epsilon in [0, 1], number of blocks > 0), "
                                    f"got {schedule!r}")
        if models is not None and (not isinstance(models, (int, np.integer)) or isinstance(models, bool)
                                   or models < 1):
            raise NASInputError(f"models (the number of blocks the schedule spans) must be a whole number of "
                                f"at least 1, got {models!r}")
        self.schedule, self.models, self.asked = schedule, None if models is None else int(models), 0
        self.agent = (ShapedQLearning if shaped else QLearning)(self._next_states, alpha=alpha, gamma=gamma,
                                                                replay=replay)
        self.start = (-1, None)

    def _next_states(self, state):
        """From the op of edge e: any op on edge e + 1, or the end after the last edge."""
        edge = state[0] + 1
        return [(edge, op) for op in NB201_OPS] if edge < len(EDGES) else [TERMINAL]

    def plan(self, evaluations: int) -> None:
        """Span the schedule over the ``evaluations`` the search will make (unless ``models`` was given)."""
        if self.models is None:
            self.models = int(evaluations)

    def epsilon(self, model: int | None = None) -> float:
        """The exploration rate for the ``model``-th block (from 0); by default the next one. Without a count
        (a budget in seconds not planned for one) Table 2 counts blocks as they come: 95 at epsilon = 1, and so on."""
        model = self.asked if model is None else model
        if self.schedule is not None:
            return epsilon_at(model, self.schedule)
        return epsilon_at(model, BLOCKQNN_SCHEDULE, total=self.models)

    def ask(self):
        states = self.agent.rollout(self.start, self.epsilon(), self.rng)
        self.asked += 1
        return tuple(op for _, op in states[1:-1])

    def tell(self, arch, result) -> None:
        accuracy = result.valid_acc
        if accuracy != accuracy:  # nan: nothing to learn
            return
        states = [self.start] + list(enumerate(arch)) + [TERMINAL]
        self.agent.learn(states, float(accuracy) / 100.0, self.rng)

    def greedy_block(self):
        """The block the agent would build now without exploring (ties broken by the first op)."""
        states = [self.start]
        while states[-1] != TERMINAL:
            states.append(self.agent.greedy(states[-1]))
        return tuple(op for _, op in states[1:-1])
