"""The kitchen station screen: one station's tickets, driven by keys or a bump bar.

`create_app` is the factory the CLI (`run_kitchen`) and the tests use; the clock is injectable so timers and
snapshots are deterministic. The screen reads the station's state from `HubClient.book` and sends every action
through `HubClient.enqueue` (the durable queue), so a bump made while the hub is away is shown at once, kept on disk,
sent on reconnect and applied once.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual import on
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.widget import Widget

from kds import wire
from kds.client import ActionQueue, HubClient, LinkState
from kds.config import Language, StoreConfig
from kds.protocol import Ack, Error, Event, PrinterStatus, Welcome
from terminals.connection import ConnectionBar, OfflineBanner
from terminals.kitchen import keymap as keymaps
from terminals.kitchen import queues
from terminals.kitchen.all_day_screen import AllDayScreen
from terminals.kitchen.board import Board
from terminals.kitchen.header import StationHeader
from terminals.kitchen.help_screen import HelpScreen
from terminals.kitchen.model import ACTIVE, Entry, StationInfo, StationState, all_day
from terminals.kitchen.printer_alert import PrinterAlert
from terminals.kitchen.recall_screen import RecallScreen
from terminals.kitchen.scheduled_screen import ScheduledScreen
from terminals.kitchen.theme import KITCHEN_THEME
from terminals.kitchen.words import Speech

Clock = Callable[[], datetime]
W = TypeVar("W", bound=Widget)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class KitchenApp(App[int]):
    """One station's ticket screen."""

    CSS_PATH = "kitchen.tcss"
    TITLE = "Hema KDS kitchen"
    BINDINGS: ClassVar[list[BindingType]] = keymaps.bindings(keymaps.BOARD)

    class HubFrame(Message):
        """A frame from the hub (welcome, event, ack, error, printer.status…), already applied to the book."""

        def __init__(self, frame: wire.HubFrame) -> None:
            super().__init__()
            self.frame = frame

    class LinkChanged(Message):
        """The connection to the hub went up or down."""

        def __init__(self, state: LinkState) -> None:
            super().__init__()
            self.state = state

    def __init__(
        self,
        client: HubClient,
        *,
        station: str,
        keymap: dict[str, str] | None = None,
        keymap_replaces_defaults: bool = False,
        now: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        acks_path: Path | None = None,
        hub_label: str | None = None,
        close_client: bool = False,
        language: Language | str = Language.EN,
        config: StoreConfig | None = None,
        queue_claim: queues.QueueClaim | None = None,
    ) -> None:
        super().__init__()
        self.queue_claim = queue_claim
        """The queue file this screen holds locked (its client's `queue_path`); its device's leftover queue files
        are adopted on start and the lock is let go on exit."""
        self.speech = Speech(language, config)
        """The screen's language (its fixed words, and names from `config` when given)."""
        self.client = client
        self.station = station
        self.device_keymap = {k: keymaps.normalize(v) for k, v in (keymap or {}).items()}
        self.keymap_replaces_defaults = keymap_replaces_defaults
        self.keys = keymaps.effective(self.device_keymap, replaces_defaults=keymap_replaces_defaults)
        self.now = now
        self.monotonic = monotonic
        self.acks_path = acks_path
        self.hub_label = hub_label
        self.close_client = close_client
        self.state = StationState(station, acknowledged=self._load_acks())
        self.info = StationInfo(station, station)
        self.tz: tzinfo = datetime.now().astimezone().tzinfo or UTC
        """The store's time zone once the hub has said it (the machine's until then)."""
        self.entries: list[Entry] = []
        self.selected: str | None = None
        self.cursor: str | None = None
        self._sel_index = 0
        self._page_asked: int | None = None
        """The page the cook turned to (drawn unless the cursor's item is not on it)."""
        self._cursor_parked = False
        """Paged to a part of the selected ticket that holds none of its open items: no item under the cursor."""
        self._welcomed = False
        self._redraw_pending = False
        self.bells = 0
        """How many times the bell rang (the terminal bell is silent in tests)."""
        self.notices: list[str] = []
        """Messages shown to the cook (errors from the hub, refused actions), latest last."""
        self.register_theme(KITCHEN_THEME)
        self.theme = KITCHEN_THEME.name

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Banner, printer alert, header, board, status bar."""
        yield OfflineBanner(self.client, id="offline", language=self.speech.language)
        yield PrinterAlert(self.station, id="printer-alert", language=self.speech.language)
        yield StationHeader(id="header")
        yield Board(id="board")
        yield ConnectionBar(
            self.client, now=self.monotonic, label=self.hub_label, id="status", language=self.speech.language
        )

    async def on_mount(self) -> None:
        """Apply the device's key map, follow the client, start it, and tick once a second."""
        if self.device_keymap or self.keymap_replaces_defaults:
            self.set_keymap(keymaps.textual_keymap(self.keys))
        self.client.listeners.append(self._on_frame)
        self.client.state_listeners.append(self._on_state)
        at = self.now()
        self.adopt_leftovers()
        for msg in self.client.queue.items:  # actions left in the queue file by a previous run
            self.state.pending.add(msg, at)
        if self.client.book.store:
            self._take_store()
        if self.client.welcome is not None:
            self._welcomed = True
            self.state.observe(self.client.book.orders.values(), at, quiet=True)
        await self.client.start()
        self.set_interval(1.0, self._tick)
        self.redraw()

    async def on_unmount(self) -> None:
        """Stop following the client (and close it when this app made it)."""
        if self._on_frame in self.client.listeners:
            self.client.listeners.remove(self._on_frame)
        if self._on_state in self.client.state_listeners:
            self.client.state_listeners.remove(self._on_state)
        if self.close_client:
            await self.client.close()
        if self.queue_claim is not None and self.close_client:
            self.queue_claim.release()

    def adopt_leftovers(self) -> int:
        """Move the actions of this device's queue files that no running screen holds (a screen closed offline or
        crashed) into this screen's queue, to be sent with its own; returns how many were taken."""
        if self.queue_claim is None:
            return 0
        taken = 0
        mine = {m.get("ref") for m in self.client.queue.items}
        for other in queues.leftovers(self.queue_claim):
            try:
                for msg in ActionQueue(other.path).items:
                    if msg.get("ref") not in mine:
                        self.client.queue.push(msg)  # on disk in our file before it leaves the other one
                        mine.add(msg.get("ref"))
                        taken += 1
                with contextlib.suppress(OSError):
                    other.path.unlink()
            finally:
                other.release()
        return taken

    def on_resize(self) -> None:
        """Lay out again."""
        self.redraw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action this device has no key for does nothing (a keymap that replaces the defaults)."""
        return keymaps.enabled(self.keys, action, parameters)

    # ------------------------------------------------------------------ the hub

    def _on_frame(self, frame: wire.HubFrame) -> None:
        self.post_message(self.HubFrame(frame))

    def _on_state(self, state: LinkState) -> None:
        self.post_message(self.LinkChanged(state))

    @on(HubFrame)
    def _frame(self, message: HubFrame) -> None:
        f = message.frame
        book = self.client.book
        now = self.now()
        if isinstance(f, Welcome):
            self._take_store()
            if f.snapshot is not None:
                changes = self.state.observe(book.orders.values(), now, quiet=not self._welcomed)
                self.state.forget_missing(book.orders.values())
                if changes.ring:
                    self.bell()
            self._welcomed = True
        elif isinstance(f, Event):
            order = book.orders.get(f.order.id, f.order)
            if self.state.observe([order], now).ring:
                self.bell()
            self.state.pending.settle(book.seq)
        elif isinstance(f, (Ack, Error)):
            action = self.state.pending.answered(f, book.seq)
            if isinstance(f, Error) and action is not None:
                number = action.ticket_id.split("/")[0].split("-")[-1]
                self.notice(self.speech("{number}: the hub refused it — {message}", number=number, message=f.message))
        elif isinstance(f, PrinterStatus):
            self.show_printer_status(f)
            return
        else:
            return
        self._schedule_redraw()

    @on(LinkChanged)
    def _link(self, message: LinkChanged) -> None:
        banner, bar = self._widget(OfflineBanner), self._widget(ConnectionBar)
        if banner is not None and bar is not None:
            banner.check()
            bar.refresh_status()

    def _widget(self, kind: type[W]) -> W | None:
        """One of the screen's widgets; None before they are composed and once they are gone (the app shutting down:
        a frame, tick or redraw still queued then has nothing to draw on and must not fail)."""
        if not self.is_running or self._exit or not self.is_attached:
            return None
        try:
            return self.query_one(kind)
        except NoMatches:
            return None

    def show_printer_status(self, frame: PrinterStatus) -> None:
        """A `printer.status` frame: show or clear the printer's alert line."""
        alert = self._widget(PrinterAlert)
        if alert is None:
            return
        was = bool(alert.troubles)
        if alert.apply(frame) and alert.troubles and not was:
            self.bell()

    def _take_store(self) -> None:
        store = self.client.book.store
        self.info = StationInfo.from_store(store, self.station)
        self.speech.store = store
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            self.tz = ZoneInfo((store.timezone if store is not None else None) or "UTC")

    # ------------------------------------------------------------------ drawing

    def bell(self) -> None:
        """Ring the terminal bell (counted, so tests can hear it)."""
        self.bells += 1
        super().bell()

    def notice(self, text: str) -> None:
        """Tell the cook something (a toast; kept in `notices`)."""
        self.notices.append(text)
        self.notify(text, severity="warning", timeout=6)

    def _schedule_redraw(self) -> None:
        # Drawn once the frames already waiting have been taken in: a burst of events is one redraw, and no later.
        if not self._redraw_pending:
            self._redraw_pending = True
            self.call_later(self._redraw_if_pending)

    def _redraw_if_pending(self) -> None:
        if self._redraw_pending:
            self.redraw()

    def _tick(self) -> None:
        self.state.pending.settle(self.client.book.seq)
        self.redraw()

    def redraw(self, page: int | None = None) -> None:
        """Work out the board from the book and draw everything (on page `page`, when the cook turned to it). Before
        the screen is composed and once it is closing, nothing (there is nothing to draw on)."""
        board, header = self._widget(Board), self._widget(StationHeader)
        if board is None or header is None:
            return
        self._redraw_pending = False
        now = self.now()
        self.entries = self.state.entries(self.client.book.orders.values(), now)
        self._fix_selection()
        w = self.speech
        waiting = "" if self._welcomed else w("Waiting for the hub: the tickets show as soon as it answers.")
        board.show(
            self.entries,
            selected=self.selected,
            cursor=self.cursor,
            now=now,
            station=self.info,
            tz=self.tz,
            empty_text=waiting,
            page=page,
            speech=w,
        )
        before, after = board.counts()
        page_ids = {e.id for e in board.page_entries()} if self.entries else set()
        off_page_new = sum(1 for e in self.entries if e.fresh and e.id not in page_ids)
        label = keymaps.keys_label
        k = self.keys
        hints = (
            f"{label(k['start'])} {w('start')} · {label(k['bump'])} {w('bump')} · {label(k['bump_item'])} "
            f"{w('item')} · {label(k['recall'])} {w('recall')} · {label(k['all_day'])} {w('all-day')}"
        )
        header.show(
            station=self.info,
            entries=self.entries,
            page=board.page_index,
            pages=len(board.pages),
            before=before,
            after=after,
            off_page_new=off_page_new,
            now=now,
            tz=self.tz,
            help_key=label(k["help"][:1]),
            hints=hints,
            speech=w,
            scheduled=self.state.scheduled(self.client.book.orders.values()),
        )
        screen = self.screen
        if isinstance(screen, AllDayScreen):
            screen.update_totals(all_day(self.entries), self._open_count())
        elif isinstance(screen, RecallScreen):
            screen.update_entries(self.state.recall_list(self.client.book.orders.values(), now), now)
        elif isinstance(screen, ScheduledScreen):
            screen.update_waiting(self.state.scheduled(self.client.book.orders.values()), now)

    def _open_count(self) -> int:
        return sum(1 for e in self.entries if e.state in ACTIVE)

    def _fix_selection(self) -> None:
        ids = [e.id for e in self.entries]
        if not ids:
            self.selected, self.cursor, self._sel_index = None, None, 0
            return
        if self.selected in ids:
            self._sel_index = ids.index(self.selected)
        else:
            # The selected ticket left the board (bumped): the one that takes its place is selected.
            self._sel_index = min(self._sel_index, len(ids) - 1)
            self.selected = ids[self._sel_index]
            self.cursor = None
        entry = self.entries[self._sel_index]
        open_ids = [i.id for i in entry.open_items()]
        if self.cursor not in open_ids and not (self.cursor is None and self._cursor_parked):
            self.cursor = open_ids[0] if open_ids else None

    @property
    def selected_entry(self) -> Entry | None:
        """The ticket under the selection, if any."""
        for e in self.entries:
            if e.id == self.selected:
                return e
        return None

    def select(self, ticket_id: str | None) -> None:
        """Put the selection on a ticket and draw."""
        if ticket_id is not None and ticket_id != self.selected:
            self.selected, self.cursor = ticket_id, None
        self._cursor_parked = False
        self.redraw()

    # ------------------------------------------------------------------ sending

    def send(self, kind: str, entry: Entry, item_id: str | None = None) -> None:
        """Queue a kitchen action with the client (sent now, or on reconnect) and show it done at once."""
        msg: dict[str, Any] = {"type": kind, "ticket_id": entry.id}
        if item_id is not None:
            msg["item_id"] = item_id
        self.client.enqueue(msg)
        self.state.pending.add(msg, self.now())
        self.redraw()

    # ------------------------------------------------------------------ actions

    def _move(self, step: int) -> None:
        if not self.entries:
            return
        k = max(0, min(len(self.entries) - 1, self._sel_index + step))
        self._sel_index = k
        self.select(self.entries[k].id)

    def action_prev(self) -> None:
        """Select the previous ticket."""
        self._move(-1)

    def action_next(self) -> None:
        """Select the next ticket."""
        self._move(1)

    def _move_item(self, step: int) -> None:
        e = self.selected_entry
        if e is None:
            return
        ids = [i.id for i in e.open_items()]
        if not ids:
            return
        if self.cursor in ids:
            k = ids.index(self.cursor) + step
        else:
            # Parked on a part without open items: the next open item is the first one after that part.
            board = self.query_one(Board)
            shown = board.page_index
            k = 0 if step > 0 else len(ids) - 1
            for n, iid in enumerate(ids):
                pages = board.pages_of(e.id, iid)
                if pages and pages[0] > shown:
                    k = n if step > 0 else max(0, n - 1)
                    break
        self.cursor = ids[max(0, min(len(ids) - 1, k))]
        self._cursor_parked = False
        self.redraw()

    def action_item_up(self) -> None:
        """Move the item cursor up."""
        self._move_item(-1)

    def action_item_down(self) -> None:
        """Move the item cursor down."""
        self._move_item(1)

    def action_start(self) -> None:
        """Start the selected ticket."""
        e = self.selected_entry
        if e is None:
            return
        if e.needs_ack:
            self.action_acknowledge()
        elif e.state == "new":
            self.send("ticket.start", e)

    def action_bump(self) -> None:
        """Bump the selected ticket (a cancelled one is cleared instead)."""
        e = self.selected_entry
        if e is None:
            return
        if e.needs_ack:
            self.action_acknowledge()
        elif e.state in ACTIVE:
            self.send("ticket.bump", e)

    def action_bump_item(self) -> None:
        """Bump the item under the cursor."""
        e = self.selected_entry
        if e is None or e.needs_ack or e.state not in ACTIVE or self.cursor is None:
            return
        ids = [i.id for i in e.open_items()]
        if self.cursor not in ids:
            return
        item = self.cursor
        k = ids.index(item)
        rest = ids[k + 1 :] or ids[:k]
        self.cursor = rest[0] if rest else None
        self._cursor_parked = False
        self.send("item.bump", e, item)

    def action_acknowledge(self) -> None:
        """Clear a cancelled ticket: the selected one, else the first one waiting."""
        e = self.selected_entry
        target = e if e is not None and e.needs_ack else next((x for x in self.entries if x.needs_ack), None)
        if target is not None and self.state.acknowledge(target.id):
            self._save_acks()
            self.redraw()

    def action_fire(self) -> None:
        """Open the list of tickets waiting for later (orders for a time, parts fired by prep time, held ones); the
        one chosen there is fired now."""
        waiting = self.state.scheduled(self.client.book.orders.values())

        def fired(order_id: str | None) -> None:
            if order_id is not None:
                self.client.enqueue({"type": "order.fire", "order_id": order_id})

        self.push_screen(
            ScheduledScreen(waiting, now=self.now(), tz=self.tz, keys=self.keys, speech=self.speech), fired
        )

    def action_hold(self) -> None:
        """Hold the selected ticket, not started yet: it leaves the board until it is fired."""
        e = self.selected_entry
        if e is not None and e.state == "new" and not e.needs_ack:
            self.client.enqueue({"type": "order.hold", "order_id": e.order.id})

    def action_recall(self) -> None:
        """Open the recall list."""
        now = self.now()
        entries = self.state.recall_list(self.client.book.orders.values(), now)

        def recalled(ticket_id: str | None) -> None:
            if ticket_id is None:
                return
            entry = next((x for x in entries if x.id == ticket_id), None)
            if entry is not None:
                self.send("ticket.recall", entry)
                self.select(ticket_id)

        self.push_screen(RecallScreen(entries, now=now, tz=self.tz, keys=self.keys, speech=self.speech), recalled)

    def action_all_day(self) -> None:
        """Open the all-day totals."""
        self.push_screen(
            AllDayScreen(
                all_day(self.entries),
                station_name=self._station_name(),
                tickets=self._open_count(),
                keys=self.keys,
                speech=self.speech,
            )
        )

    def action_help(self) -> None:
        """Open the key list."""
        self.push_screen(HelpScreen(self.keys, device=self.client.device, speech=self.speech))

    def _station_name(self) -> str:
        """The station's name in the screen's language."""
        return (self.info.name_zh or self.info.name) if self.speech.zh else self.info.name

    def _page(self, step: int) -> None:
        """Turn to the next (or previous) page: the first ticket that starts on it is selected (else the one
        continued on it), the cursor on its first open item shown there (none when the part shows none)."""
        board = self.query_one(Board)
        target = board.page_index + step
        if not 0 <= target < len(board.pages):
            return
        starting = board.starting_on(target)
        page = starting or board.page_entries(target)
        if not page:
            return
        e = page[0]
        self._sel_index = board.index_of[e.id]
        self.selected = e.id
        shown = [i.id for i in e.open_items() if target in board.pages_of(e.id, i.id)]
        self.cursor = shown[0] if shown else None
        self._cursor_parked = not shown
        self.redraw(page=target)

    def action_page_next(self) -> None:
        """Show the next page (its first ticket selected)."""
        self._page(1)

    def action_page_prev(self) -> None:
        """Show the previous page."""
        self._page(-1)

    def action_first(self) -> None:
        """Select the oldest ticket."""
        if self.entries:
            self._sel_index = 0
            self.select(self.entries[0].id)

    def _pick(self, n: int) -> None:
        board = self.query_one(Board)
        page = board.page_entries()
        if 0 < n <= len(page):
            e = page[n - 1]
            self._sel_index = board.index_of[e.id]
            if e.id != self.selected:
                # The cursor on the ticket's first open item on this page: picking never turns the page.
                shown = [i.id for i in e.open_items() if board.page_index in board.pages_of(e.id, i.id)]
                self.selected, self.cursor = e.id, (shown[0] if shown else None)
                self._cursor_parked = not shown
            self.redraw()

    def action_pick(self, n: int) -> None:
        """Select the ticket labelled `n` (1–9) on the page (reading order: left to right, top to bottom)."""
        self._pick(n)

    # ------------------------------------------------------------------ acknowledged cancellations

    def _load_acks(self) -> list[str]:
        if self.acks_path is None or not self.acks_path.exists():
            return []
        try:
            data = json.loads(self.acks_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [str(x) for x in data] if isinstance(data, list) else []

    def _save_acks(self) -> None:
        if self.acks_path is None:
            return
        # Only tickets the hub still shows matter; the list stays small.
        known = set(self.state.seen)
        keep = sorted(a for a in self.state.acknowledged if a in known)
        with contextlib.suppress(OSError):
            self.acks_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.acks_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(keep), encoding="utf-8")
            tmp.replace(self.acks_path)


