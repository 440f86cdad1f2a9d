"""poptune.examples.pbt_dcgan_mnist: the PBT guide's DCGAN example, offline on the digits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from poptune.examples import datasets  # noqa: E402
from poptune.examples.pbt_dcgan_mnist import common  # noqa: E402
from poptune.examples.pbt_dcgan_mnist import pbt_dcgan_mnist_func as func  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private cache directory in which the classifier is trained once for the module."""
    directory = tmp_path_factory.mktemp("dcgan_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(datasets.CACHE_ENV_VAR, str(directory))
        mp.setattr(common, "_mnist_cnn_memory", {})
        common.load_mnist_cnn()  # trains (seconds) and writes mnist_cnn.pt
        yield directory


@pytest.fixture
def cnn(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(cache))
    return common.load_mnist_cnn()


@pytest.fixture(autouse=True)
def torch_threads() -> Iterator[None]:
    """One torch thread, as in a trial (and restore the count, which ``dcgan_train`` sets).

    Several threads on a busy 2-core machine make the small convolutions here far slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _real_digits(train: bool = False) -> Any:
    return datasets.load_digits(train, size=32, mean=0.5, std=0.5).tensors


def _fake_classifier() -> Any:
    raise AssertionError("the classifier was retrained although the cache was valid")


# -- models and data ---------------------------------------------------------------------


def test_constants_are_rays() -> None:
    assert (common.nz, common.ngf, common.ndf, common.nc) == (100, 32, 32, 1)
    assert (common.image_size, common.beta1, common.batch_size) == (32, 0.5, 64)
    assert common.train_iterations_per_step == 5


def test_generator_discriminator_and_net_output_shapes() -> None:
    netG, netD = common.Generator(), common.Discriminator()
    netG.apply(common.weights_init)
    netD.apply(common.weights_init)
    fake = netG(torch.randn(5, common.nz, 1, 1))
    assert fake.shape == (5, 1, 32, 32) and fake.min() >= -1 and fake.max() <= 1
    prob = netD(fake)
    assert prob.shape == (5, 1, 1, 1) and ((prob > 0) & (prob < 1)).all()
    log_probs = common.Net()(torch.randn(5, 1, 28, 28))
    assert log_probs.shape == (5, 10)
    assert torch.allclose(log_probs.exp().sum(dim=1), torch.ones(5), atol=1e-5)


def test_weights_init_draws_dcgan_initial_weights() -> None:
    torch.manual_seed(0)
    netD = common.Discriminator()
    netD.apply(common.weights_init)
    conv, bn = netD.main[2], netD.main[3]
    with torch.no_grad():
        assert abs(float(conv.weight.std()) - 0.02) < 0.002
        assert abs(float(bn.weight.mean()) - 1.0) < 0.01 and float(bn.bias.abs().max()) == 0.0


def test_data_loader_serves_32x32_digits_in_minus_one_to_one() -> None:
    loader = common.get_data_loader()
    images, labels = next(iter(loader))
    assert images.shape == (64, 1, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (64,)
    all_images = loader.dataset.tensors[0]
    assert len(all_images) == 1438
    assert all_images.min() >= -1 - 1e-6 and all_images.max() <= 1 + 1e-6
    assert all_images.min() < -0.99 and all_images.max() > 0.99
    assert common.get_data_loader(batch_size=16).batch_size == 16


# -- inception score and its cached classifier -------------------------------------------


def test_classifier_is_accurate_on_held_out_digits(cnn: Any) -> None:
    images, labels = _real_digits(train=False)
    with torch.no_grad():
        predicted = cnn(common._to_classifier_input(images)).argmax(dim=1)
    assert float((predicted == labels).float().mean()) > 0.9


def test_inception_score_is_high_for_real_digits_and_low_for_noise(cnn: Any) -> None:
    images, _ = _real_digits(train=False)
    real, std = common.inception_score(images, cnn)
    assert 5.0 < real <= 10.0 and std == 0.0
    real_64, _ = common.inception_score(images[:64], cnn)  # a training batch's worth
    assert real_64 > 5.0
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(64, 1, 32, 32, generator=gen) * 2 - 1
    assert common.inception_score(noise, cnn)[0] < 2.0
    blank = torch.full((64, 1, 32, 32), -1.0)
    assert common.inception_score(blank, cnn)[0] == pytest.approx(1.0)
    untrained = common.Generator()(torch.randn(64, common.nz, 1, 1, generator=gen))
    assert common.inception_score(untrained, cnn)[0] < 2.0  # requires_grad input is fine


def test_inception_score_is_rays_formula_with_splits(cnn: Any) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    import numpy as np

    images, _ = _real_digits(train=False)
    images = images[:101]
    cnn.train()  # the score runs the classifier in eval mode and restores the mode
    with torch.no_grad():
        cnn.eval()
        preds = torch.softmax(cnn(common._to_classifier_input(images)), dim=1).numpy()
        cnn.train()
    expected = []
    for k in range(3):  # Ray's loop: the last 101 % 3 images are left out
        part = preds[k * 33 : (k + 1) * 33]
        py = part.mean(axis=0)
        expected.append(math.exp(np.mean([scipy_stats.entropy(p, py) for p in part])))
    mean, std = common.inception_score(images, cnn, batch_size=7, splits=3)
    assert mean == pytest.approx(np.mean(expected), rel=1e-5)
    assert std == pytest.approx(np.std(expected), rel=1e-4, abs=1e-6)
    assert cnn.training


def test_inception_score_takes_a_state_dict_path_and_rejects_other_things(
    cnn: Any, cache: Path
) -> None:
    images, _ = _real_digits(train=False)
    by_model = common.inception_score(images[:64], cnn)
    by_path = common.inception_score(images[:64], str(cache / "mnist_cnn.pt"))
    assert by_path == pytest.approx(by_model)
    with pytest.raises(TypeError, match="mnist_model_ref"):
        common.inception_score(images[:64], 42)


def test_classifier_cache_is_reused_without_retraining(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(cache))
    path = cache / "mnist_cnn.pt"
    assert common.model_path() == str(path) and path.is_file()
    first = common.load_mnist_cnn()

    monkeypatch.setattr(common, "_mnist_cnn_memory", {})  # a fresh process
    monkeypatch.setattr(common, "train_mnist_cnn", _fake_classifier)
    second = common.load_mnist_cnn()
    assert not second.training
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])

    # The guide's way of loading it: a plain state_dict at the returned path.
    assert func.download_mnist_cnn() == str(path)
    net = common.Net()
    net.load_state_dict(torch.load(func.download_mnist_cnn()))
    assert [p for p in os.listdir(cache) if p.endswith(".tmp")] == []


def test_a_corrupt_classifier_file_is_retrained_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(common, "_mnist_cnn_memory", {})
    calls: list[int] = []

    def quick_train() -> Any:
        calls.append(1)
        return common.Net().eval()

    monkeypatch.setattr(common, "train_mnist_cnn", quick_train)
    (tmp_path / "mnist_cnn.pt").write_bytes(b"not a torch file")
    common.load_mnist_cnn()
    assert calls == [1]
    common.Net().load_state_dict(torch.load(tmp_path / "mnist_cnn.pt"))
    assert sorted(os.listdir(tmp_path)) == ["mnist_cnn.pt"]


def test_disabled_disk_cache_keeps_the_classifier_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(datasets.CACHE_ENV_VAR, "")
    monkeypatch.setattr(common, "_mnist_cnn_memory", {})
    monkeypatch.setattr(common, "train_mnist_cnn", lambda: common.Net().eval())
    common.load_mnist_cnn()
    path = common.model_path()
    assert not os.path.exists(path)
    try:
        assert func.download_mnist_cnn() == path  # the guide needs a file: a private temp one
        common.Net().load_state_dict(torch.load(path))
    finally:
        Path(path).unlink(missing_ok=True)


# -- training ----------------------------------------------------------------------------


class _Counting:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.batches = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            self.batches += 1
            yield batch


def test_train_func_trains_five_batches_and_returns_losses_and_score(
    cnn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    netD, netG = common.Discriminator(), common.Generator()
    netD.apply(common.weights_init)
    netG.apply(common.weights_init)
    before = [p.detach().clone() for p in netG.parameters()]
    optimD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(common.beta1, 0.999))
    optimG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(common.beta1, 0.999))
    loader = _Counting(common.get_data_loader())
    lossG, lossD, is_score = common.train_func(
        netD, netG, optimG, optimD, torch.nn.BCELoss(), loader, 10, "cpu", cnn
    )
    assert loader.batches == 6  # as in Ray: the 6th batch is drawn, then the loop stops
    assert all(isinstance(v, float) and math.isfinite(v) for v in (lossG, lossD, is_score))
    assert lossG > 0 and lossD > 0 and 1.0 <= is_score <= 10.0
    assert any(not torch.equal(a, b) for a, b in zip(before, netG.parameters()))
    assert "[10/23]\tLoss_D:" in capsys.readouterr().out  # printed every 10th iteration


class _StopTrial(BaseException):
    pass


def test_dcgan_train_reports_checkpoints_and_restores_with_the_new_learning_rates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import poptune
    from poptune.checkpoint import Checkpoint

    seen: list[tuple[int, float, float, Any]] = []
    reports: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    marker = object()

    def fake_train_func(netD, netG, optimG, optimD, criterion, dataloader, step, device, ref):
        seen.append((step, optimD.param_groups[0]["lr"], optimG.param_groups[0]["lr"], ref))
        for net, optim in ((netD, optimD), (netG, optimG)):
            for param in net.parameters():
                param.grad = torch.zeros_like(param)
            optim.step()  # Adam counts its steps: the count shows the state was restored
        return 0.5, 0.25, 1.5

    def fake_report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        saved = None
        if checkpoint is not None:
            with checkpoint.as_directory() as path:
                assert os.listdir(path) == ["checkpoint.pt"]
                saved = torch.load(os.path.join(path, "checkpoint.pt"))
                Checkpoint.from_directory(path).to_directory(str(tmp_path / f"ckpt{len(reports)}"))
        reports.append((dict(metrics), saved))
        if len(reports) == 4:
            raise _StopTrial

    monkeypatch.setattr(func, "train_func", fake_train_func)
    monkeypatch.setattr(poptune, "report", fake_report, raising=False)
    monkeypatch.setattr(poptune, "get_checkpoint", lambda: None, raising=False)
    config = {"netD_lr": 3e-4, "netG_lr": 7e-4, "checkpoint_interval": 2}
    trainable = poptune.with_parameters(func.dcgan_train, mnist_model_ref=marker)
    torch.set_num_threads(2)
    with pytest.raises(_StopTrial):
        trainable(config)
    assert torch.get_num_threads() == 1
    assert [s[:3] for s in seen] == [(1, 3e-4, 7e-4), (2, 3e-4, 7e-4), (3, 3e-4, 7e-4),
                                     (4, 3e-4, 7e-4)]
    assert all(s[3] is marker for s in seen)
    assert [m for m, _ in reports] == [{"lossg": 0.5, "lossd": 0.25, "is_score": 1.5}] * 4
    assert [c is not None for _, c in reports] == [False, True, False, True]
    saved = reports[3][1]
    assert sorted(saved) == ["netDmodel", "netGmodel", "optimD", "optimG", "step"]
    assert saved["step"] == 4

    # PBT restores the trial from step 4's checkpoint with an explored config.
    seen.clear()
    reports.clear()
    restored = Checkpoint.from_directory(str(tmp_path / "ckpt3"))
    monkeypatch.setattr(poptune, "get_checkpoint", lambda: restored, raising=False)
    with pytest.raises(_StopTrial):
        trainable({"netD_lr": 1e-3, "netG_lr": 2e-3, "checkpoint_interval": 2})
    assert [s[:3] for s in seen] == [(5, 1e-3, 2e-3), (6, 1e-3, 2e-3), (7, 1e-3, 2e-3),
                                     (8, 1e-3, 2e-3)]
    assert reports[1][1]["step"] == 6
    for optim in ("optimD", "optimG"):  # 4 Adam steps before the checkpoint, 2 since
        assert float(reports[1][1][optim]["state"][0]["step"]) == 6


def test_plot_images_and_demo_gan_save_pngs(tmp_path: Path) -> None:
    netG = common.Generator()
    torch.save({"netGmodel": netG.state_dict(), "step": 3}, tmp_path / "checkpoint.pt")
    images = common.plot_images(common.get_data_loader(), str(tmp_path / "real.png"))
    out = tmp_path / "out"
    one = common.demo_gan([str(tmp_path)], output_dir=str(out))
    two = common.demo_gan([tmp_path, tmp_path / "checkpoint.pt"], output_dir=str(out))
    assert one == [str(out / "generated.png")]
    assert two == [str(out / "generated_0.png"), str(out / "generated_1.png")]
    for path in [images, *one, *two]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = common.make_grid(torch.randn(10, 1, 32, 32))
    assert grid.shape == (1, 2 * 34 + 2, 8 * 34 + 2) and grid.min() >= 0 and grid.max() <= 1


# -- the whole example -------------------------------------------------------------------


@pytest.mark.slow
def test_smoke_run_of_the_example_script(cache: Path, tmp_path: Path) -> None:
    env = {**os.environ, datasets.CACHE_ENV_VAR: str(cache), "PYTHONPATH": str(ROOT)}
    env.pop(datasets.DATASET_ENV_VAR, None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pbt_dcgan_mnist.py"), "--smoke-test",
         "--training-iterations", "4", "--storage-path", str(tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    experiment = tmp_path / "pbt_dcgan_mnist"

    from poptune import ResultGrid

    grid = ResultGrid.from_path(experiment)
    assert len(grid) == 4 and grid.num_errors == 0
    exploited: list[tuple[str, dict[str, Any]]] = []
    for result in grid:
        assert result.metrics["training_iteration"] == 4
        rows = [json.loads(line) for line in open(os.path.join(result.path, "result.json"))]
        assert all(1.0 <= row["is_score"] <= 10.0 for row in rows)
        assert all(math.isfinite(row["lossg"]) and math.isfinite(row["lossd"]) for row in rows)
        for prev, row in zip(rows, rows[1:]):
            if row["config"] != prev["config"]:  # PBT replaced the trial's config
                exploited.append((prev["experiment_tag"], row["config"]))
    if exploited:
        lines = (experiment / "pbt_global.txt").read_text().splitlines()
        logged = [json.loads(line) for line in lines]
        assert all(len(entry) == 6 for entry in logged)
        for tag, config in exploited:
            assert [tag, config] in [[entry[0], entry[5]] for entry in logged]
    for name in ("generated.png", "inception_score.png", "losses.png"):
        assert (experiment / name).is_file()
    assert "Best trial's final inception score" in proc.stdout
