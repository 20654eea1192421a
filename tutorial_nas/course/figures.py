"""The course's figures as files, computed by the package: what the slides show.

    tutorial-nas figures --out DIR [--profile ci|cpu|gpu] [--only NAME,NAME]

``write_figures`` calls the functions the chapters call (``viz``, ``compare``, ``literature``, ``hardware``,
``oneshot.darts``, the benchmark), at the sizes of the profile (its ``figures`` section says how many
candidates, epochs and seeds), and writes one file per figure: SVG for the graphviz drawings, PNG for the
matplotlib plots. Next to them, ``numbers.json`` holds every number the slides quote, computed in the same run,
plus the published results of ``literature.csv`` with their sources (``lit``), so a slide either shows a
number this run measured or cites one from the table. Where a slide interprets a number (near chance, better
than random search, smaller than one table entry's noise), the words are computed here from the number by the
small functions below (``climb_words``, ``compare_verdicts``, ``gap_size``...) and stored beside it.

In the ``ci`` profile the whole set takes well under a minute on two CPU cores; ``cpu`` is the size to
teach from (minutes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .._json import json_safe
from ..errors import NASInputError
from ..text import count

# name -> (tutorial part, what it shows). The order is the order of the slides.
FIGURES = {
    "search_loop": (1, "the loop of early NAS: propose, train, rank on validation, feed back"),
    "chain_architecture": (1, "a network sampled from the global chain space (skip connections dashed)"),
    "full_training": (1, "learning curves of fully trained chain candidates, measured here"),
    "early_costs": (1, "search cost: this run extrapolated to CIFAR-10 beside the early papers (GPU-days)"),
    "darts_cell": (2, "a normal cell of the DARTS space"),
    "nb201_cell": (2, "the ResNet-like cell of the NAS-Bench-201 space"),
    "darts_alphas": (2, "DARTS' softmaxed architecture weights on the NAS-Bench-201 supernet"),
    "low_fidelity": (2, "low fidelity: accuracy after one epoch against the final test accuracy"),
    "bench_distribution": (3, "the tabular benchmark: accuracy of every cell and what training it cost"),
    "compare_anytime": (3, "strategies on the benchmark: mean regret against budget, confidence bands"),
    "compare_final": (3, "strategies on the benchmark: final test accuracy per seed"),
    "literature_cost": (3, "published CIFAR-10 results: error against search cost (GPU-days)"),
    "latency_front": (4, "latency measured on this device against accuracy, and against FLOPs"),
}


def _markdown_table(rows: list, columns: list) -> str:
    """A Markdown table of ``rows`` (dicts) with ``columns`` as ``(key, header, format)``; a missing or NaN
    value is an empty cell."""
    def cell(value, spec):
        value = json_safe(value)
        return "" if value is None else format(value, spec)

    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


# -- sentences that interpret a number: computed here from the number, so the words follow the run ------------
def climb_words(first_acc: float, chance: float) -> str:
    """Where the candidates' learning curves start, read against chance: "near chance" only below 1.5x it."""
    ratio = first_acc / chance
    if ratio < 1.5:
        return (f"every curve starts near chance ({first_acc:.0f} % after the first epoch, chance {chance:.0f} %), "
                "and each candidate pays the whole climb")
    return (f"the curves start at {first_acc:.0f} % after the first epoch on average, {ratio:.1f}x chance "
            f"({chance:.0f} %), and each candidate pays the climb from there again")


def build_vs_chapter(built: int, chapter: int, dataset: str, epochs: int) -> str:
    """What this build trains against what chapter 1 trains at the same profile (the same space and recipe)."""
    than = ("fewer than" if built < chapter else "as many as" if built == chapter else "more than")
    return (f"this build trains {built} candidates by random search, {than} the {chapter} proposals chapter 1 "
            f"makes with each of its strategies at this profile, on the same space and recipe ({dataset}, "
            f"{epochs} epochs)")


def unit_words(device: str) -> str:
    """What the days of this machine are next to the papers' GPU-days."""
    if device == "GPU":
        return ("a GPU-day here is not a GPU-day of the papers: other GPUs and far smaller networks; the two sides "
                "give orders of magnitude, not a conversion")
    return f"a {device}-day is not a GPU-day: the two sides give orders of magnitude, not a conversion"


def alpha_move_words(max_move_pp: float, n_ops: int) -> str:
    """How far DARTS' softmaxed alphas left uniform (1/n_ops), in percentage points: below one point the
    derived argmax rests on differences that small."""
    uniform = 100.0 / n_ops
    if max_move_pp < 1.0:
        return (f"the alphas barely left uniform ({uniform:.0f} % each): at most {max_move_pp:.2f} points, so the "
                "derived argmax rests on differences that small")
    return (f"the alphas moved up to {max_move_pp:.1f} points from uniform ({uniform:.0f} % each); the derived "
            "argmax follows those moves")


