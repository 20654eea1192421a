"""Train the seeds of one cell as one computation: S copies of a network stacked along the channels.

A benchmark build trains every cell with several seeds. The networks of one cell share their structure, so
S of them can run as one network with S times the channels in which every convolution is grouped by seed:
seed s reads only its own channels, gets its own batches, its own batch-norm statistics and its own loss, and
the summed loss gives each seed exactly the gradient it would get alone. The small convolutions of the build
(8 to 32 channels on 7x7 maps) are dominated by per-operation overhead on a CPU; one grouped operation in
place of S small ones pays that overhead once (``benchmarks/build_speed.py`` measures the gain side by side).

    models = [make(seed) for seed in seeds]           # same structure, each initialised from its own seed
    records = train_stacked(models, data, [recipe.train_config(s) for s in seeds])

The records equal those of ``train(model_s, data, config_s)`` for each seed up to floating-point rounding
(tested), because everything ``train`` does per seed is done here per seed: the batch order from the seed's
generator, SGD with Nesterov momentum and weight decay on the weights only, the cosine schedule, and gradient
clipping by each seed's own norm. What stacks: networks whose only layers with parameters are ``Conv2d``,
``BatchNorm2d`` and ``Linear`` and whose other layers never mix channels (sums, pooling, identity, zero), as the
NAS-Bench-201 networks of ``spaces/cell.py``. Mixed precision is not used (the build runs in float32).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Dataset, batches
from ..errors import NASInputError
from ..ops import FactorizedReduce
from ..train import TrainRecord, count_flops, count_params

# layers whose forward concatenates or reshapes channels: seed blocks would not stay apart
_MIXING = (FactorizedReduce, nn.Unflatten, nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle)


class StackedLinear(nn.Module):
    """S linear layers side by side: input (B, S*in) -> output (B, S*out), seed s reading its own block."""

    def __init__(self, layers: list):
        super().__init__()
        self.S = len(layers)
        self.weight = nn.Parameter(torch.stack([m.weight.detach().clone() for m in layers]))  # (S, out, in)
        self.bias = nn.Parameter(torch.cat([m.bias.detach().clone() for m in layers]))  # (S*out,)

    def forward(self, x):
        b = x.shape[0]
        out = torch.einsum("bsi,soi->bso", x.reshape(b, self.S, -1), self.weight)
        return out.reshape(b, -1) + self.bias


def _stacked_layer(layers: list) -> nn.Module:
    m, S = layers[0], len(layers)
    if isinstance(m, nn.Conv2d):
        new = nn.Conv2d(S * m.in_channels, S * m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        groups=S * m.groups, bias=m.bias is not None)
        with torch.no_grad():
            new.weight.copy_(torch.cat([x.weight for x in layers]))
            if m.bias is not None:
                new.bias.copy_(torch.cat([x.bias for x in layers]))
        return new
    if isinstance(m, nn.BatchNorm2d):
        new = nn.BatchNorm2d(S * m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
        with torch.no_grad():
            if m.affine:
                new.weight.copy_(torch.cat([x.weight for x in layers]))
                new.bias.copy_(torch.cat([x.bias for x in layers]))
            if m.track_running_stats:
                new.running_mean.copy_(torch.cat([x.running_mean for x in layers]))
                new.running_var.copy_(torch.cat([x.running_var for x in layers]))
        return new
    return StackedLinear(layers)


class BoxMean3(nn.Module):
    """``AvgPool2d(3, 1, 1, count_include_pad=False)`` as a fixed depthwise convolution of ones divided by the
    count of cells in each window: the same numbers (exactly, in float32), about twice as fast on a CPU."""

    def __init__(self):
        super().__init__()
        self._cache: dict = {}

    def forward(self, x):
        key = (x.shape[1], *x.shape[-2:], x.dtype, x.device)
        if key not in self._cache:
            c, h, w = key[:3]
            ones = x.new_ones(c, 1, 3, 3)
            self._cache[key] = (ones, F.conv2d(x.new_ones(1, 1, h, w), ones[:1], padding=1))
        ones, count = self._cache[key]
        return F.conv2d(x, ones, padding=1, groups=x.shape[1]) / count


def _is_box_mean3(m: nn.Module) -> bool:
    return (isinstance(m, nn.AvgPool2d) and m.kernel_size in (3, (3, 3)) and m.stride in (1, (1, 1))
            and m.padding in (1, (1, 1)) and not m.count_include_pad and not m.ceil_mode
            and m.divisor_override is None)


def stack(models: list) -> nn.Module:
    """One network running ``models`` (same structure) side by side on S times the channels."""
    if not models:
        raise NASInputError("stack needs at least one network")
    out = copy.deepcopy(models[0])
    named = [dict(m.named_modules()) for m in models]
    shapes = [[(n, p.shape) for n, p in m.named_parameters()] for m in models]
    if any(d.keys() != named[0].keys() for d in named) or any(s != shapes[0] for s in shapes):
        raise NASInputError("only networks of the same structure can be stacked (the seeds of one cell)")
    for name, m in list(out.named_modules()):
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            parent, _, leaf = name.rpartition(".")
            setattr(out.get_submodule(parent), leaf, _stacked_layer([d[name] for d in named]))
        elif _is_box_mean3(m):
            parent, _, leaf = name.rpartition(".")
            setattr(out.get_submodule(parent), leaf, BoxMean3())
        elif any(True for _ in m.parameters(recurse=False)) or isinstance(m, _MIXING):
            raise NASInputError(f"layer {name} ({type(m).__name__}) cannot be stacked by seed")
    return out


def _by_seed(t: torch.Tensor, S: int) -> torch.Tensor:
    """A stacked tensor as (S, ...), a view (also in channels_last): every stacked tensor is seed-major in dim 0."""
    return t.unflatten(0, (S, -1))


@torch.no_grad()
def _clip_per_seed(params: list, S: int, max_norm: float) -> None:
    """``clip_grad_norm_`` applied to each seed's own gradients, as separate trainings would."""
    grads = [_by_seed(p.grad, S) for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (params, S)
    coef = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)
    if bool((coef < 1).any()):  # no seed over the limit: nothing to scale
        for g in grads:
            g.mul_(coef.view(S, *[1] * (g.ndim - 1)))


