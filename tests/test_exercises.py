"""The "write it yourself" checkers accept right answers and reject wrong ones with a useful message."""

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tutorial_nas.course import exercises
from tutorial_nas.course.exercises import EXERCISES, answer, check, mismatch
from tutorial_nas.errors import NASInputError
from tutorial_nas.ops import DARTS_OPS


@pytest.mark.parametrize("name", list(EXERCISES))
def test_solutions_and_the_package_pass(name, capsys):
    assert check(name, EXERCISES[name].solution) is True
    assert capsys.readouterr().out.startswith("correct")
    assert check(name, EXERCISES[name].package) is True
    text = answer(name)
    assert text == inspect.getsource(EXERCISES[name].solution) and text.startswith("def ")


def _darts_none_allowed(alpha):
    weights, pairs, start = F.softmax(alpha, dim=-1), [], 0
    for node in range(4):
        rows = weights[start:start + node + 2]
        for i in rows[:, 1:].max(dim=1).values.argsort(descending=True)[:2].tolist():
            pairs.append((DARTS_OPS[int(rows[i].argmax())], i))  # wrong: 'none' may win
        start += node + 2
    return pairs


def _remove_worst(population, sample, mutate, evaluate, rng):
    picked = rng.choice(len(population), sample, replace=True)
    parent = max((population[i] for i in picked), key=lambda p: p[1])[0]
    child = mutate(parent, rng)
    worst = min(range(len(population)), key=lambda i: population[i][1])
    return [p for i, p in enumerate(population) if i != worst] + [(child, evaluate(child))]


def _pareto_weakly_dominated_dropped(points):
    keep = []
    for i, (acc, lat) in enumerate(points):  # wrong: "at least as good in both" alone, so a copy removes its twin
        if not any(j != i and a >= acc and t <= lat for j, (a, t) in enumerate(points)):
            keep.append(i)
    return keep


def _pareto_latency_maximised(points):
    keep = []
    for i, (acc, lat) in enumerate(points):  # wrong: a slower row counts as better
        if not any(a >= acc and t >= lat and (a > acc or t > lat) for a, t in points):
            keep.append(i)
    return np.asarray(keep)


WRONG = [
    ("reinforce_loss", lambda lp, r, b: (r - b) * lp.sum(), "sign"),
    ("reinforce_loss", lambda lp, r, b: -(r - b) * lp.detach().sum(), "gradient"),
    ("mixed_op", lambda x, a, ops: sum(w * op(x) for w, op in zip(a, ops)), "softmax(alpha)"),
    ("darts_derive", _darts_none_allowed, "'none'"),
    ("darts_derive", lambda a: exercises.solution_darts_derive(a.detach() * 0), "expected"),
    ("nb201_derive", lambda a: tuple(["skip_connect"] * 6), "expected"),
    ("aging_step", _remove_worst, "OLDEST"),
    ("its_acquisition", lambda mean, std, rng: mean, "mean alone"),
    ("its_acquisition", lambda mean, std, rng: rng.normal(mean, std ** 2), "not the variance"),
    ("its_acquisition", lambda mean, std, rng: np.random.default_rng(0).normal(mean, std), "expected"),
    ("q_backup", lambda q, r, m, a, g: (1 - a) * q + a * (r + m), "expected"),
    ("mnasnet_reward", lambda acc, lat, t: acc * (lat / t) ** 0.07, "exponent"),
    ("mnasnet_reward", lambda acc, lat, t: acc * (lat / t) ** -0.7, "expected"),
    ("pareto_front", _pareto_weakly_dominated_dropped, "equal rows dominate neither"),
    ("pareto_front", _pareto_latency_maximised, "latency is better LOW"),
    ("pareto_front", lambda points: list(range(len(points))), "expected"),
]


