"""REINFORCE with an LSTM controller (Zoph & Le, ICLR 2017), and NAS-Bench-201's table policy.

The controller writes an architecture one decision at a time, asking the space what comes next
(``space.next_decision(tokens)``), so the same controller searches the chain space of chapter 1 and the
NAS-Bench-201 cell of chapter 3. At every step one LSTMCell reads the embedding of the previous token, and

- a ``choice`` decision is a softmax over the choices, through a linear head shared by the decision's group
  (every "kernel" decision uses the kernel head, every NAS-Bench-201 edge the op head);
- an ``anchor`` decision (may layer i read layer j?) is Zoph & Le's attention between the two layers'
  controller states: P(yes) = sigmoid(v^T tanh(W_prev h_j + W_curr h_i)).

After each evaluation the controller takes one policy-gradient step (Williams 1992):

    loss = -(reward - baseline) * log p(arch)

Zoph & Le's reward (§4.1, "the maximum validation accuracy of the last 5 epochs cubed"): the best validation
accuracy over the last five epochs of the child's training curve, as a fraction, cubed, so that a point of
accuracy near the top counts more than one near the bottom. Without a curve (an evaluator that reports only a
final number) the final validation accuracy stands in. The baseline is an exponential moving average of past
rewards, which lowers the variance without biasing the gradient. Adam takes the step.

Options that are not Zoph & Le's, off unless asked for:

- ``entropy_weight``: ENAS' entropy bonus (Pham et al. 2018, 1e-4), which keeps the policy from collapsing too
  early. As in ENAS' code it is added to the reward (weight x the entropy of the proposal's decisions, with no
  gradient through it), so the baseline tracks it too. ENAS (``oneshot.supernet``) uses this class with
  ``reward="accuracy"`` (its reward is the child's accuracy on one validation minibatch, not cubed) and
  ``entropy_weight=1e-4``.
- ``betas``, ``eps``, ``baseline_start``, ``aggregate``: ENAS' controller optimiser and baseline (its code:
  Adam with beta1 = 0 and eps = 1e-3; a baseline that starts at 0 and decays by 0.99; each step averages the
  gradients of ``controller_num_aggregate`` = 10 sampled children). By default Adam's own betas and eps, a
  baseline that starts at the first reward, and one step per evaluation. ENAS' loss reads the baseline after
  its update, which scales the advantage by its decay (0.99); here it reads it before.
- ``tanh_constant``: ENAS' bounded logits (its code, ``controller_tanh_constant``): every logit becomes
  ``tanh_constant * tanh(logit)``, so no choice's probability can fall below a floor and every operation keeps
  being sampled. ENAS' micro search bounds the operations' logits by 1.10 / 2.5 (``controller_op_tanh_reduce``)
  and trains the controller with Adam at 0.0035; ``oneshot.supernet`` passes both.

and one that is theirs, off by default because a chapter-sized search is too short for it:

- ``depth_schedule=(start, step, every)``: Zoph & Le grow the child networks during the search ("starting at
  6 layers", 2 more "every 1,600 samples": ``(6, 2, 1600)``). The depth is then the schedule's, not a
  decision of the policy: it is fixed for each proposal and takes no part in log p(arch). It needs the chain
  space, whose first decision is the depth; by default the controller chooses the depth itself.

Where this differs from the paper: one LSTM layer of 64 units (theirs: two of 35), weights uniform in
[-0.1, 0.1] (theirs: [-0.08, 0.08]), and a learning rate of 0.01 (theirs: 6e-4), because here the controller
sees tens of architectures, not the 12,800 of the paper; one worker, where they ran 800 GPUs in parallel.

NAS-Bench-201's REINFORCE baseline (Dong & Yang, ICLR 2020, AutoDL-Projects) is a different policy, which
:class:`NB201Reinforce` (``"reinforce-nb201"``) runs as its code does: a 6 x 5 table of logits (started at
1e-3 x randn), one independent softmax per edge, no LSTM (:class:`TablePolicy`); the reward is the validation
accuracy in percent (not cubed), the baseline a bias-corrected moving average (momentum 0.9) updated with the
current reward before the advantage is taken (:class:`DebiasedAverage`), Adam at the learning rate of its
documented command (0.5). Its scripts tell it one random training run of the cell, of NAS-Bench-201's
12-epoch schedule, at each look-up (``BenchmarkLookup(..., trial="random")`` draws one seed's run of the
package's table). On the NAS-Bench-201 space ``Reinforce`` is Zoph & Le's controller
with one decision per edge: the LSTM can make an edge's op depend on the ops chosen before it, the table cannot.
"""

