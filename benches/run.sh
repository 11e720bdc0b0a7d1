#!/usr/bin/env bash
# Per-step cost of `rollout run`, measured so that a loaded machine cannot fake it.
#
# rollout runs a runbook of STEPS steps `run = "true"` (each is `bash -euo pipefail -c true`, with
# the hash-chained journal written and fdatasynced as always) and is compared with a bash script
# running `bash -euo pipefail -c true` STEPS times, and with make (and just) doing the same when
# installed. The commands run alternately, PAIRS rounds, the order turned each round, so a slow
# minute costs each alike; what is reported is the median of the per-round ratios to bash and the
# median per-round difference divided by STEPS. This is done with the state directory on tmpfs
# (/dev/shm) and on disk (DISK_DIR, default target/ of this checkout).
#
# Then figures that load does not change: syscalls per step (`strace -f -c`, rollout and every
# process it starts, against the bash script; fdatasync per step), and the user-space
# instructions rollout's own process executes per step (valgrind's callgrind, the difference
# between a STEPS-step and a 1-step run). Each part is skipped, saying so, when its tool is
# missing. Last, startup and peak memory.
#
#   benches/run.sh [DISK_DIR]
#   PAIRS=31 STEPS=200 ROLLOUT=/path/to/rollout benches/run.sh   # default: builds this checkout
#   PARTS="pairs syscalls instructions startup" benches/run.sh    # the parts to run (all)
#   BEFORE=/path/to/an/older/rollout benches/run.sh   # also runs that build, alternately, as `before`
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-21}
STEPS=${STEPS:-200}
PARTS=${PARTS:-pairs syscalls instructions startup}
if [ -z "${ROLLOUT:-}" ]; then
  cargo build --release --locked -q
  ROLLOUT=$PWD/target/release/rollout
fi
bin=$ROLLOUT
disk_parent=${1:-$PWD/target}
tmpfs_parent=/dev/shm
[ -d "$tmpfs_parent" ] || tmpfs_parent=
# The runbooks and scripts live in tmpfs when there is one: only the state directory moves.
work=$(mktemp -d "${tmpfs_parent:-${TMPDIR:-/tmp}}/rollout-bench.XXXXXX")
disk=$(mktemp -d "$disk_parent/rollout-bench.XXXXXX")
trap 'rm -rf "$work" "$disk"' EXIT
bash_path=$(command -v bash)
part() { [[ " $PARTS " == *" $1 "* ]]; }

steps_runbook() { # steps_runbook N FILE
  {
    printf '[runbook]\nname = "bench"\n\n[[phases]]\nid = "p"\ntitle = "p"\n'
    for i in $(seq 1 "$1"); do printf '\n[[phases.steps]]\nid = "s%d"\nrun = "true"\n' "$i"; done
  } >"$2"
}
steps_runbook "$STEPS" "$work/many.toml"
steps_runbook 1 "$work/one.toml"
{
  echo '#!/usr/bin/env bash'
  for _ in $(seq 1 "$STEPS"); do echo 'bash -euo pipefail -c true'; done
} >"$work/baseline.sh"

# What one durable append costs between two steps, on the disk under test: the same script with a
# 512-byte append after each command, once with O_DSYNC and once without.
for sync in dsync nosync; do
  {
    echo '#!/usr/bin/env bash'
    echo 'probe=$1'
    flags=$([ $sync = dsync ] && echo 'oflag=dsync,append' || echo 'oflag=append')
    for _ in $(seq 1 "$STEPS"); do
      echo 'bash -euo pipefail -c true'
      echo "dd if=/dev/zero of=\"\$probe\" bs=512 count=1 $flags conv=notrunc status=none"
    done
  } >"$work/baseline-$sync.sh"
done

# Named commands: every one is run from a function so that the state directory is fresh and the
# command line can be printed exactly as run.
declare -A line=()
tools=(rollout bash)
line[bash]="bash $work/baseline.sh"
if [ -n "${BEFORE:-}" ]; then
  tools+=(before)
