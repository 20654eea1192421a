"""The chapters as files: re-execute one in a chosen profile, and keep the README's Colab badges true.

    python -m tutorial_nas.course.notebooks badges      # rewrite the chapter table of README.md
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .. import REPOSITORY
from ..errors import NASInputError, check_choice

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = {
    1: ("01_early_nas.ipynb", "Early NAS"),
    2: ("02_optimization_strategies.ipynb", "Optimization strategies"),
    3: ("03_performance_comparison.ipynb", "Performance comparison"),
    4: ("04_future_directions.ipynb", "Future directions"),
}
# each chapter's worked solutions to its exercises, beside the chapters
SOLUTIONS = {n: f"solutions/{filename.removesuffix('.ipynb')}_solutions.ipynb" for n, (filename, _) in CHAPTERS.items()}
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(filename: str) -> str:
    """The Colab address of a notebook of this repository (built from ``REPOSITORY`` only)."""
    return f"{REPOSITORY.replace('https://github.com/', 'https://colab.research.google.com/github/')}" \
           f"/blob/main/notebooks/{filename}"


def badge_markdown(filename: str) -> str:
    return f"[![Open In Colab]({BADGE})]({colab_url(filename)})"


def chapter_table() -> str:
    rows = ["| chapter | notebook | open | worked solutions | open |", "|---|---|---|---|---|"]
    for n, (filename, title) in CHAPTERS.items():
        sol = SOLUTIONS[n]
        rows.append(f"| {n} | [{title}](notebooks/{filename}) | {badge_markdown(filename)} "
                    f"| [solutions {n}](notebooks/{sol}) | {badge_markdown(sol)} |")
    return "\n".join(rows)


def write_badges(readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    new = re.sub(r"(<!-- chapters:start -->\n).*?(\n<!-- chapters:end -->)",
                 lambda m: m.group(1) + chapter_table() + m.group(2), text, flags=re.S)
    readme.write_text(new)


def run_notebook(chapter: int, profile: str | None = None, timeout: int = 3600, solutions: bool = False) -> Path:
    """Execute chapter ``chapter`` (or, with ``solutions``, its worked solutions) in ``profile`` and store it with
    its outputs, in place."""
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    check_choice("chapter", chapter, CHAPTERS)
    if profile is not None:
        check_choice("profile", profile, ("ci", "cpu", "gpu"))
        os.environ["TUTORIAL_NAS_PROFILE"] = profile
    path = ROOT / "notebooks" / (SOLUTIONS[chapter] if solutions else CHAPTERS[chapter][0])
    if not path.exists():
        raise NASInputError(f"{'the solutions of ' if solutions else ''}chapter {chapter} ({path.name}) "
                            f"is not in {path.parent}")
    nb = nbformat.read(path, as_version=4)
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    if sys.argv[1:] == ["badges"]:
        write_badges()
        print("README chapter table rewritten from REPOSITORY =", REPOSITORY)
    else:
        print("usage: python -m tutorial_nas.course.notebooks badges", file=sys.stderr)
        sys.exit(2)
