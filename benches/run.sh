#!/usr/bin/env bash
# Benchmark of `rollout run` overhead: 500 trivial steps (`true`) with the durable (fsynced)
# journal on, against a bash script running the same 500 commands the way a step runs them
# (`bash -euo pipefail -c true`), plus rollout's startup for a one-step runbook and peak memory.
# Usage: benches/run.sh [STATE_DIR_PARENT]   (default: a temp dir; the journal's fsyncs hit it)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=$PWD/target/release/rollout
work=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/rollout-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=500

{
  printf '[runbook]\nname = "bench"\n\n[[phases]]\nid = "p"\ntitle = "p"\n'
  for i in $(seq 1 $n); do printf '\n[[phases.steps]]\nid = "s%d"\nrun = "true"\n' "$i"; done
} > "$work/many.toml"
printf '[runbook]\nname = "one"\n\n[[phases]]\nid = "p"\ntitle = "p"\n\n[[phases.steps]]\nid = "s"\nrun = "true"\n' > "$work/one.toml"
{
  echo '#!/usr/bin/env bash'
  for _ in $(seq 1 $n); do echo 'bash -euo pipefail -c true'; done
} > "$work/baseline.sh"
printf '#!/bin/sh\nexit 0\n' > "$work/noop"; chmod +x "$work/noop"

now() { date +%s%N; }
best_of() { # best_of RUNS CMD... -> best wall time in ns
  local runs=$1; shift; local best=
  for _ in $(seq 1 "$runs"); do
    local t0; t0=$(now); "$@" >/dev/null 2>&1; local t=$(( $(now) - t0 ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  echo "$best"
}

run_many() { rm -rf "$work/state"; "$bin" run "$work/many.toml" --state-dir "$work/state" --output json; }
run_one() { rm -rf "$work/state1"; "$bin" run "$work/one.toml" --state-dir "$work/state1" --output json; }

rollout_ns=$(best_of 5 run_many)
bash_ns=$(best_of 5 bash "$work/baseline.sh")
per_step_us=$(( (rollout_ns - bash_ns) / n / 1000 ))
startup_ns=$(best_of 20 "$bin" --version)
one_ns=$(best_of 20 run_one)
validate_ns=$(best_of 20 "$bin" validate "$work/one.toml")

peak_kib="n/a"
if [ -x /usr/bin/time ]; then
  rm -rf "$work/state"
  peak_kib=$(/usr/bin/time -f %M "$bin" run "$work/many.toml" --state-dir "$work/state" --output json 2>&1 >/dev/null | tail -1)
fi

printf '%-52s %12s\n' "measure" "value"
printf '%-52s %10.1f ms\n' "rollout run, $n x true, fsynced journal (best of 5)" "$(echo "$rollout_ns / 1000000" | bc -l)"
printf '%-52s %10.1f ms\n' "bash, $n x bash -euo pipefail -c true (best of 5)" "$(echo "$bash_ns / 1000000" | bc -l)"
printf '%-52s %10d us\n' "overhead per step above running the command" "$per_step_us"
printf '%-52s %10.2f ms\n' "rollout --version (process start, best of 20)" "$(echo "$startup_ns / 1000000" | bc -l)"
printf '%-52s %10.2f ms\n' "rollout validate, one-step runbook (best of 20)" "$(echo "$validate_ns / 1000000" | bc -l)"
printf '%-52s %10.2f ms\n' "rollout run, one-step runbook (best of 20)" "$(echo "$one_ns / 1000000" | bc -l)"
printf '%-52s %10s KiB\n' "peak RSS, rollout run of $n steps" "$peak_kib"

# Startup: from launching rollout to its one step's command running (the step records the time).
printf '[runbook]\nname = "t"\n\n[[phases]]\nid = "p"\ntitle = "p"\n\n[[phases.steps]]\nid = "s"\nrun = "date +%%s%%N > %s/t1"\nshell = ["/bin/sh", "-c"]\n' "$work" > "$work/stamp.toml"
best_start=; best_sh=
for _ in $(seq 1 15); do
  rm -rf "$work/s2"; t0=$(now); "$bin" run "$work/stamp.toml" --state-dir "$work/s2" --output json >/dev/null; d=$(( $(cat "$work/t1") - t0 ))
  if [ -z "$best_start" ] || [ "$d" -lt "$best_start" ]; then best_start=$d; fi
  t0=$(now); /bin/sh -c "date +%s%N > $work/t1"; d=$(( $(cat "$work/t1") - t0 ))
  if [ -z "$best_sh" ] || [ "$d" -lt "$best_sh" ]; then best_sh=$d; fi
done
printf '%-52s %10.2f ms\n' "launch to step command running (best of 15)" "$(echo "$best_start / 1000000" | bc -l)"
printf '%-52s %10.2f ms\n' "same command via sh -c alone (best of 15)" "$(echo "$best_sh / 1000000" | bc -l)"
printf '%-52s %10.2f ms\n' "rollout startup before the step" "$(echo "($best_start - $best_sh) / 1000000" | bc -l)"
