"""`kds printer-emulator`: a network receipt printer on TCP, for demos and tests.

It accepts raw ESC/POS like a real printer on port 9100, answers status queries (DLE EOT n, GS r n), and writes
each job, split at the cut, into the output folder as three files:

- `NNNN.bin`: the bytes received for that job, as they came;
- `NNNN.txt`: the decoded text (rows aligned on the printer's columns; images and QR codes named in brackets);
- `NNNN.png`: a picture of the paper, dot for dot.

Its condition can be switched while it runs, to see the spooler retry and fail over:

- `paper out` / `paper in`: the paper sensor reports paper end (DLE EOT 4) and nothing prints, but, like a real
  printer, it keeps what it receives meanwhile in its buffer: status queries (DLE EOT) are still answered at once
  (paper out), GS r waits, and on refill the held bytes print and the waiting GS r are answered (on connections
  still open; what a host sent before it hung up prints too). Switching the printer off loses the buffer;
- `cover open` / `cover close`: the printer reports itself offline with its cover open (an `error` for the hub);
  it holds what it receives the same way until the cover is closed;
- `offline` / `online`: the printer is switched off: connections are refused, open ones dropped;
- `status`: prints the condition and the number of jobs printed.

A slow printer: `bytes_per_s` makes it take data no faster than that, as a printer whose print
head is slower than the line (a real one stops reading; TCP holds the rest): GS r is answered once what came before
it has gone through at that rate.

Send those commands as lines to the control port (`--control-port`, by default the printer port + 100:
`echo "paper out" | nc 127.0.0.1 9200`), or type them where the emulator runs. Tests and `kds demo` call
`set_state` on the emulator objects (`start_emulators` starts one per configured printer).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kds.config import StoreConfig, Transport
from printers.decoder import Condition, Decoder, Page
from printers.picture import draw_page

log = logging.getLogger("printers.emulator")


class EmulatorState(StrEnum):
    """The emulated printer's condition."""

    OK = "ok"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"


COMMANDS = {
    "paper out": EmulatorState.PAPER_OUT,
    "paper_out": EmulatorState.PAPER_OUT,
    "paper in": EmulatorState.OK,
    "refill": EmulatorState.OK,
    "cover open": EmulatorState.COVER_OPEN,
    "cover close": EmulatorState.OK,
    "offline": EmulatorState.OFFLINE,
    "off": EmulatorState.OFFLINE,
    "online": EmulatorState.OK,
    "on": EmulatorState.OK,
    "ok": EmulatorState.OK,
}


HELP = "paper out, paper in, cover open, cover close, offline, online, status"


@dataclass(frozen=True, slots=True)
class PrintedJob:
    """One job the emulator printed (its files exist when it is listed)."""

    number: int
    page: Page
    text: str
    bin: Path
    txt: Path
    png: Path


@dataclass(slots=True, eq=False)
class _Link:
    """One host connection: its decoder, and what the printer holds of it while it cannot print."""

    decoder: Decoder
    writer: asyncio.StreamWriter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    held: bytearray = field(default_factory=bytearray)
    """Bytes received while out of paper (or cover open): they print on refill."""
    shadow: Decoder | None = None
    """While holding: a copy of the decoder that reads the held bytes only to answer the real-time status queries
    among them (at their command boundaries, as the printer's receive side does)."""
    closed: bool = False


