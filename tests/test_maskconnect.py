"""MaskConnect: K-hot sampled masks, the straight-through gradient, top-K derivation, learning the right input."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tutorial_nas.data import Augment, Dataset, load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot.maskconnect import (
    MaskConnectNet,
    compare_connectivity,
    derive,
    learned_vs_random,
    random_connectivity,
    sample_mask,
    train_maskconnect,
)

torch.set_num_threads(1)


def test_every_sampled_mask_has_exactly_k_ones_per_module():
    net = MaskConnectNet(3, 1, modules=5, C=4, fan_in=2)
    net.generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.masks[4].copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))  # clipped to one live input: still 2 drawn
    for _ in range(20):
        net(torch.randn(2, 1, 6, 6))
        assert [int(b.sum()) for b in net.binary] == [1, 2, 2, 2, 2]
        assert all(set(b.tolist()) <= {0.0, 1.0} for b in net.binary)
    # the draw follows the real-valued mask: an input at 1 next to inputs near 0 is almost always taken
    picks = [sample_mask(torch.tensor([0.01, 1.0, 0.01]), 1, torch.Generator().manual_seed(s))[1] for s in range(50)]
    assert sum(picks) >= 45


def test_gradients_reach_the_real_masks_through_the_binary_ones():
    torch.manual_seed(0)
    net = MaskConnectNet(3, 1, modules=3, C=4, fan_in=1)
    net.fixed = True  # a known binary mask, so that the gradient w.r.t. it can be computed by hand
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 0])
    nn.functional.cross_entropy(net(x), y).backward()
    # by hand: the same forward with the binary masks as leaves
    binary = [b.clone().requires_grad_(True) for b in net.binary]
    states = [net.stem(x)]
    for blk, b in zip(net.blocks, binary):
        states.append(blk(sum(b[i] * h for i, h in enumerate(states))))
    nn.functional.cross_entropy(net.head(states[-1]), y).backward()
    for real, b in zip(net.masks, binary):
        assert torch.allclose(real.grad, b.grad, atol=1e-6)
    assert net.masks[2].grad.abs().sum() > 0  # inputs left out get a gradient too
    assert (net.masks[2].grad != 0).all()


def test_derive_gives_the_top_k_inputs_of_each_module():
    net = MaskConnectNet(2, 1, modules=4, C=4, fan_in=2)
    with torch.no_grad():
        net.masks[2].copy_(torch.tensor([0.1, 0.9, 0.5]))
        net.masks[3].copy_(torch.tensor([0.7, 0.2, 0.7, 0.3]))  # a tie goes to the lower index
    assert derive(net) == [[0], [0, 1], [1, 2], [0, 2]]
    with pytest.raises(NASInputError, match="fan_in"):
        MaskConnectNet(2, 1, fan_in=0)


class Noise(nn.Module):
    """A block that ignores its input: its output carries no information about the label."""

    def __init__(self, seed):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x):
        return torch.randn(x.shape, generator=self.generator)


def toy_data(n=256, seed=0):
    """Two classes: the sign of a bright or dark square, in noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 * torch.randn(n, 1, 6, 6, generator=g)
    x[:, :, 1:5, 1:5] += (2.0 * y - 1.0).view(-1, 1, 1, 1)
    return Dataset("toy", x, y, x[:64], y[:64], x[:64], y[:64], 2, Augment())


def test_training_moves_the_masks_toward_the_one_input_that_carries_the_signal():
    torch.manual_seed(0)
    net = MaskConnectNet(2, 1, modules=3, C=4, fan_in=1)
    net.blocks[0], net.blocks[1] = Noise(1), Noise(2)  # only the stem (input 0 of block 2) sees the image
    net, connectivity = train_maskconnect(toy_data(), epochs=3, net=net, batch_size=32, mask_lr=0.1)
    last = net.masks[2].detach()
    assert connectivity[2] == [0]
    assert last[0] > 0.9 and (last[0] - last[1:] > 0.3).all()  # from 0.5 each: the stem's mask rose alone
    assert net.valid_acc > 90


