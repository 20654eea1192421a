"""What a chapter costs: training images x FLOPs per image, turned into minutes on a CPU, a T4, an A100, an H100.

The model is deliberately simple. Every section of a chapter is a list of ``Work``: a number of trainings of one
kind of network, each seeing ``train_images`` images for ``epochs`` epochs and ``eval_images`` images forward
only. Its FLOPs are those ``tutorial_nas.train.count_flops`` counts on the network the profile builds, times 3
for a training image (forward + backward, the usual 1 + 2) and 1 for an evaluated image. A supernet that runs
every operation (DARTS) is counted at the mixed network's FLOPs; one that runs a single path (GDAS, SPOS, RS-WS,
ENAS) at a stand-alone cell's. A DARTS step also takes an architecture step on a validation batch: forward +
backward first order (3 more), and for the second-order step the virtual step, the step on the virtual weights
and two finite-difference gradients (12 more: DARTS Sec. 2.3, Eq. 7-8, the 2.5x of its 1.5 vs 4 GPU days).

Seconds = dense FLOPs / achieved FLOP/s + depthwise FLOPs / the depthwise rate + kernels x seconds a kernel,
where kernels = the network's leaf modules (x 3 for a training step, x 1 for an evaluation batch): small networks
are bound by how fast PyTorch can launch operations, not by arithmetic, and the DARTS space's separable and
dilated convolutions (grouped, one filter a channel) reach a small part of a dense convolution's FLOP/s. On the
CPU the three numbers are measured here (``calibrate``); the GPUs' come from ``DEVICES``, the one table of them.
Benchmark look-ups cost only bookkeeping, charged at ``LOOKUP_S`` each. A search's networks are its own
proposals, replayed (``networks``). Two corrections measured on the CPU: chapter 1's chain networks train slower
than the calibration predicts (``CPU_SLOWDOWN``), and a
forward pass at batch 1 (a latency measurement) pays an operation's launch, not the calibrated cost of an
operation in a training step (``batch1_kernel_s``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import NASInputError, check_choice
from ..profiles import PROFILES

# Images per split and channels of each data set (``tutorial_nas.data``: offline sets split by counts, downloaded
# ones keep 10 % of the official training set to validate).
DATA = {"digits": ((1077, 360, 360), 1), "mnist5k": ((3000, 1000, 1000), 1),
        "fashion-mnist": ((54000, 6000, 10000), 1), "cifar10": ((45000, 5000, 10000), 3)}
RECIPE = dict(dataset="mnist5k", image_size=14, C=8, N=1, stem_stride=2, train_images=1000, epochs=3,
              batch_size=64)  # the shipped benchmark's recipe (bench.build.Recipe), whatever the profile
LOOKUP_S = 0.0031  # a benchmark-driven evaluation, BO's fits included: chapter 3's 61,339 took 188 s on 2 cores
EVAL_BATCH = 1024  # TrainConfig.eval_batch_size
# Chapter 1's chain networks train slower on the CPU than the calibration's dense convnet and supernet predict:
# their functional operations (ReLU, pooling, the padding and concatenation of skip inputs, the mean) are no leaf
# modules, and their thin layers (1 input channel, 1x1 kernels, wide maps without pooling) are memory-bound, a
# small part of the dense probe's FLOP/s (a 1x1 convolution to 64 channels on the 14x14 image, 26 kFLOPs, took 8 ms
# a step). Measured in three cpu runs of chapter 1 (the cost table's seconds, sums of the trainings) against the
# model at the idle 2-core calibration (1.5e11 FLOP/s, 75 us an operation): random search's 20 networks, which the
# plan replays exactly (its proposals do not depend on what it is told), took 47, 41 and 38 s where the model gives
# 28 s (1.5x on average); large-scale evolution's 2 x 20, replayed with random fitness, 7.4, 9.0 and 7.7 s against
# 4.0 s (2.0x); Genetic CNN's 11 distinct networks 35, 37 and 39 s against 3.1 s each (1.1x). On the CPU only: the
# GPUs' rows keep the assumptions of DEVICES. A search is counted at its whole budget, where a repeated candidate
# is looked up, and at its own proposals replayed with random fitness (``_replay``): REINFORCE's controller, told
# its real rewards, moved on to larger networks than its replay (96-133 s in the three runs where the model gives
# 69 s).
CPU_SLOWDOWN = {"chain": 1.5, "lse": 2.0, "genetic": 1.1}

# The devices, in one table. peak: datasheet fp32 / fp16-tensor FLOP/s; memory_gb: the card's. achieved: FLOP/s
# the course's small convnets reach, an ASSUMPTION of 10 % of the fp32 peak for every GPU (AMP's tensor cores
# are offset by the memory-bound depthwise, batch-norm and element-wise operations that dominate these networks;
# it gives a T4 ~15 s an epoch of ResNet-20 on CIFAR-10, the usual figure). kernel_s: seconds a launched
# operation costs, an ASSUMPTION of 10 us (PyTorch's eager launch overhead). Cross-check against a cited run:
# NAS-Bench-201's DARTS-V1 (Table 5: 11,626 s for 50 epochs of the C=16, N=5 supernet on CIFAR-10, one V100)
# comes out at ~3,300 s in this model -- their search reads its images through a CPU data loader with
# augmentation, this package keeps them on the GPU, so read the GPU lines as optimistic by up to 3x.
# The CPU row is measured at run time (calibrate).
GPU_FRACTION, GPU_KERNEL_S = 0.10, 10e-6
DEVICES = {
    # batch1_kernel_s: an operation of a forward pass at batch 1 (a latency measurement), where the calibrated
    # kernel_s is an operation of a training step at batch 64 on 14x14 maps, mostly memory-bound work: measured,
    # 23 batch-1 forwards of a NAS-Bench-201 cell at the recipe's size (50 leaf modules) and its construction took
    # 22 ms on one busy core, ~19 us an operation (chapter 4's latencies: 0.4-0.5 ms a forward on two cores)
    "cpu": dict(label="this CPU", source="achieved FLOP/s and kernel seconds measured here by calibrate()",
                batch1_kernel_s=20e-6),
    "t4": dict(label="a T4", peak=(8.1e12, 65e12), memory_gb=16, source="NVIDIA T4 datasheet"),
    "a100": dict(label="an A100", peak=(19.5e12, 312e12), memory_gb=40, source="NVIDIA A100 datasheet"),
    "h100": dict(label="an H100/H200", peak=(67e12, 989e12), memory_gb=80,
                 source="NVIDIA H100 SXM datasheet (the H200: same compute, more memory)"),
}
# achieved_dw: FLOP/s of grouped (depthwise) convolutions. On the CPU it is measured (about a twentieth of the dense
# rate on the 2-core machine); on the GPUs it is an ASSUMPTION of the dense rate until a card is measured
# (benchmarks/gpu_check.sh's cost-model stage calibrates all three numbers on the card it finds).
for _d in ("t4", "a100", "h100"):
    _achieved = GPU_FRACTION * DEVICES[_d]["peak"][0]
    DEVICES[_d].update(achieved=_achieved, achieved_dw=_achieved, kernel_s=GPU_KERNEL_S)
    DEVICES[_d]["source"] += f"; achieved = {GPU_FRACTION:.0%} of fp32 peak (depthwise convolutions too) and " \
                             f"{GPU_KERNEL_S * 1e6:.0f} us a kernel are assumptions"


@dataclass
class Work:
    """``trainings`` x (``epochs`` x ``train_images`` x ``passes`` + ``eval_images``) images through ``net``."""

    what: str
    net: tuple  # (kind, sizes) for network(); built once, counted, thrown away
    trainings: float
    epochs: float = 0
    train_images: int = 0
    batch_size: int = 64
    eval_images: float = 0
    passes: float = 3
    lookups: float = 0  # benchmark-driven evaluations: bookkeeping only


@functools.lru_cache(maxsize=None)
def _measure(kind: str, sizes: tuple) -> tuple:
    """``network_cost``'s four numbers and ``depthwise_flops``: of the network, or their means over the networks a
    search of ``kind`` trains (``networks``)."""
    models, shape = networks(kind, dict(sizes))
    return tuple(float(np.mean(v)) if len(models) > 1 else v[0] for v in zip(*(_one(m, shape) for m in models)))


def _one(model: nn.Module, shape: tuple) -> tuple:
    from ..train import count_flops, count_params

    leaves = [m for m in model.modules() if not list(m.children())]
    acts = []
    hooks = [m.register_forward_hook(lambda m, i, o: acts.append(o.numel() if torch.is_tensor(o) else 0))
             for m in leaves]
    flops = count_flops(model, shape)
    for h in hooks:
        h.remove()
    return flops, len(leaves), count_params(model), sum(acts), _grouped_flops(model, shape)


def network_cost(kind: str, sizes: tuple) -> tuple:
    """(FLOPs of one image forward, leaf modules, parameters, activation values of one image) of a network; for a
    kind a search trains (``networks``), their means over its networks."""
    return _measure(kind, sizes)[:4]


def depthwise_flops(kind: str, sizes: tuple) -> int:
    """FLOPs of one image forward spent in grouped convolutions (``groups > 1``: the depthwise half of DARTS'
    separable and dilated convolutions), counted as ``count_flops`` counts a convolution (2 x multiply-adds)."""
    return _measure(kind, sizes)[4]


def _grouped_flops(model: nn.Module, shape: tuple) -> int:
    total = []

    def hook(m, i, o):
        if m.groups > 1:
            total.append(2 * o[0].numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros((1, *shape), device=next(model.parameters()).device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return int(sum(total))


def _mean_flops_network(models: list, shape: tuple):
    """Of ``models``, the one whose FLOPs are nearest their mean: a search's typical candidate."""
    from ..train import count_flops

    flops = np.array([count_flops(m, shape) for m in models])
    return models[int(np.abs(flops - flops.mean()).argmin())]