from __future__ import annotations

import math
import zlib

import torch
import torch.nn as nn

from ..errors import NASInputError, check_choice, check_positive
from .base import Strategy

REWARDS = ("zoph-le", "accuracy", "percent")
POLICIES = ("lstm", "table")
BASELINES = ("ema", "debiased")


def init_generator(seed: int, key: str) -> torch.Generator:
    """The generator that starts the parameters named ``key`` of a policy seeded with ``seed``.

    A policy's heads (the LSTM's) and rows (the table's) are created when their decision first shows up, which
    may be in a proposal or in a ``prob`` asked before any: each key draws its start from a stream of its own, so
    a policy's starting weights, and the proposals of a seeded search, do not depend on which came first.
    """
    return torch.Generator().manual_seed(zlib.crc32(f"{int(seed)}:{key}".encode()))


def zoph_le_reward(result) -> float:
    """The maximum validation accuracy of the last 5 epochs, as a fraction of 1, cubed (Zoph & Le, §4.1).

    ``result.curve`` holds the validation accuracy per epoch; when it is empty (or holds no finite number)
    the final ``valid_acc`` stands in. A failed evaluation gives nan.
    """
    last = [float(v) for v in list(result.curve)[-5:] if math.isfinite(v)]
    accuracy = max(last) if last else float(result.valid_acc)
    return (accuracy / 100.0) ** 3


def policy_loss(log_prob, reward: float, baseline: float):
    """Zoph & Le's REINFORCE loss with a baseline (§3.2): -(R - b) * sum_t log p(a_t | a_<t).

    ``log_prob``: a tensor of the decisions' log-probabilities (or their sum). Minimising the loss raises the
    probability of an architecture whose reward beats the baseline and lowers it otherwise."""
    return -(reward - baseline) * log_prob.sum()


def decide(logits, out: list, step: int, generator: torch.Generator, tanh_constant: float | None = None):
    """One softmax decision of a policy: bound the logits (ENAS' ``tanh_constant``, a floor under every
    probability), draw the choice into ``out`` when ``out`` holds no token for ``step`` yet (sampling), and return
    (log p of the token at ``step``, the entropy of the decision), both carrying gradients."""
    if tanh_constant is not None:
        logits = tanh_constant * torch.tanh(logits)
    log_p = torch.log_softmax(logits, dim=-1)
    if len(out) == step:
        out.append(int(torch.multinomial(log_p.detach().exp(), 1, generator=generator)))
    return log_p[out[step]], -(log_p.exp() * log_p).sum()


