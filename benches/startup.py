#!/usr/bin/env python3
"""Startup of two rollout builds, alternately, so a loaded machine slows both alike.

    python3 benches/startup.py OLD_BINARY NEW_BINARY      # N=41 rounds by default

Each round runs `--version`, `validate` of a one-step runbook and `run` of it (start to finish,
state on tmpfs when there is one) with each build, the order turned every round, and prints the
median times and the median of the per-round ratios new/old.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RUNBOOK = """[runbook]
name = "one"

[[phases]]
id = "p"
title = "p"

[[phases.steps]]
id = "s"
run = "date"
"""


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(os.environ.get("N", "41"))
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="rollout-startup.", dir=base)
    try:
        runbook = os.path.join(work, "one.toml")
        with open(runbook, "w") as f:
            f.write(RUNBOOK)
        state = os.path.join(work, "state")

        def once(binary: str, args: list) -> float:
            shutil.rmtree(state, ignore_errors=True)
            extra = ["--state-dir", state] if args[0] == "run" else []
            start = time.perf_counter()
            subprocess.run([binary, *args, *extra], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)
            return (time.perf_counter() - start) * 1000

        for label, args in (("--version", ["--version"]), ("validate", ["validate", runbook]),
                            ("run one step", ["run", runbook, "--output", "json"])):
            olds, news, ratios = [], [], []
            for i in range(rounds):
                if i % 2:
                    o = once(old, args)
                    n = once(new, args)
                else:
                    n = once(new, args)
                    o = once(old, args)
                olds.append(o)
                news.append(n)
                ratios.append(n / o)
            print(f"{label:14s} old median {statistics.median(olds):6.2f} ms   "
                  f"new median {statistics.median(news):6.2f} ms   "
                  f"median of new/old {statistics.median(ratios):.3f}   ({rounds} rounds)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
