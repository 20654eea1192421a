"""The GPU half of the course in one run: every chapter's code on the device at small sizes, and what it costs.

On whatever device is present (CUDA, Apple's MPS or the CPU), two parts. The measurements:

1. trainer: ``tutorial_nas.train`` on the small CNN of ``train_throughput.py``, with the mixed precision and
   channels_last that the trainer uses on CUDA: images per second after a warm-up epoch, the precision the
   forward pass ran in, the validation accuracy against chance;
2. search steps of ``tutorial_nas.oneshot`` (architecture step + weight step) at the profile's ``darts`` sizes:
   DARTS first order, second order and GDAS; median seconds and, on CUDA, peak memory (as ``darts_step.py``);
3. a supernet step at the profile's ``cell`` sizes: one uniformly sampled path, as RS-WS and SPOS train;
4. candidate trainings per minute: random NAS-Bench-201 cells trained as a search trains a candidate
   (``training_from_profile``: the benchmark's recipe at the profile's ``cell`` sizes).

Then the chapters: each chapter's entry points once, at the profile's model sizes for one epoch (or less) on a
slice of the data: REINFORCE over the chain space with full training (1), DARTS, second-order DARTS and GDAS
searches and a network-morphism step (2), GDAS on the NAS-Bench-201 cells and an ENAS supernet search (3), cell
latencies on the device and a training with every trick (4).

The profile is ``gpu`` on CUDA and ``ci`` elsewhere (``--profile`` chooses). CIFAR-10 is used where it is
cached or can be downloaded; with ``--synthetic``, or when the download fails, CIFAR-sized synthetic data is
made on the spot (ten classes, each a smooth random pattern under noise: learnable, so that a broken training
path shows as chance accuracy). ``--dry-run`` runs all of it on the CPU at the ``ci`` sizes on a few hundred
synthetic 8x8 images, in well under a minute: the tests run it so, through ``gpu_check.sh --dry-run``.

The results are written as JSON and Markdown after every stage (a run stopped by a time limit keeps what it
measured), by default to ``benchmarks/results/<device name>.json`` and ``.md``; the exit status is 1 when a
stage failed, or when the trainer did not learn on the device.

    python benchmarks/gpu_report.py [--profile gpu] [--synthetic] [--dry-run] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also when imported from a test

from darts_step import memory_of_one_step  # noqa: E402
from train_throughput import small_cnn, sync  # noqa: E402

from tutorial_nas.data import DEFAULT_AUGMENT, OFFLINE, Dataset, load_dataset  # noqa: E402
from tutorial_nas.errors import NASInputError  # noqa: E402
from tutorial_nas.profiles import choose_device, describe_device, get_profile, seed_everything  # noqa: E402
from tutorial_nas.train import AMP_DTYPES, TrainConfig, train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FULL = (45000, 5000, 10000)  # CIFAR-10's split here: train / valid (10 % of the official train set) / test
TINY = (128, 64, 64)  # the dry run's synthetic 3x8x8 images: one step a DARTS epoch at the ci batch of 64
SHAPES = {"cifar10": (3, 32), "fashion-mnist": (1, 28), "mnist5k": (1, 28), "digits": (1, 8)}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def card_name(device: torch.device) -> str:
    """What the results are named after: the GPU's name, else the device type and the machine."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} {platform.machine()}"


def synthetic(name: str, counts: tuple, channels: int, size: int, device, seed: int = 0) -> Dataset:
    """``counts`` = (train, valid, test) images of ten classes: a smooth random pattern per class under noise of
    the same strength, normalised per channel like the real sets."""
    gen = torch.Generator().manual_seed(seed)
    patterns = F.avg_pool2d(torch.randn(10, channels, size + 6, size + 6, generator=gen), 7, stride=1)
    patterns = patterns / patterns.std(dim=(1, 2, 3), keepdim=True)
    y = torch.randint(0, 10, (sum(counts),), generator=gen)
    x = patterns[y] + torch.randn(len(y), channels, size, size, generator=gen)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
    x, y = x.to(device), y.to(device)
    a, b = counts[0], counts[0] + counts[1]
    return Dataset(name, x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], 10, DEFAULT_AUGMENT["cifar10"])


