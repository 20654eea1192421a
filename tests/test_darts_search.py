"""DARTS and GDAS: the derivation rule, the mixed op, the unrolled hypergradient, a supernet that learns."""

import math

import numpy as np
import pytest
import torch

from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot.architect import Architect, first_order_grad, unrolled_grad
from tutorial_nas.oneshot.darts import (
    DARTS_EDGES,
    MixedOp,
    NB201SearchNetwork,
    SearchCell,
    SearchNetwork,
    darts_search,
    derive_genotype,
    derive_nb201,
    search_op,
)
from tutorial_nas.ops import DARTS_OPS, NB201_OPS, Zero
from tutorial_nas.spaces.cell import EDGES as NB201_EDGES
from tutorial_nas.spaces.cell import parse as parse_nb201
from tutorial_nas.spaces.darts import CONCAT, Genotype, parse_genotype

torch.set_num_threads(1)
OP = {name: k for k, name in enumerate(DARTS_OPS)}
MP = "max_pool_3x3"  # the lowest-index op after `none`: what every tie goes to


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def uniform_alpha():
    return torch.zeros(len(DARTS_EDGES), len(DARTS_OPS))


# --- derivation ----------------------------------------------------------------------------------------

def test_uniform_alphas_break_every_tie_towards_the_lowest_index():
    g = derive_genotype(uniform_alpha(), uniform_alpha())
    cell = ((MP, 0), (MP, 1)) * 4
    assert g == Genotype(cell, CONCAT, cell, CONCAT)


def test_derivation_ignores_none_and_keeps_the_two_strongest_inputs():
    a = uniform_alpha()
    # node 1 reads rows 2, 3, 4 (inputs 0, 1, 2). Input 0 is `none`-heavy: argmax over all ops would be
    # `none`, and its best real op (sep_conv_3x3) is weaker than the uniform row of input 1.
    a[2, OP["none"]], a[2, OP["sep_conv_3x3"]] = 5.0, 2.0
    a[4, OP["dil_conv_5x5"]] = 1.0
    # node 3 reads rows 9..13 (inputs 0..4): input 4 carries a strong sep_conv_5x5, input 2 a weaker skip.
    a[13, OP["sep_conv_5x5"]] = 3.0
    a[11, OP["skip_connect"]] = 1.0
    reduce = uniform_alpha()
    reduce[0, OP["avg_pool_3x3"]] = 1.0  # node 0, input 0
    reduce[1, OP["dil_conv_3x3"]] = 2.0  # node 0, input 1 (stronger: listed first)
    g = derive_genotype(a, reduce)
    assert g.normal == ((MP, 0), (MP, 1),
                        ("dil_conv_5x5", 2), (MP, 1),
                        (MP, 0), (MP, 1),
                        ("sep_conv_5x5", 4), ("skip_connect", 2))
    assert g.reduce[:2] == (("dil_conv_3x3", 1), ("avg_pool_3x3", 0))


def test_skip_limit_keeps_the_strongest_skips_and_derives_the_rest_again():
    a = uniform_alpha()
    a[0, OP["skip_connect"]] = 3.0  # node 0, input 0: strongest skip
    a[1, OP["skip_connect"]] = 2.0  # node 0, input 1
    a[2, OP["skip_connect"]] = 1.0  # node 1, input 0: weakest skip
    free = derive_genotype(a, uniform_alpha())
    assert [op for op, _ in free.normal].count("skip_connect") == 3
    one = derive_genotype(a, uniform_alpha(), skip_limit=1)
    # node 1 loses its skip (weight 0.28); its other ops (0.103 each) now lose to the uniform inputs 1 and 2
    # (0.125): the edge itself is dropped. Node 0 loses the weaker of its two skips.
    assert one.normal == (("skip_connect", 0), (MP, 1), (MP, 1), (MP, 2)) + ((MP, 0), (MP, 1)) * 2
    zero = derive_genotype(a, uniform_alpha(), skip_limit=0)
    assert all(op != "skip_connect" for op, _ in zero.normal + zero.reduce)


def test_skip_limit_caps_the_normal_cell_only_as_p_darts_does():
    """P-DARTS restricts the skip connections of the normal cell (its code: "restrict skipconnect (normal cell
    only)"); the reduction cell is derived as it stands."""
    reduce = uniform_alpha()
    reduce[:, OP["skip_connect"]] = 5.0
    g = derive_genotype(reduce.clone(), reduce, skip_limit=2)
    assert [op for op, _ in g.normal].count("skip_connect") == 2
    assert [op for op, _ in g.reduce].count("skip_connect") == 8


