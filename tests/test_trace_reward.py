"""Chapter 1's traced REINFORCE step prints the accuracy its reward cubes, and the Q-learning trace says how it
was warmed up."""

import inspect
import math

import pytest

from tutorial_nas.bench import load_benchmark
from tutorial_nas.course.trace import trace_q_backup, trace_reinforce_step
from tutorial_nas.strategies.qlearning import MetaQNN


class PeakedCurves:
    """The shipped table, but every cell's curve peaks one epoch before its end: the final validation accuracy
    is not the best of the curve, as after an epoch that overfits."""

    def __init__(self, bench):
        self.bench, self.epochs = bench, bench.epochs

    def query(self, arch, epoch=None):
        row = dict(self.bench.query(arch, epoch=epoch))
        curve = list(row["valid_curve"])
        peak = row["valid_acc"] + (100 - row["valid_acc"]) / 2  # above the final accuracy, below 100
        row["valid_curve"] = curve[:-2] + [peak, row["valid_acc"]]
        return row


@pytest.fixture(scope="module")
def peaked():
    return PeakedCurves(load_benchmark())


@pytest.mark.parametrize("seed", [0, 1])
def test_the_traced_reward_is_the_cube_of_the_accuracy_it_reports(seed, peaked):
    t = trace_reinforce_step(seed=seed, bench=peaked)
    assert max(t["curve"]) > t["curve"][-1] == t["valid_acc"]  # the case the review found: the last is not the best
    assert t["reward"] == pytest.approx(t["reward_acc"] ** 3 / 1e6, rel=1e-12)  # R = (reward_acc / 100)^3
    assert t["reward_acc"] == max(t["curve"][-5:])
    assert not math.isclose(t["reward"], t["valid_acc"] ** 3 / 1e6, rel_tol=1e-9)  # what the chapter printed before


def test_the_shipped_table_s_reward_accuracy_is_its_curve_s_best():
    bench = load_benchmark()
    t = trace_reinforce_step(seed=0, bench=bench)
    assert t["reward_acc"] == max(bench.query(t["arch"])["valid_curve"][-5:])
    assert t["reward"] == pytest.approx((t["reward_acc"] / 100) ** 3)


def test_the_q_trace_says_how_it_was_warmed_up():
    frame = trace_q_backup(seed=0, warmup=3)
    assert frame.attrs["warmup"] == 3 and frame.attrs["replay"] == 10
    # the chapter prints the search's own replay beside the trace's, read from MetaQNN's signature
    assert inspect.signature(MetaQNN).parameters["replay"].default > frame.attrs["replay"]