class Run:
    """The device, the sizes and the data of one check; each data set is made once."""

    def __init__(self, profile, device: torch.device, dry_run: bool = False, synthetic: bool = False):
        self.profile, self.device, self.dry_run, self.synthetic = profile, device, dry_run, synthetic
        self.cuda = device.type == "cuda"
        self.sources: dict = {}
        self._data: dict = {}

    def data(self, name: str, image_size: int | None) -> Dataset:
        key = (name, image_size)
        if key not in self._data:
            self._data[key], self.sources[name] = self._load(name, image_size)
        return self._data[key]

    def _load(self, name: str, image_size: int | None) -> tuple:
        channels, size = SHAPES[name]
        if self.dry_run:
            return synthetic(f"{name}-shaped synthetic", TINY, 3, 8, self.device), "synthetic 3x8x8 (dry run)"
        reason = "--synthetic"
        if name in OFFLINE or not self.synthetic:
            try:
                return load_dataset(name, image_size=image_size, device=self.device), name
            except NASInputError as err:  # no network: say so in the report, and go on
                reason = str(err).split(" (")[0]
        size = image_size or size
        return (synthetic(f"{name}-shaped synthetic", FULL, channels, size, self.device),
                f"synthetic {channels}x{size}x{size} shaped like {name} ({reason})")

    def part(self, data: Dataset, images: int = 4096) -> Dataset:
        """About ``images`` training images of ``data``: what one chapter path trains on."""
        return data.subset(min(1.0, images / len(data.train_y)))

    def timed(self, step, repeats: int) -> dict:
        """Median seconds of ``step`` (after one warm-up step off the CPU) and, on CUDA, its peak memory."""
        if self.device.type != "cpu":
            step()  # kernels are chosen and compiled on the first step
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        # CUDA's allocator counts the peak for free; elsewhere darts_step.py's profiler costs more than the step
        peak = memory_of_one_step(step, self.device) if self.cuda else None
        return {"median_s": statistics.median(times), "peak_mib": peak}


# --- the measurements ----------------------------------------------------------------------------------------------
def trainer(run: Run) -> dict:
    s = run.profile.data
    data = run.data(s.dataset, s.image_size)
    config = TrainConfig(epochs=1, batch_size=run.profile.train.batch_size, lr=run.profile.train.lr)
    torch.manual_seed(0)
    train(small_cnn(data.in_channels, data.num_classes).to(run.device), data, config, progress=False, test=False)
    torch.manual_seed(0)  # the warm-up above compiled kernels and filled caches; this one is measured
    model = small_cnn(data.in_channels, data.num_classes).to(run.device)
    seen = set()
    model[0].register_forward_hook(lambda m, i, out: seen.add(str(out.dtype).replace("torch.", "")) if m.training
                                   else None)
    epochs = 1 if run.dry_run else 2
    rec = train(model, data, config, progress=False, test=False, epochs=epochs)
    chance = 100.0 / data.num_classes
    return {"data": run.sources[s.dataset], "images": len(data.train_y), "image_shape": list(data.input_shape),
            "epochs": epochs, "batch_size": config.batch_size, "seconds": rec.seconds,
            "images_per_s": epochs * len(data.train_y) / rec.seconds,
            "amp": str(AMP_DTYPES.get(run.device.type, "off")).replace("torch.", ""),
            "forward_dtype": "/".join(sorted(seen)),
            "channels_last": model[0].weight.is_contiguous(memory_format=torch.channels_last),
            "valid_acc": rec.final_valid_acc, "chance": chance, "learned": rec.final_valid_acc > 1.5 * chance}


def search_steps(run: Run, repeats: int) -> dict:
    from tutorial_nas.oneshot.architect import Architect
    from tutorial_nas.oneshot.darts import SearchNetwork

    s = run.profile.darts
    data = run.data(s.dataset, s.image_size)
    b = s.batch_size
    out = {"data": run.sources[s.dataset], "C": s.C, "layers": s.layers, "batch_size": b}
    train_batch, valid_batch = (data.train_x[:b], data.train_y[:b]), (data.train_x[b:2 * b], data.train_y[b:2 * b])

    def make_step(method: str):
        """One search step of a fresh supernet: architecture step, then weight step (DARTS' order in
        ``bilevel_search``; GDAS' own takes the weight step first, at the same cost)."""
        torch.manual_seed(0)
        model = SearchNetwork(data.num_classes, data.in_channels, C=s.C, layers=s.layers).to(run.device)
        model.mode = "gdas" if method == "gdas" else "darts"
        w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        architect = Architect(model, order=2 if method == "darts2" else 1)

        def step():
            architect.step(train_batch, valid_batch, 0.025, w_opt)  # the virtual step takes its momentum
            w_opt.zero_grad()
            model.loss(*train_batch).backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
            w_opt.step()
            sync(run.device)

        return step

    for method in ("darts", "darts2", "gdas"):
        out[method] = run.timed(make_step(method), repeats)
    return out


