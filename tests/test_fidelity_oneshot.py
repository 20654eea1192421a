"""What a method may see, and what it reports, as its paper defines it.

- DARTS and GDAS return the cell derived at the end of the search (NAS-Bench-201 reports them so): the
  incumbent of a one-shot run is never the epoch whose cell the benchmark likes best.
- DARTS' second-order virtual step is the weight optimiser's next step, momentum and weight decay included
  (DARTS' code, ``cnn/architect.py``).
- A strategy is never told the test accuracy of what it evaluated.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from tutorial_nas import cli
from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.data import load_dataset
from tutorial_nas.evaluators import BenchmarkLookup
from tutorial_nas.oneshot.architect import virtual_weights
from tutorial_nas.oneshot.darts import NB201SearchNetwork, darts_search
from tutorial_nas.search import best, history_frame, incumbents, search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.strategies.random_search import RandomSearch

torch.set_num_threads(1)
SPACE = NB201Space()


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


def collapsing_run(bench, seed: int = 0) -> pd.DataFrame:
    """A DARTS-like History whose early cells are good and whose last cell is the all-skip collapse; its
    validation accuracy falls too, so that choosing by it would also pick the first epoch."""
    frame = bench.frame().sort_values("test_acc", ascending=False)
    cells = [frame["arch"].iloc[0], frame["arch"].iloc[len(frame) // 2], "|skip_connect~0|+|skip_connect~0|"
             "skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"]
    rows = []
    for e, arch in enumerate(cells):
        truth = bench.query(arch)
        rows.append({"step": e, "arch": arch, "valid_acc": 60.0 - 5 * e, "test_acc": truth["test_acc"],
                     "bench_valid_acc": truth["valid_acc"], "cost_s": 10.0, "spent_s": 10.0 * (e + 1),
                     "wall_s": 10.0 * (e + 1), "epoch": e + 1})
    return history_frame(rows, {"seed": seed, "strategy": "darts", "incumbent": "last"})


def test_a_oneshot_run_reports_the_cell_derived_last(bench):
    h = collapsing_run(bench)
    assert h["test_acc"].iloc[0] > h["test_acc"].iloc[-1]  # the benchmark likes the first epoch's cell best
    assert h["valid_acc"].iloc[0] > h["valid_acc"].iloc[-1]  # and so does any running maximum of valid_acc
    assert best(h) == {"arch": h["arch"].iloc[-1], "valid_acc": h["valid_acc"].iloc[-1],
                       "test_acc": h["test_acc"].iloc[-1]}
    assert list(incumbents(h)) == [0, 1, 2]
    assert h["best_test_acc"].tolist() == h["test_acc"].tolist()  # after epoch e: the cell derived at e
    assert h["best_valid_acc"].tolist() == h["valid_acc"].tolist()
    ask_tell = history_frame(h.drop(columns=["best_valid_acc", "best_test_acc"]).to_dict("records"), {})
    assert best(ask_tell)["arch"] == h["arch"].iloc[0]  # without the rule: the best validation accuracy


def test_the_comparison_charges_a_oneshot_run_its_last_cell(bench):
    df = pd.DataFrame(columns=C.COLUMNS)
    df.attrs.update(best_test_acc=bench.best_test_acc)
    runs = [collapsing_run(bench, seed) for seed in (0, 1)]
    df = C.add_oneshot(df, "darts", runs)
    last = runs[0]["test_acc"].iloc[-1]
    table = C.final_table(df)
    assert table.loc["darts", "mean_test_acc"] == pytest.approx(last)
    assert table.loc["darts", "mean_regret"] == pytest.approx(bench.best_test_acc - last)
    curves = C.anytime(df, grid=[15.0, 25.0, 35.0])  # after epochs 1, 2 and 3
    got = curves[curves["seed"] == 0]["best_test_acc"].tolist()
    assert got == runs[0]["test_acc"].tolist()


class LikesEarlyEpochs:
    """A stand-in benchmark whose answers fall with every query: the first epoch's cell always looks best."""

    def __init__(self):
        self.calls = 0

    def query(self, arch):
        self.calls += 1
        acc = 95.5 - 10 * self.calls  # 85.5, 75.5, 65.5 ...
        return {"valid_acc": acc, "test_acc": acc - 1, "params": 1, "flops": 1, "valid_curve": [acc]}


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("digits").subset(0.1)


def test_darts_search_returns_its_last_cell_whatever_the_benchmark_says(tiny, bench):
    h = darts_search("nb201", tiny, "darts", epochs=3, C=4, N=1, batch_size=32, progress=False,
                     bench=LikesEarlyEpochs())
    assert h.attrs["incumbent"] == "last" and list(h["test_acc"]) == [84.5, 74.5, 64.5]
    assert list(h["bench_valid_acc"]) == [85.5, 75.5, 65.5]  # kept, for the report only
    assert best(h)["arch"] == h["arch"].iloc[-1] and best(h)["test_acc"] == 64.5
    assert list(h["best_test_acc"]) == [84.5, 74.5, 64.5]
    assert not (h["valid_acc"] == h["bench_valid_acc"]).any()  # valid_acc: the supernet's, what DARTS sees

    real = darts_search("nb201", tiny, "gdas", epochs=1, C=4, N=1, batch_size=32, progress=False, bench=bench)
    for row in real.itertuples():
        truth = bench.query(row.arch)
        assert (row.test_acc, row.bench_valid_acc, row.best_test_acc) == (truth["test_acc"], truth["valid_acc"],
                                                                          row.test_acc)


