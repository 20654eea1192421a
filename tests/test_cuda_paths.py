"""What a GPU run does, run where there is none: mixed precision under CPU autocast, channels_last and device
placement on CPU tensors, and the CIFAR-10 loader on a tiny CIFAR-shaped download made in a temporary folder."""

import math
import os
import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn as nn

import tutorial_nas.data as data_module
import tutorial_nas.train as train_module
from tutorial_nas import NASInputError
from tutorial_nas.data import batches, load_dataset
from tutorial_nas.evaluators import training_from_profile
from tutorial_nas.profiles import get_profile
from tutorial_nas.spaces.cell import NB201Space
from tutorial_nas.train import TrainConfig, train


def small_cnn(c_in=1, classes=10):
    return nn.Sequential(nn.Conv2d(c_in, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))


class Spy:
    """Records what a convolution (by default the first) saw and produced while the model trained."""

    def __init__(self, model, layer=0):
        self.out_dtypes, self.in_channels_last = set(), set()
        model[layer].register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        if module.training:
            self.out_dtypes.add(output.dtype)
            self.in_channels_last.add(inputs[0].is_contiguous(memory_format=torch.channels_last))


class ScalerSpy(torch.amp.GradScaler):
    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ScalerSpy.made.append(self)


# --- mixed precision: the CUDA code path of the trainer, with the CPU's autocast ----------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_trains_under_cpu_autocast(monkeypatch, dtype):
    """The trainer's AMP branch (autocast, loss scaling for float16, unscaling before clipping) runs on the CPU
    once the CPU is given a precision: the forward pass runs in ``dtype``, the weights stay float32, it learns."""
    monkeypatch.setitem(train_module.AMP_DTYPES, "cpu", dtype)
    monkeypatch.setattr(torch.amp, "GradScaler", ScalerSpy)
    ScalerSpy.made.clear()
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = small_cnn()
    spy = Spy(model)
    record = train(model, data, TrainConfig(epochs=3, batch_size=64, lr=0.1), progress=False)
    assert spy.out_dtypes == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(math.isfinite(v) for v in record.train_loss)
    assert record.train_loss[-1] < record.train_loss[0] - 0.2
    assert record.final_valid_acc > 30 and record.test_acc > 30  # 10 classes: chance is 10 %
    scaler = ScalerSpy.made[-1]
    assert scaler.is_enabled() == (dtype == torch.float16)  # bfloat16 has float32's range: no loss scaling
    if dtype == torch.float16:
        assert scaler.get_scale() > 0  # the scale was used, grown or backed off, never broken


def test_mixed_precision_stays_off_where_it_does_not_apply(monkeypatch):
    """amp=False trains in float32 on a device that has a precision; the CPU by default has none."""
    data = load_dataset("digits")
    for cpu_amp, amp in ((torch.bfloat16, False), (None, True)):
        if cpu_amp is None:
            monkeypatch.delitem(train_module.AMP_DTYPES, "cpu", raising=False)
        else:
            monkeypatch.setitem(train_module.AMP_DTYPES, "cpu", cpu_amp)
        model = small_cnn()
        spy = Spy(model)
        train(model, data, TrainConfig(epochs=0.2, amp=amp), progress=False, test=False)
        assert spy.out_dtypes == {torch.float32}
    assert train_module.AMP_DTYPES["cuda"] == torch.float16


# --- channels_last and device placement --------------------------------------------------------------------------
@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_reaches_the_weights_and_the_activations(channels_last):
    """Checked at the second convolution: with one input channel either memory format reads the same."""
    data = load_dataset("digits")
    model = small_cnn()
    spy = Spy(model, layer=3)
    train(model, data, TrainConfig(epochs=0.2, channels_last=channels_last), progress=False, test=False)
    assert spy.in_channels_last == {channels_last}
    assert model[3].weight.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_every_split_and_batch_stays_on_the_device_it_was_loaded_on():
    device = torch.device("cpu")
    data = load_dataset("digits", device=device)
    for d in (data, data.to(device), data.subset(0.5), *data.split_train()):
        tensors = (d.train_x, d.train_y, d.valid_x, d.valid_y, d.test_x, d.test_y)
        assert {t.device for t in tensors} == {device}
    gen = torch.Generator().manual_seed(0)
    xb, yb = next(batches(data.train_x, data.train_y, 16, shuffle=True, generator=gen, augment=data.augment))
    assert xb.device == yb.device == device and xb.shape == (16, 1, 8, 8)
    profile = get_profile("ci", device="cpu")
    evaluator = training_from_profile(NB201Space(), profile, dataset="digits")
    assert evaluator.data.device == profile.device == device