def supernet_step(run: Run, repeats: int) -> dict:
    from tutorial_nas.oneshot.supernet import Supernet
    from tutorial_nas.spaces.cell import NB201Space

    s, b = run.profile.cell, run.profile.oneshot.batch_size
    data = run.data(s.dataset, s.image_size)
    torch.manual_seed(0)
    net = Supernet(data.num_classes, data.in_channels, C=s.C, N=s.N, stem_stride=s.stem_stride).to(run.device)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    space, rng, xb, yb = NB201Space(), np.random.default_rng(0), data.train_x[:b], data.train_y[:b]

    def step():
        loss = F.cross_entropy(net(xb, space.sample(rng)), yb)  # a new path every step
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sync(run.device)

    return {"data": run.sources[s.dataset], "C": s.C, "N": s.N, "batch_size": b, **run.timed(step, repeats)}


def candidate_trainings(run: Run, n: int) -> dict:
    from tutorial_nas.evaluators import training_from_profile
    from tutorial_nas.spaces.cell import NB201Space

    space, s = NB201Space(), run.profile.cell
    evaluator = training_from_profile(space, run.profile, dataset="digits")  # the recipe; the data comes next
    evaluator.data = run.data(s.dataset, s.image_size)
    if run.dry_run:
        evaluator.config = replace(evaluator.config, epochs=1)
    rng = np.random.default_rng(0)
    seconds, accs = [], []
    for _ in range(n):
        result = evaluator.evaluate(space.sample(rng))
        seconds.append(result.cost_s)
        accs.append(result.valid_acc)
    return {"data": run.sources[s.dataset], "images": len(evaluator.data.train_y), "C": s.C, "N": s.N,
            "image_size": evaluator.data.image_size, "epochs": evaluator.config.epochs,
            "batch_size": evaluator.config.batch_size, "candidates": n, "seconds_each": seconds,
            "per_minute": 60.0 * n / sum(seconds), "valid_acc": accs}


# --- the chapters ---------------------------------------------------------------------------------------------------
TINY_NETS = (("nb201-supernet", dict(dataset="digits", image_size=8, C=4, N=1), 16),
             ("nb201-cell", dict(dataset="digits", image_size=8, C=4, N=1), 16),
             ("darts-supernet", dict(dataset="digits", image_size=8, C=4, layers=2), 16))


def cost_model(run: Run) -> dict:
    """The plan's cost model (``tutorial-nas plan``) calibrated on this device and checked on it: the achieved
    FLOP/s, seconds a kernel and depthwise FLOP/s it solves from three timed networks (``plan.calibrate``), then
    one training step of each network the ``gpu`` profile trains, measured against the model's estimate from them,
    and CUDA's peak memory against the package's estimate (``plan.check_model``; tiny networks in a dry run). The
    three numbers are what ``plan.DEVICES`` keeps for a card, where today it holds stated assumptions."""
    from tutorial_nas.course import plan

    kind = run.device.type
    numbers = plan.calibrate(kind)
    rows = plan.check_model(kind, steps=1 if run.dry_run else 5, nets=TINY_NETS if run.dry_run else plan.CHECK_NETS)
    ratios = [r["measured_s"] / r["estimated_s"] for r in rows]
    return {"achieved_gflops": numbers["achieved"] / 1e9, "depthwise_gflops": numbers["achieved_dw"] / 1e9,
            "kernel_us": numbers["kernel_s"] * 1e6,
            "median_ratio": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios),
            "nets": [{**r, "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in r["sizes"].items()}}
                     for r in rows]}


