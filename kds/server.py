"""The websockets adapter around `OrderHub`: connections in, frames out, commits before acknowledgements.

Every decision the hub makes goes through one ordered pipeline: its events are committed to the database (many
decisions share a commit when they arrive together: group commit), and only then are its replies sent and its
events broadcast, in `seq` order. So an `order.accepted` is never sent for an order that is not stored, and no
device sees a state the database does not hold.

The hub keeps serving whatever one device or the database does (docs/reliability.md):
- every frame a connection gets goes through its `Outbox`, which has a byte cap; a device that does not read is
  closed (4011) instead of growing the hub, and keepalive pings never wait behind a full buffer;
- a commit that fails (disk full, lock held, connection lost) is undone in memory (`OrderHub.rollback`): nobody
  was told of it, every frame of it is answered `unavailable` (retry), and the hub refuses changes for a backoff
  while it serves reads and screens, then tries again;
- rates, connections and log lines are bounded per device and per address (`Limits` in the config).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConcurrencyError, ConnectionClosed
from websockets.frames import CloseCode as WsCloseCode
from websockets.protocol import State

from kds.cluster import Cluster, Do, FrameKind, Route
from kds.collector import Collect, CollectorPolicy, carry_out
from kds.config import Role
from kds.hub import READS, AuthError, Decision, EventRecord, OrderHub, Session, Window, error_frame, unavailable_frame
from kds.limits import DeviceLockout, LogThrottle, TokenBucket
from kds.outbox import Encoded, Outbox
from kds.printing import JobMark, PrintJob, PrintSink
from kds.protocol import (
    ROLE_MESSAGES,
    CloseCode,
    ErrorCode,
    FrameError,
    PrinterState,
    _ref_of,
    parse_client_frame,
)
from kds.store import NotLeading, Store
from kds.tls import websockets_log

log = logging.getLogger("kds.server")
T = TypeVar("T")

CLOSE_TIMEOUT_S = 2.0
"""After the hub sends a close frame, the peer has this long to answer before the TCP connection is cut."""
TICK_S = 1.0
"""Housekeeping of connections (keepalive, stalls, the total outgoing budget) runs this often."""
EVICT_EVERY_S = 30.0
MARKS_WAIT_S = 0.01
"""How long the spooler's marks wait for a commit of orders to go with, before they are stored on their own."""
CHECKPOINT_EVERY_S = 0.25
"""SQLite: how often the hub copies the write-ahead log into the database file, on its own thread (when anything
was committed since the last time)."""


class BindError(OSError):
    """The hub cannot listen where it was told (the port is taken, the address is not this machine's): its message
    says so and what to do, in a store manager's words."""


def bind_problem(host: str, port: int, exc: OSError) -> str:
    """What a store manager reads when the hub cannot listen on `host`:`port` (no traceback)."""
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where} is in use (another hub running?): stop the program that holds it, or start this hub with "
            "another --port"
        )
    if exc.errno == errno.EACCES:
        return f"{where} is not allowed to this user (ports below 1024 need privileges): use a --port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: give --host one of its addresses (or 0.0.0.0 for all)"
    if isinstance(exc, socket.gaierror):
        return f"--host {host} is not a known host name or address ({exc.strerror or exc})"
    return f"cannot listen on {where}: {exc.strerror or exc}"


class _KdsConnection(ServerConnection):
    """Closes oversized frames with our 4xxx code instead of websockets' 1009."""

    def __init__(self, protocol: Any, *args: Any, **kwargs: Any) -> None:
        original = protocol.fail

        def fail(code: int, reason: str = "") -> None:
            if code == WsCloseCode.MESSAGE_TOO_BIG:
                limit = getattr(protocol, "max_message_size", None)
                code, reason = CloseCode.TOO_LARGE, f"frame larger than {limit} bytes"
            original(code, reason)

        protocol.fail = fail
        super().__init__(protocol, *args, **kwargs)


@dataclass(slots=True)
class OrderTiming:
    """When a new order passed each step in the hub, in seconds of `time.monotonic` (`CLOCK_MONOTONIC` on Linux: one
    clock for every process of the machine, so a client's send and a screen's read line up with them): `kds serve
    --timings`, and the anatomy of the bench's paced runs (`bench/run.py --anatomy`)."""

    key: str
    """The source's idempotency key of the order."""
    received: float
    """Its frame handed to the hub (read and framed by websockets)."""
    decided: float
    """Decided: validated, numbered, its events and print jobs made."""
    commit_started: float = 0.0
    """Its batch handed to the database thread (the commit before it done)."""
    committed: float = 0.0
    """Its batch's commit returned."""
    delivered: float = 0.0
    """Its batch's frames (the source's answer, the screens' events) written to the connections."""


