"""benchmarks/gpu_report.py keeps working: on this machine's device at the ci sizes, it writes its two reports."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_device_report_runs_at_ci_sizes_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "report"
    # one torch thread: on a small shared CI machine more threads than free cores slow torch down many times over
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_report.py"), "--profile", "ci",
                          "--threads", "1", "--candidates", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["profile"] == "ci" and report["device"] and report["torch"]
    assert report["trainer"]["images_per_s"] > 0 and report["trainer"]["images"] > 0
    for order in ("order1", "order2"):
        assert report["darts_step"][order]["median_s"] > 0
        assert (report["darts_step"][order]["peak_mib"] is not None) == (report["device_type"] == "cuda")
    c = report["candidates"]
    assert c["candidates"] == 1 and len(c["seconds_each"]) == 1 and c["per_minute"] > 0
    assert 0 <= c["valid_acc"][0] <= 100
    md = (tmp_path / "report.md").read_text()
    assert md.startswith(f"# Device report: {report['device']}") and "candidate trainings" in md
    assert "per minute" in run.stdout and "wrote" in run.stdout
