"""Chapter 4's supernet analyses: the collapse counted epoch by epoch, a supernet trained under one schedule
with checkpoints, whether it has learned, forgetting from a trained supernet, and each verdict in words."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from tutorial_nas.analysis import supernets as sa
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot import nsas
from tutorial_nas.ops import NB201_OPS
from tutorial_nas.spaces.cell import NB201Space, to_str

torch.set_num_threads(1)


class Table:
    """Answers like ``Benchmark.query``: accuracy grows with the convolutions in the cell."""

    def query(self, arch, epoch=None):
        acc = 60.0 + 5 * str(arch).count("nor_conv")
        return {"valid_acc": acc, "test_acc": acc - 1}


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("digits").subset(0.2)


def history(cells, alphas):
    frame = pd.DataFrame({"epoch": range(1, len(cells) + 1), "arch": [to_str(c) for c in cells],
                          "alphas": [{"cell": a} for a in alphas], "test_acc": 50.0})
    frame.attrs["space"] = "nb201"
    return frame


def test_collapse_table_counts_parameter_free_edges_and_the_entropy():
    conv, skip, none, pool = "nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3"
    cells = [(conv,) * 6, (skip, conv, conv, none, pool, conv), (skip,) * 4 + (none, pool)]
    uniform = np.full((6, 5), 0.2)
    peaked = np.full((6, 5), 1e-9)
    peaked[:, 0] = 1.0
    table = sa.collapse_table(history(cells, [uniform, uniform, peaked]))
    assert table["param_free"].tolist() == [0, 3, 6]
    assert table["n_skip"].tolist() == [0, 1, 4] and table["n_none"].tolist() == [0, 1, 1]
    assert table["n_pool"].tolist() == [0, 1, 1]
    assert table["entropy"].iloc[0] == pytest.approx(np.log(5)) and table["entropy"].iloc[2] < 1e-6
    # the softmax weight on none, skip_connect and avg_pool_3x3: 3/5 when uniform, all of it on `none`
    assert table["free_weight"].tolist() == pytest.approx([0.6, 0.6, 1.0])
    with pytest.raises(NASInputError):
        sa.collapse_table(history(cells, [uniform] * 3).drop(columns="alphas"))


def test_collapse_verdict_follows_the_counts():
    def verdict(counts):
        return sa.collapse_verdict(pd.DataFrame({"param_free": counts, "n_skip": counts}))

    assert "the collapse" in verdict([1, 1, 2, 4, 5, 6])
    assert "no full collapse" in verdict([0, 0, 1, 1, 2, 2])
    assert "did not rise" in verdict([4, 4, 4, 3, 3, 3])
    assert "one epoch" in verdict([5])
    # a run measured at CPU scale (N=3, arch lr 3e-2, 30 epochs): pooling early, skip connections and none late
    measured = [4, 3, 4, 3, 4, 5, 5, 5, 5, 5, 6, 5, 5, 6, 6, 6, 6, 6, 6, 6, 5, 6, 6, 5, 5, 5, 5, 5, 5, 5]
    assert verdict(measured).endswith("the collapse")
    assert "did not rise" in verdict([5, 5, 5, 5, 5, 5])


def test_counts_rose_is_the_verdicts_trend_and_not_the_last_cells_state():
    table = pd.DataFrame({"param_free": [6, 4, 3, 4, 5, 5, 5, 5, 4], "n_skip": [1] * 9,
                          "free_weight": [0.64, 0.62, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]})
    assert not sa.counts_rose(table) and "0.62 -> 0.60" in sa.collapse_verdict(table)
    assert sa.counts_rose(table.assign(param_free=[1, 1, 2, 3, 4, 4, 5, 5, 6]))
    assert not sa.counts_rose(table.iloc[:1])
    cut = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    # a last cell parameter-free in effect is a collapse by the verdict, yet the counts did not rise
    assert sa.collapsed(sa.collapse_verdict(table.assign(arch=cut))) and not sa.counts_rose(table)


def test_skip_connections_taking_over_is_the_skip_collapse_even_where_the_total_falls():
    """Chapter 4's cpu run (5 cells a stage): pooling in the first epochs gives way to skip connections, so the
    parameter-free total falls (4.9 -> 4.1) while skip connections rise from 1 to 4-6."""
    skips = [1, 1, 4, 3, 3, 4, 5, 5, 5, 5, 5, 4, 3, 5, 5, 5, 6, 6, 6, 5, 4, 4, 4, 5, 4, 4, 4, 4, 4, 4]
    free = [5, 5, 5, 5, 4, 5, 5, 5, 5, 5, 5, 4, 4, 5, 5, 5, 6, 6, 6, 5, 4, 4, 4, 5, 4, 4, 4, 4, 4, 4]
    table = pd.DataFrame({"param_free": free, "n_skip": skips})
    assert sa.skips_rose(table) and not sa.counts_rose(table)
    verdict = sa.collapse_verdict(table)
    assert verdict.endswith("the skip-connection collapse") and sa.collapsed(verdict)
    # the takeover came by epoch 3 and the thirds differ by half an edge: an early takeover, not a drift
    assert "first held half the cell (3 of 6 edges) or more at epoch 3, within the first 10 epochs" in verdict
    assert "from 3.6 over the first 10 epochs to 4.1 over the last 10 epochs, a change of +0.5 edges" in verdict
    assert "an early takeover, not a drift over the search" in verdict and "first tenth" not in verdict
    assert "4.9 on average over the first 10 epochs (the first third of the search)" in verdict  # each window named
    flat = sa.collapse_verdict(table.assign(free_weight=[0.64] * 30))
    assert "did not rise)" in flat and flat.endswith("the skip-connection collapse")
    # Dong & Yang's collapse is a degraded cell: a takeover whose last cell beats most of the table is named apart
    reference = np.linspace(10, 90, 81)
    good = sa.collapse_verdict(table.assign(test_acc=[80.0] * 30), reference)
    assert good.endswith("not a degraded cell") and "better than 86% of the table's cells" in good
    assert not sa.collapsed(good)
    poor = sa.collapse_verdict(table.assign(test_acc=[30.0] * 30), reference)
    assert poor.endswith("the skip-connection collapse") and sa.collapsed(poor) and "only 25%" in poor
    # skips that rise but stay a minority of the cell are no takeover
    assert not sa.skips_rose(table.assign(n_skip=[0] * 15 + [2] * 15))
    assert not sa.skips_rose(table.iloc[:1])


def test_weight_rose_reads_the_alphas_drift_where_the_counts_stay():
    """A run measured at CPU scale (seed 0, N=3, arch lr 3e-2): five parameter-free edges from the first epoch,
    while the alphas' weight on those operations climbs from 0.63 to 0.75."""
    weight = [0.627, 0.639, 0.638, 0.628, 0.649, 0.654, 0.657, 0.658, 0.687, 0.676, 0.702, 0.69, 0.697, 0.703,
              0.728, 0.723, 0.72, 0.732, 0.739, 0.738, 0.744, 0.741, 0.736, 0.744, 0.748, 0.75, 0.757, 0.746,
              0.751, 0.755]
    table = pd.DataFrame({"param_free": [5] * 30, "n_skip": [1] * 30, "free_weight": weight})
    assert sa.weight_rose(table) and not sa.counts_rose(table)
    assert "weight on parameter-free operations did" in sa.collapse_verdict(table)
    falling = table.assign(free_weight=weight[::-1])
    assert not sa.weight_rose(falling) and "they did not rise" in sa.collapse_verdict(falling)
    assert not sa.weight_rose(table.drop(columns="free_weight"))


