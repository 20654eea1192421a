"""The hierarchical space of Liu et al. (2018): mutation, strings, the network, and a search through it."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import FullTraining
from tutorial_nas.search import search
from tutorial_nas.spaces import make_space
from tutorial_nas.spaces.hierarchical import PRIMITIVES, HierarchicalSpace, edges
from tutorial_nas.train import TrainConfig


def _diffs(a, b):
    """(level, motif, edge index) of every edge where genotypes a and b differ."""
    out = [(2, m, k) for m, (x, y) in enumerate(zip(a.motifs, b.motifs)) for k in range(len(x)) if x[k] != y[k]]
    return out + [(3, 0, k) for k in range(len(a.top)) if a.top[k] != b.top[k]]


def test_mutation_changes_exactly_one_edge_at_one_level_and_keeps_a_valid_dag():
    space, rng = HierarchicalSpace(), np.random.default_rng(0)
    arch, levels = space.sample(rng), set()
    for _ in range(300):
        m = space.mutation(arch, rng)
        (level, motif, k), = _diffs(arch, m.arch)
        nodes = space.motif_nodes if level == 2 else space.top_nodes
        assert (level, motif, edges(nodes)[k]) == (m.level, m.motif, m.edge)
        ops = m.arch.motifs[motif] if level == 2 else m.arch.top
        assert ops[k] in (PRIMITIVES if level == 2 else space.motif_names)  # an op of the level below
        assert space._connected(ops, nodes) and space.parse(space.to_str(m.arch)) == m.arch
        levels.add(level)
        arch = m.arch
    assert levels == {2, 3}


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_the_trivial_genotype_is_a_chain_of_identity_mappings_each_followed_by_the_papers_1x1_conv():
    space, c = HierarchicalSpace(), 4
    trivial = space.trivial()
    assert space.to_str(trivial) == ("m1: identity | none,identity | none,none,identity ; "
                                     "m2: identity | none,identity | none,none,identity ; "
                                     "m3: identity | none,identity | none,none,identity ; "
                                     "top: m1 | none,m1 | none,none,m1")
    cell = space.cell(trivial, c).eval()
    live = [k for k, op in enumerate(trivial.top) if op != "none"]
    assert sorted(int(k) for k in cell.ops) == live and len(live) == space.top_nodes - 1 and not cell.merge
    # each live level-3 edge: the motif (identities, no weight), then exactly one 1x1 conv of c -> c channels
    # (Liu et al., Section 4.1), with batch norm and ReLU
    for k in live:
        edge = cell.ops[str(k)]
        (conv,) = _convs(edge)
        assert (conv.kernel_size, conv.in_channels, conv.out_channels) == ((1, 1), c, c)
        assert not _convs(edge.motif) and not _n_params(edge.motif) and conv in set(edge.conv.modules())
        assert [type(m) for m in edge.conv] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert _n_params(cell) == (space.top_nodes - 1) * (c * c + 2 * c)
    # the cell computes the chain of these convolutions, in order
    x = torch.randn(2, c, 6, 6)
    y = x
    for k in live:
        y = cell.ops[str(k)].conv(y)
    assert torch.equal(cell(x), y) and not torch.equal(cell(x), x)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_the_trivial_network_has_the_skeletons_and_the_1x1_convs_parameters(in_channels):
    space, C, classes = HierarchicalSpace(), 8, 10
    edges3 = space.top_nodes - 1
    stem = in_channels * C * 9 + 2 * C
    reduce = C * 9 + C * 2 * C + 2 * 2 * C
    cells = edges3 * (C * C + 2 * C) + edges3 * ((2 * C) ** 2 + 2 * 2 * C)
    head = 2 * C * classes + classes
    model = space.to_model(space.trivial(), classes, in_channels, C=C)
    assert _n_params(model) == stem + reduce + cells + head == {1: 1594, 3: 1738}[in_channels]


def test_every_live_level3_edge_of_a_sampled_genotype_ends_in_one_1x1_conv_and_none_edges_hold_nothing():
    space, c = HierarchicalSpace(motifs=3, motif_nodes=4, top_nodes=5), 6
    rng, nones = np.random.default_rng(3), 0
    for _ in range(10):
        arch = space.sample(rng)
        cell = space.cell(arch, c)
        live = {str(k) for k, op in enumerate(arch.top) if op != "none"}
        nones += len(arch.top) - len(live)
        assert set(cell.ops) == live
        for k in live:
            edge = cell.ops[k]
            last = _convs(edge)[-1]
            assert last is edge.conv[0] and (last.kernel_size, last.in_channels, last.out_channels) == ((1, 1), c, c)
            assert len(_convs(edge)) == len(_convs(edge.motif)) + 1
        assert _n_params(cell) == (sum(_n_params(cell.ops[k].motif) for k in live) + _n_params(cell.merge)
                                   + len(live) * (c * c + 2 * c))
    assert nones  # some level-3 edges were none, and held no motif and no conv


def test_sample_starts_from_the_trivial_genotype_and_is_varied():
    space = HierarchicalSpace()
    assert HierarchicalSpace(init_mutations=0).sample(np.random.default_rng(0)) == space.trivial()
    archs = {space.sample(np.random.default_rng(s)) for s in range(5)}
    assert len(archs) == 5 and space.trivial() not in archs
    # a thousand mutations leave more than the trivial genotype's identities: other primitives, other edges
    ops = [op for a in archs for motif in a.motifs for op in motif]
    assert {"conv1x1", "sepconv3x3", "maxpool3x3"} <= set(ops)


def test_to_str_parse_round_trip_and_clear_errors():
    space = make_space("hierarchical", motifs=2, motif_nodes=3, top_nodes=3)
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = space.sample(rng)
        assert space.parse(space.to_str(arch)) == arch
        assert space.encode(arch).shape == (2 * 3 * len(PRIMITIVES) + 3 * 3,)
    text = "m1: conv1x1 | identity,none ; m2: sepconv3x3 | none,maxpool3x3 ; top: m1 | m2,none"
    assert space.to_str(space.parse(text)) == text
    for bad in ("", "m1: conv1x1 | identity,none ; top: m1 | m2,none",
                text.replace("conv1x1", "conv7x7"), text.replace("m2,none", "none,none"),
                text.replace("| identity,none", "")):
        with pytest.raises(NASInputError):
            space.parse(bad)
    # node j has j incoming edges, not all none: (7-1)(49-1) per motif, (3-1)(9-1) for the level-3 motif
    assert space.size() == (6 * 48) ** 2 * (2 * 8)


def test_to_model_runs_forward_on_one_and_three_channels():
    space = HierarchicalSpace()
    arch = space.sample(np.random.default_rng(0))
    for c in (1, 3):
        out = space.to_model(arch, num_classes=10, in_channels=c, C=4)(torch.randn(2, c, 14, 14))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_multi_input_nodes_merge_by_concatenation_and_1x1_conv():
    space = HierarchicalSpace(motifs=1, motif_nodes=3, top_nodes=2)
    arch = space.parse("m1: conv1x1 | identity,maxpool3x3 ; top: m1")
    cell = space.cell(arch, 4)
    inner = cell.ops["0"].motif  # the level-3 edge (0, 1): motif m1 (then the paper's 1x1 conv)
    assert list(inner.merge) == ["2"] and inner.merge["2"][0].in_channels == 8


def test_a_single_motif_space_samples_and_mutates():
    # with one level-2 motif the only input of a level-3 node has no other op that keeps it connected: such an
    # edge is drawn again instead of failing
    space = HierarchicalSpace(motifs=1, motif_nodes=3, top_nodes=3, init_mutations=50)
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert child != arch and space.parse(space.to_str(child)) == child
        arch = child


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("strategy", ["random", "regularized"])
def test_search_on_digits(digits, strategy):
    space = HierarchicalSpace(motifs=2, motif_nodes=3, top_nodes=3)
    evaluator = FullTraining(space, digits, TrainConfig(epochs=0.2, batch_size=256), C=4)
    options = {"population": 2, "sample": 2} if strategy == "regularized" else {}
    history = search(space, strategy, evaluator, budget=3, progress=False, seed=0, **options)
    assert len(history) == 3 and history.attrs["space"] == "hierarchical"
    assert history["valid_acc"].between(0, 100).all()
    # every genotype the search trained is written as the space writes it, and reads back to itself
    assert all(space.to_str(space.parse(text)) == text for text in history["arch"])
