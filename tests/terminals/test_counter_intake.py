"""Intake as a clerk meets it (Pilot, from the keys, against a real hub on loopback): weights with their unit,
prices, Enter that never skips a field without saying so, DINE-IN / PICKUP in words, allergies picked from the
store's list, and a counter that speaks Chinese."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Label, OptionList, RadioButton, Static
from textual.widgets._footer import FooterKey

from kds.config import StoreConfig, parse_config
from kds.server import HubServer
from terminals.connection import ConnectionBar
from terminals.counter.catalogue import money
from terminals.counter.dialogs import ChoiceDialog
from terminals.counter.widgets import FieldError, WeightInput
from tests.conftest import SAMPLE_CONFIG
from tests.support import until
from tests.terminals.test_counter_support import Clock, counter_app, hub_server, key_item, ready, type_text


def _error(app: Any, field: str) -> str:
    return str(app.intake.query_one(f"#{field}-error", FieldError).text)


def _text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def _footer(app: Any) -> list[str]:
    """The key descriptions the footer shows now."""
    return [str(k.description) for k in app.screen.query(FooterKey)]


def _focused(app: Any) -> str | None:
    return app.focused.id if app.focused is not None else None


async def _clear(pilot: Any, app: Any, field: str) -> None:
    app.intake.query_one(f"#{field}").value = ""
    await pilot.pause()


# ---------------------------------------------------------------------------------------------------- weights


async def test_a_weight_typed_in_kilograms_is_not_taken_for_grams(hub: HubServer, tmp_path: Path) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        weight = intake.query_one("#weight", WeightInput)
        assert "Weight (g)" in [str(w.render()) for w in intake.query(".row-label")], "a plain number is grams"
        assert str(weight.placeholder) == "800 or 0.8kg"

        await key_item(pilot, intake, "LOB-AUS", weight="1.2kg", add=False)
        assert weight.grams == 1200 and _error(app, "weight") == ""
        assert "= 1200 g" in str(intake.query_one("#weight-note").render())
        assert _focused(app) == "cook", "a good weight goes on to the cooking method"

        for typed, grams in (("1,2 kg", 1200), ("1200 g", 1200), ("1200g", 1200), ("950", 950), ("0.8 kg", 800)):
            await _clear(pilot, app, "weight")
            weight.focus()
            await type_text(pilot, typed)
            await pilot.press("enter")
            assert (weight.grams, _error(app, "weight")) == (grams, ""), typed

        # Anything else is refused next to the field, and Enter stays there.
        for typed, words in (
            ("1.2", "a plain number is grams; for kilograms add the unit (1.2kg)"),
            ("2 lb", "is not a weight"),
            ("30kg", "30000 g is outside 500–3000 g for Australian rock lobster"),
        ):
            await _clear(pilot, app, "weight")
            weight.focus()
            await type_text(pilot, typed)
            await pilot.press("enter")
            assert words in _error(app, "weight"), typed
            assert _focused(app) == "weight"

        # Put right, the lobster goes to the hub as 1200 g.
        await _clear(pilot, app, "weight")
        weight.focus()
        await type_text(pilot, "1.2kg")
        await pilot.press("enter", "enter")  # weight, then the first cooking method
        await pilot.press("f4")
        await pilot.pause()
        assert [(line.product.sku, line.weight_g) for line in intake.draft.lines] == [("LOB-AUS", 1200)]
        await pilot.press("enter")
        await type_text(pilot, "7")
        await pilot.press("enter")
        await until(lambda: intake.accepted is not None, what="order accepted")
        assert intake.accepted is not None
        assert [i.weight_g for i in hub.hub.orders[intake.accepted.order_id].items] == [1200]


# ---------------------------------------------------------------------------------------------------- prices


async def test_price_per_kg_line_price_fee_and_total_show_on_intake(
    hub: HubServer, config: StoreConfig, tmp_path: Path
) -> None:
    lobster, tofu = config.item("LOB-AUS"), config.item("WOK-KUNGPAO")
    sashimi = config.method("sashimi")
    assert lobster is not None and tofu is not None and sashimi is not None
    per_kg, fee = lobster.price_cents, lobster.fee_for(sashimi)
    goods = (per_kg * 1200 + 500) // 1000
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        await key_item(pilot, intake, "LOB-AUS", add=False)
        assert f"{money(per_kg)}/kg" in _text(app, "#price")
        assert "weigh it for the price" in _text(app, "#price")
        await type_text(pilot, "1.2kg")
        await pilot.press("enter")
        assert f"1.200 kg × {money(per_kg)}/kg = {money(goods)}" in _text(app, "#price")
        await pilot.press(*["down"] * list(lobster.methods).index("sashimi"), "enter")
        price = _text(app, "#price")
        assert f"fee {money(fee)}" in price and f"total {money(goods + fee)}" in price
        await pilot.press("f4")
        await key_item(pilot, intake, "WOK-KUNGPAO", add=False)
        await _clear(pilot, app, "qty")
        intake.query_one("#qty").focus()
        await type_text(pilot, "2")
        await pilot.pause()
        assert f"2 × {money(tofu.price_cents)} = {money(2 * tofu.price_cents)}" in _text(app, "#price")
        await pilot.press("f4")
        await pilot.pause()
        total = goods + fee + 2 * tofu.price_cents
        title = _text(app, "#order-title")
        assert f"total {money(total)}" in title and f"fees {money(fee)}" in title
        lines = intake.query_one("#lines", OptionList)
        first = str(lines.get_option_at_index(0).prompt)
        assert money(goods) in first and f"fee {money(fee)}" in first


# ---------------------------------------------------------------------------------------------------- Enter


async def test_enter_on_an_empty_or_wrong_field_stays_and_says_what_is_missing(hub: HubServer, tmp_path: Path) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        # Weight left empty.
        await key_item(pilot, intake, "LOB-AUS", add=False)
        assert _focused(app) == "weight"
        await pilot.press("enter")
        assert _focused(app) == "weight"
        assert "is sold by weight: enter the weight" in _error(app, "weight")
        await pilot.press("escape")

        # Quantity emptied, or 0.
        await key_item(pilot, intake, "WOK-KUNGPAO", add=False)
        assert _focused(app) == "qty"
        for typed in ("", "0"):
            await _clear(pilot, app, "qty")
            await type_text(pilot, typed)
            await pilot.press("enter")
            assert _focused(app) == "qty" and _error(app, "qty") == "quantity 1 to 99", typed
        await type_text(pilot, "3")
        await pilot.press("enter")
        assert _focused(app) == "item-note" and _error(app, "qty") == ""

        # An empty note is fine, and the line under the form says so; the allergies field is next.
        await pilot.press("enter")
        assert _focused(app) == "allergens" and "no item note" in intake.hint
        # Enter on the empty allergies field adds the item, saying no allergies were declared.
        await pilot.press("enter")
        await pilot.pause()
        assert [(line.product.sku, line.qty, line.allergens) for line in intake.draft.lines] == [("WOK-KUNGPAO", 3, ())]
        assert "no allergies declared" in intake.hint


# ---------------------------------------------------------------------------------------------------- dine-in / pickup


async def test_dine_in_or_pickup_is_said_in_words_on_intake_and_expo(
    hub: HubServer, tmp_path: Path, connect: Any
) -> None:
    app = counter_app(hub.url, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        dine_in, pickup = intake.query_one("#dine-in", RadioButton), intake.query_one("#pickup", RadioButton)
        assert (str(dine_in.label), str(pickup.label)) == ("✓ DINE-IN", "Pickup")
        assert "DINE-IN · no table yet" in _text(app, "#order-title")
        await key_item(pilot, intake, "milk tea")
        await pilot.press("enter")
        await type_text(pilot, "12")
        await pilot.pause()
        assert "DINE-IN · table 12" in _text(app, "#order-title")
        await pilot.press("f8")
        await pilot.pause()
        assert (str(dine_in.label), str(pickup.label)) == ("Dine-in", "✓ PICKUP")
        assert "PICKUP" in _text(app, "#order-title") and "table" not in _text(app, "#order-title")
        assert intake.query_one("#table", Input).placeholder == "pickup: no table"
        await pilot.press("f5")
        await until(lambda: intake.accepted is not None, what="pickup accepted")
        assert "PICKUP" in _text(app, "#accepted-info")
        pickup_number = intake.accepted.number if intake.accepted else ""

        await key_item(pilot, intake, "milk tea")
        await pilot.press("enter")
        await type_text(pilot, "12")
        await pilot.press("enter")
        await until(lambda: intake.accepted is not None and intake.accepted.number != pickup_number, what="dine-in")
        assert "DINE-IN · table 12" in _text(app, "#accepted-info")
        dine_number = intake.accepted.number if intake.accepted else ""

        await pilot.press("f3")
        await until(lambda: len(app.expo.rows) == 2, what="both orders on the expo")
        table = app.expo.query_one("#orders", DataTable)
        for_column = {str(table.get_row(r.id)[0]): str(table.get_row(r.id)[1]) for r in app.expo.rows}
        assert for_column == {pickup_number: "PICKUP", dine_number: "DINE-IN 12"}


# ---------------------------------------------------------------------------------------------------- allergies


async def test_allergies_are_picked_from_the_stores_list_never_typed_free(
    hub: HubServer, config: StoreConfig, tmp_path: Path
) -> None:
    app = counter_app(hub.url, tmp_path, config=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        await key_item(pilot, intake, "LOB-AUS", weight=900, cook="steamed", add=False)
        intake.query_one("#allergens").focus()
        # ↓ on the empty field shows the store's whole list.
        await pilot.press("down")
        matches = intake.query_one("#allergen-matches", OptionList)
        assert matches.display and matches.option_count == len(config.allergens)
        await pilot.press("escape")  # (clears the item: start again)
        await key_item(pilot, intake, "LOB-AUS", weight=900, cook="steamed", add=False)
        intake.query_one("#allergens").focus()

        # Free text is refused and stays where it is; the clerk is told a request goes in the note.
        await type_text(pilot, "cut in half")
        await pilot.press("enter")
        assert "'cut in half' is not one of the store's allergens" in _error(app, "allergens")
        assert "Item note" in _error(app, "allergens") and intake.allergies == []
        # F4 with that still typed adds nothing.
        await pilot.press("f4")
        await pilot.pause()
        assert intake.draft.lines == [] and _focused(app) == "allergens"
        # Esc clears what was typed in the field, not the whole item.
        await pilot.press("escape")
        assert intake.query_one("#allergens", Input).value == "" and intake.product is not None
        intake.query_one("#item-note").focus()
        await type_text(pilot, "cut in half")

        # Picked by English or Chinese name; Backspace on the empty field takes the last one out.
        intake.query_one("#allergens").focus()
        for typed in ("花生", "sesa", "soy"):
            await type_text(pilot, typed)
            await pilot.press("enter")
        assert intake.allergies == ["peanut", "sesame", "soy"]
        await pilot.press("backspace")
        assert intake.allergies == ["peanut", "sesame"]
        assert "ALLERGY: Peanut, Sesame" in _text(app, "#allergies-chosen")
        await pilot.press("enter")  # empty field: adds the item
        await pilot.pause()
        assert [(line.note, line.allergens) for line in intake.draft.lines] == [("cut in half", ("peanut", "sesame"))]

        await pilot.press("enter")
        await type_text(pilot, "5")
        await pilot.press("enter")
        await until(lambda: intake.accepted is not None, what="order accepted")
        assert intake.accepted is not None
        item = hub.hub.orders[intake.accepted.order_id].items[0]
        assert item.note == "cut in half" and {"peanut", "sesame"} <= set(item.allergens)
        assert "cut_in_half" not in item.allergens


# ---------------------------------------------------------------------------------------------------- language


@pytest.fixture
def zh_config() -> StoreConfig:
    """The sample store with counter-1's screen in Chinese."""
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    device = 'id = "counter-1"\ntoken = "dev-counter-1-token"\n'
    assert device in text
    return parse_config(text.replace(device, device + 'language = "zh"\n'), base_dir=SAMPLE_CONFIG.parent)


