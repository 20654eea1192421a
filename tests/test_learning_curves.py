"""Baker et al. (2018): sequential regression models on early learning curves, as a shortcut and for early
stopping, against curve extrapolation on the same cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from tutorial_nas.bench import load_benchmark
from tutorial_nas.errors import NASInputError
from tutorial_nas.learning_curves import (
    SequentialRegression,
    SRMShortcut,
    extrapolation_stop,
    features,
    simulate_early_stopping,
)
from tutorial_nas.predictors import CurveExtrapolation
from tutorial_nas.spaces.cell import all_cells, parse, to_str

CONV = ("nor_conv_3x3",) * 6


@pytest.fixture(scope="module")
def split():
    bench = load_benchmark()
    arches = list(bench.frame()["arch"])
    idx = np.random.default_rng(0).permutation(len(arches))
    return bench, [parse(arches[i]) for i in idx[:100]], [parse(arches[i]) for i in idx[100:300]]


def test_features_are_architecture_curve_and_its_differences():
    x = features(CONV, [40.0, 60.0, 70.0])
    # 30 one-hot + depth, width, layer_depth + 3 accuracies + 2 first + 1 second differences
    assert x.shape == (39,) and x[30:33].tolist() == [3, 2.5, 3]
    assert x[33:].tolist() == [40, 60, 70, 20, 10, -10]
    assert features(CONV, [40.0]).shape == (34,)
    # the paper's architecture features include the network's number of weights
    with_weights = features(CONV, [40.0, 60.0, 70.0], weights=12345)
    assert with_weights.shape == (40,) and with_weights[33] == 12345 and with_weights[34:].tolist() == x[33:].tolist()


def _synthetic(n=120, seed=0):
    """A synthetic table: the final accuracy is the first epoch's plus a gain set by the first op, plus noise."""
    rng = np.random.default_rng(seed)
    cells = [all_cells()[i] for i in rng.choice(15625, n, replace=False)]
    gain = {op: g for g, op in enumerate(sorted({c[0] for c in cells}))}
    first = rng.uniform(20, 60, n)
    curves = [[f, f + 5, f + 10 + 5 * gain[c[0]] + rng.normal(0, 2)] for f, c in zip(first, cells)]
    return cells, curves


def test_sigma_is_the_leave_one_out_error_of_the_chosen_model():
    # Baker et al., Section 4: sigma depends on tau, not on the cell, "estimated via Leave One Out Cross
    # Validation"; the spread is the root mean square of the errors (the prediction is N(y, sigma)), not their std
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    from tutorial_nas.learning_curves import _model

    cells, curves = _synthetic(60)
    y = np.array([c[-1] for c in curves])
    srm = SequentialRegression(3).fit(cells, curves)
    for tau in (1, 2):
        X = np.stack([features(cell, c[:tau]) for cell, c in zip(cells, curves)])
        C = srm.models[tau].steps[-1][1].C
        loo = cross_val_predict(_model("svr", C, 0), X, y, cv=LeaveOneOut()) - y
        assert srm.sigma[tau] == pytest.approx(np.sqrt(np.mean(loo ** 2)), rel=1e-9)
    forest = SequentialRegression(3, model="rf").fit(cells, curves)  # the forest: its out-of-bag errors
    oob = forest.models[2].oob_prediction_ - y
    assert forest.sigma[2] == pytest.approx(np.sqrt(np.mean(oob ** 2)))


def test_the_regression_reads_the_number_of_weights_when_given():
    cells, curves = _synthetic(40)
    weights = {c: 1000 + 7 * i for i, c in enumerate(cells)}
    srm = SequentialRegression(3, weights=weights.__getitem__).fit(cells, curves)
    assert srm.models[1].steps[-1][1].n_features_in_ == 30 + 3 + 1 + 1  # one-hot, shape, weights, one accuracy
    assert SequentialRegression(3).fit(cells, curves).models[1].steps[-1][1].n_features_in_ == 34
    with pytest.raises(NASInputError, match="weights must be a function"):
        SequentialRegression(3, weights=12)


def test_one_model_per_observed_epoch_learns_a_final_accuracy_from_the_curve():
    # a synthetic table: the final accuracy is the first epoch's plus a gain set by the first op
    rng = np.random.default_rng(0)
    cells = [all_cells()[i] for i in rng.choice(15625, 120, replace=False)]
    gain = {op: g for g, op in enumerate(sorted({c[0] for c in cells}))}
    first = rng.uniform(20, 60, len(cells))
    curves = [[f, f + 5, f + 10 + 5 * gain[c[0]]] for f, c in zip(first, cells)]
    srm = SequentialRegression(3).fit(cells[:90], curves[:90])
    assert set(srm.models) == {1, 2} and all(s > 0 for s in srm.sigma.values())
    pred = srm.predict(cells[90:], [c[:1] for c in curves[90:]])
    truth = [c[-1] for c in curves[90:]]
    assert kendalltau(pred, truth)[0] > 0.8
    # the stopping rule: a candidate far below the best is stopped, one far above is not
    assert srm.p_below(cells[0], curves[0][:2], best=200) > 0.99 and srm.should_stop(cells[0], curves[0][:2], 200)
    assert not srm.should_stop(cells[0], curves[0][:2], best=0)
    with pytest.raises(NASInputError, match="one length"):
        srm.predict(cells[:2], [[1.0], [1.0, 2.0]])
    with pytest.raises(NASInputError, match="one curve per cell"):  # zip would have cut the cells short
        srm.predict(cells[:2], [c[:1] for c in curves[:5]])
    with pytest.raises(NASInputError, match="trained to the end"):
        SequentialRegression(3).fit(cells[:10], [c[:2] for c in curves[:10]])
    with pytest.raises(NASInputError, match="regression model"):
        SequentialRegression(3, model="gp")


