"""Chapter 2's shortcut table: real low-fidelity training on the benchmark's own recipe, NSAS behind a size
(set in the cpu and gpu profiles)."""

from __future__ import annotations

import torch

from tutorial_nas.analysis.shortcuts import build_shortcuts, recipe_config
from tutorial_nas.bench import load_benchmark
from tutorial_nas.data import Augment, Dataset
from tutorial_nas.predictors import LowFidelityShortcut
from tutorial_nas.spaces.cell import parse


def toy() -> Dataset:
    x, y = torch.zeros(8, 1, 14, 14), torch.zeros(8, dtype=torch.long)  # nothing is trained: shapes suffice
    return Dataset("toy", x, y, x, y, x, y, num_classes=10, augment=Augment())


def test_low_fidelity_trains_with_the_benchmark_recipe_cut_to_its_epochs():
    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    sizes = {"predictor_cells": 20, "proxy_batch": 8, "train_epochs": 2, "seed": 3}
    low = [s for s in build_shortcuts(cells, bench, toy(), sizes) if isinstance(s, LowFidelityShortcut)]
    assert len(low) == 1
    config = low[0].evaluator.config
    r = bench.recipe
    assert (config.batch_size, config.lr, config.weight_decay) == (r["batch_size"], r["lr"], r["weight_decay"])
    assert config.augment == r["augment"] and config.epochs == 2 and config.seed == 3
    assert config.batch_size != 128 or config.lr != 0.05  # not the package's default TrainConfig


def test_recipe_config_keeps_everything_but_the_epochs():
    bench = load_benchmark()
    full, one = recipe_config(bench, bench.epochs, 0), recipe_config(bench, 1, 0)
    assert full.epochs == bench.epochs and one.epochs == 1
    assert {**vars(full), "epochs": 1} == vars(one)


def test_nsas_row_only_when_its_size_asks_for_it():
    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    base = {"predictor_cells": 20, "proxy_batch": 8}
    names = {flag: [s.name for s in build_shortcuts(cells, bench, toy(), {**base, "nsas": flag})]
             for flag in (True, False)}
    assert "NSAS weight sharing" in names[True] and "NSAS weight sharing" not in names[False]
    assert set(names[True]) - set(names[False]) == {"NSAS weight sharing", "NSAS-random weight sharing"}
    assert "NSAS weight sharing" in [s.name for s in build_shortcuts(cells, bench, toy(), base)]  # the default


def test_nsas_row_runs_in_the_cpu_and_gpu_chapters_not_in_ci():
    """Chapter 2 sizes its shortcuts with the profile's cell and oneshot sections: NSAS is a row of the table
    a learner runs on a laptop (cpu) and on a GPU, and stays out of ci, where its supernet would not learn."""
    from tutorial_nas.profiles import get_profile

    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    for name, expected in (("ci", False), ("cpu", True), ("gpu", True)):
        profile = get_profile(name, "cpu")
        sizes = {**profile.cell.as_dict(), **profile.oneshot.as_dict(), "predictor_cells": 20, "proxy_batch": 8}
        names = [s.name for s in build_shortcuts(cells, bench, toy(), sizes)]
        assert ("NSAS weight sharing" in names) is expected, name


# -- the figure and the explanation of a proxy's sign ---------------------------------------------------------