@pytest.fixture
async def zh_hub(zh_config: StoreConfig, tmp_path: Path) -> AsyncIterator[HubServer]:
    server = hub_server(zh_config, tmp_path / "hub.sqlite3")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_counter_set_to_chinese_speaks_chinese(
    zh_hub: HubServer, zh_config: StoreConfig, tmp_path: Path
) -> None:
    lobster, steamed = zh_config.item("LOB-AUS"), zh_config.method("steamed")
    assert lobster is not None and steamed is not None and steamed.name_zh
    seafood = zh_config.station(steamed.station)
    assert seafood is not None and seafood.name_zh
    clock = Clock(datetime.now(UTC))
    app = counter_app(zh_hub.url, tmp_path, config=zh_config, now=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        intake = app.intake
        labels = [str(w.render()) for w in intake.query(".row-label")]
        assert labels[:2] == ["重量 (克)", "数量"]
        footer = _footer(app)
        assert {"加入商品", "下单", "点单", "出餐"} <= set(footer), footer
        assert not any(k in footer for k in ("Add item", "Send order", "Intake")), "no English key left"

        # A weight error in Chinese, then a good weight.
        await key_item(pilot, intake, "LOB-AUS", weight="1.2", add=False)
        assert _error(app, "weight") == "'1.2':纯数字按克计;公斤请加单位 (1.2kg)"
        assert "重量有误" in intake.hint
        await _clear(pilot, app, "weight")
        await type_text(pilot, "900")
        await pilot.press("enter")
        await pilot.pause()
        assert str(intake.query_one("#weight-note").render()) == "克" and _error(app, "weight") == ""
        cook = intake.query_one("#cook", OptionList)
        options = [str(cook.get_option_at_index(k).prompt) for k in range(cook.option_count)]
        assert any(steamed.name_zh in o for o in options)
        await pilot.press(*["down"] * list(lobster.methods).index("steamed"), "enter")
        intake.query_one("#allergens").focus()
        await type_text(pilot, "peanut")
        await pilot.press("enter", "enter")
        await pilot.pause()
        line = str(intake.query_one("#lines", OptionList).get_option_at_index(0).prompt)
        assert line.index(lobster.name_zh) < line.index(lobster.name), "the Chinese name first, the English after"
        assert "过敏: 花生" in line and steamed.name_zh in line and "900 克" in line
        title = _text(app, "#order-title")
        assert "新订单" in title and "堂食" in title and "合计" in title
        assert str(intake.query_one("#dine-in", RadioButton).label) == "✓ 堂食"

        # Sending without a table: the order's own check in Chinese.
        await pilot.press("f5")
        await pilot.pause()
        assert _error(app, "table") == "请填写桌号 (或选择自取)"
        assert "未发送" in _text(app, "#send-state")
        intake.query_one("#table").focus()
        await type_text(pilot, "12")
        await pilot.press("enter")
        await until(lambda: intake.accepted is not None, what="order accepted")
        await until(lambda: "打印" in _text(app, "#tag-state"), what="print said")

        await pilot.press("f3")
        await pilot.pause()
        expo = app.expo
        title = _text(app, "#title")
        assert title.startswith("柜台 counter-1") and "出餐 F3" in title and "点单 F2" in title, title
        headers = [str(c.label) for c in expo.query_one("#orders", DataTable).columns.values()]
        assert headers[:3] == ["订单", "去向", "状态"]
        assert {"叫号", "交付", "召回", "打印"} <= set(_footer(app)), _footer(app)
        bar = expo.query_one(ConnectionBar)
        bar.refresh_status()
        assert "已连接主机" in str(bar.render())

        # Time words and alerts: half an hour on, the seafood station is late with it.
        clock.advance(minutes=30)
        expo.refresh_orders()
        await pilot.pause()
        cells = [str(c) for c in expo.query_one("#orders", DataTable).get_row_at(0)]
        assert cells[4].startswith("用时 2") or cells[4].startswith("用时 30:"), cells
        assert cells[5] == f"{seafood.name_zh}超时", cells
        detail = _text(app, "#detail")
        assert "来自 counter-1" in detail and "下单" in detail and f"⚠ {seafood.name_zh}超时" in detail
        assert "age" not in detail and "placed" not in detail and "from" not in detail

        # Refusals and dialogs in Chinese.
        await pilot.press("h")
        await pilot.pause()
        assert expo.last_message.startswith("✗ 交付 ") and "还未备好" in expo.last_message
        await pilot.press("p")
        await until(lambda: isinstance(app.screen, ChoiceDialog), what="print dialog")
        dialog = app.screen
        texts = [str(label.render()) for label in dialog.query(Label)]
        assert texts[0].startswith("重新打印 ") and texts[-1] == "↑/↓ 回车或按字母 · Esc 取消", texts
        box = dialog.query_one(OptionList)
        choices = [str(box.get_option_at_index(k).prompt) for k in range(box.option_count)]
        assert choices[0] == "e  出餐单 — 整张订单", choices
        await pilot.press("e")
        await until(lambda: "出餐单" in expo.last_message and "打印机" in expo.last_message, what="printed")
        assert expo.last_message.endswith("的出餐单已发送到打印机"), expo.last_message
