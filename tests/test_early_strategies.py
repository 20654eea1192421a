"""The strategies of chapter 1 learn, not only run: REINFORCE, Q-learning, large-scale, regularized and
genetic evolution, each on an objective whose answer is known (large-scale evolution's own mechanics, its
mutations and weight inheritance, are in test_large_scale_evolution.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import FullTraining, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space, all_cells, encode_onehot
from tutorial_nas.spaces.chain import ChainSpace
from tutorial_nas.spaces.genetic import GeneticSpace
from tutorial_nas.strategies import STRATEGIES, make_strategy
from tutorial_nas.strategies.evolution import GeneticCNN, LargeScaleEvolution, RegularizedEvolution
from tutorial_nas.strategies.qlearning import TERMINAL, MetaQNN, QLearning, epsilon_at
from tutorial_nas.strategies.reinforce import Reinforce

torch.set_num_threads(1)
NB201_TARGET = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def small_chain():
    return ChainSpace(max_layers=2, filters=(4, 8), kernels=(1, 3), pools=("none", "max_pool_2x2"))


def run(strategy, fitness, steps):
    """Ask/tell ``steps`` times with a synthetic fitness; return the proposals."""
    proposals = []
    for _ in range(steps):
        arch = strategy.ask()
        strategy.tell(arch, Result(valid_acc=fitness(arch)))
        proposals.append(arch)
    return proposals


# ------------------------------------------------------------------------------------------------ REINFORCE

def test_controller_rewarded_only_for_one_chain_finds_it_and_concentrates_on_it():
    space = small_chain()
    target = space.parse("conv3x3-8-max_pool_2x2<in")
    controller = Reinforce(space, seed=0)
    before = controller.prob(target)
    for _ in range(300):  # on-policy: the target is rewarded only when the controller proposes it
        arch = controller.ask()
        controller.tell(arch, Result(valid_acc=100.0 if arch == target else 0.0))
        if controller.prob(target) > 0.8:
            break
    assert before < 0.1 and controller.prob(target) > 0.8


def test_controller_on_nb201_learns_the_one_rewarded_cell():
    # 1 in 15,625 would take thousands of proposals to meet; here it is told alongside its own proposals
    space = NB201Space()
    target = space.parse(NB201_TARGET)
    for seed in (0, 1, 2):  # the climb is noisy step to step (one seed dips from 0.89 to 0.71 on its way up)
        controller = Reinforce(space, seed=seed)
        before = controller.prob(target)
        for _ in range(100):
            arch = controller.ask()
            controller.tell(arch, Result(valid_acc=100.0 if arch == target else 0.0))
            controller.tell(target, Result(valid_acc=100.0))
        assert before < 1e-3 and controller.prob(target) > 0.8, seed


def test_controller_probabilities_match_its_sampling():
    space = small_chain()
    controller = Reinforce(space, seed=1)
    draws = [space.to_str(controller.ask()) for _ in range(800)]
    top = max(set(draws), key=draws.count)
    assert abs(draws.count(top) / len(draws) - controller.prob(space.parse(top))) < 0.035
    # the probabilities of all 8 + 64 * 2 = 136 architectures sum to one
    total = sum(controller.prob(space.from_tokens(t)) for t in all_tokens(space))
    assert total == pytest.approx(1.0, abs=1e-4)


def all_tokens(space, tokens=()):
    decision = space.next_decision(list(tokens))
    if decision is None:
        yield list(tokens)
        return
    for t in range(len(decision.choices)):
        yield from all_tokens(space, tokens + (t,))


def test_anchor_attention_learns_which_layers_to_read():
    space = ChainSpace(max_layers=3, filters=(4,), kernels=(3,), pools=("none",))
    # only the depth and the anchors can differ; the target's anchors differ by source and by target layer
    target = space.parse("conv3x3-4<in | conv3x3-4<in | conv3x3-4<0,1")
    controller = Reinforce(space, seed=0)
    before = controller.prob(target)
    for _ in range(40):
        arch = controller.ask()
        controller.tell(arch, Result(valid_acc=100.0 if arch == target else 0.0))
        controller.tell(target, Result(valid_acc=100.0))
    assert before < 0.1 and controller.prob(target) > 0.8
    reads_previous = space.parse("conv3x3-4<in | conv3x3-4<0 | conv3x3-4<1")
    assert controller.prob(reads_previous) < 0.05


# -------------------------------------------------------------------------------------------- Q-learning

# A deceptive layer problem: up to three layers of "a" or "b", then stop. Paths starting with "a" look best
# at first, but the best network is b, a, b.
LAYER_REWARDS = {
    ("a",): 0.6, ("b",): 0.1, ("a", "a"): 0.65, ("a", "b"): 0.5, ("b", "a"): 0.2, ("b", "b"): 0.15,
    ("a", "a", "a"): 0.7, ("a", "a", "b"): 0.6, ("a", "b", "a"): 0.55, ("a", "b", "b"): 0.5,
    ("b", "a", "a"): 0.3, ("b", "a", "b"): 0.9, ("b", "b", "a"): 0.2, ("b", "b", "b"): 0.1,
}


def layer_problem(state):
    return ([state + (x,) for x in "ab"] if len(state) < 3 else []) + ([TERMINAL] if state else [])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_learning_finds_the_best_path_of_a_layer_problem(seed):
    agent = QLearning(layer_problem)  # the paper's alpha = 0.01, gamma = 1, replay of 100
    rng = np.random.default_rng(seed)
    episodes = 200
    for m in range(episodes):
        path = agent.rollout((), epsilon_at(m, total=episodes), rng)
        agent.learn(path, LAYER_REWARDS[path[-2]], rng)
    assert agent.rollout((), epsilon=0.0, rng=rng) == [(), ("b",), ("b", "a"), ("b", "a", "b"), TERMINAL]


def test_epsilon_schedule_explores_first_then_exploits():
    assert epsilon_at(0) == 1.0 and epsilon_at(1499) == 1.0
    assert epsilon_at(1500) == 0.9 and epsilon_at(9999) == 0.1
    eps = [epsilon_at(m, total=20) for m in range(20)]
    assert eps[0] == 1.0 and eps[-1] == 0.1 and eps == sorted(eps, reverse=True)
    custom = MetaQNN(small_chain(), schedule=[(1.0, 2), (0.5, 1)])
    assert [custom.epsilon()] == [1.0]


def test_metaqnn_builds_plain_chains_and_learns_the_best_first_layer():
    space = ChainSpace(max_layers=3, filters=(4, 8), kernels=(1, 3), pools=("none",))
    # reward: a network is good when its first layer is a 3x3 convolution with 8 filters
    strategy = MetaQNN(space, seed=0, models=60, replay=30)  # the schedule spans 60 distinct networks
    archs = run(strategy, lambda a: 90.0 if (a[0].kernel, a[0].filters) == (3, 8) else 30.0, 150)
    assert all(layer.inputs == ((i - 1,) if i else ()) for a in archs for i, layer in enumerate(a))
    greedy = strategy.agent.rollout(strategy.start, 0.0, np.random.default_rng(0))
    assert greedy[1][1:3] == (3, 8)
    late = archs[-30:]
    assert sum((a[0].kernel, a[0].filters) == (3, 8) for a in late) > 20


def test_metaqnn_needs_a_chain_space():
    with pytest.raises(NASInputError, match="chain"):
        MetaQNN(NB201Space())
    with pytest.raises(NASInputError, match="schedule"):
        MetaQNN(small_chain(), schedule=[(2.0, 5)])


# ---------------------------------------------------------------------------------------------- evolution

def nb201_fitness(seed=1):
    w = np.random.default_rng(seed).normal(size=30)
    return lambda cell: float(encode_onehot(cell) @ w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regularized_evolution_raises_best_and_median_of_the_population(seed):
    fitness = nb201_fitness()
    strategy = RegularizedEvolution(NB201Space(), seed=seed, population=10)
    seen = run(strategy, fitness, 10)
    first = [ind.fitness for ind in strategy.population]
    seen += run(strategy, fitness, 190)
    last = [ind.fitness for ind in strategy.population]
    assert max(last) > max(first) and np.median(last) > np.median(first)
    # what the search returns, its best proposal, is near the optimum (200 random cells: 0.84 on average)
    assert max(fitness(a) for a in seen) >= 0.93 * max(fitness(c) for c in all_cells())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_scale_evolution_grows_chains_from_nothing_toward_better_ones(seed):
    space = ChainSpace(max_layers=5, filters=(4, 8, 16), min_layers=0)
    w = np.abs(np.random.default_rng(seed).normal(size=len(space.encode(()))))  # every layer, every link helps
    fitness = lambda a: float(space.encode(a) @ w)  # noqa: E731
    strategy = LargeScaleEvolution(space, seed=seed, population=10)
    run(strategy, fitness, 10)
    assert {ind.arch for ind in strategy.population} == {()}  # the start: no convolution at all
    run(strategy, fitness, 290)
    last = [ind.fitness for ind in strategy.population]
    assert np.median(last) > 0 and max(last) >= 0.5 * max(fitness(space.sample(np.random.default_rng(i)))
                                                          for i in range(2000))


def test_regularized_evolution_removes_the_oldest_and_large_scale_the_worse():
    space = NB201Space()
    reg = RegularizedEvolution(space, seed=0, population=4, sample=2)
    archs = run(reg, lambda a: 100.0 if reg.told == 0 else 1.0, 5)  # the first one is by far the best
    assert [ind.arch for ind in reg.population] == archs[1:]  # ... and dies of old age all the same
    lse = LargeScaleEvolution(ChainSpace(max_layers=3, filters=(4, 8), min_layers=0), seed=0, population=4)
    run(lse, lambda a: 50.0, 4)
    lse.ask()
    assert len(lse.population) == 3  # the loser of the tournament is gone at once


class Numbered:
    """A space whose architectures are numbers and whose mutation of n is ("child of", n): parents show."""

    def __init__(self):
        self.count = 0

    def sample(self, rng):
        self.count += 1
        return self.count - 1

    def mutate(self, arch, rng):
        return ("child of", arch)


def test_regularized_evolution_samples_its_tournament_with_replacement():
    # Algorithm 1 (Real et al. 2019) draws S times "a random element of the population". With S = P and no
    # replacement every tournament would hold the whole population and always crown the best; with
    # replacement the best is left out of a tournament with chance (1 - 1/P)**P (0.32 at P = 4).
    parents = []
    for seed in range(5):
        reg = RegularizedEvolution(Numbered(), seed=seed, population=4, sample=4)
        run(reg, lambda a: float(a), 4)  # individuals 0..3, fitness = number: 3 is the best
        parents += [reg.ask()[1] for _ in range(100)]  # asking kills nothing: the population stays 0..3
    share = 1 - parents.count(3) / len(parents)
    assert 0.2 < share < 0.45 and set(parents) <= {0, 1, 2, 3}


def test_genetic_cnn_improves_generation_after_generation():
    space = GeneticSpace(nodes=(3, 4, 5))
    ones = lambda a: 100 * space.encode(a).mean()  # noqa: E731 - fitness: the share of connections present
    strategy = GeneticCNN(space, seed=0, population=8)
    means = [np.mean([ones(a) for a in run(strategy, ones, 8)]) for _ in range(10)]
    assert strategy.generation == 9
    assert np.mean(means[-3:]) > means[0] + 10


def test_genetic_cnn_mutates_by_the_papers_bit_flips():
    # with q_M = 0 a mutation flips nothing (Xie & Yuille: each bit flips with q_M), so without crossover every
    # child is a selected parent as it was; the generic mutate would force one flip on each
    space = GeneticSpace(nodes=(3, 4, 5), flip_prob=0.0)
    strategy = GeneticCNN(space, seed=0, population=6, crossover_prob=0.0, mutation_prob=1.0)
    parents = [strategy.ask() for _ in range(6)]
    for k, arch in enumerate(parents):
        strategy.tell(arch, Result(valid_acc=50.0 + k))
    children = [strategy.ask() for _ in range(6)]
    assert set(children) <= set(parents)
    assert all(space.mutate(c, np.random.default_rng(0)) != c for c in children)


def test_genetic_cnn_mutates_only_the_individuals_left_out_of_crossover():
    # Xie & Yuille's Algorithm 1 mutates "each non-crossover individual": with p_C = 1 every pair is crossed, so
    # with p_M = 1 nothing is mutated and each child pair is a stage swap of its parents; with p_C = 0 all mutate
    space = GeneticSpace(nodes=(3, 4, 5), swap_prob=1.0, flip_prob=1.0)  # a swap exchanges every stage
    strategy = GeneticCNN(space, seed=0, population=6, crossover_prob=1.0, mutation_prob=1.0)
    parents = [strategy.ask() for _ in range(6)]
    for k, arch in enumerate(parents):
        strategy.tell(arch, Result(valid_acc=50.0 + k))
    children = [strategy.ask() for _ in range(6)]
    assert set(children) <= set(parents)  # swapping every stage gives the pair back, in the other order
    flipped = {space.flip_bits(a, np.random.default_rng(0)) for a in parents}
    assert not set(children) & flipped  # q_M = 1 flips every bit: a mutated child is no parent
    assert strategy.last_breed == {"crossed": [True] * 6, "mutated": [False] * 6}

    strategy = GeneticCNN(space, seed=0, population=6, crossover_prob=0.0, mutation_prob=1.0)
    parents = [strategy.ask() for _ in range(6)]
    for k, arch in enumerate(parents):
        strategy.tell(arch, Result(valid_acc=50.0 + k))
    assert not {strategy.ask() for _ in range(6)} & set(parents)


def test_genetic_roulette_never_picks_the_worst_and_favours_the_best():
    space = GeneticSpace(nodes=(3,))
    strategy = GeneticCNN(space, seed=0, population=4)
    assert strategy.parallel == 4
    asked = [strategy.ask() for _ in range(4)]  # a whole generation before any result
    assert len(asked) == 4 and strategy.generation == 0
    archs = [((0, 0, 0),), ((1, 0, 0),), ((0, 1, 0),), ((1, 1, 1),)]
    for arch, acc in zip(archs, [10.0, 50.0, 50.0, 90.0]):
        strategy.tell(arch, Result(valid_acc=acc))
    picks = [a for _ in range(300) for a in strategy.select()]
    assert archs[0] not in picks  # chance proportional to fitness - worst fitness: 0, 40, 40, 80
    assert picks.count(archs[3]) > picks.count(archs[1]) + picks.count(archs[2]) - 150
    strategy.ask()  # asked for more than a generation: the next one is bred from the results told
    assert strategy.generation == 1


# -------------------------------------------------------------------------------------- shared behaviour

@pytest.mark.parametrize("name, space", [
    ("reinforce", ChainSpace(max_layers=3, filters=(4, 8))),
    ("reinforce", NB201Space()),
    ("qlearning", ChainSpace(max_layers=3, filters=(4, 8))),
    ("large-scale-evolution", ChainSpace(max_layers=3, filters=(4, 8), min_layers=0)),
    ("regularized", NB201Space()),
    ("genetic", GeneticSpace(nodes=(3, 4))),
])
def test_same_seed_same_proposals(name, space):
    fitness = lambda a: float(len(space.to_str(a)) % 17)  # noqa: E731 - any deterministic score
    runs = [[space.to_str(a) for a in run(make_strategy(name, space, seed=s), fitness, 15)]
            for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_registry_names():
    for name in ("reinforce", "qlearning", "large-scale-evolution", "regularized", "genetic"):
        assert name in STRATEGIES
    assert "evolution" not in STRATEGIES  # two algorithms would answer to it: the error names both
    with pytest.raises(NASInputError, match="'large-scale-evolution'.*'regularized'"):
        make_strategy("evolution", NB201Space())
    with pytest.raises(NASInputError):
        RegularizedEvolution(NB201Space(), population=3, sample=5)


def test_reinforce_search_end_to_end_on_digits():
    data = load_dataset("digits")
    space = ChainSpace(max_layers=2, filters=(4,))
    from tutorial_nas.train import TrainConfig

    evaluator = FullTraining(space, data, TrainConfig(epochs=0.3, batch_size=256))
    history = search(space, "reinforce", evaluator, budget=3, progress=False, seed=0)
    assert len(history) == 3 and history.attrs["strategy"] == "reinforce"
    assert history["valid_acc"].between(0, 100).all() and (history["cost_s"] >= 0).all()
    assert all(space.parse(text) for text in history["arch"])


@pytest.mark.parametrize("policy,space", [("lstm", ChainSpace(max_layers=3, filters=(4, 8), kernels=(1, 3))),
                                          ("table", NB201Space())])
def test_asking_prob_first_does_not_change_a_seeded_search(policy, space):
    """The policy's heads (rows) are made when their decision first shows up; asking how likely an architecture is
    before the first proposal must not move the proposals or the starting weights of a seeded search."""
    plain = Reinforce(space, seed=4, policy=policy)
    probed = Reinforce(space, seed=4, policy=policy)
    other = Reinforce(space, seed=9, policy=policy).ask()
    probed.prob(other)  # creates every head (row) this architecture meets, before any proposal
    asked = [(plain.ask(), probed.ask()) for _ in range(6)]
    assert all(space.to_tokens(a) == space.to_tokens(b) for a, b in asked)
    first = dict(plain.controller.named_parameters())
    for name, p in probed.controller.named_parameters():
        assert torch.equal(p, first[name]), name


def test_genetic_space_refuses_bit_strings_of_the_wrong_shape():
    space = GeneticSpace(nodes=(3, 4))  # stages of 3 and 6 bits
    good = ((1, 0, 1), (0, 1, 1, 0, 0, 1))
    assert space.parse(space.to_str(good)) == good and space.from_tokens(space.to_tokens(good)) == good
    for bad in (((1,), (1,) * 8), ((1, 0, 1),), ((1, 0, 2), (0,) * 6), ((1, 0, 1), (0,) * 6, (1, 1, 1))):
        with pytest.raises(NASInputError, match="stage"):
            space.to_model(bad, 10, 1)
        with pytest.raises(NASInputError, match="stage"):
            space.to_str(bad)
    with pytest.raises(NASInputError, match="9 bits"):
        space.from_tokens([1] * 8)
