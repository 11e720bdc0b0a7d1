#!/usr/bin/env bash
# Compares streaming 1 GiB of step output through `rollout run` with a bare `cat` pipe.
# rollout must stay close to `cat`: a chatty step must not slow a deployment down, and memory
# must stay flat (only bounded tails are kept).
#
#   benches/passthrough.sh            # from the repository root
#
# Needs the `run` subcommand. The executor alone is measured by the ignored unit test:
#   cargo test --release --lib -- --ignored passthrough_1gib --nocapture
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/rollout

scratch=$(mktemp -d)
trap 'rm -rf -- "$scratch"' EXIT

cat > "$scratch/passthrough.toml" <<'TOML'
[runbook]
name = "passthrough-bench"
description = "Streams 1 GiB of zeros through one step."
owner = "rollout-maintainers"
risk = "low"

[defaults]
timeout = "10m"

[[phases]]
id = "stream"
title = "Stream 1 GiB"

[[phases.steps]]
id = "one-gib"
name = "Print 1 GiB"
run = "head -c 1073741824 /dev/zero"
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

read -r cat_secs cat_rss < <(measure sh -c 'head -c 1073741824 /dev/zero | cat')
read -r ro_secs ro_rss < <(measure "$bin" run "$scratch/passthrough.toml" \
    --output text --state-dir "$scratch/state")

printf '%-8s %8ss %10s KiB max RSS\n' cat "$cat_secs" "$cat_rss" rollout "$ro_secs" "$ro_rss"
awk -v r="$ro_secs" -v c="$cat_secs" 'BEGIN { printf "rollout / cat: %.2f\n", r / c }'