# How many random networks stand for a space's candidates: one network near the mean FLOPs of 16 draws once stood
# for them, and under-counted the chain space's mean by 1.6x (its FLOPs are skewed: a few deep, wide networks cost
# most; 300 draws at the cpu sizes: mean 7.3e6, median 1.8e6 FLOPs).
DRAWS = 64
# the chapters' searches whose candidates the plan replays (``_replay``): strategy -> the space it searches there
REPLAYED = {"random": "chain", "reinforce": "chain", "qlearning": "chain", "large-scale-evolution": "lse",
            "genetic": "genetic"}


def network(kind: str, s: dict) -> tuple:
    """The network the chapters build for ``kind`` at sizes ``s``, and its input shape (C, H, W); where a kind
    stands for many networks (``networks``), the one whose FLOPs are nearest their mean."""
    models, shape = networks(kind, s)
    return (models[0] if len(models) == 1 else _mean_flops_network(models, shape)), shape


def _space(kind: str, s: dict):
    from ..spaces import make_space

    if kind == "genetic":
        return make_space("genetic", nodes=tuple(s["genetic_nodes"]))
    return make_space("chain", max_layers=s["max_layers"], filters=tuple(s["filters"]),
                      min_layers=0 if kind == "lse" else 1)  # large-scale evolution starts without convolutions


def _replay(s: dict, classes: int, channels: int) -> list:
    """The networks a search of ``s["strategy"]`` (seed 0, ``s["budget"]`` candidates, ``s["population"]`` where
    it has one) proposes, replayed with random fitness: a strategy that learns (REINFORCE's controller, Q-learning)
    or breeds proposes networks of its own sizes, not the space's random draws (REINFORCE's controller, seed 0,
    proposes twice random search's FLOPs at the cpu sizes). With real fitness a strategy may move further: in
    chapter 1's cpu runs REINFORCE's 20 networks took 2.5-2.8x random search's time."""
    from ..evaluators import Result
    from ..strategies import make_strategy

    space, rng = _space(REPLAYED[s["strategy"]], s), np.random.default_rng(0)
    options = {"population": s["population"]} if s["strategy"] in ("large-scale-evolution", "genetic") else {}
    strategy = make_strategy(s["strategy"], space, seed=0, **options)
    models = []
    for _ in range(s["budget"]):
        arch = strategy.ask()
        models.append(space.to_model(arch, classes, channels))
        strategy.tell(arch, Result(valid_acc=float(rng.uniform(10, 90))))
    return models


