"""The setup cell of every notebook, run as Colab runs it: a stand-in ``google.colab`` module, ``subprocess.run``
recorded instead of run. It must install from ``tutorial_nas.REPOSITORY`` while keeping Colab's torch, pick the gpu
profile on a GPU runtime and warn loudly without one."""

import ast
import json
import subprocess
import sys
import types
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

import tutorial_nas
from tutorial_nas.course.notebooks import CHAPTERS, SOLUTIONS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [ROOT / "notebooks" / f for f in [f for f, _ in CHAPTERS.values()] + list(SOLUTIONS.values())]


def setup_cell(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


@pytest.fixture(params=[p for p in NOTEBOOKS if p.exists()], ids=lambda p: p.name)
def cell(request):
    return setup_cell(request.param)


def test_the_cell_installs_from_the_package_url_before_importing_the_package(cell):
    tree = ast.parse(cell)
    urls = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["REPOSITORY"]]
    assert urls == [tutorial_nas.REPOSITORY]  # one variable, the package's own URL: a fork changes both
    assert "A fork sets its own URL here" in cell
    first_import = next(i for i, node in enumerate(tree.body) if isinstance(node, ast.ImportFrom)
                        and (node.module or "").startswith("tutorial_nas"))
    install = next(i for i, node in enumerate(tree.body) if isinstance(node, ast.If) and "pip" in ast.unparse(node))
    assert install < first_import


def run_cell(cell, monkeypatch, *, colab: bool, gpu: bool) -> tuple[dict, list]:
    """Execute the cell's code here, as on Colab (or not), with or without a GPU."""
    calls = []

    def fake_run(args, **kwargs):
        calls.append((list(args), kwargs))
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("TUTORIAL_NAS_PROFILE", raising=False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    namespace = {}
    exec(compile(cell, "setup cell", "exec"), namespace)
    return namespace, calls


def test_on_colab_with_a_gpu_the_cell_installs_keeping_torch_and_picks_gpu(cell, monkeypatch, capsys):
    namespace, calls = run_cell(cell, monkeypatch, colab=True, gpu=True)
    assert calls == [([sys.executable, "-m", "pip", "install", "-q", f"git+{tutorial_nas.REPOSITORY}",
                       f"torch=={version('torch')}"], {"check": True})]
    assert namespace["IN_COLAB"] is True
    assert namespace["profile"].name == "gpu" and namespace["profile"].device.type == "cuda"
    out = capsys.readouterr()
    assert "profile: gpu" in out.out and "Tesla T4" in out.out and "NO GPU" not in out.err


def test_on_colab_without_a_gpu_the_cell_warns_loudly_and_runs_the_cpu_profile(cell, monkeypatch, capsys):
    namespace, calls = run_cell(cell, monkeypatch, colab=True, gpu=False)
    assert len(calls) == 1
    assert namespace["profile"].name == "cpu"
    err = capsys.readouterr().err
    assert "NO GPU" in err and "Runtime > Change runtime type > GPU" in err and "!" * 100 in err


def test_outside_colab_the_cell_installs_nothing(cell, monkeypatch, capsys):
    namespace, calls = run_cell(cell, monkeypatch, colab=False, gpu=False)
    assert calls == [] and namespace["IN_COLAB"] is False
    assert namespace["profile"].name == "cpu" and "NO GPU" not in capsys.readouterr().err


def test_pip_takes_the_torch_pin_as_already_satisfied():
    """What the pin does on Colab, done here with the real pip and no index: nothing to install for torch."""
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--no-index",
                          f"torch=={version('torch')}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Requirement already satisfied: torch==" in run.stdout and "Would install" not in run.stdout
