"""The table's reliability and spread (``bench/reliability.py``) and the seed-stacked trainer (``bench/stacked.py``)."""

import numpy as np
import pytest
import torch

from tutorial_nas.bench.build import Recipe, recipe_data
from tutorial_nas.bench.reliability import (
    has_convolution,
    pooled_seed_sd,
    projected_tau,
    reliability,
    split_tau,
    spread,
)
from tutorial_nas.bench.stacked import stack, train_stacked
from tutorial_nas.errors import NASInputError
from tutorial_nas.ops import FactorizedReduce
from tutorial_nas.spaces import cell as nb201
from tutorial_nas.train import TrainConfig, train


def simulated(cells=600, seeds=8, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=cells)[:, None] + rng.normal(scale=noise, size=(cells, seeds))


def test_projection_from_few_seeds_matches_the_tau_measured_with_many():
    acc = simulated()
    direct = split_tau(acc, 4)  # two disjoint groups of 4 seeds
    assert abs(projected_tau(split_tau(acc, 1), 1, 4) - direct) < 0.02
    assert abs(projected_tau(split_tau(acc, 2), 2, 4) - direct) < 0.02
    assert projected_tau(0.55, 1, 1) == pytest.approx(0.55)
    assert split_tau(acc, 1) < split_tau(acc, 2) < direct  # averaging seeds makes a ranking more reliable


def test_reliability_reports_measured_or_projected_with_a_standard_error():
    acc = simulated(seeds=3)
    one, four = reliability(acc, 1, n_boot=10), reliability(acc, 4, n_boot=10)
    assert one["measured"] and not four["measured"] and four["g"] == 1
    assert four["tau"] > one["tau"] and 0 < four["se"] < 0.1
    assert reliability(simulated(seeds=8), 4, n_boot=5)["measured"]
    assert reliability(acc[:, :1], 1)["tau"] is None  # one seed: nothing to measure


def test_spread_counts_resolved_pairs_and_ranks_the_cells_without_convolution():
    conv = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    dead = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")  # conv on a dead edge
    cut = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")  # no path at all
    assert has_convolution(conv) and not has_convolution(dead) and not has_convolution(cut)
    valid = np.array([90.0, 80.0, 70.0, 60.0])
    out = spread(valid, [conv, conv, dead, conv], seed_sd=1.0, k=1)
    assert out["best_minus_median"] == 15.0 and out["resolved_pairs"] == 1.0  # every gap of 10 exceeds 2.8
    assert out["conv_free_cells"] == 1 and out["conv_free_best_percentile"] == 25.0  # it beats one cell of four
    assert spread(valid, [conv] * 4, seed_sd=20.0, k=1)["resolved_pairs"] == 0.0
    assert pooled_seed_sd(np.array([[1.0, 3.0], [5.0, 7.0]])) == pytest.approx(np.sqrt(2.0))


def networks(arch, seeds, C=4):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(nb201.NB201Network(arch, 10, 1, C=C, N=1, stem_stride=2))
    return out


@pytest.fixture(scope="module")
def data():
    return recipe_data(Recipe(train_images=256))


@pytest.mark.parametrize("clip", [5.0, 0.05])  # 0.05: every step is clipped, by each seed's own norm
def test_stacked_seeds_train_as_they_would_alone(data, clip):
    arch = nb201.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    configs = [TrainConfig(epochs=0.5, batch_size=64, lr=0.2, augment=False, grad_clip=clip, seed=s) for s in (0, 1, 2)]
    alone = [train(m, data, c, progress=False) for m, c in zip(networks(arch, (0, 1, 2)), configs)]
    together = train_stacked(networks(arch, (0, 1, 2)), data, configs)
    for a, b in zip(alone, together):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
        assert b.valid_loss == pytest.approx(a.valid_loss, rel=1e-4)
        assert b.test_acc == pytest.approx(a.test_acc, abs=0.3)
        assert (b.params, b.flops) == (a.params, a.flops)
    assert len({round(r.valid_loss[-1], 4) for r in together}) == 3  # three seeds, three different networks