@dataclass(eq=False)
class Link:
    """One websocket connection as the server sees it: its outgoing queue, its address, its device (after hello)."""

    conn: ServerConnection
    ip: str
    outbox: Outbox
    session: Session | None = None
    closing: bool = False
    last_ping: float = field(default_factory=time.monotonic)


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
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.hub = hub
        self.store = store
        self.limits = hub.limits
        self.printing = printing
        """The print spooler (`printers.spooler.Spooler`), when the hub prints."""
        self.host = host
        self.port = port
        self.tls = tls
        """The hub's TLS context (`kds.tls.server_context`): the endpoint is `wss://` only; None: plain `ws://`."""
        self.sessions: set[Session] = set()
        self._links: dict[ServerConnection, Link] = {}
        self._per_device: collections.Counter[str] = collections.Counter()
        self._screens: collections.Counter[str] = collections.Counter()
        """Station → its kitchen devices connected: the cooks the hub's ready-time estimates count on, where the
        config does not say (`[[stations]] cooks`)."""
        hub.load.screens = self._screens
        self._stopping = False
        self._queued: collections.Counter[ServerConnection] = collections.Counter()
        """Decisions of each connection waiting in the commit pipeline (its reads wait behind them)."""
        self._server: Server | None = None
        self._pending: list[tuple[Decision, ServerConnection | None]] = []
        self._collector = CollectorPolicy(started=time.monotonic())
        """When Python's cyclic garbage collector may walk the hub's memory (`kds.collector`)."""
        self._last_frame: float | None = None
        self._cork: list[Outbox] | None = None
        """While a committed batch is delivered: the outboxes holding its frames, flushed once it is (`Outbox.put`)."""
        self._marks: list[JobMark] = []
        """What the spooler did with jobs, stored with the next commit (`record_marks`)."""
        self._marked: asyncio.Future[None] | None = None
        """Resolved when the marks waiting now are stored."""
        self._marks_due = 0.0
        """When the marks waiting now are stored even if no order comes (the loop's clock, `MARKS_WAIT_S`)."""
        self._wake = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kds-db")
        self._checkpointer: ThreadPoolExecutor | None = None
        """SQLite: the thread that checkpoints the write-ahead log (`_checkpoint_loop`)."""
        self._checkpointing: asyncio.Task[None] | None = None
        self.checkpoints = 0
        """Checkpoints made by `_checkpoint_loop` (tests read it)."""
        self.failed: BaseException | None = None
        self.stopped = asyncio.Event()
        self.commits = 0
        self.after_commit: Callable[[Sequence[EventRecord]], None] | None = None
        """Tests only (None in service): called with each batch's events once its commit has returned and before any
        frame of that batch (reply or event) goes out; tests/test_promises_b.py holds acknowledge-after-commit to it."""
        self.timings: list[OrderTiming] | None = None
        """Set to a list to have an `OrderTiming` appended for each new order stored (`kds serve --timings`)."""
        self._timing: dict[int, OrderTiming] = {}
        """The timings of the decisions waiting to be stored (by the decision's id)."""
        self.commit_failures = 0
        """Commits the database refused since the hub started (each undone and answered `unavailable`)."""
        self.closes: collections.Counter[int] = collections.Counter()
        """Connections the hub closed, by close code (tests and the reliability bench read it)."""
        self._failing = 0
        """Failed commits in a row (the backoff before the hub accepts changes again doubles with each)."""
        self._tasks: set[asyncio.Future[Any]] = set()
        # Limits: token buckets per device (frames) and per address (hellos, refused hellos), one log throttle.
        self._frames: dict[str, TokenBucket] = {}
        self._abuse: dict[str, TokenBucket] = {}
        self._hellos: dict[str, TokenBucket] = {}
        self._auth_failures: dict[str, TokenBucket] = {}
        self._quiet = LogThrottle(self.limits.log_interval_s)
        lim = self.limits
        self.lockout = DeviceLockout(
            failures=lim.device_lockout_failures,
            window_s=lim.device_lockout_window_s,
            lock_s=lim.device_lockout_s,
            trust_s=lim.device_trust_h * 3600,
        )
        """Wrong tokens per device (timed by the hub's clock, `OrderHub.clock`)."""
        # Several hubs on one store (PostgreSQL): one leads (decides and writes), the others follow the events it
        # stores and relay their devices' frames to it through the database. `cluster` decides (kds/cluster.py).
        self.hub_id = uuid.uuid4().hex[:12]
        self.cluster = Cluster(shared=store.shared, prints=printing is not None)
        self._waiting: dict[int, Session] = {}
        """Follower: relayed command id → the session waiting for its answer."""
        self._last_reply = 0
        self._last_command = 0
        self._notified = asyncio.Event()
        self._listen_stop = threading.Event()
        self._cluster_tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Take the port, then load state from the database and start listening.

        The port comes first: a hub that cannot have it (another hub runs there) raises `BindError` before it has
        opened, created or locked anything of its store.
        """
        loop = asyncio.get_running_loop()
        lim = self.limits
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self.port,
                max_size=lim.max_frame_bytes,
                create_connection=_KdsConnection,
                # Off unless the config asks: per-connection compression costs the hub CPU for every frame to every
                # screen and stops an event from being framed once for all of them (`Encoded`).
                compression="deflate" if lim.compression else None,
                # Keepalive is the server's own (`_keepalive`): websockets' waits behind a full write buffer.
                ping_interval=None,
                close_timeout=CLOSE_TIMEOUT_S,
                ssl=self.tls,
                logger=websockets_log("websockets.server"),  # never the frames (a hello's token) at DEBUG
                # Bound now, accepting once the state is loaded (`start_serving` below).
                start_serving=False,
            )
        except OSError as exc:
            raise BindError(bind_problem(self.host, self.port, exc)) from None
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        try:
            await loop.run_in_executor(self._executor, self.store.claim_file)
            await loop.run_in_executor(self._executor, self.store.check_open)
            await loop.run_in_executor(self._executor, self.store.create_schema)
            docs, events, seq, keys = await loop.run_in_executor(
                self._executor,
                lambda: self.store.load(
                    now=self.hub.clock(),
                    keep=timedelta(seconds=lim.closed_keep_s),
                    replay_window=self.hub.log_max,
                    replay_bytes=lim.replay_memory_bytes,
                    open_max_age=timedelta(hours=lim.open_max_age_h),
                ),
            )
            last_job = await loop.run_in_executor(self._executor, self.store.last_job_id)
            samples = await loop.run_in_executor(self._executor, self.store.load_prep_samples)
        except BaseException:
            # Nothing was served: give the port back at once (the caller reports why the hub did not start).
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            raise
        self.hub.prep.learn(samples)  # what the bumps taught before: learned prep times survive a restart
        self.hub.restore(docs, events, seq, keys, last_job=last_job)
        log.info("restored %d orders, seq=%d, %d replayable events", len(docs), seq, len(events))
        if self.store.shared:
            self._last_reply = await self.run_db(self.store.last_reply_id)
        await self._carry_out(self.cluster.start())
        if self.store.shared:
            self._join_store(loop)
        self._committer = asyncio.create_task(self._commit_loop(), name="kds-committer")
        if self.store.engine.dialect.name == "sqlite":
            self.store.checkpoint_elsewhere()
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kds-checkpoint")
            self._checkpointing = asyncio.create_task(self._checkpoint_loop(), name="kds-checkpoints")
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="kds-housekeeping")
        await self._server.start_serving()
        log.info("hub %s listening on %s", self.hub.config.store.id, self.url)

    # ------------------------------------------------------------------ several hubs on one store

    @property
    def leading(self) -> bool:
        """Whether this hub decides and writes for its store (always, alone on it)."""
        return self.cluster.leading

    def _join_store(self, loop: asyncio.AbstractEventLoop) -> None:
        def notified(payload: str) -> None:
            if payload.startswith("p"):
                loop.call_soon_threadsafe(self._printer_elsewhere, payload[1:])
            else:
                loop.call_soon_threadsafe(self._notified.set)

        def listening() -> None:
            # (Again) listening: whatever was notified while nobody listened is fetched by a round now.
            loop.call_soon_threadsafe(self.cluster.listening)
            loop.call_soon_threadsafe(self._notified.set)

        self._cluster_tasks.append(asyncio.create_task(self._listen_loop(notified, listening), name="kds-listen"))
        self._cluster_tasks.append(asyncio.create_task(self._cluster_loop(), name="kds-cluster"))
        log.info("hub %s %s store %s", self.hub_id, "leads" if self.leading else "follows", self.store.store_id)

    async def _listen_loop(self, notified: Callable[[str], None], listening: Callable[[], None]) -> None:
        # The notification connection can drop (a terminated backend, a restarted server): listen again, with
        # backoff, then catch up (the cluster loop also polls every `poll_s`).
        loop = asyncio.get_running_loop()
        while not self._listen_stop.is_set():
            try:
                await loop.run_in_executor(None, self.store.listen, notified, self._listen_stop, listening)
            except Exception as exc:
                delay = self.cluster.listen_lost()
                log.warning(
                    "hub %s lost its database notifications (%s); listening again in %.1f s", self.hub_id, exc, delay
                )
                await asyncio.sleep(delay)
                self._notified.set()

    def _printer_elsewhere(self, payload: str) -> None:
        if self.leading:
            return
        p = json.loads(payload)
        self._tell_printer(self.hub.printer_status(p["printer"], PrinterState(p["state"]), p["message"]))

    async def _cluster_loop(self) -> None:
        # A round when NOTIFY wakes it, or every `poll_s` (a lost notification only delays; a follower tries to
        # lead). A database fault is logged and the next round waits a backoff: the hub serves on from memory.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._notified.wait(), self.cluster.poll_s)
            self._notified.clear()
            now = time.monotonic()
            steps = self.cluster.wake(now)
            if not steps:
                continue
            try:
                await self._carry_out(steps)
                self.cluster.round_done()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.cluster.fault(now)
                failures = self.cluster.faults.failures
                if failures == 1 or failures % 30 == 0:
                    log.error(
                        "hub %s: database fault in the cluster loop (%d in a row; next round in %.1f s): %s",
                        self.hub_id,
                        failures,
                        delay,
                        exc,
                    )

    async def _carry_out(self, steps: list[Do]) -> None:
        """Carry out the cluster's steps in order, with the steps each answer leads to first."""
        todo = collections.deque(steps)
        while todo:
            todo.extendleft(reversed(await self._do(todo.popleft())))

    async def _do(self, step: Do) -> list[Do]:
        if step is Do.FOLLOW:
            await self._follow()
        elif step is Do.TRY_LEAD:
            return self.cluster.lead_answer(await self.run_db(self.store.try_lead))
        elif step is Do.CHECK_LEAD:
            return self.cluster.lead_checked(await self.run_db(self.store.still_leading))
        elif step is Do.TAKE_OVER:
            await self._follow()  # whatever the old leader stored before it went
            self.hub.job_seq = await self.run_db(self.store.last_job_id)
            if not self._pending:
                self.hub.seal()  # the undo window starts from what was just taken in
            more = self.cluster.took_over()
            if self._server is not None:  # (at start, `_join_store` says it)
                log.warning("hub %s now leads store %s", self.hub_id, self.store.store_id)
            return more
        elif step is Do.TAKE_COMMANDS:
            await self._take_commands()
        elif step is Do.START_SPOOLER:
            assert self.printing is not None
            await self.printing.start(self.store, self.run_db, self.printer_status, record=self.record_marks)
            self.cluster.spooler(True)
        elif step is Do.STOP_SPOOLER:
            assert self.printing is not None
            log.warning("hub %s does not lead store %s: its spooler stops", self.hub_id, self.store.store_id)
            await self.printing.stop()
            self.cluster.spooler(False)
        elif step is Do.RELEASE_LEAD:
            log.error("hub %s no longer holds the lead of store %s: it follows", self.hub_id, self.store.store_id)
            await self.run_db(self.store.release_lead)
        return []

    async def _follow(self) -> None:
        """Apply what the leading hub stored: answers to this hub's devices first, then the events."""
        for rid, cid, frame in await self.run_db(lambda: self.store.replies_for(self.hub_id, self._last_reply)):
            self._last_reply = max(self._last_reply, rid)
            session = self._waiting.pop(cid, None)
            if session is not None and session.conn is not None:
                self._send(session.conn, frame)
        while True:
            batch = await self.run_db(lambda: self.store.events_after(self.hub.seq))
            for seq, payload in batch:
                self._broadcast(self.hub.apply_external(seq, payload))
            if len(batch) < 5000:
                break

    async def _take_commands(self) -> None:
        """The leading hub decides the frames other hubs relayed, in the order they came."""
        if not self.hub.writable:
            return  # taken again (from `_last_command`) once the database takes writes
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

    async def _route(self, session: Session, frame: str | bytes, conn: ServerConnection) -> None:
        """Decide a device's frame here, answer it here (a follower: bad frames, reads, messages the role may not
        send), or relay it to the leader, as the cluster says."""
        if self.leading:
            if self.timings is None:
                self._submit(self.hub.handle_frame(session, frame), conn)
            else:
                self._submit(self._timed(session, frame), conn)
            return
        try:
            msg = parse_client_frame(frame)
        except FrameError:
            msg, kind = None, FrameKind.BAD
        else:
            if isinstance(msg, READS):
                kind = FrameKind.READ
            elif msg.type not in ROLE_MESSAGES[session.role]:
                kind = FrameKind.FORBIDDEN
            else:
                kind = FrameKind.WRITE
        route = self.cluster.route(kind, waiting=any(s is session for s in self._waiting.values()))
        if route is Route.RELAY:
            await self._relay(session, frame)
        elif route is Route.ANSWER and msg is not None:
            self._submit(self.hub.handle(session, msg), conn)
        else:
            self._submit(self.hub.handle_frame(session, frame), conn)

    def _timed(self, session: Session, frame: str | bytes) -> Decision:
        received = time.monotonic()
        d = self.hub.handle_frame(session, frame)
        order = self.hub.orders.get(d.created) if d.created is not None else None
        if order is not None:
            self._timing[id(d)] = OrderTiming(order.key, received, time.monotonic())
        return d

    async def _relay(self, session: Session, frame: str | bytes) -> None:
        try:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            cid = await self.run_db(lambda: self.store.relay_command(self.hub_id, session.device.id, text))
        except Exception as exc:
            if session.conn is not None:
                self._send(session.conn, unavailable_frame(_frame_ref(frame)))
            self._log_quietly(session.device.id, f"could not relay a frame of {session.device.id}: {exc}")
            return
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
            self._spawn(self._quiet_db(lambda: self.store.notify("p" + payload)))
        self._tell_printer(notice)

    async def _quiet_db(self, fn: Callable[[], Any]) -> None:
        try:
            await self.run_db(fn)
        except Exception as exc:
            log.warning("database: %s", exc)

    def _tell_printer(self, notice: Any) -> None:
        for s in list(self.sessions):
            if s.conn is not None and notice.frame_for(s) is not None:
                self._send(s.conn, notice.frame)

    @property
    def url(self) -> str:
        """The websocket URL clients connect to (`wss://` when the hub has TLS)."""
        return f"{'wss' if self.tls is not None else 'ws'}://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, flush what is pending, close connections."""
        self._stopping = True
        if self._server is not None:
            self._server.close(close_connections=False)
            for link in list(self._links.values()):
                self._close(link, CloseCode.HUB_SHUTTING_DOWN, "hub shutting down")
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S + 3):
                    await self._server.wait_closed()
            except TimeoutError:
                # Never hang on the way out: cut whatever has not closed (handshakes included).
                log.warning("connections still open at shutdown: cutting them")
                for task in list(self._server.handler_tasks):
                    task.cancel()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await self._server.wait_closed()
        self._wake.set()
        self._listen_stop.set()
        for t in self._cluster_tasks:
            t.cancel()
        if self._cluster_tasks:
            _done, late = await asyncio.wait(self._cluster_tasks, timeout=CLOSE_TIMEOUT_S + 3)
            if late:
                log.warning("cluster tasks did not stop in time: %s", [t.get_name() for t in late])
        if self.printing is not None and self.cluster.spooling:
            await self.printing.stop()
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        if (self._pending or self._marks) and self.failed is None and self.hub.writable:
            try:
                self._flush_sync()
            except Exception as exc:
                log.error("could not store what was pending at shutdown (nothing of it was acknowledged): %s", exc)
        self._executor.shutdown(wait=True)
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointing
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
        self.store.close()
        self.stopped.set()

    async def serve_forever(self) -> None:
        """Run until stopped."""
        await self.stopped.wait()
        if self.failed is not None:
            raise self.failed

    async def _housekeeping(self) -> None:
        # Every second: keepalive, stalled and over-budget connections, the waiting tickets whose time has come are
        # fired. Every 30 s: orders leave memory (they stay in the database), the limits forget quiet devices and
        # addresses, the relay table is pruned.
        last_evict = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            try:
                now = time.monotonic()
                self._tick(now)
                self._collect(now)
                if self.leading and self.hub.due:
                    fired = self.hub.fire_due()  # waiting tickets whose time has come (orders for later)
                    if fired.events:
                        self._submit(fired, None)
                if now - last_evict >= EVICT_EVERY_S:
                    last_evict = now
                    await self._evict(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping failed; the hub serves on")

    async def _evict(self, now: float) -> None:
        closed, stale = self.hub.evict()
        if closed:
            log.info("%d closed orders left memory (they stay in the database)", closed)
        for o in stale:
            log.warning(
                "order %s (%s) has been open since %s, past open_max_age_h=%g: it leaves the screens' memory; "
                "close or cancel it (it stays in the database)",
                o.number,
                o.id,
                o.created_at.isoformat(timespec="minutes"),
                self.limits.open_max_age_h,
            )
        for buckets in (self._frames, self._abuse, self._hellos, self._auth_failures):
            for key in [k for k, b in buckets.items() if b.full(now)]:
                del buckets[key]
        self.lockout.forget(self._lockout_now())
        self._quiet.forget(now)
        if self.store.shared and self.leading:
            await self._quiet_db(self.store.prune_relay)

    async def _checkpoint_loop(self) -> None:
        """SQLite: copy the write-ahead log into the database file every `CHECKPOINT_EVERY_S`, on a thread of its
        own, instead of in the commit that happens to take the log past a thousand pages (`Store.checkpoint_elsewhere`):
        that commit, and every order waiting behind it, waited some milliseconds for it."""
        assert self._checkpointer is not None
        loop = asyncio.get_running_loop()
        seen = self.commits
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if self.commits == seen:
                continue
            seen = self.commits
            try:
                await loop.run_in_executor(self._checkpointer, self.store.checkpoint)
                self.checkpoints += 1
            except Exception as exc:
                self._log_quietly("checkpoint", f"database: checkpoint failed ({exc}); trying again")

    def _collect(self, now: float) -> None:
        step = self._collector.tick(now, self._last_frame)
        if step is Collect.NOTHING:
            return
        t0 = time.perf_counter()
        found = carry_out(step)
        if step is Collect.FULL:
            log.info(
                "full garbage collection: %d unreachable objects, %.0f ms", found, (time.perf_counter() - t0) * 1e3
            )

    def _tick(self, now: float) -> None:
        lim = self.limits
        loop_now = asyncio.get_running_loop().time()
        total = 0
        for link in list(self._links.values()):
            if link.closing:
                continue
            conn = link.conn
            if link.outbox.stalled_for(now) > lim.outbox_stall_s:
                self._close(link, CloseCode.TOO_SLOW, f"not reading: nothing sent for {lim.outbox_stall_s:g} s")
                continue
            pings = conn.pending_pings
            if pings:
                oldest = min(t for _fut, t in pings.values())
                if loop_now - oldest > lim.keepalive_timeout_s:
                    self._log_quietly(
                        _who(link), f"{_who(link)}: no answer to a ping for {lim.keepalive_timeout_s:g} s; dropped"
                    )
                    self.closes[1006] += 1
                    link.closing = True
                    link.outbox.close()
                    conn.transport.abort()
                    continue
            elif now - link.last_ping >= lim.keepalive_interval_s and conn.protocol.state is State.OPEN:
                link.last_ping = now
                self._spawn(_ping(conn))
            total += link.outbox.held()
        if total > lim.outbox_total_bytes:
            # The hub as a whole holds too much for devices that do not read: close the worst first.
            for link in sorted(self._links.values(), key=lambda k: k.outbox.held(), reverse=True):
                if total <= lim.outbox_total_bytes:
                    break
                if link.closing:
                    continue
                total -= link.outbox.held()
                self._close(link, CloseCode.TOO_SLOW, "the hub holds too much unsent data: reconnect with resume_from")

    # ------------------------------------------------------------------ connections

    async def _handle(self, conn: ServerConnection) -> None:
        try:
            await self._connection(conn)
        finally:
            self._links.pop(conn, None)
            self._queued.pop(conn, None)

    async def _connection(self, conn: ServerConnection) -> None:
        lim = self.limits
        now = time.monotonic()
        ip = _ip_of(conn)
        link = Link(conn, ip, Outbox(conn, max_bytes=lim.outbox_max_bytes))
        if self._stopping:
            # Accepted just before the listener closed: it would otherwise wait for a hello the hub will not serve.
            self._links[conn] = link
            self._close(link, CloseCode.HUB_SHUTTING_DOWN, "hub shutting down")
            return
        if len(self._links) >= lim.max_connections:
            self._log_quietly("connections", f"refused a connection from {ip}: {lim.max_connections} open already")
            self._refuse(
                link,
                error_frame(None, ErrorCode.TOO_MANY_CONNECTIONS, f"the hub has {lim.max_connections} connections"),
                CloseCode.TOO_MANY_CONNECTIONS,
                "too many connections",
            )
            return
        failures = self._auth_failures.get(ip)
        if not _bucket(self._hellos, ip, lim.hellos_per_s, lim.hello_burst).take(now) or (
            failures is not None and not failures.peek(now)
        ):
            self._log_quietly("hello:" + ip, f"refused a connection from {ip}: too many new connections")
            self._refuse(
                link,
                error_frame(None, ErrorCode.RATE_LIMITED, "too many new connections from this address: wait and retry"),
                CloseCode.RATE_LIMITED,
                "too many new connections",
            )
            return
        self._links[conn] = link
        try:
            await self._serve(link)
        finally:
            link.outbox.close()
            self._links.pop(conn, None)
            session = link.session
            if session is not None:
                self.sessions.discard(session)
                self._per_device[session.device.id] -= 1
                if self._per_device[session.device.id] <= 0:
                    del self._per_device[session.device.id]
                    self._screen_gone(session)
                log.info("device %s disconnected (%s)", session.device.id, conn.close_code)

    async def _serve(self, link: Link) -> None:
        conn, lim = link.conn, self.limits
        try:
            first = await asyncio.wait_for(conn.recv(), lim.hello_timeout_s)
        except TimeoutError:
            self._close(link, CloseCode.BAD_HELLO, "no hello")
            await conn.wait_closed()
            return
        except ConnectionClosed:
            return
        claimed = self._claimed_device(first)
        if claimed is not None and self._locked_out(link, claimed):
            await conn.wait_closed()
            return
        try:
            session, decision = self.hub.connect(first, conn)
        except AuthError as exc:
            if exc.close_code == CloseCode.UNAUTHORIZED:
                self._auth_failed(link.ip)
                if claimed is not None:
                    self._wrong_token(link, claimed)
            self._log_quietly("auth:" + link.ip, f"refused connection from {link.ip}: {exc}")
            self._refuse(link, exc.frame, exc.close_code, str(exc)[:120])
            await conn.wait_closed()
            return
        dev = session.device
        self.lockout.succeeded(dev.id, link.ip, self._lockout_now())
        if self._per_device[dev.id] >= lim.max_connections_per_device:
            self._log_quietly(
                "conn:" + dev.id, f"refused another connection of {dev.id}: {lim.max_connections_per_device} open"
            )
            self._refuse(
                link,
                error_frame(
                    None,
                    ErrorCode.TOO_MANY_CONNECTIONS,
                    f"device {dev.id} has {lim.max_connections_per_device} connections open already",
                    [{"loc": ["device"], "msg": "too many connections"}],
                ),
                CloseCode.TOO_MANY_CONNECTIONS,
                "too many connections for this device",
            )
            await conn.wait_closed()
            return
        link.session = session
        self._per_device[dev.id] += 1
        if self._per_device[dev.id] == 1 and session.role is Role.KITCHEN and session.station is not None:
            self._screens[session.station] += 1
        self.sessions.add(session)
        self._submit(decision, conn)
        try:
            async for frame in conn:
                self._last_frame = time.monotonic()
                if link.closing or not self._admit(link, session, frame):
                    continue
                await self._route(session, frame, conn)
        except ConnectionClosed:
            pass

    # ------------------------------------------------------------------ refused hellos: per address, per device

    def _lockout_now(self) -> float:
        return self.hub.clock().timestamp()

    def _claimed_device(self, first: str | bytes) -> str | None:
        """The configured device a first frame names (None for anything else: the hub refuses those itself)."""
        try:
            data = json.loads(first)
        except (ValueError, TypeError, RecursionError):
            return None
        device = data.get("device") if isinstance(data, dict) and data.get("type") == "hello" else None
        return device if isinstance(device, str) and self.hub.config.device(device) is not None else None

    def _auth_failed(self, ip: str) -> None:
        lim = self.limits
        _bucket(self._auth_failures, ip, lim.auth_failures_per_min / 60, lim.auth_failure_burst).take(time.monotonic())

    def _wrong_token(self, link: Link, device: str) -> None:
        if self.lockout.failed(device, self._lockout_now()):
            lim = self.limits
            log.warning(
                "device %s locked out for %g s: %d wrong tokens within %g s, the last from %s (addresses it "
                "authenticated from within %g h are spared)",
                device,
                lim.device_lockout_s,
                lim.device_lockout_failures,
                lim.device_lockout_window_s,
                link.ip,
                lim.device_trust_h,
            )

    def _locked_out(self, link: Link, device: str) -> bool:
        """Refuse a hello of a locked-out device (its token unchecked) unless the address is one it is known at."""
        wait = self.lockout.retry_after(device, link.ip, self._lockout_now())
        if wait is None:
            return False
        self._auth_failed(link.ip)
        self._log_quietly("lockout:" + device, f"refused a hello of {device} from {link.ip}: locked out for {wait} s")
        message = f"device {device} is locked out after repeated wrong tokens: connect again in {wait} s"
        frame = error_frame(
            None, ErrorCode.LOCKED_OUT, message, [{"loc": ["device"], "msg": "locked out"}], retry_after_s=wait
        )
        self._refuse(link, frame, CloseCode.RATE_LIMITED, f"locked out: retry in {wait} s")
        return True

    def _admit(self, link: Link, session: Session, frame: str | bytes) -> bool:
        """The device's frame rate: within it, the frame is decided; over it, `rate_limited`; far over it, close."""
        lim, now, dev = self.limits, time.monotonic(), session.device.id
        if _bucket(self._frames, dev, lim.frames_per_s, lim.frame_burst).take(now):
            return True
        if not _bucket(self._abuse, dev, lim.frames_per_s, lim.abuse_burst).take(now):
            self._log_quietly("rate:" + dev, f"device {dev} keeps sending past its frame rate: closed")
            self._close(link, CloseCode.RATE_LIMITED, "too many frames")
            return False
        self._log_quietly("rate:" + dev, f"device {dev} is over its frame rate ({lim.frames_per_s:g}/s)")
        self._send(
            link.conn,
            error_frame(
                _frame_ref(frame),
                ErrorCode.RATE_LIMITED,
                f"more than {lim.frames_per_s:g} frames per second from this device: nothing was done; slow down and "
                "send it again",
                [{"loc": [], "msg": "rate limited"}],
            ),
        )
        return False

    def _refuse(self, link: Link, frame: str, code: int, reason: str) -> None:
        # Connections that never got a session: one error frame, then the close (never waiting on the peer).
        self._links.setdefault(link.conn, link)
        self._send(link.conn, frame)
        self._close(link, code, reason)

    def _send(self, conn: ServerConnection, frame: str | bytes | Encoded, *, welcome: bool = False) -> None:
        """Queue one frame for one connection; a connection over its cap, or one that fails, is closed (only it).
        `welcome`: a frame of a welcome, not counted against the cap (`Outbox`)."""
        link = self._links.get(conn)
        if link is None or link.closing:
            return
        try:
            data = frame.encode("utf-8") if isinstance(frame, str) else frame
            if not link.outbox.put(data, welcome=welcome, cork=self._cork):
                self._close(
                    link,
                    CloseCode.TOO_SLOW,
                    f"more than {self.limits.outbox_max_bytes} bytes waiting: reconnect with resume_from",
                )
        except Exception:
            log.exception("failed sending to %s; closing that connection only", _who(link))
            self._close(link, CloseCode.INTERNAL, "hub error while sending to this connection")

    def _close(self, link: Link, code: int, reason: str) -> None:
        """Close a connection without waiting on it: what waits is dropped, the close frame goes out (behind what
        the socket holds), and the TCP connection is cut if the peer has not answered within CLOSE_TIMEOUT_S."""
        if link.closing:
            return
        link.closing = True
        self.closes[code] += 1
        link.outbox.close()
        conn = link.conn
        if code not in (CloseCode.HUB_SHUTTING_DOWN, CloseCode.BAD_HELLO) and link.session is not None:
            self._log_quietly("close:" + _who(link), f"closing {_who(link)}: {code} {reason}")
        try:
            if conn.protocol.state is State.OPEN:
                conn.protocol.send_close(code, reason[:120])
                conn.send_data()
        except Exception as exc:
            log.debug("close of %s: %s", _who(link), exc)
        transport = conn.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.abort)

    def _log_quietly(self, key: str, line: str, level: int = logging.WARNING) -> None:
        held = self._quiet.allow(key, time.monotonic())
        if held is not None:
            log.log(level, "%s%s", line, f" (and {held} more like it)" if held else "")

    def _screen_gone(self, session: Session) -> None:
        station = session.station
        if session.role is Role.KITCHEN and station is not None:
            self._screens[station] -= 1
            if self._screens[station] <= 0:
                del self._screens[station]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _submit(self, decision: Decision, conn: ServerConnection | None) -> None:
        if (
            conn is not None
            and not (decision.write or decision.welcome or decision.events or decision.jobs)
            and not self._queued.get(conn)
        ):
            # A read (ping, orders.closed, a refused bad frame) with nothing of its connection ahead of it: answer
            # now, from memory, even while a commit waits on the database (order per connection is kept).
            self._deliver(decision)
            return
        self._pending.append((decision, conn))
        if conn is not None:
            self._queued[conn] += 1
        self._wake.set()

    def _delivered(self, conn: ServerConnection | None) -> None:
        if conn is not None and self._queued.get(conn):
            self._queued[conn] -= 1
            if not self._queued[conn]:
                del self._queued[conn]

    # ------------------------------------------------------------------ commit, then deliver

    async def _commit_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or (
                self._marks and self.hub.writable and asyncio.get_running_loop().time() >= self._marks_due
            ):
                try:
                    await self._commit_next()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Last resort: a fault of the hub itself (not the database's). Log it and serve on.
                    log.critical("hub fault while committing and delivering; serving on", exc_info=True)

    async def record_marks(self, marks: Sequence[JobMark]) -> None:
        """The spooler's marks (a job is being sent, was printed, failed): stored with the next commit of orders
        (one transaction and one wait on the disk for orders and printing), or on their own when none comes within
        `MARKS_WAIT_S` (a commit of their own, wanted at once, would make the orders arriving meanwhile wait for
        it). Raises what the commit raised."""
        self._marks.extend(marks)
        if self._marked is None:
            loop = asyncio.get_running_loop()
            self._marked = loop.create_future()
            self._marks_due = loop.time() + MARKS_WAIT_S
            loop.call_later(MARKS_WAIT_S, self._wake.set)
        marked = self._marked
        await asyncio.shield(marked)

    def _take_marks(self) -> tuple[list[JobMark], asyncio.Future[None] | None]:
        if not self.hub.writable:
            return [], None  # they wait for the database (the spooler with them)
        marks, marked = self._marks, self._marked
        self._marks, self._marked = [], None
        return marks, marked

    async def _commit_next(self) -> None:
        batch, self._pending = self._pending, []
        window = self.hub.seal()
        records, jobs, replies, done = self._writes(batch)
        marks, marked = self._take_marks()
        timed = [(d, t) for d, _ in batch if (t := self._timing.pop(id(d), None)) is not None] if self._timing else []
        for _d, t in timed:
            t.commit_started = time.monotonic()
        if records or jobs or done or marks:
            try:
                known = await asyncio.get_running_loop().run_in_executor(
                    self._executor,
                    functools.partial(self.store.commit, records, jobs, replies=replies, done=done, marks=marks),
                )
            except Exception as exc:
                if marked is not None:
                    marked.set_exception(exc)
                    marked.exception()  # the spooler's workers see it; nobody else need
                self._storage_failed(batch, window, exc)
                return
            for _d, t in timed:
                t.committed = time.monotonic()
            if marked is not None:
                marked.set_result(None)
            if self._failing:
                log.warning("database: writes succeed again after %d failed commits; accepting changes", self._failing)
                self._failing = 0
            self._withdraw(batch, known)
            self.commits += 1
            self.hub.stored(records)
            self._print(jobs)
            for rec in records:
                rec.committed()
            if self.after_commit is not None:
                self.after_commit(records)
        self._cork = []
        try:
            for d, c in batch:
                self._delivered(c)
                self._deliver(d)
        finally:
            corked, self._cork = self._cork, None
            for outbox in corked:
                outbox.flush()
        if timed and self.timings is not None:
            delivered = time.monotonic()
            for d, t in timed:
                if d.events:  # stored (not withdrawn as the resubmission of an older order)
                    t.delivered = delivered
                    self.timings.append(t)

    def _storage_failed(
        self, batch: list[tuple[Decision, ServerConnection | None]], window: Window, exc: Exception
    ) -> None:
        """The database refused a batch: undo it (and what was decided on top of it), tell nobody of it, answer
        every frame of it `unavailable`, and refuse changes for a while."""
        self.commit_failures += 1
        self._failing += 1
        newer = self.hub.seal()
        failed = batch + self._pending
        self._pending = []
        for d, _ in failed:
            self._timing.pop(id(d), None)
        self.hub.rollback([newer, window])
        self.hub.writable = False
        delay = min(self.limits.db_retry_max_s, self.limits.db_retry_s * 2 ** (self._failing - 1))
        log.error(
            "database commit failed (%d in a row): %s; %d frames answered 'unavailable', nothing of them applied; "
            "changes are refused for %.1f s, reads and screens go on",
            self._failing,
            exc,
            len(failed),
            delay,
            exc_info=self._failing == 1,
        )
        for d, c in failed:
            self._delivered(c)
            self._refuse_decision(d)
        if isinstance(exc, NotLeading):
            # Another hub may lead now: step down at once (the next round finds who leads).
            self._spawn(self._carry_out(self.cluster.lock_lost()))
        self._spawn(self._reopen(delay))

    def _refuse_decision(self, d: Decision) -> None:
        for rec in d.events:
            rec.dropped = True
        for job in d.jobs:
            job.dropped = True
        session = d.replies[0][0] if d.replies else None
        if session is not None and session.origin is not None:
            # A frame another hub relayed: take it again when the database is back.
            self._last_command = min(self._last_command, session.origin[1] - 1)
            if session.origin[0] == self.hub_id and session.conn is not None:
                self._waiting[session.origin[1]] = session
            return
        if session is None or session.conn is None:
            return
        if d.welcome:
            # Built on a state that was just undone: the device connects again and gets the right one.
            link = self._links.get(session.conn)
            if link is not None:
                self._close(link, CloseCode.RETRY, "the hub's database refused a write meanwhile: connect again")
        elif d.write:
            self._send(session.conn, unavailable_frame(d.ref))
        else:
            for s, frame in d.replies:
                if s.conn is not None:
                    self._send(s.conn, frame)

    async def _reopen(self, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            # Fresh connections: a dropped one (terminated backend) must not fail the next batch too.
            await self.run_db(self.store.engine.dispose)
        try:
            await self._catch_up()
        except Exception as exc:
            log.warning("database still unreachable (%s); trying again", exc)
            self._spawn(self._reopen(min(self.limits.db_retry_max_s, delay * 2)))
            return
        self.hub.writable = True
        if self._marks:
            self._wake.set()  # the spooler's marks waited for the database
        log.warning("database: trying writes again (after %d failed commits)", self._failing)
        if self.store.shared:
            self._notified.set()  # relayed frames that wait

    async def _catch_up(self) -> None:
        """Take in what the database holds beyond the hub's memory: a commit whose answer was lost (the connection
        dropped after COMMIT) is stored though the hub undid it. Its events are told now, its print jobs printed,
        and a resend of its frames is answered as the duplicate it is."""
        if not self.leading:
            return
        first_job = self.hub.job_seq
        while True:
            batch = await self.run_db(lambda: self.store.events_after(self.hub.seq))
            for seq, payload in batch:
                self._broadcast(self.hub.apply_external(seq, payload))
            if batch:
                log.warning("took in %d events the database stored though their commit seemed to fail", len(batch))
            if len(batch) < 5000:
                break
        self.hub.job_seq = max(self.hub.job_seq, await self.run_db(self.store.last_job_id))
        if self.hub.job_seq > first_job and self.printing is not None and self.cluster.spooling:
            jobs = await self.run_db(self.store.pending_jobs)
            self.printing.submit([j for j in jobs if j.id > first_job])
        if not self._pending:
            self.hub.seal()

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
        self, batch: list[tuple[Decision, ServerConnection | None]], known: dict[str, tuple[str, str, str | None]]
    ) -> None:
        # New orders the database refused as resubmissions of older ones: answered as duplicates.
        for d, _ in batch:
            if d.created in known:
                self.hub.withdraw(d, known[d.created])

    def _flush_sync(self) -> None:
        batch, self._pending = self._pending, []
        records, jobs, replies, done = self._writes(batch)
        marks, _marked = self._take_marks()  # nobody waits for them any more (the spooler has stopped)
        if records or jobs or done or marks:
            self._withdraw(batch, self.store.commit(records, jobs, replies=replies, done=done, marks=marks))
            self.hub.stored(records)
            if self.after_commit is not None:
                self.after_commit(records)
        for d, c in batch:
            self._delivered(c)
            self._deliver(d)

    def _print(self, jobs: list[PrintJob]) -> None:
        # Only now, with the jobs durable, may a printer see them.
        if self.printing is not None and jobs:
            self.printing.submit([j for j in jobs if not j.dropped])

    def _deliver(self, d: Decision) -> None:
        if d.refused and d.replies:
            dev = d.replies[0][0].device.id
            for line in d.logs:
                self._log_quietly("refused:" + dev, line, logging.INFO)
        else:
            for line in d.logs:
                log.info("%s", line)
        for session, frame in d.replies:
            if session.conn is not None:
                self._send(session.conn, frame, welcome=d.welcome)
        for rec in d.events:
            self._broadcast(rec)
        if d.close is not None:
            for session, _ in d.replies[:1]:
                link = self._links.get(session.conn) if session.conn is not None else None
                if link is not None:
                    self._close(link, *d.close)

    def _broadcast(self, rec: EventRecord) -> None:
        if rec.dropped:
            return
        # Each of the event's frames is encoded (and framed) once, for all the sessions that get it.
        full = Encoded(rec.frame.encode("utf-8"))
        shown = rec.kitchen_frame()
        kitchen = full if shown is rec.frame else Encoded(shown.encode("utf-8"))
        status = Encoded(rec.status_frame.encode("utf-8")) if rec.status_frame is not None else None
        for s in list(self.sessions):
            f = rec.frame_for(s)
            if f is None or s.conn is None:
                continue
            self._send(
                s.conn,
                full
                if f is rec.frame
                else kitchen
                if f is shown
                else status
                if status and f is rec.status_frame
                else f,
            )


def _bucket(buckets: dict[str, TokenBucket], key: str, rate: float, burst: int) -> TokenBucket:
    b = buckets.get(key)
    if b is None:
        b = buckets[key] = TokenBucket(rate, burst)
    return b


async def _ping(conn: ServerConnection) -> None:
    # The ping is written at once, even behind a full buffer (ping() only waits for the drain after writing);
    # `_tick` times its answer through `pending_pings`.
    with contextlib.suppress(ConnectionClosed, ConcurrencyError):
        await conn.ping()


def _ip_of(conn: ServerConnection) -> str:
    addr = conn.remote_address
    return str(addr[0]) if isinstance(addr, tuple) and addr else "?"


def _who(link: Link) -> str:
    return f"device {link.session.device.id}" if link.session is not None else f"a connection from {link.ip}"


def _frame_ref(frame: str | bytes) -> str | None:
    try:
        return _ref_of(json.loads(frame))
    except (ValueError, TypeError, RecursionError):
        return None
