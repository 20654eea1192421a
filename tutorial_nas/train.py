"""Train and evaluate any ``nn.Module`` under a budget, and return a record of what happened.

SGD with Nesterov momentum and a cosine schedule by default; on CUDA mixed precision and channels_last.
The batches come from ``data.batches`` (device tensors, no DataLoader). On the CPU the same seed gives the
same record, which is what makes a search repeatable.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Dataset, batches
from .errors import NASInputError
from .progress import tqdm

# Where ``amp`` applies, in which precision: float16 with loss scaling on CUDA. The CPU is left out (its
# bfloat16 autocast is slower than float32 on most CPUs); a test adds it to run this same code path there.
AMP_DTYPES = {"cuda": torch.float16}


@dataclass
class TrainConfig:
    """The recipe. ``epochs`` may be fractional (0.5 = half an epoch); ``data_fraction`` uses less data.
    ``weight_decay`` applies to the weights of convolutions and linear layers, not to biases or batch-norm scales
    and shifts (parameters of one dimension); DARTS' and NAS-Bench-201's training scripts decay every parameter."""

    epochs: float = 3
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    label_smoothing: float = 0.0
    data_fraction: float = 1.0
    augment: bool = True
    grad_clip: float | None = 5.0
    seed: int = 0
    amp: bool = True  # mixed precision on the devices of AMP_DTYPES (CUDA), ignored elsewhere
    channels_last: bool = True  # faster convolutions on CUDA and on the CPU alike
    eval_batch_size: int = 1024

    def check(self) -> "TrainConfig":
        def number(name, integer=False):  # True and False are ints to Python, never a size or a rate here
            value = getattr(self, name)
            kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise NASInputError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
            return value

        if not 0 < number("epochs") < math.inf:
            raise NASInputError(f"epochs must be a finite number above zero, got {self.epochs!r}; a budget of "
                                "zero or less trains nothing")
        for name in ("batch_size", "eval_batch_size"):
            if number(name, integer=True) <= 0:
                raise NASInputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < number("data_fraction") <= 1:
            raise NASInputError(f"data_fraction must be in (0, 1], got {self.data_fraction!r}")
        if not 0 < number("lr") < math.inf:
            raise NASInputError(f"lr must be above zero, got {self.lr!r}")
        if not 0 <= number("momentum") < 1:
            raise NASInputError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not 0 <= number("weight_decay") < math.inf:
            raise NASInputError(f"weight_decay must be zero or above, got {self.weight_decay!r}")
        if not 0 <= number("label_smoothing") < 1:
            raise NASInputError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.grad_clip is not None and not 0 < number("grad_clip") < math.inf:
            raise NASInputError(f"grad_clip must be above zero, or None for no clipping, got {self.grad_clip!r}")
        number("seed", integer=True)
        return self


@dataclass
class TrainRecord:
    """What one training run produced: the curve, the final numbers and the cost."""

    train_loss: list = field(default_factory=list)
    valid_acc: list = field(default_factory=list)
    valid_loss: list = field(default_factory=list)
    final_valid_acc: float = float("nan")
    test_acc: float = float("nan")
    seconds: float = 0.0
    params: int = 0
    flops: int = 0
    epochs: float = 0.0
    flops_seconds: float = 0.0  # spent counting FLOPs (the first count in a process imports torch's counter)
    test_seconds: float = 0.0  # spent on the test split, which a search never reads to choose

    @property
    def unpaid_seconds(self) -> float:
        """The measurements of this call that no search pays for: the test evaluation (a search selects on
        validation accuracy; NAS-Bench-201's training times leave evaluation out too) and the FLOP count."""
        return self.flops_seconds + self.test_seconds

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple) -> int:
    """Floating-point operations of one forward pass of one image, counted by torch's FlopCounterMode: the
    convolutions and matrix products only, 2 per multiply-add (batch norm, pooling, activations and additions
    count nothing). NAS-Bench-201 and DARTS report multiply-adds, half this count for the same network."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros((1, *input_shape), device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple:
    """(mean cross-entropy loss, accuracy in %) of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for xb, yb in batches(x, y, batch_size):
        out = model(xb).float()
        total_loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
    model.train(was_training)
    n = max(1, len(y))
    return total_loss / n, 100.0 * correct / n


def train(model: nn.Module, data: Dataset, config: TrainConfig | None = None, progress: bool = True,
          test: bool = True, on_epoch=None, **overrides) -> TrainRecord:
    """Train ``model`` on ``data.train``, validate after every epoch, test at the end.

    ``overrides`` replace fields of ``config`` (``train(model, data, epochs=2)``). ``on_epoch(epoch, record)``
    is called after each epoch; if it returns ``True`` training stops there (early stopping).
    """
    config = config or TrainConfig()
    if overrides:
        unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise NASInputError(f"unknown training option(s) {sorted(unknown)}; "
                                f"allowed: {', '.join(TrainConfig.__dataclass_fields__)}")
        config = TrainConfig(**{**asdict(config), **overrides})
    config.check()
    if data.device != next(model.parameters()).device:
        model = model.to(data.device)
    amp_dtype = AMP_DTYPES.get(data.device.type) if config.amp else None
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.data_fraction < 1:
        data = data.subset(config.data_fraction, seed=config.seed)

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    n = len(data.train_y)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    scaler = torch.amp.GradScaler(data.device.type, enabled=amp_dtype == torch.float16)  # bfloat16 needs none
    augment = data.augment if config.augment else None

    record = TrainRecord(params=count_params(model))
    start = time.perf_counter()
    step = 0
    bar = tqdm(total=total_steps, desc="train", disable=not progress, leave=False)
    model.train()
    while step < total_steps:
        running, seen = 0.0, 0
        for xb, yb in batches(data.train_x, data.train_y, config.batch_size, shuffle=True, generator=gen,
                              augment=augment):
            if config.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(data.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                loss = F.cross_entropy(model(xb), yb, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            running += loss.item() * len(yb)
            seen += len(yb)
            step += 1
            bar.update(1)
            if step >= total_steps:
                break
        record.train_loss.append(running / max(1, seen))
        vloss, vacc = evaluate(model, data.valid_x, data.valid_y, config.eval_batch_size)
        record.valid_loss.append(vloss)
        record.valid_acc.append(vacc)
        bar.set_postfix(valid_acc=f"{vacc:.1f}")
        if on_epoch is not None and on_epoch(len(record.valid_acc), record):
            break
    bar.close()
    record.epochs = step / steps_per_epoch
    record.seconds = time.perf_counter() - start
    record.final_valid_acc = record.valid_acc[-1]
    if test:
        testing = time.perf_counter()
        record.test_acc = evaluate(model, data.test_x, data.test_y, config.eval_batch_size)[1]
        record.test_seconds = time.perf_counter() - testing
    counting = time.perf_counter()
    record.flops = count_flops(model, data.input_shape)
    record.flops_seconds = time.perf_counter() - counting  # a measurement, not training: no search pays for it
    return record
