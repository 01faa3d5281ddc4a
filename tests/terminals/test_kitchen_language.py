"""A Shanghai kitchen reads Chinese: a device whose `language` is zh shows the screen's fixed words, cooking methods,
allergens and dish names in Chinese (the dish's other name after it); an English device reads as before."""

from __future__ import annotations

import tomllib

from kds.config import Language, StoreConfig, config_from_dict
from kds.server import HubServer
from terminals.connection import ConnectionBar
from terminals.kitchen.all_day_screen import AllDayScreen
from terminals.kitchen.board import Board
from terminals.kitchen.help_screen import HelpScreen
from terminals.kitchen.recall_screen import RecallScreen
from terminals.kitchen.words import WORDS
from tests.conftest import SAMPLE_CONFIG
from tests.support import until
from tests.terminals.test_kitchen import ClientFactory, kitchen, running, submit, wok_order


def with_chinese_wok_2() -> StoreConfig:
    """The sample store with its wok-2 screen in Chinese (the store itself stays English)."""
    raw = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for dev in raw["devices"]:
        if dev["id"] == "wok-2":
            dev["language"] = "zh"
    return config_from_dict(raw, base_dir=SAMPLE_CONFIG.parent)


async def test_a_chinese_device_shows_chinese_words_and_names(
    config: StoreConfig, hub: HubServer, connect: ClientFactory
) -> None:
    zh = with_chinese_wok_2()
    assert zh.language_of("wok-2") is Language.ZH and zh.language_of("wok-1") is Language.EN
    kiosk, shelf = await connect("kiosk-1"), await connect("shelf-1")
    app = kitchen(zh, hub.url, "wok-2")
    english = kitchen(zh, hub.url, "wok-1")
    async with running(app, size=(160, 45)) as pilot:
        await submit(
            kiosk,
            wok_order(
                "k-1",
                items=[
                    {"sku": "WOK-KUNGPAO", "qty": 2},
                    {"sku": "WOK-GREENS", "qty": 1, "allergens": ["peanut"]},
                ],
            ),
        )
        lobster = {"sku": "LOB-AUS", "weight_g": 1350, "cook": "ginger_scallion", "tag": "T-1"}
        await submit(shelf, wok_order("s-1", channel="shelf", items=[lobster]))
        await until(lambda: len(app.entries) == 2)
        text = app.query_one(Board).plain
        assert "⚠ 过敏: 花生" in text, "the allergy banner in Chinese"
        assert "顾客过敏: 花生" in text and "含: 花生, 大豆" in text
        assert "▶ 姜葱炒" in text, "the cooking method's Chinese name"
        assert "宫保鸡丁 Kung pao chicken" in text, "the dish in Chinese first, then English"
        assert "新单" in text and "桌号" in text and "ALLERGY" not in text and "NEW" not in text
        header = str(app.query_one("#header").render())
        assert "炒锅" in header and "2 单待做" in header and "帮助" in header and "完成" in header
        status = app.query_one(ConnectionBar)
        status.refresh_status()
        assert "已连接主机" in str(status.render()) and "connected to the hub" not in str(status.render())

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one("#help-text").render())
        assert "完成所选订单" in help_text and "bump the selected" not in help_text
        await pilot.press("escape")
        await pilot.press("a")
        assert isinstance(app.screen, AllDayScreen)
        await pilot.pause()
        assert "汇总 — 炒锅" in str(app.screen.query_one("#all-day-title").render())
        assert "姜葱炒" in app.screen.plain and "数量" in app.screen.plain
        await pilot.press("escape", "enter", "r")
        assert isinstance(app.screen, RecallScreen)
        assert "召回" in str(app.screen.query_one("#recall-title").render()) and "完成" in app.screen.plain
        await pilot.press("escape")

    async with running(english, size=(160, 45)):
        await until(lambda: len(english.entries) >= 1)
        text = english.query_one(Board).plain
        assert "▶ Wok-fried with ginger and" in text and "lobster 澳洲龙虾" in text
        assert "NEW" in text and "姜葱炒" not in text and "新单" not in text


def test_every_kitchen_word_has_its_chinese_and_the_same_fields() -> None:
    for en, zh in WORDS.words().items():
        assert zh.strip(), en
        assert sorted(part.split("}")[0] for part in en.split("{")[1:]) == sorted(
            part.split("}")[0] for part in zh.split("{")[1:]
        ), en
