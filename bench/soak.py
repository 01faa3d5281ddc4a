"""Soak: the hub's memory over a long rush with handovers (it must level off, not grow with the day).

    .venv/bin/python bench/soak.py [--minutes 30 --rate 20 --sample-s 30]

Starts `kds serve` (a separate process, loopback only) on a temporary SQLite file, with the sample store's printers
pointed at /dev/null (tickets are still rendered and spooled). `kds simulate`'s order mix goes in at `--rate` orders
per second while simulated cooks start and bump every ticket and the counter calls and hands over every order
(`run_kitchen_bots`, cooking times divided by 60). The hub's resident memory (VmRSS) is sampled every
`--sample-s`. Prints a table and one JSON object. Figures, not a test: nothing here gates CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import _free_port, _wait_port  # noqa: E402
from kds.config import load_config  # noqa: E402
from kdsapp.simulate import SimulationOptions, run_kitchen_bots, run_simulation  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def quiet_printers(config_text: str) -> str:
    """The sample config with every network printer writing to /dev/null (no emulators needed)."""
    return re.sub(
        r'transport = "network"\nhost = "[^"]*"\nport = \d+',
        'transport = "file"\npath = "/dev/null"\nstatus_query = false',
        config_text,
    )


async def soak(minutes: float, rate: float, sample_s: float) -> dict[str, Any]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "store.toml"
        cfg.write_text(quiet_printers((ROOT / "config/store.toml").read_text(encoding="utf-8")), encoding="utf-8")
        config = load_config(cfg)
        db = Path(tmp) / "soak.sqlite3"
        cmd = [sys.executable, "-m", "kdsapp.cli", "serve", "--quiet", "--db", str(db), "--port", str(port)]
        proc = subprocess.Popen([*cmd, "--config", str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL)
        samples: list[dict[str, float]] = []
        try:
            await _wait_port(port)
            url = f"ws://127.0.0.1:{port}"
            stop = asyncio.Event()
            bots = asyncio.ensure_future(run_kitchen_bots(config, url, speed=60.0, stop=stop, seed=7))
            opts = SimulationOptions(
                hub=url, rate=rate, duration=minutes * 60, seed=11, progress=False, summary=False, request_timeout=30
            )
            t0 = time.monotonic()

            async def sample() -> None:
                while True:
                    samples.append(
                        {"minute": round((time.monotonic() - t0) / 60, 2), "rss_mb": round(rss_mb(proc.pid), 1)}
                    )
                    line = samples[-1]
                    print(f"  {line['minute']:6.1f} min  {line['rss_mb']:8.1f} MB", file=sys.stderr, flush=True)
                    await asyncio.sleep(sample_s)

            sampler = asyncio.ensure_future(sample())
            report = await run_simulation(config, opts)
            samples.append({"minute": round((time.monotonic() - t0) / 60, 2), "rss_mb": round(rss_mb(proc.pid), 1)})
            sampler.cancel()
            stop.set()
            await asyncio.gather(bots, return_exceptions=True)
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            handed = conn.execute("SELECT count(*) FROM orders WHERE status = 'handed_over'").fetchone()[0]
    accepted = report.accepted
    warm = [s for s in samples if s["minute"] >= min(12.0, minutes / 2)]
    return {
        "minutes": minutes,
        "rate": rate,
        "hub_alive": alive,
        "accepted": accepted,
        "stored": stored,
        "handed_over": handed,
        "rss_start_mb": samples[0]["rss_mb"] if samples else None,
        "rss_peak_mb": max(s["rss_mb"] for s in samples) if samples else None,
        "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_growth_after_warmup_mb": round(warm[-1]["rss_mb"] - warm[0]["rss_mb"], 1) if len(warm) > 1 else None,
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--sample-s", type=float, default=30.0)
    args = ap.parse_args()
    r = asyncio.run(soak(args.minutes, args.rate, args.sample_s))
    print(f"\nsoak: {args.minutes:g} min at {args.rate:g} orders/s with handovers")
    print(f"  hub alive at the end      {r['hub_alive']}")
    print(f"  orders accepted / stored  {r['accepted']} / {r['stored']} ({r['handed_over']} handed over)")
    print(f"  RSS start / peak / end    {r['rss_start_mb']} / {r['rss_peak_mb']} / {r['rss_end_mb']} MB")
    print(f"  RSS growth after warm-up  {r['rss_growth_after_warmup_mb']} MB")
    print(json.dumps({k: v for k, v in r.items() if k != "samples"} | {"samples": r["samples"]}))


if __name__ == "__main__":
    main()
