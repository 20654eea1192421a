"""The shipped tabular benchmark: pack a build into one compressed file, load it once, query it fast.

A table is two files: ``NAME.npz`` (the numbers, one row per canonical cell: the mean of the seeds every
cell was trained with, the recipe's ``seeds_per_cell``; and the per-seed numbers of the cells with several) and
``NAME.json`` (the recipe, the machine and date of the build, the noise statistics and the SHA-256 of the
npz, which loading verifies). ``query`` answers for any of the 15,625 cells: an isomorphic cell is answered
by its class representative, so a cell and its twin get the same accuracies and times (each keeps its own
parameters and FLOPs).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from ..errors import NASInputError
from ..spaces import cell as nb201
from .build import read_results

DATA_DIR = Path(__file__).parent / "data"
DEFAULT = "nb201_mnist5k"


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def seed_agreement(rows: list) -> dict:
    """Kendall tau and Spearman rho between seeds, over the cells trained with several seeds."""
    by_cell = defaultdict(dict)
    for r in rows:
        by_cell[r["index"]][r["seed"]] = r
    multi = [v for v in by_cell.values() if len(v) > 1]
    if len(multi) < 3:
        return {"n_cells": len(multi)}
    seeds = sorted(set.intersection(*(set(v) for v in multi)))
    out = {"n_cells": len(multi), "seeds": len(seeds)}
    for metric, get in (("valid_acc", lambda r: r["valid_acc"][-1]), ("valid_loss", lambda r: -r["valid_loss"][-1]),
                        ("test_acc", lambda r: r["test_acc"])):
        taus, rhos = [], []
        for i in range(len(seeds)):
            for j in range(i + 1, len(seeds)):
                a = [get(v[seeds[i]]) for v in multi]
                b = [get(v[seeds[j]]) for v in multi]
                taus.append(kendalltau(a, b)[0])
                rhos.append(spearmanr(a, b)[0])
        out[f"tau_{metric}"] = float(np.mean(taus))
        out[f"rho_{metric}"] = float(np.mean(rhos))
    return out


def pack(build_dir, name: str = DEFAULT, out_dir=DATA_DIR, drop_short: bool = False) -> Path:
    """Turn ``build_dir/results.jsonl`` into the shipped ``name.npz`` + ``name.json``.

    A cell's entry is the mean of its first ``seeds_per_cell`` seeds, the same number for every cell. A cell
    with fewer (the last cell of a build stopped by ``limit``) is refused, since its mean would not be comparable;
    ``drop_short=True`` leaves such cells out of the table instead, as if untrained (the json's ``n_dropped_short``
    counts them).
    """
    build_dir, out_dir = Path(build_dir), Path(out_dir)
    meta = json.loads((build_dir / "recipe.json").read_text())
    rows = read_results(build_dir / "results.jsonl")
    per_cell = meta["recipe"].get("seeds_per_cell", 1)
    by_cell = defaultdict(dict)
    for r in rows:
        by_cell[r["index"]][r["seed"]] = r
    short = {c for c, v in by_cell.items() if not all(s in v for s in range(per_cell))}
    if short and not drop_short:
        missing = sum(per_cell - sum(s in by_cell[c] for s in range(per_cell)) for c in short)
        n = sum(len(v) for v in by_cell.values()) + missing
        raise NASInputError(
            f"{len(short)} cell(s) of {build_dir} have fewer than the recipe's {per_cell} seeds (seeds_per_cell), "
            f"{missing} training(s) short; resume the build to finish them (its jobs go in a fixed order, so the "
            f"limit must be at least {n}: `tutorial-nas bench build --data {meta['recipe']['dataset']} --out "
            f"{build_dir} --resume --limit {n}` when they were the last ones started), or pack(..., "
            "drop_short=True) to leave them out of the table")
    rows = [r for r in rows if r["index"] not in short]
    for c in short:
        del by_cell[c]
    # a cell's entry is the mean of its first k seeds (the seeds every cell is trained with)
    mine = {c: [v[s] for s in range(per_cell)] for c, v in by_cell.items()}
    if not mine:
        raise NASInputError(f"{build_dir} holds no finished cell yet")
    cells = np.array(sorted(mine), dtype=np.int32)
    mean = lambda key: np.array([np.mean([r[key] for r in mine[int(c)]], axis=0) for c in cells],  # noqa: E731
                                dtype=np.float32)
    pick = [mine[int(c)][0] for c in cells]
    epochs = len(pick[0]["valid_acc"])
    rep = nb201.canonical_table(meta["recipe"].get("rule", "autodl"))
    row_of = np.full(nb201.N_CELLS, -1, dtype=np.int32)
    position = {int(c): k for k, c in enumerate(cells)}
    for i in range(nb201.N_CELLS):
        row_of[i] = position.get(int(rep[i]), -1)
    multi = sorted(c for c, v in by_cell.items() if len(v) > 1)
    n_seeds = max((len(by_cell[c]) for c in multi), default=0)
    seeds_valid = np.full((len(multi), n_seeds), np.nan, dtype=np.float32)
    seeds_test = np.full((len(multi), n_seeds), np.nan, dtype=np.float32)
    for k, c in enumerate(multi):
        for s, r in by_cell[c].items():
            if s < n_seeds:
                seeds_valid[k, s], seeds_test[k, s] = r["valid_acc"][-1], r["test_acc"]
    arrays = dict(
        cells=cells, row_of=row_of,
        valid_curve=mean("valid_acc"), valid_loss_curve=mean("valid_loss"), train_loss_curve=mean("train_loss"),
        test_acc=mean("test_acc"), train_seconds=mean("seconds"),
        params=np.array([r["params"] for r in pick], dtype=np.int64),
        flops=np.array([r["flops"] for r in pick], dtype=np.int64),
        multi_cells=np.array(multi, dtype=np.int32), seeds_valid_acc=seeds_valid, seeds_test_acc=seeds_test,
    )
    assert arrays["valid_curve"].shape[1] == epochs
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    blob = buf.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.npz").write_bytes(blob)
    info = {"name": name, "recipe": meta["recipe"], "machine": meta["machine"], "started": meta["started"],
            "packed": date.today().isoformat(), "n_trained": len(cells),
            "n_unique": int(len(set(rep.tolist()))), "complete": bool(len(cells) == len(set(rep.tolist()))),
            "n_dropped_short": len(short), "seed_agreement": seed_agreement(rows), "sha256": _sha256(blob)}
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=1))
    return out_dir / f"{name}.npz"
