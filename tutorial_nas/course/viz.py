"""Pictures of architectures: graphviz drawings of cells and chains, heatmaps of DARTS' alphas.

Every function returns an object a notebook displays by itself: a ``graphviz.Digraph`` (call ``.render`` to
write a file; rendering needs the ``dot`` program) or a matplotlib ``Figure``.
"""

from __future__ import annotations

import graphviz
import numpy as np

from ..errors import NASInputError, check_choice
from ..text import count

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
    from ..spaces.darts import as_genotype

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
    from ..spaces.cell import EDGES, parse

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


def draw_chain(arch) -> graphviz.Digraph:
    """A network of the chain space: every layer with the layers it reads (the image when it reads none);
    the layers nobody reads are concatenated into the output, as Zoph & Le's networks do."""
    from ..spaces.chain import consumers

    dot = _digraph("chain")
    dot.attr(rankdir="TB")
    dot.node("image", fillcolor=_INPUT)
    for i, layer in enumerate(arch):
        pool = "" if layer.pool == "none" else f"\\n{layer.pool}"
        dot.node(f"L{i}", label=f"{i}: conv{layer.kernel}x{layer.kernel}, {layer.filters}{pool}", fillcolor=_NODE)
        for j in layer.inputs or ("image",):
            src = j if j == "image" else f"L{j}"
            dot.edge(src, f"L{i}", style="solid" if j == "image" or j == i - 1 else "dashed")
    dot.node("output", label="concat, pool, linear", fillcolor=_OUTPUT)
    if not arch:  # no layer (large-scale evolution's start): the image itself is pooled into the classifier
        dot.edge("image", "output")
    for i, readers in enumerate(consumers(arch)):
        if not readers:
            dot.edge(f"L{i}", "output")
    return dot


