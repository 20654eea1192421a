"""Net2Net morphisms preserve the function; the NASH hill climb inherits its parents' accuracy."""

import copy
import time

import numpy as np
import pytest
import torch

import tutorial_nas.strategies.morphism as morphism
import tutorial_nas.train as training
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.search import best
from tutorial_nas.strategies.morphism import (
    PARENT_FURTHER,
    START_SPEC,
    MorphNet,
    add_skip,
    morphism_search,
    net2deeper,
    net2wider,
    out_channels,
    parse_spec,
    random_morphism,
    skip_options,
    spec_to_str,
    train_from_scratch,
)
from tutorial_nas.train import evaluate, train

torch.set_num_threads(1)


def random_net(seed: int, skips: int = 0) -> MorphNet:
    """A random MorphNet whose batch norms look trained (random running statistics and affine terms), with up to
    ``skips`` skip connections whose weights look trained too (lam away from 1, no zero reading weights)."""
    rng = np.random.default_rng(seed)
    layers, c = [], None
    for _ in range(int(rng.integers(2, 5)) + (2 if skips else 0)):
        if c is not None and rng.random() < 0.3:
            layers.append(f"r{c}k3")
            continue
        c = int(rng.choice([4, 6])) if skips else int(rng.integers(3, 9))  # few widths: additions can join
        layers.append(f"c{c}k{int(rng.choice([1, 3, 5]))}{'p' if rng.random() < 0.25 else ''}")
    torch.manual_seed(seed)
    net = MorphNet("-".join(layers), num_classes=10, in_channels=1)
    for _ in range(skips):
        options = [(s, t, m) for m, pairs in skip_options(net).items() for s, t in pairs]
        if options:
            net = add_skip(net, *options[int(rng.integers(len(options)))])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.3, 3)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        for name, p in net.named_parameters():
            if name.endswith("lam"):
                p.uniform_(0.3, 1.5)
            elif name.endswith("weight") and p.dim() > 1 and (p == 0).any():  # a concatenation's zero columns
                p.normal_(0, float(p.std()))
    return net.eval()


def same_function(a, b, x):
    return (a.eval()(x) - b.eval()(x)).abs().max().item()


@torch.no_grad()
def same_in_train_mode(a, b, x):
    """The largest output difference in train mode (batch norms on the batch's own statistics), on copies so
    that neither network's running statistics move."""
    return (copy.deepcopy(a).train()(x) - copy.deepcopy(b).train()(x)).abs().max().item()


def state_of(net) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


def unchanged(net, state: dict, training: bool) -> bool:
    now = net.state_dict()
    return net.training == training and now.keys() == state.keys() and all(
        torch.equal(now[k], v) for k, v in state.items())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("skips", [0, 2])
def test_widen_preserves_function(seed, skips):
    net, x = random_net(seed, skips), torch.randn(16, 1, 8, 8)
    rng = np.random.default_rng(seed)
    widened = 0
    for i, block in enumerate(net.blocks):
        refusal = morphism.widen_refusal(net.spec, i)
        if refusal:
            with pytest.raises(NASInputError):
                net2wider(net, i, block.layer.channels + 1, rng)
            continue
        wide = net2wider(net, i, block.layer.channels + int(rng.integers(1, 6)), rng)
        assert wide.blocks[i].layer.channels > block.layer.channels
        assert same_function(net, wide, x) < 1e-5
        assert same_in_train_mode(net, wide, x) < 1e-4
        widened += 1
    assert widened > 0


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("skips", [0, 2])
def test_deepen_preserves_function_and_keeps_the_skips(seed, skips):
    net, x = random_net(seed, skips), torch.randn(16, 1, 8, 8)
    for i in range(len(net.blocks)):
        for deeper in (net2deeper(net, i), net2deeper(net, i, kernel=5, x=x)):
            assert len(deeper.blocks) == len(net.blocks) + 1
            assert same_function(net, deeper, x) < 1e-5
            joins = [(layer.adds, layer.cats) for layer in deeper.spec[:i + 1] + deeper.spec[i + 2:]]
            assert sum(len(a) + len(c) for a, c in joins) == sum(len(b.layer.adds) + len(b.layer.cats)
                                                                 for b in net.blocks)
        # with the batch also in train mode, on that batch; random_net's running statistics are far from the
        # batch's, so statistics from an eval pass fail here
        assert same_in_train_mode(net, net2deeper(net, i, kernel=5, x=x), x) < 1e-4