def chapter_paths(run: Run) -> list:
    """(chapter, what runs, function) for each chapter's entry points; each function returns a short result."""
    from tutorial_nas.analysis import hardware, tricks
    from tutorial_nas.bench import Recipe, load_benchmark
    from tutorial_nas.evaluators import FullTraining
    from tutorial_nas.oneshot.darts import darts_search
    from tutorial_nas.oneshot.supernet import weight_sharing_search
    from tutorial_nas.search import search
    from tutorial_nas.spaces import make_space
    from tutorial_nas.strategies.morphism import morphism_search

    p = run.profile
    chain, d, cell = p.chain, p.darts, p.cell

    def reinforce_chain():
        space = make_space("chain", max_layers=chain.max_layers, filters=tuple(chain.filters))
        data = run.part(run.data(chain.dataset, chain.image_size))
        config = TrainConfig(epochs=1, batch_size=chain.batch_size, lr=chain.lr)
        h = search(space, "reinforce", FullTraining(space, data, config), 2, seed=0, progress=False)
        return {"networks": len(h), "best_valid_acc": float(h.valid_acc.max())}

    def darts(space: str, method: str, C: int, layers: int, N: int):
        data = run.part(run.data(d.dataset, d.image_size))
        h = darts_search(space=space, data=data, method=method, epochs=1, C=C, layers=layers, N=N,
                         batch_size=d.batch_size, seed=0, progress=False)
        return {"arch": h.arch.iloc[-1], "skip_connections": int(h.n_skip.iloc[-1]),
                "valid_acc": float(h.valid_acc.iloc[-1])}

    def morphism():
        data = run.part(run.data(p.data.dataset, p.data.image_size))
        h = morphism_search(data, steps=1, children=2, epochs=0.5, progress=False)
        return {"networks": len(h), "best_valid_acc": float(h.valid_acc.max())}

    def enas():
        data = run.part(run.data(cell.dataset, cell.image_size))
        h = weight_sharing_search("enas", data, epochs=1, C=cell.C, N=cell.N, batch_size=p.oneshot.batch_size,
                                  n_candidates=3, stem_stride=cell.stem_stride, controller_steps=5, progress=False)
        return {"candidates": len(h), "best_ws_acc": float(h.ws_acc.max())}

    def latencies():
        bench = load_benchmark()
        cells = list(bench.frame().arch.iloc[:3])
        lat = hardware.cell_latencies(cells, bench, run.device, warmup=2, repeats=5)
        return {"cells": len(lat), "median_latency_ms": float(lat.latency_ms.median())}

    def every_trick():
        data = run.part(run.data(cell.dataset, cell.image_size))
        recipe = Recipe(dataset=cell.dataset, image_size=data.image_size, C=cell.C, N=cell.N,
                        stem_stride=cell.stem_stride, epochs=1)
        arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
        row = tricks.train_with_trick(arch, data, recipe, "all")
        return {"valid_acc": row["valid_acc"], "test_acc": row["test_acc"]}

    return [
        (1, f"REINFORCE, chain space (up to {chain.max_layers} layers), 2 networks x 1 epoch", reinforce_chain),
        (2, f"DARTS 1st order, DARTS space C={d.C}, {d.layers} cells, 1 epoch",
         lambda: darts("darts", "darts", d.C, d.layers, d.N)),
        (2, "DARTS 2nd order, same", lambda: darts("darts", "darts2", d.C, d.layers, d.N)),
        (2, "GDAS, same", lambda: darts("darts", "gdas", d.C, d.layers, d.N)),
        (2, "network morphism, 1 step x 2 children, 0.5 epoch", morphism),
        (3, f"GDAS, NAS-Bench-201 cells C={cell.C}, N={cell.N}, 1 epoch",
         lambda: darts("nb201", "gdas", cell.C, d.layers, cell.N)),
        (3, f"ENAS supernet, C={cell.C}, N={cell.N}, 1 epoch, 3 candidates", enas),
        (4, "latency of 3 cells on the device", latencies),
        (4, "a cell trained with every trick, 1 epoch", every_trick),
    ]


