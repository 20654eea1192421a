"""NSAS (Zhang et al. 2020) and Bender et al.'s path dropout (2018) on the NAS-Bench-201 supernet."""

import itertools

import numpy as np
import pytest
import torch

from tutorial_nas.analysis import supernets as sa
from tutorial_nas.analysis.shortcuts import OneShotShortcut
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot import bender, nsas
from tutorial_nas.oneshot.supernet import Supernet
from tutorial_nas.spaces.cell import EDGES, NB201Space

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("digits").subset(0.2)


# --- NSAS -----------------------------------------------------------------------------------------------------

def test_novelty_is_the_mean_distance_to_the_k_nearest():
    a, b, c = ("none",) * 6, ("none",) * 5 + ("skip_connect",), ("skip_connect",) * 6
    assert nsas.distance(a, c) == 1 and nsas.distance(a, b) == pytest.approx(1 / 6)
    assert nsas.novelty(a, [b, c], k=1) == pytest.approx(1 / 6)
    assert nsas.novelty(a, [b, c], k=2) == pytest.approx((1 / 6 + 1) / 2)


def _diversity(cells, k):
    return sum(nsas.novelty(c, cells[:i] + cells[i + 1:], k) for i, c in enumerate(cells))


def test_the_subset_fills_with_the_most_novel_draw_then_replaces_the_nearest_by_the_most_diverse():
    subset, rng = nsas.ConstraintSubset(size=3, k=2, recent=5, seed=0), np.random.default_rng(1)
    space = NB201Space()
    for _ in range(3):  # filling: each added cell is the most novel of its draws (replayed with the same rng)
        before = list(subset.cells)
        state = subset.rng.bit_generator.state
        subset.update(space.sample(rng))
        check = np.random.default_rng()
        check.bit_generator.state = state
        pool = [space.sample(check) for _ in range(subset.draws)]
        assert nsas.novelty(subset.cells[-1], before, 2) == max(nsas.novelty(p, before, 2) for p in pool)
    for _ in range(20):  # full: the member nearest to a_t gives way to the most novel recent path, if any
        new, before = space.sample(rng), list(subset.cells)
        subset.update(new)
        nearest = int(np.argmin([nsas.distance(new, c) for c in before]))
        rest = before[:nearest] + before[nearest + 1:]
        assert subset.cells[:nearest] + subset.cells[nearest + 1:] == rest
        options = [before[nearest], *subset.recent]
        best = max(nsas.novelty(o, rest, 2) for o in options)
        assert nsas.novelty(subset.cells[nearest], rest, 2) == best
        assert _diversity(subset.cells, 2) >= max(_diversity(rest + [o], 2) for o in options) - 1e-12
    assert len(subset.cells) == 3 and len(subset.recent) == 5


def test_the_constraint_subset_is_trained_alongside_the_new_path(tiny):
    torch.manual_seed(0)
    net = Supernet(tiny.num_classes, tiny.in_channels, C=4, N=1)
    x, y = tiny.train_x[:32], tiny.train_y[:32]
    cell = ("nor_conv_1x1",) * 6
    stored = [("nor_conv_3x3",) * 6, ("avg_pool_3x3",) * 5 + ("nor_conv_3x3",)]
    conv3 = net.layers[0].edges["01"]["nor_conv_3x3"][1].weight
    for subset, reached in (([], False), (stored, True)):
        net.zero_grad()
        nsas.nsas_loss(net, x, y, cell, subset).backward()
        assert (conv3.grad is not None and conv3.grad.abs().sum() > 0) == reached
    plain = torch.nn.functional.cross_entropy(net(x, cell), y)
    mixed = nsas.nsas_loss(net, x, y, cell, stored)
    constraint = torch.stack([torch.nn.functional.cross_entropy(net(x, a), y) for a in stored]).mean()
    assert mixed.item() == pytest.approx(0.5 * plain.item() + 0.5 * constraint.item(), rel=1e-5)


def test_forgetting_is_the_accuracy_a_previous_path_loses_after_one_step(tiny):
    kw = dict(warm_epochs=0.5, steps=4, window=2, C=4, batch_size=32, eval_size=64, seed=0)
    rows = nsas.step_forgetting(tiny, "uniform", **kw)
    assert len(rows) == 1 + 2 + 2  # no previous path at step 0, one at step 1, then the window of two
    assert np.allclose(rows["forgetting"], rows["before"] - rows["after"])
    # the accuracy after step t is the accuracy before step t+1 of the same path: same weights, same data
    nxt = rows.set_index(["step", "arch"])
    for (step, arch), row in nxt.iterrows():
        if (step + 1, arch) in nxt.index:
            assert nxt.loc[(step + 1, arch), "before"] == pytest.approx(row["after"])
    frozen = nsas.step_forgetting(tiny, "nsas", lr=0.0, subset_size=2, **{k: v for k, v in kw.items()})
    assert np.allclose(frozen["forgetting"], 0)  # no step, nothing forgotten
    table = sa.forgetting_per_step(tiny, subset_size=2, **kw)
    assert table["method"].tolist() == ["uniform", "random-subset", "nsas"]
    assert len(table.attrs["steps"]) == 3 * len(rows)
    with pytest.raises(NASInputError):
        nsas.step_forgetting(tiny, "fair")


def test_nsas_training_keeps_a_full_diverse_subset(tiny):
    net, log = nsas.train_nsas(tiny, epochs=1, C=4, batch_size=32, subset_size=3)
    assert len(log["subset"]) == 3 and np.isfinite(log["loss"]).all()
    with pytest.raises(NASInputError):
        nsas.ConstraintSubset(size=0)


# --- Bender et al. --------------------------------------------------------------------------------------------