def test_srm_ranks_the_shipped_cells_close_to_curve_extrapolation(split):
    """Baker et al. report the regression ahead of curve extrapolation on their data; on this table the two are
    close (which one leads depends on the table, and chapter 2 prints it), and both far above chance."""
    bench, train, test = split
    truth = [bench.query(c)["test_acc"] for c in test]
    observed = bench.epochs - 1
    srm, curve = SRMShortcut(bench, train, observed), CurveExtrapolation(bench, observed)
    tau_srm, tau_curve = (kendalltau(s.score(test), truth)[0] for s in (srm, curve))
    print(f"Kendall tau on {len(test)} cells after {observed} epochs: nu-SVR {tau_srm:.3f} "
          f"(cost {srm.cost_s:.0f} s), curve extrapolation {tau_curve:.3f} (cost {curve.cost_s:.0f} s)")
    assert tau_srm > tau_curve - 0.1 and tau_srm > 0.5
    # the SVR also pays for the fully trained cells it learnt from
    assert srm.cost_s > curve.cost_s + sum(bench.query(c)["train_seconds"] for c in train) * 0.99
    with pytest.raises(NASInputError, match="observed"):
        SRMShortcut(bench, train, bench.epochs)


def test_early_stopping_keeps_the_best_cell_and_saves_epochs(split):
    bench, train, test = split
    srm = SequentialRegression(bench.epochs).fit(train, [bench.query(c)["valid_curve"] for c in train])
    best = max(bench.query(c)["valid_acc"] for c in test)
    full = simulate_early_stopping(bench, test, lambda *_: False)
    assert full["share"] == 1 and full["best_valid"] == best
    # as Baker et al. account for it: the cells the regression was fitted on are the search's first, in full
    full = simulate_early_stopping(bench, test, lambda *_: False, pretrained=train)
    best = full["best_valid"]
    run = simulate_early_stopping(bench, test, srm.should_stop, pretrained=train)
    curve = simulate_early_stopping(bench, test, extrapolation_stop(bench.epochs), pretrained=train)
    print(f"SRM: best {run['best_valid']:.1f} with {run['share']:.0%} of the epochs; curve extrapolation: best "
          f"{curve['best_valid']:.1f} with {curve['share']:.0%} (true best {best:.1f})")
    assert run["share"] < 1 and run["stopped"] > 0 and run["best_valid"] == best
    # with fewer than 3 epochs observed no 3-parameter curve can be fitted, and a run that cannot be fitted goes
    # on (Domhan et al.'s termination criterion): extrapolation stops nothing on such a table
    if bench.epochs - 1 < 3:
        assert curve["stopped"] == 0 and curve["share"] == 1 and curve["best_valid"] == best


def test_the_replay_counts_the_fully_trained_cells_a_rule_was_fitted_on(split):
    # Baker et al. fit the regression on the search's first networks, trained in full: their epochs are spent, and
    # their best accuracy is what the first replayed cell is held against (without them it could never be stopped)
    bench, train, test = split
    always = simulate_early_stopping(bench, test, lambda *_: True, pretrained=train)
    assert always["stopped"] == len(test) and always["pretrained"] == len(train)
    assert always["epochs"] == bench.epochs * len(train) + len(test)
    assert always["share"] == pytest.approx(always["epochs"] / (bench.epochs * (len(train) + len(test))))
    assert always["best_valid"] == max(bench.query(c)["valid_curve"][-1] for c in train)
    assert simulate_early_stopping(bench, test, lambda *_: True)["stopped"] == len(test) - 1  # nothing to beat yet
    full = simulate_early_stopping(bench, test, lambda *_: False, pretrained=train)
    assert full["share"] == 1 and full["best_valid"] == max(bench.query(c)["valid_curve"][-1] for c in train + test)
    as_text = simulate_early_stopping(bench, test, lambda *_: True, pretrained=[to_str(c) for c in train])
    assert as_text == always  # cells as strings or as tuples
    with pytest.raises(NASInputError, match="both pretrained and replayed"):
        simulate_early_stopping(bench, test, lambda *_: True, pretrained=train[:3] + test[:1])
    with pytest.raises(NASInputError, match="nothing to replay"):
        simulate_early_stopping(bench, [], lambda *_: True)


def test_chapter_shortcuts_include_the_regression_on_the_same_early_epochs(split):
    import torch

    from tutorial_nas.analysis.shortcuts import build_shortcuts
    from tutorial_nas.data import Augment, Dataset

    bench, _, test = split
    x, y = torch.zeros(8, 1, 14, 14), torch.zeros(8, dtype=torch.long)  # nothing is trained: shapes suffice
    data = Dataset("toy", x, y, x, y, x, y, num_classes=10, augment=Augment())
    shortcuts = build_shortcuts(test[:10], bench, data, {"predictor_cells": 30, "proxy_batch": 8})
    srm = [s for s in shortcuts if isinstance(s, SRMShortcut)]
    curve = [s for s in shortcuts if isinstance(s, CurveExtrapolation)]
    assert len(srm) == 1 and srm[0].observed == curve[0].observed and len(srm[0].train_cells) == 30
