"""Drawings: graphviz sources that name the ops, heatmaps that are figures."""

import matplotlib

matplotlib.use("Agg")

import graphviz  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tutorial_nas.course.viz import alpha_heatmap, alpha_heatmaps_over_epochs, draw_genotype, draw_layers, draw_nb201  # noqa: E402
from tutorial_nas.errors import NASInputError  # noqa: E402
from tutorial_nas.ops import DARTS_OPS, NB201_OPS  # noqa: E402
from tutorial_nas.spaces.darts import DartsSpace, genotype_str  # noqa: E402


def test_genotype_drawing_names_every_op_and_both_inputs():
    g = DartsSpace().sample(np.random.default_rng(0))
    for which in ("normal", "reduce"):
        dot = draw_genotype(genotype_str(g), which)
        assert isinstance(dot, graphviz.Digraph)
        src = dot.source
        for op, _ in getattr(g, which):
            assert f"label={op}" in src
        assert "c_{k-2}" in src and "c_{k-1}" in src and "c_{k}" in src
        assert src.count("->") == 8 + 4  # 8 operations, 4 nodes joined into the output


def test_nb201_drawing_leaves_out_none_edges():
    dot = draw_nb201("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    src = dot.source
    assert "nor_conv_3x3" in src and "avg_pool_3x3" in src and "nor_conv_1x1" in src
    assert "none" not in src and src.count("->") == 4


def test_chain_drawing_has_layers_and_dashed_skips():
    src = draw_layers(["conv 3x3 16", "conv 5x5 32", "max pool"], skips=[(0, 2)]).source
    assert "conv 5x5 32" in src and "dashed" in src and src.count("->") == 4 + 1
    with pytest.raises(NASInputError, match="skip"):
        draw_layers(["a", "b"], skips=[(1, 0)])
    with pytest.raises(NASInputError):
        draw_genotype(genotype_str(DartsSpace().sample(np.random.default_rng(1))), which="middle")


def test_alpha_heatmaps_are_figures():
    a = np.full((6, 5), 0.2)
    fig = alpha_heatmap(a, NB201_OPS, [f"e{k}" for k in range(6)])
    assert isinstance(fig, Figure)
    with pytest.raises(NASInputError, match="shape"):
        alpha_heatmap(np.ones((3, 5)), NB201_OPS, ["a", "b"])
    rows = [{"epoch": e, "alphas": {"normal": np.full((14, 8), 1 / 8).tolist(),
                                    "reduce": np.full((14, 8), 1 / 8).tolist()}} for e in (1, 2, 3, 4)]
    history = pd.DataFrame(rows)
    history.attrs.update(ops=list(DARTS_OPS), edges=[f"e{k}" for k in range(14)], cells=["normal", "reduce"])
    fig = alpha_heatmaps_over_epochs(history, cell="reduce")
    assert isinstance(fig, Figure) and len([ax for ax in fig.axes if ax.get_title()]) == 3
    # DARTS' 8 operations: three panels side by side would be 26 inches wide and shown at a third of their size;
    # they wrap into rows within a notebook's width instead
    from tutorial_nas.course.viz import MAX_WIDTH_IN

    width, height = fig.get_size_inches()
    assert width <= MAX_WIDTH_IN and height > width / 2
    nb201 = pd.DataFrame([{"epoch": e, "alphas": {"cell": np.full((6, 5), 0.2).tolist()}} for e in (1, 2, 3)])
    nb201.attrs.update(ops=list(NB201_OPS), edges=[f"e{k}" for k in range(6)], cells=["cell"])
    width, height = alpha_heatmaps_over_epochs(nb201).get_size_inches()
    assert width <= MAX_WIDTH_IN and height < 4  # five operations: one row fits
    with pytest.raises(NASInputError):
        alpha_heatmaps_over_epochs(history, epochs=[9])


def test_space_explorer_redraws_the_sample_for_the_chosen_seed(capsys):
    from tutorial_nas.course.widgets import space_explorer
    from tutorial_nas.spaces import make_space

    space = make_space("chain", max_layers=4, filters=(8, 16))
    first, second = (space.to_str(space.sample(np.random.default_rng(s))) for s in (3, 4))
    assert first != second
    slider, _ = space_explorer(space, seed=3).children  # outside a kernel the output area prints to stdout
    assert first in capsys.readouterr().out
    slider.value = 4
    shown = capsys.readouterr().out
    assert second in shown and "digraph" in shown
    assert space_explorer(make_space("nb201")).children[0].value == 0
    with pytest.raises(NASInputError, match="no drawing"):
        space_explorer(make_space("darts"))


def test_heatmaps_over_epochs_share_one_scale_centred_on_uniform():
    rows = []
    for e, peak in enumerate((0.2, 0.4, 0.9), start=1):  # edge 0 moves towards op 0 over the epochs
        a = np.full((6, 5), 0.2)
        a[0] = [peak] + [(1 - peak) / 4] * 4
        rows.append({"epoch": e, "alphas": {"cell": a.tolist()}})
    history = pd.DataFrame(rows)
    history.attrs.update(ops=list(NB201_OPS), edges=[f"e{k}" for k in range(6)], cells=["cell"])
    fig = alpha_heatmaps_over_epochs(history, epochs=[1])  # one epoch shown, the scale of the whole run
    norm = fig.axes[0].images[0].norm
    assert norm.vcenter == pytest.approx(0.2) and norm.vmax == pytest.approx(0.9)
    fig = alpha_heatmaps_over_epochs(history)
    norms = {id(ax.images[0].norm) for ax in fig.axes if ax.images}
    assert len(norms) == 1  # one colour means one weight in every panel
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].endswith("entropy 1.609") and not titles[-1].endswith("entropy 1.609")


def _history(best_so_far_values, values):
    return pd.DataFrame({"step": range(len(values)), "valid_acc": values, "best_valid_acc": best_so_far_values})


def test_histories_keep_coinciding_lines_apart_and_scale_to_the_best_so_far():
    from tutorial_nas.course.viz import line_style, plot_histories

    assert len({(line_style(k)["linestyle"], line_style(k)["marker"]) for k in range(6)}) == 6
    same = _history([90.0, 90.0, 91.0, 91.0], [90.0, 20.0, 91.0, 89.0])  # one candidate far below the rest
    fig = plot_histories({"a": same, "b": same.copy()})
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("a", "b")]
    assert len(lines) == 2 and lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_linewidth() > lines[1].get_linewidth()  # the first, under the second, stays visible
    low = ax.get_ylim()[0]
    assert 20.0 < low < 89.0  # the outlier does not squash the lines
    assert any("2 candidates below" in t.get_text() for t in ax.get_legend().get_texts())
    close = _history([90.0, 90.0], [90.0, 88.0])
    assert plot_histories({"a": close}).axes[0].get_ylim()[0] == pytest.approx(87.0)  # everything shown