def test_the_stacked_pooling_is_the_cells_average_pooling_exactly():
    from tutorial_nas.bench.stacked import BoxMean3
    pool = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    for size in (7, 4, 2, 1):
        x = torch.randn(5, 6, size, size)
        assert torch.equal(BoxMean3()(x), pool(x))
        assert torch.equal(BoxMean3()(x.contiguous(memory_format=torch.channels_last)), pool(x))
    arch = nb201.parse("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    stacked = stack(networks(arch, (0, 1)))
    assert not any(isinstance(m, torch.nn.AvgPool2d) and m.kernel_size == 3 for m in stacked.modules())
    assert sum(isinstance(m, BoxMean3) for m in stacked.modules()) == 3 * 3  # 3 edges in each of the 3 cells


def test_stacking_refuses_what_it_cannot_keep_apart(data):
    a = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    b = nb201.parse("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    with pytest.raises(NASInputError, match="same structure"):
        stack(networks(a, (0,)) + networks(b, (1,)))
    with pytest.raises(NASInputError, match="cannot be stacked"):
        stack([torch.nn.Sequential(FactorizedReduce(4, 4))] * 2)
    cfg = TrainConfig(epochs=0.1, batch_size=64)
    with pytest.raises(NASInputError, match="only in their seed"):
        train_stacked(networks(a, (0, 1)), data, [cfg, TrainConfig(epochs=0.1, batch_size=32, seed=1)])


def test_a_table_of_seed_means_is_packed_and_reports_its_reliability(tmp_path):
    from tutorial_nas.bench import load_benchmark, pack
    from tutorial_nas.bench.build import build, read_results

    tiny = dict(data="digits", image_size=8, stem_stride=1, C=2, epochs=1, train_images=200, workers=1,
                progress=False, multi_seed_cells=4, seeds=4, seeds_per_cell=2)
    path = build(tmp_path / "b", limit=14, **tiny)  # 2 subset cells x 4 seeds, then 3 cells x 2 seeds
    rows = read_results(path)
    cells = {r["index"] for r in rows}
    assert len(rows) == 14 and all(len([r for r in rows if r["index"] == i]) in (2, 4) for i in cells)
    pack(tmp_path / "b", name="t", out_dir=tmp_path / "tables")
    bench = load_benchmark("t", directory=tmp_path / "tables")
    for i in cells:
        mine = sorted((r for r in rows if r["index"] == i and r["seed"] < 2), key=lambda r: r["seed"])
        got = bench.query(nb201.from_index(i))
        assert got["valid_acc"] == pytest.approx(np.mean([r["valid_acc"][-1] for r in mine]), abs=1e-4)
        assert got["test_acc"] == pytest.approx(np.mean([r["test_acc"] for r in mine]), abs=1e-4)
    stats = bench.stats()
    assert stats["seeds_per_cell"] == 2 and stats["reliability"]["k"] == 2 and "resolved_pairs" in stats["spread"]


def test_the_one_seed_tau_is_measured_over_pairs_of_seeds_not_projected():
    """With noise of very different sizes from cell to cell the normal projection misses the one-seed tau."""
    rng = np.random.default_rng(3)
    scale = np.where(rng.random(800) < 0.5, 0.1, 3.0)[:, None]  # half the cells nearly exact, half very noisy
    acc = rng.normal(size=800)[:, None] + rng.normal(size=(800, 6)) * scale
    from scipy.stats import kendalltau

    pairs = [kendalltau(acc[:, i], acc[:, j])[0] for i in range(6) for j in range(i + 1, 6)]
    one = reliability(acc, 6, n_boot=2)["tau_one_seed"]
    assert one == pytest.approx(np.mean(pairs))
    assert abs(projected_tau(split_tau(acc, 3), 3, 1) - one) > 0.02  # what the projection would have printed
