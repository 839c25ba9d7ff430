#!/usr/bin/env bash
# Signed-request throughput of the miner vs the Python reference server (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup-python.sh
.venv/bin/pip install -q --disable-pip-version-check fastapi uvicorn
export SUBNET_PYTHON="$PWD/.venv/bin/python"
cargo bench -p subnet-miner --bench identity_http
