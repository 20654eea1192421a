"""Property-based fuzzing of everything a user types or hands over as a file.

Random strings, and valid inputs mutated (characters inserted, deleted, replaced, parts swapped), go to every
parser: arch strings, genotypes, chain / Genetic CNN / MorphNet encodings, profile, data set, strategy and
space names, budgets, the command line, and checkpoints and benchmark tables that are truncated, garbage or
from another version. Whatever comes in, only the package's own ``NASInputError`` may come out (the command
line: status 2 and one line on stderr), never another exception.
"""

import contextlib
import io
import json
import math
import os
import shutil
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from tutorial_nas import NASInputError
from tutorial_nas.bench import load_benchmark
from tutorial_nas.bench.table import DATA_DIR
from tutorial_nas.search import Budget, load_checkpoint, search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.spaces.chain import ChainSpace
from tutorial_nas.spaces.darts import DartsSpace, parse_genotype
from tutorial_nas.spaces.genetic import GeneticSpace

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
GENOTYPE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=range(2, 6))")
CHAIN = "conv3x3-16<in | conv5x5-32-max<0 | conv3x3-64<0,1"
GENETIC = "1-01-001|0-00-111-0000"
MORPH = "c8k3p-r8k3-c8k5+1&0"

# characters that break parsers: separators of every format, digits of other scripts, line breaks of all kinds
ODD = st.sampled_from(list("|+~-_,()[]<>'\"=.:;# \t\n\r\x0b\x0c\x1c\x85\u2028\u00a0") + ["٣", "²", "Ⅻ", "é", "∞",
                                                                                           "\U0001f600", "0", "9"])
TEXT = st.text(st.one_of(st.characters(blacklist_categories=("Cs",)), ODD), max_size=60)


@st.composite
def mutated(draw, valid: str):
    """``valid`` after a few random edits: insert, delete, replace, duplicate or swap a slice."""
    text = valid
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 12)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "swap", "truncate"]))
        piece = draw(st.text(st.one_of(ODD, st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=4))
        if kind == "insert":
            text = text[:i] + piece + text[i:]
        elif kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "replace":
            text = text[:i] + piece + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "swap":
            text = text[i:j] + text[:i] + text[j:]
        else:
            text = text[:i]
    return text


def only_clear_errors(parse, text):
    """``parse(text)`` returns or raises ``NASInputError``; anything else fails the test."""
    try:
        return parse(text)
    except NASInputError as err:
        assert str(err).strip()
        return None


def round_trips(space, text):
    arch = only_clear_errors(space.parse, text)
    if arch is not None:  # whatever parses prints back as a string that parses to the same architecture
        assert space.parse(space.to_str(arch)) == arch


# -- parsers of strings -------------------------------------------------------------------------------------

@FAST
@given(st.one_of(TEXT, mutated(NB201)))
@example("|none~0|+|none~0|\n+|none~0|none~1|none~2|")  # a line break that once slipped past the regex
@example("|none~٠|+|none~0|none~1|+|none~0|none~1|none~2|")  # a digit of another script
def test_nb201_arch_strings(text):
    round_trips(NB201Space(), text)
    only_clear_errors(load_benchmark().query, text)


@FAST
@given(st.one_of(TEXT, mutated(GENOTYPE)))
def test_darts_genotypes(text):
    only_clear_errors(parse_genotype, text)
    round_trips(DartsSpace(), text)


@FAST
@given(st.one_of(TEXT, mutated(CHAIN)))
def test_chain_encodings(text):
    round_trips(ChainSpace(max_layers=6), text)


@FAST
@given(st.one_of(TEXT, mutated(GENETIC)))
def test_genetic_cnn_encodings(text):
    round_trips(GeneticSpace(nodes=(3, 4, 5)), text)


@FAST
@given(st.one_of(TEXT, mutated(MORPH)))
def test_morphnet_specs(text):
    from tutorial_nas.strategies.morphism import parse_spec, spec_to_str

    spec = only_clear_errors(parse_spec, text)
    if spec is not None:
        assert parse_spec(spec_to_str(spec)) == spec


@FAST
@given(st.one_of(TEXT, mutated("20"), mutated("600s"), mutated("2.5h"), st.integers(), st.floats(),
                 st.booleans(), st.none()))
@example("9" * 400)  # a count too large for a float once overflowed
@example(10**5000)  # an int too long to print
@example(-(10**5000))
def test_budgets(value):
    budget = only_clear_errors(Budget.parse, value)
    if budget is not None:  # a budget that parses is a positive, finite amount of something
        assert (budget.evaluations or 0) >= 1 or (budget.seconds is not None and 0 < budget.seconds < math.inf)
        assert Budget.parse(budget) == budget


@FAST
@given(st.one_of(TEXT, mutated("gpu"), mutated("ci"), mutated("cpu")))
def test_profile_names(name):
    from tutorial_nas.profiles import get_profile

    only_clear_errors(get_profile, name)
    with mock.patch.dict(os.environ, {"TUTORIAL_NAS_PROFILE": name.replace("\x00", "")}):  # no NUL in os.environ
        only_clear_errors(get_profile, None)


@FAST
@given(st.one_of(TEXT, mutated("digits"), mutated("cifar10"), mutated("fashion-mnist")),
       st.one_of(st.none(), st.integers(-10, 40), st.sampled_from([257, 10**9, -10**9]), TEXT, st.floats()))
def test_data_set_names_and_sizes(name, image_size):
    from tutorial_nas import data

    assume(name not in data.DOWNLOAD)  # a valid download name would download; the offline ones load
    with mock.patch.dict(data.LOADERS, {k: _refuse_download for k in data.DOWNLOAD}):
        only_clear_errors(lambda n: data.load_dataset(n, image_size=image_size), name)


def _refuse_download():
    raise AssertionError("a mutated name must not reach a download")


@FAST
@given(st.one_of(TEXT, mutated("random,regularized,bo,darts"), mutated("nb201"), mutated("reinforce")),
       st.one_of(st.integers(), st.floats(), st.booleans(), TEXT))
@example("random", -1)  # numpy's generators take no negative seed
@example("reinforce", 2**64)  # torch's take none this large
def test_strategy_space_and_list_names_and_seeds(name, seed):
    from tutorial_nas.analysis.compare import parse_strategies
    from tutorial_nas.spaces import make_space
    from tutorial_nas.strategies import make_strategy

    only_clear_errors(parse_strategies, name)
    only_clear_errors(make_space, name)
    only_clear_errors(lambda n: make_strategy(n, NB201Space()), name)
    only_clear_errors(lambda s: make_strategy(name if name in ("random", "reinforce") else "random", NB201Space(),
                                              seed=s).ask(), seed)


# -- files: checkpoints and benchmark tables -------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    from tutorial_nas.evaluators import BenchmarkLookup

    path = tmp_path_factory.mktemp("ck") / "search.json"
    search(NB201Space(), "regularized", BenchmarkLookup(NB201Space()), 6, seed=1, checkpoint=path, progress=False)
    return path.read_bytes()


def _json_mutations():
    """A valid checkpoint with one value replaced: wrong types, other versions, missing keys."""
    values = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(), TEXT,
                       st.lists(st.integers(-2, 8), max_size=3), st.just({}), st.just([[0, 1], [1, 2]]))
    return st.tuples(st.sampled_from(["version", "meta", "rows", "order", "row", "cell", "drop"]),
                     st.integers(0, 20), st.sampled_from(["arch", "valid_acc", "test_acc", "cost_s", "spent_s",
                                                          "curve", "params", "flops", "step"]), values)


