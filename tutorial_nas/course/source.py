"""Show the package's own code in a notebook: ``show_source(obj)`` prints a function or class as it is in the file.

Never a copy: the text is ``inspect.getsource`` of the object the package runs, under a header with its file
(relative to the repository) and its name, e.g. ``tutorial_nas/oneshot/architect.py: unrolled_grad``. In Jupyter
it is highlighted by pygments, with the file's line numbers; elsewhere it is printed as plain text.
"""

from __future__ import annotations

import html
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

from ..errors import NASInputError

PACKAGE = Path(__file__).resolve().parents[1]  # .../tutorial_nas
ROOT = PACKAGE.parent  # the repository (or site-packages, once installed)


@dataclass
class Source:
    path: str  # relative to the repository, with forward slashes
    name: str  # the qualified name: "unrolled_grad", "Reinforce.tell"
    line: int  # where it starts in the file
    text: str  # exactly inspect.getsource(obj)

    @property
    def header(self) -> str:
        return f"{self.path}: {self.name}"

    def __str__(self) -> str:
        return f"# {self.header}\n{self.text}"

    def html(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
        except ImportError:  # no pygments: plain, escaped text
            return f"<b>{html.escape(self.header)}</b><pre>{html.escape(self.text)}</pre>"
        formatter = HtmlFormatter(noclasses=True, linenos="inline", linenostart=self.line)
        return f"<b><code>{html.escape(self.header)}</code></b>" + highlight(self.text, PythonLexer(), formatter)


def resolve(name: str):
    """The object a dotted name points to: ``"tutorial_nas.oneshot.architect.unrolled_grad"``; the leading
    ``tutorial_nas.`` may be left out (``"strategies.reinforce.Reinforce.tell"``)."""
    if not isinstance(name, str) or not name.strip():
        raise NASInputError(f"give an object or a dotted name such as 'oneshot.architect.unrolled_grad', got {name!r}")
    parts = name.strip().split(".")
    if parts[0] != PACKAGE.name:
        parts = [PACKAGE.name, *parts]
    for cut in range(len(parts), 0, -1):  # the longest prefix that is a module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, attr in enumerate(parts[cut:], cut):
            if not hasattr(obj, attr):
                raise NASInputError(f"{'.'.join(parts[:i])} has no {attr!r}; check the spelling in the file "
                                    f"(for example 'oneshot.architect.unrolled_grad')")
            obj = getattr(obj, attr)
        return obj
    raise NASInputError(f"no module of the package in {name!r}")


def source(obj) -> Source:
    """The ``Source`` of a function, class or method of the package (or of its dotted name)."""
    obj = resolve(obj) if isinstance(obj, str) else obj
    obj = inspect.unwrap(getattr(obj, "__func__", obj))  # bound methods and decorated functions
    try:
        file = Path(inspect.getsourcefile(obj)).resolve()
        text = inspect.getsource(obj)
        line = inspect.getsourcelines(obj)[1]
    except (TypeError, OSError):
        raise NASInputError(f"{obj!r} has no source to show: give a function, a class or a method of the "
                            f"package") from None
    if PACKAGE not in file.parents:
        raise NASInputError(f"{getattr(obj, '__qualname__', obj)!r} is not part of the package; show_source "
                            f"shows the code of {PACKAGE.name} only")
    return Source(file.relative_to(ROOT).as_posix(), obj.__qualname__, line, text)


def show_source(obj) -> None:
    """Display the source of ``obj`` (an object or a dotted name): highlighted in Jupyter, plain elsewhere."""
    src = source(obj)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is not None and hasattr(shell, "kernel"):  # a notebook: HTML
        display(HTML(src.html()))
    else:
        print(src)
