"""The stored outputs of every notebook read in a static render (GitHub, nbviewer).

A static check of what the notebooks carry, no execution: an architecture string (it contains "~") is not cut
by pandas with "...", no progress bar was stored at its first update ("0%|"), and no output shows a string repr
with a literal backslash-n where a line break was meant.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
TEXT_TYPES = ("text/plain", "text/html", "text/markdown")

# a "~" and then, with no space or tag between, pandas' "..." (or an ellipsis): an arch string cut in a table
CUT_ARCH = re.compile(r"~[^\s<>\"']*?(\.\.\.|…)")
# a progress bar at 0 %: "0%|" not preceded by a digit (which would make it 10 %, 100 %, ...)
ZERO_BAR = re.compile(r"(?<![\d.])0%\|")
LITERAL_NEWLINE = "\\n"


def output_texts(path):
    """(cell number, text) for every text a notebook's stored outputs show."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if "text" in out:
                yield i, "".join(out["text"])
            for kind in TEXT_TYPES:
                if kind in out.get("data", {}):
                    value = out["data"][kind]
                    yield i, "".join(value) if isinstance(value, list) else value


def defects(path):
    found = []
    for i, text in output_texts(path):
        for line in text.splitlines():
            if CUT_ARCH.search(line):
                found.append(f"cell {i}: arch string cut: {line.strip()[:100]}")
            if ZERO_BAR.search(line):
                found.append(f"cell {i}: progress bar at 0 %: {line.strip()[:100]}")
            if LITERAL_NEWLINE in line:
                found.append(f"cell {i}: literal backslash-n: {line.strip()[:100]}")
    return found


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_readable(path):
    found = defects(path)
    assert not found, f"{path.name}: " + "; ".join(found[:20]) + (f" (and {len(found) - 20} more)"
                                                                  if len(found) > 20 else "")


def test_detectors():
    assert CUT_ARCH.search("darts  |avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~...       62.5")
    assert CUT_ARCH.search("<td>|none~0|+|avg_...</td>")
    assert not CUT_ARCH.search("|none~0|+|avg_pool_3x3~0|  ...  62.5")  # a column elided, the arch whole
    assert not CUT_ARCH.search("<td>|none~0|+|avg_pool_3x3~0|</td><td>...</td>")
    assert ZERO_BAR.search("  0%|          | 0/20 [00:00<?, ?it/s]")
    assert not ZERO_BAR.search("100%|##########| 20/20 [00:03<00:00,  6.1it/s]")
    assert not ZERO_BAR.search(" 50%|#####     | 10/20")
