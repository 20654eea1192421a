"""Predict a cell's final accuracy from its first epochs with a regression model: Baker, Gupta, Raskar & Naik,
"Accelerating Neural Architecture Search using Performance Prediction" (ICLR 2018 workshop).

Where curve extrapolation (``predictors.extrapolate``, Domhan et al. 2015) fits each curve on its own, Baker
et al. learn from the curves of networks already trained to the end:

- features (Section 3.1): the architecture (the paper's: the total number of weights and the number of layers;
  here the weight count when ``weights`` gives it, as ``SRMShortcut`` does from the table, beside the one-hot of
  the 6 edges' ops and the cell's depth, width and layer depth, ``analysis.cell_shape``, which stand for the
  number of layers of a cell), the hyperparameters (every cell of the table shares one recipe, so they are left
  out: a constant feature tells the model nothing), and the curve so far, the validation accuracies
  y_1..y_tau with their first and second differences;
- sequential regression models (SRM): one model f_tau per number tau of observed epochs, trained on the
  completed networks, predicting the final validation accuracy. The paper finds nu-SVRs with linear or RBF
  kernels best and uses the RBF one from there on (random forests came close, and won on one of its three
  data sets; ``model="rf"``); its hyperparameters are chosen by cross-validation (the paper: a random search
  scored by 3-fold cross-validation; here only C, from 1, 10 and 100, by 3-fold cross-validation, with nu = 0.5
  and sklearn's scaled gamma, on standardised features; NASLib's LcSVR searches C, nu and gamma at random over
  1,000 draws);
- early stopping (Section 4): after tau epochs, stop a candidate when the probability that its final accuracy
  stays below the best seen so far is at least ``delta`` (0.99 in the paper), the prediction taken as a
  Gaussian centred on f_tau's output with a standard deviation sigma_tau that depends on tau but not on the cell.
  The paper's introduction describes its uncertainty estimates as "obtained from small model ensembles"; here
  sigma_tau is estimated by cross-validation instead, the root mean square of the chosen model's leave-one-out
  errors (for the forest, of its out-of-bag errors, each tree's left-out cells, which spare a refit per cell).

``SRMShortcut`` ranks cells with it beside ``CurveExtrapolation`` (``analysis.shortcuts``);
``simulate_early_stopping`` replays a search on the table, stopping candidates early with any rule.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import NuSVR

from .analysis.cell_shape import SHAPES, cell_shape
from .errors import NASInputError, check_choice
from .predictors import Shortcut, should_stop
from .spaces.cell import encode_onehot, parse, to_str

C_GRID = (1.0, 10.0, 100.0)  # the SVR's penalty, chosen by cross-validation (the paper searched it too)


def features(cell, curve, weights: float | None = None) -> np.ndarray:
    """Baker et al.'s features of ``cell`` after the epochs of ``curve``: architecture (with the network's
    number of ``weights`` when given), curve, its differences."""
    y = np.asarray(curve, dtype=np.float64)
    shape = cell_shape(cell)
    arch = [shape[k] for k in SHAPES] + ([] if weights is None else [float(weights)])
    return np.concatenate([encode_onehot(tuple(cell)), arch, y, np.diff(y), np.diff(y, 2)])


def _model(kind: str, C: float, seed: int, oob: bool = False):
    if kind == "svr":
        return make_pipeline(StandardScaler(), NuSVR(nu=0.5, C=C, kernel="rbf", gamma="scale"))
    return RandomForestRegressor(n_estimators=100, random_state=seed, oob_score=oob)


class SequentialRegression:
    """One regression model per number of observed epochs (1 .. ``final_epoch`` - 1), each predicting the
    final validation accuracy; ``model``: ``"svr"`` (nu-SVR, the paper's choice) or ``"rf"`` (random forest).

    ``fit(cells, curves)`` on networks trained to the end; ``predict(cells, curves)`` on partial curves (all of
    one length); ``p_below(cell, curve, best)``: the probability that the final accuracy ends below ``best``.
    ``weights``: a function from a cell to its network's number of weights (the paper's architecture feature),
    None to leave it out; ``sigma[tau]``: the leave-one-out root mean square error of f_tau.
    """

    def __init__(self, final_epoch: int, model: str = "svr", folds: int = 3, seed: int = 0, weights=None):
        check_choice("regression model", model, ("svr", "rf"))
        if int(final_epoch) < 2:
            raise NASInputError(f"final_epoch must be at least 2 (a model predicts it from earlier epochs), "
                                f"got {final_epoch!r}")
        if weights is not None and not callable(weights):
            raise NASInputError(f"weights must be a function from a cell to its number of weights, or None, got "
                                f"{weights!r}")
        self.final_epoch, self.kind, self.folds, self.seed = int(final_epoch), model, folds, seed
        self.weights = weights
        self.models: dict = {}  # tau -> fitted model
        self.sigma: dict = {}  # tau -> root mean square of the leave-one-out errors

    def _features(self, cell, curve) -> np.ndarray:
        return features(cell, curve, None if self.weights is None else self.weights(cell))

    def fit(self, cells, curves) -> "SequentialRegression":
        curves = [list(c) for c in curves]
        if len(cells) != len(curves) or len(cells) < 2 * self.folds:
            raise NASInputError(f"fit needs as many curves as cells, at least {2 * self.folds}, got "
                                f"{len(cells)} cells and {len(curves)} curves")
        if any(len(c) < self.final_epoch for c in curves):
            raise NASInputError(f"fit needs curves trained to the end ({self.final_epoch} epochs)")
        y = np.array([c[self.final_epoch - 1] for c in curves])
        folds = KFold(self.folds, shuffle=True, random_state=self.seed)
        for tau in range(1, self.final_epoch):
            X = np.stack([self._features(cell, c[:tau]) for cell, c in zip(cells, curves)])
            C = None  # the forest has no C to choose
            if self.kind == "svr":  # C by 3-fold cross-validation
                C = min(C_GRID, key=lambda C: np.mean(
                    (cross_val_predict(_model("svr", C, self.seed), X, y, cv=folds) - y) ** 2))
            self.models[tau] = _model(self.kind, C, self.seed, oob=True).fit(X, y)
            if self.kind == "svr":  # sigma by leave-one-out (the paper: from small model ensembles)
                errors = cross_val_predict(_model("svr", C, self.seed), X, y, cv=LeaveOneOut()) - y
            else:  # each cell predicted by the trees that did not see it
                errors = self.models[tau].oob_prediction_ - y
            self.sigma[tau] = max(float(np.sqrt(np.mean(errors ** 2))), 1e-6)
        return self

    def predict(self, cells, curves) -> np.ndarray:
        cells, curves = list(cells), list(curves)
        if len(cells) != len(curves):
            raise NASInputError(f"predict needs one curve per cell, got {len(cells)} cells and {len(curves)} curves")
        taus = {len(c) for c in curves}
        if len(taus) != 1 or not 1 <= (tau := taus.pop()) < self.final_epoch:
            raise NASInputError(f"predict needs partial curves all of one length from 1 to {self.final_epoch - 1}")
        if tau not in self.models:
            raise NASInputError("call fit(cells, curves) before predict")
        return self.models[tau].predict(np.stack([self._features(cell, c) for cell, c in zip(cells, curves)]))

    def p_below(self, cell, curve, best: float) -> float:
        """P(final accuracy < ``best``) for the prediction as a Gaussian with the leave-one-out spread."""
        mean = float(self.predict([cell], [curve])[0])
        return float(norm.cdf((best - mean) / self.sigma[len(curve)]))

    def should_stop(self, cell, curve, best: float, delta: float = 0.99) -> bool:
        """Baker et al.'s rule: stop when the final accuracy stays below ``best`` with probability >= delta."""
        return self.p_below(cell, curve, best) >= delta