def test_nb201_derivation_is_the_argmax_over_all_ops_none_included():
    a = torch.zeros(6, 5)
    a[0, NB201_OPS.index("none")] = 2.0
    a[1, NB201_OPS.index("nor_conv_3x3")] = 1.0
    a[3, NB201_OPS.index("skip_connect")] = 1.0
    a[5, NB201_OPS.index("skip_connect")] = 2.0
    assert derive_nb201(a) == ("none", "nor_conv_3x3", "none", "skip_connect", "none", "skip_connect")
    # one skip allowed: the weaker one (edge 3) goes, and that edge's ops tie: the lowest index, `none`
    assert derive_nb201(a, skip_limit=1) == ("none", "nor_conv_3x3", "none", "none", "none", "skip_connect")


# --- the supernet --------------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_is_the_softmax_weighted_sum_of_its_ops(stride):
    torch.manual_seed(0)
    ops = [search_op(name, 4, stride).double() for name in DARTS_OPS]
    mixed = MixedOp(ops)
    x = torch.randn(3, 4, 6, 6, dtype=torch.double)
    w = torch.softmax(torch.randn(len(DARTS_OPS), dtype=torch.double), 0)
    expected = sum(w[k] * op(x) for k, op in enumerate(ops))
    assert torch.allclose(mixed(x, w), expected, atol=1e-12)
    assert torch.allclose(mixed(x, w, shared={}), expected, atol=1e-12)
    assert torch.allclose(mixed(x, w, index=5), w[5] * ops[5](x), atol=1e-12)
    assert isinstance(ops[0], Zero) and 0 not in mixed.active  # `none` is never computed


def test_sharing_parameter_free_ops_between_edges_changes_nothing():
    torch.manual_seed(0)
    cell = SearchCell(6, 6, 4, reduction=True, reduction_prev=False).double()
    s0, s1 = (torch.randn(2, 6, 8, 8, dtype=torch.double) for _ in range(2))
    w = torch.softmax(torch.randn(14, 8, dtype=torch.double), -1)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    for node in range(4):  # the plain loop of the DARTS code, every edge computed on its own
        states.append(sum(cell.edges[e](states[i], w[e])
                          for e, (i, n) in enumerate(DARTS_EDGES) if n == node))
    assert torch.allclose(cell(s0, s1, w), torch.cat(states[2:], 1), atol=1e-12)


def _unrolled_val_loss(model, values, train, valid, xi, opt):
    """L_val(w', alpha) with w' = w - xi (mu buffer + grad_w L_train(w, alpha) + lambda w) (DARTS' code),
    evaluated directly, the weights restored after."""
    with torch.no_grad():
        for a, v in zip(model.arch_parameters(), values):
            a.copy_(v)
    weights = model.weight_parameters()
    grads = torch.autograd.grad(model.loss(*train), weights, allow_unused=True)
    backup = [w.detach().clone() for w in weights]
    mu, lam = opt.param_groups[0]["momentum"], opt.param_groups[0]["weight_decay"]
    with torch.no_grad():
        for w, g in zip(weights, grads):
            g = torch.zeros_like(w) if g is None else g
            w.sub_(xi * (mu * opt.state[w]["momentum_buffer"] + g + lam * w))
        loss = model.loss(*valid).item()
        for w, b in zip(weights, backup):
            w.copy_(b)
    return loss


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_unrolled_hypergradient_matches_finite_differences_of_the_unrolled_objective(space):
    torch.manual_seed(0)
    if space == "nb201":
        model = NB201SearchNetwork(10, 1, C=3, N=1).double()
    else:
        model = SearchNetwork(10, 1, C=2, layers=2).double()
    with torch.no_grad():
        for a in model.arch_parameters():
            a.normal_(0, 0.5)
    train = (torch.randn(16, 1, 8, 8, dtype=torch.double), torch.randint(0, 10, (16,)))
    valid = (torch.randn(16, 1, 8, 8, dtype=torch.double), torch.randint(0, 10, (16,)))
    xi = 0.5
    # the weights' SGD with a momentum buffer and weight decay: the virtual step takes both (DARTS' code)
    opt = torch.optim.SGD(model.weight_parameters(), lr=xi, momentum=0.9, weight_decay=0.05)
    for w in model.weight_parameters():
        opt.state[w]["momentum_buffer"] = 0.1 * torch.randn_like(w)
    alpha0 = [a.detach().clone() for a in model.arch_parameters()]
    # DARTS' R = 0.01 / ||v|| suits float32; in double a smaller R makes the finite-difference Hessian
    # exact up to rounding (a step of 0.01 crosses ReLU kinks of such a tiny random network)
    ours = unrolled_grad(model, train, valid, xi, w_optimizer=opt, r=1e-6)
    first = first_order_grad(model, valid)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        d = [torch.randn(a.shape, generator=gen, dtype=torch.double) for a in alpha0]
        eps = 1e-6
        plus = _unrolled_val_loss(model, [a + eps * di for a, di in zip(alpha0, d)], train, valid, xi, opt)
        minus = _unrolled_val_loss(model, [a - eps * di for a, di in zip(alpha0, d)], train, valid, xi, opt)
        numeric = (plus - minus) / (2 * eps)
        analytic = sum((g * di).sum().item() for g, di in zip(ours, d))
        first_order = sum((g * di).sum().item() for g, di in zip(first, d))
        assert analytic == pytest.approx(numeric, rel=1e-2, abs=1e-6)
        # the second-order term matters here: the first-order gradient is measurably off
        assert abs(first_order - numeric) > 10 * abs(analytic - numeric)
    _unrolled_val_loss(model, alpha0, train, valid, xi, opt)