def create_app(
    client: HubClient,
    *,
    station: str,
    keymap: dict[str, str] | None = None,
    keymap_replaces_defaults: bool = False,
    now: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    acks_path: Path | None = None,
    hub_label: str | None = None,
    close_client: bool = False,
    language: Language | str = Language.EN,
    config: StoreConfig | None = None,
    queue_claim: queues.QueueClaim | None = None,
) -> KitchenApp:
    """The kitchen screen for `station`, reading and acting through `client` (used by the CLI and the tests)."""
    return KitchenApp(
        client,
        station=station,
        keymap=keymap,
        keymap_replaces_defaults=keymap_replaces_defaults,
        now=now,
        monotonic=monotonic,
        acks_path=acks_path,
        hub_label=hub_label,
        close_client=close_client,
        language=language,
        config=config,
        queue_claim=queue_claim,
    )


def freeze_start_up() -> None:
    """Put what start-up made (modules, classes, functions: some 50,000 objects that live as long as the process)
    out of the cyclic garbage collector's reach. Otherwise each full collection walks them all again: about 40 ms
    with 300 open tickets, a stall a cook sees after a key; with them frozen, about 4 ms."""
    gc.collect()
    gc.freeze()


def run_kitchen(
    *,
    hub: str,
    device: str,
    token: str,
    station: str,
    queue_path: Path | None = None,
    keymap: dict[str, str] | None = None,
    ca_file: str | Path | None = None,
    config: StoreConfig | None = None,
    keymap_replaces_defaults: bool | None = None,
    language: Language | str | None = None,
) -> int:
    """Run the kitchen screen until Ctrl+Q; returns the exit code (2 for a bad key map). `ca_file` verifies a
    `wss://` hub. With `config`, the device's keymap, `keymap_replaces_defaults` and language come from it (unless
    given), and names (cooking methods, allergens, dishes) are shown in the device's language. The queue file is
    this screen's own: locked while it runs (a second screen of the device uses `queue-DEVICE.2.jsonl`…)."""
    dev = config.device(device) if config is not None else None
    if keymap is None and dev is not None:
        keymap = dict(dev.keymap)
    if keymap_replaces_defaults is None:
        keymap_replaces_defaults = bool(dev and dev.keymap_replaces_defaults)
    if language is None:
        language = config.language_of(device) if config is not None else Language.EN
    problems = keymaps.validate(keymap or {})
    if problems:
        for p in problems:
            print(f"kds kitchen: keymap of {device}: {p}", file=sys.stderr)
        return 2
    claim = queues.claim(queue_path) if queue_path else None
    path = claim.path if claim else None
    client = HubClient(
        hub,
        device=device,
        token=token,
        role="kitchen",
        station=station,
        queue_path=path,
        client_name="kds-kitchen",
        ca_file=ca_file,
    )
    acks = path.with_name(f"{path.stem}.acknowledged.json") if path else None
    app = create_app(
        client,
        station=station,
        keymap=keymap,
        keymap_replaces_defaults=keymap_replaces_defaults,
        acks_path=acks,
        close_client=True,
        language=language,
        config=config,
        queue_claim=claim,
    )
    freeze_start_up()
    try:
        app.run()
    finally:
        if claim is not None:
            claim.release()
    return app.return_code or 0