class Controller(nn.Module):
    """An LSTM policy over any space with the token interface. Heads are created when a group first shows up,
    since a space's groups are only known by walking its decisions; each starts from its own stream
    (:func:`init_generator`), and ``generator`` draws the proposals only."""

    def __init__(self, hidden: int, generator: torch.Generator, init_range: float = 0.1,
                 tanh_constant: float | None = None, seed: int = 0):
        super().__init__()
        self.hidden, self.gen, self.init_range, self.seed = hidden, generator, init_range, seed
        self.tanh_constant = tanh_constant
        self.start = nn.Parameter(torch.zeros(1, hidden))  # the input of the first step
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.w_prev = nn.Linear(hidden, hidden, bias=False)  # anchor attention, Zoph & Le section 3.3
        self.w_curr = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)
        self.heads = nn.ModuleDict()  # group -> logits over the group's choices
        self.embeddings = nn.ModuleDict()  # group -> embedding of the token chosen there
        self.new_params = []  # created since the optimizer last looked
        self.reset(self.parameters(), "core")

    def reset(self, params, key: str) -> None:
        """Uniform in [-init_range, init_range], drawn from the stream of ``key`` (:func:`init_generator`)."""
        gen = init_generator(self.seed, key)
        with torch.no_grad():
            for p in params:
                p.uniform_(-self.init_range, self.init_range, generator=gen)

    def ensure(self, decision) -> None:
        """Create the head and embedding of ``decision``'s group the first time the group shows up."""
        group, n = decision.group, len(decision.choices)
        if group in self.embeddings:
            if self.embeddings[group].num_embeddings != n:
                raise NASInputError(f"decision group {group!r} has {n} choices here but "
                                    f"{self.embeddings[group].num_embeddings} before; a group has one head")
            return
        self.embeddings[group] = nn.Embedding(n, self.hidden)
        new = list(self.embeddings[group].parameters())
        if decision.kind == "choice":
            self.heads[group] = nn.Linear(self.hidden, n)
            new += list(self.heads[group].parameters())
        self.reset(new, f"group:{group}")
        self.new_params += new

    def run(self, space, tokens=None, depth: int | None = None):
        """Walk the space's decisions. Without ``tokens`` sample them; with ``tokens`` score them.

        With ``depth``, the "depth" decision is not the policy's (Zoph & Le's depth schedule): a sample takes
        ``depth``, and the depth token is read but adds nothing to the log-probability or the entropy.
        Returns (tokens, log-probability, entropy), the last two as tensors that carry gradients.
        """
        sampling = tokens is None
        out = [] if sampling else list(tokens)
        h = c = torch.zeros(1, self.hidden)
        x = self.start
        layer_state = {}  # the controller state after the last decision about each layer (for anchors)
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        step = 0
        while (decision := space.next_decision(out[:step])) is not None:
            if not sampling and step >= len(out):
                raise NASInputError(f"the token list {tokens} ends before the architecture is complete")
            self.ensure(decision)
            h, c = self.lstm(x, (h, c))
            if depth is not None and decision.group == "depth":  # the schedule's decision, not the policy's
                if sampling:
                    out.append(decision.choices.index(depth))
            else:
                if decision.kind == "anchor":  # softmax over (no: 0, yes: score) is the sigmoid of the score
                    h_j = layer_state.get(decision.source, torch.zeros_like(h))
                    score = self.v(torch.tanh(self.w_prev(h_j) + self.w_curr(h)))[0, 0]
                    logits = torch.stack([torch.zeros_like(score), score])
                else:
                    logits = self.heads[decision.group](h)[0]
                chosen, spread = decide(logits, out, step, self.gen, self.tanh_constant)
                log_prob, entropy = log_prob + chosen, entropy + spread
            layer_state[decision.target] = h
            x = self.embeddings[decision.group].weight[out[step]:out[step] + 1]
            step += 1
        if step != len(out):
            raise NASInputError(f"the token list {tokens} is longer than the architecture ({step} decisions)")
        return out, log_prob, entropy


class TablePolicy(nn.Module):
    """NAS-Bench-201's REINFORCE policy: one row of logits per decision, an independent softmax each.

    p(arch) = prod_t softmax(theta_t)[a_t]: no decision depends on another, unlike the LSTM's. A row is created
    the first time its decision shows up (6 rows of 5 on the NAS-Bench-201 cell, AutoDL's 6 x 5 table), started
    at ``init_std`` x a standard normal (AutoDL: 1e-3 x randn) drawn from the row's own stream
    (:func:`init_generator`); ``generator`` draws the proposals only. The same
    ``run`` as :class:`Controller`, so ``Reinforce`` samples, scores and trains either.
    """

    def __init__(self, generator: torch.Generator, init_std: float = 1e-3, tanh_constant: float | None = None,
                 seed: int = 0):
        super().__init__()
        self.gen, self.init_std, self.tanh_constant, self.seed = generator, init_std, tanh_constant, seed
        self.logits = nn.ParameterDict()  # "step" -> logits over that decision's choices
        self.new_params = []  # created since the optimizer last looked

    def ensure(self, step: int, decision) -> nn.Parameter:
        """The row of decision number ``step``, created the first time it shows up."""
        key, n = str(step), len(decision.choices)
        if key not in self.logits:
            start = torch.randn(n, generator=init_generator(self.seed, f"step:{step}"))
            self.logits[key] = nn.Parameter(self.init_std * start)
            self.new_params.append(self.logits[key])
        elif self.logits[key].numel() != n:
            raise NASInputError(f"decision {step} has {n} choices here but {self.logits[key].numel()} before; "
                                f"the table policy needs a space whose decisions keep their place")
        return self.logits[key]

    def run(self, space, tokens=None, depth: int | None = None):
        """As :meth:`Controller.run`: sample (no ``tokens``) or score ``tokens``; (tokens, log p, entropy)."""
        sampling = tokens is None
        out = [] if sampling else list(tokens)
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        step = 0
        while (decision := space.next_decision(out[:step])) is not None:
            if not sampling and step >= len(out):
                raise NASInputError(f"the token list {tokens} ends before the architecture is complete")
            logits = self.ensure(step, decision)  # under a depth schedule the depth's row exists but never trains
            if depth is not None and decision.group == "depth":  # the schedule's decision, not the policy's
                if sampling:
                    out.append(decision.choices.index(depth))
            else:
                chosen, spread = decide(logits, out, step, self.gen, self.tanh_constant)
                log_prob, entropy = log_prob + chosen, entropy + spread
            step += 1
        if step != len(out):
            raise NASInputError(f"the token list {tokens} is longer than the architecture ({step} decisions)")
        return out, log_prob, entropy