def networks(kind: str, s: dict) -> tuple:
    """The networks the chapters build for ``kind`` at sizes ``s`` (one, or the many that stand for a search's
    candidates), and their input shape (C, H, W)."""
    from ..spaces import make_space

    classes, channels = 10, DATA[s["dataset"]][1]
    shape, rng = (channels, s["image_size"], s["image_size"]), np.random.default_rng(0)
    if kind in ("chain", "genetic"):  # DRAWS random networks of the space
        space = _space(kind, s)
        return [space.to_model(space.sample(rng), classes, channels) for _ in range(DRAWS)], shape
    if kind == "search":  # a search's own candidates
        return _replay(s, classes, channels), shape
    if kind == "darts-cell":
        space = make_space("darts")
        return [space.to_model(space.sample(rng), classes, channels, C=s["C"], layers=s["layers"])], shape
    if kind in ("nb201-cell", "single-path"):  # a stand-alone cell: what one path of a supernet runs
        space = make_space("nb201")
        return [space.to_model(space.sample(rng), classes, channels, C=s["C"], N=s["N"],
                               stem_stride=s.get("stem_stride", 1))], shape
    if kind in ("darts-supernet", "nb201-supernet"):
        from ..oneshot.darts import build_supernet

        model = build_supernet(kind.split("-")[0], classes, channels, C=s["C"], layers=s.get("layers", 8),
                               N=s.get("N", 1))
        return [model], shape
    if kind == "morph":  # a NASH climb replayed with random fitness: its networks (the children grow)
        from ..strategies.morphism import START_SPEC, MorphNet, random_morphism

        parent, models = MorphNet(START_SPEC, classes, channels), []
        models.append(parent)
        keep = _default("strategies.morphism.morphism_search", "keep_parent")
        morphs = _default("strategies.morphism.morphism_search", "morphs_per_child")
        n_children = s.get("children", 1)
        for _ in range(s.get("steps", 0)):
            children = []
            for k in range(n_children):
                child = parent
                if not (keep and k == n_children - 1):  # the last is the parent trained further
                    for _ in range(morphs):
                        child, _ = random_morphism(child, rng)
                children.append(child)
            models += children
            parent = children[int(rng.integers(len(children)))]
        return models, shape
    if kind == "hierarchical":  # 8 genotypes drawn as the paper initialises
        from ..spaces.hierarchical import HierarchicalSpace

        space = HierarchicalSpace()
        return [space.to_model(space.sample(rng), classes, channels, C=s["C"]) for _ in range(8)], shape
    if kind == "maskconnect":
        from ..oneshot.maskconnect import MaskConnectNet

        return [MaskConnectNet(classes, channels, s["modules"], s["C"], s["fan_in"])], shape
    raise NASInputError(f"unknown network kind {kind!r}")


def _net(kind: str, **sizes) -> tuple:
    return kind, tuple(sorted(sizes.items()))


def _split(dataset: str, fraction: float = 1.0) -> tuple:
    (tr, va, te), _ = DATA[dataset]
    return max(1, int(round(tr * fraction))), va, te


def _training(what, net, n, epochs, dataset, batch_size, train_images=None):
    """``n`` trainings as ``train.train`` runs them: validate after every epoch, test at the end."""
    tr, va, te = _split(dataset)
    return Work(what, net, n, epochs, train_images or tr, batch_size, eval_images=math.ceil(epochs) * va + te)


def _darts(what, net, n, epochs, dataset, batch_size, fraction=1.0, order=1, images=None):
    """``n`` bilevel searches: half the training images train the weights, the other half the alphas; each
    epoch recalibrates BN on the weights' half and validates."""
    tr, va, _ = _split(dataset, fraction)
    tr = images or tr
    return Work(what, net, n, epochs, tr // 2, batch_size, eval_images=epochs * (tr // 2 + va),
                passes=6 if order == 1 else 15)


def _single_path(what, net, n, epochs, dataset, batch_size, scored=0, images=None, score_epochs=1, passes=3):
    """``n`` single-path supernets trained ``epochs``; ``scored`` cells scored on the validation split each
    of ``score_epochs`` times (4 batches of BN calibration + the validation images). ``passes``: forward-pass
    equivalents of a step (3 for one path; NSAS trains 1 + |M| paths a step)."""
    tr, va, _ = _split(dataset)
    return Work(what, net, n, epochs, images or tr, batch_size, eval_images=score_epochs * scored * (4 * batch_size
                                                                                                   + va),
                passes=passes)


DPP_RANDOM_SEEDS = 20  # chapter 4: random_at_equal_lookups(bench, dpp, seeds=20)


def _default(where: str, name: str):
    """The default of argument ``name`` of the package's function or class ``where`` (module path.name)."""
    import importlib
    import inspect

    module, attr = where.rsplit(".", 1)
    return inspect.signature(getattr(importlib.import_module(f"tutorial_nas.{module}"), attr)).parameters[name].default


def _dpp_counts(keep: int) -> tuple:
    """(children DPP-Net times, benchmark look-ups) at most, for ``keep`` cells kept a step: every one-edge cell is
    evaluated at step 1; step 2's candidates, the children of a new function of those five (``dpp.grow``, one a
    function), are counted exactly; at step 3 each kept cell's 125 children bound its candidates. Each step's
    candidates are timed and the ``keep`` chosen looked up (``strategies.dpp.dpp_search``)."""
    from ..strategies.dpp import EMPTY, GROW_ORDER, candidates, grow

    first = grow(EMPTY, 1)
    second = len(candidates(first, 2, evaluated=first))  # every step-1 cell kept and evaluated
    timed = lookups = len(first)
    kept = min(keep, second)
    timed, lookups = timed + second, lookups + kept
    for edges in GROW_ORDER[2:]:
        children = kept * 5 ** len(edges)
        timed += children
        kept = min(keep, children)
        lookups += kept
    return timed, lookups


