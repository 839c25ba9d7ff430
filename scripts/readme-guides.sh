#!/usr/bin/env bash
# Walks README.md's guides as a newcomer would, with the debug binaries of
# `cargo build --bins --locked`, against a real `devchain node`, a miner and a validator on
# loopback and Postgres ($DATABASE_URL, else scripts/setup-postgres.sh). Each step prints
# "ok: <command>"; the first broken step stops the script with that step's output.
# At the end, every `devchain|miner|validator|devnet <subcommand>` written in README.md must
# have been run here (so the README gains no untested command). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/debug

WORK=$(mktemp -d -t readme-guides.XXXXXX)
RAN=$WORK/ran-commands.txt
: >"$RAN"
PIDS=()
DBS=()
PG_URL=""

cleanup() {
  local pid
  # Each service leads its own process group (setsid): the group goes, helpers included.
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # A group that ignores SIGTERM for 10 s is killed.
    for _ in $(seq 1 50); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [ -n "$PG_URL" ]; then
    local db
    for db in "${DBS[@]}"; do
      psql "$PG_URL" -qAtc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# Records a command line (binary name, then its words) for the README coverage check.
record() {
  local first=$1
  shift
  printf '%s %s\n' "$(basename "$first")" "$*" >>"$RAN"
}

# step CMD ARGS...: runs it, prints "ok: CMD ARGS" or its output and fails.
# The output is left in $WORK/out for the caller.
step() {
  record "$@"
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok: $(basename "$1") ${*:2}"
  else
    local rc=$?
    cat "$WORK/out" >&2
    fail "$(basename "$1") ${*:2} (exit $rc)"
  fi
}

# fails PATTERN CMD ARGS...: the command must exit non-zero with PATTERN in its output.
fails() {
  local pattern=$1
  shift
  record "$@"
  if "$@" >"$WORK/out" 2>&1; then
    cat "$WORK/out" >&2
    fail "$(basename "$1") ${*:2} succeeded; expected an error naming '$pattern'"
  fi
  grep -qF -- "$pattern" "$WORK/out" || {
    cat "$WORK/out" >&2
    fail "$(basename "$1") ${*:2}: the error does not name '$pattern'"
  }
  echo "ok: $(basename "$1") ${*:2} (fails: $(grep -F -- "$pattern" "$WORK/out" | head -n 1))"
}

# background NAME CMD ARGS...: starts a service in its own process group, its log in
# $WORK/NAME.log; its pid (= process group id) is appended to PIDS.
background() {
  local name=$1
  shift
  record "$@"
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "ok: $(basename "$1") ${*:2} (started, pid $!)"
}

# wait_http URL SECONDS LOG: until URL answers 2xx.
wait_http() {
  local url=$1 secs=$2 log=$3
  for _ in $(seq 1 $((secs * 5))); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  cat "$log" >&2
  fail "$url did not answer within ${secs}s"
}

# check_curl URL [PATTERN]: GET, 2xx, body contains PATTERN.
check_curl() {
  local url=$1 pattern=${2:-}
  curl -fsS "$url" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; fail "curl $url"; }
  if [ -n "$pattern" ] && ! grep -qF -- "$pattern" "$WORK/out"; then
    head -c 2000 "$WORK/out" >&2
    fail "curl $url: no '$pattern' in the body"
  fi
  echo "ok: curl -s $url"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

devchain() { step "$BIN/devchain" "$@"; }
miner() { step "$BIN/miner" "$@"; }
validator() { step "$BIN/validator" "$@"; }

for tool in curl jq psql python3 setsid; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "$tool not found (scripts/test.sh installs jq, curl and postgresql-client when missing)"
done
echo "readme-guides: working in $WORK"
started=$SECONDS

# --- build ---------------------------------------------------------------------------------
step cargo build --bins --locked

# --- Postgres ------------------------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
  # shellcheck disable=SC1091
  source scripts/setup-postgres.sh >/dev/null
fi
PG_URL=$DATABASE_URL
psql "$PG_URL" -qAtc 'select 1' >/dev/null || fail "no Postgres at \$DATABASE_URL ($PG_URL); run scripts/setup-postgres.sh"
db_url() { printf '%s/%s' "${PG_URL%/*}" "$1"; }
for db in validator miner; do
  name="readme_guides_$$_$db"
  psql "$PG_URL" -qAtc "create database $name" >/dev/null
  DBS+=("$name")
done
VALIDATOR_DB=$(db_url "readme_guides_$$_validator")
MINER_DB=$(db_url "readme_guides_$$_miner")
echo "ok: databases ${DBS[*]}"

cd "$WORK"
export BT_WALLET_PATH=$WORK/wallets

# --- The two commands: devnet --help lists the knobs ----------------------------------------
step "$BIN/devnet" --help
for knob in --epochs --miners --validators --tempo --block-time-ms --db.url --keep --competition; do
  grep -qF -- "$knob" "$WORK/out" || fail "devnet --help does not list $knob"
done

# --- Errors a newcomer meets ---------------------------------------------------------------
fails "--no-such-flag" "$BIN/miner" serve --no-such-flag
fails "$WORK/missing-model" "$BIN/validator" eval --model "$WORK/missing-model" \
  --seed "$(printf '%064d' 0)" --samples 4
fails "$WORK/missing.json" "$BIN/devchain" simulate "$WORK/missing.json"
fails "no built-in competition" "$BIN/devnet" --competition smollm3
fails "$WORK/no-base" "$BIN/devnet" --competition smollm2-135m --base-model "$WORK/no-base"

# --- Guide: a local chain by hand ----------------------------------------------------------
PORT=$(free_port)
export BT_SUBTENSOR_CHAIN_ENDPOINT=http://127.0.0.1:$PORT
CHAIN=$BT_SUBTENSOR_CHAIN_ENDPOINT
devchain genesis --dev --out "$WORK/genesis.json"
devchain genesis --dev --tempo 20 --out "$WORK/genesis20.json"
grep -q '"tempo": *20' "$WORK/genesis20.json" || fail "genesis --tempo 20 is not in the file"
background chain "$BIN/devchain" node --genesis "$WORK/genesis20.json" --data "$WORK/chain" \
  --rpc.addr "127.0.0.1:$PORT"
wait_http "$CHAIN/health" 60 "$WORK/chain.log"
devchain metagraph --netuid 1
devchain metagraph --netuid 1 --json
jq -e '.neurons | length >= 1' "$WORK/out" >/dev/null || fail "metagraph --json has no neurons"
devchain tx --help
for call in register add-stake transfer serve-axon commit set-weights commit-weights \
  reveal-weights set-hyperparameter; do
  grep -qF -- "$call" "$WORK/out" || fail "devchain tx --help does not list $call"
done

# --- Guide: subnet owner -------------------------------------------------------------------
devchain tx set-hyperparameter --netuid 1 --name tempo --value 30 --uri //Alice
fails "owner" "$BIN/devchain" tx set-hyperparameter --netuid 1 --name tempo --value 30 --uri //Bob
devchain tx set-hyperparameter --netuid 1 --name tempo --value 20 --uri //Alice
cat >"$WORK/design.json" <<'EOF'
{"n": 4, "stakes": [9, 1, 0, 0],
 "epochs": [{"weights": [[0, [[2, 65535]]], [1, [[3, 65535]]]]}, {"weights": []}]}
EOF
devchain simulate "$WORK/design.json"
jq -e '.. | objects | select(has("incentive")) | .incentive | length == 4' "$WORK/out" >/dev/null ||
  fail "simulate prints no incentive per uid"

# --- Guide: mine ---------------------------------------------------------------------------
miner keys --wallet.name me --wallet.hotkey m1 new-hotkey
MNEMONIC=$(grep -E '^    [a-z]+( [a-z]+){11,23}$' "$WORK/out" | sed 's/^ *//')
[ -n "$MNEMONIC" ] || fail "keys new-hotkey printed no mnemonic"
miner keys --wallet.name me --wallet.hotkey m1 show
MINER_SS58=$(sed -n 's/^ss58 address: *//p' "$WORK/out")
miner keys --wallet.name me --wallet.hotkey restored regen-hotkey --mnemonic "$MNEMONIC"
miner keys --wallet.name me --wallet.hotkey restored show
[ "$(sed -n 's/^ss58 address: *//p' "$WORK/out")" = "$MINER_SS58" ] ||
  fail "regen-hotkey restored another key"
# An encrypted coldkey, as btcli makes one. No terminal here, so the password comes from the
# SDK's BT_PW_<keyfile path> variable (base64 of the password XOR-ed with the variable's name).
# Its name follows the path, so the wallets go where the path makes a shell name (no '-').
COLD_WALLETS=$(mktemp -d /tmp/coldwalletsXXXXXX)
COLD_VAR="BT_PW_$(printf %s "$COLD_WALLETS/me/coldkey" | tr '/.' '__' | tr '[:lower:]' '[:upper:]')"
export "$COLD_VAR=$(python3 -c 'import base64, sys; n, p = sys.argv[1], sys.argv[2].encode(); print(base64.b64encode(bytes(b ^ ord(n[i % len(n)]) for i, b in enumerate(p))).decode())' "$COLD_VAR" guide-pass)"
miner keys --wallet.path "$COLD_WALLETS" --wallet.name me new-coldkey
grep -q '^encrypted: *yes' "$WORK/out" || fail "keys new-coldkey wrote no encrypted coldkey"
COLD_SS58=$(sed -n 's/^ss58 address: *//p' "$WORK/out")
miner keys --wallet.path "$COLD_WALLETS" --wallet.name me --wallet.hotkey m1 new-hotkey
miner keys --wallet.path "$COLD_WALLETS" --wallet.name me --wallet.hotkey m1 show
grep -q "^coldkey: *$COLD_SS58" "$WORK/out" || fail "keys show does not name the new coldkey"
unset "$COLD_VAR"
rm -rf "$COLD_WALLETS"
miner register --chain.url "$CHAIN" --netuid 1 --wallet.name me --wallet.hotkey m1 --coldkey-uri //Alice

# Validate guide, step 1, done early: the miner's snapshot of registered callers then has it.
validator keys --wallet.name my_validator --wallet.hotkey default new-hotkey
validator keys --wallet.name my_validator --wallet.hotkey default show
VALIDATOR_SS58=$(sed -n 's/^ss58 address: *//p' "$WORK/out")
devchain tx register --netuid 1 --hotkey "$VALIDATOR_SS58" --uri //Bob
devchain tx add-stake --netuid 1 --hotkey "$VALIDATOR_SS58" --amount 1000 --uri //Bob

miner init-base --out base/ --preset tiny
miner finetune --base base/ --out mine/ --steps 3
validator eval --model mine/ --seed "$(printf 'ab%.0s' $(seq 1 32))" --samples 8
miner commit --model.dir mine/ --chain.url "$CHAIN" --netuid 1 --wallet.name me --wallet.hotkey m1

# The quick start: serve without a chain (any signed caller), then stop it.
INSECURE_PORT=$(free_port)
miner serve --wallet.name me --wallet.hotkey m1 --axon.port "$INSECURE_PORT" --insecure-no-chain --dump-config
background insecure-miner "$BIN/miner" serve --wallet.name me --wallet.hotkey m1 \
  --axon.port "$INSECURE_PORT" --insecure-no-chain
wait_http "http://127.0.0.1:$INSECURE_PORT/health" 60 "$WORK/insecure-miner.log"
grep -qi "insecure" "$WORK/insecure-miner.log" || fail "--insecure-no-chain logged no warning"
kill -TERM -- "-${PIDS[-1]}"
wait "${PIDS[-1]}" || true

AXON_PORT=$(free_port)
miner serve --model.dir mine/ --chain.url "$CHAIN" --netuid 1 --wallet.name me --wallet.hotkey m1 \
  --axon.port "$AXON_PORT" --db.url "$MINER_DB" --dump-config
grep -qF "$AXON_PORT" "$WORK/out" || fail "serve --dump-config does not show the port"
background miner "$BIN/miner" serve --model.dir mine/ --chain.url "$CHAIN" --netuid 1 \
  --wallet.name me --wallet.hotkey m1 --axon.port "$AXON_PORT" --db.url "$MINER_DB" \
  --label.reading-speed 0
AXON=http://127.0.0.1:$AXON_PORT
wait_http "$AXON/health" 120 "$WORK/miner.log"
check_curl "$AXON/health" "$MINER_SS58"

miner labelers add alice --db.url "$MINER_DB" --label.base-url "$AXON"
grep -qF "$AXON/label/" "$WORK/out" || fail "labelers add printed no sign-in link"
miner labelers list --db.url "$MINER_DB"
grep -qF alice "$WORK/out" || fail "labelers list does not show alice"

# --- Guide: validate -----------------------------------------------------------------------
validator query "$AXON/v1/identity" --receiver "$MINER_SS58" \
  --wallet.name my_validator --wallet.hotkey default
grep -qF "$MINER_SS58" "$WORK/out" || fail "/v1/identity does not name the miner's hotkey"
fails "--receiver" "$BIN/validator" query "$AXON/v1/identity" --wallet.name my_validator

# A permit comes with the next epoch after the stake.
for _ in $(seq 1 120); do
  "$BIN/devchain" metagraph --netuid 1 --json >"$WORK/mg.json" 2>&1 || true
  jq -e --arg h "$VALIDATOR_SS58" \
    '.neurons[] | select(.hotkey == $h) | .validator_permit == true' "$WORK/mg.json" >/dev/null 2>&1 && break
  sleep 0.5
done
validator doctor --chain.url "$CHAIN" --db.url "$VALIDATOR_DB" \
  --wallet.name my_validator --wallet.hotkey default --device cpu

# Debug builds evaluate slowly: the built-in competition with fewer eval samples (same id).
sed 's/^samples = .*/samples = 16/' "$ROOT/competitions/default.toml" >"$WORK/competition.toml"
HTTP_PORT=$(free_port)
validator run --chain.url "$CHAIN" --db.url "$VALIDATOR_DB" --wallet.name my_validator \
  --wallet.hotkey default --http.port "$HTTP_PORT" --device cpu --dump-config
grep -qF "$HTTP_PORT" "$WORK/out" || fail "run --dump-config does not show the port"
# The models are evaluated by a `validator worker` through the validator's database (guide step 6).
fails "--db.url" "$BIN/validator" worker --db.url postgres://nobody@127.0.0.1:1/none \
  --wallet.name my_validator --wallet.hotkey default --device cpu
background validator "$BIN/validator" run --chain.url "$CHAIN" --db.url "$VALIDATOR_DB" \
  --wallet.name my_validator --wallet.hotkey default --http.port "$HTTP_PORT" --device cpu \
  --competition "$WORK/competition.toml" --labels.truth-dir "$WORK/truth" --workers.enabled true
VALIDATOR_PID=${PIDS[-1]}
background worker "$BIN/validator" worker --db.url "$VALIDATOR_DB" --wallet.name my_validator \
  --wallet.hotkey default --device cpu
DASH=http://127.0.0.1:$HTTP_PORT
wait_http "$DASH/health" 120 "$WORK/validator.log"

# The simulated labeler answers the validator's tasks while the epoch runs.
background labeler bash -c "while true; do '$BIN/miner' labelers simulate --accuracy 0.9 \
  --truth-dir '$WORK/truth' --db.url '$MINER_DB' --url '$AXON' --name sim --count 50 || true; \
  sleep 1; done"
miner labelers simulate --accuracy 0.9 --truth-dir "$WORK/truth" --db.url "$MINER_DB" \
  --url "$AXON" --count 1

# Until the validator has stored an epoch in which the model and the labels were scored.
EPOCH=""
for _ in $(seq 1 300); do
  if curl -fsS "$DASH/api/epochs" >"$WORK/epochs.json" 2>/dev/null &&
    jq -e '.epochs | length > 0' "$WORK/epochs.json" >/dev/null; then
    curl -fsS "$DASH/api/leaderboard" >"$WORK/leaderboard.json" 2>/dev/null || true
    if jq -e --arg h "$MINER_SS58" '.rows[] | select(.hotkey == $h) | .outcome == "ok" and .model_score > 0 and .label_score > 0' \
      "$WORK/leaderboard.json" >/dev/null 2>&1; then
      EPOCH=$(jq -r '.epochs[0].epoch' "$WORK/epochs.json")
      break
    fi
  fi
  kill -0 "$VALIDATOR_PID" 2>/dev/null || { cat "$WORK/validator.log" >&2; fail "validator run exited"; }
  sleep 1
done
[ -n "$EPOCH" ] || { tail -n 40 "$WORK/validator.log" >&2; fail "validator run scored no epoch with the model and labels in 300 s"; }
echo "ok: validator run stored epoch $EPOCH with the model and labels scored ($(jq -c --arg h "$MINER_SS58" '.rows[] | select(.hotkey == $h)' "$WORK/leaderboard.json"))"
grep -q "job done" "$WORK/worker.log" || { cat "$WORK/worker.log" >&2; fail "the validator worker finished no job"; }
echo "ok: the validator worker evaluated the model ($(grep -c "job done" "$WORK/worker.log") jobs)"
check_curl "$DASH/" "<html"
check_curl "$DASH/api/leaderboard" "$MINER_SS58"
check_curl "$DASH/api/epochs" "\"epoch\""
check_curl "$DASH/api/weights"
check_curl "$DASH/api/chain"
check_curl "$DASH/metrics" "validator_"
validator verify --epoch "$EPOCH" --db.url "$VALIDATOR_DB" --competition "$WORK/competition.toml"
validator export-preferences --since-epoch 0 --out prefs.jsonl --db.url "$VALIDATOR_DB"
# Labelled open pairs become preferences; how many a single short epoch yields varies (0 to ~6
# here), so only the file and the shape of its lines are checked.
[ -f prefs.jsonl ] || fail "export-preferences wrote no prefs.jsonl"
jq -e -s 'all(has("prompt") and has("chosen") and has("rejected") and has("votes"))' prefs.jsonl >/dev/null ||
  fail "prefs.jsonl has lines without prompt, chosen, rejected"
echo "ok: prefs.jsonl has $(wc -l <prefs.jsonl) preferences"

# --- Containers: the compose file parses (no daemon is needed for `config`) -----------------
if docker compose version >/dev/null 2>&1; then
  step docker compose -p subnet -f "$ROOT/docker/compose.yml" config
elif command -v docker-compose >/dev/null 2>&1; then
  step docker-compose -p subnet -f "$ROOT/docker/compose.yml" config
else
  echo "skipped: docker compose config (neither the compose plugin nor docker-compose is installed)"
fi

# --- Every README command was run above ----------------------------------------------------
# Inline code spans and ```sh blocks of README.md; `cargo run -p subnet-X -- sub` counts as `X sub`.
readme_commands() {
  {
    grep -oE '`[^`]+`' "$ROOT/README.md" | tr -d '`'
    awk '/^```sh/{on=1; next} /^```/{on=0} on' "$ROOT/README.md"
  } | sed -E 's/cargo run( --release)? -p subnet-(miner|validator|chain|devnet)( --features [a-z]+)? --/\2/; s/subnet-chain/devchain/' |
    grep -oE '(^|[ /])(devchain|miner|validator|devnet) [a-z][a-z-]*( [a-z][a-z-]*)?' |
    sed -E 's#^[ /]##' | sort -u
}
missing=0
while read -r bin sub sub2; do
  # The second word counts only for commands with subcommands of their own.
  case "$sub" in tx | keys | labelers) ;; *) sub2="" ;; esac
  if ! awk -v b="$bin" -v s="$sub" -v s2="$sub2" '
      { n = 0; for (i = 2; i <= NF; i++) if ($i !~ /^-/) w[++n] = $i
        if ($1 == b && n >= 1 && w[1] == s) {
          if (s2 == "") { found = 1 } else { for (i = 2; i <= n; i++) if (w[i] == s2) found = 1 } }
        delete w }
      END { exit !found }' "$RAN"; then
    echo "README command not run by scripts/readme-guides.sh: $bin $sub $sub2" >&2
    missing=1
  fi
done < <(readme_commands)
[ "$missing" -eq 0 ] || fail "README.md has commands this script does not run"
echo "ok: every README command was run ($(readme_commands | wc -l) distinct)"
echo "readme-guides: all steps passed in $((SECONDS - started)) s"
