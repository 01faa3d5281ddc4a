"""One connection's outgoing frames, with a byte cap: the hub never buffers without bound for a device that does not
read.

Frames go straight to the socket while the connection keeps up (its write buffer under websockets' high-water
mark, nothing waiting): that is the cost of `websockets.broadcast`. Otherwise they wait here in order and a pump
task sends them one at a time with flow control. What waits here plus what sits in the transport's buffer is what
the connection costs; past `max_bytes`, `put` says no and the server closes the connection (4011). A frame that has
waited longer than the server's stall limit tells the same story (`stalled_for`).

A welcome and its snapshot pages are the exception: they are built whole when the device connects (their size is
that of the store's open orders, not of a backlog the device let grow), so they do not count against `max_bytes`
while they wait here (`held`); what is queued behind them does. The stall limit still applies to them, so a device
that does not read its welcome is closed all the same.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

PUMP_BYTES = 256 * 1024
"""A connection that fell behind gets what waits for it in writes of about this size."""


class Encoded:
    """A text frame encoded once for every connection that gets it: its UTF-8 bytes, and (made at the first send) the
    whole websocket frame. A server's frames are not masked, so a connection without extensions (no compression)
    takes the very same bytes: an event to fifty screens is framed once, and each screen costs one write."""

    __slots__ = ("_wire", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._wire: bytes | None = None

    def wire(self) -> bytes:
        """The websocket frame (FIN, text opcode, unmasked length, payload), RFC 6455 section 5.2."""
        if self._wire is None:
            n = len(self.data)
            if n < 126:
                head = bytes((0x81, n))
            elif n < 1 << 16:
                head = bytes((0x81, 126)) + n.to_bytes(2, "big")
            else:
                head = bytes((0x81, 127)) + n.to_bytes(8, "big")
            self._wire = head + self.data
        return self._wire


class Outbox:
    """Frames (UTF-8 bytes of text frames) waiting for one websocket connection."""

    def __init__(self, conn: Any, *, max_bytes: int, high_water: int = 64 * 1024) -> None:
        self.conn = conn
        self.max_bytes = max_bytes
        self.high_water = high_water
        self.queue: deque[tuple[bytes, bool]] = deque()
        """Frames waiting, each with whether it is part of a welcome."""
        self.queued = 0
        """Bytes waiting in `queue`."""
        self.welcome_queued = 0
        """Bytes of welcome frames waiting in `queue` (not counted against `max_bytes`)."""
        self.closed = False
        self._sending = False
        self._task: asyncio.Task[None] | None = None
        self._waiting_since: float | None = None
        self.corked: list[bytes] = []
        """Frames of the batch being delivered, written together by `flush` (see `put`'s `cork`)."""
        self.corked_bytes = 0

    def buffered(self) -> int:
        """Bytes waiting here and in the transport's write buffer."""
        transport = self.conn.transport
        return self.queued + self.corked_bytes + (transport.get_write_buffer_size() if transport is not None else 0)

    def held(self) -> int:
        """Bytes that count against the caps: `buffered` less the welcome frames still waiting."""
        return self.buffered() - self.welcome_queued

    def put(self, frame: bytes | Encoded, *, welcome: bool = False, cork: list[Outbox] | None = None) -> bool:
        """Send a text frame (its UTF-8 bytes, or `Encoded`), now or when the connection drains. False: over the cap
        (nothing queued). `welcome`: a frame of the welcome (or its snapshot pages), which the cap does not count.

        `cork`: the frames of a batch of decisions are held and written at once by `flush` (this outbox joins the
        list): a screen that gets forty events of one commit costs one write, not forty. The caller flushes every
        outbox of the list before it gives the event loop a turn, so nothing else is written in between."""
        data = frame.data if isinstance(frame, Encoded) else frame
        if self.closed:
            return True
        conn = self.conn
        if conn.protocol.state is not State.OPEN:
            return True
        if not welcome and self.held() + len(data) > self.max_bytes:
            return False
        if not self.queue and not self._sending:
            transport = conn.transport
            if transport is not None and transport.get_write_buffer_size() + self.corked_bytes <= self.high_water:
                if not conn.protocol.extensions:
                    # What websockets would write (nothing of its own waits: every send is flushed at once).
                    wire = (frame if isinstance(frame, Encoded) else Encoded(data)).wire()
                    if cork is None:
                        transport.write(wire)
                        return True
                    if not self.corked:
                        cork.append(self)
                    self.corked.append(wire)
                    self.corked_bytes += len(wire)
                else:
                    self.flush()
                    conn.protocol.send_text(data)
                    conn.send_data()
                return True
        self.queue.append((data, welcome))
        self.queued += len(data)
        if welcome:
            self.welcome_queued += len(data)
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump())
        return True

    def flush(self) -> None:
        """Write the corked frames (in one write)."""
        if not self.corked:
            return
        data = self.corked[0] if len(self.corked) == 1 else b"".join(self.corked)
        self.corked.clear()
        self.corked_bytes = 0
        transport = self.conn.transport
        if not self.closed and transport is not None and self.conn.protocol.state is State.OPEN:
            transport.write(data)

    def stalled_for(self, now: float) -> float:
        """Seconds the oldest waiting frame has waited without the connection taking any (0 when none waits)."""
        return 0.0 if self._waiting_since is None else now - self._waiting_since

    def close(self) -> None:
        """Forget what waits (the connection is being closed) and stop the pump."""
        self.closed = True
        self.corked.clear()
        self.corked_bytes = 0
        self.queue.clear()
        self.queued = self.welcome_queued = 0
        self._waiting_since = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _pump(self) -> None:
        while self.queue and not self.closed:
            conn = self.conn
            self._sending = True
            try:
                if conn.protocol.extensions:
                    data, _welcome = self._take()
                    # Writes, then waits for the write buffer to drain below the low-water mark.
                    await conn.send(data, text=True)
                else:
                    # What has waited goes in one write (framed by the hub, as `put` does), about PUMP_BYTES at a
                    # time; a welcome's frame alone (once in the socket's buffer it counts against the cap).
                    data, welcome = self._take()
                    wires = [Encoded(data).wire()]
                    size = len(wires[0])
                    while not welcome and self.queue and not self.queue[0][1] and size < PUMP_BYTES:
                        wires.append(Encoded(self._take()[0]).wire())
                        size += len(wires[-1])
                    if conn.protocol.state is not State.OPEN:
                        raise ConnectionClosed(None, None)
                    conn.transport.write(b"".join(wires))
                    await conn.drain()
            except (ConnectionClosed, ConnectionError):
                self.close()
                return
            finally:
                self._sending = False
            self._waiting_since = time.monotonic() if self.queue else None

    def _take(self) -> tuple[bytes, bool]:
        data, welcome = self.queue.popleft()
        self.queued -= len(data)
        if welcome:
            self.welcome_queued -= len(data)
        return data, welcome
