"""The store's configuration: stations, routing, catalogue, cooking methods, devices, printers, timers.

Read from TOML and validated with pydantic. A bad config is refused with *every* problem listed (key path and
reason): pydantic collects the structural problems, then `_cross_check` collects the references that point
nowhere (also among the well-formed entries of a config with structural problems, so one typo hides nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import tomllib
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kds.tls import TlsError, server_context

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]

DEFAULT_CONFIG_PATH = Path("config/store.toml")
MIN_TOKEN_LENGTH = 8

log = logging.getLogger("kds.config")


class FieldProblem(ValueError):
    """A validator's complaint about one field of the entry it checks (the problem's key path then ends in it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _base_dir(info: ValidationInfo) -> Path:
    """Where relative paths in the config point from: the config file's folder (the working directory for a
    config that is not read from a file)."""
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else Path.cwd()


def _checks_secrets(info: ValidationInfo) -> bool:
    """Whether the hub's secrets (token_env, token_file, the TLS files) must be readable: True for the hub; the
    terminals and the simulator read a config whose secrets may live on another machine."""
    return bool((info.context or {}).get("check_secrets", True))


def _resolve(path: Path, info: ValidationInfo) -> Path:
    return path if path.is_absolute() else _base_dir(info) / path


class Role(StrEnum):
    """What a device is allowed to do on the hub."""

    SOURCE = "source"
    KITCHEN = "kitchen"
    COUNTER = "counter"
    MONITOR = "monitor"


class Channel(StrEnum):
    """Where an order comes from."""

    APP = "app"
    KIOSK = "kiosk"
    SHELF = "shelf"


class Language(StrEnum):
    """The language of a device's screen and of the tickets its store prints."""

    EN = "en"
    ZH = "zh"


class SoldBy(StrEnum):
    """How a catalogue item is sold: per piece, or weighed (live seafood, meat)."""

    EACH = "each"
    WEIGHT = "weight"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreInfo(_Strict):
    """Who the store is."""

    id: Ident
    name: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    default_station: Ident
    """Where an item goes when neither its cooking method, SKU nor category names a station
    (flagged unrouted)."""
    language: Language = Language.EN
    """The language of every screen that does not choose its own (`[[devices]] language`), and of printed
    tickets unless a printer chooses its own (`[[printers]] language`)."""


class Timers(_Strict):
    """Ticket age thresholds, in seconds: on time below `warn_after_s`, late from `late_after_s`."""

    warn_after_s: int = Field(default=300, gt=0)
    late_after_s: int = Field(default=600, gt=0)


class Station(_Strict):
    """A kitchen station with its own screens (and usually a printer)."""

    id: Ident
    name: str = Field(min_length=1)
    name_zh: str = ""
    printer: Ident | None = None
    timers: Timers = Timers()
    prep_s: int = Field(default=300, gt=0, le=6 * 3600)
    """What a ticket takes here, in seconds, when neither its items nor their cooking methods say (`prep_s`) and the
    hub has not learned it yet from the station's bumps (`kds.timing`)."""
    cooks: int | None = Field(default=None, ge=1, le=50)
    """Tickets the station works on at once, for the hub's ready-time estimates; when not given, the number of its
    screens connected (at least one)."""


class Counter(_Strict):
    """The expo / handover counter."""

    name: str = "Counter"
    printer: Ident | None = None
    """Where claim tags, pickup slips and expo tickets print."""
    status_url: str = "https://m.freshippo.example/order/{order_id}"
    """What the QR code of a pickup slip opens: the order's status page (`{order_id}` and `{number}` are filled in)."""
    timers: Timers = Timers(warn_after_s=120, late_after_s=300)


class Category(_Strict):
    """A catalogue category; `station` routes every item of the category that is not routed otherwise."""

    id: Ident
    name: str = Field(min_length=1)
    station: Ident | None = None


class CookingMethod(_Strict):
    """A way to cook shelf goods; it decides the station and carries a processing fee."""

    id: Ident
    name: str = Field(min_length=1)
    name_zh: str = ""
    station: Ident
    fee_cents: int = Field(default=0, ge=0)
    """Processing fee per item line, in the store currency's minor unit."""
    prep_s: int | None = Field(default=None, gt=0, le=6 * 3600)
    """What cooking an item this way takes, in seconds (an item's `method_prep_s` overrides it)."""


class Allergen(_Strict):
    """An allergen the store declares: the only words the hub accepts in `allergens` (of a catalogue item, and of
    a customer's declaration on an order line), shown and printed by name in the device's language."""

    id: Ident
    name: str = Field(min_length=1)
    name_zh: str = Field(min_length=1)


