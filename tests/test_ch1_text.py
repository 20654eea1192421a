"""Chapter 1 and its worked solutions say what their code does: the links between layers as the space and the
drawing make them, the accuracy the traced reward cubes, the numbers read from the objects that use them, and the
terms defined before they are printed. Static checks of the notebooks' sources; nothing is executed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tutorial_nas.course import viz
from tutorial_nas.spaces.chain import ChainSpace

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "notebooks" / "01_early_nas.ipynb"
SOLUTIONS = ROOT / "notebooks" / "solutions" / "01_early_nas_solutions.ipynb"


def cells(path):
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


def first(path, kind, needle):
    """The index of the first cell of ``kind`` whose source holds ``needle``."""
    return next(i for i, (k, src) in enumerate(cells(path)) if k == kind and needle in src)


def markdown(path):
    return "\n".join(src for kind, src in cells(path) if kind == "markdown")


def test_links_are_anchors_and_the_drawing_is_described_as_drawn():
    text = markdown(CHAPTER)
    assert "dashed edges are skip connections" not in text
    assert "yes/no" in text and "reads only layer i-1" in text
    # the drawing: an edge from the image or the layer just before is solid, from any earlier layer dashed
    arch = ChainSpace(max_layers=3, filters=(8,)).parse("conv3x3-8<in | conv3x3-8<in | conv3x3-8<0,1")
    source = viz.draw_chain(arch).source
    assert re.search(r"L0 -> L2 \[[^]]*dashed", source) and re.search(r"L1 -> L2 \[[^]]*solid", source)
    assert re.search(r"image -> L1 \[[^]]*solid", source)
    assert "solid" in text and "dashed" in text
    solutions = "\n".join(src for _, src in cells(SOLUTIONS))
    assert "without skip connections" not in solutions and "plain chains (each layer reads the one before)" in solutions


def test_the_conv_free_network_is_explained_where_it_first_appears():
    text = markdown(CHAPTER)
    start = text.index("networks without any convolution")
    assert "one number per" in text[start:start + 400]
    code = cells(CHAPTER)[first(CHAPTER, "code", "LargeScaleEvolution(lse_space")][1]
    assert "classifier.in_features" in code and "most frequent" in code  # the accuracy printed beside guessing's


def test_the_traced_reward_prints_the_accuracy_it_cubes():
    code = cells(CHAPTER)[first(CHAPTER, "code", "trace_reinforce_step(")][1]
    reward_line = next(line for line in code.splitlines() if "R = (" in line)
    assert "reward_acc" in reward_line and "valid_acc" not in reward_line


def test_the_panel_offers_budgets_that_let_evolution_evolve():
    index = first(CHAPTER, "code", "search_panel(make_run")
    code = cells(CHAPTER)[index][1]
    assert "budgets=(4, 8" not in code and "chain.population for k in (2," in code
    assert "(interactive: the panel shows once the notebook runs)" in cells(CHAPTER)[index - 1][1]


def test_the_second_evolution_run_has_its_own_bar():
    code = cells(CHAPTER)[first(CHAPTER, "code", "histories = {}")][1]
    assert '"large-scale-evolution, no inheritance"' in code and "label=" in code


@pytest.mark.parametrize("term, printed_by", [("the *advantage*", "trace_reinforce_step("),
                                              ("`born` is", "LargeScaleEvolution(lse_space"),
                                              ("epsilon-greedy (at each step", "histories = {}"),
                                              ("`nb201_mnist5k`", "trace_reinforce_step(")])
def test_terms_are_defined_before_they_are_printed(term, printed_by):
    defined = first(CHAPTER, "markdown", term)
    assert defined < first(CHAPTER, "code", printed_by)


def test_the_cost_extrapolation_is_an_order_of_magnitude():
    assert "lower bound" not in markdown(CHAPTER) and "order of magnitude" in markdown(CHAPTER)


def test_the_solutions_read_their_numbers_from_the_code():
    code = "\n".join(src for kind, src in cells(SOLUTIONS) if kind == "code")
    assert "q_init = 0.5" not in code and ".agent.q_init" in code and 'max(r["curve"])' in code
    assert "pairs swap order" in code and "stays the best" in code
    text = markdown(SOLUTIONS)
    assert "the rank-sum test is the test" not in text and "is the one to trust" in text
    assert "`nb201_mnist5k`" in text and "possible reason" in text
