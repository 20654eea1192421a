"""A small report of what this machine's device does with the package: the figures a GPU run should record.

Three measurements, on whatever device is present (CUDA, Apple's MPS or the CPU):

1. trainer throughput: ``tutorial_nas.train`` on the small CNN of ``train_throughput.py``, images per second
   over the profile's ``data`` set (after one warm-up epoch);
2. one DARTS search step (architecture step + weight step) of ``tutorial_nas.oneshot``, first and second order,
   at the profile's ``darts`` sizes: median seconds and, on CUDA, peak memory, as ``darts_step.py`` measures them;
3. candidate trainings per minute: random NAS-Bench-201 cells trained the way a search trains a candidate
   (``training_from_profile``: the benchmark's recipe at the profile's ``cell`` sizes and data set).

The profile is ``gpu`` on CUDA and ``ci`` elsewhere (about half a minute on two shared CPU cores with
``--threads 1``); ``--profile`` chooses. Where a data set cannot be downloaded, random tensors of its shape stand
in and the report says so.
The report is written as JSON and Markdown:

    python benchmarks/gpu_report.py [--profile gpu] [--candidates 3] [--out benchmarks/results/gpu_report]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also when imported from a test

from darts_step import memory_of_one_step  # noqa: E402
from train_throughput import small_cnn, sync  # noqa: E402

from tutorial_nas.data import Dataset, load_dataset  # noqa: E402
from tutorial_nas.errors import NASInputError  # noqa: E402
from tutorial_nas.profiles import choose_device, describe_device, get_profile, seed_everything  # noqa: E402
from tutorial_nas.train import TrainConfig, train  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gpu_report"


def data_for(name: str, image_size: int | None, device) -> tuple[Dataset, str]:
    """The data set, or random tensors of its shape where it cannot be downloaded (said in the second value)."""
    try:
        return load_dataset(name, image_size=image_size, device=device), name
    except NASInputError as err:
        shape = {"cifar10": (3, 32, 32), "fashion-mnist": (1, 28, 28)}.get(name, (1, 28, 28))
        size = image_size or shape[-1]
        n_train, n_eval = 45000 if name == "cifar10" else 54000, 5000
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n_train + 2 * n_eval, shape[0], size, size, generator=gen).to(device)
        y = torch.randint(0, 10, (len(x),), generator=gen).to(device)
        a, b = n_train, n_train + n_eval
        data = Dataset(f"{name}-shaped random", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], 10,
                       load_dataset("digits").augment)
        return data, f"random tensors shaped like {name} ({str(err).split(' (')[0]})"


def trainer_throughput(profile, device, epochs: int = 2) -> dict:
    s = profile.data
    data, source = data_for(s.dataset, s.image_size, device)
    batch = profile.train.batch_size
    config = TrainConfig(epochs=1, batch_size=batch, lr=profile.train.lr, augment=True)
    torch.manual_seed(0)
    train(small_cnn(data.in_channels, data.num_classes).to(device), data, config, progress=False, test=False)
    torch.manual_seed(0)  # the warm-up above compiled kernels and filled caches; this one is measured
    model = small_cnn(data.in_channels, data.num_classes).to(device)
    rec = train(model, data, config, progress=False, test=False, epochs=epochs)
    return {"data": source, "images": len(data.train_y), "image_shape": list(data.input_shape), "epochs": epochs,
            "batch_size": batch, "seconds": rec.seconds, "images_per_s": epochs * len(data.train_y) / rec.seconds,
            "valid_acc": rec.final_valid_acc}


def darts_step(profile, device, repeats: int) -> dict:
    import torch.nn as nn
    import torch.nn.functional as F

    from tutorial_nas.oneshot.architect import Architect
    from tutorial_nas.oneshot.darts import SearchNetwork

    s = profile.darts
    data, source = data_for(s.dataset, s.image_size, device)
    b = s.batch_size
    out = {"data": source, "C": s.C, "layers": s.layers, "batch_size": b}
    train_batch, valid_batch = (data.train_x[:b], data.train_y[:b]), (data.train_x[b:2 * b], data.train_y[b:2 * b])

    def make_step(order: int):
        """One search step of a fresh supernet: architecture step (of ``order``), then weight step."""
        torch.manual_seed(0)
        model = SearchNetwork(data.num_classes, data.in_channels, C=s.C, layers=s.layers).to(device)
        w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        architect = Architect(model, order=order)

        def step():
            architect.step(train_batch, valid_batch, xi=0.025)
            w_opt.zero_grad()
            F.cross_entropy(model(train_batch[0]), train_batch[1]).backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
            w_opt.step()
            sync(device)

        return step

    for order in (1, 2):
        step = make_step(order)
        if device.type != "cpu":
            step()  # warm-up: kernels are chosen and compiled on the first step
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        # peak memory on CUDA (its allocator counts it for free); on other devices darts_step.py measures it
        # with the torch profiler, which costs more than the steps themselves
        peak = memory_of_one_step(step, device) if device.type == "cuda" else None
        out[f"order{order}"] = {"median_s": statistics.median(times), "peak_mib": peak}
    return out


def candidate_trainings(profile, device, n: int) -> dict:
    from tutorial_nas.evaluators import training_from_profile
    from tutorial_nas.spaces.cell import NB201Space

    space = NB201Space()
    dataset = profile.cell.dataset
    try:
        evaluator, source = training_from_profile(space, profile), dataset
    except NASInputError:  # no download here: the same training on random tensors of the data set's shape
        evaluator = training_from_profile(space, profile, dataset="digits")
        evaluator.data, source = data_for(dataset, profile.cell.image_size, device)
    rng = np.random.default_rng(0)
    seconds, accs = [], []
    for _ in range(n):
        result = evaluator.evaluate(space.sample(rng))
        seconds.append(result.cost_s)
        accs.append(result.valid_acc)
    sizes = {k: v for k, v in profile.cell.as_dict().items() if k in ("C", "N", "stem_stride", "image_size")}
    return {"data": source, "images": len(evaluator.data.train_y), **sizes, "epochs": evaluator.config.epochs,
            "batch_size": evaluator.config.batch_size, "candidates": n, "seconds_each": seconds,
            "per_minute": 60.0 * n / sum(seconds), "valid_acc": accs}


def markdown(r: dict) -> str:
    t, d, c = r["trainer"], r["darts_step"], r["candidates"]
    lines = [
        f"# Device report: {r['device']}",
        "",
        f"torch {r['torch']} (CUDA {r['cuda'] or '-'}), Python {r['python']}, profile `{r['profile']}`, "
        f"{r['date']}, {r['seconds']:.0f} s in all.",
        "",
        "| measurement | sizes | result |",
        "|---|---|---|",
        f"| trainer throughput | small CNN, {t['data']} {'x'.join(map(str, t['image_shape']))}, "
        f"{t['images']} images, batch {t['batch_size']}, {t['epochs']} epochs | {t['images_per_s']:,.0f} images/s |",
    ]
    for order in (1, 2):
        o = d[f"order{order}"]
        peak = f", peak {o['peak_mib']:.0f} MiB" if o["peak_mib"] is not None else ""
        lines.append(f"| DARTS step, order {order} | C={d['C']}, {d['layers']} cells, batch {d['batch_size']}, "
                     f"{d['data']} | {o['median_s']:.3f} s/step{peak} |")
    lines.append(f"| candidate trainings | NB201 cell C={c['C']}, N={c['N']}, {c['data']} {c['image_size']}px, "
                 f"{c['images']} images, {c['epochs']} epochs, batch {c['batch_size']} | {c['per_minute']:.2f} per "
                 f"minute ({statistics.mean(c['seconds_each']):.1f} s each, {c['candidates']} trained) |")
    return "\n".join(lines) + "\n"


def report(profile_name: str | None = None, device: str | None = None, candidates: int | None = None,
           threads: int | None = None) -> dict:
    """Measure; on a CPU fewer repeats and candidates (a CPU run checks the script more than it measures)."""
    dev = choose_device(device)
    if threads:
        torch.set_num_threads(threads)
    gpu = dev.type != "cpu"
    candidates = candidates or (3 if gpu else 2)
    profile = get_profile(profile_name or ("gpu" if dev.type == "cuda" else "ci"), device=dev.type)
    seed_everything(0)
    start = time.perf_counter()
    r = {"device": describe_device(dev), "device_type": dev.type, "torch": torch.__version__,
         "cuda": torch.version.cuda if dev.type == "cuda" else None, "python": platform.python_version(),
         "cpu_threads": torch.get_num_threads(), "profile": profile.name, "date": date.today().isoformat()}
    for key, measure in (("trainer", lambda: trainer_throughput(profile, dev)),
                         ("darts_step", lambda: darts_step(profile, dev, repeats=3 if gpu else 1)),
                         ("candidates", lambda: candidate_trainings(profile, dev, candidates))):
        t = time.perf_counter()
        r[key] = measure()
        r[key]["wall_s"] = time.perf_counter() - t  # the whole measurement, data loading and warm-up included
    r["seconds"] = time.perf_counter() - start
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", choices=["ci", "cpu", "gpu"], help="sizes (default: gpu on CUDA, else ci)")
    p.add_argument("--device", choices=["cuda", "mps", "cpu"], help="default: the best one present")
    p.add_argument("--candidates", type=int, help="candidate networks to train (default 3; 2 on a CPU)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where to write OUT.json and OUT.md")
    args = p.parse_args(argv)
    for name in ("candidates", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    r = report(args.profile, args.device, args.candidates, args.threads)
    out = Path(args.out)
    out = out.with_suffix("") if out.suffix in (".json", ".md") else out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(r, indent=1) + "\n")
    text = markdown(r)
    out.with_name(out.name + ".md").write_text(text)
    print(text, end="")
    print(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