@pytest.mark.parametrize("name, wrong, words", WRONG)
def test_wrong_answers_are_rejected_with_a_reason(name, wrong, words, capsys):
    assert check(name, wrong) is False
    out = capsys.readouterr().out
    assert not out.startswith("correct") and ("Not yet" in out or "Almost" in out) and words in out


def test_a_crash_is_reported_not_raised():
    assert "ZeroDivisionError" in mismatch("q_backup", lambda *args: 1 / 0)


def test_bad_calls():
    with pytest.raises(NASInputError, match="choose one of"):
        check("reinforce", lambda: 0)
    with pytest.raises(NASInputError, match="no parentheses"):
        check("q_backup", 0.5)


def test_the_methods_run_the_functions_the_course_shows(monkeypatch):
    """REINFORCE's step is policy_loss and MetaQNN's update is q_backup: what the chapter shows is what runs."""
    from tutorial_nas.evaluators import Result
    from tutorial_nas.spaces.cell import NB201Space
    from tutorial_nas.spaces.chain import ChainSpace
    from tutorial_nas.strategies import qlearning, reinforce

    calls = []
    monkeypatch.setattr(reinforce, "policy_loss", lambda *a: calls.append("loss") or exercises.policy_loss(*a))
    monkeypatch.setattr(qlearning, "q_backup", lambda *a: calls.append("q") or exercises.q_backup(*a))
    strategy = reinforce.Reinforce(NB201Space(), seed=0)
    for acc in (50.0, 90.0):
        strategy.tell(arch := strategy.ask(), Result(valid_acc=acc))
    agent = qlearning.MetaQNN(ChainSpace(max_layers=2), seed=0, replay=2)
    agent.tell(agent.ask(), Result(valid_acc=80.0))
    assert calls.count("loss") == 2 and "q" in calls
    assert arch is not None


def test_the_aging_contract_is_regularized_evolution_s():
    """The package's aging_step is RegularizedEvolution itself: the oldest dies, the child is the best drawn's."""
    args, kwargs = exercises._inputs_aging(1)
    population, sample, mutate, evaluate = args
    after = exercises.package_aging_step(list(population), sample, mutate, evaluate, np.random.default_rng(7))
    assert after[:-1] == population[1:] and len(after) == len(population)
    drawn = np.random.default_rng(7).choice(len(population), sample, replace=True)
    best = max((population[i] for i in drawn), key=lambda p: p[1])[0]
    assert after[-1][0].startswith(best + ">")
    assert torch.is_tensor(exercises.policy_loss(torch.zeros(2), 1.0, 0.5))


def test_the_acquisition_exercise_is_what_bananas_scores_its_pool_with(monkeypatch):
    """BANANAS' default acquisition is ITS, and the exercise's package version is that very function."""
    from tutorial_nas.spaces.cell import NB201Space
    from tutorial_nas.strategies import bayesopt

    assert bayesopt.BANANAS(NB201Space()).acquisition == "its"
    (mean, std), kwargs = exercises._inputs_its(0)
    calls = []
    monkeypatch.setattr(exercises, "acquisition", lambda *a: calls.append(a[0]) or bayesopt.acquisition(*a))
    assert check("its_acquisition", exercises.solution_its_acquisition) and set(calls) == {"its"}
    scores = exercises.package_its_acquisition(mean, std, kwargs["rng"])
    assert np.allclose(scores, np.random.default_rng(200).normal(mean, std))


def test_the_pareto_exercise_keeps_copies_and_the_package_s_order_of_objectives():
    """Every input holds an exact copy of a front row; the package keeps both, the weak rule neither."""
    from tutorial_nas.analysis.hardware import pareto_front

    for seed in exercises.SEEDS:
        (points,), _ = exercises._inputs_pareto(seed)
        front = pareto_front(points)
        rows = [tuple(points[i]) for i in front]
        assert len(rows) > len(set(rows))  # a row and its copy, both kept
        assert set(exercises._pareto_weak(points)) < set(front.tolist())
    assert exercises._indices(np.array([True, False, True])) == [0, 2]