def sections(profile: str) -> dict:
    """chapter -> section -> [Work] for ``profile``: what each chapter's cells run (see the notebooks)."""
    from ..strategies.morphism import FINAL_OVER_NEIGH

    check_choice("profile", profile, PROFILES)
    p = {k: dict(v) for k, v in PROFILES[profile].items()}
    ch, d, o, cell, cmp, f, data = p["chain"], p["darts"], p["oneshot"], p["cell"], p["compare"], p["future"], p["data"]
    chain_net = _net("chain", **{k: ch[k] for k in ("dataset", "image_size", "max_layers", "filters")})
    chain_sizes = {k: ch[k] for k in ("dataset", "image_size", "max_layers", "filters", "budget")}

    def searched(strategy, **more):  # a chapter-1 search's own candidates (seed 0), replayed
        return _net("search", strategy=strategy, **chain_sizes, **more)
    r = RECIPE
    recipe_cell = _net("nb201-cell", dataset=r["dataset"], image_size=r["image_size"], C=r["C"], N=r["N"],
                       stem_stride=r["stem_stride"])
    bench_cell = _net("nb201-cell", dataset=r["dataset"], image_size=r["image_size"], C=cell["C"], N=cell["N"],
                      stem_stride=cell["stem_stride"])
    nb201_super = _net("nb201-supernet", dataset=r["dataset"], image_size=r["image_size"], C=d["C"], N=d["N"])
    darts_super = _net("darts-supernet", dataset=d["dataset"], image_size=d["image_size"], C=d["C"],
                       layers=d["layers"])
    darts_cell = _net("darts-cell", dataset=d["dataset"], image_size=d["image_size"], C=d["C"], layers=d["layers"])
    # every trick (a longer schedule counted at its length) on the searched and the random cells, with fresh seeds
    tricks_n = (f.get("search_seeds", 1) + f["trick_cells"]) * f.get("trick_seeds", 1) * (
        len(f["tricks"]) + (f["longer"] - 1) * sum(t in ("longer", "all") for t in f["tricks"]))
    n_super = 5  # ENAS, SPOS, Bender, DNA, SMASH (NSAS: its own row)
    nsas_paths = 1 + _default("oneshot.nsas.train_nsas", "subset_size")  # the sampled path and the subset's
    dpp_timed, dpp_lookups = _dpp_counts(f["dpp_keep"])
    hier_net = _net("hierarchical", dataset=data["dataset"], image_size=data["image_size"], C=8)
    mask_net = _net("maskconnect", dataset=data["dataset"], image_size=data["image_size"], modules=4, C=8, fan_in=2)
    morph_runs = 1 + o["morph_steps"] * o["morph_children"]
    morph_net = _net("morph", dataset=data["dataset"], image_size=data["image_size"], steps=o["morph_steps"],
                     children=o["morph_children"])
    cmp_path = _net("nb201-cell", dataset=cmp["oneshot_dataset"], image_size=cmp["oneshot_image_size"],
                    C=cell["C"], N=cell["N"], stem_stride=cmp["oneshot_stem_stride"])
    cmp_super = _net("nb201-supernet", dataset=cmp["oneshot_dataset"], image_size=cmp["oneshot_image_size"],
                     C=cell["C"], N=cell["N"])
    n_seeds = {m: cmp["oneshot_seeds"] * (m in cmp["oneshot"]) for m in ("darts", "gdas", "rsws")}
    rec_tr = r["train_images"]
    k = f["forget_cells"]
    return {
        1: {"one trained network": [_training("1 chain network", chain_net, 1, ch["epochs"], ch["dataset"],
                                              ch["batch_size"])],
            "six searches with full training": [
                *[_training(f"{label}: {ch['budget']} networks", searched(strategy), ch["budget"], ch["epochs"],
                            ch["dataset"], ch["batch_size"])
                  for label, strategy in (("random search", "random"), ("REINFORCE", "reinforce"),
                                          ("Q-learning", "qlearning"))],
                _training(f"large-scale evolution with and without inheritance: 2 x {ch['budget']} networks grown "
                          "from none", searched("large-scale-evolution", population=ch["population"]),
                          2 * ch["budget"], ch["epochs"], ch["dataset"], ch["batch_size"]),
                _training(f"Genetic CNN: {ch['budget']} networks", searched(
                    "genetic", population=ch["population"], genetic_nodes=ch["genetic_nodes"]), ch["budget"],
                    ch["epochs"], ch["dataset"], ch["batch_size"])]},
        2: {"DARTS, second-order DARTS and GDAS on the DARTS space": [
                _darts("DARTS first order", darts_super, 1, d["epochs"], d["dataset"], d["batch_size"],
                       d["data_fraction"]),
                _darts("DARTS second order", darts_super, 1, d["epochs"], d["dataset"], d["batch_size"],
                       d["data_fraction"], order=2),
                _darts("GDAS (one path)", _net("darts-cell", **dict(darts_cell[1])), 1,
                       d.get("gdas_epochs", d["epochs"]), d["dataset"], d["batch_size"], d["data_fraction"])],
            "the found cell and a random cell, trained": [
                _training("2 DARTS networks x 3 seeds", darts_cell, 6, d["train_epochs"], d["dataset"], d["batch_size"],
                          _split(d["dataset"], d["data_fraction"])[0])],
            "DARTS and GDAS on the NAS-Bench-201 supernet": [
                _darts("DARTS", nb201_super, 1, d["nb201_epochs"], r["dataset"], d["batch_size"], images=rec_tr),
                _darts("GDAS (one path)", _net("nb201-cell", **dict(nb201_super[1])), 1,
                       d.get("gdas_nb201_epochs", d["nb201_epochs"]), r["dataset"], d["batch_size"], images=rec_tr)],
            "hierarchical motifs, BlockQNN, MaskConnect": [
                _training(f"hierarchical: 2 searches x {o.get('hier_budget', 0)} networks", hier_net,
                          2 * o.get("hier_budget", 0), o.get("hier_epochs", 0), data["dataset"], 64),
                Work("BlockQNN and random search", bench_cell, 0, lookups=2 * o.get("blockqnn_budget", 0)),
                _training("MaskConnect", mask_net, 1, o.get("mask_epochs", 0), data["dataset"],
                          _default("oneshot.maskconnect.train_maskconnect", "batch_size"))],
            "network morphisms": [
                _training(f"{2 * morph_runs} morph networks (climb + from scratch)", morph_net, 2 * morph_runs,
                          o["morph_epochs"], data["dataset"], 64),
                _training("NASH's final training of its answer", morph_net, 1, FINAL_OVER_NEIGH * o["morph_epochs"],
                          data["dataset"], 64)],
            "shortcuts to ranking": [
                _single_path(f"{n_super} supernets (ENAS, SPOS, Bender, DNA, SMASH)", bench_cell, n_super, o["epochs"],
                             r["dataset"], o["batch_size"], scored=o["eval_cells"], images=rec_tr),
                _training("DNA's teacher (a stand-alone cell)", bench_cell, 1, o["epochs"], r["dataset"],
                          o["batch_size"], rec_tr),
                *([_single_path(f"NSAS supernet and its random-subset control ({nsas_paths} paths a step each)",
                                bench_cell, 2, o["epochs"], r["dataset"], o["batch_size"], scored=o["eval_cells"],
                                images=rec_tr, passes=3 * nsas_paths)]
                  if o.get("nsas") else []),
                _training(f"{o['eval_cells']} cells at low fidelity", bench_cell, o["eval_cells"], o["train_epochs"],
                          r["dataset"], r["batch_size"], rec_tr),
                Work("5 zero-cost proxies", bench_cell, 5 * o["eval_cells"], 1, o["proxy_batch"], o["proxy_batch"]),
                Work("early-stopping rules (3) and successive halving on the same cells", bench_cell, 0,
                     lookups=4 * o["eval_cells"] * r["epochs"])]},
        3: {"strategies on the benchmark (look-ups)": [
                Work(f"{len(cmp['strategies'])} strategies x {cmp['seeds']} seeds", bench_cell, 0,
                     lookups=len(cmp["strategies"]) * cmp["seeds"] * cmp["budget_trainings"])],
            "one-shot methods (supernet training)": [
                _darts(f"DARTS x {n_seeds['darts']} seeds", cmp_super, n_seeds["darts"], cmp["oneshot_epochs"],
                       cmp["oneshot_dataset"], cmp["oneshot_batch_size"]),
                _darts(f"GDAS x {n_seeds['gdas']} seeds", cmp_path, n_seeds["gdas"],
                       cmp.get("gdas_epochs", cmp["oneshot_epochs"]), cmp["oneshot_dataset"],
                       cmp["oneshot_batch_size"]),
                _single_path(f"RS-WS x {n_seeds['rsws']} seeds", cmp_path, n_seeds["rsws"],
                             cmp.get("rsws_epochs", cmp["oneshot_epochs"]),
                             cmp["oneshot_dataset"], cmp["oneshot_batch_size"], scored=cmp["oneshot_candidates"])]},
        4: {"training tricks against search": [
                _training(f"{tricks_n} recipe trainings", recipe_cell, tricks_n, r["epochs"], r["dataset"],
                          r["batch_size"], rec_tr),
                Work("the searches that pick cells", bench_cell, 0,
                     lookups=f.get("search_seeds", 1) * f.get("search_budget", 0))],
            "DARTS' failure and its remedies": [
                _darts("DARTS on the NAS-Bench-201 supernet", _net("nb201-supernet", dataset=d["dataset"],
                       image_size=d["image_size"], C=d["C"], N=f.get("darts_N", d["N"])), 1, f["darts_epochs"],
                       d["dataset"], d["batch_size"], f["darts_fraction"])],
            "supernet ranking and forgetting": [
                _single_path("ranking over training", recipe_cell, 1, f["ws_epochs"], r["dataset"], f["ws_batch"],
                             scored=f["ws_cells"], images=rec_tr,
                             score_epochs=len(f.get("ws_checkpoints", range(f["ws_epochs"])))),
                _single_path("per-step forgetting: uniform, NSAS and its random control (1 + 9 + 9 paths a step)",
                             recipe_cell, 1, 19 * f.get("forget_steps", 0) * f["ws_batch"] / rec_tr, r["dataset"],
                             f["ws_batch"], scored=3 * k, images=rec_tr, score_epochs=2),
                _single_path("forgetting", recipe_cell, 1, 1 + f["forget_epochs"], r["dataset"], f["ws_batch"],
                             scored=2 * k, images=rec_tr, score_epochs=1 + f["forget_epochs"])],
            "hardware-aware search": [
                Work("latency of cells at batch 1", recipe_cell, 1, eval_images=(f["latency_cells"]
                     + f["search_cycles"]) * f["latency_repeats"], batch_size=1, lookups=3 * f["search_cycles"]),
                Work(f"DPP-Net: {dpp_timed} grown children timed at batch 1, {dpp_lookups} look-ups; random search at "
                     f"equal look-ups x {DPP_RANDOM_SEEDS} seeds", recipe_cell, 1,
                     eval_images=dpp_timed * (f["latency_repeats"] + _default("analysis.hardware.LatencyAware",
                                                                                "warmup")),
                     batch_size=1, lookups=dpp_lookups * (1 + DPP_RANDOM_SEEDS)),
                Work(f"paired re-timings: the two winners together and each against up to {PAIRED_FRONT} cells of "
                     f"each of two fronts, {_default('analysis.hardware.paired_latency', 'rounds')} interleaved rounds "
                     "of both cells", recipe_cell, 1,
                     eval_images=(1 + 2 * 2 * PAIRED_FRONT) * 2 * _default("analysis.hardware.paired_latency", "rounds")
                     * (f["latency_repeats"] + _default("analysis.hardware.LatencyAware", "warmup")), batch_size=1)],
            "a search on a new task (rotations)": [
                _training(f"{ch['budget']} chain networks", chain_net, ch["budget"], ch["epochs"], ch["dataset"],
                          ch["batch_size"])]},
    }