def ranking_bound_words(tau: float, tau_one_seed: float, tau_table: float, what: str) -> str:
    """A ranking's Kendall tau against the table, read against the two agreements the table's seeds give: one
    training against another (``tau_one_seed``) and the table against an independent rebuild (``tau_table``, the
    bound for a ranking judged against this table, whose entries average several seeds)."""
    if tau > tau_table:
        return (f"{what} ({tau:.2f}) agrees with the table more than the table would with a rebuild of it "
                f"({tau_table:.2f}): part of that agreement is the table's own noise")
    if tau > tau_one_seed:
        return (f"{what} ({tau:.2f}) agrees with the table better than one training of the cells agrees with "
                f"another ({tau_one_seed:.2f}), and less than the table's reliability ({tau_table:.2f})")
    return (f"{what} ({tau:.2f}) agrees with the table no better than one training of the cells with another "
            f"({tau_one_seed:.2f}); the table's reliability is {tau_table:.2f}")


def rho_words(rho: float, again: float | None = None) -> str:
    """How well FLOPs order the measured latencies (Spearman rho). With ``again``, the Spearman correlation of two
    timings of the same cells, rho is read against the most a perfect proxy could reach against one noisy timing,
    about sqrt(again) (``analysis.hardware.proxy_reading``), rather than against 1."""
    from ..analysis.hardware import proxy_ceiling

    ceiling, against = 1.0, ""
    if again is not None:
        ceiling = proxy_ceiling(again)
        if ceiling is None:
            return (f"FLOPs cannot be read against these timings (Spearman rho {rho:.2f}): the same cells timed "
                    f"twice do not rank alike (rho {again:.2f})")
        against = (f"; timed twice, the cells rank alike at rho {again:.2f}, so a perfect proxy would reach about "
                   f"{ceiling:.2f}")
    share = rho / ceiling
    if share >= 0.9:
        return f"FLOPs order the latencies almost as measured (Spearman rho {rho:.2f}{against})"
    if share >= 0.5:
        return f"FLOPs only partly predict the order of the latencies (Spearman rho {rho:.2f}{against})"
    return f"FLOPs predict the order of the latencies poorly (Spearman rho {rho:.2f}{against})"


def compare_verdicts(table, baseline: str = "random") -> dict:
    """``final_table``'s tests against ``baseline`` in three lists: better and worse where the two-sided test is
    significant after Holm's correction (``p_holm_vs_<baseline>``), every other strategy not shown to differ."""
    alpha = table.attrs.get("alpha", 0.05)
    p_holm, direction = table[f"p_holm_vs_{baseline}"], table[f"vs_{baseline}"]
    tested = [s for s in table.index if s != baseline and p_holm.loc[s] == p_holm.loc[s]]
    out = {}
    for key in ("better", "worse"):
        names = [s for s in tested if direction.loc[s] == key and p_holm.loc[s] < alpha]
        out[key] = ", ".join(names) or "none"
    shown = {s for key in ("better", "worse") for s in out[key].split(", ")}
    out["not_different"] = ", ".join(s for s in tested if s not in shown) or "none"
    out["tests"] = len(tested)
    return out


def gap_size(gap: float, entry_noise: float) -> str:
    """A gap between two strategies against the noise of one reported accuracy: "smaller than" or "larger than"."""
    return "smaller than" if abs(gap) < entry_noise else "larger than"


def gap_words(best: str, gap: float, std_low: float, std_high: float, entry_noise: float) -> str:
    """The best strategy's gap over random search set against the spread over search seeds and against the noise
    of one reported accuracy (the median seed-to-seed std of a cell over the square root of the seeds a reported
    accuracy averages: the report half of the table's seeds, the half the searches did not read)."""
    size = gap_size(gap, entry_noise)
    return (f"{best} ends {gap:+.2f} points from random search; the final accuracy varies by {std_low:.2f} to "
            f"{std_high:.2f} points (std) over search seeds, and one reported accuracy is noisy by about "
            f"{entry_noise:.2f}: the gap is {size} that noise")


def random_words(verdicts: dict, strategies: int) -> str:
    """Whether random search was beaten in this run, from ``compare_verdicts``."""
    better = [s for s in verdicts["better"].split(", ") if s != "none"]
    if not better:
        return "no strategy ends significantly above random search in this run"
    return f"{len(better)} of {strategies} other strategies end significantly above random search ({', '.join(better)})"


