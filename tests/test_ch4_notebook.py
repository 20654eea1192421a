"""Chapter 4's notebook and its solutions keep their promises: the code it shows exists in the package, it prints
its cost, its write-it-yourself cells are set and break nothing unfinished, and every exercise it sets has a worked
solution."""

import json
import re
from pathlib import Path

import pytest
from test_ch3_notebook import _run_cell, assert_unfinished_exercise_breaks_nothing, cells  # tests/ is on the path

from tutorial_nas.course.notebooks import CHAPTERS, SOLUTIONS
from tutorial_nas.course.source import source

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "notebooks" / CHAPTERS[4][0]
SOLVED = ROOT / "notebooks" / SOLUTIONS[4]
WRITE_IT_YOURSELF = ("mnasnet_reward", "pareto_front")


def test_every_source_the_chapter_shows_is_the_package_s():
    names = re.findall(r'show_source\("([^"]+)"\)', "\n".join(cells(CHAPTER, "code")))
    assert {"analysis.hardware.mnas_reward", "analysis.hardware.pareto_front"} <= set(names)
    for name in names:
        assert source(name).path.startswith("tutorial_nas/"), name


def test_the_chapter_prints_its_plan_after_the_setup_cell():
    code = cells(CHAPTER, "code")
    assert "setup(seed=0)" in code[0] and "plan_line(profile, chapter=4)" in code[1]


@pytest.mark.parametrize("name", WRITE_IT_YOURSELF)
def test_each_exercise_is_set_and_an_unfinished_one_breaks_nothing(name, capsys):
    assert_unfinished_exercise_breaks_nothing(CHAPTER, name, capsys)


def test_the_pareto_exercise_follows_the_front_the_chapter_shows_and_runs():
    code = cells(CHAPTER, "code")
    shown = code.index('show_source("analysis.hardware.pareto_front")')
    run = next(i for i, c in enumerate(code) if "hardware.pareto_search(" in c)
    exercise = next(i for i, c in enumerate(code) if 'check("pareto_front"' in c)
    assert shown < run < exercise


@pytest.mark.parametrize("name", WRITE_IT_YOURSELF)
def test_each_exercise_s_solution_is_the_package_s_answer_and_passes(name, capsys):
    [cell] = [c for c in cells(SOLVED, "code") if f'show_answer("{name}")' in c]
    assert f'check("{name}"' in cell and f"def {name}(" not in cell  # shown from the package, not pasted
    preamble = ("from tutorial_nas.analysis import hardware\n"  # imported by the solutions' earlier cells
                "from tutorial_nas.course.exercises import check, show_answer\n")
    assert f"correct: {name}" in _run_cell(preamble + cell, capsys)


def test_every_exercise_has_a_worked_solution():
    text = "\n".join(cells(CHAPTER, "markdown"))
    exercises = text[re.search(r"^## (\d+\. )?Exercises", text, flags=re.M).start():]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", exercises, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 7
    solved = [int(n) for n in re.findall(r"^\*\*(\d+)\. ", "\n".join(cells(SOLVED, "markdown")), flags=re.M)]
    assert solved == numbers
    assert SOLVED.name in exercises  # the chapter names them
    assert "write it yourself" in exercises.lower()


@pytest.mark.parametrize("path", [CHAPTER, SOLVED], ids=["chapter", "solutions"])
def test_the_setup_cell_is_the_chapters_own(path):
    first = json.loads(CHAPTER.read_text())["cells"][1]
    assert cells(path, "code")[0] == "".join(first["source"])
