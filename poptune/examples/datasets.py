"""Datasets for the examples: MNIST-shaped digits that need no download, and real MNIST.

The default data is scikit-learn's bundled handwritten digits (1,797 grey 8x8 images,
shipped inside the scikit-learn wheel), upsampled to MNIST's 28x28 with bilinear
interpolation, scaled to [0, 1] and normalised with MNIST's mean and standard deviation.
Models written for MNIST (such as Ray Tune's ``ConvNet``) train on it unchanged, in a
fraction of the time and without network access.

The images are computed once per process and kept in memory; they are also written to
``~/.cache/poptune`` (or ``$POPTUNE_CACHE_DIR``, or ``$XDG_CACHE_HOME/poptune``) so that
later trial processes skip importing scikit-learn (about a second). Set
``POPTUNE_CACHE_DIR=""`` to disable the disk cache.

The train/test split is stratified and deterministic: within each class, samples are
ordered by a fixed integer hash of their index and the first 20 % go to the test set.
It depends on no random generator, so it is the same on every machine and version.

Real MNIST is used instead when ``POPTUNE_MNIST=real`` is set or ``dataset="mnist"`` is
passed; it needs ``torchvision`` and downloads to ``~/data`` (``$POPTUNE_DATA_DIR``).

Example:
    >>> from poptune.examples.datasets import load_digits_28
    >>> train = load_digits_28(train=True)
    >>> image, label = train[0]
    >>> tuple(image.shape), image.dtype, 0 <= int(label) <= 9
    ((1, 28, 28), torch.float32, True)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from poptune._imports import require
from poptune._validation import bad_value, check_one_of

require("torch", "poptune.examples")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import Dataset, TensorDataset  # noqa: E402

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "DATASETS",
    "DATASET_ENV_VAR",
    "resolve_dataset",
    "digits_images",
    "digits_split",
    "load_digits",
    "load_digits_28",
    "load_mnist",
    "load_dataset",
    "cache_dir",
]

#: MNIST's pixel mean and standard deviation, as used by ``transforms.Normalize``.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: Accepted values of the ``dataset`` argument.
DATASETS = ("digits", "mnist")
#: Environment variable selecting the dataset when ``dataset`` is not given.
DATASET_ENV_VAR = "POPTUNE_MNIST"
_ENV_VALUES = {"": "digits", "digits": "digits", "real": "mnist", "mnist": "mnist"}

CACHE_ENV_VAR = "POPTUNE_CACHE_DIR"
DATA_DIR_ENV_VAR = "POPTUNE_DATA_DIR"
TEST_FRACTION = 0.2
_CACHE_VERSION = 1
_N_DIGITS = 1797

_memory_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
_memory_lock = threading.Lock()


def resolve_dataset(dataset: str | None = None) -> str:
    """Return ``"digits"`` or ``"mnist"``: ``dataset`` if given, else from ``POPTUNE_MNIST``.

    ``POPTUNE_MNIST`` may be unset, empty or ``digits`` (the default digits) or ``real``
    / ``mnist`` (real MNIST via torchvision).
    """
    if dataset is not None:
        check_one_of("dataset", dataset, DATASETS)
        return dataset
    raw = os.environ.get(DATASET_ENV_VAR, "")
    try:
        return _ENV_VALUES[raw.strip().lower()]
    except KeyError:
        raise bad_value(DATASET_ENV_VAR, raw, "'real', 'digits' or unset") from None


def cache_dir() -> Path | None:
    """The directory of the on-disk cache, or ``None`` when disabled (``POPTUNE_CACHE_DIR=""``)."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "poptune"


def _compute_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    sk_datasets = require("sklearn.datasets", "the bundled digits dataset")
    bunch = sk_datasets.load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).contiguous()
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return images, labels


def _read_cache(path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        blob: Any = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = blob["images"], blob["labels"]
        if (
            blob.get("version") != _CACHE_VERSION
            or tuple(images.shape) != (_N_DIGITS, 1, size, size)
            or images.dtype != torch.float32
            or tuple(labels.shape) != (_N_DIGITS,)
        ):
            return None
        return images, labels
    except Exception:  # missing, partial or foreign file: recompute
        return None


def _write_cache(path: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"version": _CACHE_VERSION, "images": images, "labels": labels}, tmp)
        os.replace(tmp, path)  # atomic: concurrent trials never read a partial file
    except OSError:
        tmp.unlink(missing_ok=True)  # read-only home etc.: the memory cache still works