def family_counts(cifar, moved) -> str:
    """The CIFAR-10 table's results per family (the course's grouping) and the rows grouped otherwise than in the
    survey (``literature.regrouped``)."""
    counts = cifar["family"].value_counts()
    text = ("Results per family, in the course's grouping: "
            + ", ".join(f"{fam} {n}" for fam, n in counts.items()) + ".")
    if len(moved):
        text += (" Grouped otherwise than in the survey: "
                 + "; ".join(f"{r.method} ({r.survey_family} there, {r.family_here} here)" for r in moved.itertuples())
                 + ".")
    return text


def nb201_baseline(nb) -> str:
    """NAS-Bench-201's Table 5 on CIFAR-10 read for the hand-designed ResNet cell and the weight-sharing searches:
    where the ResNet cell stands against every search's mean, and the best weight-sharing mean."""
    rows = nb.set_index("method")
    resnet = float(rows.loc["ResNet", "c10_test"])
    searches = nb[~nb["family"].isin(["Human", ""]) & nb["search_s"].notna()].set_index("method")["c10_test"]
    above = searches[searches >= resnet]
    ws = searches[nb.set_index("method").loc[searches.index, "search_s"] > 100]  # supernets: hours of search
    best_ws = ws.idxmax()
    where = ("above every search's mean" if above.empty else
             f"below {', '.join(above.index)}")
    return (f"On CIFAR-10 the hand-designed ResNet cell ({resnet:.2f} %) is {where}; the best weight-sharing "
            f"search, {best_ws}, reaches {ws.max():.2f} %, the worst, {ws.idxmin()}, {ws.min():.2f} %.")


def literature_numbers() -> dict:
    """The published results, keyed ``lit[table][method][column]``, with each row's ``source``."""
    from ..analysis import literature as L

    out = {}
    for table, df in (("cifar10", L.load_cifar10()), ("imagenet", L.load_imagenet()),
                      ("nb201", L.load_nb201_table())):
        rows = {}
        for rec in df.to_dict("records"):
            key, k = rec["method"], 2
            while key in rows:  # a method reported twice (ImageNet at two input sizes) keeps both
                key, k = f"{rec['method']} #{k}", k + 1
            rows[key] = {c: v for c, v in rec.items() if v == v}  # published N/A stays absent, never zero
        out[table] = rows
    cifar = L.load_cifar10()
    costs = L.median_cost_by_family(cifar).numbers.attrs  # the medians for the slide, the gaps for its notes
    out["claims"] = {"median_cost": costs["medians"], "median_gaps": costs["gaps"],
                     "nas_vs_human": str(L.best_nas_vs_best_human(cifar)),
                     "nas_vs_human_5m": str(L.best_nas_vs_best_human(cifar, max_params=5))}
    nb = L.load_nb201_table()
    out["claims"]["families"] = family_counts(cifar, L.regrouped(cifar))
    out["claims"]["nb201_baseline"] = nb201_baseline(nb)
    out["nb201_md"] = _markdown_table(nb.to_dict("records"), [
        ("family", "family", ""), ("method", "method", ""), ("search_s", "search (s)", ",.6g"),
        ("c10_test", "CIFAR-10 test %", ".2f"), ("c10_test_std", "±", ".2f"),
        ("in16_test", "ImageNet16-120 test %", ".2f")])
    return out


@dataclass
class _Run:
    """What several figures share, computed once: the profile, the benchmark, the searches."""

    profile: object
    numbers: dict = field(default_factory=dict)

    @cached_property
    def bench(self):
        from ..bench import load_benchmark

        return load_benchmark()

    @cached_property
    def frame(self):
        return self.bench.frame()

    @cached_property
    def chain(self):
        """A random search of the chain space, every candidate fully trained (chapter 1's evaluator)."""
        from ..evaluators import training_from_profile
        from ..search import search
        from ..spaces import make_space

        c = self.profile.chain
        space = make_space("chain", max_layers=c.max_layers, filters=tuple(c.filters))
        evaluator = training_from_profile(space, self.profile)
        history = search(space, "random", evaluator, self.profile.figures.chain_candidates, seed=0, progress=False)
        return space, evaluator, history

    @cached_property
    def comparison(self):
        """Chapter 3's comparison on the benchmark, at the figures' strategies and seeds."""
        from ..analysis.compare import compare, final_table, profile_budget
        from ..spaces import make_space

        f = self.profile.figures
        start = time.perf_counter()
        df = compare(make_space("nb201"), list(f.compare_strategies), f.compare_seeds,
                     profile_budget(self.profile, self.bench), bench=self.bench, progress=False)
        self.compare_seconds = time.perf_counter() - start  # wall time of every run together
        return df, final_table(df)


