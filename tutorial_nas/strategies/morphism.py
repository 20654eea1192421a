"""Architecture recycling: function-preserving morphisms (Net2Net) and a network-morphism hill climb (NASH).

Chen et al. (2016, Net2Net) grow a trained network without changing what it computes, so the bigger
network starts where the small one stopped instead of from scratch:

- ``net2wider``: give a layer more channels by copying random existing units; the next layer splits the
  weights it reads from a copied unit between the copies (equal shares plus noise that sums to zero, so
  the copies can learn different things), and the sum it computes is the same.
- ``net2deeper``: insert a block that computes the identity: a convolution whose kernel is a centred one
  on the diagonal, a batch norm that undoes its own normalisation, a ReLU that changes nothing because its
  input already passed through a ReLU.
- ``add_skip``: insert a residual block ``relu(x + bn(conv(x)))`` whose batch-norm scale is zero, so it adds
  nothing until training makes it useful. NASH's skip morphism is another: it connects two layers already in
  the network (by addition, which adds no parameters, or by concatenation); this one is a deepening with a skip
  around the new layer, and it counts against the depth limit.

Elsken et al. (2017, NASH) climb with these: from a hand-designed network, make a few children by random
morphisms, train each briefly from its parent's weights beside the parent trained as long again, keep the best,
repeat. ``morphism_search`` runs it
and returns a History; ``train_from_scratch`` trains the same children from random weights for comparison.

The networks are ``MorphNet``: a chain of conv-BN-ReLU blocks (optionally max-pooled, optionally residual),
a global average pool and a linear head, written as a spec string such as ``c8k3p-c16k3p-r16k3`` (``c`` a
plain block, ``r`` a residual one, channels, ``k`` kernel size, ``p`` a 2x2 max-pool after the block).
The climb does not fit the ask/tell loop (a child needs its parent's trained weights), so it has its own
entry point rather than a name in ``STRATEGIES``.

Where the climb differs from NASH's experiments (Elsken et al., Section 5.1): their start network is
Conv-MaxPool-Conv-MaxPool-Conv-FC trained for 20 epochs, here ``START_SPEC`` (two conv blocks, max-pooled, and
a global-average-pool head) trained for ``start_epochs``; they run 8 steps of 8 networks, each child made by 5
morphisms and trained 17 epochs with SGDR from a learning rate of 0.05 down to 0, then train the final network 20
epochs more; the defaults here are 3 steps of 4 networks, 2 morphisms a child, 1 epoch from 0.1 down to 0 (a
larger rate for the shorter run), and no final training unless ``final_epochs`` asks for it (chapter 2 gives it
``FINAL_OVER_NEIGH`` times the children's epochs, the paper's 20 against 17). A widening multiplies a layer's
channels by 1.5 or 2, drawn at random, within ``max_channels``.
"""

from __future__ import annotations

import copy
import re
import time
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ..errors import NASInputError, check_choice, check_positive
from ..progress import tqdm
from ..search import history_frame
from ..train import TrainConfig, count_params, evaluate, train

START_SPEC = "c8k3p-c16k3p"  # the hand-designed starting network of the climb
MORPHISMS = ("widen", "deepen", "skip")
_LAYER_RE = re.compile(r"^([cr])(\d+)k(\d+)(p?)$")


class Layer(NamedTuple):
    """One block of a MorphNet: ``channels`` out, an odd ``kernel``, a max-pool after it or not, residual."""

    channels: int
    kernel: int = 3
    pool: bool = False
    residual: bool = False

    def __str__(self):
        return f"{'r' if self.residual else 'c'}{self.channels}k{self.kernel}{'p' if self.pool else ''}"


def spec_to_str(spec) -> str:
    return "-".join(str(Layer(*layer)) for layer in spec)


def parse_spec(text: str) -> tuple:
    """The tuple of ``Layer`` written by ``spec_to_str``; a clear error otherwise."""
    form = "blocks like c8k3p joined by '-' (c plain / r residual, channels, k kernel, p max-pool)"
    if not isinstance(text, str) or not text.strip():
        raise NASInputError(f"a MorphNet spec must be a non-empty string of {form}, got {text!r}")
    layers = []
    for part in text.strip().split("-"):
        m = _LAYER_RE.match(part)
        if not m:
            raise NASInputError(f"block {part!r} of spec {text!r} is not understood; write {form}")
        layers.append(Layer(int(m.group(2)), int(m.group(3)), m.group(4) == "p", m.group(1) == "r"))
    return check_spec(layers)


