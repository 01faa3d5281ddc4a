"""The one protocol client: connect, hello, reconnect with backoff, `resume_from`, and a durable queue of actions.

Terminals, the simulator, the demo and the benchmarks all use `HubClient`; nobody writes a second one.

- `request(msg)` sends a frame now and waits for the hub's answer to its `ref` (raises `NotConnected` when offline).
- `enqueue(msg)` is for actions that must not be lost (a bump, a handover, an order from a counter): the action is
  written to the queue (a JSON-lines file when `queue_path` is set) and sent as soon as the hub is reachable; it
  leaves the queue only when the hub has answered it (an `unavailable` or `rate_limited` answer is not an answer:
  the action is sent again with backoff). Actions are idempotent on the hub (a bump of a done ticket
  changes nothing; an order's idempotency key makes a resubmission harmless), so a resend after a dropped
  connection never applies anything twice.
- `book` holds the state the role sees (`OrderBook`), kept in step with `welcome` and events; `resume_from` on
  reconnect replays exactly what was missed.

Every frame from the hub is parsed once, into its `kds.protocol` model (`kds.wire.parse_hub_frame`: fields this
client does not know are ignored, a frame of an unknown type is skipped): the book holds `OrderView` and
`StatusChanged` models, listeners get the frames' models, `request` and `enqueue` answer with `Ack`,
`OrderAccepted`, `Pong`, `ClosedOrders` or `Error`. Queued actions stay JSON objects on disk (the queue file's
format), and what is sent are those objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, overload

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from kds.config import Device
from kds.protocol import (
    PROTOCOLS,
    Ack,
    ClosedOrders,
    Error,
    Event,
    OrderAccepted,
    OrderQuoted,
    Pong,
    Snapshot,
    SnapshotPage,
    StatusChanged,
    Welcome,
)
from kds.tls import client_context, websockets_log
from kds.view import OrderBook
from kds.wire import Answer, BadFrame, HubFrame, parse_hub_frame

log = logging.getLogger("kds.client")
A = TypeVar("A", bound=Answer)

Listener = Callable[[HubFrame], Awaitable[None] | None]
"""Called with every frame from the hub, as its model (`kds.wire`), once the book has applied it."""
RETRYABLE = frozenset({"unavailable", "rate_limited"})
"""Error codes that mean "nothing was done, send it again later": a queued action stays queued."""
PASSING = frozenset({"rate_limited", "locked_out", "too_many_connections"})
"""Refusals of a hello that pass: the client connects again later (after `retry_after_s` when the hub says)."""
ANSWERS = (Ack, OrderAccepted, OrderQuoted, Error, Pong, ClosedOrders)
"""The frames that answer a `ref` (`kds.wire.Answer`)."""
QUEUE_ANSWERS = (Ack, OrderAccepted, Error)
"""The answers that take a queued action out of the queue."""


class LinkState(StrEnum):
    """Where the connection to the hub stands."""

    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    REFUSED = "refused"
    """The hub refused the hello (bad token, wrong role): retrying will not help."""
    CLOSED = "closed"


class BadHubUrl(ValueError):
    """A hub URL no client can connect to (`hub_url_problem` says why)."""


def hub_url_problem(url: str) -> str | None:
    """Why `url` (one hub URL, or several separated by commas) is not a hub's address, or None when it is."""
    from urllib.parse import urlsplit

    urls = [u.strip() for u in url.split(",") if u.strip()]
    if not urls:
        return "no hub URL given (such as ws://127.0.0.1:8765)"
    for u in urls:
        scheme = u.split("://", 1)[0].lower() if "://" in u else ""
        if not scheme:
            return f"{u} is not a hub URL: start it with ws:// or wss:// (such as ws://127.0.0.1:8765)"
        if scheme not in ("ws", "wss"):
            return f"{u} is not a hub URL: use ws:// or wss://, not {scheme}:// (such as ws://127.0.0.1:8765)"
        try:
            parts = urlsplit(u)
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError as exc:
            return f"{u} is not a hub URL: {exc} (such as ws://127.0.0.1:8765)"
        if not parts.hostname:
            return f"{u} names no host (such as ws://127.0.0.1:8765)"
    return None


