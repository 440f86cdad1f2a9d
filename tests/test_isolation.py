"""The test session writes nothing into the user's home and leaves nothing in the machine's
temporary directory (the root conftest.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

from poptune.config import default_storage_path


def test_home_and_xdg_directories_are_private_to_the_session():
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    home = os.environ["HOME"]
    assert os.path.realpath(home) != os.path.realpath(real_home) and os.path.isdir(home)
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert os.environ[var].startswith(home + os.sep), var
    # a child process (a worker, chromium, a Ray daemon) sees the same private home
    out = subprocess.run([sys.executable, "-c", "import os; print(os.path.expanduser('~'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == home


def test_experiments_without_a_storage_path_do_not_go_to_the_users_home():
    # $TMPDIR/poptune_results, set by the conftest (or a path the user set before the run)
    assert os.environ.get("POPTUNE_STORAGE_PATH")
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    assert default_storage_path() != os.path.join(real_home, "poptune_results")


def test_the_temporary_directory_is_private_to_the_session():
    import tempfile

    # the root conftest's $TMPDIR: what tests leave there is removed when the session ends
    tmp = os.environ["TMPDIR"]
    assert os.path.basename(tmp).startswith("pt") and os.path.isdir(tmp)
    assert tempfile.gettempdir() == tmp
    assert os.path.dirname(os.path.realpath(tempfile.mkdtemp())) == os.path.realpath(tmp)
    out = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == tmp
