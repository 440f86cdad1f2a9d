"""poptune.integration.comet: Comet experiments of real trials, in comet_ml's offline mode (no
account, no network), read back from the archives comet writes (``<experiment key>.zip``
holding ``experiment.json`` and ``messages.json``, one JSON message per line)."""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
import zipfile

import pytest

if importlib.util.find_spec("comet_ml") is None:  # not importorskip: the import is the
    pytest.skip("comet_ml is not installed", allow_module_level=True)  # fixture's, see there

import poptune as tune  # noqa: E402
from poptune.air.integrations.comet import CometLoggerCallback  # noqa: E402
from poptune.integration import comet as integration  # noqa: E402
from tests.integration._helpers import result_rows  # noqa: E402

COMET_VARIABLES = ("COMET_API_KEY", "COMET_OFFLINE_DIRECTORY", "COMET_LOGGING_CONSOLE",
                   "COMET_DISPLAY_SUMMARY_LEVEL", "COMET_DISABLE_AUTO_LOGGING",
                   "COMET_PROJECT_NAME", "COMET_WORKSPACE", "COMET_LOGGING_FILE")


class CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capture changes it)."""

    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def comet_in_a_box(monkeypatch, tmp_path):
    """No COMET_* setting from outside; comet_ml imported as the callback imports it (with
    COMET_DISABLE_AUTO_LOGGING=1: no framework patched for the session's later tests) and
    without its error reporting to its own servers (set up at the import); comet's console
    handler writing to the test's captured stderr (it keeps the ``sys.stderr`` of its
    import); the working directory an empty one of the test's (comet writes offline archives
    into ``.cometml-runs`` there by default). After the test: nothing in it, nothing new in
    the temporary directory, no comet file in the home directory, and no thread left."""
    for name in COMET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COMET_ERROR_TRACKING_ENABLE", "false")
    integration._import_comet()
    for handler in logging.getLogger("comet_ml").handlers:
        if type(handler) is logging.StreamHandler:
            monkeypatch.setattr(handler, "stream", CurrentStderr())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tmp = set(os.listdir(tempfile.gettempdir()))  # comet keeps each experiment's data there
    threads = set(threading.enumerate())
    yield
    assert os.listdir(cwd) == []
    assert set(os.listdir(tempfile.gettempdir())) - tmp == set()
    home = os.path.expanduser("~")
    assert not glob.glob(os.path.join(home, ".comet*")) and not glob.glob(
        os.path.join(home, ".cometml-runs"))
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - threads and time.monotonic() < deadline:
        time.sleep(0.05)  # comet's own threads end a moment after end() returns
    assert not {t.name for t in set(threading.enumerate()) - threads}


def archives(directory):
    """The offline archives in ``directory``, oldest first, each as a dict: ``experiment``
    (experiment.json), ``messages`` ((type, payload) pairs) and ``files`` (the archive's
    other members, by name)."""
    out = []
    for path in glob.glob(os.path.join(str(directory), "*.zip")):
        with zipfile.ZipFile(path) as archive:
            lines = archive.read("messages.json").decode().splitlines()
            out.append({
                "experiment": json.loads(archive.read("experiment.json")),
                "messages": [(m["type"], m["payload"]) for m in map(json.loads, lines)],
                "files": {n: archive.read(n) for n in archive.namelist()
                          if n not in ("experiment.json", "messages.json")}})
    return sorted(out, key=lambda a: a["experiment"]["start_time"])


def others(archive):
    return {p["key"]: p["value"] for kind, p in archive["messages"] if kind == "log_other"}


def parameters(archive, step=None):
    """The parameters the callback logged (not comet's auto-logged ones) at ``step``."""
    logged = [p.get("param") or p["params"]  # "params" for a list value
              for kind, p in archive["messages"] if kind == "parameter_msg"]
    return {p["paramName"]: p["paramValue"] for p in logged
            if p["source"] == "manual" and p["step"] == step}


def metrics(archive):
    """``{step: {name: value}}`` of the callback's metrics (not comet's ``sys.*`` ones)."""
    out: dict = {}
    for kind, p in archive["messages"]:
        if kind == "metric_msg" and not p["metric"]["metricName"].startswith("sys."):
            m = p["metric"]
            out.setdefault(m["step"], {})[m["metricName"]] = m["metricValue"]
    out.pop(None, None)
    return out


def system_info(archive):
    return {p["system_info"]["key"]: p["system_info"]["value"]
            for kind, p in archive["messages"] if kind == "system_info"}


def uploads(archive, upload_type):
    """The files of one upload type: (their payload's ``additional_params``, content)."""
    return [(p["additional_params"], archive["files"][p["file_path"]])
            for kind, p in archive["messages"]
            if kind == "file_upload" and p.get("upload_type") == upload_type]


def _fit(tmp_path, trainable, callbacks, name="cm", param_space=None, **run):
    return tune.Tuner(
        trainable, param_space={"lr": 0.1} if param_space is None else param_space,
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "res"), verbose=0,
                                  callbacks=callbacks, **run)).fit()


