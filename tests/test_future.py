"""Chapter 4: cutout and the tricks' settings, latency measurement, the Pareto front, MnasNet's reward, the
latency-aware evaluator, DARTS' remedies against collapse, and the supernet analyses (ranking, forgetting).

The tests do not need the shipped benchmark table: a small stand-in answers for every cell."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_nas.analysis import hardware, tricks
from tutorial_nas.analysis import supernets as sa
from tutorial_nas.bench.build import Recipe
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot.darts import darts_search, derive_nb201
from tutorial_nas.ops import NB201_OPS
from tutorial_nas.spaces.cell import NB201Space, parse, to_str

torch.set_num_threads(1)

RECIPE = dict(Recipe().__dict__)


class StandIn:
    """Answers like ``Benchmark.query`` for every cell: accuracy grows with the convolutions in the cell."""

    recipe = RECIPE

    def query(self, arch, epoch=None):
        cell = parse(arch) if isinstance(arch, str) else tuple(arch)
        convs = sum(op.startswith("nor_conv") for op in cell)
        acc = 60.0 + 5 * convs + 0.5 * sum(op == "skip_connect" for op in cell)
        return {"arch": to_str(cell), "valid_acc": acc, "test_acc": acc - 1, "train_seconds": 1.0,
                "params": 1000 * (1 + convs), "flops": 10_000 * (1 + convs), "valid_curve": (acc,)}


@pytest.fixture(scope="module")
def tiny():
    """Digits at 8x8 with a fifth of the training split: seconds, not minutes."""
    return load_dataset("digits").subset(0.2)


# --- tricks -------------------------------------------------------------------------------------------------

def test_cutout_zeros_one_square_per_image():
    x = torch.ones(64, 1, 14, 14)
    out = tricks.cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert (zeros <= 16).all() and (zeros >= 4).all()  # a 4x4 square, at least a 2x2 corner of it inside
    assert ((out == 0) | (out == 1)).all()
    rows = (out[:, 0] == 0).any(dim=2).sum(dim=1)  # the zeros of an image span at most 4 rows
    assert (rows <= 4).all()
    with pytest.raises(NASInputError):
        tricks.cutout(x, 0)


def test_cutout_layer_only_in_training():
    layer = tricks.Cutout(3)
    x = torch.ones(8, 1, 6, 6)
    assert torch.equal(layer.eval()(x), x)
    assert (layer.train()(x) == 0).any()


def test_trick_settings():
    recipe = Recipe()
    base, size = tricks.trick_settings("baseline", recipe)
    assert (base.epochs, base.label_smoothing, base.augment, size) == (recipe.epochs, 0.0, False, 0)
    cfg, size = tricks.trick_settings("all", recipe, longer=2, cutout_size=4)
    assert (cfg.epochs, cfg.label_smoothing, cfg.augment, size) == (2 * recipe.epochs, 0.1, True, 4)
    with pytest.raises(NASInputError, match="unknown trick"):
        tricks.trick_settings("mixup", recipe)


def test_gains_compare_the_same_cell():
    import pandas as pd

    table = pd.DataFrame([
        {"role": "search 1", "group": "search", "arch": "a", "seed": 0, "trick": "baseline", "test_acc": 90.0},
        {"role": "search 1", "group": "search", "arch": "a", "seed": 0, "trick": "all", "test_acc": 92.0},
        {"role": "random 1", "group": "random", "arch": "b", "seed": 0, "trick": "baseline", "test_acc": 80.0},
        {"role": "random 1", "group": "random", "arch": "b", "seed": 0, "trick": "all", "test_acc": 81.0},
    ])
    g = tricks.gains(table).set_index("what")["gain"]
    assert g["trick: all"] == pytest.approx(1.5)
    assert g["search: picked vs random cells"] == pytest.approx(10.0)


# --- latency and the Pareto front ---------------------------------------------------------------------------

def test_latency_is_repeatable_within_a_factor_of_three():
    """Two measurements of the same model on the same machine agree within a factor of 3: generous, since
    the machine is shared and the other processes come and go; the median already drops the outliers."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
    a = hardware.measure_latency(model, (3, 32, 32), "cpu", warmup=3, repeats=25)
    b = hardware.measure_latency(model, (3, 32, 32), "cpu", warmup=3, repeats=25)
    assert a > 0 and b > 0
    assert max(a, b) / min(a, b) < 3.0


def test_latency_rejects_bad_input():
    model = nn.Conv2d(1, 1, 1)
    with pytest.raises(NASInputError):
        hardware.measure_latency(model, (1, 4), "cpu")
    with pytest.raises(NASInputError):
        hardware.measure_latency(model, (1, 4, 4), "cpu", repeats=0)


