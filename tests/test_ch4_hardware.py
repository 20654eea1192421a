"""Chapter 4's hardware section: where a single-objective winner stands against a multi-objective front."""

import pandas as pd
import pytest

from tutorial_nas.analysis import hardware
from tutorial_nas.errors import NASInputError


def test_front_reach_places_each_cell_against_the_front():
    front = pd.DataFrame({"accuracy": [80.0, 85.0, 90.0], "latency_ms": [1.0, 2.0, 3.0]})
    others = {"slow": {"accuracy": 84.0, "latency_ms": 2.5}, "fast": {"accuracy": 82.0, "latency_ms": 1.5},
              "best": {"accuracy": 92.0, "latency_ms": 4.0}, "same": {"accuracy": 90.0, "latency_ms": 3.0}}
    reach = hardware.front_reach(front, others).set_index("cell")["where"]
    assert reach["slow"].startswith("dominated")  # 85 % at 2 ms is better on both counts
    slow = hardware.front_reach(front, others).set_index("cell").loc["slow"]
    assert (slow["margin_points"], slow["margin_ms"]) == (1.0, 0.5) and "+1.00 points and 0.500 ms" in slow["where"]
    assert reach["fast"] == "on the front"  # neither dominates it
    assert reach["best"].startswith("beyond")
    assert reach["same"] == "on the front"  # equal points dominate neither
    assert (hardware.front_reach(front, others)["front_best_accuracy"] == 90.0).all()
    # a cell as accurate as a front cell and faster dominates it: not "on the front", which means neither dominates
    faster = hardware.front_reach(front, {"x": {"accuracy": 85.0, "latency_ms": 1.5}}).iloc[0]
    assert faster["where"] == "dominating 1 of its 3 cells" and faster["dominates"] == 1


def test_a_cell_of_the_same_accuracy_faster_by_timing_noise_only_is_a_tie_not_a_domination():
    # chapter 4's case: the reward's winner and a front cell share one row of the table (91.317 %) and differ by
    # 0.001 ms of measured latency; "dominated" then says only which was timed faster
    front = pd.DataFrame({"accuracy": [90.417, 91.317, 92.1], "latency_ms": [0.348, 0.363, 0.709]})
    winner = {"w": {"accuracy": 91.317, "latency_ms": 0.364}}
    assert hardware.front_reach(front, winner).iloc[0]["where"].startswith("dominated")  # every difference counts
    tied = hardware.front_reach(front, winner, tie_ms=0.01).iloc[0]
    assert tied["where"].startswith("tied with a front cell") and "0.001 ms apart" in tied["where"]
    assert tied["dominates"] == 0 and pd.isna(tied["margin_ms"])
    # faster by the noise is a tie too; a gain in accuracy or a larger saving is still a domination
    assert hardware.front_reach(front, {"w": {"accuracy": 91.317, "latency_ms": 0.36}},
                                tie_ms=0.01).iloc[0]["where"].startswith("tied")
    assert hardware.front_reach(front, {"w": {"accuracy": 91.0, "latency_ms": 0.364}},
                                tie_ms=0.01).iloc[0]["where"].startswith("dominated")
    assert hardware.front_reach(front, {"w": {"accuracy": 91.317, "latency_ms": 0.4}},
                                tie_ms=0.01).iloc[0]["where"].startswith("dominated")
    with pytest.raises(NASInputError, match="tie_ms"):
        hardware.front_reach(front, winner, tie_ms=-1)


def test_two_cells_that_compute_the_same_function_tie_whatever_their_timings():
    # chapter 4's case: the reward's winner and DPP-Net's front cell both compute 2 x (the cell's input), one row
    # of the table; timed 0.007 ms apart against a noise of 0.005 ms, "dominated" would name the timer's order
    winner_arch = "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"
    front_arch = "|none~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"
    front = pd.DataFrame({"arch": ["|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", front_arch],
                          "accuracy": [90.417, 91.317], "latency_ms": [0.391, 0.409]})
    winner = {"w": {"arch": winner_arch, "accuracy": 91.317, "latency_ms": 0.416}}
    reach = hardware.front_reach(front, winner, tie_ms=0.005).iloc[0]
    assert reach["where"].startswith("tied with a front cell that computes the same function")
    assert "0.007 ms apart" in reach["where"] and pd.isna(reach["margin_ms"])
    # a different cell of the same accuracy, as far apart, is dominated; without archs the timing decides
    other = {"w": {"arch": "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|",
                   "accuracy": 91.317, "latency_ms": 0.416}}
    assert hardware.front_reach(front, other, tie_ms=0.005).iloc[0]["where"].startswith("dominated")
    assert hardware.front_reach(front.drop(columns="arch"), winner, tie_ms=0.005).iloc[0]["where"].startswith(
        "dominated")


def test_latency_spread_times_the_cell_again_and_leaves_the_cache():
    from tutorial_nas.bench import load_benchmark
    from tutorial_nas.spaces.cell import NB201Space, parse

    bench = load_benchmark()
    ev = hardware.LatencyAware(NB201Space(), bench, 1.0, repeats=3, warmup=1)
    arch = parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    spread = hardware.latency_spread(ev, arch, times=3)
    assert spread >= 0 and list(ev.latencies) == [NB201Space().to_str(arch)]
    ev.latencies[NB201Space().to_str(arch)] = 1e6  # a cached time far from any new one: the range reaches it
    assert hardware.latency_spread(ev, arch, times=1) > 1e5
    with pytest.raises(NASInputError, match="times"):
        hardware.latency_spread(ev, arch, times=0)


def test_clip_near_chance_hides_chance_cells_and_marks_them_on_the_edge():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    x, y = [0.3, 0.4, 0.5, 0.6], [10.2, 90.0, 91.0, 19.0]
    ax.scatter(x, y)
    assert hardware.clip_near_chance(ax, x, y, chance=10) == 2
    bottom = ax.get_ylim()[0]
    assert 19.0 < bottom < 90.0  # both cells near chance below the axis, the others above it
    marks = ax.collections[-1]
    assert marks.get_offsets()[:, 0].tolist() == [0.3, 0.6] and (marks.get_offsets()[:, 1] == bottom).all()
    assert "near chance" in marks.get_label() and not marks.get_clip_on()
    # nothing near chance, or nothing but: the axis is left alone
    fig2, ax2 = plt.subplots()
    ax2.scatter(x[1:3], y[1:3])
    before = ax2.get_ylim()
    assert hardware.clip_near_chance(ax2, x[1:3], y[1:3], chance=10) == 0 and ax2.get_ylim() == before
    assert hardware.clip_near_chance(ax2, [1.0], [12.0], chance=10) == 0
    plt.close(fig)
    plt.close(fig2)