def reporting(config):
    for step in range(3):
        tune.report({"loss": config["lr"] / (step + 1), "nested": {"a": step}, "word": "text",
                     "hist_stats": {"episode_reward": [step, step + 1],
                                    "episode_lengths": [10] * (step + 1), "other": 5}})


class GlobalExperiment:
    """Stands for a user's own Comet experiment, the process's "global" one: comet ends it
    when another experiment is created."""

    ended = False

    def _on_end(self, wait=True):
        self.ended = True


def test_one_quiet_experiment_per_trial_with_rays_routing(tmp_path, capfd):
    from comet_ml.config import get_global_experiment, set_global_experiment

    users = GlobalExperiment()
    set_global_experiment(users)
    try:
        grid = _fit(tmp_path, reporting, [CometLoggerCallback(online=False, tags=["a", "b"])],
                    param_space={"lr": tune.grid_search([0.1, 0.2]), "model": {"width": 4}})
        assert get_global_experiment() is users and not users.ended  # left alone
    finally:
        set_global_experiment(None)
    assert grid.num_errors == 0
    out, err = capfd.readouterr()
    assert "COMET" not in out + err  # quiet in the driver's console
    logging.getLogger("comet_ml.elsewhere").warning("the user's own")
    assert "COMET WARNING: the user's own" in capfd.readouterr().err  # comet's console stays
    assert "COMET_DISABLE_AUTO_LOGGING" not in os.environ  # set for comet's import only
    for result in grid:
        (archive,) = archives(result.path)  # one experiment per trial, in its directory
        name = f"reporting_{result.metrics['trial_id']}"
        assert os.path.basename(result.path).startswith(name)
        assert sorted(archive["experiment"]["tags"]) == ["a", "b"]
        assert archive["experiment"]["stop_time"]  # ended
        lr = result.config["lr"]
        assert others(archive) == {
            "Name": name, "Created from": "poptune", "offline_experiment": True,
            "trial_id": result.metrics["trial_id"],
            "experiment_tag": result.metrics["experiment_tag"]}
        assert parameters(archive) == {"lr": lr, "model/width": 4}  # flattened with "/"
        rows = result_rows(result.path)
        logged = metrics(archive)
        assert sorted(logged) == [1, 2, 3]  # at step = training_iteration
        for step, row in zip(sorted(logged), rows):
            assert logged[step]["loss"] == row["loss"]
            assert logged[step]["nested/a"] == step - 1
            assert logged[step]["word"] == "text"  # everything else is a metric, as in Ray
            assert logged[step]["hist_stats/other"] == 5
            assert logged[step]["training_iteration"] == step
            # Ray's excluded, "other", system and episode keys, and the config, are not metrics
            assert not set(logged[step]) & {
                "done", "trial_id", "experiment_tag", "hostname", "pid", "node_ip", "date",
                "config/lr", "config/model/width", "hist_stats/episode_reward",
                "hist_stats/episode_lengths"}
        info = system_info(archive)
        assert info["hostname"] == rows[-1]["hostname"] and info["pid"] == rows[-1]["pid"]
        assert {"node_ip", "date"} <= set(info)
        curves = [(params["fileName"], params["step"], json.loads(data))
                  for params, data in uploads(archive, "curve")]
        assert [(n, s, c["x"], c["y"]) for n, s, c in curves
                if n == "hist_stats/episode_reward"] == [
            ("hist_stats/episode_reward", step, [0, 1], [step - 1, step]) for step in (1, 2, 3)]
        assert [(s, c["y"]) for n, s, c in curves if n == "hist_stats/episode_lengths"] == [
            (1, [10]), (2, [10, 10]), (3, [10, 10, 10])]