# --- the report -----------------------------------------------------------------------------------------------------
def stage_line(key: str, r: dict) -> str:
    """One line of what a measurement found (also a row of the Markdown table)."""
    if not r.get("ok", True):
        return f"FAILED: {r['error']}"
    peak = lambda o: f", peak {o['peak_mib']:.0f} MiB" if o.get("peak_mib") is not None else ""  # noqa: E731
    if key == "trainer":
        return (f"{r['images_per_s']:,.0f} images/s, forward in {r['forward_dtype']} (amp: {r['amp']}), "
                f"channels_last: {r['channels_last']}, valid {r['valid_acc']:.1f} % (chance {r['chance']:.0f} %)")
    if key == "search_steps":
        return "; ".join(f"{m} {r[m]['median_s']:.3f} s/step{peak(r[m])}" for m in ("darts", "darts2", "gdas"))
    if key == "supernet_step":
        return f"{r['median_s']:.3f} s/step{peak(r)}"
    if key == "cost_model":
        memory = [f"{n['memory_gb']:.2f}/{n['estimate_gb']:.2f}" for n in r["nets"] if n["memory_gb"] is not None]
        return (f"{r['achieved_gflops']:.1f} GFLOP/s achieved ({r['depthwise_gflops']:.1f} by depthwise "
                f"convolutions), {r['kernel_us']:.0f} us a kernel; measured / "
                f"estimated step {r['median_ratio']:.2f} in median ({r['min_ratio']:.2f}-{r['max_ratio']:.2f})"
                + (f"; peak / estimated GB {', '.join(memory)}" if memory else ""))
    return (f"{r['per_minute']:.2f} per minute ({statistics.mean(r['seconds_each']):.1f} s each, "
            f"{r['candidates']} trained)")


def stage_sizes(key: str, r: dict) -> str:
    if not r.get("ok", True):
        return ""
    if key == "trainer":
        return (f"small CNN, {r['data']} {'x'.join(map(str, r['image_shape']))}, {r['images']} images, "
                f"batch {r['batch_size']}, {r['epochs']} epoch{'s' * (r['epochs'] != 1)}")
    if key == "search_steps":
        return f"DARTS space C={r['C']}, {r['layers']} cells, batch {r['batch_size']}, {r['data']}"
    if key == "supernet_step":
        return f"NB201 supernet C={r['C']}, N={r['N']}, batch {r['batch_size']}, one random path a step"
    if key == "cost_model":
        return "calibration (dense convnet, NB201 supernet); then " + ", ".join(
            f"{n['net']} batch {n['batch']}" for n in r["nets"])
    return (f"NB201 cell C={r['C']}, N={r['N']}, {r['image_size']}px, {r['images']} images, {r['epochs']} "
            f"epoch{'s' * (r['epochs'] != 1)}, batch {r['batch_size']}")


MEASUREMENTS = {"trainer": "trainer throughput", "search_steps": "search steps", "supernet_step": "supernet step",
                "candidates": "candidate trainings", "cost_model": "cost model (plan)"}


def markdown(r: dict) -> str:
    lines = [f"# GPU check: {r['device']}", "",
             f"torch {r['torch']} (CUDA {r['cuda'] or '-'}), Python {r['python']}, profile `{r['profile']}`"
             f"{', dry run' if r['dry_run'] else ''}, {r['date']}, {r['seconds']:.0f} s in all. Data: "
             + "; ".join(f"{k}: {v}" for k, v in r["data"].items()) + ".", "",
             "| measurement | sizes | result |", "|---|---|---|"]
    for key, title in MEASUREMENTS.items():
        if key in r:
            lines.append(f"| {title} | {stage_sizes(key, r[key])} | {stage_line(key, r[key])} |")
    if r.get("chapters"):
        lines += ["", f"Each chapter's code on {r['device_type']}:", "",
                  "| chapter | what ran | seconds | peak MiB | result |", "|---|---|---|---|---|"]
        for c in r["chapters"]:
            result = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in c["result"].items()
                               if not (k == "arch" and len(v) > 100)) if c["ok"] else f"FAILED: {c['error']}"
            peak = f"{c['peak_mib']:.0f}" if c.get("peak_mib") is not None else "-"
            lines.append(f"| {c['chapter']} | {c['what']} | {c['seconds']:.1f} | {peak} | {result} |")
    return "\n".join(lines) + "\n"


