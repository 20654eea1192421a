"""Chapter 4's hardware section: where a single-objective winner stands against a multi-objective front."""

import pandas as pd

from tutorial_nas.analysis import hardware


def test_front_reach_places_each_cell_against_the_front():
    front = pd.DataFrame({"accuracy": [80.0, 85.0, 90.0], "latency_ms": [1.0, 2.0, 3.0]})
    others = {"slow": {"accuracy": 84.0, "latency_ms": 2.5}, "fast": {"accuracy": 82.0, "latency_ms": 1.5},
              "best": {"accuracy": 92.0, "latency_ms": 4.0}, "same": {"accuracy": 90.0, "latency_ms": 3.0}}
    reach = hardware.front_reach(front, others).set_index("cell")["where"]
    assert reach["slow"] == "dominated"  # 85 % at 2 ms is better on both counts
    assert reach["fast"] == "on the front"  # neither dominates it
    assert reach["best"].startswith("beyond")
    assert reach["same"] == "on the front"  # equal points dominate neither
    assert (hardware.front_reach(front, others)["front_best_accuracy"] == 90.0).all()
    # a cell as accurate as a front cell and faster dominates it: not "on the front", which means neither dominates
    faster = hardware.front_reach(front, {"x": {"accuracy": 85.0, "latency_ms": 1.5}}).iloc[0]
    assert faster["where"] == "dominating 1 of its 3 cells" and faster["dominates"] == 1


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