@FAST
@given(data=st.data())
def test_checkpoints_truncated_garbage_or_from_another_version(checkpoint_bytes, tmp_path_factory, data):
    from tutorial_nas.evaluators import BenchmarkLookup

    kind = data.draw(st.sampled_from(["truncate", "flip", "garbage", "value"]))
    if kind == "truncate":
        blob = checkpoint_bytes[: data.draw(st.integers(0, len(checkpoint_bytes) - 1))]
    elif kind == "flip":
        i = data.draw(st.integers(0, len(checkpoint_bytes) - 1))
        blob = checkpoint_bytes[:i] + bytes([data.draw(st.integers(0, 255))]) + checkpoint_bytes[i + 1:]
    elif kind == "garbage":
        blob = data.draw(st.binary(max_size=200))
    else:
        payload = json.loads(checkpoint_bytes)
        where, i, key, value = data.draw(_json_mutations())
        if where in ("version", "meta", "rows", "order"):
            payload[where] = value
        elif where == "drop":
            payload.pop(["version", "meta", "rows", "order"][i % 4])
        elif where == "row":
            payload["rows"][i % len(payload["rows"])] = value
        else:
            payload["rows"][i % len(payload["rows"])][key] = value
        blob = json.dumps(payload).encode()
    path = tmp_path_factory.mktemp("bad") / "search.json"
    path.write_bytes(blob)
    only_clear_errors(load_checkpoint, path)
    only_clear_errors(lambda p: search(NB201Space(), "regularized", BenchmarkLookup(NB201Space()), 8, seed=1,
                                       checkpoint=p, resume=True, progress=False), path)