# -- one function per figure: returns a graphviz.Digraph or a matplotlib Figure, adds to run.numbers ---------
def _search_loop(run):
    from .viz import draw_search_loop

    return draw_search_loop()


def _chain_architecture(run):
    from ..spaces.chain import ChainSpace
    from .viz import draw_chain

    demo = ChainSpace(max_layers=4, filters=(8, 16, 32))  # chapter 1's drawing: the same space and seed
    arch = demo.sample(np.random.default_rng(3))
    run.numbers["chain"] = {"arch": demo.to_str(arch), "layers": len(arch),
                            **{f"size_{n}": ChainSpace(max_layers=n, filters=(16, 32, 64)).size()
                               for n in (2, 4, 6, 8)}}
    return draw_chain(arch)


def _full_training(run):
    import matplotlib.pyplot as plt

    from ..analysis.costs import CIFAR10, PAPER_CANDIDATES, PAPER_EPOCHS, at_cifar10_scale, device_name
    from .viz import line_style

    space, evaluator, history = run.chain
    c, data = run.profile.chain, evaluator.data
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, r in enumerate(history.itertuples()):  # own dashes and marker each: equal curves stay visible
        curve = list(r.curve)
        ax.plot(range(1, len(curve) + 1), curve, **line_style(k), linewidth=2.4 - 1.2 * k / max(1, len(history) - 1),
                label=f"candidate {k + 1}: {r.cost_s:.1f} s, test {r.test_acc:.1f} %")
    chance = 100.0 / data.num_classes
    ax.axhline(chance, color="gray", ls=":", label=f"chance ({chance:.0f} %)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)",
           title=f"Every candidate trained from scratch: {c.dataset}, {c.epochs} epochs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    mean_s, cifar_epochs = float(history["cost_s"].mean()), 50
    cifar_s = at_cifar10_scale(mean_s, data, c.epochs, cifar_epochs)
    first = [list(x)[0] for x in history["curve"]]
    first_acc = float(np.mean(first))
    dev = device_name(data.device)
    # the papers' own counts of networks and epochs (analysis.costs), as chapter 1's cost table scales them
    papers = {key: (PAPER_CANDIDATES[method], PAPER_EPOCHS[method],
                    PAPER_CANDIDATES[method] * cifar_s * PAPER_EPOCHS[method] / cifar_epochs / 86400)
              for key, method in (("zoph", "NAS-RL, Zoph & Le"), ("metaqnn", "MetaQNN"))}
    run.numbers["full_training"] = {
        "candidates": len(history), "dataset": c.dataset, "epochs": c.epochs, "mean_s": mean_s,
        "train_images": len(data.train_y), "chance": chance, "first_epoch_acc": first_acc,
        "first_epoch_min": float(min(first)), "first_epoch_max": float(max(first)),
        "climb": climb_words(first_acc, chance), "chapter_candidates": c.budget,
        "build_vs_chapter": build_vs_chapter(len(history), c.budget, c.dataset, c.epochs),
        "best_valid_acc": float(history["valid_acc"].max()), "cifar10_images": CIFAR10["train_images"],
        "cifar10_epochs": cifar_epochs, "cifar10_hours": cifar_s / 3600, "device": dev, "unit": unit_words(dev),
        **{f"{key}_{name}": value for key, values in papers.items()
           for name, value in zip(("candidates", "epochs", "days"), values)}}
    return fig


def _early_costs(run):
    import matplotlib.pyplot as plt

    from ..analysis.costs import columns, cost_table, device_name

    _, evaluator, history = run.chain
    table = cost_table({"random": history}, evaluator.data, epochs=run.profile.chain.epochs)
    col, dev = columns(evaluator.data.device), device_name(evaluator.data.device)
    ours = table[col["search_days"]].notna()
    days = table[col["search_days"]].where(ours, table[col["paper_days"]])  # one bar a search, coloured by unit
    fig, ax = plt.subplots(figsize=(7, 3.6))
    colours = ["tab:blue" if o else "tab:red" for o in ours]
    labels = [s.replace(" (this chapter)", f"\n({int(n)} networks trained, this run)") if o else s
              for s, n, o in zip(table["search"], table[col["trained"]], ours)]
    ax.barh(labels, days, color=colours)
    ax.set_xscale("log")
    ax.set_xlim(right=float(days.max()) * 10)  # room for the labels
    ax.invert_yaxis()
    ax.set(xlabel=f"search cost (days, log scale: {dev}-days in blue, GPU-days in red)",
           title="What full training costs")
    for y, v in enumerate(days):
        ax.text(v, y, f" {v:,.0f}" if v >= 10 else f" {v:.2g}", va="center", fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:red", label="published (GPU-days)"),
                       Patch(color="tab:blue", label=f"this run, extrapolated to CIFAR-10 ({dev}-days)")],
              fontsize=8, loc="lower right")
    fig.tight_layout()
    first = table.iloc[0]
    run.numbers["early_costs"] = {"ours_days": float(first[col["search_days"]]),
                                  "ours_candidates": int(first[col["trained"]])}
    return fig


