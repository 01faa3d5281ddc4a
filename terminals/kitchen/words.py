"""The kitchen screen's words in the device's language (English or Chinese), and names from the config.

`WORDS` holds the screen's fixed words (English → Chinese, over `kds.i18n.COMMON`); a template with `{…}` fields is
looked up whole and filled in after. `Speech` is one screen's language: its fixed words, and the names the config
gives in both languages (cooking methods, allergens, catalogue items). Without a config (a screen made without one)
it falls back on what the order and the hub's welcome say, so nothing ever shows empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kds.config import Language, StoreConfig
from kds.i18n import COMMON, Words, allergen_names, item_names, method_name, station_name
from kds.protocol import ItemView, StoreView

WORDS = Words(
    {
        # timer bar and card
        "NEW": "新单",
        "★ NEW": "★ 新单",
        "COOKING": "制作中",
        "DONE": "已完成",
        "CANCELLED": "已取消",
        "RECALLED": "已召回",
        "AMENDED": "已改单",
        "LATE": "超时",
        "late in {t}": "{t} 后超时",
        "clear: {key}": "清除: {key}",
        "APP": "App",
        "KIOSK": "自助点餐",
        "SHELF": "活鲜加工",
        "TABLE": "桌号",
        "TABLE {table}": "桌号 {table}",
        "due {time}": "{time} 送达",
        "PAST DUE {t}": "已超时 {t}",
        "{t} left": "剩 {t}",
        "at {time}": "{time} 取餐",
        "ORDER CANCELLED": "订单已取消",
        "ITEMS REMOVED": "菜品已删除",
        "stop, do not make": "停止制作",
        "REMOVED": "已删除",
        "ADDED": "加菜",
        "NOTE CHANGED": "备注已改",
        "CUSTOMER ALLERGY": "顾客过敏",
        "contains": "含",
        "(no station set for this dish — tell the manager)": "(此菜未设工位 — 请告知经理)",
        "also": "其他工位",
        "sending…": "发送中…",
        "cont.": "续",
        "continues": "接下页",
        # header
        "{n} open": "{n} 单待做",
        "{n} scheduled": "{n} 单预约",
        "next {number} at {time}, in {t}": "下一单 {number} {time} 开做, 还有 {t}",
        "{n} held": "{n} 单暂缓",
        "{n} LATE": "{n} 单超时",
        "{n} RUSH": "{n} 单加急",
        "{n} CANCELLED": "{n} 单已取消",
        "page {page}/{pages}": "第 {page}/{pages} 页",
        "◀ {n} before": "◀ 前面 {n} 单",
        "+{n} more ▶": "+{n} 单 ▶",
        "★ {n} new on other pages": "★ 其他页 {n} 张新单",
        "{key} help": "{key} 帮助",
        "start": "开始",
        "bump": "完成",
        "item": "单品",
        "recall": "召回",
        "all-day": "汇总",
        "No open tickets at {station} — new orders ring the bell and show here.": (
            "{station} 暂无订单 — 新单会响铃并显示在这里。"
        ),
        "Waiting for the hub: the tickets show as soon as it answers.": "等待主机: 连上后即显示订单。",
        "{number}: the hub refused it — {message}": "{number}: 主机拒绝 — {message}",
        # help
        "KEYS of {device}": "{device} 的按键",
        "select the previous ticket": "选上一单",
        "select the next ticket": "选下一单",
        "previous item of the ticket (recall list: move up)": "上一个菜品 (召回列表: 上移)",
        "next item of the ticket (recall list: move down)": "下一个菜品 (召回列表: 下移)",
        "start the selected ticket (cooking)": "开始制作所选订单",
        "bump the selected ticket: done (clears a cancelled one)": "完成所选订单 (清除已取消的订单)",
        "bump the item under the ▸ cursor": "完成 ▸ 所指的菜品",
        "recall list; in the list, recall the highlighted ticket": "召回列表; 列表中召回所选订单",
        "clear a cancelled ticket (seen)": "清除已取消的订单 (已看到)",
        "all-day totals (open / close)": "汇总 (打开 / 关闭)",
        "next page of tickets": "下一页",
        "previous page of tickets": "上一页",
        "select the oldest ticket (first page)": "选最早的订单 (第一页)",
        "select ticket {n} of the page": "选本页第 {n} 单",
        "select ticket 1…9 of the page (the number on the card)": "选本页第 1…9 单 (卡片上的编号)",
        "this help (open / close)": "帮助 (打开 / 关闭)",
        "tickets waiting for later (list); in the list, fire the highlighted one now": (
            "预约/暂缓的单 (列表); 列表中: 所选的单立即开做"
        ),
        "FOR LATER — tickets waiting to be fired ({n})": "预约 — 等待开做的单 ({n})",
        "Nothing waits for later.": "没有预约的单。",
        "held: fires when you fire it": "已暂缓: 按开做才开做",
        "fires {time}, in {t}": "{time} 开做, 还有 {t}",
        "{up}/{down} choose · {fire} or Enter: fire it now · {close} close": (
            "{up}/{down} 选择 · {fire} 或 Enter: 立即开做 · {close} 关闭"
        ),
        "hold the selected ticket (not started): it waits until fired (F)": "暂缓所选的单 (未开始): 按 F 再开做",
        "close the list or overlay": "关闭列表或窗口",
        "quit the screen": "退出",
        "{a} or {b}: close · keys are set per device in config/store.toml (keymap)": (
            "{a} 或 {b}: 关闭 · 按键在 config/store.toml 中按设备设置 (keymap)"
        ),
        # all-day
        "QTY": "数量",
        "DISH": "菜品",
        "METHOD": "做法",
        "WEIGHT": "重量",
        "TICKETS": "单数",
        "Nothing to make.": "没有待做的菜。",
        "ALL DAY — {station}: {qty} to make across {tickets} open tickets": (
            "汇总 — {station}: {tickets} 单共 {qty} 份待做"
        ),
        "{a} or {b}: back to the tickets": "{a} 或 {b}: 返回订单",
        # recall
        "RECALL — tickets bumped in the last 30 minutes ({n})": "召回 — 最近 30 分钟完成的订单 ({n})",
        "Nothing bumped in the last 30 minutes.": "最近 30 分钟没有完成的订单。",
        "table {table}": "桌号 {table}",
        "bumped {time}": "{time} 完成",
        "just now": "刚刚",
        "{m} min ago": "{m} 分钟前",
        "{number} is {status}: it cannot be recalled": "{number} {status}: 无法召回",
        "{up}/{down} choose · {recall} or Enter: recall it · {close} close": (
            "{up}/{down} 选择 · {recall} 或 Enter: 召回 · {close} 关闭"
        ),
    },
    parent=COMMON,
)
"""The kitchen screen's fixed words, English → Chinese (the shared ones from `kds.i18n.COMMON`)."""