@FEW
@given(data=st.data())
def test_benchmark_tables_truncated_garbage_or_from_another_version(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("table")
    for suffix in (".json", ".npz"):
        shutil.copy(DATA_DIR / f"nb201_mnist5k{suffix}", folder / f"t{suffix}")
    target = folder / data.draw(st.sampled_from(["t.json", "t.npz"]))
    blob = target.read_bytes()
    kind = data.draw(st.sampled_from(["truncate", "garbage", "json"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "garbage":
        blob = data.draw(st.binary(max_size=300))
    else:
        info = json.loads((folder / "t.json").read_text())
        key = data.draw(st.sampled_from(sorted(info)))
        info[key] = data.draw(st.one_of(st.none(), st.integers(), TEXT, st.just({})))
        target, blob = folder / "t.json", json.dumps(info).encode()
    target.write_bytes(blob)
    verify = data.draw(st.booleans())
    bench = only_clear_errors(lambda f: load_benchmark("t", f, verify=verify), folder)
    if bench is not None:
        only_clear_errors(bench.query, NB201)
        only_clear_errors(lambda b: b.stats(), bench)


def test_no_torch_load_without_weights_only():
    """No file the package reads can run code: every torch.load passes weights_only=True."""
    root = Path(__file__).resolve().parent.parent
    for path in [*root.glob("tutorial_nas/**/*.py"), *root.glob("benchmarks/*.py")]:
        for line in path.read_text().splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"


# -- the command line ------------------------------------------------------------------------------------------

class Reached(Exception):
    """Raised where the real work would start: the input got through every check."""


def _reached(*args, **kwargs):
    raise Reached


# where each command's real work starts (training, downloads, searches, writing tables, running notebooks)
WORK = ["tutorial_nas.evaluators.BenchmarkLookup.evaluate", "tutorial_nas.evaluators.FullTraining.evaluate",
        "tutorial_nas.parallel.RayExecutor.start", "tutorial_nas.oneshot.darts.darts_search",
        "tutorial_nas.oneshot.supernet.weight_sharing_search", "tutorial_nas.strategies.morphism.morphism_search",
        "tutorial_nas.analysis.compare.compare", "tutorial_nas.analysis.compare.oneshot_runs",
        "tutorial_nas.bench.build", "tutorial_nas.bench.pack", "tutorial_nas.course.notebooks.run_notebook",
        "tutorial_nas.data._torchvision"]

COMMANDS = [
    ["info", "--json"],
    ["search", "--space", "nb201", "--strategy", "regularized", "--budget", "30", "--seed", "2", "--json"],
    ["search", "--space", "chain", "--strategy", "reinforce", "--budget", "600s", "--data", "digits"],
    ["search", "--space", "nb201", "--strategy", "random", "--executor", "ray", "--gpus-per-trial", "0.5"],
    ["search", "--space", "nb201", "--strategy", "darts", "--resume", "ckdir"],
    ["train", "--space", "nb201", "--arch", NB201, "--epochs", "1", "--seed", "0"],
    ["train", "--space", "chain", "--arch", CHAIN],
    ["compare", "--strategies", "random,bo,darts", "--seeds", "3", "--budget", "140s"],
    ["bench", "query", NB201, "--epoch", "2"],
    ["bench", "stats", "--name", "nb201_mnist5k"],
    ["bench", "build", "--data", "digits", "--out", "b", "--workers", "1", "--limit", "2"],
    ["notebook", "run", "2", "--profile", "ci"],
]
TOKENS = sorted({t for c in COMMANDS for t in c if t.startswith("-")} | {"-h", "--", "-", "=", "--json=1"})


@st.composite
def argv(draw):
    """A command of the README with some tokens mutated, dropped, repeated or replaced, or random words."""
    words = list(draw(st.sampled_from(COMMANDS)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(words)))
        kind = draw(st.sampled_from(["mutate", "drop", "flag", "word", "repeat"]))
        if kind == "mutate" and i < len(words):
            words[i] = draw(mutated(words[i]))
        elif kind == "drop" and i < len(words):
            del words[i]
        elif kind == "flag":
            words.insert(i, draw(st.sampled_from(TOKENS)))
        elif kind == "word":
            words.insert(i, draw(TEXT))
        elif i < len(words):
            words.insert(i, words[i])
    # no NUL (an operating system's argv cannot hold one), and no absolute path: a folder named on the command
    # line (a checkpoint) is created inside the scratch directory, never elsewhere
    return [w.replace("\x00", "").lstrip("/") for w in words]


@pytest.fixture(scope="module")
def cli_sandbox(tmp_path_factory):
    """The real work of each command replaced by ``Reached``, in a scratch directory, in the ci profile."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cli"))
    with contextlib.ExitStack() as stack:
        for target in WORK:
            stack.enter_context(mock.patch(target, _reached))
        stack.enter_context(mock.patch.dict(os.environ, {"TUTORIAL_NAS_PROFILE": "ci", "TQDM_DISABLE": "1"}))
        yield
    os.chdir(here)


@FAST
@given(words=argv())
@example(["info", "\r--json"])  # argparse repeats what it did not understand: the line break is shown escaped
@example(["search", "--space", "nb201", "--seed", "9" * 30])  # torch's generator takes no seed this large
@example(["search", "--space", "nb201", "--seed", "-1"])
@example(["train", "--arch", NB201, "--epochs", "nan"])
@example(["search", "--space", "nb201", "--checkpoint", "ck", "--budget", "9" * 400])
def test_the_command_line_answers_bad_input_with_one_line_and_status_2(cli_sandbox, words):
    from tutorial_nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(words)
    except Reached:  # valid input: the command got as far as its real work
        event("accepted: reached the real work")
        return
    except SystemExit as stop:  # only --help exits (status 0, usage on stdout)
        assert stop.code == 0 and "usage:" in out.getvalue(), (words, err.getvalue())
        event("help")
        return
    assert code in (0, 2), words
    event(f"status {code}")
    if code == 2:
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (words, err.getvalue())
        assert out.getvalue() == ""
