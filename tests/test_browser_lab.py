"""The course in a real browser: JupyterLab on notebooks/, driven by headless Chromium through Playwright.

Chapter 1 is opened and its first cells run one by one on a live kernel (profile ci) until a rendered ipywidget
and a figure (an image in an output: a matplotlib plot or a graphviz drawing) come out of them; then the server
is shut down through its API and must exit. The notebook file is left as it was (autosave is off, nothing is
saved). Needs Chromium (Debian's ``chromium`` or ``TUTORIAL_NAS_CHROMIUM``), playwright and JupyterLab; skips,
saying which is missing, otherwise.
"""

import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tutorial_nas.course.slides import find_chromium

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_early_nas.ipynb"
CHROMIUM = find_chromium()
MAX_CODE_CELLS = 8  # "the first cells": give up if no widget and figure have appeared by then
RUN_SECONDS = 75  # for running those cells, all together
WIDGET = ".jp-OutputArea-output .jupyter-widgets, .jp-OutputArea-output [class*='widget-']"
FIGURE = ".jp-OutputArea-output img[src^='data:image/']"  # matplotlib's PNG, graphviz's SVG: both drawn as img


def _missing() -> str | None:
    if CHROMIUM is None:
        return "needs Chromium (Debian: apt-get install chromium, or set TUTORIAL_NAS_CHROMIUM)"
    try:
        import jupyterlab  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"needs {err.name} (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a local server)
        return response.status


class Lab:
    """A JupyterLab server on ``root`` on a free local port, with a token, no browser, no autosave."""

    def __init__(self, root: Path, home: Path):
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        for plugin, values in (("docmanager-extension/plugin", {"autosave": False}),
                               ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False})):
            path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline, not Agg
        env.update(TUTORIAL_NAS_PROFILE="ci", TQDM_DISABLE="1", JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   IPYTHONDIR=str(home / "ipython"), JUPYTER_CONFIG_DIR=str(home / "config"))
        self.log = open(home / "lab.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={home / 'settings'}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}"] + (["--allow-root"] if os.geteuid() == 0 else []),
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=root)
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{self.url}/api/status?token={self.token}") == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> int | None:
        """Shut down through the server's API (kernels included) and wait for the process to exit."""
        try:
            request = urllib.request.Request(f"{self.url}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {self.token}"})
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (a local server)
            return self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return None
        finally:
            self.log.close()


def run_first_cells(root: Path, name: str, home: Path) -> dict:
    """Open ``name`` in JupyterLab on ``root``, run its cells from the top until a widget and a figure are
    rendered (at most ``MAX_CODE_CELLS`` code cells), stop the server; what was seen."""
    from playwright.sync_api import expect, sync_playwright

    lab = Lab(root, home)
    seen = {"widget": False, "figure": False, "code_cells": 0, "requests": [], "errors": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: seen["requests"].append((r.url, r.resource_type)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            # the kernel is up when the status bar names it and says it is idle
            page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=60_000)
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            deadline = time.monotonic() + RUN_SECONDS
            for i in range(cells.count()):
                cell = cells.nth(i)
                cell.locator(".jp-InputPrompt").click()  # select the cell (command mode)
                page.keyboard.press("Shift+Enter")  # and run it, as a learner does
                if "jp-CodeCell" in (cell.get_attribute("class") or ""):
                    seen["code_cells"] += 1
                    left = max(1_000, int(1000 * (deadline - time.monotonic())))
                    try:
                        expect(cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]"),
                                                                                  timeout=left)
                    except AssertionError:
                        seen["still_running"] = i  # out of time: report what was seen so far
                        break
                    # only what the run put there counts: the notebook is stored with outputs of its own
                    widget, figure = cell.locator(WIDGET), cell.locator(FIGURE)
                    if widget.count() and "Error displaying widget" not in widget.first.inner_text():
                        seen["widget"] = widget.first.is_visible()
                    if figure.count():
                        seen["figure"] = figure.first.evaluate("i => i.complete && i.naturalWidth > 50")
                if (seen["widget"] and seen["figure"]) or seen["code_cells"] >= MAX_CODE_CELLS:
                    break
            browser.close()
    finally:
        seen["exit_code"] = lab.stop()
        seen["log"] = (home / "lab.log").read_text()[-3000:]
    return seen


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_chapter_1_runs_in_jupyterlab_with_a_widget_and_a_figure(tmp_path):
    if not NOTEBOOK.exists():
        pytest.skip(f"chapter 1 is not in notebooks/ yet ({NOTEBOOK.relative_to(ROOT)} does not exist)")
    before = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    start = time.monotonic()
    seen = run_first_cells(NOTEBOOK.parent, NOTEBOOK.name, tmp_path)
    ran = f"in the first {seen['code_cells']} code cells of {NOTEBOOK.name}" + (
        f" (cell {seen['still_running']} still running after {RUN_SECONDS} s)" if "still_running" in seen else "")
    assert seen["widget"], f"no rendered ipywidget {ran}"
    assert seen["figure"], f"no figure (an img in an output) {ran}"
    assert seen["errors"] == [], seen["errors"]
    assert seen["exit_code"] == 0, seen["log"]  # stopped cleanly through the API, not killed
    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == before  # nothing saved into the course
    # the lab and its widgets load from the server; only pictures of the notebook's text (its Colab badge) may
    # point elsewhere
    outside = [(u, kind) for u, kind in seen["requests"] if not u.startswith(("http://127.0.0.1:", "data:", "blob:"))]
    assert all(kind == "image" for _, kind in outside), outside
    assert time.monotonic() - start < 180
