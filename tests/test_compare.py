"""The comparison harness on the shipped benchmark: fair budgets, repeatable runs, honest statistics."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.errors import NASInputError
from tutorial_nas.search import history_frame
from tutorial_nas.spaces.cell import NB201Space

matplotlib.use("Agg")
SPACE = NB201Space()


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


@pytest.fixture(scope="module")
def small(bench):
    return C.compare(SPACE, ["random", "bo"], seeds=4, budget=30, bench=bench, progress=False)


def test_columns_and_regret(small, bench):
    assert list(small.columns) == C.COLUMNS
    assert small.groupby(["strategy", "seed"]).size().eq(30).all()
    best = bench.best_report_test_acc()  # the held-out half of the seeds, as every look-up's test accuracy
    assert small.attrs["best_test_acc"] == best
    assert np.allclose(small["regret"], best - small["best_test_acc"]) and (small["regret"] >= 0).all()
    # the incumbent is the best *validation* accuracy so far, and the regret is read from its test accuracy
    run = small[(small["strategy"] == "bo") & (small["seed"] == 2)]
    i = int(run["valid_acc"].to_numpy().argmax())
    assert run["best_test_acc"].iloc[-1] == run["test_acc"].iloc[i]


def test_regularized_evolution_beats_random_search(bench):
    df = C.compare(SPACE, ["random", "regularized"], seeds=50, budget=100, bench=bench, progress=False)
    table = C.final_table(df)
    assert table.loc["regularized", "mean_test_acc"] > table.loc["random", "mean_test_acc"]
    assert table.loc["regularized", "seeds"] == 50


def test_every_strategy_respects_the_budget(bench):
    costs = bench.frame()["train_seconds"]
    seconds = float(10 * costs.median())
    timed = C.compare(SPACE, list(C.STRATEGIES), seeds=2, budget=f"{seconds}s", bench=bench, progress=False)
    final = timed.groupby(["strategy", "seed"])["spent_s"].max()
    assert len(final) == 2 * len(C.STRATEGIES)
    assert (final <= seconds).all()
    assert (final > seconds - costs.max()).all()  # a run stops only when the next cell does not fit
    counted = C.compare(SPACE, list(C.STRATEGIES), seeds=2, budget=10, bench=bench, progress=False)
    assert counted.groupby(["strategy", "seed"]).size().eq(10).all()


def test_the_same_seeds_give_the_same_comparison(small, bench):
    again = C.compare(SPACE, ["random", "bo"], seeds=4, budget=30, bench=bench, progress=False)
    pd.testing.assert_frame_equal(small, again)
    other = C.compare(SPACE, ["bo"], seeds=[7], budget=30, bench=bench, progress=False)
    assert other["arch"].tolist() != small[small["strategy"] == "bo"]["arch"].iloc[:30].tolist()


def test_anytime_reads_the_incumbent_at_each_budget(small):
    grid = np.array([0.0, small["spent_s"].median(), 1e12])
    curves = C.anytime(small, grid)
    assert len(curves) == 8 * len(grid)
    for (strategy, seed), run in small.groupby(["strategy", "seed"]):
        got = curves[(curves["strategy"] == strategy) & (curves["seed"] == seed)]["regret"].to_numpy()
        assert math.isnan(got[0])  # nothing evaluated after zero seconds
        done = run[run["spent_s"] <= grid[1]]
        assert (math.isnan(got[1]) and done.empty) or got[1] == done["regret"].iloc[-1]
        assert got[2] == run["regret"].iloc[-1]  # after the run, its final incumbent


def test_final_table_statistics(small):
    table = C.final_table(small)
    final = small.groupby(["strategy", "seed"])["best_test_acc"].last()
    for strategy in ("random", "bo"):
        acc = final[strategy].to_numpy()
        row = table.loc[strategy]
        assert row["mean_test_acc"] == pytest.approx(acc.mean())
        assert row["std_test_acc"] == pytest.approx(acc.std(ddof=1))
        half = 3.182446305 * acc.std(ddof=1) / 2  # t(0.975, 3 dof) * std / sqrt(4)
        assert row["mean_test_acc"] - row["ci_low"] == pytest.approx(half, rel=1e-6)
        # above, the interval stops at the table's best cell, which no mean of picks can pass
        assert row["ci_high"] == pytest.approx(min(small.attrs["best_test_acc"], acc.mean() + half), rel=1e-6)
    assert math.isnan(table.loc["random", "p_vs_random"]) and 0 < table.loc["bo", "p_vs_random"] <= 1


def test_plot_anytime_draws_a_band_per_strategy(small):
    ax = C.plot_anytime(small)
    assert [line.get_label().split()[0] for line in ax.get_lines()] == ["random", "bo"]
    assert len(ax.collections) == 2 and ax.get_xscale() == "log"


def test_oneshot_histories_join_on_wall_seconds(small, bench):
    arch = bench.best_arch
    rows = [{"step": i, "arch": arch, "valid_acc": 80.0 + i, "test_acc": 81.0 + i, "cost_s": 0.0,
             "spent_s": 0.0, "wall_s": 100.0 * (i + 1)} for i in range(3)]
    histories = [history_frame(rows, {"seed": s}) for s in (0, 1)]
    df = C.add_oneshot(small, "darts", histories)
    part = df[df["strategy"] == "darts"]
    assert list(df.columns) == C.COLUMNS and len(part) == 6 and sorted(part["seed"].unique()) == [0, 1]
    assert part["spent_s"].tolist()[:3] == [100.0, 200.0, 300.0]
    assert part["regret"].iloc[-1] == pytest.approx(small.attrs["best_test_acc"] - 83.0)
    assert "darts" in C.final_table(df).index
    with pytest.raises(NASInputError, match="already"):
        C.add_oneshot(df, "darts", histories)


def test_the_resnet_cell_as_a_baseline(bench):
    info = C.baseline_rank(bench)
    frame = bench.frame()
    assert info["arch"] == C.RESNET_CELL
    assert info["rank"] == int((frame["test_acc"] > info["test_acc"]).sum()) + 1
    assert 0 <= info["percentile"] <= 100 and info["cells"] == len(frame)
    # cells of the same accuracy are counted on neither side of the percentile: every cell is above, tied or below
    tied = int((frame["test_acc"] == info["test_acc"]).sum()) - 1
    below = int((frame["test_acc"] < info["test_acc"]).sum())
    assert info["tied"] == tied and (info["rank"] - 1) + tied + 1 + below == len(frame)
    assert info["top_percent"] == pytest.approx(100 * (info["rank"] + tied) / len(frame))
    assert info["top_percent"] == pytest.approx(100 - info["percentile"])
    best = C.baseline_rank(bench, bench.best_arch)
    assert best["rank"] == 1 and best["gap_to_best"] == 0
    # the entry is a mean over its seeds' trainings: its standard error is what a strategy must beat it by
    seeds = bench.seed_accuracies(C.RESNET_CELL)
    if len(seeds) > 1:
        assert info["seeds"] == len(seeds) and info["test_acc"] == pytest.approx(seeds.mean(), abs=1e-3)
        assert info["test_se"] == pytest.approx(seeds.std(ddof=1) / len(seeds) ** 0.5)
    else:
        assert np.isnan(info["test_se"])


def test_bad_input_is_refused(bench):
    with pytest.raises(NASInputError, match="unknown strategies"):
        C.compare(SPACE, ["annealing"], seeds=1, budget=5, bench=bench, progress=False)
    with pytest.raises(NASInputError, match="seeds"):
        C.compare(SPACE, ["random"], seeds=0, budget=5, bench=bench, progress=False)
    with pytest.raises(NASInputError):
        C.baseline_rank(bench, "|conv~0|")


def test_thread_count_changes_nothing_but_speed_and_is_restored(small, bench):
    import torch

    before = torch.get_num_threads()
    with C.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    run = dict(seeds=2, budget=30, bench=bench, progress=False)
    one = C.compare(SPACE, ["reinforce"], threads=1, **run)
    assert torch.get_num_threads() == before
    pd.testing.assert_frame_equal(one, C.compare(SPACE, ["reinforce"], threads=None, **run))


def test_worker_processes_give_the_same_comparison(bench):
    run = dict(seeds=[0, 3], budget=30, bench=bench, progress=False)
    one = C.compare(SPACE, ["random", "reinforce"], workers=1, **run)
    two = C.compare(SPACE, ["random", "reinforce"], workers=2, **run)
    pd.testing.assert_frame_equal(one, two)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(NASInputError, match="workers"):
            C.compare(SPACE, ["random"], workers=bad, **run)
    with pytest.raises(NASInputError, match="evaluator_factory"):
        C.compare(SPACE, ["random"], seeds=1, budget=5, workers=2, progress=False,
                  evaluator_factory=lambda space: None)


def test_the_workers_benchmark_script_runs():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_workers.py"
    out = subprocess.run([sys.executable, str(script), "--seeds", "2", "--workers", "2"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "same DataFrame" in out.stdout and "workers=2" in out.stdout


def regret_runs(regrets: dict, best: float = 91.0) -> pd.DataFrame:
    """A comparison frame: strategy -> one list of regrets per seed, one second a step."""
    rows = [{"strategy": s, "seed": seed, "step": step, "arch": f"a{step}", "spent_s": float(step + 1),
             "valid_acc": best - r, "test_acc": best - r, "best_valid_acc": best - r, "best_test_acc": best - r,
             "regret": r}
            for s, runs in regrets.items() for seed, run in enumerate(runs) for step, r in enumerate(run)]
    df = pd.DataFrame(rows, columns=C.COLUMNS)
    df.attrs.update(best_test_acc=best)
    return df


def test_the_seconds_panel_turns_logarithmic_where_one_shot_regret_dwarfs_the_look_ups():
    lookups = {s: [[6.0, 3.0, 1.0, 0.6], [7.0, 2.0, 1.2, 0.5]] for s in ("random", "bo")}
    far = regret_runs({**lookups, "darts": [[30.0, 45.0, 50.0, 50.0], [20.0, 30.0, 40.0, 60.0]]})
    left, right = C.plot_anytime(far, x="both")
    # the look-up panel: its curves fall from 6.5 to 0.55, more than tenfold, so the final regrets get a log scale
    assert left.get_yscale() == "symlog" and right.get_yscale() == "symlog"
    assert C.regret_fall([np.array([6.0, 1.0, 0.6]), np.array([7.0, 0.5])]) == "symlog"
    assert C.regret_fall([np.array([3.0, 1.0, 0.6]), np.array([2.0, 0.5])]) == "linear"  # a fall of six
    shallow = regret_runs({s: [[3.0, 2.0, 1.0, 0.6], [2.5, 2.0, 1.2, 0.5]] for s in ("random", "bo")})
    assert C.plot_anytime(shallow, x="both")[1].get_yscale() == "linear"
    assert "log scale above 0.1" in left.get_ylabel() and left.get_ylim()[0] == 0
    assert C.regret_scale([np.array([6.0, 0.6]), np.array([50.0, 60.0])]) == "symlog"  # the ends: 100x apart
    assert C.regret_scale([np.array([6.0, 0.6]), np.array([50.0, 5.0])]) == "linear"
    near = regret_runs({**lookups, "rsws": [[4.0, 3.0, 2.0, 2.0], [3.0, 3.0, 2.5, 2.0]]})
    assert C.plot_anytime(near).get_yscale() == "linear"  # curves of one size: a linear axis reads them
    assert C.plot_anytime(near, yscale="symlog").get_yscale() == "symlog"
    assert C.plot_anytime(far, yscale="linear").get_yscale() == "linear"
    with pytest.raises(NASInputError, match="yscale"):
        C.plot_anytime(far, yscale="log")


def test_the_final_interval_never_passes_the_best_cell_of_the_table():
    """Every pick is a cell of the table, so a mean of picks lies between 0 and the table's best cell: the
    interval is clipped there, as the anytime bands are."""
    df = regret_runs({"random": [[10.0], [4.0], [7.0]], "darts": [[70.0], [1.0], [0.5]]}, best=90.0)
    table = C.final_table(df)
    mean, half = C.confidence_interval([80.0, 86.0, 83.0])
    assert mean + half > 90.0 and table.loc["random", "ci_high"] == 90.0
    assert table.loc["random", "ci_low"] == pytest.approx(mean - half)
    mean, half = C.confidence_interval([20.0, 89.0, 89.5])
    assert mean - half < 0.0 and table.loc["darts", "ci_low"] == 0.0 and table.loc["darts", "ci_high"] == 90.0
    no_best = df.copy()
    no_best.attrs.clear()  # without the table's best cell, only an accuracy's 100 % bounds the interval
    assert C.final_table(no_best).loc["darts", "ci_high"] == 100.0


def test_holm_adjusts_by_the_rank_of_each_p_value_and_keeps_the_order():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert C.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = C.holm([np.nan, 0.02, 0.4])  # a strategy without a test is not one of the tests
    assert np.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.4])
    assert C.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert len(C.holm([])) == 0


def test_the_verdicts_say_which_differences_holms_correction_leaves():
    base = [0.5 + i / 10 for i in range(10)]  # ten seeds' regrets; a shift of 0.35 gives p = 0.031, of 0.05 p = 0.73

    def runs(shift):
        return [[r - shift] for r in base]

    shifted = {"random": runs(0.0), "bo": runs(1.5), "regularized": runs(0.35), "reinforce": runs(2.0),
               "blockqnn": runs(0.05)}
    table = C.final_table(regret_runs(shifted, best=95.0))
    p, adjusted = table["p_vs_random"], table["p_holm_vs_random"]
    assert (adjusted.drop("random") >= p.drop("random")).all() and np.isnan(adjusted["random"])
    assert p["regularized"] < 0.05 <= adjusted["regularized"]  # 0.031, second largest of four: x 2
    assert adjusted["bo"] < 0.05 and adjusted["reinforce"] < 0.05
    # the verdict column and the verdict lines read the corrected p: regularized is no difference shown
    assert table.loc["regularized", "vs_random"] == "not different" and table.loc["bo", "vs_random"] == "better"
    text = C.verdicts(table)
    assert "Holm-corrected for the 4 tests" in text.splitlines()[0]
    same_line = next(line for line in text.splitlines() if line.strip().startswith("not different"))
    assert "regularized" in same_line
    assert "below 5 % before the correction only: regularized" in text
    clear = C.final_table(regret_runs({k: shifted[k] for k in ("random", "bo", "reinforce")}, best=95.0))
    assert "before the correction" not in C.verdicts(clear)
    alike = C.final_table(regret_runs({"random": runs(0.0), "bo": runs(0.05), "reinforce": runs(-0.05)}, best=95.0))
    assert "before the correction" not in C.verdicts(alike) and set(alike["vs_random"]) == {"", "not different"}


def test_each_strategy_runs_independently_and_reports_other_trainings_than_it_selected_on():
    """With one generator per seed for all, regularized evolution started from random search's own cells (10 of
    its first 12 look-ups at seed 3) while the rank-sum test assumes independent runs; and the report read the
    test accuracy of the very trainings whose validation accuracy the search selected on."""
    bench, space = load_benchmark(), NB201Space()
    df = C.compare(space, ["random", "regularized"], seeds=[3], budget=12, bench=bench, progress=False)
    first = {s: g.sort_values("step")["arch"].tolist()[:10] for s, g in df.groupby("strategy")}
    assert len(set(first["random"]) & set(first["regularized"])) <= 2
    assert (df["seed"] == 3).all()  # the run keeps its number; only its stream is its own
    assert df.attrs["best_test_acc"] == pytest.approx(bench.best_report_test_acc())
    for row in df.head(5).itertuples():
        search_half, report_half = bench.split_seeds(row.arch)
        assert row.valid_acc == pytest.approx(search_half.mean()) and row.test_acc == pytest.approx(report_half.mean())
    assert C.strategy_seed("random", 3) != C.strategy_seed("regularized", 3) == C.strategy_seed("regularized", 3)


def test_a_few_runs_against_many_get_an_exact_rank_sum_p_value():
    """Chapter 3's one-shot methods have 3 seeds against random search's 100 look-up runs, whose accuracies tie
    often, and there scipy's default is the normal approximation: 3 runs below all 100 get about 0.002 from it
    where the exact p-value is 2 / C(103, 3). The exact count agrees with scipy's exhaustive permutation test
    where the two can be compared, ties included."""
    from math import comb

    from scipy.stats import PermutationMethod, mannwhitneyu

    rng = np.random.default_rng(1)
    many = np.round(rng.normal(89.0, 1.0, 100))  # whole points: many ties
    few = np.array([40.0, 50.0, 60.0])
    assert mannwhitneyu(few, many).pvalue > 1e-3  # the approximation
    assert C.rank_sum_p(few, many) == pytest.approx(2 / comb(103, 3))
    assert C.rank_sum_p(many, few) == C.rank_sum_p(few, many)
    for _ in range(3):
        a, b = np.round(rng.normal(88, 1, 3)), np.round(rng.normal(89, 1, 12))
        exact = mannwhitneyu(a, b, method=PermutationMethod(n_resamples=np.inf)).pvalue
        assert C.rank_sum_p(a, b) == pytest.approx(exact)
    df = regret_runs({"random": [[float(r)] for r in 89.0 - many + 5.0], "darts": [[35.0], [45.0], [55.0]]},
                     best=95.0)
    assert C.final_table(df).loc["darts", "p_vs_random"] == pytest.approx(2 / comb(103, 3))
    big = rng.normal(0, 1, 30), rng.normal(0.3, 1, 40)  # both sides large: the approximation, as before
    assert C.rank_sum_p(*big) == pytest.approx(mannwhitneyu(*big).pvalue)