def _fit_one_batch(model, batch, method, steps, lr=0.05):
    model.mode = "gdas" if method == "gdas" else "darts"
    model.tau = 1.0
    opt = torch.optim.SGD(model.weight_parameters(), lr=lr, momentum=0.9)
    architect = Architect(model, order=1, lr=3e-3)
    losses = []
    for _ in range(steps):
        architect.step(batch, batch, xi=0.05)
        opt.zero_grad()
        loss = model.loss(*batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# GDAS trains one sampled path per step, so it needs more steps (and a larger lr) to show the same trend.
@pytest.mark.parametrize("space, method, C, lr, steps, drop", [
    ("darts", "darts", 4, 0.05, 12, 0.7), ("darts", "gdas", 4, 0.05, 30, 0.85),
    ("nb201", "darts", 4, 0.05, 12, 0.7), ("nb201", "gdas", 8, 0.2, 30, 0.9)])
def test_supernet_training_loss_falls_on_digits(digits, space, method, C, lr, steps, drop):
    torch.manual_seed(0)
    model = SearchNetwork(10, 1, C=C, layers=2) if space == "darts" else NB201SearchNetwork(10, 1, C=C, N=1)
    batch = (digits.train_x[:64], digits.train_y[:64])
    alpha0 = [a.detach().clone() for a in model.arch_parameters()]
    losses = _fit_one_batch(model, batch, method, steps, lr)
    assert np.mean(losses[-6:]) < drop * np.mean(losses[:4])
    assert any(not torch.equal(a, b) for a, b in zip(alpha0, model.arch_parameters()))  # alphas moved


def test_gdas_computes_only_the_sampled_op(monkeypatch):
    torch.manual_seed(0)
    model = NB201SearchNetwork(10, 1, C=4, N=1)
    model.mode, model.tau = "gdas", 1.0
    calls = []
    for cell_edges in (c.edges for c in model.cells if hasattr(c, "edges")):
        for mixed in cell_edges:
            for k, op in enumerate(mixed.ops):
                op.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    model(torch.randn(2, 1, 8, 8))
    assert len(calls) <= 6 * 3  # at most one op per edge (6 edges x 3 cells), fewer when shared


def test_gdas_gradient_reaches_the_unsampled_weights_on_nb201_as_in_autodl_and_not_on_the_darts_cell():
    # AutoDL's NAS-Bench-201 forward_gdas adds each unsampled weight (0 in value) to the edge's output as a
    # scalar: its gradient is the summed gradient of that output. Its DARTS-space MixedOp does not.
    torch.manual_seed(0)
    cell = NB201SearchNetwork(10, 1, C=3, N=1).double().cells[0]
    x = torch.randn(2, 3, 6, 6, dtype=torch.double)
    hard = torch.zeros(6, 5, dtype=torch.double)
    index = [1, 2, 3, 4, 1, 3]
    hard[range(6), index] = 1.0
    hard.requires_grad_(True)
    out = cell(x, hard, index)
    probe = torch.randn_like(out)
    (out * probe).sum().backward()
    assert torch.allclose(out, cell(x, hard.detach(), index))  # the forward is the sampled ops' alone
    for e, (_, node) in enumerate(NB201_EDGES):
        others = [k for k in range(5) if k != index[e]]
        if node == 3:  # an edge into the output: d out / d w_k = 1 everywhere, so the gradient is probe.sum()
            assert torch.allclose(hard.grad[e, others], probe.sum().expand(4))
        assert (hard.grad[e, others] != 0).all()
    torch.manual_seed(0)
    darts_cell = SearchCell(6, 6, 4, reduction=False, reduction_prev=False).double()
    s0, s1 = (torch.randn(2, 6, 6, 6, dtype=torch.double) for _ in range(2))
    w = torch.zeros(14, 8, dtype=torch.double)
    picks = [3] * 14
    w[range(14), picks] = 1.0
    w.requires_grad_(True)
    darts_cell(s0, s1, w, picks).sum().backward()
    assert (w.grad[:, [k for k in range(8) if k != 3]] == 0).all()


# --- the search loop -----------------------------------------------------------------------------------

def test_darts_search_returns_one_history_row_per_epoch(digits):
    small = digits.subset(0.25)
    h = darts_search("nb201", small, "darts2", epochs=2, C=4, N=1, batch_size=32, progress=False)
    assert list(h["epoch"]) == [1, 2]
    for col in ("step", "arch", "valid_acc", "test_acc", "cost_s", "spent_s", "n_skip", "alphas",
                "best_valid_acc", "best_test_acc", "bench_valid_acc", "train_loss"):
        assert col in h.columns
    cell = parse_nb201(h["arch"].iloc[-1])
    assert h["n_skip"].iloc[-1] == cell.count("skip_connect")
    alphas = np.asarray(h["alphas"].iloc[-1]["cell"])
    assert alphas.shape == (6, 5) and np.allclose(alphas.sum(1), 1)
    assert tuple(cell) == tuple(NB201_OPS[k] for k in alphas.argmax(1))
    assert 0 <= h["valid_acc"].iloc[-1] <= 100 and (h["cost_s"] > 0).all()
    assert h.attrs["strategy"] == "darts2" and h.attrs["ops"] == list(NB201_OPS)
    assert h.attrs["incumbent"] == "last" and list(h["best_valid_acc"]) == list(h["valid_acc"])


def test_darts_space_search_with_gdas_derives_a_genotype_and_stops_early(digits):
    small = digits.subset(0.1)
    h = darts_search("darts", small, "gdas", epochs=3, C=4, layers=1, batch_size=32, progress=False,
                     skip_limit=0, early_stop=lambda row: row["epoch"] >= 2)
    assert len(h) == 2 and h.attrs["stopped_early"] == 2
    g = parse_genotype(h["arch"].iloc[-1])
    assert all(op != "skip_connect" for op, _ in g.normal)  # P-DARTS' cap: the normal cell's
    assert not math.isnan(h["tau"].iloc[0]) and h["tau"].iloc[0] == pytest.approx(10.0)


def test_darts_search_reads_the_benchmark_for_the_derived_cell(digits):
    from tutorial_nas.bench import load_benchmark

    bench = load_benchmark()
    h = darts_search("nb201", digits.subset(0.1), "darts", epochs=1, C=4, N=1, batch_size=32, progress=False,
                     bench=bench)
    truth = bench.query(h["arch"].iloc[0])
    assert h["bench_valid_acc"].iloc[0] == truth["valid_acc"] and h["test_acc"].iloc[0] == truth["test_acc"]
    assert h["params"].iloc[0] == truth["params"]  # valid_acc stays the supernet's: what the search sees


@pytest.mark.parametrize("kwargs, words", [
    (dict(space="chain"), "one-shot search space"),
    (dict(method="enas"), "one-shot method"),
    (dict(epochs=0), "epochs"),
    (dict(skip_limit=-1), "skip_limit"),
    (dict(early_stop="soon"), "early_stop"),
    (dict(space="darts", bench=True), "benchmark"),
])
def test_bad_search_options_raise_a_clear_error(digits, kwargs, words):
    with pytest.raises(NASInputError, match=words):
        darts_search(data=digits, progress=False, **kwargs)
