"""The words screens and tickets show, in the device's language (English or Chinese).

Core, no I/O. A device's language is `StoreConfig.language_of(device)` (its own `language`, else the store's), or a
printer's `language`, else the store's. Names the config gives in both languages (stations, cooking methods,
allergens, catalogue items) come from the config; the fixed words of the product (order and ticket states, channels,
headers, help) come from `Words` tables: each area keeps its own table next to its code (`COMMON` here holds the
words every area shares), keyed by the English text, so an English screen reads exactly as it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kds.config import Language, StoreConfig

__all__ = [
    "COMMON",
    "Language",
    "Words",
    "allergen_name",
    "allergen_names",
    "item_names",
    "method_name",
    "printer_language",
    "station_name",
    "status_word",
]


class Words:
    """One area's fixed words: English → Chinese. `get(lang, en)` gives the English text itself for English and for
    any word the table does not have (a missing translation shows English, never an empty field)."""

    def __init__(self, zh: Mapping[str, str], *, parent: Words | None = None) -> None:
        self._zh: dict[str, str] = parent.words() if parent is not None else {}
        self._zh.update(zh)

    def get(self, lang: Language | str, en: str) -> str:
        if lang == Language.ZH:
            return self._zh.get(en, en)
        return en

    def __call__(self, lang: Language | str, en: str) -> str:
        return self.get(lang, en)

    def words(self) -> dict[str, str]:
        """Every English word of the table with its Chinese (for tests and docs)."""
        return dict(self._zh)


COMMON = Words(
    {
        # order states
        "accepted": "已接单",
        "preparing": "制作中",
        "ready": "待取餐",
        "handed_over": "已取餐",
        "cancelled": "已取消",
        # ticket states
        "new": "新单",
        "started": "制作中",
        "done": "已完成",
        # channels and fulfilment
        "app": "App",
        "kiosk": "自助点餐",
        "shelf": "活鲜加工",
        "dine_in": "堂食",
        "pickup": "自取",
        "delivery": "外送",
        "DINE-IN": "堂食",
        "PICKUP": "自取",
        "DELIVERY": "外送",
        "Table": "桌号",
        "Order": "订单",
        "Rush": "加急",
        "RUSH": "加急",
        "ALLERGY": "过敏",
        "Allergy": "过敏",
        "continued": "续",
        "unrouted": "未分配",
        "Printer": "打印机",
        "printer down": "打印机故障",
        "paper out": "缺纸",
        "offline": "离线",
        "connected": "已连接",
        "connecting": "连接中",
    }
)
"""Words every area shares: states, channels, fulfilment, and the allergy heading."""


def status_word(status: str, lang: Language | str) -> str:
    """An order or ticket state (`OrderStatus`, `TicketState` values) as the device's language writes it."""
    return COMMON.get(lang, status)


def _pick(lang: Language | str, en: str, zh: str) -> str:
    return zh if lang == Language.ZH and zh else en


def station_name(config: StoreConfig, station_id: str, lang: Language | str) -> str:
    """A station's name in this language (its id when the config does not know it)."""
    s = config.station(station_id)
    return station_id if s is None else _pick(lang, s.name, s.name_zh)


def method_name(config: StoreConfig, method_id: str, lang: Language | str) -> str:
    """A cooking method's name in this language (its id when the config does not know it)."""
    m = config.method(method_id)
    return method_id if m is None else _pick(lang, m.name, m.name_zh)


def allergen_name(config: StoreConfig, allergen_id: str, lang: Language | str) -> str:
    """A declared allergen's name in this language (the id itself for one the config does not declare: an order
    stored before the store's list changed still shows what it said)."""
    a = config.allergen(allergen_id)
    return allergen_id if a is None else _pick(lang, a.name, a.name_zh)


def allergen_names(config: StoreConfig, allergen_ids: Iterable[str], lang: Language | str) -> list[str]:
    """`allergen_name` of each, in the order given, without repeats."""
    return [allergen_name(config, a, lang) for a in dict.fromkeys(allergen_ids)]


def item_names(config: StoreConfig, sku: str, name: str, lang: Language | str) -> tuple[str, str | None]:
    """The name to show for an order line, first in the device's language, then the other language's when the
    catalogue has it and it differs (kiosk and app items show both: a cook reads one, the runner the other).
    `name` is the name the order carries (any language); it stays first when the catalogue does not know the SKU."""
    it = config.item(sku)
    if it is None:
        return name, None
    first = _pick(lang, it.name, it.name_zh)
    other = it.name if first == it.name_zh else it.name_zh
    if name and name not in (it.name, it.name_zh):
        # The source named it its own way (a partner app's menu name): keep it first, the catalogue's after.
        return name, first
    return first, (other or None) if other != first else None


def printer_language(config: StoreConfig, printer_id: str | None) -> Language:
    """The language of a printer's tickets: its own, else the store's."""
    p = config.printer(printer_id) if printer_id else None
    return p.language if p is not None and p.language is not None else config.store.language
