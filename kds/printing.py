"""Print jobs: which tickets the hub prints, and the contract between the hub and its print spooler. No I/O.

The hub decides *which* jobs to make (`station_jobs` for a ticket created, amended or cancelled; `print.request`
from the counter for claim tags, pickup slips, expo tickets and reprints). The jobs travel in the hub's `Decision`
and are stored in the same database transaction as the events that caused them, before anything is sent to a
printer. The spooler (`printers.spooler`, an adapter) renders them with `printers.layouts` and sends them with
`printers.transports`; the hub only knows it through `PrintSink`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from kds.config import Language, StoreConfig
from kds.i18n import printer_language, station_name
from kds.protocol import ItemView, OrderView, PrinterState, PrintLayout, TicketState

Layout = PrintLayout
__all__ = [
    "Banner",
    "JobLedger",
    "JobMark",
    "JobState",
    "Layout",
    "PrintJob",
    "PrintSink",
    "PrinterState",
    "RecordMarks",
    "claim_items",
    "failover_banner",
    "live_tickets",
    "notice_stations",
    "station_jobs",
    "station_printers",
]


class Banner(StrEnum):
    """The banner across the top of a station ticket."""

    AMENDED = "amended"
    CANCELLED = "cancelled"
    REPRINT = "reprint"


class JobState(StrEnum):
    """Where a job stands in the spooler."""

    QUEUED = "queued"
    SENDING = "sending"
    """Its bytes may have reached a printer: after a crash it is printed again, marked REPRINT."""
    PRINTED = "printed"


@dataclass(frozen=True, slots=True)
class JobMark:
    """One change of a job's state in the spooler's ledger."""

    job_id: int
    state: JobState
    """SENDING: its bytes are about to go to `target` (committed before they do); PRINTED: the printer confirmed it;
    QUEUED: it waits for another attempt."""
    target: str
    reprint: bool
    at: datetime
    error: str | None = None
    """QUEUED after a failed attempt: what went wrong (the attempt is counted)."""


@dataclass(slots=True)
class PrintJob:
    """One thing to print, as stored in the database."""

    id: int
    """Increasing in the order the hub made the jobs; a printer prints its jobs in this order."""
    printer: str
    """The printer the job is for (a station's or the counter's)."""
    layout: Layout
    order_id: str
    station: str | None
    banner: Banner | None
    created_at: datetime
    order_json: str
    """The order (`OrderView` JSON) as of the job: what the ticket shows."""
    reason: str
    """What made the job (an event kind, or `print.request from counter-1`), for the logs."""
    target: str = ""
    """The printer it goes to now: `printer`, or a backup after failures."""
    state: JobState = JobState.QUEUED
    reprint: bool = False
    """It may already have been printed (a crash or a lost answer mid-send): print it marked REPRINT."""
    attempts: int = 0
    dropped: bool = False
    """Set when its decision was withdrawn (a duplicate order): it is neither stored nor printed."""
    failover: str | None = None
    """Set by the spooler when it prints on a printer that is not its own (`target` is a backup): a banner across
    the top, in that printer's language, saying whose ticket it is (`failover_banner`). Not stored: it follows
    from `target`."""
    unconfirmed: int = 0
    """Times the spooler sent it and the printer did not confirm it (this run; capped by `max_resends`)."""

    def __post_init__(self) -> None:
        if not self.target:
            self.target = self.printer

    @property
    def order(self) -> OrderView:
        """The order the ticket shows, parsed from `order_json` at each call (the layouts parse it once per job)."""
        return OrderView.model_validate_json(self.order_json)

    def describe(self) -> str:
        """`job 12 (station wok, 20261125-S001)` for logs and messages."""
        what = f"{self.layout.value} {self.station}" if self.station else self.layout.value
        return f"job {self.id} ({what}, {self.order_id})"


def station_printers(config: StoreConfig, printer: str) -> list[str]:
    """Stations whose printer this is (they are told when it is in trouble)."""
    return [s.id for s in config.stations if s.printer == printer]


def notice_stations(config: StoreConfig, printer: str) -> list[str]:
    """Stations told about this printer's trouble: its own, then those of the printers its tickets go to when it
    fails (its backup, that one's backup…): their printer prints its tickets, their cooks should know."""
    stations = station_printers(config, printer)
    seen = {printer}
    p = config.printer(printer)
    while p is not None and p.backup is not None and p.backup not in seen:
        seen.add(p.backup)
        stations += [s for s in station_printers(config, p.backup) if s not in stations]
        p = config.printer(p.backup)
    return stations


FAILOVER_WORDS = {
    "en": "FOR {name} — its printer is down",
    "zh": "代{name}打印 — 其打印机故障",
}


def failover_banner(config: StoreConfig, job: PrintJob, target: str) -> str:
    """The banner of a ticket printed on `target`, not its own printer: `FOR SEAFOOD & STEAM — its printer is down`,
    in `target`'s language (the station's name from the config; the printer's name for a counter job)."""
    lang = printer_language(config, target)
    if job.station is not None:
        name = station_name(config, job.station, lang)
    else:
        own = config.printer(job.printer)
        name = (own.name if own is not None and own.name else job.printer) or job.printer
    words = FAILOVER_WORDS.get(lang.value, FAILOVER_WORDS["en"])
    return words.format(name=name.upper() if lang is Language.EN else name)


def station_jobs(
    config: StoreConfig,
    kind: str,
    order: OrderView,
    stations: Iterable[str],
    banner: Banner | None,
    *,
    next_id: Callable[[], int],
    at: datetime,
    order_json: str,
) -> list[PrintJob]:
    """Station tickets for `stations` of `order` (those with a printer), in station order of the config; each job
    carries `order_json`, the order's text as stored (the caller's: it is not serialised again here)."""
    wanted = set(stations)
    jobs = []
    for s in config.stations:
        if s.id not in wanted or s.printer is None:
            continue
        jobs.append(
            PrintJob(
                id=next_id(),
                printer=s.printer,
                layout=Layout.STATION,
                order_id=order.id,
                station=s.id,
                banner=banner,
                created_at=at,
                order_json=order_json,
                reason=kind,
            )
        )
    return jobs


def live_tickets(order: OrderView) -> list[str]:
    """Stations whose ticket of the order is not cancelled."""
    return [t.station for t in order.tickets if t.state is not TicketState.CANCELLED]


def claim_items(order: OrderView) -> list[ItemView]:
    """The items of an order that get a claim tag: those with a tag id, else the weighed (shelf) goods."""
    live = [i for i in order.items if not i.removed]
    tagged = [i for i in live if i.tag]
    return tagged or [i for i in live if i.weight_g]


# ------------------------------------------------------------------------------------------- the adapter's side

T = TypeVar("T")
RunDb = Callable[[Callable[[], T]], Awaitable[T]]
Notify = Callable[[str, PrinterState, str], None]
"""`notify(printer_id, state, message)`: the spooler tells the hub a printer got into trouble or out of it."""
RecordMarks = Callable[[Sequence["JobMark"]], Awaitable[None]]
"""Stores job marks with the hub's next commit (one transaction, one wait on the disk, for orders and printing)."""


class JobLedger(Protocol):
    """The spooler's durable record of jobs (implemented by `kds.store.Store`; called on the database thread)."""

    def pending_jobs(self) -> list[PrintJob]:
        """Jobs not yet printed, oldest first; those caught mid-send by a crash come back marked `reprint`."""
        ...

    def mark_jobs(self, marks: Sequence[JobMark]) -> None:
        """Record what happened to jobs, in this order, in one transaction."""
        ...

    def jobs_moved(self, job_ids: Sequence[int], target: str, at: datetime) -> None:
        """The jobs go to another printer (the backup of a failing one)."""
        ...


class PrintSink(Protocol):
    """What the hub server needs of a print spooler."""

    async def start(
        self, ledger: JobLedger, run_db: RunDb[Any], notify: Notify, *, record: RecordMarks | None = None
    ) -> None:
        """Load the jobs left by the last run and start printing; job marks go through `record` when given, else
        `ledger.mark_jobs` through `run_db`."""
        ...

    def submit(self, jobs: Sequence[PrintJob]) -> None:
        """New jobs, already committed to the database."""
        ...

    async def stop(self) -> None:
        """Stop printing (jobs not printed stay in the database)."""
        ...
