#!/usr/bin/env bash
# Peak resident memory of loading and evaluating a model (issue 16 item 2; docs/benchmarks.md).
#
#   scripts/bench/load-memory.sh [MODEL_DIR] [RUNS]
#
# MODEL_DIR defaults to models/smollm2-135m (scripts/fetch-base-model.sh), RUNS to 3. For each
# run and each of the f32 directory and a bf16 copy of it (made once under $TMPDIR), prints:
#   - `validator eval` (the model track's loader: whole file read, then converted) under
#     /usr/bin/time -v: its maximum resident set size;
#   - model/tests/it/load_memory.rs's `measure_load_and_eval` (built as the `it` test binary),
#     once with `load_artifact` (file read tensor by tensor) and once with the validator's
#     `read_weights_file` + `load_weights`: resident memory after loading and after evaluating,
#     and a digest of the losses' bits (equal digests: identical results).
# $VALIDATOR_BIN and $IT_BIN override the binaries (default: the debug builds, built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

model="${1:-models/smollm2-135m}"
runs="${2:-3}"
validator="${VALIDATOR_BIN:-target/debug/validator}"
if [ -z "${IT_BIN:-}" ]; then
  IT_BIN=$(cargo test -p subnet-model --locked --test it --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\/it-[^"]*\)".*/\1/p' | tail -1)
fi
[ -x "$validator" ] || cargo build -p subnet-validator --locked
[ -x "$IT_BIN" ] || { echo "load-memory: no test binary (IT_BIN)" >&2; exit 1; }

bf16="${TMPDIR:-/tmp}/load-memory-$(basename "$model")-bf16"
if [ ! -f "$bf16/model.safetensors" ]; then
  rm -rf "$bf16"
  cp -r "$model" "$bf16"
  SUBNET_MEM_MODEL="$bf16" SUBNET_MEM_CONVERT=bf16 \
    "$IT_BIN" load_memory::measure_load_and_eval --exact --ignored --nocapture | grep -a converted
fi

seed=$(printf '11%.0s' {1..32})
peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.0f MiB", $1 / 1024}'; }
for run in $(seq "$runs"); do
  for dir in "$model" "$bf16"; do
    err=$(mktemp)
    /usr/bin/time -v "$validator" eval --model "$dir" --competition competitions/smollm2-135m.toml \
      --seed "$seed" --samples 16 --batch 16 --device cpu --json >"$err.json" 2>"$err"
    echo "run $run $(basename "$dir"): validator eval max RSS $(peak "$err")," \
      "mean loss $(sed -n 's/^{"mean_loss":\([^,]*\),.*/\1/p' "$err.json")"
    for load in file bytes; do
      SUBNET_MEM_MODEL="$dir" SUBNET_MEM_LOAD="$load" /usr/bin/time -v \
        "$IT_BIN" load_memory::measure_load_and_eval --exact --ignored --nocapture >"$err.out" 2>"$err"
      echo "run $run $(basename "$dir"): $(grep -ao 'load=.*' "$err.out") max_rss=$(peak "$err")"
    done
    rm -f "$err" "$err.json" "$err.out"
  done
done