def test_maskconnect_learns_digits_above_chance():
    torch.manual_seed(0)
    net, connectivity = train_maskconnect(load_dataset("digits"), epochs=0.3, modules=4, C=8, fan_in=2)
    assert [len(c) for c in connectivity] == [1, 2, 2, 2]
    assert all(0.0 <= float(v) <= 1.0 for m in net.masks for v in m.detach())
    assert net.valid_acc > 25  # chance is 10 %


def toy_net(seed):
    """The toy task's network: only the stem (input 0 of block 2) sees the image."""
    torch.manual_seed(seed)
    net = MaskConnectNet(2, 1, modules=3, C=4, fan_in=1)
    net.blocks[0], net.blocks[1] = Noise(1), Noise(2)
    return net


def test_random_connectivity_is_k_hot_and_reproducible():
    net = MaskConnectNet(3, 1, modules=5, C=4, fan_in=2)
    inputs = random_connectivity(net, seed=3)
    assert [len(c) for c in inputs] == [1, 2, 2, 2, 2] and derive(net) == inputs
    assert all(set(m.detach().tolist()) <= {0.0, 1.0} for m in net.masks)
    assert random_connectivity(MaskConnectNet(3, 1, modules=5, C=4, fan_in=2), seed=3) == inputs
    drawn = {tuple(random_connectivity(net, seed=s)[4]) for s in range(40)}
    assert len(drawn) > 3  # uniform over the 10 pairs of block 4's five inputs, not a fixed choice


def test_learned_connectivity_is_at_least_as_good_as_random_on_the_toy_task():
    # checked over 8 seeds: learned always finds the stem (100 %); random fixed connectivity reads noise 2 times
    # in 3 and then sits near chance
    learned, random = [], []
    for seed in range(3):
        net, inputs = train_maskconnect(toy_data(), epochs=3, net=toy_net(seed), batch_size=32, mask_lr=0.1,
                                        seed=seed)
        net_r = toy_net(seed)
        random_connectivity(net_r, seed)
        net_r, _ = train_maskconnect(toy_data(), epochs=3, net=net_r, batch_size=32, seed=seed, fixed=True)
        learned.append(net.valid_acc)
        random.append(net_r.valid_acc)
        assert net.valid_acc >= net_r.valid_acc
    assert sum(learned) > sum(random)


def test_compare_connectivity_reads_the_difference_against_its_noise():
    def runs(learned, random, random_seeds=None):
        return pd.DataFrame([{"connectivity": "learned", "seed": s, "valid_acc": a} for s, a in enumerate(learned)]
                            + [{"connectivity": "random", "seed": s, "valid_acc": a}
                               for s, a in zip(random_seeds or range(len(random)), random)])

    table, verdict = compare_connectivity(runs([90, 91, 92], [80, 82, 81]))
    assert table.loc["learned", "mean"] == 91 and table.loc["random", "se"] == pytest.approx(1 / 3 ** 0.5)
    assert "learned connectivity is better" in verdict
    assert "worse" in compare_connectivity(runs([80, 82, 81], [90, 91, 92]))[1]
    assert "no difference" in compare_connectivity(runs([80, 90, 85], [86, 84, 88]))[1]
    assert "no verdict" in compare_connectivity(runs([90], [80]))[1]
    # three seeds: 2 standard errors would call this a difference, the t quantile of 2 degrees of freedom (4.3) not
    wide = compare_connectivity(runs([85, 86, 88], [84, 83, 83]))[1]  # differences 1, 3, 5: 2.6 standard errors
    assert "no difference" in wide and "paired over 3 seeds, 2 degrees of freedom" in wide
    # the printed spread is named for what it is, and the interval is the one the verdict reads
    se = 1 / 3 ** 0.5  # differences 2, 1, 3: sd 1 over 3 seeds
    even = compare_connectivity(runs([91, 92, 93], [89, 91, 90]))[1]
    assert "+-" not in even and f"standard error {se:.1f}" in even
    low, high = (float(x) for x in even.split("95 % interval [")[1].split("]")[0].split(", "))
    assert low < 0 < high and "holds 0" in even and high - 2 == pytest.approx(2 - low, abs=0.1)
    assert "1 degree of freedom" in compare_connectivity(runs([91, 92], [89, 91]))[1]
    # one seed's two networks share their initial weights and batches: the seed's share of the accuracy drops out
    # of the paired difference. Unpaired, these two sides (sd 5 each) cannot be told apart; paired, the learned
    # side is ahead by 1.5 to 2 points in every seed
    paired = compare_connectivity(runs([85, 90, 95], [83, 88.5, 93.5]))[1]
    assert "learned connectivity is better" in paired and "paired" in paired
    unpaired = compare_connectivity(runs([85, 90, 95], [83, 88.5, 93.5], random_seeds=[3, 4, 5]))[1]
    assert "no difference" in unpaired and "Welch" in unpaired
    assert "the same in every seed" in compare_connectivity(runs([85, 90], [83, 88]))[1]
    # the paired standard error is kept for the reader to set beside the sides' own: below it here (the sides move
    # together), absent where the seeds differ
    together = compare_connectivity(runs([85, 90, 95], [83, 88.5, 93.5]))[0]
    assert together.attrs["paired_se"] == pytest.approx(np.std([2, 1.5, 1.5], ddof=1) / np.sqrt(3))
    assert together.attrs["paired_se"] < np.hypot(*together["se"])
    assert compare_connectivity(runs([85, 90, 95], [83, 88.5, 93.5], random_seeds=[3, 4, 5]))[0].attrs[
        "paired_se"] is None