@pytest.mark.parametrize("seed", range(5))
def test_skip_joins_two_blocks_already_there_and_preserves_function(seed):
    """NASH's skip connection links two existing layers: no block is added; an addition adds one parameter
    (lam, starting at 1), a concatenation the reader's weights on the new channels (starting at 0)."""
    net, x = random_net(seed, skips=1), torch.randn(16, 1, 8, 8)
    options = skip_options(net)
    assert options["add"] or options["concat"]
    for mode, pairs in options.items():
        for source, target in pairs:
            joined = add_skip(net, source, target, mode)
            assert len(joined.blocks) == len(net.blocks)
            layer = joined.blocks[target].layer
            assert source in (layer.adds if mode == "add" else layer.cats)
            extra = morphism.count_params(joined) - morphism.count_params(net)
            if mode == "add":
                assert extra == 1 and joined.blocks[target].lam[-1].item() == 1.0
            else:
                reader = joined.blocks[target + 1].conv if target + 1 < len(joined.blocks) else joined.head
                new = out_channels(joined.spec)[source]
                assert extra == reader.weight[:, :new].numel()
                assert reader.weight[:, -new:].abs().sum() == 0
            assert same_function(net, joined, x) < 1e-5
            assert same_in_train_mode(net, joined, x) < 1e-4


def test_skip_refuses_what_would_change_the_function_or_cannot_join():
    net = MorphNet("c4k3p-c4k3-c8k3p-c8k3")
    for source, target, mode, why in ((0, 2, "add", "same channels"), (1, 3, "concat", "pools"),
                                      (2, 1, "add", "earlier block"), (0, 0, "concat", "earlier block"),
                                      (0, 1, "both", "mode")):
        with pytest.raises(NASInputError, match=why):
            add_skip(net, source, target, mode)
    joined = add_skip(net, 0, 1, "add")
    with pytest.raises(NASInputError, match="already"):
        add_skip(joined, 0, 1, "concat")
    with pytest.raises(NASInputError, match="keeps its width"):
        net2wider(joined, 0, 8, np.random.default_rng(0))  # the addition fixes both sides' width
    read = add_skip(net, 0, 1, "concat")  # block 1's output now 8 channels
    through = add_skip(read, 1, 2, "add")  # block 2 adds block 1's output, which holds block 0's
    with pytest.raises(NASInputError, match="block 1, whose output would widen with it"):
        net2wider(through, 0, 6, np.random.default_rng(0))
    with pytest.raises(NASInputError, match="joined by a later block"):
        add_skip(add_skip(net, 1, 2, "concat"), 0, 1, "concat")
    assert str(read) == "c4k3p-c4k3&0-c8k3p-c8k3"
    with pytest.raises(NASInputError, match="residual"):
        add_skip(MorphNet("c4k3-c4k3-r4k3"), 0, 1, "concat")  # the residual block after would lose its width


def test_skips_learn():
    """The addition's lam and the concatenation's zero reading weights both receive gradient: training can turn
    either skip on."""
    torch.manual_seed(0)
    net = add_skip(add_skip(MorphNet("c4k3-c4k3-c6k3"), 0, 1, "add"), 0, 2, "concat")
    net.train()
    net(torch.randn(8, 1, 8, 8)).pow(2).sum().backward()
    assert net.blocks[1].lam.grad.abs().sum() > 0
    assert net.head.weight.grad[:, -4:].abs().sum() > 0


@pytest.mark.parametrize("seed", range(24))
def test_random_chains_from_many_starts_never_break(seed):
    """Many starts (with and without skips, several channel limits): every chain of random morphisms applies
    without error and keeps the function, so no morphism leaves a network its successors cannot handle."""
    net = random_net(seed, skips=seed % 3) if seed % 2 else MorphNet(START_SPEC).eval()
    x, rng = torch.randn(8, 1, 8, 8), np.random.default_rng(seed)
    child = net
    for _ in range(12):
        child, _ = random_morphism(child, rng, x=x, max_channels=int(rng.choice([16, 32, 64])), max_layers=8)
    assert same_function(net, child, x) < 1e-4
    assert same_in_train_mode(net, child, x) < 1e-3


