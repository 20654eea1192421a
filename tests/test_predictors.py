"""Shortcuts of incomplete training: halving, learning curves, predictors, zero-cost proxies, the ranking."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import kendalltau

from tutorial_nas.analysis.shortcuts import plot_shortcuts, rank_shortcuts
from tutorial_nas.bench import load_benchmark
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.predictors import (
    FLOOR,
    PROXIES,
    BenchEarlyEpoch,
    CurveExtrapolation,
    LowFidelityShortcut,
    PerformancePredictor,
    ZeroCostProxy,
    early_stopping,
    exp3,
    extrapolate,
    grad_norm,
    hyperband,
    jacob_cov,
    log_power,
    naswot,
    pow3,
    should_stop,
    snip,
    successive_halving,
    synflow,
)
from tutorial_nas.spaces.cell import NB201Space, encode_path, parse
from tutorial_nas.train import TrainRecord

torch.set_num_threads(1)


# -- learning curves -----------------------------------------------------------------------------------------

CURVE_FAMILIES = [(pow3, (90.0, 60.0, 0.8)), (pow3, (82.0, 40.0, 1.2)), (exp3, (92.0, 50.0, 0.3)),
                  (exp3, (85.0, 70.0, 0.2)), (log_power, (95.0, 1.0, -1.5)), (log_power, (88.0, 0.5, -2.0))]


@pytest.mark.parametrize("family, params", CURVE_FAMILIES)
def test_extrapolation_predicts_the_final_point_of_known_curves(family, params):
    x = np.arange(1, 21)
    clean = family(x, *params)
    noisy = clean + np.random.default_rng(0).normal(0, 0.1, len(x))
    prediction = extrapolate(noisy[:10], final_epoch=20)
    assert abs(prediction - clean[-1]) < 2.0
    assert abs(noisy[9] - clean[-1]) > 0.3  # the last observed point alone would not be the answer


def test_extrapolation_fallbacks():
    assert extrapolate([40.0, 50.0], final_epoch=10) == 50.0  # too few points for a 3-parameter curve
    assert extrapolate([10.0, 10.0, 10.0, 10.0], final_epoch=50) == pytest.approx(10.0, abs=0.5)
    assert 0 <= extrapolate([1, 90, 2, 95, 3], final_epoch=100) <= 100
    assert extrapolate([30, 40, 50], final_epoch=2) == 40  # already observed
    with pytest.raises(NASInputError):
        extrapolate([], final_epoch=5)


def test_early_stopping_rule():
    x = np.arange(1, 6)
    poor, good = pow3(x, 60, 40, 1.0), pow3(x, 95, 60, 1.0)
    assert should_stop(poor, final_epoch=20, best_so_far=90)
    assert not should_stop(good, final_epoch=20, best_so_far=90)
    on_epoch = early_stopping(final_epoch=20, best_so_far=90, min_epochs=3)
    assert not on_epoch(2, TrainRecord(valid_acc=list(poor[:2])))  # not enough evidence yet
    assert on_epoch(5, TrainRecord(valid_acc=list(poor)))
    # as Domhan et al.'s termination criterion: a curve too short to fit goes on (the last value does not stop
    # it), and so does a run whose accuracy so far already beats the best
    assert extrapolate(poor[:2], final_epoch=20, fallback=False) is None
    assert not should_stop(poor[:2], final_epoch=20, best_so_far=90)
    assert not should_stop([95.0, 60.0, 61.0, 61.5], final_epoch=20, best_so_far=90)
    assert should_stop([55.0, 60.0, 61.0, 61.5], final_epoch=20, best_so_far=90)


# -- successive halving and hyperband ------------------------------------------------------------------------


def noisy_quality(cell, budget):
    """A cell's true quality is its number; small budgets see it through more noise."""
    return cell + np.random.default_rng(int(cell * 1000 + budget)).normal(0, 3.0 / budget)


