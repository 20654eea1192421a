"""Candidates evaluated elsewhere: the search loop with several in flight, its checkpoints, and Ray tasks.

The Ray tests share one local instance (2 CPUs) started once per session; they skip when Ray is not
installed (pip install 'tutorial-nas[ray]'), which CI installs.
"""

import json
import os
import sys

import numpy as np
import pytest

from tutorial_nas import NASInputError
from tutorial_nas.bench import load_benchmark
from tutorial_nas.evaluators import BenchmarkLookup, Evaluator, Result
from tutorial_nas.parallel import Executor, make_executor, trial_resources
from tutorial_nas.search import load_checkpoint, search
from tutorial_nas.spaces.cell import NB201Space

SPACE = NB201Space()


def lookup():
    return BenchmarkLookup(SPACE, load_benchmark())


def evaluations(history) -> list:
    """The evaluations of a History as a sorted list (a multiset: a repeat would show twice)."""
    return sorted(zip(history["arch"], history["valid_acc"], history["test_acc"], history["cost_s"]))


# -- the loop with several candidates in flight, without Ray -------------------------------------------------

class Shuffled(Executor):
    """``workers`` evaluations in flight, finishing in a seeded random order; records how many were in flight."""

    name = "shuffled"

    def __init__(self, workers: int, seed: int = 0):
        self.workers, self.rng = workers, np.random.default_rng(seed)
        self.running, self.most = [], 0

    def submit(self, ticket, arch):
        self.running.append((ticket, arch))
        self.most = max(self.most, len(self.running))

    def wait(self):
        ticket, arch = self.running.pop(int(self.rng.integers(len(self.running))))
        return [(ticket, self.evaluator.evaluate(arch))]

    def cancel(self):
        self.running.clear()


@pytest.mark.parametrize("strategy,in_flight", [("random", 4), ("regularized", 4), ("bo", 4), ("reinforce", 1)])
def test_as_many_in_flight_as_workers_and_strategy_allow(strategy, in_flight):
    ex = Shuffled(workers=4)
    h = search(SPACE, strategy, lookup(), 8, seed=1, executor=ex, progress=False)
    assert ex.most == in_flight
    assert len(h) == 8 and list(h["step"]) == list(range(8))


def test_out_of_order_results_give_random_search_the_same_evaluations():
    here = search(SPACE, "random", lookup(), 30, seed=4, progress=False)
    shuffled = search(SPACE, "random", lookup(), 30, seed=4, executor=Shuffled(workers=5), progress=False)
    assert evaluations(shuffled) == evaluations(here)
    assert list(shuffled["arch"]) != list(here["arch"])  # the order did change


@pytest.mark.parametrize("strategy", ["random", "regularized", "bo"])
def test_a_parallel_search_stopped_mid_run_resumes_without_losing_or_repeating(tmp_path, strategy):
    full_ck, ck = tmp_path / "full.json", tmp_path / "cut.json"
    full = search(SPACE, strategy, lookup(), 30, seed=2, executor=Shuffled(4, seed=1), checkpoint=full_ck,
                  progress=False)
    payload = load_checkpoint(full_ck)
    cut = 11  # as if killed after 11 results were written: the candidates then in flight are lost
    ck.write_text(json.dumps({**payload, "rows": payload["rows"][:cut], "order": payload["order"][:cut]}))
    asked_at_cut = payload["order"][cut - 1][1]
    resumed = search(SPACE, strategy, lookup(), 30, seed=2, executor=Shuffled(4, seed=9), checkpoint=ck,
                     resume=True, progress=False)
    order = load_checkpoint(ck)["order"]
    tickets = [t for t, _ in order]
    assert len(resumed) == 30 and len(set(tickets)) == 30  # nothing lost, nothing twice
    assert list(resumed["arch"][:cut]) == list(full["arch"][:cut])
    # the replay rebuilt the strategy as it was: every candidate asked before the stop is the same candidate
    before = {t: a for (t, _), a in zip(payload["order"], full["arch"]) if t < asked_at_cut}
    after = {t: a for t, a in zip(tickets, resumed["arch"]) if t < asked_at_cut}
    assert before == after and len(after) == asked_at_cut
    if strategy == "random":
        assert evaluations(resumed) == evaluations(full)


def test_a_checkpoint_without_the_order_of_results_resumes_as_one_process_wrote_it(tmp_path):
    ck = tmp_path / "search.json"
    full = search(SPACE, "regularized", lookup(), 20, seed=3, checkpoint=ck, progress=False)
    payload = load_checkpoint(ck)
    del payload["order"]
    payload["rows"] = payload["rows"][:8]
    ck.write_text(json.dumps(payload))
    resumed = search(SPACE, "regularized", lookup(), 20, seed=3, checkpoint=ck, resume=True, progress=False)
    assert list(resumed["arch"]) == list(full["arch"])


