"""The package's progress bar: a final line a stored notebook keeps, silence when asked, where a loop stopped."""

import io
import types

import pytest

from tutorial_nas import progress
from tutorial_nas.progress import tqdm


class FakeHandle:
    """Stands for IPython's DisplayHandle: records what the bar shows, first display and every update."""

    def __init__(self, shown):
        self.shown = shown

    def update(self, bundle, raw=False):
        assert raw
        self.shown.append(bundle["text/plain"])


@pytest.fixture
def kernel(monkeypatch):
    """Runs the bars as in a Jupyter kernel; returns the list of texts they displayed, in order."""
    import IPython.display

    shown = []

    def display(bundle, raw=False, display_id=False):
        assert raw and display_id
        shown.append(bundle["text/plain"])
        return FakeHandle(shown)

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    monkeypatch.setattr(progress, "_install_hook", lambda: None)
    monkeypatch.setattr(IPython.display, "display", display)
    yield shown
    progress._finish_open_bars(None)


def after_cell(error=None):
    """What IPython's post_run_cell event does once a cell has run."""
    progress._finish_open_bars(types.SimpleNamespace(error_in_exec=error))


def test_notebook_keeps_the_final_line(kernel):
    for _ in tqdm(range(20), desc="search random", unit="candidates"):
        pass
    assert len(kernel) >= 2  # the first line, then the final one through the handle
    assert kernel[-1].startswith("search random: 100%|")
    assert "20/20" in kernel[-1] and "candidates" in kernel[-1]
    assert "interrupted" not in kernel[-1]


def test_notebook_rewrites_are_rate_limited_and_keep_the_postfix(kernel):
    bar = tqdm(total=1000, desc="manual", unit="eval")
    for i in range(1000):
        bar.update(1)
        bar.set_postfix(best=f"{i:d}")  # refreshes on every call, as search() does
    bar.close()
    assert len(kernel) < 20  # not one message per evaluation
    assert "1000/1000" in kernel[-1] and "best=999" in kernel[-1]


def test_notebook_hides_a_nested_transient_bar_and_shows_a_lone_one(kernel):
    outer = tqdm(total=2, desc="outer")
    for _ in range(2):
        for _ in tqdm(range(5), desc="inner", leave=False):
            pass
        outer.update(1)
    outer.close()
    assert not any(text.startswith("inner") for text in kernel)
    assert kernel[-1].startswith("outer: 100%")
    for _ in tqdm(range(5), desc="alone", leave=False):  # a training called on its own keeps its line
        pass
    assert kernel[-1].startswith("alone: 100%") and "5/5" in kernel[-1]


def test_disabled_by_environment_even_when_a_call_enables_it(monkeypatch, kernel):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    stream = io.StringIO()
    for _ in tqdm(range(5), desc="quiet", disable=False, file=stream):
        pass
    assert kernel == [] and stream.getvalue() == ""
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress.disabled_by_env()


def test_disabled_by_progress_false(kernel):
    for _ in tqdm(range(5), desc="quiet", disable=True):
        pass
    assert kernel == []


def test_terminal_writes_a_text_bar_to_its_stream(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(progress, "in_kernel", lambda: False)
    stream = io.StringIO()
    for _ in tqdm(range(20), desc="search random", unit="candidates", file=stream):
        pass
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("search random: 100%|") and "20/20" in final and final.endswith("\n")


def test_terminal_bar_closed_by_an_interrupt_says_so(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(progress, "in_kernel", lambda: False)
    stream = io.StringIO()
    bar = tqdm(total=20, desc="train", file=stream, leave=False)  # a transient bar keeps its line when stopped
    with pytest.raises(KeyboardInterrupt):
        try:
            bar.update(7)
            raise KeyboardInterrupt
        finally:
            bar.close()
    final = stream.getvalue().split("\r")[-1]
    assert "7/20" in final and final.rstrip().endswith("interrupted")


def test_notebook_loop_interrupted_leaves_where_it_stopped(kernel):
    with pytest.raises(KeyboardInterrupt):
        for i in tqdm(range(20), desc="loop"):
            if i == 9:
                raise KeyboardInterrupt
    after_cell(KeyboardInterrupt())
    assert "9/20" in kernel[-1] and kernel[-1].endswith("interrupted")


def test_notebook_bar_left_open_by_an_error_is_closed_after_the_cell(kernel):
    bar = tqdm(total=20, desc="left open")
    bar.update(5)
    after_cell(ValueError("boom"))
    assert "5/20" in kernel[-1] and kernel[-1].endswith("stopped by ValueError")
    assert bar.disable  # closed
    for _ in tqdm(range(3), desc="break", total=3):
        break  # a loop left on purpose: no reason given
    after_cell(None)
    assert not kernel[-1].endswith(("interrupted", "stopped"))


def test_executed_notebook_stores_the_final_line(tmp_path, monkeypatch):
    """nbclient applies the display updates to the stored output, as nbconvert --execute does."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from tutorial_nas.progress import tqdm\n"
                                  "for _ in tqdm(range(20), desc='search random', unit='candidates', mininterval=0):\n"
                                  "    pass"),
        nbformat.v4.new_code_cell("for i in tqdm(range(20), desc='loop'):\n"
                                  "    if i == 9:\n"
                                  "        raise KeyboardInterrupt"),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # the kernel inherits this process's environment
    client.execute()
    texts = [["".join(o["data"]["text/plain"]) for o in cell.outputs if o.output_type == "display_data"]
             for cell in nb.cells]
    assert len(texts[0]) == 1 and texts[0][0].startswith("search random: 100%|") and "20/20" in texts[0][0]
    assert len(texts[1]) == 1 and "9/20" in texts[1][0] and texts[1][0].endswith("interrupted")
