"""Each traced step's numbers are consistent with the method it traces."""

import math

import numpy as np
import pytest
import torch

from tutorial_nas.bench import load_benchmark
from tutorial_nas.course.trace import trace_aging_step, trace_darts_step, trace_q_backup, trace_reinforce_step
from tutorial_nas.oneshot.architect import virtual_weights
from tutorial_nas.oneshot.darts import NB201SearchNetwork
from tutorial_nas.spaces.cell import parse


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


@pytest.mark.parametrize("seed", [0, 3])
def test_reinforce_probability_follows_the_advantage(seed, bench):
    t = trace_reinforce_step(seed=seed, bench=bench)
    curve = bench.query(t["arch"])["valid_curve"]
    assert t["reward"] == pytest.approx((max(curve[-5:]) / 100) ** 3)  # Zoph & Le's reward
    assert t["advantage"] == pytest.approx(t["reward"] - t["baseline"]) and t["advantage"] != 0
    assert t["prob_before"] == pytest.approx(math.exp(t["log_prob"]))
    assert np.sign(t["prob_after"] - t["prob_before"]) == np.sign(t["advantage"])
    assert t["baseline_after"] == pytest.approx(0.9 * t["baseline"] + 0.1 * t["reward"])


def test_darts_first_order_step_lowers_the_validation_loss():
    t = trace_darts_step(order=1, seed=0)
    assert t["valid_loss_after"] < t["valid_loss_before"]
    step, grad = (t["alphas_after"] - t["alphas_before"]).to_numpy(), t["grad"].to_numpy()
    big = np.abs(grad) > 1e-3  # Adam's first step moves every alpha against its gradient
    assert big.sum() > 10 and (np.sign(step[big]) == -np.sign(grad[big])).all()


def test_darts_second_order_terms():
    seed, xi = 1, 0.025
    t = trace_darts_step(order=2, seed=seed, xi=xi)
    np.testing.assert_allclose(t["direct"] + t["hessian_term"], t["grad"], atol=1e-6)
    # the same supernet and batches, and the exact mixed second derivative by double backward
    torch.manual_seed(seed)
    model = NB201SearchNetwork(num_classes=10, in_channels=1, C=4, N=1)
    gen = torch.Generator().manual_seed(seed)
    train, valid = ((torch.randn(8, 1, 8, 8, generator=gen), torch.randint(10, (8,), generator=gen)) for _ in range(2))
    weights = model.weight_parameters()
    backup = [w.detach().clone() for w in weights]
    stepped = virtual_weights(model, train, xi)
    with torch.no_grad():
        for w, s in zip(weights, stepped):
            w.copy_(s)
    loss = model.loss(*valid)
    v = torch.autograd.grad(loss, weights, allow_unused=True)
    direct = torch.autograd.grad(model.loss(*valid), [model.alpha_cell])[0]
    v = [torch.zeros_like(w) if vi is None else vi for w, vi in zip(weights, v)]
    eps = 0.01 / torch.cat([vi.flatten() for vi in v]).norm()  # Eq. 8: R = 0.01 / ||v||

    def grad_alpha_train(sign):  # grad_alpha L_train(w + sign * eps * v, alpha)
        with torch.no_grad():
            for w, b, vi in zip(weights, backup, v):
                w.copy_(b + sign * eps * vi)
        return torch.autograd.grad(model.loss(*train), [model.alpha_cell])[0]

    expected = -xi * (grad_alpha_train(1.0) - grad_alpha_train(-1.0)) / (2 * eps)
    np.testing.assert_allclose(t["direct"].to_numpy(), direct.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(t["hessian_term"].to_numpy(), expected.double().numpy(), atol=1e-5)
    assert np.abs(t["hessian_term"].to_numpy()).max() > 1e-3  # a term that matters, not zeros
    # the direct term is taken at the virtual step w', not at w: it differs from the first-order gradient
    assert np.abs(t["direct"].to_numpy() - trace_darts_step(order=1, seed=seed)["grad"].to_numpy()).max() > 1e-4


def test_q_backup_rows_follow_the_update_rule():
    frame = trace_q_backup(seed=2)
    assert (frame["alpha"] == 0.01).all() and (frame["gamma"] == 1.0).all()  # Baker et al.'s settings
    assert frame["action"].iloc[0] == "terminate" and frame["reward"].iloc[0] == 0.8
    assert (frame["reward"].iloc[1:] == 0).all()
    expected = (1 - frame["alpha"]) * frame["q_before"] + frame["alpha"] * (frame["reward"]
                                                                            + frame["gamma"] * frame["max_next_q"])
    np.testing.assert_allclose(frame["q_after"], expected, rtol=1e-12)
    # backwards: each earlier transition's max next Q already sees the later one's new value
    for later, earlier in zip(frame.itertuples(), frame.iloc[1:].itertuples()):
        assert earlier.action == later.state and earlier.max_next_q >= later.q_after


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aging_step_the_oldest_dies(seed, bench):
    t = trace_aging_step(seed=seed, bench=bench, population=5, sample=3)
    population = t["population"]
    assert len(t["tournament"]) == 3 and population["drawn"].sum() == 3
    assert [d["born"] for d in t["died"]] == [population["born"].min()]  # the oldest, however good
    drawn = population[population["drawn"] > 0]
    assert t["parent"]["fitness"] == drawn["fitness"].max() and t["parent"]["born"] in t["tournament"]
    parent, child = parse(t["parent"]["arch"]), parse(t["child"]["arch"])
    assert sum(a != b for a, b in zip(parent, child)) == 1 and t["child"]["born"] == 5  # one edge mutated