@pytest.fixture(scope="module")
def trained(digits):
    """START_SPEC trained 2 epochs on digits, as the climb's start: its running averages lag its weights."""
    torch.manual_seed(0)
    net = MorphNet(START_SPEC, digits.num_classes, digits.in_channels)
    train(net, digits, epochs=2, batch_size=32, progress=False)
    return net


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_deepen_with_a_batch_is_the_identity_in_both_modes_after_real_training(trained, digits, mode):
    net, x = copy.deepcopy(trained).train(mode == "train"), digits.train_x[:256]
    state = state_of(net)
    assert same_in_train_mode(net, net2deeper(net, 0), x) > 1e-2  # without the batch, train mode is not kept
    for i in range(len(net.blocks)):
        deeper = net2deeper(net, i, kernel=3, x=x)
        assert unchanged(net, state, mode == "train")  # the measurement leaves the parent as it was
        assert same_in_train_mode(net, deeper, x) < 1e-4
        assert same_function(net, deeper, x) < 1e-5
        net.train(mode == "train")


def test_chains_of_random_morphisms_preserve_function():
    net, x, rng = random_net(7), torch.randn(8, 1, 8, 8), np.random.default_rng(7)
    child, kinds = net, []
    for _ in range(12):
        before = len(child.blocks)
        child, what = random_morphism(child, rng, x=x, max_channels=32, max_layers=10)
        kinds.append(what.split()[0])
        if what.startswith("skip"):  # a skip links two blocks already there: no new block
            assert len(child.blocks) == before
    assert {"widen", "deepen", "skip"} <= set(kinds)
    assert len(child.blocks) > len(net.blocks) or str(child) != str(net)
    assert same_function(net, child, x) < 1e-5
    assert same_in_train_mode(net, child, x) < 1e-4


def copies_of(wide: MorphNet, layer: int, old_channels: int) -> list:
    """(new unit, the old unit it copies) for the new units of block ``layer``, found by their equal rows."""
    w = wide.blocks[layer].conv.weight.detach().flatten(1)
    return [(j, int((w[:old_channels] - w[j]).abs().sum(1).argmin())) for j in range(old_channels, len(w))]


def fit(net, x, y, steps: int, optimizer=torch.optim.Adam, **options) -> float:
    """Full-batch training steps on cross-entropy; the last loss."""
    opt = optimizer(net.parameters(), **options)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return loss.item()


def test_widened_copies_separate_under_training():
    """Exact copies read with equal weights get equal gradients and never separate; the noisy split breaks
    the tie, in the widened block and in the residual block that carries its copies."""
    torch.manual_seed(0)
    wide = net2wider(MorphNet("c3k3p-r3k3-c5k3"), 0, 7, np.random.default_rng(0))
    pairs = copies_of(wide, 0, 3)
    conv = wide.blocks[0].conv.weight.detach()
    assert max(float((conv[j] - conv[i]).abs().max()) for j, i in pairs) == 0.0  # they start as exact copies
    fit(wide, torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)), 3, torch.optim.SGD, lr=0.05, momentum=0.9)
    for block in wide.blocks[:2]:
        for j, i in pairs:
            assert (block.conv.weight[j] - block.conv.weight[i]).abs().max() > 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_widening_adds_capacity(seed, digits):
    """A 2-channel network trained to its limit, then widened to 16 channels: the widened one fits the same
    images much better than the narrow one trained as long. Copies that stayed copies would not."""
    x, y = digits.train_x[:128], digits.train_y[:128]
    torch.manual_seed(seed)
    narrow = MorphNet("c2k3p", digits.num_classes, digits.in_channels)
    fit(narrow, x, y, 60, lr=0.03)
    wide = net2wider(narrow, 0, 16, np.random.default_rng(seed))
    assert same_function(narrow, wide, x) < 1e-5
    narrow_loss, wide_loss = fit(narrow, x, y, 60, lr=0.03), fit(wide, x, y, 60, lr=0.03)
    assert wide_loss < 0.5 * narrow_loss


