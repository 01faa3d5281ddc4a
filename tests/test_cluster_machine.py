"""The leader/follower decisions (kds/cluster.py) on their own: no database, no clock, no sockets.

The same rules are tested end to end on PostgreSQL in tests/test_cluster.py; here every path is walked, and a
simulated store (a lock that sessions hold, sessions that die, steps that fail) checks the rules over thousands of
random moves.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from kds.cluster import FOLLOW_POLL_S, LEAD_POLL_S, Backoff, Cluster, Do, FrameKind, Role, Route


def follower(prints: bool = True) -> Cluster:
    c = Cluster(shared=True, prints=prints)
    assert c.start() == [Do.TRY_LEAD]
    assert c.lead_answer(False) == []
    return c


def leader(prints: bool = True, *, spooler_started: bool = True) -> Cluster:
    c = Cluster(shared=True, prints=prints)
    c.start()
    assert c.lead_answer(True) == [Do.TAKE_OVER]
    assert c.took_over() == ([Do.START_SPOOLER] if prints else []) + [Do.TAKE_COMMANDS]
    if prints and spooler_started:
        c.spooler(True)
    return c


# ---------------------------------------------------------------------------------------------- one hub


def test_a_hub_alone_on_its_store_leads_at_once_and_never_asks_the_database() -> None:
    c = Cluster(shared=False, prints=True)
    assert c.leading and c.start() == [Do.START_SPOOLER]
    assert c.wake(0.0) == [] and c.wake(100.0) == []
    assert c.route(FrameKind.WRITE, waiting=False) is Route.DECIDE


def test_a_hub_granted_the_lock_takes_over_before_it_decides_or_prints() -> None:
    c = Cluster(shared=True, prints=True)
    assert c.start() == [Do.TRY_LEAD]
    assert c.lead_answer(True) == [Do.TAKE_OVER]
    # Still applying what the old leader stored: nothing decided here yet, writes are relayed (to itself).
    assert c.role is Role.TAKING_OVER and not c.leading and not c.spooling
    assert c.route(FrameKind.WRITE, waiting=False) is Route.RELAY
    assert c.took_over() == [Do.START_SPOOLER, Do.TAKE_COMMANDS]
    c.spooler(True)
    assert c.leading and c.spooling and c.takeovers == 1
    assert c.route(FrameKind.WRITE, waiting=False) is Route.DECIDE
    assert c.took_over() == []  # said twice: nothing more


def test_a_hub_without_printers_never_starts_a_spooler() -> None:
    c = leader(prints=False)
    assert c.leading and not c.spooling
    assert c.lead_checked(False) == [Do.RELEASE_LEAD]


def test_a_follower_follows_then_asks_for_the_lock_each_round() -> None:
    c = follower()
    assert c.wake(5.0) == [Do.FOLLOW, Do.TRY_LEAD]
    assert c.lead_answer(False) == []
    assert c.wake(6.0) == [Do.FOLLOW, Do.TRY_LEAD]


def test_a_follower_rounds_often_the_leader_less() -> None:
    c = follower()
    assert c.poll_s == FOLLOW_POLL_S < LEAD_POLL_S
    c.lead_answer(True)
    assert c.poll_s == FOLLOW_POLL_S, "still taking over"
    c.took_over()
    assert c.poll_s == LEAD_POLL_S


def test_the_leader_checks_its_lock_each_round_then_takes_relayed_frames() -> None:
    c = leader()
    assert c.wake(1.0) == [Do.CHECK_LEAD]
    assert c.lead_checked(True) == [Do.TAKE_COMMANDS]


@pytest.mark.parametrize("how", ["check", "commit"])
def test_a_leader_that_lost_its_lock_stops_printing_and_follows(how: str) -> None:
    c = leader()
    steps = c.lead_checked(False) if how == "check" else c.lock_lost()
    assert steps == [Do.STOP_SPOOLER, Do.RELEASE_LEAD]
    assert c.role is Role.FOLLOWER and c.step_downs == 1
    assert c.route(FrameKind.WRITE, waiting=False) is Route.RELAY
    assert c.lock_lost() == [] and c.lead_checked(False) == []  # already following
    assert c.wake(2.0) == [Do.FOLLOW, Do.TRY_LEAD]


def test_a_hub_that_lost_the_lead_and_takes_it_back_prints_again() -> None:
    c = leader()
    c.lock_lost()
    c.spooler(False)
    assert c.lead_answer(True) == [Do.TAKE_OVER]
    assert c.took_over() == [Do.START_SPOOLER, Do.TAKE_COMMANDS]
    assert c.takeovers == 2


def test_a_takeover_that_failed_half_way_is_done_again_while_the_lock_holds() -> None:
    c = follower()
    c.lead_answer(True)
    # TAKE_OVER raised (a database fault): the round failed, the role stays, the next round checks and retries.
    c.fault(10.0)
    assert c.wake(10.1) == []
    assert c.wake(11.0) == [Do.CHECK_LEAD]
    assert c.lead_checked(True) == [Do.TAKE_OVER]
    assert c.took_over() == [Do.START_SPOOLER, Do.TAKE_COMMANDS]


def test_a_takeover_whose_lock_went_meanwhile_follows_again() -> None:
    c = follower()
    c.lead_answer(True)
    assert c.lead_checked(False) == [Do.RELEASE_LEAD]
    assert c.role is Role.FOLLOWER and c.took_over() == []


def test_a_spooler_step_that_failed_is_asked_for_again() -> None:
    c = leader()
    assert c.lock_lost() == [Do.STOP_SPOOLER, Do.RELEASE_LEAD]
    # Stopping failed (the adapter never said `spooler(False)`): asked again with the next answer.
    assert c.lead_answer(False) == [Do.STOP_SPOOLER]
    c.spooler(False)
    assert c.lead_answer(False) == []
    c = leader(spooler_started=False)  # took over, but starting the spooler failed: the next round asks again
    assert c.lead_checked(True) == [Do.START_SPOOLER, Do.TAKE_COMMANDS]
    c.spooler(True)
    assert c.lead_checked(True) == [Do.TAKE_COMMANDS]


# ---------------------------------------------------------------------------------------------- faults


def test_database_faults_delay_the_next_round_by_a_doubling_capped_backoff() -> None:
    c = follower()
    delays = [c.fault(100.0) for _ in range(8)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert c.wake(104.9) == [] and c.wake(105.0) == [Do.FOLLOW, Do.TRY_LEAD]
    c.round_done()
    assert c.fault(200.0) == 0.25  # a success reset it
    c.round_done()
    assert c.wake(200.0) == [Do.FOLLOW, Do.TRY_LEAD]


def test_lost_notifications_are_listened_for_again_with_backoff() -> None:
    c = follower()
    assert [c.listen_lost() for _ in range(6)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    c.listening()
    assert c.listen_lost() == 0.2


def test_backoff_never_overflows() -> None:
    b = Backoff(0.1, 3.0)
    assert [b.failed() for _ in range(2000)][-1] == 3.0


# ---------------------------------------------------------------------------------------------- frames


@pytest.mark.parametrize("kind", list(FrameKind))
@pytest.mark.parametrize("waiting", [False, True])
def test_where_a_frame_goes(kind: FrameKind, waiting: bool) -> None:
    assert leader().route(kind, waiting=waiting) is Route.DECIDE
    expected = Route.RELAY if waiting or kind is FrameKind.WRITE else Route.ANSWER
    assert follower().route(kind, waiting=waiting) is expected


# ---------------------------------------------------------------------------------------------- a simulated store


@dataclass
class FakeStore:
    """A PostgreSQL advisory lock as the hubs see it: held by a session; a dead session frees it."""

    holder: int | None = None
    next_session: int = 0
    failing: set[Do] = field(default_factory=set)

    def session(self) -> int:
        self.next_session += 1
        return self.next_session


@dataclass
class SimHub:
    name: str
    cluster: Cluster
    session: int
    printing: bool = False
    decided_as: list[Role] = field(default_factory=list)


def _carry_out(store: FakeStore, hub: SimHub, steps: list[Do]) -> None:
    """`HubServer._carry_out` against the fake store; a failing step raises (and fails the round)."""
    todo = deque(steps)
    while todo:
        step = todo.popleft()
        if step in store.failing:
            raise ConnectionError(step)
        more: list[Do] = []
        if step is Do.TRY_LEAD:
            if store.holder is None:
                store.holder = hub.session
            more = hub.cluster.lead_answer(store.holder == hub.session)
        elif step is Do.CHECK_LEAD:
            more = hub.cluster.lead_checked(store.holder == hub.session)
        elif step is Do.TAKE_OVER:
            more = hub.cluster.took_over()
        elif step is Do.START_SPOOLER:
            hub.printing = True
            hub.cluster.spooler(True)
        elif step is Do.STOP_SPOOLER:
            hub.printing = False
            hub.cluster.spooler(False)
        elif step is Do.RELEASE_LEAD:
            if store.holder == hub.session:
                store.holder = None
            hub.session = store.session()
        todo.extendleft(reversed(more))


def _round(store: FakeStore, hub: SimHub, now: float) -> bool:
    """One round of `HubServer._cluster_loop`: whether it asked something and every step of it succeeded."""
    steps = hub.cluster.wake(now)
    try:
        _carry_out(store, hub, steps)
    except ConnectionError:
        hub.cluster.fault(now)
        return False
    hub.cluster.round_done()
    return bool(steps)


def _kill_session(store: FakeStore, hub: SimHub) -> None:
    """The hub's lock session is terminated (the hub does not know until it asks or commits)."""
    if store.holder == hub.session:
        store.holder = None
    hub.session = store.session()  # (SQLAlchemy reconnects silently: a new session, holding nothing)


