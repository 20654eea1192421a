"""Printed sentences count in words: one epoch, two epochs, never "epoch(s)"."""

from tutorial_nas.text import count


def test_count_says_one_in_the_singular_and_every_other_number_in_the_plural():
    assert count(1, "epoch") == "1 epoch" and count(4, "epoch") == "4 epochs" and count(0, "cell") == "0 cells"
    assert count(0.5, "epoch") == "0.5 epochs" and count(1.0, "epoch") == "1 epoch"
    assert count(2, "child", "children") == "2 children" and count(1, "child", "children") == "1 child"
