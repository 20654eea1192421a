"""Chapter 2's DARTS schedule: the architecture learning rate scaled to the number of steps of a short search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tutorial_nas.data import Augment, Dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot.architect import (
    DARTS_ARCH_LR,
    DARTS_SEARCH_STEPS,
    GDAS_SEARCH_STEPS,
    Architect,
    DartsConfig,
    bilevel_search,
    scaled_arch_lr,
    search_steps,
)
from tutorial_nas.oneshot.darts import NB201SearchNetwork, mean_entropy


def toy(n_train: int) -> Dataset:
    x, y = torch.zeros(n_train, 1, 8, 8), torch.zeros(n_train, dtype=torch.long)
    return Dataset("toy", x, y, x[:4], y[:4], x[:4], y[:4], num_classes=10, augment=Augment())


def test_darts_own_search_keeps_darts_own_learning_rate():
    cifar_half = toy(50_000)  # CIFAR-10's training images: two halves of 25,000
    steps = search_steps(cifar_half, 50, 64)
    assert steps == DARTS_SEARCH_STEPS == 50 * 391
    assert scaled_arch_lr(steps) == pytest.approx(DARTS_ARCH_LR)


def test_a_short_search_gets_the_same_travel_lr_times_steps():
    steps = search_steps(toy(1000), 10, 64)  # halves of 500: 8 minibatches an epoch
    assert steps == 80
    assert scaled_arch_lr(steps) * steps == pytest.approx(3e-4 * 50 * 391)
    assert scaled_arch_lr(steps) == pytest.approx(0.0733, abs=1e-4)
    assert scaled_arch_lr(2 * steps) == pytest.approx(scaled_arch_lr(steps) / 2)
    with pytest.raises(NASInputError, match="steps"):
        scaled_arch_lr(0)


def test_search_steps_counts_the_steps_bilevel_search_takes(monkeypatch):
    data = toy(100)  # halves of 50: 4 minibatches of 16 an epoch (the last of 2)
    torch.manual_seed(0)
    model = NB201SearchNetwork(10, 1, C=4, N=1)
    count, real = {"n": 0}, Architect.step

    def counted(self, *args, **kwargs):
        count["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Architect, "step", counted)
    bilevel_search(model, data, "darts", epochs=2, batch_size=16, seed=0, config=DartsConfig(augment=False),
                   progress=False)
    assert count["n"] == search_steps(data, 2, 16) == 2 * math.ceil(50 / 16)


def test_gdas_reference_is_its_240_epochs_at_darts_rate():
    assert GDAS_SEARCH_STEPS == 240 * 391
    steps = search_steps(toy(1000), 40, 64)
    assert scaled_arch_lr(steps, reference_steps=GDAS_SEARCH_STEPS) == pytest.approx(3e-4 * 240 * 391 / 320)


def test_mean_entropy_is_log_k_when_uniform_and_zero_when_decided():
    assert mean_entropy(np.full((6, 5), 0.2)) == pytest.approx(math.log(5))
    assert mean_entropy(np.full((14, 8), 0.125)) == pytest.approx(math.log(8))
    decided = np.eye(5)[[0, 1, 2, 3, 4, 0]]
    assert mean_entropy(decided) == pytest.approx(0.0, abs=1e-9)
    half = np.array([[0.5, 0.5, 0, 0, 0], [1, 0, 0, 0, 0]])  # one edge split in two, one decided
    assert mean_entropy(half) == pytest.approx(math.log(2) / 2)
    with pytest.raises(NASInputError, match="softmaxed"):
        mean_entropy(np.ones((6, 5)))  # logits, not softmaxed weights


def test_the_history_entropy_falls_when_the_architecture_step_is_large():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (128,), generator=gen)
    x = torch.randn(128, 1, 8, 8, generator=gen) + y.view(-1, 1, 1, 1).float() / 3
    data = Dataset("toy", x, y, x[:32], y[:32], x[:32], y[:32], num_classes=10, augment=Augment())
    ends = {}
    for lr in (3e-4, 0.3):
        torch.manual_seed(0)
        model = NB201SearchNetwork(10, 1, C=4, N=1)
        h = bilevel_search(model, data, "darts", epochs=3, batch_size=16, seed=0,
                           config=DartsConfig(a_lr=lr, augment=False), progress=False)
        ends[lr] = mean_entropy(h["alphas"].iloc[-1]["cell"])
    assert ends[3e-4] > 0.99 * math.log(5) > ends[0.3] + 0.05


def recorded_search(monkeypatch, method: str, config: DartsConfig) -> tuple:
    """Run ``bilevel_search`` for two minibatches; return the order of its steps ("w" the weights', "a" the
    architecture's) and the settings its weight optimiser was built with."""
    data = toy(64)
    torch.manual_seed(0)
    model = NB201SearchNetwork(10, 1, C=4, N=1)
    model.mode = "gdas" if method == "gdas" else "darts"
    order, built, real_step, real_sgd = [], {}, Architect.step, torch.optim.SGD

    class SGD(real_sgd):
        def __init__(self, params, **kwargs):
            built.update(kwargs)
            super().__init__(params, **kwargs)

        def step(self, *args, **kwargs):
            order.append("w")
            return super().step(*args, **kwargs)

    def architecture_step(self, *args, **kwargs):
        order.append("a")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", SGD)
    monkeypatch.setattr(Architect, "step", architecture_step)
    bilevel_search(model, data, method, epochs=1, batch_size=16, seed=0, config=config, progress=False)
    return "".join(order), built


def test_gdas_follows_its_reference_code_weight_step_first_nesterov_and_decay_5e4(monkeypatch):
    """AutoDL-Projects' GDAS (the authors' code) steps the weights before the alphas in every minibatch, with
    SGD's Nesterov momentum and weight decay 5e-4; DARTS' code takes the architecture step first, with plain
    momentum and weight decay 3e-4."""
    order, sgd = recorded_search(monkeypatch, "gdas", DartsConfig(augment=False))
    assert order == "wawa" and sgd["nesterov"] is True and sgd["weight_decay"] == 5e-4
    order, sgd = recorded_search(monkeypatch, "darts", DartsConfig(augment=False))
    assert order == "awaw" and sgd["nesterov"] is False and sgd["weight_decay"] == 3e-4
    # what a caller sets explicitly wins over the method's own recipe
    order, sgd = recorded_search(monkeypatch, "gdas", DartsConfig(augment=False, weight_first=False,
                                                                   w_weight_decay=1e-4))
    assert order == "awaw" and sgd["nesterov"] is True and sgd["weight_decay"] == 1e-4
    with pytest.raises(NASInputError, match="one-shot method"):
        DartsConfig().resolved("enas")
