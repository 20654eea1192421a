"""Shortcuts of incomplete training: halving, learning curves, predictors, zero-cost proxies, the ranking."""

import math

import numpy as np
import pytest
import torch
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
    hyperband,
    log_power,
    pow3,
    should_stop,
    successive_halving,
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
    assert fig.axes[0].get_xscale() == "log"
    assert not math.isnan(df["kendall_tau"].iloc[2])
