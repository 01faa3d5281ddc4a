"""Intake: key in a shelf-to-table or walk-up order from the keys alone, and send it with an idempotency key.

Enter walks forward through the item's fields (item → weight → cooking method → qty → note → allergens); F4 adds
the item to the order from any field; F5 sends the order (Enter in the table or order-note field does too). Every
check that the hub would make on an item (unknown SKU, weight outside the item's range, no cooking method) is made
here first and shown under the field at fault; nothing is sent until the order is clean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from kds.client import LinkState
from kds.protocol import Error, OrderAccepted, OrderStatus
from kds.wire import Answer
from terminals.connection import ConnectionBar, OfflineBanner
from terminals.counter import actions
from terminals.counter.catalogue import AllergenChoice, Catalogue, Problem, Product, find_allergens
from terminals.counter.context import CounterContext
from terminals.counter.draft import Draft, Line, Service, new_key
from terminals.counter.widgets import BigNumber, FieldError, ViewTitle, WeightInput
from terminals.counter.words import speak_bindings

_W = TypeVar("_W", bound=Widget)


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


class AllergenInput(Input):
    """The allergies field: the clerk types part of an allergen's name (English or Chinese) and picks it from the
    store's declared list below with Enter; ↓ shows the whole list; Backspace on the empty field takes the last
    one out. Nothing typed here is ever sent as such: only the declared allergens picked."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "move(1)", "Next allergen", show=False),
        Binding("up", "move(-1)", "Previous allergen", show=False),
        Binding("escape", "clear_typed", "Clear", show=False),
    ]

    class Move(Message):
        """Move the highlight in the list of allergens (showing it first)."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    class TakeLast(Message):
        """Backspace on the empty field: take the last allergen picked out."""

    def action_move(self, delta: int) -> None:
        """Ask the screen to move the highlight."""
        self.post_message(self.Move(delta))

    def action_clear_typed(self) -> None:
        """Esc with something typed: clear just this field (the item stays); on the empty field Esc clears the
        item as everywhere else."""
        if not self.value:
            raise SkipAction()
        self.value = ""

    def action_delete_left(self) -> None:
        """Backspace: delete a character, or on the empty field take the last allergen out."""
        if not self.value:
            self.post_message(self.TakeLast())
            return
        super().action_delete_left()


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

        def __init__(self, draft: Draft, answer: Answer) -> None:
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
        speak_bindings(self, ctx.w)
        self.draft = self._new_draft()
        self.product: Product | None = None
        self.cook: str | None = None
        self.matches: list[Product] = []
        self.allergies: list[str] = []
        """The declared allergen ids picked for the item in the form."""
        self.allergen_matches: list[AllergenChoice] = []
        self.sending: Draft | None = None
        """The draft sent and not yet answered (a second F5 sends nothing)."""
        self.accepted: Accepted | None = None
        self.refs: set[str] = set()
        """Refs of the `order.submit`s sent from this screen."""
        self._find_label = ""
        self._discard_armed = False

    def w(self, en: str) -> str:
        """A fixed word in the screen's language."""
        return self.ctx.w(en)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        """Item form on the left, the order on the right."""
        client = self.ctx.client
        w = self.w
        yield ViewTitle(id="title")
        yield OfflineBanner(client, language=self.ctx.lang)
        with Horizontal(id="intake-body"):
            with Vertical(id="item-form"):
                yield Label(w("Item: SKU, barcode or name (EN/中文)"), classes="caption")
                yield self._spoken(FindInput(placeholder=w("scan or type, Enter"), id="find", compact=True))
                yield FieldError(id="find-error")
                yield OptionList(id="matches", compact=True)
                yield Static("", id="item-info")
                with Horizontal(classes="row", id="weight-row"):
                    yield Label(w("Weight (g)"), classes="row-label")
                    yield WeightInput(id="weight", placeholder=w("800 or 0.8kg"), words=w)
                    yield Label("", id="weight-note")
                yield FieldError(id="weight-error")
                yield Label(w("Cooking method (processing fee)"), classes="caption", id="cook-caption")
                yield OptionList(id="cook", compact=True)
                yield FieldError(id="cook-error")
                with Horizontal(classes="row"):
                    yield Label(w("Qty"), classes="row-label")
                    yield Input("1", id="qty", restrict=r"[0-9]*", max_length=2, compact=True)
                yield FieldError(id="qty-error")
                with Horizontal(classes="row"):
                    yield Label(w("Item note"), classes="row-label")
                    yield Input(
                        placeholder=w("e.g. cut in half, less salt"), id="item-note", max_length=500, compact=True
                    )
                with Horizontal(classes="row"):
                    yield Label(w("Allergies"), classes="row-label")
                    yield self._spoken(
                        AllergenInput(
                            placeholder=w("type to pick (↓ list)"), id="allergens", max_length=40, compact=True
                        )
                    )
                yield OptionList(id="allergen-matches", compact=True)
                yield Static("", id="allergies-chosen")
                yield FieldError(id="allergens-error")
                yield Static("", id="price")
                yield Static("", id="form-hint")
            with Vertical(id="order-side"):
                with Vertical(id="accepted"):
                    yield BigNumber(id="accepted-number")
                    yield Static("", id="accepted-info")
                    yield Static("", id="tag-state")
                yield Static("", id="order-title")
                yield self._spoken(OrderLines(id="lines", compact=True))
                yield FieldError(id="lines-error")
                with RadioSet(id="service", compact=True):
                    yield RadioButton(w("Dine-in"), value=True, id="dine-in")
                    yield RadioButton(w("Pickup"), id="pickup")
                with Horizontal(classes="row"):
                    yield Label(w("Table"), classes="row-label")
                    yield Input(id="table", max_length=16, compact=True)
                yield FieldError(id="table-error")
                with Horizontal(classes="row"):
                    yield Label(w("Order note"), classes="row-label")
                    yield Input(id="order-note", max_length=500, compact=True)
                yield FieldError(id="note-error")
                yield Static("", id="send-state")
        yield ConnectionBar(client, now=self.ctx.monotonic, label=self.ctx.hub_label, language=self.ctx.lang)
        yield Footer(compact=True)

    def _spoken(self, widget: _W) -> _W:
        """`widget` with its keys described in the screen's language (the footer shows them while it has the focus)."""
        speak_bindings(widget, self.w)
        return widget

    def on_mount(self) -> None:
        """Start with an empty form."""
        self.query_one("#accepted").display = False
        self.query_one("#allergen-matches").display = False
        self._clear_item()
        self._show_service()
        self._show_order()
        self.refresh_title()

    def refresh_title(self) -> None:
        """The title line (READY count changes with every event)."""
        book = self.ctx.client.book
        ready = sum(1 for o in book.orders.values() if o.status is OrderStatus.READY)
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

    def _hint(self, text: str) -> None:
        """The line under the item form: what Enter did and what comes next."""
        self.query_one("#form-hint", Static).update(text)

    @property
    def hint(self) -> str:
        """The hint line's text (plain, for tests)."""
        return str(self.query_one("#form-hint", Static).render())

    def _names(self, p: Product) -> str:
        first, other = self.ctx.item_names(p.sku, p.name, p.name_zh)
        return f"[b]{escape(first)}[/b]" + (f" {escape(other)}" if other else "")

    def _item_name(self, p: Product) -> str:
        return self.ctx.item_names(p.sku, p.name, p.name_zh)[0]

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
        w = self.w
        text = value.strip()
        if self.product is not None and value == self._find_label:
            self._focus_after_item()
            return
        if not text:
            if self.draft.lines:
                # Enter on an empty item field: the items are in, on to the table (or the order note for pickup).
                dine_in = self.draft.service is Service.DINE_IN
                self._focus("table" if dine_in else "order-note")
                self._hint(
                    w("No more items: the table number, then Enter sends the order.")
                    if dine_in
                    else w("No more items: pickup, Enter in Order note sends the order.")
                )
            else:
                self._error("find", w("scan or type a SKU, barcode or name"))
            return
        if not len(self.catalogue):
            self._error("find", w("no catalogue yet: waiting for the hub"))
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
            (
                w("unknown SKU or barcode {text!r}")
                if looks_like_code
                else w("nothing in the catalogue matches {text!r}")
            ).format(text=text),
        )

    @on(OptionList.OptionSelected, "#matches")
    def _match_chosen(self, event: OptionList.OptionSelected) -> None:
        product = self.catalogue.get(event.option_id or "")
        if product is not None:
            self._select(product)

    def _select(self, product: Product | None, weight_g: int | None = None) -> None:
        """Make `product` the item of the form (None clears the item's fields but not the find text)."""
        w = self.w
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
        self.allergies = []
        self._show_allergies()
        self._show_allergen_matches(None)
        if product is None:
            self.query_one("#item-info", Static).update("")
            weight.disabled = True
            self._show_methods()
            self._show_price()
            self._hint("")
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
            facts.append(w("{lo}–{hi} g").format(lo=product.min_weight_g, hi=product.max_weight_g))
        if product.allergens:
            facts.append(w("contains") + " " + ", ".join(self.ctx.allergen_name(a) for a in product.allergens))
        self.query_one("#item-info", Static).update(f"{self._names(product)}\n{escape(' · '.join(facts))}")
        weight.disabled = not product.weighed
        self._show_methods()
        self._show_price()
        self._focus_after_item()
        if product.weighed and weight.grams is None:
            self._hint(w("Weigh it: grams (800) or kilograms with the unit (0.8kg), Enter."))
        elif product.methods:
            self._hint(w("Choose the cooking method: ↑/↓, Enter."))
        else:
            self._hint(w("Quantity, Enter; F4 adds the item."))

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

    def _weight_problem(self) -> str | None:
        """What is wrong with the weight field (empty, not a weight, outside the item's range), or None."""
        p = self.product
        if p is None or not p.weighed:
            return None
        weight = self.query_one("#weight", WeightInput)
        if weight.error is not None:
            return weight.error
        checked = self.catalogue.check_line(p, weight.grams, self.cook, self.w, self._item_name(p))
        problems = [x for x in checked if x.field == "weight_g"]
        return problems[0].msg if problems else None

    @on(Input.Changed, "#weight")
    def _weight_changed(self) -> None:
        weight = self.query_one("#weight", WeightInput)
        grams = weight.grams
        note = ""
        if grams is not None and not weight.value.strip().isdigit():
            note = self.w("= {grams} g").format(grams=grams)  # typed with a unit: say what it is in grams
        elif grams is not None:
            note = self.w("g")
        self.query_one("#weight-note", Label).update(note)
        if self.query_one("#weight-error", FieldError).text and weight.error is None:
            self._error("weight", None)
        self._show_price()

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
        problem = self._weight_problem()
        self._error("weight", problem)
        if problem is not None:
            self._hint(self.w("Not a weight yet: fix it (red above), Enter."))
        else:
            self._focus("cook" if p.methods and self.cook is None else "item-note")
            self._hint(
                self.w("{grams} g ✓ — now the cooking method: ↑/↓, Enter.").format(grams=weight.grams)
                if p.methods and self.cook is None
                else self.w("{grams} g ✓ — item note (optional), Enter.").format(grams=weight.grams)
            )

    def _show_methods(self) -> None:
        box = self.query_one("#cook", OptionList)
        p = self.product
        methods = self.catalogue.methods_for(p) if p is not None else []
        money = self.catalogue.money
        highlighted = box.highlighted
        box.set_options(
            Option(
                f"{'●' if m.id == self.cook else '○'} {escape(self.ctx.method_name(m.id))} "
                f"+{money(fee)} → {escape(self.ctx.station_name(m.station))}",
                id=m.id,
            )
            for m, fee in methods
        )
        if methods:
            box.highlighted = highlighted if highlighted is not None and highlighted < len(methods) else 0
        box.disabled = not methods
        self.query_one("#cook-caption", Label).update(
            self.w("Cooking method (processing fee)")
            if methods or p is None
            else self.w("Cooking method: none for this item")
        )

    @on(OptionList.OptionSelected, "#cook")
    def _cook_chosen(self, event: OptionList.OptionSelected) -> None:
        self.cook = event.option_id
        self._error("cook", None)
        self._show_methods()
        self._show_price()
        self._focus("item-note" if self.product is None or self.product.weighed else "qty")
        self._hint(
            self.w("{method} ✓ — item note (optional), Enter.").format(method=self.ctx.method_name(self.cook or ""))
            if self.product is None or self.product.weighed
            else self.w("{method} ✓ — quantity, Enter.").format(method=self.ctx.method_name(self.cook or ""))
        )

    def _qty(self) -> int | None:
        """The quantity typed, when it is 1 to 99."""
        text = self._input("qty").value
        qty = int(text) if text.isdigit() else 0
        return qty if 1 <= qty <= 99 else None

    @on(Input.Changed, "#qty")
    def _qty_changed(self) -> None:
        if self._qty() is not None:
            self._error("qty", None)
        self._show_price()

    @on(Input.Submitted, "#qty")
    def _qty_submitted(self) -> None:
        if self._qty() is None:
            self._error("qty", self.w("quantity 1 to 99"))
            self._hint(self.w("Type the quantity (1 to 99), Enter."))
            return
        self._error("qty", None)
        self._focus("item-note")
        self._hint(self.w("Item note (optional), Enter."))

    @on(Input.Submitted, "#item-note")
    def _note_submitted(self, event: Input.Submitted) -> None:
        self._focus("allergens")
        note = self.w("no item note") if not event.value.strip() else self.w("note ✓")
        self._hint(
            note
            + " — "
            + self.w("the customer's allergies: type to pick from the store's list (↓ shows it); Enter adds the item.")
        )

    # ------------------------------------------------------------------ allergies (the store's list only)

    def _show_allergies(self) -> None:
        names = [self.ctx.allergen_name(a) for a in self.allergies]
        self.query_one("#allergies-chosen", Static).update(
            f"[b $warning]{escape(self.w('ALLERGY'))}: {escape(', '.join(names))}[/]" if names else ""
        )
        self.query_one("#allergies-chosen").display = bool(names)

    def _show_allergen_matches(self, matches: list[AllergenChoice] | None) -> None:
        """Show these allergens to pick from (None hides the list)."""
        self.allergen_matches = matches or []
        box = self.query_one("#allergen-matches", OptionList)
        en = self.ctx.lang == "en"
        box.set_options(
            Option(
                f"{'✓' if a.id in self.allergies else ' '} "
                + escape(f"{a.name} {a.name_zh}" if en else f"{a.name_zh} {a.name}"),
                id=a.id,
            )
            for a in self.allergen_matches
        )
        box.display = matches is not None and bool(matches)
        if self.allergen_matches:
            box.highlighted = 0

    @on(Input.Changed, "#allergens")
    def _allergens_changed(self, event: Input.Changed) -> None:
        if event.value != event.input.value:
            return
        self._error("allergens", None)
        text = event.value.strip()
        self._show_allergen_matches(find_allergens(self.ctx.allergens, text) if text else None)

    @on(AllergenInput.Move)
    def _move_allergen(self, event: AllergenInput.Move) -> None:
        box = self.query_one("#allergen-matches", OptionList)
        if not box.display:
            self._show_allergen_matches(self.ctx.allergens)
            return
        if box.option_count:
            box.highlighted = max(0, min(box.option_count - 1, (box.highlighted or 0) + event.delta))

    @on(AllergenInput.TakeLast)
    def _take_last_allergen(self) -> None:
        if self.allergies:
            gone = self.allergies.pop()
            self._show_allergies()
            self._hint(self.w("Took out {name}.").format(name=self.ctx.allergen_name(gone)))

    def _add_allergen(self, allergen_id: str) -> None:
        if allergen_id not in self.allergies:
            self.allergies.append(allergen_id)
        self._input("allergens").value = ""
        self._show_allergen_matches(None)
        self._show_allergies()
        self._error("allergens", None)
        self._hint(
            self.w("{name} ✓ — another allergy, or Enter on the empty field adds the item.").format(
                name=self.ctx.allergen_name(allergen_id)
            )
        )

    @on(OptionList.OptionSelected, "#allergen-matches")
    def _allergen_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_id:
            self._add_allergen(event.option_id)
            self._focus("allergens")

    def _allergen_typed_problem(self) -> str | None:
        """Text in the allergies field that is not (yet) a declared allergen picked."""
        text = self._input("allergens").value.strip()
        if not text:
            return None
        if not find_allergens(self.ctx.allergens, text):
            return self.w(
                "{text!r} is not one of the store's allergens: pick one from the list (↓); "
                "a request like that goes in Item note"
            ).format(text=text)
        return self.w("{text!r}: Enter to pick the highlighted allergen, or clear the field").format(text=text)

    @on(Input.Submitted, "#allergens")
    def _allergens_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#allergen-matches", OptionList)
        if box.display and self.allergen_matches and box.highlighted is not None:
            self._add_allergen(self.allergen_matches[box.highlighted].id)
            return
        if event.value.strip():
            self._error("allergens", self._allergen_typed_problem())
            self._hint(self.w("Pick an allergen from the list, or clear the field."))
            return
        self.action_add_item()

    # ------------------------------------------------------------------ price

    def _show_price(self) -> None:
        """The price of the item in the form: per kg and for this weight, the processing fee, and the total."""
        p = self.product
        out = self.query_one("#price", Static)
        if p is None:
            out.update("")
            return
        money, w = self.catalogue.money, self.w
        fee = p.methods.get(self.cook) if self.cook else None
        parts: list[str] = []
        goods: int | None
        if p.weighed:
            grams = self.query_one("#weight", WeightInput).grams
            goods = p.price_of(1, grams)
            if goods is None or grams is None:
                parts.append(f"{money(p.price_cents)}/kg · " + w("weigh it for the price"))
            else:
                parts.append(f"{grams / 1000:.3f} kg × {money(p.price_cents)}/kg = {money(goods)}")
        else:
            qty = self._qty()
            goods = p.price_of(qty, None) if qty is not None else None
            parts.append(
                f"{qty} × {money(p.price_cents)} = {money(goods)}"
                if goods is not None
                else f"{money(p.price_cents)} " + w("each")
            )
        if fee is not None:
            parts.append(w("fee") + f" {money(fee)}")
        elif p.methods:
            parts.append(w("fee: choose a method"))
        total = (
            ""
            if goods is None or (p.methods and fee is None)
            else f" · [b]{w('total')} {money(goods + (fee or 0))}[/b]"
        )
        out.update(escape(" · ".join(parts)) + total)

    # ------------------------------------------------------------------ lines

    def _line_from_form(self) -> Line | None:
        """The form as an order line, or None with every problem shown under its field."""
        w = self.w
        p = self.product
        if p is None:
            text = self._input("find").value.strip()
            self._error(
                "find", w("unknown SKU or barcode {text!r}").format(text=text) if text else w("find an item first")
            )
            self._focus("find")
            return None
        weight = self.query_one("#weight", WeightInput)
        grams = weight.grams if p.weighed else None
        problems: list[Problem] = []
        weight_problem = self._weight_problem()
        if weight_problem:
            problems.append(Problem("weight_g", weight_problem))
        checked = self.catalogue.check_line(p, grams, self.cook, w, self._item_name(p))
        problems.extend(x for x in checked if x.field != "weight_g")
        qty = self._qty()
        if not p.weighed and qty is None:
            problems.append(Problem("qty", w("quantity 1 to 99")))
        typed = self._allergen_typed_problem()
        if typed:
            problems.append(Problem("allergens", typed))
        fields = {"weight_g": "weight", "cook": "cook", "qty": "qty", "allergens": "allergens"}
        for field in fields.values():
            self._error(field, None)
        for problem in problems:
            self._error(fields.get(problem.field, "find"), problem.msg)
        if problems:
            self._focus(fields.get(problems[0].field, "find"))
            self._hint(w("Not added: fix the fields marked in red."))
            return None
        method = self.catalogue.method(self.cook) if self.cook else None
        return Line(
            product=p,
            qty=1 if p.weighed else (qty or 1),
            weight_g=grams,
            cook=self.cook,
            fee_cents=p.methods.get(self.cook, method.fee_cents if method else 0) if self.cook else 0,
            note=self._input("item-note").value.strip() or None,
            allergens=tuple(self.allergies),
        )

    def action_add_item(self) -> bool:
        """F4: add the item of the form to the order; False (errors shown) when it is not complete."""
        if self.sending is self.draft:
            self._state(self.w("[b]This order was sent: waiting for the hub's answer.[/b] F6 starts a new order."))
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
        said = self.w("Added {name}").format(name=self._item_name(line.product))
        said += " · " + (
            self.w("allergies: {names}").format(names=", ".join(self.ctx.allergen_name(a) for a in line.allergens))
            if line.allergens
            else self.w("no allergies declared")
        )
        self._hint(escape(said) + ". " + self.w("Next item, or Enter on the empty item field for the table."))
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
            self._state(self.w("Removed {name}.").format(name=escape(self._item_name(removed.product))))
            self._show_order()

    def _line_text(self, n: int, line: Line) -> str:
        money = self.catalogue.money
        what = [
            self.w("{grams} g").format(grams=line.weight_g) if line.weight_g else f"×{line.qty}",
            money(line.price_cents),
        ]
        if line.cook:
            m = self.catalogue.method(line.cook)
            station = self.ctx.station_name(m.station) if m else ""
            what.append(f"{self.ctx.method_name(line.cook)} → {station}" if m else line.cook)
        if line.fee_cents:
            what.append(self.w("fee") + f" {money(line.fee_cents)}")
        if line.tag:
            what.append(self.w("tag") + f" {line.tag}")
        extra = []
        if line.note:
            extra.append(self.w("note") + f": {line.note}")
        if line.allergens:
            extra.append(self.w("ALLERGY") + ": " + ", ".join(self.ctx.allergen_name(a) for a in line.allergens))
        text = f"{n}. {self._names(line.product)}\n   {escape(' · '.join(what))}"
        if extra:
            text += f"\n   [b $warning]{escape(' · '.join(extra))}[/]"
        return text

    def _service_text(self) -> str:
        """DINE-IN · table 12, or PICKUP: said in words, not by a colour."""
        d = self.draft
        if d.service is Service.DINE_IN:
            table = d.table.strip()
            return (
                self.w("DINE-IN")
                + " · "
                + (self.w("table {table}").format(table=table) if table else self.w("no table yet"))
            )
        return self.w("PICKUP")

    def _show_order(self) -> None:
        d = self.draft
        w = self.w
        box = self.query_one("#lines", OrderLines)
        highlighted = box.highlighted
        box.set_options(Option(self._line_text(n, line)) for n, line in enumerate(d.lines, start=1))
        if d.lines:
            box.highlighted = min(highlighted if highlighted is not None else len(d.lines) - 1, len(d.lines) - 1)
        money = self.catalogue.money
        count = (w("{n} item") if len(d.lines) == 1 else w("{n} items")).format(n=len(d.lines))
        fees = f" ({w('fees')} {money(d.fees_cents)})" if d.fees_cents else ""
        title = f"[b]{w('New order')}[/b] · [b]{escape(self._service_text())}[/b]"
        if d.lines:
            title += f" · {escape(w(d.channel))} · {count} · [b]{w('total')} {money(d.total_cents)}[/b]{fees}"
        self.query_one("#order-title", Static).update(title)
        if self.sending is not self.draft:
            self._state(
                w("F4 adds the item · F5 (or Enter in Table) sends the order") if d.lines else w("Add items with F4.")
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
        self._show_service()
        self._show_order()

    def _show_service(self) -> None:
        """The chosen service in capitals with a ✓, the other in small letters; the table field says pickup."""
        w = self.w
        pickup = self.draft.service is Service.PICKUP
        self.query_one("#dine-in", RadioButton).label = w("Dine-in") if pickup else "✓ " + w("DINE-IN")
        self.query_one("#pickup", RadioButton).label = "✓ " + w("PICKUP") if pickup else w("Pickup")
        self._input("table").placeholder = w("pickup: no table") if pickup else w("table number")

    @on(Input.Changed, "#table")
    def _table_changed(self, event: Input.Changed) -> None:
        self.draft.table = event.value
        self._error("table", None)
        self._show_order()

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
        w = self.w
        if self.sending is self.draft:
            self._state(w("[b]Already sent[/b] — waiting for the hub (pressing again cannot make a second order)."))
            return
        if self.product is not None and not self.action_add_item():
            self._state(w("[b $error]Not sent:[/] the item in the form is not complete (fix it, or Esc to clear)."))
            return
        typed = self._input("find").value.strip()
        if self.product is None and typed:
            self._error("find", w("{text!r} is not an item yet: Enter to pick it, or Esc to clear").format(text=typed))
            self._focus("find")
            self._state(w("[b $error]Not sent:[/] the item field holds something that is not in the order."))
            return
        problems = self.draft.problems(w)
        for field in ("lines", "table", "note"):
            self._error(field, next((p.msg for p in problems if p.field == field), None))
        if problems:
            self._focus({"lines": "find", "table": "table", "note": "order-note"}[problems[0].field])
            self._state(w("[b $error]Not sent:[/] fix the fields marked in red."))
            return
        draft = self.draft
        self.sending = draft
        msg = actions.submit(draft.to_order())
        answer = self.ctx.client.enqueue(msg)
        self.refs.add(msg["ref"])
        online = self.ctx.client.state is LinkState.ONLINE
        self._state(
            w("Sending…") if online else w("[b $warning]OFFLINE:[/] the order is queued and sent when the hub is back.")
        )
        self.run_worker(self._await_answer(draft, answer), name="order-answer", group="orders")

    async def _await_answer(self, draft: Draft, answer: asyncio.Future[Answer]) -> None:
        """Worker: wait for the hub's answer to a sent order (as long as it takes: the order is queued)."""
        self.post_message(self.Answered(draft, await answer))

    @on(Answered)
    def _answered(self, event: Answered) -> None:
        if self.sending is event.draft:
            self.sending = None
        a = event.answer
        if isinstance(a, OrderAccepted):
            self.accepted = Accepted(a.order_id, a.number, event.draft, a.duplicate)
            if event.draft is self.draft:
                self._reset_order()
            elif self.draft.lines:
                self.notify(self.w("Queued order accepted: {number}").format(number=a.number), timeout=10)
                return
            self._show_accepted()
            self.print_tag()
            return
        # Refused: the draft stays as it was, with the hub's words next to the field at fault.
        if event.draft is not self.draft:
            refused = self.w("A queued order was refused: {words}").format(words=actions.error_words(a))
            self.notify(refused, severity="error", timeout=30)
            return
        where = self._field_of(a)
        self._error(where, actions.error_words(a))
        self._state(self.w("[b $error]The hub refused the order[/] — nothing was stored. Fix it and press F5 again."))

    @staticmethod
    def _field_of(error: Answer) -> str:
        locs = [[str(p) for p in e.loc] for e in error.errors] if isinstance(error, Error) else []
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
        w = self.w
        if d.service is Service.DINE_IN:
            where = w("DINE-IN") + " · " + w("table {table}").format(table=d.table.strip())
        else:
            where = w("PICKUP")
        tags = [line.tag for line in d.lines if line.tag]
        count = (w("{n} item") if len(d.lines) == 1 else w("{n} items")).format(n=len(d.lines))
        info = f"[b]{w('Order {number} accepted').format(number=acc.number)}[/b] · {escape(where)} · {count}"
        info += f" · {w('total')} {self.catalogue.money(d.total_cents)}"
        if tags:
            info += f" · {w('tags')} {', '.join(tags)}"
        self.query_one("#accepted-info", Static).update(info)
        self._state(w("Order {number} sent. Scan the next item, or F3 for the expo list.").format(number=acc.number))

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
        what = self.w(actions.LAYOUTS[layout]).capitalize()
        self.query_one("#tag-state", Static).update(self.w("{layout}: printing…").format(layout=what))
        self.run_worker(self._print(acc.order_id, layout), name="print", group="print")

    def action_print_tag(self) -> None:
        """F7: print the claim tag of the last accepted order again."""
        if self.accepted is None:
            self._state(self.w("No order accepted yet: nothing to print."))
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
        w = self.w
        what = w(actions.LAYOUTS[event.layout]).capitalize()
        stuck = [p for p, f in self.ctx.printers.items() if not f.stations]
        if event.problem is not None:
            problem = escape(w(event.problem))
            text = w("[b $error]{what} not printed:[/] {problem} — F7 tries again").format(what=what, problem=problem)
        elif stuck:
            text = w("[b $warning]{what}: the hub has the job, but {printer} is in trouble[/] (top line)").format(
                what=what, printer=escape(stuck[0])
            )
        else:
            text = w("{what}: sent to the printer ✓ (F7 prints again)").format(what=what)
        self.query_one("#tag-state", Static).update(text)

    # ------------------------------------------------------------------ new order

    def action_new_order(self) -> None:
        """F6: start a new order (press twice to throw away an order with lines)."""
        if self.draft.lines and self.sending is not self.draft and not self._discard_armed:
            self._discard_armed = True
            n = len(self.draft.lines)
            self._state(
                self.w(
                    "[b $warning]F6 again throws away the {n} line of this order.[/]"
                    if n == 1
                    else "[b $warning]F6 again throws away the {n} lines of this order.[/]"
                ).format(n=n)
            )
            return
        if self.sending is self.draft:
            self.notify(self.w("The order sent is still queued: its number shows when the hub answers."))
        self._discard_armed = False
        self.query_one("#accepted").display = False
        self._reset_order()
