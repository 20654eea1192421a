"""BlockQNN (Zhong et al., CVPR 2018): MetaQNN's Q-learning over the edges of the NB201 cell."""

from __future__ import annotations

import numpy as np
import pytest

from tutorial_nas.bench import load_benchmark
from tutorial_nas.errors import NASInputError
from tutorial_nas.evaluators import BenchmarkLookup, Result
from tutorial_nas.ops import NB201_OPS
from tutorial_nas.search import search
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.spaces.chain import ChainSpace
from tutorial_nas.strategies import STRATEGIES, make_strategy
from tutorial_nas.strategies.blockqnn import BLOCKQNN_SCHEDULE, BlockQNN
from tutorial_nas.strategies.qlearning import TERMINAL

CELL = ("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")


def test_one_update_follows_the_shaped_backup_rule():
    agent = BlockQNN(NB201Space()).agent
    states = [(-1, None)] + list(enumerate(CELL)) + [TERMINAL]
    agent.update(states, 0.9)
    alpha, q0, T = 0.01, 0.5, 7
    # the last step: Q <- (1 - alpha) Q + alpha r_T
    last = (1 - alpha) * q0 + alpha * 0.9
    assert agent.q[((5, CELL[5]), TERMINAL)] == pytest.approx(last)
    # the step before: Q <- (1 - alpha) Q + alpha (r_T / T + gamma max_a' Q(s', a')), the max over a' being the
    # just-updated last step (the only action from the last edge)
    before = (1 - alpha) * q0 + alpha * (0.9 / T + last)
    assert agent.q[((4, CELL[4]), (5, CELL[5]))] == pytest.approx(before)
    # the first step backs up the max over the second edge's ops, the unseen ones still at q_init
    first = agent.q[((-1, None), (0, CELL[0]))]
    assert first == pytest.approx((1 - alpha) * q0 + alpha * (0.9 / T + max(q0, agent.q[((0, CELL[0]), (1, CELL[1]))])))
    # without shaping the intermediate steps earn nothing (MetaQNN's rule)
    plain = BlockQNN(NB201Space(), shaped=False).agent
    plain.update(states, 0.9)
    assert plain.q[((4, CELL[4]), (5, CELL[5]))] == pytest.approx((1 - alpha) * q0 + alpha * last)


def test_blocks_are_cells_and_the_schedule_is_table_2_scaled():
    strategy = make_strategy("blockqnn", NB201Space(), seed=3)
    assert STRATEGIES["blockqnn"] == "blockqnn:BlockQNN" and isinstance(strategy, BlockQNN)
    cell = strategy.ask()
    assert len(cell) == 6 and set(cell) <= set(NB201_OPS)
    assert sum(n for _, n in BLOCKQNN_SCHEDULE) == 178 and BLOCKQNN_SCHEDULE[0] == (1.0, 95)
    strategy.plan(178)
    assert [strategy.epsilon(m) for m in (0, 94, 95, 177)] == [1.0, 1.0, 0.9, 0.1]
    strategy = BlockQNN(NB201Space(), models=100)
    assert strategy.epsilon(52) == 1.0 and strategy.epsilon(54) < 1 and strategy.epsilon(99) == 0.1
    strategy.tell(CELL, Result(valid_acc=float("nan")))  # a failed evaluation teaches nothing
    assert strategy.agent.memory == []
    with pytest.raises(NASInputError, match="nb201"):
        BlockQNN(ChainSpace(max_layers=3))
    with pytest.raises(NASInputError, match="schedule"):
        BlockQNN(NB201Space(), schedule=[(1.5, 10)])


def test_a_budget_in_mean_trainings_spans_the_schedule_over_its_look_ups():
    # chapter 3 gives every strategy a budget in seconds worth so many mean trainings; BlockQNN's Table 2 schedule
    # must span about that many look-ups, not its paper's 178 (95 of them at epsilon = 1, nearly all of a run)
    from tutorial_nas.analysis.compare import budget_from_trainings

    bench = load_benchmark()
    space = NB201Space()
    budget = budget_from_trainings(bench, 60)
    assert budget.planned == 60 and "planned for 60 evaluations" in str(budget)
    strategy = BlockQNN(space, seed=0)
    history = search(space, strategy, BenchmarkLookup(space, bench), budget, progress=False)
    assert strategy.models == 60 and history.attrs["budget"] == str(budget)
    assert strategy.epsilon(59) == 0.1 and strategy.epsilon(40) < 1
    # a plain budget in seconds still gives no count: Table 2 as it stands
    plain = BlockQNN(space, seed=0)
    search(space, plain, BenchmarkLookup(space, bench), f"{budget.seconds}s", progress=False)
    assert plain.models is None and plain.epsilon(59) == 1.0


def test_blockqnn_beats_random_on_the_shipped_benchmark():
    bench = load_benchmark()
    space = NB201Space()
    evaluator = BenchmarkLookup(space, bench)
    mean = np.mean([bench.query(a)["valid_acc"] for a in bench.all_arches()])
    late, random_mean, greedy = [], [], []
    for seed in range(3):
        strategy = BlockQNN(space, seed=seed)
        history = search(space, strategy, evaluator, 150, progress=False)
        late.append(history["valid_acc"].iloc[-40:].mean())  # the blocks proposed at epsilon <= 0.3
        random_mean.append(search(space, "random", evaluator, 150, seed=seed, progress=False)["valid_acc"].mean())
        greedy.append(bench.query(space.to_str(strategy.greedy_block()))["valid_acc"])
    print(f"space mean {mean:.2f}; random proposals {np.mean(random_mean):.2f}; BlockQNN's last 40 "
          f"{np.mean(late):.2f}; its greedy cells {np.round(greedy, 1).tolist()}")
    assert np.mean(late) > np.mean(random_mean) + 2
    assert min(greedy) > mean


def test_search_compare_and_the_command_line_run_it(capsys):
    import json

    from tutorial_nas.analysis.compare import compare
    from tutorial_nas.cli import main

    runs = compare(NB201Space(), ["blockqnn", "random"], seeds=2, budget=10, bench=load_benchmark(), progress=False)
    assert set(runs["strategy"]) == {"blockqnn", "random"}
    assert main(["search", "--space", "nb201", "--strategy", "blockqnn", "--evaluator", "bench", "--budget", "10",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == "blockqnn" and len(out["best"]["arch"].split("+")) == 3
    assert main(["search", "--space", "chain", "--strategy", "blockqnn", "--budget", "2"]) == 2
    assert "nb201" in capsys.readouterr().err
