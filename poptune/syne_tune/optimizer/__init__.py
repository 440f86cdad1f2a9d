"""Syne Tune's ``syne_tune.optimizer`` on poptune: see :mod:`.baselines`."""
