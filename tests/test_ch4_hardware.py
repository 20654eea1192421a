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