def dominated(p, q):
    """q dominates p (maximise column 0, minimise column 1)."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40))
def test_pareto_front_is_exactly_the_non_dominated_points(points):
    front = set(hardware.pareto_front(points).tolist())
    for i, p in enumerate(points):
        is_dominated = any(dominated(p, q) for q in points)
        assert (i in front) == (not is_dominated)


def test_pareto_front_directions_and_errors():
    pts = [(1.0, 1.0), (2.0, 2.0), (0.5, 3.0)]
    assert hardware.pareto_front(pts).tolist() == [0, 1]
    assert hardware.pareto_front(pts, maximize=(True, True)).tolist() == [1, 2]
    with pytest.raises(NASInputError):
        hardware.pareto_front([(1.0, 2.0, 3.0)])
    with pytest.raises(NASInputError):
        hardware.pareto_front([(1.0, float("nan"))])


def test_mnas_reward():
    assert hardware.mnas_reward(90.0, 10.0, 10.0) == pytest.approx(90.0)
    assert hardware.mnas_reward(90.0, 20.0, 10.0) < 90.0 < hardware.mnas_reward(90.0, 5.0, 10.0)
    # the soft constraint's exponent, -0.07 on both sides (Tan et al.: twice the latency for about 5 % accuracy)
    assert hardware.mnas_reward(90.0, 20.0, 10.0) == pytest.approx(90.0 * 2 ** -0.07)
    assert hardware.mnas_reward(90.0, 5.0, 10.0) == pytest.approx(90.0 * 0.5 ** -0.07)
    assert hardware.mnas_reward(90.0, 5.0, 10.0, alpha=0.0, beta=-1.0) == 90.0  # hard constraint
    assert hardware.mnas_reward(90.0, 20.0, 10.0, alpha=0.0, beta=-1.0) == pytest.approx(45.0)


def test_latency_aware_measures_each_cell_once():
    space = NB201Space()
    ev = hardware.LatencyAware(space, StandIn(), target_ms=1.0, repeats=3, warmup=1)
    arch = space.sample(np.random.default_rng(0))
    r1, r2 = ev.evaluate(arch), ev.evaluate(arch)
    assert len(ev.latencies) == 1 and r1.info["latency_ms"] == r2.info["latency_ms"]
    assert r1.info["accuracy"] == StandIn().query(arch)["valid_acc"]
    assert r1.valid_acc == pytest.approx(hardware.mnas_reward(r1.info["accuracy"], r1.info["latency_ms"], 1.0))
    with pytest.raises(NASInputError):
        hardware.LatencyAware(space, StandIn(), target_ms=0)


def test_pareto_search_returns_its_front():
    space = NB201Space()
    ev = hardware.LatencyAware(space, StandIn(), target_ms=1.0, objective="accuracy", repeats=2, warmup=0)
    h = hardware.pareto_search(space, ev, budget=15, seed=0, initial=5)
    assert len(h) == 15 and h["on_front"].any()
    pts = h[["accuracy", "latency_ms"]].to_numpy()
    for i in np.flatnonzero(h["on_front"]):
        assert not any(dominated(pts[i], q) for q in pts)
    assert set(hardware.summarize_front(h)["arch"]) == set(h.loc[h.on_front, "arch"])
    twice = pd.concat([h, h[h.on_front].head(1)], ignore_index=True)  # a cell the search met again
    assert hardware.summarize_front(twice)["arch"].is_unique
    assert len(hardware.summarize_front(twice)) == h.loc[h.on_front, "arch"].nunique()


# --- DARTS collapse and its remedies ------------------------------------------------------------------------

def test_skip_limit_is_honoured_by_the_derived_cell():
    skip = NB201_OPS.index("skip_connect")
    alpha = np.zeros((6, len(NB201_OPS)))
    alpha[:, skip] = 3.0  # skip connections win every edge
    assert parse(to_str(derive_nb201(alpha))).count("skip_connect") == 6
    for limit in range(4):
        assert derive_nb201(alpha, limit).count("skip_connect") == limit


@pytest.fixture(scope="module")
def plain(tiny):
    return darts_search(space="nb201", data=tiny, epochs=2, C=4, N=1, batch_size=64, progress=False, seed=0)


def test_remedies_return_a_cell_and_match_a_real_run(tiny, plain):
    capped = darts_search(space="nb201", data=tiny, epochs=2, C=4, N=1, batch_size=64, progress=False, seed=0,
                          skip_limit=0)
    assert (capped["n_skip"] == 0).all()
    table = sa.darts_remedies(plain, StandIn(), skip_limit=0, early_stop=0)
    assert table["capped"].tolist() == capped["arch"].tolist()  # re-reading the plain run = running with the cap
    assert (table["capped_n_skip"] == 0).all()
    stopped = darts_search(space="nb201", data=tiny, epochs=2, C=4, N=1, batch_size=64, progress=False, seed=0,
                           early_stop=lambda row: True)
    assert len(stopped) == 1 and parse(stopped["arch"].iloc[0])  # stopped after one epoch, with a cell
    for col in ("darts", "capped", "early_stop"):
        assert all(parse(a) for a in table[col])
    with pytest.raises(NASInputError):
        sa.darts_remedies(stopped.drop(columns="alphas"), StandIn())


def test_ranking_and_forgetting_tables(tiny):
    rng, space = np.random.default_rng(0), NB201Space()
    cells = [to_str(space.sample(rng)) for _ in range(6)]
    r = sa.ranking_over_training(tiny, StandIn(), cells, epochs=2, C=4, stem_stride=1, batch_size=64)
    assert r["epoch"].tolist() == [1, 2] and r["kendall_tau"].between(-1, 1).all()
    assert len(r["ws_acc"].iloc[0]) == 6
    f = sa.forgetting(tiny, cells[:2], cells[2:4], warm_epochs=1, epochs=1, C=4, stem_stride=1, batch_size=64)
    assert len(f) == 2 * 4 and set(f["epoch"]) == {0, 1}
    with pytest.raises(NASInputError):
        sa.ranking_over_training(tiny, StandIn(), cells[:2], epochs=1)