def test_successive_halving_keeps_the_best_and_spends_little():
    run = successive_halving(list(range(27)), noisy_quality, min_budget=1, max_budget=9, eta=3)
    counts = run.log.groupby("round").size().tolist()
    assert counts == [27, 9, 3]
    assert list(run.log.groupby("round")["budget"].first()) == [1, 3, 9]
    assert run.best >= 24
    total = (run.log["budget"]).sum()
    assert total < 27 * 9 / 2  # far below training all 27 fully
    with pytest.raises(NASInputError):
        successive_halving([1, 2], noisy_quality, min_budget=3, max_budget=1)


def test_hyperband_finds_a_good_cell():
    def sample(n, rng):
        return list(rng.choice(100, size=n, replace=False))

    run = hyperband(sample, noisy_quality, min_budget=1, max_budget=9, eta=3, rng=np.random.default_rng(0))
    assert set(run.log["bracket"]) == {0, 1, 2}
    assert run.best >= 80


def test_hyperband_brackets_have_their_s_plus_one_rounds_whatever_the_rounding():
    # 200 / 3 x 3 is 199.99999999999997 in floating point: bracket 1 ran a third round at the full budget
    run = hyperband(lambda n, rng: list(range(n)), lambda c, b: float(c), 1, 200, eta=3)
    for s, bracket in run.log.groupby("bracket"):
        rounds = bracket.groupby("round")["budget"].first()
        assert len(rounds) == s + 1 and rounds.iloc[-1] == 200 and rounds.is_monotonic_increasing, s
        assert rounds.iloc[0] == pytest.approx(200 * 3.0 ** -s)


def test_extrapolate_refuses_an_epoch_before_the_first():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(NASInputError, match="final_epoch"):
            extrapolate([10.0, 20.0, 30.0], bad)


# -- performance predictor -----------------------------------------------------------------------------------


def test_predictor_learns_a_synthetic_function():
    rng = np.random.default_rng(0)
    X = (rng.random((300, 40)) < 0.3).astype(np.float32)
    w = rng.normal(size=40)
    y = 70 + 3 * X @ w
    model = PerformancePredictor(seed=0).fit(X[:200], y[:200])
    mean, std = model.predict(X[200:], return_std=True)
    assert kendalltau(mean, y[200:])[0] > 0.6
    assert (std >= 0).all() and std.mean() > 0
    with pytest.raises(NASInputError):
        PerformancePredictor().predict(X)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


def test_predictor_on_200_benchmark_cells_ranks_held_out_cells(bench):
    frame = bench.frame().sample(frac=1.0, random_state=0)
    assert len(frame) >= 250, f"a table of {len(frame)} cells leaves too few held-out cells"
    train, test = frame.iloc[:200], frame.iloc[200:500]
    X = lambda df: np.stack([encode_path(parse(a)) for a in df["arch"]])  # noqa: E731
    model = PerformancePredictor(seed=0).fit(X(train), train["valid_acc"].to_numpy())
    tau = kendalltau(model.predict(X(test)), test["test_acc"].to_numpy())[0]
    assert tau > 0.3


# -- zero-cost proxies ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_data():
    return load_dataset("mnist5k", image_size=14)  # the benchmark's data


@pytest.mark.parametrize("proxy", sorted(PROXIES))
def test_zero_cost_proxies_are_finite_for_every_cell(proxy, small_data):
    rng = np.random.default_rng(0)
    cells = [NB201Space().sample(rng) for _ in range(6)]
    cells += [("none",) * 6, ("skip_connect",) * 6, ("none", "none", "none", "skip_connect", "none", "none"),
              ("nor_conv_3x3", "none", "none", "none", "none", "none")]  # the last one is disconnected
    shortcut = ZeroCostProxy(proxy, small_data, C=4, N=1, batch_size=32)
    scores = shortcut.score(cells)
    assert np.isfinite(scores).all()
    assert shortcut.cost_s > 0
    real = scores[scores > FLOOR]
    assert len(real) >= 6 and len(np.unique(real)) > 3  # the proxy tells cells apart
    assert shortcut.floored == int((scores == FLOOR).sum())


