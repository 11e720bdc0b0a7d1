#!/usr/bin/env bash
# Team mode figures (README, "Team mode"), against a PostgreSQL this script starts on loopback
# (Debian's `postgresql` package; run as root, the server runs as the `postgres` user; fsync and
# synchronous_commit on, as a real server has them):
#   1. per-step cost of `rollout run` with the journal in PostgreSQL against the file journal:
#      N trivial steps, the two modes alternately (the order turned each round), ROUNDS pairs;
#      the median of the paired per-step differences and of the paired ratios;
#   2. `rollout runs` over 10,000 runs in the database (median of 7);
#   3. peak RSS of `rollout watch` following a live run of 1,000 and of 10,000 steps;
#   4. with BASE=/path/to/another/rollout: team mode's per-step cost of this binary against that
#      one (say, a build without a change), both with the journal in PostgreSQL, alternately, the
#      order turned each round; the median of the paired per-step differences and ratios (N4
#      steps, N by default: N4=1 gives what a run costs once).
# Usage: benches/team.sh   (BIN=another/rollout N=300 ROUNDS=7 WATCH_STEPS="1000 10000" PARTS="1 2 3 4" BASE=... N4=...)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=${BIN:-$PWD/target/release/rollout}
n=${N:-300}
rounds=${ROUNDS:-7}
watch_steps=${WATCH_STEPS:-"1000 10000"}
parts=" ${PARTS:-1 2 3 4} "
base=${BASE:-}

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/rollout-team-bench.XXXXXX")
chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  runuser -u postgres -- "$pgbin/pg_ctl" stop -m immediate -D "$work/data" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
runuser -u postgres -- "$pgbin/initdb" -A trust -U postgres -D "$work/data" >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" start -D "$work/data" -l "$work/pg.log" -w \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1" >/dev/null
runuser -u postgres -- "$pgbin/psql" -h "$work" -p "$port" -U postgres -qc 'CREATE DATABASE rollout'
url="postgres://postgres@127.0.0.1:$port/rollout?sslmode=disable"
psql() { runuser -u postgres -- "$pgbin/psql" -h "$work" -p "$port" -U postgres -d rollout -Atqc "$1"; }

runbook() { # runbook NAME STEPS > file
  printf '[runbook]\nname = "%s"\n\n[[phases]]\nid = "p"\ntitle = "p"\n' "$1"
  for i in $(seq 1 "$2"); do printf '\n[[phases.steps]]\nid = "s%d"\nrun = "true"\n' "$i"; done
}
runbook bench "$n" > "$work/many.toml"
now() { date +%s%N; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
diffs=(); ratios=()
pair() { # pair ROUND STEPS BASE_NAME BASE_NS NAME NS: one round's figures, kept for medians
  local d q
  d=$(echo "($6 - $4) / $2 / 1000" | bc -l)
  q=$(echo "$6 / $4" | bc -l)
  diffs+=("$d"); ratios+=("$q")
  printf '   round %d: %s %7.1f ms, %s %7.1f ms, %+7.1f us/step, ratio %.3f\n' \
    "$1" "$3" "$(echo "$4/1000000" | bc -l)" "$5" "$(echo "$6/1000000" | bc -l)" "$d" "$q"
}
medians() {
  printf '   median of paired differences: %+.1f us per step; median of paired ratios: %.3f\n' \
    "$(median "${diffs[@]}")" "$(median "${ratios[@]}")"
  diffs=(); ratios=()
}
# Each round runs the two in turn, the order turned every round.
order() { if (( $1 % 2 )); then echo "$2 $3"; else echo "$3 $2"; fi; }

if [[ $parts == *" 1 "* ]]; then
echo "1. per-step cost, $n steps, $rounds rounds, file and PostgreSQL alternately"
for r in $(seq 1 "$rounds"); do
  for mode in $(order "$r" file pg); do
    rm -rf "$work/state"
    if [ "$mode" = file ]; then where=(--state-dir "$work/state"); else where=(--state "$url"); fi
    t0=$(now); "$bin" run "$work/many.toml" "${where[@]}" --output json >/dev/null
    eval "${mode}_ns=\$(( \$(now) - t0 ))"
  done
  pair "$r" "$n" file "$file_ns" PostgreSQL "$pg_ns"
done
medians
fi

if [[ $parts == *" 4 "* && -n $base ]]; then
n4=${N4:-$n}
runbook bench4 "$n4" > "$work/four.toml"
echo "4. team mode per-step cost, $n4 steps, $rounds rounds, this binary against $base, alternately"
for r in $(seq 1 "$rounds"); do
  for which in $(order "$r" base this); do
    if [ "$which" = base ]; then b=$base; else b=$bin; fi
    t0=$(now); "$b" run "$work/four.toml" --state "$url" --output json >/dev/null
    eval "${which}_ns=\$(( \$(now) - t0 ))"
  done
  pair "$r" "$n4" base "$base_ns" this "$this_ns"
done
medians
fi

if [[ $parts == *" 2 "* ]]; then
echo "2. rollout runs over 10,000 runs"
summary=$(psql "SELECT summary FROM rollout_runs LIMIT 1")
psql "INSERT INTO rollout_runs (run_id, snapshot, summary, runbook_name)
      SELECT '2026' || lpad(g::text, 8, '0'), '', jsonb_set('$summary'::jsonb, '{run_id}', to_jsonb('2026' || lpad(g::text, 8, '0'))), 'bench'
      FROM generate_series(1, 10000 - (SELECT count(*) FROM rollout_runs)) g"
echo "   runs in the database: $(psql 'SELECT count(*) FROM rollout_runs')"
times=()
for _ in $(seq 1 7); do
  t0=$(now); "$bin" runs --state "$url" >/dev/null; times+=("$(( ($(now) - t0) / 1000000 ))")
done
printf '   rollout runs: median %s ms (each: %s)\n' "$(median "${times[@]}")" "${times[*]}"
fi

if [[ $parts == *" 3 "* ]]; then
echo "3. peak RSS of rollout watch over a live run"
for steps in $watch_steps; do
  runbook "watch$steps" "$steps" > "$work/w$steps.toml"
  "$bin" run "$work/w$steps.toml" --state "$url" --output json >/dev/null &
  runner=$!
  run=""
  for _ in $(seq 1 100); do
    run=$(psql "SELECT run_id FROM rollout_runs WHERE runbook_name = 'watch$steps' OR summary->>'runbook_name' = 'watch$steps' ORDER BY created_at DESC LIMIT 1")
    [ -n "$run" ] && break
    sleep 0.1
  done
  kib=$(/usr/bin/time -f %M "$bin" watch "$run" --state "$url" 2>&1 >/dev/null | tail -1)
  wait "$runner"
  records=$(psql "SELECT count(*) FROM rollout_records WHERE run_id = '$run'")
  printf '   %6d steps (%d records): peak RSS of watch %s KiB\n' "$steps" "$records" "$kib"
done
fi