def work_fingerprint(chapter: int, profile: str = "cpu") -> str:
    """A short hash of what the plan counts for ``chapter`` in ``profile`` (every network, training and size): it
    changes whenever the chapter's sizes do, so a measured time can say which sizes it belongs to."""
    return hashlib.sha1(repr(sections(profile)[chapter]).encode()).hexdigest()[:12]


# Whole-notebook wall times in the cpu profile on the idle 2-core machine of the README: chapter -> (seconds,
# work_fingerprint(chapter) when it was measured). A chapter re-executed after its sizes changed gets its new time
# and fingerprint here; None marks a time measured before the chapter's present sizes (to be measured again).
# The round kept here: the four chapters re-executed one after another on the idle machine, the time of each
# `tutorial-nas notebook run N --profile cpu` (chapter 1 at its present sizes, counted at its searches' own
# proposals; chapters 2-4 at the sizes of the earlier round, which took 588, 394 and 528 s on another day: the
# day-to-day spread of this virtual machine).
# the front cells a winner is re-timed against in chapter 4 (``hardware.front_reach`` with its evaluator), at most:
# the fronts of the stored cpu run held 8 (pareto_search) and 3 (DPP-Net) cells
PAIRED_FRONT = 10

MEASURED_CPU = {1: (272, "483e19a27194"), 2: (494, "3e90e0ee04a0"), 3: (347, "6f9677b965ad"), 4: (445, "f2d50782d0ed")}


