"""The README's first command, run for real: ``./course lab`` serves the course, also as root (Docker, Colab) and
on a machine without a screen, and passes options through to JupyterLab."""

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def _not_ready() -> str | None:
    """Why ``./course lab`` would not go straight to JupyterLab here (it would install first), or None."""
    if not (VENV / "bin" / "jupyter").exists():
        return "needs JupyterLab in .venv (./course lab or ./course test installs it)"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".tutorial_nas-installed"
    lines = [line.split() for line in stamp.read_text().splitlines()] if stamp.exists() else []
    if not any(len(p) == 2 and p[0] == want and "dev" in p[1].split(",") for p in lines):
        return ".venv is not set up for this pyproject.toml yet (./course test sets it up before the tests)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local server)
        return response.status, response.read()


@pytest.mark.skipif(_not_ready() is not None, reason=str(_not_ready()))
def test_course_lab_serves_the_notebooks_as_root_and_without_a_display(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               IPYTHONDIR=str(tmp_path / "ipython"), TUTORIAL_NAS_PROFILE="ci")
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(ROOT / "course"), "lab", "--port", str(port), "--ServerApp.port_retries=0",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
             f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"./course lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer on {base} in 120 s:\n{log_path.read_text()[-3000:]}"
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        status, page = _get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in page
        listing = json.loads(_get(f"{base}/api/contents?token={token}")[1])
        assert "01_early_nas.ipynb" in {item["name"] for item in listing["content"]}  # it opened notebooks/
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the script exec'd jupyter: the group is the server and its children
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log_path.read_text()
    if os.geteuid() == 0:
        assert "Running as root is not recommended" not in text
    assert "no display: open the" in text and f"{base}/lab?token=" in text  # the address to open, printed
    assert "No web browser found" not in text  # --no-browser: it did not look for one
