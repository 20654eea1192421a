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
    model = MLPEnsemble(x.shape[1], seed=0).fit(x, y, epochs=30)  # BANANAS' 5 x (10 layers of 20), MAE
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


def test_expected_improvement_divides_the_spread_by_five_as_naszilla():
    """naszilla's acq_fn('ei'): gamma = (min_y - mean) / (std / 5) on the error, EI = (std / 5)(gamma Phi + phi);
    on accuracies (higher is better) the same number with best - mean for min_y - mean."""
    from scipy.stats import norm

    mean, std, best = np.array([0.9, 0.8, 0.95]), np.array([0.01, 0.5, 0.2]), 1.0
    f = std / 5
    gamma = (mean - best) / f
    reference = f * (gamma * norm.cdf(gamma) + norm.pdf(gamma))
    got = acquisition("ei", mean, std, best, np.random.default_rng(0))
    assert np.allclose(got, reference, rtol=1e-6, atol=1e-12)
    assert np.allclose(acquisition("ei", mean, std, best, None, ei_calibration=1.0),
                       (mean - best) * norm.cdf((mean - best) / std) + std * norm.pdf((mean - best) / std))


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
    """Over 6 seeds and 60 evaluations on the shipped table, BO's final incumbent is better on average."""
    from tutorial_nas.bench import load_benchmark

    lookup = BenchmarkLookup(SPACE, load_benchmark())
    final = {name: [search(SPACE, name, lookup, 60, progress=False, seed=s)["best_test_acc"].iloc[-1]
                    for s in range(6)] for name in ("bo", "random")}
    assert np.mean(final["bo"]) > np.mean(final["random"])


# ------------------------------------------------------------------------ BANANAS as the paper and naszilla

def test_path_encoding_has_one_bit_per_op_sequence_as_naszilla():
    # naszilla's op order: avg_pool 0, conv1x1 1, conv3x3 2, none 3, skip 4; bit = offset + sum_k op_k 5**k
    cell = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                       "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    bits = [4,                      # 0->3: skip
            5 + 2 + 2 * 5,          # 0->1->3: conv3x3, conv3x3
            5 + 2 + 4 * 5,          # 0->2->3: conv3x3, skip
            30 + 2 + 0 * 5 + 4 * 25]  # 0->1->2->3: conv3x3, avg_pool, skip
    for code in (encode_path(cell), SPACE.encode(cell)):
        assert code.shape == (155,) and np.flatnonzero(code).tolist() == bits
    # the two 2-op paths are indexed by their ops alone: equal sequences set one bit; paths through none count
    same = SPACE.parse("|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|")
    assert np.flatnonzero(encode_path(same)).tolist() == [3, 5 + 1 + 4 * 5, 30 + 1 + 3 * 5 + 4 * 25]


def test_surrogate_is_the_papers_ensemble():
    bo = BANANAS(SPACE, seed=0, n_init=10)
    for _ in range(11):  # ten random cells, then the first round fits the surrogate
        arch = bo.ask()
        bo.tell(arch, PathObjective().evaluate(arch))
    shapes = [w.shape for w in bo.surrogate.params[::2]]
    assert shapes == [(5, 155, 20)] + [(5, 20, 20)] * 9 + [(5, 20, 1)]  # 5 members, 10 hidden layers of 20
    # trained on the mean absolute error: on inputs it cannot tell apart it predicts the median, not the mean
    y = np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    mean, _ = MLPEnsemble(3, seed=0).fit(np.zeros((5, 3)), y, 300).predict(np.zeros((1, 3)))  # 300 epochs
    assert abs(mean[0]) < 0.5  # the mean of y is 2


def test_candidates_are_naszillas_mutants_of_the_best_each_parent_tried_in_full():
    """naszilla's ``get_candidates``: pool_size tries of the best parent, then of the next best, the pool's size
    checked only before a parent; a mutant changes each edge with probability 1/4, so some change 3 or more."""
    bo = BANANAS(SPACE, seed=3)
    for _ in range(10):
        arch = bo.ask()
        bo.tell(arch, PathObjective().evaluate(arch))
    tried = []
    real = SPACE.mutate_each

    def counted(arch, rng, rate=1.0):
        tried.append(arch)
        return real(arch, rng, rate)

    bo.space = NB201Space()
    bo.space.mutate_each = counted
    bo.ask()  # the first round: fit, build the pool, propose its best
    order = np.argsort(bo.scores, kind="stable")[::-1]
    parents = [bo.archs[i] for i in order[:5]]
    edits = lambda a, b: sum(x != y for x, y in zip(a, b))  # noqa: E731
    pool = bo.pool
    assert len(tried) % 100 == 0 and tried[:100] == [parents[0]] * 100  # every try of a started parent is made
    assert len(pool) >= 99  # at least pool_size, one of them already proposed by the ask
    assert all(min(edits(c, p) for p in parents) >= 1 for c in pool)  # never a parent (already seen)
    assert sum(min(edits(c, p) for p in parents) >= 3 for c in pool) >= 5  # not one or two edits only
    keys = [SPACE.key(c) for c in bo.pool]
    assert len(set(keys)) == len(keys) and not set(keys) & {SPACE.key(a) for a in bo.archs}


def test_naszillas_mutation_changes_each_edge_with_probability_a_quarter():
    rng, cell = np.random.default_rng(0), ("nor_conv_3x3",) * 6
    changed = np.array([[a != b for a, b in zip(SPACE.mutate_each(cell, rng), cell)] for _ in range(20000)])
    assert np.allclose(changed.mean(axis=0), 0.25, atol=0.015)  # each edge alike, 1.5 on average
    assert (changed.sum(axis=1) == 0).mean() == pytest.approx(0.75 ** 6, abs=0.01)  # the parent itself
    assert changed.sum(axis=1).max() >= 5


def test_the_ensembles_weights_start_as_keras_dense_layers():
    """naszilla's MetaNeuralnet is Keras Dense layers: Glorot uniform weights, zero biases."""
    ens = MLPEnsemble(155, seed=0)
    for w, b in zip(ens.params[::2], ens.params[1::2]):
        limit = np.sqrt(6.0 / (w.shape[1] + w.shape[2]))
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit  # uniform up to the limit
        assert w.var() == pytest.approx(limit ** 2 / 3, rel=0.15) and not b.any()
