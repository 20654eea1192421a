"""Progress bars that a stored notebook can still read.

Every loop of the package reports its progress through :class:`tqdm` from this module, a subclass of tqdm's
text bar. In a terminal it is tqdm's own bar on stderr. In a Jupyter kernel the same line of text is shown
through an IPython display handle and rewritten in place (at most twice a second), so that the notebook
stored after the run holds the bar's *final* line, e.g.::

    random search: 100%|██████████| 20/20 [00:31<00:00, 1.55s/eval, best=71.23]

tqdm's notebook widget, by contrast, is stored as its first text ("0%|          | 0/20") and that is all
a static render (GitHub, nbviewer) shows. A loop stopped by Ctrl-C or an error leaves its line with where
it stopped ("... 9/20 ... interrupted"). ``TQDM_DISABLE=1`` in the environment silences every bar, as does
``progress=False`` in the functions that take it.
"""

from __future__ import annotations

import os
import sys
import time
import weakref

from tqdm.std import tqdm as _text_tqdm

__all__ = ["tqdm", "disabled_by_env", "in_kernel"]

KERNEL_INTERVAL_S = 0.5  # the shortest time between two rewrites of a bar in a notebook
KERNEL_NCOLS = 90  # a notebook's output has no terminal width to measure: a fixed width, bar included


def disabled_by_env() -> bool:
    """Whether ``TQDM_DISABLE`` asks for no bars (CI sets it). tqdm itself lets an explicit ``disable=False``
    override the variable; here the variable wins, so that ``progress=True`` defaults stay quiet in CI."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no", "off")


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (Jupyter, VS Code, Colab), where outputs are stored."""
    ipython = sys.modules.get("IPython")  # not imported: not a notebook, and no cost to import it
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Null:
    """Where a notebook bar's text stream goes: the text travels through the display handle instead."""

    encoding = "utf-8"

    def write(self, text):
        return len(text)

    def flush(self):
        pass


_open_in_kernel: weakref.WeakSet = weakref.WeakSet()  # notebook bars not yet closed
_ended_short: list = []  # notebook bars closed short of their total in this cell (kept alive until its end)
_hook_installed = False


def _finish_open_bars(result=None) -> None:
    """After each notebook cell: close the bars the cell left open, saying why they stopped."""
    error = getattr(result, "error_in_exec", None)
    for bar in list(_open_in_kernel):
        if bar._stopped is None and error is not None:
            bar._stopped = _why(error)
        elif bar._stopped is None and bar.total is not None and bar.n < bar.total:
            bar._stopped = "stopped"  # left open, short of its total
        bar.close()
    for bar in list(_ended_short):  # a `for` over a bar closes it before the error reaches the cell
        if bar._stopped is None and error is not None:
            bar._stopped = _why(error)
            bar.display()
    _ended_short.clear()


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        import IPython

        IPython.get_ipython().events.register("post_run_cell", _finish_open_bars)
        _hook_installed = True


def _why(error) -> str | None:
    if error is None or isinstance(error, GeneratorExit):  # a `for` over the bar left early: no reason known
        return None
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"stopped by {type(error).__name__}"


class tqdm(_text_tqdm):  # noqa: N801 (named as tqdm names its bars, so that it replaces tqdm.auto.tqdm)
    """tqdm's text bar; in a Jupyter kernel its line goes to a display handle, rewritten in place.

    Takes tqdm's arguments. ``disable=True`` or ``TQDM_DISABLE=1`` silences it. In a notebook a bar opened
    inside another one with ``leave=False`` (a training inside a search) is not shown at all: it would leave
    an empty output per call in the stored notebook; the outer bar reports the progress.
    """

    def __init__(self, *args, **kwargs):
        self._stopped: str | None = None  # why the loop ended early, appended to the line
        self._handle = None
        self._shown_at = 0.0
        self._closing = False
        kernel = in_kernel() and not (kwargs.get("disable") or disabled_by_env())
        if disabled_by_env():
            kwargs["disable"] = True
        else:  # tqdm reads TQDM_DISABLE once, when it is imported: follow the variable as it is now
            kwargs.setdefault("disable", False)
        if kernel:
            nested = bool(_open_in_kernel) and kwargs.get("leave", True) is False
            kwargs.update(file=_Null(), dynamic_ncols=False, disable=kwargs.get("disable") or nested)
            kwargs.setdefault("ncols", KERNEL_NCOLS)
            kwargs.setdefault("ascii", False)
            kwargs.setdefault("mininterval", KERNEL_INTERVAL_S)
            kwargs["leave"] = True  # a notebook keeps the final line of every bar it shows
        self._kernel = kernel
        super().__init__(*args, **kwargs)
        if kernel and not self.disable:
            _install_hook()
            _open_in_kernel.add(self)

    def __str__(self) -> str:
        line = super().__str__()
        return f"{line} {self._stopped}" if self._stopped else line

    def display(self, msg=None, pos=None):
        if not self._kernel:
            return super().display(msg, pos)
        final = self._closing or self._stopped is not None or (self.total is not None and self.n >= self.total)
        now = time.monotonic()
        if msg is None and not final and self._handle is not None and now - self._shown_at < KERNEL_INTERVAL_S:
            return True  # rate limit: set_postfix refreshes on every call
        bundle = {"text/plain": self.__str__() if msg is None else msg}
        if self._handle is None:
            from IPython.display import display

            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        self._shown_at = now
        return True

    def close(self):
        if getattr(self, "disable", True):
            return super().close()
        if self._stopped is None and (self.total is None or self.n < self.total):
            self._stopped = _why(sys.exc_info()[1])  # closed by a finally while an exception unwinds
        if self._stopped:
            self.leave = True  # the line says where the loop stopped
        _open_in_kernel.discard(self)
        if self._kernel and self.total is not None and self.n < self.total:
            _ended_short.append(self)
        self._closing = True  # the final line is shown whatever the rate limit
        return super().close()
