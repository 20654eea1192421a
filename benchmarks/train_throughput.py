"""Training throughput: ``tutorial_nas.train`` against the loop a learner writes from the PyTorch tutorial.

The same small CNN, the same optimiser (SGD, Nesterov momentum, cosine schedule), the same epochs and batch
size, on ``digits`` and ``mnist5k``: (a) ``tutorial_nas.train`` (device-resident tensors, batches by index,
channels_last) and (b) ``TensorDataset`` + ``DataLoader`` + the same optimiser. Runs alternate, (a) (b) (a) (b)
..., so a busy machine slows both alike; the medians and their ratio are printed, with final accuracies.
A third timing bounds what any loop can reach: the same model and optimiser stepped on one fixed batch already
on the device (channels_last, no data path, no validation); its ratio to the plain loop is the ceiling.

    python benchmarks/train_throughput.py [--repeats 3] [--epochs 3] [--batch-size 128]

On a GPU the same script also runs a CIFAR-10-sized batch (3x32x32, random tensors) through both paths.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from tutorial_nas.data import Dataset, load_dataset
from tutorial_nas.profiles import choose_device, describe_device
from tutorial_nas.train import TrainConfig, evaluate, train


def small_cnn(c_in: int, classes: int) -> nn.Module:
    """Three conv layers of 16-32 channels with batch norm: the CNN of the PyTorch tutorials, a bit smaller."""
    return nn.Sequential(
        nn.Conv2d(c_in, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))


def sgd(model: nn.Module, lr: float) -> torch.optim.SGD:
    """The optimiser of both hand-written loops: the one ``measure`` configures ``tutorial_nas.train`` with."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def plain_loop(model: nn.Module, data: Dataset, epochs: int, batch_size: int, lr: float) -> float:
    """The tutorial's loop: a DataLoader over a TensorDataset, one optimiser step per batch, and a validation
    after every epoch, as ``tutorial_nas.train`` does."""
    device = data.device
    loader = DataLoader(TensorDataset(data.train_x.cpu(), data.train_y.cpu()), batch_size=batch_size,
                        shuffle=True)
    opt = sgd(model, lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(loader))
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        acc = evaluate(model, data.valid_x, data.valid_y)[1]
        model.train()
    return acc


def compute_only(model: nn.Module, data: Dataset, steps: int, batch_size: int, lr: float) -> float:
    """Seconds for ``steps`` optimiser steps on one fixed batch already on the device, channels_last, no data
    path and no validation: what the model and optimiser cost alone, the most any training loop can reach."""
    model = model.to(memory_format=torch.channels_last)
    xb = data.train_x[:batch_size].contiguous(memory_format=torch.channels_last)
    yb = data.train_y[:batch_size]
    opt = sgd(model, lr)
    model.train()
    sync(data.device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(data.device)
    return time.perf_counter() - start


def measure(data: Dataset, epochs: int, batch_size: int, repeats: int, lr: float = 0.05) -> dict:
    images = epochs * len(data.train_y)
    steps = epochs * -(-len(data.train_y) // batch_size)
    ours, plain, ceiling, acc_ours, acc_plain = [], [], [], [], []
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, augment=False, grad_clip=None,
                         weight_decay=5e-4)
    for r in range(repeats):
        torch.manual_seed(r)
        model = small_cnn(data.in_channels, data.num_classes).to(data.device)
        rec = train(model, data, config, progress=False, test=False)
        ours.append(images / rec.seconds)
        acc_ours.append(rec.final_valid_acc)
        torch.manual_seed(r)
        model = small_cnn(data.in_channels, data.num_classes).to(data.device)
        sync(data.device)
        start = time.perf_counter()
        acc_plain.append(plain_loop(model, data, epochs, batch_size, lr))
        sync(data.device)
        plain.append(images / (time.perf_counter() - start))
        torch.manual_seed(r)
        model = small_cnn(data.in_channels, data.num_classes).to(data.device)
        ceiling.append(steps * batch_size / compute_only(model, data, steps, batch_size, lr))
    return {"ours": statistics.median(ours), "plain": statistics.median(plain),
            "ratio": statistics.median(ours) / statistics.median(plain),
            "ceiling": statistics.median(ceiling),
            "ceiling_ratio": statistics.median(ceiling) / statistics.median(plain),
            "acc_ours": statistics.mean(acc_ours), "acc_plain": statistics.mean(acc_plain)}


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    device = choose_device()
    print(f"device: {describe_device(device)}, torch {torch.__version__}, "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.repeats} alternating repeats")
    print(f"{'data':10s} {'ours img/s':>11s} {'plain img/s':>12s} {'ratio':>6s} {'acc ours':>9s} {'acc plain':>10s} "
          f"{'compute-only img/s':>19s} {'its ratio':>9s}")
    names = ["digits", "mnist5k"] + (["cifar10-sized"] if device.type == "cuda" else [])
    for name in names:
        if name == "cifar10-sized":
            n = 10000
            x, y = torch.randn(n, 3, 32, 32, device=device), torch.randint(0, 10, (n,), device=device)
            data = Dataset(name, x, y, x[:2000], y[:2000], x[:2000], y[:2000], 10, load_dataset("digits").augment)
            batch = 512
        else:
            data, batch = load_dataset(name, device=device), args.batch_size
        m = measure(data, args.epochs, batch, args.repeats)
        print(f"{name:10s} {m['ours']:11.0f} {m['plain']:12.0f} {m['ratio']:5.2f}x "
              f"{m['acc_ours']:8.1f}% {m['acc_plain']:9.1f}% {m['ceiling']:19.0f} {m['ceiling_ratio']:8.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
