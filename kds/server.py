"""The websockets adapter around `OrderHub`: connections in, frames out, commits before acknowledgements.

Every decision the hub makes goes through one ordered pipeline: its events are committed to the database (many
decisions share a commit when they arrive together: group commit), and only then are its replies sent and its
events broadcast, in `seq` order. So an `order.accepted` is never sent for an order that is not stored, and no
device sees a state the database does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode as WsCloseCode

from kds.hub import AuthError, Decision, EventRecord, OrderHub, Session, error_frame
from kds.printing import PrintJob, PrintSink
from kds.protocol import MAX_FRAME_BYTES, CloseCode, ErrorCode, PrinterState
from kds.store import Store

log = logging.getLogger("kds.server")
T = TypeVar("T")

HELLO_TIMEOUT_S = 10.0
MAX_BUFFERED_BYTES = 8 * 1024 * 1024
"""A device that stops reading is disconnected past this much unsent data (it resumes when it reconnects)."""


class _KdsConnection(ServerConnection):
    """Closes oversized frames with our 4xxx code instead of websockets' 1009."""

    def __init__(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
        original = protocol.fail

        def fail(code: int, reason: str = "") -> None:
            if code == WsCloseCode.MESSAGE_TOO_BIG:
                code, reason = CloseCode.TOO_LARGE, f"frame larger than {MAX_FRAME_BYTES} bytes"
            original(code, reason)

        protocol.fail = fail
        super().__init__(protocol, *args, **kwargs)


class HubServer:
    """`kds serve`: the hub on a websocket endpoint, backed by a database."""

    def __init__(
        self,
        hub: OrderHub,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        printing: PrintSink | None = None,
    ) -> None:
        self.hub = hub
        self.store = store
        self.printing = printing
        """The print spooler (`printers.spooler.Spooler`), when the hub prints."""
        self.host = host
        self.port = port
        self.sessions: set[Session] = set()
        self._server: Server | None = None
        self._pending: list[tuple[Decision, ServerConnection | None]] = []
        self._wake = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kds-db")
        self.failed: BaseException | None = None
        self.stopped = asyncio.Event()
        self.commits = 0
        self._tasks: set[asyncio.Future[Any]] = set()
        # Several hubs on one store (PostgreSQL): one leads (decides and writes), the others follow the events it
        # stores and relay their devices' frames to it through the database.
        self.hub_id = uuid.uuid4().hex[:12]
        self.leading = True
        self._waiting: dict[int, Session] = {}
        """Follower: relayed command id → the session waiting for its answer."""
        self._last_reply = 0
        self._last_command = 0
        self._notified = asyncio.Event()
        self._listen_stop = threading.Event()
        self._cluster_tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load state from the database and start listening."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.store.claim_file)
        await loop.run_in_executor(self._executor, self.store.create_schema)
        docs, events, seq, keys = await loop.run_in_executor(
            self._executor,
            lambda: self.store.load(now=self.hub.clock(), replay_window=self.hub.log.maxlen or 0),
        )
        last_job = await loop.run_in_executor(self._executor, self.store.last_job_id)
        self.hub.restore(docs, events, seq, keys, last_job=last_job)
        log.info("restored %d orders, seq=%d, %d replayable events", len(docs), seq, len(events))
        if self.store.shared:
            await self._join_store(loop)
        if self.leading:
            await self._lead()
        self._committer = asyncio.create_task(self._commit_loop(), name="kds-committer")
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="kds-housekeeping")
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=MAX_FRAME_BYTES,
            create_connection=_KdsConnection,
            ping_interval=20,
            ping_timeout=20,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        log.info("hub %s listening on ws://%s:%d", self.hub.config.store.id, self.host, self.port)

    # ------------------------------------------------------------------ several hubs on one store

    async def _join_store(self, loop: asyncio.AbstractEventLoop) -> None:
        self.leading = await self.run_db(self.store.try_lead)
        self._last_reply = await self.run_db(self.store.last_reply_id)

        def notified(payload: str) -> None:
            if payload.startswith("p"):
                loop.call_soon_threadsafe(self._printer_elsewhere, payload[1:])
            else:
                loop.call_soon_threadsafe(self._notified.set)

        self._listener = loop.run_in_executor(None, self.store.listen, notified, self._listen_stop)
        self._cluster_tasks.append(asyncio.create_task(self._cluster_loop(), name="kds-cluster"))
        log.info("hub %s %s store %s", self.hub_id, "leads" if self.leading else "follows", self.store.store_id)

    def _printer_elsewhere(self, payload: str) -> None:
        if self.leading:
            return
        p = json.loads(payload)
        self._tell_printer(self.hub.printer_status(p["printer"], PrinterState(p["state"]), p["message"]))

    async def _lead(self) -> None:
        if self.printing is not None:
            await self.printing.start(self.store, self.run_db, self.printer_status)

    async def _cluster_loop(self) -> None:
        # Woken by NOTIFY; also every second, so a lost notification only delays, and a follower tries to lead.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._notified.wait(), 1.0)
            self._notified.clear()
            try:
                if self.leading:
                    if not await self.run_db(self.store.still_leading):
                        raise RuntimeError("lost the database connection that holds the lead of the store")
                    await self._take_commands()
                else:
                    await self._follow()
                    if await self.run_db(self.store.try_lead):
                        await self._follow()  # whatever the old leader stored before it went
                        self.hub.job_seq = await self.run_db(self.store.last_job_id)
                        self.leading = True
                        log.warning("hub %s now leads store %s", self.hub_id, self.store.store_id)
                        await self._lead()
                        await self._take_commands()
            except Exception as exc:
                log.critical("hub %s stops: %s", self.hub_id, exc, exc_info=True)
                self.failed = exc
                self._spawn(self.stop())
                return

    async def _follow(self) -> None:
        """Apply what the leading hub stored: answers to this hub's devices first, then the events."""
        for rid, cid, frame in await self.run_db(lambda: self.store.replies_for(self.hub_id, self._last_reply)):
            self._last_reply = max(self._last_reply, rid)
            session = self._waiting.pop(cid, None)
            if session is not None and session.conn is not None:
                broadcast([session.conn], frame)
        while True:
            batch = await self.run_db(lambda: self.store.events_after(self.hub.seq))
            for seq, payload in batch:
                self._broadcast(self.hub.apply_external(seq, payload))
            if len(batch) < 5000:
                break

    async def _take_commands(self) -> None:
        """The leading hub decides the frames other hubs relayed, in the order they came."""
        for cid, origin, device_id, frame in await self.run_db(lambda: self.store.pending_commands(self._last_command)):
            self._last_command = cid
            device = self.hub.config.device(device_id)
            if device is None:
                continue
            session = Session(device, floor=2**62, origin=(origin, cid))
            if origin == self.hub_id:
                # Relayed by this hub before it led: the device still waits here.
                waiting = self._waiting.pop(cid, None)
                session.conn = waiting.conn if waiting is not None else None
            self._submit(self.hub.handle_frame(session, frame), None)

    async def _relay(self, session: Session, frame: str | bytes) -> None:
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        cid = await self.run_db(lambda: self.store.relay_command(self.hub_id, session.device.id, text))
        self._waiting[cid] = session

    async def run_db(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the database thread (the one writer) and wait for it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def printer_status(self, printer: str, state: PrinterState, message: str) -> None:
        """A printer got into trouble or out of it: tell its stations' screens and the counter."""
        notice = self.hub.printer_status(printer, state, message)
        (log.info if notice.ok else log.warning)("printer %s: %s: %s", printer, state.value, message)
        if self.store.shared:
            # The other hubs of the store tell their own screens (the leader's spooler is the only one printing).
            payload = json.dumps({"printer": printer, "state": state.value, "message": message})
            self._spawn(self.run_db(lambda: self.store.notify("p" + payload)))
        self._tell_printer(notice)

    def _tell_printer(self, notice: Any) -> None:
        conns = [s.conn for s in self.sessions if s.conn is not None and notice.frame_for(s) is not None]
        if conns:
            broadcast(conns, notice.frame)

    @property
    def url(self) -> str:
        """The websocket URL clients connect to."""
        return f"ws://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, flush what is pending, close connections."""
        if self._server is not None:
            self._server.close(close_connections=False)
            for s in list(self.sessions):
                if s.conn is not None:
                    await s.conn.close(CloseCode.HUB_SHUTTING_DOWN, "hub shutting down")
            await self._server.wait_closed()
        self._wake.set()
        self._listen_stop.set()
        for t in self._cluster_tasks:
            t.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener
        if self.printing is not None and self.leading:
            await self.printing.stop()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        if self._pending and self.failed is None:
            self._flush_sync()
        self._executor.shutdown(wait=True)
        self.store.close()
        self.stopped.set()

    async def serve_forever(self) -> None:
        """Run until stopped (or until the database fails)."""
        await self.stopped.wait()
        if self.failed is not None:
            raise self.failed

    async def _housekeeping(self, every_s: float = 60.0) -> None:
        # Closed orders leave memory after a while; they stay in the database (and their keys in the index).
        while True:
            await asyncio.sleep(every_s)
            dropped = self.hub.evict()
            if dropped:
                log.info("evicted %d closed orders from memory", dropped)
            if self.store.shared and self.leading:
                await self.run_db(self.store.prune_relay)

    # ------------------------------------------------------------------ connections

    async def _handle(self, conn: ServerConnection) -> None:
        try:
            first = await asyncio.wait_for(conn.recv(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await conn.close(CloseCode.BAD_HELLO, "no hello")
            return
        except ConnectionClosed:
            return
        try:
            session, decision = self.hub.connect(first, conn)
        except AuthError as exc:
            log.warning("refused connection from %s: %s", conn.remote_address, exc)
            with contextlib.suppress(ConnectionClosed):
                await conn.send(exc.frame)
                await conn.close(exc.close_code, str(exc)[:120])
            return
        self.sessions.add(session)
        self._submit(decision, conn)
        try:
            async for frame in conn:
                if self.leading:
                    self._submit(self.hub.handle_frame(session, frame), conn)
                else:
                    await self._relay(session, frame)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(session)
            log.info("device %s disconnected (%s)", session.device.id, conn.close_code)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _submit(self, decision: Decision, conn: ServerConnection | None) -> None:
        self._pending.append((decision, conn))
        self._wake.set()

    # ------------------------------------------------------------------ commit, then deliver

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                records, jobs, replies, done = self._writes(batch)
                if records or jobs or done:
                    try:
                        known = await loop.run_in_executor(
                            self._executor,
                            functools.partial(self.store.commit, records, jobs, replies=replies, done=done),
                        )
                    except Exception as exc:
                        # The hub's memory is ahead of the database now: stop rather than acknowledge anything.
                        log.critical("database commit failed, stopping the hub: %s", exc, exc_info=True)
                        self.failed = exc
                        for _d, c in batch:
                            if c is not None:
                                broadcast([c], error_frame(None, ErrorCode.INTERNAL, "hub storage failure"))
                        self._spawn(self.stop())
                        return
                    self._withdraw(batch, known)
                    self.commits += 1
                    self._print(jobs)
                for d, _c in batch:
                    self._deliver(d)

    def _writes(
        self, batch: list[tuple[Decision, ServerConnection | None]]
    ) -> tuple[list[EventRecord], list[PrintJob], list[tuple[str, int, str]], list[int]]:
        """What a batch stores: events, print jobs, answers to frames relayed by other hubs, those frames' ids."""
        records = [r for d, _ in batch for r in d.events]
        jobs = [j for d, _ in batch for j in d.jobs]
        relayed = [(s.origin, f) for d, _ in batch for s, f in d.replies if s.origin is not None]
        replies = [(o[0], o[1], f) for o, f in relayed if o[0] != self.hub_id]
        done = sorted({o[1] for o, _ in relayed})
        return records, jobs, replies, done

    def _withdraw(
        self, batch: list[tuple[Decision, ServerConnection | None]], known: dict[str, tuple[str, str]]
    ) -> None:
        # New orders the database refused as resubmissions of older ones: answered as duplicates.
        for d, _ in batch:
            if d.created in known:
                self.hub.withdraw(d, known[d.created])

    def _flush_sync(self) -> None:
        batch, self._pending = self._pending, []
        records, jobs, replies, done = self._writes(batch)
        if records or jobs or done:
            self._withdraw(batch, self.store.commit(records, jobs, replies=replies, done=done))
        for d, _c in batch:
            self._deliver(d)

    def _print(self, jobs: list[PrintJob]) -> None:
        # Only now, with the jobs durable, may a printer see them.
        if self.printing is not None and jobs:
            self.printing.submit([j for j in jobs if not j.dropped])

    def _deliver(self, d: Decision) -> None:
        for line in d.logs:
            log.info("%s", line)
        for session, frame in d.replies:
            if session.conn is not None:
                broadcast([session.conn], frame)
        for rec in d.events:
            self._broadcast(rec)
        if d.close is not None:
            for session, _ in d.replies[:1]:
                if session.conn is not None:
                    self._spawn(session.conn.close(*d.close))

    def _broadcast(self, rec: EventRecord) -> None:
        full: list[ServerConnection] = []
        status: list[ServerConnection] = []
        for s in self.sessions:
            f = rec.frame_for(s)
            if f is None or s.conn is None:
                continue
            if _congested(s.conn):
                log.warning("device %s is not reading; disconnecting it", s.device.id)
                self._spawn(s.conn.close(1008, "too far behind; reconnect with resume_from"))
                continue
            (full if f is rec.frame else status).append(s.conn)
        if full:
            broadcast(full, rec.frame)
        if status and rec.status_frame is not None:
            broadcast(status, rec.status_frame)


def _congested(conn: ServerConnection) -> bool:
    transport = conn.transport
    return transport is not None and transport.get_write_buffer_size() > MAX_BUFFERED_BYTES
