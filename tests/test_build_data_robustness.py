"""A resumed build keeps its recipe or says why not, trimming its results cannot lose them, a failed download is
not a cache, and a packed table's entries are all means over the same number of seeds."""

import importlib
import json
import os
import re

import numpy as np
import pytest
import torch

from tutorial_nas import NASInputError
from tutorial_nas import data as data_module
from tutorial_nas.bench.build import build, read_results
from tutorial_nas.spaces import cell as nb201

torch.set_num_threads(1)
build_module = importlib.import_module("tutorial_nas.bench.build")  # the module (``bench.build`` is the function)

TINY = dict(data="digits", image_size=8, stem_stride=1, C=2, epochs=1, train_images=200, workers=1,
            progress=False, multi_seed_cells=0, seeds=1, seeds_per_cell=2)


def saved_recipe(out):
    return json.loads((out / "recipe.json").read_text())["recipe"]


# --- resume: the saved recipe, or a clear refusal --------------------------------------------------------------
def test_resuming_with_another_recipe_or_data_set_is_refused_and_names_the_fields(tmp_path):
    out = tmp_path / "b"
    build(out, limit=0, epochs=3, progress=False)
    with pytest.raises(NASInputError, match=r"dataset 'mnist5k' there, 'digits' asked, epochs 3 there, 7 asked"):
        build(out, resume=True, limit=0, epochs=7, data="digits", progress=False)
    with pytest.raises(NASInputError, match="without those arguments"):
        build(out, resume=True, limit=0, seeds_per_cell=2, progress=False)
    assert saved_recipe(out)["epochs"] == 3 and saved_recipe(out)["dataset"] == "mnist5k"


def test_resuming_without_overrides_or_repeating_them_goes_on_with_the_saved_recipe(tmp_path, monkeypatch):
    out = tmp_path / "b"
    build(out, limit=0, epochs=3, data="digits", progress=False)
    seen = []
    monkeypatch.setattr(build_module, "run_jobs", lambda recipe, todo, workers, sink: seen.append(recipe))
    build(out, resume=True, limit=0, progress=False)  # no data, no overrides: the saved recipe
    build(out, resume=True, limit=0, data="digits", epochs=3, progress=False)  # the same values: accepted
    assert [(r.dataset, r.epochs) for r in seen] == [("digits", 3)] * 2
    assert saved_recipe(out)["epochs"] == 3


def test_a_new_build_writes_its_own_recipe_over_one_left_without_results(tmp_path):
    out = tmp_path / "b"
    build(out, limit=0, epochs=3, data="digits", progress=False)
    (out / "results.jsonl").unlink()  # stopped before any row: not a build yet
    build(out, limit=0, epochs=5, data="digits", progress=False)
    assert saved_recipe(out)["epochs"] == 5


def test_an_unknown_recipe_field_is_a_clear_error(tmp_path):
    with pytest.raises(NASInputError, match="unknown recipe field epoch;.*epochs"):
        build(tmp_path / "b", limit=0, epoch=3, progress=False)
    assert not (tmp_path / "b").exists()


# --- read_results(trim=True): a kill during the trim loses nothing ------------------------------------------------
def write_rows(path, n, tail=""):
    path.write_text("".join(json.dumps({"index": i, "seed": 0}) + "\n" for i in range(n)) + tail)


