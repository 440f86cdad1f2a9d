import atexit
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("POPTUNE_STORAGE_PATH", os.path.join(ROOT, "test-artifacts", "results"))

# Ray keeps its sessions and the address of the last cluster it started
# (``ray_current_cluster``) under $RAY_TMPDIR/ray, /tmp/ray by default. A cluster a test stops
# can leave that address behind, and a user's next ``ray.init()`` would then try to join a
# cluster that is gone. Every Ray process the tests start (they inherit this environment)
# keeps its state in a directory of this session's, removed when the session ends. The path
# stays short: Ray puts Unix sockets in it.
_RAY_TMP = tempfile.mkdtemp(prefix="ptray", dir="/tmp")
os.environ["RAY_TMPDIR"] = _RAY_TMP
atexit.register(shutil.rmtree, _RAY_TMP, True)
