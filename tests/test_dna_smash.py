"""DNA (Li et al. 2020): each student block mimics the frozen teacher's block from the teacher's input, and a cell
is rated by its summed block ratings (the reference code's relative L1 distance). SMASH (Brock et al. 2018): a
hypernetwork generates every cell weight from the cell's encoding, and only it (with the fixed skeleton) learns."""

import copy
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tutorial_nas.analysis import compare
from tutorial_nas.analysis.shortcuts import build_shortcuts
from tutorial_nas.bench import load_benchmark
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot import dna
from tutorial_nas.oneshot.dna import (
    RESNET_CELL,
    DNAShortcut,
    block_loss,
    block_measures,
    block_rating,
    distill,
    dna_losses,
    dna_ratings,
    run_block,
    stage_blocks,
    teacher_features,
    train_dna,
)
from tutorial_nas.oneshot.smash import HyperCell, SMASHNet, SMASHShortcut, train_smash
from tutorial_nas.oneshot.supernet import Supernet
from tutorial_nas.spaces.cell import NB201Network, parse, to_str

torch.set_num_threads(1)
CONV = parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
OTHER = parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
EMPTY = ("none",) * 6


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").subset(0.3)


# -- DNA -----------------------------------------------------------------------------------------------------


def test_student_block_mimics_the_teachers_block_from_the_teachers_input(digits):
    torch.manual_seed(0)
    teacher = NB201Network(RESNET_CELL, 10, 1, C=4, N=2).eval()
    student = Supernet(10, 1, C=4, N=2).eval()
    x = digits.train_x[:16]
    feats = teacher_features(teacher, x)
    # the teacher's blocks are its stages: stem + 2 cells, then reduction + 2 cells twice, ending where the head begins
    assert [len(b) for b in stage_blocks(teacher)] == [3, 3, 3]
    assert torch.allclose(teacher.head(feats[3]), teacher(x))
    s_layers = list(student.layers)
    by_hand = [student.stem(x), feats[1], feats[2]]  # block 0 reads the image, the others the teacher's features
    by_hand[0] = s_layers[1](s_layers[0](by_hand[0], CONV), CONV)
    by_hand[1] = s_layers[4](s_layers[3](s_layers[2](by_hand[1]), CONV), CONV)
    by_hand[2] = s_layers[7](s_layers[6](s_layers[5](by_hand[2]), CONV), CONV)
    for b in range(3):
        assert block_loss(student, b, feats, CONV).item() == pytest.approx(
            F.mse_loss(by_hand[b], feats[b + 1]).item(), rel=1e-5)
    # not the student's own chain: block 1 fed the student's block 0 output gives another loss
    own = F.mse_loss(s_layers[4](s_layers[3](s_layers[2](by_hand[0]), CONV), CONV), feats[2]).item()
    assert block_loss(student, 1, feats, CONV).item() != pytest.approx(own, rel=1e-3)


def test_distillation_leaves_the_teacher_frozen_and_lowers_the_block_losses(digits):
    torch.manual_seed(0)
    teacher = NB201Network(RESNET_CELL, 10, 1, C=4, N=1).train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = Supernet(10, 1, C=4, N=1)
    start = dna_losses(student, copy.deepcopy(teacher), CONV, digits, n_batches=1)
    assert teacher.training  # distill itself must freeze it
    log = distill(student, teacher, digits, epochs=2, batch_size=64)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN statistics too
    end = dna_losses(student, teacher, CONV, digits, n_batches=1)
    assert len(log["loss"]) == 2 and len(log["loss"][0]) == 3
    assert end.sum() < start.sum()


