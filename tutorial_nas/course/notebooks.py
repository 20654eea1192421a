"""The chapters as files: re-execute one in a chosen profile, and keep the README's Colab badges true.

    python -m tutorial_nas.course.notebooks badges      # rewrite the chapter table and package map of README.md
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


def modules_used(path: Path) -> list:
    """The package's modules a notebook imports, in the order its code cells first import them."""
    import ast
    import json

    found = []
    for cell in json.loads(Path(path).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(line for line in cell["source"] if not line.lstrip().startswith(("!", "%"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tutorial_nas"):
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("tutorial_nas")]
            for name in names:
                module = _module_file(name)
                if module and module not in found:
                    found.append(module)
    return found


def _module_file(dotted: str) -> str | None:
    """``tutorial_nas.x[.name]`` -> the package file that defines it, relative to the repository
    (``tutorial_nas/x/y.py``), by importing it; a package imported as a whole and a constant name no file."""
    import importlib
    import inspect

    module, _, name = dotted.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        try:
            obj = importlib.import_module(dotted)
        except ImportError:
            return None
    if inspect.ismodule(obj):
        if hasattr(obj, "__path__"):
            return None  # a package: its __init__ only gathers names
    elif inspect.isclass(obj) or inspect.isroutine(obj):
        obj = sys.modules.get(obj.__module__ or "")
    else:
        return None  # a constant
    path = Path(getattr(obj, "__file__", None) or "")
    if path.suffix != ".py" or ROOT not in path.parents:
        return None
    return path.relative_to(ROOT).as_posix()


def _summary(module: str) -> str:
    import ast

    doc = ast.get_docstring(ast.parse((ROOT / module).read_text())) or ""
    return doc.strip().split("\n")[0].rstrip(".")


def package_map() -> str:
    """The README's map from notebooks to code: per chapter (and its solutions), the package files it uses, in the
    order it meets them, each with the first line of its docstring."""
    rows = ["| chapter | files, in the order the notebook meets them |", "|---|---|"]
    for n, (filename, title) in CHAPTERS.items():
        files = []
        for name in (filename, SOLUTIONS[n]):
            path = ROOT / "notebooks" / name
            if path.exists():
                files += [f for f in modules_used(path) if f not in files]
        listed = "<br>".join(f"`{f}` — {_summary(f)}" for f in files)
        rows.append(f"| {n}. {title} | {listed} |")
    return "\n".join(rows)


def _replace(text: str, marker: str, body: str) -> str:
    return re.sub(rf"(<!-- {marker}:start -->\n).*?(\n<!-- {marker}:end -->)",
                  lambda m: m.group(1) + body + m.group(2), text, flags=re.S)


def write_badges(readme: Path = ROOT / "README.md") -> None:
    """Rewrite the README's generated parts: the chapter table with its badges and the package map."""
    readme.write_text(_replace(_replace(readme.read_text(), "chapters", chapter_table()), "map", package_map()))


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
        print("README chapter table rewritten from REPOSITORY =", REPOSITORY, "and the package map from the notebooks")
    else:
        print("usage: python -m tutorial_nas.course.notebooks badges", file=sys.stderr)
        sys.exit(2)
