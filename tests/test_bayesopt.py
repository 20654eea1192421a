"""Model-based search: the surrogate learns, the acquisition trades off, the search finds good cells."""

import numpy as np
import pytest

from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import BenchmarkLookup, Evaluator, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space, encode_path, unique_cells
from tutorial_nas.strategies import make_strategy
from tutorial_nas.strategies.bayesopt import BANANAS, MLPEnsemble, acquisition

SPACE = NB201Space()


def convs_on_paths(cell) -> float:
    """A smooth objective of the path encoding: 3x3 convolutions counted on every input->output path."""
    from tutorial_nas.spaces.cell import PATHS

    return float(sum(sum(cell[e] == "nor_conv_3x3" for e in p) for p in PATHS
                     if all(cell[e] != "none" for e in p)))


class PathObjective(Evaluator):
    """A synthetic benchmark: no training, the accuracy is a known function of the cell."""

    name = "synthetic"

    def evaluate(self, arch):
        value = convs_on_paths(arch)
        return Result(valid_acc=value, test_acc=value, cost_s=1.0)


def test_ensemble_fits_and_knows_where_it_has_not_looked():
    cells = unique_cells()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(cells))
    train, held = [cells[i] for i in order[:150]], [cells[i] for i in order[150:450]]
    x = np.stack([encode_path(c) for c in train])
    y = np.array([convs_on_paths(c) for c in train])
    model = MLPEnsemble(x.shape[1], members=5, hidden=32, seed=0).fit(x, y, steps=200)
    mean, std = model.predict(np.stack([encode_path(c) for c in held]))
    truth = np.array([convs_on_paths(c) for c in held])
    assert np.corrcoef(mean, truth)[0, 1] > 0.9
    _, std_seen = model.predict(x)
    assert std_seen.mean() < std.mean()  # the members agree on what they were trained on


def test_acquisitions_trade_mean_against_spread():
    rng = np.random.default_rng(0)
    mean, std = np.array([1.0, 0.9, 0.0]), np.array([0.0, 0.5, 0.01])
    assert np.argmax(acquisition("ucb", mean, std, 1.0, rng, beta=0.0)) == 0  # pure exploitation
    assert np.argmax(acquisition("ucb", mean, std, 1.0, rng, beta=1.0)) == 1  # uncertainty pays
    ei = acquisition("ei", mean, std, 1.0, rng)
    assert np.argmax(ei) == 1 and ei[2] < 1e-6 and np.all(ei >= 0)
    draws = np.stack([acquisition("its", mean, std, 1.0, rng) for _ in range(2000)])
    assert draws.mean(axis=0) == pytest.approx(mean, abs=0.05)
    assert draws.std(axis=0) == pytest.approx(std, abs=0.05)


def test_bo_climbs_a_smooth_objective_faster_than_random():
    found = {"bo": [], "random": []}
    for seed in range(3):
        for name in found:
            history = search(SPACE, name, PathObjective(), 40, progress=False, seed=seed)
            found[name].append(history["best_valid_acc"].iloc[-1])
    # the optimum is 8 (every edge a 3x3 convolution); 40 random cells rarely pass 4
    assert np.mean(found["bo"]) >= np.mean(found["random"]) + 1.5


def test_batch_asks_propose_distinct_unseen_cells():
    bo = BANANAS(SPACE, seed=1, n_init=5, pool_size=40)
    for _ in range(5):
        arch = bo.ask()
        bo.tell(arch, PathObjective().evaluate(arch))
    told = {SPACE.key(a) for a in bo.archs}
    batch = [bo.ask() for _ in range(3 * bo.parallel)]  # three refits' worth, no result told back yet
    keys = [SPACE.key(a) for a in batch]
    assert len(set(keys)) == len(keys) and not told & set(keys)


def test_same_seed_same_search_and_registry_name():
    runs = [search(SPACE, "bo", PathObjective(), 30, progress=False, seed=s)["arch"].tolist()
            for s in (4, 4, 5)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert isinstance(make_strategy("bo", SPACE, seed=0), BANANAS)


def test_bad_options_are_refused_clearly():
    with pytest.raises(NASInputError, match="acquisition"):
        BANANAS(SPACE, acquisition="pi")
    with pytest.raises(NASInputError, match="pool_size"):
        BANANAS(SPACE, pool_size=0)
    with pytest.raises(NASInputError, match="random_fraction"):
        BANANAS(SPACE, random_fraction=1.5)


def test_bo_beats_random_on_the_benchmark():
    """Over 30 seeds and 100 evaluations on the shipped table, BO's final incumbent is better on average."""
    from tutorial_nas.bench import load_benchmark

    lookup = BenchmarkLookup(SPACE, load_benchmark())
    final = {name: [search(SPACE, name, lookup, 100, progress=False, seed=s)["best_test_acc"].iloc[-1]
                    for s in range(30)] for name in ("bo", "random")}
    assert np.mean(final["bo"]) > np.mean(final["random"])