def test_each_block_is_clipped_and_decayed_on_its_own(digits, monkeypatch):
    # the reference trains the stages one after another, each alone: one block's loss, however large, must not
    # change another
    # block's steps (a clipping of the norm of all blocks together would), and Adam's weight decay (1e-4, the
    # reference's) applies to the weights, not to biases and batch-norm parameters
    def run(scale0):
        torch.manual_seed(0)
        teacher = NB201Network(RESNET_CELL, 10, 1, C=4, N=1)
        student = Supernet(10, 1, C=4, N=1)
        plain = dna.block_loss
        monkeypatch.setattr(dna, "block_loss", lambda s, b, f, c: plain(s, b, f, c) * (scale0 if b == 0 else 1.0))
        distill(student, teacher, digits, epochs=0.05, batch_size=64)
        monkeypatch.setattr(dna, "block_loss", plain)
        return [[p.detach().clone() for m in block for p in m.parameters()] for block in stage_blocks(student)]

    base, loud = run(1.0), run(1e4)
    assert not all(torch.equal(a, b) for a, b in zip(base[0], loud[0]))  # block 0's own steps change
    for b in (1, 2):
        assert all(torch.equal(x, y) for x, y in zip(base[b], loud[b]))
    groups = dna.weight_decay_groups(Supernet(10, 1, C=4, N=1))
    assert groups[0]["weight_decay"] == 1e-4 and all(p.dim() > 1 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0 and all(p.dim() == 1 for p in groups[1]["params"])


def test_block_rating_is_the_mean_absolute_error_over_the_targets_spread(digits):
    torch.manual_seed(0)
    teacher = NB201Network(RESNET_CELL, 10, 1, C=4, N=1).eval()
    student = Supernet(10, 1, C=4, N=1).eval()
    feats = teacher_features(teacher, digits.train_x[:32])
    with torch.no_grad():
        for b in range(3):
            diff = run_block(stage_blocks(student)[b], feats[b], CONV) - feats[b + 1]
            assert block_rating(student, b, feats, CONV).item() == pytest.approx(
                (diff.abs().mean() / feats[b + 1].std()).item(), rel=1e-5)
            assert block_loss(student, b, feats, CONV).item() == pytest.approx((diff ** 2).mean().item(), rel=1e-5)


def test_dna_ranks_cells_by_their_summed_block_ratings(digits):
    shortcut = DNAShortcut(digits, epochs=1, C=4, N=1, batch_size=64, teacher_epochs=1)
    scores = shortcut.score([CONV, OTHER, EMPTY])
    for i, (cell, score) in enumerate(zip([CONV, OTHER, EMPTY], scores)):
        # statistics re-estimated on batches of the search's size (64), as the other supernets' rows are scored
        ratings = dna_ratings(shortcut.student, shortcut.teacher, cell, digits, batch_size=64)
        losses = dna_losses(shortcut.student, shortcut.teacher, cell, digits, batch_size=64)
        assert len(ratings) == 3 and score == pytest.approx(-ratings.sum(), rel=1e-6)
        assert score != pytest.approx(-losses.sum(), rel=1e-3)  # not the summed training losses
        np.testing.assert_allclose(shortcut.losses[i], losses, rtol=1e-6)
    assert len(set(np.round(scores, 6))) == 3
    assert shortcut.cost_s >= shortcut.log["seconds"] + shortcut.log["teacher_seconds"]
    with pytest.raises(NASInputError, match="measure"):
        block_measures(shortcut.student, shortcut.teacher, CONV, digits, measures=("kl",))


def test_dna_refuses_a_teacher_that_is_not_a_cell(digits):
    assert to_str(RESNET_CELL) == compare.RESNET_CELL  # the default teacher is the benchmark's ResNet cell
    with pytest.raises(NASInputError, match="teacher_cell"):
        train_dna(digits, epochs=0.1, C=4, teacher_cell=("nor_conv_3x3",) * 3)


# -- SMASH ---------------------------------------------------------------------------------------------------


def test_smash_weights_are_generated_from_the_whole_cell():
    torch.manual_seed(0)
    net = SMASHNet(10, 1, C=4, N=1)
    a, b = net.generate(CONV), net.generate(OTHER)
    shared = "0_01_nor_conv_3x3"  # both cells put a 3x3 convolution on edge 0->1 of the first cell
    assert a[shared].shape == (4, 4, 3, 3) and a[shared].grad_fn is not None
    assert not torch.allclose(a[shared], b[shared])
    assert torch.equal(a[shared], net.generate(CONV)[shared])  # the same cell, the same weights


def test_smash_cells_hold_no_weights_and_gradients_reach_the_hypernetwork(digits):
    torch.manual_seed(0)
    net = SMASHNet(10, 1, C=4, N=1)
    cells = [m for m in net.modules() if isinstance(m, HyperCell)]
    assert len(cells) == 3 and sum(p.numel() for c in cells for p in c.parameters()) == 0
    F.cross_entropy(net(digits.train_x[:16], CONV), digits.train_y[:16]).backward()
    assert net.hyper.mlp[0].weight.grad.abs().sum() > 0  # through the generated weights into the MLP
    assert net.hyper.bases["0_01_nor_conv_3x3"].grad.abs().sum() > 0
    assert net.hyper.bases["0_02_nor_conv_3x3"].grad is None  # edge 0->2 of CONV is a 1x1 convolution
    own = {id(p) for p in net.hyper.parameters()} | {id(p) for m in (net.stem, net.head) for p in m.parameters()}
    own |= {id(p) for m in net.layers if not isinstance(m, HyperCell) for p in m.parameters()}
    assert {id(p) for p in net.parameters()} == own


def test_smash_scores_cells_by_validation_accuracy_with_generated_weights(digits):
    shortcut = SMASHShortcut(digits, epochs=2, C=4, N=1, batch_size=64)
    scores = shortcut.score([CONV, EMPTY])
    assert scores[0] == pytest.approx(shortcut.net.score(CONV, digits, batch_size=64))
    assert scores[0] > scores[1] and 0 <= scores[1] <= 100
    assert shortcut.log["loss"][-1] < shortcut.log["loss"][0]
    with pytest.raises(NASInputError, match="rank"):
        train_smash(digits, epochs=0.1, rank=0)
    assert np.isfinite(scores).all()


def test_dna_and_smash_are_rows_of_the_shortcut_ranking(digits):
    bench = load_benchmark()
    cells = [parse(a) for a in bench.frame()["arch"].iloc[:5]]
    sizes = dict(C=4, N=1, epochs=0.5, batch_size=64, seed=1)
    shortcuts = {s.name: s for s in build_shortcuts(cells, bench, digits, sizes)}
    for name, kind in (("DNA distillation", DNAShortcut), ("SMASH hypernetwork", SMASHShortcut)):
        assert isinstance(shortcuts[name], kind)
        assert {k: shortcuts[name].options[k] for k in sizes} == sizes


def test_distillation_steps_over_paths_that_reach_no_output(digits, monkeypatch):
    """A cell whose edges carry nothing to its output gives a block output without a gradient; a step where
    every block drew one (about 2 in a million) is skipped, not a crash."""
    from tutorial_nas.oneshot import dna

    monkeypatch.setattr(dna.NB201Space, "sample", lambda self, rng: EMPTY)
    torch.manual_seed(0)
    student = Supernet(10, 1, C=4, N=1)
    before = copy.deepcopy(student.state_dict())
    log = distill(student, NB201Network(RESNET_CELL, 10, 1, C=4, N=1), digits, epochs=0.05, batch_size=64)
    assert len(log["loss"]) == 1
    after = student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "num_batches" not in k)


