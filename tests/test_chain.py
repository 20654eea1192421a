"""The chain space of chapter 1 and the Genetic CNN bit-string space: strings, sizes, mutations, networks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tutorial_nas.errors import NASInputError
from tutorial_nas.spaces import make_space
from tutorial_nas.spaces.chain import MUTATIONS, ChainSpace, Layer, consumers, plain_chain
from tutorial_nas.spaces.genetic import GeneticSpace, stage_edges

torch.set_num_threads(1)


@pytest.fixture
def space():
    return ChainSpace(max_layers=6, filters=(4, 8))


def forward(model, shape):
    model.eval()
    with torch.no_grad():
        return model(torch.randn(2, *shape))


# ------------------------------------------------------------------------------------------------ chain

def test_registry_builds_the_chain_and_genetic_spaces():
    assert isinstance(make_space("chain", max_layers=3, filters=(4,)), ChainSpace)
    assert isinstance(make_space("genetic", nodes=(3, 4)), GeneticSpace)


def test_string_round_trip_on_many_samples(space):
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.sample(rng)
        text = space.to_str(arch)
        assert space.parse(text) == arch
        assert space.from_tokens(space.to_tokens(arch)) == arch


def test_string_form_is_the_documented_one(space):
    arch = (Layer(3, 4, "none", ()), Layer(5, 8, "max_pool_2x2", (0,)), Layer(1, 4, "stride_2", (0, 1)))
    assert space.to_str(arch) == "conv3x3-4<in | conv5x5-8-max_pool_2x2<0 | conv1x1-4-stride_2<0,1"


@pytest.mark.parametrize("text, says", [
    ("", "non-empty"),
    ("conv3x3-4", "not of the form"),
    ("conv3x5-4<in", "square"),
    ("conv7x7-4<in", "kernel size"),
    ("conv3x3-5<in", "number of filters"),
    ("conv3x3-4-avg_pool<in", "pool"),
    ("conv3x3-4<in | conv3x3-4<1", "earlier layers"),
    ("conv3x3-4<in | conv3x3-4<in | conv3x3-4<1,0", "increasing"),
    (" | ".join(["conv3x3-4<in"] * 7), "at most 6"),
])
def test_bad_strings_say_what_is_wrong(space, text, says):
    with pytest.raises(NASInputError, match=says):
        space.parse(text)


def test_bad_space_settings_are_refused():
    with pytest.raises(NASInputError, match="max_layers"):
        ChainSpace(max_layers=0)
    for bad in (-1, 7, 1.0, True):
        with pytest.raises(NASInputError, match="min_layers"):
            ChainSpace(max_layers=6, min_layers=bad)
    with pytest.raises(NASInputError, match="filters"):
        ChainSpace(filters=())
    with pytest.raises(NASInputError, match="odd"):
        ChainSpace(kernels=(2,))
    with pytest.raises(NASInputError, match="pool"):
        ChainSpace(pools=("avg",))


def test_size_is_exact_and_matches_enumeration():
    small = ChainSpace(max_layers=3, filters=(4,), kernels=(1, 3), pools=("none", "stride_2"))

    def count(tokens):
        decision = small.next_decision(tokens)
        if decision is None:
            return 1
        return sum(count(tokens + [t]) for t in range(len(decision.choices)))

    # 4 + 4**2 * 2 + 4**3 * 2**3 = 548 architectures
    assert small.size() == count([]) == 548
    big = ChainSpace(max_layers=12, filters=(32, 64, 128))
    expected = sum(27 ** d * 2 ** (d * (d - 1) // 2) for d in range(1, 13))
    assert isinstance(big.size(), int) and big.size() == expected


def test_token_interface_asks_depth_then_layer_choices_then_anchors(space):
    first = space.next_decision([])
    assert first.group == "depth" and first.choices == tuple(range(1, 7))
    tokens = [2]  # three layers
    groups = []
    while (d := space.next_decision(tokens)) is not None:
        groups.append((d.group, d.kind, d.target, d.source))
        tokens.append(0)
    assert groups[:3] == [("kernel", "choice", 0, 0), ("filters", "choice", 0, 0), ("pool", "choice", 0, 0)]
    assert groups[6] == ("anchor", "anchor", 1, 0)
    assert groups[-2:] == [("anchor", "anchor", 2, 0), ("anchor", "anchor", 2, 1)]
    assert len(groups) == 3 + 4 + 5


def test_every_mutation_kind_changes_the_architecture_and_keeps_it_valid(space):
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(400):
        arch = space.sample(rng)
        for kind in space.applicable_mutations(arch):
            child = space.mutate(arch, rng, kind=kind)
            seen.add(kind)
            assert child != arch
            assert space.parse(space.to_str(child)) == child  # valid: inputs earlier, sorted, within limits
            if kind == "add_layer":
                assert len(child) == len(arch) + 1
            elif kind == "remove_layer":
                assert len(child) == len(arch) - 1
            elif kind in ("add_skip", "remove_skip"):
                links = sum(len(layer.inputs) for layer in child) - sum(len(layer.inputs) for layer in arch)
                assert links == (1 if kind == "add_skip" else -1)
    assert seen == set(MUTATIONS)


def test_impossible_or_unknown_mutation_is_refused(space):
    one = plain_chain([(3, 4, "none")])
    with pytest.raises(NASInputError, match="remove_layer"):
        space.mutate(one, np.random.default_rng(0), kind="remove_layer")
    with pytest.raises(NASInputError, match="unknown mutation"):
        space.mutate(one, np.random.default_rng(0), kind="grow")


def test_inserting_a_layer_into_a_plain_chain_keeps_it_a_chain(space):
    arch = plain_chain([(3, 4, "none"), (5, 8, "none"), (1, 4, "none")])
    rng = np.random.default_rng(0)
    for _ in range(20):
        child = space.mutate(arch, rng, kind="add_layer")
        assert [layer.inputs for layer in child] == [(), (0,), (1,), (2,)]


def test_removing_a_layer_bridges_its_inputs_to_its_readers(space):
    arch = plain_chain([(3, 4, "none"), (5, 8, "none"), (1, 4, "none")])
    rng = np.random.default_rng(0)
    children = {space.mutate(arch, rng, kind="remove_layer") for _ in range(30)}
    assert all([layer.inputs for layer in c] == [(), (0,)] for c in children)


def test_min_layers_zero_holds_the_conv_free_network():
    grown = ChainSpace(max_layers=3, filters=(4,), kernels=(1, 3), pools=("none", "stride_2"), min_layers=0)
    assert grown.to_str(()) == "linear" and grown.parse("linear") == ()
    assert grown.size() == 1 + 548  # the one network without a layer, and the 548 of min_layers=1
    assert grown.next_decision([]).choices == (0, 1, 2, 3)
    assert grown.from_tokens(grown.to_tokens(())) == () and grown.next_decision(grown.to_tokens(())) is None
    rng = np.random.default_rng(0)
    archs = [grown.sample(rng) for _ in range(200)]
    assert () in archs and all(grown.parse(grown.to_str(a)) == a for a in archs)
    assert grown.applicable_mutations(()) == ["add_layer"]  # nothing else to change in nothing
    assert grown.applicable_mutations(grown.parse("conv3x3-4<in")) == [
        "add_layer", "remove_layer", "alter_kernel", "alter_pool"]  # back to no layer: allowed here
    model = grown.to_model((), num_classes=10, in_channels=3)  # the image, globally averaged, into a linear layer
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert model.classifier.in_features == 3 and forward(model, (3, 8, 8)).shape == (2, 10)
    with pytest.raises(NASInputError, match="min_layers=0"):
        ChainSpace(max_layers=3).parse("linear")


def test_mutation_says_which_parent_layer_each_child_layer_copies(space):
    arch = space.parse("conv3x3-4<in | conv5x5-8<0 | conv1x1-4<0,1")
    rng = np.random.default_rng(0)
    for _ in range(30):
        child, kind, origins = space.mutation(arch, rng)
        assert len(origins) == len(child)
        kept = [j for j in origins if j is not None]
        assert kept == sorted(kept)  # layers keep their order
        if kind == "add_layer":
            assert origins.count(None) == 1 and kept == [0, 1, 2]
        elif kind == "remove_layer":
            assert None not in origins and len(kept) == 2
        else:
            assert origins == (0, 1, 2)
        for i, j in enumerate(origins):  # a copied layer is the parent's layer, up to its inputs' renumbering
            if j is not None and kind not in ("alter_kernel", "alter_filters", "alter_pool"):
                assert child[i][:3] == arch[j][:3]


def test_insert_convolution_is_3x3_with_stride_1_or_2_and_as_wide_as_its_input():
    # Real et al. (2017), Section 3: the inserted convolution has 3x3 filters, stride 1 or 2, as many channels
    # as its input -- so the layer after it reads as many channels as before and keeps its weights
    space = ChainSpace(max_layers=6, filters=(4, 8, 16))
    arch = plain_chain([(5, 8, "none"), (1, 16, "max_pool_2x2"), (5, 4, "none")])
    rng = np.random.default_rng(0)
    strides = set()
    for _ in range(60):
        child, _, origins = space.mutation(arch, rng, "add_layer")
        p = origins.index(None)
        new = child[p]
        assert new.kernel == 3 and new.pool in ("none", "stride_2")
        strides.add(new.pool)
        if p > 0:
            assert new.filters == arch[p - 1].filters and new.inputs == (p - 1,)
    assert strides == {"none", "stride_2"}


def test_crossover_mixes_layers_of_both_parents(space):
    rng = np.random.default_rng(2)
    a = plain_chain([(1, 4, "none")] * 4)
    b = plain_chain([(5, 8, "stride_2")] * 3)
    children = [space.crossover(a, b, rng) for _ in range(50)]
    assert {len(c) for c in children} == {3, 4}
    assert any({layer.kernel for layer in c} == {1, 5} for c in children)
    for c in children:
        assert space.parse(space.to_str(c)) == c


def test_encoding_has_fixed_length_and_tells_architectures_apart(space):
    rng = np.random.default_rng(3)
    archs = {space.sample(rng) for _ in range(200)}
    codes = {space.encode(a).tobytes() for a in archs}
    assert {space.encode(a).shape for a in archs} == {(6 * (1 + 3 + 2 + 3) + 15,)}
    assert len(codes) == len(archs)


def test_thirty_sampled_networks_run_on_digits_and_mnist_shapes(space):
    rng = np.random.default_rng(4)
    for _ in range(30):
        arch = space.sample(rng)
        for shape in [(1, 8, 8), (1, 28, 28)]:
            model = space.to_model(arch, num_classes=10, in_channels=shape[0])
            out = forward(model, shape)
            assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_shrinking_stops_at_one_pixel_and_unread_layers_feed_the_classifier(space):
    # six stride/pool layers on an 8x8 image: 8 -> 4 -> 2 -> 1 -> 1 ...
    deep = plain_chain([(3, 4, "max_pool_2x2"), (3, 4, "stride_2")] * 3)
    assert forward(space.to_model(deep, 10, 1), (1, 8, 8)).shape == (2, 10)
    # layer 0 reads the image, layer 1 too (no input): both end the network, concatenated -> 4 + 8 features
    wide = space.parse("conv3x3-4-max_pool_2x2<in | conv1x1-8<in")
    model = space.to_model(wide, 10, 1)
    assert consumers(wide) == [[], []] and model.classifier.in_features == 12
    assert forward(model, (1, 8, 8)).shape == (2, 10)


def test_maps_of_different_sizes_are_zero_padded_and_concatenated(space):
    arch = space.parse("conv3x3-4-stride_2<in | conv3x3-8<in | conv1x1-4<0,1")
    model = space.to_model(arch, 10, 1)
    assert model.layers[2].conv.in_channels == 12  # 4 channels at 4x4 padded to 8x8, + 8 channels
    assert forward(model, (1, 8, 8)).shape == (2, 10)


# ---------------------------------------------------------------------------------------------- genetic

def test_genetic_string_round_trip_and_form():
    gs = GeneticSpace(nodes=(3, 4, 5))
    assert gs.size() == 2 ** 19
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = gs.sample(rng)
        assert gs.parse(gs.to_str(arch)) == arch
        assert gs.from_tokens(gs.to_tokens(arch)) == arch
    assert gs.to_str(((1, 0, 1), (1, 0, 0, 1, 1, 1), (0,) * 10)) == "1-01|1-00-111|0-00-000-0000"


@pytest.mark.parametrize("text, says", [
    ("1-01", "stage"),
    ("1-01|1-00-11", "stage 1"),
    ("1-02|1-00-111", "0/1"),
    (7, "must be a str"),
])
def test_genetic_bad_strings_are_refused(text, says):
    with pytest.raises(NASInputError, match=says):
        GeneticSpace(nodes=(3, 4)).parse(text)


def test_genetic_bits_are_the_connections_in_paper_order():
    assert stage_edges((1, 0, 1), 3) == [(1, 2), (2, 3)]
    assert stage_edges((0, 1, 0, 0, 0, 1), 4) == [(1, 3), (3, 4)]


def test_every_genetic_bit_string_of_a_small_setting_runs_forward():
    gs = GeneticSpace(nodes=(2, 4))  # 1 + 6 = 7 bits: all 128 networks
    for bits in itertools.product((0, 1), repeat=7):
        arch = gs.from_tokens(list(bits))
        out = forward(gs.to_model(arch, 10, 1, C=4), (1, 8, 8))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_genetic_isolated_nodes_are_left_out():
    gs = GeneticSpace(nodes=(4,))
    stage = gs.to_model(((0, 0, 0, 0, 0, 1),), 10, 1, C=4).stages[0]  # only 3 -> 4
    assert stage.active == [3, 4] and stage.sinks == [4]
    empty = gs.to_model(((0,) * 6,), 10, 1, C=4).stages[0]
    assert empty.active == [] and len(empty.nodes) == 0


def test_genetic_mutation_and_crossover():
    gs = GeneticSpace(nodes=(3, 4), flip_prob=0.05, swap_prob=0.5)
    rng = np.random.default_rng(1)
    a, b = ((0, 0, 0), (0,) * 6), ((1, 1, 1), (1,) * 6)
    for _ in range(50):
        child = gs.mutate(a, rng)
        assert child != a and sum(gs.encode(child)) >= 1
    swaps = [gs.swap_stages(a, b, rng) for _ in range(100)]
    for x, y in swaps:  # stages are exchanged whole, never split
        assert {x[0], y[0]} == {a[0], b[0]} and {x[1], y[1]} == {a[1], b[1]}
    assert any(x == (b[0], a[1]) for x, _ in swaps)
    # the paper's mutation flips each bit with q_M and may flip none: 0.95^9 = 63 % of them here
    same = [gs.flip_bits(a, rng) == a for _ in range(2000)]
    assert np.mean(same) == pytest.approx(0.95 ** 9, abs=0.03)
