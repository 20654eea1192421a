"""The code a stored notebook shows is the code the package runs: every ``show_source`` output kept in a chapter or
a worked solution prints the current text of its function (a change to a shown function means re-executing the
notebooks that show it)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from tutorial_nas.course.source import source

NOTEBOOKS = sorted(p for p in (Path(__file__).resolve().parents[1] / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
HEADER = re.compile(r"<b><code>(.*?)</code></b>(.*)", re.S)
LINE_NUMBER = re.compile(r'<span style="[^"]*padding-left: 5px; padding-right: 5px;">\s*\d+</span>')


def shown(notebook: Path):
    """(cell index, header, the code text) of every show_source output stored in ``notebook``."""
    for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        for output in cell.get("outputs", []):
            match = HEADER.match("".join(output.get("data", {}).get("text/html", "")))
            if match:
                body = re.sub(r"<[^>]+>", "", LINE_NUMBER.sub("", match.group(2)))
                yield index, html.unescape(match.group(1)), html.unescape(body)


def test_the_notebooks_show_source():
    assert NOTEBOOKS and sum(1 for nb in NOTEBOOKS for _ in shown(nb)) >= 20


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_shown_source_is_the_current_code(notebook):
    stale = []
    for index, header, text in shown(notebook):
        path, name = header.split(": ")
        module = path.removeprefix("tutorial_nas/").removesuffix(".py").replace("/", ".")
        if text.strip() != source(f"{module}.{name}").text.strip():
            stale.append(f"cell {index}: {header}")
    assert not stale, f"{notebook.name} shows code that has changed since it ran (re-execute it): {stale}"
