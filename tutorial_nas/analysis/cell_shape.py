"""Wide and shallow cells learn fast: Shu, Wang & Cai (ICLR 2020), "Understanding Architectures Learnt by
Cell-based Neural Architecture Search", measured on the NAS-Bench-201 table.

The paper (Section 3.1) describes a cell by two numbers:

- depth: the number of connections along the longest path from the input nodes to the output node;
- width: the total width of the intermediate nodes connected to the input nodes, a node that also takes
  inputs from other intermediate nodes counting only for the share of its connections that come from the
  inputs (every connection has the same width c; here c = 1).

Its claim (Sections 3.2 and 4): the cells that NAS algorithms pick are wide and shallow because such cells
converge faster, so they win when candidates are compared early in training, without being better in the end.

NAS-Bench-201 differs from the DARTS cell the paper studies in two ways, and the definitions follow them:
one input node (node 0) instead of two, and an output node that sums its inputs through ops of its own
instead of concatenating the intermediate nodes. So a connection is an edge whose op is not ``none`` and that
lies on some input-to-output path (a branch that leads nowhere computes nothing); ``depth`` counts the
connections of the longest such path (0 to 3); ``width`` adds up, for the intermediate nodes 1 and 2 on such a
path, the share of their connections that come from the input, plus 1 for the edge 0->3, a branch straight
from the input to the sum (0 to 3). ``layer_depth`` counts only the ops along the longest path that compute
something (convolutions and pools, not ``skip_connect``), the depth a network of those cells really has.

    >>> table = cell_shapes(bench)          # one row per trained cell: depth, width, accuracy after each epoch
    >>> shape_claim(table)                  # Spearman correlations, and what they say
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..errors import NASInputError
from ..spaces.cell import EDGES, PATHS, parse

SHAPES = ("depth", "width", "layer_depth")


def _live(cell) -> set:
    """Edge positions on some input-to-output path whose ops are all other than ``none``."""
    return {e for path in PATHS if all(cell[e] != "none" for e in path) for e in path}


def cell_shape(cell) -> dict:
    """``depth``, ``width`` and ``layer_depth`` of an NB201 cell (a tuple of 6 ops or an arch string)."""
    cell = parse(cell) if isinstance(cell, str) else tuple(cell)
    if len(cell) != len(EDGES):
        raise NASInputError(f"a NAS-Bench-201 cell is 6 op names (e01, e02, e12, e03, e13, e23), got {cell!r}")
    live = _live(cell)
    paths = [p for p in PATHS if set(p) <= live]
    depth = max((len(p) for p in paths), default=0)
    layer_depth = max((sum(cell[e] != "skip_connect" for e in p) for p in paths), default=0)
    width = float(3 in live)  # edge 0->3: a branch straight from the input to the output's sum
    for node in (1, 2):
        into = [e for e in live if EDGES[e][1] == node]
        if into:  # the share of the node's connections that come from the input (node 0)
            width += sum(EDGES[e][0] == 0 for e in into) / len(into)
    return {"depth": depth, "width": width, "layer_depth": layer_depth}


def cell_shapes(bench, arches=None) -> pd.DataFrame:
    """One row per cell the table trained (its representative of each isomorphism class, the member with the
    smallest index), or per arch of ``arches``: the arch, ``depth``, ``width``, ``layer_depth``,
    ``valid_ep{k}`` for every epoch k (``bench.query(arch, epoch=k)``) and ``test_acc``."""
    rows = []
    for arch in bench.frame()["arch"] if arches is None else arches:
        row = {"arch": arch, **cell_shape(arch)}
        for k in range(1, bench.epochs + 1):
            row[f"valid_ep{k}"] = bench.query(arch, epoch=k)["valid_acc"]
        row["test_acc"] = bench.query(arch)["test_acc"]
        rows.append(row)
    return pd.DataFrame(rows)


def _claim_statistics(t: pd.DataFrame, first_col: str, final_col: str, n_top: int) -> pd.DataFrame:
    first, final = t[first_col], t[final_col]
    gain = final.rank() - first.rank()  # rank 1 = worst: a positive gain is a cell that climbs late
    rows = []
    for m in SHAPES:
        rows.append({"measure": m, "rho_first": spearmanr(t[m], first)[0], "rho_final": spearmanr(t[m], final)[0],
                     "rho_rank_gain": spearmanr(t[m], gain)[0],
                     "top_first": t.loc[first.nlargest(n_top).index, m].mean(),
                     "top_final": t.loc[final.nlargest(n_top).index, m].mean()})
    return pd.DataFrame(rows).set_index("measure")


def _predictions(out: pd.DataFrame) -> dict:
    """Each prediction of the claim as a number that is positive where it holds."""
    preds = {}
    for m in SHAPES:  # the claim: wider cells are favoured early, deeper ones late
        sign, r = (1 if m == "width" else -1), out.loc[m]
        preds[f"{m}: favoured {'more' if sign > 0 else 'less'} after the first epoch than after the last"] = \
            sign * (r.rho_first - r.rho_final)
        preds[f"{m}: {'loses' if sign > 0 else 'gains'} rank from the first epoch to the last"] = \
            -sign * r.rho_rank_gain
        preds[f"{m}: the early winners have {'more' if sign > 0 else 'less'} of it than the final winners"] = \
            sign * (r.top_first - r.top_final)
    return preds


def shape_claim(table: pd.DataFrame, top: float = 0.1, verbose: bool = True, n_boot: int = 200,
                level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Test the claim on ``table`` (from ``cell_shapes``), over the cells that pass a signal (depth >= 1).

    One row per shape measure, Spearman's rho of the measure with the validation accuracy after the first
    epoch (``rho_first``) and after the last (``rho_final``), and with the rank a cell gains from the first
    epoch to the last (``rho_rank_gain``, positive: the larger the measure, the more the cell climbs later).
    ``top_first`` and ``top_final``: the measure's mean over the best ``top`` share of cells by the first and
    by the last epoch. The claim predicts, for width, rho_first > rho_final, rho_rank_gain < 0 and
    top_first > top_final; for both depths, the opposite signs.

    A difference of 0.01 between two rhos over thousands of cells says nothing, so each prediction is read
    against a bootstrap over the cells (``n_boot`` resamples): it ``"holds"`` where its difference has the
    claim's sign in at least ``level`` of the resamples, ``"fails"`` where it has the opposite sign as often, and
    is ``"not established"`` otherwise. ``attrs["checks"]`` holds each prediction's outcome, ``attrs["counts"]``
    how many of each, ``attrs["verdict"]`` a sentence of them.
    """
    epochs = sorted(int(c[len("valid_ep"):]) for c in table.columns if c.startswith("valid_ep"))
    if len(epochs) < 2:
        raise NASInputError("the claim compares early and final accuracy: the table needs two epochs or more")
    t = table[table["depth"] >= 1].reset_index(drop=True)
    cols = (f"valid_ep{epochs[0]}", f"valid_ep{epochs[-1]}")
    n = max(1, int(round(top * len(t))))
    out = _claim_statistics(t, *cols, n)
    preds = _predictions(out)
    rng = np.random.default_rng(seed)
    positive = dict.fromkeys(preds, 0)
    for _ in range(n_boot):
        sample = t.iloc[rng.integers(len(t), size=len(t))].reset_index(drop=True)
        for k, v in _predictions(_claim_statistics(sample, *cols, n)).items():
            positive[k] += v > 0
    checks = {}
    for k in preds:
        share = positive[k] / n_boot
        checks[k] = "holds" if share >= level else "fails" if share <= 1 - level else "not established"
    counts = {c: sum(v == c for v in checks.values()) for c in ("holds", "fails", "not established")}
    out.attrs["checks"] = checks
    out.attrs["counts"] = counts
    out.attrs["verdict"] = (f"{counts['holds']} of {len(checks)} predictions of the claim "
                            f"{'holds' if counts['holds'] == 1 else 'hold'}, {counts['fails']} "
                            f"{'fails' if counts['fails'] == 1 else 'fail'} (the opposite holds), "
                            f"{counts['not established']} {'is' if counts['not established'] == 1 else 'are'} not "
                            "established "
                            f"({level:.0%} of {n_boot} bootstrap resamples of the {len(t)} cells; epoch {epochs[0]} "
                            f"against epoch {epochs[-1]})")
    if verbose:
        print(out.round(3).to_string())
        for k, v in checks.items():
            print(f"  {v}: {k}")
        print(out.attrs["verdict"])
    return out


__all__ = ["SHAPES", "cell_shape", "cell_shapes", "shape_claim"]
