"""DCGAN example models, data and metric: poptune's ``ray.tune.examples.pbt_dcgan_mnist.common``.

The public names match Ray Tune's module (``Generator``, ``Discriminator``, ``weights_init``,
``Net``, ``inception_score``, ``train_func``, ``get_data_loader``, ``plot_images``,
``demo_gan`` and the constants ``nz``, ``ngf``, ``ndf``, ``nc``, ``image_size``, ``beta1``,
``MODEL_PATH``), so the PBT guide's DCGAN code runs after the import swap. Differences,
all so that the example runs offline and in minutes on a laptop CPU:

* **Data.** ``get_data_loader`` serves scikit-learn's bundled handwritten digits (the
  1,438 training images of ``poptune.examples.datasets``), resized to 32x32 and
  normalised to [-1, 1] like Ray's ``Normalize((0.5,), (0.5,))`` MNIST. Nothing is
  downloaded.
* **The inception-score classifier** (``Net``, the guide's LeNet) is not downloaded: the
  first time it is needed it is trained on the bundled digits (a few seconds, seeded, so
  every machine gets the same weights) and cached as a plain ``state_dict`` in
  ``~/.cache/poptune/mnist_cnn.pt`` (``$POPTUNE_CACHE_DIR``; written atomically).
  It is trained on exactly what ``inception_score`` feeds it: 32x32 images in [-1, 1],
  bilinearly resized to 28x28.
* ``inception_score`` takes the classifier itself (poptune ships objects to trials with
  ``tune.with_parameters``; there is no object store), or a path to its ``state_dict``.
* ``train_func`` computes the inception score once per call, on the last batch's fakes
  (Ray computes it after every batch and returns the last one: the same value).
* ``plot_images`` and ``demo_gan`` save PNG files instead of showing a window or writing
  a GIF with ImageMagick.

Example:
    >>> import torch
    >>> from poptune.examples.pbt_dcgan_mnist.common import Generator, Discriminator, nz
    >>> fake = Generator()(torch.randn(2, nz, 1, 1))
    >>> tuple(fake.shape), tuple(Discriminator()(fake).shape)
    ((2, 1, 32, 32), (2, 1, 1, 1))
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from collections.abc import Sized
from typing import Any, Iterable, Sequence

from poptune._imports import require

require("torch", "poptune.examples.pbt_dcgan_mnist")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.utils.data  # noqa: E402

from poptune.examples.datasets import cache_dir, load_digits  # noqa: E402

__all__ = [
    "batch_size",
    "image_size",
    "nc",
    "nz",
    "ngf",
    "ndf",
    "beta1",
    "train_iterations_per_step",
    "MODEL_PATH",
    "model_path",
    "weights_init",
    "Generator",
    "Discriminator",
    "Net",
    "train_mnist_cnn",
    "load_mnist_cnn",
    "inception_score",
    "get_data_loader",
    "train_func",
    "plot_images",
    "make_grid",
    "demo_gan",
]

# Training parameters
batch_size = 64
image_size = 32

# Number of channels in the training images. For color images this is 3
nc = 1

# Size of z latent vector (i.e. size of generator input)
nz = 100

# Size of feature maps in generator
ngf = 32

# Size of feature maps in discriminator
ndf = 32

# Beta1 hyperparam for Adam optimizers
beta1 = 0.5

# iterations of actual training in each Trainable _train
train_iterations_per_step = 5

#: File name of the cached inception-score classifier inside the cache directory.
MODEL_FILENAME = "mnist_cnn.pt"


def model_path() -> str:
    """Where the classifier's ``state_dict`` is cached, read from the environment now.

    ``$POPTUNE_CACHE_DIR/mnist_cnn.pt`` (default ``~/.cache/poptune/mnist_cnn.pt``). When
    the disk cache is disabled (``POPTUNE_CACHE_DIR=""``), a file in the system's
    temporary directory, private to this process.
    """
    directory = cache_dir()
    if directory is None:
        return os.path.join(tempfile.gettempdir(), f"poptune_{os.getpid()}_{MODEL_FILENAME}")
    return str(directory / MODEL_FILENAME)


#: The classifier's cache file, as configured when this module was imported
#: (Ray's ``~/.ray/models/mnist_cnn.pt``). Functions here call ``model_path()`` instead,
#: so a later change of ``POPTUNE_CACHE_DIR`` is honoured.
MODEL_PATH = model_path()


def get_data_loader(batch_size: int = batch_size) -> torch.utils.data.DataLoader[Any]:
    """A shuffling loader over the bundled digits' training split at 32x32, in [-1, 1].

    Batches are ``(images, labels)``: float32 ``[B, 1, 32, 32]`` and int64 ``[B]``.
    """
    dataset = load_digits(True, size=image_size, mean=0.5, std=0.5)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


# __GANmodel_begin__
# custom weights initialization called on netG and netD
def weights_init(m: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    """DCGAN generator: noise ``[B, nz, 1, 1]`` to images ``[B, nc, 32, 32]`` in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution: 1x1 -> 4x4
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # 4x4 -> 8x8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # 8x8 -> 16x16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # 16x16 -> 32x32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class Discriminator(nn.Module):
    """DCGAN discriminator: images ``[B, nc, 32, 32]`` to P(real) ``[B, 1, 1, 1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            # 32x32 -> 16x16
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # 16x16 -> 8x8
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # 8x8 -> 4x4
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # 4x4 -> 1x1
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


# __GANmodel_end__


# __INCEPTION_SCORE_begin__
class Net(nn.Module):
    """LeNet for MNIST-shaped ``[B, 1, 28, 28]`` digits; log-probabilities ``[B, 10]``.

    Used by ``inception_score``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def _to_classifier_input(x: torch.Tensor) -> torch.Tensor:
    """What ``Net`` sees: images in [-1, 1] at any size, bilinearly resized to 28x28."""
    x = x.float()
    if x.shape[-2:] != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    return x


