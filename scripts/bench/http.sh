#!/usr/bin/env bash
# Signed-request throughput of the miner vs the Python reference server (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup-python.sh
.venv/bin/pip install -q --disable-pip-version-check fastapi uvicorn
export SUBNET_PYTHON="$PWD/.venv/bin/python"
cargo bench -p subnet-miner --bench identity_http --no-run
# Load generator on CPU 0, servers on CPU 1 (when the machine has two or more cores).
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  BENCH_SERVER_CPUS=1 taskset -c 0 cargo bench -p subnet-miner --bench identity_http
else
  cargo bench -p subnet-miner --bench identity_http
fi