def _darts_cell(run):
    from ..spaces.darts import DartsSpace
    from .viz import draw_genotype

    space = DartsSpace()
    sampled = space.sample(np.random.default_rng(0))  # chapter 2's sample
    run.numbers["darts_space"] = {"cell": space.size(pair=False), "pair": space.size(),
                                  "genotype": space.to_str(sampled)}
    return draw_genotype(sampled, "normal")


def _nb201_cell(run):
    from ..analysis.compare import RESNET_CELL
    from ..ops import NB201_OPS
    from ..spaces import cell as nb201
    from ..spaces.cell import NB201Space
    from .viz import draw_nb201

    run.numbers["nb201"] = {"cells": nb201.N_CELLS, "classes": run.bench.stats()["n_unique"],
                            "classes_autodl": len(nb201.unique_cells("autodl")),
                            "size": NB201Space().size(), "edges": len(nb201.EDGES), "ops": len(NB201_OPS),
                            "resnet": RESNET_CELL}
    return draw_nb201(RESNET_CELL)


def _darts_alphas(run):
    """The last epoch's softmaxed alphas as a move away from uniform (percentage points), the derived op of each
    edge boxed: on small runs the weights barely leave 1/K, and the figure shows by how little."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..analysis.compare import baseline_rank
    from ..bench import Recipe
    from ..bench.build import recipe_data
    from ..oneshot.architect import DartsConfig, scaled_arch_lr, search_steps
    from ..oneshot.darts import darts_search
    from ..spaces.cell import parse

    d, c = run.profile.darts, run.profile.cell
    # the images every cell of the table was trained on, as chapter 2 searches them: the derived cell is ranked in
    # that table. DARTS' own architecture rate (3e-4), unscaled: chapter 2 scales it to the steps
    data = recipe_data(Recipe(**run.bench.recipe)).to(run.profile.device)
    epochs, config = run.profile.figures.darts_epochs, DartsConfig()
    start = time.perf_counter()
    history = darts_search("nb201", data, method="darts", epochs=epochs, C=c.C, N=c.N,
                           batch_size=d.batch_size, seed=0, progress=False, bench=run.bench, config=config)
    seconds = time.perf_counter() - start
    last = history.iloc[-1]
    ops, edges = history.attrs["ops"], history.attrs["edges"]
    alphas = np.asarray(last["alphas"][history.attrs["cells"][0]], dtype=float)
    move = 100 * (alphas - 1.0 / alphas.shape[1])
    span = max(float(np.abs(move).max()), 1e-6)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    im = ax.imshow(move, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=30, ha="right")
    ax.set_yticks(range(len(edges)), edges)
    digits = 2 if span >= 0.5 else 3  # a run that barely moved needs the third decimal
    for (r, k), v in np.ndenumerate(move):
        text = f"{v:+.{digits}f}" if round(v, digits) else "0"  # never "-0.00"
        ax.text(k, r, text, ha="center", va="center", fontsize=8, color="white" if abs(v) > 0.7 * span else "black")
    for r, op in enumerate(parse(last["arch"])):
        ax.add_patch(Rectangle((ops.index(op) - 0.5, r - 0.5), 1, 1, fill=False, lw=2.5, color="black"))
    ax.set_title(f"DARTS after {count(len(history), 'epoch')}: softmax(alpha) - 1/{len(ops)}, "
                 f"percentage points (box: derived op)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04).set_label("percentage points from uniform", fontsize=8)
    fig.tight_layout()
    rank = baseline_rank(run.bench, last["arch"])
    steps = search_steps(data, epochs, d.batch_size)
    run.numbers["darts_run"] = {"epochs": len(history), "dataset": data.name, "train_images": len(data.train_y),
                                "seconds": seconds, "arch_lr": config.a_lr, "steps": steps,
                                "scaled_lr": scaled_arch_lr(steps), "moved": alpha_move_words(span, len(ops)),
                                "arch": last["arch"], "n_skip": int(last["n_skip"]), "max_move_pp": span,
                                "test_acc": float(last["test_acc"]), "rank": rank["rank"],
                                "cells": rank["cells"], "percentile": rank["percentile"]}
    return fig


def _low_fidelity(run):
    import matplotlib.pyplot as plt
    from scipy.stats import kendalltau

    from ..analysis.compare import baseline_rank
    from ..predictors import bench_evaluate_fn, successive_halving
    from ..spaces.cell import parse, to_str

    bench, frame = run.bench, run.frame
    arches = frame["arch"].tolist()
    test = frame["test_acc"].to_numpy()
    epochs = bench.epochs
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    taus = {}
    for ax, epoch in zip(axes, (1, epochs)):
        early = np.array([bench.query(a, epoch=epoch)["valid_acc"] for a in arches])
        tau = float(kendalltau(early, test)[0])
        taus[epoch] = tau
        ax.scatter(early, test, s=3, alpha=0.3)
        ax.set(xlabel=f"validation accuracy after epoch {epoch} (%)",
               title=f"epoch {epoch} of {epochs}: Kendall tau {tau:.2f}")
    axes[0].set_ylabel("final test accuracy (%)")
    fig.suptitle(f"Low fidelity on the benchmark: {len(arches):,} cells")
    fig.tight_layout()
    halving = successive_halving([parse(a) for a in arches], bench_evaluate_fn(bench), 1, epochs, eta=3)
    picked = baseline_rank(bench, to_str(halving.best))
    rel = bench.stats()["reliability"]
    run.numbers["low_fidelity"] = {
        "cells": len(arches), "epochs": epochs, "tau_epoch1": taus[1], "tau_final": taus[epochs],
        "bound": ranking_bound_words(taus[1], rel["tau_one_seed"], rel["tau"],
                                     "the validation accuracy after one epoch"),
        "halving_epochs": float(halving.log["budget"].sum()), "full_epochs": len(arches) * epochs,
        "halving_share": float(halving.log["budget"].sum()) / (len(arches) * epochs),
        "halving_rank": picked["rank"], "halving_test_acc": picked["test_acc"]}
    return fig


def _bench_distribution(run):
    import matplotlib.pyplot as plt

    from ..analysis.compare import baseline_rank

    bench, frame = run.bench, run.frame
    stats, resnet = bench.stats(), baseline_rank(bench)
    acc = frame["test_acc"]
    low = float(np.floor(acc.quantile(0.01)))  # the axis on the 99 % that hold the differences; the rest counted
    hidden = int((acc < low).sum())
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].hist(acc.clip(lower=low), bins=60, range=(low, float(acc.max())), color="tab:blue", alpha=0.8,
                 label=f"cells ({hidden} below {low:.0f} % in the first bar)" if hidden else "cells")
    axes[0].axvline(resnet["test_acc"], color="black", ls="--", label=f"ResNet cell ({resnet['test_acc']:.2f})")
    axes[0].axvline(stats["best_test_acc"], color="tab:red", label=f"best cell ({stats['best_test_acc']:.2f})")
    axes[0].set(xlabel="test accuracy (%)", ylabel="cells",
                title=f"Test accuracy of the {len(frame):,} cells (up to isomorphism)")
    axes[0].legend(fontsize=8, loc="upper left")
    shown = acc >= low
    axes[1].scatter(frame["train_seconds"][shown], acc[shown], s=3, alpha=0.3)
    axes[1].set(xlabel="seconds to train the cell", ylabel="test accuracy (%)", ylim=(low, None),
                title="Test accuracy against training time")
    if hidden:
        axes[1].text(0.98, 0.03, f"{hidden} cells below {low:.0f} % not shown", transform=axes[1].transAxes,
                     ha="right", fontsize=8, color="dimgray")
    fig.tight_layout()
    agreement = stats["seed_agreement"]
    r = bench.recipe
    run.numbers["bench"] = {
        "n_cells": stats["n_cells"], "n_unique": stats["n_unique"], "n_trained": stats["n_trained"],
        "best_test_acc": stats["best_test_acc"], "best_arch": stats["best_arch"],
        "median_test_acc": float(frame["test_acc"].median()),
        "best_minus_median": float(stats["best_test_acc"] - frame["test_acc"].median()),
        "q99_test_acc": float(frame["test_acc"].quantile(0.99)),
        "mean_train_s": float(frame["train_seconds"].mean()),
        "total_train_h": float(frame["train_seconds"].sum() / 3600),
        "epochs": stats["epochs"], "dataset": r.get("dataset"), "image_size": r.get("image_size"),
        "train_images": r.get("train_images"), "C": r.get("C"), "N": r.get("N"),
        "seed_tau": agreement.get("tau_valid_acc"), "seed_cells": agreement.get("n_cells"),
        # the two agreements the seeds give: one training against another, and the table (means of
        # seeds_per_cell seeds) against an independent rebuild -- the bound for a ranking judged against this table
        "tau_one_seed": stats["reliability"]["tau_one_seed"], "tau_table": stats["reliability"]["tau"],
        "seeds_per_cell": stats["seeds_per_cell"],
        "resnet_test_acc": resnet["test_acc"], "resnet_rank": resnet["rank"], "resnet_percentile": resnet["percentile"],
        "resnet_gap": resnet["gap_to_best"]}
    return fig


def _compare_numbers(run):
    if "compare" in run.numbers:
        return
    df, table = run.comparison
    from ..analysis.compare import profile_budget

    f, budget_s = run.profile.figures, profile_budget(run.profile, run.bench).seconds
    k = run.bench.stats()["seeds_per_cell"]
    report = k - k // 2  # the report half: a reported accuracy is the mean of these seeds (chapter 3)
    seed_std = float(run.bench.seeds().filter(like="test_acc_seed").std(axis=1).median())
    entry_noise = seed_std / report ** 0.5  # one reported accuracy: a mean of the report half's seeds
    verdicts = compare_verdicts(table)
    best = table.index[0]
    others = [s for s in table.index if s != "random"]
    top = table.loc[others, "mean_test_acc"].idxmax() if others else best  # the best strategy but random
    gap = float(table.loc[top, "mean_test_acc"] - table.loc["random", "mean_test_acc"]) if "random" in table.index \
        else float("nan")
    rows = [{"strategy": s, **r, "p": r["p_vs_random"], "p_holm": r["p_holm_vs_random"]}
            for s, r in table.to_dict("index").items()]
    md = _markdown_table(rows, [("strategy", "strategy", ""), ("seeds", "seeds", "d"),
                                ("mean_test_acc", "mean test %", ".2f"), ("std_test_acc", "std", ".2f"),
                                ("mean_regret", "regret", ".2f"), ("p", "p vs random", ".2g"),
                                ("p_holm", "Holm", ".2g"), ("vs_random", "vs random", "")])
    alpha = table.attrs.get("alpha", 0.05)
    runs = len(f.compare_strategies) * f.compare_seeds
    run.numbers["compare"] = {
        "strategies": ", ".join(f.compare_strategies), "seeds": f.compare_seeds, "budget_s": budget_s,
        "wall_s_per_run": getattr(run, "compare_seconds", float("nan")) / runs,
        "trainings": budget_s / run.bench.mean_over_space("train_seconds"),
        "evaluations_mean": float(df.groupby(["strategy", "seed"]).size().mean()),
        "best_strategy": best, "best_mean": float(table.loc[best, "mean_test_acc"]),
        "random_mean": float(table.loc["random", "mean_test_acc"]) if "random" in table.index else None,
        "alpha": alpha, "better": verdicts["better"], "worse": verdicts["worse"],
        "not_different": verdicts["not_different"], "tests": verdicts["tests"],
        "top": top, "gap": gap, "std_low": float(table["std_test_acc"].min()),
        "std_high": float(table["std_test_acc"].max()), "seed_std": seed_std, "entry_noise": entry_noise,
        "seeds_per_cell": k, "report_seeds": report,
        "chapter_seeds": run.profile.compare.seeds, "chapter_strategies": len(run.profile.compare.strategies),
        "gap_size": gap_size(gap, entry_noise),
        "gap_words": gap_words(top, gap, float(table["std_test_acc"].min()), float(table["std_test_acc"].max()),
                               entry_noise),
        "random_words": random_words(verdicts, len(others)),
        "ceiling": float(df.attrs["best_test_acc"]), "table_md": md}


def _compare_plot(run, plot_name: str):
    """One of chapter 3's comparison plots (``compare.plot_anytime`` or ``compare.plot_final``) of the run."""
    import matplotlib.pyplot as plt

    from ..analysis import compare

    _compare_numbers(run)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    getattr(compare, plot_name)(run.comparison[0], ax=ax)
    fig.tight_layout()
    return fig


