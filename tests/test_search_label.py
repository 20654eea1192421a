"""``search(label=...)`` names its progress bar; without it the bar keeps its "<strategy> search" text."""

import pytest

import tutorial_nas.search as search_module
from tutorial_nas.evaluators import Evaluator, Result
from tutorial_nas.search import search
from tutorial_nas.spaces.chain import ChainSpace


class Score(Evaluator):
    def __init__(self, space):
        self.space = space

    def evaluate(self, arch):
        return Result(valid_acc=float(sum(map(ord, self.space.to_str(arch))) % 97), cost_s=1.0)


@pytest.fixture
def bars(monkeypatch):
    made = []
    real = search_module.tqdm

    def recording(*args, **kwargs):
        made.append(kwargs.get("desc"))
        return real(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(search_module, "tqdm", recording)
    return made


@pytest.mark.parametrize("label, desc", [(None, "large-scale-evolution search"),
                                         ("large-scale-evolution, no inheritance",
                                          "large-scale-evolution, no inheritance")])
def test_the_label_reaches_the_bar(bars, label, desc):
    space = ChainSpace(max_layers=2, filters=(4, 8), min_layers=0)
    named = {} if label is None else {"label": label}  # the default: no label given at all
    history = search(space, "large-scale-evolution", Score(space), 5, population=2, inherit=False, **named)
    assert bars == [desc] and len(history) == 5


def test_the_label_is_not_a_strategy_option(bars):
    space = ChainSpace(max_layers=2, filters=(4, 8))
    search(space, "random", Score(space), 3, label="mine")
    assert bars == ["mine"]