# --- CIFAR-10 through torchvision, with the download faked -------------------------------------------------------
def write_tiny_cifar(folder, per_batch=20):
    """CIFAR-10's python format at 20 images a batch: channel 0 grows down the rows, channel 1 along the
    columns, channel 2 is the label (so a wrong axis order shows up)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.arange(32, dtype=np.uint8)[:, None].repeat(32, 1) * 8
    batches_ = {f"data_batch_{i}": i for i in range(1, 6)} | {"test_batch": 6}
    for name, seed in batches_.items():
        labels = np.random.default_rng(seed).integers(0, 10, per_batch).tolist()
        images = np.stack([np.stack([rows, rows.T, np.full((32, 32), 25 * y, np.uint8)]) for y in labels])
        entry = {"data": images.reshape(per_batch, -1), "labels": labels}  # (N, 3072): channel-major rows
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class {k}" for k in range(10)]}))


@pytest.fixture
def cifar_cache(monkeypatch, tmp_path):
    """An empty data cache and no CIFAR-10 in memory; torchvision's checksums replaced by "the file is there"."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setenv("TUTORIAL_NAS_DATA", str(tmp_path))
    monkeypatch.setattr(data_module, "_RAW_CACHE", {})
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    return tv_cifar


def test_cifar10_loads_from_a_faked_download(monkeypatch, tmp_path, cifar_cache):
    downloads = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        downloads.append(url)
        write_tiny_cifar(tmp_path / "cifar10" / "cifar-10-batches-py")

    monkeypatch.setattr(cifar_cache, "download_and_extract_archive", fake_download)
    assert data_module.available()["cifar10"] == "download"
    data = load_dataset("cifar10")
    assert len(downloads) == 1 and "cifar-10" in downloads[0]  # the train set fetched it, the test set found it
    assert data_module.available()["cifar10"] == "cached"
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert (len(data.train_y), len(data.valid_y), len(data.test_y)) == (90, 10, 20)  # 10 % of train validates
    assert data.augment == data_module.DEFAULT_AUGMENT["cifar10"]
    x = data.test_x
    assert torch.allclose(x[:, 0], x[:, 0, :, :1].expand_as(x[:, 0]))  # channel 0: the same along a row
    assert torch.allclose(x[:, 1], x[:, 1, :1, :].expand_as(x[:, 1]))  # channel 1: the same down a column
    assert (x[:, 0, 1:, 0] > x[:, 0, :-1, 0]).all() and (x[:, 1, 0, 1:] > x[:, 1, 0, :-1]).all()
    labels = np.random.default_rng(6).integers(0, 10, 20)
    assert data.test_y.tolist() == labels.tolist()  # the official test set, in its order
    level = x[:, 2, 0, 0].numpy()
    assert np.all(np.diff(level[np.argsort(labels, kind="stable")]) >= -1e-6)  # channel 2 follows the label
    assert load_dataset("cifar10", image_size=16).input_shape == (3, 16, 16)
    assert len(downloads) == 1  # loaded once per process


def test_a_failed_cifar10_download_names_the_offline_choices(monkeypatch, cifar_cache):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(cifar_cache, "download_and_extract_archive", no_network)
    with pytest.raises(NASInputError) as err:
        load_dataset("cifar10")
    message = str(err.value)
    assert "could not download 'cifar10'" in message and "name resolution" in message
    assert "digits, mnist5k" in message and "TUTORIAL_NAS_PROFILE=cpu" in message
    # the gpu profile's candidate training meets the same message, not a traceback from deep inside torchvision
    with pytest.raises(NASInputError, match="Offline data sets that always work"):
        training_from_profile(NB201Space(), get_profile("gpu", device="cpu"))


def test_a_trained_cell_of_the_cpu_profile_is_trained_as_the_benchmark_trained_it():
    """The cpu profile's cell sizes and data are the recipe's: the trained cell must see the recipe's 1,000
    training images without augmentation, with its weight decay, as the looked-up cells were trained."""
    from tutorial_nas.bench.build import Recipe

    r = Recipe()
    evaluator = training_from_profile(NB201Space(), get_profile("cpu", device="cpu"))
    assert len(evaluator.data.train_y) == r.train_images and evaluator.config == r.train_config(seed=0)
