"""The print spooler, run by the hub process: every stored job reaches paper, in order, once the printer can take it.

- Jobs arrive already stored (the hub commits them with the events that made them) and are loaded again on start.
- One worker per printer sends that printer's jobs one at a time, oldest first, so they keep their order.
- Before a job: a status query (DLE EOT 1/4, and 2 when offline) — paper out or cover open is a failure, nothing is
  sent. The job is marked *sending* in the database, then its bytes go out, then GS r 1 asks the printer to confirm
  (it answers only once it has processed the job). Then it is *printed*. The wait for that answer grows with the
  job: `timeout_s` plus its bytes at the printer's `slowest_bytes_per_s`, so a slow printer is not taken for a
  stuck one (and sent every ticket again).
- A job the printer took but did not confirm in that time is sent again marked REPRINT at most `max_resends`
  times; then it goes to the backup with the rest of the queue, or, without a backup, it is recorded printed but
  unconfirmed (the station is told to check it) and the jobs behind it go on: one stuck job never holds the queue.
- A failure (unreachable, timeout, paper out, error) is retried with exponential backoff (`retry_s` doubling up to
  `retry_max_s`). After `max_failures` failures in a row the printer's queue moves to its `backup` (following the
  backup's own backup if that one has failed too), and new jobs for it go there until it answers a status query
  again. A printer without a backup is retried until it works: a job is never dropped.
- The hub is told when a printer gets into trouble, when its tickets move to the backup, and when it is back
  (`notify`), and tells the screens of its stations, of the stations whose printer takes its tickets, and the
  counter (`printer.status`). Each printer is checked once at start and its state told, good or not: trouble is
  known before the first ticket, and an alert left on a screen from before a restart is cleared.
- A job printed on a backup carries a banner saying whose it is (`kds.printing.failover_banner`: "FOR SEAFOOD &
  STEAM — its printer is down", in the backup's language).
- A job whose bytes may have reached the printer (a crash mid-send, a connection lost before the confirmation) is
  printed again marked REPRINT: better twice than never.

The spooler knows nothing of layouts beyond `printers.layouts.render`, nor of transports beyond `open_link`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from kds.config import Printer, StoreConfig
from kds.printing import (
    JobLedger,
    JobMark,
    JobState,
    Notify,
    PrinterState,
    PrintJob,
    RecordMarks,
    RunDb,
    failover_banner,
)
from printers.layouts import StoreLabels
from printers.profiles import PrinterProfile, profile_for
from printers.render_pool import Renderer
from printers.transports import PrinterLink, TransportError, open_link

log = logging.getLogger("printers.spooler")

T = TypeVar("T")
BATCH_JOBS = 32
"""A printer with a queue gets up to this many jobs per connection: one connection and one status query for them
all, drawn together, each confirmed before the next goes (so a failure knows exactly which printed)."""
BATCH_BYTES = 256 * 1024
"""…and about this many bytes (a batch holds at least one job)."""
DLE_EOT = b"\x10\x04"
GS_R_PAPER = b"\x1dr\x01"


# ------------------------------------------------------------------------------------------------ status


@dataclass(frozen=True, slots=True)
class Health:
    """What a status query found."""

    state: PrinterState
    message: str
    paper_low: bool = False


def query_status(link: PrinterLink, timeout: float) -> Health:
    """Ask the printer how it is (DLE EOT 1, 4, and 2 when it says it is offline). Blocking."""
    link.write(DLE_EOT + b"\x01")
    printer = link.read(1, timeout)[0]
    link.write(DLE_EOT + b"\x04")
    paper = link.read(1, timeout)[0]
    if paper & 0x60 == 0x60:
        return Health(PrinterState.PAPER_OUT, "out of paper")
    if printer & 0x08:
        link.write(DLE_EOT + b"\x02")
        cause = link.read(1, timeout)[0]
        if cause & 0x20:
            return Health(PrinterState.PAPER_OUT, "out of paper")
        if cause & 0x04:
            return Health(PrinterState.ERROR, "cover open")
        return Health(PrinterState.ERROR, "printer reports an error" if cause & 0x40 else "printer is offline")
    return Health(PrinterState.OK, "ready", paper_low=bool(paper & 0x0C == 0x0C))


def probe(printer: Printer) -> Health:
    """Connect and query the status (for `kds printers status` and the spooler's checks). Blocking."""
    try:
        link = open_link(printer)
    except TransportError as exc:
        return Health(PrinterState.OFFLINE, str(exc))
    try:
        if printer.status_query and link.can_read:
            return query_status(link, printer.timeout_s)
        return Health(PrinterState.OK, "reachable (no status queries)")
    except TransportError as exc:
        return Health(PrinterState.OFFLINE, str(exc))
    finally:
        link.close()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt at a job went."""

    ok: bool
    state: PrinterState = PrinterState.OK
    message: str = ""
    maybe_printed: bool = False
    """The bytes may have reached the paper: a retry prints it marked REPRINT."""
    printed: int = 0
    """Jobs of the batch the printer confirmed (the first ones): the failure is about the next one."""
    recorded: int = 0
    """Of those, how many are recorded printed already (each one's mark went with the next job's *sending*)."""


def job_wait(printer: Printer, size: int) -> float:
    """How long a job of `size` bytes may take to go out and be confirmed: `timeout_s` plus the bytes at the
    printer's slowest plausible pace (`slowest_bytes_per_s`)."""
    return printer.timeout_s + size / printer.slowest_bytes_per_s


def send_job(link: PrinterLink, data: bytes, *, confirm: bool, timeout: float, wait: float | None = None) -> None:
    """Send a job's bytes and, when the printer can answer, wait for GS r 1: it has processed them. Blocking.

    `wait` (`job_wait`): the time the whole job may take, sending and confirmation together; `timeout` when not
    given."""
    budget = timeout if wait is None else max(wait, timeout)
    deadline = time.monotonic() + budget
    link.write(data, budget)
    if confirm:
        link.write(GS_R_PAPER, max(timeout, deadline - time.monotonic()))
        link.read(1, max(0.05, deadline - time.monotonic()))


# ------------------------------------------------------------------------------------------------ the spooler


@dataclass(slots=True)
class _Printer:
    config: Printer
    profile: PrinterProfile
    queue: list[PrintJob]
    wake: asyncio.Event
    failures: int = 0
    failed_over: bool = False
    told: tuple[PrinterState, str] = (PrinterState.OK, "")
    """What the hub was last told about this printer."""
    printed: int = 0

    @property
    def label(self) -> str:
        return self.config.name or self.config.id

    def delay(self) -> float:
        c = self.config
        return float(min(c.retry_max_s, c.retry_s * 2 ** max(0, min(self.failures - 1, 30))))


class Spooler:
    """Prints the hub's jobs: one worker per configured printer (see the module docstring)."""

    def __init__(self, config: StoreConfig, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.clock = clock
        self.labels = StoreLabels.from_config(config)
        self.printers: dict[str, _Printer] = {}
        for p in config.printers:
            self.printers[p.id] = _Printer(p, profile_for(p), [], asyncio.Event())
        self.renderer = Renderer()
        """Draws the tickets, in a process of lower priority (`printers.render_pool`)."""
        self._ledger: JobLedger | None = None
        self._record: RecordMarks | None = None
        self._run_db: RunDb[Any] | None = None
        self._notify: Notify = lambda *_: None
        self._workers: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._threads = ThreadPoolExecutor(max_workers=len(self.printers) + 1, thread_name_prefix="kds-print")

    # ---------------------------------------------------------------- lifecycle (PrintSink)

    async def start(
        self, ledger: JobLedger, run_db: RunDb[Any], notify: Notify, *, record: RecordMarks | None = None
    ) -> None:
        """Load the jobs the last run left (mid-send ones marked reprint) and start the workers. Job marks are
        stored through `record` (the hub's own commits) when given, else by `ledger.mark_jobs` on `run_db`.

        A stopped spooler may be started again (a hub that lost the lead of its store and took it back): what it
        had queued is dropped and taken again from the database, which holds every job not yet printed."""
        self._ledger, self._run_db, self._notify, self._record = ledger, run_db, notify, record
        if self._stop.is_set():
            self._stop = asyncio.Event()
            self._threads = ThreadPoolExecutor(max_workers=len(self.printers) + 1, thread_name_prefix="kds-print")
            for p in self.printers.values():
                p.queue.clear()
                p.wake = asyncio.Event()
        pending: list[PrintJob] = await run_db(ledger.pending_jobs)
        for job in pending:
            target = job.target if job.target in self.printers else job.printer
            if target not in self.printers:
                log.error("%s is for printer %s, which is not in the config: not printed", job.describe(), target)
                continue
            job.target = target
            self.printers[target].queue.append(job)
        if pending:
            again = sum(j.reprint for j in pending)
            log.info("%d print jobs waiting from the last run (%d to print again marked REPRINT)", len(pending), again)
        await self.renderer.start()
        for pid in self.printers:
            self._workers.append(asyncio.create_task(self._worker(pid), name=f"spool-{pid}"))

    def submit(self, jobs: Sequence[PrintJob]) -> None:
        """New jobs, already in the database: queue each on its printer (or where that printer's tickets go now)."""
        if self._stop.is_set():
            return  # they are stored; the next start prints them
        for job in jobs:
            if job.printer not in self.printers:
                log.error("%s is for unknown printer %s: not printed", job.describe(), job.printer)
                continue
            job.target = self._route(job.printer)
            p = self.printers[job.target]
            p.queue.append(job)
            p.wake.set()

    async def stop(self) -> None:
        """Stop the workers; jobs not printed stay in the database for the next start."""
        self._stop.set()
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        self._workers = []
        await self.renderer.close()
        self._threads.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- state for people

    def status(self) -> dict[str, dict[str, Any]]:
        """Each printer: state, message, queued jobs, failures, failed over."""
        return {
            pid: {
                "state": p.told[0].value,
                "message": p.told[1],
                "queued": len(p.queue),
                "failures": p.failures,
                "failed_over": p.failed_over,
                "printed": p.printed,
            }
            for pid, p in self.printers.items()
        }

    # ---------------------------------------------------------------- routing

    def _route_via(self, printer_id: str) -> str:
        """Where its tickets would go if it failed over now."""
        p = self.printers[printer_id]
        was, p.failed_over = p.failed_over, True
        try:
            return self._route(printer_id)
        finally:
            p.failed_over = was

    def _route(self, printer_id: str) -> str:
        """Where a printer's tickets go now: itself, or the first backup in its chain that has not failed over."""
        seen = {printer_id}
        current = printer_id
        while self.printers[current].failed_over:
            nxt = self.printers[current].config.backup
            if nxt is None or nxt in seen or nxt not in self.printers:
                break
            seen.add(nxt)
            current = nxt
        return current

    # ---------------------------------------------------------------- the worker

    async def _thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))

    async def _db(self, fn: Callable[[], T]) -> T:
        assert self._run_db is not None
        result: T = await self._run_db(fn)
        return result

    async def _pause(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if wake is not None:  # the caller cleared it before looking at the queue
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _worker(self, pid: str) -> None:
        p = self.printers[pid]
        if not p.queue:
            # Each printer's state is told at start, good or not: trouble is known before the first ticket, and
            # screens that still show an alert from before a restart drop it when the printer is fine now.
            try:
                health = await self._thread(probe, p.config)
            except Exception:
                log.exception("printer %s: status check failed", pid)
            else:
                if health.state is PrinterState.OK:
                    self._tell(p, PrinterState.OK, f"{p.label}: {health.message}")
                else:
                    self._tell(p, health.state, self._trouble_text(p, health.message))
        while not self._stop.is_set():
            try:
                await self._turn(pid, p)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the printing of the other jobs
                log.exception("printer %s: spooler error", pid)
                await self._pause(p.delay() or 1.0)

    async def _turn(self, pid: str, p: _Printer) -> None:
        if not p.queue:
            if p.failed_over or p.told[0] is not PrinterState.OK:
                # Its tickets go elsewhere meanwhile: look again, now and then, whether it is back.
                p.wake.clear()
                await self._pause(p.delay(), p.wake)
                if p.queue or self._stop.is_set():
                    return
                health = await self._thread(probe, p.config)
                if health.state is PrinterState.OK:
                    self._back(p)
                else:
                    if p.failed_over:  # waits longer and longer; a printer with no ticket yet is not "failing"
                        p.failures += 1
                    self._tell(p, health.state, self._trouble_text(p, health.message))
                return
            p.wake.clear()
            if not p.queue:
                await self._pause(3600, p.wake)
            return
        batch = p.queue[:BATCH_JOBS]
        outcome = await self._attempt(p, batch)
        now = self.clock()
        done, batch = batch[: outcome.printed], batch[outcome.printed :]
        del p.queue[: len(done)]
        p.printed += len(done)
        marks = [JobMark(j.id, JobState.PRINTED, pid, j.reprint, now) for j in done[outcome.recorded :]]
        for j in done:
            log.info("printed %s on %s%s", j.describe(), pid, " (REPRINT)" if j.reprint else "")
        if outcome.ok:
            await self._mark(marks)
            if p.failures or p.told[0] is not PrinterState.OK or not p.told[1]:
                self._back(p)
            return
        job = batch[0]
        job.attempts += 1
        job.reprint = job.reprint or outcome.maybe_printed
        if outcome.maybe_printed:
            job.unconfirmed += 1
        backup = p.config.backup
        can_move = backup in self.printers and not p.failed_over and self._route_via(pid) != pid
        stuck = outcome.maybe_printed and job.unconfirmed > p.config.max_resends
        if stuck and not can_move:
            # Sent, taken, never confirmed, again and again: it most likely came out (or the printer is stuck on
            # it). Not sent once more: recorded printed but unconfirmed, the station told, the queue goes on.
            del p.queue[0]
            why = f"{job.describe()} sent {job.unconfirmed} times, never confirmed ({outcome.message})"
            marks.append(JobMark(job.id, JobState.PRINTED, pid, job.reprint, now, error=f"unconfirmed: {why}"))
            await self._mark(marks)
            p.failures = 0
            log.error("printer %s: %s: not sent again; check it printed", pid, why)
            order = job.order.number or job.order_id
            self._tell(p, PrinterState.ERROR, f"{p.label}: did not confirm ticket {order}: check it came out")
            return
        marks.append(JobMark(job.id, JobState.QUEUED, pid, job.reprint, now, error=outcome.message))
        await self._mark(marks)
        if done:
            p.failures = 0  # the printer printed: this failure is the first of its kind
        p.failures += 1
        log.warning("printer %s: %s (%s, failure %d)", pid, outcome.message, job.describe(), p.failures)
        if (p.failures >= p.config.max_failures or stuck) and can_move:
            p.failed_over = True
            target = self._route(pid)
            if target != pid:
                await self._move(p, target)
                self._tell(p, outcome.state, self._trouble_text(p, outcome.message))
                return
            p.failed_over = False
        self._tell(p, outcome.state, self._trouble_text(p, outcome.message))
        await self._pause(p.delay())

    async def _mark(self, marks: list[JobMark]) -> None:
        """Store marks: with the hub's next commit (`record`, which groups those of every printer with the orders'
        events: one transaction, one wait on the disk), else in a transaction of their own."""
        if not marks:
            return
        if self._record is not None:
            await self._record(marks)
        else:
            await self._db(lambda: self._ledger_().mark_jobs(marks))

    def _ledger_(self) -> JobLedger:
        assert self._ledger is not None
        return self._ledger

    async def _move(self, p: _Printer, target: str) -> None:
        moved, p.queue = p.queue, []
        for j in moved:
            j.target = target
            j.unconfirmed = 0  # a new printer: its own count
        ids = [j.id for j in moved]
        now = self.clock()
        await self._db(lambda: self._ledger_().jobs_moved(ids, target, now))
        t = self.printers[target]
        t.queue = sorted(t.queue + moved, key=lambda j: j.id) if t.queue else moved
        t.wake.set()
        log.warning("printer %s failed %d times: %d jobs go to %s", p.config.id, p.failures, len(moved), target)

    async def _attempt(self, p: _Printer, jobs: list[PrintJob]) -> Outcome:
        """Print the first of `jobs`, and as many of the rest as fit a batch, on one connection."""
        cfg = p.config
        try:
            link = await self._thread(open_link, cfg)
        except TransportError as exc:
            return Outcome(False, PrinterState.OFFLINE, str(exc))
        try:
            talk = cfg.status_query and link.can_read
            if talk:
                try:
                    health = await self._thread(query_status, link, cfg.timeout_s)
                except TransportError as exc:
                    return Outcome(False, PrinterState.OFFLINE, f"no answer to a status query: {exc}")
                if health.state is not PrinterState.OK:
                    return Outcome(False, health.state, health.message)
            for j in jobs:  # on a backup: a banner saying whose ticket it is
                j.failover = failover_banner(self.config, j, cfg.id) if j.printer != cfg.id else None
            # In a process of lower priority: drawing tickets takes CPU the hub's devices need first.
            datas, failed = await self.renderer.render(jobs, p.profile, self.labels, max_bytes=BATCH_BYTES)
            if not datas:
                assert failed is not None
                log.error("cannot render %s for %s: %s", jobs[0].describe(), cfg.id, failed)
                return Outcome(False, PrinterState.ERROR, f"cannot render {jobs[0].describe()}: {failed}")
            for k, (job, data) in enumerate(zip(jobs, datas, strict=False)):
                # Each job is recorded *sending* before its bytes go (with the one before it printed, in the same
                # transaction): after a crash, only the job that was on its way is printed again marked REPRINT.
                now = self.clock()
                before = [JobMark(jobs[k - 1].id, JobState.PRINTED, cfg.id, jobs[k - 1].reprint, now)] if k else []
                await self._mark([*before, JobMark(job.id, JobState.SENDING, cfg.id, job.reprint, now)])
                try:
                    wait = job_wait(cfg, len(data))
                    await self._thread(send_job, link, data, confirm=talk, timeout=cfg.timeout_s, wait=wait)
                except TransportError as exc:
                    return Outcome(False, PrinterState.OFFLINE, str(exc), maybe_printed=True, printed=k, recorded=k)
            return Outcome(True, printed=len(datas), recorded=len(datas) - 1)
        finally:
            await self._thread(link.close)

    # ---------------------------------------------------------------- telling the hub

    def _trouble_text(self, p: _Printer, what: str) -> str:
        name = p.label
        if p.failed_over:
            target = self._route(p.config.id)
            return f"{name}: {what}; its tickets print on {self.printers[target].label} ({target}) until it is back"
        if p.config.backup:
            return f"{name}: {what}; retrying, then its tickets go to {p.config.backup}"
        return f"{name}: {what}; retrying until it prints"

    def _tell(self, p: _Printer, state: PrinterState, message: str) -> None:
        if p.told == (state, message):
            return
        p.told = (state, message)
        self._notify(p.config.id, state, message)

    def _back(self, p: _Printer) -> None:
        was = p.told[0]
        p.failures = 0
        p.failed_over = False
        if was is not PrinterState.OK:
            self._tell(p, PrinterState.OK, f"{p.label} is printing again")
        elif not p.told[1]:  # the first word of this run about it (its queue was not empty at start)
            self._tell(p, PrinterState.OK, f"{p.label}: ready")
