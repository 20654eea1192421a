"""Retiming a table: the rows whose time the machine inflated are measured again, nothing else moves."""

import json
import shutil

import numpy as np
import pytest

from tutorial_nas.bench import load_benchmark, pack
from tutorial_nas.bench.build import build
from tutorial_nas.bench.retime import group_sample, op_counts, retime, slow_rows
from tutorial_nas.errors import NASInputError
from tutorial_nas.spaces import cell as nb201


def test_op_counts_count_each_edge_once():
    cell = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    counts = dict(zip(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"), (2, 1, 0, 2, 1)))
    from tutorial_nas.ops import NB201_OPS
    assert op_counts(nb201.index(cell)) == tuple(counts[op] for op in NB201_OPS)


def test_slow_rows_are_those_far_above_their_op_count_group():
    cells = [nb201.index(c) for c in nb201.unique_cells("drop_zero")]
    rng = np.random.default_rng(0)
    seconds = rng.uniform(0.9, 1.1, len(cells))
    big = [r for r, c in enumerate(cells) if op_counts(c) == op_counts(cells[100])]
    assert len(big) >= 5
    seconds[[big[1], big[3]]] = [2.0, 30.0]
    seconds[[r for r, c in enumerate(cells) if op_counts(c) != op_counts(cells[100])][:3]] *= 1.3  # within 1.5x
    assert slow_rows(cells, seconds, 1.5).tolist() == [big[1], big[3]]
    with pytest.raises(NASInputError):
        slow_rows(cells, seconds, 0)


def test_group_sample_takes_the_preferred_cells_first_and_at_most_k_a_group():
    cells = [nb201.index(c) for c in nb201.unique_cells("drop_zero")]
    rows = group_sample(cells, 2, prefer=[cells[0]])
    groups = [op_counts(cells[r]) for r in rows]
    assert 0 in rows and max(groups.count(g) for g in set(groups)) <= 2
    assert len(set(groups)) == len({op_counts(c) for c in cells})  # every group is sampled


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retime")
    tiny = dict(data="digits", image_size=8, stem_stride=1, C=2, epochs=1, train_images=200, workers=1,
                progress=False, multi_seed_cells=0, seeds=1, seeds_per_cell=2)
    build(tmp / "b", limit=12, **tiny)
    pack(tmp / "b", name="t", out_dir=tmp / "tables")
    return tmp / "tables"


def copy(table, tmp_path):
    shutil.copytree(table, tmp_path / "t")
    return tmp_path / "t"


def _arrays(d):
    with np.load(d / "t.npz") as z:
        return {k: z[k] for k in z.files}


def test_an_inflated_row_is_measured_again_and_only_it(table, tmp_path):
    d = copy(table, tmp_path)
    a = _arrays(d)
    a["train_seconds"][1] = 500.0  # a build paused while this cell trained
    np.savez_compressed(d / "t.npz", **a)
    info = json.loads((d / "t.json").read_text())
    from tutorial_nas.bench.table import _sha256
    info["sha256"] = _sha256((d / "t.npz").read_bytes())
    (d / "t.json").write_text(json.dumps(info))
    report = retime("t", directory=d, rows=[1], workers=1, progress=False)
    b = _arrays(d)
    assert 0 < b["train_seconds"][1] < 50
    keep = np.arange(len(a["cells"])) != 1
    assert np.array_equal(b["train_seconds"][keep], a["train_seconds"][keep])
    for k in ("valid_curve", "test_acc", "params", "flops", "cells"):
        assert np.array_equal(a[k], b[k])  # only the time moves
    assert report["rows"] == 1 and report["seconds_before"] == 500.0
    bench = load_benchmark("t", directory=d)  # the checksum was updated
    assert bench.info["retimed"][-1]["rows"] == 1


def test_an_interrupted_retime_keeps_what_it_measured(table, tmp_path):
    d = copy(table, tmp_path)
    a = _arrays(d)
    log = tmp_path / "log.jsonl"
    # the first of two rows finished before the interruption; the second line was cut mid-write
    log.write_text(json.dumps({"index": int(a["cells"][0]), "seconds": 0.125,
                               "valid_acc": float(a["valid_curve"][0, -1])}) + "\n" + '{"index": 1')
    retime("t", directory=d, rows=[0, 2], workers=1, log=log, progress=False)
    b = _arrays(d)
    assert b["train_seconds"][0] == pytest.approx(0.125)  # read from the log, not trained again
    assert len(log.read_text().splitlines()) == 2  # the cut line dropped, the new cell appended


def test_a_retime_that_does_not_reproduce_the_accuracies_writes_nothing(table, tmp_path):
    d = copy(table, tmp_path)
    before = (d / "t.npz").read_bytes()
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"index": int(_arrays(d)["cells"][0]), "seconds": 0.1, "valid_acc": 0.0}) + "\n")
    with pytest.raises(NASInputError, match="not the recipe"):
        retime("t", directory=d, rows=[0], workers=1, log=log, progress=False, tolerance=0.5)
    assert (d / "t.npz").read_bytes() == before


def test_grouped_retime_charges_every_row_its_groups_median(table, tmp_path):
    d = copy(table, tmp_path)
    retime("t", directory=d, rows="groups", per_group=1, workers=1, progress=False)
    b = _arrays(d)
    by_group = {}
    for c, s in zip(b["cells"], b["train_seconds"]):
        by_group.setdefault(op_counts(c), set()).add(float(s))
    assert all(len(v) == 1 for v in by_group.values())  # one time per op-count group
    with pytest.raises(NASInputError):
        retime("t", directory=d, rows="some", progress=False)