class Reinforce(Strategy):
    """Zoph & Le's controller trained by REINFORCE; ``prob(arch)``: how likely it is to propose ``arch``.

    ``reward``: "zoph-le" (max validation accuracy of the last 5 epochs, cubed) or "accuracy" (the validation
    accuracy as a fraction, ENAS'). ``entropy_weight``: ENAS' entropy bonus, 0 for Zoph & Le. ``tanh_constant``:
    ENAS' bound on the logits (``c * tanh(logit)``), None for Zoph & Le.
    ``depth_schedule``: (start, step, every) to grow the depth as Zoph & Le, None to let the policy choose it.
    ``policy``: "lstm" (Zoph & Le's controller) or "table" (:class:`TablePolicy`, NAS-Bench-201's). ``reward``
    "percent": the validation accuracy in percent (NAS-Bench-201's). ``baseline_mode``: "ema" (the moving average
    before this reward, started at the first) or "debiased" (:class:`DebiasedAverage`, NAS-Bench-201's).
    :class:`NB201Reinforce` sets the last three as NAS-Bench-201's code does.
    """

    name = "reinforce"
    parallel = 1

    def __init__(self, space, seed: int = 0, hidden: int = 64, lr: float = 0.01, baseline_decay: float = 0.9,
                 entropy_weight: float = 0.0, reward: str = "zoph-le", depth_schedule=None,
                 tanh_constant: float | None = None, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 baseline_start: float | None = None, aggregate: int = 1, policy: str = "lstm",
                 baseline_mode: str = "ema", init_std: float | None = None):
        super().__init__(space, seed)
        check_positive("hidden", hidden)
        check_positive("lr", lr)
        check_choice("reward", reward, REWARDS)
        check_choice("policy", policy, POLICIES)
        check_choice("baseline_mode", baseline_mode, BASELINES)
        if baseline_mode == "debiased" and baseline_start is not None:
            raise NASInputError("baseline_start sets where the 'ema' baseline starts; the 'debiased' average "
                                "starts from no reward at all: leave baseline_start=None")
        if baseline_mode == "debiased" and baseline_decay == 0:
            raise NASInputError("with baseline_decay=0 the 'debiased' baseline is the reward itself, every advantage "
                                "is 0 and the policy never learns: give a decay in (0, 1) (NAS-Bench-201: 0.9)")
        if init_std is not None and policy != "table":
            raise NASInputError("init_std is the scale of the table policy's starting logits; the LSTM controller "
                                "starts uniform in [-0.1, 0.1]: leave init_std=None or pass policy='table'")
        init_std = 1e-3 if init_std is None else init_std
        if isinstance(init_std, bool) or not isinstance(init_std, (int, float)) or not 0 <= init_std < math.inf:
            raise NASInputError(f"init_std must be a number of at least 0 (NAS-Bench-201's table: 1e-3), got "
                                f"{init_std!r}")
        if not 0 <= baseline_decay < 1:
            raise NASInputError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        if not isinstance(entropy_weight, (int, float)) or not 0 <= entropy_weight < math.inf:
            raise NASInputError(f"entropy_weight must be a number of at least 0 (ENAS uses 1e-4), got "
                                f"{entropy_weight!r}")
        if depth_schedule is not None:
            first = space.next_decision([])
            if first is None or first.group != "depth":
                raise NASInputError(f"depth_schedule needs a space whose first decision is the depth (the chain "
                                    f"space), not {space.name!r}")
            if (not isinstance(depth_schedule, (tuple, list)) or len(depth_schedule) != 3
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in depth_schedule)
                    or depth_schedule[0] not in first.choices):
                raise NASInputError(f"depth_schedule is (first depth, layers added, every so many proposals), "
                                    f"whole numbers of at least 1 with a first depth from {min(first.choices)} to "
                                    f"{max(first.choices)} (Zoph & Le: (6, 2, 1600)), got {depth_schedule!r}")
            depth_schedule = (*map(int, depth_schedule), max(first.choices))
        self.gen = torch.Generator().manual_seed(self.seed)  # same seed, same proposals (weights: init_generator)
        if tanh_constant is not None and (isinstance(tanh_constant, bool) or not isinstance(tanh_constant, (int, float))
                                          or not 0 < tanh_constant < math.inf):
            raise NASInputError(f"tanh_constant must be a number above 0 or None (ENAS' micro search: 1.1 / 2.5 for "
                                f"its operations), got {tanh_constant!r}")
        if policy == "lstm":
            self.controller = Controller(int(hidden), self.gen, tanh_constant=tanh_constant, seed=self.seed)
        else:
            self.controller = TablePolicy(self.gen, float(init_std), tanh_constant=tanh_constant, seed=self.seed)
        self.policy, self.baseline_mode = policy, baseline_mode
        check_positive("aggregate", aggregate)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)) or \
                not 0 < eps < math.inf:
            raise NASInputError(f"betas must be two numbers in [0, 1) and eps above 0 (Adam's; ENAS: (0.0, 0.999) "
                                f"and 1e-3), got betas={betas!r}, eps={eps!r}")
        params = list(self.controller.parameters())  # the table's rows come with their decisions: Adam waits
        self._adam = dict(lr=lr, betas=tuple(betas), eps=eps)
        self.optimizer = torch.optim.Adam(params, **self._adam) if params else None
        self.baseline_decay, self.entropy_weight = baseline_decay, float(entropy_weight)
        self.reward, self.depth_schedule = reward, depth_schedule
        self.baseline = None if baseline_start is None else float(baseline_start)
        self._average = DebiasedAverage(baseline_decay)  # the "debiased" baseline's state
        self.aggregate, self._pending = int(aggregate), 0  # evaluations per step; those told since the last
        self.asked = 0  # proposals so far (the depth schedule counts them)
        self._last = None  # (tokens, log_prob, entropy) of the latest proposal, graph attached

    def depth(self) -> int | None:
        """The depth the schedule sets for the next proposal (None: the policy chooses it)."""
        if self.depth_schedule is None:
            return None
        start, step, every, deepest = self.depth_schedule
        return min(start + step * (self.asked // every), deepest)

    def _run(self, tokens=None):
        out = self.controller.run(self.space, tokens, depth=self.depth())
        if self.controller.new_params:  # a group met for the first time: let Adam train its head too
            if self.optimizer is None:
                self.optimizer = torch.optim.Adam(self.controller.new_params, **self._adam)
            else:
                self.optimizer.add_param_group({"params": self.controller.new_params})
            self.controller.new_params = []
        if self.optimizer is None:  # the table's rows come with the space's decisions: a space without any
            raise NASInputError(f"the space {self.space.name!r} asks for no decision: there is no policy to train")
        return out

    def ask(self):
        # Sampled with gradients on: when the result of this very proposal is told next, the policy step
        # reuses this pass instead of running the controller a second time (half the forward work).
        tokens, log_prob, entropy = self._run()
        self._last = (tuple(tokens), log_prob, entropy)
        self.asked += 1
        return self.space.from_tokens(tokens)

    def log_prob(self, arch) -> float:
        """log P(arch) under the current controller (given its depth, when a depth schedule sets it)."""
        with torch.no_grad():
            return float(self._run(self.space.to_tokens(arch))[1])

    def prob(self, arch) -> float:
        return math.exp(self.log_prob(arch))

    def tell(self, arch, result) -> None:
        """One REINFORCE step on ``arch`` with the reward of ``result`` (see ``reward``)."""
        if self.reward == "zoph-le":
            reward = zoph_le_reward(result)
        elif self.reward == "percent":
            reward = float(result.valid_acc)
        else:
            reward = float(result.valid_acc) / 100.0
        if reward != reward:  # a failed evaluation (nan) teaches nothing
            return
        tokens = tuple(self.space.to_tokens(arch))
        last, self._last = self._last, None
        if last is not None and last[0] == tokens:  # the pass that proposed it: same parameters, same graph
            _, log_prob, entropy = last
        else:
            _, log_prob, entropy = self._run(tokens)
        if self.entropy_weight:  # ENAS' bonus: in the reward, no gradient through it
            reward += self.entropy_weight * float(entropy.detach())
        self.last_reward = reward  # what this step was told, the bonus included
        if self.baseline_mode == "debiased":  # NAS-Bench-201's: this reward is in the baseline it is compared with
            self._average.update(reward)
            baseline = self.baseline = self._average.value()
        else:
            baseline = reward if self.baseline is None else self.baseline  # the first reward starts the average
            self.baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * reward
        if self._pending == 0:
            self.optimizer.zero_grad()
        (policy_loss(log_prob, reward, baseline) / self.aggregate).backward()  # the mean over ``aggregate``
        self._pending += 1
        if self._pending == self.aggregate:
            self.optimizer.step()
            self._pending = 0


class DebiasedAverage:
    """NAS-Bench-201's baseline (AutoDL's ``ExponentialMovingAverage``): an exponential moving average with
    ``momentum`` whose numerator and denominator both start at 0, so that its value is a weighted mean of the
    rewards seen (the first alone after one update), not pulled towards 0 as an average started at 0 is."""

    def __init__(self, momentum: float):
        self.momentum, self.numerator, self.denominator = float(momentum), 0.0, 0.0

    def update(self, value: float) -> None:
        self.numerator = self.momentum * self.numerator + (1 - self.momentum) * value
        self.denominator = self.momentum * self.denominator + (1 - self.momentum)

    def value(self) -> float:
        if self.denominator == 0:
            raise NASInputError("the average has seen no value yet")
        return self.numerator / self.denominator


class NB201Reinforce(Reinforce):
    """NAS-Bench-201's REINFORCE baseline as its code runs it (Dong & Yang, ICLR 2020; AutoDL-Projects,
    ``exps/NAS-Bench-201-algos/reinforce.py``): a table of logits, one independent softmax per decision
    (:class:`TablePolicy`, started at 1e-3 x randn), the reward the validation accuracy in percent, the baseline a
    debiased moving average with momentum 0.9 (:class:`DebiasedAverage`) that takes the reward in before the
    advantage is formed, one step of Adam (PyTorch's default betas and eps, as AutoDL's) per evaluation, no entropy
    bonus. The table's rows, and Adam with them, are created the first time a decision is reached (an ``ask`` or
    a ``prob``), from the strategy's generator, as the LSTM's heads are.

    ``lr``: 0.5, the rate of the command NAS-Bench-201's documentation gives for CIFAR-10
    (``scripts-search/NAS-Bench-201-algos/REINFORCE.sh cifar10 0.5 -1``); AutoDL-Projects also keeps a grid of
    rates for it (``hps/GRID-RL.sh``: 0.01, 0.02, 0.1, 0.2, 0.5, stored calling ``REINFORCE.sh`` with an older,
    two-argument interface), and NATS-Bench's version of the script is documented with 0.01.

    What the search around it does differently from AutoDL's script: the script's look-up
    (``R_EA.train_and_eval``) answers one random training run of NAS-Bench-201's 12-epoch schedule and charges
    that run's time, and the chosen cell is reported at 200 epochs; with the package's table a look-up answers
    what ``BenchmarkLookup`` is asked for (the mean over seeds, the mean over the search half of them with
    ``trial="held-out"``, as chapter 3's comparison asks, or one seed's run with ``trial="random"``) from the table's
    one recipe. The script keeps the cell of the highest reward in its trace, the look-up that overdraws
    the budget included, and charges the policy step's own wall time too; ``search`` stops before a look-up it
    cannot pay for and charges only the look-ups.
    """

    name = "reinforce-nb201"

    def __init__(self, space, seed: int = 0, lr: float = 0.5, baseline_decay: float = 0.9, init_std: float = 1e-3):
        super().__init__(space, seed, lr=lr, baseline_decay=baseline_decay, policy="table", reward="percent",
                         baseline_mode="debiased", init_std=init_std)
