"""The literature table must say what its sources say: every number is checked against the reference notes."""

import math
import re
from pathlib import Path

import matplotlib
import pytest

from tutorial_nas.analysis import literature as L
from tutorial_nas.errors import NASInputError

matplotlib.use("Agg")

# The course's notes on published results (outside the package); the CSV is checked against them.
REFERENCE = Path("/work/shared/reference/published_results.md")
VENUE = re.compile(r"^(.*?)\s*\(([A-Za-z]+\d{2})\)$")


def first_number(cell: str) -> float:
    """The leading number of a cell (``22400 (‡800 GPUs ...)`` -> 22400); N/A and ``-`` are NaN."""
    m = re.match(r"^\s*(\d+(?:\.\d+)?)", cell)
    return float(m.group(1)) if m else math.nan


def markdown_rows(text: str, header: str) -> list:
    """The body rows (lists of cells) of the first markdown table after the line starting with ``header``."""
    lines = text[text.index(header):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def imagenet_entries(text: str) -> list:
    """(family, method, top1, top5, params, input, gpu_days) from the ImageNet bullet list."""
    block = text[text.index("### ImageNet"):text.index("## 2.")]
    bullets = re.findall(r"^- (\w+): (.*?)(?=^- |\Z)", block, flags=re.S | re.M)
    out = []
    for family, body in bullets:
        for entry in " ".join(body.split()).rstrip(".").split("; "):
            days = re.search(r"\((\d+(?:\.\d+)?)\)$", entry)
            entry = entry[: days.start()].strip() if days else entry
            first, *others = entry.split(" and ")
            name = re.match(r"^(.*?) (\d)", first).group(1)
            for part in [first[len(name) + 1:]] + others:
                acc, *rest = [p.strip() for p in part.split(",")]
                top1, _, top5 = acc.partition("/")
                params = next((float(p[:-1]) for p in rest if p.endswith("M")), math.nan)
                size = next((float(p.rstrip("px")) for p in rest if not p.endswith("M")), math.nan)
                out.append((family, name, float(top1), float(top5) if top5 else math.nan, params, size,
                            float(days.group(1)) if days else math.nan))
    return out


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) if (math.isnan(a) or math.isnan(b)) else a == pytest.approx(b)


@pytest.fixture(scope="module")
def text():
    if not REFERENCE.exists():
        pytest.skip(f"the reference notes {REFERENCE} are not in this checkout")
    return REFERENCE.read_text()


def test_every_row_names_its_source():
    for df in (L.load_cifar10(), L.load_imagenet(), L.load_nb201_table()):
        assert df["source"].notna().all() and (df["source"].str.len() > 10).all()
        assert set(df["family"]) - {""} <= set(L.FAMILIES)


def test_cifar10_matches_the_reference(text):
    rows = markdown_rows(text, "### CIFAR-10")
    df = L.load_cifar10()
    assert len(df) == len(rows) == 52
    for (group, label, err, params, days), (_, row) in zip(rows, df.iterrows()):
        m = VENUE.match(label)
        method, venue = (m.group(1), m.group(2)) if m else (re.sub(r"\s*\(.*\)$", "", label), None)
        assert row["method"] == method and row["survey_family"] == group  # the survey's grouping, kept
        if venue:
            assert row["venue"] == venue
        for col, cell in (("error", err), ("params_m", params), ("gpu_days", days)):
            assert same(row[col], first_number(cell)), (method, col, row[col], cell)
        if "(" in err or "(" in days or "‡" in days:  # the disagreements and GPU counts are kept as notes
            assert row["note"], method


def test_disagreements_are_noted():
    df = L.load_cifar10().set_index("method")
    assert "2.89" in df.loc["ENAS micro", "note"] and "1,800" in df.loc["NASNet-A", "note"]
    assert "4.0" in df.loc["ProxylessNAS-G + Cutout", "note"]
    assert "GDAS" in df.loc["GDAS + Cutout", "source"] and "Ren" not in df.loc["GDAS + Cutout", "source"]


