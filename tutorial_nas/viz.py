"""Pictures of architectures: graphviz drawings of cells and chains, heatmaps of DARTS' alphas.

Every function returns an object a notebook displays by itself: a ``graphviz.Digraph`` (call ``.render`` to
write a file; rendering needs the ``dot`` program) or a matplotlib ``Figure``.
"""

from __future__ import annotations

import graphviz
import numpy as np

from .errors import NASInputError, check_choice

_INPUT, _NODE, _OUTPUT = "darkseagreen2", "lightblue", "palegoldenrod"  # the colours of the DARTS plots


def _digraph(name: str) -> graphviz.Digraph:
    g = graphviz.Digraph(name, format="png")
    g.attr(rankdir="LR")
    g.attr("node", style="rounded, filled", shape="rect", align="center", fontname="helvetica",
           fontsize="16", height="0.5", width="0.5", penwidth="2")
    g.attr("edge", fontname="times", fontsize="16")
    return g


def draw_genotype(genotype, which: str = "normal") -> graphviz.Digraph:
    """One cell of a DARTS genotype (or its string), drawn as the DARTS paper does: the inputs c_{k-2}
    and c_{k-1}, the intermediate nodes 0..3 with their two operations, the output c_{k} joining them."""
    from .spaces.darts import as_genotype

    check_choice("cell", which, ("normal", "reduce"))
    g = as_genotype(genotype)
    pairs, concat = (g.normal, g.normal_concat) if which == "normal" else (g.reduce, g.reduce_concat)
    dot = _digraph(f"{which} cell")
    names = ["c_{k-2}", "c_{k-1}"] + [str(n) for n in range(len(pairs) // 2)]
    dot.node(names[0], fillcolor=_INPUT)
    dot.node(names[1], fillcolor=_INPUT)
    for n in range(len(pairs) // 2):
        dot.node(names[n + 2], fillcolor=_NODE)
    for p, (op, i) in enumerate(pairs):
        dot.edge(names[i], names[p // 2 + 2], label=op, fillcolor="gray")
    dot.node("c_{k}", fillcolor=_OUTPUT)
    for j in concat:
        dot.edge(names[j], "c_{k}", fillcolor="gray")
    return dot


def draw_nb201(cell) -> graphviz.Digraph:
    """A NAS-Bench-201 cell (6 ops or an arch string): nodes 0..3, a labelled edge per non-`none` op."""
    from .spaces.cell import EDGES, parse

    cell = parse(cell) if isinstance(cell, str) else tuple(cell)
    if len(cell) != len(EDGES):
        raise NASInputError(f"a NAS-Bench-201 cell has {len(EDGES)} ops, got {len(cell)}: {cell!r}")
    dot = _digraph("nb201 cell")
    labels = {0: "0 (input)", 1: "1", 2: "2", 3: "3 (output)"}
    colours = {0: _INPUT, 1: _NODE, 2: _NODE, 3: _OUTPUT}
    for k, label in labels.items():
        dot.node(str(k), label=label, fillcolor=colours[k])
    for (i, j), op in zip(EDGES, cell):
        if op != "none":  # `none` is the absence of an edge
            dot.edge(str(i), str(j), label=op)
    return dot


def draw_layers(labels: list, skips: list = ()) -> graphviz.Digraph:
    """A chain network: input -> layer 0 -> ... -> output, with a dashed edge for every skip ``(source,
    target)`` meaning that layer ``source``'s output also feeds layer ``target`` (source < target)."""
    labels = [str(label) for label in labels]
    if not labels:
        raise NASInputError("draw_layers needs at least one layer label")
    dot = _digraph("chain")
    dot.attr(rankdir="TB")
    dot.node("input", fillcolor=_INPUT)
    for k, label in enumerate(labels):
        dot.node(f"L{k}", label=f"{k}: {label}", fillcolor=_NODE)
        dot.edge("input" if k == 0 else f"L{k - 1}", f"L{k}")
    dot.node("output", fillcolor=_OUTPUT)
    dot.edge(f"L{len(labels) - 1}", "output")
    for skip in skips:
        if len(skip) != 2 or not 0 <= skip[0] < skip[1] < len(labels):
            raise NASInputError(f"skip {skip!r} must be (source, target) with 0 <= source < target < "
                                f"{len(labels)} (layer indices)")
        dot.edge(f"L{skip[0]}", f"L{skip[1]}", style="dashed", constraint="false")
    return dot


def alpha_heatmap(alphas, ops, edge_labels, ax=None, title: str | None = None):
    """The softmaxed architecture weights (rows: edges, columns: ops) as an annotated heatmap."""
    import matplotlib.pyplot as plt

    a = np.asarray(alphas, dtype=float)
    if a.shape != (len(edge_labels), len(ops)):
        raise NASInputError(f"alphas have shape {a.shape}, but there are {len(edge_labels)} edges and "
                            f"{len(ops)} ops")
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(ops), 0.8 + 0.35 * len(edge_labels)))
    else:
        fig = ax.figure
    im = ax.imshow(a, cmap="viridis", aspect="auto", vmin=0, vmax=max(a.max(), 1e-9))
    ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right")
    ax.set_yticks(range(len(edge_labels)), edge_labels)
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="black" if v > 0.6 * a.max() else "white")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def alpha_heatmaps_over_epochs(history, cell: str | None = None, epochs=None):
    """One heatmap per chosen epoch (default: first, middle, last) of a ``darts_search`` History."""
    import matplotlib.pyplot as plt

    if "alphas" not in getattr(history, "columns", ()) or not len(history):
        raise NASInputError("expected the History of oneshot.darts_search (it has an 'alphas' column)")
    cells = history.attrs.get("cells") or list(history["alphas"].iloc[0])
    cell = cell or cells[0]
    check_choice("cell", cell, cells)
    first = np.asarray(history["alphas"].iloc[0][cell])
    ops = history.attrs.get("ops") or [str(k) for k in range(first.shape[1])]
    edges = history.attrs.get("edges") or [str(e) for e in range(first.shape[0])]
    n = len(history)
    rows = sorted({0, n // 2, n - 1}) if epochs is None else [int(e) - 1 for e in epochs]
    if not all(0 <= r < n for r in rows):
        raise NASInputError(f"epochs must be in 1..{n}, got {epochs!r}")
    fig, axes = plt.subplots(1, len(rows), figsize=(1.2 + (0.9 * len(ops) + 1.5) * len(rows),
                                                    0.8 + 0.35 * len(edges)), squeeze=False)
    for ax, r in zip(axes[0], rows):
        row = history.iloc[r]
        alpha_heatmap(row["alphas"][cell], ops, edges, ax=ax, title=f"{cell}, epoch {int(row['epoch'])}")
    return fig
