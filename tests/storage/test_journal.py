import os

import numpy as np

from poptune.storage.journal import Journal, read_journal


def test_records_round_trip_with_numpy_values(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    j = Journal(path)
    j.append({"e": "result", "r": {"x": np.float32(0.5), "n": np.int64(3), "a": np.arange(2)}})
    j.commit()
    j.close()
    assert list(read_journal(path)) == [{"e": "result", "r": {"x": 0.5, "n": 3, "a": [0, 1]}}]


def test_uncommitted_records_are_not_written(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    j = Journal(path)
    j.append({"e": "a"})
    assert os.path.getsize(path) == 0
    j.commit()
    assert os.path.getsize(path) > 0


def test_partial_last_line_is_ignored_and_cut_on_reopen(tmp_path):
    path = str(tmp_path / "journal.jsonl")
    j = Journal(path)
    j.append({"e": "a"})
    j.close()
    with open(path, "ab") as f:
        f.write(b'{"e":"trunc')  # driver killed mid-write
    assert list(read_journal(path)) == [{"e": "a"}]
    j2 = Journal(path)
    j2.append({"e": "b"})
    j2.close()
    assert list(read_journal(path)) == [{"e": "a"}, {"e": "b"}]
