"""The words screens and tickets show in the device's language (`kds.i18n`)."""

from __future__ import annotations

from kds.config import Language, StoreConfig
from kds.i18n import COMMON, Words, allergen_name, allergen_names, item_names, method_name, station_name, status_word


def test_names_come_from_the_config_in_the_devices_language(config: StoreConfig) -> None:
    assert allergen_name(config, "peanut", Language.ZH) == "花生"
    assert allergen_name(config, "peanut", Language.EN) == "Peanut"
    assert allergen_names(config, ["soy", "peanut", "soy"], "zh") == ["大豆", "花生"]
    assert allergen_name(config, "retired_word", "zh") == "retired_word"  # an old order still shows what it said
    assert method_name(config, "steamed", "zh") == "清蒸"
    assert station_name(config, "wok", "zh") == config.station("wok").name_zh  # type: ignore[union-attr]
    assert station_name(config, "nowhere", "zh") == "nowhere"


def test_items_show_both_names_the_devices_first(config: StoreConfig) -> None:
    lob = config.item("LOB-AUS")
    assert lob is not None
    assert item_names(config, "LOB-AUS", lob.name, "zh") == (lob.name_zh, lob.name)
    assert item_names(config, "LOB-AUS", lob.name_zh, "en") == (lob.name, lob.name_zh)
    assert item_names(config, "LOB-AUS", "Big red one", "en") == ("Big red one", lob.name)
    assert item_names(config, "NO-SUCH", "Mystery", "zh") == ("Mystery", None)


def test_fixed_words_fall_back_to_english() -> None:
    area = Words({"Bump": "出餐"}, parent=COMMON)
    assert area("zh", "Bump") == "出餐"
    assert area("zh", "ready") == "待取餐"
    assert area("en", "Bump") == "Bump"
    assert area("zh", "Never translated") == "Never translated"
    assert status_word("handed_over", "zh") == "已取餐"
    assert status_word("handed_over", "en") == "handed_over"
