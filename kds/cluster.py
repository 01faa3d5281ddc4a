"""Several hubs on one store: who leads, who follows, where a device's frame goes. No I/O here.

A store's hubs share one PostgreSQL database. One of them *leads*: it holds the store's advisory lock, decides every
frame and writes. The others *follow*: they apply the events the leader stored to their own screens, answer what
needs no decision themselves (bad frames, reads, messages the device's role may not send) and *relay* the rest to the
leader through the database.

`Cluster` makes those decisions and nothing else. The websockets adapter (`kds.server.HubServer`) tells it what
happened (a wake, the database's answer about the lock, a fault, a lost notification connection) and carries out the
`Do` steps it returns, in order, with the database (`kds.store.Store`) and LISTEN as adapters. Time is given, never
read, so every path is tested without a database or a clock (tests/test_cluster_machine.py).

The rules:
- a hub leads only after the database granted it the lock, and stops leading as soon as the database says it no longer
  holds it (a check, or a commit refused with `NotLeading`): it then releases the lock's session and follows;
- a hub that takes the lead first applies everything the old leader stored (so it decides on the newest state), and
  only then decides frames, starts printing and takes the frames other hubs relayed; its own devices' frames of that
  moment are relayed, to itself, and decided in their turn;
- only the leader prints: a hub that loses the lead stops its spooler at once (the new leader prints what is left);
  a spooler step that failed is asked for again on the next round;
- a database fault delays the next round by a backoff that doubles up to a cap; a success resets it;
- a follower keeps a device's frames in order: while one of them waits for the leader, the next ones are relayed
  too, even those it could answer itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LEAD_POLL_S = 1.0
"""The leading hub checks that it still holds the lead this often (and takes relayed frames it was not woken for)."""
FOLLOW_POLL_S = 0.2
"""A following hub catches up and tries to take the lead this often, besides at each notification: a leader that
died is replaced within about this long after the database ends its session (`bench/failover.py`)."""


class Role(StrEnum):
    LEADER = "leader"
    TAKING_OVER = "taking_over"
    """Granted the lock, still applying what the old leader stored: frames are relayed (to itself), not decided."""
    FOLLOWER = "follower"


class Do(StrEnum):
    """A step for the adapter, carried out in the order given."""

    FOLLOW = "follow"
    """Apply what the leader stored: answers to this hub's relayed frames, then the events after this hub's seq."""
    TRY_LEAD = "try_lead"
    """Ask the database for the store's lock; give the answer to `Cluster.lead_answer`."""
    CHECK_LEAD = "check_lead"
    """Ask the database whether this hub still holds the lock; give the answer to `Cluster.lead_checked`."""
    TAKE_OVER = "take_over"
    """Granted the lock: apply what the old leader stored last, take the job counter, seal the undo window; then
    tell `Cluster.took_over`."""
    START_SPOOLER = "start_spooler"
    STOP_SPOOLER = "stop_spooler"
    TAKE_COMMANDS = "take_commands"
    """Decide the frames other hubs relayed, in the order they came."""
    RELEASE_LEAD = "release_lead"
    """Drop the session that held the lock (it may be dead already); the database frees the lock with it."""


class FrameKind(StrEnum):
    """What a device's frame is, as far as routing goes."""

    BAD = "bad"
    """Not a valid frame: refused with an error."""
    READ = "read"
    """Changes nothing (`ping`, `orders.closed`)."""
    FORBIDDEN = "forbidden"
    """A message the device's role may not send: refused with an error."""
    WRITE = "write"
    """A change only the leader may decide."""


class Route(StrEnum):
    DECIDE = "decide"
    """This hub leads: it decides the frame."""
    ANSWER = "answer"
    """A follower answers the frame itself (nothing to decide, nothing to store)."""
    RELAY = "relay"
    """A follower relays the frame to the leader and waits for its answer."""


@dataclass(slots=True)
class Backoff:
    """Doubling delays after failures in a row, up to a cap; reset by a success."""

    first: float
    cap: float
    failures: int = 0

    def failed(self) -> float:
        """One more failure: the delay before the next attempt."""
        self.failures += 1
        return float(min(self.cap, self.first * 2 ** min(self.failures - 1, 30)))

    def succeeded(self) -> None:
        self.failures = 0


