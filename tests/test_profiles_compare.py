"""Chapter 3's comparison reads its look-up strategies from the profile: every one is a registered strategy that
runs on the NAS-Bench-201 table, BlockQNN (a look-up strategy over the cell) among them in every profile."""

from __future__ import annotations

from tutorial_nas.analysis import compare as C
from tutorial_nas.bench import load_benchmark
from tutorial_nas.profiles import PROFILES
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.strategies import STRATEGIES


def test_every_profile_compares_registered_look_up_strategies_blockqnn_included():
    for name, sections in PROFILES.items():
        strategies = sections["compare"]["strategies"]
        assert "blockqnn" in strategies and "random" in strategies, name
        assert len(set(strategies)) == len(strategies) and set(strategies) <= set(STRATEGIES), name
    every = sorted({s for sections in PROFILES.values() for s in sections["compare"]["strategies"]})
    runs = C.compare(NB201Space(), every, seeds=1, budget=5, bench=load_benchmark(), progress=False)
    assert sorted(set(runs["strategy"])) == every
    assert runs.groupby("strategy").size().min() >= 1
