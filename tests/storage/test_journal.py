"""The journal: checksummed records in atomic commits, one replay, damage and repair."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pytest

import poptune as tune
from poptune import cli
from poptune.engine.experiment import pack, replay_journal
from poptune.exceptions import RestoreError
from poptune.storage.journal import Journal, encode_group, frame
from poptune.storage.records import (
    SCHEMA_VERSION,
    CheckpointSaved,
    ConfigChanged,
    ExperimentStarted,
    ResultReported,
    SchedulerState,
    StatusChanged,
    TrialCreated,
    decode_record,
)
from poptune.storage.replay import JournalDamagedError, JournalReader, load_state, read_groups
from poptune.tuner import Tuner


def header() -> ExperimentStarted:
    return ExperimentStarted("exp", "train", metric="loss", mode="min", start=1.0,
                             exp_hex="abcde")


def trial(tid: str = "t1") -> TrialCreated:
    return TrialCreated(tid, "train", pack({"x": 1}), "0", f"/x/train_{tid}", f"train_{tid}")


def write(path, *groups) -> None:
    j = Journal(str(path))
    for group in groups:
        for rec in group:
            j.append(rec)
        j.commit()
    j.close()


def lines(path) -> list[bytes]:
    return open(path, "rb").read().splitlines(keepends=True)


def results_of(path) -> list[dict]:
    return [r for t in load_state(str(path)).trials.values() for r in t.results]


# -- framing --------------------------------------------------------------------------------
def test_records_round_trip_with_numpy_values_and_every_line_is_json(tmp_path):
    path = tmp_path / "journal.jsonl"
    write(path, [header(), trial()],
          [ResultReported("t1", {"x": np.float32(0.5), "n": np.int64(3), "a": np.arange(2)})])
    assert results_of(path) == [{"x": 0.5, "n": 3, "a": [0, 1]}]
    parsed = [json.loads(line) for line in lines(path)]
    assert [p["e"] for p in parsed] == ["exp", "trial", "commit", "result", "commit"]
    assert parsed[0]["v"] == SCHEMA_VERSION and all("c" in p for p in parsed)
    assert [(p["n"], p["k"]) for p in parsed if p["e"] == "commit"] == [(1, 2), (2, 1)]


def test_every_record_kind_round_trips():
    for rec in [header(), trial(), ResultReported("t", {"a": 1}),
                CheckpointSaved("t", "checkpoint_000001", "/p", 1, 3, {"m": 1}),
                StatusChanged("t", "ERROR", 1, "boom", "/e"), StatusChanged("t", "PAUSED"),
                ConfigChanged("t", "blob", "/d/checkpoint_000002", 4, 1.5, "d",
                              "checkpoint_000002"),
                SchedulerState(state="xx"), SchedulerState(file="f.pkl")]:
        assert decode_record(json.loads(json.dumps(rec.encode()))) == rec


def test_uncommitted_records_are_not_written_and_a_commit_is_one_group(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    j = Journal(path)
    j.append(header())
    assert os.path.getsize(path) == 0
    j.commit()
    assert len(lines(path)) == 2
    j.close()


def test_reopening_continues_the_commit_numbers(tmp_path):
    path = tmp_path / "journal.jsonl"
    write(path, [header()])
    write(path, [trial()], [StatusChanged("t1", "RUNNING")])
    assert [json.loads(line)["n"] for line in lines(path) if b'"commit"' in line] == [1, 2, 3]
    assert load_state(str(path)).trials["t1"].status == "RUNNING"


# -- a torn tail is normal -------------------------------------------------------------------
def test_a_partial_last_line_drops_its_group_whole_logs_it_and_is_cut_on_reopen(tmp_path,
                                                                               caplog):
    path = tmp_path / "journal.jsonl"
    write(path, [header(), trial()])
    group = encode_group([frame(ResultReported("t1", {"i": 1}).encode()),
                          frame(ResultReported("t1", {"i": 2}).encode())], 2)
    with open(path, "ab") as f:
        f.write(group[: group.index(b"\n") + 10])  # first record whole, the second torn
    with caplog.at_level(logging.WARNING, logger="poptune.storage.replay"):
        assert results_of(path) == []
    assert "dropped an unacknowledged tail" in caplog.text and "1 result" in caplog.text
    write(path, [ResultReported("t1", {"i": 3})])
    assert results_of(path) == [{"i": 3}]


def test_a_group_cut_between_a_checkpoint_and_its_result_is_dropped_whole(tmp_path):
    path = tmp_path / "journal.jsonl"
    write(path, [header(), trial()], [ResultReported("t1", {"i": 1})])
    ckpt = CheckpointSaved("t1", "checkpoint_000000", "/x/checkpoint_000000", 0, 2)
    group = encode_group([frame(ckpt.encode()), frame(ResultReported("t1", {"i": 2}).encode())],
                         3)
    with open(path, "ab") as f:  # a short write: the checkpoint record made it, nothing else
        f.write(group[: group.index(b"\n") + 1])
    t = load_state(str(path)).trials["t1"]
    assert t.results == [{"i": 1}] and t.checkpoints == []
    hist = replay_journal(str(path), storage_root=None)
    assert hist.trials["t1"].trial.checkpoint_path is None


def test_a_failed_write_takes_its_torn_group_back(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    write(path, [header(), trial()])
    size = os.path.getsize(path)
    j = Journal(str(path))
    real_write, calls = os.write, []

    def short_then_full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("poptune.storage.journal.os.write", short_then_full_disk)
    j.append(CheckpointSaved("t1", "checkpoint_000000", "/p", 0, 1))
    j.append(ResultReported("t1", {"i": 1}))
    with pytest.raises(OSError, match="No space"):
        j.commit()
    assert os.path.getsize(path) == size
    monkeypatch.setattr("poptune.storage.journal.os.write", real_write)
    j.append(ResultReported("t1", {"i": 2}))
    j.close()
    assert results_of(path) == [{"i": 2}]


# -- damage is never silent ------------------------------------------------------------------
def damaged_journal(path, replace):
    """Three commits; the result line of the second replaced by ``replace(line)``."""
    write(path, [header(), trial()], [ResultReported("t1", {"i": 1})],
          [ResultReported("t1", {"i": 2}), StatusChanged("t1", "TERMINATED")])
    raw = lines(path)
    offset = sum(map(len, raw[:3]))
    raw[3] = replace(raw[3])
    open(path, "wb").write(b"".join(raw))
    return offset


def test_an_unreadable_line_in_the_middle_names_file_offset_and_loss(tmp_path):
    path = tmp_path / "journal.jsonl"
    offset = damaged_journal(path, lambda line: b"#" * (len(line) - 1) + b"\n")
    with pytest.raises(JournalDamagedError) as err:
        load_state(str(path))
    msg = str(err.value)
    assert str(path) in msg and f"byte {offset}" in msg and "unreadable" in msg
    assert "2 later commit(s)" in msg and "t1" in msg and "poptune repair" in msg
    assert err.value.damage.good_end == offset and isinstance(err.value, RestoreError)


def test_a_checksum_mismatch_is_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    offset = damaged_journal(path, lambda line: line.replace(b'"i":1', b'"i":7'))
    with pytest.raises(JournalDamagedError, match=f"byte {offset}.*checksum does not match"):
        load_state(str(path))


def test_a_torn_group_followed_by_commits_is_damage(tmp_path):
    torn = encode_group([frame(ResultReported("t1", {"i": 1}).encode()),
                         frame(ResultReported("t1", {"i": 2}).encode())], 2)
    data = (encode_group([frame(header().encode()), frame(trial().encode())], 1)
            + torn[: torn.index(b"\n") + 1]  # its marker never made it, but the journal went on
            + encode_group([frame(StatusChanged("t1", "TERMINATED").encode())], 2))
    with pytest.raises(JournalDamagedError, match="torn commit group") as err:
        load_state(data)
    assert err.value.damage.offset == data.index(b'{"e":"result"')
    assert err.value.damage.lost_results == 1


def test_garbage_empty_and_headerless_journals_are_errors(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"")
    with pytest.raises(RestoreError, match="is empty"):
        load_state(str(path))
    path.write_bytes(os.urandom(3000).replace(b"\n", b"") + b"\nnot json\n")
    with pytest.raises(RestoreError, match="not a poptune journal"):
        load_state(str(path))
    path.write_text(json.dumps({"e": "result", "t": "t1", "r": {}}) + "\n")  # version 1
    with pytest.raises(RestoreError, match="not a poptune journal"):
        load_state(str(path))
    path.write_bytes(frame({"e": "result", "t": "t1", "r": {}}))
    with pytest.raises(RestoreError, match="first record is 'result'"):
        load_state(str(path))


def test_a_newer_schema_version_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"e": "exp", "v": SCHEMA_VERSION + 1, "name": "x"}) + "\n")
    with pytest.raises(RestoreError, match=f"version {SCHEMA_VERSION + 1}.*up to "
                                           f"{SCHEMA_VERSION}"):
        load_state(str(path))


# -- version 1 --------------------------------------------------------------------------------
V1 = [
    {"e": "exp", "name": "old", "trainable": "train", "metric": "loss", "mode": "min",
     "start": 1.0, "exp_hex": "abcde"},
    {"e": "trial", "id": "abcde_00000", "trainable": "train", "config": "", "tag": "0",
     "path": "/old/train_abcde_00000_0", "dirname": "train_abcde_00000_0",
     "resources": {"cpu": 1}, "params": {}, "name": None},
    {"e": "trial", "id": "abcde_00001", "trainable": "train", "config": "", "tag": "1",
     "path": "/old/train_abcde_00001_1", "dirname": "train_abcde_00001_1",
     "resources": {"cpu": 1}, "params": {}, "name": None},
    {"e": "result", "t": "abcde_00000", "r": {"loss": 1.0, "training_iteration": 1}},
    {"e": "ckpt", "t": "abcde_00000", "name": "checkpoint_000000",
     "path": "/old/train_abcde_00000_0/checkpoint_000000", "index": 0, "rows": 1,
     "m": {"loss": 1.0}},
    {"e": "result", "t": "abcde_00001", "r": {"loss": 2.0, "training_iteration": 1}},
    {"e": "config", "t": "abcde_00001", "config": "",
     "restore": {"path": "/old/train_abcde_00000_0/checkpoint_000000", "it": 1, "tt": 0.1}},
    {"e": "status", "t": "abcde_00001", "s": "ERROR", "failures": 1, "msg": "boom",
     "file": "/e"},
    {"e": "rollback", "t": "abcde_00000", "rows": 0},
]


def write_v1(path, records=V1, partial: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n"
                              for r in records) + partial)


def test_a_version_1_journal_still_replays_and_is_continued_in_version_2(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_v1(path, partial=b'{"e":"result","t":"abc')  # and its old-style partial line
    state = load_state(str(path))
    assert state.header is not None and state.header.version == 1
    a, b = state.trials["abcde_00000"], state.trials["abcde_00001"]
    assert a.results == [] and a.checkpoints == []  # rolled back to 0 rows
    assert b.status == "ERROR" and b.failures == 1 and b.error_msg == "boom"
    (ex, rows), = b.exploits
    assert rows == 1 and ex.donor is None and state.donor_of(ex) == "abcde_00000"
    import fsspec

    from poptune.lineage import _read_journal

    (ex,) = _read_journal(fsspec.filesystem("file"), str(tmp_path)).exploits
    assert (ex["target"], ex["donor"], ex["donor_it"]) == ("abcde_00001", "abcde_00000", 1)
    write(path, [StatusChanged("abcde_00001", "PENDING")])  # a restore appends commits
    assert load_state(str(path)).trials["abcde_00001"].status == "PENDING"


def test_a_bad_line_in_a_version_1_journal_is_damage_too(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_v1(path, V1[:4])
    with open(path, "ab") as f:
        f.write(b"garbage\n")
    write_v1(tmp_path / "rest", V1[4:])
    with open(path, "ab") as f:
        f.write((tmp_path / "rest").read_bytes())
    with pytest.raises(JournalDamagedError, match="line 5"):
        load_state(str(path))


# -- the incremental reader ------------------------------------------------------------------
def test_the_incremental_reader_returns_only_committed_groups(tmp_path):
    path = tmp_path / "journal.jsonl"
    reader = JournalReader(str(path))
    assert reader.read() == ([], False)
    write(path, [header(), trial()])
    groups, restarted = reader.read()
    assert [len(g) for g in groups] == [2] and not restarted
    group = encode_group([frame(ResultReported("t1", {"i": 1}).encode()),
                          frame(ResultReported("t1", {"i": 2}).encode())], 2)
    cut = group.rindex(b'{"e":"commit"')
    with open(path, "ab") as f:
        f.write(group[:cut])  # both records, no marker yet
    assert reader.read() == ([], False) and reader.offset < os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(group[cut:])
    groups, _ = reader.read()
    assert [[r.result for r in g] for g in groups] == [[{"i": 1}, {"i": 2}]]  # type: ignore
    assert reader.offset == os.path.getsize(path)
    with open(path, "rb+") as f:  # truncated (e.g. by poptune repair): start over
        f.truncate(os.path.getsize(path) - len(group))
    groups, restarted = reader.read()
    assert restarted and [len(g) for g in groups] == [2]
    # replaced by another file, even a longer one (a new run copied from remote storage)
    other = tmp_path / "other.jsonl"
    write(other, [header(), trial()], [trial("t2"), trial("t3")])
    os.replace(other, path)
    groups, restarted = reader.read()
    assert restarted and [len(g) for g in groups] == [2, 2]


# -- scheduler state ----------------------------------------------------------------------------
def test_replay_returns_the_last_committed_scheduler_state(tmp_path):
    path = tmp_path / "journal.jsonl"
    write(path, [header(), SchedulerState.of({"step": 1}, str(tmp_path))],
          [SchedulerState.of({"step": 2}, str(tmp_path))])
    with open(path, "ab") as f:  # a later state that was never committed
        f.write(frame(SchedulerState.of({"step": 3}, str(tmp_path)).encode()))
    hist = replay_journal(str(path))
    import cloudpickle

    assert cloudpickle.loads(hist.scheduler_state) == {"step": 2}
    big = SchedulerState.of(list(range(5000)), str(tmp_path))
    assert big.file == "scheduler_state.pkl"
    write(path, [big])
    assert cloudpickle.loads(replay_journal(str(path)).scheduler_state) == list(range(5000))


# -- lineage and the dashboard take the donor from the record -----------------------------------
def test_lineage_and_dashboard_read_the_donor_from_the_exploit_record(tmp_path):
    import fsspec

    from poptune.dashboard.data import ExperimentView
    from poptune.lineage import _read_journal

    exp = tmp_path / "exp"
    exp.mkdir()
    # the restored checkpoint lies in t2's folder, but the record names t3 as the donor
    write(exp / "journal.jsonl", [header(), trial("t1"), trial("t2"), trial("t3")],
          [ResultReported("t1", {"training_iteration": 4})],
          [ConfigChanged("t1", "", "/x/train_t2/checkpoint_000003", 3, 1.0, "t3",
                         "checkpoint_000003")])
    journal = _read_journal(fsspec.filesystem("file"), str(exp))
    assert [(e["target"], e["donor"], e["donor_it"], e["target_it"])
            for e in journal.exploits] == [("t1", "t3", 3, 4)]
    view = ExperimentView(str(exp))
    view.refresh()
    assert [(e["target"], e["donor"]) for e in view.exploits] == [("t1", "t3")]


# -- a real experiment: restore refuses damage, repair, nothing finished re-runs --------------
def train(config):
    with open(os.path.join(config["dir"], f"starts-{config['x']}"), "a") as f:
        f.write("x")
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            start = int(open(os.path.join(d, "step")).read())
    for step in range(start + 1, config["steps"] + 1):
        d = os.path.join(config["dir"], f"ck-{config['x']}-{step}")
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "step"), "w").write(str(step))
        time.sleep(config.get("sleep", 0))  # apart, each result gets its own commit
        tune.report({"v": step}, checkpoint=tune.Checkpoint.from_directory(d))


def starts(tmp_path) -> dict[int, int]:
    return {x: len(open(tmp_path / f"starts-{x}").read())
            for x in (0, 1) if (tmp_path / f"starts-{x}").exists()}


def run_two_trials(tmp_path, callbacks=()) -> None:
    """Trials x=0 then x=1 of ``train``, one at a time, in ``tmp_path/results/exp``."""
    tune.Tuner(train, param_space={"x": tune.grid_search([0, 1]), "steps": 4,
                                   "dir": str(tmp_path)},
               tune_config=tune.TuneConfig(max_concurrent_trials=1),
               run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "results"),
                                         verbose=0, callbacks=list(callbacks))).fit()


def zeroed(line: bytes) -> bytes:
    """A journal line damaged in the middle: its start kept, the rest zero bytes."""
    return line[:20] + b"\x00" * (len(line) - 21) + b"\n"


def test_restore_refuses_a_damaged_journal_and_repair_lets_it_finish_without_reruns(
        tmp_path, capsys, monkeypatch):
    run_two_trials(tmp_path)
    assert starts(tmp_path) == {0: 1, 1: 1}
    exp = tmp_path / "results" / "exp"
    path = exp / "journal.jsonl"
    raw = lines(path)
    first, second = (json.loads(raw[0])["exp_hex"] + s for s in ("_00000", "_00001"))
    # the first trial finished; damage the second trial's third result (on a loaded machine
    # the driver may commit the second trial's creation in the same group, and repair then
    # drops the trial whole: it is created again and runs from the start, into fresh files)
    done = next(i for i, line in enumerate(raw) if b'"TERMINATED"' in line and first.encode()
                in line)
    bad = [i for i, line in enumerate(raw) if line.startswith(b'{"e":"result"')
           and second.encode() in line][2]
    assert bad > done
    offset = sum(map(len, raw[:bad]))
    raw[bad] = zeroed(raw[bad])
    path.write_bytes(b"".join(raw))

    with pytest.raises(RestoreError) as err:
        Tuner.restore(str(exp), trainable=train)
    assert str(path) in str(err.value) and f"byte {offset}" in str(err.value)
    assert second in str(err.value)

    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["repair", str(exp)]) == 1  # shows, but does not truncate unasked
    out = capsys.readouterr().out
    assert f"byte {offset}" in out and "Not truncated" in out
    assert cli.main(["repair", str(exp), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Truncated" in out
    (backup,) = [p for p in os.listdir(exp) if p.startswith("journal.jsonl.damaged-")]
    assert os.path.getsize(exp / backup) > os.path.getsize(path)
    assert cli.main(["repair", str(exp)]) == 0 and "no damage" in capsys.readouterr().out

    grid = Tuner.restore(str(exp), trainable=train).fit()
    assert sorted(r.metrics["training_iteration"] for r in grid) == [4, 4]
    assert starts(tmp_path) == {0: 1, 1: 2}  # the finished trial did not run again
    (again,) = [r for r in grid if r.config["x"] == 1]
    rows = [json.loads(line)["v"] for line in open(again.path + "/result.json")]
    assert rows == [1, 2, 3, 4]
    Tuner.restore(str(exp), trainable=train).fit()
    assert starts(tmp_path) == {0: 1, 1: 2}  # and nothing runs on a later restore


def test_after_repair_a_trial_whose_journaled_checkpoint_is_gone_resumes_without_it(
        tmp_path, capsys, monkeypatch, caplog):
    """The commits repair cuts off may have deleted checkpoints the kept journal still lists
    (``num_to_keep``): the trial must not be handed a checkpoint that is gone."""
    tune.Tuner(train, param_space={"x": tune.grid_search([0, 1]), "steps": 4,
                                   "dir": str(tmp_path), "sleep": 0.1},
               tune_config=tune.TuneConfig(max_concurrent_trials=1),
               run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "results"),
                                         verbose=0, checkpoint_config=tune.CheckpointConfig(
                                             num_to_keep=1))).fit()
    exp = tmp_path / "results" / "exp"
    path = exp / "journal.jsonl"
    raw = lines(path)
    second = json.loads(raw[0])["exp_hex"] + "_00001"
    bad = [i for i, line in enumerate(raw) if line.startswith(b'{"e":"result"')
           and second.encode() in line][-1]  # its last result: checkpoint_000003's commit
    raw[bad] = zeroed(raw[bad])
    path.write_bytes(b"".join(raw))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["repair", str(exp), "--yes"]) == 0
    capsys.readouterr()
    kept = load_state(str(path)).trials[second]
    (listed,) = kept.live_checkpoints  # the journal still keeps one the run deleted since
    trial_dir = exp / kept.created.dirname
    assert not (trial_dir / listed.name).exists()

    with caplog.at_level(logging.WARNING, logger="poptune"):
        grid = Tuner.restore(str(exp), trainable=train).fit()
    assert grid.num_errors == 0 and sorted(r.metrics["training_iteration"] for r in grid) == [4, 4]
    assert any(listed.name in r.getMessage() and "not in" in r.getMessage()
               for r in caplog.records)
    (again,) = [r for r in grid if r.config["x"] == 1]
    rows = [json.loads(line)["v"] for line in open(again.path + "/result.json")]
    assert rows == [1, 2, 3, 4]  # from the start: its only journaled checkpoint is gone
    assert starts(tmp_path) == {0: 1, 1: 2}


def test_replay_forgets_a_pending_exploits_donor_checkpoint_that_is_gone(tmp_path, caplog):
    donor_ckpt = tmp_path / "train_t2" / "checkpoint_000001"
    path = tmp_path / "journal.jsonl"
    write(path, [header(), trial("t1"), trial("t2")],
          [ResultReported("t1", {"loss": 1.0, "training_iteration": 1}),
           ConfigChanged("t1", pack({"x": 2}), str(donor_ckpt), 4, 4.0, "t2",
                         "checkpoint_000001")])
    (tmp_path / "train_t1").mkdir()
    donor_ckpt.mkdir(parents=True)
    assert replay_journal(str(path)).trials["t1"].restore_meta["path"] == str(donor_ckpt)
    donor_ckpt.rmdir()
    with caplog.at_level(logging.WARNING, logger="poptune"):
        h = replay_journal(str(path)).trials["t1"]
    assert h.restore_meta is None and h.trial.config == {"x": 2}
    assert any(str(donor_ckpt) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("loggers", [(), ("json", "csv")])
def test_a_trial_recreated_after_repair_cut_its_creation_gets_fresh_files(tmp_path, capsys,
                                                                          monkeypatch, loggers):
    """Whether the engine writes result.json/progress.csv or a user's logger callbacks do."""
    from poptune.logger import CSVLoggerCallback, JsonLoggerCallback

    # the lost run and the restored one name the trial's directory alike (in a real run,
    # when both create it within the same second)
    monkeypatch.setattr("poptune.engine.runner.timestamp", lambda: "2026-12-04_00-00-00")
    # x=1 created after x=0 ended (launching ahead would create it while x=0 runs: cutting
    # its creation would then cut x=0's end too, and x=0 would run again)
    monkeypatch.setenv("POPTUNE_LAUNCH_AHEAD", "0")
    run_two_trials(tmp_path, [{"json": JsonLoggerCallback, "csv": CSVLoggerCallback}[k]()
                              for k in loggers])
    exp = tmp_path / "results" / "exp"
    path = exp / "journal.jsonl"
    raw = lines(path)
    second = json.loads(raw[0])["exp_hex"] + "_00001"
    created = next(i for i, line in enumerate(raw)
                   if line.startswith(b'{"e":"trial"') and second.encode() in line)
    raw[created] = zeroed(raw[created])
    path.write_bytes(b"".join(raw))
    assert cli.main(["repair", str(exp), "--yes"]) == 0
    capsys.readouterr()

    grid = Tuner.restore(str(exp), trainable=train).fit()
    assert starts(tmp_path) == {0: 1, 1: 2}  # created again, from the start
    (again,) = [r for r in grid if r.config["x"] == 1]
    assert [json.loads(line)["v"] for line in open(again.path + "/result.json")] == [1, 2, 3, 4]
    csv_rows = open(again.path + "/progress.csv").read().splitlines()
    assert len(csv_rows) == 5 and csv_rows[0].startswith("v,")  # one header, four rows


