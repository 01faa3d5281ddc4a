"""Transports: they only move bytes to a printer (and its status bytes back). No layouts, no retries.

- `network`: raw TCP, port 9100 on most printers (and on `kds printer-emulator`);
- `usb`: through python-escpos's USB printer (needs the optional extra: `pip install 'hema-kds[usb]'`);
- `serial`: through python-escpos's serial printer (`pip install 'hema-kds[serial]'`);
- `file`: appends to a file or a device path such as `/dev/usb/lp0` (one way: no status).

Every call is blocking with the printer's `timeout_s`; the spooler runs them in a worker thread. A transport that
cannot read (`can_read` false) makes the spooler skip status queries: the job counts as printed when written.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any, Protocol

from kds.config import Printer, Transport


class TransportError(OSError):
    """The printer could not be reached, or stopped answering."""


class MissingExtra(TransportError):
    """The transport needs an optional dependency that is not installed."""


class PrinterLink(Protocol):
    """An open connection to one printer."""

    can_read: bool

    def write(self, data: bytes, timeout: float | None = None) -> None:
        """Send bytes (all of them, or raise TransportError); `timeout`: within that long (a large job to a slow
        printer takes long to go out), else the link's own timeout."""
        ...

    def read(self, n: int, timeout: float) -> bytes:
        """Up to `n` bytes the printer sent; raise TransportError (TimeoutError) when nothing comes in time."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class NetworkLink:
    """Raw TCP (JetDirect / port 9100)."""

    can_read = True

    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        self.sock.settimeout(timeout)
        self.where = f"{host}:{port}"

    def write(self, data: bytes, timeout: float | None = None) -> None:
        """Send all of `data` (within `timeout` seconds when given: the whole send, not each chunk)."""
        try:
            if timeout is not None:
                self.sock.settimeout(timeout)
            self.sock.sendall(data)
        except OSError as exc:
            raise TransportError(f"sending to {self.where} failed: {exc.strerror or exc}") from exc

    def read(self, n: int, timeout: float) -> bytes:
        """Up to `n` bytes, waiting at most `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(n)
        except TimeoutError as exc:
            raise TransportError(f"{self.where} did not answer within {timeout:g}s") from exc
        except OSError as exc:
            raise TransportError(f"reading from {self.where} failed: {exc.strerror or exc}") from exc
        if not data:
            raise TransportError(f"{self.where} closed the connection")
        return data

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class FileLink:
    """A file or device path, written in append mode; no status comes back."""

    can_read = False

    def __init__(self, path: str) -> None:
        try:
            self.f = Path(path).open("ab")  # noqa: SIM115 (kept open for the link's life; close() closes it)
        except OSError as exc:
            raise TransportError(f"cannot open {path}: {exc.strerror or exc}") from exc
        self.path = path

    def write(self, data: bytes, timeout: float | None = None) -> None:
        """Append and flush."""
        try:
            self.f.write(data)
            self.f.flush()
        except OSError as exc:
            raise TransportError(f"writing {self.path} failed: {exc.strerror or exc}") from exc

    def read(self, n: int, timeout: float) -> bytes:
        """A file answers nothing."""
        raise TransportError(f"{self.path} cannot answer status queries")

    def close(self) -> None:
        """Close the file."""
        self.f.close()


class EscposLink:
    """A python-escpos printer object (USB, serial) used only for its `_raw` and `_read`: bytes in and out."""

    can_read = True

    def __init__(self, device: Any, where: str) -> None:
        self.device = device
        self.where = where
        try:
            device.open()
        except Exception as exc:  # escpos raises its own DeviceNotFoundError, pyusb USBError, serial errors
            raise TransportError(f"cannot open {where}: {exc}") from exc

    def write(self, data: bytes, timeout: float | None = None) -> None:
        """Send bytes (the device's own timeout applies)."""
        try:
            self.device._raw(data)
        except Exception as exc:
            raise TransportError(f"sending to {self.where} failed: {exc}") from exc

    def read(self, n: int, timeout: float) -> bytes:
        """Poll the device until it answers or `timeout` passes."""
        end = time.monotonic() + timeout
        while True:
            try:
                data = bytes(self.device._read() or b"")
            except Exception as exc:
                raise TransportError(f"reading from {self.where} failed: {exc}") from exc
            if data:
                return data[:n]
            if time.monotonic() >= end:
                raise TransportError(f"{self.where} did not answer within {timeout:g}s")
            time.sleep(0.02)

    def close(self) -> None:
        """Close the device."""
        with contextlib.suppress(Exception):
            self.device.close()


def open_link(printer: Printer) -> PrinterLink:
    """Connect to a configured printer; raise TransportError (or MissingExtra) when that fails."""
    t = printer.timeout_s
    if printer.transport is Transport.NETWORK:
        assert printer.host is not None
        return NetworkLink(printer.host, printer.port, t)
    if printer.transport is Transport.FILE:
        assert printer.path is not None
        return FileLink(printer.path)
    if printer.transport is Transport.USB:
        from escpos.printer import Usb

        if not Usb.is_usable():
            raise MissingExtra("USB printers need pyusb: pip install 'hema-kds[usb]'")
        usb = Usb(printer.usb_vendor, printer.usb_product, timeout=int(t * 1000))
        return EscposLink(usb, f"USB {printer.usb_vendor:04x}:{printer.usb_product:04x}")
    from escpos.printer import Serial

    if not Serial.is_usable():
        raise MissingExtra("serial printers need pyserial: pip install 'hema-kds[serial]'")
    assert printer.path is not None
    serial = Serial(devfile=printer.path, baudrate=printer.serial_baud, timeout=t)
    return EscposLink(serial, f"serial {printer.path}")
