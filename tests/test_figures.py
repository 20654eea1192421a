"""The course's figures: titles that name what is plotted, axes on the differences they show."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from tutorial_nas.course import figures  # noqa: E402
from tutorial_nas.profiles import get_profile  # noqa: E402


def test_bench_distribution_scales_to_the_bulk_and_counts_the_rest():
    run = figures._Run(get_profile("ci"))
    fig = figures._bench_distribution(run)
    hist, scatter = fig.axes
    acc = run.frame["test_acc"]
    low = float(np.floor(acc.quantile(0.01)))
    assert hist.get_title().startswith("Test accuracy of the") and "against training time" in scatter.get_title()
    assert hist.get_xlim()[0] >= low - 2 and scatter.get_ylim()[0] == low  # not stretched by the worst 1 %
    hidden = int((acc < low).sum())
    assert hidden > 0  # the benchmark has a tail of broken cells
    legend = " ".join(t.get_text() for t in hist.get_legend().get_texts())
    assert f"{hidden} below {low:.0f} %" in legend
    assert any(f"{hidden} cells below" in t.get_text() for t in scatter.texts)