def test_each_block_trains_at_its_own_rate_the_references_by_default(digits):
    """The reference's train_pipeline.yaml gives its first and last stages Adam at 0.002 and the stages between at
    0.005; the three blocks take 0.002, 0.005 and 0.002. Adam's first step moves a parameter by its rate, so after one
    step each block's largest change is its own rate."""
    assert dna.DNA_LR == (0.002, 0.005, 0.002)
    assert inspect.signature(distill).parameters["lr"].default == dna.DNA_LR
    assert inspect.signature(dna.train_dna).parameters["lr"].default == dna.DNA_LR
    torch.manual_seed(0)
    teacher = NB201Network(RESNET_CELL, 10, 1, C=4, N=1)
    student = Supernet(10, 1, C=4, N=1)
    before = [[p.detach().clone() for m in block for p in m.parameters()] for block in stage_blocks(student)]
    distill(student, teacher, digits, epochs=1e-6, batch_size=64, lr=(1e-3, 1e-2, 1e-3))  # one step
    after = [[p.detach() for m in block for p in m.parameters()] for block in stage_blocks(student)]
    moved = [max(float((a - b).abs().max()) for a, b in zip(x, y)) for x, y in zip(after, before)]
    assert moved == pytest.approx([1e-3, 1e-2, 1e-3], rel=0.01)
    rates = [g["lr"] for g in dna.block_groups(student)]
    assert rates == [0.002, 0.002, 0.005, 0.005, 0.002, 0.002]
    for bad in ((0.002, 0.005), (0.002, -1, 0.002), "fast", 0):
        with pytest.raises(NASInputError):
            dna.block_lrs(bad)
