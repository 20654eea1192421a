"""Architecture recycling: function-preserving morphisms (Net2Net) and a network-morphism hill climb (NASH).

Chen et al. (2016, Net2Net) grow a trained network without changing what it computes, so the bigger
network starts where the small one stopped instead of from scratch:

- ``net2wider``: give a layer more channels by copying random existing units; the next layer splits the
  weights it reads from a copied unit between the copies (equal shares plus noise that sums to zero, so
  the copies can learn different things), and the sum it computes is the same.
- ``net2deeper``: insert a block that computes the identity: a convolution whose kernel is a centred one
  on the diagonal, a batch norm that undoes its own normalisation, a ReLU that changes nothing because its
  input already passed through a ReLU.
- ``add_skip``: NASH's third kind of morphism (Elsken, Metzen & Hutter 2017), a skip connection from one
  block to a later one that is already there: by addition (their Type IV, ``lam * N(x) + (1 - lam) * h(x)`` with
  ``lam`` starting at 1) or by concatenation (Type II, the new channels read with zero weights at first). It adds
  no layer.

Elsken et al. (2017, NASH) climb with these: from a hand-designed network, make a few children by random
morphisms, train each briefly from its parent's weights beside the parent trained as long again, keep the best,
repeat. ``morphism_search`` runs it
and returns a History; ``train_from_scratch`` trains the same children from random weights for comparison.

The networks are ``MorphNet``: a chain of conv-BN-ReLU blocks (optionally max-pooled, optionally residual),
a global average pool and a linear head, written as a spec string such as ``c8k3p-c16k3-c16k5+1&0p`` (``c`` a
plain block, ``r`` a residual one, channels, ``k`` kernel size, ``+i`` an addition of block i's output, ``&i`` a
concatenation of it, ``p`` a 2x2 max-pool after the block).
The climb does not fit the ask/tell loop (a child needs its parent's trained weights), so it has its own
entry point rather than a name in ``STRATEGIES``.

Where the climb differs from NASH's experiments (Elsken et al., Section 5.1): their start network is
Conv-MaxPool-Conv-MaxPool-Conv-FC trained for 20 epochs, here ``START_SPEC`` (two conv blocks, max-pooled, and
a global-average-pool head) trained for ``start_epochs``; they run 8 steps of 8 networks, each child made by 5
morphisms and trained 17 epochs with SGDR from a learning rate of 0.05 down to 0, then train the final network 20
epochs more; the defaults here are 3 steps of 4 networks, 2 morphisms a child, 1 epoch from 0.1 down to 0 (a
larger rate for the shorter run), and no final training unless ``final_epochs`` asks for it (chapter 2 gives it
``FINAL_OVER_NEIGH`` times the children's epochs, the paper's 20 against 17). A widening multiplies a layer's
channels by 1.5 or 2, drawn at random, within ``max_channels``; a block joined by an addition keeps its width (the
addition needs the same channels on both sides; widening both sides together is not implemented).
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
SKIP_MODES = ("add", "concat")
_LAYER_RE = re.compile(r"^([cr])(\d+)k(\d+)((?:[+&]\d+)*)(p?)$")


class Layer(NamedTuple):
    """One block of a MorphNet: ``channels`` out of its convolution, an odd ``kernel``, a max-pool after it or
    not, residual or not; ``adds`` and ``cats`` are the earlier blocks whose outputs it joins by addition and by
    concatenation (NASH's skip connections)."""

    channels: int
    kernel: int = 3
    pool: bool = False
    residual: bool = False
    adds: tuple = ()
    cats: tuple = ()

    def __str__(self):
        joins = "".join(f"+{i}" for i in self.adds) + "".join(f"&{i}" for i in self.cats)
        return f"{'r' if self.residual else 'c'}{self.channels}k{self.kernel}{joins}{'p' if self.pool else ''}"


def spec_to_str(spec) -> str:
    return "-".join(str(Layer(*layer)) for layer in spec)


FORM = ("blocks like c8k3p joined by '-' (c plain / r residual, channels, k kernel, then +i for an addition of "
        "block i's output and &i for a concatenation of it, p for a max-pool)")


def parse_spec(text: str) -> tuple:
    """The tuple of ``Layer`` written by ``spec_to_str``; a clear error otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise NASInputError(f"a MorphNet spec must be a non-empty string of {FORM}, got {text!r}")
    layers = []
    for part in text.strip().split("-"):
        m = _LAYER_RE.match(part)
        if not m:
            raise NASInputError(f"block {part!r} of spec {text!r} is not understood; write {FORM}")
        joins = re.findall(r"([+&])(\d+)", m.group(4))
        layers.append(Layer(int(m.group(2)), int(m.group(3)), m.group(5) == "p", m.group(1) == "r",
                            tuple(int(i) for op, i in joins if op == "+"),
                            tuple(int(i) for op, i in joins if op == "&")))
    return check_spec(layers)


def out_channels(spec) -> list:
    """The channels of each block's output: its convolution's, plus those of the outputs it concatenates."""
    outs = []
    for layer in spec:
        outs.append(layer.channels + sum(outs[s] for s in layer.cats))
    return outs


def check_spec(spec) -> tuple:
    spec = tuple(Layer(*layer) for layer in spec)
    spec = tuple(layer._replace(adds=tuple(int(s) for s in layer.adds), cats=tuple(int(s) for s in layer.cats))
                 for layer in spec)
    if not spec or spec[0].residual:
        raise NASInputError("a MorphNet starts with a plain block (c...): a residual block adds its input")
    outs = []
    for i, layer in enumerate(spec):
        if layer.channels < 1 or layer.kernel < 1 or layer.kernel % 2 == 0:
            raise NASInputError(f"block {i} ({layer}): channels must be at least 1 and the kernel odd "
                                "(so that padding keeps the map size)")
        sources = layer.adds + layer.cats
        if layer.residual and sources:
            raise NASInputError(f"residual block {i} ({layer}) takes no skip connection: it adds its input already")
        if layer.residual and layer.channels != outs[i - 1]:
            raise NASInputError(f"residual block {i} ({layer}) must keep the {outs[i - 1]} channels "
                                "of the block before it")
        if len(set(sources)) != len(sources):
            raise NASInputError(f"block {i} ({layer}) joins one block's output twice")
        for s in sources:
            if not 0 <= s < i:
                raise NASInputError(f"block {i} ({layer}) can only join the output of an earlier block "
                                    f"(0 to {i - 1}), not {s}")
            pooled = [k for k in range(s + 1, i) if spec[k].pool]
            if pooled:
                raise NASInputError(f"block {i} ({layer}) cannot join block {s}'s output: block {pooled[0]} "
                                    "pools between them, so their maps differ in size")
        for s in layer.adds:
            if outs[s] != layer.channels:
                raise NASInputError(f"block {i} ({layer}) adds block {s}'s output of {outs[s]} channels to its "
                                    f"own {layer.channels}: an addition needs the same channels")
        outs.append(layer.channels + sum(outs[s] for s in layer.cats))
    return spec


class Block(nn.Module):
    """conv -> BN -> (skip additions) -> ReLU -> (concatenations) -> optional 2x2 max-pool; or, residual,
    relu(x + BN(conv(x))) then the optional max-pool.

    An addition of block s's output is NASH's network morphism Type IV on the convolution and its batch norm N:
    N(x) is replaced by lam * N(x) + (1 - lam) * out_s, with lam a parameter trained with the weights and
    starting at 1, where the replacement computes what N did. It enters before the ReLU, so that a block's
    output stays non-negative whatever lam becomes (and an identity block inserted after it stays exact). A
    concatenation (Type II) appends block s's output to this block's channels; the block that reads them
    starts with zero weights on them.
    """

    def __init__(self, c_in: int, layer: Layer):
        super().__init__()
        self.layer = layer
        self.conv = nn.Conv2d(c_in, layer.channels, layer.kernel, padding=layer.kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(layer.channels)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if layer.pool else nn.Identity()
        if layer.adds:
            self.lam = nn.Parameter(torch.ones(len(layer.adds)))

    def forward(self, x, outs=()):
        y = self.bn(self.conv(x))
        if self.layer.residual:
            y = torch.relu(x + y)
        else:
            for k, s in enumerate(self.layer.adds):
                y = self.lam[k] * y + (1 - self.lam[k]) * outs[s]
            y = torch.relu(y)
        if self.layer.cats:
            y = torch.cat([y] + [outs[s] for s in self.layer.cats], dim=1)
        return self.pool(y)


def _run(blocks, x) -> torch.Tensor:
    outs = []
    for block in blocks:
        x = block(x, outs)
        outs.append(x)
    return x


class MorphNet(nn.Module):
    """A chain of ``Block`` described by a spec (with its skip connections), then global average pooling and a
    linear classifier."""

    def __init__(self, spec, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        spec = parse_spec(spec) if isinstance(spec, str) else check_spec(spec)
        self.num_classes, self.in_channels = num_classes, in_channels
        blocks, c = [], in_channels
        for layer, out in zip(spec, out_channels(spec)):
            blocks.append(Block(c, layer))
            c = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, num_classes)

    @property
    def spec(self) -> tuple:
        return tuple(b.layer for b in self.blocks)

    def __str__(self):
        return spec_to_str(self.spec)

    def forward(self, x):
        return self.head(_run(self.blocks, x).mean(dim=(2, 3)))


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


def _chain(spec, layer: int) -> range:
    """Block ``layer`` and the residual blocks after it, which keep its output's width."""
    i = layer + 1
    while i < len(spec) and spec[i].residual:
        i += 1
    return range(layer, i)


def _widened(spec, layer: int) -> list:
    """The blocks whose output widens with block ``layer``: its chain, and every block that concatenates one of
    them (directly or through another such block)."""
    changed = list(_chain(spec, layer))
    for j in range(changed[-1] + 1, len(spec)):
        if any(s in changed for s in spec[j].cats):
            changed.append(j)
    return changed


def widen_refusal(spec, layer: int) -> str | None:
    """Why block ``layer`` cannot be widened (None if it can): a residual block's width follows the block before
    it, and an addition fixes the width of the blocks it joins (also where the widened output reaches it through
    a concatenation)."""
    if spec[layer].residual:
        return f"block {layer} is residual: its width follows the block before it; widen that one"
    added = {s for l in spec for s in l.adds}
    tied = [b for b in _chain(spec, layer) if spec[b].adds] + [b for b in _widened(spec, layer) if b in added]
    if tied:
        return (f"block {layer} cannot widen: block {min(tied)}, whose output would widen with it, is joined by an "
                "addition, which needs the same channels on both sides; it keeps its width")
    return None


@torch.no_grad()
def net2wider(model: MorphNet, layer: int, new_width: int, rng: np.random.Generator,
              noise: float = 0.5) -> MorphNet:
    """A copy of ``model`` whose block ``layer`` has ``new_width`` channels and computes the same function.

    Unit j of the wider layer is a copy of unit g(j): the identity for the old units, a random old unit for
    the new ones (Net2WiderNet, Chen et al. 2016, section 2.3). The residual blocks that follow carry the
    same copies; the first plain block (or the head) after them reads unit g(j) divided by how many copies
    of it there are, and so does the reader of every block that concatenates the widened output (a skip
    connection by concatenation carries the copies on). A block joined by an addition keeps its width (the
    addition needs the same channels on both sides).

    Exact copies read with equal weights receive equal gradients and stay copies for ever: the wider layer would
    train like the narrow one. Net2Net breaks the symmetry with noise on the replicated weights, which makes the
    function only approximately the same; here the noise goes where it cancels exactly: each weight that reads a
    copied unit is split between its n copies as w / n + e_j, with Gaussian e_j (standard deviation ``noise`` times
    that of the reader layer's whole weight tensor, far larger than Net2Net's small noise) centred so that the e_j
    of one unit's copies sum to zero. The copies are read differently, so they get different gradients from the
    first step, while the function is preserved up to float32 rounding (outputs within 1e-5, about 1e-7 in
    practice). ``noise`` sets how fast the copies separate, not how well the function is kept; ``noise=0`` is the
    plain division, whose copies never separate. (NASH's alternative, new units with random incoming and zero
    outgoing weights, is exact too but starts the new units from nothing learned.)
    """
    _check_layer(model, layer)
    spec = list(model.spec)
    old = spec[layer]
    refusal = widen_refusal(spec, layer)
    if refusal:
        raise NASInputError(refusal)
    if not isinstance(new_width, (int, np.integer)) or new_width <= old.channels:
        raise NASInputError(f"new_width must be an integer above the current {old.channels}, "
                            f"got {new_width!r}")
    if not isinstance(noise, (int, float, np.number)) or not noise >= 0:
        raise NASInputError(f"noise must be a number of at least 0, got {noise!r}")
    g = np.concatenate([np.arange(old.channels), rng.integers(0, old.channels, new_width - old.channels)])
    outs = out_channels(spec)
    chain = _chain(spec, layer)
    # which old output channel each new output channel copies, for every block whose output changed
    maps = {b: np.concatenate([g, np.arange(old.channels, outs[layer])]) for b in chain}
    for j in _widened(spec, layer)[len(chain):]:  # in order: a block's sources come before it
        offsets = np.cumsum([spec[j].channels] + [outs[s] for s in spec[j].cats])
        maps[j] = np.concatenate([np.arange(spec[j].channels)] + [
            maps[s] + start if s in maps else np.arange(start, start + outs[s])
            for s, start in zip(spec[j].cats, offsets[:-1])])
    spec[layer] = old._replace(channels=int(new_width))
    for b in chain[1:]:  # residual blocks keep their input's width
        spec[b] = spec[b]._replace(channels=int(new_width) + outs[layer] - old.channels)
    device = next(model.parameters()).device
    wide = MorphNet(spec, model.num_classes, model.in_channels).to(device)
    readers = [b + 1 for b in maps if b + 1 < len(spec)]  # blocks whose input is a changed output
    changed = {f"blocks.{b}.conv.weight" for b in readers} | ({"head.weight"} if len(spec) - 1 in maps else set())
    wide.load_state_dict({k: v for k, v in model.state_dict().items() if k not in changed
                          and not any(k.startswith(f"blocks.{j}.") for j in chain)}, strict=False)

    def as_index(m):
        return torch.as_tensor(m, device=device)

    def counts_of(m, size):
        return torch.tensor(np.bincount(m, minlength=size)[m], dtype=torch.float32, device=device)

    def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, rows):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[rows])
        dst.num_batches_tracked.copy_(src.num_batches_tracked)

    for j in sorted(set(chain) | set(readers)):
        src, dst = model.blocks[j], wide.blocks[j]
        rows = as_index(g if j == layer else maps[layer]) if j in chain else None
        w = src.conv.weight if rows is None else src.conv.weight[rows]  # replicate the output units
        if j - 1 in maps:  # it reads a changed output: split the columns of each copied unit
            w = _split(w, as_index(maps[j - 1]), counts_of(maps[j - 1], outs[j - 1]), noise, rng)
        dst.conv.weight.copy_(w)
        if rows is not None:
            copy_bn(dst.bn, src.bn, rows)
    if len(spec) - 1 in maps:
        m = maps[len(spec) - 1]
        wide.head.weight.copy_(_split(model.head.weight, as_index(m), counts_of(m, outs[-1]), noise, rng))
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
    try:
        h = _run(prefix, x.to(next(model.parameters()).device))
    except ValueError as e:  # a batch norm in train mode needs more than one value per channel
        raise NASInputError(f"x must give the batch norms up to block {after_layer} more than one value per "
                            f"channel (more images, or larger ones): {e}") from e
    return h.mean(dim=(0, 2, 3)).cpu(), h.var(dim=(0, 2, 3), unbiased=False).cpu()