def _literature_cost(run):
    import matplotlib.pyplot as plt

    from ..analysis.literature import load_cifar10, plot_error_vs_cost

    fig, ax = plt.subplots(figsize=(8, 4.8))
    plot_error_vs_cost(load_cifar10(), ax=ax)
    fig.tight_layout()  # the margins the title and the axes' labels need; it moves the axes, so that the
    box = ax.get_position()  # method names, placed by their drawn boxes, are placed again in the final axes
    ax.remove()
    plot_error_vs_cost(load_cifar10(), ax=fig.add_axes(box))
    return fig


def _latency_front(run):
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    from ..analysis.hardware import cell_latencies, plot_front
    from ..profiles import describe_device

    f, frame = run.profile.future, run.frame
    # a sample of the table's cells; chapter 4 draws other samples from its generator first, so its cells differ
    rng = np.random.default_rng(0)
    cells = [frame.arch.iloc[k] for k in rng.choice(len(frame), f.latency_cells, replace=False)]
    lat = cell_latencies(cells, run.bench, run.profile.device, repeats=f.latency_repeats)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_front(lat.rename(columns={"valid_acc": "accuracy"}), ax=axes[0],
               title="Validation accuracy against latency measured here")
    rho = float(spearmanr(lat["flops"], lat["latency_ms"])[0])
    # the same cells timed again: how alike the timer ranks them twice bounds what FLOPs can be seen to do
    again = cell_latencies(cells, run.bench, run.profile.device, repeats=f.latency_repeats)
    repeat_rho = float(spearmanr(lat["latency_ms"], again["latency_ms"])[0])
    axes[1].scatter(lat["flops"] / 1e6, lat["latency_ms"], s=14)
    axes[1].set(xlabel="FLOPs (millions)", ylabel="latency (ms)",
                title=f"Latency against FLOPs: Spearman rho {rho:.2f}")
    fig.tight_layout()
    run.numbers["latency"] = {
        "cells": len(lat), "repeats": f.latency_repeats, "device": describe_device(run.profile.device),
        "min_ms": float(lat["latency_ms"].min()), "max_ms": float(lat["latency_ms"].max()),
        "rho_flops": rho, "rho_repeat": repeat_rho, "rho_words": rho_words(rho, repeat_rho),
        "rho_params": float(spearmanr(lat["params"], lat["latency_ms"])[0])}
    return fig


