#!/usr/bin/env bash
# Compares rollout builds on a noisy machine by running them alternately (A B A B ...), so that
# a slow minute costs each build alike. For each of `validate`, `plan` and `plan --format json`
# of RUNBOOK it prints every build's median and min wall time, in ms.
#
#   KEEP=1 benches/plan.sh                        # prints the path of a 10,000-step runbook
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release)
#   benches/compare.sh /tmp/rollout-bench.XXXXXX/bench.toml \
#       /tmp/old/target/release/rollout target/release/rollout
#   RUNS=40 benches/compare.sh RUNBOOK BIN...     # default 25 runs of each build per command
set -euo pipefail

(($# >= 2)) || { sed -n '2,10p' "$0" >&2; exit 2; }
runbook=$1
shift
RUNS=${RUNS:-25}
for bin in "$@"; do
  "$bin" validate "$runbook" >/dev/null || { echo "error: $bin rejects $runbook" >&2; exit 2; }
done

ms() { # command... -> wall time in tenths of a ms
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s%N)
  echo $(((e - s) / 100000))
}

for args in "validate" "plan" "plan --format json"; do
  read -r -a words <<<"$args"
  echo "== rollout $args ($RUNS runs of each, alternately)"
  declare -A times=()
  for ((i = 0; i < RUNS; i++)); do
    for bin in "$@"; do
      times[$bin]+="$(ms "$bin" "${words[0]}" "$runbook" "${words[@]:1}") "
    done
  done
  for bin in "$@"; do
    tr ' ' '\n' <<<"${times[$bin]}" | grep . | sort -n |
      awk -v b="$bin" '{a[NR]=$1} END {printf "  %-50s median %6.1f ms  min %6.1f ms\n", b, a[int((NR+1)/2)]/10, a[1]/10}'
  done
  unset times
done
