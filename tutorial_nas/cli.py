"""``tutorial-nas``: what the chapters do, without a notebook.

    tutorial-nas info [--json]
    tutorial-nas train --space nb201 --arch ARCH [--epochs E] [--json]
    tutorial-nas search --space chain --strategy reinforce --budget 20 [--seed S] [--json]
        [--checkpoint DIR | --resume DIR] [--executor ray [--address ADDR] [--gpus-per-trial G]]
    tutorial-nas compare --space nb201 --strategies random,reinforce,regularized,bo,darts,gdas,rsws --seeds 30 \
        --budget 140s --out DIR
    tutorial-nas bench build --data mnist5k --out DIR [--resume] | bench pack DIR | bench query ARCH | bench stats
    tutorial-nas bench retime [--rows groups|all|3,17] [--log FILE]
    tutorial-nas notebook run CHAPTER [--profile P] [--solutions]
    tutorial-nas figures --out DIR [--profile P] [--only NAME,NAME]
    tutorial-nas slides build [--out DIR] [--profile P] [--figures DIR] [--no-pdf] | slides fetch
    tutorial-nas plan [--profile P] [--device cpu|t4|a100|h100] [--json]

Exit status 0 on success; 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ._json import json_safe
from .errors import NASInputError

ONESHOT = {"darts": ("darts", "darts"), "darts2": ("darts", "darts2"), "gdas": ("darts", "gdas"),
           "enas": ("supernet", "enas"), "rs-ws": ("supernet", "rs-ws"), "spos": ("supernet", "spos")}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise NASInputError(f"{self.prog}: {message}")


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters (from what was typed) shown escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _workers(text: str) -> int:
    """A number of worker processes: a whole number from 1 to 256."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"workers is a whole number from 1 to 256, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"workers is a whole number from 1 to 256, got {text!r}")
    return value