def test_the_drop_rate_rises_linearly_from_zero_to_the_final_rate(tiny):
    _, log = bender.train_one_shot(tiny, epochs=0.5, C=4, batch_size=32, final_rate=0.6)
    rate = np.array(log["rate"])
    assert rate[0] == 0 and rate[-1] == pytest.approx(0.6)
    assert np.allclose(np.diff(rate), 0.6 / (len(rate) - 1))
    with pytest.raises(NASInputError):
        bender.train_one_shot(tiny, final_rate=1.0)


def test_each_operation_is_dropped_with_probability_rate_to_the_one_over_k_and_no_node_starves():
    rng, rate, draws = np.random.default_rng(0), 0.4, 4000
    masks = [bender.sample_mask(rate, rng) for _ in range(draws)]
    for mask in masks:  # every node keeps an input
        for j in (1, 2, 3):
            assert any(mask[e] for e, (_, k) in enumerate(EDGES) if k == j)
    for j in (1, 2, 3):
        edges = [e for e, (_, k) in enumerate(EDGES) if k == j]
        k = 4 * len(edges)
        dropped = np.mean([len(bender.OPS) - len(m[edges[0]]) for m in masks]) / 4
        kept_one = rate  # all k dropped has probability rate: then exactly one is kept back
        expected = rate ** (1 / k) - kept_one / k
        assert dropped == pytest.approx(expected, abs=0.02)
    assert bender.sample_mask(0.0, rng) == tuple(bender.OPS for _ in EDGES)


def test_dropped_operations_contribute_nothing(tiny):
    torch.manual_seed(0)
    net = Supernet(tiny.num_classes, tiny.in_channels, C=4, N=1).eval()
    x = tiny.train_x[:8]
    for cell in (("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none"),
                 ("none", "none", "nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3")):
        mask = tuple(() if op == "none" else (op,) for op in cell)
        assert torch.allclose(bender.forward_masked(net, x, mask), net(x, cell), atol=1e-6)
    full = tuple(bender.OPS for _ in EDGES)
    some = tuple(tuple(op for op in ops if op != "nor_conv_3x3") for ops in full)
    # changing the weights of a dropped operation changes nothing; of a kept one, the output
    weight = net.layers[0].edges["01"]["nor_conv_3x3"][1].weight
    out, out_full = bender.forward_masked(net, x, some), bender.forward_masked(net, x, full)
    with torch.no_grad():
        weight.mul_(3.0)
    assert torch.allclose(bender.forward_masked(net, x, some), out)
    assert not torch.allclose(bender.forward_masked(net, x, full), out_full)


def test_weight_decay_reaches_only_the_operations_a_step_uses(tiny, monkeypatch):
    # Bender et al.: L2 on the active paths only. A dropped operation gets no gradient at all (None), so SGD's
    # decay and momentum leave it bit for bit as it was; an operation in use moves.
    dropped = "nor_conv_3x3"
    mask = tuple(tuple(op for op in bender.OPS if op != dropped) for _ in EDGES)
    monkeypatch.setattr(bender, "sample_mask", lambda rate, rng: mask)
    torch.manual_seed(3)
    start = Supernet(tiny.num_classes, tiny.in_channels, C=4, N=1).state_dict()
    net, log = bender.train_one_shot(tiny, epochs=0.5, C=4, N=1, batch_size=32, seed=3)
    assert len(log["rate"]) >= 2
    after = net.state_dict()
    conv = [k for k in after if f".{dropped}." in k and k.endswith("weight") and after[k].dim() == 4]
    used = [k for k in after if ".nor_conv_1x1." in k and k.endswith("weight") and after[k].dim() == 4]
    assert conv and used
    assert all(torch.equal(after[k], start[k]) for k in conv)
    assert not any(torch.equal(after[k], start[k]) for k in used)


def test_both_rank_cells_as_shortcut_rows(tiny):
    cells = [NB201Space().sample(np.random.default_rng(s)) for s in range(3)]
    for name, train in (("NSAS", nsas.train_nsas), ("Bender", bender.train_one_shot)):
        scores = OneShotShortcut(name, train, tiny, batch_size=32, epochs=0.2, C=4).score(cells)
        assert scores.shape == (3,) and np.isfinite(scores).all()


def test_subset_size_zero_is_uniform_training(tiny):
    a, _ = nsas.train_nsas(tiny, epochs=0.1, C=4, batch_size=32, subset_size=0)
    b, _ = nsas.train_nsas(tiny, epochs=0.1, C=4, batch_size=32, subset_size=2)
    assert any(not torch.equal(p, q) for p, q in itertools.islice(zip(a.parameters(), b.parameters()), 50))


def test_the_random_control_draws_a_new_subset_of_the_same_size_every_step(tiny):
    """The control of NSAS' selection: as many constraint paths, drawn uniformly anew at each step, from a stream
    apart from the sampled paths; the same loss, so the same passes a step."""
    control = nsas.RandomSubset(size=3, seed=0)
    first, second = list(control.update(("none",) * 6)), list(control.update(("none",) * 6))
    assert len(first) == len(second) == 3 and first != second
    assert nsas.RandomSubset(size=3, seed=0).update(("skip_connect",) * 6) == first  # whatever was sampled
    assert isinstance(nsas.make_subset("novelty", 3, 0), nsas.ConstraintSubset)
    with pytest.raises(NASInputError):
        nsas.make_subset("greedy", 3, 0)
    with pytest.raises(NASInputError):
        nsas.RandomSubset(size=0)
    net, log = nsas.train_nsas(tiny, epochs=0.5, C=4, batch_size=32, subset_size=2, subset="random")
    assert len(log["subset"]) == 2 and np.isfinite(log["loss"]).all()
    with pytest.raises(NASInputError):
        nsas.train_nsas(tiny, epochs=0.5, C=4, subset="greedy")
