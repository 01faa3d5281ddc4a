"""Tickets are drawn in a worker process of low priority, not on the hub's threads.

Rendering a ticket (python-escpos building its bytes, Chinese rows drawn as pictures on printers without a Chinese
font) is pure Python work. In a thread of the hub it holds the interpreter lock while the event loop waits, so a rush
of tickets delayed every screen's events. In a process of its own, niced, it uses what the machine has left once the
hub has served its devices: tickets wait a little in a rush, screens do not.

The worker is `python -m printers.render_pool`, started at the first ticket and again if it dies; requests and answers
are length-prefixed pickles on its stdin and stdout (a pipe between two processes of the hub, nothing else reads it).
It ends when its stdin closes, so a hub killed outright leaves no renderer behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import sys

from kds.printing import PrintJob
from printers.layouts import StoreLabels, render
from printers.profiles import PrinterProfile

log = logging.getLogger("printers.render_pool")

NICE = 10
"""How much lower the renderer's priority is than the hub's (Linux `nice`: 0 normal, 19 lowest)."""

Rendered = tuple[list[bytes], str | None]


def render_batch(jobs: list[PrintJob], profile: PrinterProfile, labels: StoreLabels, max_bytes: int) -> Rendered:
    """The bytes of the first jobs, about `max_bytes` at most (at least one job); stops before a job that cannot be
    rendered, whose error is returned when it is the first (with no bytes)."""
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


class Renderer:
    """One spooler's renderer process (started when first needed)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._labels: StoreLabels | None = None
        """The labels the running worker holds (sent with its first request, and again only when they change)."""
        self.started = 0
        """Processes started so far."""
        self.labels_sent = 0
        """Requests that carried the labels (tests read it)."""

    async def start(self) -> None:
        """Start the worker now (it loads its libraries while the hub starts), not at the first ticket."""
        async with self._lock:
            await self._process()

    async def render(
        self, jobs: list[PrintJob], profile: PrinterProfile, labels: StoreLabels, *, max_bytes: int
    ) -> Rendered:
        """`render_batch` in the worker process.

        The store's labels carry its whole config (some 24 KB, a quarter of a millisecond to pickle on the event
        loop and as much to read in the worker): they go to a worker once, and again only when they change."""
        async with self._lock:
            for _attempt in range(2):
                proc = await self._process()
                assert proc.stdin is not None and proc.stdout is not None
                sent = None if labels is self._labels else labels
                self.labels_sent += sent is not None
                request = pickle.dumps((jobs, profile, sent, max_bytes), protocol=pickle.HIGHEST_PROTOCOL)
                try:
                    self._labels = labels
                    proc.stdin.write(len(request).to_bytes(4, "big") + request)
                    await proc.stdin.drain()
                    size = int.from_bytes(await proc.stdout.readexactly(4), "big")
                    answer: Rendered = pickle.loads(await proc.stdout.readexactly(size))
                    return answer
                except (ConnectionError, asyncio.IncompleteReadError):
                    log.error("the ticket renderer process died (exit code %s); starting a new one", proc.returncode)
                    await self._kill()
                except BaseException:
                    await self._kill()  # cancelled mid-request: the pipe is out of step
                    raise
        return [], "the ticket renderer process died twice in a row"

    async def _process(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "printers.render_pool",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            self._labels = None
            self.started += 1
        return self._proc

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def close(self) -> None:
        """Stop the worker process (its stdin closes: it ends)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _worker() -> None:
    """The worker process: answer requests until stdin closes."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    gc.freeze()  # what the imports made is never garbage
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    labels: StoreLabels | None = None
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        jobs, profile, sent, max_bytes = pickle.loads(inp.read(int.from_bytes(head, "big")))
        labels = sent if sent is not None else labels
        assert labels is not None, "the first request of a worker carries the labels"
        answer = pickle.dumps(render_batch(jobs, profile, labels, max_bytes), protocol=pickle.HIGHEST_PROTOCOL)
        out.write(len(answer).to_bytes(4, "big") + answer)
        out.flush()


if __name__ == "__main__":
    _worker()
