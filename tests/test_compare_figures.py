"""Chapter 3's anytime figure in seconds and in look-ups, and the final intervals clipped at the table's best cell."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from tutorial_nas.analysis import compare as C
from tutorial_nas.errors import NASInputError

matplotlib.use("Agg")


def runs_frame(lengths: dict, best: float = 95.0) -> pd.DataFrame:
    """A comparison shaped like ``compare``'s output: strategy -> the number of look-ups of each seed's run.
    Each look-up costs one second; the incumbent's test accuracy climbs by one point a look-up from 80 %."""
    rows = []
    for strategy, per_seed in lengths.items():
        for seed, n in enumerate(per_seed):
            for step in range(n):
                acc = 80.0 + step
                rows.append({"strategy": strategy, "seed": seed, "step": step, "arch": f"a{step}",
                             "spent_s": float(step + 1), "valid_acc": acc, "test_acc": acc,
                             "best_valid_acc": acc, "best_test_acc": acc, "regret": best - acc})
    df = pd.DataFrame(rows, columns=C.COLUMNS)
    df.attrs.update(best_test_acc=best)
    return df


def test_anytime_in_evaluations_reads_the_nth_look_up_and_nothing_after_a_run_stopped():
    df = runs_frame({"random": [4, 6]})
    curves = C.anytime(df, x="evaluations")
    assert list(curves.columns) == ["strategy", "seed", "evaluations", "best_test_acc", "regret"]
    assert curves["evaluations"].unique().tolist() == [1, 2, 3, 4, 5, 6]  # up to the longest run
    short = curves[curves["seed"] == 0]["regret"].to_numpy()
    assert short[:4].tolist() == [15.0, 14.0, 13.0, 12.0]  # after the n-th look-up: its incumbent
    assert np.isnan(short[4:]).all()  # the run stopped after 4: it made no 5th look-up
    at = C.anytime(df, grid=[0, 3], x="evaluations")
    assert math.isnan(at["regret"].iloc[0]) and at["regret"].iloc[1] == 13.0
    with pytest.raises(NASInputError, match="seconds"):
        C.anytime(df, x="steps")


def test_the_anytime_figure_has_a_panel_in_seconds_and_one_in_look_ups():
    df = runs_frame({"random": [5, 7, 6], "regularized": [8, 9, 8], "darts": [3, 3, 3]})
    left, right = C.plot_anytime(df, x="both")
    assert left.figure is right.figure
    assert "seconds" in left.get_xlabel() and "look-ups" in right.get_xlabel()
    assert left.get_xscale() == "log" and right.get_xscale() == "log"
    assert [line.get_label().split()[0] for line in left.get_lines()] == ["random", "regularized", "darts"]
    # a one-shot method looks nothing up: it is on the seconds panel only
    drawn = {line.get_label().split()[0]: line for line in right.get_lines()}
    assert list(drawn) == ["random", "regularized"] and len(right.collections) == 2
    assert "6 look-ups a run" in drawn["random"].get_label()  # mean of 5, 7 and 6
    # a curve ends where the first seed ran out of look-ups, and reads the mean regret there
    assert drawn["random"].get_xdata().max() == 5 and drawn["regularized"].get_xdata().max() == 8
    assert drawn["random"].get_ydata()[-1] == pytest.approx(95.0 - 84.0)
    # the same strategy keeps its colour in both panels
    colours = {line.get_label().split()[0]: line.get_color() for line in left.get_lines()}
    assert all(line.get_color() == colours[name] for name, line in drawn.items())
    for ax in (left, right):
        for band in ax.collections:
            y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
            assert y.min() >= 0 and y.max() <= 95.0