#: Classifier training recipe: seeded, so every machine caches the same weights.
_CNN_SEED = 0
_CNN_EPOCHS = 10
_CNN_BATCH_SIZE = 32
_CNN_LR = 0.02

_mnist_cnn_memory: dict[str, Net] = {}
_mnist_cnn_lock = threading.Lock()


def train_mnist_cnn(epochs: int = _CNN_EPOCHS, seed: int = _CNN_SEED) -> Net:
    """Train ``Net`` on the bundled digits' training split, as ``inception_score`` feeds it.

    Inputs are the 32x32 digits in [-1, 1] resized to 28x28; SGD with momentum,
    ``epochs`` passes (a few seconds). Runs on one torch thread, which is faster for
    this small model on a busy machine and makes the weights depend only on ``seed``;
    the thread count and the global random state are restored afterwards. Returns the
    model in eval mode.
    """
    data = load_digits(True, size=image_size, mean=0.5, std=0.5)
    images, labels = data.tensors
    images = _to_classifier_input(images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _fit_mnist_cnn(images, labels, epochs)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def _fit_mnist_cnn(images: torch.Tensor, labels: torch.Tensor, epochs: int) -> Net:
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=_CNN_LR, momentum=0.9)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(order), _CNN_BATCH_SIZE):
            idx = order[start : start + _CNN_BATCH_SIZE]
            optimizer.zero_grad()
            loss = F.nll_loss(model(images[idx]), labels[idx])
            loss.backward()
            optimizer.step()
    return model


def _read_state_dict(path: str) -> dict[str, torch.Tensor] | None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        Net().load_state_dict(state)  # the right architecture, complete
        return state
    except Exception:  # missing, partial or foreign file: retrain
        return None


def _write_state_dict(path: str, state: dict[str, torch.Tensor]) -> bool:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, target)  # atomic: a concurrent reader never sees a partial file
        return True
    except OSError:
        tmp.unlink(missing_ok=True)  # read-only cache: the model still works from memory
        return False