def measured_cpu(chapter: int):
    """The chapter's measured cpu-profile seconds if they belong to its present sizes, else None."""
    seconds, fingerprint = MEASURED_CPU[chapter]
    return seconds if fingerprint == work_fingerprint(chapter, "cpu") else None


# --- the devices' numbers -----------------------------------------------------------------------------------------

_CALIBRATION: dict = {}


def _step_seconds(model, shape, batch: int, device: str, steps: int) -> float:
    """The fastest of ``steps`` timed training steps (after one to warm up): the least disturbed by other load."""
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *shape, device=device), torch.randint(0, 10, (batch,), device=device)
    best = math.inf
    for i in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        with torch.autocast(device, dtype=torch.float16, enabled=device == "cuda"):  # AMP, as train() on CUDA
            loss = nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start) if i else best
    return best


def _probe(width: int, size: int, channels: int = 1) -> tuple:
    layers = [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)), (channels, size, size)


def calibrate(device: str = "cpu", steps: int = 3, rounds: int = 2) -> dict:
    """Achieved FLOP/s, seconds a kernel and the depthwise convolutions' FLOP/s on ``device`` ("cpu" or "cuda"),
    measured once a process from the fastest of a few training steps of three networks: a dense convnet the size
    of the chapters' (4 conv layers of 48 filters at 14x14, batch 64; on CUDA 128 filters at 32x32, batch 256),
    whose time is mostly arithmetic; the NAS-Bench-201 supernet at the chapters' size (C=8 on 14x14 images), whose
    time is nearly all per-operation overhead (its leaf modules plus the sums and weightings between them, and the
    memory-bound work of each at maps of that size: measured on 8x8 maps, the overhead came out at half of what
    the chapters pay); and the DARTS-space supernet at the chapters' size (C=8, 3 cells, 14x14), half of whose
    FLOPs are depthwise. The first two timings give the first two numbers (two equations, two unknowns), the
    third what its depthwise FLOPs cost beyond them. The probes are timed in ``rounds`` interleaved rounds and
    each keeps its fastest: a burst of other work on the machine slows one round, not every one."""
    if device in _CALIBRATION:
        return _CALIBRATION[device]
    from ..train import count_flops

    width, size, batch = (48, 14, 64) if device == "cpu" else (128, 32, 256)
    dense, dense_shape = _probe(width, size)
    f_dense = 3 * batch * count_flops(dense, dense_shape)
    k_dense = 3 * sum(1 for m in dense.modules() if not list(m.children()))
    tiny = dict(dataset="mnist5k", image_size=14, C=8, N=1)
    flops, leaves, _, _ = network_cost(*_net("nb201-supernet", **tiny))
    model, shape = network("nb201-supernet", tiny)
    t_dense = t_tiny = math.inf
    for _ in range(max(1, rounds)):  # interleaved: a burst of other load slows one round of each probe
        t_dense = min(t_dense, _step_seconds(dense, dense_shape, batch, device, steps))
        t_tiny = min(t_tiny, _step_seconds(model, shape, 64, device, steps))
    # t = f / achieved + k * kernel_s for both networks: two equations, two unknowns (1 / achieved, kernel_s)
    f_tiny, k_tiny = 3 * 64 * flops, 3 * leaves
    det = f_dense * k_tiny - f_tiny * k_dense
    inv = (t_dense * k_tiny - t_tiny * k_dense) / det
    kernel_s = (f_dense * t_tiny - f_tiny * t_dense) / det
    if not (inv > 0 and kernel_s > 0):  # a disturbed timing: fall back on the supernet as pure overhead
        kernel_s = t_tiny / k_tiny
        inv = max(t_dense - kernel_s * k_dense, 0.1 * t_dense) / f_dense
    achieved = 1 / inv
    achieved_dw = max(_depthwise_rate(device, steps, achieved, kernel_s) for _ in range(max(1, rounds)))
    _CALIBRATION[device] = dict(achieved=achieved, achieved_dw=achieved_dw, kernel_s=kernel_s,
                                threads=torch.get_num_threads(), cores=os.cpu_count() or 1)
    return _CALIBRATION[device]


