"""``python -m poptune``: the same as the ``poptune`` command (see :mod:`poptune.cli`)."""

import sys

from poptune.cli import main

sys.exit(main())
