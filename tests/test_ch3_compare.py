"""Chapter 3's comparison says what its numbers show: a budget that follows the table, intervals an accuracy can
take, a direction for every test against random search, and one-shot supernets judged before they are used."""

import copy
import types

import matplotlib
import numpy as np
import pandas as pd
import pytest

from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.errors import NASInputError
from tutorial_nas.profiles import PROFILES, get_profile
from tutorial_nas.search import Budget, history_frame
from tutorial_nas.spaces.cell import NB201Space

matplotlib.use("Agg")
SPACE = NB201Space()


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


def scaled(bench, factor: float):
    """The same table, every training time multiplied by ``factor`` (a faster or slower build of it)."""
    other = copy.copy(bench)
    other._records = [dict(r, train_seconds=r["train_seconds"] * factor) for r in bench._records]
    return other


def test_the_budget_is_counted_in_mean_trainings_of_the_table(bench):
    budget = C.budget_from_trainings(bench, 100)
    assert budget.seconds == pytest.approx(100 * bench.mean_over_space("train_seconds"))
    fake = types.SimpleNamespace(mean_over_space=lambda key: 0.6)
    assert C.budget_from_trainings(fake, 100).seconds == pytest.approx(60.0)
    for bad in (0, -3, True, "100", float("nan")):
        with pytest.raises(NASInputError, match="trainings"):
            C.budget_from_trainings(bench, bad)


def test_random_search_makes_about_as_many_look_ups_as_the_budget_counts_trainings(bench):
    """The mean is over the space's cells, which random search samples uniformly: the mean over the table's rows
    (one per isomorphism class) is higher, and a budget from it bought random search about a quarter more."""
    df = C.compare(SPACE, ["random"], 20, C.budget_from_trainings(bench, 100), bench=bench, progress=False)
    looks = df.groupby("seed").size().mean()
    assert 90 <= looks <= 110, looks
    rows_mean = bench.frame()["train_seconds"].mean()
    assert rows_mean > 1.1 * bench.mean_over_space("train_seconds")


def test_a_faster_table_leaves_the_number_of_look_ups_unchanged(bench):
    """Half the seconds per cell: the budget in trainings buys the same look-ups, a budget in seconds twice as
    many (the silent change this guards against)."""
    fast = scaled(bench, 0.5)  # a power of two: every sum of seconds halves exactly
    run = dict(strategies=["random", "regularized"], seeds=3, progress=False)
    slow_df = C.compare(SPACE, budget=C.budget_from_trainings(bench, 20), bench=bench, **run)
    fast_df = C.compare(SPACE, budget=C.budget_from_trainings(fast, 20), bench=fast, **run)
    count = lambda df: df.groupby(["strategy", "seed"]).size()  # noqa: E731
    pd.testing.assert_series_equal(count(slow_df), count(fast_df))
    seconds = C.budget_from_trainings(bench, 20)
    in_seconds = C.compare(SPACE, budget=seconds, bench=fast, **run)
    assert count(in_seconds).sum() > 1.5 * count(slow_df).sum()


def test_every_profile_counts_its_comparison_budget_in_trainings(bench):
    for name in PROFILES:
        sizes = PROFILES[name]["compare"]
        assert sizes["budget_trainings"] > 0, name
        budget = C.profile_budget(get_profile(name, "cpu"), bench)
        assert budget.seconds == pytest.approx(sizes["budget_trainings"] * bench.mean_over_space("train_seconds"))


def final_frame(acc: dict) -> pd.DataFrame:
    """A comparison whose runs end at the given final test accuracies (one step each)."""
    rows = [{"strategy": s, "seed": i, "step": 0, "arch": "a", "spent_s": 1.0, "valid_acc": a, "test_acc": a,
             "best_valid_acc": a, "best_test_acc": a, "regret": 95.0 - a}
            for s, values in acc.items() for i, a in enumerate(values)]
    df = pd.DataFrame(rows, columns=C.COLUMNS)
    df.attrs.update(best_test_acc=95.0)
    return df


def test_intervals_stay_within_what_an_accuracy_can_take():
    df = final_frame({"random": [90.0, 91.0, 90.5, 90.2], "darts": [40.0, 94.0, 93.0]})
    table = C.final_table(df)
    mean, half = C.confidence_interval([40.0, 94.0, 93.0])
    assert mean + half > 100 and mean - half < 0  # unclipped, this interval would pass 100 % and 0 %
    assert table.loc["darts", "ci_high"] == 95.0 and table.loc["darts", "ci_low"] == 0.0  # the best cell bounds it
    r_mean, r_half = C.confidence_interval([90.0, 91.0, 90.5, 90.2])  # an interval inside 0-100 is untouched
    assert table.loc["random", "ci_low"] == pytest.approx(r_mean - r_half)
    assert (table["ci_low"] >= 0).all() and (table["ci_high"] <= 95.0).all()


