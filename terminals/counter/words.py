"""The counter screen's fixed words in Chinese, keyed by the English text (an English screen reads them as they are).

Names the config gives (items, cooking methods, allergens, stations) come from `kds.i18n`, not from here.
"""

from __future__ import annotations

from kds.i18n import COMMON, Words

WORDS = Words(
    {
        # intake: the item form
        "Item: SKU, barcode or name (EN/中文)": "商品:编码、条码或名称 (EN/中文)",
        "scan or type, Enter": "扫码或输入,回车",
        "Weight": "重量",
        "Weight (g)": "重量 (克)",
        "800 or 0.8kg": "800 或 0.8kg",
        "Not a weight yet: fix it (red above), Enter.": "重量有误:请按上方红字修改,回车。",
        "Not added: fix the fields marked in red.": "未加入:请修改标红的栏位。",
        "Type the quantity (1 to 99), Enter.": "请输入数量 (1 至 99),回车。",
        "Pick an allergen from the list, or clear the field.": "请从列表中选择过敏原,或清空此栏。",
        "Cooking method (processing fee)": "加工方式 (加工费)",
        "Cooking method: none for this item": "加工方式:此商品无需加工",
        "Qty": "数量",
        "Item note": "商品备注",
        "e.g. cut in half, less salt": "如:切半、少盐",
        "Allergies": "过敏原",
        "type to pick (↓ list)": "输入后选择 (↓ 列表)",
        "Order note": "订单备注",
        "Dine-in": "堂食",
        "Pickup": "自取",
        "table number": "桌号",
        "pickup: no table": "自取:无需桌号",
        "contains": "含",
        "each": "每份",
        "fee": "加工费",
        "fees": "加工费",
        "fee: choose a method": "加工费:请选择加工方式",
        "total": "合计",
        "weigh it for the price": "称重后计价",
        "tag": "标签",
        "tags": "标签",
        "note": "备注",
        "New order": "新订单",
        "{n} item": "{n} 件",
        "{n} items": "{n} 件",
        "table {table}": "{table} 号桌",
        "no table yet": "未填桌号",
        # intake: what Enter did, what comes next
        "Weigh it: grams (800) or kilograms with the unit (0.8kg), Enter.": "称重:克 (800) 或带单位的公斤 (0.8kg),回车。",  # noqa: E501
        "Choose the cooking method: ↑/↓, Enter.": "选择加工方式:↑/↓,回车。",
        "Quantity, Enter; F4 adds the item.": "数量,回车;F4 加入商品。",
        "{grams} g ✓ — now the cooking method: ↑/↓, Enter.": "{grams} 克 ✓ — 请选择加工方式:↑/↓,回车。",
        "{grams} g ✓ — item note (optional), Enter.": "{grams} 克 ✓ — 商品备注 (可选),回车。",
        "{method} ✓ — item note (optional), Enter.": "{method} ✓ — 商品备注 (可选),回车。",
        "{method} ✓ — quantity, Enter.": "{method} ✓ — 数量,回车。",
        "Item note (optional), Enter.": "商品备注 (可选),回车。",
        "no item note": "无商品备注",
        "note ✓": "备注 ✓",
        "the customer's allergies: type to pick from the store's list (↓ shows it); Enter adds the item.": (
            "顾客过敏原:输入后从本店列表中选择 (↓ 显示列表);回车加入商品。"
        ),
        "Took out {name}.": "已移除 {name}。",
        "{name} ✓ — another allergy, or Enter on the empty field adds the item.": (
            "{name} ✓ — 继续选择过敏原,或在空白栏回车加入商品。"
        ),
        "Added {name}": "已加入 {name}",
        "allergies: {names}": "过敏原:{names}",
        "no allergies declared": "未申报过敏原",
        "Next item, or Enter on the empty item field for the table.": "下一件商品,或在空白商品栏回车填写桌号。",
        "No more items: the table number, then Enter sends the order.": "商品已齐:填写桌号,回车下单。",
        "No more items: pickup, Enter in Order note sends the order.": "商品已齐:自取,在订单备注回车下单。",
        # intake: checks
        "scan or type a SKU, barcode or name": "请扫码或输入编码、条码或名称",
        "no catalogue yet: waiting for the hub": "尚无商品目录:等待服务器",
        "unknown SKU or barcode {text!r}": "未知编码或条码 {text!r}",
        "nothing in the catalogue matches {text!r}": "目录中没有与 {text!r} 匹配的商品",
        "find an item first": "请先找到商品",
        "quantity 1 to 99": "数量 1 至 99",
        "{name} is sold by weight: enter the weight (800 = grams, or 0.8kg)": "{name} 按重量出售:请输入重量 (800 = 克,或 0.8kg)",  # noqa: E501
        "{weight} g is outside {lo}–{hi} g for {name}": "{weight} 克超出 {name} 的范围 {lo}–{hi} 克",
        "{name} is not sold by weight": "{name} 不按重量出售",
        "{cook!r} is not a cooking method for {name} (allowed: {allowed})": "{cook!r} 不是 {name} 的加工方式 (可选:{allowed})",  # noqa: E501
        "choose a cooking method for {name}": "请为 {name} 选择加工方式",
        (
            "{text!r} is not one of the store's allergens: pick one from the list (↓); "
            "a request like that goes in Item note"
        ): ("{text!r} 不是本店申报的过敏原:请从列表 (↓) 中选择;此类要求请写在商品备注"),
        "{text!r}: Enter to pick the highlighted allergen, or clear the field": "{text!r}:回车选择高亮的过敏原,或清空此栏",  # noqa: E501
        "the weight must be more than 0 g": "重量必须大于 0 克",
        # intake: the order
        "F4 adds the item · F5 (or Enter in Table) sends the order": "F4 加入商品 · F5 (或在桌号回车) 下单",
        "Add items with F4.": "用 F4 加入商品。",
        "Removed {name}.": "已移除 {name}。",
        "Order {number} accepted": "订单 {number} 已接单",
        "Order {number} sent. Scan the next item, or F3 for the expo list.": "订单 {number} 已发送。扫描下一件商品,或按 F3 查看出餐列表。",  # noqa: E501
        "[b]This order was sent: waiting for the hub's answer.[/b] F6 starts a new order.": (
            "[b]此订单已发送:等待服务器答复。[/b] F6 开始新订单。"
        ),
        # expo
        "Order": "订单",
        "For": "去向",
        "Status": "状态",
        "Stations": "档口",
        "Time": "时间",
        "Alerts": "提醒",
        "READY": "待取餐",
        "CALLED": "已叫号",
        "No open orders.": "没有未完成的订单。",
        "Waiting for the hub…": "等待服务器…",
    },
    parent=COMMON,
)
"""The counter's fixed words: English → Chinese."""
