"""Large-scale evolution as Real et al. (ICML 2017) ran it: networks without a convolution at the start,
tournaments of two, the paper's mutations, and children that start from their parent's trained weights."""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

import tutorial_nas.strategies.evolution as evolution
from tutorial_nas.cli import main
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import Evaluator, FullTraining, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.spaces.chain import MUTATIONS, ChainSpace
from tutorial_nas.strategies.evolution import Genome, Individual, LargeScaleEvolution, TrainedResult, WeightInheritance
from tutorial_nas.train import TrainConfig

torch.set_num_threads(1)


def grown(**kw):
    return ChainSpace(max_layers=4, filters=(4, 8), kernels=(1, 3), **{"min_layers": 0, **kw})


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def training(space, data):
    return FullTraining(space, data, TrainConfig(epochs=0.5, batch_size=256))


def test_the_initial_population_has_no_convolution():
    space = grown()
    strategy = LargeScaleEvolution(space, seed=0, population=5, lr=0.1)
    start = [strategy.ask() for _ in range(5)]
    assert start == [()] * 5 and {g.lr for g in start} == {0.1} and {g.mutation for g in start} == {"initial"}
    model = space.to_model(start[0], num_classes=10, in_channels=3)  # global pooling into a linear classifier
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert [name for name, _ in model.named_parameters()] == ["classifier.weight", "classifier.bias"]


def test_it_needs_the_space_that_holds_the_network_without_a_convolution():
    for space in (NB201Space(), ChainSpace(max_layers=4)):
        with pytest.raises(NASInputError, match="min_layers=0"):
            LargeScaleEvolution(space)
    with pytest.raises(NASInputError, match="inherit"):
        LargeScaleEvolution(grown(), inherit="yes")
    with pytest.raises(NASInputError, match="lr"):
        LargeScaleEvolution(grown(), lr=0)


def test_a_tournament_kills_the_worse_and_copies_the_better_which_lives_on():
    space = grown()
    for seed in range(20):
        strategy = LargeScaleEvolution(space, seed=seed, population=2)
        worse, better = space.parse("conv1x1-4<in"), space.parse("conv3x3-8<in | conv3x3-8<0")
        weights = {"worse": {}, "better": {}}
        for arch, acc, key in ((worse, 10.0, "worse"), (better, 90.0, "better")):
            strategy.ask()
            strategy.tell(Genome(arch, 0.1, "initial"), TrainedResult(valid_acc=acc, weights=weights[key]))
        child = strategy.ask()
        assert [ind.arch for ind in strategy.population] == [better]  # the worse died, the parent stays
        if child.mutation == "reset_weights":
            assert child == better and child.parent_weights is None
        else:
            assert child.parent_weights is weights["better"]


def test_each_mutation_does_what_it_says():
    space = grown()
    strategy = LargeScaleEvolution(space, seed=0)
    arch = space.parse("conv3x3-4<in | conv1x1-8-stride_2<0 | conv3x3-8<1")  # room for a skip, one to remove
    weights = {"classifier.bias": torch.zeros(10)}
    parent = Individual(arch, 50.0, 0, lr=0.2, weights=weights)
    kinds = ("alter_learning_rate", "identity", "reset_weights", *MUTATIONS)
    assert set(kinds) == set(strategy.kinds) | set(space.applicable_mutations(arch))
    for kind in kinds:
        for _ in range(10):
            child = strategy.mutate(parent, kind)
            assert child.mutation == kind and len(child.origins) == len(child)
            assert child.parent_weights is (None if kind == "reset_weights" else weights)
            if kind == "alter_learning_rate":
                assert child == arch and 0.1 <= child.lr <= 0.4 and child.lr != 0.2
            else:
                assert child.lr == 0.2
            if kind in ("identity", "reset_weights", "alter_learning_rate"):
                assert child == arch and child.origins == (0, 1, 2)
            else:
                assert child != arch  # the structural mutations of the space (test_chain.py checks each)
    with pytest.raises(NASInputError, match="mutation"):
        strategy.mutate(Individual((), 1.0, 0), "remove_layer")  # no convolution to remove


def test_mutations_are_drawn_among_those_that_apply():
    strategy = LargeScaleEvolution(grown(), seed=0)
    drawn = {strategy.mutate(Individual((), 1.0, 0, lr=0.1)).mutation for _ in range(200)}
    assert drawn == {"alter_learning_rate", "identity", "reset_weights", "add_layer"}


def start_of_training(monkeypatch):
    """Spy on the training of the evaluator: the weights and the learning rate each network starts with."""
    starts = []

    def spy(model, data, config, **kw):
        starts.append(({k: v.detach().clone() for k, v in model.state_dict().items()}, config.lr))
        return real(model, data, config, **kw)

    real = evolution.train
    monkeypatch.setattr(evolution, "train", spy)
    return starts


@pytest.mark.parametrize("kind", ["identity", "alter_learning_rate", "alter_filters", "add_layer", "remove_layer",
                                  "add_skip", "reset_weights"])