def test_spec_string_round_trip_and_errors():
    for text in ("c8k3p-c16k5-r16k3p", "c8k3p-c16k3-c16k5+1&0p"):
        spec = parse_spec(text)
        assert spec_to_str(spec) == text
        assert str(MorphNet(spec)) == text
    assert out_channels(parse_spec("c8k3p-c16k3-c16k5+1&0p")) == [8, 16, 24]
    assert MorphNet("c8k3p-c16k3-c16k5+1&0p").head.in_features == 24
    for bad in ("", "c8k4", "r8k3", "c8k3-r16k3", "conv8", "c8k3-c16k3+0", "c8k3-c8k3p-c8k3&0", "c8k3&0",
                "c8k3-c8k3+1", "c8k3-c8k3+0+0", "c8k3-r8k3&0", "c8k3-c8k3p+0"):
        with pytest.raises(NASInputError):
            parse_spec(bad)
    net = MorphNet("c4k3-r4k3")
    with pytest.raises(NASInputError):
        net2wider(net, 1, 8, np.random.default_rng(0))  # residual: its width follows block 0
    with pytest.raises(NASInputError):
        net2wider(net, 0, 4, np.random.default_rng(0))  # not wider
    with pytest.raises(NASInputError):
        net2wider(net, 0, 8, np.random.default_rng(0), noise=-1.0)
    with pytest.raises(NASInputError):
        net2deeper(net, 5)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_child_starts_at_its_parents_accuracy(trained, digits):
    parent = copy.deepcopy(trained)
    before = evaluate(parent, digits.valid_x, digits.valid_y)[1]
    child, _ = random_morphism(parent, np.random.default_rng(0), x=digits.train_x[:128])
    child, _ = random_morphism(child, np.random.default_rng(1), x=digits.train_x[:128])
    assert evaluate(child, digits.valid_x, digits.valid_y)[1] == pytest.approx(before, abs=1e-9)
    assert before > 30  # the parent learned something, so the equality is not trivial


def test_each_step_trains_the_parent_further_beside_its_children(digits):
    # Elsken et al.'s Algorithm 1: n_neigh - 1 morphed children and the current best trained further, so a step
    # whose children are all worse keeps the parent
    history = morphism_search(digits, steps=2, children=3, epochs=1, seed=0, progress=False,
                              start="c8k3p-c16k3p", batch_size=32)
    for g in (1, 2):
        step = history[history["generation"] == g]
        parent = history.loc[step["parent"].iloc[0]]
        assert (step["morphisms"] == PARENT_FURTHER).sum() == 1
        kept = step[step["morphisms"] == PARENT_FURTHER].iloc[0]
        assert kept["arch"] == parent["arch"] and kept["inherited_valid_acc"] == pytest.approx(parent["valid_acc"])
        assert (step.loc[step["morphisms"] != PARENT_FURTHER, "arch"] != parent["arch"]).all()
    with pytest.raises(NASInputError, match="keep_parent"):
        morphism_search(digits, steps=1, children=1, progress=False)
    plain = morphism_search(digits, steps=1, children=2, epochs=1, seed=0, progress=False, keep_parent=False,
                            start="c8k3p-c16k3p", batch_size=32)
    assert (plain["morphisms"].iloc[1:] != PARENT_FURTHER).all()


def test_a_child_no_morphism_fits_is_a_copy_and_leaves_its_parent_untrained(digits):
    # at the size limits (max_layers below the start's depth, max_channels below its widths) no morphism applies;
    # each child must then be trained as a copy, so that every child still begins where the parent ended
    history = morphism_search(digits, steps=1, children=3, epochs=1, seed=0, progress=False, keep_parent=False,
                              start="c8k3p-c16k3p", batch_size=32, max_channels=4, max_layers=1)
    children = history[history["generation"] == 1]
    assert children["morphisms"].str.startswith("none (size limits reached)").all()
    assert children["inherited_valid_acc"].to_numpy() == pytest.approx([history["valid_acc"].iloc[0]] * 3)


