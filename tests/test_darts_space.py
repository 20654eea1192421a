"""The DARTS cell space: genotype strings, sampling, mutation, size and the evaluation network."""

import numpy as np
import pytest
import torch

from tutorial_nas.errors import NASInputError
from tutorial_nas.spaces import make_space
from tutorial_nas.spaces.darts import (
    CELL_OPS,
    DartsNetwork,
    DartsSpace,
    Genotype,
    genotype_str,
    parse_genotype,
)
from tutorial_nas.train import count_params

torch.set_num_threads(1)

# The second-order cell of the DARTS paper, as printed by its code (genotypes.py, DARTS_V2).
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
            "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_published_genotype_parses_prints_identically_and_has_the_papers_size():
    g = parse_genotype(DARTS_V2)
    assert genotype_str(g) == DARTS_V2
    assert g.normal[7] == ("dil_conv_3x3", 2) and g.reduce_concat == (2, 3, 4, 5)
    # DARTS reports 3.3M parameters for this cell at 36 channels and 20 cells (auxiliary head excluded).
    params = count_params(DartsNetwork(g, num_classes=10, in_channels=3, C=36, layers=20))
    assert 3.2e6 < params < 3.4e6


def test_range_concat_as_printed_by_the_search_code_is_accepted():
    g = parse_genotype(DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)"))
    assert g == parse_genotype(DARTS_V2)


def test_every_sampled_mutated_and_crossed_genotype_round_trips():
    space, rng = DartsSpace(), np.random.default_rng(0)
    g = space.sample(rng)
    for _ in range(300):
        for arch in (space.sample(rng), space.mutate(g, rng), space.crossover(g, space.sample(rng), rng)):
            assert parse_genotype(space.to_str(arch)) == arch
            assert space.from_tokens(space.to_tokens(arch)) == arch
            hash(arch)
        g = space.mutate(g, rng)


def test_sample_uses_two_distinct_inputs_per_node_and_no_none():
    space, rng = DartsSpace(), np.random.default_rng(1)
    for _ in range(200):
        g = space.sample(rng)
        for pairs in (g.normal, g.reduce):
            assert all(op in CELL_OPS for op, _ in pairs)
            for n in range(4):
                (_, a), (_, b) = pairs[2 * n:2 * n + 2]
                assert a != b and max(a, b) <= n + 1


def test_mutation_changes_exactly_one_op_or_input_and_keeps_inputs_distinct():
    space, rng = DartsSpace(), np.random.default_rng(2)
    changed_inputs = changed_ops = 0
    for _ in range(300):
        g = space.sample(rng)
        m = space.mutate(g, rng)
        diffs = [(p, q) for w in ("normal", "reduce") for p, q in zip(getattr(g, w), getattr(m, w)) if p != q]
        assert len(diffs) == 1
        (op_a, in_a), (op_b, in_b) = diffs[0]
        changed_ops += op_a != op_b
        changed_inputs += in_a != in_b
        assert (op_a != op_b) != (in_a != in_b)
        for n in range(4):
            assert m.normal[2 * n][1] != m.normal[2 * n + 1][1]
    assert changed_ops > 50 and changed_inputs > 50


def test_key_ignores_the_order_of_a_nodes_two_pairs():
    space = DartsSpace()
    g = parse_genotype(DARTS_V2)
    swapped = g._replace(normal=(g.normal[1], g.normal[0]) + g.normal[2:])
    assert swapped != g and space.key(swapped) == space.key(g)


def test_size_is_computed_from_the_rule():
    space = make_space("darts")
    assert space.size(pair=False) == 1 * 3 * 6 * 10 * 7 ** 8 == 1_037_664_180
    assert space.size() == space.size(pair=False) ** 2
    assert 1e18 < space.size() < 1.1e18


def test_encoding_marks_sixteen_used_edges():
    g = parse_genotype(DARTS_V2)
    v = DartsSpace().encode(g)
    assert v.shape == (2 * 14 * 7,) and v.sum() == 16


@pytest.mark.parametrize("text, words", [
    (DARTS_V2.replace("'dil_conv_3x3', 2", "'conv_7x7', 2"), "unknown operation"),
    (DARTS_V2.replace("'dil_conv_3x3', 2", "'none', 2"), "unknown operation"),
    (DARTS_V2.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)",
                      "('sep_conv_3x3', 0), ('sep_conv_3x3', 2), ('sep_conv_3x3', 0)"), "must be 0..1"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "must be 0..4"),
    (DARTS_V2.replace(", ('dil_conv_3x3', 2)", ""), "exactly 8"),
    (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 7]"), "normal_concat"),
    (DARTS_V2.replace("Genotype(", "Genotype(normal=1, "), "malformed"),
    ("Genotype(normal=[], reduce=[])", "malformed"),
    (DARTS_V2.replace("('sep_conv_3x3', 0)", "__import__('os')", 1), "not an ('op', input) pair"),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed"),
])
def test_malformed_genotypes_raise_a_clear_error(text, words):
    with pytest.raises(NASInputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_genotype(text)


def test_non_string_is_refused():
    with pytest.raises(NASInputError):
        parse_genotype(42)


def test_networks_from_sampled_genotypes_run_forward_and_backward():
    space, rng = DartsSpace(), np.random.default_rng(3)
    x = torch.randn(4, 1, 8, 8)
    for layers in (1, 3, 4):
        model = space.to_model(space.sample(rng), num_classes=10, in_channels=1, C=4, layers=layers,
                               drop_path=0.2)
        out = model(x)
        assert out.shape == (4, 10)
        out.sum().backward()
        model.eval()
        assert torch.isfinite(model(x)).all()


def test_reduction_cells_sit_at_one_and_two_thirds_of_the_depth():
    model = DartsNetwork(parse_genotype(DARTS_V2), num_classes=10, in_channels=1, C=4, layers=6)
    x = model.stem(torch.randn(2, 1, 16, 16))
    s0 = s1 = x
    sizes = []
    for cell in model.cells:
        s0, s1 = s1, cell(s0, s1)
        sizes.append(s1.shape[-1])
    assert sizes == [16, 16, 8, 8, 4, 4]


def test_genotypes_built_as_in_the_darts_code_are_accepted():
    g = parse_genotype(DARTS_V2)
    lists = Genotype(normal=[list(p) for p in g.normal], normal_concat=range(2, 6),
                     reduce=list(g.reduce), reduce_concat=[2, 3, 4, 5])
    assert genotype_str(lists) == DARTS_V2
    model = DartsNetwork(lists, num_classes=10, in_channels=1, C=4, layers=2)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
