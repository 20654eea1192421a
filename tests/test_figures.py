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


# -- the sentences that interpret a number follow the number, on both sides of each threshold ------------------------
def test_the_first_epoch_is_called_near_chance_only_when_it_is():
    assert figures.climb_words(12.0, 10.0).startswith("every curve starts near chance (12 %")
    words = figures.climb_words(36.6, 10.0)
    assert "near chance" not in words and "37 % after the first epoch" in words and "3.7x chance" in words


def test_this_build_is_set_beside_the_chapter_it_stands_for():
    assert "2 candidates by random search, fewer than the 6 proposals" in figures.build_vs_chapter(2, 6, "digits", 3)
    assert "as many as the 20 proposals" in figures.build_vs_chapter(20, 20, "mnist5k", 4)
    assert "more than" in figures.build_vs_chapter(30, 20, "mnist5k", 4)


def test_days_of_this_device_are_named_by_the_device():
    assert figures.unit_words("CPU").startswith("a CPU-day is not a GPU-day")
    assert "not a GPU-day of the papers" in figures.unit_words("GPU")


def test_darts_alphas_barely_left_uniform_only_below_a_point():
    assert figures.alpha_move_words(0.13, 5).startswith("the alphas barely left uniform (20 % each): at most 0.13")
    moved = figures.alpha_move_words(6.4, 5)
    assert "barely" not in moved and "moved up to 6.4 points" in moved


def test_a_ranking_is_bounded_by_the_tables_reliability_not_by_one_seed():
    what = "one epoch"
    assert ("better than one training of the cells agrees with another (0.52), and less than the table's "
            "reliability (0.77)") in figures.ranking_bound_words(0.59, 0.52, 0.77, what)
    assert "no better than one training" in figures.ranking_bound_words(0.40, 0.52, 0.77, what)
    assert "part of that agreement is the table's own noise" in figures.ranking_bound_words(0.89, 0.52, 0.77, what)


def test_flops_predict_latency_in_words_that_follow_rho():
    assert "almost as measured" in figures.rho_words(0.95)
    assert "only partly" in figures.rho_words(0.48 + 0.3)
    assert "poorly" in figures.rho_words(0.48)
    # read against the timer: timed twice at 0.36, a perfect proxy reaches about 0.6, and 0.55 is most of that
    noisy = figures.rho_words(0.55, again=0.36)
    assert "almost as measured" in noisy and "a perfect proxy would reach about 0.60" in noisy
    assert "only partly" in figures.rho_words(0.55, again=0.81) and "poorly" in figures.rho_words(0.2, again=0.81)
    assert "cannot be read" in figures.rho_words(0.3, again=-0.1)


def _final_table():
    import pandas as pd

    from tutorial_nas.analysis.compare import holm

    table = pd.DataFrame({"mean_test_acc": [90.7, 90.6, 90.3, 90.0, 89.2],
                          "p_vs_random": [0.004, 0.03, 0.5, np.nan, 0.001],
                          "vs_random": ["better", "better", "not different", "", "worse"]},
                         index=pd.Index(["reinforce", "bo", "regularized", "random", "blockqnn"], name="strategy"))
    table["p_holm_vs_random"] = holm(table["p_vs_random"])
    table.attrs.update(alpha=0.05, baseline="random")
    return table


def test_better_and_worse_than_random_are_listed_apart_after_holms_correction():
    verdicts = figures.compare_verdicts(_final_table())
    # bo's p = 0.03 is below 0.05 but not after Holm (2 x 0.03 > 0.05 at its place): not shown to differ
    assert verdicts == {"better": "reinforce", "worse": "blockqnn", "not_different": "bo, regularized", "tests": 4}
    assert figures.random_words(verdicts, 4) == ("1 of 4 other strategies end significantly above random search "
                                                 "(reinforce)")
    none = {"better": "none", "worse": "blockqnn", "not_different": "bo", "tests": 2}
    assert figures.random_words(none, 2) == "no strategy ends significantly above random search in this run"


def test_a_gap_is_set_against_one_reported_accuracys_noise():
    assert figures.gap_size(0.36, 0.80) == "smaller than" and figures.gap_size(-1.37, 0.80) == "larger than"
    words = figures.gap_words("reinforce", 0.36, 0.15, 0.55, 0.80)
    assert words.endswith("the gap is smaller than that noise") and "0.15 to 0.55 points" in words
    assert "one reported accuracy is noisy by about 0.80" in words


def test_nb201_table_5_is_read_for_the_resnet_cell_and_weight_sharing():
    from tutorial_nas.analysis.literature import load_nb201_table

    nb = load_nb201_table()
    words = figures.nb201_baseline(nb)
    assert "ResNet cell (93.97 %) is above every search's mean" in words
    assert "the best weight-sharing search, GDAS, reaches 93.61 %" in words
    nb.loc[nb["method"] == "REA", "c10_test"] = 94.0
    assert "is below REA" in figures.nb201_baseline(nb)


def test_the_published_families_are_counted_in_the_courses_grouping():
    from tutorial_nas.analysis import literature as L

    cifar = L.load_cifar10()
    words = figures.family_counts(cifar, L.regrouped(cifar))
    assert words.startswith("Results per family, in the course's grouping: ")
    for fam, n in cifar["family"].value_counts().items():
        assert f"{fam} {n}" in words
    assert "ENAS micro (GO there, RL here)" in words