class PrinterEmulator:
    """One emulated network printer."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        port: int = 9100,
        host: str = "127.0.0.1",
        columns: int = 48,
        name: str = "printer",
        control_port: int | None = None,
        keep: bool = True,
        bytes_per_s: float | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.bytes_per_s = bytes_per_s
        """A slow printer: it takes data no faster than this (None: as fast as it comes)."""
        self.keep = keep
        """Write each job's files and list it in `jobs`; False: only count it (`printed`), for benchmarks, where a
        printer must answer like a real one without the emulator's pictures costing the machine's CPU."""
        self.printed = 0
        """Jobs printed since start."""
        self.host = host
        self.port = port
        self.columns = columns
        self.name = name
        self.control_port = control_port
        self.state = EmulatorState.OK
        self.hold = False
        """Tests: print, but never confirm (GS r) — the host cannot tell whether the job printed."""
        self.jobs: list[PrintedJob] = []
        self.connections = 0
        self._holding: list[_Link] = []
        """Connections with bytes held while the printer cannot print, in the order they came."""
        self._server: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"emulator-{name}")
        self._next = 1

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen (port 0 picks a free port; `port` then says which)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.out_dir.glob("[0-9][0-9][0-9][0-9].bin"))
        self._next = int(existing[-1].stem) + 1 if existing else 1
        await self._listen()
        if self.control_port is not None:
            self._control = await asyncio.start_server(self._control_client, self.host, self.control_port)
            self.control_port = self._control.sockets[0].getsockname()[1]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop connections."""
        await self._unlisten()
        if self._control is not None:
            self._control.close()
            await self._control.wait_closed()
            self._control = None
        self._files.shutdown(wait=True)

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    @property
    def address(self) -> str:
        """host:port."""
        return f"{self.host}:{self.port}"

    # ---------------------------------------------------------------- condition

    async def set_state(self, state: EmulatorState | str) -> None:
        """Switch paper out, cover open, offline (off: connections refused) or ok."""
        state = EmulatorState(state)
        was, self.state = self.state, state
        if state is EmulatorState.OFFLINE:
            self._holding.clear()  # switched off: what its buffer held is lost
        if state is EmulatorState.OFFLINE and self._server is not None:
            await self._unlisten()
        elif state is not EmulatorState.OFFLINE and was is EmulatorState.OFFLINE and self._server is None:
            await self._listen()
        log.info("printer %s: %s", self.name, state.value)
        if state is EmulatorState.OK:
            await self._release()

    def condition(self) -> Condition:
        """What the status queries answer."""
        if self.state is EmulatorState.PAPER_OUT:
            return Condition.PAPER_OUT
        if self.state is EmulatorState.COVER_OPEN:
            return Condition.COVER_OPEN
        return Condition.OK

    async def command(self, line: str) -> str:
        """Apply one control command; the answer line."""
        cmd = " ".join(line.strip().lower().replace("-", " ").split())
        if cmd and cmd != "status":
            state = COMMANDS.get(cmd)
            if state is None:
                return f"unknown command {line.strip()!r}; try: {HELP}"
            await self.set_state(state)
        return f"{self.name}: {self.state.value}, {self.printed} jobs printed, tickets in {self.out_dir}"

    # ---------------------------------------------------------------- connections

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        link = _Link(Decoder(self.condition, lambda: not self.hold), writer)
        rate = self.bytes_per_s
        # A slow printer takes small slices, each after the time the one before took to go through.
        size = 65536 if rate is None else max(1, min(4096, int(rate / 20)))
        try:
            while True:
                data = await reader.read(size)
                if not data:
                    break
                if rate is not None:
                    await asyncio.sleep(len(data) / rate)  # the print head's pace, not a wait for anything
                async with link.lock:
                    await self._take(link, data)
        except (ConnectionError, OSError):
            pass
        finally:
            async with link.lock:
                link.closed = True
                if not link.held:
                    last = link.decoder.flush()
                    if last is not None:
                        await self._save(last)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _take(self, link: _Link, data: bytes) -> None:
        """Bytes from the host: printed now, or held (status queries among them answered) until it can print."""
        if self.condition() is Condition.OK and not link.held:
            reply = link.decoder.feed(data)
            for page in link.decoder.take_pages():
                await self._save(page)
        else:
            if not link.held:
                link.shadow = copy.deepcopy(link.decoder, {id(self): self})  # state copied, not the emulator
                self._holding.append(link)
            link.held += data
            assert link.shadow is not None
            # Only the DLE EOT answers (never 0): the shadow cannot print, and a GS r is answered on release.
            reply = bytes(b for b in link.shadow.feed(data) if b != 0)
            link.shadow.take_pages()
        if reply and not link.closed:
            link.writer.write(reply)
            await link.writer.drain()

    async def _release(self) -> None:
        """Paper is back (or the cover closed): print what was held, and answer the GS r that waited for it."""
        while self._holding and self.condition() is Condition.OK:
            link = self._holding.pop(0)
            async with link.lock:
                held, link.held, link.shadow = bytes(link.held), bytearray(), None
                reply = link.decoder.feed(held)
                pages = link.decoder.take_pages()
                if link.closed:
                    last = link.decoder.flush()
                    pages += [last] if last is not None else []
                for page in pages:
                    await self._save(page)
                # The status queries among the held bytes were answered when they came (every DLE EOT answer has
                # its fixed bits set); what is left are the GS r answers (0), due now that the data before is printed.
                waited = bytes(b for b in reply if b == 0)
                if waited and not link.closed:
                    with contextlib.suppress(ConnectionError, OSError):
                        link.writer.write(waited)
                        await link.writer.drain()

    async def _save(self, page: Page) -> None:
        n, self._next = self._next, self._next + 1
        self.printed += 1
        if not self.keep:
            return
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(self._files, self._write, n, page)
        self.jobs.append(job)
        log.info("printer %s printed job %d → %s", self.name, n, job.png)

    def _write(self, n: int, page: Page) -> PrintedJob:
        stem = self.out_dir / f"{n:04d}"
        text = page.text(self.columns)
        bin_, txt, png = stem.with_suffix(".bin"), stem.with_suffix(".txt"), stem.with_suffix(".png")
        bin_.write_bytes(page.raw)
        txt.write_text(text, encoding="utf-8")
        draw_page(page, self.columns).save(png)
        return PrintedJob(n, page, text, bin_, txt, png)

    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                answer = await self.command(line.decode("utf-8", errors="replace"))
                writer.write((answer + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


# ------------------------------------------------------------------------------------------------ many printers


def _loopback(host: str | None) -> bool:
    if host in ("localhost", None):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmulatorGroup:
    """One emulator per configured network printer on this machine; `close()` stops them all."""

    def __init__(self, out_dir: Path, emulators: dict[str, PrinterEmulator]) -> None:
        self.out_dir = out_dir
        self.emulators = emulators

    def __getitem__(self, printer_id: str) -> PrinterEmulator:
        return self.emulators[printer_id]

    async def close(self) -> None:
        """Stop every emulator."""
        for e in self.emulators.values():
            await e.close()

    def describe(self) -> str:
        """Where each printer listens and where its tickets go."""
        return "\n".join(f"  {pid:16} {e.address:18} → {e.out_dir}" for pid, e in self.emulators.items())


async def start_emulators(
    config: StoreConfig, out_dir: str | Path, *, control: bool = False, only: set[str] | None = None
) -> EmulatorGroup:
    """Start an emulator for every network printer of the config on a loopback address, each writing its tickets
    to `out_dir/<printer id>/`. With `control`, each also listens for commands on its port + 100."""
    out = Path(out_dir)
    started: dict[str, PrinterEmulator] = {}
    try:
        for p in config.printers:
            if p.transport is not Transport.NETWORK or not _loopback(p.host) or (only and p.id not in only):
                continue
            assert p.host is not None
            e = PrinterEmulator(
                out / p.id,
                port=p.port,
                host=p.host,
                columns=p.columns,
                name=p.id,
                control_port=p.port + 100 if control else None,
            )
            await e.start()
            started[p.id] = e
    except OSError:
        for e in started.values():
            await e.close()
        raise
    return EmulatorGroup(out, started)


# ------------------------------------------------------------------------------------------------ the command


def run_emulator_cli(
    *,
    out: Path,
    host: str = "127.0.0.1",
    port: int = 9100,
    columns: int = 48,
    control_port: int | None = None,
    config: StoreConfig | None = None,
    keep: bool = True,
    bytes_per_s: float | None = None,
) -> int:
    """`kds printer-emulator`: run until Ctrl+C, taking commands from the control port(s) and from stdin."""
    import os
    import signal
    import sys

    async def main() -> int:
        if config is not None:
            try:
                group = await start_emulators(config, out, control=True)
            except OSError as exc:
                print(f"kds printer-emulator: cannot listen: {exc.strerror or exc}", file=sys.stderr)
                return 1
            emulators = list(group.emulators.values())
            print(f"printer emulators for {config.store.name} (control port = printer port + 100):")
            print(group.describe(), flush=True)
        else:
            e = PrinterEmulator(
                out,
                port=port,
                host=host,
                columns=columns,
                name=f"printer-{port}",
                control_port=control_port if control_port is not None else port + 100,
                keep=keep,
                bytes_per_s=bytes_per_s,
            )
            try:
                await e.start()
            except OSError as exc:
                print(f"kds printer-emulator: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            emulators = [e]
            print(f"printer emulator on {e.address} ({columns} columns), tickets in {e.out_dir}/NNNN.{{bin,txt,png}}")
            print(f"control: type a command here, or: echo 'paper out' | nc {host} {e.control_port}", flush=True)
        print(
            "commands: paper out, paper in, cover open, cover close, offline, online, status"
            + (" (prefix with a printer id to pick one)" if len(emulators) > 1 else ""),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        async def typed() -> None:
            while True:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    return
                words = line.split(maxsplit=1)
                chosen = [e for e in emulators if words and e.name == words[0]]
                cmd = words[1] if chosen and len(words) > 1 else line
                for e in chosen or emulators:
                    print(await e.command(cmd), flush=True)

        reader = asyncio.create_task(typed())
        if os.environ.get("KDS_EMULATOR_EXIT_ON_EOF"):  # scripted runs: stop when stdin ends
            reader.add_done_callback(lambda _: stop.set())
        await stop.wait()
        reader.cancel()
        for e in emulators:
            await e.close()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