def test_the_look_ups_budget_is_drawn_on_the_seconds_panel_only():
    df = runs_frame({"random": [5, 7, 6], "darts": [3, 3, 3]})
    left, right = C.plot_anytime(df, x="both", budget_s=19.66)
    budget = [line for line in left.get_lines() if "budget" in line.get_label()]
    assert len(budget) == 1 and list(budget[0].get_xdata()) == [19.66, 19.66]
    assert "19.7 s" in budget[0].get_label() and "19.7 s" in [t.get_text() for t in left.get_legend().get_texts()][-1]
    assert not any("budget" in line.get_label() for line in right.get_lines())
    assert not any("budget" in line.get_label() for line in C.plot_anytime(df).get_lines())  # none asked, none drawn


def test_one_panel_stays_the_default_and_bad_choices_are_refused():
    df = runs_frame({"random": [4, 4], "bo": [5, 3]})
    ax = C.plot_anytime(df)
    assert "seconds" in ax.get_xlabel() and len(ax.get_lines()) == 2
    ax = C.plot_anytime(df, x="evaluations")
    assert "look-ups" in ax.get_xlabel() and ax.get_lines()[1].get_xdata().max() == 3
    with pytest.raises(NASInputError, match="both"):
        C.plot_anytime(df, x="steps")
    with pytest.raises(NASInputError, match="two axes"):
        C.plot_anytime(df, ax=[ax], x="both")


def final_frame(acc: dict, best: float) -> pd.DataFrame:
    rows = [{"strategy": s, "seed": i, "step": 0, "arch": "a", "spent_s": 1.0, "valid_acc": a, "test_acc": a,
             "best_valid_acc": a, "best_test_acc": a, "regret": best - a}
            for s, values in acc.items() for i, a in enumerate(values)]
    df = pd.DataFrame(rows, columns=C.COLUMNS)
    df.attrs.update(best_test_acc=best)
    return df


def test_the_final_interval_is_clipped_at_the_best_accuracy_of_the_table():
    """A mean of picks from the table cannot pass its best cell: the interval stops there, and at 0 below."""
    df = final_frame({"random": [80.0, 86.0, 83.0], "bo": [20.0, 89.0, 89.5]}, best=90.0)
    table = C.final_table(df)
    mean, half = C.confidence_interval([80.0, 86.0, 83.0])
    assert 90.0 < mean + half < 100.0  # above the table's best: clipped there
    assert table.loc["random", "ci_high"] == 90.0
    assert table.loc["random", "ci_low"] == pytest.approx(mean - half)
    mean, half = C.confidence_interval([20.0, 89.0, 89.5])
    assert mean + half > 100.0 and mean - half < 0.0
    assert table.loc["bo", "ci_high"] == 90.0 and table.loc["bo", "ci_low"] == 0.0


def test_final_accuracy_plot_zooms_on_strategies_a_far_worse_one_would_squash():
    # look-up strategies end within a point of one another; a one-shot method 40 points below would flatten them
    df = runs_frame({"random": [10, 11, 12], "regularized": [12, 12, 13], "darts": [2, 3, 1]})
    ax = C.plot_final(df)
    axes = ax.figure.axes
    assert len(axes) == 2
    zoom_labels = [t.get_text() for t in axes[1].get_xticklabels()]
    assert sorted(zoom_labels) == ["random", "regularized"]
    low, high = axes[1].get_ylim()
    assert low > 85 and high < 96  # the zoom spans the close strategies (89-92 %) and the best cell (95 %)
    assert axes[0].get_ylim()[0] < 82  # the first panel keeps every run
    near = runs_frame({"random": [10, 11], "regularized": [12, 12]})
    assert len(C.plot_final(near).figure.axes) == 1  # nothing far behind: one panel
    assert len(C.plot_final(df, zoom=None).figure.axes) == 1


def test_a_curve_in_seconds_ends_where_its_longest_run_ended():
    # random's runs end after 6 s, darts' after 20 s: random's curve is not drawn flat out to 20 s
    df = runs_frame({"random": [4, 6], "darts": [20, 20]})
    ax = C.plot_anytime(df, yscale="linear")
    ends = {line.get_label().split(" ")[0]: max(line.get_xdata()) for line in ax.get_lines()
            if "seeds" in str(line.get_label())}
    assert ends["random"] <= 6.0 and ends["darts"] == pytest.approx(20.0)