def text_boxes(fig):
    """The window extents of every visible, non-empty text the Agg backend draws in ``fig``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    from test_literature import hidden_tick_labels  # pytest puts tests/ on the path

    renderer, page = canvas.get_renderer(), fig.bbox
    hidden = hidden_tick_labels(fig)
    boxes = []
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden:
            box = t.get_window_extent(renderer)
            if box.x1 > page.x0 and box.x0 < page.x1 and box.y1 > page.y0 and box.y0 < page.y1:
                boxes.append((t.get_text(), box))
    return boxes


def test_plot_shortcuts_labels_never_overlap_even_where_the_points_coincide():
    import itertools

    import pandas as pd

    from tutorial_nas.analysis.shortcuts import plot_shortcuts

    names = ["ENAS weight sharing", "SPOS weight sharing", "bench epoch 1", "bench epoch 2", "train 1 ep",
             "predictor (300 cells)", "nu-SVR on 2 ep (300 cells)", "synflow", "grad_norm", "snip", "naswot",
             "jacob_cov", "DNA distillation", "SMASH hypernetwork"]
    tau = [0.3, 0.3, 0.6, 0.6, 0.5, 0.6, 0.7, 0.32, -0.2, -0.2, 0.32, 0.5, 0.3, 0.4]  # pairs that coincide
    cost = [60, 600, 20, 40, 40, 180, 220, 3.5, 3.3, 3.5, 3.5, 8, 45, 30]
    df = pd.DataFrame({"shortcut": names, "kendall_tau": tau, "cost_s": cost, "n_cells": 100})
    fig = plot_shortcuts(df)
    boxes = text_boxes(fig)
    assert {n for n in names} <= {text for text, _ in boxes}  # every shortcut is named once
    assert sum(text in names for text, _ in boxes) == len(names)
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    assert fig.axes[1].get_xscale() == "log"
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[0] == "nu-SVR on 2 ep (300 cells)" and set(rows[-2:]) == {"grad_norm", "snip"}  # best on top


class FakeBench:
    """Only what ``cell_features`` asks of a benchmark: a parameter count per cell."""

    def __init__(self, params: dict):
        self.params = params

    def query(self, arch):
        return {"params": self.params[arch]}


def proxy_table(cells, truth, proxy_scores):
    import pandas as pd
    from scipy.stats import kendalltau

    df = pd.DataFrame([{"shortcut": p, "kendall_tau": kendalltau(s, truth)[0]} for p, s in proxy_scores.items()])
    df.attrs.update(truth=list(truth), scores={p: list(s) for p, s in proxy_scores.items()})
    return df


def skip_cells():
    """Eight cells with 0 to 6 skip connections in shuffled order, the other edges convolutions or none."""
    rest = ["nor_conv_3x3", "none", "nor_conv_1x1", "none", "nor_conv_3x3", "none"]
    cells = [tuple("skip_connect" if e < k else rest[(e + k) % 6] for e in range(6)) for k in (3, 0, 6, 1, 5, 2, 4)]
    return cells + [("skip_connect",) * 3 + ("nor_conv_1x1",) * 3]


def test_explain_sign_names_the_skip_connections_when_size_does_not_explain_it():
    from tutorial_nas.analysis.shortcuts import explain_sign, feature_taus
    from tutorial_nas.spaces.cell import to_str

    cells = skip_cells()
    skips = [c.count("skip_connect") for c in cells]
    params = {to_str(c): 1000 + 100 * i for i, c in enumerate(cells)}
    truth = [80 + 2 * s + 0.3 * i for i, s in enumerate(skips)]  # accuracy rises with the skip connections and size
    scores = {"grad_norm": [-s + 0.5 * i for i, s in enumerate(skips)],  # the proxy falls with them, rises with size
              "synflow": [float(params[to_str(c)]) for c in cells]}
    table = proxy_table(cells, truth, scores)
    taus = feature_taus(table, cells, FakeBench(params), proxies=("grad_norm", "synflow"))
    assert taus.loc["skip connections", "test accuracy"] > 0 > taus.loc["skip connections", "grad_norm"]
    assert taus.loc["parameters", "test accuracy"] > 0 and taus.loc["parameters", "grad_norm"] > 0
    text = explain_sign(table, taus, "grad_norm")
    assert "with size" in text and "and so does size" not in text and "skip connections" in text, text
    assert "ranks with the benchmark" in explain_sign(table, taus, "synflow")


def test_explain_sign_blames_size_when_accuracy_falls_with_the_parameters():
    from tutorial_nas.analysis.shortcuts import explain_sign, feature_taus
    from tutorial_nas.spaces.cell import to_str

    cells = skip_cells()
    params = {to_str(c): 1000 + 50 * i for i, c in enumerate(cells)}
    truth = [90 - i for i in range(len(cells))]  # the larger, the worse
    table = proxy_table(cells, truth, {"snip": [float(params[to_str(c)]) for c in cells]})
    taus = feature_taus(table, cells, FakeBench(params), proxies=("snip",))
    text = explain_sign(table, taus, "snip")
    assert "and so does size" in text and "not with size" not in text, text


def test_explain_sign_names_every_opposed_feature_beyond_chance_and_no_other():
    """Every feature whose two taus oppose beyond two standard errors is named, the strongest first; one whose
    taus oppose by less than that (here 0.05 on 8 cells, where the bound is 0.58) is not."""
    import pandas as pd
    import pytest

    from tutorial_nas.analysis.shortcuts import explain_sign, tau_standard_error

    cells = skip_cells()
    skips = [c.count("skip_connect") for c in cells]
    table = proxy_table(cells, [80 + 2 * s for s in skips], {"grad_norm": [-s + 0.1 * i for i, s in enumerate(skips)]})
    assert table.set_index("shortcut").loc["grad_norm", "kendall_tau"] < 0
    assert 2 * tau_standard_error(len(cells)) == pytest.approx(0.577, abs=1e-3)

    def taus(rows):
        return pd.DataFrame(rows, index=["test accuracy", "grad_norm"]).T

    both = explain_sign(table, taus({"parameters": (0.1, 0.1), "skip connections": (0.9, -0.8),
                                     "none edges": (-0.7, 0.6), "convolutions": (0.05, -0.05)}), "grad_norm")
    assert "not clearly with size" in both, both
    assert both.index("skip connections") < both.index("none edges") and "convolutions" not in both, both
    assert "with with" not in both and "the skip connections (test accuracy rises with their number" in both, both
    small = explain_sign(table, taus({"parameters": (0.1, 0.1), "convolutions": (0.05, -0.05)}), "grad_norm")
    assert "convolutions" not in small and "beyond chance either" in small, small


def test_tau_groups_split_only_where_the_paired_bootstrap_separates_neighbours():
    import numpy as np
    import pandas as pd
    import pytest
    from scipy.stats import kendalltau

    from tutorial_nas.analysis.shortcuts import tau_groups
    from tutorial_nas.errors import NASInputError

    rng = np.random.default_rng(0)
    truth = rng.normal(size=100)
    scores = {"sharp": truth + rng.normal(0, 0.2, 100)}
    scores["sharp twin"] = scores["sharp"] + rng.normal(0, 0.02, 100)  # the same order, nearly
    scores["noisy"] = truth + rng.normal(0, 1.5, 100)
    scores["noise"] = rng.normal(size=100)
    scores["backwards"] = -truth + rng.normal(0, 0.5, 100)
    df = pd.DataFrame([{"shortcut": k, "kendall_tau": kendalltau(v, truth)[0]} for k, v in scores.items()])
    df.attrs.update(scores=scores, truth=truth.tolist())
    groups = tau_groups(df, n_boot=300)
    names = [[name for name, _, _ in group] for group in groups]
    assert names == [["sharp", "sharp twin"], ["noisy"], ["noise"], ["backwards"]]
    assert groups[0][0][2] is None and groups[0][1][2][0] <= 0 <= groups[0][1][2][1]
    assert all(group[0][2] is None for group in groups)  # each group led by its first
    # a gradient: each step too small to tell apart from the one before, the ends far apart. Against the leader,
    # the slope splits into groups; a chain of neighbours would keep it whole
    slope = {f"s{k}": truth + rng.normal(0, 0.3 + 0.25 * k, 100) for k in range(8)}
    steps = pd.DataFrame([{"shortcut": k, "kendall_tau": kendalltau(v, truth)[0]} for k, v in slope.items()])
    steps.attrs.update(scores=slope, truth=truth.tolist())
    split = tau_groups(steps, n_boot=300)
    assert len(split) >= 2 and split[0][0][0] == "s0"
    with pytest.raises(NASInputError, match="rank_shortcuts"):
        tau_groups(pd.DataFrame({"shortcut": ["x"], "kendall_tau": [0.1]}))


def test_nsas_comes_with_its_control_a_random_subset_of_the_same_size():
    """A step of NSAS trains nine paths to SPOS' one: the table keeps a row that trains the same loss with a
    subset drawn at random at every step, so that a gain can be put down to the diversity or to the passes."""
    from tutorial_nas.analysis.shortcuts import OneShotShortcut

    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:4]]
    rows = {s.name: s for s in build_shortcuts(cells, bench, toy(), {"predictor_cells": 20, "proxy_batch": 8})
            if isinstance(s, OneShotShortcut)}
    nsas, control = rows["NSAS weight sharing"], rows["NSAS-random weight sharing"]
    assert control.train.keywords == {"subset": "random"} and control.train.func is nsas.train
    assert control.options == nsas.options


def scored_table(truth, **scores):
    import pandas as pd

    df = pd.DataFrame({"shortcut": list(scores)})
    df.attrs.update(scores={k: list(v) for k, v in scores.items()}, truth=list(truth))
    return df


def test_nsas_control_verdict_reads_the_paired_difference():
    import numpy as np

    from tutorial_nas.analysis.shortcuts import nsas_control_verdict, paired_tau_difference

    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    good, noisy = truth + 0.3 * rng.normal(size=200), truth + 3 * rng.normal(size=200)
    same = good + 0.01 * rng.normal(size=200)
    d, low, high = paired_tau_difference(scored_table(truth, a=good, b=noisy), "a", "b", n_boot=200)
    assert low > 0 and low < d < high
    names = ("NSAS weight sharing", "NSAS-random weight sharing", "SPOS weight sharing")
    diverse = nsas_control_verdict(scored_table(truth, **dict(zip(names, (good, noisy, noisy)))))
    assert "its diverse subset earns" in diverse
    passes = nsas_control_verdict(scored_table(truth, **dict(zip(names, (good, same, noisy)))))
    assert "gives the diversity no measurable share of the gain" in passes
    worse = nsas_control_verdict(scored_table(truth, **dict(zip(names, (noisy, good, noisy)))))
    assert "random subset ranks better" in worse
    assert "not in this table" in nsas_control_verdict(scored_table(truth, a=good))


def test_best_rankers_are_the_first_and_those_the_bootstrap_cannot_tell_from_it():
    import numpy as np

    from tutorial_nas.analysis.shortcuts import best_rankers

    rng = np.random.default_rng(1)
    truth = rng.normal(size=200)
    good, noisy = truth + 0.3 * rng.normal(size=200), truth + 3 * rng.normal(size=200)
    same = good + 0.01 * rng.normal(size=200)
    df = scored_table(truth, a=good, b=same, c=noisy)
    from scipy.stats import kendalltau

    df["kendall_tau"] = [kendalltau(v, truth)[0] for v in (good, same, noisy)]
    assert sorted(best_rankers(df, ["a", "b", "c"], n_boot=200)) == ["a", "b"]