def _commit(store: FakeStore, hub: SimHub) -> bool:
    """A commit, fenced as the store fences it: only through the session that holds the lock."""
    if hub.cluster.route(FrameKind.WRITE, waiting=False) is not Route.DECIDE:
        return False  # relayed
    hub.decided_as.append(hub.cluster.role)
    if store.holder != hub.session:
        # NotLeading: the adapter steps down (those steps do not fail here: stopping a spooler and dropping a
        # session touch no database).
        failing, store.failing = store.failing, set()
        _carry_out(store, hub, hub.cluster.lock_lost())
        store.failing = failing
        return False
    return True


@pytest.mark.parametrize("seed", range(12))
def test_random_kills_faults_and_commits_never_give_two_writers_and_always_settle_on_one_leader(seed: int) -> None:
    rng = random.Random(seed)
    store = FakeStore()
    hubs = [SimHub(f"hub-{i}", Cluster(shared=True, prints=True), store.session()) for i in range(3)]
    for h in hubs:
        _carry_out(store, h, h.cluster.start())
    now = 0.0
    committed_by: list[tuple[float, str]] = []
    for _ in range(3000):
        now += rng.choice([0.01, 0.1, 0.5, 1.0])
        move = rng.random()
        hub = rng.choice(hubs)
        if move < 0.45:
            if _round(store, hub, now) and not hub.cluster.leading:
                # A follower's round that succeeded: it knows another hub leads, and does not print.
                assert not hub.printing
        elif move < 0.80:
            if _commit(store, hub):
                committed_by.append((now, hub.name))
        elif move < 0.88:
            _kill_session(store, hub)
        else:
            store.failing = {rng.choice(list(Do))} if rng.random() < 0.7 else set()
        # Only the session holding the lock ever commits: the fence, whatever each hub believes.
        holders = [h for h in hubs if h.session == store.holder]
        assert len(holders) <= 1
        # A hub never decides a frame while following or still taking over.
        assert all(r is Role.LEADER for h in hubs for r in h.decided_as)
        # What the machine believes of each spooler is what the adapter did.
        assert all(h.printing == h.cluster.spooling for h in hubs)
    assert committed_by, "some commits got through"
    assert sum(h.cluster.takeovers for h in hubs) > 3 and sum(h.cluster.step_downs for h in hubs) > 3
    # Faults stop, every hub has its rounds: exactly one leads (the lock holder) and only it prints.
    store.failing = set()
    for _ in range(4):
        now += 10.0
        for h in hubs:
            _round(store, h, now)
    leaders = [h for h in hubs if h.cluster.leading]
    assert len(leaders) == 1 and leaders[0].session == store.holder
    assert [h.name for h in hubs if h.printing] == [leaders[0].name]
    assert _commit(store, leaders[0])
