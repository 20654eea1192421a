"""`tutorial-nas compare`: the comparison without a notebook — files written, JSON printed, bad input refused."""

import json

import pandas as pd
import pytest

from tutorial_nas import cli
from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.errors import NASInputError


def run_cli(capsys, *argv):
    code = cli.main(["compare", "--profile", "ci", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_writes_table_figures_and_json(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--strategies", "random,regularized", "--seeds", "3", "--budget", "12",
                             "--out", str(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)  # stdout is exactly one JSON object
    assert summary["strategies"] == ["random", "regularized"] and summary["seeds"] == 3
    assert summary["budget"] == "12 evaluations" and summary["oneshot_seeds"] == 0
    assert set(summary["results"]) == {"random", "regularized"}
    assert summary["results"]["random"]["p_vs_random"] is None  # the baseline is not tested against itself
    assert 0 <= summary["results"]["regularized"]["p_vs_random"] <= 1
    assert summary["best_test_acc"] == pytest.approx(load_benchmark().best_test_acc)

    table = pd.read_csv(tmp_path / "compare.csv")
    assert list(table.columns) == C.COLUMNS
    assert table.groupby(["strategy", "seed"]).size().eq(12).all() and len(table) == 2 * 3 * 12
    final = table.sort_values("step").groupby(["strategy", "seed"]).tail(1)
    mean = final.groupby("strategy")["best_test_acc"].mean()
    assert summary["results"]["random"]["mean_test_acc"] == pytest.approx(mean["random"])
    for name in ("anytime.png", "final_accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["compare.csv", "final_table.csv", "anytime.png", "final_accuracy.png"])


def test_one_shot_methods_run_fewer_seeds_and_are_charged_wall_seconds(tmp_path, capsys):
    code, out, err = run_cli(capsys, "--strategies", "random,gdas", "--seeds", "3", "--budget", "10s",
                             "--out", str(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["oneshot_seeds"] == 2  # the ci profile's compare.oneshot_seeds
    assert summary["results"]["gdas"]["seeds"] == 2 and summary["results"]["random"]["seeds"] == 3
    table = pd.read_csv(tmp_path / "compare.csv")
    gdas = table[table["strategy"] == "gdas"]
    assert (gdas["spent_s"] > 0).all() and gdas["arch"].str.startswith("|").all()
    bench = load_benchmark()
    assert all(bench.query(a)["test_acc"] == t for a, t in zip(gdas["arch"], gdas["test_acc"]))
    assert gdas["best_test_acc"].tolist() == gdas["test_acc"].tolist()  # after epoch e: the cell derived at e


@pytest.mark.parametrize("argv, words", [
    (["--strategies", "random,hillclimb"], "unknown strategies ['hillclimb']"),
    (["--strategies", ","], "unknown strategies"),
    (["--seeds", "0"], "--seeds"),
    (["--budget", "soon"], "budget 'soon'"),
    (["--space", "darts"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(argv, words, capsys, tmp_path):
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "never"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err
    assert not (tmp_path / "never").exists()


def test_strategy_names_map_to_the_registry_and_the_one_shot_methods():
    assert C.parse_strategies("random, reinforce,regularized,bo,darts,gdas,rsws") == (
        ["random", "reinforce", "regularized", "bo"], ["darts", "gdas", "rsws"])
    assert C.parse_strategies("regularized,regularized,gdas,gdas") == (["regularized"], ["gdas"])
    with pytest.raises(NASInputError, match="large-scale-evolution.*regularized"):
        C.parse_strategies("random,evolution")  # two algorithms go by that name: the error names both
    with pytest.raises(NASInputError, match="choose from"):
        C.parse_strategies("enas")
    with pytest.raises(NASInputError, match="unknown one-shot method"):
        C.oneshot_runs("enas", 1)
