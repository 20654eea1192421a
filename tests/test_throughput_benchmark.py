"""benchmarks/train_throughput.py keeps working: one short alternating run on digits, all three timings."""

import importlib.util
from pathlib import Path

import torch

from tutorial_nas.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "benchmarks" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_throughput_benchmark_measures_ours_the_plain_loop_and_the_compute_only_ceiling():
    bench = _module()
    result = bench.measure(load_dataset("digits"), epochs=1, batch_size=128, repeats=1)
    for key in ("ours", "plain", "ceiling"):
        assert result[key] > 0
    assert result["ratio"] == result["ours"] / result["plain"]
    assert result["ceiling_ratio"] == result["ceiling"] / result["plain"]
    for key in ("acc_ours", "acc_plain"):
        assert 0 <= result[key] <= 100


def test_compute_only_really_trains_the_model_on_its_fixed_batch():
    bench = _module()
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = bench.small_cnn(data.in_channels, data.num_classes)
    x, y = data.train_x[:128], data.train_y[:128]
    before = torch.nn.functional.cross_entropy(model.eval()(x), y).item()
    seconds = bench.compute_only(model, data, steps=30, batch_size=128, lr=0.05)
    after = torch.nn.functional.cross_entropy(model.eval()(x), y).item()
    assert seconds > 0 and after < before - 0.5