class Cluster:
    """The leader/follower decisions of one hub (see the module docstring)."""

    def __init__(
        self,
        *,
        shared: bool,
        prints: bool,
        lead_poll_s: float = LEAD_POLL_S,
        follow_poll_s: float = FOLLOW_POLL_S,
        fault_backoff: tuple[float, float] = (0.25, 5.0),
        listen_backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.shared = shared
        """Whether other hubs may serve the same store (a shared database): else this hub always leads."""
        self.prints = prints
        """Whether this hub has printers to drive (when it leads)."""
        self.role = Role.FOLLOWER if shared else Role.LEADER
        self.spooling = False
        self.lead_poll_s = lead_poll_s
        self.follow_poll_s = follow_poll_s
        self.faults = Backoff(*fault_backoff)
        self.listen_faults = Backoff(*listen_backoff)
        self.retry_at = 0.0
        """No round before this time (a database fault's backoff)."""
        self.takeovers = 0
        self.step_downs = 0

    @property
    def poll_s(self) -> float:
        """The longest a round waits for a notification (a lost one only delays): short while following, so a dead
        leader is replaced soon after the database ends its session."""
        return self.lead_poll_s if self.role is Role.LEADER else self.follow_poll_s

    @property
    def leading(self) -> bool:
        """Whether this hub decides and writes (not while it is still taking over)."""
        return self.role is Role.LEADER

    # ------------------------------------------------------------------ start

    def start(self) -> list[Do]:
        """The hub starts. Alone on its store it leads at once; on a shared store it asks for the lock first."""
        if not self.shared:
            return self._spool()
        return [Do.TRY_LEAD]

    # ------------------------------------------------------------------ rounds

    def wake(self, now: float) -> list[Do]:
        """A round (a notification came, or `poll_s` passed): what to ask the database."""
        if not self.shared or now < self.retry_at:
            return []
        if self.role is Role.FOLLOWER:
            return [Do.FOLLOW, Do.TRY_LEAD]
        return [Do.CHECK_LEAD]

    def lead_checked(self, held: bool) -> list[Do]:
        """The database's answer to `CHECK_LEAD`."""
        if self.role is Role.FOLLOWER:
            return []
        if not held:
            return self.lock_lost()
        if self.role is Role.TAKING_OVER:
            return [Do.TAKE_OVER]  # the last attempt failed half-way: again, from where this hub's state is
        return [*self._spool(), Do.TAKE_COMMANDS]

    def lead_answer(self, granted: bool) -> list[Do]:
        """The database's answer to `TRY_LEAD`."""
        if self.role is not Role.FOLLOWER:
            return self.lead_checked(granted)
        if granted:
            self.role = Role.TAKING_OVER
            return [Do.TAKE_OVER]
        return self._unspool()  # another hub leads, and prints

    def took_over(self) -> list[Do]:
        """`TAKE_OVER` is done: this hub leads."""
        if self.role is not Role.TAKING_OVER:
            return []
        self.role = Role.LEADER
        self.takeovers += 1
        return [*self._spool(), Do.TAKE_COMMANDS]

    def lock_lost(self) -> list[Do]:
        """The database says this hub no longer holds the lock (a check, or a commit refused with `NotLeading`)."""
        if self.role is Role.FOLLOWER:
            return []
        self.role = Role.FOLLOWER
        self.step_downs += 1
        return [*self._unspool(), Do.RELEASE_LEAD]

    def round_done(self) -> None:
        """Every step of the round succeeded."""
        self.faults.succeeded()
        self.retry_at = 0.0

    def fault(self, now: float) -> float:
        """A database fault in the round: the delay before the next one (the hub serves on from memory)."""
        delay = self.faults.failed()
        self.retry_at = now + delay
        return delay

    # ------------------------------------------------------------------ notifications

    def listen_lost(self) -> float:
        """The LISTEN connection failed: the delay before listening again (a catch-up round follows)."""
        return self.listen_faults.failed()

    def listening(self) -> None:
        """LISTEN ended cleanly (the hub stops) or works again."""
        self.listen_faults.succeeded()

    # ------------------------------------------------------------------ frames

    def route(self, kind: FrameKind, *, waiting: bool) -> Route:
        """Where a device's frame goes. `waiting`: an earlier frame of the device waits for the leader's answer."""
        if self.role is Role.LEADER:
            return Route.DECIDE
        if waiting or kind is FrameKind.WRITE:
            return Route.RELAY
        return Route.ANSWER

    # ------------------------------------------------------------------ printing

    def spooler(self, running: bool) -> None:
        """The adapter started (True) or stopped (False) the spooler. Until it says so, the step is asked again on
        the next answer: a step that failed is not taken as done."""
        self.spooling = running

    def _spool(self) -> list[Do]:
        return [Do.START_SPOOLER] if self.prints and not self.spooling else []

    def _unspool(self) -> list[Do]:
        return [Do.STOP_SPOOLER] if self.spooling else []
