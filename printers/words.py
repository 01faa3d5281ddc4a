"""The fixed words of printed tickets, English → Chinese (`kds.i18n.Words`, on top of the shared `COMMON` words).

Names the store's config gives (stations, cooking methods, allergens, dishes) come from the config through
`kds.i18n`; these are the words of the tickets themselves. An English ticket prints the English key as it is.
"""

from __future__ import annotations

from kds.i18n import COMMON, Words

WORDS = Words(
    {
        # banners
        "REPRINT": "重印",
        "AMENDED": "已修改",
        "CANCELLED": "已取消",
        "RUSH": "加急",
        "NEW": "新加",
        "REMOVED - do not make": "已删除 - 不要做",
        "CUSTOMER ALLERGY": "顾客过敏",
        "ALLERGY": "过敏",
        # the order
        "APP": "App",
        "KIOSK": "自助点餐",
        "SHELF": "活鲜加工",
        "App": "App",
        "Kiosk": "自助点餐",
        "Shelf-to-table": "活鲜加工",
        "Table": "桌号",
        "Pickup": "自取",
        "Pickup at": "自取时间",
        "Delivery by": "送达时间",
        "Customer": "顾客",
        "Address": "地址",
        "Order note": "整单备注",
        "Note": "备注",
        "changed": "已改",
        "Contains": "含",
        "Claim tag": "取货牌",
        "Reason": "原因",
        "Also at": "其他档口",
        "unrouted: no station set for this item": "未分配: 此菜品没有设置档口",
        "ordered": "下单",
        "job": "任务",
        "item": "菜品",
        # claim tag
        "CLAIM TAG": "取货牌",
        "To": "送至",
        "Processing fee": "加工费",
        "Total": "合计",
        "kg": "公斤",
        # pickup slip
        "Pickup number": "取餐号",
        "Scan to follow your order": "扫码查看订单",
        "We call your number when it is ready.": "做好后我们会叫号。",
        # expo
        "EXPO · RUNNER": "出餐",
        "claim tag": "取货牌",
    },
    parent=COMMON,
)
"""The tickets' fixed words."""