fi
if command -v make >/dev/null; then
  # A shell other than /bin/sh turns off make's exec-without-a-shell shortcut: each recipe line
  # is `bash -euo pipefail -c true`, as a step is.
  {
    printf 'SHELL := %s\n.SHELLFLAGS := -euo pipefail -c\n.PHONY: all' "$bash_path"
    for i in $(seq 1 "$STEPS"); do printf ' s%d' "$i"; done
    printf '\nall:'
    for i in $(seq 1 "$STEPS"); do printf ' s%d' "$i"; done
    printf '\n'
    for i in $(seq 1 "$STEPS"); do printf 's%d:\n\ttrue\n' "$i"; done
  } >"$work/Makefile"
  tools+=(make)
  line[make]="make -s -f $work/Makefile"
fi
if command -v just >/dev/null; then
  {
    echo 'set shell := ["bash", "-euo", "pipefail", "-c"]'
    echo 'all:'
    for _ in $(seq 1 "$STEPS"); do printf '\ttrue\n'; done
  } >"$work/justfile"
  tools+=(just)
  line[just]="just -q -f $work/justfile"
fi

state=
probe=$work/probe
cmd_line() { # cmd_line TOOL -> the command, with the state directory in use
  case $1 in
    rollout) echo "$bin run ${run_book:-$work/many.toml} --state-dir $state --output json" ;;
    before) echo "$BEFORE run $work/many.toml --state-dir $state --output json" ;;
    on-tmpfs) echo "$bin run $work/many.toml --state-dir $work/state-tmpfs --output json" ;;
    dsync | nosync) echo "bash $work/baseline-$1.sh $probe" ;;
    *) echo "${line[$1]}" ;;
  esac
}
fresh() { rm -rf "$state" "$work/state-tmpfs" "$probe"; }

us=0
timed() { # timed TOOL: runs it, sets us to its wall time in microseconds
  local cmd s e
  read -r -a cmd <<<"$(cmd_line "$1")"
  fresh
  s=$EPOCHREALTIME
  "${cmd[@]}" >/dev/null 2>&1 || { echo "error: failed: ${cmd[*]}" >&2; exit 1; }
  e=$EPOCHREALTIME
  us=$((10#${e//[.,]/} - 10#${s//[.,]/}))
}

median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m}'; }
q() { # q [DECIMALS]: median, min and max of the numbers on stdin
  sort -g | awk -v p="${1:-3}" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; f="%." p "f"; printf "median " f " (min " f ", max " f ")", m, a[1], a[NR]}'
}

fs_of() { stat -f -c %T "$1" 2>/dev/null || echo '?'; }

