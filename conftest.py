"""Session set-up shared by the test suite (``tests/``) and the package's doctests
(``pytest --doctest-modules poptune``): nothing they run writes into the user's home or
leaves files in the machine's temporary directory.

Every process the session starts (trial workers, Ray and Dask, chromium, MLflow, matplotlib,
Keras, the digits cache of the examples) inherits a private ``$HOME`` and XDG directories and
a private ``$TMPDIR``, all removed when the session ends; experiments run without a
``storage_path`` go under ``$TMPDIR/poptune_results`` instead of ``~/poptune_results``
(``test-artifacts/`` keeps only what a run is meant to leave: the dashboard's screenshots).
The private ``$TMPDIR`` takes what a test or doctest cannot clean up itself: the socket
directory of a driver a test kills, ``tempfile.mkdtemp()`` in examples, pytest's own
``tmp_path`` directories. Its path stays short: Unix sockets go in it.
"""

import atexit
import os
import shutil
import tempfile

_TMP = tempfile.mkdtemp(prefix="pt")
#: the machine's own temporary directory (tests/conftest.py checks Ray left nothing there)
os.environ.setdefault("POPTUNE_TEST_MACHINE_TMPDIR", tempfile.gettempdir())
os.environ["TMPDIR"] = _TMP
tempfile.tempdir = None  # recomputed from $TMPDIR by the next gettempdir()
atexit.register(shutil.rmtree, _TMP, True)

os.environ.setdefault("POPTUNE_STORAGE_PATH", os.path.join(_TMP, "poptune_results"))

# comet_ml (imported by tensorboardX whenever it is installed, and the tests import
# tensorboardX themselves) would patch MLflow, Keras, torch, ... for the rest of the session
# and turn the tests' MLflow runs into offline Comet experiments in the working directory.
# poptune's own imports keep it off (tests/top/test_imports.py checks that in a clean process)
os.environ["COMET_DISABLE_AUTO_LOGGING"] = "1"
# ... and, at random one time in two, set up its error reporting to Comet's servers (Sentry),
# whose worker thread then outlives the test that made comet log a warning
os.environ["COMET_ERROR_TRACKING_ENABLE"] = "false"

_HOME = tempfile.mkdtemp(prefix="poptune-test-home-")
os.environ["HOME"] = _HOME
for _var, _sub in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config"),
                   ("XDG_DATA_HOME", ".local/share"), ("XDG_STATE_HOME", ".local/state")):
    os.environ[_var] = os.path.join(_HOME, _sub)
os.environ.pop("POPTUNE_CACHE_DIR", None)  # the examples' data cache: under the private home
atexit.register(shutil.rmtree, _HOME, True)