def draw_genetic(arch) -> graphviz.Digraph:
    """A Genetic CNN network: per stage the input node, the connected nodes of the bit string, the output
    node; stages joined by pooling."""
    from ..spaces.genetic import stage_edges

    dot = _digraph("genetic")
    prev = "image"
    dot.node("image", fillcolor=_INPUT)
    for s, bits in enumerate(arch):
        K = next(k for k in range(2, 20) if k * (k - 1) // 2 == len(bits))
        edges = stage_edges(bits, K)
        active = sorted({n for e in edges for n in e})
        with dot.subgraph(name=f"cluster_{s}") as sub:
            sub.attr(label=f"stage {s + 1} ({''.join(map(str, bits))})", style="dashed")
            sub.node(f"s{s}in", label="in", fillcolor=_INPUT)
            sub.node(f"s{s}out", label="out", fillcolor=_OUTPUT)
            for n in active:
                sub.node(f"s{s}n{n}", label=f"{n}", fillcolor=_NODE)
        dot.edge(prev, f"s{s}in", label="pool" if s else "")
        for i, j in edges:
            dot.edge(f"s{s}n{i}", f"s{s}n{j}")
        for n in active:
            if not any(j == n for _, j in edges):
                dot.edge(f"s{s}in", f"s{s}n{n}")
            if not any(i == n for i, _ in edges):
                dot.edge(f"s{s}n{n}", f"s{s}out")
        if not active:
            dot.edge(f"s{s}in", f"s{s}out")
        prev = f"s{s}out"
    dot.node("output", label="pool, linear", fillcolor=_OUTPUT)
    dot.edge(prev, "output")
    return dot


def draw_search_loop() -> graphviz.Digraph:
    """The loop of Part I: a controller proposes, the candidate is trained and validated, the ranking feeds
    back; the test split never steers it: it reports the network the validation split chose."""
    dot = _digraph("loop")
    dot.node("space", label="search space\\n(operations, connections)", fillcolor=_INPUT)
    dot.node("controller", label="controller / strategy", fillcolor=_NODE)
    dot.node("train", label="train candidate\\n(training split)", fillcolor=_NODE)
    dot.node("valid", label="rank on\\nvalidation split", fillcolor=_NODE)
    dot.node("test", label="best network:\\ntest split reports", fillcolor=_OUTPUT)
    dot.edge("space", "controller")
    dot.edge("controller", "train", label="architecture")
    dot.edge("train", "valid")
    dot.edge("valid", "controller", label="reward / fitness", style="dashed")
    dot.edge("valid", "test", label="budget spent")
    return dot


_STYLES = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"), ((0, (5, 1, 1, 1)), "v"), ((0, (1, 3)), "P")]


def line_style(k: int) -> dict:
    """The k-th series' colour, line style and marker: lines that coincide stay told apart by their dashes."""
    dash, marker = _STYLES[k % len(_STYLES)]
    return {"color": f"C{k % 10}", "linestyle": dash, "marker": marker}


def plot_histories(histories: dict, x: str = "step", ax=None, title: str | None = None):
    """Validation accuracy of every evaluated candidate (markers) and the best so far (line), per strategy.

    ``histories`` maps a strategy name to its History; ``x`` is ``"step"`` (evaluated candidates) or
    ``"spent_s"`` (seconds charged). Each strategy has its own colour, dashes and marker, drawn thicker for
    the first ones, so that best-so-far lines that coincide all stay visible. The y axis is scaled to the
    best-so-far lines; candidates far below them are drawn on the lower edge (open triangles) and counted."""
    import matplotlib.pyplot as plt

    check_choice("x axis", x, ("step", "spent_s"))
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    histories = {name: h for name, h in histories.items() if len(h)}
    n = len(histories)
    low = _accuracy_floor([h["best_valid_acc"] for h in histories.values()],
                          [h["valid_acc"] for h in histories.values()])
    below = 0
    for k, (name, h) in enumerate(histories.items()):
        style = line_style(k)
        xs = np.asarray(h[x], dtype=float) + (1 if x == "step" else 0)
        acc = np.asarray(h["valid_acc"], dtype=float)
        keep = acc >= low
        below += int((~keep).sum())
        ax.scatter(xs[keep], acc[keep], s=14, alpha=0.45, color=style["color"], marker=style["marker"],
                   linewidths=0)
        ax.scatter(xs[~keep], np.full((~keep).sum(), low), s=22, color=style["color"], marker="v",
                   facecolors="none", clip_on=False)
        ax.step(xs, h["best_valid_acc"], where="post", color=style["color"], linestyle=style["linestyle"],
                linewidth=1.2 + 1.3 * (n - 1 - k) / max(1, n - 1), label=name, zorder=3 + k)
    ax.set_ylim(bottom=low)
    if x == "step":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("evaluated candidates" if x == "step" else "seconds charged")
    ax.set_ylabel("validation accuracy (%)")
    if histories:
        handles, labels = ax.get_legend_handles_labels()
        if below:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="gray", marker="v", markerfacecolor="none", linestyle="none"))
            labels.append(f"{count(below, 'candidate')} below {low:.0f} %")
        # beside the axes, never over the points
        ax.legend(handles, labels, title="best so far", fontsize=8, title_fontsize=8, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(title or "Validation accuracy: every candidate and the best so far")
    return fig if fig is not None else ax.figure


def _accuracy_floor(best_curves, all_values) -> float:
    """The lower y limit of an accuracy plot: all candidates when they lie close to the best-so-far lines,
    else a margin under the lowest best-so-far value, so that the lines' differences fill the axis."""
    best = np.concatenate([np.asarray(c, dtype=float) for c in best_curves]) if best_curves else np.zeros(1)
    every = np.concatenate([np.asarray(c, dtype=float) for c in all_values]) if all_values else best
    lowest_best, lowest, top = float(np.nanmin(best)), float(np.nanmin(every)), float(np.nanmax(every))
    floor = lowest_best - max(2.0, 0.25 * (top - lowest_best))
    return max(0.0, floor if lowest < floor else lowest - 1.0)


def alpha_norm(alphas_list, n_ops: int):
    """A colour scale for softmaxed weights centred on uniform, 1/K (white): above it red, below blue, its ends
    the most extreme weights of all the panels, so that one colour means one weight across epochs."""
    from matplotlib.colors import TwoSlopeNorm

    uniform = 1.0 / n_ops
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in alphas_list])
    span = max(float(np.abs(values - uniform).max()), 1e-3)  # a run that did not move shows as pale, not as noise
    return TwoSlopeNorm(vcenter=uniform, vmin=max(0.0, uniform - span), vmax=min(1.0, uniform + span))


