"""MaskConnect (Ahmed & Torresani, ECCV 2018): which earlier modules feed each module, learned by gradient descent.

The network is a stem followed by ``modules`` blocks of the same shape. Block j reads
x_j = sum_i m_ij * h_i over its candidate inputs h_0 = stem output, h_1 .. h_j = outputs of blocks 0 .. j-1,
where m_j is a binary mask with exactly K = fan_in ones (the paper's fan-in; a block with fewer than K
candidates reads all of them). The classifier reads the last block.

Each block keeps a real-valued mask m~_j in [0, 1]. Training follows the paper's Sec. 3.3, per minibatch:
  1. forward: sample the binary m_j by drawing K distinct inputs from the multinomial with probabilities
     m~_j / sum(m~_j) (``sample_mask``);
  2. backward: the gradient of the loss w.r.t. the binary masks, dE/dm_ij = <dE/dx_j, h_i>, which is
     defined for the inputs left out too (straight-through: m enters the graph as m + m~ - m~.detach(), so
     this gradient lands on m~);
  3. update: the weights by SGD, m~ <- m~ - mask_lr * dE/dm, then m~ is clipped to [0, 1].
At the end the connectivity is the K inputs with the largest m~ per block (``derive``); the paper then
fine-tunes the weights with that connectivity fixed, which ``train`` can do on ``fixed=True``.

The baseline: random fixed K-hot connectivity (``random_connectivity``) trained for the same epochs with
``fixed=True``, from the same initial weights (``learned_vs_random``; ``compare_connectivity`` reads the
difference against its standard error).

Where this differs from the paper: the paper's modules are residual blocks (ResNet, whose masks choose among
earlier modules, as here; ResNeXt, whose masks choose among the branches of the previous block); here they are
small ReLU-conv-BN blocks without a shortcut, and the masks choose among all earlier blocks and the stem. Every
sampling probability gets a floor of 1e-6 before it is normalised, so that K distinct inputs can still be drawn
when clipping leaves fewer than K entries above zero; an input clipped to zero thus keeps a chance of about 1e-6
over the sum of its block's mask, where the paper's is zero. The paper also prunes modules whose output no later
module reads; ``derive`` keeps them.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Dataset, batches
from ..errors import NASInputError
from ..progress import tqdm
from ..text import count
from ..train import evaluate

_FLOOR = 1e-6  # the smallest sampling probability, so that K distinct inputs exist after clipping


def sample_mask(real: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A binary mask with min(k, len(real)) ones: that many distinct indices drawn without replacement from
    the multinomial with probabilities proportional to ``real`` (the paper's sampling of the fan-in)."""
    k = min(k, real.numel())
    probs = real.detach().clamp(min=0).cpu().double() + _FLOOR
    picks = torch.multinomial(probs / probs.sum(), k, replacement=False, generator=generator)
    mask = torch.zeros(real.numel(), dtype=real.dtype)
    mask[picks] = 1.0
    return mask.to(real.device)


def block(C: int) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))


class MaskConnectNet(nn.Module):
    """A stem, ``modules`` blocks whose inputs are chosen by masks with ``fan_in`` ones, a classifier.

    ``masks[j]`` is block j's real-valued mask over its j + 1 candidate inputs (stem, blocks 0 .. j-1),
    initialised to 0.5 everywhere: every input is equally likely at first. In training mode each forward pass
    samples fresh binary masks (kept in ``binary`` for inspection); in eval mode, and when ``fixed`` is set,
    it uses the top-K connectivity of ``derive``.
    """

    def __init__(self, num_classes: int, in_channels: int, modules: int = 4, C: int = 8, fan_in: int = 2):
        super().__init__()
        for name, value in (("modules", modules), ("C", C), ("fan_in", fan_in), ("num_classes", num_classes),
                            ("in_channels", in_channels)):
            if not isinstance(value, int) or value <= 0:
                raise NASInputError(f"{name} must be a positive integer, got {value!r}")
        self.fan_in, self.fixed, self.binary = fan_in, False, []
        self.generator: torch.Generator | None = None  # the sampler's random stream; set by the trainer
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.blocks = nn.ModuleList(block(C) for _ in range(modules))
        self.masks = nn.ParameterList(nn.Parameter(torch.full((j + 1,), 0.5)) for j in range(modules))
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                  nn.Linear(4 * C, num_classes))  # a 2x2 grid keeps where the strokes are

    def mask_parameters(self) -> list:
        return list(self.masks)

    def weight_parameters(self) -> list:
        ids = {id(m) for m in self.masks}
        return [p for p in self.parameters() if id(p) not in ids]

    def binary_masks(self) -> list:
        """Sampled masks while training, the derived top-K ones otherwise."""
        if self.training and not self.fixed:
            return [sample_mask(m, self.fan_in, self.generator) for m in self.masks]
        return [_top_k(m, self.fan_in) for m in self.masks]

    def forward(self, x):
        self.binary = self.binary_masks()
        states = [self.stem(x)]
        for blk, real, binary in zip(self.blocks, self.masks, self.binary):
            m = binary + real - real.detach()  # the value of the binary mask, the gradient onto the real one
            states.append(blk(sum(m[i] * h for i, h in enumerate(states))))
        return self.head(states[-1])