def test_a_child_starts_from_its_parents_trained_weights_wherever_the_shapes_match(kind, digits, monkeypatch):
    space = grown()
    evaluator = WeightInheritance(training(space, digits))
    strategy = LargeScaleEvolution(space, seed=1)
    starts = start_of_training(monkeypatch)
    parent_arch = Genome(space.parse("conv3x3-4<in | conv3x3-8<0 | conv1x1-8<1"), 0.1, "initial")
    result = evaluator.evaluate(parent_arch)
    strategy.tell(parent_arch, result)
    trained = result.weights
    assert trained["layers.0.conv.weight"].shape == (4, 1, 3, 3)
    child = strategy.mutate(strategy.population[0], kind)
    evaluator.evaluate(child)
    start, lr = starts[-1]
    assert lr == child.lr
    taken = 0
    for name, tensor in start.items():
        source = name
        if name.startswith("layers."):
            _, i, rest = name.split(".", 2)
            j = child.origins[int(i)]
            source = None if j is None else f"layers.{j}.{rest}"
        match = source in trained and trained[source].shape == tensor.shape
        if kind == "reset_weights":
            if name.endswith("weight"):  # fresh: drawn anew, not the trained values
                assert not torch.equal(tensor, trained[name]), name
        elif match:
            assert torch.equal(tensor, trained[source]), name
            taken += 1
    assert (taken == 0) == (kind == "reset_weights")
    if kind in ("alter_filters", "add_layer"):
        assert taken < len(start)  # a layer of another width, a new layer: fresh weights there
    if kind in ("identity", "alter_learning_rate"):
        assert taken == len(trained)  # all of it: "keep training"


def test_with_or_without_inheritance_is_a_switch(digits):
    space = grown()
    runs = {flag: search(space, "large-scale-evolution", training(space, digits), 8, seed=0, progress=False,
                         population=2, inherit=flag) for flag in (True, False)}
    on, off = runs[True], runs[False]
    assert on.attrs["evaluator"] == "full-training+inheritance" and off.attrs["evaluator"] == "full-training"
    assert list(on["mutation"][:2]) == ["initial", "initial"] and set(on["arch"][:2]) == {"linear"}
    assert (off["inherited"] == 0).all()
    kept = on[on["mutation"].isin(["identity", "alter_learning_rate"])]
    assert len(kept) and (kept["inherited"] == 1).all()
    assert (on.loc[on["mutation"] == "reset_weights", "inherited"] == 0).all()
    assert on["lr"].gt(0).all() and on["inherited"].between(0, 1).all()


class Depth(Evaluator):
    """A synthetic score, nothing trained: large-scale evolution runs on it with nothing to inherit."""

    name = "depth"

    def evaluate(self, arch):
        return Result(valid_acc=float(len(arch)))


def test_a_synthetic_score_is_left_as_it_is():
    space, scorer = grown(), Depth()
    assert LargeScaleEvolution(space).wrap_evaluator(scorer) is scorer
    history = search(space, "large-scale-evolution", scorer, 60, seed=0, progress=False, population=4)
    assert history.attrs["evaluator"] == "depth" and history["valid_acc"].max() >= 3  # it grows networks


def test_the_weights_travel_with_the_child_and_come_back_with_its_result():
    # a Ray worker gets a pickled child and sends back a pickled result; search tells a copy without test_acc
    child = Genome(((3, 4, "none", ()),), 0.05, "identity", (0,), {"classifier.bias": torch.ones(10)})
    copy = pickle.loads(pickle.dumps(child))
    assert copy == child and (copy.lr, copy.mutation, copy.origins) == (0.05, "identity", (0,))
    assert torch.equal(copy.parent_weights["classifier.bias"], torch.ones(10))
    result = TrainedResult(valid_acc=50.0, test_acc=49.0, weights={"w": torch.zeros(1)})
    told = replace(pickle.loads(pickle.dumps(result)), test_acc=math.nan)
    assert torch.equal(told.weights["w"], torch.zeros(1))
    strategy = LargeScaleEvolution(grown())
    strategy.tell(copy, told)
    assert strategy.population[0].weights is told.weights and strategy.population[0].lr == 0.05
    strategy.tell(Genome((), 0.1, "initial"), Result(valid_acc=math.nan))  # replayed from a checkpoint
    assert strategy.population[1].weights is None and strategy.population[1].fitness == -np.inf


def test_a_checkpointed_search_resumes(digits, tmp_path):
    space = grown()
    path = tmp_path / "search.json"
    first = search(space, "large-scale-evolution", training(space, digits), 4, seed=3, progress=False,
                   population=2, checkpoint=path)
    resumed = search(space, "large-scale-evolution", training(space, digits), 7, seed=3, progress=False,
                     population=2, checkpoint=path, resume=True)
    assert len(resumed) == 7 and list(resumed["arch"][:4]) == list(first["arch"])
    assert list(resumed["mutation"][:4]) == list(first["mutation"])


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_line_runs_it_and_refuses_the_ambiguous_name(capsys, monkeypatch):
    monkeypatch.setenv("TUTORIAL_NAS_PROFILE", "ci")
    code, out, _ = run_cli(capsys, "search", "--space", "chain", "--strategy", "large-scale-evolution",
                           "--budget", "3", "--seed", "5", "--json")
    result = json.loads(out)
    assert code == 0 and result["strategy"] == "large-scale-evolution" and len(result["history"]) == 3
    assert [h["arch"] for h in result["history"]] == ["linear"] * 3  # the ci population (3) fills first
    code, out, err = run_cli(capsys, "search", "--space", "chain", "--strategy", "evolution", "--budget", "3")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "'large-scale-evolution'" in err and "'regularized'" in err


def test_a_childs_fresh_weights_depend_on_the_seed_not_on_what_ran_before(digits):
    """Fresh layers (and a first network's every weight) are drawn as FullTraining draws them, from the
    configuration's seed: the same child scores the same whatever used torch's generator before."""
    space = grown()
    evaluator = WeightInheritance(training(space, digits))
    child = Genome(space.parse("conv3x3-4<in | conv3x3-8<0"), 0.1, "initial")
    results = []
    for before in (1, 2):
        torch.manual_seed(before)
        results.append(evaluator.evaluate(child))
    a, b = results
    assert a.valid_acc == b.valid_acc
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