def _seed(text: str) -> int:
    """A seed: a whole number from 0 to 2**63 - 1 (what numpy's and torch's generators accept)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**63 - 1, got {text!r}")
    return value


def _emit(obj, as_json: bool, text: str | None = None) -> None:
    if as_json:
        print(json.dumps(json_safe(obj), indent=1))
    else:
        print(text if text is not None else json.dumps(json_safe(obj), indent=1))


def cmd_info(args) -> None:
    import torch
    import torchvision

    from .data import available
    from .profiles import describe_device, get_profile

    profile = get_profile(args.profile)
    data = available()
    info = {"profile": profile.name, "device": describe_device(profile.device), "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "offline_datasets": [k for k, v in data.items() if v == "offline"],
            "download_datasets": [k for k, v in data.items() if v != "offline"], "datasets": data,
            "sizes": profile.sections}
    _emit(info, args.json, profile.describe() + "\n  data     " + ", ".join(f"{k} ({v})" for k, v in data.items()))


def _data_for(profile, section: str, dataset: str | None):
    from .data import load_dataset

    s = getattr(profile, section).as_dict()
    return load_dataset(dataset or s.get("dataset", "digits"), image_size=s.get("image_size"),
                        device=profile.device)


def _evaluator(space, args, profile):
    from .evaluators import BenchmarkLookup, training_from_profile

    if space.name == "nb201" and args.evaluator in (None, "bench"):
        return BenchmarkLookup(space)
    if args.evaluator == "bench":
        raise NASInputError(f"the benchmark covers the nb201 space only, not {space.name!r}")
    return training_from_profile(space, profile, dataset=args.data)


def _space(name: str, profile, strategy: str | None = None):
    from .spaces import make_space

    if name == "chain" and strategy == "genetic":  # Genetic CNN encodes its networks as bit strings
        return make_space("genetic", nodes=tuple(profile.chain.genetic_nodes))
    if name == "chain":
        c = profile.chain
        grown = strategy == "large-scale-evolution"  # it starts from the network without a convolution
        return make_space("chain", max_layers=c.max_layers, filters=tuple(c.filters), min_layers=0 if grown else 1)
    return make_space(name)


def _executor(args):
    """Where the candidates of a search are evaluated: here, or as Ray tasks (``--executor ray``)."""
    from .parallel import RayExecutor

    if args.executor != "ray":
        if args.address is not None or args.gpus_per_trial is not None:
            raise NASInputError("--address and --gpus-per-trial go with --executor ray")
        return None
    return RayExecutor(address=args.address, gpus_per_trial=args.gpus_per_trial)


def cmd_search(args) -> None:
    from .profiles import get_profile, seed_everything
    from .search import best, search

    profile = get_profile(args.profile)
    seed_everything(args.seed)
    progress = not args.json
    executor = _executor(args)
    if executor is not None and (args.strategy in ONESHOT or args.strategy == "morphism"):
        raise NASInputError(f"--executor ray spreads the candidates of an ask/tell strategy; {args.strategy} "
                            "trains one network at a time in this process")
    if args.strategy in ONESHOT:
        history = _oneshot(args, profile, progress)
    elif args.strategy == "morphism":
        from .strategies.morphism import morphism_search

        data = _data_for(profile, "chain", args.data)
        history = morphism_search(data, seed=args.seed, progress=progress)
    else:
        space = _space(args.space, profile, args.strategy)
        budget = args.budget or (profile.chain.budget if args.space == "chain" else 100)
        history = search(space, args.strategy, _evaluator(space, args, profile), budget, seed=args.seed,
                         checkpoint=os.path.join(args.resume or args.checkpoint, "search.json")
                         if (args.resume or args.checkpoint) else None,
                         resume=bool(args.resume), progress=progress, executor=executor)
    out = {"space": args.space, "strategy": args.strategy, "seed": args.seed, "best": best(history),
           "history": [{"arch": r.arch, "valid_acc": r.valid_acc, "cost_s": r.cost_s,
                        "test_acc": r.test_acc} for r in history.itertuples()]}
    # best(): the run's incumbent -- for DARTS and GDAS the cell derived at the end, not the best epoch's
    done, what = ("epochs", "derived") if history.attrs.get("incumbent") == "last" else ("evaluations", "best")
    text = (f"{args.strategy} on {args.space}: {len(history)} {done}, {what} {out['best']['arch']} "
            f"valid {out['best']['valid_acc']:.2f} test {out['best']['test_acc']:.2f}")
    _emit(out, args.json, text)


def _oneshot(args, profile, progress):
    module, method = ONESHOT[args.strategy]
    if module == "darts":
        from .oneshot.darts import darts_search

        if args.space not in ("darts", "nb201"):
            raise NASInputError(f"{args.strategy} searches the darts or nb201 space, not {args.space!r}")
        d = profile.darts
        bench = None
        if args.space == "nb201":
            from .bench import load_benchmark

            bench = load_benchmark()
        data = _data_for(profile, "darts", args.data)
        sizes = dict(C=d.C, layers=d.layers) if args.space == "darts" else dict(C=profile.cell.C, N=profile.cell.N)
        return darts_search(space=args.space, data=data, method=method, epochs=d.epochs,
                            batch_size=d.batch_size, seed=args.seed, progress=progress, bench=bench, **sizes)
    from .bench import load_benchmark
    from .oneshot.supernet import weight_sharing_search

    if args.space != "nb201":
        raise NASInputError(f"{args.strategy} searches the nb201 space, not {args.space!r}")
    o, c = profile.oneshot, profile.cell
    data = _data_for(profile, "cell", args.data)
    return weight_sharing_search(method=method, data=data, epochs=o.epochs, C=c.C, N=c.N,
                                 stem_stride=c.stem_stride, batch_size=o.batch_size, seed=args.seed,
                                 n_candidates=o.eval_cells, bench=load_benchmark(), progress=progress)


def cmd_train(args) -> None:
    from .evaluators import FullTraining
    from .profiles import get_profile
    from .train import TrainConfig

    profile = get_profile(args.profile)
    space = _space(args.space, profile)
    arch = space.parse(args.arch)
    section = {"nb201": "cell"}.get(args.space, args.space)
    data = _data_for(profile, section, args.data)
    sizes = {k: v for k, v in getattr(profile, section).as_dict().items() if k in ("C", "N", "layers")}
    config = TrainConfig(epochs=args.epochs or profile.train.epochs, batch_size=profile.train.batch_size,
                         lr=profile.train.lr, seed=args.seed)
    result = FullTraining(space, data, config, progress=not args.json, **sizes).evaluate(arch)
    out = {"arch": space.to_str(arch), **{k: getattr(result, k) for k in ("valid_acc", "test_acc", "cost_s",
                                                                         "params", "flops", "curve")}}
    _emit(out, args.json, f"{out['arch']}: valid {result.valid_acc:.2f} test {result.test_acc:.2f} "
                          f"in {result.cost_s:.1f} s, {result.params} params")


def cmd_compare(args) -> None:
    from .analysis.compare import run_cli_compare

    out = run_cli_compare(args)
    lines = [f"{len(out['strategies'])} strategies x {out['seeds']} seeds (one-shot: {out['oneshot_seeds']}), "
             f"budget {out['budget']}, best cell {out['best_test_acc']:.2f} ({out['seconds']:.0f} s)"]
    for name, r in out["results"].items():
        p = "" if r["p_vs_random"] is None or r["p_vs_random"] != r["p_vs_random"] else f"  p={r['p_vs_random']:.3g}"
        lines.append(f"  {name:12s} {r['mean_test_acc']:6.2f} +- {r['std_test_acc'] or 0:.2f}{p}")
    lines.append("wrote " + ", ".join(out["files"].values()))
    _emit(out, args.json, "\n".join(lines))


def cmd_bench(args) -> None:
    from . import bench

    if args.action == "build":
        if not args.out:
            raise NASInputError("bench build needs --out DIR (where the results are written)")
        extra = {} if args.seeds_per_cell is None else {"seeds_per_cell": args.seeds_per_cell}
        path = bench.build(args.out, data=args.data, resume=args.resume, workers=args.workers,
                           limit=args.limit, progress=not args.json, **extra)
        _emit({"results": str(path)}, args.json, f"results in {path}; pack with `tutorial-nas bench pack {args.out}`")
    elif args.action == "pack":
        if not args.target:
            raise NASInputError("bench pack needs the build directory")
        path = bench.pack(args.target, name=args.name, out_dir=args.out or bench.DATA_DIR,
                          drop_short=args.drop_short)
        _emit({"table": str(path)}, args.json, f"packed into {path}")
    elif args.action == "query":
        if not args.target:
            raise NASInputError("bench query needs an arch string, e.g. " + "'|nor_conv_3x3~0|+|nor_conv_3x3~0|"
                                "avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'")
        b = bench.load_benchmark(args.name, args.table_dir)
        _emit(b.query(args.target, epoch=args.epoch), args.json)
    elif args.action == "retime":
        from .bench.retime import retime

        rows = args.rows if args.rows in (None, "all", "groups") else [int(r) for r in args.rows.split(",")]
        out = retime(args.name, args.table_dir, factor=args.factor, rows=rows, per_group=args.per_group,
                     workers=args.workers, log=args.log, progress=not args.json)
        summary = {k: v for k, v in out.items() if k not in ("row_numbers", "old", "new")}
        _emit(summary, args.json, f"retimed {out['rows']} rows ({out['trained']} cells trained): "
              f"{out['seconds_before']:.0f} s charged before, {out['seconds_after']:.0f} s after")
    else:
        _emit(bench.load_benchmark(args.name, args.table_dir).stats(), args.json)


def cmd_figures(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .course.figures import write_figures

    out = write_figures(args.out, args.profile, args.only)
    files = {k: str(v) for k, v in out["files"].items()}
    _emit({**out, "files": files, "numbers": str(out["numbers"])}, args.json,
          "\n".join(f"{k:20s} {out['seconds'][k]:6.1f} s  {v}" for k, v in files.items())
          + f"\nnumbers in {out['numbers']} ({out['profile']} profile)")


def cmd_slides(args) -> None:
    from .course import slides

    if args.action == "fetch":
        path = slides.fetch(args.cache)
        _emit({"reveal.js": str(path)}, args.json, f"reveal.js {slides.REVEAL_VERSION} in {path}")
        return
    import matplotlib

    matplotlib.use("Agg")
    out = slides.build(args.out or str(slides.SOURCE_DIR / "build"), profile=args.profile, figures=args.figures,
                       pdf=not args.no_pdf, cache=args.cache)
    _emit(out, args.json, "\n".join(f"{d['html']} ({d['slides']} slides)" + (f", {d['pdf']}" if "pdf" in d else "")
                                     for d in out["decks"]) + f"\nbuilt into {out['out']} in {out['seconds']:.0f} s")


def cmd_notebook(args) -> None:
    from .course.notebooks import run_notebook

    path = run_notebook(args.chapter, profile=args.profile, timeout=args.timeout, solutions=args.solutions)
    _emit({"notebook": str(path), "profile": args.profile}, args.json, f"executed and saved {path}")


def cmd_plan(args) -> None:
    from .course import plan
    from .profiles import profile_name

    name = profile_name(args.profile)
    if args.device is not None:
        from .errors import check_choice

        check_choice("device", args.device, plan.DEVICES)
    _emit(plan.plan_json(name, args.device), args.json, plan.report(name, args.device))


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tutorial-nas", description="Neural Architecture Search, the course's work without a notebook")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--profile", choices=["ci", "cpu", "gpu"], help="budget profile (default: automatic)")

    sub.add_parser("info", parents=[common], help="profile, device, versions, data sets")

    s = sub.add_parser("search", parents=[common], help="run one search")
    s.add_argument("--space", default="chain", choices=["chain", "nb201", "darts"])
    s.add_argument("--strategy", default="random",
                   help="random, reinforce, reinforce-nb201, qlearning, blockqnn, large-scale-evolution, regularized, "
                        "genetic, bo, "
                        f"morphism, or a one-shot method ({', '.join(ONESHOT)})")
    s.add_argument("--budget", help="evaluations (20) or seconds charged (600s, 10m, 2h)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--data", help="data set (default: the profile's)")
    s.add_argument("--evaluator", choices=["bench", "train"], help="nb201: look up (default) or train")
    s.add_argument("--checkpoint", help="directory for a resumable checkpoint")
    s.add_argument("--resume", help="continue the search checkpointed in this directory")
    s.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="evaluate candidates in this process (default) or as Ray tasks")
    s.add_argument("--address", help="with --executor ray: the cluster (auto, head:6379); default: a local "
                                     "Ray instance")
    s.add_argument("--gpus-per-trial", type=float, help="with --executor ray: GPUs per candidate (0.5 shares one)")

    t = sub.add_parser("train", parents=[common], help="train one architecture")
    t.add_argument("--space", default="nb201", choices=["chain", "nb201", "darts"])
    t.add_argument("--arch", required=True)
    t.add_argument("--epochs", type=float)
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--data")

    c = sub.add_parser("compare", parents=[common], help="strategies x seeds x budget on the benchmark")
    c.add_argument("--space", default="nb201", choices=["nb201"])
    c.add_argument("--strategies", default="random,reinforce,regularized,bo",
                   help="comma list of random, reinforce, reinforce-nb201, regularized, bo, blockqnn, darts, gdas, "
                        "rsws")
    c.add_argument("--seeds", type=int, help="seeds per strategy (default: the profile's)")
    c.add_argument("--budget", help="seconds charged per run, e.g. 140s (default: the profile's)")
    c.add_argument("--out", default="compare_out")
    c.add_argument("--workers", type=_workers, default=os.cpu_count() or 1,
                   help="processes that share the benchmark-driven runs (default: one per core)")

    b = sub.add_parser("bench", parents=[common], help="the tabular benchmark")
    b.add_argument("action", choices=["build", "pack", "query", "stats", "retime"])
    b.add_argument("target", nargs="?", help="pack: the build directory; query: the arch string")
    b.add_argument("--data", choices=["digits", "mnist5k", "fashion-mnist", "cifar10"])
    b.add_argument("--out")
    b.add_argument("--resume", action="store_true")
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--limit", type=int)
    b.add_argument("--drop-short", action="store_true",
                   help="pack: leave out the cells a partial build has not trained with every seed")
    b.add_argument("--seeds-per-cell", type=int, help="build: seeds every cell is trained with (the table holds "
                                                      "their mean; more seeds, a more reliable ranking)")
    b.add_argument("--epoch", type=int)
    b.add_argument("--name", default="nb201_mnist5k")
    b.add_argument("--table-dir", help="folder of a table built elsewhere")
    b.add_argument("--rows", help="retime: 'all', 'groups' (some cells of every op-count group, each row charged its "
                                  "group's median) or row numbers 3,17; default: the rows slower than --factor x "
                                  "their group's median")
    b.add_argument("--factor", type=float, default=1.5)
    b.add_argument("--per-group", type=int, default=5)
    b.add_argument("--log", help="retime: a file that keeps each finished cell, so an interrupted retime resumes")

    n = sub.add_parser("notebook", parents=[common], help="re-execute a chapter and store its outputs")
    n.add_argument("action", choices=["run"])
    n.add_argument("chapter", type=int, choices=[1, 2, 3, 4])
    n.add_argument("--timeout", type=int, default=3600)
    n.add_argument("--solutions", action="store_true", help="the chapter's worked solutions instead of the chapter")

    f = sub.add_parser("figures", parents=[common], help="write the slides' figures and numbers.json")
    f.add_argument("--out", required=True, help="folder for the PNG/SVG files and numbers.json")
    f.add_argument("--only", help="comma list of figure names (default: all)")

    sl = sub.add_parser("slides", parents=[common], help="build the decks to HTML and PDF, or fetch reveal.js")
    sl.add_argument("action", choices=["build", "fetch"])
    sl.add_argument("--out", help="build folder (default: slides/build)")
    sl.add_argument("--figures", help="use figures already written by `tutorial-nas figures`")
    sl.add_argument("--no-pdf", action="store_true", help="HTML only")
    sl.add_argument("--cache", help="reveal.js cache (default: slides/.cache)")

    pl = sub.add_parser("plan", parents=[common], help="what each chapter costs: work, FLOPs, estimated minutes")
    pl.add_argument("--device", help="cpu, t4, a100 or h100 (default: all of them)")
    return p


COMMANDS = {"info": cmd_info, "search": cmd_search, "train": cmd_train, "compare": cmd_compare,
            "bench": cmd_bench, "notebook": cmd_notebook, "figures": cmd_figures, "slides": cmd_slides,
            "plan": cmd_plan}


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.command is None:
            parser().print_help()
            return 0
        if getattr(args, "profile", None) is None:
            args.profile = None
        COMMANDS[args.command](args)
        return 0
    except NASInputError as err:
        print(f"error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; a checkpointed run continues with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
