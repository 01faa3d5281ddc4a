"""TLS for the hub's endpoint (`wss://`): the hub's server context and the clients' verifying context; and the
websockets logger that keeps the frames (a hello's token) out of the logs on both sides.

Standard library `ssl` only. TLS 1.2 is the oldest version either side speaks. A client verifies the hub's
certificate and host name, against the store's CA file when it has one (`--ca-file`, `KDS_CA_FILE`), else against
the system's trusted roots.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TlsError(ValueError):
    """A certificate, key or CA file that cannot be used; `field` names the setting at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _no_password() -> str:
    # An encrypted key would otherwise make OpenSSL ask for its pass phrase on the terminal (a hub must not hang).
    return ""


def _readable(field: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsError(field, f"no such file: {path}") from None
    except OSError as exc:
        raise TlsError(field, f"cannot read {path}: {exc.strerror or exc}") from None


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The hub's TLS context: its certificate chain (PEM, the hub's certificate first) and its unencrypted key.

    Raises TlsError naming `cert_file` or `key_file`."""
    cert = _readable("cert_file", cert_file)
    key = _readable("key_file", key_file)
    if b"-----BEGIN CERTIFICATE-----" not in cert:
        raise TlsError("cert_file", f"{cert_file} holds no PEM certificate")
    if b"PRIVATE KEY-----" not in key:
        raise TlsError("key_file", f"{key_file} holds no PEM private key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as exc:
        text = str(exc).lower()
        if "mismatch" in text:
            raise TlsError("key_file", f"{key_file} is not the key of the certificate in cert_file") from None
        if b"ENCRYPTED" in key or "bad decrypt" in text:
            raise TlsError("key_file", f"{key_file} is encrypted: give the hub an unencrypted key") from None
        raise TlsError("cert_file", f"{cert_file} and key_file {key_file} do not load: {exc.reason or exc}") from None
    return ctx


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A client's TLS context: verifies the hub's certificate and host name, against `ca_file` when given (the
    store's own CA, and only it), else against the system's trusted roots. Raises TlsError naming `ca_file`."""
    if ca_file is None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        path = Path(ca_file)
        if b"-----BEGIN CERTIFICATE-----" not in _readable("ca_file", path):
            raise TlsError("ca_file", f"{path} holds no PEM certificate")
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(path))
        except ssl.SSLError as exc:
            raise TlsError("ca_file", f"{path} does not load: {exc.reason or exc}") from None
    ctx.minimum_version = MINIMUM_VERSION
    return ctx


class NoFrameLog(logging.LoggerAdapter[logging.Logger]):
    """A websockets logger with DEBUG switched off: websockets writes every frame there, a hello's token with it."""

    def isEnabledFor(self, level: int) -> bool:
        """Never DEBUG; otherwise as the logger says."""
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def websockets_log(name: str) -> NoFrameLog:
    """The logger to give websockets' `serve`/`connect` (`websockets.server`, `websockets.client`)."""
    return NoFrameLog(logging.getLogger(name), {})