@torch.no_grad()
def _insert(model: MorphNet, after_layer: int, layer: Layer, init) -> MorphNet:
    _check_layer(model, after_layer)
    spec = [l._replace(adds=tuple(s + (s > after_layer) for s in l.adds),  # the blocks after it move up by one
                       cats=tuple(s + (s > after_layer) for s in l.cats)) for l in model.spec]
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
    the identity in eval mode only. The skip connections of the blocks after it keep their sources (the new
    block does not pool, so the maps they join keep their size).
    Unlike widening, the identity (Net2DeeperNet, Chen et al. 2016, section 2.4) has no symmetry to break:
    each new unit reads a different channel, so the units get different gradients from the first step and
    need no noise.
    """
    check_positive("kernel", kernel)
    if kernel % 2 == 0:
        raise NASInputError(f"kernel must be odd so that padding keeps the map size, got {kernel!r}")
    _check_layer(model, after_layer)
    c = out_channels(model.spec)[after_layer]
    mean, var = _input_stats(model, after_layer, x, c)

    def init(block: Block):
        block.conv.weight.copy_(_identity_kernel(c, kernel))
        block.bn.running_mean.copy_(mean)
        block.bn.running_var.copy_(var)
        block.bn.weight.copy_(torch.sqrt(var + block.bn.eps))
        block.bn.bias.copy_(mean)

    return _insert(model, after_layer, Layer(c, kernel), init)


def _joined(layer: Layer, source: int, mode: str) -> Layer:
    """``layer`` also joining block ``source``'s output by ``mode``."""
    return layer._replace(adds=layer.adds + ((source,) if mode == "add" else ()),
                          cats=layer.cats + ((source,) if mode == "concat" else ()))