def conv_bn_net(seed: int = 0) -> nn.Module:
    """Conv (with bias) -> BN -> ReLU -> pool -> Linear (with bias): parameters the proxies must leave out."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, bias=True), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(3, 4, bias=True))
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.uniform_(-1.0, 1.0)
    return net


def test_grad_norm_and_snip_sum_over_conv_and_linear_weights_only():
    net, x, y = conv_bn_net(), torch.randn(16, 1, 6, 6), torch.randint(0, 4, (16,))
    net.train()
    loss = F.cross_entropy(net(x), y)
    grads = dict(zip([n for n, _ in net.named_parameters()], torch.autograd.grad(loss, list(net.parameters()))))
    weights = {"0.weight": net[0].weight, "5.weight": net[5].weight}
    assert grad_norm(net, x, y) == pytest.approx(sum(grads[k].norm().item() for k in weights), rel=1e-6)
    assert snip(net, x, y) == pytest.approx(sum((w * grads[k]).abs().sum().item() for k, w in weights.items()),
                                            rel=1e-6)
    every = sum(g.norm().item() for g in grads.values())  # what a sum over every parameter would give
    assert every > 1.2 * grad_norm(net, x, y)


def test_snip_of_a_network_with_a_zeroed_layer_is_zero():
    """A zero weight can be removed at no cost: SNIP gives it nothing, and the layers before it get no gradient."""
    net, x, y = conv_bn_net(), torch.randn(16, 1, 6, 6), torch.randint(0, 4, (16,))
    with torch.no_grad():
        net[5].weight.zero_()
    assert snip(net, x, y) == 0.0
    assert grad_norm(net, x, y) > 0  # the zeroed layer's own gradient is not zero


def test_synflow_of_a_linear_network_has_its_closed_form():
    """Made positive, with batch norm removed, f(1) = 1'|W2|(|W1| 1 + |b1|) + 1'|b2| is linear in each weight
    matrix, so the synflow sum over W1 is 1'|W2||W1|1 and over W2 it is 1'|W2|(|W1|1 + |b1|); biases and
    batch norm count for nothing."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        net[0].bias.fill_(-2.0)
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(2, 3)
        net[1].weight.uniform_(0.2, 0.5)
    before = [p.clone() for p in net.parameters()]
    W1, b1, W2 = (net[0].weight.abs().double(), net[0].bias.abs().double(), net[3].weight.abs().double())
    ones = torch.ones(5, dtype=torch.float64)
    expected = (W2 @ W1 @ ones).sum() + (W2 @ (W1 @ ones + b1)).sum()
    assert synflow(net, torch.randn(2, 5), None) == pytest.approx(math.log(expected.item()), abs=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the network itself is untouched


class TwoBranches(nn.Module):
    """relu(a(x)) feeds the head; with ``dead`` a second ReLU branch is computed and thrown away."""

    def __init__(self, dead: bool):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = nn.Linear(4, 24), nn.Linear(4, 24), nn.Linear(24, 3)
        self.relu_a, self.relu_b, self.dead = nn.ReLU(), nn.ReLU(), dead

    def forward(self, x):
        if self.dead:
            self.relu_b(self.b(x))
        return self.head(self.relu_a(self.a(x)))


def test_naswot_is_the_log_determinant_of_the_agreement_counts():
    x = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    assert naswot(nn.Sequential(nn.ReLU()), x, None) == pytest.approx(math.log(4 * 4 - 2 * 2))  # K = [[4,2],[2,4]]
    x = torch.randn(6, 4)
    c = (TwoBranches(dead=False).a(x) > 0).double()
    expected = torch.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)[1].item()
    assert naswot(TwoBranches(dead=False), x, None) == pytest.approx(expected, abs=1e-9)
    assert naswot(TwoBranches(dead=True), x, None) == pytest.approx(expected, abs=1e-9)  # dead ReLUs do not count