def load_mnist_cnn() -> Net:
    """The inception-score classifier, in eval mode: cached, else trained and cached.

    Looked up in this process's memory, then in ``model_path()``; trained with
    ``train_mnist_cnn`` only when neither has it (or the file is unreadable). Each call
    returns a new ``Net`` with the cached weights.
    """
    path = model_path()
    with _mnist_cnn_lock:
        cached = _mnist_cnn_memory.get(path)
        if cached is None:
            state = _read_state_dict(path)
            if state is None:
                cached = train_mnist_cnn()
                if cache_dir() is not None:
                    _write_state_dict(path, cached.state_dict())
            else:
                cached = Net()
                cached.load_state_dict(state)
            _mnist_cnn_memory[path] = cached
    model = Net()
    model.load_state_dict(cached.state_dict())
    return model.eval()


def _resolve_classifier(mnist_model_ref: Any) -> nn.Module:
    if isinstance(mnist_model_ref, nn.Module):
        return mnist_model_ref
    if isinstance(mnist_model_ref, (str, os.PathLike)):
        model = Net()
        model.load_state_dict(torch.load(mnist_model_ref, map_location="cpu", weights_only=True))
        return model.eval()
    if mnist_model_ref is None:
        return load_mnist_cnn()
    raise TypeError(
        "`mnist_model_ref` must be the classifier (an nn.Module, e.g. `load_mnist_cnn()`), "
        "a path to its state_dict, or None for the cached one; "
        f"got {type(mnist_model_ref).__name__}"
    )


def inception_score(
    imgs: torch.Tensor | Sequence[torch.Tensor],
    mnist_model_ref: Any = None,
    batch_size: int = 32,
    splits: int = 1,
) -> tuple[float, float]:
    """Inception score of ``imgs`` under the digit classifier: ``(mean, std)`` over ``splits``.

    ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean prediction of each split: 1 when
    every image gets the same prediction, 10 when the predictions are confident and spread
    evenly over the 10 classes. ``imgs`` are ``[N, 1, H, W]`` images in [-1, 1] (resized
    to 28x28 bilinearly); ``mnist_model_ref`` is the classifier (``Net``), a path to its
    ``state_dict``, or ``None`` for ``load_mnist_cnn()``. As in Ray, the last
    ``N % splits`` images are left out. The classifier is run in eval mode, without
    gradients; its mode is restored afterwards.
    """
    if splits < 1:
        raise ValueError(f"`splits` must be at least 1, got {splits}")
    cm = _resolve_classifier(mnist_model_ref)
    imgs_t = imgs.detach() if isinstance(imgs, torch.Tensor) else torch.stack(list(imgs))
    n = len(imgs_t)
    if n < splits:
        raise ValueError(f"need at least `splits`={splits} images, got {n}")
    was_training = cm.training
    cm.eval()
    try:
        with torch.no_grad():
            preds = torch.cat(
                [
                    F.softmax(cm(_to_classifier_input(imgs_t[i : i + batch_size].cpu())), dim=1)
                    for i in range(0, n, batch_size)
                ]
            ).double()
    finally:
        cm.train(was_training)

    # Now compute the mean KL divergence of each split
    split_scores = []
    for k in range(splits):
        part = preds[k * (n // splits) : (k + 1) * (n // splits)]
        py = part.mean(dim=0, keepdim=True)
        # scipy.stats.entropy(pyx, py): sum pyx * log(pyx / py), with 0 * log 0 = 0
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, py)).sum(dim=1)
        split_scores.append(float(torch.exp(kl.mean())))

    return float(np.mean(split_scores)), float(np.std(split_scores))


# __INCEPTION_SCORE_end__


