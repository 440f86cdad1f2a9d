"""Experiment storage: layout, journal, per-trial logs, checkpoints, PBT logs."""