def test_imagenet_matches_the_reference(text):
    entries = imagenet_entries(text)
    df = L.load_imagenet()
    assert len(df) == len(entries) == 27
    for entry, (_, row) in zip(entries, df.iterrows()):
        family, name, *numbers = entry
        assert (row["survey_family"], row["method"]) == (family, name)
        for col, value in zip(("top1", "top5", "params_m", "input_size", "gpu_days"), numbers):
            assert same(row[col], value), (name, col, row[col], value)


def test_nb201_table_matches_the_reference(text):
    rows = markdown_rows(text, "| method | search (s)")
    df = L.load_nb201_table()
    assert len(df) == len(rows) == 12
    for cells, (_, row) in zip(rows, df.iterrows()):
        assert row["method"] == cells[0]
        assert same(row["search_s"], first_number(cells[1]))
        cols = [f"{d}_{s}" for d in ("c10", "c100", "in16") for s in ("valid", "test")]
        for col, cell in zip(cols, cells[2:]):
            mean, _, std = cell.partition("±")
            # the notes leave out the ± 0.00 that Table 5 prints for DARTS (its 3 runs ended at one cell): a spread
            # of 0, not a missing one; the rows without any spread are ResNet's and the optimum's
            missing = 0.0 if row["method"].startswith("DARTS-V") else math.nan
            assert same(row[col], float(mean)) and same(row[col + "_std"], float(std) if std else missing)


def test_claims_are_computed_from_the_table():
    df = L.load_cifar10()
    cost = L.median_cost_by_family(df)
    # GO without ENAS (RL) and SMASH (RS): the 12 gradient methods with a cost, median of 0.4 and 0.84
    assert cost.numbers.loc["GO", "median_gpu_days"] == pytest.approx(0.62)
    # a search reported with and without Cutout is one search: NASNet-A and Path-level EAS (RL), NAO (SMBO)
    assert cost.numbers.loc["GO", "n"] == 12 and cost.numbers.loc["RL", "n"] == 10
    assert cost.numbers.loc["SMBO", "n"] == 4 and "each search counted once" in str(cost)
    assert L.search_of("NAO + Cutout") == "NAO" and L.search_of("DARTS 1st order + cutout") == "DARTS 1st order"
    assert L.search_of("RandomNAS-NSAS") == "RandomNAS-NSAS"
    assert cost.numbers.index[0] == "GO" and "GO 0.62" in str(cost)
    claim = L.best_nas_vs_best_human(df)
    assert claim.numbers["best_nas"] == "ProxylessNAS-G + Cutout"
    assert claim.numbers["gain_points"] == pytest.approx(2.67 - 2.08)
    small = L.best_nas_vs_best_human(df, max_params=5)
    assert small.numbers["best_human"] == "Shake-Shake" and small.numbers["best_nas_params_m"] <= 5
    assert small.numbers["gain_points"] == pytest.approx(3.55 - 2.50) and "1.05 points" in small.sentence
    with pytest.raises(NASInputError, match="max_params"):
        L.best_nas_vs_best_human(df, max_params=1)


def test_plots_draw_one_series_per_family():
    df = L.load_cifar10()
    ax = L.plot_error_vs_cost(df)
    labels = [t.get_text().split()[0] for t in ax.get_legend().get_texts()]
    assert labels == ["RL", "EA", "GO", "RS", "SMBO"]  # hand-designed networks have no search cost
    assert ax.get_xscale() == "log"
    ax = L.plot_error_vs_params(df)
    assert "Human" in [t.get_text().split()[0] for t in ax.get_legend().get_texts()]
    with pytest.raises(NASInputError):
        L.plot_error_vs_cost(L.load_nb201_table())