def test_the_users_experiment_kwargs_win(tmp_path, capfd):
    """``display_summary_level`` asks for comet's console output, ``offline_directory`` says
    where the archives go, and the auto-logging options Ray turns off stay on when set."""
    elsewhere = tmp_path / "archives"
    callback = CometLoggerCallback(online=False, display_summary_level=1,
                                   offline_directory=str(elsewhere), log_env_cpu=True)
    assert callback.experiment_kwargs == {
        "display_summary_level": 1, "offline_directory": str(elsewhere), "log_env_cpu": True,
        "auto_output_logging": False, "log_git_metadata": False, "log_git_patch": False,
        "log_env_gpu": False}
    grid = _fit(tmp_path, reporting, [callback])
    assert grid.num_errors == 0
    out, err = capfd.readouterr()
    assert "Comet.ml OfflineExperiment Summary" in out + err
    assert archives(grid[0].path) == []
    (archive,) = archives(elsewhere)
    assert sorted(metrics(archive)) == [1, 2, 3]


def test_comets_own_offline_directory_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(tmp_path / "from-env"))
    grid = _fit(tmp_path, reporting, [CometLoggerCallback(online=False)])
    assert archives(grid[0].path) == [] and len(archives(tmp_path / "from-env")) == 1


def checkpointing(config):
    import tempfile

    for step in range(2):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "sub"))
            with open(os.path.join(d, "weights"), "w") as f:
                f.write(str(step))
            with open(os.path.join(d, "sub", "extra"), "w") as f:
                f.write("x")
            tune.report({"loss": 1.0 / (step + 1)}, checkpoint=tune.Checkpoint.from_directory(d))


def test_save_checkpoints_offline_logs_each_checkpoint_as_a_model(tmp_path):
    """An offline archive holds no artifacts (comet_ml raises NotImplementedError): the
    checkpoint's files are logged as the model ``checkpoint_<trial>`` instead."""
    grid = _fit(tmp_path, checkpointing, [CometLoggerCallback(online=False,
                                                              save_checkpoints=True)])
    assert grid.num_errors == 0
    (archive,) = archives(grid[0].path)
    files = sorted((params["groupingName"], params["fileName"], data)
                   for params, data in uploads(archive, "model-element"))
    model = f"checkpoint_checkpointing_{grid[0].metrics['trial_id']}"
    assert files == [(model, "checkpoint_000000/sub/extra", b"x"),
                     (model, "checkpoint_000000/weights", b"0"),
                     (model, "checkpoint_000001/sub/extra", b"x"),
                     (model, "checkpoint_000001/weights", b"1")]


def test_save_checkpoints_online_logs_each_checkpoint_as_an_artifact(tmp_path, monkeypatch):
    """Online, each checkpoint is a ``comet_ml.Artifact`` of type "model" (Ray's); the online
    experiment is played by an offline one that records the artifacts it is given."""
    import comet_ml

    logged = []

    class Experiment(comet_ml.OfflineExperiment):
        def __init__(self, **kwargs):
            assert "offline_directory" not in kwargs  # the online class gets the user's only
            super().__init__(offline_directory=str(tmp_path / "online"), **kwargs)

        def log_artifact(self, artifact):
            logged.append((artifact.name, artifact.artifact_type,
                           sorted((a.logical_path, open(a.local_path_or_data).read())
                                  for a in artifact.assets)))

    monkeypatch.setattr(comet_ml, "Experiment", Experiment)
    grid = _fit(tmp_path, checkpointing, [CometLoggerCallback(save_checkpoints=True)])
    assert grid.num_errors == 0
    name = f"checkpoint_checkpointing_{grid[0].metrics['trial_id']}"
    # each artifact holds that checkpoint's files, by their path in it
    assert logged == [(name, "model", [("sub/extra", "x"), ("weights", "0")]),
                      (name, "model", [("sub/extra", "x"), ("weights", "1")])]
    assert len(archives(tmp_path / "online")) == 1


def test_a_checkpoint_on_remote_storage_is_a_link():
    import comet_ml

    artifact = integration._checkpoint_artifact(comet_ml, "c", "s3://bucket/exp/checkpoint_1")
    (asset,) = artifact.assets
    assert asset.remote and asset.link == "s3://bucket/exp/checkpoint_1"
    with pytest.raises(FileNotFoundError, match="checkpoint directory /no/such/dir is gone"):
        integration._checkpoint_artifact(comet_ml, "c", "/no/such/dir")  # a warning, then


