"""`kds printers status` and `kds printers test NAME`: a look at the printers without the hub."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from kds.config import Printer, StoreConfig, Transport
from kds.printing import PrinterState
from printers.fonts import NoCJKFont, font_problems
from printers.layouts import test_page
from printers.profiles import UnknownProfile, profile_for
from printers.spooler import Health, probe, query_status, send_job
from printers.transports import TransportError, open_link


def where(p: Printer) -> str:
    """How the printer is reached, in a few words."""
    if p.transport is Transport.NETWORK:
        return f"{p.host}:{p.port}"
    if p.transport is Transport.USB:
        return f"usb {p.usb_vendor or 0:04x}:{p.usb_product or 0:04x}"
    return f"{p.transport.value} {p.path}"


def printers_status(config: StoreConfig, *, queued: Mapping[str, int] | None = None, as_json: bool = False) -> int:
    """Probe every printer at once; print a table (or JSON) with `queued`, each printer's jobs not yet printed (the
    caller reads them from the hub's store: the printers know no database). Exit code 1 when any printer is not ok."""
    if not config.printers:
        print("no printers in the config")
        return 0
    with ThreadPoolExecutor(max_workers=len(config.printers)) as pool:
        health = list(pool.map(probe, config.printers))
    queued = queued or {}
    rows: list[dict[str, Any]] = []
    for p, h in zip(config.printers, health, strict=True):
        rows.append(
            {
                "printer": p.id,
                "state": h.state.value,
                "where": where(p),
                "queued": queued.get(p.id, 0),
                "message": h.message + ("; paper low" if h.paper_low else ""),
                "stations": [s.id for s in config.stations if s.printer == p.id]
                + (["counter"] if config.counter.printer == p.id else []),
                "backup": p.backup,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(f"{'printer':18}{'state':11}{'where':22}{'queued':>7}  for / message")
        for r in rows:
            who = ",".join(r["stations"]) or "-"
            print(f"{r['printer']:18}{r['state']:11}{r['where']:22}{r['queued']:>7}  {who}: {r['message']}")
    fonts = font_problems(config)
    for problem in fonts:
        print(f"kds printers status: {problem}", file=sys.stderr)
    return 0 if all(h.state is PrinterState.OK for h in health) and not fonts else 1


def print_test_page(config: StoreConfig, name: str) -> int:
    """Send a test page to one printer, checking its status first. Exit code 0 when it printed."""
    p = config.printer(name)
    if p is None:
        print(
            f"kds printers test: no printer {name!r} (printers: {', '.join(x.id for x in config.printers)})",
            file=sys.stderr,
        )
        return 2
    try:
        profile = profile_for(p)
    except UnknownProfile as exc:
        print(f"kds printers test: {exc}", file=sys.stderr)
        return 2
    try:
        data = test_page(p.id, p.name, profile, at=datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    except NoCJKFont as exc:
        print(f"kds printers test: {p.id} prints Chinese as pictures and cannot: {exc}", file=sys.stderr)
        return 1
    try:
        link = open_link(p)
    except TransportError as exc:
        print(f"kds printers test: {p.id} ({where(p)}): {exc}", file=sys.stderr)
        return 1
    try:
        talk = p.status_query and link.can_read
        if talk:
            h: Health = query_status(link, p.timeout_s)
            if h.state is not PrinterState.OK:
                print(f"kds printers test: {p.id} ({where(p)}) is {h.state.value}: {h.message}", file=sys.stderr)
                return 1
        send_job(link, data, confirm=talk, timeout=p.timeout_s)
    except TransportError as exc:
        print(f"kds printers test: {p.id} ({where(p)}): {exc}", file=sys.stderr)
        return 1
    finally:
        link.close()
    print(f"test page printed on {p.id} ({where(p)}): {len(data)} bytes" + (", confirmed" if talk else ""))
    return 0