def check_spec(spec) -> tuple:
    spec = tuple(Layer(*layer) for layer in spec)
    if not spec or spec[0].residual:
        raise NASInputError("a MorphNet starts with a plain block (c...): a residual block adds its input")
    for i, layer in enumerate(spec):
        if layer.channels < 1 or layer.kernel < 1 or layer.kernel % 2 == 0:
            raise NASInputError(f"block {i} ({layer}): channels must be at least 1 and the kernel odd "
                                "(so that padding keeps the map size)")
        if layer.residual and layer.channels != spec[i - 1].channels:
            raise NASInputError(f"residual block {i} ({layer}) must keep the {spec[i - 1].channels} channels "
                                "of the block before it")
    return spec


class Block(nn.Module):
    """conv -> BN -> ReLU (plain) or relu(x + BN(conv(x))) (residual), then an optional 2x2 max-pool."""

    def __init__(self, c_in: int, layer: Layer):
        super().__init__()
        self.layer = layer
        self.conv = nn.Conv2d(c_in, layer.channels, layer.kernel, padding=layer.kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(layer.channels)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if layer.pool else nn.Identity()

    def forward(self, x):
        y = self.bn(self.conv(x))
        y = torch.relu(x + y) if self.layer.residual else torch.relu(y)
        return self.pool(y)


class MorphNet(nn.Module):
    """A chain of ``Block`` described by a spec, then global average pooling and a linear classifier."""

    def __init__(self, spec, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        spec = parse_spec(spec) if isinstance(spec, str) else check_spec(spec)
        self.num_classes, self.in_channels = num_classes, in_channels
        blocks, c = [], in_channels
        for layer in spec:
            blocks.append(Block(c, layer))
            c = layer.channels
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, num_classes)

    @property
    def spec(self) -> tuple:
        return tuple(b.layer for b in self.blocks)

    def __str__(self):
        return spec_to_str(self.spec)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


def _check_layer(model: MorphNet, layer: int) -> None:
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(model.blocks):
        raise NASInputError(f"layer must be a block index from 0 to {len(model.blocks) - 1}, got {layer!r}")


@torch.no_grad()
def _split(w: torch.Tensor, g: torch.Tensor, counts: torch.Tensor, noise: float, rng) -> torch.Tensor:
    """The columns of a weight ``w`` that reads the widened units: column j is w[:, g(j)] / count, plus noise
    that sums to zero over the copies of each unit, so the reader still computes exactly the same sum."""
    shape = (1, -1) + (1,) * (w.dim() - 2)
    out = w[:, g] / counts.view(shape)
    if noise <= 0:
        return out
    eps = torch.as_tensor(rng.normal(0.0, noise * float(w.std(unbiased=False)), tuple(out.shape)),
                          dtype=w.dtype, device=w.device)
    group_sum = torch.zeros_like(w).index_add_(1, g, eps)  # the noise of each unit's copies, summed
    return out + eps - group_sum[:, g] / counts.view(shape)


@torch.no_grad()
def net2wider(model: MorphNet, layer: int, new_width: int, rng: np.random.Generator,
              noise: float = 0.5) -> MorphNet:
    """A copy of ``model`` whose block ``layer`` has ``new_width`` channels and computes the same function.

    Unit j of the wider layer is a copy of unit g(j): the identity for the old units, a random old unit for
    the new ones (Net2WiderNet, Chen et al. 2016, section 2.3). The residual blocks that follow carry the
    same copies; the first plain block (or the head) after them reads unit g(j) divided by how many copies
    of it there are.

    Exact copies read with equal weights receive equal gradients and stay copies for ever: the wider layer
    would train like the narrow one. Net2Net breaks the symmetry with noise on the replicated weights, which
    makes the function only approximately the same; here the noise goes where it cancels exactly: each
    weight that reads a copied unit is split between its n copies as w / n + e_j, with Gaussian e_j
    (standard deviation ``noise`` times that of the reading weight) centred so that the e_j of one unit's
    copies sum to zero. The copies are read differently, so they get different gradients from the first
    step, while the function is preserved up to float32 rounding (outputs within 1e-5, about 1e-7 in
    practice). ``noise`` sets how fast the copies separate, not how well the function is kept; ``noise=0``
    is the plain division, whose copies never separate. (NASH's alternative, new units with random incoming
    and zero outgoing weights, is exact too but starts the new units from nothing learned.)
    """
    _check_layer(model, layer)
    old = model.blocks[layer].layer
    if old.residual:
        raise NASInputError(f"block {layer} is residual: its width follows the block before it; widen "
                            "that one")
    if not isinstance(new_width, (int, np.integer)) or new_width <= old.channels:
        raise NASInputError(f"new_width must be an integer above the current {old.channels}, "
                            f"got {new_width!r}")
    if not isinstance(noise, (int, float, np.number)) or not noise >= 0:
        raise NASInputError(f"noise must be a number of at least 0, got {noise!r}")
    g = np.concatenate([np.arange(old.channels), rng.integers(0, old.channels, new_width - old.channels)])
    counts = torch.tensor(np.bincount(g, minlength=old.channels)[g], dtype=torch.float32)
    g = torch.as_tensor(g)

    spec = list(model.spec)
    spec[layer] = old._replace(channels=int(new_width))
    i = layer + 1
    while i < len(spec) and spec[i].residual:  # residual blocks keep their input's width
        spec[i] = spec[i]._replace(channels=int(new_width))
        i += 1
    device = next(model.parameters()).device
    wide = MorphNet(spec, model.num_classes, model.in_channels).to(device)
    changed = {f"blocks.{i}.conv.weight" if i < len(spec) else "head.weight"}
    wide.load_state_dict({k: v for k, v in model.state_dict().items() if k not in changed
                          and not any(k.startswith(f"blocks.{j}.") for j in range(layer, i))}, strict=False)
    g, counts = g.to(device), counts.to(device)

    def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[g])
        dst.num_batches_tracked.copy_(src.num_batches_tracked)

    for j in range(layer, i):  # the widened block and the residual blocks that carry its copies
        src, dst = model.blocks[j], wide.blocks[j]
        w = src.conv.weight[g]  # replicate the output units
        if j > layer:  # a residual block also reads the copies
            w = _split(w, g, counts, noise, rng)
        dst.conv.weight.copy_(w)
        copy_bn(dst.bn, src.bn)
    reader = wide.blocks[i].conv if i < len(spec) else wide.head  # the next plain block, or the head
    source = model.blocks[i].conv if i < len(spec) else model.head
    reader.weight.copy_(_split(source.weight, g, counts, noise, rng))
    return wide


