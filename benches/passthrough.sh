#!/usr/bin/env bash
# Compares streaming 1 GiB of step output through `rollout run` with a bare `cat` pipe.
# rollout must stay close to `cat`: a chatty step must not slow a deployment down, and memory
# must stay flat (only bounded tails are kept).
#
#   benches/passthrough.sh                      # from the repository root: builds, measures once
#   SECRET=1 benches/passthrough.sh             # the runbook declares a secret: every byte of
#                                               # output goes through the masker
#   CONTENT=base64 SECRET=1 benches/passthrough.sh   # 1 GiB of base64 wrapped at 76 columns
#                                               # (the masker's worst case) instead of zeros
#   ROUNDS=5 benches/passthrough.sh OLD_BIN NEW_BIN  # builds given: run alternately
#                                               # (A B A B ...), ROUNDS times each, medians
#
# To compare with an older commit: `git worktree add /tmp/old <commit> && (cd /tmp/old &&
# cargo build --release)`, then pass /tmp/old/target/release/rollout and target/release/rollout.
# The executor alone is measured by the ignored unit test:
#   cargo test --release --lib -- --ignored passthrough_1gib --nocapture
set -euo pipefail

cd "$(dirname "$0")/.."
if (($# == 0)); then
    cargo build --release --quiet
    set -- "${CARGO_TARGET_DIR:-target}/release/rollout"
fi
ROUNDS=${ROUNDS:-1}
CONTENT=${CONTENT:-zeros}

scratch=$(mktemp -d)
trap 'rm -rf -- "$scratch"' EXIT

case $CONTENT in
zeros) produce="head -c 1073741824 /dev/zero" ;;
base64)
    # 48 MiB of random bytes is 64 MiB of wrapped base64; 16 copies make 1 GiB.
    head -c 50331648 /dev/urandom | base64 > "$scratch/block.b64"
    produce="for i in \$(seq 16); do cat '$scratch/block.b64'; done"
    ;;
*) echo "CONTENT is zeros or base64" >&2; exit 2 ;;
esac

secret=
if [[ ${SECRET:-} == 1 ]]; then
    export BENCH_SECRET="tok_9F3kQ2zX7pWv1LmN8bR4sT6yU0cE5hJ2gA7dK3fP9qW1xZ8vB4nM6rT2yH5uJ0iO3pL7kS1dF9gQ"
    secret=$'\n[vars.token]\nsecret = { env = "BENCH_SECRET" }\n'
fi

cat > "$scratch/passthrough.toml" <<TOML
[runbook]
name = "passthrough-bench"
description = "Streams 1 GiB through one step."
owner = "rollout-maintainers"
risk = "low"
$secret
[defaults]
timeout = "10m"

[[phases]]
id = "stream"
title = "Stream 1 GiB"

[[phases.steps]]
id = "one-gib"
name = "Print 1 GiB"
run = '''$produce'''
TOML

# Prints "<seconds> <max RSS KiB>" for the command given as arguments.
measure() {
    local start end rss
    start=$(date +%s.%N)
    if command -v /usr/bin/time >/dev/null; then
        rss=$( { /usr/bin/time -f '%M' "$@" > /dev/null; } 2>&1 | tail -n 1 )
    else
        "$@" > /dev/null
        rss='?'
    fi
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v r="$rss" 'BEGIN { printf "%.2f %s\n", e - s, r }'
}

declare -A secs=()
declare -A rss=()
cat_secs=()
for ((round = 0; round < ROUNDS; round++)); do
    read -r s _ < <(measure sh -c "$produce | cat")
    cat_secs+=("$s")
    for bin in "$@"; do
        rm -rf "$scratch/state"
        read -r s r < <(measure "$bin" run "$scratch/passthrough.toml" \
            --output text --state-dir "$scratch/state")
        secs[$bin]+="$s "
        rss[$bin]+="$r "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cat_median=$(printf '%s ' "${cat_secs[@]}" | median)
printf 'content %s, secret %s, %s round(s)\n' "$CONTENT" "${SECRET:-0}" "$ROUNDS"
printf '%-50s %8ss\n' "cat (median)" "$cat_median"
for bin in "$@"; do
    m=$(median <<<"${secs[$bin]}")
    printf '%-50s %8ss  %10s KiB max RSS (runs: %s)\n' "$bin" "$m" \
        "$(median <<<"${rss[$bin]}")" "${secs[$bin]% }"
    awk -v r="$m" -v c="$cat_median" 'BEGIN { printf "  rollout / cat: %.2f\n", r / c }'
done