def test_the_skip_reading_tells_an_early_takeover_from_a_drift_over_the_search():
    """Two series with the same start (1 skip connection) and end (4): one takes over in its third epoch and
    stays level, the other creeps up over the search. Only the second is a rise between the thirds."""
    early = pd.DataFrame({"epoch": range(1, 31), "n_skip": [1, 1] + [4] * 28, "param_free": [5] * 30})
    late = pd.DataFrame({"epoch": range(1, 31), "n_skip": [1] * 12 + [2] * 8 + [3] * 4 + [4] * 6,
                         "param_free": [5] * 30})
    e, d = sa.skip_course(early), sa.skip_course(late)
    assert (e["reached"], e["early"], e["held"], e["after"]) == (3, True, 28, 28)
    assert e["first_third"] == pytest.approx(3.4) and e["last_third"] == 4 and not e["rose"]
    assert (d["reached"], d["early"], d["rose"]) == (21, False, True) and d["change"] == pytest.approx(2.6)
    # both are a takeover by skips_rose (the first epochs against the last third); the words tell them apart
    assert sa.skips_rose(early) and sa.skips_rose(late)
    assert sa.skip_reading(early).endswith("an early takeover, not a drift over the search")
    assert sa.skip_reading(late).endswith("a rise over the search") and "after the first 10 epochs" in \
        sa.skip_reading(late)
    assert "an early takeover, not a drift" in sa.collapse_verdict(early)
    assert "a rise over the search" in sa.collapse_verdict(late)
    # a takeover by epoch 2 that goes on rising by more than an edge, and a peak in the middle of the search
    rising = early.assign(n_skip=[1, 3, 3, 3, 3, 3, 3, 3, 3, 3] + [4] * 10 + [5] * 10)
    assert sa.skip_reading(rising).endswith("an early takeover that went on rising over the search")
    peaked = early.assign(n_skip=[1, 1] + [4] * 12 + [6] * 3 + [4] * 13)
    assert "they peaked at 6 (first at epoch 15, last at epoch 17), then came down to 4" in sa.skip_reading(peaked)
    never = sa.skip_reading(early.assign(n_skip=[1] * 30))
    assert never.startswith("skip connections never held half the cell")
    with pytest.raises(NASInputError, match="no epochs"):
        sa.skip_course(early.iloc[:0])