@pytest.mark.parametrize("order", [[[0, 1], [0, 2]], [[1, 1], [0, 2]], [[0, 1], [1, 10**9]], [[0, "1"], [1, 2]],
                                   [[0, 1]], "x"])
def test_a_damaged_order_of_results_is_refused(tmp_path, order):
    ck = tmp_path / "search.json"
    search(SPACE, "random", lookup(), 2, seed=0, checkpoint=ck, progress=False)
    payload = load_checkpoint(ck)
    ck.write_text(json.dumps({**payload, "order": order}))
    with pytest.raises(NASInputError, match="damaged|does not replay"):
        search(SPACE, "random", lookup(), 4, seed=0, checkpoint=ck, resume=True, progress=False)


def test_trial_resources_follow_the_cluster():
    assert trial_resources({"CPU": 16.0, "GPU": 4.0}) == {"num_cpus": 1.0, "num_gpus": 1.0, "workers": 4}
    assert trial_resources({"CPU": 16.0, "GPU": 4.0}, gpus_per_trial=0.5)["workers"] == 8
    assert trial_resources({"CPU": 16.0, "GPU": 4.0}, gpus_per_trial=2)["workers"] == 2
    assert trial_resources({"CPU": 16.0, "GPU": 4.0}, gpus_per_trial=0) == {"num_cpus": 1.0, "num_gpus": 0.0,
                                                                           "workers": 16}
    assert trial_resources({"CPU": 2.0}) == {"num_cpus": 1.0, "num_gpus": 0.0, "workers": 2}
    assert trial_resources({"CPU": 8.0}, cpus_per_trial=4)["workers"] == 2
    assert trial_resources({"CPU": 8.0}, workers=3)["workers"] == 3
    for bad in (dict(gpus_per_trial=1), dict(gpus_per_trial=-1), dict(gpus_per_trial=1.5),
                dict(gpus_per_trial=float("nan")), dict(cpus_per_trial=0), dict(cpus_per_trial=9), dict(workers=0)):
        with pytest.raises(NASInputError):
            trial_resources({"CPU": 8.0}, **bad)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    with pytest.raises(NASInputError, match=r"pip install 'tutorial-nas\[ray\]'"):
        search(SPACE, "random", lookup(), 3, executor="ray", progress=False)
    with pytest.raises(NASInputError, match="unknown executor 'dask'"):
        make_executor("dask")


# -- Ray: one local instance for the session -----------------------------------------------------------------

@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tutorial-nas[ray]'")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test file
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


class CrashOnce(BenchmarkLookup):
    """A look-up whose worker process dies, once, in the middle of a trial; every attempt is logged."""

    def __init__(self, marker, attempts):
        super().__init__(SPACE, load_benchmark())
        self.marker, self.attempts = str(marker), str(attempts)

    def evaluate(self, arch):
        with open(self.attempts, "a") as f:
            f.write(SPACE.to_str(arch) + "\n")
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))  # only the first attempt to get here
        except FileExistsError:
            return super().evaluate(arch)
        os._exit(1)  # the worker dies without a word, as a killed process does


class Refuses(Evaluator):
    name = "refuses"

    def evaluate(self, arch):
        raise NASInputError(f"cannot score {SPACE.to_str(arch)}")


class Remembers(Evaluator):
    """Scores every architecture 50 and logs each real evaluation; keeps what it scored, as FullTraining does."""

    name = "remembers"

    def __init__(self, log):
        self.log, self.seen = str(log), {}

    def cached(self, arch):
        return Result(valid_acc=50.0, cost_s=0.0, info={"cached": True}) if arch in self.seen else None

    def remember(self, arch, result):
        self.seen[arch] = result

    def evaluate(self, arch):
        with open(self.log, "a") as f:
            f.write("x\n")
        return Result(valid_acc=50.0, test_acc=49.0, cost_s=1.0)


def test_on_ray_a_candidate_seen_before_is_answered_from_the_cache(ray_local, tmp_path):
    from tutorial_nas.parallel import RayExecutor
    from tutorial_nas.spaces.chain import ChainSpace

    one = ChainSpace(max_layers=1, filters=(8,), kernels=(3,), pools=("none",))  # a space of one network
    log = tmp_path / "evaluated.txt"
    h = search(one, "random", Remembers(log), 8, seed=0, executor=RayExecutor(), progress=False)
    trained = len(log.read_text().splitlines())
    # trained once, as in one process: a repeat proposed while the first was in flight waits for its result
    assert trained == 1
    assert sorted(h["cost_s"]) == [0.0] * 7 + [1.0]  # charged once per network trained
    assert h["cached"].eq(True).sum() == 7 and len(h) == 8


class Forgets(Remembers):
    """Keeps nothing (a cache turned off): a repeat held while the first was in flight must still be trained."""

    def remember(self, arch, result):
        return None