MAJOR_ALLERGENS: tuple[Allergen, ...] = tuple(
    Allergen(id=i, name=n, name_zh=z)
    for i, n, z in (
        ("peanut", "Peanut", "花生"),
        ("tree_nuts", "Tree nuts", "坚果"),
        ("dairy", "Milk / dairy", "乳制品"),
        ("egg", "Egg", "蛋"),
        ("fish", "Fish", "鱼"),
        ("shellfish", "Shellfish", "甲壳类"),
        ("mollusc", "Mollusc", "软体贝类"),
        ("gluten", "Gluten (wheat)", "麸质(小麦)"),
        ("soy", "Soy", "大豆"),
        ("sesame", "Sesame", "芝麻"),
        ("celery", "Celery", "芹菜"),
        ("mustard", "Mustard", "芥末"),
        ("sulphites", "Sulphites", "亚硫酸盐"),
        ("lupin", "Lupin", "羽扇豆"),
    )
)
"""The store's allergens when its config declares none: the major allergens (EU 14 / GB 7718 groups)."""


class CatalogueItem(_Strict):
    """One SKU the kitchen can make."""

    sku: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
    name: str = Field(min_length=1)
    name_zh: str = ""
    category: Ident
    barcode: str | None = None
    sold_by: SoldBy = SoldBy.EACH
    price_cents: int = Field(default=0, ge=0)
    """Price per piece, or per kilogram for weighed goods."""
    min_weight_g: int | None = Field(default=None, gt=0)
    max_weight_g: int | None = Field(default=None, gt=0)
    station: Ident | None = None
    """Routes this SKU when it has no cooking method."""
    methods: tuple[Ident, ...] = ()
    """Cooking methods allowed for this item; when there are any, the order must choose one."""
    method_fees: dict[str, int] = Field(default_factory=dict)
    """Per-item override of a method's processing fee."""
    allergens: tuple[str, ...] = ()
    prep_s: int | None = Field(default=None, gt=0, le=6 * 3600)
    """What making this item takes, in seconds, when it has no cooking method (a milk tea: 120)."""
    method_prep_s: dict[str, int] = Field(default_factory=dict)
    """Per-item override of a method's `prep_s` (a whole grouper steams longer than a scallop)."""

    def fee_for(self, method: CookingMethod) -> int:
        """Processing fee of `method` for this item."""
        return self.method_fees.get(method.id, method.fee_cents)


class Transport(StrEnum):
    """How bytes reach a printer."""

    NETWORK = "network"
    USB = "usb"
    SERIAL = "serial"
    FILE = "file"


class Printer(_Strict):
    """A thermal ESC/POS printer: how to reach it, what it can do, and where its tickets go when it fails."""

    id: Ident
    name: str = ""
    transport: Transport = Transport.NETWORK
    host: str | None = None
    port: int = Field(default=9100, gt=0, lt=65536)
    path: str | None = None
    """Device or file path (serial port, `/dev/usb/lp0`, or a file that collects the bytes)."""
    usb_vendor: int | None = None
    usb_product: int | None = None
    serial_baud: int = 19200
    width_mm: int = Field(default=80)
    columns: int = Field(default=48, ge=24, le=64)
    gb18030: bool = False
    """True when the printer has a GB18030 (Chinese) font; other printers get such lines as images."""
    language: Language | None = None
    """The language of this printer's tickets; the store's (`[store] language`) when not given."""
    profile: str = Field(default="default", min_length=1)
    """python-escpos capability profile (`default`, `TM-T20II`, `POS-5890`…): QR codes, cutter, code pages."""
    status_query: bool = True
    """The printer answers status queries (DLE EOT, GS r): paper out is seen before a ticket is sent, and a
    ticket counts as printed only when the printer confirms it. False for one-way links (a file, some USB)."""
    timeout_s: float = Field(default=5.0, gt=0)
    """Connecting, and waiting for the printer's answer, give up after this long (the attempt counts as failed).
    Waiting for a ticket to be confirmed takes longer: this plus the ticket's bytes at `slowest_bytes_per_s`."""
    slowest_bytes_per_s: float = Field(default=500.0, gt=0)
    """The slowest pace at which this printer, working, takes a ticket's bytes (print head, serial line, a busy
    network). A ticket of N bytes is waited for `timeout_s` + N / this before the spooler gives up on it (a 10 KB
    raster ticket: 5 + 20 s by default); a slower printer would get every ticket sent again marked REPRINT."""
    max_resends: int = Field(default=1, ge=0)
    """Times a ticket the printer took but did not confirm is sent to it again (marked REPRINT). After that it goes
    to `backup` with the rest of the queue; without a backup it is recorded printed but unconfirmed, the station is
    told to check it, and the tickets behind it go on."""
    retry_s: float = Field(default=1.0, gt=0)
    """First wait before retrying a failed printer; it doubles on each failure up to `retry_max_s`."""
    retry_max_s: float = Field(default=15.0, gt=0)
    backup: Ident | None = None
    max_failures: int = Field(default=3, ge=1)
    """Failed attempts in a row before this printer's tickets go to `backup` (until it answers again)."""


