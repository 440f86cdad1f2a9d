"""The trial-file writer process: ``python -m poptune.storage._files_process FD``.

Started by :class:`~poptune.storage.trial_files.TrialFiles` with one end of a socket pair as
file descriptor ``FD``; it exits when the driver closes its end, or dies: unlike a trial's
worker it is not killed with the driver, so what the driver sent before it died is written.
"""

from __future__ import annotations

import signal
import socket
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's business
    from poptune.storage.trial_files import serve

    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(sock)
    except (ConnectionError, OSError):
        pass  # the driver is gone
    finally:
        sock.close()


if __name__ == "__main__":
    main()