class SRMShortcut(Shortcut):
    """Baker et al.'s SRM as a shortcut: fit on ``train_cells``' full curves from the benchmark, score each cell
    from its first ``observed`` epochs (charged the full training of the ``train_cells`` and those epochs). The
    regression reads each cell's number of weights from the table, as the paper's architecture features."""

    def __init__(self, bench, train_cells, observed: int, model: str = "svr", seed: int = 0):
        if not 1 <= observed < bench.epochs:
            raise NASInputError(f"observed must be from 1 to {bench.epochs - 1} epochs, got {observed!r}")
        self.bench, self.train_cells, self.observed = bench, [tuple(c) for c in train_cells], observed
        self.srm = SequentialRegression(bench.epochs, model=model, seed=seed,
                                        weights=lambda c: bench.query(to_str(c))["params"])
        self.name = f"{'nu-SVR' if model == 'svr' else 'forest'} on {observed} ep ({len(self.train_cells)} cells)"

    def _score(self, cells):
        self.srm.fit(self.train_cells, [self.bench.query(to_str(c))["valid_curve"] for c in self.train_cells])
        return self.srm.predict(cells, [self.bench.query(to_str(c), epoch=self.observed)["valid_curve"]
                                        for c in cells])

    def charged_s(self, cells):
        return (sum(self.bench.query(to_str(c))["train_seconds"] for c in self.train_cells)
                + sum(self.bench.query(to_str(c), epoch=self.observed)["train_seconds"] for c in cells))


