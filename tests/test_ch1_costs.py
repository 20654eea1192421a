"""Chapter 1's cost table: each column holds the numbers of one kind of device, and the sentences that read it
come from its numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from tutorial_nas.analysis.costs import (
    CIFAR10,
    PAPER_CANDIDATES,
    at_cifar10_scale,
    columns,
    cost_table,
    device_name,
    paper_scale,
)
from tutorial_nas.data import Augment, Dataset


def fake_data(n=100, size=8, channels=1):
    x = torch.zeros(n, channels, size, size)
    y = torch.zeros(n, dtype=torch.long)
    return Dataset("fake", x, y, x[:10], y[:10], x[:10], y[:10], 10, Augment())


def history(costs):
    return pd.DataFrame({"cost_s": costs, "valid_acc": [50.0] * len(costs)})


def test_device_names():
    assert device_name(torch.device("cpu")) == "CPU"
    assert device_name(torch.device("cuda", 0)) == "GPU"
    assert device_name("cuda:1") == "GPU"
    assert device_name("mps") == "MPS"


def test_linear_extrapolation():
    data = fake_data(n=100, size=8, channels=1)
    seconds = at_cifar10_scale(2.0, data, epochs=5, cifar_epochs=50)
    assert seconds == pytest.approx(2.0 * (CIFAR10["train_images"] / 100) * 10 * (32 * 32 / 64))
    # the same network on colour images of the same size: only the layers reading the image read more channels
    assert at_cifar10_scale(2.0, fake_data(n=100, size=8, channels=3), epochs=5) == pytest.approx(seconds)


def test_no_column_mixes_this_machine_with_the_papers():
    data = fake_data()
    table = cost_table({"random": history([1.0, 3.0, 0.0]), "  indented": history([2.0])}, data, epochs=5)
    col = columns(data.device)
    ours = table["source"] == "measured on this machine"
    assert ours.sum() == 2 and (~ours).sum() == 4
    for key in ("measured_s", "candidate_h", "search_days"):  # this machine's columns: CPU, ours only
        assert "CPU" in col[key] and "GPU" not in col[key]
        assert table.loc[~ours, col[key]].isna().all() and table.loc[ours, col[key]].notna().all()
    for key in ("paper_candidate_h", "paper_days"):  # the papers' columns: GPU, theirs only
        assert "GPU" in col[key] and "CPU" not in col[key]
        assert table.loc[ours, col[key]].isna().all()
    assert table.loc[~ours, col["paper_days"]].notna().all()
    random = table.iloc[0]
    assert random["search"] == "random (this chapter)" and random[col["trained"]] == 2  # a cost of 0 is no training
    assert random[col["measured_s"]] == pytest.approx(4.0)
    assert random[col["candidate_h"]] == pytest.approx(at_cifar10_scale(2.0, data, 5) / 3600)
    assert random[col["search_days"]] == pytest.approx(2 * at_cifar10_scale(2.0, data, 5) / 86400)
    assert table.iloc[1]["search"] == "indented (this chapter)"
    zoph = table[table["search"] == "NAS-RL, Zoph & Le"].iloc[0]
    assert zoph[col["trained"]] == PAPER_CANDIDATES["NAS-RL, Zoph & Le"] == 12_800
    assert zoph[col["params"]] == 37_400_000  # the survey's final network
    assert zoph[col["paper_days"]] == 22_400 and zoph[col["paper_candidate_h"]] == pytest.approx(22_400 * 24 / 12_800)
    evolution = table[table["search"] == "Large-scale Evolution"].iloc[0]
    assert pd.isna(evolution[col["trained"]]) and math.isnan(evolution[col["paper_candidate_h"]])


def test_a_gpu_run_is_labelled_gpu_and_still_kept_apart():
    col = columns(torch.device("cuda"))
    assert all("GPU" in name for key, name in col.items() if key not in ("trained", "params"))
    assert len(set(col.values())) == len(col)  # the run's GPU-days and the papers' are two columns


def test_the_reading_is_made_of_the_table_s_numbers():
    data = fake_data()
    table = cost_table({"reinforce": history([9.0]), "random": history([1.0, 1.0])}, data, epochs=5)
    lines = paper_scale(table, data.device)
    hours = at_cifar10_scale(1.0, data, 5) / 3600  # the random row is the reference, not the first
    assert f"{hours:.2f} CPU-hours" in lines[0]
    dear = at_cifar10_scale(9.0, data, 5) / 3600  # which strategy's candidate is scaled, and the range it sits in
    assert f"from {hours:.2f} (random) to {dear:.2f} CPU-hours (reinforce)" in lines[1] and "scale random's" in lines[1]
    assert f"{12_800 * hours / 24:,.0f} CPU-days" in lines[2] and "22,400 GPU-days" in lines[2]
    assert f"{2_700 * hours * 20 / 50 / 24:,.0f} CPU-days" in lines[3] and "100 GPU-days" in lines[3]  # 20 epochs
    assert "MetaQNN trained for as long" in lines[3] and "of 20 epochs" in lines[3]
    assert "survey's Table 1" in lines[2] and "implied" in lines[2] and "reports" not in lines[2]
    assert "final network holds 37.4M parameters" in lines[2]
    assert "different units" in lines[-1]


def test_the_reading_sets_the_networks_sizes_side_by_side():
    data = fake_data()
    random = history([1.0, 1.0]).assign(params=[1_000, 3_000])
    table = cost_table({"random": random}, data, epochs=5)
    assert table.iloc[0][columns(data.device)["params"]] == 2_000
    assert "random's networks here hold 2,000 on average" in paper_scale(table, data.device)[2]


def test_each_end_of_the_searches_range_names_its_own_search():
    data = fake_data()  # the cheapest search has more candidates than the dearest: a range of counts would mislead
    table = cost_table({"reinforce": history([9.0]), "random": history([1.0, 1.0, 1.0])}, data, epochs=5)
    line = paper_scale(table, data.device)[0]
    lo = 3 * at_cifar10_scale(1.0, data, 5) / 86400
    hi = at_cifar10_scale(9.0, data, 5) / 86400
    assert f"from {lo:.2f} CPU-days (random, 3 networks trained) to {hi:.2f} (reinforce, 1 network trained)" in line