def test_readers_report_damage_instead_of_skipping_it(tmp_path, capsys):
    from poptune.analysis import ExperimentAnalysis
    from poptune.dashboard.data import ExperimentView

    exp = tmp_path / "exp"
    exp.mkdir()
    offset = damaged_journal(exp / "journal.jsonl", lambda line: b"{" * (len(line) - 1) + b"\n")
    with pytest.raises(RestoreError, match=f"byte {offset}"):
        ExperimentAnalysis(str(exp))
    view = ExperimentView(str(exp))
    view.refresh()  # the dashboard shows what verifies, and where the damage is
    assert list(view.trials) == ["t1"] and view.num_results == 0
    assert f"byte {offset}" in view.summary()["damage"]
    assert cli.main(["show", str(exp)]) == 0
    assert f"damaged at byte {offset}" in capsys.readouterr().out.replace("\n", "")


@pytest.mark.parametrize("answer, truncated", [("n", False), ("", False), ("y", True)])
def test_repair_asks_before_truncating(tmp_path, monkeypatch, capsys, answer, truncated):
    exp = tmp_path / "exp"
    exp.mkdir()
    path = exp / "journal.jsonl"
    offset = damaged_journal(path, lambda line: b"x" * (len(line) - 1) + b"\n")
    size = os.path.getsize(path)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    assert cli.main(["repair", str(exp)]) == (0 if truncated else 1)
    assert os.path.getsize(path) == (offset if truncated else size)
    assert any(p.startswith("journal.jsonl.damaged-") for p in os.listdir(exp)) == truncated
    if truncated:  # the commits before the damaged one are all there
        assert load_state(str(path)).trials["t1"].results == []
        assert list(load_state(str(path)).trials) == ["t1"]


def test_repair_refuses_while_a_driver_holds_the_experiment(tmp_path, capsys):
    from poptune.storage.lock import LocalLock

    exp = tmp_path / "exp"
    exp.mkdir()
    path = exp / "journal.jsonl"
    damaged_journal(path, lambda line: b"x" * (len(line) - 1) + b"\n")
    size = os.path.getsize(path)
    with LocalLock(str(exp)):  # a live driver (this process, another descriptor)
        assert cli.main(["repair", str(exp), "--yes"]) == 1
        assert "pid" in capsys.readouterr().err
        assert os.path.getsize(path) == size  # nothing cut under the driver
    assert cli.main(["repair", str(exp), "--yes"]) == 0  # released: repaired
    assert os.path.getsize(path) < size