def simulate_early_stopping(bench, cells, stop, min_epochs: int = 1, pretrained=()) -> dict:
    """Replay a search over ``cells`` on the table: each is trained epoch by epoch and, from ``min_epochs`` on,
    ``stop(cell, curve, best)`` may end it before the last epoch (``best``: the best final validation accuracy
    so far). Returns the best cell found, its final accuracy, the epochs spent and the share of a full run's.
    ``stop`` can be ``srm.should_stop`` or ``extrapolation_stop`` (curve extrapolation).

    ``pretrained``: the cells a learned rule was fitted on. Baker et al. fit their regression on the first
    networks of the search itself, trained in full: those come first here, every epoch of theirs is spent, their
    best final accuracy is the ``best`` the first replayed cell is held against, and they count in the full
    run's epochs and in the best cell found. ``stopped`` counts the replayed cells only."""
    def cell_of(c):  # a cell given as its string or as its tuple of ops
        return parse(c) if isinstance(c, str) else tuple(c)

    pretrained = [cell_of(c) for c in pretrained]
    both = set(pretrained) & {cell_of(c) for c in cells}
    if both:
        raise NASInputError(f"{len(both)} cell(s) are both pretrained and replayed (e.g. {to_str(next(iter(both)))}): "
                            f"the cells a rule was fitted on are trained once, before the replay")
    if not pretrained and not len(cells):
        raise NASInputError("nothing to replay: give cells (and, for a learned rule, the cells it was fitted on)")
    best, best_cell, spent, stopped = -np.inf, None, bench.epochs * len(pretrained), 0
    for cell in pretrained:
        final = bench.query(to_str(cell))["valid_curve"][-1]
        if final > best:
            best, best_cell = final, cell
    for cell in cells:
        curve = list(bench.query(to_str(cell))["valid_curve"])
        for tau in range(1, bench.epochs + 1):
            if tau == bench.epochs or (tau >= min_epochs and best > -np.inf and stop(cell, curve[:tau], best)):
                break
        spent += tau
        if tau < bench.epochs:
            stopped += 1
        elif curve[-1] > best:
            best, best_cell = curve[-1], tuple(cell)
    full = bench.epochs * (len(pretrained) + len(cells))
    return {"best": best_cell, "best_valid": float(best), "epochs": spent, "share": spent / full,
            "stopped": stopped, "pretrained": len(pretrained)}


def extrapolation_stop(final_epoch: int):
    """``stop`` for ``simulate_early_stopping`` by curve extrapolation (``predictors.should_stop``)."""
    return lambda cell, curve, best: should_stop(curve, final_epoch, best)


__all__ = ["SRMShortcut", "SequentialRegression", "extrapolation_stop", "features", "simulate_early_stopping"]