class Speech:
    """One screen's language: fixed words (`speech("LATE")`, `speech("{n} open", n=3)`) and names by id."""

    def __init__(
        self,
        language: Language | str = Language.EN,
        config: StoreConfig | None = None,
        store: StoreView | None = None,
    ) -> None:
        self.language = Language(language)
        self.config = config
        self.store = store
        """The hub's welcome `store` (its allergen names serve when there is no config)."""

    @property
    def zh(self) -> bool:
        """A Chinese screen."""
        return self.language is Language.ZH

    def __call__(self, en: str, **fields: Any) -> str:
        text = WORDS.get(self.language, en)
        return text.format(**fields) if fields else text

    def method(self, item: ItemView) -> str:
        """The cooking method of an order line, in this language."""
        cook = item.cook or ""
        if self.config is not None and self.config.method(cook) is not None:
            return method_name(self.config, cook, self.language)
        return item.cook_name or cook

    def station(self, station_id: str) -> str:
        """A station's name in this language (from the config, else the hub's welcome, else its id)."""
        if self.config is not None and self.config.station(station_id) is not None:
            return station_name(self.config, station_id, self.language)
        for s in self.store.stations if self.store is not None else ():
            if s.id == station_id:
                return (self.zh and s.name_zh) or s.name or station_id
        return station_id

    def method_named(self, name: str) -> str:
        """A cooking method known by its name or id (the all-day totals keep the name), in this language."""
        if self.config is not None:
            for m in self.config.methods:
                if name in (m.id, m.name):
                    return method_name(self.config, m.id, self.language)
        return name

    def allergens(self, ids: Iterable[str]) -> list[str]:
        """Allergen names in this language, without repeats (the id for one nobody declared)."""
        ids = [str(a) for a in ids]
        if self.config is not None:
            return allergen_names(self.config, ids, self.language)
        known = {a.id: a for a in self.store.allergens} if self.store is not None else {}
        out = []
        for a in dict.fromkeys(ids):
            entry = known.get(a)
            name = entry and ((self.zh and entry.name_zh) or entry.name)
            out.append(name or a)
        return out

    def item(self, item: ItemView) -> tuple[str, str | None]:
        """An order line's name in this language first, and the other language's after (or None)."""
        name = item.name
        if self.config is not None and self.config.item(item.sku) is not None:
            return item_names(self.config, item.sku, name, self.language)
        zh = item.name_zh
        if not zh or zh == name:
            return name, None
        return (zh, name) if self.zh and name else (name, zh)


ENGLISH = Speech()
"""An English screen without a config (the names the orders carry)."""
