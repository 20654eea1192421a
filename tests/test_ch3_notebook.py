"""Chapter 3's notebook and its solutions keep their promises: the code it shows exists in the package, it prints
its cost, and every exercise it sets has a worked solution."""

import json
import re
from pathlib import Path

import pytest

from tutorial_nas.course.notebooks import CHAPTERS, SOLUTIONS
from tutorial_nas.course.source import source

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "notebooks" / CHAPTERS[3][0]
SOLVED = ROOT / "notebooks" / SOLUTIONS[3]


def cells(path: Path, kind: str) -> list:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def test_every_source_the_chapter_shows_is_the_package_s():
    names = re.findall(r'show_source\("([^"]+)"\)', "\n".join(cells(CHAPTER, "code")))
    assert len(names) >= 6  # the aging step, the BANANAS acquisition and round, REINFORCE's loss and step
    for name in names:
        assert source(name).path.startswith("tutorial_nas/"), name


def test_the_chapter_prints_its_plan_after_the_setup_cell():
    code = cells(CHAPTER, "code")
    assert "setup(seed=0)" in code[0] and "plan_line(profile, chapter=3)" in code[1]


def test_every_exercise_has_a_worked_solution():
    text = "\n".join(cells(CHAPTER, "markdown"))
    exercises = text[text.index("## Exercises"):]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", exercises, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 8
    solved = [int(n) for n in re.findall(r"^\*\*(\d+)\. ", "\n".join(cells(SOLVED, "markdown")), flags=re.M)]
    assert solved == numbers
    assert SOLVED.name in exercises  # the chapter links to them


@pytest.mark.parametrize("path", [CHAPTER, SOLVED], ids=["chapter", "solutions"])
def test_the_setup_cell_is_the_chapters_own(path):
    first = json.loads(CHAPTER.read_text())["cells"][1]
    assert cells(path, "code")[0] == "".join(first["source"])


WRITE_IT_YOURSELF = ("aging_step", "its_acquisition")


def _run_cell(code: str, capsys) -> str:
    exec(compile(code, "<cell>", "exec"), {})
    return capsys.readouterr().out


def assert_unfinished_exercise_breaks_nothing(chapter: Path, name: str, capsys) -> None:
    """The exercise cell of ``name`` is set (a task, a NotImplementedError) and, run as shipped, the checker says
    "Not yet" without raising (chapter 4's test calls this too)."""
    [cell] = [c for c in cells(chapter, "code") if f'check("{name}"' in c]
    assert f'task("{name}")' in cell and "raise NotImplementedError" in cell
    out = _run_cell(cell, capsys)  # the cell as shipped: the checker says "Not yet", nothing raises
    assert "Not yet" in out and "NotImplementedError" in out


@pytest.mark.parametrize("name", WRITE_IT_YOURSELF)
def test_each_exercise_is_set_and_an_unfinished_one_breaks_nothing(name, capsys):
    assert_unfinished_exercise_breaks_nothing(CHAPTER, name, capsys)


@pytest.mark.parametrize("name", WRITE_IT_YOURSELF)
def test_each_exercise_s_solution_is_the_package_s_answer_and_passes(name, capsys):
    [cell] = [c for c in cells(SOLVED, "code") if f'show_answer("{name}")' in c]
    assert f'check("{name}"' in cell and f"def {name}(" not in cell  # shown from the package, not pasted
    out = _run_cell("from tutorial_nas.course.exercises import check, show_answer\n" + cell, capsys)
    assert f"correct: {name}" in out


def test_the_acquisition_exercise_follows_the_bananas_trace_which_prints_the_draws():
    code = cells(CHAPTER, "code")
    trace = next(i for i, c in enumerate(code) if "bo.surrogate.predict" in c)
    exercise = next(i for i, c in enumerate(code) if 'check("its_acquisition"' in c)
    reinforce = next(i for i, c in enumerate(code) if 'show_source("strategies.reinforce.policy_loss")' in c)
    assert trace < exercise < reinforce
    assert '"ITS draw": its' in code[trace] and "bo.pool_scores.copy()" in code[trace]
    assert code[trace].index("_new_round()") < code[trace].index("bo.ask()\nassert")


def test_the_resnet_verdict_tests_each_strategy_by_welch_and_holm_not_a_normal_cut():
    [cell] = [c for c in cells(CHAPTER, "code") if "C.baseline_rank(bench)" in c]
    assert "C.against_cell(table, resnet)" in cell and "z > 2" not in cell and "beyond the noise of both" not in cell
    assert "Welch" in cell and "Holm" in cell


def test_the_published_gain_is_set_against_spreads_not_declared_within_this_table_s_noise():
    [cell] = [c for c in cells(CHAPTER, "code") if 'overall.numbers["gain_points"]' in c and "gap_against" in c]
    assert cell.count("L.gap_against_spread(") == 2  # this table's spread, then NAS-Bench-201's on CIFAR-10
    assert 'nb201_paper.set_index("method")' in cell and "c10_test_std" in cell
    assert "says nothing about CIFAR-10" in cell and "The published gain is within" not in cell


def test_the_chapter_says_what_holm_keeps_and_what_the_cost_line_shows():
    text = " ".join(" ".join(cells(CHAPTER, "markdown")).split())
    assert "keeps the chance of any false difference among them at 5 % or less" in text
    assert "single false difference" not in text and "have the highest median of all" not in text
    assert "falls in a gap where none of the family's searches lies" in text


def test_solution_1_says_it_retests_the_look_up_strategies_only():
    [code] = [c for c in cells(SOLVED, "code") if "n_few = " in c]
    assert "The look-up strategies only" in code and "tests + len(cmp.oneshot)" in code
    [text] = [c for c in cells(SOLVED, "markdown") if c.startswith("**1. ")]
    assert "The look-up strategies only" in text and "The chapter's comparison" not in text


def test_solution_2_prints_ties_and_counts_no_swap_at_a_tied_budget():
    [code] = [c for c in cells(SOLVED, "code") if "for trainings in (50, 200)" in c]
    assert "C.ranked(v)" in code and "' > '.join" not in code
    assert "abs(g) >= C.TIE_POINTS" in code and "if min(zs) < 0 < max(zs):" not in code
