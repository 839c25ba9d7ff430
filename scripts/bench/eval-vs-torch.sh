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
# seconds per batch of the table row whose first cell starts with $1, from stdin
seconds() { awk -F'|' -v row="$1" 'index($2, " " row) == 1 { gsub(/ /, "", $3); print $3 }'; }
ratios=""
for round in $(seq 1 "$runs"); do
  for shape in $shapes; do
    iterations=3
    [ "$shape" = smollm2 ] && iterations=1
    echo "== round $round, $shape"
    burn=$(target/release/examples/bench_eval "$iterations" --shape "$shape")
    echo "$burn"
    torch=$("$venv/bin/python" model/scripts/bench_torch.py "$iterations" 2 --shape "$shape")
    echo "$torch"
    sdpa=$(echo "$torch" | seconds sdpa)
    forward=$(echo "$burn" | seconds forward)
    fitted=$(echo "$burn" | seconds evaluate_fitted)
    ratios+=$(awk -v s="$sdpa" -v f="$forward" -v e="$fitted" -v shape="$shape" -v r="$round" \
      'BEGIN { printf "| %s | %d | %.2fx | %.2fx |\n", shape, r, s / f, s / e }')$'\n'
  done
done
echo "uptime: $(uptime)"
echo
echo "burn against PyTorch (sdpa forward) on the same batch, higher is faster;"
echo "issue 16's targets: >= 1.0x on smollm2, >= 0.8x on 6x256"
echo "| shape | round | burn forward | burn evaluate_fitted (the validator's) |"
echo "|---|---|---|---|"
printf '%s' "$ratios"
