#!/usr/bin/env bash
# CPU evaluation throughput, burn against PyTorch in the same run (issue 16; docs/benchmarks.md).
#
#   scripts/bench/eval-vs-torch.sh [RUNS] [SHAPES]
#
# RUNS (default 3) alternating rounds; SHAPES (default "6x256 smollm2"). Each round runs, per
# shape, `bench_eval` (burn, the CPU backend) and `model/scripts/bench_torch.py` (torch +
# transformers, 2 threads), one after the other, so both see the same machine. torch is ~5 GB:
# it lives in its own venv under ~/.cache/subnet/torch-venv (made on first use, never in CI).
# Check `uptime` first: a loaded machine distorts the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
shapes=${2:-"6x256 smollm2"}
case "$runs" in
  ''|*[!0-9]*) echo "eval-vs-torch: RUNS must be a number, not \`$runs\` (usage: $0 [RUNS] [SHAPES])" >&2; exit 2 ;;
esac
for shape in $shapes; do
  case "$shape" in
    6x256|smollm2) ;;
    *) echo "eval-vs-torch: unknown shape \`$shape\` (expected 6x256 or smollm2)" >&2; exit 2 ;;
  esac
done
venv="${TORCH_VENV:-$HOME/.cache/subnet/torch-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, transformers' 2>/dev/null; then
  echo "eval-vs-torch: installing torch and transformers into $venv (several GB, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check torch transformers safetensors
fi
cargo build --release -p subnet-model --example bench_eval
echo "uptime: $(uptime)"
"$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
for round in $(seq 1 "$runs"); do
  for shape in $shapes; do
    iterations=3
    [ "$shape" = smollm2 ] && iterations=1
    echo "== round $round, $shape"
    target/release/examples/bench_eval "$iterations" --shape "$shape"
    "$venv/bin/python" model/scripts/bench_torch.py "$iterations" 2 --shape "$shape"
  done
done
echo "uptime: $(uptime)"
