"""Each traced step's numbers are consistent with the method it traces."""

import math

import numpy as np
import pytest
import torch

from tutorial_nas.bench import load_benchmark
from tutorial_nas.course.trace import (
    trace_aging_step,
    trace_blockqnn_backup,
    trace_darts_step,
    trace_derivation,
    trace_dpp_step,
    trace_gumbel_sample,
    trace_hierarchical_mutation,
    trace_maskconnect_step,
    trace_mixed_op,
    trace_net2wider,
    trace_oneshot_variants,
    trace_predictor_ensemble,
    trace_q_backup,
    trace_reinforce_step,
)
from tutorial_nas.oneshot.architect import virtual_weights
from tutorial_nas.oneshot.darts import NB201SearchNetwork, derive_genotype
from tutorial_nas.ops import DARTS_OPS
from tutorial_nas.spaces.cell import parse, to_str


@pytest.fixture(scope="module")
def bench():
    return load_benchmark()


@pytest.mark.parametrize("seed", [0, 3])
def test_reinforce_probability_follows_the_advantage(seed, bench):
    t = trace_reinforce_step(seed=seed, bench=bench)
    curve = bench.query(t["arch"])["valid_curve"]
    assert t["reward"] == pytest.approx((max(curve[-5:]) / 100) ** 3)  # Zoph & Le's reward
    assert t["advantage"] == pytest.approx(t["reward"] - t["baseline"]) and t["advantage"] != 0
    assert t["prob_before"] == pytest.approx(math.exp(t["log_prob"]))
    assert np.sign(t["prob_after"] - t["prob_before"]) == np.sign(t["advantage"])
    assert t["baseline_after"] == pytest.approx(0.9 * t["baseline"] + 0.1 * t["reward"])


def test_darts_first_order_step_lowers_the_validation_loss():
    t = trace_darts_step(order=1, seed=0)
    assert t["valid_loss_after"] < t["valid_loss_before"]
    step, grad = (t["alphas_after"] - t["alphas_before"]).to_numpy(), t["grad"].to_numpy()
    big = np.abs(grad) > 1e-3  # Adam's first step moves every alpha against its gradient
    assert big.sum() > 10 and (np.sign(step[big]) == -np.sign(grad[big])).all()