def train_func(
    netD: nn.Module,
    netG: nn.Module,
    optimG: torch.optim.Optimizer,
    optimD: torch.optim.Optimizer,
    criterion: nn.Module,
    dataloader: Iterable[Any],
    iteration: int,
    device: torch.device | str,
    mnist_model_ref: Any,
) -> tuple[float, float, float]:
    """One step: ``train_iterations_per_step`` DCGAN batches; ``(lossG, lossD, is_score)``.

    Each batch updates the discriminator on real and fake images, then the generator
    (labels: real 1, fake 0, criterion as given, normally ``nn.BCELoss``). Returns the
    last batch's generator and discriminator losses and the inception score of its fake
    images. Prints a line of statistics when ``iteration`` is a multiple of 10 (as Ray,
``[iteration/batches in the loader]``).
    """
    real_label = 1.0
    fake_label = 0.0
    errD = errG = fake = None
    D_x = D_G_z1 = D_G_z2 = 0.0
    n_batches = 0

    for i, data in enumerate(dataloader, 0):
        if i >= train_iterations_per_step:
            break
        n_batches += 1

        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real = data[0].to(device)
        b_size = real.size(0)
        label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()

        noise = torch.randn(b_size, nz, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimD.step()

        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        optimG.step()

    if errD is None or errG is None or fake is None:
        raise ValueError("the dataloader yielded no batch")

    is_score, _ = inception_score(fake, mnist_model_ref)

    # Output training stats
    if iteration % 10 == 0:
        total = len(dataloader) if isinstance(dataloader, Sized) else n_batches
        print(
            "[%d/%d]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f"
            "\tInception score: %.4f"
            % (iteration, total, errD.item(), errG.item(), D_x, D_G_z1, D_G_z2, is_score)
        )

    return errG.item(), errD.item(), is_score


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """Tile ``[B, C, H, W]`` images into one ``[C, H', W']`` image in [0, 1].

    Like ``torchvision.utils.make_grid(..., normalize=True)``: the batch is min-max scaled
    as a whole, and the images are laid out ``nrow`` a row with ``padding`` pixels of 0
    around them.
    """
    images = images.detach().float().cpu()
    lo, hi = images.min(), images.max()
    images = (images - lo) / max(float(hi - lo), 1e-5)
    b, c, h, w = images.shape
    ncol = min(nrow, b)
    nrows = (b + ncol - 1) // ncol
    grid = torch.zeros(c, nrows * (h + padding) + padding, ncol * (w + padding) + padding)
    for k in range(b):
        r, col = divmod(k, ncol)
        top, left = r * (h + padding) + padding, col * (w + padding) + padding
        grid[:, top : top + h, left : left + w] = images[k]
    return grid


def _save_grids(grids: list[torch.Tensor], titles: list[str], path: str) -> str:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend is ever touched

    fig = Figure(figsize=(6 * len(grids), 6))
    for k, (grid, title) in enumerate(zip(grids, titles)):
        ax = fig.add_subplot(1, len(grids), k + 1)
        ax.axis("off")
        ax.set_title(title)
        ax.imshow(grid.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    return path


def plot_images(dataloader: Iterable[Any], path: str = "original_images.png") -> str:
    """Save up to 64 images of ``dataloader``'s first batch as a grid PNG; return its path."""
    real_batch = next(iter(dataloader))
    return _save_grids([make_grid(real_batch[0][:64])], ["Original Images"], path)


def _checkpoint_file(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    return os.path.join(path, "checkpoint.pt") if os.path.isdir(path) else path


def demo_gan(
    checkpoint_paths: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str] = ".",
    seed: int = 0,
) -> list[str]:
    """Generate 64 digits with the generator of each checkpoint; save them as PNGs.

    Each path is a checkpoint directory holding ``checkpoint.pt`` (as written by
    ``dcgan_train``) or that file itself. The same noise (seeded by ``seed``) is fed to
    every generator, so the images are comparable. Writes ``generated.png`` for one
    checkpoint, ``generated_0.png``, ``generated_1.png``, ... for several, into
    ``output_dir`` (Ray writes ``./generated.gif``); returns the paths written.
    """
    fixed_noise = torch.randn(64, nz, 1, 1, generator=torch.Generator().manual_seed(seed))
    written = []
    for k, path in enumerate(checkpoint_paths):
        checkpoint_dict = torch.load(_checkpoint_file(path), map_location="cpu")
        loadedG = Generator()
        loadedG.load_state_dict(checkpoint_dict["netGmodel"])
        with torch.no_grad():
            fake = loadedG(fixed_noise)
        name = "generated.png" if len(checkpoint_paths) == 1 else f"generated_{k}.png"
        step = checkpoint_dict.get("step")
        title = "Generated images" + (f" (step {step})" if step is not None else "")
        written.append(_save_grids([make_grid(fake)], [title], os.path.join(output_dir, name)))
    return written