pairs() { # pairs LABEL STATE_PARENT [EXTRA_TOOL...]
  state=$2/state
  probe=$2/probe
  local label=$1 list=("${tools[@]}") round k t
  shift 2
  list+=("$@")
  local n=${#list[@]}
  declare -A times=()
  echo "== state directory on $label: $(dirname "$state") ($(fs_of "$(dirname "$state")")); $PAIRS rounds, $STEPS steps, order turned each round"
  for t in "${list[@]}"; do echo "   $t: $(cmd_line "$t")"; done
  for ((round = 0; round < PAIRS; round++)); do
    for ((k = 0; k < n; k++)); do
      t=${list[$(((round + k) % n))]}
      timed "$t"
      times[$t]+="$us "
    done
  done
  local b=(${times[bash]})
  per_round() { # per_round TOOL AWK_EXPR(a = tool's time, b = bash's, n = steps) -> values
    local x=(${times[$1]}) out='' i
    for ((i = 0; i < PAIRS; i++)); do
      out+="$(awk -v a="${x[i]}" -v b="${b[i]}" -v n="$STEPS" "BEGIN {print $2}") "
    done
    tr ' ' '\n' <<<"$out" | grep .
  }
  minus() { # minus TOOL1 TOOL2: (TOOL1 - TOOL2) / STEPS per round, us
    local x=(${times[$1]}) y=(${times[$2]}) out='' i
    for ((i = 0; i < PAIRS; i++)); do out+="$(((x[i] - y[i]) / STEPS)) "; done
    tr ' ' '\n' <<<"$out" | grep .
  }
  printf '   %-8s %10s %24s %30s\n' tool "median ms" "ratio to bash (median)" "per step above bash (median)"
  for t in "${tools[@]}"; do
    printf '   %-8s %10.1f %24.3f %27.0f us\n' "$t" \
      "$(tr ' ' '\n' <<<"${times[$t]}" | grep . | median | awk '{print $1 / 1000}')" \
      "$(per_round "$t" 'a / b' | median)" "$(per_round "$t" '(a - b) / n' | median)"
  done
  for t in "${tools[@]}"; do
    [ "$t" = bash ] && continue
    echo "   $t/bash ratios: $(per_round "$t" 'a / b' | q)"
  done
  if [ -n "${times[dsync]:-}" ]; then
    echo "   what the disk adds per step, us:"
    echo "     rollout, state on disk minus on tmpfs (on-tmpfs): $(minus rollout on-tmpfs | q 0)"
    echo "     one durable 512-byte append between steps (dsync minus nosync): $(minus dsync nosync | q 0)"
    [ -z "${times[before]:-}" ] || echo "     before, state on disk minus rollout on tmpfs: $(minus before on-tmpfs | q 0)"
  fi
}

syscalls() { # syscalls LABEL STATE_PARENT
  state=$2/state
  local t out total sync per
  echo "== syscalls per step, state directory on $1 ($(fs_of "$2")): strace -f -c, every process"
  for t in "${tools[@]}"; do
    out=$work/strace.$t
    fresh
    local cmd
    read -r -a cmd <<<"$(cmd_line "$t")"
    strace -f -c -o "$out" "${cmd[@]}" >/dev/null 2>&1
    total=$(awk '$NF == "total" {print $(NF-2)}' "$out")
    sync=$(awk '$NF == "fdatasync" || $NF == "fsync" {s += $4} END {print s + 0}' "$out")
    printf '   %-8s %8.1f syscalls per step, %5.2f fsync+fdatasync per step   (strace -f -c -o FILE %s)\n' \
      "$t" "$(awk -v a="$total" -v n="$STEPS" 'BEGIN {print a / n}')" \
      "$(awk -v a="$sync" -v n="$STEPS" 'BEGIN {print a / n}')" "$(cmd_line "$t")"
    eval "sys_$t=$total"
  done
  for t in rollout before; do
    [ -f "$work/strace.$t" ] || continue
    printf '   %s above bash: %.1f syscalls per step\n' "$t" \
      "$(awk -v a="$(eval echo "\$sys_$t")" -v b="$sys_bash" -v n="$STEPS" 'BEGIN {print (a - b) / n}')"
    top_extra "$work/strace.$t" "$work/strace.bash"
  done
}

top_extra() { # the syscalls rollout makes more of than bash, per step
  awk -v n="$STEPS" '
    FNR == 1 {f++}
    $NF ~ /^[a-z_0-9]+$/ && $NF != "total" && $NF != "syscall" {
      c = ($4 ~ /^[0-9]+$/) ? $4 : $3
      if (f == 1) r[$NF] += c; else b[$NF] += c
    }
    END {
      for (s in r) { d = (r[s] - b[s]) / n; if (d >= 0.5) printf "%s %.1f\n", s, d }
    }' "$1" "$2" | sort -k2 -g -r | awk '{printf "%s%s %s", (NR > 1 ? ", " : "   of which: "), $1, $2} END {print ""}'
}

instructions() {
  echo "== user-space instructions of rollout's own process (valgrind --tool=callgrind; children not traced)"
  state=$work/state
  local ir1 irn t
  for t in one many; do
    fresh
    run_book=$work/$t.toml
    local cmd
    read -r -a cmd <<<"$(cmd_line rollout)"
    echo "   valgrind --tool=callgrind --callgrind-out-file=FILE ${cmd[*]}"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$t.%p" "${cmd[@]}" >/dev/null 2>&1
    # The parent's file is the one with the most instructions (children between spawn and exec
    # may leave their own).
    local ir
    ir=$(cat "$work"/cg."$t".* | awk '/^(summary|totals):/ {print $2}' | sort -g | tail -1)
    rm -f "$work"/cg."$t".*
    if [ "$t" = one ]; then ir1=$ir; else irn=$ir; fi
  done
  run_book=
  printf '   1 step: %d instructions; %d steps: %d; per step: %d\n' "$ir1" "$STEPS" "$irn" \
    "$(((irn - ir1) / (STEPS - 1)))"
}

startup() {
  state=$work/state
  echo "== startup and memory (state directory on tmpfs; medians of 21)"
  local t0 d i
  local -a v=() o=() r=() s=() l=()
  printf '[runbook]\nname = "t"\n\n[[phases]]\nid = "p"\ntitle = "p"\n\n[[phases.steps]]\nid = "s"\nrun = "date +%%s%%N > %s/t1"\nshell = ["/bin/sh", "-c"]\n' "$work" >"$work/stamp.toml"
  for ((i = 0; i < 21; i++)); do
    t0=$EPOCHREALTIME; "$bin" --version >/dev/null; d=$EPOCHREALTIME; v+=($((10#${d//[.,]/} - 10#${t0//[.,]/})))
    t0=$EPOCHREALTIME; "$bin" validate "$work/one.toml" >/dev/null; d=$EPOCHREALTIME; o+=($((10#${d//[.,]/} - 10#${t0//[.,]/})))
    fresh; t0=$EPOCHREALTIME; "$bin" run "$work/one.toml" --state-dir "$state" --output json >/dev/null; d=$EPOCHREALTIME; r+=($((10#${d//[.,]/} - 10#${t0//[.,]/})))
    # From launching rollout to its one step's command running (the step records the time).
    fresh; t0=$(date +%s%N); "$bin" run "$work/stamp.toml" --state-dir "$state" --output json >/dev/null; l+=($((($(cat "$work/t1") - t0) / 1000)))
    t0=$(date +%s%N); /bin/sh -c "date +%s%N > $work/t1"; s+=($((($(cat "$work/t1") - t0) / 1000)))
  done
  med() { printf '%s\n' "$@" | median; }
  printf '   %-56s %8.2f ms\n' "rollout --version" "$(med "${v[@]}" | awk '{print $1 / 1000}')"
  printf '   %-56s %8.2f ms\n' "rollout validate, one-step runbook" "$(med "${o[@]}" | awk '{print $1 / 1000}')"
  printf '   %-56s %8.2f ms\n' "rollout run, one-step runbook, start to finish" "$(med "${r[@]}" | awk '{print $1 / 1000}')"
  printf '   %-56s %8.2f ms\n' "launch to the step's command running (date)" "$(med "${l[@]}" | awk '{print $1 / 1000}')"
  printf '   %-56s %8.2f ms\n' "the same command via sh -c alone" "$(med "${s[@]}" | awk '{print $1 / 1000}')"
  if [ -x /usr/bin/time ]; then
    fresh
    printf '   %-56s %8s KiB\n' "peak RSS, rollout run of $STEPS steps" \
      "$(/usr/bin/time -f %M "$bin" run "$work/many.toml" --state-dir "$state" --output json 2>&1 >/dev/null | tail -1)"
  fi
}

echo "rollout: $bin ($("$bin" --version))"
echo "bash: $bash_path ($(bash --version | head -1))"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
if part pairs; then
  [ -n "$tmpfs_parent" ] && pairs tmpfs "$work" || echo "== no /dev/shm: tmpfs part skipped"
  # The disk's own cost of a durable append is measured in the same rounds: on disk, rollout may
  # cost one fdatasync per step more than on tmpfs.
  pairs disk "$disk" on-tmpfs dsync nosync
fi
if part syscalls; then
  if command -v strace >/dev/null; then
    [ -n "$tmpfs_parent" ] && syscalls tmpfs "$work"
    syscalls disk "$disk"
  else
    echo "== strace is not installed: syscall counts skipped (apt-get install strace)"
  fi
fi
if part instructions; then
  if command -v valgrind >/dev/null; then
    instructions
  else
    echo "== valgrind is not installed: instruction counts skipped (apt-get install valgrind)"
  fi
fi
if part startup; then
  startup
fi
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