def alpha_heatmap(alphas, ops, edge_labels, ax=None, title: str | None = None, norm=None, colorbar: bool = True):
    """The softmaxed architecture weights (rows: edges, columns: ops) as an annotated heatmap.

    Colours are centred on the uniform weight 1/K (white): red above, blue below. ``norm`` (from
    :func:`alpha_norm`) shares one scale between several heatmaps; by default the scale spans this one."""
    import matplotlib.pyplot as plt

    a = np.asarray(alphas, dtype=float)
    if a.shape != (len(edge_labels), len(ops)):
        raise NASInputError(f"alphas have shape {a.shape}, but there are {len(edge_labels)} edges and "
                            f"{len(ops)} ops")
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(ops), 0.9 + 0.35 * len(edge_labels)))
    else:
        fig = ax.figure
    norm = norm or alpha_norm([a], len(ops))
    im = ax.imshow(a, cmap="RdBu_r", norm=norm, aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right")
    ax.set_yticks(range(len(edge_labels)), edge_labels)
    digits = 2 if norm.vmax - norm.vmin > 0.05 else 3  # a run that barely moved needs the third decimal
    for (r, c), v in np.ndenumerate(a):
        strong = abs(norm(v) - 0.5) > 0.35  # dark cell: white text
        ax.text(c, r, f"{v:.{digits}f}", ha="center", va="center", fontsize=7, color="white" if strong else "black")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        bar = fig.colorbar(im, ax=ax, fraction=0.04)
        bar.set_label(f"softmax weight (white: uniform 1/{len(ops)})", fontsize=8)
    if own:
        fig.tight_layout()
    return fig


MAX_WIDTH_IN = 11.0  # the widest figure of heatmaps: wider ones are scaled down and their numbers become unreadable


def alpha_heatmaps_over_epochs(history, cell: str | None = None, epochs=None):
    """One heatmap per chosen epoch (default: first, middle, last) of a ``darts_search`` History, all on one
    colour scale (that of every epoch of the run, so a slider over epochs keeps its colours), titled with the
    mean edge entropy against the uniform log K; side by side up to ``MAX_WIDTH_IN`` inches, then in rows."""
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
    from ..oneshot.darts import mean_entropy

    norm = alpha_norm([a[cell] for a in history["alphas"]], len(ops))
    # panels side by side while the figure stays within about 11 inches (a notebook's width at full size), then
    # in rows: the numbers in the cells keep their size when the figure is shown
    panel = 0.55 * len(ops) + 0.3
    ncols = max(1, min(len(rows), int((MAX_WIDTH_IN - 1.6) // panel)))
    nrows = -(-len(rows) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 + panel * ncols, nrows * (1.3 + 0.3 * len(edges))),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        if k >= len(rows):
            ax.axis("off")
            continue
        row = history.iloc[rows[k]]
        a = row["alphas"][cell]
        alpha_heatmap(a, ops, edges, ax=ax, norm=norm, colorbar=False,
                      title=f"{cell}, epoch {int(row['epoch'])}: entropy {mean_entropy(a):.3f}")
        if k % ncols:
            ax.set_yticklabels([])
    shown = [ax for ax in axes.ravel() if ax.images]
    bar = fig.colorbar(shown[0].images[0], ax=shown, fraction=0.03 if len(rows) > 1 else 0.05)
    bar.set_label(f"softmax weight (white: uniform 1/{len(ops)})", fontsize=8)
    fig.suptitle(f"Softmaxed architecture weights; mean edge entropy of uniform: log {len(ops)} = "
                 f"{np.log(len(ops)):.3f}", fontsize=10)
    return fig
