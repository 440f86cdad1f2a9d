"""The engine: trial records, the pure controller state machine and the runner that drives it."""
