"""Where candidates are evaluated: in this process (the default), or as Ray tasks on many cores, GPUs, machines.

    search(space, "regularized", evaluator, 500)                            # one candidate at a time, here
    search(space, "regularized", evaluator, 500, executor="ray")            # a local Ray instance
    search(space, "regularized", evaluator, 500,
           executor=RayExecutor(address="auto", gpus_per_trial=0.5))        # this cluster, two trials per GPU

Ray (https://docs.ray.io) is an established distributed engine; this module only hands it one task per
candidate. Each task gets ``cpus_per_trial`` CPUs and, where the cluster has GPUs, ``gpus_per_trial`` of a GPU
(one by default; a fraction lets small networks share a GPU). Ray reruns a task whose worker died (a node
lost, a process killed) up to ``max_retries`` times, so a lost worker costs one retry, not an evaluation.

How many candidates are in flight at once is the smaller of what the cluster can run (its GPUs or CPUs
divided by one trial's share) and what the strategy can use: ``strategy.parallel``, the number of candidates
it can propose before it is told any of their results. Random search, evolution and BANANAS (whose pool
gives a batch of proposals per surrogate fit) keep every worker busy; REINFORCE and Q-learning learn from
each result before the next proposal, so they run one trial at a time wherever they run.

Results are told to the strategy in the order they finish, as an asynchronous search does (Real et al. ran
regularized evolution this way), and the History records them in that order. With several workers that
order depends on timing, so evolution or BANANAS may take another path than in one process; random search
proposes the same candidates either way, so the same seed evaluates the same set of architectures. A candidate
proposed again while its first evaluation is still in flight waits for that result (from the evaluator's cache,
charged nothing) instead of being trained twice, as in one process where the first is done before the repeat.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from .errors import NASInputError, check_choice
from .evaluators import Evaluator, Result

EXECUTORS = ("local", "ray")
RAY_MISSING = ("executor='ray' needs Ray, an optional extra: pip install 'tutorial-nas[ray]' "
               "(or pip install 'ray>=2.9'); without it candidates are evaluated in this process (executor='local')")


class Executor(ABC):
    """Runs evaluations: ``submit`` hands one over, ``wait`` returns at least one finished, oldest first."""

    name = "executor"
    workers = 1  # how many evaluations can run at the same time

    def start(self, evaluator: Evaluator) -> None:
        """Called once before the first ``submit`` with the evaluator every candidate is scored by."""
        self.evaluator = evaluator

    @abstractmethod
    def submit(self, ticket: int, arch) -> None:
        """Start evaluating ``arch``; ``ticket`` identifies it in what ``wait`` returns."""

    @abstractmethod
    def wait(self) -> list:
        """Block until at least one submitted evaluation is finished; return ``[(ticket, Result), ...]``."""

    def cancel(self) -> None:
        """Drop every evaluation still running (the search is over)."""
        return None

    def close(self) -> None:
        """Release what ``start`` set up."""
        return None


class LocalExecutor(Executor):
    """Evaluate in this process, one candidate at a time."""

    name = "local"

    def __init__(self):
        self.queue: list = []

    def submit(self, ticket: int, arch) -> None:
        self.queue.append((ticket, arch))

    def wait(self) -> list:
        ticket, arch = self.queue.pop(0)
        return [(ticket, self.evaluator.evaluate(arch))]

    def cancel(self) -> None:
        self.queue.clear()


def _check_share(gpus_per_trial, cpus_per_trial) -> None:
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not number(cpus_per_trial) or not cpus_per_trial > 0:
        raise NASInputError(f"cpus_per_trial must be a number above zero, got {cpus_per_trial!r}")
    if gpus_per_trial is not None and (not number(gpus_per_trial) or gpus_per_trial < 0
                                       or (gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial))):
        raise NASInputError(f"gpus_per_trial must be 0, a fraction of one GPU (0.25, 0.5) or a whole number of "
                            f"GPUs, got {gpus_per_trial!r}")


def trial_resources(cluster: dict, gpus_per_trial: float | None = None, cpus_per_trial: float = 1,
                    workers: int | None = None) -> dict:
    """What one trial asks of the cluster and how many trials fit at once.

    ``cluster`` is ``ray.cluster_resources()``. With GPUs in the cluster a trial takes ``gpus_per_trial`` of one
    (1 unless given; a fraction such as 0.5 puts two trials on a GPU) and the GPUs bound the number of trials;
    without GPUs the CPUs do. ``workers`` caps the number of trials further.
    """
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    _check_share(gpus_per_trial, cpus_per_trial)
    if gpus_per_trial is None:
        gpus_per_trial = 1.0 if gpus > 0 else 0.0
    if gpus_per_trial > gpus:
        raise NASInputError(f"a trial asks for {gpus_per_trial:g} GPU but the Ray cluster has {gpus:g}; "
                            "pass gpus_per_trial=0 to train on CPUs")
    if cpus_per_trial > cpus:
        raise NASInputError(f"a trial asks for {cpus_per_trial:g} CPUs but the Ray cluster has {cpus:g}")
    fit = int(gpus // gpus_per_trial) if gpus_per_trial > 0 else int(cpus // cpus_per_trial)
    if workers is not None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise NASInputError(f"workers must be a whole number of at least 1, got {workers!r}")
        fit = min(fit, workers)
    return {"num_cpus": float(cpus_per_trial), "num_gpus": float(gpus_per_trial), "workers": max(1, fit)}


def _evaluate_on_worker(evaluator: Evaluator, arch) -> Result:
    """The body of one Ray task: move the evaluator to the GPU Ray gave this trial, if any, and score ``arch``."""
    import ray

    if ray.get_gpu_ids():
        import torch

        if torch.cuda.is_available():
            evaluator = evaluator.to(torch.device("cuda"))  # Ray shows the task only its own GPU(s)
    return evaluator.evaluate(arch)


class RayExecutor(Executor):
    """One Ray task per candidate, on a local Ray instance (no ``address``) or an existing cluster.

    ``address`` is what ``ray.init`` takes: "auto" for the cluster this machine belongs to, "head:6379" for a
    cluster's head node, or "ray://head:10001" through Ray Client (which needs ``pip install "ray[client]"``).
    When Ray is already initialised in this process, that instance is used as it is.
    ``num_cpus`` sizes a local instance (default: every core). ``gpus_per_trial`` and ``cpus_per_trial``: the
    share of the cluster one trial holds; ``workers`` caps the trials in flight; ``max_retries``: how many times
    Ray reruns a trial whose worker died.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus_per_trial: float | None = None,
                 cpus_per_trial: float = 1, workers: int | None = None, max_retries: int = 3):
        try:
            import ray
        except ImportError:
            raise NASInputError(RAY_MISSING) from None
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise NASInputError(f"address must be a Ray address such as 'auto' or 'head:6379', got {address!r}")
        _check_share(gpus_per_trial, cpus_per_trial)
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise NASInputError(f"max_retries must be a whole number of at least 0, got {max_retries!r}")
        self.ray, self.address, self.num_cpus = ray, address, num_cpus
        self.gpus_per_trial, self.cpus_per_trial, self.max_workers = gpus_per_trial, cpus_per_trial, workers
        self.max_retries = max_retries
        self.running: dict = {}  # ObjectRef -> (ticket, arch)
        self.held: dict = {}  # key of an architecture in flight -> [(ticket, arch), ...] proposed again meanwhile
        self.workers = 1
        self._ref = None

    def start(self, evaluator: Evaluator) -> None:
        reason = getattr(evaluator, "local_only", None)
        if reason:  # each task gets its own copy of the evaluator: state it changes would start afresh every time
            raise NASInputError(f"{evaluator.name} cannot run on Ray: {reason}, and each Ray task would start from "
                                f"a fresh copy of it; use the local executor")
        ray = self.ray
        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address)
                else:
                    ray.init(num_cpus=self.num_cpus)
            except (ConnectionError, TimeoutError, ValueError, RuntimeError) as err:
                raise NASInputError(f"could not start or reach Ray at {self.address or 'a local instance'}: "
                                    f"{err}") from None
        self.resources = trial_resources(ray.cluster_resources(), self.gpus_per_trial, self.cpus_per_trial,
                                         self.max_workers)
        self.workers = self.resources["workers"]
        self.task = ray.remote(_evaluate_on_worker).options(
            num_cpus=self.resources["num_cpus"], num_gpus=self.resources["num_gpus"], max_retries=self.max_retries,
            retry_exceptions=False)  # a worker that died is retried; an error of the evaluator itself is not
        self.evaluator = evaluator
        self._ref = ray.put(evaluator)  # shipped to the object store once, not once per task

    def _key(self, arch) -> str:
        space = getattr(self.evaluator, "space", None)
        return space.key(arch) if space is not None else repr(arch)

    def submit(self, ticket: int, arch) -> None:
        hit = self.evaluator.cached(arch)
        if hit is not None:  # seen before (an evaluator with a cache): no task, no cost
            self.running[self.ray.put(hit)] = (ticket, arch)
            return
        key = self._key(arch)
        has_cache = type(self.evaluator).cached is not Evaluator.cached
        if has_cache and key in self.held:  # in flight already: wait for that result, as one process would
            self.held[key].append((ticket, arch))
            return
        if has_cache:
            self.held[key] = []
        self.running[self.task.remote(self._ref, arch)] = (ticket, arch)

    def _release(self, arch) -> list:
        """The repeats of ``arch`` held while it was in flight: answered from the cache now that it is known, or
        submitted as tasks of their own where the evaluator did not keep the result (a cache turned off)."""
        done = []
        for ticket, again in self.held.pop(self._key(arch), []):
            hit = self.evaluator.cached(again)
            if hit is not None:
                done.append((ticket, hit))
            else:
                self.submit(ticket, again)
        return done

    def wait(self) -> list:
        ray = self.ray
        refs = list(self.running)
        ready, rest = ray.wait(refs, num_returns=1)
        if rest:  # whatever else is done already comes along
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        done = []
        for ref in ready:
            ticket, arch = self.running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as err:  # the evaluator raised: raise its own error here
                self.cancel()
                cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else err
                raise cause from None
            except ray.exceptions.RayError:
                self.cancel()
                raise
            self.evaluator.remember(arch, result)  # the worker's cache is gone with it; keep it here
            done.append((ticket, result))
            if not result.info.get("cached"):  # a task of its own, not a cache hit: its repeats wait on it
                done += self._release(arch)
        return sorted(done, key=lambda d: d[0])

    def cancel(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref)
        self.running.clear()
        self.held.clear()

    def close(self) -> None:
        self.cancel()
        self._ref = None  # the Ray instance stays up for the next search; ray.shutdown() ends it


def make_executor(executor=None, **options) -> Executor:
    """``None`` or ``"local"``: this process; ``"ray"``: Ray tasks (``options`` go to ``RayExecutor``); or an
    ``Executor`` object, used as it is."""
    if isinstance(executor, Executor):
        return executor
    if executor is None:
        executor = "local"
    if not isinstance(executor, str):
        raise NASInputError(f"executor must be 'local', 'ray' or an Executor object, got {executor!r}")
    check_choice("executor", executor, EXECUTORS)
    if executor == "local":
        if options:
            raise NASInputError(f"the local executor takes no options, got {sorted(options)}")
        return LocalExecutor()
    return RayExecutor(**options)


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "make_executor", "trial_resources"]