def _identity_kernel(channels: int, kernel: int) -> torch.Tensor:
    w = torch.zeros(channels, channels, kernel, kernel)
    w[torch.arange(channels), torch.arange(channels), kernel // 2, kernel // 2] = 1.0
    return w


@torch.no_grad()
def _input_stats(model: MorphNet, after_layer: int, x: torch.Tensor | None, channels: int):
    """Per-channel mean and biased variance of block ``after_layer``'s output on ``x`` (0 and 1 without data).

    The blocks up to ``after_layer`` run in train mode, so their batch norms normalise with the statistics of
    ``x`` itself, as the child's do when it trains on ``x`` (their running averages lag behind the weights
    after a short training). The pass runs on a copy of those blocks: the model's running statistics, its
    ``num_batches_tracked`` and its mode are left as they were.
    """
    if x is None:
        return torch.zeros(channels), torch.ones(channels)
    prefix = copy.deepcopy(model.blocks[: after_layer + 1]).train()
    h = x.to(next(model.parameters()).device)
    try:
        for block in prefix:
            h = block(h)
    except ValueError as e:  # a batch norm in train mode needs more than one value per channel
        raise NASInputError(f"x must give the batch norms up to block {after_layer} more than one value per "
                            f"channel (more images, or larger ones): {e}") from e
    return h.mean(dim=(0, 2, 3)).cpu(), h.var(dim=(0, 2, 3), unbiased=False).cpu()


@torch.no_grad()
def _insert(model: MorphNet, after_layer: int, layer: Layer, init) -> MorphNet:
    _check_layer(model, after_layer)
    spec = list(model.spec)
    spec.insert(after_layer + 1, layer)
    deeper = MorphNet(spec, model.num_classes, model.in_channels)
    state = {}
    for k, v in model.state_dict().items():  # blocks after the new one move up by one index
        m = re.match(r"blocks\.(\d+)\.(.*)", k)
        if m and int(m.group(1)) > after_layer:
            k = f"blocks.{int(m.group(1)) + 1}.{m.group(2)}"
        state[k] = v
    deeper.load_state_dict(state, strict=False)
    init(deeper.blocks[after_layer + 1])
    return deeper.to(next(model.parameters()).device)


def net2deeper(model: MorphNet, after_layer: int, kernel: int = 3, x: torch.Tensor | None = None) -> MorphNet:
    """A copy of ``model`` with an identity conv-BN-ReLU block inserted after block ``after_layer``.

    In eval mode the batch norm computes ``gamma * (z - mean) / sqrt(var + eps) + beta`` with its running
    ``mean`` and ``var``; setting ``gamma = sqrt(var + eps)`` and ``beta = mean`` makes it the identity (up to
    float rounding) whatever they are. In train mode it normalises with the batch's own statistics instead.
    When a batch ``x`` is given, ``mean`` and ``var`` are the statistics of the new block's input on ``x``
    with the batch norms before it in train mode too (computed on a copy, so ``model`` is not changed): in
    train mode the new block is then the identity on ``x`` itself up to float rounding, and on another batch
    it is off by as much as that batch's statistics differ from those of ``x`` (chapter 2 prints how much on a
    validation batch), so training continues smoothly. Without ``x`` (mean 0, variance 1) the block is
    the identity in eval mode only.
    Unlike widening, the identity (Net2DeeperNet, Chen et al. 2016, section 2.4) has no symmetry to break:
    each new unit reads a different channel, so the units get different gradients from the first step and
    need no noise.
    """
    check_positive("kernel", kernel)
    if kernel % 2 == 0:
        raise NASInputError(f"kernel must be odd so that padding keeps the map size, got {kernel!r}")
    _check_layer(model, after_layer)
    c = model.blocks[after_layer].layer.channels
    mean, var = _input_stats(model, after_layer, x, c)

    def init(block: Block):
        block.conv.weight.copy_(_identity_kernel(c, kernel))
        block.bn.running_mean.copy_(mean)
        block.bn.running_var.copy_(var)
        block.bn.weight.copy_(torch.sqrt(var + block.bn.eps))
        block.bn.bias.copy_(mean)

    return _insert(model, after_layer, Layer(c, kernel), init)


def add_skip(model: MorphNet, after_layer: int, kernel: int = 3) -> MorphNet:
    """A copy of ``model`` with a residual block ``relu(x + BN(conv(x)))`` after block ``after_layer``.

    The batch norm's scale and shift start at zero, so the block adds nothing (and ``relu(x) = x`` since x
    came out of a ReLU); the scale still receives gradient, so training can switch the branch on.
    """
    _check_layer(model, after_layer)
    c = model.blocks[after_layer].layer.channels

    def init(block: Block):
        nn.init.zeros_(block.bn.weight)
        nn.init.zeros_(block.bn.bias)

    return _insert(model, after_layer, Layer(c, kernel, residual=True), init)


def random_morphism(model: MorphNet, rng: np.random.Generator, x: torch.Tensor | None = None,
                    kinds=MORPHISMS, max_channels: int = 64, max_layers: int = 8) -> tuple:
    """One random morphism among ``kinds`` that the size limits allow: (new model, description)."""
    for kind in kinds:
        check_choice("morphism", kind, MORPHISMS)
    plain = [i for i, b in enumerate(model.blocks) if not b.layer.residual
             and b.layer.channels < max_channels]
    deep_ok = len(model.blocks) < max_layers
    options = [k for k in kinds if (k == "widen" and plain) or (k != "widen" and deep_ok)]
    if not options:
        return model, "none (size limits reached)"
    kind = options[int(rng.integers(len(options)))]
    if kind == "widen":
        i = plain[int(rng.integers(len(plain)))]
        c = model.blocks[i].layer.channels
        width = min(max_channels, max(c + 1, int(round(c * rng.choice([1.5, 2.0])))))
        return net2wider(model, i, width, rng), f"widen {i} to {width}"
    i = int(rng.integers(len(model.blocks)))
    if kind == "deepen":
        return net2deeper(model, i, kernel=int(rng.choice([3, 5])), x=x), f"deepen after {i}"
    return add_skip(model, i), f"skip after {i}"


def _train_record(model, data, epochs, lr, batch_size, seed):
    """Train briefly with a fresh cosine schedule: one restart of SGDR per child, as in NASH.

    Returns the record and the cost in seconds: the whole ``train`` call less its test evaluation and FLOP count
    (``record.unpaid_seconds``), measurements that no search pays for, as ``FullTraining`` charges.
    """
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    start = time.perf_counter()
    record = train(model, data, config, progress=False)
    return record, time.perf_counter() - start - record.unpaid_seconds


PARENT_FURTHER = "none: the parent, trained further"
# NASH's epoch_final / epoch_neigh (Elsken et al., Section 5.1: 20 epochs for the final network, 17 for each child)
FINAL_OVER_NEIGH = 20 / 17


def morphism_search(data, steps: int = 3, children: int = 4, epochs: float = 1, seed: int = 0,
                    progress: bool = True, start: str = START_SPEC, start_epochs: float | None = None,
                    morphs_per_child: int = 2, lr: float = 0.1, batch_size: int = 64, max_channels: int = 64,
                    max_layers: int = 8, keep_parent: bool = True, final_epochs: float = 0):
    """NASH hill climbing from the hand-designed ``start`` network; returns a History (one row per network).

    Row 0 is the starting network trained for ``start_epochs`` (default ``epochs``). Each of ``steps`` steps
    trains ``children`` networks (Elsken et al.'s n_neigh) for ``epochs`` each and keeps the best by validation
    accuracy as the next parent: ``children - 1`` children of the current parent made by ``morphs_per_child``
    random morphisms and trained from the inherited weights, and, as the paper's Algorithm 1 does, the parent
    itself trained further for the same epochs (``morphisms`` reads ``PARENT_FURTHER``), so that a step whose
    children are all worse keeps the parent. ``keep_parent=False`` makes all ``children`` by morphisms instead.
    Columns beyond the usual ones: ``parent`` (its row), ``morphisms``, ``inherited_valid_acc`` (the network's
    accuracy before its own training, equal to its parent's), ``generation``. ``cost_s`` is each network's
    training and validation less its test evaluation and FLOP count, as for the other strategies.

    The answer differs from NASH's: the History's incumbent (``best_valid_acc``, ``search.best``) is the best
    network by validation accuracy over the start and all steps, while NASH's Algorithm 1 returns the best of
    the last step, which can be worse than a network of an earlier step (training further can lower a
    network's validation accuracy, and children can all be worse); ``history.attrs["last_step_best"]`` is that
    network's row. NASH then trains it for epoch_final more epochs with a fresh cosine schedule (Algorithm 1's
    last line) and reports that network: with ``final_epochs`` > 0 a copy of it is trained so, and
    ``history.attrs["final"]`` holds the result (``row``, ``arch``, ``epochs``, ``valid_acc``, ``test_acc``,
    ``cost_s``). The rows stop at the climb: the chapter compares each of them with its training from scratch at
    equal epochs, which the final training does not change.
    """
    for name, value in (("steps", steps), ("children", children), ("morphs_per_child", morphs_per_child)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise NASInputError(f"{name} must be a whole number of at least 1, got {value!r}")
    if keep_parent and children < 2:
        raise NASInputError(f"with keep_parent, children counts the parent trained further: at least 2 for one "
                            f"morphed child, got {children!r}")
    check_positive("epochs", epochs)
    if not isinstance(final_epochs, (int, float, np.number)) or not final_epochs >= 0:
        raise NASInputError(f"final_epochs must be a number of at least 0 (0: no final training), got {final_epochs!r}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    probe = data.train_x[:256]
    parent = MorphNet(start, data.num_classes, data.in_channels).to(data.device)
    record, seconds = _train_record(parent, data, start_epochs or epochs, lr, batch_size, seed)
    rows, models, spent, clock = [], [], 0.0, time.perf_counter()

    def add_row(model, record, seconds, generation, parent_row, morphs, inherited):
        nonlocal spent
        spent += seconds
        rows.append({"step": len(rows), "arch": str(model), "valid_acc": record.final_valid_acc,
                     "test_acc": record.test_acc, "cost_s": seconds, "spent_s": spent,
                     "wall_s": time.perf_counter() - clock, "params": record.params, "flops": record.flops,
                     "curve": list(record.valid_acc), "epochs": record.epochs,
                     "generation": generation, "parent": parent_row,
                     "morphisms": morphs, "inherited_valid_acc": inherited})
        models.append(model)

    add_row(parent, record, seconds, 0, -1, "", float("nan"))
    parent_row = 0
    bar = tqdm(total=steps * children, desc="morphism search", disable=not progress)
    for generation in range(1, steps + 1):
        best_row = None
        for k in range(children):
            child, done = models[parent_row], []
            if keep_parent and k == children - 1:  # Algorithm 1: the current best, trained for epoch_neigh more
                child, done = copy.deepcopy(child), [PARENT_FURTHER]
            else:
                for _ in range(morphs_per_child):
                    child, what = random_morphism(child, rng, x=probe, max_channels=max_channels,
                                                  max_layers=max_layers)
                    done.append(what)
                if child is models[parent_row]:  # no morphism fitted the size limits: train a copy, not the parent
                    child = copy.deepcopy(child)
            inherited = evaluate(child, data.valid_x, data.valid_y)[1]
            record, seconds = _train_record(child, data, epochs, lr, batch_size, seed + 1000 * generation + k)
            add_row(child, record, seconds, generation, parent_row, "; ".join(done), inherited)
            if best_row is None or rows[-1]["valid_acc"] > rows[best_row]["valid_acc"]:
                best_row = len(rows) - 1
            bar.update(1)
            bar.set_postfix(best=f"{max(r['valid_acc'] for r in rows):.1f}")
        parent_row = best_row
    bar.close()
    meta = {"space": "morphnet", "strategy": "morphism", "seed": seed, "budget": f"{steps} steps x {children} children",
            "evaluator": "inherited", "last_step_best": int(parent_row)}
    if final_epochs > 0:  # Algorithm 1's last line: the answer trained epoch_final more, from its weights
        answer = copy.deepcopy(models[parent_row])
        record, seconds = _train_record(answer, data, final_epochs, lr, batch_size, seed + 1000 * (steps + 1))
        meta["final"] = {"row": int(parent_row), "arch": str(answer), "epochs": float(final_epochs),
                         "valid_acc": float(record.final_valid_acc), "test_acc": float(record.test_acc),
                         "cost_s": float(seconds)}
    return history_frame(rows, meta)


def train_from_scratch(history, data, epochs: float | None = None, seed: int = 0, lr: float = 0.1,
                       batch_size: int = 64, progress: bool = True):
    """Train every network of a ``morphism_search`` History from random weights, for the comparison.

    ``epochs`` defaults to what the child itself was trained for during the climb, so the two columns differ
    only in where the weights started: ``inherited_acc`` (the climb) against ``scratch_acc``.
    ``scratch_seconds`` is charged as the climb's ``cost_s``: the training and validation, not the test evaluation
    nor the FLOP count.
    """
    rows = []
    for _, row in tqdm(history.iterrows(), total=len(history), desc="from scratch", disable=not progress):
        torch.manual_seed(seed)
        model = MorphNet(row["arch"], data.num_classes, data.in_channels).to(data.device)
        record, seconds = _train_record(model, data, epochs or row["epochs"], lr, batch_size, seed)
        rows.append({"arch": row["arch"], "generation": row["generation"], "params": count_params(model),
                     "inherited_acc": row["valid_acc"], "scratch_acc": record.final_valid_acc,
                     "inherited_test_acc": row["test_acc"], "scratch_test_acc": record.test_acc,
                     "scratch_seconds": seconds})
    return pd.DataFrame(rows)