class FailingWrites:
    """A file opened for writing that writes its first line, then fails as a full disk or a kill would."""

    def __init__(self, f):
        self._f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)

    def write(self, text):
        self._f.write(text[: len(text) // 2])
        raise OSError("no space left on device")

    def writelines(self, lines):
        for line in lines:
            self._f.write(line)
            raise OSError("no space left on device")


def failing_open(opened):
    def fake_open(path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" in mode or "a" in mode:
            opened.append(str(path))
            return FailingWrites(f)
        return f
    return fake_open


def test_a_failure_while_trimming_leaves_every_finished_row(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    write_rows(path, 5, tail='{"index": 12, "seed"')
    before = path.read_bytes()
    opened = []
    monkeypatch.setattr(build_module, "open", failing_open(opened), raising=False)
    with pytest.raises(OSError, match="no space"):
        read_results(path, trim=True)
    assert opened and path.read_bytes() == before  # the file is as it was: all 5 rows and the half line
    monkeypatch.undo()
    assert len(read_results(path, trim=True)) == 5
    assert path.read_text().endswith("}\n") and len(read_results(path)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]  # no temporary file left behind


def test_a_file_of_whole_lines_is_not_rewritten(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    write_rows(path, 4)
    opened = []
    monkeypatch.setattr(build_module, "open", failing_open(opened), raising=False)
    assert len(read_results(path, trim=True)) == 4
    assert opened == []


def test_a_last_object_without_its_newline_gets_one_so_that_appending_goes_on_after_it(tmp_path):
    path = tmp_path / "results.jsonl"
    write_rows(path, 2)
    path.write_text(path.read_text() + json.dumps({"index": 9, "seed": 1}))
    assert len(read_results(path, trim=True)) == 3
    with open(path, "a") as f:
        f.write(json.dumps({"index": 10, "seed": 0}) + "\n")
    assert [r["index"] for r in read_results(path)] == [0, 1, 9, 10]


# --- available(): a failed download is not a cache -----------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("cifar10", "CIFAR10"), ("fashion-mnist", "FashionMNIST")])
def test_a_failed_download_is_reported_as_needing_a_download(tmp_path, monkeypatch, name, cls):
    import torchvision

    class Unreachable:
        def __init__(self, root, train=True, download=False):
            os.makedirs(root, exist_ok=True)  # as torchvision does before it fetches anything
            raise OSError("network is unreachable")

    monkeypatch.setenv("TUTORIAL_NAS_DATA", str(tmp_path))
    monkeypatch.setattr(data_module, "_RAW_CACHE", {})
    monkeypatch.setattr(torchvision.datasets, cls, Unreachable)
    assert data_module.available()[name] == "download"
    with pytest.raises(NASInputError, match="could not download"):
        data_module.load_dataset(name)
    assert (tmp_path / name).is_dir()  # the folder is there ...
    assert data_module.available()[name] == "download"  # ... and it is not a cache
    files = data_module.CACHE_FILES[name]
    for f in files[:-1]:  # part of the files: still not a cache
        (tmp_path / name / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / f).write_bytes(b"x")
    assert data_module.available()[name] == "download"
    (tmp_path / name / files[-1]).write_bytes(b"x")
    assert data_module.available()[name] == "cached"


def test_the_cache_files_are_the_ones_torchvision_reads():
    from torchvision.datasets import CIFAR10, FashionMNIST

    cifar = [f"{CIFAR10.base_folder}/{f}" for f, _ in CIFAR10.train_list + CIFAR10.test_list]
    assert set(data_module.CACHE_FILES["cifar10"]) == {*cifar, f"{CIFAR10.base_folder}/{CIFAR10.meta['filename']}"}
    fashion = {f"FashionMNIST/raw/{url.rsplit('/', 1)[-1].removesuffix('.gz')}" for url, _ in FashionMNIST.resources}
    assert set(data_module.CACHE_FILES["fashion-mnist"]) == fashion


# --- pack: every entry a mean of seeds_per_cell seeds ------------------------------------------------------------
def test_pack_refuses_cells_short_of_seeds_unless_told_to_drop_them(tmp_path):
    from tutorial_nas.bench import load_benchmark, pack

    path = build(tmp_path / "b", limit=5, **TINY)  # 2 cells x 2 seeds, then 1 seed of a third cell
    rows = read_results(path)
    short = [i for i in {r["index"] for r in rows} if sum(r["index"] == i for r in rows) < 2]
    assert len(rows) == 5 and len(short) == 1
    with pytest.raises(NASInputError, match=r"1 cell\(s\) of .* fewer than the recipe's 2 seeds.*limit 6") as err:
        pack(tmp_path / "b", name="t", out_dir=tmp_path / "tables")
    assert not (tmp_path / "tables").exists()

    pack(tmp_path / "b", name="t", out_dir=tmp_path / "tables", drop_short=True)
    table = load_benchmark("t", directory=tmp_path / "tables")
    assert len(table) == 2 and table.info["n_dropped_short"] == 1
    assert short[0] not in table._a["cells"] and short[0] not in table._a["multi_cells"]
    assert not np.isnan(table._a["seeds_valid_acc"]).any()

    limit = int(re.search(r"--limit (\d+)", str(err.value)).group(1))  # the command the error suggests
    build(tmp_path / "b", resume=True, limit=limit, workers=1, progress=False)
    pack(tmp_path / "b", name="t2", out_dir=tmp_path / "tables")
    table = load_benchmark("t2", directory=tmp_path / "tables")
    rows = read_results(path)
    assert len(table) == 3 and table.info["n_dropped_short"] == 0
    for i in {r["index"] for r in rows}:
        mine = [r["test_acc"] for r in rows if r["index"] == i]
        assert len(mine) == 2
        assert table.query(nb201.from_index(i))["test_acc"] == pytest.approx(np.mean(mine), abs=1e-4)
