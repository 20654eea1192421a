"""Weight sharing on the NAS-Bench-201 cell: one path of the supernet is the cell's network; the uniform
single-path supernet learns; the ENAS controller drifts towards better cells; BN statistics are re-estimated
per path; RS-WS samples candidates uniformly while SPOS evolves them from the top k (Guo et al. 2020, §3.3)."""

from collections import Counter

import numpy as np
import pytest
import torch

from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot import supernet as supernet_module
from tutorial_nas.oneshot.supernet import (
    Supernet,
    WeightSharingEvaluator,
    evolutionary_search,
    mutate,
    spos_sizes,
    train_weight_sharing,
    weight_sharing_search,
)
from tutorial_nas.ops import NB201_OPS
from tutorial_nas.spaces.cell import NB201Network, NB201Space, parse

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def supernet_key(key: str, cell) -> str:
    """Where a parameter of the standalone cell network lives in the supernet."""
    parts = key.split(".")
    if parts[0] != "cells":
        return key
    parts[0] = "layers"
    if parts[2] == "edges":  # cells.k.edges.ij.rest -> layers.k.edges.ij.<op>.rest
        edge = parts[3]
        op = cell[[f"{i}{j}" for i, j in ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))].index(edge)]
        parts.insert(4, op)
    return ".".join(parts)


@pytest.mark.parametrize("seed", range(3))
def test_one_path_is_the_cells_network(seed):
    """With the supernet's weights copied in, the standalone NB201 network of a cell computes the same."""
    torch.manual_seed(seed)
    cell = NB201Space().sample(np.random.default_rng(seed))
    supernet = Supernet(num_classes=10, in_channels=1, C=4, N=2).eval()
    net = NB201Network(cell, num_classes=10, in_channels=1, C=4, N=2).eval()
    state = supernet.state_dict()
    net.load_state_dict({k: state[supernet_key(k, cell)] for k in net.state_dict()})
    x = torch.randn(6, 1, 8, 8)
    assert torch.allclose(supernet(x, cell), net(x), atol=1e-6)


def test_recalibration_estimates_the_paths_statistics(digits):
    supernet = Supernet(10, 1, C=4, N=1)
    cell = ("nor_conv_3x3",) * 6
    supernet.recalibrate(cell, digits, n_batches=1, batch_size=64)
    stem_out = supernet.stem[0](digits.train_x[:64])
    assert torch.allclose(supernet.stem[1].running_mean, stem_out.mean(dim=(0, 2, 3)), atol=1e-5)
    conv_bn = supernet.layers[0].edges["01"]["nor_conv_3x3"][2]
    assert conv_bn.num_batches_tracked.item() == 1  # this path's BN saw exactly the calibration batch
    assert supernet.layers[0].edges["01"]["nor_conv_1x1"][2].num_batches_tracked.item() == 0  # not on path