def test_each_test_against_random_search_has_a_direction():
    rng = np.random.default_rng(0)
    df = final_frame({"random": list(90 + rng.normal(0, 0.3, 20)), "good": list(92 + rng.normal(0, 0.3, 20)),
                      "bad": list(85 + rng.normal(0, 0.3, 20)), "same": list(90 + rng.normal(0, 0.3, 20))})
    table = C.final_table(df)
    assert table["vs_random"].to_dict() == {"good": "better", "random": "", "same": "not different",
                                            "bad": "worse"}
    text = C.verdicts(table)
    better, worse, same = (line for line in text.splitlines()[1:])
    assert "good" in better and "bad" in worse and "same" in same and "bad" not in better
    assert "5 % level, Holm-corrected for the 3 tests" in text.splitlines()[0]
    strict = C.final_table(df, alpha=1e-30)  # nothing passes a level that strict
    assert set(strict["vs_random"]) == {"", "not different"}
    with pytest.raises(NASInputError, match="random"):
        C.verdicts(C.final_table(final_frame({"good": [1.0, 2.0]})))


def test_the_anytime_band_is_clipped_to_what_a_regret_can_take():
    df = final_frame({"random": [90.0, 91.0, 90.5], "darts": [10.0, 94.9, 94.0]})
    ax = C.plot_anytime(df, grid=[0.5, 1.0, 2.0])
    for band in ax.collections:
        y = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
        assert y.min() >= 0 and y.max() <= 95.0
    # each curve here is one point (every run has its incumbent at its end only): marked, or it would not show
    assert all(line.get_marker() == "o" for line in ax.get_lines() if not line.get_label().startswith("_"))


def darts_history(valid, wall, seed=0, strategy="darts"):
    rows = [{"step": i, "arch": f"cell{i}", "valid_acc": v, "test_acc": 80.0, "epoch": i + 1,
             "wall_s": wall * (i + 1) / len(valid), "spent_s": 0.0, "cost_s": 0.0} for i, v in enumerate(valid)]
    return history_frame(rows, {"seed": seed, "strategy": strategy})


def rsws_history(ws, wall, seed=0):
    rows = [{"step": i, "arch": f"cand{i}", "valid_acc": 80.0, "test_acc": 80.0, "ws_acc": w, "wall_s": wall,
             "spent_s": 0.0, "cost_s": 0.0} for i, w in enumerate(ws)]
    h = history_frame(rows, {"seed": seed, "strategy": "rs-ws", "budget": "30 supernet epochs"})
    return h


def test_the_oneshot_report_judges_each_supernet_and_its_budget():
    runs = {"darts": [darts_history([40.0, 90.0], 30.0), darts_history([30.0, 50.0], 80.0, seed=1)],
            "gdas": [darts_history([20.0, 60.0], 10.0, strategy="gdas")],
            "rsws": [rsws_history([30.0, 90.0, 60.0], 20.0)]}
    report = C.oneshot_report(runs, Budget(seconds=60.0)).set_index(["method", "seed"])
    assert report.loc[("darts", 0), "supernet_acc"] == 90.0 and report.loc[("darts", 0), "epochs"] == 2
    assert report.loc[("darts", 0), "trained"] == "far above chance"
    assert report.loc[("darts", 1), "trained"] == "above chance, not far"  # 50 %: not half-way from 10 % to 100 %
    assert report.loc[("gdas", 0), "trained"] == "far above chance"
    near = C.oneshot_report({"gdas": [darts_history([15.0, 18.0], 5.0, strategy="gdas")]}, Budget(seconds=60.0))
    assert near["trained"].tolist() == ["near chance"]  # under a tenth of the way from 10 % to 100 %
    assert report.loc[("darts", 1), "budget_use"] == "over the budget"
    assert report.loc[("darts", 1), "budget_share"] == pytest.approx(80 / 60)
    assert report.loc[("gdas", 0), "measured"].startswith("the derived path")
    assert report.loc[("rsws", 0), "supernet_acc"] == pytest.approx(60.0)  # the mean over scored candidates
    assert report.loc[("rsws", 0), "arch"] == "cand1" and report.loc[("rsws", 0), "epochs"] == 30
    assert (report["chance"] == 10.0).all()
    with pytest.raises(NASInputError, match="seconds"):
        C.oneshot_report(runs, 100)


def test_each_oneshot_method_may_have_its_own_epochs():
    sizes = {"oneshot_epochs": 2, "gdas_epochs": 20}
    assert C._epochs(sizes, "gdas") == 20 and C._epochs(sizes, "darts") == 2