def test_weight_sharing_methods_are_grouped_by_how_they_search():
    """ENAS is RL with weight sharing; SMASH and Bender et al.'s one-shot model rank randomly sampled
    architectures: none of them is gradient optimisation, whatever the survey's grouping."""
    expected = {"ENAS micro": "RL", "ENAS macro": "RL", "SMASH": "RS", "Understanding One-Shot": "RS",
                "One-Shot": "RS", "ENAS": "RL"}
    for df in (L.load_cifar10(), L.load_imagenet(), L.load_nb201_table()):
        moved = L.regrouped(df)
        assert (moved["survey_family"] == "GO").all() and len(moved)
        assert {m: f for m, f in zip(moved["method"], moved["family_here"])} == {
            m: f for m, f in expected.items() if m in set(moved["method"])}
        for _, row in df[df["method"].isin(list(expected))].iterrows():
            assert row["family"] == expected[row["method"]] and "the survey groups it under GO" in row["note"]
        unchanged = df[~df["method"].isin(list(expected))]
        assert (unchanged["family"] == unchanged["survey_family"]).all()
    ax = L.plot_error_vs_cost(L.load_cifar10())  # ENAS is drawn in the RL colour, not the GO one
    rl = next(c for c in ax.collections if c.get_label().startswith("RL"))
    assert {tuple(xy) for xy in rl.get_offsets().tolist()} >= {(0.5, 3.54), (0.32, 4.23)}


def hidden_tick_labels(fig) -> set:
    """The ids of the tick labels of ``fig`` that exist but are not drawn: those of ticks outside the axes' limits."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    hidden |= {id(tick.label1), id(tick.label2)}
    return hidden


def drawn_text_boxes(fig):
    """The window extents of every visible, non-empty text of ``fig`` as the Agg backend draws it (an
    annotation's text alone, without the line to its point)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    hidden = hidden_tick_labels(fig)
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden], renderer


@pytest.mark.parametrize("plot, table, label_best", [
    (L.plot_error_vs_cost, L.load_cifar10, 5), (L.plot_error_vs_params, L.load_cifar10, 5),
    (L.plot_error_vs_params, L.load_imagenet, 5), (L.plot_error_vs_cost, L.load_cifar10, 10),
    (L.plot_error_vs_params, L.load_cifar10, 10)])
def test_scatter_labels_overlap_no_text_and_stay_inside(plot, table, label_best):
    """The method names are placed by their rendered text boxes: none touches another text (label, legend
    entry, tick label, title) or the legend's frame, and each stays inside the axes."""
    import itertools

    import matplotlib.pyplot as plt

    df = table()
    ax = plot(df, label_best=label_best)
    fig = ax.figure
    boxes, renderer = drawn_text_boxes(fig)
    assert len(ax.texts) == label_best  # one name per labelled point
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), (a, b)
    frame, inside = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    from matplotlib.text import Text

    for text in ax.texts:
        box = Text.get_window_extent(text, renderer)
        assert not box.overlaps(frame), text.get_text()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, \
            text.get_text()
    plt.close(fig)


def test_scatter_labels_separate_where_the_points_coincide():
    import itertools

    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame({"family": ["GO"] * 6, "method": [f"PC-DARTS + Cutout variant {i}" for i in range(6)],
                       "error": [2.5] * 3 + [2.51, 2.52, 2.6], "gpu_days": [0.1] * 3 + [0.11, 0.12, 1.0],
                       "params_m": 3.6})
    ax = L.plot_error_vs_cost(df, label_best=6)
    boxes, _ = drawn_text_boxes(ax.figure)
    labels = [(t, b) for t, b in boxes if t.startswith("PC-DARTS")]
    assert len(labels) == 6
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), (a, b)
    plt.close(ax.figure)