def _top_k(real: torch.Tensor, k: int) -> torch.Tensor:
    """1 on the min(k, n) largest entries (ties: the lower index), 0 elsewhere."""
    k = min(k, real.numel())
    values = real.detach().tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    mask = torch.zeros_like(real.detach())
    mask[order] = 1.0
    return mask


@torch.no_grad()
def recalibrate(net: MaskConnectNet, x: torch.Tensor, batch_size: int = 64, n_batches: int = 8) -> None:
    """Re-estimate the BN statistics for the derived connectivity: during training they average over the
    sampled ones, and evaluation of the top-K network with them would mislead."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    fixed, net.fixed = net.fixed, True
    net.train()
    for m in norms:
        m.reset_running_stats()
        m.momentum, m.saved_momentum = None, m.momentum  # None: a plain average over the batches
    for (xb, _), _ in zip(batches(x, x[:, 0, 0, 0], batch_size), range(n_batches)):
        net(xb)
    for m in norms:
        m.momentum = m.saved_momentum
    net.fixed = fixed
    net.eval()


def derive(net: MaskConnectNet) -> list:
    """The learned connectivity: for each block, the sorted indices of its top-K inputs by real-valued mask
    (0 = the stem, i = block i-1)."""
    return [sorted(int(i) for i in _top_k(m, net.fan_in).nonzero().flatten()) for m in net.masks]


def train_maskconnect(data: Dataset, epochs: float = 1.0, net: MaskConnectNet | None = None, modules: int = 4,
                      C: int = 8, fan_in: int = 2, batch_size: int = 16, lr: float = 0.2,
                      mask_lr: float = 0.05, seed: int = 0, fixed: bool = False, progress: bool = False):
    """Train weights and connectivity together (the paper's Sec. 3.3); returns ``(net, connectivity)``.

    ``net`` defaults to a new ``MaskConnectNet(data.num_classes, data.in_channels, modules, C, fan_in)``.
    ``epochs`` may be fractional. The weights take SGD with momentum 0.9 and a cosine schedule; the masks
    take plain gradient steps of size ``mask_lr`` on the binary masks' gradient and are clipped to [0, 1].
    ``fixed=True`` trains only the weights on the derived connectivity (the paper's final fine-tuning).
    At the end the BN statistics are re-estimated for the derived connectivity (``recalibrate``) and
    ``net.valid_acc`` is the derived network's validation accuracy.
    """
    if not isinstance(epochs, (int, float)) or not 0 < epochs < math.inf:
        raise NASInputError(f"epochs must be a finite number above zero, got {epochs!r}")
    if not 0 < mask_lr < math.inf or not 0 < lr < math.inf:
        raise NASInputError(f"lr and mask_lr must be above zero, got lr={lr!r}, mask_lr={mask_lr!r}")
    torch.manual_seed(seed)
    net = (net or MaskConnectNet(data.num_classes, data.in_channels, modules, C, fan_in)).to(data.device)
    net.generator, net.fixed = torch.Generator().manual_seed(seed), fixed
    gen = torch.Generator().manual_seed(seed)
    total = max(1, round(epochs * math.ceil(len(data.train_y) / batch_size)))
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    step, bar = 0, tqdm(total=total, desc="maskconnect", disable=not progress, leave=False)
    net.train()
    while step < total:
        for xb, yb in batches(data.train_x, data.train_y, batch_size, shuffle=True, generator=gen,
                              augment=data.augment):
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            for m in net.masks:
                m.grad = None
            loss.backward()
            opt.step()
            sched.step()
            if not fixed:
                with torch.no_grad():  # m~ <- clip(m~ - mask_lr * dE/dm, 0, 1)
                    for m in net.masks:
                        if m.grad is not None:  # None: a block that ignores its input (a test's stand-in)
                            m.sub_(mask_lr * m.grad).clamp_(0.0, 1.0)
            step += 1
            bar.update(1)
            if step >= total:
                break
    bar.close()
    recalibrate(net, data.train_x, batch_size)
    net.valid_acc = evaluate(net, data.valid_x, data.valid_y)[1]
    return net, derive(net)


def random_connectivity(net: MaskConnectNet, seed: int = 0) -> list:
    """Give every block a random K-hot mask (K distinct inputs drawn uniformly), so that ``derive`` and training
    with ``fixed=True`` use that connectivity: the baseline of random fixed connectivity. Returns it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.masks:
            m.copy_(sample_mask(torch.ones_like(m), net.fan_in, generator))
    return derive(net)


def learned_vs_random(data: Dataset, epochs: float = 1.0, seeds=(0, 1, 2), modules: int = 4, C: int = 8,
                      fan_in: int = 2, finetune: float | None = None, **options) -> pd.DataFrame:
    """Learned connectivity against random fixed K-hot connectivity, at the same training budget, once per seed.

    Learned: ``train_maskconnect`` for ``epochs`` (weights and masks together), then the paper's fine-tuning of
    the weights on the connectivity it derived (``fixed=True``) for ``finetune`` epochs (default: ``epochs``).
    Random: ``random_connectivity``, then the same two trainings on it (``fixed=True``): ``epochs``, then
    ``finetune`` with the schedule restarted, so that both sides follow the same learning-rate schedule. Both
    start from the same initial weights and are scored the same way, on their own fixed connectivity. One row per
    network: ``connectivity`` (learned or random), ``seed``, ``valid_acc`` (the derived network's), ``inputs``
    (each block's inputs)."""
    finetune = epochs if finetune is None else finetune
    rows = []
    for seed in seeds:
        net, inputs = train_maskconnect(data, epochs, modules=modules, C=C, fan_in=fan_in, seed=seed, **options)
        if finetune:
            net, _ = train_maskconnect(data, finetune, net=net, seed=seed, fixed=True, **options)
        rows.append({"connectivity": "learned", "seed": seed, "valid_acc": net.valid_acc, "inputs": inputs})
        torch.manual_seed(seed)  # the initial weights of the learned run's network
        net = MaskConnectNet(data.num_classes, data.in_channels, modules, C, fan_in)
        inputs = random_connectivity(net, seed)
        net, _ = train_maskconnect(data, epochs, net=net, seed=seed, fixed=True, **options)
        if finetune:  # the learned side's fine-tuning restarts the schedule: so does the random side's
            net, _ = train_maskconnect(data, finetune, net=net, seed=seed, fixed=True, **options)
        rows.append({"connectivity": "random", "seed": seed, "valid_acc": net.valid_acc, "inputs": inputs})
    return pd.DataFrame(rows)


def compare_connectivity(runs: pd.DataFrame) -> tuple:
    """``(table, verdict)`` of a ``learned_vs_random`` frame: the mean validation accuracy and its standard
    error per connectivity, and a t-test of learned minus random at the 5 % level. The two networks of one seed
    start from the same initial weights and see the same batches (``learned_vs_random``), so where both sides hold
    the same seeds the test is paired: a t-test of the per-seed differences, with n - 1 degrees of freedom (the
    seed's share of the accuracy, common to both sides, drops out of the difference). Where the seeds differ it is
    Welch's t-test of the two means. With a few seeds the t quantile, not 2, is the width of a 95 % interval:
    4.3 for two degrees of freedom. ``table.attrs["paired_se"]`` is the paired standard error (None where the
    test is not paired), to set beside the one the sides' own standard errors give, sqrt(se_l**2 + se_r**2):
    below it where the two sides of a seed move together, above it where they move apart."""
    from scipy.stats import t as student

    table = runs.groupby("connectivity", sort=False)["valid_acc"].agg(
        mean="mean", se=lambda v: v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan, runs="count")
    diff = table.loc["learned", "mean"] - table.loc["random", "mean"]
    learned, random = (runs[runs["connectivity"] == side].set_index("seed")["valid_acc"]
                       for side in ("learned", "random"))
    paired = learned.index.is_unique and random.index.is_unique and set(learned.index) == set(random.index)
    if paired:
        d = learned - random.reindex(learned.index)
        n = len(d)
        se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
        df, test = n - 1, f"paired over {count(n, 'seed')}"
    else:
        se_l, se_r = table.loc["learned", "se"], table.loc["random", "se"]
        se = math.sqrt(se_l ** 2 + se_r ** 2)
        n_l, n_r = table.loc["learned", "runs"], table.loc["random", "runs"]
        if math.isfinite(se) and se > 0:
            df = se ** 4 / (se_l ** 4 / (n_l - 1) + se_r ** 4 / (n_r - 1))  # Welch-Satterthwaite
        test = "Welch"
    table.attrs["paired_se"] = se if paired and math.isfinite(se) else None
    if not math.isfinite(se):
        return table, f"learned minus random: {diff:+.1f} points, one run each: no standard error, no verdict"
    if se == 0:
        return table, (f"learned minus random: {diff:+.1f} points, the same in every seed: no spread to test it "
                       "against" if paired else f"learned minus random: {diff:+.1f} points with no spread over the "
                       "seeds: no test")
    q = float(student.ppf(0.975, df))
    reading = (f"learned minus random: {diff:+.1f} points (standard error {se:.1f}; 95 % interval "
               f"[{diff - q * se:+.1f}, {diff + q * se:+.1f}], {test}, "
               + (count(df, "degree of freedom", "degrees of freedom") if paired else f"{df:.1f} degrees of freedom")
               + ")")
    if abs(diff) <= q * se:
        verdict = f"{reading}: the interval holds 0, no difference shown at this size"
    else:
        verdict = f"{reading}: learned connectivity is {'better' if diff > 0 else 'worse'} than random"
    return table, verdict
