"""Intake: key in a shelf-to-table or walk-up order from the keys alone, and send it with an idempotency key.

Enter walks forward through the item's fields (item → weight → cooking method → qty → note → allergens); F4 adds
the item to the order from any field; F5 sends the order (Enter in the table or order-note field does too). Every
check that the hub would make on an item (unknown SKU, weight outside the item's range, no cooking method) is made
here first and shown under the field at fault; nothing is sent until the order is clean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from kds.client import LinkState
from terminals.connection import ConnectionBar, OfflineBanner
from terminals.counter import actions
from terminals.counter.catalogue import Catalogue, Problem, Product, parse_allergens
from terminals.counter.context import CounterContext
from terminals.counter.draft import Draft, Line, Service, new_key
from terminals.counter.widgets import BigNumber, FieldError, ViewTitle, WeightInput


class FindInput(Input):
    """The item field: a scanner types the code and Enter; Up/Down move through the matches below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "move(1)", "Next match", show=False),
        Binding("up", "move(-1)", "Previous match", show=False),
    ]

    class Move(Message):
        """Move the highlight in the list of matches."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    def action_move(self, delta: int) -> None:
        """Ask the screen to move the highlight."""
        self.post_message(self.Move(delta))


class OrderLines(OptionList):
    """The lines of the order being keyed in; Delete takes the highlighted one out."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("delete,backspace", "remove", "Remove line"),
    ]

    class RemoveLine(Message):
        """The clerk asked to take a line out."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def action_remove(self) -> None:
        """Take the highlighted line out."""
        if self.highlighted is not None:
            self.post_message(self.RemoveLine(self.highlighted))


@dataclass(frozen=True, slots=True)
class Accepted:
    """The last order the hub accepted from this counter."""

    order_id: str
    number: str
    draft: Draft
    duplicate: bool


class IntakeScreen(Screen[None]):
    """Take an order: find items, weigh, choose the cooking method, table or pickup, and send."""

    AUTO_FOCUS = "#find"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f4", "add_item", "Add item"),
        Binding("f5", "send", "Send order"),
        Binding("f6", "new_order", "New order"),
        Binding("f7", "print_tag", "Print tag"),
        Binding("f8", "toggle_service", "Dine-in/pickup"),
        Binding("escape", "clear_item", "Clear item", show=False),
    ]

    class Answered(Message):
        """The hub answered an order this screen sent (`order.accepted` or `error`)."""

        def __init__(self, draft: Draft, answer: dict[str, Any]) -> None:
            super().__init__()
            self.draft = draft
            self.answer = answer

    class Printed(Message):
        """The hub answered a print request: None when it took the job, else why not."""

        def __init__(self, order_id: str, layout: str, problem: str | None) -> None:
            super().__init__()
            self.order_id = order_id
            self.layout = layout
            self.problem = problem

    def __init__(self, ctx: CounterContext) -> None:
        super().__init__(id="intake-screen")
        self.ctx = ctx
        self.draft = self._new_draft()
        self.product: Product | None = None
        self.cook: str | None = None
        self.matches: list[Product] = []
        self.sending: Draft | None = None
        """The draft sent and not yet answered (a second F5 sends nothing)."""
        self.accepted: Accepted | None = None
        self.refs: set[str] = set()
        """Refs of the `order.submit`s sent from this screen."""
        self._find_label = ""
        self._discard_armed = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Item form on the left, the order on the right."""
        client = self.ctx.client
        yield ViewTitle(id="title")
        yield OfflineBanner(client)
        with Horizontal(id="intake-body"):
            with Vertical(id="item-form"):
                yield Label("Item: SKU, barcode or name (EN/中文)", classes="caption")
                yield FindInput(placeholder="scan or type, Enter", id="find", compact=True)
                yield FieldError(id="find-error")
                yield OptionList(id="matches", compact=True)
                yield Static("", id="item-info")
                with Horizontal(classes="row", id="weight-row"):
                    yield Label("Weight", classes="row-label")
                    yield WeightInput(id="weight")
                    yield Label(" g", classes="unit")
                yield FieldError(id="weight-error")
                yield Label("Cooking method (processing fee)", classes="caption", id="cook-caption")
                yield OptionList(id="cook", compact=True)
                yield FieldError(id="cook-error")
                with Horizontal(classes="row"):
                    yield Label("Qty", classes="row-label")
                    yield Input("1", id="qty", restrict=r"[0-9]*", max_length=2, compact=True)
                yield FieldError(id="qty-error")
                with Horizontal(classes="row"):
                    yield Label("Item note", classes="row-label")
                    yield Input(id="item-note", max_length=500, compact=True)
                with Horizontal(classes="row"):
                    yield Label("Allergens", classes="row-label")
                    yield Input(placeholder="e.g. peanut, sesame", id="allergens", max_length=400, compact=True)
                yield FieldError(id="allergens-error")
            with Vertical(id="order-side"):
                with Vertical(id="accepted"):
                    yield BigNumber(id="accepted-number")
                    yield Static("", id="accepted-info")
                    yield Static("", id="tag-state")
                yield Static("", id="order-title")
                yield OrderLines(id="lines", compact=True)
                yield FieldError(id="lines-error")
                with RadioSet(id="service", compact=True):
                    yield RadioButton("Dine-in", value=True, id="dine-in")
                    yield RadioButton("Pickup", id="pickup")
                with Horizontal(classes="row"):
                    yield Label("Table", classes="row-label")
                    yield Input(id="table", max_length=16, compact=True)
                yield FieldError(id="table-error")
                with Horizontal(classes="row"):
                    yield Label("Order note", classes="row-label")
                    yield Input(id="order-note", max_length=500, compact=True)
                yield FieldError(id="note-error")
                yield Static("", id="send-state")
        yield ConnectionBar(client, now=self.ctx.monotonic, label=self.ctx.hub_label)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start with an empty form."""
        self.query_one("#accepted").display = False
        self._clear_item()
        self._show_order()
        self.refresh_title()

    def refresh_title(self) -> None:
        """The title line (READY count changes with every event)."""
        book = self.ctx.client.book
        ready = sum(1 for o in book.orders.values() if o["status"] == "ready")
        self.query_one(ViewTitle).show("intake", self.ctx, ready=ready)

    # ------------------------------------------------------------------ helpers

    @property
    def catalogue(self) -> Catalogue:
        """The store's catalogue (from the hub's welcome)."""
        return self.ctx.catalogue

    def _new_draft(self) -> Draft:
        return Draft(key=new_key(self.ctx.client.device, self.ctx.now()))

    def _error(self, field: str, text: str | None) -> None:
        self.query_one(f"#{field}-error", FieldError).show(text)

    def _errors(self) -> dict[str, str]:
        """The errors shown now, by field (for tests and the status line)."""
        return {w.id.removesuffix("-error"): w.text for w in self.query(FieldError) if w.text and w.id is not None}

    def _input(self, widget_id: str) -> Input:
        return self.query_one(f"#{widget_id}", Input)

    def _focus(self, widget_id: str) -> None:
        self.query_one(f"#{widget_id}").focus()

    def _state(self, text: str) -> None:
        self.query_one("#send-state", Static).update(text)

    # ------------------------------------------------------------------ finding an item

    @on(Input.Changed, "#find")
    def _find_changed(self, event: Input.Changed) -> None:
        if event.value != event.input.value:
            return  # stale: the field was set again since (a pick, a clear)
        if self.product is not None:
            if event.value == self._find_label:
                return
            self._select(None)
        self._error("find", None)
        self._show_matches(self.catalogue.search(event.value) if event.value.strip() else [])

    def _show_matches(self, matches: list[Product]) -> None:
        self.matches = matches
        box = self.query_one("#matches", OptionList)
        money = self.catalogue.money
        box.set_options(
            Option(
                f"{escape(p.sku):<14} {escape(p.name)} {escape(p.name_zh)} · "
                + (f"{money(p.price_cents)}/kg" if p.weighed else money(p.price_cents)),
                id=p.sku,
            )
            for p in matches
        )
        box.display = bool(matches)
        if matches:
            box.highlighted = 0

    @on(FindInput.Move)
    def _move_match(self, event: FindInput.Move) -> None:
        box = self.query_one("#matches", OptionList)
        if box.option_count:
            box.highlighted = max(0, min(box.option_count - 1, (box.highlighted or 0) + event.delta))

    @on(Input.Submitted, "#find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self._pick(event.value)

    def _pick(self, value: str) -> None:
        """Enter in the item field: take the exact SKU / barcode / scale label, else the highlighted match."""
        text = value.strip()
        if self.product is not None and value == self._find_label:
            self._focus_after_item()
            return
        if not text:
            if self.draft.lines:
                # Enter on an empty item field: the items are in, on to the table (or the order note for pickup).
                self._focus("table" if self.draft.service is Service.DINE_IN else "order-note")
            else:
                self._error("find", "scan or type a SKU, barcode or name")
            return
        if not len(self.catalogue):
            self._error("find", "no catalogue yet: waiting for the hub")
            return
        scan = self.catalogue.scan(text)
        if scan is not None:
            self._select(scan.product, scan.weight_g)
            return
        box = self.query_one("#matches", OptionList)
        if self.matches and box.highlighted is not None:
            self._select(self.matches[box.highlighted])
            return
        looks_like_code = " " not in text and (text.isdigit() or text.upper() == text)
        self._error(
            "find",
            f"unknown SKU or barcode {text!r}" if looks_like_code else f"nothing in the catalogue matches {text!r}",
        )

    @on(OptionList.OptionSelected, "#matches")
    def _match_chosen(self, event: OptionList.OptionSelected) -> None:
        product = self.catalogue.get(event.option_id or "")
        if product is not None:
            self._select(product)

    def _select(self, product: Product | None, weight_g: int | None = None) -> None:
        """Make `product` the item of the form (None clears the item's fields but not the find text)."""
        self.product = product
        self.cook = None
        weight = self.query_one("#weight", WeightInput)
        weight.set_reading(weight_g)
        for field in ("find", "weight", "cook", "qty", "allergens"):
            self._error(field, None)
        self._input("qty").value = "1"
        self._input("qty").disabled = product is not None and product.weighed
        self._input("item-note").value = ""
        self._input("allergens").value = ""
        if product is None:
            self.query_one("#item-info", Static).update("")
            weight.disabled = True
            self._show_methods()
            return
        self._find_label = product.sku
        find = self._input("find")
        find.value = product.sku
        find.cursor_position = len(find.value)
        self._show_matches([])
        money = self.catalogue.money
        price = f"{money(product.price_cents)}/kg" if product.weighed else money(product.price_cents)
        facts = [price]
        if product.weighed and product.min_weight_g and product.max_weight_g:
            facts.append(f"{product.min_weight_g}–{product.max_weight_g} g")
        if product.allergens:
            facts.append("contains " + ", ".join(product.allergens))
        self.query_one("#item-info", Static).update(
            f"[b]{escape(product.name)}[/b] {escape(product.name_zh)}\n{escape(' · '.join(facts))}"
        )
        weight.disabled = not product.weighed
        self._show_methods()
        self._focus_after_item()

    def _focus_after_item(self) -> None:
        p = self.product
        if p is None:
            return
        if p.weighed and self.query_one("#weight", WeightInput).grams is None:
            self._focus("weight")
        elif p.methods and self.cook is None:
            self._focus("cook")
        elif not p.weighed:
            self._focus("qty")
        else:
            self._focus("item-note")

    # ------------------------------------------------------------------ weight, method, details

    @on(Input.Submitted, "#weight")
    def _weight_submitted(self) -> None:
        p = self.product
        if p is None:
            return
        weight = self.query_one("#weight", WeightInput)
        if weight.scanned is not None:
            # A scanner fired while the weight field had the focus: that is the next item, not a weight.
            code, weight.value = weight.scanned, ""
            self._input("find").value = code
            self._focus("find")
            self._pick(code)
            return
        grams = weight.grams
        problems = [x for x in self.catalogue.check_line(p, grams, self.cook) if x.field == "weight_g"]
        self._error("weight", problems[0].msg if problems else None)
        if not problems:
            self._focus("cook" if p.methods else "item-note")

    def _show_methods(self) -> None:
        box = self.query_one("#cook", OptionList)
        p = self.product
        methods = self.catalogue.methods_for(p) if p is not None else []
        money = self.catalogue.money
        highlighted = box.highlighted
        box.set_options(
            Option(
                f"{'●' if m.id == self.cook else '○'} {escape(m.name)} {escape(m.name_zh)} +{money(fee)} → {m.station}",
                id=m.id,
            )
            for m, fee in methods
        )
        if methods:
            box.highlighted = highlighted if highlighted is not None and highlighted < len(methods) else 0
        box.disabled = not methods
        self.query_one("#cook-caption", Label).update(
            "Cooking method (processing fee)" if methods or p is None else "Cooking method: none for this item"
        )

    @on(OptionList.OptionSelected, "#cook")
    def _cook_chosen(self, event: OptionList.OptionSelected) -> None:
        self.cook = event.option_id
        self._error("cook", None)
        self._show_methods()
        self._focus("item-note" if self.product is None or self.product.weighed else "qty")

    @on(Input.Submitted, "#qty")
    def _qty_submitted(self) -> None:
        self._focus("item-note")

    @on(Input.Submitted, "#item-note")
    def _note_submitted(self) -> None:
        self._focus("allergens")

    @on(Input.Submitted, "#allergens")
    def _allergens_submitted(self) -> None:
        self.action_add_item()

    # ------------------------------------------------------------------ lines

    def _line_from_form(self) -> Line | None:
        """The form as an order line, or None with every problem shown under its field."""
        p = self.product
        if p is None:
            text = self._input("find").value.strip()
            self._error("find", f"unknown SKU or barcode {text!r}" if text else "find an item first")
            self._focus("find")
            return None
        grams = self.query_one("#weight", WeightInput).grams if p.weighed else None
        problems: list[Problem] = list(self.catalogue.check_line(p, grams, self.cook))
        qty_text = self._input("qty").value
        qty = int(qty_text) if qty_text.isdigit() else 0
        if not p.weighed and not 1 <= qty <= 99:
            problems.append(Problem("qty", "quantity 1 to 99"))
        allergens, allergen_problem = parse_allergens(self._input("allergens").value)
        if allergen_problem:
            problems.append(Problem("allergens", allergen_problem))
        fields = {"weight_g": "weight", "cook": "cook", "qty": "qty", "allergens": "allergens"}
        for field in fields.values():
            self._error(field, None)
        for problem in problems:
            self._error(fields.get(problem.field, "find"), problem.msg)
        if problems:
            self._focus(fields.get(problems[0].field, "find"))
            return None
        method = self.catalogue.method(self.cook) if self.cook else None
        return Line(
            product=p,
            qty=1 if p.weighed else qty,
            weight_g=grams,
            cook=self.cook,
            fee_cents=p.methods.get(self.cook, method.fee_cents if method else 0) if self.cook else 0,
            note=self._input("item-note").value.strip() or None,
            allergens=tuple(allergens),
        )

    def action_add_item(self) -> bool:
        """F4: add the item of the form to the order; False (errors shown) when it is not complete."""
        if self.sending is self.draft:
            self._state("[b]This order was sent: waiting for the hub's answer.[/b] F6 starts a new order.")
            return False
        line = self._line_from_form()
        if line is None:
            return False
        if not self.draft.lines:
            self.query_one("#accepted").display = False
        self.draft.add(line, self.ctx.now().astimezone(self.ctx.tz))
        self._error("lines", None)
        self._clear_item()
        self._show_order()
        self._discard_armed = False
        return True

    def action_clear_item(self) -> None:
        """Esc: empty the item form and go back to the item field."""
        self._clear_item()

    def _clear_item(self) -> None:
        self._find_label = ""
        self._input("find").value = ""
        self._select(None)
        self._show_matches([])
        self._error("find", None)
        self._focus("find")

    @on(OrderLines.RemoveLine)
    def _remove_line(self, event: OrderLines.RemoveLine) -> None:
        if self.sending is self.draft:
            return
        removed = self.draft.remove(event.index)
        if removed is not None:
            self._state(f"Removed {escape(removed.product.name)}.")
            self._show_order()

    def _line_text(self, n: int, line: Line) -> str:
        p = line.product
        money = self.catalogue.money
        what = [f"{line.weight_g} g" if line.weight_g else f"×{line.qty}"]
        if line.cook:
            m = self.catalogue.method(line.cook)
            what.append(f"{m.name} {m.name_zh} → {m.station}" if m else line.cook)
        if line.fee_cents:
            what.append(f"fee {money(line.fee_cents)}")
        if line.tag:
            what.append(f"tag {line.tag}")
        extra = []
        if line.note:
            extra.append(f"note: {line.note}")
        if line.allergens:
            extra.append("allergy: " + ", ".join(line.allergens))
        text = f"{n}. [b]{escape(p.name)}[/b] {escape(p.name_zh)}\n   {escape(' · '.join(what))}"
        if extra:
            text += f"\n   [b $warning]{escape(' · '.join(extra))}[/]"
        return text

    def _show_order(self) -> None:
        d = self.draft
        box = self.query_one("#lines", OrderLines)
        highlighted = box.highlighted
        box.set_options(Option(self._line_text(n, line)) for n, line in enumerate(d.lines, start=1))
        if d.lines:
            box.highlighted = min(highlighted if highlighted is not None else len(d.lines) - 1, len(d.lines) - 1)
        count = f"{len(d.lines)} item{'s' if len(d.lines) != 1 else ''}"
        fees = f" · fees {self.catalogue.money(d.fees_cents)}" if d.fees_cents else ""
        self.query_one("#order-title", Static).update(
            f"[b]New order[/b] — [b]{d.channel}[/b] · {count}{fees}" if d.lines else "[b]New order[/b]"
        )
        if self.sending is not self.draft:
            self._state(
                "F4 adds the item · F5 (or Enter in Table) sends the order" if d.lines else "Add items with F4."
            )

    # ------------------------------------------------------------------ order details

    def action_toggle_service(self) -> None:
        """F8: dine-in at a table, or pickup."""
        pickup = self.draft.service is Service.DINE_IN
        self.query_one("#pickup" if pickup else "#dine-in", RadioButton).value = True
        self._focus("order-note" if pickup else "table")

    @on(RadioSet.Changed, "#service")
    def _service_changed(self, event: RadioSet.Changed) -> None:
        pickup = event.pressed.id == "pickup"
        self.draft.service = Service.PICKUP if pickup else Service.DINE_IN
        self._input("table").disabled = pickup
        self._error("table", None)

    @on(Input.Changed, "#table")
    def _table_changed(self, event: Input.Changed) -> None:
        self.draft.table = event.value
        self._error("table", None)

    @on(Input.Changed, "#order-note")
    def _order_note_changed(self, event: Input.Changed) -> None:
        self.draft.note = event.value

    @on(Input.Submitted, "#table")
    @on(Input.Submitted, "#order-note")
    def _order_field_submitted(self) -> None:
        self.action_send()

    # ------------------------------------------------------------------ sending

    def action_send(self) -> None:
        """F5: check the order and send it (durably queued; the idempotency key makes a resend harmless)."""
        if self.sending is self.draft:
            self._state("[b]Already sent[/b] — waiting for the hub (pressing again cannot make a second order).")
            return
        if self.product is not None and not self.action_add_item():
            self._state("[b $error]Not sent:[/] the item in the form is not complete (fix it, or Esc to clear).")
            return
        typed = self._input("find").value.strip()
        if self.product is None and typed:
            self._error("find", f"{typed!r} is not an item yet: Enter to pick it, or Esc to clear")
            self._focus("find")
            self._state("[b $error]Not sent:[/] the item field holds something that is not in the order.")
            return
        problems = self.draft.problems()
        for field in ("lines", "table", "note"):
            self._error(field, next((p.msg for p in problems if p.field == field), None))
        if problems:
            self._focus({"lines": "find", "table": "table", "note": "order-note"}[problems[0].field])
            self._state("[b $error]Not sent:[/] fix the fields marked in red.")
            return
        draft = self.draft
        self.sending = draft
        msg = actions.submit(draft.to_order())
        answer = self.ctx.client.enqueue(msg)
        self.refs.add(msg["ref"])
        online = self.ctx.client.state is LinkState.ONLINE
        self._state(
            "Sending…" if online else "[b $warning]OFFLINE:[/] the order is queued and sent when the hub is back."
        )
        self.run_worker(self._await_answer(draft, answer), name="order-answer", group="orders")

    async def _await_answer(self, draft: Draft, answer: asyncio.Future[dict[str, Any]]) -> None:
        """Worker: wait for the hub's answer to a sent order (as long as it takes: the order is queued)."""
        self.post_message(self.Answered(draft, await answer))

    @on(Answered)
    def _answered(self, event: Answered) -> None:
        if self.sending is event.draft:
            self.sending = None
        a = event.answer
        if a.get("type") == "order.accepted":
            self.accepted = Accepted(a["order_id"], a["number"], event.draft, bool(a.get("duplicate")))
            if event.draft is self.draft:
                self._reset_order()
            elif self.draft.lines:
                self.notify(f"Queued order accepted: {a['number']}", timeout=10)
                return
            self._show_accepted()
            self.print_tag()
            return
        # Refused: the draft stays as it was, with the hub's words next to the field at fault.
        if event.draft is not self.draft:
            self.notify(f"A queued order was refused: {actions.error_words(a)}", severity="error", timeout=30)
            return
        where = self._field_of(a)
        self._error(where, actions.error_words(a))
        self._state("[b $error]The hub refused the order[/] — nothing was stored. Fix it and press F5 again.")

    @staticmethod
    def _field_of(error: dict[str, Any]) -> str:
        locs = [[str(p) for p in e.get("loc", [])] for e in error.get("errors") or []]
        loc = locs[0] if locs else []
        if "table" in loc or "fulfilment" in loc:
            return "table"
        if loc[:2] == ["order", "note"]:
            return "note"
        return "lines"

    def _reset_order(self) -> None:
        self.draft = self._new_draft()
        self._input("table").value = ""
        self._input("order-note").value = ""
        self.query_one("#dine-in", RadioButton).value = True
        for field in ("lines", "table", "note"):
            self._error(field, None)
        self._clear_item()
        self._show_order()

    def _show_accepted(self) -> None:
        acc = self.accepted
        if acc is None:
            return
        d = acc.draft
        self.query_one("#accepted").display = True
        self.query_one("#accepted-number", BigNumber).number = acc.number
        where = f"table {d.table.strip()}" if d.service is Service.DINE_IN else "pickup"
        tags = [line.tag for line in d.lines if line.tag]
        info = f"[b]Order {acc.number} accepted[/b] · {where} · {len(d.lines)} item{'s' if len(d.lines) != 1 else ''}"
        if tags:
            info += f" · tags {', '.join(tags)}"
        self.query_one("#accepted-info", Static).update(info)
        self._state(f"Order {acc.number} sent. Scan the next item, or F3 for the expo list.")

    # ------------------------------------------------------------------ printing

    def _layout(self) -> str:
        acc = self.accepted
        return "claim_tag" if acc is not None and any(line.tag for line in acc.draft.lines) else "pickup_slip"

    def print_tag(self) -> None:
        """Ask the hub to print the claim tag (or pickup slip) of the last accepted order."""
        acc = self.accepted
        if acc is None:
            return
        layout = self._layout()
        self.query_one("#tag-state", Static).update(f"{actions.LAYOUTS[layout].capitalize()}: printing…")
        self.run_worker(self._print(acc.order_id, layout), name="print", group="print")

    def action_print_tag(self) -> None:
        """F7: print the claim tag of the last accepted order again."""
        if self.accepted is None:
            self._state("No order accepted yet: nothing to print.")
            return
        self.print_tag()

    async def _print(self, order_id: str, layout: str) -> None:
        """Worker: one print request and its answer."""
        problem = await actions.request_print(self.ctx.client, order_id, layout)
        self.post_message(self.Printed(order_id, layout, problem))

    @on(Printed)
    def _printed(self, event: Printed) -> None:
        if self.accepted is None or event.order_id != self.accepted.order_id:
            return
        what = actions.LAYOUTS[event.layout].capitalize()
        stuck = [p for p, f in self.ctx.printers.items() if not f.get("stations")]
        if event.problem is not None:
            text = f"[b $error]{what} not printed:[/] {escape(event.problem)} — F7 tries again"
        elif stuck:
            text = f"[b $warning]{what}: the hub has the job, but {escape(stuck[0])} is in trouble[/] (top line)"
        else:
            text = f"{what}: sent to the printer ✓ (F7 prints again)"
        self.query_one("#tag-state", Static).update(text)

    # ------------------------------------------------------------------ new order

    def action_new_order(self) -> None:
        """F6: start a new order (press twice to throw away an order with lines)."""
        if self.draft.lines and self.sending is not self.draft and not self._discard_armed:
            self._discard_armed = True
            n = len(self.draft.lines)
            self._state(f"[b $warning]F6 again throws away the {n} line{'s' if n != 1 else ''} of this order.[/]")
            return
        if self.sending is self.draft:
            self.notify("The order sent is still queued: its number shows when the hub answers.")
        self._discard_armed = False
        self.query_one("#accepted").display = False
        self._reset_order()