def test_tau_interval_bootstraps_the_cells():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    scores = truth + rng.normal(size=30)
    low, high = sa.tau_interval(scores, truth)
    from scipy.stats import kendalltau

    tau = kendalltau(scores, truth).statistic
    assert low < tau < high and 0.1 < high - low < 0.6
    assert sa.tau_interval(truth, truth) == pytest.approx((1.0, 1.0))  # a perfect ranking stays perfect
    wide = sa.tau_interval(scores[:8], truth[:8])
    assert wide[1] - wide[0] > high - low  # fewer cells, a wider interval
    assert sa.tau_interval(scores, truth, seed=0) == (low, high)  # the same draws for the same seed
    with pytest.raises(NASInputError, match="one value per cell"):
        sa.tau_interval(scores, truth[:5])


def test_collapse_verdict_reads_the_operations_that_reach_the_output():
    """Edge counts that do not rise, but the last cell's convolutions are all cut off by none: a skip connection
    in effect, which the counts alone called no collapse."""
    cut = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    table = pd.DataFrame({"param_free": [4, 4, 4], "n_skip": [1, 1, 1], "arch": [cut] * 3})
    verdict = sa.collapse_verdict(table)
    assert "1 of 1 are without parameters" in verdict and sa.collapsed(verdict)
    dead = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert "computes nothing" in sa.collapse_verdict(table.assign(arch=dead))
    alive = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    assert not sa.collapsed(sa.collapse_verdict(table.assign(arch=alive)))


def test_learned_verdict_reads_the_accuracy_against_chance():
    assert "far above chance" in sa.learned_verdict(92.0)
    assert "still learning" in sa.learned_verdict(34.0)
    assert "near chance" in sa.learned_verdict(14.0)
    assert "far above" in sa.learned_verdict(80.0, num_classes=2) and "near chance" in sa.learned_verdict(52.0, 2)


def test_ranking_trains_under_one_schedule_and_scores_at_checkpoints(tiny):
    rng, space = np.random.default_rng(0), NB201Space()
    cells = [to_str(space.sample(rng)) for _ in range(5)]
    supernet = sa.make_supernet(tiny, C=4, stem_stride=1)
    start = copy.deepcopy(supernet.state_dict())
    r = sa.ranking_over_training(tiny, Table(), cells, epochs=3, checkpoints=(1, 3), C=4, stem_stride=1,
                                 batch_size=64, supernet=supernet)
    assert r["epoch"].tolist() == [1, 3] and r["kendall_tau"].between(-1, 1).all()
    assert len(r["ws_acc"].iloc[0]) == 5 and np.isfinite(r["train_loss"]).all()
    assert any(not torch.equal(start[k], v) for k, v in supernet.state_dict().items())  # trained in place
    # one cosine schedule over the 3 epochs: the same weights as an uninterrupted run of 3 epochs
    other = sa.make_supernet(tiny, C=4, stem_stride=1)
    again = sa.ranking_over_training(tiny, Table(), cells, epochs=3, checkpoints=(3,), C=4, stem_stride=1,
                                     batch_size=64, supernet=other)
    assert again["ws_acc"].iloc[-1] == pytest.approx(r["ws_acc"].iloc[-1])
    for k, v in supernet.state_dict().items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(v, other.state_dict()[k], atol=1e-5), k
    with pytest.raises(NASInputError):
        sa.ranking_over_training(tiny, Table(), cells, epochs=2, checkpoints=(3,))


