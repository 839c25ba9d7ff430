#!/usr/bin/env bash
# The project's test command (README). CI runs it through .ci/run.
# Installs what the tests need when missing, then: fmt check, clippy -D warnings,
# the cuda feature compile check, every test (unit, integration, interop with the real SDK), then
# scripts/readme-guides.sh (every README command run against real processes).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done

step "python venv with bittensor 11.3.0 (interop tests)"
bash scripts/setup-python.sh
export SUBNET_PYTHON="$PWD/.venv/bin/python"

if [ -f scripts/setup-postgres.sh ]; then
  step "postgres"
  # shellcheck disable=SC1091
  source scripts/setup-postgres.sh
fi

step "chromium + chromedriver (labeler form browser test)"
if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium chromium-driver
fi
/usr/bin/chromedriver --version

step "jq, curl, psql (README guides)"
missing=()
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cuda feature compiles"
cargo check -p subnet-model --features cuda --locked

step "the real base model (scripts/fetch-base-model.sh --gguf-only)"
bash scripts/fetch-base-model.sh --gguf-only

step "the SDK's recorded Subtensor chain data (scripts/fetch-subtensor-fixtures.sh)"
bash scripts/fetch-subtensor-fixtures.sh

step "tests"
cargo test --workspace --locked "$@"

step "README guides (scripts/readme-guides.sh)"
bash scripts/readme-guides.sh
