"""ENAS' controller as its code configures it: bounded operation logits and its own learning rate."""

import math

import numpy as np
import pytest
import torch

from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import Result
from tutorial_nas.oneshot import supernet as S
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.strategies.reinforce import Reinforce


def test_bounded_logits_keep_a_floor_under_every_operation():
    """A controller that has all but decided on ``none`` for every edge: with ENAS' bound, a cell of the
    least likely operation keeps probability floor^6, without it the probability vanishes."""
    bound = 1.10 / 2.5
    space = NB201Space()
    worst = space.parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|"
                        "avg_pool_3x3~2|")
    probs = {}
    for c in (bound, None):
        strategy = Reinforce(space, seed=0, tanh_constant=c)
        strategy.ask()  # the operation head exists once a cell was written
        with torch.no_grad():
            strategy.controller.heads["op"].weight.zero_()
            strategy.controller.heads["op"].bias.copy_(torch.tensor([50.0, 50.0, 50.0, 50.0, -50.0]))
        probs[c] = strategy.prob(worst)
    least = math.exp(-bound) / (math.exp(-bound) + 4 * math.exp(bound))  # the op at -c against four at +c
    assert probs[bound] == pytest.approx(least ** 6, rel=1e-4)
    assert probs[None] < 1e-100
    bounded = Reinforce(space, seed=0, tanh_constant=bound)
    ops = {edge[0] for _ in range(30) for node in bounded.ask() for edge in node}
    assert len(ops) >= 4  # an untrained bounded controller samples (nearly) every operation


def test_tanh_constant_is_checked():
    for bad in (0, -1.0, float("inf"), True, "1"):
        with pytest.raises(NASInputError, match="tanh_constant"):
            Reinforce(NB201Space(), tanh_constant=bad)


def test_enas_uses_its_code_s_controller_settings(monkeypatch):
    seen = {}
    real = S.Reinforce

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "Reinforce", spy)
    monkeypatch.setattr(S, "train_supernet", lambda *a, **k: {"loss": [], "samples": [], "seconds": 0.0})
    data = type("D", (), {"num_classes": 10, "in_channels": 1, "device": torch.device("cpu")})()
    S.train_weight_sharing("enas", data, epochs=1, C=4, progress=False)
    assert seen["tanh_constant"] == pytest.approx(1.10 / 2.5) and seen["lr"] == pytest.approx(0.0035)
    assert seen["reward"] == "accuracy" and seen["entropy_weight"] == pytest.approx(1e-4)
    strategy = real(NB201Space(), seed=0, tanh_constant=1.10 / 2.5)
    strategy.tell(strategy.ask(), Result(valid_acc=50.0))  # a step runs with the bound
    assert np.isfinite(strategy.baseline)
