"""show_source: the package's own text under its file and name, never a copy."""

import inspect
import json

import pytest

from tutorial_nas.course.source import show_source, source
from tutorial_nas.errors import NASInputError
from tutorial_nas.oneshot.architect import unrolled_grad
from tutorial_nas.strategies.reinforce import Reinforce


@pytest.mark.parametrize("obj", [unrolled_grad, "oneshot.architect.unrolled_grad",
                                 "tutorial_nas.oneshot.architect.unrolled_grad"])
def test_header_and_text_are_the_file_s(obj):
    src = source(obj)
    assert src.header == "tutorial_nas/oneshot/architect.py: unrolled_grad"
    assert src.text == inspect.getsource(unrolled_grad)
    lines = open(inspect.getsourcefile(unrolled_grad)).read().splitlines()
    assert lines[src.line - 1] == src.text.splitlines()[0]  # the line numbers shown are the file's


def test_methods_classes_and_bound_methods():
    header = source("strategies.reinforce.Reinforce.tell").header
    assert header == "tutorial_nas/strategies/reinforce.py: Reinforce.tell"
    assert source(Reinforce).text == inspect.getsource(Reinforce)
    from tutorial_nas.spaces.cell import NB201Space

    assert source(Reinforce(NB201Space()).tell).text == inspect.getsource(Reinforce.tell)


@pytest.mark.parametrize("bad", ["oneshot.architect.no_such_function", "no_such_module.f", "", 42, json.dumps,
                                 "oneshot.architect.unrolled_grad.nope"])
def test_bad_names_say_what_is_allowed(bad):
    with pytest.raises(NASInputError):
        source(bad)


def test_plain_text_outside_jupyter_and_html_inside(capsys):
    show_source("strategies.qlearning.q_backup")
    out = capsys.readouterr().out
    assert out.startswith("# tutorial_nas/strategies/qlearning.py: q_backup\ndef q_backup(")
    html = source("strategies.qlearning.q_backup").html()
    assert "tutorial_nas/strategies/qlearning.py: q_backup" in html and "<span" in html  # highlighted