def test_jacob_cov_of_identical_and_distinct_jacobians():
    """A linear network has the same input Jacobian for every input: the correlation matrix is all ones, with
    eigenvalues N and 0 (N - 1 times), the lowest score. Distinct inputs of a ReLU network score higher."""
    n, k = 8, 1e-5
    worst = -(math.log(n + k) + 1 / (n + k)) - (n - 1) * (math.log(k) + 1 / k)
    torch.manual_seed(0)
    assert jacob_cov(nn.Linear(10, 3), torch.randn(n, 10), None) == pytest.approx(worst, rel=1e-6)
    relu_net = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
    same = torch.randn(1, 10).repeat(n, 1)
    assert jacob_cov(relu_net, same, None) == pytest.approx(worst, rel=1e-6)
    distinct = jacob_cov(relu_net, torch.randn(n, 10), None)
    assert worst / 1000 < distinct <= -n * (math.log(1 + k) + 1 / (1 + k)) + 1e-9  # the top: uncorrelated


def test_low_fidelity_training_scores_cells(small_data):
    cells = [("nor_conv_3x3",) * 6, ("none",) * 6]
    shortcut = LowFidelityShortcut(small_data, epochs=0.2, C=4, N=1)
    scores = shortcut.score(cells)
    assert scores[0] > scores[1]  # a cell that passes nothing through is worse than one of convolutions
    assert shortcut.cost_s > 0


# -- the ranking against the benchmark -----------------------------------------------------------------------


def test_rank_shortcuts_against_the_benchmark(bench, small_data):
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:25]]
    shortcuts = [BenchEarlyEpoch(bench, 1), CurveExtrapolation(bench, max(1, bench.epochs - 1)),
                 BenchEarlyEpoch(bench, bench.epochs),
                 ZeroCostProxy("synflow", small_data, C=4, N=1,
                               stem_stride=bench.recipe.get("stem_stride", 1))]
    df = rank_shortcuts(cells, bench, small_data, progress=False, shortcuts=shortcuts)
    assert list(df["shortcut"]) == [s.name for s in shortcuts]
    assert df["kendall_tau"].between(-1, 1).all() and df["spearman_rho"].between(-1, 1).all()
    # the full-length validation accuracy ranks test accuracy better than its first epoch does
    assert df["kendall_tau"].iloc[2] >= df["kendall_tau"].iloc[0]
    full = sum(bench.query(a)["train_seconds"] for a in map(NB201Space().to_str, cells))
    assert df["cost_s"].iloc[0] == pytest.approx(full / bench.epochs, rel=1e-6, abs=1.0)
    fig = plot_shortcuts(df)
    assert fig.axes[1].get_xscale() == "log"  # the cost panel
    assert not math.isnan(df["kendall_tau"].iloc[2])


def test_naswot_on_the_nb201_cell_counts_the_relus_a_none_edge_cuts_off_as_the_reference_network_does():
    """The reference's NAS-Bench-201 network keeps ``none`` as x * 0, so a backward pass reaches every ReLU: a
    convolution on edge 0->1 whose node 1 feeds only ``none`` edges still counts. ``ZeroCostProxy`` counts it
    (every ReLU that ran), the generic ``naswot`` does not (nothing the output depends on)."""
    from tutorial_nas.predictors import ZeroCostProxy
    from tutorial_nas.spaces.cell import NB201Network

    data = load_dataset("digits", image_size=8)
    cell = ("nor_conv_3x3", "skip_connect", "none", "none", "none", "skip_connect")  # node 1 leads nowhere
    proxy = ZeroCostProxy("naswot", data, C=4, N=1, batch_size=16)
    torch.manual_seed(0)
    model = NB201Network(cell, data.num_classes, data.in_channels, C=4, N=1)
    inputs = []
    hooks = [m.register_forward_hook(lambda _m, i, _o: inputs.append(i[0].detach()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    model.train()
    model(proxy.x)
    for h in hooks:
        h.remove()
    c = torch.cat([(a > 0).flatten(1).double() for a in inputs], dim=1)
    every_relu = torch.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)[1].item()
    assert proxy.score_one(cell) == pytest.approx(every_relu, abs=1e-9)
    torch.manual_seed(0)
    model = NB201Network(cell, data.num_classes, data.in_channels, C=4, N=1)
    assert naswot(model, proxy.x, proxy.y) != pytest.approx(every_relu, abs=1e-6)  # live ReLUs only
