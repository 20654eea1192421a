"""Where DARTS' collapse shows at CPU scale: DARTS (first order) on the NAS-Bench-201 supernet, one configuration
a run, counting epoch by epoch what the derived cell holds.

Chapter 4 (section 2a) shows the collapse Dong & Yang report for DARTS on NAS-Bench-201 (the derived cell fills
with parameter-free operations as the search goes on). Its triggers in the literature are depth (cells per
stage), a long search and a large architecture step. This script runs the configurations given on the command
line, each as ``seed:N:arch_lr:epochs:fraction`` (``fraction`` of the mnist5k training split at 14x14, C=8,
batch 64, the chapter's data), and appends one JSON line per run to ``--out``: per epoch the parameter-free
edges of the derived cell (and of them skip connections, none, average pooling), the softmax weight the alphas
give the parameter-free operations (mean over edges; 0.6 uniform), the entropy, the cell's accuracy in the
benchmark and the supernet's own validation accuracy; the last cell and ``supernets.collapse_verdict``. A run
already in the file is skipped, so an interrupted sweep continues.

    python benchmarks/darts_collapse.py 0:3:0.03:30:1 1:3:0.03:30:1 0:3:0.1:30:1 0:5:0.03:30:0.6
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from tutorial_nas.analysis import supernets as sa
from tutorial_nas.bench import load_benchmark
from tutorial_nas.bench.build import read_results
from tutorial_nas.data import load_dataset
from tutorial_nas.oneshot.architect import DartsConfig
from tutorial_nas.oneshot.darts import darts_search

OUT = Path(__file__).resolve().parent / "results" / "darts_collapse.jsonl"


def run(seed: int, N: int, lr: float, epochs: int, fraction: float) -> dict:
    data = load_dataset("mnist5k", image_size=14).subset(fraction)
    start = time.perf_counter()
    history = darts_search(space="nb201", data=data, epochs=epochs, N=N, C=8, batch_size=64, bench=load_benchmark(),
                           progress=False, seed=seed, config=DartsConfig(a_lr=lr))
    table = sa.collapse_table(history)
    return dict(seed=seed, N=N, lr=lr, epochs=epochs, frac=fraction, secs=round(time.perf_counter() - start),
                param_free=table.param_free.tolist(), skip=table.n_skip.tolist(), none=table.n_none.tolist(),
                pool=table.n_pool.tolist(), mass_free=[round(x, 3) for x in table.free_weight],
                entropy=[round(x, 3) for x in table.entropy], acc=[round(x, 1) for x in table.test_acc],
                ws=[round(float(x), 1) for x in history.valid_acc], last=table.arch.iloc[-1],
                verdict=sa.collapse_verdict(table))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("configs", nargs="+", help="seed:N:arch_lr:epochs:fraction")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["seed"], r["N"], r["lr"], r["epochs"], r["frac"]) for r in read_results(out, trim=True)}
    for text in args.configs:
        seed, N, lr, epochs, fraction = text.split(":")
        key = (int(seed), int(N), float(lr), int(epochs), float(fraction))
        if key not in done:
            with open(out, "a") as f:
                f.write(json.dumps(run(*key)) + "\n")
    for r in read_results(out):
        third = max(1, len(r["param_free"]) // 3)
        first, last = np.mean(r["param_free"][:third]), np.mean(r["param_free"][-third:])
        print(f"seed {r['seed']} N={r['N']} arch lr {r['lr']:g} {r['epochs']} epochs x{r['frac']:g} data "
              f"({r['secs']} s): parameter-free edges {first:.1f} -> {last:.1f}, their softmax weight "
              f"{r['mass_free'][0]:.2f} -> {r['mass_free'][-1]:.2f}, supernet {r['ws'][-1]:.1f} %, last cell "
              f"{r['last']} ({r['acc'][-1]:.1f} %)")


if __name__ == "__main__":
    main()