def digits_images(size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as ``(images, labels)``.

    ``images`` is float32 ``[N, 1, size, size]`` in [0, 1]; ``labels`` is int64 ``[N]``.

    Cached in memory per process and on disk (see the module docstring). The returned
    tensors are the cache itself: do not modify them in place.
    """
    with _memory_lock:
        cached = _memory_cache.get(size)
        if cached is not None:
            return cached
        directory = cache_dir()
        path = directory / f"digits{size}_v{_CACHE_VERSION}.pt" if directory else None
        result = _read_cache(path, size) if path is not None else None
        if result is None:
            result = _compute_digits(size)
            if path is not None:
                _write_cache(path, *result)
        _memory_cache[size] = result
        return result


def digits_split(
    labels: torch.Tensor, test_fraction: float = TEST_FRACTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split: ``(train_indices, test_indices)``, each sorted.

    Within each class, indices are ordered by Knuth's multiplicative hash and the first
    ``round(n * test_fraction)`` go to the test set; no random generator is involved.
    """
    index = torch.arange(len(labels), dtype=torch.int64)
    key = (index * 2654435761) % (2**32)
    test_parts = []
    for cls in torch.unique(labels).tolist():
        members = index[labels == cls]
        members = members[torch.argsort(key[members], stable=True)]
        test_parts.append(members[: round(len(members) * test_fraction)])
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[torch.cat(test_parts)] = True
    return index[~is_test], index[is_test]


def load_digits(
    train: bool = True,
    *,
    size: int = 28,
    mean: float | None = MNIST_MEAN,
    std: float | None = MNIST_STD,
) -> TensorDataset:
    """The train or test part of the digits at ``size`` x ``size``, normalised by ``mean``/``std``.

    Pass ``mean=None, std=None`` for raw [0, 1] pixels, or ``mean=0.5, std=0.5`` for
    [-1, 1] (what a GAN with a ``tanh`` generator expects).
    """
    images, labels = digits_images(size)
    train_idx, test_idx = digits_split(labels)
    idx = train_idx if train else test_idx
    x = images[idx]  # advanced indexing copies: the cache is never shared with callers
    if mean is not None or std is not None:
        x = (x - (mean or 0.0)) / (std if std is not None else 1.0)
    return TensorDataset(x, labels[idx])


def load_digits_28(train: bool = True, *, normalize: bool = True) -> TensorDataset:
    """The digits as MNIST look-alikes: ``[1, 28, 28]`` float images, labels 0-9.

    With ``normalize`` (the default) pixels are normalised like MNIST
    (mean 0.1307, std 0.3081); otherwise they are in [0, 1].
    """
    if normalize:
        return load_digits(train, size=28)
    return load_digits(train, size=28, mean=None, std=None)


def load_mnist(
    train: bool = True,
    *,
    root: str | os.PathLike[str] | None = None,
    size: int = 28,
    mean: float = MNIST_MEAN,
    std: float = MNIST_STD,
    download: bool = True,
) -> Dataset[Any]:
    """Real MNIST through torchvision (downloaded once to ``root``, default ``~/data``).

    Raises:
        MissingDependencyError: torchvision is not installed; the message gives the
            ``pip install`` command.
    """
    require(
        "torchvision",
        f"real MNIST ({DATASET_ENV_VAR}=real or dataset='mnist'; "
        f"unset {DATASET_ENV_VAR} to use the bundled digits instead)",
    )
    from filelock import FileLock
    from torchvision import datasets, transforms

    root_dir = Path(root or os.environ.get(DATA_DIR_ENV_VAR) or "~/data").expanduser()
    steps: list[Any] = [] if size == 28 else [transforms.Resize(size)]
    steps += [transforms.ToTensor(), transforms.Normalize((mean,), (std,))]
    transform = transforms.Compose(steps)
    root_dir.mkdir(parents=True, exist_ok=True)
    # Concurrent trials would otherwise download over each other.
    with FileLock(str(root_dir / ".poptune_mnist.lock")):
        return datasets.MNIST(str(root_dir), train=train, download=download, transform=transform)


def load_dataset(train: bool = True, dataset: str | None = None) -> Dataset[Any]:
    """MNIST-shaped data: the digits by default, real MNIST if selected (``resolve_dataset``)."""
    if resolve_dataset(dataset) == "mnist":
        return load_mnist(train)
    return load_digits_28(train)