DW_PROBE = ("darts-supernet", dict(dataset="mnist5k", image_size=14, C=8, layers=3), 64)


def _depthwise_rate(device: str, steps: int, achieved: float, kernel_s: float) -> float:
    """FLOP/s of depthwise convolutions: one training step of ``DW_PROBE`` less what its dense FLOPs and its
    operations cost at ``achieved`` and ``kernel_s``, over its depthwise FLOPs. Never above the dense rate (a
    disturbed timing falls back on it)."""
    kind, sizes, batch = DW_PROBE
    dw = 3 * batch * depthwise_flops(*_net(kind, **sizes))
    model, shape = network(kind, sizes)
    t = _step_seconds(model, shape, batch, device, steps)
    # the step less its dense arithmetic and its operations (the depthwise FLOPs charged nothing: an infinite rate)
    rest = t - step_estimate(kind, sizes, batch, dict(achieved=achieved, achieved_dw=math.inf, kernel_s=kernel_s))
    return achieved if rest <= dw / achieved else dw / rest


def step_estimate(kind: str, sizes: dict, batch: int, numbers: dict) -> float:
    """Seconds of one training step of network ``kind`` at ``sizes`` by the model, with a device's ``numbers``."""
    net = _net(kind, **sizes)
    flops, leaves, _, _ = network_cost(*net)
    return 3 * batch * _arithmetic_s(flops, depthwise_flops(*net), numbers) + 3 * leaves * numbers["kernel_s"]


def _arithmetic_s(flops: float, dw: float, numbers: dict) -> float:
    """Seconds of ``flops`` FLOPs of which ``dw`` are depthwise, at a device's dense and depthwise rates."""
    return (flops - dw) / numbers["achieved"] + dw / numbers["achieved_dw"]


CHECK_NETS = (("darts-supernet", dict(dataset="cifar10", image_size=32, C=16, layers=5), 64),
              ("darts-supernet", dict(dataset="cifar10", image_size=32, C=16, layers=8), 64),
              ("nb201-supernet", dict(dataset="cifar10", image_size=32, C=16, N=5), 64),
              ("nb201-cell", dict(dataset="cifar10", image_size=32, C=16, N=5), 256),
              ("chain", dict(dataset="cifar10", image_size=32, max_layers=8, filters=(32, 64, 128)), 128))


def check_model(device: str = "cuda", steps: int = 5, nets=CHECK_NETS) -> list:
    """Measured against estimated seconds of one training step of the networks the chapters train (``nets``:
    kind, sizes, batch; by default the ``gpu`` profile's), and the memory estimate against CUDA's peak: how to
    check this model on a GPU (``python -m tutorial_nas.course.plan check``, and ``benchmarks/gpu_check.sh``)."""
    numbers = calibrate(device)
    rows = []
    for kind, sizes, batch in nets:
        model, shape = network(kind, sizes)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        measured = _step_seconds(model, shape, batch, device, steps)
        estimated = step_estimate(kind, sizes, batch, numbers)
        rows.append(dict(net=kind, sizes=sizes, batch=batch, measured_s=measured, estimated_s=estimated,
                         memory_gb=(torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None),
                         estimate_gb=supernet_memory(kind, batch, **sizes) / 2**30))
        del model
    return rows


def device_numbers(device: str) -> dict:
    check_choice("device", device, DEVICES)
    return {**DEVICES[device], **(calibrate("cpu") if device == "cpu" else {})}


def _family(net: tuple) -> str:
    """The kind of networks ``net`` builds: a replayed search's are its space's ("chain", "lse", "genetic")."""
    kind, sizes = net
    return REPLAYED[dict(sizes)["strategy"]] if kind == "search" else kind


def work_cost(w: Work, device: str) -> dict:
    """FLOPs, images and seconds of one Work on ``device``."""
    dev = device_numbers(device)
    flops_img, leaves, _, _ = network_cost(*w.net)
    images = w.trainings * w.epochs * w.train_images
    forwards = images * w.passes + w.trainings * w.eval_images  # images x forward-pass equivalents
    flops, dw = flops_img * forwards, depthwise_flops(*w.net) * forwards
    steps = w.trainings * w.epochs * math.ceil(w.train_images / w.batch_size) if w.train_images else 0
    eval_batches = math.ceil(w.trainings * w.eval_images / (EVAL_BATCH if w.batch_size > 1 else 1))
    kernel_s = dev.get("batch1_kernel_s", dev["kernel_s"]) if w.batch_size == 1 else dev["kernel_s"]
    seconds = _arithmetic_s(flops, dw, dev) + (steps * w.passes + eval_batches) * leaves * kernel_s
    seconds *= CPU_SLOWDOWN.get(_family(w.net), 1.0) if device == "cpu" else 1.0
    return dict(what=w.what, trainings=w.trainings, epochs=w.epochs, train_images=int(images), flops=float(flops),
                flops_per_image=flops_img, lookups=w.lookups, seconds=seconds + w.lookups * LOOKUP_S)


def plan(profile: str, devices=tuple(DEVICES), chapters=(1, 2, 3, 4)) -> dict:
    """chapter -> {"sections": {name: {"work": [...], "seconds": {device: s}}}, "seconds": {device: s}}."""
    for d in devices:
        check_choice("device", d, DEVICES)
    out = {}
    for chapter, secs in sections(profile).items():
        if chapter not in chapters:
            continue
        chap = {"sections": {}, "seconds": dict.fromkeys(devices, 0.0), "flops": 0.0}
        for name, works in secs.items():
            costs = {d: [work_cost(w, d) for w in works] for d in devices}
            sec = {"work": costs[devices[0]], "seconds": {d: sum(c["seconds"] for c in costs[d]) for d in devices},
                   "flops": sum(c["flops"] for c in costs[devices[0]])}
            chap["sections"][name] = sec
            chap["flops"] += sec["flops"]
            for d in devices:
                chap["seconds"][d] += sec["seconds"][d]
        out[chapter] = chap
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _cpu_label() -> str:
    return f"{calibrate('cpu')['cores']}-core CPU"


