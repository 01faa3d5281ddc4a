"""Prep samples in the store (kitchen timing, issue 14): stored with the events that taught them, in the same
transaction (so the hub learns only from stored events), and read back on start, so that the prep times a hub
learned survive its restart. Real SQLite files, and real PostgreSQL databases when KDS_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from kds.config import StoreConfig
from kds.hub import Decision, EventRecord, OrderHub, Session
from kds.store import Store
from kds.timing import PrepSample
from tests.conftest import ROOT, SAMPLE_CONFIG, shelf_order
from tests.support import db_rows

DAY = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))


def sample(n: int, *, station: str = "seafood", cook: str | None = "ginger_scallion") -> PrepSample:
    """The n-th ticket done: each one different in every field a sample has (its time given in the store's zone)."""
    return PrepSample(
        station=station,
        sku="LOB-AUS",
        cook=cook,
        seconds=300.25 + n,
        at=(DAY + timedelta(seconds=n)).astimezone(SHANGHAI),
    )


def open_store(db: Path | str, store_id: str) -> Store:
    """A store ready for commits: migrated, and (PostgreSQL) leading its store."""
    store = Store(db, store_id=store_id)
    store.create_schema()
    if store.shared:
        assert store.try_lead()
    return store


@pytest.fixture
def store(config: StoreConfig, db_path: Path | str) -> Iterator[Store]:
    s = open_store(db_path, config.store.id)
    try:
        yield s
    finally:
        s.close()


def reopened(db: Path | str, store_id: str) -> list[PrepSample]:
    """What a hub restarted on the database reads back (a store of its own, as after a restart)."""
    store = Store(db, store_id=store_id)
    try:
        return store.load_prep_samples()
    finally:
        store.close()


class Kitchen:
    """A hub on a fixed day that takes shelf orders (not stored: the tests commit its decisions themselves)."""

    def __init__(self, config: StoreConfig, *, seq: int = 0, last_job: int = 0, day: datetime = DAY) -> None:
        self.hub = OrderHub(config, clock=lambda: day)
        self.hub.restore([], [], seq, [], last_job=last_job)
        shelf = config.device("shelf-1")
        assert shelf is not None
        self.session = Session(shelf, 0)

    def submit(self, *keys: str) -> list[Decision]:
        out = []
        for k, key in enumerate(keys):
            frame = {"type": "order.submit", "ref": f"r{k}", "order": shelf_order(key)}
            out.append(self.hub.handle_frame(self.session, json.dumps(frame)))
        self.hub.seal()
        return out


def taught(decision: Decision, *samples: PrepSample) -> list[EventRecord]:
    """The decision's events, the last one carrying the samples (as a bump's event would)."""
    assert decision.events
    decision.events[-1].samples.extend(samples)
    return decision.events


def stored_seqs(db: Path | str) -> list[int]:
    return [int(s) for (s,) in db_rows(db, "select seq from events order by seq")]


def test_samples_come_back_with_their_values_oldest_first(
    config: StoreConfig, db_path: Path | str, store: Store
) -> None:
    kitchen = Kitchen(config)
    a, b, c = kitchen.submit("a", "b", "c")
    store.commit(taught(a, sample(1), sample(2, station="cold", cook="sashimi")), a.jobs)
    store.commit(taught(b, sample(3, cook=None)), b.jobs)
    # Another thread's commit (SQLite: through the pool, the careful way, not the database thread's kept connection).
    worker = threading.Thread(target=store.commit, args=(taught(c, sample(4)), c.jobs))
    worker.start()
    worker.join()
    assert stored_seqs(db_path) == [r.seq for d in (a, b, c) for r in d.events], "a commit failed"

    expected = [sample(1), sample(2, station="cold", cook="sashimi"), sample(3, cook=None), sample(4)]
    for loaded in (store.load_prep_samples(), reopened(db_path, config.store.id)):
        assert loaded == expected
        assert [s.at.utcoffset() for s in loaded] == [timedelta(0)] * 4, "times come back in UTC"
        assert [s.at.isoformat() for s in loaded] == [f"2026-12-05T11:00:0{n}+00:00" for n in (1, 2, 3, 4)]
        assert [(s.station, s.cook, s.seconds) for s in loaded] == [
            ("seafood", "ginger_scallion", 301.25),
            ("cold", "sashimi", 302.25),
            ("seafood", None, 303.25),
            ("seafood", "ginger_scallion", 304.25),
        ]


def test_a_batch_without_samples_stores_none(config: StoreConfig, db_path: Path | str, store: Store) -> None:
    [a] = Kitchen(config).submit("a")
    store.commit(a.events, a.jobs)
    assert stored_seqs(db_path) == [r.seq for r in a.events]
    assert store.load_prep_samples() == []


def test_the_samples_of_a_dropped_record_are_not_stored(config: StoreConfig, db_path: Path | str, store: Store) -> None:
    a, b = Kitchen(config).submit("a", "b")
    gone = taught(a, sample(1), sample(2))
    for r in gone:
        r.dropped = True
    store.commit([*gone, *taught(b, sample(3))], b.jobs)
    assert stored_seqs(db_path) == [r.seq for r in b.events]
    assert store.load_prep_samples() == [sample(3)]
    assert db_rows(db_path, "select count(*) from prep_samples") == [(1,)]


def test_the_samples_of_an_order_the_database_already_holds_are_not_stored(
    config: StoreConfig, db_path: Path | str, store: Store
) -> None:
    # A resubmission older than the hub's key index: the database refuses that order, its events and their samples
    # (SQLite: the batch fails on the unique key and is stored again the careful way), and stores the rest.
    [old] = Kitchen(config).submit("old-key")
    store.commit(taught(old, sample(1)), old.jobs)
    later = Kitchen(
        config, seq=max(r.seq for r in old.events), last_job=max(j.id for j in old.jobs), day=DAY + timedelta(days=3)
    )
    again, fresh = later.submit("old-key", "new-key")
    assert again.created is not None and again.created != old.created
    known = store.commit([*taught(again, sample(2)), *taught(fresh, sample(3))], [*again.jobs, *fresh.jobs])

    assert set(known) == {again.created}
    assert stored_seqs(db_path) == [r.seq for d in (old, fresh) for r in d.events]
    assert store.load_prep_samples() == [sample(1), sample(3)]


@pytest.mark.parametrize("failing", ["samples", "jobs"])
def test_a_commit_that_fails_stores_none_of_its_samples(
    config: StoreConfig, db_path: Path | str, store: Store, failing: str
) -> None:
    """Nothing of a failed batch is stored: not its samples when a statement after them fails (a print job the
    database already holds), not its events when the samples' own statement fails (a sample without seconds)."""
    a, b, c = Kitchen(config).submit("a", "b", "c")
    store.commit(taught(a, sample(1)), a.jobs)
    if failing == "samples":
        bad = replace(sample(3), seconds=cast(float, None))
        records, jobs = taught(b, sample(2), bad), b.jobs
    else:
        records, jobs = taught(b, sample(2), sample(3)), [*b.jobs, *a.jobs]
    with pytest.raises(sa.exc.IntegrityError):
        store.commit(records, jobs)

    assert stored_seqs(db_path) == [r.seq for r in a.events]
    assert store.load_prep_samples() == [sample(1)]
    assert sorted(j for (j,) in db_rows(db_path, "select id from print_jobs")) == [j.id for j in a.jobs]
    # The store goes on: the next batch is stored, samples and all.
    store.commit(taught(c, sample(4)), c.jobs)
    assert reopened(db_path, config.store.id) == [sample(1), sample(4)]


def test_limit_keeps_the_newest(config: StoreConfig, db_path: Path | str, store: Store) -> None:
    a, b = Kitchen(config).submit("a", "b")
    store.commit(taught(a, *(sample(n) for n in range(1, 4))), a.jobs)
    store.commit(taught(b, *(sample(n) for n in range(4, 7))), b.jobs)
    assert store.load_prep_samples(limit=4) == [sample(n) for n in range(3, 7)]
    assert store.load_prep_samples(limit=1) == [sample(6)]
    assert store.load_prep_samples(limit=6) == [sample(n) for n in range(1, 7)]
    assert store.load_prep_samples(limit=100) == [sample(n) for n in range(1, 7)]
    assert store.load_prep_samples(limit=0) == []


def test_samples_of_another_store_are_not_returned(config: StoreConfig, db_path: Path | str, store: Store) -> None:
    # Their commits interleaved, so that neither store's samples have ids of their own in a row.
    other = open_store(db_path, "other-store")
    try:
        mine, theirs = Kitchen(config), Kitchen(config)
        for n in range(1, 5):
            store.commit(taught(mine.submit(f"m{n}")[0], sample(n)), [])
            other.commit(taught(theirs.submit(f"t{n}")[0], sample(10 + n, station="bar", cook=None)), [])
        assert store.load_prep_samples() == [sample(n) for n in range(1, 5)]
        assert store.load_prep_samples(limit=2) == [sample(3), sample(4)]
        assert other.load_prep_samples() == [sample(10 + n, station="bar", cook=None) for n in range(1, 5)]
    finally:
        other.close()
    assert db_rows(db_path, "select count(*) from prep_samples") == [(8,)]


def test_kds_db_upgrade_adds_the_table_to_a_database_of_revision_0003(
    config: StoreConfig, empty_db: Path | str
) -> None:
    store = Store(empty_db, store_id=config.store.id)
    try:
        store.upgrade("0003")
        with store.engine.connect() as conn:
            assert "prep_samples" not in sa.inspect(conn).get_table_names()
    finally:
        store.close()

    out = subprocess.run(
        [sys.executable, "-m", "kdsapp.cli", "db", "upgrade", "--db", str(empty_db), "--config", str(SAMPLE_CONFIG)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "0003" in out.stdout and "0004" in out.stdout, out.stdout

    store = open_store(empty_db, config.store.id)
    try:
        assert store.schema_state().current == "0004"
        with store.engine.connect() as conn:
            inspector = sa.inspect(conn)
            columns = {c["name"]: c["nullable"] for c in inspector.get_columns("prep_samples")}
            indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("prep_samples")}
            primary = inspector.get_pk_constraint("prep_samples")["constrained_columns"]
        assert columns == {
            "id": False,
            "store_id": False,
            "station": False,
            "sku": False,
            "cook": True,
            "seconds": False,
            "at": False,
        }
        assert indexes == {"ix_prep_samples_store": ["store_id", "id"]}
        assert primary == ["id"]
        [a] = Kitchen(config).submit("a")
        store.commit(taught(a, sample(1), sample(2)), a.jobs)
        assert store.load_prep_samples() == [sample(1), sample(2)]
        if store.engine.dialect.name == "sqlite":
            # `id` is the table's rowid (an INTEGER primary key), numbered by the database.
            assert db_rows(empty_db, "select id, rowid from prep_samples order by id") == [(1, 1), (2, 2)]
        else:
            assert db_rows(empty_db, "select id from prep_samples order by id") == [(1,), (2,)]
    finally:
        store.close()
