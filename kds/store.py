"""All database access: the schema (sqlmodel tables), committing event batches, and loading state on start.

SQLite (WAL, synchronous=FULL) by default; any SQLAlchemy URL works for the rest of the module, so PostgreSQL
comes in by URL. The hub writes from one thread only (the server's committer), one transaction per batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from kds.hub import EventRecord, collector_paused, stored_json
from kds.printing import Banner, JobMark, JobState, Layout, PrintJob
from kds.protocol import EventKind
from kds.timing import PrepSample

log = logging.getLogger("kds.store")

OPEN_STATUSES = ("accepted", "preparing", "ready")
SCHEMA_HEAD = "0004"
"""The newest migration in kds/migrations (tests/test_migrations.py checks that it is alembic's head)."""


class OrderRow(SQLModel, table=True):
    """The latest state of one order (its `OrderView` as JSON) with the columns we query by."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("store_id", "source", "key", name="uq_orders_source_key"),
        sa.Index("ix_orders_open", "store_id", "status", "updated_at"),
    )

    store_id: str = Field(primary_key=True, max_length=40)
    id: str = Field(primary_key=True, max_length=40)
    number: str = Field(max_length=16)
    source: str = Field(max_length=40)
    key: str = Field(max_length=64)
    channel: str = Field(max_length=8)
    status: str = Field(max_length=16)
    created_at: str = Field(max_length=40)
    updated_at: str = Field(max_length=40)
    doc: str


class EventRow(SQLModel, table=True):
    """One state change, as the `event` frame that was broadcast (kept for resume and audit)."""

    __tablename__ = "events"

    store_id: str = Field(primary_key=True, max_length=40)
    seq: int = Field(primary_key=True)
    order_id: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=24)
    at: str = Field(max_length=40)
    payload: str


class PrintJobRow(SQLModel, table=True):
    """One print job: stored with the events that caused it, before anything is sent to a printer."""

    __tablename__ = "print_jobs"
    __table_args__ = (sa.Index("ix_print_jobs_pending", "store_id", "state", "id"),)

    store_id: str = Field(primary_key=True, max_length=40)
    id: int = Field(primary_key=True)
    printer: str = Field(max_length=40)
    """The printer the job was made for."""
    target: str = Field(max_length=40)
    """The printer it goes to now (a backup after failures)."""
    layout: str = Field(max_length=16)
    order_id: str = Field(max_length=40, index=True)
    station: str | None = Field(default=None, max_length=40)
    banner: str | None = Field(default=None, max_length=16)
    state: str = Field(max_length=16)
    reprint: bool = False
    attempts: int = 0
    reason: str = Field(max_length=120)
    created_at: str = Field(max_length=40)
    updated_at: str = Field(max_length=40)
    printed_at: str | None = Field(default=None, max_length=40)
    last_error: str | None = Field(default=None, max_length=500)
    order_doc: str


class HubCommandRow(SQLModel, table=True):
    """A frame a device sent to a hub that does not lead the store, relayed to the leading hub (PostgreSQL)."""

    __tablename__ = "hub_commands"
    __table_args__ = (sa.Index("ix_hub_commands_pending", "store_id", "done", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    store_id: str = Field(max_length=40)
    hub: str = Field(max_length=40)
    """The hub the device is connected to (where the answer goes)."""
    device: str = Field(max_length=40)
    frame: str
    created_at: str = Field(max_length=40)
    done: bool = False


class HubReplyRow(SQLModel, table=True):
    """The leading hub's answer to a relayed frame, for the hub the device is connected to."""

    __tablename__ = "hub_replies"
    __table_args__ = (sa.Index("ix_hub_replies_hub", "store_id", "hub", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    store_id: str = Field(max_length=40)
    hub: str = Field(max_length=40)
    command_id: int
    frame: str
    created_at: str = Field(max_length=40)


class PrepSampleRow(SQLModel, table=True):
    """One ticket done: how long its slowest item took (`kds.timing.PrepSample`), stored with the event that taught
    it, so that the prep times the hub learned survive a restart (`Store.load_prep_samples`)."""

    __tablename__ = "prep_samples"
    __table_args__ = (sa.Index("ix_prep_samples_store", "store_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    store_id: str = Field(max_length=40)
    station: str = Field(max_length=40)
    sku: str = Field(max_length=32)
    cook: str | None = Field(default=None, max_length=40)
    seconds: float
    at: str = Field(max_length=40)


ORDERS: sa.Table = SQLModel.metadata.tables["orders"]
EVENTS: sa.Table = SQLModel.metadata.tables["events"]
JOBS: sa.Table = SQLModel.metadata.tables["print_jobs"]
COMMANDS: sa.Table = SQLModel.metadata.tables["hub_commands"]
REPLIES: sa.Table = SQLModel.metadata.tables["hub_replies"]
SAMPLES: sa.Table = SQLModel.metadata.tables["prep_samples"]


def _insert(table: str, columns: str) -> str:
    names = columns.split()
    cols = ", ".join(f'"{c}"' for c in names)
    return f"INSERT INTO {table} ({cols}) VALUES ({', '.join(':' + c for c in names)})"


_HOT_SQL = {
    "events": _insert("events", "store_id seq order_id kind at payload"),
    "orders": _insert("orders", "store_id id number source key channel status created_at updated_at doc")
    + " ON CONFLICT (store_id, id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,"
    " doc = excluded.doc",
    "samples": _insert("prep_samples", "store_id station sku cook seconds at"),
    "jobs": _insert(
        "print_jobs",
        "store_id id printer target layout order_id station banner state reprint attempts reason created_at"
        " updated_at printed_at last_error order_doc",
    ),
    "marks": "UPDATE print_jobs SET state = :b_state, target = :b_target, reprint = :b_reprint,"
    " attempts = attempts + :b_attempt, last_error = COALESCE(:b_error, last_error),"
    " printed_at = COALESCE(:b_printed, printed_at), updated_at = :b_at WHERE store_id = :b_store AND id = :b_id",
}
"""The statements of every commit, as SQL text with `:name` parameters (`Store._sql`)."""


SQLITE_AUTOCHECKPOINT = 1000
"""SQLite's default: a commit that takes the write-ahead log past this many pages copies it into the database file."""
SQLITE_CHECKPOINT_BACKSTOP = 16_384
"""Pages (64 MB) past which a commit checkpoints even when the server does it on its own thread
(`Store.checkpoint_elsewhere`)."""


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def database_url(db: str | Path, *, make_dir: bool = True) -> str:
    """A SQLAlchemy URL from `--db`: a URL as is, or a path to a SQLite file (whose folder is made, unless
    `make_dir=False`: `Store` makes it when it first opens the file)."""
    s = str(db)
    if "://" in s:
        if s.startswith("postgresql://"):
            return "postgresql+psycopg://" + s.removeprefix("postgresql://")
        return s
    if make_dir:
        Path(s).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{s}"


def shown_url(url: str) -> str:
    """A database URL as it may be printed and logged: never its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url


class StoreUnavailable(Exception):
    """The database cannot be opened (no server there, a refused login, a file that cannot be made): the message
    says where and what to check, never a password."""


def open_problem(url: str, exc: BaseException) -> str:
    """What a store manager reads when the database at `url` does not open (`exc`: the driver's error)."""
    u = sa.make_url(url)
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
    if u.password:
        reason = reason.replace(str(u.password), "***")
    if u.get_backend_name() != "postgresql":
        path = u.database or ""
        return (
            f"cannot open the database file {path}: {reason}; check that its folder exists and that this user may "
            "write there (or give --db another file)"
        )
    host, port = u.host or "localhost", u.port or 5432
    role = u.username or "(this system user)"
    database = u.database or u.username or "(the role's)"
    where = f"PostgreSQL at {host}:{port} (role {role}, database {database})"
    # libpq: 'connection failed: connection to server at "h", port p failed: FATAL:  <why>' (a line per address
    # tried, then hints such as "Is the server running on that host…", which the advice below replaces)
    lines = [ln for ln in str(getattr(exc, "orig", None) or exc).splitlines() if " failed: " in ln]
    detail = " ".join(lines[-1].rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").split()) if lines else reason
    if u.password:
        detail = detail.replace(str(u.password), "***")
    low = detail.lower()
    if (
        "password authentication failed" in low
        or ("role" in low and "does not exist" in low)
        or "no pg_hba.conf entry" in low
        or "no password supplied" in low
    ):
        return (
            f"{where} refused the login: {detail}; check the role name and password in --db (the password is not "
            "shown here) and the server's pg_hba.conf"
        )
    if "database" in low and "does not exist" in low:
        return f"{where}: {detail}; create it (createdb -h {host} -p {port} -U {role} {database}) or fix --db"
    if any(
        w in low for w in ("refused", "timeout", "timed out", "could not translate", "no route", "unreachable", "name")
    ):
        return (
            f"cannot reach {where}: {detail}; check that PostgreSQL runs on {host} and listens on port {port} "
            "(listen_addresses, firewall) and the host and port in --db"
        )
    return f"cannot open {where}: {detail}; check --db and the server"


PG_KEEPALIVE = {"idle_s": 5, "interval_s": 2, "count": 3, "user_timeout_ms": 10_000}
"""TCP keepalive on every PostgreSQL connection, on both ends, so that a peer that vanished (a hub's or the
database's host losing power or its network) is noticed in about idle + interval × count = 11 s, not the kernel's
two hours: the database then ends the hub's sessions, and with its lock session the lead of the store, which
another hub takes; the hub's own queries to a vanished server fail instead of hanging (`user_timeout_ms` bounds
data left unanswered). A hub *process* that dies is noticed at once either way: its kernel closes the sockets."""


PG_CONNECT_TIMEOUT_S = 10
"""How long a connection to PostgreSQL may take before it fails (a server that does not answer at all, not a
refused port): a hub that cannot reach its database says so instead of waiting for the kernel's TCP timeout. A
`connect_timeout` in the URL wins."""


def _connect_args(url: str) -> dict[str, Any]:
    """libpq parameters for a PostgreSQL URL (`PG_KEEPALIVE`): this side's keepalive, and the server's for the
    session (its `tcp_keepalives_*` settings, through `options`, after any the URL gives)."""
    u = sa.make_url(url)
    if u.get_backend_name() != "postgresql":
        return {}
    k = PG_KEEPALIVE
    server = (
        f"-c tcp_keepalives_idle={k['idle_s']} -c tcp_keepalives_interval={k['interval_s']} "
        f"-c tcp_keepalives_count={k['count']} -c tcp_user_timeout={k['user_timeout_ms']}"
    )
    given = u.query.get("options")
    if given:
        server = f"{server} {given if isinstance(given, str) else ' '.join(given)}"
    timeout = {} if "connect_timeout" in u.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return {
        **timeout,
        "keepalives": 1,
        "keepalives_idle": k["idle_s"],
        "keepalives_interval": k["interval_s"],
        "keepalives_count": k["count"],
        "tcp_user_timeout": k["user_timeout_ms"],
        "options": server,
    }


class NotLeading(Exception):
    """A hub that does not hold the lead of a shared store tried to write its events."""


class Store:
    """The hub's database."""

    def __init__(self, db: str | Path, *, store_id: str, busy_timeout_ms: int = 5000) -> None:
        self.url = database_url(db, make_dir=False)
        self.store_id = store_id
        # pre_ping: a connection the server dropped (a terminated PostgreSQL backend, a restarted server) is
        # replaced when it is next taken from the pool, instead of failing the batch after it too.
        try:
            self.engine: Engine = sa.create_engine(
                self.url, future=True, pool_pre_ping=True, connect_args=_connect_args(self.url)
            )
        except (sa.exc.ArgumentError, ImportError) as exc:  # an unknown scheme, a driver not installed
            raise StoreUnavailable(
                f"--db {shown_url(self.url)} is not a database this hub can use ({exc}): give a SQLite file path or "
                "a postgresql://USER@HOST:PORT/DATABASE URL"
            ) from None
        self._lead_conn: Any = None
        self._holds_lead = False
        self._file_lock: Any = None
        self._upsert: Any = None
        self._stmts: dict[str, str] = {}
        self._writer: Any = None
        """SQLite: the pooled connection the hub's commits go through, kept between them (`_commit_sqlite`)."""
        self._writer_thread: int | None = None
        self.autocheckpoint_pages = SQLITE_AUTOCHECKPOINT
        """SQLite: the write-ahead log's length (pages) at which a commit copies it into the database file itself.
        SQLite's own default, unless the server checkpoints on a thread of its own (`checkpoint_elsewhere`)."""
        self.busy_timeout_ms = busy_timeout_ms
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "do_connect", self._sqlite_folder)
            sa.event.listen(self.engine, "connect", self._sqlite_pragmas)
            # Fresh connections after a dispose (the server's reopen after failed commits): the kept one too.
            sa.event.listen(self.engine, "engine_disposed", lambda _engine: self._drop_writer())

    @property
    def shown_url(self) -> str:
        """The database's URL without its password (what is printed and logged)."""
        return shown_url(self.url)

    def _sqlite_file(self) -> Path | None:
        path = sa.make_url(self.url).database
        return Path(path) if self.engine.dialect.name == "sqlite" and path and path != ":memory:" else None

    def _sqlite_folder(self, *_args: Any) -> None:
        """Make the SQLite file's folder, when the file is first opened (not before: a hub that does not start
        leaves nothing behind); StoreUnavailable when it cannot be made or the path is a folder."""
        path = self._sqlite_file()
        if path is None:
            return
        if path.is_dir():
            raise StoreUnavailable(
                f"--db {path} is a folder, not a database file: give a file path such as {path / 'kds.sqlite3'}"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file of that name is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else ""
            raise StoreUnavailable(
                f"cannot make the folder {path.parent} for the database file {path}: {why or exc.strerror or exc}; "
                "give --db a path in a folder this user may write"
            ) from None

    def check_open(self) -> None:
        """Open a connection and ask the database one trivial question; StoreUnavailable (where, what to check, no
        password) when it does not answer."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except StoreUnavailable:
            raise
        except Exception as exc:  # the driver's own errors, wrapped or not (a failed pragma on connect is not)
            raise StoreUnavailable(open_problem(self.url, exc)) from exc

    def _sqlite_pragmas(self, dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged order survives a power cut too, not only a crash; batching pays for the fsyncs.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        cur.close()

    def create_schema(self) -> None:
        """Make the database ready for this hub: migrate an empty one; refuse one this hub cannot use.

        Raises SchemaError when the schema is older (run `kds db upgrade`) or newer (upgrade the hub) than the one
        this hub was built for.
        """
        if self._at_head():
            return
        state = self.schema_state()
        if state.current is None:
            self.upgrade()
            return
        if state.current == state.head:
            return
        if state.current not in state.known:
            raise SchemaError(
                f"the database schema is at revision {state.current}, newer than this hub knows (its newest is "
                f"{state.head}): upgrade the hub software before starting it on this database"
            )
        raise SchemaError(
            f"the database schema is at revision {state.current}, this hub needs {state.head}: "
            f"run `kds db upgrade --db …` first"
        )

    def _at_head(self) -> bool:
        """The database is at SCHEMA_HEAD: read without alembic (loading it is a tenth of a second of each start)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        except sa.exc.DBAPIError:
            return False  # no version table: alembic finds out what the database is
        return [r[0] for r in rows] == [SCHEMA_HEAD]

    def schema_state(self) -> SchemaState:
        """Where the database's schema stands against this hub's migrations (a legacy schema is stamped first)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config())
        with self.engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current is None:
                current = self._stamp_legacy(conn)
        known = frozenset(s.revision for s in script.walk_revisions())
        head = script.get_current_head()
        assert head is not None
        return SchemaState(current=current, head=head, known=known)

    def _stamp_legacy(self, conn: Any) -> str | None:
        # Databases made before migrations existed (tables created directly) carry no revision: name theirs.
        tables = set(sa.inspect(conn).get_table_names())
        if not {"orders", "events"} <= tables:
            return None
        from alembic.runtime.migration import MigrationContext

        revision = "0003" if "hub_commands" in tables else "0002" if "print_jobs" in tables else "0001"
        MigrationContext.configure(conn).stamp(_script(), revision)
        log.info("stamped a database made before migrations as revision %s", revision)
        return revision

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Run the migrations up to `revision`; returns (revision before, revision after)."""
        from alembic import command

        before = self.schema_state().current
        cfg = _alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        after = self.schema_state().current
        assert after is not None
        return before, after

    def close(self) -> None:
        """Release the connections (and with them the lead of the store, if this hub had it)."""
        self._drop_writer()
        if self._lead_conn is not None:
            with contextlib.suppress(Exception):
                self._lead_conn.close()
            self._lead_conn = None
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def _known_keys(self, conn: Any, created: Sequence[EventRecord]) -> dict[str, tuple[str, str, str | None]]:
        """New orders whose (source, key) the database already holds: new id → (old id, old number, old digest).

        The hub remembers keys of the last days only; this catches a resubmission of anything older.
        """
        wanted = {(r.source, r.order.key): r.order_id for r in created if r.order is not None}
        if not wanted:
            return {}
        by_source: dict[str, list[str]] = {}
        for source, key in wanted:
            by_source.setdefault(source, []).append(key)
        # One `source = ? AND key IN (…)` per source: SQLite uses the unique index for this shape (a row-value
        # IN over (source, key) made it scan every order). SQL text: built as an expression it cost 0.4 ms a commit.
        params: dict[str, str] = {"store": self.store_id}
        ors = []
        for k, (source, keys) in enumerate(by_source.items()):
            params[f"s{k}"] = source
            params.update({f"k{k}_{j}": key for j, key in enumerate(keys)})
            ors.append(f'(source = :s{k} AND "key" IN ({", ".join(f":k{k}_{j}" for j in range(len(keys)))}))')
        sql = f'SELECT source, "key", id, number, doc FROM orders WHERE store_id = :store AND ({" OR ".join(ors)})'
        if self.engine.dialect.name == "postgresql":
            sql = re.sub(r":(\w+)", r"%(\1)s", sql)
        rows = conn.exec_driver_sql(sql, params)
        found: dict[str, tuple[str, str, str | None]] = {}
        for source, key, oid, number, doc in rows:
            new_id = wanted.get((source, key))
            if new_id is not None and new_id != oid:
                # The digest of the order as submitted (None for orders stored before hubs kept it).
                digest = stored_json(doc).get("digest") if isinstance(doc, str) else None
                found[new_id] = (oid, number, digest if isinstance(digest, str) else None)
        return found

    def commit(
        self,
        records: Sequence[EventRecord],
        jobs: Sequence[PrintJob] = (),
        *,
        replies: Sequence[tuple[str, int, str]] = (),
        done: Sequence[int] = (),
        marks: Sequence[JobMark] = (),
    ) -> dict[str, tuple[str, str, str | None]]:
        """Store a batch in one transaction: events, the latest state of their orders, the prep samples they taught,
        their print jobs, what the spooler did with earlier jobs (`marks`), and (for a store run by several hubs) the
        answers to relayed frames and which relayed frames are done.

        A new order whose key the database already holds (older than the hub's key index) is not stored, nor are its
        events' samples; the result maps its id to the existing order's (id, number), for the hub to withdraw it.
        """
        records = [r for r in records if not r.dropped]
        jobs = [j for j in jobs if not j.dropped]
        if self.engine.dialect.name == "sqlite" and not replies and not done and self._writes_here():
            return self._commit_sqlite(records, jobs, marks)
        if self.shared:
            # Fencing: a store run by several hubs is written only through the connection that holds the lead.
            # A hub whose lead connection is gone (and with it the lock another hub may hold now) cannot commit.
            lead = self._lead_conn
            if lead is None or not self._holds_lead:
                raise NotLeading(f"this hub does not hold the lead of store {self.store_id}: it may not write")
            with lead.begin():
                # Checked inside the transaction: SQLAlchemy reconnects a dropped connection on its next use, and
                # the new session holds no lock. While this session holds it, no other hub can take it.
                if not _holds_lock(lead):
                    self._holds_lead = False
                    raise NotLeading(f"this hub lost the lead of store {self.store_id} (its lock session is gone)")
                return self._commit_on(lead, records, jobs, replies, done, marks)
        with self.engine.begin() as conn:
            return self._commit_on(conn, records, jobs, replies, done, marks)

    def _commit_on(
        self,
        conn: Any,
        records: list[EventRecord],
        jobs: list[PrintJob],
        replies: Sequence[tuple[str, int, str]],
        done: Sequence[int],
        marks: Sequence[JobMark] = (),
    ) -> dict[str, tuple[str, str, str | None]]:
        known = self._known_keys(conn, [r for r in records if r.kind is EventKind.ORDER_CREATED])
        if known:
            records = [r for r in records if r.order_id not in known]
            jobs = [j for j in jobs if j.order_id not in known]
        # The hot statements go to the driver as SQL text (`_sql`): SQLAlchemy's statement machinery cost about
        # 0.4 ms of Python per commit, all of it holding the interpreter lock the event loop needs.
        for name, rows in self._hot_rows(records, jobs, marks):
            conn.exec_driver_sql(self._sql(name), rows)
        self._relay_rows(conn, replies, done, notify=bool(records))
        return known

    def _hot_rows(
        self, records: Sequence[EventRecord], jobs: Sequence[PrintJob], marks: Sequence[JobMark]
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """What a commit writes, statement by statement (`_HOT_SQL`): its events, the latest state of their orders,
        the prep samples the events taught, its print jobs, the spooler's marks on earlier jobs."""
        out: list[tuple[str, list[dict[str, Any]]]] = []
        if records:
            out.append(("events", [self._event_row(r) for r in records]))
            latest = {r.order_id: r for r in records}
            out.append(("orders", [self._order_row(r) for r in latest.values()]))
            samples = [self._sample_row(s) for r in records for s in r.samples]
            if samples:
                out.append(("samples", samples))
        if jobs:
            out.append(("jobs", [self._job_row(j) for j in jobs]))
        if marks:
            out.append(("marks", self._mark_rows(marks)))
        return out

    def _commit_sqlite(
        self, records: list[EventRecord], jobs: list[PrintJob], marks: Sequence[JobMark]
    ) -> dict[str, tuple[str, str, str | None]]:
        """A batch into SQLite, straight through the driver on the connection kept for commits: no pool checkout,
        no SQLAlchemy per statement, and no look-up of the batch's keys first (together half the commit's Python,
        which holds the interpreter lock the event loop needs).

        The database's unique keys stand in for the look-up: an order it already holds (a resubmission older than
        the hub's key index, or one whose commit answer was lost) makes the batch fail as a whole, and the batch
        is then stored again the careful way (`_commit_on`: which orders are known, the rest stored)."""
        conn = self._writer_conn()
        try:
            try:
                for name, rows in self._hot_rows(records, jobs, marks):
                    conn.executemany(_HOT_SQL[name], rows)
            except sqlite3.IntegrityError:
                conn.rollback()
                with self.engine.begin() as careful:
                    return self._commit_on(careful, records, jobs, (), (), marks)
            conn.commit()
        except BaseException:
            self._drop_writer()  # rolled back as it closes; the next commit opens another
            raise
        return {}

    def _writes_here(self) -> bool:
        """Whether this thread commits through the kept connection: the first thread that commits does (the
        server's one database thread); any other (a flush at shutdown) takes a connection of the pool, as its
        transaction must not mix with one the database thread may still have open."""
        if self._writer_thread is None:
            self._writer_thread = threading.get_ident()
        return self._writer_thread == threading.get_ident()

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self.engine.raw_connection()
            cur = self._writer.driver_connection.cursor()
            cur.execute(f"PRAGMA wal_autocheckpoint={int(self.autocheckpoint_pages)}")
            cur.close()
        conn: sqlite3.Connection = self._writer.driver_connection
        return conn

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.invalidate()  # closed, not given back to the pool: whatever state it was left in goes with it

    def checkpoint_elsewhere(self) -> None:
        """SQLite: commits no longer copy the write-ahead log into the database file (every thousand pages, some
        milliseconds that a commit and every order behind it waited for); the caller runs `checkpoint` on a thread
        of its own instead. Commits still do it past `SQLITE_CHECKPOINT_BACKSTOP` pages (a log that the caller's
        checkpoints do not keep short: it must not grow without end)."""
        self.autocheckpoint_pages = SQLITE_CHECKPOINT_BACKSTOP
        self._drop_writer()

    def checkpoint(self) -> None:
        """SQLite: copy what the write-ahead log holds into the database file, as far as readers allow, without
        waiting for them or for the writer (a PASSIVE checkpoint; SQLite leaves the interpreter lock free meanwhile).
        Nothing to do for another database."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()

    def _event_row(self, r: EventRecord) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "seq": r.seq,
            "order_id": r.order_id,
            "kind": r.kind.value,
            "at": _utc(r.at),
            "payload": r.frame,
        }

    def _order_row(self, r: EventRecord) -> dict[str, Any]:
        o = r.order
        assert o is not None
        return {
            "store_id": self.store_id,
            "id": r.order_id,
            "number": o.number,
            "source": o.source,
            "key": o.key,
            "channel": o.channel.value,
            "status": r.status.value,
            "created_at": _utc(o.created_at),
            "updated_at": _utc(r.at),
            "doc": r.order_json,
        }

    def _sample_row(self, s: PrepSample) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "station": s.station,
            "sku": s.sku,
            "cook": s.cook,
            "seconds": s.seconds,
            "at": _utc(s.at),
        }

    def _sql(self, name: str) -> str:
        """The driver's SQL text of a hot statement (named parameters in the driver's own style)."""
        sql = self._stmts.get(name)
        if sql is None:
            text = _HOT_SQL[name]
            if self.engine.dialect.name == "postgresql":
                text = re.sub(r":(\w+)", r"%(\1)s", text)
            sql = self._stmts[name] = text
        return sql

    def _order_upsert(self) -> Any:
        # Built once: an insert that replaces the order's state when the order is already stored.
        if self._upsert is None:
            if self.engine.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                ins: Any = pg_insert(ORDERS)
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                ins = sqlite_insert(ORDERS)
            self._upsert = ins.on_conflict_do_update(
                index_elements=["store_id", "id"],
                set_={c: ins.excluded[c] for c in ("status", "updated_at", "doc")},
            )
        return self._upsert

    # ------------------------------------------------------------------ several hubs on one store (PostgreSQL)

    @property
    def shared(self) -> bool:
        """True when several hubs may serve this store from this database (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel of this store."""
        return "kds_" + self.store_id.replace("-", "_")

    def _relay_rows(
        self, conn: Any, replies: Sequence[tuple[str, int, str]], done: Sequence[int], *, notify: bool = False
    ) -> None:
        now = _utc(datetime.now(UTC))
        if replies:
            conn.execute(
                sa.insert(REPLIES),
                [
                    {"store_id": self.store_id, "hub": h, "command_id": c, "frame": f, "created_at": now}
                    for h, c, f in replies
                ],
            )
        if done:
            conn.execute(sa.update(COMMANDS).where(COMMANDS.c.id.in_(list(done))).values(done=True))
        if self.shared and (notify or replies):
            # Delivered when this transaction commits: the other hubs read what it stored.
            conn.execute(sa.select(sa.func.pg_notify(self.channel, "e")))

    def notify(self, payload: str) -> None:
        """Send a notification to every hub of this store (PostgreSQL)."""
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_notify(self.channel, payload)))

    def relay_command(self, hub: str, device: str, frame: str) -> int:
        """Store a frame for the leading hub, and wake it; returns the command id."""
        with self.engine.begin() as conn:
            cid = conn.execute(
                sa.insert(COMMANDS)
                .values(
                    store_id=self.store_id,
                    hub=hub,
                    device=device,
                    frame=frame,
                    created_at=_utc(datetime.now(UTC)),
                    done=False,
                )
                .returning(COMMANDS.c.id)
            ).scalar_one()
            conn.execute(sa.select(sa.func.pg_notify(self.channel, "c")))
        return int(cid)

    def pending_commands(self, after: int = 0) -> list[tuple[int, str, str, str]]:
        """Relayed frames not yet handled, in the order they came: (id, hub, device, frame)."""
        c = COMMANDS
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.c.id, c.c.hub, c.c.device, c.c.frame)
                .where(c.c.store_id == self.store_id, c.c.done.is_(False), c.c.id > after)
                .order_by(c.c.id)
                .limit(1000)
            )
            return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def events_after(self, seq: int, limit: int = 5000) -> list[tuple[int, str]]:
        """Stored events after `seq`, in order: what a hub that follows the store has not applied yet."""
        e = EVENTS
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.c.seq, e.c.payload)
                .where(e.c.store_id == self.store_id, e.c.seq > seq)
                .order_by(e.c.seq)
                .limit(limit)
            )
            return [(int(r[0]), str(r[1])) for r in rows]

    def replies_for(self, hub: str, after: int) -> list[tuple[int, int, str]]:
        """Answers for the devices connected to `hub`, after reply id `after`: (id, command id, frame)."""
        r = REPLIES
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.c.id, r.c.command_id, r.c.frame)
                .where(r.c.store_id == self.store_id, r.c.hub == hub, r.c.id > after)
                .order_by(r.c.id)
            )
            return [(int(x[0]), int(x[1]), str(x[2])) for x in rows]

    def last_reply_id(self) -> int:
        """The newest reply id (a hub starts reading its answers after it)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(REPLIES.c.id))).scalar() or 0)

    def prune_relay(self, older_than: timedelta = timedelta(hours=1)) -> None:
        """Forget relayed frames and answers that are done and old."""
        before = _utc(datetime.now(UTC) - older_than)
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(COMMANDS).where(
                    COMMANDS.c.store_id == self.store_id, COMMANDS.c.done.is_(True), COMMANDS.c.created_at < before
                )
            )
            conn.execute(sa.delete(REPLIES).where(REPLIES.c.store_id == self.store_id, REPLIES.c.created_at < before))

    def claim_file(self) -> None:
        """SQLite: one hub per store and file (several hubs need PostgreSQL); raise StoreBusy when one runs."""
        path = sa.make_url(self.url).database
        if self.shared or not path or path == ":memory:":
            return
        import fcntl

        self._sqlite_folder()
        try:
            lock = open(f"{path}.{self.store_id}.hub-lock", "a+")  # noqa: SIM115 (held until close())
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot write beside the database file {path}: {exc.strerror or exc}; give --db a path in a folder "
                "this user may write"
            ) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StoreBusy(
                f"another hub already serves store {self.store_id} from {path}; "
                "several hubs on one store need PostgreSQL (--db postgresql://…)"
            ) from None
        self._file_lock = lock

    def try_lead(self) -> bool:
        """Try to become the store's leading hub: a PostgreSQL advisory lock held by a connection of its own, the
        one every commit of the leader then goes through (`commit`)."""
        if self._lead_conn is None:
            self._lead_conn = self.engine.connect()
        try:
            got = bool(
                self._lead_conn.execute(
                    sa.select(sa.func.pg_try_advisory_lock(sa.func.hashtext(f"kds-lead:{self.store_id}")))
                ).scalar()
            )
            self._lead_conn.commit()
        except Exception:
            self.release_lead()
            raise
        self._holds_lead = got
        return got

    def still_leading(self) -> bool:
        """False when the connection holding the lead is gone (then so is the lock)."""
        if self._lead_conn is None or not self._holds_lead:
            return False
        try:
            held = _holds_lock(self._lead_conn)
            self._lead_conn.commit()
            self._holds_lead = held
            return held
        except Exception:  # the connection is gone (DBAPIError), or invalidated by a failed commit on it
            self._holds_lead = False
            return False

    def release_lead(self) -> None:
        """Forget the connection that held the lead (it is gone, or the hub steps down); `try_lead` opens another."""
        conn, self._lead_conn = self._lead_conn, None
        self._holds_lead = False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def listen(self, on_notify: Any, stop: Any, on_listening: Any = None) -> None:
        """Block, calling `on_notify(payload)` for each notification of this store, until `stop.is_set()`;
        `on_listening()` once LISTEN is in place (the caller then fetches what was notified before)."""
        import psycopg

        dsn = sa.make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, **_connect_args(self.url)) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            if on_listening is not None:
                on_listening()
            while not stop.is_set():
                for n in conn.notifies(timeout=0.1):
                    on_notify(n.payload)
                    if stop.is_set():
                        break

    def _job_row(self, j: PrintJob) -> dict[str, Any]:
        at = _utc(j.created_at)
        return {
            "store_id": self.store_id,
            "id": j.id,
            "printer": j.printer,
            "target": j.target,
            "layout": j.layout.value,
            "order_id": j.order_id,
            "station": j.station,
            "banner": j.banner.value if j.banner else None,
            "state": j.state.value,
            "reprint": j.reprint,
            "attempts": j.attempts,
            "reason": j.reason[:120],
            "created_at": at,
            "updated_at": at,
            "printed_at": None,
            "last_error": None,
            "order_doc": j.order_json,
        }

    # ------------------------------------------------------------------ print jobs (the spooler's ledger)

    def pending_jobs(self) -> list[PrintJob]:
        """Jobs not printed yet, oldest first. One caught mid-send by a crash is queued again, marked reprint."""
        t = JOBS
        mine = t.c.store_id == self.store_id
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(mine, t.c.state == JobState.SENDING.value)
                .values(state=JobState.QUEUED.value, reprint=True)
            )
            rows = conn.execute(
                sa.select(t).where(mine, t.c.state != JobState.PRINTED.value).order_by(t.c.id)
            ).mappings()
            return [_job_from_row(r) for r in rows]

    def mark_jobs(self, marks: Sequence[JobMark]) -> None:
        """Record what happened to jobs, in order, in one transaction (see `kds.printing.JobLedger`)."""
        if marks:
            with self.engine.begin() as conn:
                self._mark_on(conn, marks)

    def _mark_on(self, conn: Any, marks: Sequence[JobMark]) -> None:
        if marks:
            conn.exec_driver_sql(self._sql("marks"), self._mark_rows(marks))

    def _mark_rows(self, marks: Sequence[JobMark]) -> list[dict[str, Any]]:
        return [
            {
                "b_store": self.store_id,
                "b_id": m.job_id,
                "b_state": m.state.value,
                "b_target": m.target,
                "b_reprint": m.reprint,
                "b_attempt": 1 if m.error is not None else 0,
                "b_error": m.error[:500] if m.error is not None else None,
                "b_printed": _utc(m.at) if m.state is JobState.PRINTED else None,
                "b_at": _utc(m.at),
            }
            for m in marks
        ]

    def jobs_moved(self, job_ids: Sequence[int], target: str, at: datetime) -> None:
        """The jobs go to another printer (the backup of a failing one)."""
        if not job_ids:
            return
        t = JOBS
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.store_id == self.store_id, t.c.id.in_(list(job_ids)))
                .values(target=target, updated_at=_utc(at))
            )

    def last_job_id(self) -> int:
        """The id of the newest print job (0 when there is none)."""
        t = JOBS
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.c.id)).where(t.c.store_id == self.store_id)).scalar() or 0)

    def jobs(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Stored print jobs (of one order, or all), oldest first, as plain rows (for `kds printers status`, tests)."""
        t = JOBS
        q = sa.select(t).where(t.c.store_id == self.store_id).order_by(t.c.id)
        if order_id is not None:
            q = q.where(t.c.order_id == order_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------------ loading

    def load(
        self,
        *,
        now: datetime,
        keep: timedelta = timedelta(hours=2),
        key_days: float = 1.5,
        replay_window: int = 20_000,
        replay_bytes: int | None = None,
        open_max_age: timedelta = timedelta(hours=12),
    ) -> tuple[list[str], list[tuple[int, str]], int, list[tuple[str, str, str, str]]]:
        """What the hub needs on start: open and recent orders (their stored JSON text), the event tail, the last seq,
        recent keys (for the day's numbers; the database answers for older keys at commit).

        Open orders older than `open_max_age` stay in the database only (the hub flags and drops them too). The
        tail is at most `replay_window` events, read newest first, and no further than the hub's replay log can
        hold when `replay_bytes` (its `replay_memory_bytes`) is given: the hub counts an event at least twice its
        frame's length (`OrderHub.restore`), so reading stops once the frames read so far, counted so, exceed it.
        """
        o, e = ORDERS, EVENTS
        since = _utc(now - keep)
        key_since = _utc(now - timedelta(days=key_days))
        open_since = _utc(now - open_max_age)
        with self.engine.connect() as conn, collector_paused():
            if self.engine.dialect.name == "postgresql":
                # One snapshot for every read below: an order another hub commits meanwhile is either in the docs
                # and counted in `seq`, or in neither (and followed later as an event after `seq`).
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            current = (
                sa.select(o.c.created_at, o.c.doc)
                .where(o.c.store_id == self.store_id)
                .where(
                    sa.or_(
                        sa.and_(o.c.status.in_(OPEN_STATUSES), o.c.created_at >= open_since),
                        o.c.updated_at >= since,
                    )
                )
            )
            if self.engine.dialect.name == "sqlite":
                # Sorted here: SQLite sorted thousands of whole documents in a temporary b-tree (a tenth of the
                # load). Its text order is Python's (binary); the database's own collation sorts elsewhere.
                found = sorted(conn.execute(current).all(), key=lambda r: str(r[0]))
            else:
                found = list(conn.execute(current.order_by(o.c.created_at)).all())
            docs: list[str] = [r[1] for r in found]
            seq = conn.execute(sa.select(sa.func.max(e.c.seq)).where(e.c.store_id == self.store_id)).scalar() or 0
            tail: list[Any] = []
            budget = replay_bytes
            while len(tail) < replay_window:
                page = min(_TAIL_PAGE, replay_window - len(tail))
                q = sa.select(e.c.seq, e.c.payload).where(e.c.store_id == self.store_id)
                if tail:
                    q = q.where(e.c.seq < tail[-1][0])
                rows = conn.execute(q.order_by(e.c.seq.desc()).limit(page)).all()
                tail.extend(rows)
                if len(rows) < page:
                    break
                if budget is not None:
                    budget -= sum(2 * len(r[1]) for r in rows)
                    if budget < 0:
                        break
            keys = [
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    sa.select(o.c.source, o.c.key, o.c.id, o.c.number)
                    .where(o.c.store_id == self.store_id)
                    .where(o.c.created_at >= key_since)
                )
            ]
        events = [(int(r[0]), str(r[1])) for r in reversed(tail)]
        return docs, events, int(seq), keys

    def load_prep_samples(self, limit: int = 20_000) -> list[PrepSample]:
        """The newest `limit` prep samples of this store, oldest first (what the hub learns its prep times from on
        start). One query, read newest first along the (store_id, id) index; blocking."""
        s = SAMPLES
        q = (
            sa.select(s.c.station, s.c.sku, s.c.cook, s.c.seconds, s.c.at)
            .where(s.c.store_id == self.store_id)
            .order_by(s.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            PrepSample(station, sku, cook, float(seconds), datetime.fromisoformat(at))
            for station, sku, cook, seconds, at in reversed(rows)
        ]

    def stale_orders(self, *, now: datetime, older_than: timedelta) -> list[dict[str, Any]]:
        """Open orders created before `now - older_than`, oldest first: the ones the hub let go of
        (`open_max_age_h`) and nobody closed."""
        o = ORDERS
        with self.engine.connect() as conn:
            return [
                json.loads(row[0])
                for row in conn.execute(
                    sa.select(o.c.doc)
                    .where(o.c.store_id == self.store_id)
                    .where(o.c.status.in_(OPEN_STATUSES))
                    .where(o.c.created_at < _utc(now - older_than))
                    .order_by(o.c.created_at)
                )
            ]

    def order_docs(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Stored orders (all of this store, or those with these ids), oldest first."""
        o = ORDERS
        q = sa.select(o.c.doc).where(o.c.store_id == self.store_id).order_by(o.c.created_at)
        if ids is not None:
            q = q.where(o.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]

    def count_events(self) -> int:
        """How many events are stored for this store."""
        e = EVENTS
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(e.c.store_id == self.store_id)).scalar() or 0)


_TAIL_PAGE = 2000
"""Events read per query when loading the tail of the log (newest first, until the hub's replay log is full)."""


class SchemaError(Exception):
    """The database's schema is not the one this hub runs on."""


class StoreBusy(Exception):
    """Another hub already serves this store from this SQLite file."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The database's revision, this hub's newest, and every revision this hub knows."""

    current: str | None
    head: str
    known: frozenset[str]


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    return cfg


def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def _holds_lock(conn: Any) -> bool:
    """Whether this connection's session holds an advisory lock (the lead of the store: the only one it takes)."""
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid())"
            )
        ).scalar()
    )


def _job_from_row(r: Any) -> PrintJob:
    return PrintJob(
        id=int(r["id"]),
        printer=r["printer"],
        layout=Layout(r["layout"]),
        order_id=r["order_id"],
        station=r["station"],
        banner=Banner(r["banner"]) if r["banner"] else None,
        created_at=datetime.fromisoformat(r["created_at"]),
        order_json=r["order_doc"],
        reason=r["reason"],
        target=r["target"],
        state=JobState(r["state"]),
        reprint=bool(r["reprint"]),
        attempts=int(r["attempts"]),
    )