def test_learned_vs_random_trains_both_with_the_same_epochs(monkeypatch):
    import tutorial_nas.oneshot.maskconnect as mc

    spent, real = {"learned": 0.0, "random": 0.0}, mc.train_maskconnect
    calls = {"learned": [], "random": []}  # the epochs of each training: each call restarts the cosine schedule

    def counting(data, epochs, net=None, fixed=False, **kw):
        side = "random" if fixed and getattr(net, "_random", False) else "learned"
        spent[side] += epochs
        calls[side].append(epochs)
        return real(data, epochs, net=net, fixed=fixed, **kw)

    def marked(net, seed):
        net._random = True
        return real_random(net, seed)

    real_random = mc.random_connectivity
    monkeypatch.setattr(mc, "train_maskconnect", counting)
    monkeypatch.setattr(mc, "random_connectivity", marked)
    data = toy_data()
    frame = learned_vs_random(data, epochs=0.5, seeds=(0, 1), modules=3, C=4, fan_in=1, batch_size=32)
    assert spent["learned"] == spent["random"] == 2.0  # search + fine-tuning against as long on random connections
    assert calls["learned"] == calls["random"] == [0.5, 0.5] * 2  # and the same schedule: a restart for each
    assert list(frame["connectivity"]) == ["learned", "random"] * 2 and list(frame["seed"]) == [0, 0, 1, 1]
    assert all(len(c) == 3 for c in frame["inputs"]) and frame["valid_acc"].between(0, 100).all()


def test_a_training_step_moves_each_real_mask_by_minus_mask_lr_times_its_binary_gradient_then_clips():
    # the same first minibatch and the same sampled masks, run by hand on a copy: m~ <- clip(m~ - lr dE/dm, 0, 1)
    import copy

    from tutorial_nas.data import batches

    data, mask_lr, seed, batch = toy_data(64), 50.0, 3, 16
    torch.manual_seed(0)
    net = MaskConnectNet(2, 1, modules=3, C=4, fan_in=1)
    with torch.no_grad():
        net.masks[2].copy_(torch.tensor([0.001, 0.5, 0.999]))  # near both ends, so that the clip can act
    twin = copy.deepcopy(net)
    twin.generator, twin.fixed = torch.Generator().manual_seed(seed), False
    twin.train()
    xb, yb = next(iter(batches(data.train_x, data.train_y, batch, shuffle=True,
                               generator=torch.Generator().manual_seed(seed), augment=data.augment)))
    F.cross_entropy(twin(xb), yb).backward()
    expected = [(m - mask_lr * m.grad).clamp(0.0, 1.0).detach() for m in twin.masks]
    assert any(((m - mask_lr * m.grad) > 1).any() or ((m - mask_lr * m.grad) < 0).any() for m in twin.masks)
    trained, _ = train_maskconnect(data, net=net, epochs=batch / len(data.train_y), batch_size=batch,
                                   mask_lr=mask_lr, seed=seed)
    for m, e in zip(trained.masks, expected):
        assert torch.allclose(m.detach(), e, atol=1e-6)