def skip_refusal(spec, source: int, target: int, mode: str) -> str | None:
    """Why the skip connection ``source`` -> ``target`` by ``mode`` cannot be added (None if it can)."""
    if mode not in SKIP_MODES:
        return f"mode must be one of {SKIP_MODES}, got {mode!r}"
    if not all(isinstance(b, (int, np.integer)) and 0 <= b < len(spec) for b in (source, target)):
        return f"source and target must be block indices from 0 to {len(spec) - 1}, got {source!r}, {target!r}"
    layer = spec[target]
    if source in layer.adds + layer.cats:
        return f"block {target} joins block {source}'s output already"
    if mode == "concat" and any(target in l.adds + l.cats for l in spec):
        return (f"block {target}'s output is joined by a later block, whose input would change with it: "
                "concatenate into another block")
    try:  # the rest is the spec's own rules (sizes, channels, a residual reader that keeps its width)
        check_spec(list(spec[:target]) + [_joined(layer, source, mode)] + list(spec[target + 1:]))
    except NASInputError as e:
        return str(e)
    return None


@torch.no_grad()
def add_skip(model: MorphNet, source: int, target: int, mode: str = "add") -> MorphNet:
    """A copy of ``model`` in which block ``target`` also takes block ``source``'s output (NASH's skip connection
    from one layer to another; Elsken, Metzen & Hutter 2017), computing the same function.

    ``mode="add"`` is their network morphism Type IV: the target's batch-normalised convolution N(x) becomes
    ``lam * N(x) + (1 - lam) * out_source`` with a new trained ``lam`` that starts at 1, before the ReLU; it
    needs the same channels on both sides. ``mode="concat"`` is Type II: the source's output is appended to the
    target's output channels, and the block (or the head) that reads them starts with zero weights on the
    appended ones; in terms of layers, the concatenation feeds the input of the block after ``target``, so a
    concatenation "from block i to block j" here is one into layer j + 1's input. Both add no layer; they need
    the two maps to be of the same size (no max-pool between the source's output and the target's). A residual
    block (``r`` in a spec) is another way to a skip: a deepening with a skip around the new layer, not a
    connection between two layers already there; the climb does not make one.
    """
    spec = list(model.spec)
    refusal = skip_refusal(spec, source, target, mode)
    if refusal:
        raise NASInputError(f"cannot add a skip connection from block {source} to block {target} by {mode}: "
                            f"{refusal}")
    spec[target] = _joined(spec[target], source, mode)
    device = next(model.parameters()).device
    joined = MorphNet(spec, model.num_classes, model.in_channels).to(device)
    state = dict(model.state_dict())
    if mode == "add":
        old = state.get(f"blocks.{target}.lam", torch.ones(0, device=device))
        state[f"blocks.{target}.lam"] = torch.cat([old, torch.ones(1, device=device)])
    else:
        key = f"blocks.{target + 1}.conv.weight" if target + 1 < len(spec) else "head.weight"
        w = state[key]
        extra = out_channels(spec)[target] - w.shape[1]
        state[key] = torch.cat([w, w.new_zeros((w.shape[0], extra) + tuple(w.shape[2:]))], dim=1)
    joined.load_state_dict(state)
    return joined


