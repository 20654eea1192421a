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


def test_the_literature_slide_places_its_labels_in_the_final_axes():
    """tight_layout moves the axes after the method names are placed: they are placed again, and no two texts
    of the slide overlap."""
    import itertools

    import matplotlib.pyplot as plt
    from test_literature import drawn_text_boxes  # pytest puts tests/ on the path

    fig = figures._literature_cost(None)
    boxes, _ = drawn_text_boxes(fig)
    assert len(fig.axes) == 1 and len(fig.axes[0].texts) == 5
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    plt.close(fig)