@torch.no_grad()
def _evaluate(model, x, y, S: int, batch_size: int) -> tuple:
    """Per seed: (mean cross-entropy, accuracy in %) in eval mode; the same images for every seed."""
    was = model.training
    model.eval()
    loss, correct = torch.zeros(S), torch.zeros(S)
    for xb, yb in batches(x, y, batch_size):
        out = model(xb.repeat(1, S, 1, 1)).float().reshape(len(yb), S, -1)
        loss += F.cross_entropy(out.permute(0, 2, 1), yb[:, None].expand(-1, S), reduction="none").sum(0)
        correct += (out.argmax(2) == yb[:, None]).sum(0)
    model.train(was)
    n = max(1, len(y))
    return (loss / n).tolist(), (100.0 * correct / n).tolist()


def train_stacked(models: list, data: Dataset, configs: list, test: bool = True) -> list:
    """Train ``models[s]`` with ``configs[s]`` for every seed s at once; one TrainRecord per seed.

    The configs may differ only in ``seed`` (the recipe is one); ``seconds`` of each record is the shared wall
    time divided by S, what one seed cost.
    """
    S = len(models)
    if S != len(configs) or S == 0:
        raise NASInputError(f"one config per network: got {S} networks and {len(configs)} configs")
    base = configs[0].check()
    if any({**vars(c), "seed": 0} != {**vars(base), "seed": 0} for c in configs):
        raise NASInputError("stacked seeds share one recipe: the configs may differ only in their seed")
    if base.data_fraction < 1:
        raise NASInputError("train_stacked trains on the whole training split (data_fraction=1)")
    params_one, flops_one = count_params(models[0]), count_flops(models[0], data.input_shape)
    model = stack(models).to(data.device)
    if base.channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = len(data.train_y)
    steps_per_epoch = max(1, math.ceil(n / base.batch_size))
    total_steps = max(1, round(base.epochs * steps_per_epoch))
    # weight decay on what is a weight in the single network (convolution and linear weights), as ``train``
    decay = [p for m in model.modules() if isinstance(m, (nn.Conv2d, StackedLinear)) for p in [m.weight]]
    ids = {id(p) for p in decay}
    no_decay = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": base.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=base.lr, momentum=base.momentum, nesterov=base.nesterov, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    augment = data.augment if base.augment else None
    # the stacked network's activations are S times one network's: evaluate S times fewer images at once (the
    # same memory per batch; the numbers do not depend on it, and smaller tensors stay in the CPU's cache)
    eval_batch = max(1, base.eval_batch_size // S)
    gens = [torch.Generator().manual_seed(c.seed) for c in configs]
    params = list(model.parameters())
    records = [TrainRecord(params=params_one, flops=flops_one) for _ in range(S)]
    start = time.perf_counter()
    step = 0
    model.train()
    while step < total_steps:
        running, seen = torch.zeros(S), 0
        streams = [batches(data.train_x, data.train_y, base.batch_size, shuffle=True, generator=g, augment=augment)
                   for g in gens]
        for pairs in zip(*streams):
            xb = torch.cat([p[0] for p in pairs], dim=1)
            yb = torch.stack([p[1] for p in pairs], dim=1)  # (B, S)
            if base.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            out = model(xb).reshape(len(yb), S, -1)
            losses = F.cross_entropy(out.permute(0, 2, 1), yb, label_smoothing=base.label_smoothing,
                                     reduction="none").mean(0)  # (S,): each seed's mean loss
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # seeds share no parameter: each gets the gradient of its own loss
            if base.grad_clip:
                _clip_per_seed(params, S, base.grad_clip)
            opt.step()
            sched.step()
            running += losses.detach() * len(yb)
            seen += len(yb)
            step += 1
            if step >= total_steps:
                break
        vloss, vacc = _evaluate(model, data.valid_x, data.valid_y, S, eval_batch)
        for s, rec in enumerate(records):
            rec.train_loss.append(float(running[s]) / max(1, seen))
            rec.valid_loss.append(vloss[s])
            rec.valid_acc.append(vacc[s])
    seconds = (time.perf_counter() - start) / S
    tacc = _evaluate(model, data.test_x, data.test_y, S, eval_batch)[1] if test else [math.nan] * S
    for s, rec in enumerate(records):
        rec.epochs = step / steps_per_epoch
        rec.seconds = seconds
        rec.final_valid_acc = rec.valid_acc[-1]
        rec.test_acc = tacc[s]
    return records