def test_forgetting_from_a_trained_supernet_leaves_it_unchanged(tiny):
    rng, space = np.random.default_rng(1), NB201Space()
    cells = [to_str(space.sample(rng)) for _ in range(4)]
    supernet = sa.make_supernet(tiny, C=4, stem_stride=1)
    before = copy.deepcopy(supernet.state_dict())
    f = sa.forgetting(tiny, cells[:2], cells[2:], epochs=1, batch_size=64, supernet=supernet)
    assert len(f) == 2 * 4 and set(f["epoch"]) == {0, 1}
    for k, v in supernet.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(before[k], v), k
    rows = nsas.step_forgetting(tiny, "uniform", steps=3, batch_size=32, eval_size=64, supernet=supernet)
    assert len(rows) == 2 and np.allclose(rows["forgetting"], rows["before"] - rows["after"])
    for k, v in supernet.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(before[k], v), k


def test_forgetting_trains_the_other_paths_under_one_schedule(tiny, monkeypatch):
    """Benyahia et al. go on training a second model: one optimiser, one schedule over every epoch on the other
    paths. Restarting the schedule every epoch (as the old code did) jolts every path at each restart, and the
    jolt then passes for the swing that forgetting is read against."""
    made, rates = [], []
    real = torch.optim.SGD

    class Spy(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def step(self, *args, **kwargs):
            rates.append(self.param_groups[0]["lr"])
            return super().step(*args, **kwargs)

    rng, space = np.random.default_rng(1), NB201Space()
    cells = [to_str(space.sample(rng)) for _ in range(4)]
    supernet = sa.make_supernet(tiny, C=4, stem_stride=1)
    monkeypatch.setattr(torch.optim, "SGD", Spy)
    f = sa.forgetting(tiny, cells[:2], cells[2:], epochs=3, batch_size=64, supernet=supernet, lr=0.05)
    assert len(made) == 1 and rates[0] == pytest.approx(0.05)
    assert all(b <= a + 1e-12 for a, b in zip(rates, rates[1:]))  # the rate only falls
    per_epoch = -(-len(tiny.train_y) // 64)
    assert len(rates) == 3 * per_epoch and sorted(set(f["epoch"])) == [0, 1, 2, 3]


def forgetting_frame(kept, trained):
    rows = []
    for group, accs in (("kept (not trained)", kept), ("others (trained)", trained)):
        rows += [{"epoch": e, "group": group, "arch": "a", "ws_acc": a} for e, a in enumerate(accs)]
    return pd.DataFrame(rows)


def test_forgetting_verdict_says_whether_the_kept_paths_lost_or_gained():
    assert "-- forgetting" in sa.forgetting_verdict(forgetting_frame([80, 70], [80, 90]))
    gained = sa.forgetting_verdict(forgetting_frame([16, 21], [16, 26]))
    assert "gained too" in gained and "no forgetting" in gained
    assert "held" in sa.forgetting_verdict(forgetting_frame([50, 50.5], [50, 60]))


def test_forgetting_needs_an_interval_below_zero():
    """A mean loss of 1.5 points from ten cells that moved either way is no evidence of forgetting."""
    changes = [-9, 7, -8, 6, -7, 5, -6, 4, -5, -2]
    rows = []
    for k, d in enumerate(changes):
        rows += [{"epoch": 0, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": 60.0},
                 {"epoch": 1, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": 60.0 + d}]
    rows += [{"epoch": e, "group": "others (trained)", "arch": "o", "ws_acc": 60.0 + 5 * e} for e in (0, 1)]
    verdict = sa.forgetting_verdict(pd.DataFrame(rows))
    assert "-1.5 points" in verdict and "held" in verdict and "-- forgetting" not in verdict


def test_forgetting_must_exceed_the_epoch_to_epoch_swing():
    """Every path's accuracy swings from epoch to epoch; a loss of the kept paths no larger than the trained paths'
    own largest swing is not forgetting, however consistent across the cells."""
    rows = []
    for k in range(8):
        rows += [{"epoch": e, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": a + 0.1 * k}
                 for e, a in enumerate([74, 71, 73, 74.5, 71.5])]
    rows += [{"epoch": e, "group": "others (trained)", "arch": "o", "ws_acc": a}
             for e, a in enumerate([75.6, 73.1, 74.8, 76.6, 75.7])]
    verdict = sa.forgetting_verdict(pd.DataFrame(rows))
    assert "up to 2.5 points" in verdict and "not clearly forgetting" in verdict and "-- forgetting" not in verdict


def test_forgetting_verdict_names_no_gain_the_trained_paths_did_not_make():
    """Kept paths -2.5 points with an interval below zero, trained paths +0.1, a swing of 2.5 (chapter 4's cpu
    run): a loss within the swing, and the kept paths behind, but the trained paths did not gain."""
    rows = []
    for k in range(8):
        rows += [{"epoch": e, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": a + 0.3 * (k % 3)}
                 for e, a in enumerate([74.0, 72.5, 73.0, 71.5])]
    rows += [{"epoch": e, "group": "others (trained)", "arch": "o", "ws_acc": a}
             for e, a in enumerate([75.0, 72.5, 74.0, 75.1])]
    verdict = sa.forgetting_verdict(pd.DataFrame(rows))
    assert "+0.1 points" in verdict and "-2.5 points" in verdict
    assert "trained ones gained" not in verdict and "not clearly forgetting" in verdict
    assert "fell behind" in verdict and "(+0.10) exceeds theirs (-2.50) by 2.60 points" in verdict


def test_a_held_verdict_says_which_reason_holds():
    """A loss whose interval reaches 0 is not called a gain, and a gain within the swing is not called an
    interval that reaches 0: the verdict prints the reason that applies."""
    loss = []
    for k, d in enumerate([-2.0, 1.0, -1.5, 0.5, -1.0, 0.2, -0.8, 0.3]):
        loss += [{"epoch": 0, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": 60.0},
                 {"epoch": 1, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": 60.0 + d}]
    loss += [{"epoch": e, "group": "others (trained)", "arch": "o", "ws_acc": 60.0 + 3 * e} for e in (0, 1)]
    held = sa.forgetting_verdict(pd.DataFrame(loss))
    assert "held their accuracy (their interval" in held and "reaches 0" in held and "a gain" not in held
    gain = sa.forgetting_verdict(forgetting_frame([50, 50.5], [50, 60]))
    assert "held their accuracy (a gain of 0.50 points, within that swing)" in gain


def test_per_step_verdict_compares_the_intervals():
    def table(u, n):
        return pd.DataFrame([{"method": "uniform", "mean_forgetting": u[0], "low": u[1], "high": u[2],
                              "share_forgot": 0.6},
                             {"method": "nsas", "mean_forgetting": n[0], "low": n[1], "high": n[2],
                              "share_forgot": 0.4}])

    assert "reproduced" in sa.forgetting_per_step_verdict(table((3, 2, 4), (0.5, 0, 1)))
    assert "cannot be told apart" in sa.forgetting_per_step_verdict(table((3, 1, 5), (2, 0.5, 3.5)))
    assert "against Zhang" in sa.forgetting_per_step_verdict(table((0.5, 0, 1), (3, 2, 4)))
    assert "no forgetting that its interval" in sa.forgetting_per_step_verdict(table((0.2, -0.5, 1), (0.1, -1, 1)))
    gain = sa.forgetting_per_step_verdict(table((-0.3, -0.67, -0.04), (-0.3, -0.5, -0.09)))
    assert gain.count("raises the previous path's accuracy") == 2 and "interval can tell from 0" not in gain
    # the steps of one run share its weights: the intervals are said to describe this run only
    assert "describes this run, not the spread between runs" in gain
    assert "so there is no forgetting here for NSAS to reduce" in gain and "neither supports nor contradicts" in gain
    assert gain.count("no net forgetting") == 2


def test_per_step_verdict_reads_nsas_against_its_random_control_with_the_steps_paired():
    """NSAS pays 1 + |M| passes a step and halves the new path's share of the gradient; only its control, the same
    loss with a random subset, can say whether a gain is the diversity's. The steps are paired: the methods take
    the same path on the same minibatch, so the difference is read per step."""
    def table(paired, **rows):
        t = pd.DataFrame([{"method": m, "mean_forgetting": r[0], "low": r[1], "high": r[2], "share_forgot": 0.5}
                          for m, r in rows.items()])
        t.attrs["paired"] = paired
        return t

    wide = dict(uniform=(0.5, -1, 2), nsas=(0.2, -1.2, 1.6), **{"random-subset": (0.25, -1.1, 1.7)})
    # overlapping intervals, yet every paired step has NSAS forgetting less than uniform sampling
    both = sa.forgetting_per_step_verdict(table({"uniform": (-0.3, -0.4, -0.2), "random-subset": (-0.05, -0.2, 0.1)},
                                                **wide))
    assert "NSAS forgets less than uniform sampling (per step" in both
    assert "NSAS and the random subset cannot be told apart" in both and "cannot credit the diversity" in both
    diverse = sa.forgetting_per_step_verdict(table({"uniform": (-0.3, -0.4, -0.2),
                                                    "random-subset": (-0.2, -0.3, -0.1)}, **wide))
    assert "the diversity of the subset is what it owes it to" in diverse
    none = sa.forgetting_per_step_verdict(table({"uniform": (-0.1, -0.4, 0.2), "random-subset": (0.0, -0.2, 0.2)},
                                                **wide))
    assert "NSAS forgets less than uniform sampling, is not shown by this run" in none
    # uniform sampling's own interval reaches 0: there is no forgetting for NSAS to reduce, the finding is untested
    assert "so there is no established forgetting here for NSAS to reduce" in none
    assert "neither supports nor contradicts the finding" in none
    forgets = sa.forgetting_per_step_verdict(table({"uniform": (-0.1, -0.4, 0.2), "random-subset": (0.0, -0.2, 0.2)},
                                                   **(wide | {"uniform": (0.5, 0.1, 0.9)})))
    assert "is not shown by this run" in forgets and "neither supports" not in forgets
    # NSAS told apart from a uniform sampling that does not forget: the difference is read, not called inconclusive
    worse = sa.forgetting_per_step_verdict(table({"uniform": (0.3, 0.1, 0.5), "random-subset": (0.0, -0.2, 0.2)},
                                                 **wide))
    assert "NSAS forgets more than uniform sampling" in worse and "neither supports" not in worse


def test_per_step_table_pairs_the_steps_of_each_method_with_nsas(tiny):
    supernet = sa.make_supernet(tiny, C=4, stem_stride=1)
    t = sa.forgetting_per_step(tiny, steps=4, batch_size=32, eval_size=64, subset_size=2, supernet=supernet)
    assert t["method"].tolist() == ["uniform", "random-subset", "nsas"]
    steps = t.attrs["steps"]
    by = steps.pivot_table(index=["step", "arch"], columns="method", values="forgetting")
    for other in ("uniform", "random-subset"):
        mean, low, high = t.attrs["paired"][other]
        assert mean == pytest.approx((by["nsas"] - by[other]).mean()) and low <= mean <= high


def test_per_step_table_has_intervals_around_the_mean(tiny):
    supernet = sa.make_supernet(tiny, C=4, stem_stride=1)
    t = sa.forgetting_per_step(tiny, ("uniform", "nsas"), steps=4, batch_size=32, eval_size=64, subset_size=2,
                               supernet=supernet)
    assert t["method"].tolist() == ["uniform", "nsas"]
    assert (t["low"] <= t["mean_forgetting"] + 1e-9).all() and (t["mean_forgetting"] <= t["high"] + 1e-9).all()


def test_param_free_ops_are_the_ops_without_weights():
    from tutorial_nas.ops import nb201_op

    for op in NB201_OPS:
        has_weights = any(p.numel() for p in nb201_op(op, 4).parameters())
        assert (op in sa.PARAM_FREE) == (not has_weights), op


def test_plot_collapse_stacks_the_three_counts():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame({"epoch": [1, 2], "n_skip": [1, 3], "n_none": [2, 1], "n_pool": [0, 2]})
    ax = sa.plot_collapse(table)
    tops = {}
    for bar in ax.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert tops == {1: 3, 2: 6}  # each epoch's bars reach its parameter-free count


def test_plot_remedies_says_when_the_cap_changed_nothing_and_counts_are_whole():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame({"epoch": [1, 2, 3], "n_skip": [0, 1, 1], "capped_n_skip": [0, 1, 1],
                          "darts_acc": [80.0, 85.0, 86.0], "capped_acc": [80.0, 85.0, 86.0],
                          "early_stop_acc": [80.0, 85.0, 85.0]})
    axes = sa.plot_remedies(table)
    assert "changed nothing" in axes[0].get_title()
    plt.gcf().canvas.draw()
    assert all(float(t).is_integer() for t in axes[0].get_yticks())
    plt.close("all")
    table.loc[2, "capped_n_skip"] = 0
    assert "changed nothing" not in sa.plot_remedies(table)[0].get_title()
    plt.close("all")


def test_falling_behind_is_said_only_where_the_gap_interval_clears_zero():
    """The trained paths' lead over the kept ones gets an interval over the cells of both groups: a lead of more
    than a point carried by one trained cell of three leaves falling behind not established; and the swing
    printed is the one measured, the floor of a point named as such."""
    rows = []
    for k in range(6):
        rows += [{"epoch": e, "group": "kept (not trained)", "arch": f"k{k}", "ws_acc": a + (k % 2) * 0.2}
                 for e, a in enumerate([70.0, 70.1, 70.0, 70.1])]
    for name, path in (("o1", [70.0, 70.2, 70.4, 75.0]), ("o2", [70.0, 70.1, 70.2, 70.0]),
                       ("o3", [70.0, 70.3, 70.1, 69.5])):
        rows += [{"epoch": e, "group": "others (trained)", "arch": name, "ws_acc": a} for e, a in enumerate(path)]
    verdict = sa.forgetting_verdict(pd.DataFrame(rows))
    assert "whether the kept paths fell behind what was trained last is not established" in verdict
    assert ": the kept paths fell behind" not in verdict
    assert "moved by up to 0.2 points" in verdict and "a swing of 1.0 points, a point at least" in verdict


def _two_groups(kept_changes, trained_changes):
    rows = []
    for group, changes in (("kept (not trained)", kept_changes), ("others (trained)", trained_changes)):
        for k, d in enumerate(changes):
            rows += [{"epoch": 0, "group": group, "arch": f"{group[0]}{k}", "ws_acc": 70.0},
                     {"epoch": 1, "group": group, "arch": f"{group[0]}{k}", "ws_acc": 70.0 + d}]
    return pd.DataFrame(rows)


def test_forgetting_intervals_are_t_intervals_not_narrow_percentile_bootstraps():
    """Over 8 cells a percentile bootstrap of the mean is about a fifth narrower than the t interval: a gap of
    1.2 points whose bootstrap interval clears 0 while Welch's reaches it leaves falling behind not established, and a
    loss whose bootstrap interval lies below 0 while the t interval reaches it is held, not lost."""
    kept = [1.9, -0.9, 1.2, -0.2, 1.5, -0.6, 1.0, 0.8]
    trained = [2.8, -0.4, 3.5, 0.7, 3.2, 0.0, 2.4, 2.1]
    verdict = sa.forgetting_verdict(_two_groups(kept, trained))
    assert "exceeds theirs (+0.59) by 1.20 points, Welch's 95 % interval [-0.19, +2.59]" in verdict
    assert "fell behind what was trained last is not established" in verdict
    lost = [-1.5, 0.5, -1.0, 0.0, -1.2, 0.3, -0.9, -0.7]
    held = sa.forgetting_verdict(_two_groups(lost, [0.0] * 8))
    assert "95 % interval over the 8 kept cells [-1.2, +0.1]" in held
    assert "held their accuracy (their interval [-1.2, +0.1] reaches 0)" in held


def test_the_range_in_between_leaves_out_the_start_and_the_last_epoch():
    """'From 73.9 % to 74.5 %; in between ... 73.7-74.5 %' read the last epoch's 74.5 as in between: the range is
    over the epochs strictly between, and a run of one epoch has none to give."""
    rows = []
    for k in range(3):
        rows += [{"epoch": e, "group": "kept (not trained)", "arch": f"c{k}", "ws_acc": a}
                 for e, a in enumerate([73.9, 73.7, 74.4, 74.4, 74.5])]
    rows += [{"epoch": e, "group": "others (trained)", "arch": "o", "ws_acc": a}
             for e, a in enumerate([75.6, 76.2, 77.0, 77.3, 77.4])]
    verdict = sa.forgetting_verdict(pd.DataFrame(rows))
    assert "in between their mean ranged over 73.7-74.4 %" in verdict
    assert "in between" not in sa.forgetting_verdict(forgetting_frame([80, 70], [80, 90]))