TOKEN_HASH = r"^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$"


def hash_token(token: str, salt: str | None = None) -> str:
    """The line a config keeps instead of a device's token: `sha256$SALT$HEX` (`kds token` makes both).

    Tokens are random (`kds token`: 192 bits), not passwords, so a salted SHA-256 is enough to keep a copied config
    from giving them away, and cheap enough to check on every hello."""
    salt = salt if salt is not None else secrets.token_hex(16)
    return f"sha256${salt}${hashlib.sha256((salt + token).encode('utf-8')).hexdigest()}"


class Device(_Strict):
    """A terminal, kiosk, app backend or monitor allowed to connect to the hub."""

    id: Ident
    token: str | None = Field(default=None, min_length=MIN_TOKEN_LENGTH)
    """The device's token in plain text (the sample store); or give `token_hash`, `token_env` or `token_file`."""
    token_hash: str | None = Field(default=None, pattern=TOKEN_HASH)
    """`sha256$SALT$HEX` of the token (`kds token` makes one): the config then does not hold the token itself."""
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    """The name of an environment variable of the hub that holds the token (read when the config is loaded)."""
    token_file: Path | None = None
    """A file that holds the token (white space around it is dropped), relative to the config file's folder; it
    must not be readable by other users (group-readable is allowed, with a warning)."""
    role: Role
    station: Ident | None = None
    """The station of a kitchen device."""
    channels: tuple[Channel, ...] = ()
    """Channels a source (or counter) may submit orders on."""
    keymap: dict[str, str] = Field(default_factory=dict)
    """Per-device key bindings for bump bars (used by the terminals), added to the default keys."""
    keymap_replaces_defaults: bool = False
    """True: the device's keymap is the whole keymap (the default keys are dropped)."""
    language: Language | None = None
    """The language of this device's screen; the store's (`[store] language`) when not given."""

    _secret: str | None = PrivateAttr(default=None)
    """The plain token when it is known: `token`, or what `token_env` or `token_file` held at load."""

    @field_validator("token_file")
    @classmethod
    def _token_file_from_config(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _resolve(v, info)

    @model_validator(mode="after")
    def _one_token(self, info: ValidationInfo) -> Device:
        given = [k for k in ("token", "token_hash", "token_env", "token_file") if getattr(self, k) is not None]
        if len(given) != 1:
            also = f" (it has {', '.join(given)})" if given else ""
            raise ValueError(f"give the device exactly one of token, token_hash, token_env or token_file{also}")
        try:
            self._secret = self.token if self.token is not None else self._read_secret()
        except FieldProblem:
            if _checks_secrets(info):
                raise
            self._secret = None  # not the hub: a secret that lives elsewhere is not this reader's business
        return self

    def _read_secret(self) -> str | None:
        """The token from `token_env` or `token_file` (None for `token_hash`); FieldProblem when unusable."""
        if self.token_env is not None:
            value = os.environ.get(self.token_env)
            if value is None:
                raise FieldProblem("token_env", f"environment variable {self.token_env} is not set")
            return _long_enough("token_env", value.strip(), f"environment variable {self.token_env}")
        if self.token_file is not None:
            return _long_enough("token_file", _read_token_file(self.token_file), str(self.token_file))
        return None

    @property
    def secret(self) -> str | None:
        """The device's token in plain text when the config gives it (`token`, `token_env`, `token_file`); None when
        it keeps only the hash, or the token lives where this reader cannot see it."""
        return self._secret

    def verify(self, token: str) -> bool:
        """Whether `token` is this device's, in constant time (the time taken tells nothing of how close it was)."""
        if self.token_hash is not None:
            _alg, salt, _hex = self.token_hash.split("$")
            return hmac.compare_digest(hash_token(token, salt).encode(), self.token_hash.encode())
        if self._secret is None:
            return False
        return hmac.compare_digest(self._secret.encode("utf-8"), token.encode("utf-8"))


def _long_enough(field: str, token: str, where: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise FieldProblem(field, f"the token in {where} is shorter than {MIN_TOKEN_LENGTH} characters")
    return token


def _read_token_file(path: Path) -> str:
    """A token file's text, stripped; refused when other users may read or write it (ssh's rule for keys)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FieldProblem("token_file", f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise FieldProblem("token_file", f"cannot read {path}: {reason or exc}") from None
    if os.name == "posix":
        perms = stat.S_IMODE(mode)
        if perms & 0o007:
            raise FieldProblem("token_file", f"{path} is open to other users (mode {perms:04o}): chmod 600 it (or 640)")
        if perms & 0o070:
            log.warning("token file %s can be read by its group (mode %04o): chmod 600 keeps it private", path, perms)
    return text.strip()


class Limits(_Strict):
    """Every bound the hub enforces, with defaults a store can run on (documented in docs/protocol.md, Limits)."""

    max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    """A frame larger than this closes the connection with 4009."""
    frames_per_s: float = Field(default=200.0, gt=0)
    """Frames one device may send per second, on average (all its connections together)."""
    frame_burst: int = Field(default=1000, ge=1)
    """Frames one device may send at once above that rate; past it frames get `rate_limited`."""
    abuse_burst: int = Field(default=2000, ge=1)
    """Refused frames a device may send (refilled at `frames_per_s`) before it is closed with 4029."""
    hellos_per_s: float = Field(default=20.0, gt=0)
    """New connections one IP address may open per second, on average."""
    hello_burst: int = Field(default=200, ge=1)
    """New connections one IP address may open at once; past it: `rate_limited` and close 4029."""
    auth_failures_per_min: float = Field(default=6.0, gt=0)
    """Refused hellos (unknown device, wrong token) one IP address may send per minute, on average."""
    auth_failure_burst: int = Field(default=20, ge=1)
    """Refused hellos one IP address may send at once; past it every hello from it gets `rate_limited` (4029)."""
    hello_timeout_s: float = Field(default=10.0, gt=0)
    """A connection that sends no hello within this time is closed with 4000."""
    max_connections: int = Field(default=500, ge=1)
    """Open websocket connections in all (with or without a hello); past it: close 4012."""
    max_connections_per_device: int = Field(default=4, ge=1)
    """Live connections of one device; past it the new one is refused with 4012."""
    max_items_per_order: int = Field(default=100, ge=1, le=1000)
    """Lines one order may hold, removed ones included (amendments add lines)."""
    compression: bool = False
    """Per-message deflate for the devices that offer it. Off: on a store's network it saves little and costs the hub
    CPU for every frame to every screen (an event is then framed once for all of them)."""
    outbox_max_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    """Bytes waiting to be sent to one connection; past it the connection is closed with 4011."""
    outbox_total_bytes: int = Field(default=128 * 1024 * 1024, ge=1024 * 1024)
    """Bytes waiting for all connections together; past it the connection with most waiting is closed with 4011."""
    outbox_stall_s: float = Field(default=15.0, gt=0)
    """A connection whose waiting frames have not moved for this long is closed with 4011."""
    keepalive_interval_s: float = Field(default=8.0, gt=0)
    """The hub pings each connection this often."""
    keepalive_timeout_s: float = Field(default=10.0, gt=0)
    """A connection that does not answer a ping within this time is dropped."""
    log_interval_s: float = Field(default=10.0, gt=0)
    """Refused frames are logged at most once per device per interval, with a count."""
    snapshot_closed: int = Field(default=20, ge=0, le=200)
    """Closed orders a snapshot holds (the latest still in memory); older ones: `orders.closed`."""
    snapshot_page_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    """A welcome snapshot larger than this is sent in pages of at most this many bytes."""
    replay_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    """A resume that would replay more than this gets a fresh snapshot instead."""
    replay_events: int = Field(default=20_000, ge=100)
    """Events held in memory for resumes (count)."""
    replay_memory_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    """Events held in memory for resumes (bytes); older resumes get a snapshot."""
    closed_keep_s: float = Field(default=10 * 60, ge=60)
    """Closed orders leave the hub's memory this long after they closed (they stay in the database)."""
    open_max_age_h: float = Field(default=12.0, gt=0)
    """An open order older than this is flagged in the log and leaves memory (it stays in the database)."""
    db_busy_timeout_ms: int = Field(default=5000, ge=0)
    """SQLite: how long a write waits for a lock held by another connection before the batch fails."""
    db_retry_s: float = Field(default=0.5, gt=0)
    """After a failed commit the hub refuses writes for this long, doubling on each failure in a row."""
    db_retry_max_s: float = Field(default=5.0, gt=0)
    device_lockout_failures: int = Field(default=10, ge=1, le=10_000)
    """Wrong tokens for one device, from any addresses, within `device_lockout_window_s` that lock the device out."""
    device_lockout_window_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    device_lockout_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    """How long a locked-out device's hellos are refused (`locked_out`, close 4029), the right token included,
    except from an address it authenticated from within `device_trust_h`."""
    device_trust_h: float = Field(default=24.0, ge=0, le=24 * 30)
    """An address a device authenticated from this recently is not locked out (0: no address is spared)."""

    @model_validator(mode="after")
    def _fits(self) -> Limits:
        # A welcome page (plus the order that may overflow it) must fit a connection's outbox, or no large
        # welcome could ever be sent.
        need = self.snapshot_page_bytes + 256 * 1024
        if self.outbox_max_bytes < need:
            raise ValueError(
                f"outbox_max_bytes ({self.outbox_max_bytes}) must be at least snapshot_page_bytes + 256 KiB "
                f"({need}): a welcome page must fit a connection's outbox"
            )
        return self


class Timing(_Strict):
    """How the hub learns prep times and estimates when orders will be ready (`kds.timing`)."""

    learn_window: int = Field(default=50, ge=1, le=1000)
    """The last this many bumps of an item at a station (per hour of the day, and over all hours) make its learned
    prep time."""
    learn_min_samples: int = Field(default=5, ge=1, le=1000)
    """A learned figure is used once it rests on at least this many bumps (the hour's own first, then all hours');
    until then the config's `prep_s`."""
    learn_max_s: int = Field(default=2 * 3600, gt=0)
    """A ticket done later than this after it could start is not a prep time (forgotten on the screen): not
    learned."""
    fire_by_prep: bool = False
    """Fire each station's part of an order so that all its parts finish together (the slowest at once, the others
    later by the difference, the queue at each station counted); false: every part goes to its station at once. Off
    by default: a store turns it on (its tickets then print as each part fires, not as the order comes)."""
    fire_soon_s: int = Field(default=60, ge=0, le=3600)
    """A part of an order due to fire within this many seconds (fire by prep time) goes to its station at once."""
    schedule_ahead_s: int = Field(default=1200, ge=0, le=24 * 3600)
    """An order wanted later (a pickup's `at`, a delivery's `due`) waits in the scheduled list when it would fire
    more than this many seconds from now; sooner, it goes to the kitchen at once (a 30-minute delivery starts now)."""
    schedule_slack_s: int = Field(default=300, ge=0, le=3600)
    """An order for later aims to be ready this long before it is wanted (an estimate is not exact: aiming at the
    very minute would make half of them late)."""
    rider_margin_s: int = Field(default=600, ge=0, le=3 * 3600)
    """A delivery must be ready this long before its `due` (the rider's way): what a scheduled delivery aims at."""


class Tls(_Strict):
    """The hub's own TLS (`wss://`): its certificate chain and private key, PEM files, relative to the config
    file's folder. Checked when the config is loaded: both files exist and load together."""

    cert_file: Path
    """The hub's certificate, then any intermediate certificates (PEM)."""
    key_file: Path
    """The certificate's private key (PEM, not encrypted); keep it readable by the hub's user only."""

    @field_validator("cert_file", "key_file")
    @classmethod
    def _from_config(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve(v, info)

    @model_validator(mode="after")
    def _loads(self, info: ValidationInfo) -> Tls:
        if _checks_secrets(info):
            try:
                server_context(self.cert_file, self.key_file)
            except TlsError as exc:
                raise FieldProblem(exc.field, exc.message) from None
        return self


class StoreConfig(_Strict):
    """The whole store."""

    store: StoreInfo
    counter: Counter = Counter()
    stations: tuple[Station, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = ()
    methods: tuple[CookingMethod, ...] = ()
    allergens: tuple[Allergen, ...] = MAJOR_ALLERGENS
    """The allergens this store declares (`[[allergens]]`); the major allergens when the config lists none."""
    catalogue: tuple[CatalogueItem, ...] = Field(min_length=1)
    printers: tuple[Printer, ...] = ()
    devices: tuple[Device, ...] = Field(min_length=1)
    limits: Limits = Limits()
    timing: Timing = Timing()
    tls: Tls | None = None
    """When set, the hub speaks `wss://` only."""

    # Lookups built once; the config is frozen.
    def station(self, station_id: str) -> Station | None:
        """The station with this id, if any."""
        return self._index().stations.get(station_id)

    def item(self, sku: str) -> CatalogueItem | None:
        """The catalogue item with this SKU, if any."""
        return self._index().items.get(sku)

    def method(self, method_id: str) -> CookingMethod | None:
        """The cooking method with this id, if any."""
        return self._index().methods.get(method_id)

    def category(self, category_id: str) -> Category | None:
        """The category with this id, if any."""
        return self._index().categories.get(category_id)

    def device(self, device_id: str) -> Device | None:
        """The device with this id, if any."""
        return self._index().devices.get(device_id)

    def printer(self, printer_id: str) -> Printer | None:
        """The printer with this id, if any."""
        return self._index().printers.get(printer_id)

    def allergen(self, allergen_id: str) -> Allergen | None:
        """The declared allergen with this id, if any."""
        return self._index().allergens.get(allergen_id)

    def language_of(self, device_id: str | None) -> Language:
        """The language of a device's screen: its own, else the store's."""
        dev = self.device(device_id) if device_id else None
        return dev.language if dev is not None and dev.language is not None else self.store.language

    def _index(self) -> _Index:
        cached: _Index | None = self.__dict__.get("_idx")
        if cached is None:
            cached = _Index(
                {s.id: s for s in self.stations},
                {i.sku: i for i in self.catalogue},
                {m.id: m for m in self.methods},
                {c.id: c for c in self.categories},
                {d.id: d for d in self.devices},
                {p.id: p for p in self.printers},
                {a.id: a for a in self.allergens},
            )
            object.__setattr__(self, "_idx", cached)  # frozen model: cache outside the fields
        return cached


@dataclass(frozen=True, slots=True)
class _Index:
    stations: dict[str, Station]
    items: dict[str, CatalogueItem]
    methods: dict[str, CookingMethod]
    categories: dict[str, Category]
    devices: dict[str, Device]
    printers: dict[str, Printer]
    allergens: dict[str, Allergen]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config: where (key path) and why."""

    loc: tuple[str | int, ...]
    msg: str

    def __str__(self) -> str:
        path = ".".join(str(p) for p in self.loc) or "(top)"
        return f"{path}: {self.msg}"


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the store configuration:\n{lines}")


def exposures(config: StoreConfig, host: str) -> list[str]:
    """What a hub serving `config` on `host` leaves open on a shared network (docs/security.md), for the log at
    start: plain-text tokens in the config file, no TLS on an address other machines reach."""
    notes = []
    plain = [d.id for d in config.devices if d.token is not None]
    if plain:
        notes.append(
            f"{len(plain)} device token(s) are in the config in plain text ({', '.join(plain[:5])}"
            f"{', ...' if len(plain) > 5 else ''}): anyone who reads the file can be those devices; keep a "
            "token_hash (kds token), a token_env or a token_file instead"
        )
    if config.tls is None and host not in ("127.0.0.1", "::1", "localhost"):
        notes.append(
            f"no [tls] in the config and the hub listens on {host}: tokens, orders and customers' names cross the "
            "network in clear; give the hub a certificate ([tls] cert_file, key_file)"
        )
    return notes


def load_config(path: str | Path = DEFAULT_CONFIG_PATH, *, check_secrets: bool = True) -> StoreConfig:
    """Read and validate a store config file; raise ConfigError listing every problem.

    Relative paths in it (`token_file`, `tls.*_file`) point from the file's folder. `check_secrets=False` is for
    the machines that are not the hub (terminals, the simulator): the tokens of `token_env`/`token_file` that can
    be read are, the others are left unknown, and the TLS files are not looked at."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [ConfigProblem((), f"cannot read file: {exc.strerror or exc}")]) from exc
    return parse_config(text, source=str(p), base_dir=p.absolute().parent, check_secrets=check_secrets)


def parse_config(
    text: str, *, source: str = "<config>", base_dir: Path | None = None, check_secrets: bool = True
) -> StoreConfig:
    """Validate TOML text as a store config; raise ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigProblem((), f"not valid TOML: {exc}")]) from exc
    return config_from_dict(raw, source=source, base_dir=base_dir, check_secrets=check_secrets)


def config_from_dict(
    raw: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None, check_secrets: bool = True
) -> StoreConfig:
    """Validate an already-parsed mapping as a store config (relative paths from `base_dir`, else the working
    directory)."""
    context = {"base_dir": base_dir, "check_secrets": check_secrets}
    try:
        cfg = StoreConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        problems = [_problem(raw, e) for e in exc.errors() if not _too_short_after_failures(raw, e)]
        if isinstance(raw, dict):
            # Still check the references between the well-formed entries, so that one typo does not hide the
            # other problems: the manager gets the whole list in one go.
            problems.extend(_cross_check(_salvage(raw, context)))
        raise ConfigError(source, problems) from None
    problems = list(_cross_check(_parts_of(cfg)))
    if problems:
        raise ConfigError(source, problems)
    return cfg


def _problem(raw: dict[str, Any], error: Any) -> ConfigProblem:
    """A pydantic error as a ConfigProblem; a validator's FieldProblem names its field in the key path."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        return ConfigProblem((*_toml_loc(raw, error["loc"]), cause.field), cause.message)
    return ConfigProblem(_toml_loc(raw, error["loc"]), error["msg"])


def _too_short_after_failures(raw: Any, error: Any) -> bool:
    # pydantic also says "stations: should have at least 1 item after validation, not 0" when the file has
    # stations but every one is malformed; those entries are already reported, that line would only mislead.
    if error["type"] != "too_short":
        return False
    node = raw
    for part in error["loc"]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    min_length = error.get("ctx", {}).get("min_length")
    return isinstance(node, list) and isinstance(min_length, int) and len(node) >= min_length


def _toml_loc(raw: dict[str, Any], loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # Name list entries by their id so `stations[3]` reads as `stations[3](grill)` in the message.
    out: list[str | int] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            entry = node[part]
            label = entry.get("id") or entry.get("sku") if isinstance(entry, dict) else None
            out.append(f"{part}({label})" if label else part)
            node = entry
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


_M = TypeVar("_M", bound=BaseModel)

_Ids = list[tuple[int, str]] | None
"""Every id a section names, with its position (valid entry or not); None when the section is unusable."""


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the cross-check looks at: the entries that are well-formed, with their position in the file."""

    store: StoreInfo | None
    counter: Counter | None
    stations: list[tuple[int, Station]]
    categories: list[tuple[int, Category]]
    methods: list[tuple[int, CookingMethod]]
    allergens: list[tuple[int, Allergen]]
    catalogue: list[tuple[int, CatalogueItem]]
    printers: list[tuple[int, Printer]]
    devices: list[tuple[int, Device]]
    ids: dict[str, _Ids]


def _parts_of(cfg: StoreConfig) -> _Parts:
    return _Parts(
        cfg.store,
        cfg.counter,
        list(enumerate(cfg.stations)),
        list(enumerate(cfg.categories)),
        list(enumerate(cfg.methods)),
        list(enumerate(cfg.allergens)),
        list(enumerate(cfg.catalogue)),
        list(enumerate(cfg.printers)),
        list(enumerate(cfg.devices)),
        {
            "stations": list(enumerate(s.id for s in cfg.stations)),
            "categories": list(enumerate(c.id for c in cfg.categories)),
            "methods": list(enumerate(m.id for m in cfg.methods)),
            "allergens": list(enumerate(a.id for a in cfg.allergens)),
            "catalogue": list(enumerate(i.sku for i in cfg.catalogue)),
            "printers": list(enumerate(p.id for p in cfg.printers)),
            "devices": list(enumerate(d.id for d in cfg.devices)),
        },
    )


def _salvage(raw: dict[str, Any], context: dict[str, Any]) -> _Parts:
    """The well-formed parts of a config that failed validation, so its references can be checked too."""
    ids: dict[str, _Ids] = {}

    def section(name: str, model: type[_M], key: str = "id") -> list[tuple[int, _M]]:
        if name not in raw:
            f = StoreConfig.model_fields[name]
            default = () if f.is_required() else f.get_default(call_default_factory=True)
            ids[name] = None if f.is_required() else [(k, getattr(e, key)) for k, e in enumerate(default)]
            return list(enumerate(default))
        entries = raw[name]
        if not isinstance(entries, list):
            ids[name] = None
            return []
        good: list[tuple[int, _M]] = []
        seen: list[tuple[int, str]] = []
        for k, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get(key), str):
                seen.append((k, entry[key]))
            with suppress(ValidationError):  # already reported by the whole-config validation
                good.append((k, model.model_validate(entry, context=context)))
        ids[name] = seen
        return good

    def single(name: str, model: type[_M], default: _M | None) -> _M | None:
        if name not in raw:
            return default
        try:
            return model.model_validate(raw[name], context=context)
        except ValidationError:
            return None

    return _Parts(
        single("store", StoreInfo, None),
        single("counter", Counter, Counter()),
        section("stations", Station),
        section("categories", Category),
        section("methods", CookingMethod),
        section("allergens", Allergen),
        section("catalogue", CatalogueItem, key="sku"),
        section("printers", Printer),
        section("devices", Device),
        ids,
    )


def _repeats(entries: Iterable[tuple[int, str]]) -> Iterable[tuple[int, str, int]]:
    """(position, value, first position) of every entry whose value already appeared earlier."""
    first: dict[str, int] = {}
    for k, v in entries:
        if v in first:
            yield k, v, first[v]
        else:
            first[v] = k


def _cross_check(parts: _Parts) -> Iterable[ConfigProblem]:
    """References between sections, uniqueness, and value ranges pydantic cannot see alone."""
    ids = parts.ids
    known = {name: None if seen is None else {v for _, v in seen} for name, seen in ids.items()}

    def unknown(section: str, ref: str) -> bool:
        names = known[section]
        return names is not None and ref not in names

    for name, key in (
        ("stations", "id"),
        ("methods", "id"),
        ("allergens", "id"),
        ("categories", "id"),
        ("printers", "id"),
        ("devices", "id"),
        ("catalogue", "sku"),
    ):
        for k, d, first in _repeats(ids[name] or []):
            yield ConfigProblem((name, f"{k}({d})", key), f"duplicate id {d!r} (first at {name}[{first}])")
    items = dict(parts.catalogue)
    for k, d, first in _repeats((k, i.barcode) for k, i in parts.catalogue if i.barcode):
        yield ConfigProblem(
            ("catalogue", f"{k}({items[k].sku})", "barcode"),
            f"duplicate barcode {d!r} (first at catalogue[{first}])",
        )

    if parts.store is not None:
        default = parts.store.default_station
        if unknown("stations", default):
            yield ConfigProblem(("store", "default_station"), f"unknown station {default!r}")
        try:
            ZoneInfo(parts.store.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            yield ConfigProblem(("store", "timezone"), f"unknown time zone {parts.store.timezone!r}")
    if parts.counter is not None:
        if parts.counter.printer and unknown("printers", parts.counter.printer):
            yield ConfigProblem(("counter", "printer"), f"unknown printer {parts.counter.printer!r}")
        if parts.counter.timers.late_after_s <= parts.counter.timers.warn_after_s:
            yield ConfigProblem(("counter", "timers"), "late_after_s must be greater than warn_after_s")
    for k, s in parts.stations:
        if s.printer and unknown("printers", s.printer):
            yield ConfigProblem(("stations", f"{k}({s.id})", "printer"), f"unknown printer {s.printer!r}")
        if s.timers.late_after_s <= s.timers.warn_after_s:
            yield ConfigProblem(
                ("stations", f"{k}({s.id})", "timers"), "late_after_s must be greater than warn_after_s"
            )
    for k, c in parts.categories:
        if c.station and unknown("stations", c.station):
            yield ConfigProblem(("categories", f"{k}({c.id})", "station"), f"unknown station {c.station!r}")
    for k, method in parts.methods:
        if unknown("stations", method.station):
            yield ConfigProblem(("methods", f"{k}({method.id})", "station"), f"unknown station {method.station!r}")
    for k, it in parts.catalogue:
        here = ("catalogue", f"{k}({it.sku})")
        if unknown("categories", it.category):
            yield ConfigProblem((*here, "category"), f"unknown category {it.category!r}")
        if it.station and unknown("stations", it.station):
            yield ConfigProblem((*here, "station"), f"unknown station {it.station!r}")
        for j, m in enumerate(it.methods):
            if unknown("methods", m):
                yield ConfigProblem((*here, "methods", j), f"unknown cooking method {m!r}")
        for j, a in enumerate(it.allergens):
            if unknown("allergens", a):
                yield ConfigProblem((*here, "allergens", j), f"unknown allergen {a!r} (not in [[allergens]])")
        for m, fee in it.method_fees.items():
            if m not in it.methods:
                yield ConfigProblem((*here, "method_fees", m), "fee for a method the item does not allow")
            if fee < 0:
                yield ConfigProblem((*here, "method_fees", m), "a processing fee cannot be negative")
        for m, prep in it.method_prep_s.items():
            if m not in it.methods:
                yield ConfigProblem((*here, "method_prep_s", m), "prep time for a method the item does not allow")
            if not 0 < prep <= 6 * 3600:
                yield ConfigProblem((*here, "method_prep_s", m), "a prep time is between 1 s and 6 hours")
        if it.sold_by is SoldBy.WEIGHT:
            if it.min_weight_g is None or it.max_weight_g is None:
                yield ConfigProblem(here, "items sold by weight need min_weight_g and max_weight_g")
            elif it.min_weight_g >= it.max_weight_g:
                yield ConfigProblem((*here, "max_weight_g"), "must be greater than min_weight_g")
        elif it.min_weight_g is not None or it.max_weight_g is not None:
            yield ConfigProblem(here, "weight limits are only for items sold by weight")
    for k, p in parts.printers:
        here = ("printers", f"{k}({p.id})")
        if p.backup is not None and (p.backup == p.id or unknown("printers", p.backup)):
            yield ConfigProblem((*here, "backup"), f"unknown backup printer {p.backup!r}")
        if p.transport is Transport.NETWORK and not p.host:
            yield ConfigProblem((*here, "host"), "a network printer needs a host")
        if p.transport in (Transport.FILE, Transport.SERIAL) and not p.path:
            yield ConfigProblem((*here, "path"), f"a {p.transport.value} printer needs a path")
        if p.transport is Transport.USB and (p.usb_vendor is None or p.usb_product is None):
            yield ConfigProblem(here, "a usb printer needs usb_vendor and usb_product")
        if p.retry_max_s < p.retry_s:
            yield ConfigProblem((*here, "retry_max_s"), "must not be less than retry_s")
        if p.width_mm not in (58, 80):
            yield ConfigProblem((*here, "width_mm"), "thermal paper is 58 or 80 mm wide")
    for k, dev in parts.devices:
        here = ("devices", f"{k}({dev.id})")
        if dev.role is Role.KITCHEN:
            if dev.station is None:
                yield ConfigProblem((*here, "station"), "a kitchen device needs a station")
            elif unknown("stations", dev.station):
                yield ConfigProblem((*here, "station"), f"unknown station {dev.station!r}")
        elif dev.station is not None:
            yield ConfigProblem((*here, "station"), "only kitchen devices have a station")
        if dev.role is Role.SOURCE and not dev.channels:
            yield ConfigProblem((*here, "channels"), "a source device needs at least one channel")
        if dev.channels and dev.role not in (Role.SOURCE, Role.COUNTER):
            yield ConfigProblem((*here, "channels"), "only source and counter devices submit orders")