def test_a_changed_config_is_logged_at_its_step(tmp_path):
    """PBT's exploits change a trial's config: the new values are parameters at the step of
    the result that carries them, and again when the trial is relaunched (the callback's
    hooks called here as the engine calls them)."""
    from poptune.experiment.trial import Trial, TrialStatus

    trial = Trial("t_00000", "train", {"lr": 0.1, "sizes": [1, 2]}, local_path=str(tmp_path / "t"))
    callback = CometLoggerCallback(online=False)
    callback.log_trial_start(trial)
    for step, lr in ((1, 0.1), (2, 0.3)):
        callback.log_trial_result(step, trial, {"training_iteration": step, "loss": lr,
                                                "config": {"lr": lr, "sizes": [1, 2]}})
    trial.config = {"lr": 0.5, "sizes": [1, 2]}
    callback.log_trial_start(trial)  # relaunched (after a pause): the same experiment
    trial.status = TrialStatus.TERMINATED
    callback.log_trial_end(trial)
    callback.on_experiment_end([trial])
    (archive,) = archives(tmp_path / "t")
    assert others(archive)["Name"] == "train_t_00000"
    assert parameters(archive) == {"lr": 0.1, "sizes": [1, 2]}
    lrs = [(p["param"]["paramValue"], p["param"]["step"]) for kind, p in archive["messages"]
           if kind == "parameter_msg" and p.get("param", {}).get("paramName") == "lr"]
    # comet logs a value again only when it changed; the relaunch's at the current step
    assert lrs == [(0.1, None), (0.3, 2), (0.5, 2)]
    assert metrics(archive) == {1: {"loss": 0.1, "training_iteration": 1},
                                2: {"loss": 0.3, "training_iteration": 2}}


def fails_once(config):
    marker = os.path.join(config["dir"], "failed")
    for step in range(2):
        tune.report({"loss": float(step)})
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("once")


def test_a_retried_trial_logs_on_into_its_experiment(tmp_path):
    grid = _fit(tmp_path, fails_once, [CometLoggerCallback(online=False)],
                param_space={"dir": str(tmp_path)},
                failure_config=tune.FailureConfig(max_failures=1))
    assert grid.num_errors == 0
    (archive,) = archives(grid[0].path)
    assert sorted(metrics(archive)) == [1, 2]


class InterruptOnce(tune.Callback):
    """Ctrl-C at the first run's second result (callbacks come back with a restore)."""

    def __init__(self, marker):
        self.marker = marker

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == 2 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            raise KeyboardInterrupt


def test_the_callback_pickles_and_a_restore_after_an_interrupt_logs_on(tmp_path):
    """``tuner.pkl`` keeps the callbacks for ``Tuner.restore``: the copy holds the arguments,
    not the open experiments or the thread that makes their calls. The interrupted run's
    experiment is ended; the restored trial gets a new one."""
    import cloudpickle

    callback = CometLoggerCallback(online=False, tags=["t"], project_name="p")
    calls = callback._calls()  # the thread, started as at a trial's start
    try:
        copies = [cloudpickle.loads(cloudpickle.dumps(callback)),
                  pickle.loads(pickle.dumps(callback))]
    finally:
        callback.on_experiment_end([])
    assert not calls.is_alive()
    for copy in copies:
        assert (copy.online, copy.tags, copy.experiment_kwargs["project_name"], copy._runs,
                copy._started, copy._ready) == (False, ["t"], "p", None, set(), False)

    marker = str(tmp_path / "interrupted")
    _fit(tmp_path, reporting, [InterruptOnce(marker), copies[0]], name="ri")
    exp = str(tmp_path / "res" / "ri")
    (trial_dir,) = glob.glob(os.path.join(exp, "reporting_*"))
    (first,) = archives(trial_dir)
    assert first["experiment"]["stop_time"] and sorted(metrics(first)) == [1]
    grid = tune.Tuner.restore(exp, trainable=reporting).fit()
    assert grid.num_errors == 0
    first, second = archives(trial_dir)
    assert others(second)["Name"] == others(first)["Name"]
    assert sorted(metrics(second)) == [1, 2, 3]  # the function trainable started again
    assert parameters(second) == {"lr": 0.1}


def test_errors_name_the_parameter_and_what_is_accepted(monkeypatch):
    with pytest.raises(TypeError, match=r"`online` must be True or False, got 'yes' of type str"):
        CometLoggerCallback(online="yes")
    with pytest.raises(TypeError, match=r"`tags` must be None or a list of str, got 'a'"):
        CometLoggerCallback(tags="a")
    with pytest.raises(TypeError, match=r"`tags` must be None or a list of str, got \[1\]"):
        CometLoggerCallback(tags=[1])
    with pytest.raises(TypeError, match=r"`save_checkpoints` must be True or False, got 1"):
        CometLoggerCallback(save_checkpoints=1)
    monkeypatch.setitem(__import__("sys").modules, "comet_ml", None)  # as if not installed
    with pytest.raises(ImportError, match=r"`comet_ml` is required for CometLoggerCallback.*"
                                          r"pip install"):
        CometLoggerCallback()
