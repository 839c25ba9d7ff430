#!/usr/bin/env bash
# Makes .venv with the real bittensor SDK (11.3.0) and bittensor-drand (2.0.0, the SDK's timelock
# encryption for commit-reveal v4) for the interop tests. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want=11.3.0
drand=2.0.0
if [ -x .venv/bin/python ] && .venv/bin/python -c "import bittensor, sys; sys.exit(bittensor.__version__ != '$want')" 2>/dev/null; then
  if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('bittensor-drand') != '$drand')" 2>/dev/null; then
    .venv/bin/pip install -q --disable-pip-version-check "bittensor-drand==$drand"
  fi
  exit 0
fi
if ! command -v "$PY" >/dev/null; then
  echo "setup-python: $PY not found; installing python3 (apt)" >&2
  apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
fi
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c "import ensurepip" 2>/dev/null; then
  echo "setup-python: the venv module is missing; installing python3-venv (apt)" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
rm -rf .venv
"$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check "bittensor==$want" "bittensor-drand==$drand"
.venv/bin/python -c "import bittensor; print('setup-python: bittensor', bittensor.__version__, 'in .venv')"