class UnexpectedAnswer(Exception):
    """`HubClient.request(..., expect=...)` got another answer (an `Error`, mostly): `answer` is it."""

    def __init__(self, answer: Answer, expected: type[Answer]) -> None:
        super().__init__(f"expected {expected.__name__}, the hub answered {answer!r}")
        self.answer = answer


class NotConnected(Exception):
    """The hub is not reachable right now."""


class Refused(Exception):
    """The hub refused this device (its close code and reason)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"hub refused the connection ({code}): {reason}")
        self.code = code
        self.reason = reason


class _Later(Exception):
    """The hub refused the hello for a while (rate, lockout, connections): connect again after `after` seconds."""

    def __init__(self, reason: str, after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: exponential from `first` to `cap` seconds, with jitter."""

    first: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt number `attempt` (0-based)."""
        base = min(self.cap, self.first * 2.0 ** min(attempt, 30))
        return base * (0.75 + random.random() * 0.5)


class ActionQueue:
    """Actions waiting for the hub's answer, in order; mirrored to a JSON-lines file when `path` is set."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.items: list[dict[str, Any]] = []
        if self.path and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    with contextlib.suppress(ValueError):
                        self.items.append(json.loads(line))

    def __len__(self) -> int:
        return len(self.items)

    def push(self, msg: dict[str, Any]) -> None:
        """Add an action (written to disk before this returns)."""
        self.items.append(msg)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(msg, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if created:
                _fsync_dir(self.path.parent)  # the new file's name too, or a power cut can take the file away

    def remove(self, ref: str) -> bool:
        """Drop the action with this ref (answered by the hub)."""
        before = len(self.items)
        self.items = [m for m in self.items if m.get("ref") != ref]
        if len(self.items) != before:
            self._rewrite()
            return True
        return False

    def _rewrite(self) -> None:
        if not self.path:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for m in self.items:
                f.write(json.dumps(m, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        _fsync_dir(self.path.parent)  # the rename: else a power cut can bring back the old file


def _fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a file made or renamed in it) durable (POSIX; Windows cannot open a folder)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_refs = itertools.count(1)


def new_ref(prefix: str = "r") -> str:
    """A ref unique within this process and across restarts of it."""
    return f"{prefix}-{os.getpid():x}-{int(time.time() * 1000):x}-{next(_refs)}"


class HubClient:
    """A device's connection to the hub, kept up for as long as the client runs."""

    def __init__(
        self,
        url: str,
        *,
        device: str,
        token: str,
        role: str,
        station: str | None = None,
        queue_path: str | Path | None = None,
        backoff: Backoff = Backoff(),
        client_name: str = "kds-client",
        request_timeout: float = 10.0,
        ca_file: str | Path | None = None,
        tap: Callable[[str | bytes], None] | None = None,
    ) -> None:
        problem = hub_url_problem(url)
        if problem is not None:
            raise BadHubUrl(problem)
        self.urls = [u.strip() for u in url.split(",") if u.strip()]
        self.tls: ssl.SSLContext | None = (
            client_context(ca_file) if any(u.startswith("wss://") for u in self.urls) else None
        )
        """How `wss://` hubs are verified: against `ca_file` when given, else the system's trusted roots (raises
        kds.tls.TlsError for an unusable CA file)."""
        self.device = device
        self.token = token
        self.role = role
        self.station = station
        self.backoff = backoff
        self.client_name = client_name
        self.request_timeout = request_timeout
        self.tap = tap
        """Called with every frame from the hub as it came, before it is parsed (recording the wire, tests of it)."""
        self.queue = ActionQueue(queue_path)
        self.book = OrderBook()
        self.state = LinkState.CONNECTING
        self.last_event_at: float | None = None
        """time.monotonic() of the last event or welcome."""
        self.last_error: str | None = None
        self.welcome: Welcome | None = None
        """The last welcome (its snapshot as sent: the book holds the pages' orders too)."""
        self.protocol: int | None = None
        """The protocol version the hub's last welcome agreed (this client states every version it speaks)."""
        self.listeners: list[Listener] = []
        self.state_listeners: list[Callable[[LinkState], None]] = []
        self.connections = 0
        self._conn: ClientConnection | None = None
        self._waiters: dict[str, asyncio.Future[Answer]] = {}
        self._online = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._replay_left = 0
        self._replay_target = 0
        self._resume_from = 0
        self._refused: Refused | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._retries: dict[str, int] = {}
        """Queued actions answered `unavailable` or `rate_limited`: how many times each was sent again."""
        self._requests: set[str] = set()
        """Refs of `request()` calls in flight (queued actions survive a drop; these fail at once)."""

    @classmethod
    def for_device(cls, url: str, device: Device, **kwargs: Any) -> HubClient:
        """A client for a device of the store config (its id, token, role and station)."""
        if device.secret is None:
            raise ValueError(f"the config does not give {device.id}'s token here: give the token to HubClient")
        return cls(url, device=device.id, token=device.secret, role=device.role.value, station=device.station, **kwargs)

    @property
    def seq(self) -> int:
        """The last seq fully applied: what `resume_from` says on reconnect."""
        return self._resume_from

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start connecting in the background (returns at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"hub-client-{self.device}")

    async def connect(self, timeout: float = 10.0) -> None:
        """Start and wait until the hub has welcomed this device; raise Refused or TimeoutError."""
        await self.start()
        await self.wait_online(timeout)

    async def wait_online(self, timeout: float = 10.0) -> None:
        """Wait until connected and caught up."""
        online = asyncio.ensure_future(self._online.wait())
        try:
            await asyncio.wait(
                {online, self._task} if self._task else {online},
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            online.cancel()
        if self._refused is not None:
            raise self._refused
        if not self._online.is_set():
            raise TimeoutError(f"hub at {self.urls[0]} not reachable within {timeout}s ({self.last_error})")

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        task, self._task = self._task, None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(1000, "client closing"), 2)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_state(LinkState.CLOSED)

    async def __aenter__(self) -> HubClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def drop(self) -> None:
        """Close the current connection abruptly (tests, failover); the client reconnects by itself."""
        if self._conn is not None:
            self._conn.transport.abort()

    # ------------------------------------------------------------------ sending

    @overload
    async def request(self, msg: dict[str, Any], timeout: float | None = None) -> Answer: ...

    @overload
    async def request(self, msg: dict[str, Any], timeout: float | None = None, *, expect: type[A]) -> A: ...

    async def request(
        self, msg: dict[str, Any], timeout: float | None = None, *, expect: type[Any] | None = None
    ) -> Answer:
        """Send a frame now and wait for the hub's answer to its ref (a ref is added when missing), as its model:
        `Ack`, `OrderAccepted`, `Pong`, `ClosedOrders` or `Error`. With `expect`, an answer of another type (an
        `Error`, mostly) raises `UnexpectedAnswer`."""
        answer = await self._request(msg, timeout)
        if expect is not None and not isinstance(answer, expect):
            raise UnexpectedAnswer(answer, expect)
        return answer

    async def _request(self, msg: dict[str, Any], timeout: float | None) -> Answer:
        msg.setdefault("ref", new_ref())
        if self._conn is None or not self._online.is_set():
            raise NotConnected(self.last_error or "not connected")
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiters[msg["ref"]] = fut
        self._requests.add(msg["ref"])
        try:
            await self._conn.send(json.dumps(msg, ensure_ascii=False))
            return await asyncio.wait_for(fut, timeout or self.request_timeout)
        except ConnectionClosed as exc:
            raise NotConnected(str(exc)) from None
        finally:
            self._waiters.pop(msg["ref"], None)
            self._requests.discard(msg["ref"])

    async def fetch_closed(self, limit: int = 100) -> int:
        """Fill `book` with the orders closed lately (`orders.closed`): a snapshot holds only the last few. Orders
        already known are kept when newer. Returns how many orders the hub sent."""
        r = await self.request({"type": "orders.closed", "limit": limit})
        if not isinstance(r, ClosedOrders):
            return 0
        self.book.keep(r.orders)
        return len(r.orders)

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as is (tests of bad input)."""
        if self._conn is None:
            raise NotConnected("not connected")
        await self._conn.send(frame)

    def enqueue(self, msg: dict[str, Any]) -> asyncio.Future[Answer]:
        """Queue an action durably; it is sent now if online, else on reconnect. The future gets the answer (as in
        `request`)."""
        msg.setdefault("ref", new_ref(self.device))
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiters[msg["ref"]] = fut
        self.queue.push(msg)
        if self._conn is not None and self._online.is_set():
            task = asyncio.ensure_future(self._send_queued(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return fut

    async def _send_queued(self, msg: dict[str, Any]) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await self._conn.send(json.dumps(msg, ensure_ascii=False))

    # ------------------------------------------------------------------ the connection loop

    async def _run(self) -> None:
        attempt = 0
        while True:
            url = self.urls[(self.connections + attempt) % len(self.urls)]
            self._set_state(LinkState.CONNECTING if attempt == 0 else LinkState.OFFLINE)
            wait = 0.0
            try:
                async with connect(url, **self._connect_options(url)) as conn:
                    await self._session(conn)
                    attempt = 0
            except _Later as exc:
                self.last_error, wait = exc.reason, exc.after
            except Refused as exc:
                self._refused = exc
                self.last_error = str(exc)
                self._set_state(LinkState.REFUSED)
                return
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, BadFrame) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, BadFrame):  # a hub bug (or not a KDS hub): say so, then connect again
                    log.error("%s: %s", self.device, exc)
            except InvalidURI as exc:
                self._refused = Refused(None, str(exc))
                self._set_state(LinkState.REFUSED)
                return
            finally:
                self._conn = None
                self._online.clear()
                self._fail_requests()
            self._set_state(LinkState.OFFLINE)
            await asyncio.sleep(max(wait, self.backoff.delay(attempt)))
            attempt += 1

    def _connect_options(self, url: str) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_size": None,
            "open_timeout": 5,
            "ping_interval": 10,
            "ping_timeout": 10,
            "close_timeout": 2,
            "logger": websockets_log("websockets.client"),  # never the frames (the hello's token) at DEBUG
        }
        if url.startswith("wss://"):
            options["ssl"] = self.tls
        return options

    async def _session(self, conn: ClientConnection) -> None:
        hello = {
            "type": "hello",
            "device": self.device,
            "token": self.token,
            "role": self.role,
            "resume_from": self._resume_from,
            "client": self.client_name,
            "protocols": list(PROTOCOLS),
        }
        if self.station:
            hello["station"] = self.station
        await conn.send(json.dumps(hello))
        try:
            first = self._parse(await conn.recv())
        except ConnectionClosed as exc:
            if exc.rcvd is not None and 4000 <= exc.rcvd.code < 4010:
                raise Refused(exc.rcvd.code, exc.rcvd.reason) from None
            raise
        if isinstance(first, Error):
            # The hub closes right after; take its reason from the error frame.
            with contextlib.suppress(ConnectionClosed):
                await conn.recv()
            if first.code in PASSING:
                raise _Later(first.message, float(first.retry_after_s or 0))
            raise Refused(conn.close_code, first.message)
        if not isinstance(first, Welcome):
            raise ConnectionClosed(None, None)
        if first.pages:
            # A large snapshot comes in pages right after the welcome: the welcome is applied once all are in.
            snapshot = first.snapshot or Snapshot()
            orders, statuses = list(snapshot.orders), list(snapshot.statuses)
            for _ in range(first.pages):
                page = self._parse(await conn.recv())
                if not isinstance(page, SnapshotPage):
                    raise ConnectionClosed(None, None)
                orders.extend(page.snapshot.orders)
                statuses.extend(page.snapshot.statuses)
            # The welcome as if it had come whole (models already validated: a copy, not a new validation).
            whole = snapshot.model_copy(update={"orders": orders, "statuses": statuses})
            first = first.model_copy(update={"snapshot": whole})
        self._conn = conn
        self.connections += 1
        self.welcome = first
        self.protocol = first.protocol
        self._on_welcome(first)
        await self._emit(first)
        if self._replay_left == 0:
            await self._went_online(conn)
        async for raw in conn:
            frame = self._parse(raw)
            if frame is not None:
                await self._on_frame(frame)
            if self._replay_left == 0 and not self._online.is_set():
                await self._went_online(conn)

    def _parse(self, raw: str | bytes) -> HubFrame | None:
        if self.tap is not None:
            self.tap(raw)
        return parse_hub_frame(raw)

    def _fail_requests(self) -> None:
        for ref in list(self._requests):
            fut = self._waiters.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_exception(NotConnected(f"connection lost before the answer to {ref}"))

    def _on_welcome(self, w: Welcome) -> None:
        self.last_event_at = time.monotonic()
        if w.resumed:
            self._replay_left = w.replay
            self._replay_target = w.seq
            self.book.store = w.store
            if self._replay_left == 0:
                self._resume_from = self._replay_target
                self.book.seq = self._replay_target
        else:
            self._replay_left = 0
            self.book.reset(w)
            self._resume_from = w.seq

    async def _went_online(self, conn: ClientConnection) -> None:
        self._online.set()
        self._set_state(LinkState.ONLINE)
        for msg in list(self.queue.items):
            await conn.send(json.dumps(msg, ensure_ascii=False))

    async def _on_frame(self, frame: HubFrame) -> None:
        if isinstance(frame, (Event, StatusChanged)):
            self.book.apply(frame)
            self.last_event_at = time.monotonic()
            if self._replay_left > 0:
                self._replay_left -= 1
                if self._replay_left == 0:
                    self._resume_from = self._replay_target
            else:
                self._resume_from = max(self._resume_from, frame.seq)
        elif isinstance(frame, ANSWERS) and frame.ref is not None:
            ref = frame.ref
            if isinstance(frame, Error) and frame.code in RETRYABLE and self._queued(ref):
                # Nothing was done (database fault, rate limit): the action stays queued and goes again later.
                self._retry_later(ref)
                await self._emit(frame)
                return
            self._retries.pop(ref, None)
            if isinstance(frame, QUEUE_ANSWERS):
                self.queue.remove(ref)
            fut = self._waiters.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
        await self._emit(frame)

    def _queued(self, ref: str) -> bool:
        return ref not in self._requests and any(m.get("ref") == ref for m in self.queue.items)

    def _retry_later(self, ref: str) -> None:
        attempt = self._retries.get(ref, 0)
        self._retries[ref] = attempt + 1
        delay = self.backoff.delay(attempt + 2)  # 0.4 s, 0.8 s … up to the cap, with jitter

        async def again() -> None:
            await asyncio.sleep(delay)
            msg = next((m for m in self.queue.items if m.get("ref") == ref), None)
            if msg is not None and self._conn is not None and self._online.is_set():
                await self._send_queued(msg)

        task = asyncio.ensure_future(again())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, frame: HubFrame) -> None:
        for listener in list(self.listeners):
            result = listener(frame)
            if inspect.isawaitable(result):
                await result

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        for cb in list(self.state_listeners):
            cb(state)