def skip_options(model: MorphNet, max_channels: int | None = None) -> dict:
    """The skip connections ``add_skip`` can add to ``model``: {mode: [(source, target), ...]}; a concatenation
    whose output would exceed ``max_channels`` is left out."""
    spec, outs = model.spec, out_channels(model.spec)
    options = {mode: [] for mode in SKIP_MODES}
    for target in range(1, len(spec)):
        for source in range(target):
            for mode in SKIP_MODES:
                if mode == "concat" and max_channels is not None and outs[target] + outs[source] > max_channels:
                    continue
                if skip_refusal(spec, source, target, mode) is None:
                    options[mode].append((source, target))
    return options


def random_morphism(model: MorphNet, rng: np.random.Generator, x: torch.Tensor | None = None,
                    kinds=MORPHISMS, max_channels: int = 64, max_layers: int = 8) -> tuple:
    """One random morphism among ``kinds`` that the size limits allow: (new model, description).

    The kind is drawn uniformly among those possible; a widening picks a block and multiplies its convolution's
    channels by 1.5 or 2 within ``max_channels`` (a bound on the convolution: a block that concatenates other
    outputs can then output more); a deepening inserts an identity block (kernel 3 or 5) after a random block
    while the network has fewer than ``max_layers`` blocks; a skip picks addition or concatenation (each where
    some pair of blocks allows it), then a pair of blocks (a concatenation keeps the joined output within
    ``max_channels``). A skip adds no layer.
    """
    for kind in kinds:
        check_choice("morphism", kind, MORPHISMS)
    spec = model.spec
    plain = [i for i, layer in enumerate(spec) if layer.channels < max_channels
             and widen_refusal(spec, i) is None]
    skips = {m: pairs for m, pairs in skip_options(model, max_channels).items() if pairs} if "skip" in kinds else {}
    possible = {"widen": bool(plain), "deepen": len(spec) < max_layers, "skip": bool(skips)}
    options = [k for k in kinds if possible[k]]
    if not options:
        tied = any(layer.channels < max_channels and not layer.residual for layer in spec)
        return model, "none (size limits reached" + (", other widths fixed by additions)" if tied else ")")
    kind = options[int(rng.integers(len(options)))]
    if kind == "widen":
        i = plain[int(rng.integers(len(plain)))]
        c = spec[i].channels
        width = min(max_channels, max(c + 1, int(round(c * rng.choice([1.5, 2.0])))))
        return net2wider(model, i, width, rng), f"widen {i} to {width}"
    if kind == "deepen":
        i = int(rng.integers(len(spec)))
        return net2deeper(model, i, kernel=int(rng.choice([3, 5])), x=x), f"deepen after {i}"
    mode = sorted(skips)[int(rng.integers(len(skips)))]
    source, target = skips[mode][int(rng.integers(len(skips[mode])))]
    word = "addition" if mode == "add" else "concatenation"
    return add_skip(model, source, target, mode), f"skip {source} to {target} by {word}"


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
