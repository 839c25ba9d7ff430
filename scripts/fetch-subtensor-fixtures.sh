#!/usr/bin/env bash
# Fetches the bittensor 11.3.0 sdist from PyPI (cached) and prints the path of its recorded chain
# data, tests/fixtures/golden.json: the spec-461 runtime metadata of a Subtensor test chain with
# calls, signing payloads, extrinsics, storage and runtime-call results the SDK recorded. The
# subtensor crate's parity tests read it (`SUBNET_SUBTENSOR_GOLDEN` overrides the path).
#
#   scripts/fetch-subtensor-fixtures.sh      # prints .../bittensor-11.3.0/tests/fixtures/golden.json
#
# The tarball is pinned by its sha256 and kept in $SUBNET_CACHE_DIR (default ~/.cache/subnet), so a
# second run downloads nothing. Nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

version=11.3.0
sdist_sha256=8ce05029a712866048c6cf3e3d5df1592ac896175f5b4227f63044b7e7b7edb3
cache="${SUBNET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/subnet}/bittensor-sdist"
tarball="$cache/bittensor-$version.tar.gz"
golden="$cache/bittensor-$version/tests/fixtures/golden.json"

if [ ! -f "$golden" ]; then
  mkdir -p "$cache"
  if [ ! -f "$tarball" ]; then
    echo "fetch-subtensor-fixtures: downloading the bittensor==$version sdist from PyPI into $cache" >&2
    python=python3
    [ -x .venv/bin/python ] && python=.venv/bin/python
    "$python" -m pip download --quiet --no-binary :all: --no-deps --dest "$cache" "bittensor==$version"
  fi
  if ! echo "$sdist_sha256  $tarball" | sha256sum --check --status; then
    echo "fetch-subtensor-fixtures: $tarball does not have the pinned sha256 $sdist_sha256; delete it and retry" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$cache" "bittensor-$version/tests/fixtures/golden.json"
fi
echo "$golden"