def plan_line(profile, device: str | None = None, *, chapter: int) -> str:
    """One line for a chapter's setup cell: the chapter's estimated wall time here and on the GPUs of ``DEVICES``.

    ``profile`` is a ``Profile`` (what ``setup`` returns) or a profile's name; ``device`` (``"cpu"``, ``"t4"``,
    ``"a100"``, ``"h100"``) is the machine the notebook runs on, by default the profile's device. The estimate
    is the model's; on a CPU in the ``cpu`` profile the line also gives the chapter's measured time on the
    README's idle 2-core machine (``MEASURED_CPU``), where that time belongs to the chapter's present sizes."""
    check_choice("chapter", chapter, (1, 2, 3, 4))
    name = profile if isinstance(profile, str) else profile.name
    if device is None:
        kind = "cpu" if isinstance(profile, str) else profile.device.type
        device = _gpu_kind() if kind == "cuda" else "cpu"
    check_choice("device", device, DEVICES)
    seconds = plan(name, tuple(DEVICES), (chapter,))[chapter]["seconds"]
    here = _cpu_label() if device == "cpu" else DEVICES[device]["label"].split(" ", 1)[1]
    measured = measured_cpu(chapter) if device == "cpu" and name == "cpu" else None
    parts = [f"~{_duration(seconds[device])} here ({here}" + (
        f"; the whole notebook took {_duration(measured)} on the README's idle 2-core machine)" if measured else ")")]
    parts += [f"~{_duration(seconds[d])} on {DEVICES[d]['label']}" for d in DEVICES if d not in ("cpu", device)]
    return f"Chapter {chapter} at the {name} profile: " + ", ".join(parts) + " (tutorial-nas plan)"


def _gpu_kind() -> str:
    """The row of DEVICES nearest the CUDA device present (an unknown card counts as a T4, the slowest)."""
    name = torch.cuda.get_device_name().lower()
    if not any(k in name for k in ("a100", "h100", "h200")):
        return "t4"
    return "a100" if "a100" in name else "h100"


# --- memory -----------------------------------------------------------------------------------------------------

def supernet_memory(kind: str, batch_size: int, dtype: str = "float16", **sizes) -> float:
    """Bytes a supernet's training step needs, by this package's estimate: its parameters four times in float32
    (weights, gradients, momentum, and Adam's or the virtual step's copy) plus every leaf module's output at the
    batch size, kept for the backward pass, in ``dtype`` (float16 under AMP, float32 without)."""
    check_choice("dtype", dtype, ("float16", "float32"))
    _, _, params, acts = network_cost(*_net(kind, **sizes))
    return 4 * 4 * params + acts * batch_size * (2 if dtype == "float16" else 4)


def supernets(profile: str) -> dict:
    """name -> (kind, batch size, sizes) of every supernet the chapters train at ``profile``."""
    p = PROFILES[profile]
    d, cell, cmp, f = p["darts"], p["cell"], p["compare"], p["future"]
    r = RECIPE
    return {
        "chapter 2: DARTS space": ("darts-supernet", d["batch_size"], dict(dataset=d["dataset"],
                                   image_size=d["image_size"], C=d["C"], layers=d["layers"])),
        "chapter 2: NAS-Bench-201": ("nb201-supernet", d["batch_size"], dict(dataset=r["dataset"],
                                     image_size=r["image_size"], C=d["C"], N=d["N"])),
        "chapter 3: one-shot": ("nb201-supernet", cmp["oneshot_batch_size"], dict(
            dataset=cmp["oneshot_dataset"], image_size=cmp["oneshot_image_size"], C=cell["C"], N=cell["N"])),
        "chapter 4: DARTS remedies": ("nb201-supernet", d["batch_size"], dict(dataset=d["dataset"],
                                      image_size=d["image_size"], C=d["C"], N=d["N"])),
        "chapter 4: ranking": ("single-path", f["ws_batch"], dict(dataset=r["dataset"], image_size=r["image_size"],
                               C=r["C"], N=r["N"], stem_stride=r["stem_stride"])),
    }


# --- the command line -----------------------------------------------------------------------------------------------

def report(profile: str, device: str | None = None) -> str:
    """The plan as text: per chapter and section, the work, the FLOPs and the minutes on every device."""
    devices = tuple(DEVICES) if device is None else (device,)
    out = plan(profile, devices)
    lines = [f"profile {profile}: estimated wall time (" + ", ".join(
        f"{d}: {DEVICES[d]['source']}" for d in devices) + ")"]
    for chapter, chap in out.items():
        lines.append(f"Chapter {chapter}  {chap['flops']:.2e} FLOPs  " + "  ".join(
            f"{d} {_duration(s)}" for d, s in chap["seconds"].items()))
        for name, sec in chap["sections"].items():
            lines.append(f"  {name:52s} {sec['flops']:9.2e}  " + "  ".join(
                f"{d} {_duration(s)}" for d, s in sec["seconds"].items()))
            for w in sec["work"]:
                lines.append(f"      {w['what']}: {w['train_images']:,} training images x {w['flops_per_image']:.2e}"
                             f" FLOPs" + (f", {w['lookups']:.0f} look-ups" if w["lookups"] else ""))
    return "\n".join(lines)


def plan_json(profile: str, device: str | None = None) -> dict:
    devices = tuple(DEVICES) if device is None else (device,)
    return {"profile": profile, "devices": {d: {k: v for k, v in device_numbers(d).items()} for d in devices},
            "chapters": plan(profile, devices),
            "supernet_memory_gb": {name: supernet_memory(kind, batch, **sizes) / 2**30
                                   for name, (kind, batch, sizes) in supernets(profile).items()}}


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] == ["check"]:
        print(json.dumps({"calibration": calibrate("cuda"), "steps": check_model("cuda")}, indent=1, default=str))
