"""Tickets are drawn in a worker process of low priority, not on the hub's threads.

Rendering a ticket (python-escpos building its bytes, Chinese rows drawn as pictures on printers without a Chinese
font) is pure Python work. In a thread of the hub it holds the interpreter lock while the event loop waits, so a rush
of tickets delayed every screen's events. In a process of its own, niced, it uses what the machine has left once the
hub has served its devices: tickets wait a little in a rush, screens do not. The process is started at the first
ticket, shared by every spooler of the process, and started again if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from kds.printing import PrintJob
from printers.layouts import StoreLabels, render
from printers.profiles import PrinterProfile

log = logging.getLogger("printers.render_pool")

NICE = 10
"""How much lower the renderer's priority is than the hub's (Linux `nice`: 0 normal, 19 lowest)."""

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _start_worker() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    gc.freeze()  # what the imports made is never garbage


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
            )
        return _pool


def _broken(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def render_batch(
    jobs: list[PrintJob], profile: PrinterProfile, labels: StoreLabels, max_bytes: int
) -> tuple[list[bytes], str | None]:
    """The bytes of the first jobs, about `max_bytes` at most (at least one job); stops before a job that cannot be
    rendered, whose error is returned when it is the first (with no bytes). Runs in the worker process."""
    datas: list[bytes] = []
    size = 0
    for job in jobs:
        try:
            data = render(job, profile, labels)
        except Exception as exc:
            if not datas:
                return [], f"{type(exc).__name__}: {exc}"
            break
        if datas and size + len(data) > max_bytes:
            break
        datas.append(data)
        size += len(data)
    return datas, None


async def render_jobs(
    jobs: list[PrintJob], profile: PrinterProfile, labels: StoreLabels, *, max_bytes: int
) -> tuple[list[bytes], str | None]:
    """`render_batch` in the worker process (started, or started again after it died, as needed)."""
    pool = _executor()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, render_batch, jobs, profile, labels, max_bytes)
    except BrokenProcessPool:
        log.error("the ticket renderer process died; starting a new one")
        _broken(pool)
        return [], "the ticket renderer process died"


def shutdown() -> None:
    """Stop the worker process (tests; a process that exits stops it by itself)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
