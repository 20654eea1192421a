"""Chapter 2 opens the box of every method it runs: a rule, the package's code, and a traced step.

The notebook is not executed here: the test reads its cells, checks that every name it passes to
``show_source`` resolves to the package's code, and checks on tiny inputs the facts its traced steps print.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tutorial_nas.course.source import source
from tutorial_nas.evaluators import Result
from tutorial_nas.oneshot.supernet import evolutionary_search, mutate
from tutorial_nas.spaces.cell import NB201Space, encode_path, parse
from tutorial_nas.strategies.morphism import MorphNet, net2deeper
from tutorial_nas.strategies.reinforce import Reinforce

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_optimization_strategies.ipynb"

# method -> the package functions the chapter shows for it
SHOWN = {
    "mixed op": ["oneshot.darts.MixedOp.forward"],
    "GDAS": ["oneshot.darts.gumbel_hard"],
    "derivation": ["oneshot.darts._derive_cell", "oneshot.darts.derive_nb201"],
    "Net2Wider": ["strategies.morphism.net2wider"],
    "successive halving": ["predictors.successive_halving"],
    "ENAS": ["oneshot.supernet.train_supernet", "oneshot.supernet.SuperCell.forward",
             "strategies.reinforce.Reinforce.tell"],
    "SPOS": ["oneshot.supernet.evolutionary_search", "oneshot.supernet.mutate"],
    "Net2Deeper": ["strategies.morphism.net2deeper"],
    "NASH": ["strategies.morphism.morphism_search", "strategies.morphism.random_morphism"],
    "curves": ["predictors.fit_curve", "predictors.extrapolate", "learning_curves.SequentialRegression.fit"],
    "predictor": ["spaces.cell.encode_path", "predictors.PerformancePredictor.fit"],
    "proxies": ["predictors.grad_norm", "predictors.synflow", "predictors.naswot"],
}


@pytest.fixture(scope="module")
def cells():
    return json.loads(NOTEBOOK.read_text())["cells"]


def shown_names(cells) -> list:
    """Every dotted name a code cell passes to show_source, directly or through a tuple it loops over."""
    names = []
    for c in cells:
        text = "".join(c["source"])
        if c["cell_type"] == "code" and "show_source" in text:
            names += re.findall(r'"((?:\w+\.)+\w+)"', text)
    return names


def test_every_shown_name_resolves_to_package_code(cells):
    names = shown_names(cells)
    assert len(names) > 20
    for name in names:
        assert source(name).path.startswith("tutorial_nas/"), name


@pytest.mark.parametrize("method", sorted(SHOWN))
def test_each_method_is_shown_after_a_rule(cells, method):
    names = shown_names(cells)
    for name in SHOWN[method]:
        assert name in names, f"{method}: {name} is not shown"
    # the cell that shows it follows a markdown cell with a displayed formula
    first = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "code" and SHOWN[method][0] in "".join(c["source"]))
    before = [c for c in cells[:first] if c["cell_type"] == "markdown"][-1]
    assert "$" in "".join(before["source"]), method


# method -> (the function shown, the trace called in a code cell after it, a rule the markdown before it holds)
TRACED = {
    "mixed op": ("oneshot.darts.MixedOp.forward", "trace_mixed_op(", r"\sum_{o \in \mathcal O}"),
    "GDAS": ("oneshot.darts.gumbel_hard", "trace_gumbel_sample(", r"g_k = -\log(-\log u_k)"),
    "derivation": ("oneshot.darts._derive_cell", "trace_derivation(", r"o \neq \text{none}"),
    "Net2Wider": ("strategies.morphism.net2wider", "trace_net2wider(", r"|\{x \mid g(x) = g(j)\}|"),
}


@pytest.mark.parametrize("method", sorted(TRACED))
def test_each_method_is_traced_after_its_code(cells, method):
    shown, call, rule = TRACED[method]
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    first = next(i for i in code if shown in "".join(cells[i]["source"]))
    traced = [i for i in code if call in "".join(cells[i]["source"])]
    assert traced and traced[0] > first, f"{method}: no {call} after the cell showing {shown}"
    between = [i for i in code if first < i < traced[0] and "show_source" in "".join(cells[i]["source"])]
    assert not between, f"{method}: another method's code is shown between its code and its trace"
    before = [c for c in cells[:first] if c["cell_type"] == "markdown"][-1]
    assert rule in "".join(before["source"]), method


def test_the_halving_rule_is_the_package_s(cells):
    from tutorial_nas.predictors import successive_halving

    text = "".join(next(c["source"] for c in cells if "### Successive halving" in "".join(c["source"])))
    assert r"n_{r+1} = \max\big(1, \lfloor n_r / \eta \rfloor\big)" in text and r"\eta\, b_r" in text
    run = successive_halving(list(range(30)), lambda c, b: c * b, min_budget=1, max_budget=27, eta=3)
    sizes = run.log.groupby(["round", "budget"]).size()
    assert list(sizes.index) == [(0, 1), (1, 3), (2, 9), (3, 27)] and list(sizes) == [30, 10, 3, 1]
    assert run.best == 29


def test_net2deeper_is_the_identity_on_a_tiny_tensor():
    torch.manual_seed(0)
    small = MorphNet("c4k3-c8k3", num_classes=3, in_channels=1)
    x = torch.randn(4, 1, 8, 8)
    deep = net2deeper(small, 0, kernel=3, x=x)
    small.eval()
    deep.eval()
    kernel = deep.blocks[1].conv.weight.detach()
    assert torch.equal(kernel[:, :, 1, 1], torch.eye(4))
    assert kernel.abs().sum().item() == 4.0  # every other tap is zero
    with torch.no_grad():
        assert (deep(x) - small(x)).abs().max().item() < 1e-5
    with torch.no_grad():  # a plain random conv in its place would change the function
        deep.blocks[1].conv.weight.normal_()
        assert (deep(x) - small(x)).abs().max().item() > 1e-2


def test_spos_evolution_breeds_from_the_top_and_respects_the_budget():
    score = lambda c: sum(op == "nor_conv_3x3" for op in c) + 0.1 * sum(op == "skip_connect" for op in c)  # noqa: E731
    found = evolutionary_search(score, budget=24, population=6, top_k=2, seed=0)
    space = NB201Space()
    assert len(found) == 24 and len({space.key(e["cell"]) for e in found}) == 24
    assert {e["origin"] for e in found if e["generation"] == 0} == {"random"}
    assert {"mutation", "crossover"} <= {e["origin"] for e in found if e["generation"] >= 1}
    best = [max(e["score"] for e in found if e["generation"] <= g) for g in range(4)]
    assert best[-1] > best[0]  # the toy objective improves over the random start
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    assert mutate(cell, 0.0, rng) == cell and len(mutate(cell, 1.0, rng)) == len(cell)


@pytest.mark.parametrize("sign", [1, -1])
def test_enas_controller_step_follows_the_advantage(sign):
    controller = Reinforce(NB201Space(), seed=0, lr=0.01, reward="accuracy", entropy_weight=1e-4)
    controller.tell(controller.ask(), Result(valid_acc=50.0))  # the first reward starts the baseline
    child = controller.ask()
    before = controller.prob(child)
    controller.tell(child, Result(valid_acc=50.0 + sign * 25.0))
    assert np.sign(controller.prob(child) - before) == sign


def test_path_encoding_sets_one_bit_per_path_sequence():
    cell = parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    v = encode_path(cell)
    assert v.shape == (155,) and v.sum() == 4  # four distinct op sequences from input to output