def attempt(run: Run, fn) -> dict:
    """Run one stage: its result, or what went wrong (the other stages still run and are reported)."""
    if run.cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        out = {"ok": True, "result": fn()}
    except Exception as err:  # a check reports every failure, not only the first
        traceback.print_exc()
        out = {"ok": False, "error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    out["seconds"] = time.perf_counter() - start
    out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if run.cuda else None
    return out


def check(run: Run, candidates: int, write) -> dict:
    """Every stage in turn, printing each result as it comes and writing the report after each."""
    p, dev = run.profile, run.device
    r = {"device": describe_device(dev), "device_type": dev.type, "card": card_name(dev), "torch": torch.__version__,
         "cuda": torch.version.cuda if run.cuda else None, "python": platform.python_version(),
         "cpu_threads": torch.get_num_threads(), "profile": p.name, "dry_run": run.dry_run,
         "date": date.today().isoformat(), "data": run.sources, "seconds": 0.0}
    print(f"GPU check on {r['device']}: torch {r['torch']}, CUDA {r['cuda'] or '-'}, profile {p.name}"
          f"{' (dry run: tiny sizes, synthetic data)' if run.dry_run else ''}", flush=True)
    start, repeats = time.perf_counter(), 3 if run.cuda else 1
    stages = {"trainer": lambda: trainer(run), "search_steps": lambda: search_steps(run, repeats),
              "supernet_step": lambda: supernet_step(run, repeats),
              "candidates": lambda: candidate_trainings(run, candidates), "cost_model": lambda: cost_model(run)}
    for key, fn in stages.items():
        out = attempt(run, fn)
        r[key] = {**out.pop("result", {}), **out}
        print(f"  {MEASUREMENTS[key]:20s} {stage_line(key, r[key])} [{out['seconds']:.1f} s]", flush=True)
        r["seconds"] = time.perf_counter() - start
        write(r)
    r["chapters"] = []
    for chapter, what, fn in chapter_paths(run):
        out = attempt(run, fn)
        r["chapters"].append({"chapter": chapter, "what": what, "result": out.pop("result", {}), **out})
        status = "ok" if out["ok"] else f"FAILED: {out['error']}"
        print(f"  chapter {chapter}: {what}: {status} [{out['seconds']:.1f} s]", flush=True)
        r["seconds"] = time.perf_counter() - start
        write(r)
    return r


def failures(r: dict) -> list:
    """What makes the check fail: a stage that raised, or a trainer that did not learn on a real run."""
    out = [k for k in MEASUREMENTS if not r.get(k, {}).get("ok", False)]
    out += [f"chapter {c['chapter']}: {c['what']}" for c in r.get("chapters", []) if not c["ok"]]
    if not r["dry_run"] and r.get("trainer", {}).get("ok") and not r["trainer"]["learned"]:
        out.append("trainer: no better than chance")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=["ci", "cpu", "gpu"], help="sizes (default: gpu on CUDA, else ci)")
    p.add_argument("--device", choices=["cuda", "mps", "cpu"], help="default: the best one present")
    p.add_argument("--candidates", type=int, help="candidate networks to train (default 3; 1 in a dry run)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 in a dry run)")
    p.add_argument("--synthetic", action="store_true", help="CIFAR-sized synthetic data instead of a download")
    p.add_argument("--dry-run", action="store_true", default=os.environ.get("DRY_RUN") == "1",
                   help="the CPU, ci sizes, tiny synthetic data: well under a minute (also DRY_RUN=1)")
    p.add_argument("--out", help="write OUT.json and OUT.md (default: benchmarks/results/<device name>)")
    args = p.parse_args(argv)
    for name in ("candidates", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.dry_run and args.device not in (None, "cpu"):
        p.error("--dry-run runs on the CPU")
    dev = choose_device("cpu" if args.dry_run else args.device)
    if args.threads or args.dry_run:
        torch.set_num_threads(args.threads or 1)
    profile = get_profile(args.profile or ("gpu" if dev.type == "cuda" and not args.dry_run else "ci"),
                          device=dev.type)
    if args.out:
        out = Path(args.out)
        out = out.with_suffix("") if out.suffix in (".json", ".md") else out
    else:
        folder = Path(tempfile.gettempdir()) / "tutorial_nas_gpu_check" if args.dry_run else RESULTS
        out = folder / slug(card_name(dev))
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(r: dict) -> None:
        out.with_name(out.name + ".json").write_text(json.dumps(r, indent=1) + "\n")
        out.with_name(out.name + ".md").write_text(markdown(r))

    seed_everything(0)
    run = Run(profile, dev, dry_run=args.dry_run, synthetic=args.synthetic)
    r = check(run, args.candidates or (1 if args.dry_run or not run.cuda else 3), write)
    print()
    print(markdown(r), end="")
    print(f"wrote {out}.json and {out}.md")
    failed = failures(r)
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
