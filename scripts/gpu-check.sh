#!/usr/bin/env bash
# The CUDA path, checked on a real GPU: the HF parity fixtures, the eval and generation
# benchmarks against PyTorch on the same GPU in the same run, and one table at the end.
#
#   scripts/gpu-check.sh            # build, then run (a machine with a GPU, cargo and crates.io)
#   scripts/gpu-check.sh build      # build the CUDA binaries into .gpu-check/bin (no GPU needed)
#   scripts/gpu-check.sh run [OUT]  # run them (a machine with an NVIDIA GPU, python3 with torch
#                                   # and transformers); logs and summary.md go to OUT
#
# `build` compiles `bench_eval`, `bench_generate` and the model crate's integration tests with
# `--features cuda` (release) and copies them, stripped, to .gpu-check/bin and into
# .gpu-check/bin.tar.gz, so a GPU machine without a Rust toolchain or registry access can run
# them (`run` unpacks the archive when the binaries are not there). burn's CUDA backend loads libcuda
# and NVRTC at run time; `run` puts the first NVRTC it finds on LD_LIBRARY_PATH.
#
# `run` checks, each step under a time limit:
#   1. the HF parity tests (tests/it/hf_interop.rs) with SUBNET_TEST_DEVICE=cuda: burn on the
#      GPU against transformers' logits (1e-4) and losses (1e-5 relative);
#   2. eval throughput, 8 x 256 tokens, on the 6 x 256 model and on SmolLM2-135M's shapes
#      (random weights): burn CUDA (`bench_eval --device cuda`) against PyTorch CUDA
#      (`model/scripts/bench_torch.py --device cuda`, TF32 off);
#   3. per-sample losses of the SmolLM2-shaped model, torch's weights loaded into burn on the GPU,
#      against torch on the GPU, and burn's losses from a second process bit for bit against the
#      first's;
#   4. greedy generation (64 + 64 tokens) with the key/value cache, burn CUDA against
#      transformers' `generate` on CUDA;
#   5. greedy answers generated on the GPU checked by `verify_greedy` on the CPU, as a CPU
#      validator's spot-check does (`greedy_parity`, on the transformers fixtures).
# burn multiplies f32 matrices in TF32 on the GPU, so PyTorch runs with TF32 off (full f32) and
# again with it on.
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (to try the script without a GPU),
# GPU_CHECK_ITERATIONS sets the eval iterations (default 10), PYTHON the interpreter with torch.
set -uo pipefail
cd "$(dirname "$0")/.."

bin=.gpu-check/bin

build() {
  set -e
  mkdir -p "$bin"
  cargo build --release --locked -p subnet-model --features cuda --example bench_eval \
    --example bench_generate --example greedy_parity
  local tests
  tests=$(cargo test --release --locked -p subnet-model --features cuda --test it --no-run 2>&1 |
    tee /dev/stderr | sed -n 's/.*Executable .*(\(target\/[^)]*\)).*/\1/p' | tail -1)
  [ -n "$tests" ] || { echo "gpu-check: could not find the test binary" >&2; exit 1; }
  cp target/release/examples/bench_eval target/release/examples/bench_generate \
    target/release/examples/greedy_parity "$bin/"
  cp "$tests" "$bin/model-it"
  strip "$bin"/*
  # One archive of them, small enough to copy to a GPU machine (about 23 MB).
  tar -czf .gpu-check/bin.tar.gz -C .gpu-check bin
  ls -l "$bin" .gpu-check/bin.tar.gz
  set +e
}

run() {
  local out="${1:-${OUT:-/tmp/gpu-check}}"
  mkdir -p "$out"
  if [ ! -x "$bin/model-it" ] && [ -f .gpu-check/bin.tar.gz ]; then
    tar -xzf .gpu-check/bin.tar.gz -C .gpu-check
  fi
  for b in bench_eval bench_generate greedy_parity model-it; do
    [ -x "$bin/$b" ] || { echo "gpu-check: $bin/$b is missing: run scripts/gpu-check.sh build first" >&2; exit 1; }
  done
  local nvrtc
  nvrtc=$(find /usr/local /usr/lib /opt -name 'libnvrtc.so*' 2>/dev/null | grep -v stub | head -1)
  if [ -n "$nvrtc" ]; then
    export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  echo "NVRTC: ${nvrtc:-not found}" | tee "$out/env.txt"
  (ldconfig -p 2>/dev/null | grep -E 'libcuda\.so' | head -2) | tee -a "$out/env.txt"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$out/env.txt"
  "${PYTHON:-python3}" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$out/env.txt"

  step() { # name, limit in seconds, command...
    local name=$1 limit=$2
    shift 2
    echo "==> $name"
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    cat "$out/$name.txt"
    echo "$rc" >"$out/$name.rc"
  }
  local dev="${GPU_CHECK_DEVICE:-cuda}" n="${GPU_CHECK_ITERATIONS:-10}"
  step parity 120 env SUBNET_TEST_DEVICE="$dev" SUBNET_MODEL_FIXTURES="$PWD/model/tests/fixtures" \
    "$bin/model-it" hf_ --test-threads 1 --nocapture
  step torch_eval_6x256 60 "${PYTHON:-python3}" model/scripts/bench_torch.py "$n" --device "$dev" --shape 6x256
  step burn_eval_6x256 120 "$bin/bench_eval" "$n" --device "$dev" --shape 6x256
  local model="$out/smollm2-random"
  step torch_eval_smollm2 90 "${PYTHON:-python3}" model/scripts/bench_torch.py "$n" --device "$dev" --shape smollm2 --save "$model"
  step burn_eval_smollm2 150 "$bin/bench_eval" "$n" --device "$dev" --model "$model" --losses-out "$out/burn_losses.json"
  step burn_eval_smollm2_again 90 "$bin/bench_eval" 1 --device "$dev" --model "$model" --losses-out "$out/burn_losses_again.json"
  step loss_parity 60 "${PYTHON:-python3}" model/scripts/bench_torch.py 1 --device "$dev" --load "$model" --compare "$out/burn_losses.json"
  rm -rf "$model"
  step torch_generate_smollm2 60 "${PYTHON:-python3}" model/scripts/bench_torch.py 3 --device "$dev" --shape smollm2 --generate
  if [ "$dev" = cuda ]; then
    step torch_eval_smollm2_tf32 90 "${PYTHON:-python3}" model/scripts/bench_torch.py "$n" --device cuda --shape smollm2 --tf32
    step torch_generate_smollm2_tf32 60 "${PYTHON:-python3}" model/scripts/bench_torch.py 3 --device cuda --shape smollm2 --generate --tf32
  fi
  step burn_generate_smollm2 150 "$bin/bench_generate" 3 --device "$dev" --shape smollm2
  for m in hf-tiny hf-tiny-tied; do
    step "greedy_$m" 120 "$bin/greedy_parity" --device "$dev" --model "model/tests/fixtures/$m" --prompts 256
  done
  "${PYTHON:-python3}" scripts/gpu-check-summary.py "$out" | tee "$out/summary.md"
}

case "${1:-all}" in
  build) build ;;
  run) shift; run "$@" ;;
  all) build && run ;;
  *) echo "usage: scripts/gpu-check.sh [build | run [OUT] | all]" >&2; exit 2 ;;
esac