_MAKERS = {"search_loop": _search_loop, "chain_architecture": _chain_architecture, "full_training": _full_training,
           "early_costs": _early_costs, "darts_cell": _darts_cell, "nb201_cell": _nb201_cell,
           "darts_alphas": _darts_alphas, "low_fidelity": _low_fidelity, "bench_distribution": _bench_distribution,
           "compare_anytime": lambda run: _compare_plot(run, "plot_anytime"),
           "compare_final": lambda run: _compare_plot(run, "plot_final"),
           "literature_cost": _literature_cost, "latency_front": _latency_front}
assert list(_MAKERS) == list(FIGURES)


def _save(obj, out: Path, name: str) -> Path:
    """A graphviz drawing as SVG, a matplotlib figure as PNG."""
    if hasattr(obj, "pipe"):  # graphviz
        import graphviz

        try:
            svg = obj.pipe(format="svg")
        except graphviz.ExecutableNotFound:
            raise NASInputError("drawing figures needs Graphviz's `dot` (Debian: apt-get install graphviz; "
                                "conda: graphviz)") from None
        path = out / f"{name}.svg"
        path.write_bytes(svg)
        return path
    import matplotlib.pyplot as plt

    path = out / f"{name}.png"
    obj.savefig(path, dpi=150)
    plt.close(obj)
    return path


