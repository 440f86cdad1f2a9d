#!/usr/bin/env bash
# Create the benchmark venv (.venv-bench at the repository root) with Ray Tune,
# Optuna, psutil, py-spy and an editable poptune. Kept apart from .venv so that
# the comparison frameworks never leak into the unit-test environment.
#
#   bash bench/setup.sh            # create or update .venv-bench
#   PYTHON=python3.11 bash bench/setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The PBT ConvNet workload needs torch: the CPU build from this machine's disk, first, so
# nothing pulls a CUDA build.
"$VENV/bin/python" -m pip install --quiet torch==2.13.0
cd "$ROOT"
"$VENV/bin/python" -m pip install -r bench/requirements.txt
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("poptune", "ray", "optuna", "psutil"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: NOT INSTALLED")
PY
echo "benchmark venv ready: $VENV"
