"""NAS-Bench-201's REINFORCE as its code runs it (AutoDL-Projects, exps/NAS-Bench-201-algos/reinforce.py): a table
of independent softmaxes, the reward in percent, a debiased moving-average baseline that takes the reward in
before the advantage, Adam at the documented learning rate."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import Result
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.spaces.chain import ChainSpace
from tutorial_nas.strategies import make_strategy
from tutorial_nas.strategies import reinforce as R

torch.set_num_threads(1)


def test_the_registry_builds_nas_bench_201s_reinforce_with_its_documented_settings():
    s = make_strategy("reinforce-nb201", NB201Space(), seed=3)
    assert isinstance(s, R.NB201Reinforce) and s.name == "reinforce-nb201"
    assert (s.policy, s.reward, s.baseline_mode, s.entropy_weight) == ("table", "percent", "debiased", 0.0)
    s.ask()  # the table's rows come with the decisions; Adam is built with them
    group = s.optimizer.param_groups[0]
    assert group["lr"] == 0.5 and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8


def test_the_table_has_one_row_per_edge_started_at_a_thousandth_of_a_normal():
    s = R.NB201Reinforce(NB201Space(), seed=0)
    s.ask()
    rows = [s.controller.logits[str(i)] for i in range(6)]
    assert len(s.controller.logits) == 6 and all(r.shape == (5,) for r in rows)
    values = torch.cat([r.detach() for r in rows])
    assert 0 < values.abs().max() < 5e-3 and 3e-4 < values.std() < 3e-3  # 1e-3 x randn, 30 draws


def test_the_tables_probability_is_a_product_of_one_softmax_per_edge():
    space = NB201Space()
    s = R.NB201Reinforce(space, seed=0)
    with torch.no_grad():  # a table far from uniform, so that a dependence between edges would show
        s.ask()
        for i in range(6):
            s.controller.logits[str(i)].copy_(torch.randn(5, generator=torch.Generator().manual_seed(i)))
    softmax = [torch.softmax(s.controller.logits[str(i)].detach(), 0) for i in range(6)]
    for tokens in ([0, 1, 2, 3, 4, 0], [3, 3, 3, 3, 3, 3], [4, 0, 4, 1, 2, 2]):
        expected = math.prod(float(softmax[i][t]) for i, t in enumerate(tokens))
        assert s.prob(space.from_tokens(tokens)) == pytest.approx(expected, rel=1e-5)
    # an edge's probabilities do not depend on the ops the edges before it took (the LSTM's do)
    lstm = R.Reinforce(space, seed=0)

    def first_edge_then(second, policy):
        a, b = space.from_tokens([second, 0, 0, 0, 0, 0]), space.from_tokens([second, 1, 0, 0, 0, 0])
        return policy.log_prob(b) - policy.log_prob(a)  # log p(edge 2 = 1 | edge 1) - log p(edge 2 = 0 | edge 1)

    assert first_edge_then(0, s) == pytest.approx(first_edge_then(4, s), abs=1e-6)
    assert abs(first_edge_then(0, lstm) - first_edge_then(4, lstm)) > 1e-6


def test_the_baseline_is_debiased_takes_the_reward_in_before_the_advantage_and_the_reward_is_in_percent(monkeypatch):
    seen = []
    real = R.policy_loss
    monkeypatch.setattr(R, "policy_loss", lambda lp, reward, baseline: seen.append((reward, baseline))
                        or real(lp, reward, baseline))
    space = NB201Space()
    s = R.NB201Reinforce(space, seed=0)
    for acc in (80.0, 90.0, 70.0):
        s.tell(s.ask(), Result(valid_acc=acc))
    # AutoDL's ExponentialMovingAverage(0.9): numerator and denominator from 0, updated before the loss
    b2 = (0.9 * 0.1 * 80 + 0.1 * 90) / (0.9 * 0.1 + 0.1)
    b3 = (0.81 * 0.1 * 80 + 0.9 * 0.1 * 90 + 0.1 * 70) / (0.81 * 0.1 + 0.9 * 0.1 + 0.1)
    assert [r for r, _ in seen] == [80.0, 90.0, 70.0]
    assert [b for _, b in seen] == pytest.approx([80.0, b2, b3])
    # Zoph & Le's baseline, for contrast: the average before this reward, started at the first reward
    seen.clear()
    z = R.Reinforce(space, seed=0, reward="percent")
    for acc in (80.0, 90.0, 70.0):
        z.tell(z.ask(), Result(valid_acc=acc))
    assert [b for _, b in seen] == pytest.approx([80.0, 80.0, 81.0])


def test_debiased_average_is_a_weighted_mean_of_what_it_saw():
    a = R.DebiasedAverage(0.9)
    with pytest.raises(NASInputError, match="no value"):
        a.value()
    a.update(5.0)
    assert a.value() == pytest.approx(5.0)  # an average started at 0 would say 0.5
    for v in (5.0, 5.0, 5.0):
        a.update(v)
    assert a.value() == pytest.approx(5.0)
    a.update(15.0)
    w = [0.9 ** k for k in range(5)]  # weights of the last value first
    assert a.value() == pytest.approx((15 * w[0] + 5 * sum(w[1:])) / sum(w))


def test_the_table_policy_learns_an_edges_rewarded_op_within_tens_of_steps():
    space = NB201Space()
    s = R.NB201Reinforce(space, seed=1)
    favoured = space.from_tokens([3, 0, 0, 0, 0, 0])

    def p_first_edge_is_3():
        return sum(s.prob(space.from_tokens([3, *rest])) for rest in
                   ([a, b, c, d, e] for a in range(5) for b in range(5) for c in range(5) for d in range(5)
                    for e in range(5)))

    before = s.prob(favoured)
    for _ in range(40):
        arch = s.ask()
        s.tell(arch, Result(valid_acc=90.0 if space.to_tokens(arch)[0] == 3 else 60.0))
    assert before == pytest.approx(5.0 ** -6, rel=0.05)
    assert p_first_edge_is_3() > 0.9


def test_the_table_policy_on_a_space_whose_decisions_depend_on_the_depth_keeps_one_row_per_place():
    space = ChainSpace(max_layers=3, filters=(4, 8), kernels=(1, 3), pools=("none",))
    s = R.Reinforce(space, seed=0, policy="table", reward="percent", baseline_mode="debiased")
    longest = 0
    for _ in range(30):
        arch = s.ask()
        longest = max(longest, len(space.to_tokens(arch)))
        s.tell(arch, Result(valid_acc=50.0 + 10 * len(space.to_tokens(arch))))
    assert len(s.controller.logits) == longest  # a row per decision place, shared by every depth that reaches it
    for arch in (space.parse("conv3x3-8<in"), space.parse("conv1x1-4<in | conv3x3-8<0 | conv3x3-4<1")):
        tokens = space.to_tokens(arch)
        rows = [torch.log_softmax(s.controller.logits[str(i)].detach(), 0) for i in range(len(tokens))]
        assert s.log_prob(arch) == pytest.approx(float(sum(r[t] for r, t in zip(rows, tokens))), abs=1e-5)


def test_the_debiased_baseline_needs_a_decay_and_a_space_with_decisions():
    with pytest.raises(NASInputError, match="never learns"):
        R.NB201Reinforce(NB201Space(), seed=0, baseline_decay=0.0)

    class Empty(NB201Space):
        name = "empty"

        def next_decision(self, tokens):
            return None

        def from_tokens(self, tokens):
            return ()

        def to_tokens(self, arch):
            return []

    s = R.Reinforce(Empty(), seed=0, policy="table")
    with pytest.raises(NASInputError, match="no decision"):
        s.ask()


@pytest.mark.parametrize("options, match", [
    ({"policy": "tree"}, "policy"),
    ({"baseline_mode": "median"}, "baseline_mode"),
    ({"reward": "cubed"}, "reward"),
    ({"baseline_mode": "debiased", "baseline_start": 0.0}, "baseline_start"),
    ({"policy": "table", "init_std": -1.0}, "init_std"),
    ({"policy": "table", "init_std": True}, "init_std"),
    ({"init_std": 1e-3}, "init_std"),  # the LSTM has no table to start
])
def test_clear_errors_for_options_that_do_not_exist(options, match):
    with pytest.raises(NASInputError, match=match):
        R.Reinforce(NB201Space(), seed=0, **options)