def parse_names(names) -> list:
    """``None`` (all), ``"a,b"`` or a list -> the figure names, checked, in ``FIGURES`` order."""
    if names is None:
        return list(FIGURES)
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in wanted if n not in FIGURES]
    if not wanted or unknown:
        raise NASInputError(f"unknown figure(s) {unknown or wanted}; choose from: {', '.join(FIGURES)}")
    return [n for n in FIGURES if n in wanted]


def write_figures(out, profile=None, names=None) -> dict:
    """Compute the figures ``names`` (default: all of ``FIGURES``) in ``profile`` (a name, a Profile or
    ``None`` for the automatic one) and write them into ``out`` with ``numbers.json``.

    Returns ``{"files": {name: path}, "numbers": path, "seconds": {name: s}, "profile": name}``.
    """
    import torch

    from ..profiles import Profile, get_profile, seed_everything

    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    names = parse_names(names)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    run = _Run(profile)
    files, seconds = {}, {}
    threads = torch.get_num_threads()
    if profile.name == "ci":  # networks this small gain nothing from threads, and lose a lot on a busy machine
        torch.set_num_threads(1)
    try:
        for name in names:
            start = time.perf_counter()
            files[name] = _save(_MAKERS[name](run), out, name)
            seconds[name] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    numbers = {"profile": profile.name, **run.numbers, "lit": literature_numbers(),
               "figures": {n: files[n].name for n in names}}
    numbers_path = out / "numbers.json"
    numbers_path.write_text(json.dumps(json_safe(numbers), indent=1))
    return {"files": files, "numbers": numbers_path, "seconds": seconds, "profile": profile.name}
