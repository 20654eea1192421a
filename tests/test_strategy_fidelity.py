"""Each strategy as its paper defines it: REINFORCE's reward and depth schedule (Zoph & Le 2017), MetaQNN's
epsilon schedule over the search's own budget (Baker et al. 2017), BANANAS' path encoding and surrogate
(White et al. 2021)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import Evaluator, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.spaces.chain import ChainSpace
from tutorial_nas.strategies.qlearning import BAKER_SCHEDULE, MetaQNN, epsilon_at
from tutorial_nas.strategies.reinforce import Reinforce

torch.set_num_threads(1)


def small_chain(max_layers=2):
    return ChainSpace(max_layers=max_layers, filters=(4, 8), kernels=(1, 3), pools=("none", "max_pool_2x2"))


# ------------------------------------------------------------------------------------ REINFORCE (Zoph & Le)

def test_reinforce_reward_is_the_best_of_the_last_five_epochs_cubed():
    controller = Reinforce(small_chain(), seed=0)
    arch = controller.ask()
    # the final accuracy (50) is not the reward; neither is the best epoch (95), which is not among the last 5
    controller.tell(arch, Result(valid_acc=50.0, curve=[95.0, 20.0, 90.0, 80.0, 70.0, 60.0, 50.0]))
    assert controller.baseline == pytest.approx(0.9 ** 3)  # the first reward is the first baseline
    controller.tell(arch, Result(valid_acc=40.0, curve=[30.0, 40.0]))  # a short curve: all of it
    assert controller.baseline == pytest.approx(0.9 * 0.9 ** 3 + 0.1 * 0.4 ** 3)
    controller.tell(arch, Result(valid_acc=60.0))  # no curve (a final number only): that number, cubed
    assert controller.baseline == pytest.approx(0.9 * (0.9 * 0.9 ** 3 + 0.1 * 0.4 ** 3) + 0.1 * 0.6 ** 3)


def test_zoph_le_controller_has_no_entropy_bonus_and_enas_keeps_its_own(monkeypatch):
    assert Reinforce(small_chain()).entropy_weight == 0.0 and Reinforce(small_chain()).reward == "zoph-le"
    from tutorial_nas.data import load_dataset
    from tutorial_nas.oneshot import supernet

    monkeypatch.setattr(supernet, "train_supernet", lambda *a, **k: {"loss": [], "samples": [], "seconds": 0.0})
    _, enas, _ = supernet.train_weight_sharing("enas", load_dataset("digits"), epochs=1, progress=False)
    assert enas.reward == "accuracy" and enas.entropy_weight == 1e-4
    arch = enas.ask()
    entropy = float(enas._last[2].detach())
    enas.tell(arch, Result(valid_acc=50.0, curve=[90.0]))  # ENAS' reward: the (minibatch) accuracy, not cubed
    # ENAS' code: the baseline starts at 0 and decays by 0.99; the entropy bonus is part of the reward
    assert enas.baseline == pytest.approx(0.01 * (0.5 + 1e-4 * entropy))
    group = enas.optimizer.param_groups[0]
    assert group["betas"] == (0.0, 0.999) and group["eps"] == 1e-3 and enas.aggregate == 10


def test_the_entropy_bonus_is_in_the_reward_without_a_gradient_and_steps_average_aggregate_children():
    # ENAS (micro_controller.py): reward += entropy_weight * stop_gradient(entropy); the baseline tracks it
    controller = Reinforce(NB201Space(), seed=0, reward="accuracy", entropy_weight=0.5, baseline_start=0.0,
                           baseline_decay=0.5)
    arch = controller.ask()
    entropy = float(controller._last[2].detach())
    controller.tell(arch, Result(valid_acc=40.0))
    assert controller.baseline == pytest.approx(0.5 * (0.4 + 0.5 * entropy))
    # with an advantage of zero the step leaves the policy alone: the bonus adds no gradient of its own
    still = Reinforce(NB201Space(), seed=0, reward="accuracy", entropy_weight=0.5)
    child = still.ask()
    before = [p.detach().clone() for p in still.controller.parameters()]
    still.tell(child, Result(valid_acc=40.0))  # the first reward starts the baseline: advantage 0
    assert all(torch.equal(a, b) for a, b in zip(before, still.controller.parameters()))
    # aggregate = 3: one Adam step per three evaluations, on the mean of their gradients
    agg = Reinforce(NB201Space(), seed=0, reward="accuracy", aggregate=3, baseline_start=0.0)
    params = lambda: [p.detach().clone() for p in agg.controller.parameters()]  # noqa: E731
    for k in range(3):
        before = params()
        agg.tell(agg.ask(), Result(valid_acc=30.0 + 20 * k))
        moved = any(not torch.equal(a, b) for a, b in zip(before, params()))
        assert moved == (k == 2)
    assert {int(state["step"]) for state in agg.optimizer.state.values()} == {1}


@pytest.mark.parametrize("seed", [0, 1])
def test_controller_converges_on_graded_cubed_rewards(seed):
    space = small_chain()
    best = space.parse("conv3x3-8-max_pool_2x2<in")

    def accuracy(arch):  # every right choice of the first layer is worth 15 points; a second layer costs 20
        layer = arch[0]
        return 40 + 15 * (layer.kernel == 3) + 15 * (layer.filters == 8) + 15 * (layer.pool != "none") \
            - 20 * (len(arch) - 1)

    controller = Reinforce(space, seed=seed)
    before = controller.prob(best)
    for _ in range(100):
        arch = controller.ask()
        value = accuracy(arch)
        controller.tell(arch, Result(valid_acc=value - 3, curve=[value - 30, value, value - 3]))
        if controller.prob(best) > 0.9:
            break
    assert before < 0.1 and controller.prob(best) > 0.9


def all_tokens(space, tokens):
    decision = space.next_decision(list(tokens))
    if decision is None:
        yield list(tokens)
        return
    for t in range(len(decision.choices)):
        yield from all_tokens(space, tokens + (t,))


def test_depth_schedule_grows_the_children_and_leaves_the_depth_out_of_the_policy():
    space = small_chain(max_layers=3)
    controller = Reinforce(space, seed=0, depth_schedule=(1, 1, 4))
    depths = []
    for _ in range(14):
        arch = controller.ask()
        depths.append(len(arch))
        controller.tell(arch, Result(valid_acc=50.0))
    assert depths == [1] * 4 + [2] * 4 + [3] * 6  # one more layer every 4 proposals, up to the space's 3
    # the depth is not the policy's: the probabilities of all chains of one depth sum to one
    total = sum(controller.prob(space.from_tokens(t)) for t in all_tokens(space, (1,)))
    assert total == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(NASInputError, match="depth_schedule"):
        Reinforce(NB201Space(), depth_schedule=(6, 2, 1600))
    with pytest.raises(NASInputError, match="depth_schedule"):
        Reinforce(space, depth_schedule=(6, 2, 1600))  # deeper than the space


# ------------------------------------------------------------------------------------------ MetaQNN (Baker)

class LayerCount(Evaluator):
    """No training: the accuracy of a chain is a known function of its layers."""

    name = "synthetic"

    def evaluate(self, arch):
        return Result(valid_acc=50.0 + 10 * sum(layer.kernel == 3 for layer in arch), cost_s=1.0)


def epsilons_of_a_search(budget, **search_options):
    """The epsilon MetaQNN used for each model of a search of ``budget`` evaluations, and how many distinct
    models it had proposed before each."""
    strategy = MetaQNN(small_chain(), seed=0, replay=0)
    used, before, rollout = [], [], strategy.agent.rollout

    def spy(start, epsilon, rng):
        used.append(epsilon)
        before.append(len(strategy.distinct))
        return rollout(start, epsilon, rng)
    strategy.agent.rollout = spy
    history = search(strategy.space, strategy, LayerCount(), budget, progress=False, **search_options)
    return used, history, before


@pytest.mark.parametrize("budget", [20, 2000])
def test_metaqnn_schedule_spans_the_search_budget_in_the_papers_proportions(budget):
    # Table 2 scaled to the budget: 1500 models at 1.0, 100 at 0.9..0.7, 150 at 0.6..0.1 of 2700
    eps = [epsilon_at(m, BAKER_SCHEDULE, total=budget) for m in range(budget)]
    counts, length = Counter(eps), sum(n for _, n in BAKER_SCHEDULE)
    assert eps[0] == 1.0 and eps[-1] == 0.1 and eps == sorted(eps, reverse=True)
    for epsilon, n in BAKER_SCHEDULE:
        assert abs(counts[epsilon] - budget * n / length) <= 1, (epsilon, counts[epsilon])
    # a search of that budget walks it one step per new model (a repeat leaves it where it is)
    used, history, before = epsilons_of_a_search(budget)
    assert len(used) == budget and used == [eps[k] for k in before]
    assert before[-1] + 1 >= history["arch"].nunique() >= before[-1]


def test_metaqnn_resumed_with_a_larger_budget_replays_its_own_schedule(tmp_path):
    ck = tmp_path / "q.json"
    first, h1, _ = epsilons_of_a_search(10, checkpoint=ck)
    again, h2, before = epsilons_of_a_search(20, checkpoint=ck, resume=True)
    assert list(h2["arch"][:10]) == list(h1["arch"]) and len(h2) == 20
    # the plan of the run it continues: its schedule spans 10 models, whatever the new budget
    assert again[:10] == first and again == [epsilon_at(k, BAKER_SCHEDULE, total=10) for k in before]


def test_metaqnn_without_a_count_uses_the_papers_counts_and_an_explicit_count_wins():
    strategy = MetaQNN(small_chain())
    assert strategy.epsilon(1499) == 1.0 and strategy.epsilon(1500) == 0.9 and strategy.epsilon(2699) == 0.1
    strategy.plan(100)
    assert strategy.models == 100 and strategy.epsilon(99) == 0.1
    explicit = MetaQNN(small_chain(), models=50)
    explicit.plan(100)
    assert explicit.models == 50
    with pytest.raises(NASInputError, match="models"):
        MetaQNN(small_chain(), models=0)


def test_metaqnn_schedule_counts_unique_models():
    # Baker et al. (Sec. 4.3, Table 2) count the unique models trained: a repeat is looked up and the next
    # proposal keeps the same epsilon. A space of one network repeats it every time, so the schedule never moves
    space = ChainSpace(max_layers=1, filters=(4,), kernels=(3,), pools=("none",))
    strategy = MetaQNN(space, seed=0, models=10, replay=0)
    used, rollout = [], strategy.agent.rollout
    strategy.agent.rollout = lambda start, epsilon, rng: used.append(epsilon) or rollout(start, epsilon, rng)
    for _ in range(10):
        arch = strategy.ask()
        strategy.tell(arch, Result(valid_acc=60.0))
    assert strategy.asked == 10 and len(strategy.distinct) == 1 and set(used) == {1.0}
    # with distinct models it walks the schedule, one step per new model
    used.clear()
    big = MetaQNN(small_chain(max_layers=4), seed=0, models=10, replay=0)
    big_rollout = big.agent.rollout  # its own agent: the first one's space holds a single network
    big.agent.rollout = lambda start, epsilon, rng: used.append(epsilon) or big_rollout(start, epsilon, rng)
    seen = []
    for _ in range(10):
        seen.append(len(big.distinct))
        big.tell(big.ask(), Result(valid_acc=60.0))
    assert len(big.distinct) > 5 and len(set(used)) > 2  # it did propose new models and walk the schedule
    assert used == [epsilon_at(k, BAKER_SCHEDULE, total=10) for k in seen]


@pytest.mark.parametrize("min_layers", [0, 3])
def test_metaqnn_may_stop_from_the_spaces_min_layers_on(min_layers):
    # Baker et al. let the agent terminate from any state; the chain space sets the least depth it holds
    space = ChainSpace(max_layers=4, filters=(4,), kernels=(3,), pools=("none",), min_layers=min_layers)
    strategy = MetaQNN(space, seed=0, schedule=[(1.0, 1000)], replay=0)
    depths = {len(strategy.ask()) for _ in range(300)}
    assert min(depths) == min_layers and max(depths) == 4
