"""The repository's promises about itself: one dependency list, badges from one URL, the two commands."""

import json
import re
import tomllib
from pathlib import Path

from tutorial_nas import REPOSITORY
from tutorial_nas.course.notebooks import CHAPTERS, SOLUTIONS, chapter_table, colab_url, modules_used, package_map

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip().strip('"'), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    pip_lines = re.findall(r'^\s+- "([^"]+)"\s*$', (ROOT / "environment.yml").read_text(), flags=re.M)
    listed = {_name(r) for r in pip_lines if not r.startswith("-e")}
    assert listed == wanted
    assert "graphviz" in (ROOT / "environment.yml").read_text()  # the dot binary, from conda


def test_dependencies_have_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    for req in project["dependencies"] + extras:
        assert ">=" in req and "==" not in req and "<" not in req.replace("<=", ""), req


def test_the_ray_extra_is_declared_and_installed_for_the_tests():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [_name(r) for r in project["optional-dependencies"]["ray"]] == ["ray"]
    course = (ROOT / "course").read_text()
    assert re.search(r'test\)\s+setup dev,ray;', course)  # CI runs the Ray tests on a local instance
    assert re.search(r'lab\)\s+setup dev;', course)  # the lab stays light


def test_readme_badges_come_from_the_one_repository_url():
    readme = (ROOT / "README.md").read_text()
    assert chapter_table() in readme
    for filename in [f for f, _ in CHAPTERS.values()] + list(SOLUTIONS.values()):
        assert colab_url(filename) in readme


def test_the_readme_maps_every_notebook_to_the_package_files_it_uses():
    assert package_map() in (ROOT / "README.md").read_text()


def test_the_map_follows_imports_to_the_defining_file_in_order(tmp_path):
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    nb = {"cells": [{**cell, "source": ["!pip install x\n", "from tutorial_nas.bench import load_benchmark\n"]},
                    {**cell, "source": ["import numpy\n", "from tutorial_nas.course import viz\n",
                                        "from tutorial_nas.bench.table import pack\n"]},
                    {**cell, "source": ["def broken(:\n"]}]}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    assert modules_used(path) == ["tutorial_nas/bench/__init__.py", "tutorial_nas/course/viz.py",
                                  "tutorial_nas/bench/table.py"]


def test_a_stored_output_has_the_execution_count_that_nbval_needs():
    for path in (ROOT / "notebooks").rglob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        unrun = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c["outputs"]
                 and c["execution_count"] is None]
        assert not unrun, f"{path.name}: cells {unrun} have outputs but no execution count (nbval fails them)"


def test_every_chapter_has_its_exercises_and_a_solutions_notebook_that_it_links_to():
    notebooks = sorted(p.relative_to(ROOT / "notebooks").as_posix() for p in (ROOT / "notebooks").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    assert notebooks == sorted([f for f, _ in CHAPTERS.values()] + list(SOLUTIONS.values()))
    for n, (filename, _) in CHAPTERS.items():
        cells = json.loads((ROOT / "notebooks" / filename).read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert re.search(r"^## .*Exercises", text, re.M), f"chapter {n} has no exercises section"
        assert SOLUTIONS[n].split("/")[-1] in text, f"chapter {n} does not link to its solutions"
        sol = json.loads((ROOT / "notebooks" / SOLUTIONS[n]).read_text())
        opening = next(c for c in sol["cells"] if c["cell_type"] == "markdown")
        assert colab_url(SOLUTIONS[n]) in "".join(opening["source"])


def test_each_notebook_opens_with_its_badge_and_installs_from_the_same_url():
    for filename, _ in CHAPTERS.values():
        path = ROOT / "notebooks" / filename
        if not path.exists():
            continue
        nb = json.loads(path.read_text())
        first_md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
        assert colab_url(filename) in "".join(first_md["source"])
        setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
        source = "".join(setup["source"])
        assert f'REPOSITORY = "{REPOSITORY}"' in source and 'f"git+{REPOSITORY}"' in source  # tests/test_colab_setup.py


def test_the_two_commands_are_in_the_readme_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "./course lab" in readme and "./course test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./course test" in ci