def test_on_ray_a_repeat_is_trained_again_where_the_evaluator_keeps_nothing(ray_local, tmp_path):
    from tutorial_nas.parallel import RayExecutor
    from tutorial_nas.spaces.chain import ChainSpace

    one = ChainSpace(max_layers=1, filters=(8,), kernels=(3,), pools=("none",))
    log = tmp_path / "evaluated.txt"
    h = search(one, "random", Forgets(log), 6, seed=0, executor=RayExecutor(), progress=False)
    assert len(log.read_text().splitlines()) == 6 and len(h) == 6 and (h["cost_s"] == 1.0).all()


def test_random_search_on_ray_evaluates_the_same_set_as_in_process(ray_local):
    from tutorial_nas.parallel import RayExecutor

    here = search(SPACE, "random", lookup(), 40, seed=5, progress=False)
    ex = RayExecutor()
    on_ray = search(SPACE, "random", lookup(), 40, seed=5, executor=ex, progress=False)
    assert ex.workers == 2  # the local instance has 2 CPUs: two trials at once
    assert evaluations(on_ray) == evaluations(here)


def test_a_worker_killed_mid_trial_costs_a_retry_and_no_evaluation(ray_local, tmp_path):
    from tutorial_nas.parallel import RayExecutor

    marker, attempts = tmp_path / "crashed", tmp_path / "attempts.txt"
    here = search(SPACE, "random", lookup(), 12, seed=6, progress=False)
    on_ray = search(SPACE, "random", CrashOnce(marker, attempts), 12, seed=6, executor=RayExecutor(max_retries=2),
                    progress=False, checkpoint=tmp_path / "search.json")
    tried = attempts.read_text().splitlines()
    assert marker.exists() and len(tried) == 12 + 1  # one trial ran twice: the retry
    assert evaluations(on_ray) == evaluations(here)  # none lost, none twice
    assert sorted(t for t, _ in load_checkpoint(tmp_path / "search.json")["order"]) == list(range(12))


def test_an_error_of_the_evaluator_on_a_worker_comes_back_as_itself(ray_local):
    with pytest.raises(NASInputError, match="cannot score"):
        search(SPACE, "random", Refuses(), 4, seed=0, executor="ray", progress=False)


def test_the_command_line_searches_on_ray(ray_local, capsys):
    from tutorial_nas.cli import main

    argv = ["search", "--space", "nb201", "--strategy", "regularized", "--budget", "16", "--seed", "2", "--json"]
    assert main(argv + ["--executor", "ray"]) == 0
    on_ray = json.loads(capsys.readouterr().out)
    assert len(on_ray["history"]) == 16 and on_ray["strategy"] == "regularized"
    assert on_ray["best"]["valid_acc"] == max(h["valid_acc"] for h in on_ray["history"])
    assert main(argv + ["--address", "auto"]) == 2
    assert "go with --executor ray" in capsys.readouterr().err


class Oldest(Shuffled):
    """Results come back oldest first, one per wait (as Ray returns trials that take the same time)."""

    name = "oldest"

    def wait(self):
        ticket, arch = self.running.pop(0)
        return [(ticket, self.evaluator.evaluate(arch))]


class Bits(Evaluator):
    name = "bits"

    def evaluate(self, arch):
        return Result(valid_acc=float(sum(map(sum, arch))), cost_s=0.0)


@pytest.mark.parametrize("executor", [Oldest(workers=8), Shuffled(workers=8, seed=3)])
def test_genetic_cnn_breeds_each_generation_from_all_of_the_last_ones_results(executor):
    """Algorithm 1 selects from the whole previous generation: with N workers the loop waits for its last result
    (it bred from the first result told, and counted the others in the next generation)."""
    from tutorial_nas.spaces.genetic import GeneticSpace
    from tutorial_nas.strategies.evolution import GeneticCNN

    space = GeneticSpace(nodes=(3, 4))
    strategy = GeneticCNN(space, seed=0, population=8)
    bred, asked = [], []
    breed, ask = strategy.breed, strategy.ask

    def spy_breed():
        bred.append(sorted(space.to_str(a) for a, _ in strategy.scored))
        return breed()

    def spy_ask():
        arch = ask()
        asked.append((strategy.generation, space.to_str(arch)))
        return arch

    strategy.breed, strategy.ask = spy_breed, spy_ask
    search(space, strategy, Bits(), 40, executor=executor, progress=False)
    assert len(bred) == 4 and executor.most == 8
    for g, told in enumerate(bred):  # each breeding read exactly the 8 candidates of the generation before
        assert told == sorted(a for gen, a in asked if gen == g)
    with pytest.raises(NASInputError, match="tell the others"):
        fresh = GeneticCNN(space, seed=0, population=2)
        fresh.tell(fresh.ask(), Result(valid_acc=1.0))
        fresh.ask(), fresh.ask()