def test_darts_and_gdas_get_an_architecture_learning_rate_scaled_to_their_steps(monkeypatch):
    from tutorial_nas.data import load_dataset
    from tutorial_nas.oneshot import architect, darts

    seen = []

    def fake_search(**kwargs):
        seen.append((kwargs["method"], kwargs["epochs"], kwargs["config"].a_lr))
        return history_frame([{"step": 0, "arch": "a", "valid_acc": 50.0, "test_acc": 50.0}], {})

    monkeypatch.setattr(darts, "darts_search", fake_search)
    data = load_dataset("digits", image_size=8)
    profile = get_profile("ci", "cpu")
    for method in ("darts", "gdas"):
        C.oneshot_runs(method, 1, profile, bench=object(), data=data, epochs=4)
    steps = architect.search_steps(data, 4, profile.compare.oneshot_batch_size)
    assert seen == [("darts", 4, pytest.approx(3e-4 * architect.DARTS_SEARCH_STEPS / steps)),
                    ("gdas", 4, pytest.approx(3e-4 * architect.GDAS_SEARCH_STEPS / steps))]
    assert seen[1][2] > seen[0][2] > 3e-4  # a short search steps harder than DARTS' own


def strategy_table(rows: dict) -> pd.DataFrame:
    """A final table of the columns ``against_cell`` reads: name -> (seeds, mean, std)."""
    return pd.DataFrame([{"strategy": s, "seeds": n, "mean_test_acc": m, "std_test_acc": sd}
                         for s, (n, m, sd) in rows.items()]).set_index("strategy")


def test_welch_p_is_scipys_and_a_side_without_spread_adds_no_variance():
    from scipy.stats import t as student
    from scipy.stats import ttest_ind_from_stats

    stat, dof, p = C.welch_p(90.0, 0.5, 3, 89.0, 0.3, 6)
    ref = ttest_ind_from_stats(90.0, 0.5, 3, 89.0, 0.3 * np.sqrt(6), 6, equal_var=False)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    stat, dof, p = C.welch_p(90.0, 0.5, 3, 89.0, float("nan"), 1)  # a cell of one training: the one-sample test
    assert dof == pytest.approx(2) and stat == pytest.approx(1.0 / (0.5 / np.sqrt(3)))
    assert p == pytest.approx(2 * student.sf(stat, 2))
    assert np.isnan(C.welch_p(90.0, float("nan"), 1, 89.0, 0.3, 6)[2])  # one seed: no spread, no test
    assert np.isnan(C.welch_p(90.0, 0.0, 3, 89.0, float("nan"), 1)[2])  # no variance on either side


def test_a_three_seed_gap_of_more_than_two_standard_errors_does_not_beat_the_cell_by_welch_and_holm():
    """The rule this replaces: better where the gap exceeds 2 standard errors of the difference (a normal z). With
    3 seeds that gap is a t of 2 degrees of freedom, and with several strategies it is one screen of many."""
    cell = {"test_acc": 89.0, "test_se": float("nan"), "seeds": 1}
    table = strategy_table({"three_seeds": (3, 90.0, 0.5)})
    z = (90.0 - 89.0) / (0.5 / np.sqrt(3))
    assert z > 2  # the old rule called this better than the cell
    out = C.against_cell(table, cell)
    assert out.loc["three_seeds", "p"] > 0.05 and out.loc["three_seeds", "vs_cell"] == "not different"
    # five strategies of 100 seeds, each about 2.3 standard errors above the cell: each z > 2 and p < 0.05
    # uncorrected, none after Holm over the five
    many = strategy_table({f"s{i}": (100, 89.0 + 2.3 * 0.5 / 10, 0.5) for i in range(5)})
    out = C.against_cell(many, {"test_acc": 89.0, "test_se": float("nan"), "seeds": 1})
    assert (out["p"] < 0.05).all() and (out["p_holm"] > 0.05).all()
    assert set(out["vs_cell"]) == {"not different"} and out.attrs["tests"] == 5


def test_against_cell_finds_a_clear_difference_in_both_directions_and_skips_a_single_seed():
    cell = {"test_acc": 89.0, "test_se": 0.1, "seeds": 6}
    table = strategy_table({"high": (100, 90.0, 0.5), "low": (100, 88.0, 0.5), "same": (100, 89.0, 0.5),
                            "one": (1, 95.0, float("nan"))})
    out = C.against_cell(table, cell)
    assert out["vs_cell"].to_dict() == {"high": "better", "low": "worse", "same": "not different", "one": ""}
    assert out.attrs["tests"] == 3 and out.loc["high", "diff"] == pytest.approx(1.0)


def test_means_closer_than_the_tie_are_printed_in_no_order():
    means = pd.Series({"blockqnn": 89.64, "bo": 90.055, "random": 89.69, "regularized": 90.049,
                       "reinforce": 90.29})
    assert C.ranked(means) == "reinforce > bo = regularized > random > blockqnn"
    assert C.ranked(means, tie=0.001) == "reinforce > bo > regularized > random > blockqnn"
    assert C.TIE_POINTS == 0.01
