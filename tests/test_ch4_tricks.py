"""Chapter 4's search gains against training tricks, without a winner's curse: the search picks by validation,
fresh trainings score the cells on test, and each gain has a bootstrap interval over the cells."""

import pandas as pd
import pytest
import torch

from tutorial_nas.analysis import tricks
from tutorial_nas.bench.build import Recipe
from tutorial_nas.data import load_dataset
from tutorial_nas.errors import NASInputError

torch.set_num_threads(1)


class Table:
    """A benchmark whose validation and test accuracy disagree: a pick by test would differ from one by
    validation. Convolutions raise the validation accuracy, skip connections the test accuracy."""

    def frame(self):
        return pd.DataFrame({"arch": []})

    def query(self, arch, epoch=None):
        from tutorial_nas.spaces.cell import parse, to_str

        cell = parse(arch) if isinstance(arch, str) else tuple(arch)
        valid = 50.0 + 5 * sum(op.startswith("nor_conv") for op in cell)
        test = 50.0 + 5 * cell.count("skip_connect")
        return {"arch": to_str(cell), "valid_acc": valid, "test_acc": test, "train_seconds": 1.0, "params": 1,
                "flops": 1, "valid_curve": (valid,)}


def test_the_search_picks_by_validation_never_by_test():
    picks = tricks.search_picks(Table(), seeds=(0, 1), budget=40)
    assert picks["seed"].tolist() == [0, 1]
    for _, row in picks.iterrows():
        assert row["valid_acc"] == Table().query(row["arch"])["valid_acc"]
        assert row["arch"].count("nor_conv") >= 4  # regularized evolution climbs the validation accuracy
        assert row["test_acc"] == Table().query(row["arch"])["test_acc"]


def rows(role, seed, base, **tricks_acc):
    out = [{"role": role, "group": role.rstrip("0123456789 "), "arch": role, "seed": seed, "trick": "baseline",
            "test_acc": base}]
    out += [{"role": role, "group": role.rstrip("0123456789 "), "arch": role, "seed": seed, "trick": t,
             "test_acc": a} for t, a in tricks_acc.items()]
    return out


def test_gains_pair_cell_and_seed_and_give_intervals():
    table = pd.DataFrame(
        rows("search 1", 0, 90, cutout=91) + rows("search 1", 1, 92, cutout=93)
        + rows("search 2", 0, 88, cutout=89) + rows("search 2", 1, 88, cutout=89)
        + rows("random 1", 0, 80, cutout=81) + rows("random 1", 1, 82, cutout=83)
        + rows("random 2", 0, 70, cutout=71) + rows("random 2", 1, 70, cutout=71))
    g = tricks.gains(table).set_index("what")
    assert g.loc["trick: cutout", "gain"] == pytest.approx(1.0)
    assert g.loc["trick: cutout", "low"] == pytest.approx(1.0) and g.loc["trick: cutout", "high"] == pytest.approx(1)
    assert g.loc["trick: cutout", "n_cells"] == 4 and g.loc["trick: cutout", "n_seeds"] == 2
    s = g.loc["search: picked vs random cells"]
    assert s["gain"] == pytest.approx(89.5 - 75.5)  # (91 + 88) / 2 - (81 + 70) / 2
    assert s["low"] <= s["gain"] <= s["high"] and s["low"] == pytest.approx(88 - 81, abs=1e-9)
    assert s["high"] == pytest.approx(91 - 70)
    text = tricks.verdict(g.reset_index())
    assert "better than random" in text and "search gains more than any trick" in text


def test_verdict_when_a_trick_beats_the_search():
    g = pd.DataFrame([{"what": "trick: longer", "gain": 5.0, "low": 4.0, "high": 6.0},
                      {"what": "trick: augment", "gain": -20.0, "low": -25.0, "high": -15.0},
                      {"what": "search: picked vs random cells", "gain": 1.0, "low": -0.5, "high": 2.5}])
    text = tricks.verdict(g)
    assert "not distinguishable from random" in text and "best trick gains more" in text
    assert "(augment)" in text and "protocol moves the accuracy more" in text
    assert "needs both sides" in tricks.verdict(g.iloc[:2])


def test_a_longer_schedule_applies_to_every_training():
    recipe = Recipe()
    base, _ = tricks.trick_settings("baseline", recipe, schedule=3)
    longer, _ = tricks.trick_settings("longer", recipe, longer=2, schedule=3)
    cut, size = tricks.trick_settings("cutout", recipe, schedule=3, cutout_size=4)
    assert (base.epochs, longer.epochs, cut.epochs, size) == (3 * recipe.epochs, 6 * recipe.epochs,
                                                              3 * recipe.epochs, 4)
    with pytest.raises(NASInputError):
        tricks.trick_settings("baseline", recipe, schedule=0)


def test_tricks_table_trains_every_cell_seed_and_trick():
    data = load_dataset("digits").subset(0.1)
    recipe = Recipe(dataset="digits", image_size=8, C=4, epochs=1, stem_stride=1)
    cells = {"search 1": "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",
             "random 1": "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"}
    t = tricks.tricks_table(cells, data, recipe, tricks=("baseline", "label_smoothing"), seeds=(5, 6))
    assert len(t) == 2 * 2 * 2 and set(t["seed"]) == {5, 6} and set(t["group"]) == {"search", "random"}
    same = t[(t.role == "search 1") & (t.trick == "baseline")]
    assert same["test_acc"].nunique() == 2 or same["valid_acc"].nunique() == 2  # two seeds, two trainings
    with pytest.raises(NASInputError):
        tricks.tricks_table(cells, data, recipe, tricks=("cutout",))
    with pytest.raises(NASInputError):
        tricks.tricks_table(cells, data, recipe, seeds=())