def test_darts_second_order_terms():
    seed, xi = 1, 0.025
    t = trace_darts_step(order=2, seed=seed, xi=xi)
    np.testing.assert_allclose(t["direct"] + t["hessian_term"], t["grad"], atol=1e-6)
    # the same supernet and batches, and the exact mixed second derivative by double backward
    torch.manual_seed(seed)
    model = NB201SearchNetwork(num_classes=10, in_channels=1, C=4, N=1)
    gen = torch.Generator().manual_seed(seed)
    train, valid = ((torch.randn(8, 1, 8, 8, generator=gen), torch.randint(10, (8,), generator=gen)) for _ in range(2))
    weights = model.weight_parameters()
    backup = [w.detach().clone() for w in weights]
    stepped = virtual_weights(model, train, xi)
    with torch.no_grad():
        for w, s in zip(weights, stepped):
            w.copy_(s)
    loss = model.loss(*valid)
    v = torch.autograd.grad(loss, weights, allow_unused=True)
    direct = torch.autograd.grad(model.loss(*valid), [model.alpha_cell])[0]
    v = [torch.zeros_like(w) if vi is None else vi for w, vi in zip(weights, v)]
    eps = 0.01 / torch.cat([vi.flatten() for vi in v]).norm()  # Eq. 8: R = 0.01 / ||v||

    def grad_alpha_train(sign):  # grad_alpha L_train(w + sign * eps * v, alpha)
        with torch.no_grad():
            for w, b, vi in zip(weights, backup, v):
                w.copy_(b + sign * eps * vi)
        return torch.autograd.grad(model.loss(*train), [model.alpha_cell])[0]

    expected = -xi * (grad_alpha_train(1.0) - grad_alpha_train(-1.0)) / (2 * eps)
    np.testing.assert_allclose(t["direct"].to_numpy(), direct.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(t["hessian_term"].to_numpy(), expected.double().numpy(), atol=1e-5)
    assert np.abs(t["hessian_term"].to_numpy()).max() > 1e-3  # a term that matters, not zeros
    # the direct term is taken at the virtual step w', not at w: it differs from the first-order gradient
    assert np.abs(t["direct"].to_numpy() - trace_darts_step(order=1, seed=seed)["grad"].to_numpy()).max() > 1e-4


def test_q_backup_rows_follow_the_update_rule():
    frame = trace_q_backup(seed=2)
    assert (frame["alpha"] == 0.01).all() and (frame["gamma"] == 1.0).all()  # Baker et al.'s settings
    assert frame["action"].iloc[0] == "terminate" and frame["reward"].iloc[0] == 0.8
    assert (frame["reward"].iloc[1:] == 0).all()
    expected = (1 - frame["alpha"]) * frame["q_before"] + frame["alpha"] * (frame["reward"]
                                                                            + frame["gamma"] * frame["max_next_q"])
    np.testing.assert_allclose(frame["q_after"], expected, rtol=1e-12)
    # backwards: each earlier transition's max next Q already sees the later one's new value
    for later, earlier in zip(frame.itertuples(), frame.iloc[1:].itertuples()):
        assert earlier.action == later.state and earlier.max_next_q >= later.q_after


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aging_step_the_oldest_dies(seed, bench):
    t = trace_aging_step(seed=seed, bench=bench, population=5, sample=3)
    population = t["population"]
    assert len(t["tournament"]) == 3 and population["drawn"].sum() == 3
    assert [d["born"] for d in t["died"]] == [population["born"].min()]  # the oldest, however good
    drawn = population[population["drawn"] > 0]
    assert t["parent"]["fitness"] == drawn["fitness"].max() and t["parent"]["born"] in t["tournament"]
    parent, child = parse(t["parent"]["arch"]), parse(t["child"]["arch"])
    assert sum(a != b for a, b in zip(parent, child)) == 1 and t["child"]["born"] == 5  # one edge mutated


@pytest.mark.parametrize("form", ["nb201", "darts"])
@pytest.mark.parametrize("seed,tau", [(0, 1.0), (1, 10.0), (2, 0.1)])
def test_gumbel_sample_is_hard_forward_soft_backward(seed, tau, form):
    t = trace_gumbel_sample(seed=seed, tau=tau, edges=3, form=form)
    table = t["table"]
    np.testing.assert_allclose(table["g"], -np.log(-np.log(table["u"])), rtol=1e-9)
    assert ((table["u"] > 0) & (table["u"] < 1)).all()
    for edge, rows in table.groupby(level="edge"):
        assert t["index"][edge] == int(np.argmax(rows["alpha + g"].to_numpy()))  # Gumbel-max
        one_hot = np.eye(len(rows))[t["index"][edge]]
        np.testing.assert_allclose(rows["hard"], one_hot, atol=1e-12)  # the forward is one-hot
        z = rows["alpha + g"].to_numpy() / tau
        np.testing.assert_allclose(rows["soft"], np.exp(z - z.max()) / np.exp(z - z.max()).sum(), rtol=1e-9)
        s, up = rows["soft"].to_numpy(), rows["dL/dh"].to_numpy()
        rest = up[np.arange(len(up)) != t["index"][edge]]
        assert up[t["index"][edge]] != 0
        # AutoDL's NAS-Bench-201 form: every unsampled weight gets the edge output's summed gradient; DARTS-cell: 0
        assert (rest == rest[0]).all() and (rest[0] != 0 if form == "nb201" else rest[0] == 0)
        expected = s * (up - (s * up).sum()) / tau  # the softmax Jacobian times dL/dh
        np.testing.assert_allclose(rows["grad alpha"], expected, atol=1e-12)
    # straight through: the gradient of the hard sample is the soft sample's
    np.testing.assert_allclose(table["grad alpha"].to_numpy(), t["grad_soft"].flatten(), atol=1e-12)
    assert (np.abs(t["grad_soft"]) > 0).all()  # every alpha learns, though one op per edge was computed


def test_mixed_op_is_the_weighted_sum_of_its_operations():
    t = trace_mixed_op(seed=0, C=4)
    table = t["table"]
    assert t["x"].shape == (1, 4, 3, 3)
    np.testing.assert_allclose(table["softmax weight"].sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(table["softmax weight"], np.exp(table["alpha"]) / np.exp(table["alpha"]).sum(),
                               rtol=1e-5)
    assert t["max_diff"] < 1e-6 and t["mixed"].abs().max() > 0.1
    assert table.loc["none", "output max |.|"] == 0  # none adds nothing
    centre = (table["softmax weight"] * table["output[0, 0, 1, 1]"]).sum()
    assert centre == pytest.approx(t["mixed"][0, 0, 1, 1].item(), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("node", [0, 1, 3])
def test_derivation_keeps_the_two_strongest_inputs_without_none(seed, node):
    t = trace_derivation(node=node, seed=seed)
    darts = t["darts"]
    assert len(darts) == node + 2 and darts["kept"].sum() == 2
    strength = darts[[op for op in DARTS_OPS if op != "none"]].max(axis=1)
    assert set(strength.nlargest(2).index) == set(darts.index[darts["kept"]])
    assert sorted(i for _, i in t["kept"]) == sorted(darts.index[darts["kept"]])
    for op, i in t["kept"]:
        assert op == darts.loc[i, "strongest op (not none)"] != "none"
    # the same node read off the package's public derive_genotype
    logits = np.log(np.full((14, 8), 1 / 8))
    start = sum(n + 2 for n in range(node))
    logits[start:start + node + 2] = np.log(darts[list(DARTS_OPS)].to_numpy())
    genotype = derive_genotype(logits, logits)
    assert list(genotype.normal[2 * node:2 * node + 2]) == t["kept"]
    nb201 = t["nb201"]
    assert (nb201["kept op"] == nb201.drop(columns="kept op").idxmax(axis=1)).all()  # none included
    assert parse(t["nb201_cell"]) == tuple(nb201["kept op"])


def test_derivation_ignores_none_in_the_darts_space_and_not_in_nb201():
    w = np.full((3, 8), 0.02)
    w[0, 0], w[0, 4] = 0.8, 0.06  # input 0: none strongest, its best real op weak
    w[1, 5], w[2, 6] = 0.5, 0.4
    w /= w.sum(axis=1, keepdims=True)
    t = trace_derivation(node_weights=w, node=1)
    assert t["darts"]["kept"].tolist() == [False, True, True]
    assert t["darts"].loc[0, "strongest op (none included)"] == "none"
    nb = np.full((6, 5), 0.1)
    nb[:, 0] = 0.6
    t = trace_derivation(nb201_weights=nb / nb.sum(axis=1, keepdims=True))
    assert set(t["nb201"]["kept op"]) == {"none"}


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_net2wider_copies_divides_and_keeps_the_function(seed):
    t = trace_net2wider(seed=seed, spec="c3k3-c2k3", new_width=6)
    g, counts = np.array(t["g"]), np.array(t["counts"])
    assert (g[:3] == np.arange(3)).all() and len(g) == 6 and g.max() < 3
    assert (counts == np.bincount(g)[g]).all()
    assert max(t["filters"]) == 0  # unit j's filter is the old unit g(j)'s
    reader = t["reader"]
    np.testing.assert_allclose(reader["W / count"], reader["W[g(j), h]"] / reader["count"], rtol=1e-6)
    np.testing.assert_allclose(reader["U[j, h]"], reader["W / count"] + reader["noise"], atol=1e-6)
    copied = reader[reader["count"] > 1]
    assert (copied["noise"].abs() > 1e-4).all()  # the copies are read differently
    assert (reader.loc[reader["count"] == 1, "noise"].abs() < 1e-6).all()
    for _, rows in copied.groupby("g(j)"):
        assert abs(rows["noise"].sum()) < 1e-6
    assert t["noise_sum"] < 1e-5 and t["output_diff"] < 1e-5
    plain = trace_net2wider(seed=seed, spec="c3k3-c2k3", new_width=6, noise=0.0)
    assert (plain["reader"]["noise"].abs() < 1e-7).all() and plain["output_diff"] < 1e-5


@pytest.mark.parametrize("seed", [0, 3])
def test_oneshot_variants_trace_follows_each_rule(seed):
    from tutorial_nas.oneshot.nsas import novelty

    t = trace_oneshot_variants(seed=seed)
    # Bender: a linear schedule from 0 to the final rate, each operation into node j dropped with p = r^(1/k), so
    # that all k are dropped with probability r; a node keeps at least one operation
    rates = t["bender_rates"]
    assert rates[0] == 0 and rates[99] == 0.5 and rates[50] == pytest.approx(0.5 * 50 / 99)
    nodes = t["bender_nodes"]
    assert nodes["candidates k"].tolist() == [4, 8, 12]  # 1, 2, 3 incoming edges x 4 operations
    # (the rate r^(1/k) itself: bender.sample_mask's draws are counted in test_nsas_bender)
    assert (nodes["kept"] >= 1).all()
    # DNA: block b reads the teacher's Y_{b-1}; its training loss is the MSE against Y_b, as block_loss computes
    # it, and its rating the mean absolute difference over the spread of Y_b, as block_rating computes it
    dna = t["dna"]
    np.testing.assert_allclose(dna["MSE by hand"], dna["block_loss"], rtol=1e-6)
    np.testing.assert_allclose(dna["R_b by hand"], dna["block_rating"], rtol=1e-5)
    assert dna["input"].tolist() == ["image", "Y_0", "Y_1"] and (dna["block_loss"] > 0).all()
    # the blocks' targets differ in scale, which the MSE carries and the rating divides out
    assert dna["std of Y_b"].max() > 2 * dna["std of Y_b"].min()
    mse_share, rating_share = (dna[c].max() / dna[c].sum() for c in ("block_loss", "block_rating"))
    assert mse_share > rating_share
    # SMASH: the cells differ on one edge, and every generated tensor changes (each depends on the whole cell)
    a, b = (c.strip("|").replace("|+|", "|").split("|") for c in t["smash_cells"])
    assert [i for i in range(6) if a[i] != b[i]] == [t["smash_edge"]]
    assert (t["smash_changed"] > 1e-3).all() and len(t["smash_changed"]) == 3 * 6 * 2  # 3 cells x 6 edges x 2 convs
    convs = sum(op.startswith("nor_conv") for op in a)
    assert len(t["smash_used"]) == 3 * convs  # cell a's convolutions, in each of the 3 cells of the skeleton
    assert len(t["smash_same_op"]) == 3 * (convs - a[t["smash_edge"]].startswith("nor_conv"))
    # NSAS: M fills to 3, then a member is replaced only by a path that makes M more diverse
    n = t["nsas"]
    assert [len(m) for m in n["M"]] == [1, 2, 3, 3, 3, 3, 3, 3]
    assert not n.loc[~n["M full"], "replaced"].any()
    assert n["replaced"].any()  # the subset starts less diverse than it can be, so the update acts
    for prev, row in zip(n.iloc[:-1].itertuples(), n.iloc[1:].itertuples()):
        if row.replaced:  # the nearest member gave way to a recent path more novel against the rest of M
            k = int(row._4)
            rest = [parse(c) for i, c in enumerate(row.M) if i != k]
            assert novelty(parse(row.M[k]), rest, 2) > novelty(parse(prev.M[k]), rest, 2)
            assert [c for i, c in enumerate(row.M) if i != k] == [c for i, c in enumerate(prev.M) if i != k]
    assert novelty((), []) == 1.0


@pytest.mark.parametrize("seed", [0, 2])
def test_hierarchical_mutation_changes_one_edge_of_one_motif(seed):
    from tutorial_nas.spaces.hierarchical import HierarchicalSpace

    space = HierarchicalSpace()
    t = trace_hierarchical_mutation(seed=seed, steps=4)
    previous = space.trivial()
    for row in t.itertuples():
        child = space.parse(row.genotype)
        assert row._5 != row._6  # the op before and after
        changed = [(k, e) for k, (a, b) in enumerate(zip(previous.motifs + (previous.top,),
                                                          child.motifs + (child.top,))) for e in range(len(a))
                   if a[e] != b[e]]
        assert len(changed) == 1  # one edge of one motif
        k, _ = changed[0]
        assert (row.level, row.motif) == ((3, "top") if k == space.n_motifs else (2, f"m{k + 1}"))
        assert row._7 == (row.level == 3 or row.motif in child.top)  # in the network
        previous = child


def test_blockqnn_backup_is_the_shaped_q_update():
    t = trace_blockqnn_backup(seed=0)
    T = len(t)  # the transitions of one block: start -> 6 edges -> terminate
    assert T == 7 and t["action"].iloc[0] == "terminate"
    r = t["reward"].iloc[0]
    assert 0 < r <= 1
    np.testing.assert_allclose(t["reward"].iloc[1:], r / T)  # every step before the end earns r_T / T
    target = t["reward"] + t["gamma"] * t["max_next_q"]
    np.testing.assert_allclose(t["q_after"], (1 - t["alpha"]) * t["q_before"] + t["alpha"] * target, rtol=1e-9)
    assert (t["q_before"] != 0.5).any()  # the warm-up blocks were learned first


@pytest.mark.parametrize("seed", [0, 1])
def test_maskconnect_step_follows_the_papers_update(seed):
    t = trace_maskconnect_step(seed=seed, modules=3, C=2, fan_in=2, mask_lr=0.05)
    # K = 2 inputs sampled per module (all of them where there are fewer candidates)
    assert t.groupby("module j")["sampled"].sum().tolist() == [1, 2, 2]
    # the real mask's gradient is <dE/dx_j, h_i>, for the inputs left out too
    np.testing.assert_allclose(t["dE/dm"], t["<dE/dx_j, h_i>"], rtol=1e-4, atol=1e-7)
    assert (t.loc[t["sampled"] == 0, "dE/dm"].abs() > 1e-6).any()
    # (m~ <- clip(m~ - lr * dE/dm, 0, 1) is the trace's own arithmetic; train_maskconnect's: test_maskconnect)
    # ReLU-conv-BN modules ignore the scale of their input: the gradient along the sampled inputs sums to ~0
    for _, rows in t.groupby("module j"):
        assert abs(rows.loc[rows["sampled"] == 1, "dE/dm"].sum()) < 1e-4


@pytest.mark.parametrize("keep", [2, 6])
def test_dpp_step_keeps_whole_layers_then_the_best_predicted(keep):
    from tutorial_nas.spaces.cell import unique_str
    from tutorial_nas.strategies.dpp import EMPTY, grow

    bench = load_benchmark()
    t = trace_dpp_step(bench, keep=keep, latency_fn=lambda arch: 0.1 + 0.01 * arch.count("conv"))
    # every one-edge cell grown by node 1's two edges: one candidate per function, the five parents stopping
    functions = [unique_str(parse(c), "drop_zero") for c in t["child"]]
    every = {unique_str(c, "drop_zero") for p in grow(EMPTY, 1) for c in grow(p, 2)}
    assert len(set(functions)) == len(t) and set(functions) == every and t["kept"].sum() == keep
    assert t["measured before"].sum() == 5  # the parents, which stop growing
    for parent, rows in t.groupby("parent"):
        assert set(rows["child"]) <= {to_str(c) for c in grow(parse(parent), 2)}
    last = t.loc[t["kept"], "layer"].max()
    assert t.loc[t["layer"] < last, "kept"].all() and not t.loc[t["layer"] > last, "kept"].any()
    partial = t[t["layer"] == last]
    kept_scores = partial.loc[partial["kept"], "score"]
    left_out = partial.loc[~partial["kept"], "score"]
    assert left_out.empty or kept_scores.min() >= left_out.max()
    # no kept child is dominated by a child of a later layer: layer 1 is the front
    front = t[t["layer"] == 1]
    for r in t[t["layer"] > 1].itertuples():
        assert any((f.score >= r.score) and (f.latency_ms <= r.latency_ms) and (f.params <= r.params) for f in
                   front.itertuples())


def test_predictor_ensemble_trace_is_the_members_mean_and_spread():
    bench = load_benchmark()
    t = trace_predictor_ensemble(bench, n_train=30, n_test=5, seed=0)
    table = t["table"]
    members = table.filter(like="member ").to_numpy()
    assert members.shape == (5, 5)
    np.testing.assert_allclose(table["mean"], members.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(table["std"], members.std(axis=1), rtol=1e-4, atol=1e-6)
    assert t["max_diff"] < 1e-3 and (table["std"] > 0).all()  # the members disagree
    # BANANAS' own members (mini-batches in their own orders) keep a spread on the cells they were fitted on,
    # where the small full-batch ensemble's members, differing only by their start, nearly agree
    b = t["bananas"]
    assert b["training cells"] > 2 * t["spread"]["training cells"] > 0 and b["held-out cells"] > 0
    truth = [bench.query(c)["valid_acc"] for c in table["cell"]]
    np.testing.assert_allclose(table["benchmark"], truth)
    np.testing.assert_allclose(table["|error|"], (table["mean"] - table["benchmark"]).abs())
    assert set(t["spread"]) == {"training cells", "held-out cells"} and min(t["spread"].values()) > 0
