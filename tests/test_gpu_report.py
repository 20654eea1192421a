"""The GPU check keeps working where there is no GPU: ``benchmarks/gpu_check.sh --dry-run`` runs every stage and
every chapter's path on the CPU at tiny sizes and writes its two reports; a failing stage fails the check."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_report  # noqa: E402

import tutorial_nas.data as data_module  # noqa: E402
from tutorial_nas import NASInputError  # noqa: E402
from tutorial_nas.profiles import get_profile  # noqa: E402


def bare_python(tmp_path) -> dict:
    """An environment like a bare GPU machine's: a Python with torch, numpy, pandas, scipy, scikit-learn and
    matplotlib, on which this package is not installed and the notebook-only packages are missing. ``-S`` skips
    the site directories' ``.pth`` files (the editable install's finder among them); the site packages come back
    through ``PYTHONPATH``, behind stand-ins that fail to import ipywidgets, graphviz and mlxtend."""
    stubs = tmp_path / "missing"
    for name in ("ipywidgets", "graphviz", "mlxtend"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    site = os.pathsep.join(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHON": str(python), "PYTHONPATH": f"{stubs}{os.pathsep}{site}"}


def test_the_bare_environment_lacks_the_package_and_the_notebook_packages(tmp_path):
    env = bare_python(tmp_path)
    for name in ("tutorial_nas", "ipywidgets", "graphviz", "mlxtend"):
        run = subprocess.run([env["PYTHON"], "-c", f"import {name}"], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        assert run.returncode != 0 and "Error" in run.stderr, name
    assert subprocess.run([env["PYTHON"], "-c", "import torch, numpy, pandas, scipy, sklearn, matplotlib"],
                          env=env, cwd=tmp_path).returncode == 0


def test_the_dry_run_runs_every_stage_and_chapter_on_the_cpu_and_writes_json_and_markdown(tmp_path):
    """Run as on a bare GPU machine (``bare_python``): the script finds the package in its own checkout."""
    out = tmp_path / "report"
    env = {**bare_python(tmp_path), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dry_run"] is True and report["device_type"] == "cpu" and report["profile"] == "ci"
    for key in gpu_report.MEASUREMENTS:
        assert report[key]["ok"], (key, report[key])
    assert report["trainer"]["images_per_s"] > 0 and report["trainer"]["forward_dtype"] == "float32"
    assert report["trainer"]["channels_last"] is True
    for method in ("darts", "darts2", "gdas"):
        assert report["search_steps"][method]["median_s"] > 0 and report["search_steps"][method]["peak_mib"] is None
    assert report["supernet_step"]["median_s"] > 0
    assert report["candidates"]["candidates"] == 1 and report["candidates"]["per_minute"] > 0
    cost = report["cost_model"]  # the plan calibrated on the device and checked against its own estimates
    assert cost["achieved_gflops"] > 0 and cost["kernel_us"] > 0 and cost["depthwise_gflops"] > 0
    assert len(cost["nets"]) == len(gpu_report.TINY_NETS)
    assert all(n["measured_s"] > 0 and n["estimated_s"] > 0 for n in cost["nets"])
    assert cost["min_ratio"] <= cost["median_ratio"] <= cost["max_ratio"]
    chapters = report["chapters"]
    assert {c["chapter"] for c in chapters} == {1, 2, 3, 4} and all(c["ok"] for c in chapters), chapters
    ran = " ".join(c["what"] for c in chapters)
    for name in ("REINFORCE", "DARTS 1st order", "DARTS 2nd order", "GDAS", "morphism", "ENAS", "latency", "trick"):
        assert name in ran
    md = (tmp_path / "report.md").read_text()
    assert md.startswith(f"# GPU check: {report['device']}") and "dry run" in md and "FAILED" not in md
    assert md.count("\n| 2 |") == 4 and "candidate trainings" in md and "cost model (plan)" in md
    assert "dry run: every stage on the CPU" in run.stdout and "GPU check on cpu" in run.stdout
    assert f"wrote {out}.json" in run.stdout


def test_a_failing_stage_is_reported_and_fails_the_check():
    run = gpu_report.Run(get_profile("ci", device="cpu"), torch.device("cpu"), dry_run=True)
    broken = gpu_report.attempt(run, lambda: 1 / 0)
    assert broken["ok"] is False and broken["error"].startswith("ZeroDivisionError")
    r = {"dry_run": True, "trainer": {"ok": True, "learned": False}, "search_steps": {"ok": True},
         "supernet_step": {"ok": True}, "candidates": broken, "cost_model": {"ok": True},
         "chapters": [{"chapter": 2, "what": "GDAS", "ok": False, "error": "RuntimeError: CUDA error"}]}
    assert gpu_report.failures(r) == ["candidates", "chapter 2: GDAS"]
    r["dry_run"] = False  # on a real run a trainer at chance accuracy is a failure too (mixed precision broken)
    assert gpu_report.failures(r)[-1] == "trainer: no better than chance"
    assert gpu_report.stage_line("candidates", broken).startswith("FAILED: ZeroDivisionError")


def test_synthetic_data_is_learnable_and_stands_in_when_cifar10_cannot_be_downloaded(monkeypatch):
    data = gpu_report.synthetic("s", (500, 100, 100), 3, 32, "cpu")
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    means = torch.stack([data.train_x[data.train_y == k].mean(0) for k in range(10)])
    nearest = torch.cdist(data.test_x.flatten(1), means.flatten(1)).argmin(1)
    assert (nearest == data.test_y).float().mean() > 0.9  # the classes are there to be learned

    def offline():
        raise NASInputError("could not download 'cifar10' into /x (URLError: no network). Offline data sets ...")

    monkeypatch.setattr(data_module, "_RAW_CACHE", {})
    monkeypatch.setitem(data_module.LOADERS, "cifar10", offline)
    monkeypatch.setattr(gpu_report, "FULL", (90, 10, 20))
    run = gpu_report.Run(get_profile("gpu", device="cpu"), torch.device("cpu"))
    data = run.data("cifar10", 32)
    assert data.input_shape == (3, 32, 32) and len(data.train_y) == 90
    assert run.sources["cifar10"].startswith("synthetic 3x32x32 shaped like cifar10 (could not download")
    assert run.data("digits", 8).name == "digits" and run.sources["digits"] == "digits"  # offline sets are real


@pytest.mark.parametrize("name, card", [("NVIDIA H200", "nvidia-h200"), ("Tesla T4", "tesla-t4"),
                                        ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm4-80gb")])
def test_results_are_named_after_the_card(name, card):
    assert gpu_report.slug(name) == card
