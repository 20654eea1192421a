"""A search killed with SIGKILL and resumed gives the History of the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

SCRIPT = r"""
import sys, time
from tutorial_nas.evaluators import Evaluator, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space

class SlowEvaluator(Evaluator):
    '''Deterministic scores; each evaluation takes a while, like a real training.'''
    name = "slow"
    def __init__(self, delay):
        self.delay = delay
    def evaluate(self, arch):
        time.sleep(self.delay)
        score = sum(op.startswith("nor_conv") for op in arch) * 10 + sum(op == "skip_connect" for op in arch)
        return Result(valid_acc=float(score), test_acc=float(score) - 1, cost_s=1.0)

strategy, checkpoint, delay, resume = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
h = search(NB201Space(), strategy, SlowEvaluator(delay), 14, seed=7, checkpoint=checkpoint or None,
           resume=resume, progress=False)
print(h[["arch", "valid_acc", "spent_s"]].to_json(orient="records"))
"""


def run(strategy, checkpoint="", delay=0.0, resume=False):
    out = subprocess.run([sys.executable, "-c", SCRIPT, strategy, str(checkpoint), str(delay), "1" if resume else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("strategy", ["random", "regularized", "reinforce"])
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, strategy):
    reference = run(strategy)
    ck = tmp_path / "search.json"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, strategy, str(ck), "0.25", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until a few evaluations are on disk, then kill without warning
        if ck.exists():
            try:
                if len(json.loads(ck.read_text())["rows"]) >= 4:
                    break
            except (json.JSONDecodeError, KeyError):
                pass  # the writer renames atomically, so this does not happen; be safe anyway
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads(ck.read_text())["rows"])
    assert 4 <= done < 14  # it was interrupted mid-run
    resumed = run(strategy, ck, resume=True)
    assert resumed == reference


def cli_search(folder, resume=False, **popen):
    """``tutorial-nas search`` on the chain space with the ci profile: every candidate is trained."""
    command = [sys.executable, "-m", "tutorial_nas.cli", "search", "--space", "chain", "--strategy", "random",
               "--budget", "4", "--seed", "5", "--json", "--resume" if resume else "--checkpoint", str(folder)]
    env = {**os.environ, "TUTORIAL_NAS_PROFILE": "ci", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **popen)


def trained_rows(proc):
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0
    return [(r["arch"], r["valid_acc"], r["test_acc"]) for r in json.loads(out)["history"]]


def test_a_killed_search_that_trains_resumes_as_the_uninterrupted_one(tmp_path):
    # the first candidate trained after a resume once scored otherwise: its initial weights were drawn from a
    # global generator in whatever state the fresh process had left it
    reference = trained_rows(cli_search(tmp_path / "reference"))
    proc, ck = cli_search(tmp_path / "run"), tmp_path / "run" / "search.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ck.exists() and len(json.loads(ck.read_text())["rows"]) >= 2:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert 2 <= len(json.loads(ck.read_text())["rows"]) < 4  # killed mid-run, with candidates left to train
    assert trained_rows(cli_search(tmp_path / "run", resume=True)) == reference


def test_benchmark_build_resumes_without_losing_or_repeating_a_cell(tmp_path):
    from tutorial_nas import NASInputError
    from tutorial_nas.bench.build import build, jobs, read_results

    tiny = dict(data="digits", image_size=8, stem_stride=1, C=2, epochs=1, train_images=200, workers=1,
                progress=False, multi_seed_cells=2, seeds=2)
    out = tmp_path / "build"
    path = build(out, limit=2, **tiny)
    assert len(read_results(path)) == 2
    with open(path, "a") as f:  # a kill in the middle of writing a line leaves half a line behind
        f.write('{"index": 12, "seed"')
    with pytest.raises(NASInputError, match="resume"):
        build(out, limit=3, **tiny)
    build(out, limit=4, resume=True, **tiny)
    rows = read_results(path)
    keys = [(r["index"], r["seed"]) for r in rows]
    assert len(rows) == 4 and len(set(keys)) == 4
    from tutorial_nas.bench.build import Recipe
    recipe = Recipe(**{k: v for k, v in tiny.items() if k in Recipe.__dataclass_fields__}, dataset="digits")
    assert keys == [(c, s) for c, seeds in jobs(recipe) for s in seeds][:4]