def test_the_command_line_prints_the_last_derived_cell(tiny, capsys, monkeypatch):
    import tutorial_nas.oneshot.darts as darts

    real = darts.darts_search
    monkeypatch.setattr(darts, "darts_search", lambda **kw: real(**{**kw, "data": tiny, "C": 4, "N": 1,
                                                                     "epochs": 3, "bench": LikesEarlyEpochs()}))
    code = cli.main(["search", "--space", "nb201", "--strategy", "darts", "--profile", "ci", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["best"]["test_acc"] == 64.5 and out["best"]["arch"] == out["history"][-1]["arch"]


def test_weight_sharing_returns_the_best_shared_weight_accuracy(tiny, bench):
    from tutorial_nas.oneshot.supernet import weight_sharing_search

    h = weight_sharing_search("spos", tiny, epochs=0.5, C=4, N=1, batch_size=32, n_candidates=5, bench=bench,
                              progress=False)
    pick = int(h["ws_acc"].to_numpy().argmax())  # what the method sees; valid_acc is the benchmark's
    assert h.attrs["incumbent"] == "ws_acc" and best(h)["arch"] == h["arch"].iloc[pick]
    assert best(h)["test_acc"] == h["best_test_acc"].iloc[-1] == h["test_acc"].iloc[pick]


def test_the_virtual_step_is_the_weight_optimisers_next_step():
    """DARTS' code: w' = w - xi (mu * buffer + grad_w L_train + lambda * w), not the paper's w - xi grad."""
    torch.manual_seed(0)
    model = NB201SearchNetwork(10, 1, C=3, N=1)
    batch = (torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))
    weights = model.weight_parameters()
    xi, mu, lam = 0.1, 0.9, 0.01
    opt = torch.optim.SGD(weights, lr=xi, momentum=mu, weight_decay=lam)
    for w in weights:
        opt.state[w]["momentum_buffer"] = torch.randn_like(w)
    grads = torch.autograd.grad(model.loss(*batch), weights)  # every weight is used (DARTS mode)
    expected = [w - xi * (mu * opt.state[w]["momentum_buffer"] + g + lam * w) for w, g in zip(weights, grads)]
    got = virtual_weights(model, batch, xi, opt)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, expected))
    plain = virtual_weights(model, batch, xi)  # without an optimiser: the paper's w - xi grad
    assert all(torch.allclose(a, w - xi * g, atol=1e-6) for a, w, g in zip(plain, weights, grads))

    opt.zero_grad()
    model.loss(*batch).backward()
    opt.step()  # the step SGD really takes (DARTS clips only the real step; nothing to clip here)
    assert all(torch.allclose(a, w, atol=1e-6) for a, w in zip(got, model.weight_parameters()))


class Recorder(RandomSearch):
    """Random search that writes down the test accuracy it is told."""

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.told = []

    def tell(self, arch, result):
        self.told.append(result.test_acc)


def test_a_strategy_is_never_told_the_test_accuracy(bench, tmp_path):
    evaluator, path = BenchmarkLookup(SPACE, bench), tmp_path / "search.json"
    first = Recorder(SPACE)
    h = search(SPACE, first, evaluator, 3, progress=False, checkpoint=path)
    assert len(first.told) == 3 and all(math.isnan(t) for t in first.told)
    assert np.isfinite(h["test_acc"]).all()  # the History keeps it for the report

    resumed = Recorder(SPACE)  # the checkpoint is replayed through it: the same three tells, then two more
    h = search(SPACE, resumed, evaluator, 5, progress=False, checkpoint=path, resume=True)
    assert len(resumed.told) == 5 and all(math.isnan(t) for t in resumed.told)
    assert len(h) == 5 and np.isfinite(h["test_acc"]).all()


def test_with_nesterov_the_virtual_step_is_still_the_optimisers_next_step():
    """GDAS' recipe (AutoDL) has Nesterov momentum; a second-order step given such an optimiser takes SGD's own
    Nesterov step, d + mu * (mu * buffer + d), not the plain momentum one."""
    torch.manual_seed(0)
    model = NB201SearchNetwork(10, 1, C=3, N=1)
    batch = (torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    for _ in range(2):  # the first step sets the buffer, the virtual step is checked against the second
        got = virtual_weights(model, batch, 0.1, opt)
        opt.zero_grad()
        model.loss(*batch).backward()
        opt.step()
        assert all(torch.allclose(a, w, atol=1e-6) for a, w in zip(got, model.weight_parameters()))