def test_each_family_s_median_comes_with_its_range_and_a_median_in_a_gap_is_flagged():
    """SMBO's four searches cost 0.3, 1.7, 200 and 225 GPU-days: its median, 100.85, lies between two searches
    118 times apart, where none of them is."""
    cost = L.median_cost_by_family(L.load_cifar10())
    text = str(cost)
    assert "SMBO 100.85 (0.3 to 225, 4)" in text and "GO 0.62 (0.1 to 4, 12)" in text
    assert "RL 53 (0.32 to 22,400, 10)" in text
    smbo = cost.numbers.loc["SMBO"]
    assert (smbo["middle_low"], smbo["middle_high"]) == (1.7, 200.0) and smbo["median_in_gap"]
    assert "SMBO's median, 100.85, is the midpoint of its two middle searches, 1.7 and 200 GPU-days, 118x apart" in text
    assert "the ratio above rests on that midpoint" in text  # SMBO's is the highest median, the ratio's numerator
    assert not cost.numbers.loc[["GO", "RS", "EA", "RL"], "median_in_gap"].any()  # RL's middle two: 10 and 96
    # the keys the slides and the chapter read are kept
    assert {"median_gpu_days", "min_gpu_days", "max_gpu_days", "n"} <= set(cost.numbers.columns)
    # the two parts of the sentence apart, for a slide's body (the medians) and its notes (the gaps)
    parts = cost.numbers.attrs
    assert text == parts["medians"] + " " + parts["gaps"] and parts["gaps"].startswith("SMBO's median")


def test_a_median_between_close_searches_is_not_flagged():
    import pandas as pd

    df = pd.DataFrame({"family": ["GO"] * 4 + ["EA"] * 2, "gpu_days": [1.0, 2.0, 3.0, 4.0, 10.0, 200.0]})
    cost = L.median_cost_by_family(df)
    assert not cost.numbers.loc["GO", "median_in_gap"] and cost.numbers.loc["EA", "median_in_gap"]
    assert "EA's median, 105" in str(cost) and "GO's median" not in str(cost)
    assert not L.median_cost_by_family(df, gap_ratio=100).numbers["median_in_gap"].any()


def test_a_gap_is_set_against_the_spread_it_is_tested_with_not_called_within_the_noise_of_its_own_results():
    import pandas as pd

    spread = pd.Series({"noisy": 0.77, "mid": 0.25, "quiet": 0.1})
    claim = L.gap_against_spread(0.59, spread, "this table's look-up searches (mnist5k)")
    assert claim.numbers["within"] == ["noisy"] and claim.numbers["between"] == ["mid"]
    assert claim.numbers["above"] == ["quiet"]
    text = str(claim)
    assert text.startswith("This table's look-up searches (mnist5k): the final accuracy varies by 0.10 to 0.77")
    assert "A gap of 0.59 points would be within that noise even at the lower bound for noisy (1.51)" in text
    assert "published gain" not in text.lower()
    # a bound that rounds to the gap is printed with the decimals that tell them apart
    close = L.gap_against_spread(0.59, pd.Series({"REA": 0.30}), "NAS-Bench-201's searches on CIFAR-10")
    assert close.numbers["between"] == ["REA"] and "A gap of 0.590 points" in str(close) and "(0.588 to" in str(close)
    # printed to two decimals, the gap (2.67 - 2.08) and REA's std (0.30) leave its lower bound (0.588) undecided
    rounded = L.gap_against_spread(0.59, pd.Series({"REA": 0.30, "RS": 0.36, "NAS": 0.1}), "NAS-Bench-201", decimals=2)
    assert rounded.numbers["undecided"] == ["REA"] and rounded.numbers["between"] == []
    assert rounded.numbers["within"] == ["RS"] and rounded.numbers["above"] == ["NAS"]
    assert "For REA (0.588 to 0.832) the gap lies at a bound within the rounding" in str(rounded)
    assert "would stand out only against a nearly noise-free other result for no method" in str(rounded)
    # numbers computed, not printed: no rounding, REA between the bounds as before; 0.2 decimals is an error
    assert "undecided" not in str(close) and close.numbers["undecided"] == []
    with pytest.raises(NASInputError):
        L.gap_against_spread(0.59, pd.Series({"REA": 0.3}), "x", decimals=-1)
    with pytest.raises(NASInputError):
        L.gap_against_spread(0.59, pd.Series(dtype=float), "nothing")