def test_morphism_search_history(digits):
    history = morphism_search(digits, steps=2, children=2, epochs=1, seed=0, progress=False,
                              start="c8k3p-c16k3p", start_epochs=2, batch_size=32)
    assert len(history) == 1 + 2 * 2
    assert list(history["generation"]) == [0, 1, 1, 2, 2]
    for _, row in history.iloc[1:].iterrows():  # every child begins exactly where its parent ended
        assert row["inherited_valid_acc"] == pytest.approx(history.loc[row["parent"], "valid_acc"], abs=1e-9)
    gen1, gen2 = history[history["generation"] == 1], history[history["generation"] == 2]
    assert gen2["parent"].iloc[0] == gen1["valid_acc"].idxmax()
    assert history["spent_s"].to_numpy() == pytest.approx(history["cost_s"].cumsum().to_numpy())
    # the History's answer is the best over all steps; NASH's (the last step's best) is kept beside it
    assert best(history)["valid_acc"] == history["valid_acc"].max()
    assert history.attrs["last_step_best"] == gen2["valid_acc"].idxmax()
    scratch = train_from_scratch(history.iloc[1:3], digits, progress=False)
    assert list(scratch["arch"]) == list(history["arch"].iloc[1:3])
    assert scratch["scratch_acc"].between(0, 100).all()


def test_costs_leave_out_the_flop_count(digits, monkeypatch):
    """A FLOP count is a measurement, not training: no search pays for it (``record.flops_seconds``), in the climb
    and in the training from scratch alike. Here the count is made to take 0.5 s."""
    count = training.count_flops

    def slow_count(*args, **kwargs):
        time.sleep(0.5)
        return count(*args, **kwargs)

    calls, real_train = [], morphism.train

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        record = real_train(*args, **kwargs)
        calls.append((time.perf_counter() - start, record.unpaid_seconds))
        return record

    monkeypatch.setattr(training, "count_flops", slow_count)
    monkeypatch.setattr(morphism, "train", timed_train)
    history = morphism_search(digits, steps=1, children=2, epochs=0.25, seed=0, progress=False,
                              start="c8k3p-c16k3p", batch_size=64)
    scratch = train_from_scratch(history.iloc[1:2], digits, progress=False)
    assert len(calls) == len(history) + 1
    assert all(unpaid >= 0.5 for _, unpaid in calls)
    charged = list(history["cost_s"]) + list(scratch["scratch_seconds"])
    for cost, (seconds, unpaid) in zip(charged, calls):
        assert seconds - unpaid <= cost < seconds - unpaid + 0.25


def test_nash_trains_the_answer_further_from_its_own_weights_when_asked(digits, monkeypatch):
    """Algorithm 1 ends by training the last step's best for epoch_final more epochs; the climb's rows stay as
    they were, and the final training starts from that network's trained weights, not from scratch."""
    entered, real = [], morphism._train_record

    def spy(model, data, epochs, *args):
        entered.append((evaluate(model, data.valid_x, data.valid_y)[1], epochs, str(model)))
        return real(model, data, epochs, *args)

    sizes = dict(steps=2, children=2, epochs=0.5, seed=0, progress=False, start="c8k3p-c16k3p", batch_size=32)
    plain = morphism_search(digits, **sizes)
    assert "final" not in plain.attrs
    monkeypatch.setattr(morphism, "_train_record", spy)
    history = morphism_search(digits, **sizes, final_epochs=1.5)
    final, row = history.attrs["final"], history.attrs["last_step_best"]
    assert history["valid_acc"].tolist() == plain["valid_acc"].tolist()  # the climb itself is unchanged
    assert len(entered) == len(history) + 1
    before, epochs, arch = entered[-1]
    assert epochs == 1.5 and arch == history.loc[row, "arch"] == final["arch"] and final["row"] == row
    assert before == pytest.approx(history.loc[row, "valid_acc"], abs=1e-9)  # its own weights, as trained
    assert 0 <= final["test_acc"] <= 100 and final["cost_s"] > 0 and final["epochs"] == 1.5
    assert morphism.FINAL_OVER_NEIGH == pytest.approx(20 / 17)
    for bad in (-1, "long", float("nan")):
        with pytest.raises(NASInputError, match="final_epochs"):
            morphism_search(digits, steps=1, children=2, progress=False, final_epochs=bad)
