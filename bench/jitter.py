"""How often this machine keeps a process from running when it asked to (issue 11: reading the paced p99 figures).

A process that does nothing but sleep half a millisecond, over and over, notes each time it woke more than
`--late-ms` late. Run it beside `make bench` (in another terminal) to see what the machine itself did to the runs: an
order in flight during such a stall waits as long, whatever the server does. With `--realtime` the process runs
at real-time priority (SCHED_FIFO, root only): it is then late only when the whole machine (or its virtual CPU) was
held, not because other processes had the cores.

    .venv/bin/python bench/jitter.py --seconds 30 [--realtime]

On the 2-core machine of docs/performance.md, during a paced run at 500 orders/s: 5 stalls of 3-4 ms in 9 s at
normal priority, none at real-time priority (the stalls are the cores being busy, not the host pausing the machine).
Figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any


def watch(seconds: float, late_ms: float, nap_s: float = 0.0005) -> dict[str, Any]:
    """Sleep `nap_s` over and over for `seconds`; the wakeups later than `late_ms`."""
    stalls: list[float] = []
    naps = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        time.sleep(nap_s)
        naps += 1
        overslept = (time.perf_counter() - t - nap_s) * 1000
        if overslept > late_ms:
            stalls.append(overslept)
    stalls.sort()
    return {
        "seconds": seconds,
        "naps": naps,
        "late_ms": late_ms,
        "stalls": len(stalls),
        "stalled_ms": round(sum(stalls), 1),
        "longest_ms": round(stalls[-1], 1) if stalls else 0.0,
        "p50_ms": round(stalls[len(stalls) // 2], 1) if stalls else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to watch")
    ap.add_argument("--late-ms", type=float, default=3.0, help="a wakeup this much later than asked is a stall")
    ap.add_argument("--realtime", action="store_true", help="run at real-time priority (SCHED_FIFO; needs root)")
    args = ap.parse_args()
    priority = "normal"
    if args.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
            priority = "real-time (SCHED_FIFO 50)"
        except (PermissionError, AttributeError, OSError) as exc:
            priority = f"normal (real-time refused: {exc})"
    out = {"priority": priority, **watch(args.seconds, args.late_ms)}
    print(
        f"{out['stalls']} stalls over {args.late_ms:g} ms in {args.seconds:g} s at {priority} priority "
        f"(stalled {out['stalled_ms']} ms in all; longest {out['longest_ms']} ms, median {out['p50_ms']} ms)"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
