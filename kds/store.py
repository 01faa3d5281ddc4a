"""All database access: the schema (sqlmodel tables), committing event batches, and loading state on start.

SQLite (WAL, synchronous=FULL) by default; any SQLAlchemy URL works for the rest of the module, so PostgreSQL
comes in by URL. The hub writes from one thread only (the server's committer), one transaction per batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from kds.hub import EventRecord

log = logging.getLogger("kds.store")

OPEN_STATUSES = ("accepted", "preparing", "ready")


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


ORDERS: sa.Table = SQLModel.metadata.tables["orders"]
EVENTS: sa.Table = SQLModel.metadata.tables["events"]


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def database_url(db: str | Path) -> str:
    """A SQLAlchemy URL from `--db`: a URL as is, or a path to a SQLite file."""
    s = str(db)
    if "://" in s:
        if s.startswith("postgresql://"):
            return "postgresql+psycopg://" + s.removeprefix("postgresql://")
        return s
    Path(s).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{s}"


class Store:
    """The hub's database."""

    def __init__(self, db: str | Path, *, store_id: str) -> None:
        self.url = database_url(db)
        self.store_id = store_id
        self.engine: Engine = sa.create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        """Create the tables when they are missing."""
        SQLModel.metadata.create_all(self.engine, tables=[ORDERS, EVENTS])

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def known_keys(self, created: Sequence[EventRecord]) -> dict[str, tuple[str, str]]:
        """Orders of this batch whose (source, key) the database already holds: new id → (old id, old number).

        The hub remembers keys of the last days only; this catches a resubmission of anything older.
        """
        if not created:
            return {}
        o = ORDERS
        wanted = {(r.source, r.order.key): r.order_id for r in created if r.order is not None}
        by_source: dict[str, list[str]] = {}
        for source, key in wanted:
            by_source.setdefault(source, []).append(key)
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            # One `source = ? AND key IN (…)` per source: SQLite uses the unique index for this shape (a row-value
            # IN over (source, key) made it scan every order).
            rows = conn.execute(
                sa.select(o.c.source, o.c.key, o.c.id, o.c.number)
                .where(o.c.store_id == self.store_id)
                .where(sa.or_(*(sa.and_(o.c.source == s, o.c.key.in_(keys)) for s, keys in by_source.items())))
            )
            for source, key, oid, number in rows:
                new_id = wanted.get((source, key))
                if new_id is not None and new_id != oid:
                    found[new_id] = (oid, number)
        return found

    def commit(self, records: Sequence[EventRecord]) -> None:
        """Store a batch of events and the latest state of their orders in one transaction."""
        records = [r for r in records if not r.dropped]
        if not records:
            return
        latest: dict[str, EventRecord] = {}
        for r in records:
            latest[r.order_id] = r
        events = [
            {
                "store_id": self.store_id,
                "seq": r.seq,
                "order_id": r.order_id,
                "kind": r.kind.value,
                "at": _utc(r.at),
                "payload": r.frame,
            }
            for r in records
        ]
        orders = []
        for r in latest.values():
            o = r.order
            assert o is not None
            orders.append(
                {
                    "store_id": self.store_id,
                    "id": r.order_id,
                    "number": o.number,
                    "source": o.source,
                    "key": o.key,
                    "channel": o.channel,
                    "status": r.status.value,
                    "created_at": _utc(o.created_at),
                    "updated_at": _utc(r.at),
                    "doc": r.order_json,
                }
            )
        ot = ORDERS
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            ins: Any = pg_insert(ot)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            ins = sqlite_insert(ot)
        upsert = ins.on_conflict_do_update(
            index_elements=["store_id", "id"],
            set_={c: ins.excluded[c] for c in ("status", "updated_at", "doc")},
        )
        with self.engine.begin() as conn:
            conn.execute(sa.insert(EVENTS), events)
            conn.execute(upsert, orders)

    # ------------------------------------------------------------------ loading

    def load(
        self,
        *,
        now: datetime,
        keep: timedelta = timedelta(hours=2),
        key_days: int = 7,
        replay_window: int = 20_000,
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str]], int, list[tuple[str, str, str, str]]]:
        """What the hub needs on start: open and recent orders, the event tail, the last seq, recent keys."""
        o, e = ORDERS, EVENTS
        since = _utc(now - keep)
        key_since = _utc(now - timedelta(days=key_days))
        with self.engine.connect() as conn:
            docs = [
                json.loads(row[0])
                for row in conn.execute(
                    sa.select(o.c.doc)
                    .where(o.c.store_id == self.store_id)
                    .where(sa.or_(o.c.status.in_(OPEN_STATUSES), o.c.updated_at >= since))
                    .order_by(o.c.created_at)
                )
            ]
            seq = conn.execute(sa.select(sa.func.max(e.c.seq)).where(e.c.store_id == self.store_id)).scalar() or 0
            tail = list(
                conn.execute(
                    sa.select(e.c.seq, e.c.payload)
                    .where(e.c.store_id == self.store_id)
                    .order_by(e.c.seq.desc())
                    .limit(replay_window)
                )
            )
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged order survives a power cut too, not only a crash; batching pays for the fsyncs.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