def test_spos_loss_falls_and_scores_are_repeatable(digits):
    supernet, _, log = train_weight_sharing("spos", digits, epochs=3, C=8, N=1, batch_size=32, seed=0,
                                            progress=False)
    assert log["loss"][-1] < log["loss"][0] - 0.2
    assert log["samples"] == []  # uniform sampling learns nothing
    evaluator = WeightSharingEvaluator(supernet, digits, batch_size=32)
    cell = ("nor_conv_3x3", "skip_connect", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect")
    first, second = evaluator.evaluate(cell), evaluator.evaluate(cell)
    assert first.valid_acc == second.valid_acc > 20  # recalibration makes the score a function of the cell
    assert first.info["ws_acc"] == first.valid_acc


@pytest.mark.parametrize("method", ["rs-ws", "spos"])
def test_weight_sharing_search_history(digits, method):
    """A real small run of each: as many candidates as supernet evaluations, SPOS's bred after its first
    population (P = 2, k = 2 for 5 evaluations)."""
    history = weight_sharing_search(method, digits, epochs=1, C=4, N=1, batch_size=64, n_candidates=5,
                                    progress=False)
    assert len(history) == 5
    origins = {"rs-ws": ["random"] * 5, "spos": ["random", "random", "mutation", "crossover", "mutation"]}
    assert list(history["origin"]) == origins[method]
    assert list(history["generation"]) == ([0] * 5 if method == "rs-ws" else [0, 0, 1, 1, 2])
    assert set(history["valid_acc"]) == set(history["ws_acc"])  # no benchmark: the shared-weight accuracy
    assert history["spent_s"].is_monotonic_increasing
    assert history["cost_s"].iloc[0] > history["cost_s"].iloc[1:].max()  # the supernet's training, paid once
    best = history["best_valid_acc"].iloc[-1]
    assert best == history["ws_acc"].max()
    with pytest.raises(NASInputError):
        weight_sharing_search("darts", digits)


def test_enas_controller_learns_after_warmup(digits):
    _, controller, log = train_weight_sharing("enas", digits, epochs=2, C=4, N=1, batch_size=64, seed=0,
                                              progress=False, controller_steps=5, warmup_epochs=1)
    # the controller waited for the warm-up epoch, then took five steps of ENAS' ten children each
    assert controller.aggregate == 10 and [e for e, _ in log["samples"]] == [2] * 50
    assert controller.baseline is not None and controller._pending == 0  # told fifty rewards, every step taken


def test_enas_controller_moves_towards_what_the_shared_weights_favour(digits):
    """REINFORCE maximises its reward: under the final shared weights, the cells the controller proposed in
    its last epoch score higher than those of its first.

    The reward is judged under the shared weights, not the benchmark: at this scale the controller settles on
    parameter-free cells that the benchmark ranks low, as ENAS does on NAS-Bench-201 itself (53.89 % test
    accuracy on CIFAR-10 against 94.37 % for the best cell; Dong & Yang, ICLR 2020, Table 5). Chapter 4
    ("Why supernets mislead") measures that gap."""
    supernet, _, log = train_weight_sharing("enas", digits, epochs=3, C=8, N=1, batch_size=32, seed=0,
                                            progress=False, controller_steps=30)
    evaluator = WeightSharingEvaluator(supernet, digits, batch_size=32)
    score = {}
    for epoch in (1, 3):
        cells = list(dict.fromkeys(a for e, a in log["samples"] if e == epoch))[:8]
        score[epoch] = np.mean([evaluator.evaluate(parse(a)).valid_acc for a in cells])
    assert score[3] > score[1] + 2


# -- SPOS's second stage: evolution over the trained supernet ---------------------------------------------------
TARGET = ("nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_3x3", "none")


def matches(cell) -> float:
    """A stand-in for the shared-weight accuracy with a known structure: 10 points per edge holding TARGET's op
    (uniform sampling matches 1.2 edges on average; the best cell scores 60)."""
    return 10.0 * sum(a == b for a, b in zip(cell, TARGET))


@pytest.fixture
def stand_in(monkeypatch):
    """Every supernet evaluation answers ``matches``: the selection logic runs in milliseconds."""
    monkeypatch.setattr(Supernet, "score", lambda self, cell, *args, **kwargs: matches(cell))


def brief(method, data, seed, n_candidates, **options):
    """``weight_sharing_search`` on a supernet trained for one step (the stand-in does the scoring)."""
    return weight_sharing_search(method, data, epochs=0.01, C=4, N=1, batch_size=64, seed=seed,
                                 n_candidates=n_candidates, progress=False, **options)


def test_spos_evolution_beats_random_sampling_at_equal_supernet_evaluations(digits, stand_in):
    """With 80 supernet evaluations each, SPOS's evolution finds cells that score at least as well as RS-WS's
    uniform candidates in nearly every seed (a seed may lose: both are random), by a whole edge more on average,
    and the rank-sum test over the seeds says so."""
    from scipy.stats import mannwhitneyu

    best = {"spos": [], "rs-ws": []}
    for seed in range(16):
        for method in best:
            history = brief(method, digits, seed, 80)
            assert len(history) == 80 and history["step"].tolist() == list(range(80))  # one row per evaluation
            best[method].append(history["best_valid_acc"].iloc[-1])
    spos, rsws = np.array(best["spos"]), np.array(best["rs-ws"])
    assert (spos >= rsws).sum() >= 14
    assert spos.mean() >= rsws.mean() + 10
    assert mannwhitneyu(spos, rsws, alternative="greater").pvalue < 0.01


def test_rs_ws_is_uniform_random_sampling(digits, stand_in):
    """RS-WS's candidates are uniform draws (each op on each edge a fifth of the time, 1.2 edges of TARGET
    per cell), distinct up to isomorphism; SPOS's, bred from the best, concentrate around TARGET."""
    space, rsws, spos = NB201Space(), [], []
    for seed in range(6):
        history = brief("rs-ws", digits, seed, 40)
        assert set(history["origin"]) == {"random"}
        assert len({space.key(parse(a)) for a in history["arch"]}) == 40
        rsws += [parse(a) for a in history["arch"]]
        spos += [parse(a) for a in brief("spos", digits, seed, 40)["arch"]]
    mean_matches = {name: np.mean([matches(c) for c in cells]) / 10 for name, cells in (("rs", rsws), ("spos", spos))}
    assert 1.0 < mean_matches["rs"] < 1.4 < 1.8 < mean_matches["spos"]
    counts = Counter(op for cell in rsws for op in cell)
    assert all(abs(counts[op] / (6 * len(rsws)) - 0.2) < 0.04 for op in NB201_OPS)


def test_spos_mutation_redraws_each_edge_with_probability_p():
    """The paper's mutation: every choice redrawn with probability 0.1 (uniformly over all ops, so a fifth
    of the redraws keep the op), unlike regularized evolution's move of exactly one edge; children are valid
    NAS-Bench-201 cells."""
    rng, space = np.random.default_rng(0), NB201Space()
    children = [mutate(TARGET, 0.1, rng) for _ in range(3000)]
    assert all(len(c) == 6 and set(c) <= set(NB201_OPS) and space.parse(space.to_str(c)) == c for c in children)
    changed = np.array([sum(a != b for a, b in zip(c, TARGET)) for c in children])
    assert abs(changed.mean() / 6 - 0.1 * 4 / 5) < 0.01
    assert (changed == 0).mean() > 0.5 and (changed >= 2).sum() > 50
    assert mutate(TARGET, 0.0, rng) == TARGET
    crossed = [space.crossover(TARGET, ("none",) * 6, rng) for _ in range(500)]  # uniform crossover
    assert all(set(c) <= set(TARGET) | {"none"} for c in crossed)
    assert 0.4 < np.mean([a == b for c in crossed for a, b in zip(c, TARGET) if b != "none"]) < 0.6


def test_spos_breeds_each_generation_from_the_top_k_seen_so_far(monkeypatch):
    """Algorithm 1: P random cells, then generations of P/2 mutants and P/2 crossover children whose parents
    are all among the top k cells evaluated in earlier generations; each new cell (up to isomorphism) scored
    once."""
    calls, scored = [], []
    real_mutate, real_crossover = supernet_module.mutate, NB201Space.crossover

    def spy_mutate(cell, prob, rng):
        calls.append((len(scored), "mutation", [cell]))
        return real_mutate(cell, prob, rng)

    def spy_crossover(self, a, b, rng):
        calls.append((len(scored), "crossover", [a, b]))
        return real_crossover(self, a, b, rng)

    monkeypatch.setattr(supernet_module, "mutate", spy_mutate)
    monkeypatch.setattr(NB201Space, "crossover", spy_crossover)
    rows = evolutionary_search(lambda cell: scored.append(cell) or matches(cell), 60, population=10, top_k=3)
    assert [r["cell"] for r in rows] == scored and len({NB201Space().key(c) for c in scored}) == 60
    generation = [r["generation"] for r in rows]
    assert Counter(generation) == {g: 10 for g in range(6)}
    assert [r["origin"] for r in rows[:10]] == ["random"] * 10
    for g in range(1, 6):  # where the top k give too few new children, random cells fill the population
        origins = [r["origin"] for r in rows if r["generation"] == g]
        crossed = origins.count("crossover")
        assert origins == ["mutation"] * 5 + ["crossover"] * crossed + ["random"] * (5 - crossed)
    assert Counter(r["origin"] for r in rows[10:20]) == {"mutation": 5, "crossover": 5}
    assert max(r["score"] for r in rows) == 60  # the top k led it to TARGET within 60 evaluations
    assert {kind for _, kind, _ in calls} == {"mutation", "crossover"}
    for at, _, parents in calls:
        earlier = [r for r in rows if r["generation"] < generation[at]]
        top = [r["cell"] for r in sorted(earlier, key=lambda r: -r["score"])[:3]]
        assert all(p in top for p in parents)


def test_spos_sizes_follow_the_reference_and_bad_settings_are_refused(digits):
    assert spos_sizes(1050) == (50, 10)  # the reference code's P = 50, k = 10 and 20 generations
    assert spos_sizes(20) == (6, 2) and spos_sizes(20, population=8, top_k=3) == (8, 3)
    for bad in (dict(population=0), dict(top_k=1.5), dict(mutation_prob=1.5)):
        with pytest.raises(NASInputError):
            evolutionary_search(matches, 10, **bad)
    with pytest.raises(NASInputError):
        weight_sharing_search("rs-ws", digits, population=10)


def test_spos_first_population_is_not_the_first_paths_it_trained(digits, monkeypatch):
    """SPOS' search draws its first population apart from the supernet's training: from the same seed's stream it
    would be exactly the first paths trained (once, early, at the highest rate)."""
    trained = []
    ask = supernet_module.RandomSearch.ask

    def spy(self):
        cell = ask(self)
        trained.append(tuple(cell))
        return cell

    monkeypatch.setattr(supernet_module.RandomSearch, "ask", spy)
    small = digits.subset(0.2)
    h = weight_sharing_search("spos", small, epochs=0.5, C=4, N=1, batch_size=32, n_candidates=10)
    population = spos_sizes(10)[0]
    first = [tuple(parse(a)) for a in h["arch"][:population]]
    assert len(trained) >= population and first != trained[:population]
