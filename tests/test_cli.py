"""The command line: JSON out, one clear line and exit status 2 on bad input."""

import json

import pytest

from tutorial_nas.cli import main

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_reports_profile_and_offline_data(capsys, monkeypatch):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "ci")
    code, out, _ = run(capsys, "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["profile"] == "ci"
    assert info["offline_datasets"] == ["digits", "mnist5k"]
    assert set(info["download_datasets"]) == {"fashion-mnist", "cifar10"}
    assert "torch" in info and "device" in info


@pytest.mark.parametrize("argv,needle", [
    (["search", "--space", "nb201", "--strategy", "annealing"], "unknown strategy 'annealing'"),
    (["search", "--space", "nb201", "--budget", "-5"], "budget"),
    (["search", "--space", "nb201", "--budget", "soon"], "budget"),
    (["search", "--space", "cells"], "invalid choice"),
    (["info", "--profile", "laptop"], "invalid choice"),
    (["train", "--space", "nb201", "--arch", "|conv~0|"], "expected the form"),
    (["bench", "query"], "needs an arch string"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_status_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err


def test_unknown_profile_in_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "huge")
    code, _, err = run(capsys, "info")
    assert code == 2 and "unknown profile 'huge'" in err


def test_search_on_the_benchmark_prints_the_documented_json(capsys):
    code, out, _ = run(capsys, "search", "--space", "nb201", "--strategy", "regularized", "--budget", "30",
                       "--seed", "2", "--json")
    result = json.loads(out)
    assert code == 0
    assert {"space", "strategy", "seed", "best", "history"} <= set(result)
    assert {"arch", "valid_acc", "test_acc"} <= set(result["best"])
    assert len(result["history"]) == 30
    assert {"arch", "valid_acc", "cost_s"} <= set(result["history"][0])
    assert result["best"]["valid_acc"] == max(h["valid_acc"] for h in result["history"])


def test_search_with_a_time_budget_stays_within_it(capsys):
    code, out, _ = run(capsys, "search", "--space", "nb201", "--strategy", "random", "--budget", "1m", "--json")
    history = json.loads(out)["history"]
    assert code == 0 and 0 < sum(h["cost_s"] for h in history) <= 60


def test_search_on_the_chain_space_trains_for_real(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "ci")
    code, out, _ = run(capsys, "search", "--space", "chain", "--strategy", "random", "--budget", "2", "--json",
                       "--checkpoint", str(tmp_path))
    result = json.loads(out)
    assert code == 0 and len(result["history"]) == 2
    assert all(h["cost_s"] > 0 for h in result["history"])
    assert (tmp_path / "search.json").exists()
