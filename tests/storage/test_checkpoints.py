import os

from poptune.storage.checkpoints import TrialCheckpoints


def m(i, acc):
    return {"training_iteration": i, "acc": acc}


def test_keeps_everything_without_num_to_keep():
    c = TrialCheckpoints()
    for i in range(5):
        assert c.add(f"c{i}", m(i, i)) == []
    assert len(c.records) == 5


def test_keeps_most_recent_by_default():
    c = TrialCheckpoints(num_to_keep=2)
    deleted = [p for i in range(4) for p in c.add(f"c{i}", m(i, 0))]
    assert deleted == ["c0", "c1"]
    assert [r.path for r in c.records] == ["c2", "c3"]


def test_keeps_best_by_score_plus_latest():
    c = TrialCheckpoints(num_to_keep=1, score_attribute="acc", score_order="max")
    c.add("c0", m(0, 0.9))
    assert c.add("c1", m(1, 0.1)) == []  # c1 is the latest: the trial may restore from it
    assert c.add("c2", m(2, 0.2)) == ["c1"]
    assert [r.path for r in c.records] == ["c0", "c2"]


def test_pinned_checkpoints_are_never_deleted():
    pinned = {"c0"}
    c = TrialCheckpoints(num_to_keep=1, is_pinned=lambda p: p in pinned)
    for i in range(4):
        c.add(f"c{i}", m(i, 0))
    assert [r.path for r in c.records] == ["c0", "c3"]
    pinned.clear()
    assert c.collect() == ["c0"]


def test_nan_scores_rank_last():
    c = TrialCheckpoints(num_to_keep=1, score_attribute="acc", score_order="min")
    c.add("c0", m(0, 0.5))
    c.add("c1", m(1, float("nan")))  # kept only because it is the latest
    assert c.add("c2", m(2, 0.7)) == ["c1"]


def test_a_file_uri_checkpoint_is_the_local_directory(tmp_path):
    """``Checkpoint("file:///...")`` (Ray accepts it) is read in place, without fsspec."""
    from poptune.checkpoint import Checkpoint

    (tmp_path / "w.txt").write_text("weights")
    ckpt = Checkpoint(f"file://{tmp_path}")
    with ckpt.as_directory() as d:
        assert d == str(tmp_path) and open(os.path.join(d, "w.txt")).read() == "weights"
    out = ckpt.to_directory(str(tmp_path / "copy"))
    assert open(os.path.join(out, "w.txt")).read() == "weights"
